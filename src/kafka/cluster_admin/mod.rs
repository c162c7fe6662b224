//! What `orderflow cluster` asks of the Kafka it started: that every node has registered, that
//! the order topics exist (created with the AdminClient), how each partition is led and
//! replicated now, which node is the active controller and which coordinates each group.
//! Plain values out; the command prints them.

mod wire;

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

/// One consumer group and the broker coordinating it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct GroupView {
    pub(crate) group: String,
    /// As the coordinator lists it: Stable, Empty, PreparingRebalance, …
    pub(crate) state: String,
    /// The coordinator FindCoordinator names, or None while there is none (its offsets
    /// partition is electing a leader).
    pub(crate) coordinator: Option<i32>,
    /// Why there is none, in Kafka's words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

/// What the cluster says about its nodes, one topic and the groups.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ClusterView {
    /// The nodes registered as brokers now.
    pub(crate) brokers: Vec<i32>,
    /// The node leading the KRaft quorum (the active controller), or why it is not known.
    pub(crate) controller: Result<i32, String>,
    /// The topic's partitions, or None when the cluster has no such topic.
    pub(crate) partitions: Option<Vec<PartitionView>>,
    /// Every group a running broker coordinates, by name; Err: why they could not be listed.
    pub(crate) groups: Result<Vec<GroupView>, String>,
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

/// The registered brokers, `topic`'s partitions with their leaders and in-sync replicas, the
/// active controller and each group's coordinator. `brokers` are the client addresses of the
/// nodes that run, `controllers` their controller listeners, of `nodes` in all.
pub(crate) fn describe(
    brokers: &[String],
    controllers: &[String],
    nodes: usize,
    topic: &str,
) -> Result<ClusterView, ClusterAdminError> {
    let addresses = brokers;
    let bootstrap = addresses.join(",");
    let bootstrap = bootstrap.as_str();
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
        controller: active_controller(controllers, nodes),
        partitions,
        groups: groups(addresses),
    })
}

/// The leader of the KRaft quorum. Only the leader answers DescribeQuorum (a follower says
/// NOT_LEADER_OR_FOLLOWER), so the running controllers are asked in turn.
fn active_controller(controllers: &[String], total_controllers: usize) -> Result<i32, String> {
    let mut failures = Vec::new();
    let mut followers = 0;
    for address in controllers {
        match wire::Connection::open(address).and_then(|mut c| c.active_controller()) {
            Ok(id) if id >= 0 => return Ok(id),
            Ok(_) => failures.push(format!("{address}: no leader (an election)")),
            Err(wire::WireError::Kafka { code: 6, .. }) => followers += 1,
            Err(e) => failures.push(e.to_string()),
        }
    }
    if followers == controllers.len() {
        return Err(format!(
            "the KRaft quorum has no leader: a majority of the {total_controllers} controllers \
             must run to elect one, and {} {}{}",
            controllers.len(),
            if controllers.len() == 1 { "does" } else { "do" },
            if controllers.len() * 2 > total_controllers {
                " (an election is under way)"
            } else {
                "; until then nothing in the cluster's metadata changes"
            }
        ));
    }
    Err(failures.join("; "))
}

/// Every group: ListGroups on each broker (each lists the groups it coordinates), then one
/// FindCoordinator for all of them, which is the cluster's own answer to "who coordinates".
fn groups(brokers: &[String]) -> Result<Vec<GroupView>, String> {
    let mut states = std::collections::BTreeMap::new();
    let mut failures = Vec::new();
    for address in brokers {
        match wire::Connection::open(address).and_then(|mut c| c.groups()) {
            Ok(groups) => states.extend(groups),
            Err(e) => failures.push(e.to_string()),
        }
    }
    if states.is_empty() && !failures.is_empty() {
        return Err(failures.join("; "));
    }
    let names: Vec<String> = states.keys().cloned().collect();
    let mut last = None;
    for address in brokers {
        match wire::Connection::open(address).and_then(|mut c| c.coordinators(&names)) {
            Ok(found) => {
                let found: std::collections::BTreeMap<String, wire::Coordinator> =
                    found.into_iter().collect();
                return Ok(states
                    .into_iter()
                    .map(|(group, state)| {
                        let coordinator = found.get(&group).copied();
                        GroupView {
                            coordinator: coordinator.and_then(Result::ok),
                            error: match coordinator {
                                Some(Ok(_)) => None,
                                Some(Err(code)) => Some(coordinator_error(code)),
                                None => Some("not in FindCoordinator's answer".to_owned()),
                            },
                            group,
                            state,
                        }
                    })
                    .collect());
            }
            Err(e) => last = Some(e.to_string()),
        }
    }
    Err(last.unwrap_or_else(|| "no broker to ask".to_owned()))
}

fn coordinator_error(code: i16) -> String {
    match code {
        15 => "COORDINATOR_NOT_AVAILABLE: its offsets partition has no leader yet".to_owned(),
        14 => "COORDINATOR_LOAD_IN_PROGRESS: the new coordinator is loading the group".to_owned(),
        code => format!("Kafka error {code}"),
    }
}
