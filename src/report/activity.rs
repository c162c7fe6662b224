//! What a consumer role reports while it runs, as plain values: joining, assignments, records,
//! problems, commits and summaries. The Kafka runtime and the roles produce them; the printers
//! (text, JSON Lines) and the live view consume them. Nothing here touches Kafka.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use uuid::Uuid;

use crate::domain::event::{EventError, OrderEvent, Source, Status};
use crate::domain::lifecycle::Violation;
use crate::report::group_view::GroupProtocol;
use crate::report::latency::LatencyStats;

/// The latest thing the Kafka client said about reaching the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Connection {
    /// Nothing bad reported (yet).
    Ok,
    /// No broker could be reached; the reason is the client's last transport error.
    Unreachable { reason: String },
    /// Connected, but the cluster refused our credentials or TLS set-up.
    Refused { reason: String },
    /// The client cannot go on (for example an idempotent producer lost its sequence).
    Fatal { reason: String },
}

impl Connection {
    pub(crate) fn is_ok(&self) -> bool {
        matches!(self, Connection::Ok)
    }
}

/// Where a newly assigned partition stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartitionStart {
    pub partition: i32,
    /// The offset this member starts reading at: the group's committed offset, or the
    /// earliest available one for a group that never committed.
    pub start: i64,
    /// Whether `start` comes from a commit of the group (false: a new group, from the start).
    pub committed: bool,
    /// The earliest offset still in the partition (retention may have removed older ones).
    pub low: i64,
    /// The log end offset: the offset the next produced record will get.
    pub high: i64,
}

/// Progress of one assigned partition, as librdkafka last reported it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PartitionProgress {
    pub partition: i32,
    /// The next offset this member will commit (everything before it is done).
    pub position: Option<i64>,
    /// The group's committed offset.
    pub committed: Option<i64>,
    /// The log end offset.
    pub end: Option<i64>,
    /// Records not yet committed: end − committed.
    pub lag: Option<i64>,
}

/// What happened to one record.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// A valid event; `previous` is the order's step before it, where the role tracks that.
    Order {
        order_id: Uuid,
        status: Status,
        source: Source,
        previous: Option<Status>,
    },
    /// A valid event that breaks its order's lifecycle.
    Violation {
        order_id: Uuid,
        status: Status,
        violation: Violation,
    },
    /// Not an order event.
    Malformed(EventError),
    /// Already in the audit log from an earlier run: not written again.
    AlreadyStored,
}

impl Outcome {
    /// A valid event, after `previous` (where the role tracks the order's steps).
    pub(crate) fn order(event: &OrderEvent, previous: Option<Status>) -> Outcome {
        Outcome::Order {
            order_id: event.order_id,
            status: event.status,
            source: event.source,
            previous,
        }
    }
}

/// One record seen by a role.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordNote {
    pub partition: i32,
    pub offset: i64,
    pub outcome: Outcome,
    /// Where the role sent the record besides counting it (e.g. the dead-letter topic).
    pub routed_to: Option<String>,
}

/// The counters of a role; the variant says which role.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum RoleCounters {
    OrderProcessor {
        /// Valid events that followed their order's lifecycle.
        valid: u64,
        violations: u64,
        violations_by_kind: BTreeMap<&'static str, u64>,
        /// Records sent to the dead-letter topic (malformed ones and violations).
        dead_lettered: u64,
        /// Orders whose state this member holds (for its partitions).
        orders_tracked: u64,
    },
    Analytics {
        statuses: BTreeMap<&'static str, u64>,
        sources: BTreeMap<&'static str, u64>,
        /// Orders delivered.
        completed: u64,
        /// Orders seen placed and not yet delivered.
        in_flight: u64,
        /// Payment events read (`analytics -t payments`), by decision. Empty on a topic of
        /// orders, and then left out of JSON.
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        payments: BTreeMap<&'static str, u64>,
    },
    Storage {
        /// Lines appended to the audit log in this run.
        stored: u64,
        /// Records skipped because the audit log already held them.
        already_stored: u64,
        file: String,
    },
    /// A role written outside this crate (see `examples/fraud-watcher.rs`): its own counters
    /// as (name, value), in the order they are shown. In JSON they become one object,
    /// `"counters": {"name": value, …}`, so they can never clash with the summary's fields.
    Custom {
        #[serde(serialize_with = "counters_in_order")]
        counters: Vec<(&'static str, u64)>,
    },
}

