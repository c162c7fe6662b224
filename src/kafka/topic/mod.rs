//! Whether a topic is there to use, asked of the cluster's metadata the same way by every
//! command (the producer, the dead-letter topic, the consumer roles).
//!
//! One answer is not enough. On a cluster that creates topics on first use (Kafka's default,
//! `auto.create.topics.enable=true`) the very metadata request that makes Kafka create a
//! topic is answered UNKNOWN_TOPIC_OR_PARTITION, and the topic exists a moment later; a new
//! topic's partitions then need a moment to elect their leaders. So an unknown topic is asked
//! about again for [`APPEAR_WAIT`], and only a topic that stays missing is reported missing,
//! with what is known about why.
//!
//! Producers' metadata requests ask Kafka to create a missing topic; librdkafka's consumers'
//! do not (`allow.auto.create.topics=false`). orderflow keeps it that way: a topic created on
//! first use gets the cluster's default partition count (`num.partitions`, 1 on a stock
//! Kafka), and a consumer that created the topic would create it empty, with whatever count
//! that is. A consumer that finds no topic says how to create it instead.

mod bounds;

use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::client::Client;
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::watch;

use crate::report::activity::Connection;
pub(crate) use bounds::partition_bounds;

/// How long a topic the cluster does not know may take to appear before it counts as
/// missing. Kafka creates a topic on first use within a fraction of a second (about 0.2 s on
/// one KRaft node); this leaves room for a busy machine or a larger cluster.
pub(crate) const APPEAR_WAIT: Duration = Duration::from_secs(5);

/// How long one metadata request may take before the next try: short, so that an outage
/// reported meanwhile by the error callback (served by these same calls) ends the wait early.
const ASK_SLICE: Duration = Duration::from_millis(500);

/// The pause between two questions about a topic that is not ready yet.
const ASK_AGAIN: Duration = Duration::from_millis(200);

/// The partition count the lessons are written for (scaling to three members).
pub(crate) const LESSON_PARTITIONS: usize = 3;

/// What one metadata answer says about the topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TopicAnswer {
    /// It exists and every partition has a leader.
    Ready { partitions: usize },
    /// UNKNOWN_TOPIC_OR_PARTITION: not there (yet).
    Unknown,
    /// It exists but is not usable yet: no partitions listed, or a partition without a leader
    /// (a new topic electing its leaders, or a broker down).
    Settling { partitions: usize, reason: String },
    /// INVALID_TOPIC_EXCEPTION: the cluster refuses the name itself.
    InvalidName,
    /// TOPIC_AUTHORIZATION_FAILED: the credentials may not use the topic.
    NotAuthorized,
    /// Any other error, asked again until the time is up.
    Other { reason: String },
}

/// One partition as a metadata answer lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PartitionAnswer {
    pub(crate) leader: i32,
    pub(crate) error: Option<RDKafkaErrorCode>,
}

impl TopicAnswer {
    /// Classifies the cluster's answer about one topic: its error, and its partitions.
    pub(crate) fn classify(
        error: Option<RDKafkaErrorCode>,
        partitions: &[PartitionAnswer],
    ) -> Self {
        match error {
            Some(RDKafkaErrorCode::UnknownTopicOrPartition) => return TopicAnswer::Unknown,
            Some(RDKafkaErrorCode::InvalidTopic) => return TopicAnswer::InvalidName,
            Some(RDKafkaErrorCode::TopicAuthorizationFailed) => return TopicAnswer::NotAuthorized,
            // Older brokers answer a topic they are creating this way.
            Some(RDKafkaErrorCode::LeaderNotAvailable) => {
                return TopicAnswer::Settling {
                    partitions: partitions.len(),
                    reason: "its partitions have no leader yet".to_owned(),
                };
            }
            Some(code) => {
                return TopicAnswer::Other {
                    reason: code.to_string(),
                };
            }
            None => {}
        }
        if partitions.is_empty() {
            return TopicAnswer::Settling {
                partitions: 0,
                reason: "the cluster lists no partitions for it".to_owned(),
            };
        }
        let leaderless: Vec<usize> = partitions
            .iter()
            .enumerate()
            .filter(|(_, p)| p.leader < 0 || p.error.is_some())
            .map(|(i, _)| i)
            .collect();
        if leaderless.is_empty() {
            TopicAnswer::Ready {
                partitions: partitions.len(),
            }
        } else {
            TopicAnswer::Settling {
                partitions: partitions.len(),
                reason: format!(
                    "{} of its {} partitions have no leader",
                    leaderless.len(),
                    partitions.len()
                ),
            }
        }
    }
}

