//! Records a consumer cannot decode (a corrupt batch the built-in broker accepted, a codec
//! this librdkafka lacks): librdkafka reports an error and fetches the same offset again, for
//! ever, without saying which partition or offset. The runtime finds them (the partitions
//! whose position stands still below their end, probed offset by offset with the history
//! reader), and then, as Kafka Streams' deserialization handlers do, either stops naming the
//! range (log-and-fail, the default) or, with `--skip-undecodable`, seeks past it, counts it
//! and names it (log-and-continue). It also keeps the repeated error to one line with a count.

use std::time::{Duration, Instant};

use rdkafka::Offset;
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use super::error::ConsumerError;
use super::history::Probe;
use super::{GroupConsumer, TOPIC_GONE_AFTER};
use crate::report::activity::Activity;
use crate::roles::Role;

/// How often the same consumer error is told again, with how many times it recurred.
const REPEAT_EVERY: Duration = Duration::from_secs(5);

/// How often, at most, the partitions are examined for an undecodable range.
const EXAMINE_EVERY: Duration = Duration::from_millis(500);

/// At most this many offsets are probed in one examination (one fetch each); a longer range
/// is skipped in steps.
const MAX_PROBES: i64 = 1_000;

/// Whether `error` says a fetched batch could not be decoded.
pub(super) fn is_undecodable(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::BadCompression
                | RDKafkaErrorCode::BadMessage
                | RDKafkaErrorCode::NotImplemented
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::UnsupportedCompressionType
        )
    )
}

/// One error told at most every [`REPEAT_EVERY`], with how often it recurred meanwhile.
#[derive(Debug, Default)]
pub(super) struct Repeats {
    /// The error last told, when, and how many times it recurred since.
    last: Option<(String, Instant, u64)>,
}

impl Repeats {
    /// What to print for `text` happening at `now`, if anything.
    pub(super) fn tell(&mut self, text: &str, now: Instant) -> Option<String> {
        match &mut self.last {
            Some((last, at, recurred)) if last == text => {
                *recurred += 1;
                if now.duration_since(*at) < REPEAT_EVERY {
                    return None;
                }
                let line = format!(
                    "{text} (again {} times in the last {} s)",
                    recurred,
                    now.duration_since(*at).as_secs()
                );
                *at = now;
                *recurred = 0;
                Some(line)
            }
            _ => {
                self.last = Some((text.to_owned(), now, 0));
                Some(text.to_owned())
            }
        }
    }
}

/// Undecodable records skipped so far (`--skip-undecodable`).
#[derive(Debug, Default)]
pub(super) struct Skipped {
    pub(super) records: u64,
    /// When the partitions were last examined.
    examined_at: Option<Instant>,
    /// The ranges the last examination found (partition, first offset): one is acted on
    /// only when the next finds it again, so that another reason for the same error code
    /// (an answer too large for the settings also says BadMessage) has reached the loop
    /// first.
    suspects: Vec<(i32, i64)>,
}

impl<R: Role> GroupConsumer<R> {
    /// After an undecodable error: finds the partitions stuck on records that cannot be
    /// decoded, then stops naming them or skips them, as `--skip-undecodable` says.
    pub(super) fn undecodable(&self, error: &KafkaError) -> Result<(), ConsumerError> {
        {
            let mut shared = self.lock();
            if shared.failure.is_some() {
                return Ok(());
            }
            let due = shared
                .skipped
                .examined_at
                .is_none_or(|at| at.elapsed() >= EXAMINE_EVERY);
            if !due {
                return Ok(());
            }
            shared.skipped.examined_at = Some(Instant::now());
        }
        let reading = self.lock().ledger.not_at_end();
        let suspects = std::mem::take(&mut self.lock().skipped.suspects);
        let mut found = Vec::new();
        let Ok(positions) = self.consumer().position() else {
            return Ok(());
        };
        let history = &self.consumer().context().history;
        for partition in reading {
            let Some(Offset::Offset(from)) = positions
                .find_partition(&self.topic, partition)
                .map(|e| e.offset())
            else {
                continue;
            };
            let Ok((_, end)) = history.bounds_within(partition, TOPIC_GONE_AFTER) else {
                continue;
            };
            let mut until = from;
            while until < end && until - from < MAX_PROBES {
                match history.probe(partition, until) {
                    Probe::Undecodable => until += 1,
                    Probe::Decodable | Probe::Unknown => break,
                }
            }
            if until == from {
                continue;
            }
            found.push((partition, from));
            if !suspects.contains(&(partition, from)) {
                continue;
            }
            if !self.options.skip_undecodable {
                return Err(ConsumerError::Undecodable {
                    topic: self.topic.clone(),
                    partition,
                    from,
                    until,
                    reason: error.to_string(),
                });
            }
            self.skip(partition, from, until, error)?;
        }
        self.lock().skipped.suspects = found;
        Ok(())
    }

    /// Seeks `partition` past `from..until` and counts the range as handled, so that its
    /// offsets are committed with the next checkpoint and it is not skipped again.
    fn skip(
        &self,
        partition: i32,
        from: i64,
        until: i64,
        error: &KafkaError,
    ) -> Result<(), ConsumerError> {
        self.consumer()
            .seek(
                &self.topic,
                partition,
                Offset::Offset(until),
                Duration::from_secs(1),
            )
            .map_err(ConsumerError::Kafka)?;
        let mut shared = self.lock();
        shared.ledger.handled(partition, until - 1);
        shared.skipped.records += (until - from) as u64;
        shared.out.report(Activity::Notice(format!(
            "skipped partition {partition} offsets {from} to {} ({} records): they cannot be \
             decoded ({error}); --skip-undecodable",
            until - 1,
            until - from
        )));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_error_is_told_once_then_with_a_count_every_five_seconds() {
        let mut repeats = Repeats::default();
        let t0 = Instant::now();
        assert_eq!(repeats.tell("bad", t0).as_deref(), Some("bad"));
        for i in 1..=17_000 {
            let at = t0 + Duration::from_micros(i * 100);
            assert_eq!(repeats.tell("bad", at), None);
        }
        assert_eq!(
            repeats.tell("bad", t0 + Duration::from_secs(5)).as_deref(),
            Some("bad (again 17001 times in the last 5 s)")
        );
        // Another error is told at once, and the first again as new after it.
        assert_eq!(
            repeats
                .tell("other", t0 + Duration::from_secs(6))
                .as_deref(),
            Some("other")
        );
        assert_eq!(
            repeats.tell("bad", t0 + Duration::from_secs(6)).as_deref(),
            Some("bad")
        );
    }
}
