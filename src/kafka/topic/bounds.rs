//! The bounds of a topic's partitions (`audit verify --against-topic`): the earliest offset
//! Kafka still holds and the next it will write, per partition.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

use crate::audit::verify::TopicPartitionBounds;
use crate::config::KafkaSettings;

/// Why the bounds of a topic's partitions could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BoundsError {
    #[error("cannot create a Kafka client: {0}")]
    Create(rdkafka::error::KafkaError),
    // The reasons are part of the message; as sources they would be printed twice.
    #[error(
        "cannot read topic {topic} on {brokers}: {reason}. Is the cluster reachable (-b), and \
         is -t the topic storage reads?"
    )]
    Unreadable {
        topic: String,
        brokers: String,
        reason: String,
    },
}

/// The earliest and the next offset of every partition of the settings' topic, asked of the
/// cluster (Metadata, then ListOffsets per partition).
pub(crate) fn partition_bounds(
    settings: &KafkaSettings,
    timeout: Duration,
) -> Result<Vec<TopicPartitionBounds>, BoundsError> {
    let config = settings.outsider_config(&[
        ("group.id", "orderflow-audit-verify"),
        ("enable.auto.commit", "false"),
        ("log.connection.close", "false"),
    ]);
    let consumer: BaseConsumer = config.create().map_err(BoundsError::Create)?;
    let unreadable = |reason: String| BoundsError::Unreadable {
        topic: settings.topic.clone(),
        brokers: settings.bootstrap(),
        reason,
    };
    let metadata = consumer
        .fetch_metadata(Some(&settings.topic), timeout)
        .map_err(|e| unreadable(e.to_string()))?;
    let topic = metadata
        .topics()
        .iter()
        .find(|t| t.name() == settings.topic)
        .ok_or_else(|| unreadable("the cluster did not describe it".to_owned()))?;
    if let Some(error) = topic.error() {
        return Err(unreadable(RDKafkaErrorCode::from(error).to_string()));
    }
    if topic.partitions().is_empty() {
        return Err(unreadable("it has no partitions".to_owned()));
    }
    let mut bounds = Vec::new();
    for partition in topic.partitions() {
        let (low, high) = consumer
            .fetch_watermarks(&settings.topic, partition.id(), timeout)
            .map_err(|e| unreadable(format!("partition {}: {e}", partition.id())))?;
        bounds.push(TopicPartitionBounds {
            partition: partition.id(),
            low,
            high,
        });
    }
    bounds.sort_by_key(|b| b.partition);
    Ok(bounds)
}