/// The questions [`wait_for_topic`] asks; a Kafka client answers them, tests script them.
pub(crate) trait TopicMetadata {
    /// The cluster's answer about `topic`, or None when none came within `timeout`.
    fn describe_topic(&self, topic: &str, timeout: Duration) -> Option<TopicAnswer>;
    /// Every topic the cluster has, or None without an answer.
    fn topic_names(&self, timeout: Duration) -> Option<Vec<String>>;
}

impl<C: ClientContext> TopicMetadata for Client<C> {
    fn describe_topic(&self, topic: &str, timeout: Duration) -> Option<TopicAnswer> {
        let metadata = self.fetch_metadata(Some(topic), timeout).ok()?;
        let answer = metadata.topics().iter().find(|t| t.name() == topic)?;
        let partitions: Vec<PartitionAnswer> = answer
            .partitions()
            .iter()
            .map(|p| PartitionAnswer {
                leader: p.leader(),
                error: p.error().map(RDKafkaErrorCode::from),
            })
            .collect();
        Some(TopicAnswer::classify(
            answer.error().map(RDKafkaErrorCode::from),
            &partitions,
        ))
    }

    fn topic_names(&self, timeout: Duration) -> Option<Vec<String>> {
        let metadata = self.fetch_metadata(None, timeout).ok()?;
        Some(
            metadata
                .topics()
                .iter()
                .map(|t| t.name().to_owned())
                .collect(),
        )
    }
}

/// How long a producer asks, before it starts, whether its topic is there: a cluster that does
/// not answer that soon is found out by the producer's own wait.
pub(crate) const EXISTED_WAIT: Duration = Duration::from_secs(1);

/// Whether `topic` exists, asked with a request that cannot create it: the list of every
/// topic (a metadata request that names no topic, which no cluster answers by creating one).
/// The producer asks it itself, before it names its topic: its request for a named topic
/// would ask the cluster to create it, and could reach the cluster (under load) before any
/// other client's question, hiding that the topic was created just now. None when the cluster
/// did not answer within `timeout`, or `health` says it cannot be reached (the producer's
/// own wait then says why).
///
/// A topic these credentials may not describe is not listed, so it counts as missing here;
/// the producer's own request then answers "not authorized", which is what is reported.
pub(crate) fn existed_before(
    cluster: &dyn TopicMetadata,
    topic: &str,
    health: &watch::Receiver<Connection>,
    timeout: Duration,
) -> Option<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || !health.borrow().is_ok() {
            return None;
        }
        let asked = Instant::now();
        if let Some(names) = cluster.topic_names(left.min(EXISTED_SLICE)) {
            return Some(names.iter().any(|name| name == topic));
        }
        // A request that fails at once (no broker up yet) must not make this a busy loop.
        if asked.elapsed() < EXISTED_PAUSE {
            std::thread::sleep(EXISTED_PAUSE.min(left));
        }
    }
}

/// One try of [`existed_before`]: short, so that a cluster found unreachable meanwhile (a
/// refused connection is reported within a few hundred milliseconds) ends the question.
const EXISTED_SLICE: Duration = Duration::from_millis(100);

/// The least time between two tries of [`existed_before`].
const EXISTED_PAUSE: Duration = Duration::from_millis(20);

/// A topic ready to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReadyTopic {
    pub(crate) partitions: usize,
    /// Whether the first answer was "unknown" and the topic appeared while we asked: the
    /// cluster created it on first use, just now.
    pub(crate) created_on_first_use: bool,
}