/// Serializes (name, value) pairs as a JSON object that keeps their order.
fn counters_in_order<S: serde::Serializer>(
    counters: &[(&'static str, u64)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(counters.iter().copied())
}

/// A role's counters at one moment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub role: &'static str,
    pub group: String,
    /// Whether this is the last summary of the run.
    #[serde(rename = "final")]
    pub last: bool,
    /// Records handled in this run, malformed ones included.
    pub records: u64,
    /// Records that are not order events.
    pub malformed: u64,
    pub malformed_by_kind: BTreeMap<&'static str, u64>,
    /// Records per second over the last interval.
    pub events_per_s: f64,
    /// End-to-end latency (producer timestamp to handled) of the records of the last
    /// interval; in the final summary, of the whole run. None without such records.
    pub latency: Option<LatencyStats>,
    /// This member's partitions.
    pub partitions: Vec<PartitionProgress>,
    #[serde(flatten)]
    pub counters: RoleCounters,
}

/// Everything a consumer role reports.
#[derive(Clone, Debug, PartialEq)]
pub enum Activity {
    /// The member subscribed; assignments follow.
    Joined {
        role: &'static str,
        group: String,
        member: String,
        topic: String,
        brokers: String,
        /// The protocol it joined with.
        protocol: GroupProtocol,
        /// The assignor it asked for: a classic member's strategy list as configured; for a
        /// consumer-protocol member the server-side assignor it requested, or None when the
        /// broker chooses.
        assignor: Option<String>,
    },
    /// Partitions were given to this member. `waited` is how long it was without them (since
    /// joining, or since its last revocation); `took` how long the role took to get ready.
    Assigned {
        partitions: Vec<PartitionStart>,
        waited: Duration,
        took: Duration,
        /// The whole assignment afterwards.
        now_owned: Vec<i32>,
    },
    /// Partitions were taken away. `lost`: not handed over but lost, with what this member
    /// knows of why; offsets it had not committed for them are not committed, and whoever
    /// owns them next reads those records again.
    Revoked {
        partitions: Vec<i32>,
        lost: Option<LostCause>,
        /// Revoked partitions with handled records the group's commit does not cover (the
        /// flush before the hand-over failed, or the commit did; the next owner reads them
        /// again): a summary must not claim a commit that did not happen.
        uncommitted: Vec<i32>,
        now_owned: Vec<i32>,
    },
    /// Offsets were committed for the group: (partition, next offset).
    Committed { offsets: Vec<(i32, i64)> },
    /// A commit failed; the offsets stay stored and a later commit retries them.
    CommitFailed { reason: String },
    /// The connection to the cluster changed.
    Connection(Connection),
    /// A broker went away or came back, a leader or the group's coordinator moved.
    Cluster(ClusterChange),
    /// A record was handled.
    Record(RecordNote),
    /// Something worth a line (rebuilt state, repaired file, …).
    Notice(String),
    /// The role's counters, every few seconds (and at the end, `last`).
    Summary(Summary),
    /// The role's counters and partitions, every second: for live views and the members'
    /// announcements, not for printing.
    Progress(Summary),
    /// Consumption was paused (true) or resumed (false) on request.
    Paused(bool),
    /// The member has left its group; nothing follows.
    Left,
}

/// Why a member's partitions were lost rather than handed over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LostCause {
    /// The group's coordinator did not answer heartbeats for longer than the session timeout
    /// while a broker was down: it was down itself, or (on a cluster that replicates the
    /// group's offsets) it held this member's requests behind a commit that waited for the
    /// dead broker's replica until Kafka declared that broker dead, about 9 s.
    SessionExpiredWhileUnreachable,
    /// The group dropped this member, with no outage seen (for example it did not poll
    /// within `max.poll.interval.ms`).
    Dropped,
}

impl LostCause {
    /// The name in JSON Lines.
    pub fn as_str(self) -> &'static str {
        match self {
            LostCause::SessionExpiredWhileUnreachable => "session_expired_while_unreachable",
            LostCause::Dropped => "dropped",
        }
    }
}

impl std::fmt::Display for LostCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LostCause::SessionExpiredWhileUnreachable => {
                "the group's coordinator did not answer this member's heartbeats for longer \
                 than the session timeout while a broker was down, so the group dropped it; \
                 what it had not committed is read again"
            }
            LostCause::Dropped => {
                "the group dropped this member; what it had not committed is read again"
            }
        })
    }
}

