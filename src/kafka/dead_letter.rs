//! The dead-letter topic `<topic>.dlq`: where order-processor puts records it cannot process
//! (malformed ones) or must not (lifecycle violations), byte for byte, with headers that say
//! why and where each came from, so that someone can inspect and replay them.

use std::time::{Duration, Instant};

use rdkafka::message::{Header, OwnedHeaders};

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
/// Header, only on a cut-down copy: the original value's size in bytes.
pub(crate) const HEADER_TRUNCATED: &str = "orderflow.truncated";

/// Values larger than this are dead-lettered cut down to this size (with
/// [`HEADER_TRUNCATED`]): Kafka's default limit is about 1 MB per record, and a dead letter
/// that can never be delivered would stop the processor at every restart.
pub(crate) const MAX_DEAD_LETTER_VALUE: usize = 1_000_000;

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
}

/// Writes dead letters and confirms their delivery before the source offsets are committed.
pub(crate) struct DeadLetters {
    producer: OrderProducer,
    group: String,
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
        let mut headers = OwnedHeaders::new()
            .insert(header(HEADER_REASON, reason))
            .insert(header(HEADER_ERROR, error))
            .insert(header(HEADER_SOURCE_TOPIC, record.topic))
            .insert(header(HEADER_SOURCE_PARTITION, &partition))
            .insert(header(HEADER_SOURCE_OFFSET, &offset))
            .insert(header(HEADER_GROUP, &self.group));
        if let Some(timestamp) = &timestamp {
            headers = headers.insert(header(HEADER_SOURCE_TIMESTAMP, timestamp));
        }
        let mut value = record.value;
        let original_size;
        if let Some(v) = value.filter(|v| v.len() > MAX_DEAD_LETTER_VALUE) {
            original_size = v.len().to_string();
            headers = headers.insert(header(HEADER_TRUNCATED, &original_size));
            value = Some(&v[..MAX_DEAD_LETTER_VALUE]);
        }
        self.producer
            .send_record(record.key, value, headers)
            .map_err(|reason| DeadLetterError::Producer {
                topic: self.topic().to_owned(),
                reason,
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