/// Who needs the topic: the message for a missing one depends on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TopicUser {
    /// A producer (its metadata requests ask the cluster to create the topic).
    Producer,
    /// A consumer role (its metadata requests do not).
    Consumer,
}

/// Why a topic cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error(
        "topic {topic} does not exist on {brokers}: it did not appear within {waited_s} s of \
         asking, so this cluster does not seem to create topics on first use (Kafka's \
         auto.create.topics.enable). Create it:\n  {create}",
        waited_s = waited.as_secs(),
        create = create_command(brokers, topic)
    )]
    MissingForProducer {
        topic: String,
        brokers: String,
        waited: Duration,
    },
    #[error(
        "topic {topic} does not exist on {brokers} (asked for {waited_s} s). A consumer does not \
         create topics: create it with {partitions} partitions\n  {create}\nor start \
         `orderflow produce` first (on a cluster that creates topics on first use, Kafka's \
         default, that creates it, with the cluster's default partition count)",
        waited_s = waited.as_secs(),
        partitions = LESSON_PARTITIONS,
        create = create_command(brokers, topic)
    )]
    MissingForConsumer {
        topic: String,
        brokers: String,
        waited: Duration,
    },
    #[error(
        "topic {topic} cannot exist on {brokers} beside topic {existing}: Kafka treats '.' and \
         '_' in topic names as the same character, so it never creates {topic}. Use -t \
         {existing}, or a name that differs in more than '.' and '_'"
    )]
    Collides {
        topic: String,
        existing: String,
        brokers: String,
    },
    #[error(
        "{brokers} refuses the topic name \"{topic}\" (Invalid topic): a Kafka topic name is 1 \
         to 249 characters from a-z, A-Z, 0-9, '.', '_' and '-', and is not \".\" or \"..\""
    )]
    InvalidName { topic: String, brokers: String },
    #[error(
        "{brokers} does not allow these credentials to use topic {topic} (topic authorization \
         failed): ask the cluster's administrator for access, or check the -X sasl settings"
    )]
    NotAuthorized { topic: String, brokers: String },
    #[error("topic {topic} on {brokers} is not usable: {reason} (for {waited_s} s)", waited_s = waited.as_secs())]
    Unusable {
        topic: String,
        brokers: String,
        reason: String,
        waited: Duration,
    },
}

/// The command that creates `topic` as the lessons expect it.
pub(crate) fn create_command(brokers: &str, topic: &str) -> String {
    format!(
        "kafka-topics --bootstrap-server {brokers} --create --topic {topic} --partitions {LESSON_PARTITIONS}"
    )
}

/// The command that gives `topic` the partitions the lessons expect.
pub(crate) fn alter_command(brokers: &str, topic: &str) -> String {
    format!(
        "kafka-topics --bootstrap-server {brokers} --alter --topic {topic} --partitions {LESSON_PARTITIONS}"
    )
}

/// Why [`wait_for_topic`] gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TopicWaitError {
    /// The cluster could not be reached or refused us; no answer about the topic.
    Connection(Connection),
    /// The cluster answered, and the topic cannot be used.
    Topic(TopicError),
}

/// How long [`wait_for_topic`] waits for each thing.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Patience {
    /// For any answer at all from the cluster.
    pub(crate) reach: Duration,
    /// For a topic the cluster does not know (or one without leaders) to become usable.
    pub(crate) appear: Duration,
}

