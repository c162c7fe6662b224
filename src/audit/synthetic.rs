//! An audit log as `orderflow storage` would write it, made without Kafka: the seeded order
//! generator's events, each order kept in one partition, offsets counting up per partition,
//! and now and then a malformed record. For benchmarks (`benches/audit.rs`,
//! `examples/audit-log-generator.rs`) and tests, which need large or exact logs fast.
//!
//! The same seed gives the same file, byte for byte: the clock is simulated too, one
//! millisecond per record from a fixed start.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use super::line::AuditLine;
use crate::domain::generator::OrderGenerator;
use crate::roles::ConsumedRecord;

/// The time of the first record.
const START_MS: i64 = 1_795_285_800_000; // 2026-11-21T18:30:00Z

/// What storage's clock adds between a record's Kafka timestamp and its line.
const STORE_DELAY_MS: i64 = 4;

/// A stream of audit lines.
pub struct SyntheticLog {
    generator: OrderGenerator,
    topic: String,
    /// The next offset of each partition.
    next_offsets: Vec<i64>,
    /// One record in this many is malformed (0: none).
    malformed_every: u64,
    /// Records made so far.
    records: u64,
}

impl SyntheticLog {
    /// A log of `topic` with `partitions` partitions and no malformed records.
    pub fn new(seed: u64, topic: &str, partitions: usize) -> SyntheticLog {
        SyntheticLog {
            generator: OrderGenerator::new(seed),
            topic: topic.to_owned(),
            next_offsets: vec![0; partitions.max(1)],
            malformed_every: 0,
            records: 0,
        }
    }

    /// Makes one record in `n` a malformed one: text that is not JSON, without a key.
    pub fn malformed_every(mut self, n: u64) -> SyntheticLog {
        self.malformed_every = n;
        self
    }

    /// The next line.
    pub fn next_line(&mut self) -> AuditLine {
        let now = DateTime::<Utc>::from_timestamp_millis(START_MS).expect("a valid time")
            + TimeDelta::milliseconds(self.records as i64);
        self.records += 1;
        let malformed =
            self.malformed_every > 0 && self.records.is_multiple_of(self.malformed_every);
        let partitions = self.next_offsets.len() as u128;
        let (key, value, partition) = if malformed {
            let partition = (self.records as u128 % partitions) as usize;
            (None, b"hello, kafka".to_vec(), partition)
        } else {
            let event = self.generator.next_event(now);
            // Kafka's partitioner hashes the key; any stable function of the order id keeps
            // an order in one partition just the same.
            let partition = (event.order_id.as_u128() % partitions) as usize;
            let mut value = Vec::with_capacity(192);
            event.encode_into(&mut value);
            (Some(event.key()), value, partition)
        };
        let offset = self.next_offsets[partition];
        self.next_offsets[partition] += 1;
        let record = ConsumedRecord {
            topic: &self.topic,
            partition: partition as i32,
            offset,
            key: key.as_ref().map(|k| k.as_bytes()),
            value: Some(&value),
            timestamp_ms: Some(now.timestamp_millis()),
        };
        let stored_at = Utc
            .timestamp_millis_opt(now.timestamp_millis() + STORE_DELAY_MS)
            .single()
            .expect("a valid time");
        AuditLine::from_record(&record, stored_at)
    }

    /// Appends lines to `out` until it holds at least `bytes` bytes.
    pub fn write_until(&mut self, out: &mut Vec<u8>, bytes: usize) {
        while out.len() < bytes {
            self.next_line().encode_into(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_log() {
        let log = |seed| {
            let mut out = Vec::new();
            SyntheticLog::new(seed, "t", 3)
                .malformed_every(10)
                .write_until(&mut out, 20_000);
            out
        };
        assert_eq!(log(1), log(1));
        assert_ne!(log(1), log(2));
        let text = String::from_utf8(log(1)).unwrap();
        assert!(text.starts_with(r#"{"topic":"t","partition":"#), "{text}");
        assert!(text.contains(r#""kafka_timestamp":"2026-11-21T18:30:00Z""#));
        assert!(text.contains(r#""error_kind":"not-json""#));
    }
}