/// One partition whose leader changed. `None`: no leader (an election is under way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaderMove {
    pub partition: i32,
    pub from: Option<i32>,
    pub to: Option<i32>,
}

/// Something the cluster did, in the terms Kafka uses: brokers, leaders, the coordinator.
/// The Kafka runtime reports each change once, not every time a request fails because of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterChange {
    /// A broker this member was talking to stopped answering; the client keeps retrying.
    BrokerUnreachable {
        broker: i32,
        address: String,
        reason: String,
    },
    /// Kafka no longer lists a broker among the live ones: the controller declared it dead,
    /// and its partitions get new leaders.
    BrokerLeft { broker: i32, address: String },
    /// Kafka no longer lists a broker that had handed the leadership of its partitions to
    /// other brokers while it still answered: a clean (controlled) shutdown, not a crash.
    BrokerShutDown { broker: i32, address: String },
    /// Every broker this member knows stopped answering at once: the cluster is down or cut
    /// off; nothing is elected while none answers.
    ClusterUnreachable { brokers: usize },
    /// A broker reported unreachable (or gone from the cluster) is back, `after` that long:
    /// this member reconnected to it, or (`rejoined`) Kafka lists it as live again.
    BrokerBack {
        broker: i32,
        address: String,
        after: Duration,
        rejoined: bool,
    },
    /// Partitions of the topic got new leaders (seen in the same statistics report).
    LeadersMoved(Vec<LeaderMove>),
    /// The group's coordinator is now another broker.
    CoordinatorMoved { from: i32, to: i32 },
}

impl std::fmt::Display for ClusterChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClusterChange::BrokerUnreachable {
                broker,
                address,
                reason,
            } => write!(
                f,
                "broker {broker} ({address}) is unreachable: {reason}; the client keeps trying"
            ),
            ClusterChange::BrokerLeft { broker, address } => write!(
                f,
                "broker {broker} ({address}) left the cluster: Kafka declared it dead and moves \
                 its partitions' leadership to the other brokers"
            ),
            ClusterChange::BrokerShutDown { broker, address } => write!(
                f,
                "broker {broker} ({address}) left the cluster after handing the leadership of its \
                 partitions to other brokers: a clean (controlled) shutdown"
            ),
            ClusterChange::ClusterUnreachable { brokers } => write!(
                f,
                "the cluster is unreachable: none of its {brokers} brokers answers (stopped, or \
                 cut off from this machine); the client keeps trying"
            ),
            ClusterChange::BrokerBack {
                broker,
                address,
                after,
                rejoined,
            } => write!(
                f,
                "broker {broker} ({address}) is {}, after {}",
                if *rejoined {
                    "back in the cluster"
                } else {
                    "reachable again"
                },
                crate::report::human::duration(*after)
            ),
            ClusterChange::LeadersMoved(moves) => {
                let parts: Vec<String> = moves
                    .iter()
                    .map(|m| match (m.from, m.to) {
                        (_, None) => format!(
                            "partition {} has no leader: Kafka is electing one",
                            m.partition
                        ),
                        (None, Some(to)) => {
                            format!("partition {}'s leader is broker {to}", m.partition)
                        }
                        (Some(from), Some(to)) => format!(
                            "partition {}'s leader moved from broker {from} to broker {to}",
                            m.partition
                        ),
                    })
                    .collect();
                f.write_str(&parts.join("; "))
            }
            ClusterChange::CoordinatorMoved { from, to } => write!(
                f,
                "the group's coordinator moved from broker {from} to broker {to}"
            ),
        }
    }
}

/// Where activity goes: a printer, or the live view.
pub trait Report: Send {
    fn report(&mut self, activity: Activity);

    /// librdkafka's statistics of the member's client (every second); only the metrics
    /// want them.
    fn statistics(&mut self, _statistics: &crate::report::client_stats::ClientStatistics) {}
}

/// Hands every activity to several sinks (a printer or the live view, and the member's
/// announcements).
pub(crate) struct Fanout(pub Vec<Box<dyn Report>>);

impl Report for Fanout {
    fn report(&mut self, activity: Activity) {
        if let Some((last, rest)) = self.0.split_last_mut() {
            for sink in rest {
                sink.report(activity.clone());
            }
            last.report(activity);
        }
    }

    fn statistics(&mut self, statistics: &crate::report::client_stats::ClientStatistics) {
        for sink in &mut self.0 {
            sink.statistics(statistics);
        }
    }
}