/// Asks about `topic` until it is ready, the cluster proves unreachable (`health` says so),
/// or the patience runs out. Blocking.
pub(crate) fn wait_for_topic(
    cluster: &dyn TopicMetadata,
    topic: &str,
    brokers: &str,
    user: TopicUser,
    health: &watch::Receiver<Connection>,
    patience: Patience,
) -> Result<ReadyTopic, TopicWaitError> {
    let started = Instant::now();
    // Since when the cluster has been answering that the topic is not usable (yet).
    let mut not_ready_since: Option<Instant> = None;
    let mut last: Option<TopicAnswer> = None;
    let mut seen_unknown = false;
    let topic_error = |answer: &TopicAnswer, waited: Duration| -> TopicError {
        let (topic, brokers) = (topic.to_owned(), brokers.to_owned());
        match answer {
            TopicAnswer::InvalidName => TopicError::InvalidName { topic, brokers },
            TopicAnswer::NotAuthorized => TopicError::NotAuthorized { topic, brokers },
            TopicAnswer::Unknown => match user {
                TopicUser::Producer => TopicError::MissingForProducer {
                    topic,
                    brokers,
                    waited,
                },
                TopicUser::Consumer => TopicError::MissingForConsumer {
                    topic,
                    brokers,
                    waited,
                },
            },
            TopicAnswer::Settling { reason, .. } | TopicAnswer::Other { reason } => {
                TopicError::Unusable {
                    topic,
                    brokers,
                    reason: reason.clone(),
                    waited,
                }
            }
            TopicAnswer::Ready { .. } => unreachable!("a ready topic is not an error"),
        }
    };
    loop {
        let slice = ASK_SLICE.min(patience.reach.max(patience.appear));
        let answered = cluster.describe_topic(topic, slice);
        if let Some(answer) = &answered {
            match answer {
                TopicAnswer::Ready { partitions } => {
                    tracing::debug!(
                        topic,
                        after_ms = started.elapsed().as_millis() as u64,
                        created_on_first_use = seen_unknown,
                        "topic ready"
                    );
                    return Ok(ReadyTopic {
                        partitions: *partitions,
                        created_on_first_use: seen_unknown,
                    });
                }
                // Nothing changes these by asking again.
                TopicAnswer::InvalidName | TopicAnswer::NotAuthorized => {
                    return Err(TopicWaitError::Topic(topic_error(
                        answer,
                        started.elapsed(),
                    )));
                }
                TopicAnswer::Unknown => seen_unknown = true,
                TopicAnswer::Settling { .. } | TopicAnswer::Other { .. } => {}
            }
            let since = *not_ready_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= patience.appear {
                // Leaders still missing after this long belong to a broker that is down; the
                // client waits for them itself, so the topic can be used.
                if let TopicAnswer::Settling { partitions, .. } = answer
                    && *partitions > 0
                {
                    return Ok(ReadyTopic {
                        partitions: *partitions,
                        created_on_first_use: seen_unknown,
                    });
                }
                if *answer == TopicAnswer::Unknown
                    && let Some(existing) = colliding_topic(cluster, topic, slice)
                {
                    return Err(TopicWaitError::Topic(TopicError::Collides {
                        topic: topic.to_owned(),
                        existing,
                        brokers: brokers.to_owned(),
                    }));
                }
                return Err(TopicWaitError::Topic(topic_error(answer, since.elapsed())));
            }
            last = answered.clone();
        }
        let state = health.borrow().clone();
        if !state.is_ok() {
            return Err(TopicWaitError::Connection(state));
        }
        match (&last, not_ready_since) {
            (None, _) if started.elapsed() >= patience.reach => {
                return Err(TopicWaitError::Connection(Connection::Unreachable {
                    reason: format!("no answer within {} s", patience.reach.as_secs()),
                }));
            }
            // The cluster stopped answering while we waited for the topic.
            (Some(answer), Some(since)) if since.elapsed() >= patience.appear + patience.reach => {
                return Err(TopicWaitError::Topic(topic_error(answer, since.elapsed())));
            }
            _ => {}
        }
        // Also after no answer: a request that fails at once (no broker up) must not make
        // this a busy loop.
        std::thread::sleep(ASK_AGAIN);
    }
}

/// An existing topic whose name equals `topic` once '.' and '_' are taken as one character:
/// Kafka refuses to create `topic` beside it, and answers "unknown" for ever.
fn colliding_topic(cluster: &dyn TopicMetadata, topic: &str, timeout: Duration) -> Option<String> {
    let folded = |name: &str| name.replace('.', "_");
    cluster
        .topic_names(timeout)?
        .into_iter()
        .find(|name| name != topic && folded(name) == folded(topic))
}

#[cfg(test)]
mod tests;
