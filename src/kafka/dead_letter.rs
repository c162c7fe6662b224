//! The dead-letter topic `<topic>.dlq`: where order-processor puts records it cannot process
//! (malformed ones) or must not (lifecycle violations), byte for byte, with headers that say
//! why and where each came from, so that someone can inspect and replay them.

use std::time::{Duration, Instant};

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::types::RDKafkaErrorCode;

use super::producer::{OrderProducer, ProducerError};
use crate::config::KafkaSettings;
use crate::roles::{ConsumedRecord, DeadLetterSink, RoleError};

/// Header: a short, stable name of the problem (`not-json`, `skipped-status`, …).
pub(crate) const HEADER_REASON: &str = "orderflow.reason";
/// Header: the problem in words.
pub(crate) const HEADER_ERROR: &str = "orderflow.error";
/// Headers: where the record came from.
pub(crate) const HEADER_SOURCE_TOPIC: &str = "orderflow.source.topic";
pub(crate) const HEADER_SOURCE_PARTITION: &str = "orderflow.source.partition";
pub(crate) const HEADER_SOURCE_OFFSET: &str = "orderflow.source.offset";
/// Header: the original record's Kafka timestamp (ms since the epoch), when it had one.
pub(crate) const HEADER_SOURCE_TIMESTAMP: &str = "orderflow.source.timestamp";
/// Header: the consumer group that dead-lettered it.
pub(crate) const HEADER_GROUP: &str = "orderflow.group";
/// Header, only on a copy whose value was cut down: the original value's size in bytes.
pub(crate) const HEADER_TRUNCATED: &str = "orderflow.truncated";
/// Header, only on a copy whose key was cut down: the original key's size in bytes.
pub(crate) const HEADER_KEY_TRUNCATED: &str = "orderflow.key.truncated";

/// A dead letter's key, value and headers together stay within this many bytes, under
/// Kafka's default limit of 1,048,588 bytes a batch with room for the batch's own: a dead
/// letter that can never be delivered would stop the processor at every restart (a record
/// with a 17 MB key did).
pub(crate) const MAX_DEAD_LETTER_BYTES: usize = 1_000_000;

/// Keys longer than this are cut to it first, so that a huge key leaves the value (what
/// someone inspecting the dead letter needs most) its room.
pub(crate) const MAX_DEAD_LETTER_KEY: usize = 16_384;

/// The `orderflow.error` header is cut to this many bytes: a problem's words may quote the
/// record.
const MAX_ERROR_HEADER: usize = 4_096;

/// The key and value a dead letter carries: the record's, or the start of each when the
/// record is too large to dead-letter whole, with their original sizes.
#[derive(Debug, PartialEq, Eq)]
struct CutDown<'a> {
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    /// The key's and the value's original sizes, for those that were cut.
    key_was: Option<usize>,
    value_was: Option<usize>,
}

/// Cuts `key` and `value` so that they and `headers` bytes of headers (the truncation
/// headers included) fit in [`MAX_DEAD_LETTER_BYTES`].
fn cut_down<'a>(key: Option<&'a [u8]>, value: Option<&'a [u8]>, headers: usize) -> CutDown<'a> {
    let key_was = key
        .filter(|k| k.len() > MAX_DEAD_LETTER_KEY)
        .map(<[u8]>::len);
    let key = key.map(|k| &k[..k.len().min(MAX_DEAD_LETTER_KEY)]);
    let room = MAX_DEAD_LETTER_BYTES.saturating_sub(headers + key.map_or(0, <[u8]>::len));
    let value_was = value.filter(|v| v.len() > room).map(<[u8]>::len);
    let value = value.map(|v| &v[..v.len().min(room)]);
    CutDown {
        key,
        value,
        key_was,
        value_was,
    }
}

/// The start of `text`, at most `max` bytes, cut at a character boundary.
fn cut_text(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The dead-letter topic of `topic`.
pub(crate) fn dead_letter_topic(topic: &str) -> String {
    format!("{topic}.dlq")
}

/// Why dead letters could not be written; the records stay uncommitted and are read again.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DeadLetterError {
    // Not `source`: the reason is part of this message, and a source would print it again
    // in the error chain.
    #[error("cannot write to the dead-letter topic {topic}: {reason}")]
    Producer {
        topic: String,
        reason: ProducerError,
    },
    #[error(
        "{failed} record(s) could not be written to the dead-letter topic {topic} ({reason}); \
         stopping without committing them, so they are read again after a restart"
    )]
    Undelivered {
        topic: String,
        failed: u64,
        reason: String,
    },
    /// A dead letter cut down to [`MAX_DEAD_LETTER_BYTES`] was still too large: the topic's
    /// own limit is lower, and no restart gets past it until someone raises it.
    #[error(
        "the dead-letter topic {topic} refused {failed} dead letter(s) as too large, although \
         each was cut to at most {max} bytes: the topic's max.message.bytes (or a -X \
         message.max.bytes) is lower than Kafka's default. Raise it (kafka-configs.sh --bootstrap-server {brokers} --alter \
         --entity-type topics --entity-name {topic} --add-config max.message.bytes=1048588) \
         and start order-processor again: the records were not committed and are read again",
        max = human_bytes(MAX_DEAD_LETTER_BYTES)
    )]
    TooLarge {
        topic: String,
        brokers: String,
        failed: u64,
    },
}

