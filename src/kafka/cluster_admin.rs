//! What `orderflow cluster` asks of the Kafka it started: that every node has registered, that
//! the order topics exist (created with the AdminClient), and how each partition is led and
//! replicated now. Plain values out; the command prints them.

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use serde::Serialize;

/// Why the cluster could not be set up or described.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClusterAdminError {
    #[error("cannot create a Kafka client for {bootstrap}: {source}")]
    Client {
        bootstrap: String,
        #[source]
        source: KafkaError,
    },
    #[error(
        "only {registered} of {nodes} node(s) registered with the cluster at {bootstrap} within \
         {} s; see the nodes' server.log",
        REGISTER_TIMEOUT.as_secs()
    )]
    NotRegistered {
        bootstrap: String,
        nodes: usize,
        registered: usize,
    },
    #[error("creating topic {topic} failed: {reason}")]
    Create { topic: String, reason: String },
    #[error(
        "topic {topic} has no leader for every partition within {} s",
        REGISTER_TIMEOUT.as_secs()
    )]
    NoLeaders { topic: String },
    #[error("cannot read the cluster's metadata from {bootstrap}: {source}")]
    Metadata {
        bootstrap: String,
        #[source]
        source: KafkaError,
    },
}

/// How long nodes that logged their start may take to register, and new partitions to get
/// leaders. Seconds on an idle machine; a loaded one starting three JVMs needs more.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(60);

/// A topic `ensure_topic` was asked for, and whether it had to be created.
#[derive(Clone, Debug)]
pub(crate) struct TopicSetUp {
    pub(crate) name: String,
    pub(crate) partitions: i32,
    pub(crate) replication: i32,
    /// False when it was there already (a cluster started again with its data).
    pub(crate) created: bool,
}

/// One partition as the cluster reports it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct PartitionView {
    pub(crate) partition: i32,
    /// The node leading it, or None while it has none (an election, or every replica down).
    pub(crate) leader: Option<i32>,
    pub(crate) replicas: Vec<i32>,
    /// The in-sync replicas: those a write waits for.
    pub(crate) isr: Vec<i32>,
}

/// What the cluster's metadata says about the nodes and one topic.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ClusterView {
    /// The nodes registered as brokers now.
    pub(crate) brokers: Vec<i32>,
    /// The topic's partitions, or None when the cluster has no such topic.
    pub(crate) partitions: Option<Vec<PartitionView>>,
}

fn metadata_client(bootstrap: &str) -> Result<BaseConsumer, ClusterAdminError> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        // A node that is down is expected here; its refused connections are not news.
        .set("log_level", "0")
        .set("log.connection.close", "false")
        .create()
        .map_err(|source| ClusterAdminError::Client {
            bootstrap: bootstrap.to_owned(),
            source,
        })
}

/// Waits until the metadata lists `nodes` brokers: a node that logged its start may not be
/// registered (unfenced) yet, and a topic replicated three times needs all three.
pub(crate) fn wait_for_brokers(bootstrap: &str, nodes: usize) -> Result<(), ClusterAdminError> {
    let consumer = metadata_client(bootstrap)?;
    let deadline = Instant::now() + REGISTER_TIMEOUT;
    let mut registered = 0;
    while Instant::now() < deadline {
        if let Ok(metadata) = consumer.fetch_metadata(None, Duration::from_secs(5)) {
            registered = metadata.brokers().len();
            if registered >= nodes {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(ClusterAdminError::NotRegistered {
        bootstrap: bootstrap.to_owned(),
        nodes,
        registered,
    })
}

/// Creates `topic` with `partitions` partitions replicated `replication` times (and, from
/// three replicas, min.insync.replicas 2) unless it exists, then waits until every partition
/// has a leader.
pub(crate) async fn ensure_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    replication: i32,
) -> Result<TopicSetUp, ClusterAdminError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "3")
        .create()
        .map_err(|source| ClusterAdminError::Client {
            bootstrap: bootstrap.to_owned(),
            source,
        })?;
    let mut new = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
    if replication >= 3 {
        new = new.set("min.insync.replicas", "2");
    }
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results =
        admin
            .create_topics([&new], &options)
            .await
            .map_err(|e| ClusterAdminError::Create {
                topic: topic.to_owned(),
                reason: e.to_string(),
            })?;
    let mut created = true;
    for result in results {
        match result {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => created = false,
            Err((name, code)) => {
                return Err(ClusterAdminError::Create {
                    topic: name,
                    reason: code.to_string(),
                });
            }
        }
    }
    let (bootstrap, name) = (bootstrap.to_owned(), topic.to_owned());
    let wait = tokio::task::spawn_blocking(move || wait_for_leaders(&bootstrap, &name));
    wait.await.map_err(|e| ClusterAdminError::Create {
        topic: topic.to_owned(),
        reason: e.to_string(),
    })??;
    Ok(TopicSetUp {
        name: topic.to_owned(),
        partitions,
        replication,
        created,
    })
}

fn wait_for_leaders(bootstrap: &str, topic: &str) -> Result<(), ClusterAdminError> {
    let consumer = metadata_client(bootstrap)?;
    let deadline = Instant::now() + REGISTER_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(metadata) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5))
            && let Some(t) = metadata.topics().first()
            && t.error().is_none()
            && !t.partitions().is_empty()
            && t.partitions()
                .iter()
                .all(|p| p.leader() >= 0 && p.error().is_none())
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(ClusterAdminError::NoLeaders {
        topic: topic.to_owned(),
    })
}

/// The registered brokers, and `topic`'s partitions with their leaders and in-sync replicas.
pub(crate) fn describe(bootstrap: &str, topic: &str) -> Result<ClusterView, ClusterAdminError> {
    let consumer = metadata_client(bootstrap)?;
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .map_err(|source| ClusterAdminError::Metadata {
            bootstrap: bootstrap.to_owned(),
            source,
        })?;
    let mut brokers: Vec<i32> = metadata.brokers().iter().map(|b| b.id()).collect();
    brokers.sort_unstable();
    let partitions = metadata
        .topics()
        .first()
        .filter(|t| t.error().is_none() && !t.partitions().is_empty())
        .map(|t| {
            let mut partitions: Vec<PartitionView> = t
                .partitions()
                .iter()
                .map(|p| PartitionView {
                    partition: p.id(),
                    leader: (p.leader() >= 0).then_some(p.leader()),
                    replicas: p.replicas().to_vec(),
                    isr: p.isr().to_vec(),
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            partitions
        });
    Ok(ClusterView {
        brokers,
        partitions,
    })
}
