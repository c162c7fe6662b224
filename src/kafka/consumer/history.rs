//! [`History`]: reading a partition outside the group, on a connection of its own.

use std::time::{Duration, Instant};

use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};

use super::{CLUSTER_TIMEOUT, POLL_TIMEOUT};
use crate::config::KafkaSettings;
use crate::kafka::client::{ConnectionHealth, close_promptly, process_tag};
use crate::roles::{ConsumedRecord, Replay, RoleError};

impl<'a> ConsumedRecord<'a> {
    pub(crate) fn from_message(message: &'a impl Message) -> ConsumedRecord<'a> {
        ConsumedRecord {
            topic: message.topic(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key(),
            value: message.payload(),
            timestamp_ms: message.timestamp().to_millis(),
        }
    }
}

/// Reads partitions outside the group, on a connection of its own: how a role rebuilds the
/// state that belongs to a partition it was just given, and how the runtime asks for a
/// partition's bounds. (On the group consumer's own connection those requests would queue
/// behind its long-polling fetches.)
pub(crate) struct History {
    reader: BaseConsumer<ConnectionHealth>,
    topic: String,
}

impl Drop for History {
    fn drop(&mut self) {
        close_promptly(&self.reader, Duration::from_secs(1));
    }
}

impl History {
    pub(super) fn new(settings: &KafkaSettings) -> KafkaResult<History> {
        let config = settings.outsider_config(&[
            // A group id is required for assign(); nothing is ever committed to it.
            ("group.id", &format!("orderflow-history-{}", process_tag())),
            ("enable.auto.commit", "false"),
            ("enable.partition.eof", "true"),
            // If retention removed `from` meanwhile, start at what is left.
            ("auto.offset.reset", "earliest"),
            ("log.connection.close", "false"),
        ]);
        Ok(History {
            reader: BaseConsumer::from_config_and_context(&config, ConnectionHealth::default())?,
            topic: settings.topic.clone(),
        })
    }

    /// The earliest offset still in `partition` and its end (the next offset to be written).
    pub(crate) fn bounds(&self, partition: i32) -> KafkaResult<(i64, i64)> {
        self.bounds_within(partition, CLUSTER_TIMEOUT)
    }

    pub(super) fn bounds_within(
        &self,
        partition: i32,
        timeout: Duration,
    ) -> KafkaResult<(i64, i64)> {
        self.reader
            .fetch_watermarks(&self.topic, partition, timeout)
    }

    /// Asks the cluster who leads the topic's partitions now. This reader's requests go to
    /// the leaders it last heard of, and it hears of new ones only when it asks: after a
    /// failover it kept asking the dead broker (and then one that answered NotLeader) for
    /// 20 s while the group consumer already read from the new leader.
    pub(super) fn refresh_leaders(&self, timeout: Duration) {
        if let Err(e) = self.reader.fetch_metadata(Some(&self.topic), timeout) {
            tracing::debug!(error = %e, "history reader: metadata refresh");
        }
    }

    fn read_until(
        &self,
        until: i64,
        visit: &mut dyn FnMut(&ConsumedRecord<'_>),
    ) -> KafkaResult<u64> {
        let mut visited = 0;
        let mut idle_since = Instant::now();
        loop {
            match self.reader.poll(POLL_TIMEOUT) {
                Some(Ok(message)) => {
                    idle_since = Instant::now();
                    if message.offset() >= until {
                        return Ok(visited);
                    }
                    visit(&ConsumedRecord::from_message(&message));
                    visited += 1;
                    if message.offset() + 1 >= until {
                        return Ok(visited);
                    }
                }
                // The partition ends before `until` (records were deleted meanwhile).
                Some(Err(KafkaError::PartitionEOF(_))) => return Ok(visited),
                Some(Err(e @ KafkaError::MessageConsumptionFatal(_))) => return Err(e),
                // Transport errors and the like: librdkafka retries; the idle timeout below
                // ends a wait that goes nowhere.
                Some(Err(e)) => tracing::debug!(error = %e, "history reader"),
                None if idle_since.elapsed() > CLUSTER_TIMEOUT => {
                    return Err(KafkaError::MessageConsumption(
                        RDKafkaErrorCode::OperationTimedOut,
                    ));
                }
                None => {}
            }
        }
    }
}

/// What reading one offset found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Probe {
    /// A record at or after the offset was read.
    Decodable,
    /// The batch holding it cannot be decoded.
    Undecodable,
    /// No answer, or the end of the partition.
    Unknown,
}

impl History {
    /// Reads `offset` of `partition` (at most [`PROBE_TIMEOUT`]) to tell whether it decodes.
    pub(super) fn probe(&self, partition: i32, offset: i64) -> Probe {
        const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
        while self.reader.poll(Duration::ZERO).is_some() {}
        let mut assignment = TopicPartitionList::new();
        if assignment
            .add_partition_offset(&self.topic, partition, Offset::Offset(offset))
            .is_err()
            || self.reader.assign(&assignment).is_err()
        {
            return Probe::Unknown;
        }
        let deadline = Instant::now() + PROBE_TIMEOUT;
        let found = loop {
            match self.reader.poll(POLL_TIMEOUT) {
                Some(Ok(_)) => break Probe::Decodable,
                Some(Err(e)) if super::undecodable::is_undecodable(&e) => {
                    break Probe::Undecodable;
                }
                Some(Err(KafkaError::PartitionEOF(_))) => break Probe::Unknown,
                _ if Instant::now() >= deadline => break Probe::Unknown,
                _ => {}
            }
        };
        let _ = self.reader.unassign();
        found
    }
}

/// Its errors are the [`KafkaError`]s themselves, boxed: the take-over tells the cluster's
/// weather (retried) from a role's own failure by downcasting to it.
impl Replay for History {
    fn replay(
        &self,
        partition: i32,
        from: i64,
        until: i64,
        visit: &mut dyn FnMut(&ConsumedRecord<'_>),
    ) -> Result<u64, RoleError> {
        if from >= until {
            return Ok(0);
        }
        // Errors queued since the last replay (an outage long over) are not about this one.
        while self.reader.poll(Duration::ZERO).is_some() {}
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset(&self.topic, partition, Offset::Offset(from))?;
        self.reader.assign(&assignment)?;
        let result = self.read_until(until, visit);
        self.reader.unassign()?;
        Ok(result?)
    }
}