fn human_bytes(n: usize) -> String {
    crate::report::human::count(n as u64)
}

/// Writes dead letters and confirms their delivery before the source offsets are committed.
pub(crate) struct DeadLetters {
    producer: OrderProducer,
    group: String,
    /// The cluster, for the instruction of [`DeadLetterError::TooLarge`].
    brokers: String,
    /// Delivery failures already reported.
    failures_seen: u64,
    /// How long librdkafka tries to deliver a dead letter (message.timeout.ms).
    delivery_timeout: Duration,
}

impl DeadLetters {
    pub fn new(settings: &KafkaSettings, group: &str) -> Result<DeadLetters, DeadLetterError> {
        let topic = dead_letter_topic(&settings.topic);
        let producer = OrderProducer::for_topic(settings, &topic)
            .map_err(|reason| DeadLetterError::Producer { topic, reason })?;
        let timeout_ms = settings
            .properties
            .iter()
            .rev()
            .find(|p| p.key == "message.timeout.ms")
            .and_then(|p| p.value.parse().ok())
            .unwrap_or(super::producer::DEFAULT_MESSAGE_TIMEOUT_MS);
        Ok(DeadLetters {
            producer,
            group: group.to_owned(),
            brokers: settings.bootstrap(),
            failures_seen: 0,
            delivery_timeout: Duration::from_millis(timeout_ms),
        })
    }

    /// Checks at start that the dead-letter topic can be written (it exists, or the cluster
    /// creates topics on first use), rather than failing at the first bad record.
    /// Returns a notice when the cluster created it on first use, just now.
    pub(crate) async fn check(&self) -> Result<Option<String>, DeadLetterError> {
        self.producer
            .check_reachable()
            .await
            .map(|ready| {
                ready.created_on_first_use.then(|| {
                    format!(
                        "dead-letter topic {} did not exist; the cluster created it on first \
                         use, with its default partition count ({})",
                        self.topic(),
                        ready.partitions
                    )
                })
            })
            .map_err(|reason| DeadLetterError::Producer {
                topic: self.topic().to_owned(),
                reason,
            })
    }

    pub(crate) fn topic(&self) -> &str {
        self.producer.topic()
    }

    /// Queues `record` for the dead-letter topic with the reason as headers.
    pub(crate) fn send(
        &self,
        record: &ConsumedRecord<'_>,
        reason: &str,
        error: &str,
    ) -> Result<(), DeadLetterError> {
        let partition = record.partition.to_string();
        let offset = record.offset.to_string();
        let timestamp = record.timestamp_ms.map(|t| t.to_string());
        let error = cut_text(error, MAX_ERROR_HEADER);
        let mut fields = vec![
            (HEADER_REASON, reason),
            (HEADER_ERROR, error),
            (HEADER_SOURCE_TOPIC, record.topic),
            (HEADER_SOURCE_PARTITION, &partition),
            (HEADER_SOURCE_OFFSET, &offset),
            (HEADER_GROUP, &self.group),
        ];
        if let Some(timestamp) = &timestamp {
            fields.push((HEADER_SOURCE_TIMESTAMP, timestamp));
        }
        // Each header costs its key and value and at most 10 bytes of lengths; the two
        // truncation headers are counted whether or not they are needed.
        let header_bytes = fields
            .iter()
            .chain(&[(HEADER_TRUNCATED, "18446744073709551615"); 2])
            .map(|(k, v)| k.len() + v.len() + 10)
            .sum();
        let cut = cut_down(record.key, record.value, header_bytes);
        let key_was = cut.key_was.map(|n| n.to_string());
        let value_was = cut.value_was.map(|n| n.to_string());
        if let Some(size) = &value_was {
            fields.push((HEADER_TRUNCATED, size));
        }
        if let Some(size) = &key_was {
            fields.push((HEADER_KEY_TRUNCATED, size));
        }
        let headers = fields
            .into_iter()
            .fold(OwnedHeaders::new(), |headers, (k, v)| {
                headers.insert(header(k, v))
            });
        self.producer
            .send_record(cut.key, cut.value, headers)
            .map_err(|reason| match reason {
                // The client's own message.max.bytes (-X) is below the cut-down size.
                ProducerError::Send(e)
                    if e.rdkafka_error_code() == Some(RDKafkaErrorCode::MessageSizeTooLarge) =>
                {
                    DeadLetterError::TooLarge {
                        topic: self.topic().to_owned(),
                        brokers: self.brokers.clone(),
                        failed: 1,
                    }
                }
                reason => DeadLetterError::Producer {
                    topic: self.topic().to_owned(),
                    reason,
                },
            })
    }

