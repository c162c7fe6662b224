//! Reading whole topics as a read_committed consumer outside any group: what `orderflow audit
//! payments` compares. Records of open or aborted transactions are not read, as a downstream
//! service of the stage would not see them.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::config::KafkaSettings;
use crate::kafka::client::{ConnectionHealth, close_promptly, process_tag};

/// One record read: its place, key and value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TopicRecord {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Option<Vec<u8>>,
}

/// Why a topic could not be read to its end.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadTopicError {
    #[error("cannot create a Kafka consumer: {0}")]
    Create(KafkaError),
    #[error("cannot read the partitions of topic {topic} on {brokers}: {error}")]
    Metadata {
        topic: String,
        brokers: String,
        error: String,
    },
    #[error("topic {topic} does not exist on {brokers}")]
    Missing { topic: String, brokers: String },
    #[error(
        "topic {topic} was not read to its end within {waited_s} s (partitions {left:?} not \
         finished): is the cluster reachable?"
    )]
    Timeout {
        topic: String,
        waited_s: u64,
        left: Vec<i32>,
    },
}

/// Every committed record of `topic`, partition by partition in offset order, up to the
/// last stable offset of each partition at the time of reading.
pub(crate) fn read_committed(
    settings: &KafkaSettings,
    topic: &str,
    limit: Duration,
) -> Result<Vec<TopicRecord>, ReadTopicError> {
    let config = settings.outsider_config(&[
        // A group id is required for assign(); nothing is ever committed to it.
        ("group.id", &format!("orderflow-check-{}", process_tag())),
        ("enable.auto.commit", "false"),
        ("enable.partition.eof", "true"),
        ("auto.offset.reset", "earliest"),
        ("isolation.level", "read_committed"),
        ("fetch.wait.max.ms", "20"),
        ("log.connection.close", "false"),
    ]);
    let consumer: BaseConsumer<ConnectionHealth> =
        BaseConsumer::from_config_and_context(&config, ConnectionHealth::default())
            .map_err(ReadTopicError::Create)?;
    let records = read_all(&consumer, settings, topic, limit);
    close_promptly(&consumer, Duration::from_secs(1));
    records
}

fn read_all(
    consumer: &BaseConsumer<ConnectionHealth>,
    settings: &KafkaSettings,
    topic: &str,
    limit: Duration,
) -> Result<Vec<TopicRecord>, ReadTopicError> {
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(|error| ReadTopicError::Metadata {
            topic: topic.to_owned(),
            brokers: settings.bootstrap(),
            error: error.to_string(),
        })?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default();
    if partitions.is_empty() {
        return Err(ReadTopicError::Missing {
            topic: topic.to_owned(),
            brokers: settings.bootstrap(),
        });
    }
    let mut list = TopicPartitionList::new();
    for &p in &partitions {
        list.add_partition_offset(topic, p, Offset::Beginning)
            .expect("a valid offset");
    }
    consumer
        .assign(&list)
        .map_err(|error| ReadTopicError::Metadata {
            topic: topic.to_owned(),
            brokers: settings.bootstrap(),
            error: error.to_string(),
        })?;
    let mut left: BTreeSet<i32> = partitions.into_iter().collect();
    let mut records = Vec::new();
    let deadline = Instant::now() + limit;
    while !left.is_empty() {
        if Instant::now() >= deadline {
            return Err(ReadTopicError::Timeout {
                topic: topic.to_owned(),
                waited_s: limit.as_secs(),
                left: left.into_iter().collect(),
            });
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => records.push(TopicRecord {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
            }),
            Some(Err(KafkaError::PartitionEOF(p))) => {
                left.remove(&p);
            }
            Some(Err(error)) => tracing::debug!(%error, topic, "reading"),
            None => {}
        }
    }
    records.sort_by_key(|r| (r.partition, r.offset));
    Ok(records)
}