    /// Waits until every dead letter sent so far is acknowledged; fails if any was not.
    pub(crate) fn flush(&mut self) -> Result<(), DeadLetterError> {
        // librdkafka fails an undeliverable record after message.timeout.ms; wait a little
        // longer than that, so every record ends as delivered or failed.
        let deadline = Instant::now() + self.delivery_timeout + Duration::from_secs(5);
        while self.producer.in_flight() > 0 && Instant::now() < deadline {
            self.producer.flush(Duration::from_millis(100));
        }
        let deliveries = self.producer.deliveries();
        let failed = deliveries.failed();
        if deliveries.too_large() > 0 {
            // Sending it again would be refused again: stop, saying what lets it through.
            return Err(DeadLetterError::TooLarge {
                topic: self.topic().to_owned(),
                brokers: self.brokers.clone(),
                failed: deliveries.too_large(),
            });
        }
        if failed > self.failures_seen || self.producer.in_flight() > 0 {
            let new = failed - self.failures_seen;
            self.failures_seen = failed;
            return Err(DeadLetterError::Undelivered {
                topic: self.topic().to_owned(),
                failed: new.max(self.producer.in_flight()),
                reason: if new > 0 {
                    deliveries.failures_in_words()
                } else {
                    "not acknowledged in time".to_owned()
                },
            });
        }
        Ok(())
    }
}

impl DeadLetterSink for DeadLetters {
    fn topic(&self) -> &str {
        DeadLetters::topic(self)
    }

    fn send(
        &mut self,
        record: &ConsumedRecord<'_>,
        reason: &str,
        error: &str,
    ) -> Result<(), RoleError> {
        Ok(DeadLetters::send(self, record, reason, error)?)
    }

    fn flush(&mut self) -> Result<(), RoleError> {
        Ok(DeadLetters::flush(self)?)
    }
}

fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::topic::TopicError;

    #[test]
    fn a_huge_key_and_value_are_cut_to_what_the_dead_letter_topic_takes() {
        let key = vec![b'k'; 17_000_000];
        let value = vec![b'v'; 17_000_000];
        let cut = cut_down(Some(&key), Some(&value), 500);
        assert_eq!(cut.key.map(<[u8]>::len), Some(MAX_DEAD_LETTER_KEY));
        assert_eq!(cut.key_was, Some(17_000_000));
        assert_eq!(cut.value_was, Some(17_000_000));
        assert_eq!(
            cut.key.unwrap().len() + cut.value.unwrap().len() + 500,
            MAX_DEAD_LETTER_BYTES
        );
    }

    #[test]
    fn a_record_that_fits_is_dead_lettered_whole() {
        let cut = cut_down(Some(b"order-1"), Some(b"{not json"), 500);
        assert_eq!(
            cut,
            CutDown {
                key: Some(b"order-1"),
                value: Some(b"{not json"),
                key_was: None,
                value_was: None,
            }
        );
        // A value exactly at the room left is not cut; one byte more is.
        let room = MAX_DEAD_LETTER_BYTES - 500 - 7;
        let value = vec![b'v'; room + 1];
        assert_eq!(
            cut_down(Some(b"order-1"), Some(&value[..room]), 500).value_was,
            None
        );
        assert_eq!(
            cut_down(Some(b"order-1"), Some(&value), 500).value_was,
            Some(room + 1)
        );
        let no_key = cut_down(None, None, 500);
        assert_eq!((no_key.key, no_key.value), (None, None));
    }

    #[test]
    fn a_long_error_is_cut_at_a_character_boundary() {
        let error = "é".repeat(3_000);
        let cut = cut_text(&error, MAX_ERROR_HEADER);
        assert!(cut.len() <= MAX_ERROR_HEADER && error.starts_with(cut));
        assert_eq!(cut_text("short", MAX_ERROR_HEADER), "short");
    }

    #[test]
    fn the_reason_is_said_once_in_the_error_chain() {
        // main prints errors with `{:#}`, which appends every source: a reason that is both
        // in the message and a source was printed twice (MEASURED.md, order-processor).
        let error = DeadLetterError::Producer {
            topic: "t.dlq".into(),
            reason: ProducerError::Topic(TopicError::MissingForProducer {
                topic: "t.dlq".into(),
                brokers: "b:1".into(),
                waited: Duration::from_secs(5),
            }),
        };
        let shown = format!("{:#}", anyhow::Error::from(error));
        assert_eq!(shown.matches("does not exist").count(), 1, "{shown}");
    }
}
