//! The consumer runtime shared by the roles: joins the group, turns rebalances and commits
//! into [`Activity`], hands every record to the role, and owns the offset discipline.
//!
//! Offsets (at-least-once, and exactly-once into the audit log):
//! - `enable.auto.offset.store=false`: an offset is *stored* only after the role has finished
//!   with the record and made its work durable ([`Role::flush`], e.g. the audit log's fsync);
//!   librdkafka commits stored offsets every second (`enable.auto.commit`);
//! - before partitions are revoked, the role is flushed, their offsets are stored and
//!   committed synchronously, so the next owner starts exactly where this member stopped;
//! - on shutdown the record in hand is finished, offsets are stored and committed, and the
//!   member leaves the group, so its partitions move at once instead of after a timeout.
//!
//! Rebalancing is cooperative: under the classic protocol orderflow's members use
//! `cooperative-sticky` unless `-X partition.assignment.strategy` says otherwise; under
//! KIP-848's consumer protocol (`-X group.protocol=consumer`, see [`super::group_protocol`])
//! every rebalance is incremental. Either way a member keeps the partitions that do not move
//! and gives up the others while the group is stable. With the eager protocol, the built-in
//! broker refuses offset commits for the whole time a rebalance is prepared, so the revoking
//! member cannot commit and the next owner would read the last records again.
//!
//! Records are handled on the thread that polls, so there is no queue between Kafka and the
//! role that could lose or reorder anything. The role and the bookkeeping sit behind one
//! mutex that the rebalance callbacks (which librdkafka runs inside `poll`) share; it is never
//! contended, only the callback and the loop take it, on the same thread.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use rdkafka::config::{FromClientConfigAndContext, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::BorrowedMessage;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Message, Offset, Timestamp, TopicPartitionList};

use super::broker::is_built_in_broker;
use super::client::{Connection, ConnectionHealth, close_promptly};
use super::cluster_watch::{ClusterWatch, Snapshot};
use super::fault::{self, Fault};
use super::group_protocol::{
    BUILT_IN_KIP848_NOTICE, BrokerSideProperty, CLASSIC_ASSIGNOR, GroupProtocol, MemberProtocol,
    inconsistent_protocol_notice,
};
use super::topic::{APPEAR_WAIT, Patience, TopicError, TopicUser, TopicWaitError, wait_for_topic};
use crate::config::{KafkaSettings, redacted};
use crate::report::activity::{
    Activity, LostCause, PartitionProgress, PartitionStart, Report, Summary,
};
use crate::report::latency::Latencies;
use crate::roles::{ConsumedRecord, Replay, Role, RoleError};
use crate::shutdown::Shutdown;

/// How long `poll` waits when nothing arrives: also how quickly a stop request is noticed.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);

/// At most this many records, and this much time, between two checkpoints (flush + offset
/// store): large batches make one fsync serve thousands of audit lines; the time bound keeps
/// a slow role (`--work-ms`) storing its progress and within `max.poll.interval.ms`.
const BATCH_RECORDS: usize = 5_000;
const BATCH_TIME: Duration = Duration::from_millis(250);

/// With `--exit-at-end`, an empty assignment only counts as "nothing to drain" once it has
/// lasted longer than two rebalances of the built-in broker (each waits the session timeout
/// minus a second): a cooperative join hands out partitions in the second round.
const EMPTY_ASSIGNMENT_GRACE: Duration = Duration::from_secs(14);

/// fetch.wait.max.ms with `--exit-at-end`: how long an empty fetch waits before it reports
/// the end of a partition.
const EXIT_AT_END_FETCH_WAIT_MS: &str = "20";

/// fetch.wait.max.ms of a member that keeps running: on the built-in broker every record waits
/// up to this long (see where it is used); while idle, the member asks this often.
const RUNNING_FETCH_WAIT_MS: &str = "100";

/// How long one attempt to learn where newly assigned partitions start (the group's commits,
/// the partitions' bounds) may wait for the cluster. It runs beside the poll loop, so a wait
/// stalls no other partition; and it is short, so that a leader elected meanwhile is used by
/// the next attempt rather than after a long wait on the old one.
const TAKE_OVER_TIMEOUT: Duration = Duration::from_secs(3);

/// The back-off between attempts to take over partitions: the first retry soon (the cluster
/// often settles within a second), doubling up to the last.
const TAKE_OVER_FIRST_RETRY: Duration = Duration::from_millis(250);
const TAKE_OVER_LAST_RETRY: Duration = Duration::from_secs(5);

/// A topic the cluster says it does not know, for this long, was deleted: a restarted broker
/// may briefly answer without it, a deleted topic stays gone.
const TOPIC_GONE_AFTER: Duration = Duration::from_secs(15);

/// Partitions lost within this long of a broker failure were lost to the outage.
const OUTAGE_MEMORY: Duration = Duration::from_secs(30);

/// Properties the runtime depends on: `-X` must not change them.
const MANAGED_PROPERTIES: [(&str, &str); 4] = [
    ("group.id", "use -g/--group"),
    (
        "enable.auto.offset.store",
        "orderflow stores an offset only after the record's work is done",
    ),
    (
        "enable.auto.commit",
        "orderflow commits stored offsets every second",
    ),
    ("enable.partition.eof", "--exit-at-end sets it"),
];

/// How often a summary is reported (printed), and how often progress is (for live views).
pub const SUMMARY_INTERVAL: Duration = Duration::from_secs(5);
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// How long the start-up check and the metadata calls wait for the cluster.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(10);

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

/// Why a consumer role stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("cannot create the Kafka consumer: {0}")]
    Create(KafkaError),
    #[error(
        "cannot reach Kafka at {brokers}: {reason}\n  Is `orderflow broker` running? Start one in \
         another terminal, or point -b (or ORDERFLOW_BROKERS) at your cluster."
    )]
    Unreachable { brokers: String, reason: String },
    #[error(
        "Kafka at {brokers} refused the connection: {reason}\n  Check the -X security settings."
    )]
    Refused { brokers: String, reason: String },
    #[error(transparent)]
    Topic(#[from] TopicError),
    #[error(transparent)]
    BrokerSide(#[from] BrokerSideProperty),
    #[error("-X {key} cannot be changed here: {why}")]
    ManagedProperty {
        key: &'static str,
        why: &'static str,
    },
    // No variant holds a `source`: each says its cause in its own text, and a `source` would
    // make anyhow's `{:#}` print that cause a second time.
    #[error("cannot subscribe to {topic}: {error}")]
    Subscribe { topic: String, error: KafkaError },
    #[error("cannot take over {}: {reason}", partition_words(partitions))]
    TakeOver {
        partitions: Vec<i32>,
        reason: String,
    },
    #[error(
        "topic {topic} no longer exists on {brokers}: it was deleted while this member read it; \
         create it again (3 partitions) and restart the role"
    )]
    TopicDeleted { topic: String, brokers: String },
    #[error(
        "the cluster does not let group {group} read topic {topic}: {reason}; ask its \
         administrator for Read on both"
    )]
    NotAuthorized {
        topic: String,
        group: String,
        reason: String,
    },
    #[error("the consumer failed: {0}")]
    Kafka(KafkaError),
    #[error("{0}")]
    Role(RoleError),
}

/// Lets another thread (the live view's `p` key) pause and resume consumption.
#[derive(Clone, Debug, Default)]
pub struct ConsumerControl {
    paused: Arc<std::sync::atomic::AtomicBool>,
}

impl ConsumerControl {
    pub fn set_paused(&self, paused: bool) {
        self.paused
            .store(paused, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn is_paused(&self) -> bool {
        self.paused.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Options of a consumer role.
#[derive(Clone, Debug)]
pub struct ConsumerOptions {
    /// The role's name (`analytics`, …), for client ids and reports.
    pub role: &'static str,
    /// The consumer group.
    pub group: String,
    /// Stop once every assigned partition is drained.
    pub exit_at_end: bool,
}

/// Reads partitions outside the group, on a connection of its own: how a role rebuilds the
/// state that belongs to a partition it was just given, and how the runtime asks for a
/// partition's bounds. (On the group consumer's own connection those requests would queue
/// behind its long-polling fetches.)
pub struct History {
    reader: BaseConsumer<ConnectionHealth>,
    topic: String,
}

impl Drop for History {
    fn drop(&mut self) {
        close_promptly(&self.reader, Duration::from_secs(1));
    }
}

/// "partition 1", "partitions 0, 1, 2".
fn partition_words(partitions: &[i32]) -> String {
    let list: Vec<String> = partitions.iter().map(i32::to_string).collect();
    match list.len() {
        1 => format!("partition {}", list[0]),
        _ => format!("partitions {}", list.join(", ")),
    }
}

impl History {
    fn new(settings: &KafkaSettings) -> KafkaResult<History> {
        let config = settings.outsider_config(&[
            // A group id is required for assign(); nothing is ever committed to it.
            (
                "group.id",
                &format!("orderflow-history-{}", super::client::process_tag()),
            ),
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
    pub fn bounds(&self, partition: i32) -> KafkaResult<(i64, i64)> {
        self.bounds_within(partition, CLUSTER_TIMEOUT)
    }

    fn bounds_within(&self, partition: i32, timeout: Duration) -> KafkaResult<(i64, i64)> {
        self.reader
            .fetch_watermarks(&self.topic, partition, timeout)
    }

    /// Asks the cluster who leads the topic's partitions now. This reader's requests go to
    /// the leaders it last heard of, and it hears of new ones only when it asks: after a
    /// failover it kept asking the dead broker (and then one that answered NotLeader) for
    /// 20 s while the group consumer already read from the new leader.
    fn refresh_leaders(&self, timeout: Duration) {
        if let Err(e) = self.reader.fetch_metadata(Some(&self.topic), timeout) {
            tracing::debug!(error = %e, "history reader: metadata refresh");
        }
    }

    /// Calls `visit` for every record of `partition` with `from <= offset < until`.
    /// Returns how many records it visited.
    pub fn replay(
        &self,
        partition: i32,
        from: i64,
        until: i64,
        visit: &mut dyn FnMut(&ConsumedRecord<'_>),
    ) -> KafkaResult<u64> {
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
        result
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

impl Replay for History {
    fn replay(
        &self,
        partition: i32,
        from: i64,
        until: i64,
        visit: &mut dyn FnMut(&ConsumedRecord<'_>),
    ) -> Result<u64, RoleError> {
        Ok(History::replay(self, partition, from, until, visit)?)
    }
}

/// The bookkeeping the poll loop and the rebalance callbacks share.
struct Shared<R> {
    role: R,
    out: Box<dyn Report>,
    /// Per partition, the offset after the last record handled and not yet stored.
    pending: BTreeMap<i32, i64>,
    /// The current assignment, and per partition whether its end has been reached.
    owned: BTreeMap<i32, bool>,
    /// Partitions the group gave this member that it is not reading yet: paused until the
    /// poll loop has learned where they start and the role is ready for them.
    awaiting: BTreeSet<i32>,
    /// Since when `awaiting` is not empty.
    awaiting_since: Option<Instant>,
    /// Partitions started since the last `assigned` report.
    taken_over: Vec<PartitionStart>,
    /// Brokers, leaders and the coordinator as the statistics and errors last showed them.
    watch: ClusterWatch,
    /// The last commit problem told, so a commit failing every second is told once.
    commit_trouble: Option<String>,
    /// The last consumer error told, until records flow again.
    consumer_trouble: Option<String>,
    /// Since when librdkafka reports the topic (or a partition) unknown, until records flow
    /// again: long enough, and the cluster confirms, and the topic was deleted.
    topic_missing_since: Option<Instant>,
    /// Whether any assignment was received yet (for `--exit-at-end`).
    assigned_once: bool,
    /// When the assignment last changed (for `--exit-at-end` with an empty one).
    changed_at: Instant,
    /// Since when this member owns nothing (subscribe or last revocation).
    idle_since: Option<Instant>,
    /// Per partition, the last offset stored (what the next commit will carry).
    stored: BTreeMap<i32, i64>,
    /// A failure inside a callback, surfaced by the loop.
    failure: Option<ConsumerError>,
    /// Latest per-partition numbers from librdkafka's statistics.
    progress: BTreeMap<i32, PartitionProgress>,
    /// The last offsets reported as committed, so repeated identical commits stay quiet.
    last_committed: BTreeMap<i32, i64>,
    /// Whether the group's refusal of this member's assignor (INCONSISTENT_GROUP_PROTOCOL)
    /// has been explained since it last had partitions.
    refused_by_group: bool,
    /// Records handled in this run.
    records: u64,
    /// How old the records were when the role had handled them, per reporting window.
    latency: Latencies,
}

impl<R: Role> Shared<R> {
    /// Flushes the role and stores the offsets of everything it finished.
    fn checkpoint(
        &mut self,
        consumer: &BaseConsumer<GroupContext<R>>,
        topic: &str,
    ) -> Result<(), ConsumerError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.role.flush().map_err(ConsumerError::Role)?;
        let mut offsets = TopicPartitionList::new();
        for (&partition, &next) in &self.pending {
            if self.owned.contains_key(&partition) {
                offsets
                    .add_partition_offset(topic, partition, Offset::Offset(next))
                    .map_err(ConsumerError::Kafka)?;
            }
        }
        if offsets.count() > 0 {
            consumer
                .store_offsets(&offsets)
                .map_err(ConsumerError::Kafka)?;
        }
        for (partition, next) in std::mem::take(&mut self.pending) {
            if self.owned.contains_key(&partition) {
                self.stored.insert(partition, next);
            }
        }
        Ok(())
    }

    /// Commits the stored offsets now, waits for the answer and reports what was committed
    /// (librdkafka does not call the commit callback for synchronous commits).
    fn commit(&mut self, consumer: &BaseConsumer<GroupContext<R>>) -> KafkaResult<()> {
        match consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => {
                self.commit_trouble = None;
                let committed: Vec<(i32, i64)> = self
                    .stored
                    .iter()
                    .filter(|(p, o)| self.last_committed.get(p) != Some(o))
                    .map(|(p, o)| (*p, *o))
                    .collect();
                if !committed.is_empty() {
                    self.last_committed.extend(committed.iter().copied());
                    self.out.report(Activity::Committed { offsets: committed });
                }
                Ok(())
            }
            Err(e) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::NoOffset) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The commit before partitions are handed over. The coordinator refuses commits while
    /// the group is still rebalancing (the built-in broker for the whole time a rebalance is
    /// prepared), and the rebalance cannot finish while this callback runs; but the state
    /// often settles within moments, so try a few times. What still cannot be committed is
    /// said plainly: the next owner reads those records again (at-least-once). Returns the
    /// revoked partitions whose offsets could not be committed.
    fn commit_before_handover(
        &mut self,
        consumer: &BaseConsumer<GroupContext<R>>,
        revoked: &[i32],
    ) -> Vec<i32> {
        const ATTEMPTS: u32 = 5;
        let mut attempt = 1;
        loop {
            match self.commit(consumer) {
                Ok(()) => return Vec::new(),
                Err(e) if is_rebalancing(&e) && attempt < ATTEMPTS => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => {
                    let partitions: Vec<i32> = revoked
                        .iter()
                        .copied()
                        .filter(|p| {
                            self.stored
                                .get(p)
                                .is_some_and(|stored| self.last_committed.get(p) != Some(stored))
                        })
                        .collect();
                    let uncommitted: Vec<String> = partitions
                        .iter()
                        .map(|p| {
                            format!(
                                "p{p} from offset {}",
                                self.last_committed.get(p).copied().unwrap_or(0)
                            )
                        })
                        .collect();
                    if !uncommitted.is_empty() {
                        self.out.report(Activity::CommitFailed {
                            reason: format!(
                                "could not commit before handing over ({}): the next owner reads again {}",
                                rebalancing_words(&e),
                                uncommitted.join(", ")
                            ),
                        });
                    }
                    return partitions;
                }
            }
        }
    }

    fn owned(&self) -> Vec<i32> {
        self.owned.keys().copied().collect()
    }
}

/// Whether a commit failed only because the group is (or just was) rebalancing.
fn is_rebalancing(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::RebalanceInProgress
                | RDKafkaErrorCode::IllegalGeneration
                // The consumer protocol's word for a commit of an assignment that just
                // changed (KIP-848): the member's epoch moved on meanwhile.
                | RDKafkaErrorCode::StaleMemberEpoch
        )
    )
}

/// A commit error in words a learner can follow.
fn rebalancing_words(error: &KafkaError) -> String {
    if is_rebalancing(error) {
        "the group is rebalancing".to_owned()
    } else {
        error.to_string()
    }
}

/// The consumer's librdkafka context: connection health, rebalances, commits, statistics.
pub struct GroupContext<R> {
    health: ConnectionHealth,
    /// Pause requests; newly assigned partitions are paused too while it is set.
    control: ConsumerControl,
    shared: Arc<Mutex<Shared<R>>>,
    history: History,
    topic: String,
    /// A group without commits starts at the end (`-X auto.offset.reset=latest`), not at the
    /// earliest offset.
    from_end: bool,
}

impl<R> GroupContext<R> {
    fn lock(&self) -> MutexGuard<'_, Shared<R>> {
        // A panic while holding the lock would already have ended the process's purpose;
        // keep going with the data as it was rather than panic again in a callback.
        self.shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<R: Role> ClientContext for GroupContext<R> {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.health.log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let transport =
            error.rdkafka_error_code() == Some(RDKafkaErrorCode::BrokerTransportFailure);
        self.health.error(error, reason);
        if transport {
            let mut shared = self.lock();
            if let Some(change) = shared.watch.connection_failed(reason, Instant::now()) {
                shared.out.report(Activity::Cluster(change));
            }
        }
    }

    fn stats(&self, statistics: Statistics) {
        let snapshot = Snapshot::from_statistics(&statistics, &self.topic);
        let mut shared = self.lock();
        for change in shared.watch.observe(&snapshot, Instant::now()) {
            shared.out.report(Activity::Cluster(change));
        }
        let Some(topic) = statistics.topics.get(&self.topic) else {
            return;
        };
        let known = |v: i64| (v >= 0).then_some(v);
        let owned = shared.owned();
        shared.progress = owned
            .into_iter()
            .map(|partition| {
                let stats = topic.partitions.get(&partition);
                let progress = PartitionProgress {
                    partition,
                    position: stats.and_then(|p| known(p.stored_offset)),
                    committed: stats.and_then(|p| known(p.committed_offset)),
                    end: stats.and_then(|p| known(p.hi_offset)),
                    lag: stats.and_then(|p| known(p.consumer_lag)),
                };
                (partition, progress)
            })
            .collect();
    }
}

impl<R: Role> ConsumerContext for GroupContext<R> {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(partitions) = rebalance else {
            if let Rebalance::Error(e) = rebalance {
                self.lock()
                    .out
                    .report(Activity::Notice(format!("rebalance error: {e}")));
            }
            return;
        };
        let mut revoked: Vec<i32> = partitions
            .elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .collect();
        revoked.sort_unstable();
        if revoked.is_empty() {
            return;
        }
        let lost = consumer.assignment_lost();
        let mut shared = self.lock();
        let lost = lost.then(|| {
            // librdkafka declares the assignment lost when the coordinator did not answer
            // heartbeats for a session timeout, or answered that it no longer knows this
            // member. Right after a broker failure, the first is what happened.
            let now = Instant::now();
            if self.health.troubled_within(OUTAGE_MEMORY)
                || shared.watch.troubled_within(OUTAGE_MEMORY, now)
            {
                LostCause::SessionExpiredWhileUnreachable
            } else {
                LostCause::Dropped
            }
        });
        let mut uncommitted = Vec::new();
        if lost.is_none() {
            // Hand over exactly where we stopped: finish, store and commit before the
            // partitions go, so the next owner neither skips nor repeats anything.
            match shared.checkpoint(consumer, &self.topic) {
                Ok(()) => uncommitted = shared.commit_before_handover(consumer, &revoked),
                Err(e) => {
                    // Nothing handled since the last checkpoint was made durable, so none of
                    // it was committed.
                    uncommitted = revoked
                        .iter()
                        .copied()
                        .filter(|p| shared.pending.contains_key(p))
                        .collect();
                    shared.failure = Some(e);
                }
            }
        } else {
            // Another member may own them already: what we did not commit is theirs to redo.
            shared.pending.retain(|p, _| !revoked.contains(p));
        }
        let Shared { role, out, .. } = &mut *shared;
        role.revoked(&revoked, out.as_mut());
        for p in &revoked {
            shared.owned.remove(p);
            shared.awaiting.remove(p);
            shared.progress.remove(p);
            shared.stored.remove(p);
        }
        if shared.awaiting.is_empty() {
            shared.awaiting_since = None;
        }
        shared.changed_at = Instant::now();
        if shared.owned.is_empty() && shared.awaiting.is_empty() {
            shared.idle_since = Some(Instant::now());
        }
        let now_owned = shared.owned();
        shared.out.report(Activity::Revoked {
            partitions: revoked,
            lost,
            uncommitted,
            now_owned,
        });
    }

    /// New partitions are paused and left to the poll loop, which learns where they start
    /// and readies the role ([`GroupConsumer::advance_take_over`]). That asks the cluster,
    /// which during a broker failure may not answer for many seconds; inside this callback
    /// the wait would hold up the whole member (no records of its other partitions, no
    /// progress, no stop request) and could only end in giving up.
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Assign(partitions) = rebalance else {
            return;
        };
        let now = Instant::now();
        let mut assigned: Vec<i32> = partitions
            .elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .collect();
        assigned.sort_unstable();
        let mut shared = self.lock();
        shared.assigned_once = true;
        shared.changed_at = now;
        if assigned.is_empty() {
            // A cooperative rebalance round that gives this member nothing (yet).
            return;
        }
        let mut paused = TopicPartitionList::new();
        for &p in &assigned {
            paused.add_partition(&self.topic, p);
        }
        if let Err(e) = consumer.pause(&paused) {
            // Records fetched meanwhile are dropped (the partition is not owned yet) and
            // read again: the take-over seeks to where the partition starts.
            tracing::debug!(error = %e, "pausing new partitions");
        }
        // A member the group refused once (INCONSISTENT_GROUP_PROTOCOL) got in after all.
        shared.refused_by_group = false;
        shared.awaiting.extend(assigned);
        shared.awaiting_since.get_or_insert(now);
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        let mut shared = self.lock();
        match result {
            Ok(()) => {
                let committed: Vec<(i32, i64)> = offsets
                    .elements_for_topic(&self.topic)
                    .iter()
                    .filter_map(|e| match e.offset() {
                        Offset::Offset(o) => Some((e.partition(), o)),
                        _ => None,
                    })
                    .filter(|(p, o)| shared.last_committed.get(p) != Some(o))
                    .collect();
                if shared.commit_trouble.take().is_some() {
                    shared
                        .out
                        .report(Activity::Notice("commits go through again".to_owned()));
                }
                if committed.is_empty() {
                    return;
                }
                shared.last_committed.extend(committed.iter().copied());
                shared
                    .out
                    .report(Activity::Committed { offsets: committed });
            }
            // Nothing new to commit is not a failure; nor is an automatic commit refused
            // while the group rebalances: the offsets stay stored, and the commit before the
            // hand-over (or the next automatic one) carries them.
            Err(e) if matches!(e.rdkafka_error_code(), Some(RDKafkaErrorCode::NoOffset)) => {}
            Err(e) if is_rebalancing(&e) => {
                tracing::debug!(error = %e, "automatic commit refused during a rebalance");
            }
            Err(e) => {
                let (kind, reason) = commit_trouble(&e);
                if shared.commit_trouble.as_deref() != Some(kind.as_str()) {
                    shared.commit_trouble = Some(kind);
                    shared.out.report(Activity::CommitFailed { reason });
                }
            }
        }
    }
}

/// A failed automatic commit: its kind (failures of one kind are told once, however many
/// codes librdkafka cycles through: WaitingForCoordinator, NotCoordinator, …) and its words.
fn commit_trouble(error: &KafkaError) -> (String, String) {
    if fault::is_coordinator_wait(error) {
        (
            "coordinator".to_owned(),
            format!(
                "{}; the offsets stay stored and the next commit carries them",
                fault::in_words(error)
            ),
        )
    } else if error.rdkafka_error_code() == Some(RDKafkaErrorCode::UnknownMemberId) {
        (
            "member".to_owned(),
            "the group no longer knows this member (UnknownMemberId): it rejoins, and records \
             it had not committed are read again by their partition's next owner"
                .to_owned(),
        )
    } else {
        let words = format!("{error}; the offsets stay stored and the next commit retries them");
        (words.clone(), words)
    }
}

/// What one attempt to take over partitions learned: per partition where it starts, or why
/// that is not known yet.
struct StartsAnswer {
    starts: Vec<(i32, Result<PartitionStart, KafkaError>)>,
    /// Asked only when the cluster said it does not know the topic or a partition: whether
    /// the topic exists (None: the cluster did not answer).
    topic_exists: Option<bool>,
}

/// Where each newly assigned partition starts: the group's committed offset, or the earliest
/// one for a new group; with the partition's current bounds. Runs on a thread beside the poll
/// loop; each request waits at most [`TAKE_OVER_TIMEOUT`].
fn query_starts<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    history: &History,
    topic: &str,
    partitions: &[i32],
    from_end: bool,
    refresh_first: bool,
) -> StartsAnswer {
    if refresh_first {
        history.refresh_leaders(TAKE_OVER_TIMEOUT);
    }
    let bounds = |partition: i32| {
        history
            .bounds_within(partition, TAKE_OVER_TIMEOUT)
            .or_else(|_| {
                // Most often the reader asked a leader that is no more: ask who leads now,
                // and that one.
                history.refresh_leaders(TAKE_OVER_TIMEOUT);
                history.bounds_within(partition, TAKE_OVER_TIMEOUT)
            })
    };
    let mut query = TopicPartitionList::new();
    for &p in partitions {
        query.add_partition(topic, p);
    }
    let starts: Vec<(i32, Result<PartitionStart, KafkaError>)> =
        match consumer.committed_offsets(query, TAKE_OVER_TIMEOUT) {
            Err(e) => partitions.iter().map(|&p| (p, Err(e.clone()))).collect(),
            Ok(committed) => partitions
                .iter()
                .map(|&partition| {
                    let committed =
                        committed
                            .find_partition(topic, partition)
                            .and_then(|e| match e.offset() {
                                Offset::Offset(o) if o >= 0 => Some(o),
                                _ => None,
                            });
                    let start = bounds(partition).map(|(low, high)| PartitionStart {
                        partition,
                        // A committed offset below the earliest one (retention removed
                        // records) resets to the earliest, as auto.offset.reset=earliest does.
                        start: match committed {
                            Some(c) => c.max(low),
                            None if from_end => high,
                            None => low,
                        },
                        committed: committed.is_some(),
                        low,
                        high,
                    });
                    (partition, start)
                })
                .collect(),
        };
    let maybe_gone = starts.iter().any(|(_, result)| {
        result
            .as_ref()
            .is_err_and(|e| fault::classify(e) == Fault::TopicMaybeGone)
    });
    let topic_exists = if maybe_gone {
        topic_exists(consumer, topic)
    } else {
        Some(true)
    };
    StartsAnswer {
        starts,
        topic_exists,
    }
}

/// Whether the cluster knows `topic` (None: it did not answer). A consumer's metadata request
/// does not create topics, so asking does not bring a deleted topic back.
fn topic_exists<C: ConsumerContext>(consumer: &BaseConsumer<C>, topic: &str) -> Option<bool> {
    let metadata = consumer
        .fetch_metadata(Some(topic), TAKE_OVER_TIMEOUT)
        .ok()?;
    let described = metadata.topics().iter().find(|t| t.name() == topic);
    Some(match described {
        None => false,
        Some(t) => {
            t.error()
                != Some(rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
        }
    })
}

/// Why a partition could not be taken over in one attempt.
enum TakeOverFailure {
    Kafka(KafkaError),
    Role(RoleError),
    /// The role is ready but the seek to the start was refused: librdkafka starts fetching a
    /// partition only once it has the group's commit itself, which waits for the coordinator.
    NotStarted(KafkaError),
}

impl TakeOverFailure {
    fn fault(&self) -> Fault {
        match self {
            TakeOverFailure::Kafka(e) => fault::classify(e),
            // A role fails on the cluster's weather when it reads history (storage's check,
            // order-processor's rebuild); anything else (the audit log's file) is its own.
            TakeOverFailure::Role(e) => e
                .downcast_ref::<KafkaError>()
                .map_or(Fault::Permanent, fault::classify),
            TakeOverFailure::NotStarted(_) => Fault::Transient,
        }
    }

    fn words(&self) -> String {
        match self {
            TakeOverFailure::Kafka(e) => fault::in_words(e),
            TakeOverFailure::Role(e) => match e.downcast_ref::<KafkaError>() {
                Some(e) => fault::in_words(e),
                None => e.to_string(),
            },
            TakeOverFailure::NotStarted(e) => {
                format!("the client has not started fetching it yet ({e})")
            }
        }
    }
}

/// The take-over in progress in the poll loop.
struct TakeOver<'scope> {
    /// The attempt running on its own thread, if one is.
    running: Option<ScopedJoinHandle<'scope, StartsAnswer>>,
    /// Failed attempts in a row.
    failures: u32,
    /// When the next attempt may start.
    next_at: Instant,
    /// The wait last told, so a retry that fails the same way stays quiet.
    told: Option<String>,
    /// Since when the cluster says the topic does not exist.
    topic_gone_since: Option<Instant>,
    /// Partitions whose role is ready but whose reading could not start yet: only the seek
    /// is tried again (readying the role twice would rebuild its state twice).
    prepared: BTreeMap<i32, PartitionStart>,
}

impl TakeOver<'_> {
    fn new() -> Self {
        TakeOver {
            running: None,
            failures: 0,
            next_at: Instant::now(),
            told: None,
            topic_gone_since: None,
            prepared: BTreeMap::new(),
        }
    }
}

/// How often a member asks the cluster for news while a broker is down.
const NEWS_INTERVAL: Duration = Duration::from_secs(2);

/// The metadata request [`GroupConsumer::ask_for_news`] has in flight.
struct ClusterNews<'scope> {
    asking: Option<ScopedJoinHandle<'scope, ()>>,
    asked_at: Instant,
}

impl Default for ClusterNews<'_> {
    fn default() -> Self {
        ClusterNews {
            asking: None,
            asked_at: Instant::now(),
        }
    }
}

/// The wait before attempt `failures + 1`.
fn take_over_backoff(failures: u32) -> Duration {
    TAKE_OVER_FIRST_RETRY
        .saturating_mul(1 << failures.saturating_sub(1).min(8))
        .min(TAKE_OVER_LAST_RETRY)
}

/// A consumer role, ready to run.
pub struct GroupConsumer<R: Role> {
    /// Taken out (and leaked) only if leaving the group could not finish: dropping it then
    /// would wait for the cluster without a deadline.
    consumer: Option<BaseConsumer<GroupContext<R>>>,
    shared: Arc<Mutex<Shared<R>>>,
    options: ConsumerOptions,
    topic: String,
    brokers: String,
    client_id: String,
    /// The protocol it joins with, and the assignor it asks for (see [`super::group_protocol`]).
    protocol: GroupProtocol,
    assignor: Option<String>,
    /// When the run started, for the average rate of the final summary.
    started: Instant,
    /// Whether [`GroupConsumer::connect`] succeeded.
    connected: bool,
}

/// The records a summary's latency covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Window {
    /// Since the last progress report (every second, for live views).
    SinceProgress,
    /// Since the last printed summary (every 5 s).
    SinceSummary,
    /// The whole run: the final summary.
    Run,
}

/// The wall clock in µs since the epoch, the time base of Kafka timestamps.
fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Ctrl-C or SIGTERM.
    Stopped,
    /// `--exit-at-end` and every assigned partition is drained.
    Drained,
}

/// Whether `auto.offset.reset`, as the user set it, starts a new group at the end.
fn starts_at_end(settings: &KafkaSettings) -> bool {
    settings
        .properties
        .iter()
        .rev()
        .find(|p| p.key == "auto.offset.reset")
        .is_some_and(|p| matches!(p.value.as_str(), "latest" | "largest" | "end"))
}

impl<R: Role> GroupConsumer<R> {
    /// Creates the consumer (no I/O yet).
    pub fn new(
        settings: &KafkaSettings,
        options: ConsumerOptions,
        role: R,
        out: Box<dyn Report>,
    ) -> Result<GroupConsumer<R>, ConsumerError> {
        for (key, why) in MANAGED_PROPERTIES {
            if settings.overrides(key) {
                return Err(ConsumerError::ManagedProperty { key, why });
            }
        }
        let client_id = format!(
            "orderflow-{}-{}",
            options.role,
            super::client::process_tag()
        );
        let eof = if options.exit_at_end { "true" } else { "false" };
        // How long the broker may hold a fetch that finds nothing new. The end of a partition
        // shows as such an empty fetch: librdkafka's 500 ms would be most of a short
        // --exit-at-end run. A running member waits longer (fewer requests while idle), but
        // not 500 ms: the built-in broker does not answer a waiting fetch when data arrives,
        // so this wait is the floor of the latency learners see there (p99 ~500 ms at the
        // default, ~100 ms at this). A real broker answers as soon as data arrives.
        let fetch_wait = if options.exit_at_end {
            EXIT_AT_END_FETCH_WAIT_MS
        } else {
            RUNNING_FETCH_WAIT_MS
        };
        // The assignor, session timeout and heartbeat interval are the client's to set only
        // under the classic protocol; librdkafka refuses a consumer-protocol member that sets
        // them, so a -X that does is refused here, naming it as the user's.
        let protocol = GroupProtocol::of(settings);
        protocol.check(settings)?;
        let mut defaults: Vec<(&str, &str)> = vec![
            ("group.id", &options.group),
            ("client.id", &client_id),
            // A new group starts from the beginning of the topic, as design.md promises.
            ("auto.offset.reset", "earliest"),
            ("enable.auto.offset.store", "false"),
            ("enable.auto.commit", "true"),
            ("auto.commit.interval.ms", "1000"),
            ("enable.partition.eof", eof),
            ("fetch.wait.max.ms", fetch_wait),
            // When the prefetch queue is full librdkafka waits fetch.queue.backoff.ms (1 s by
            // default) before it fetches again, however soon the role empties it: draining
            // 200,000 events took a second longer than 100,000 because of it. A smaller
            // queue (librdkafka aims at 100,000 messages per partition, up to 64 MB) keeps a
            // role that drains a backlog within its memory budget (65 MB peak RSS draining
            // 200,000 events from 10 partitions, 21 MB with these) at the same speed.
            ("fetch.queue.backoff.ms", "20"),
            ("queued.min.messages", "10000"),
            ("queued.max.messages.kbytes", "16384"),
            ("statistics.interval.ms", "1000"),
            ("log.connection.close", "false"),
            // A synchronous commit to a broker that vanished waits this long; librdkafka's
            // 60 s would leave someone who pressed q staring at a blank terminal.
            ("socket.timeout.ms", "10000"),
        ];
        defaults.extend_from_slice(protocol.member_properties());
        let config = settings.client_config(&defaults);
        tracing::debug!(config = %redacted(&config), "consumer configuration");
        let shared = Arc::new(Mutex::new(Shared {
            role,
            out,
            pending: BTreeMap::new(),
            owned: BTreeMap::new(),
            awaiting: BTreeSet::new(),
            awaiting_since: None,
            taken_over: Vec::new(),
            watch: ClusterWatch::default(),
            commit_trouble: None,
            consumer_trouble: None,
            topic_missing_since: None,
            assigned_once: false,
            changed_at: Instant::now(),
            idle_since: None,
            stored: BTreeMap::new(),
            failure: None,
            progress: BTreeMap::new(),
            last_committed: BTreeMap::new(),
            refused_by_group: false,
            records: 0,
            latency: Latencies::default(),
        }));
        let context = GroupContext {
            health: ConnectionHealth::default(),
            control: ConsumerControl::default(),
            shared: Arc::clone(&shared),
            history: History::new(settings).map_err(ConsumerError::Create)?,
            topic: settings.topic.clone(),
            from_end: starts_at_end(settings),
        };
        let consumer = BaseConsumer::from_config_and_context(&config, context)
            .map_err(ConsumerError::Create)?;
        Ok(GroupConsumer {
            consumer: Some(consumer),
            shared,
            options,
            topic: settings.topic.clone(),
            brokers: settings.bootstrap(),
            client_id,
            protocol,
            assignor: protocol.requested_assignor(settings),
            started: Instant::now(),
            connected: false,
        })
    }

    /// A handle to pause and resume this member from another thread.
    pub fn control(&self) -> ConsumerControl {
        self.consumer().context().control.clone()
    }

    fn consumer(&self) -> &BaseConsumer<GroupContext<R>> {
        self.consumer.as_ref().expect("present until the run ends")
    }

    fn health(&self) -> &ConnectionHealth {
        &self.consumer().context().health
    }

    fn lock(&self) -> MutexGuard<'_, Shared<R>> {
        self.shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Checks that the cluster answers and the topic exists (asking again for a moment
    /// while it does not, see [`super::topic`]). Fails fast when librdkafka reports every
    /// broker down.
    fn check_cluster(&self) -> Result<(), ConsumerError> {
        let health = self.health().subscribe();
        let patience = Patience {
            reach: CLUSTER_TIMEOUT,
            appear: APPEAR_WAIT,
        };
        match wait_for_topic(
            self.consumer().client(),
            &self.topic,
            &self.brokers,
            TopicUser::Consumer,
            &health,
            patience,
        ) {
            Ok(_) => Ok(()),
            Err(TopicWaitError::Topic(e)) => Err(ConsumerError::Topic(e)),
            Err(TopicWaitError::Connection(state)) => Err(match state {
                Connection::Refused { reason } => ConsumerError::Refused {
                    brokers: self.brokers.clone(),
                    reason,
                },
                Connection::Unreachable { reason } | Connection::Fatal { reason } => {
                    ConsumerError::Unreachable {
                        brokers: self.brokers.clone(),
                        reason,
                    }
                }
                Connection::Ok => ConsumerError::Unreachable {
                    brokers: self.brokers.clone(),
                    reason: format!("no answer within {} s", CLUSTER_TIMEOUT.as_secs()),
                },
            }),
        }
    }

    /// Checks the cluster and the topic, and joins the group. [`GroupConsumer::run`] does it
    /// when it was not done before; calling it first lets a caller fail before it takes over
    /// the terminal.
    pub fn connect(&mut self) -> Result<(), ConsumerError> {
        if self.connected {
            return Ok(());
        }
        self.check_cluster()?;
        self.consumer()
            .subscribe(&[&self.topic])
            .map_err(|error| ConsumerError::Subscribe {
                topic: self.topic.clone(),
                error,
            })?;
        self.connected = true;
        // Asked before taking the lock: it waits for the cluster.
        let unfaithful = self.protocol == GroupProtocol::Consumer
            && self
                .consumer()
                .client()
                .fetch_cluster_id(Duration::from_secs(2))
                .is_some_and(|id| is_built_in_broker(&id));
        {
            let mut shared = self.lock();
            shared.idle_since = Some(Instant::now());
            shared.out.report(Activity::Joined {
                role: self.options.role,
                group: self.options.group.clone(),
                member: self.client_id.clone(),
                topic: self.topic.clone(),
                brokers: self.brokers.clone(),
                protocol: self.protocol,
                assignor: self.assignor.clone(),
            });
            if unfaithful {
                shared
                    .out
                    .report(Activity::Notice(BUILT_IN_KIP848_NOTICE.to_owned()));
            }
        }
        Ok(())
    }

    /// Runs until stopped (Ctrl-C / SIGTERM) or, with `--exit-at-end`, drained. Blocking: run
    /// it on its own thread.
    pub fn run(mut self, shutdown: &Shutdown) -> Result<Ending, ConsumerError> {
        self.connect()?;
        let result = self.poll_loop(shutdown);
        // Whatever happened, leave cleanly: finish what is durable, commit it, leave the group.
        let (committed, left) = self.close(result.is_ok());
        self.lock().out.report(Activity::Left);
        if !left {
            // Dropping a consumer that could not finish leaving waits for the cluster
            // without a deadline; the process is about to exit, so let the OS clean up.
            std::mem::forget(self.consumer.take());
        }
        let ending = result?;
        committed?;
        Ok(ending)
    }

    fn poll_loop(&self, shutdown: &Shutdown) -> Result<Ending, ConsumerError> {
        // The take-over's queries run on scoped threads: leaving the loop waits for the one
        // in progress (at most TAKE_OVER_TIMEOUT per request).
        std::thread::scope(|scope| self.poll_until_done(scope, shutdown))
    }

    fn poll_until_done<'scope, 'env>(
        &'env self,
        scope: &'scope Scope<'scope, 'env>,
        shutdown: &Shutdown,
    ) -> Result<Ending, ConsumerError> {
        let mut take_over = TakeOver::new();
        let mut news = ClusterNews::default();
        let mut topic_check = None;
        let health = self.health().subscribe();
        let control = self.control();
        let mut paused = false;
        let mut outage = false;
        let mut last_summary = Instant::now();
        let mut records_at_last_summary: u64 = 0;
        let mut last_progress = Instant::now();
        let mut records_at_last_progress: u64 = 0;
        loop {
            if let Some(failure) = self.lock().failure.take() {
                return Err(failure);
            }
            if shutdown.requested() {
                return Ok(Ending::Stopped);
            }
            if self.options.exit_at_end && self.drained() {
                return Ok(Ending::Drained);
            }
            // One blocking poll, then whatever is already fetched, up to a batch; then one
            // checkpoint for the whole batch (one fsync for thousands of audit lines).
            let batch_started = Instant::now();
            // While a take-over's answer is awaited, look for it often.
            let wait = if take_over.running.is_some() {
                Duration::from_millis(10)
            } else {
                POLL_TIMEOUT
            };
            let mut polled = self.consumer().poll(wait);
            if polled.as_ref().is_some_and(|m| m.is_ok()) {
                // librdkafka reports outages but never the recovery: data proves it.
                self.health().mark_ok();
            }
            let mut handled = 0;
            while let Some(message) = polled {
                handled += self.handle(message)?;
                if handled >= BATCH_RECORDS
                    || batch_started.elapsed() >= BATCH_TIME
                    || shutdown.requested()
                {
                    break;
                }
                polled = self.consumer().poll(Duration::ZERO);
            }
            self.lock().checkpoint(self.consumer(), &self.topic)?;
            self.advance_take_over(scope, &mut take_over)?;
            self.ask_for_news(scope, &mut news);
            self.check_topic_exists(scope, &mut topic_check)?;

            // librdkafka reports an outage many times over; tell the user once each way.
            let state = health.borrow().clone();
            if state.is_ok() == outage {
                outage = !state.is_ok();
                self.lock().out.report(Activity::Connection(state));
            }
            if control.is_paused() != paused {
                paused = control.is_paused();
                self.apply_pause(paused);
            }
            if last_progress.elapsed() >= PROGRESS_INTERVAL {
                let records = self.lock().records;
                let rate = (records - records_at_last_progress) as f64
                    / last_progress.elapsed().as_secs_f64();
                let summary = self.summary(rate, Window::SinceProgress);
                self.lock().out.report(Activity::Progress(summary));
                last_progress = Instant::now();
                records_at_last_progress = records;
            }
            if last_summary.elapsed() >= SUMMARY_INTERVAL {
                let records = self.lock().records;
                let rate = (records - records_at_last_summary) as f64
                    / last_summary.elapsed().as_secs_f64();
                self.report_summary(rate, Window::SinceSummary);
                last_summary = Instant::now();
                records_at_last_summary = records;
            }
        }
    }

    /// Drives the take-over of newly assigned partitions: starts an attempt on a thread of its
    /// own when one is due, and when it has answered, readies the role for every partition
    /// whose start is known and starts reading it. A transient failure (a leader being
    /// elected, the coordinator moving, a broker down) is retried with back-off for as long
    /// as this member owns the partitions; only a permanent one ends the run.
    fn advance_take_over<'scope, 'env>(
        &'env self,
        scope: &'scope Scope<'scope, 'env>,
        state: &mut TakeOver<'scope>,
    ) -> Result<(), ConsumerError> {
        if let Some(handle) = state.running.take_if(|h| h.is_finished()) {
            match handle.join() {
                Ok(answer) => self.finish_take_over(answer, state)?,
                Err(_) => {
                    return Err(ConsumerError::TakeOver {
                        partitions: self.lock().awaiting.iter().copied().collect(),
                        reason: "the thread asking the cluster panicked".to_owned(),
                    });
                }
            }
        }
        if state.running.is_some() || Instant::now() < state.next_at {
            return Ok(());
        }
        let awaiting = self.lock().awaiting.clone();
        state.prepared.retain(|p, _| awaiting.contains(p));
        if !state.prepared.is_empty() {
            let mut failed = Vec::new();
            for (partition, start) in std::mem::take(&mut state.prepared) {
                if let Err(e) = self.start_reading(&start) {
                    failed.push((partition, TakeOverFailure::NotStarted(e)));
                    state.prepared.insert(partition, start);
                }
            }
            self.report_taken_over();
            self.take_over_failed(failed, None, state)?;
        }
        let awaiting: Vec<i32> = self
            .lock()
            .awaiting
            .iter()
            .copied()
            .filter(|p| !state.prepared.contains_key(p))
            .collect();
        if awaiting.is_empty() {
            if state.prepared.is_empty() {
                state.failures = 0;
                state.told = None;
            }
            return Ok(());
        }
        let consumer = self.consumer();
        let history = &consumer.context().history;
        let topic = self.topic.as_str();
        let from_end = consumer.context().from_end;
        // After a failure, and while a broker is (or just was) down, the history reader's
        // idea of the leaders may be stale: have it ask first.
        let refresh_first = state.failures > 0
            || self
                .lock()
                .watch
                .troubled_within(OUTAGE_MEMORY, Instant::now());
        state.running = Some(scope.spawn(move || {
            query_starts(consumer, history, topic, &awaiting, from_end, refresh_first)
        }));
        Ok(())
    }

    /// While a broker is down or gone, asks the cluster for its metadata every
    /// [`NEWS_INTERVAL`], on a thread of its own: the answer updates librdkafka's view of
    /// brokers and leaders, which the next statistics turn into "leader moved" and "broker
    /// back" lines within seconds rather than whenever librdkafka next asks by itself.
    fn ask_for_news<'scope, 'env>(
        &'env self,
        scope: &'scope Scope<'scope, 'env>,
        news: &mut ClusterNews<'scope>,
    ) {
        if news.asking.as_ref().is_some_and(|h| h.is_finished()) {
            news.asking = None;
        }
        if news.asking.is_some()
            || news.asked_at.elapsed() < NEWS_INTERVAL
            || !self.lock().watch.awaits_news()
        {
            return;
        }
        news.asked_at = Instant::now();
        let consumer = self.consumer();
        let topic = self.topic.as_str();
        news.asking = Some(scope.spawn(move || {
            if let Err(e) = consumer.fetch_metadata(Some(topic), NEWS_INTERVAL) {
                tracing::debug!(error = %e, "asking for cluster news");
            }
        }));
    }

    /// When librdkafka has said for [`TOPIC_GONE_AFTER`] that the topic is unknown, asks the
    /// cluster (on a thread of its own) whether it exists; a topic that does not was deleted,
    /// and the role stops saying so rather than wait for records that cannot come.
    fn check_topic_exists<'scope, 'env>(
        &'env self,
        scope: &'scope Scope<'scope, 'env>,
        check: &mut Option<ScopedJoinHandle<'scope, Option<bool>>>,
    ) -> Result<(), ConsumerError> {
        if let Some(handle) = check.take_if(|h| h.is_finished()) {
            match handle.join().ok().flatten() {
                Some(false) => {
                    return Err(ConsumerError::TopicDeleted {
                        topic: self.topic.clone(),
                        brokers: self.brokers.clone(),
                    });
                }
                // It exists: metadata was settling (librdkafka says so again if not).
                Some(true) => self.lock().topic_missing_since = None,
                // No answer: ask again after another while.
                None => self.lock().topic_missing_since = Some(Instant::now()),
            }
        }
        let due = self
            .lock()
            .topic_missing_since
            .is_some_and(|since| since.elapsed() >= TOPIC_GONE_AFTER);
        if due && check.is_none() {
            let consumer = self.consumer();
            let topic = self.topic.as_str();
            *check = Some(scope.spawn(move || topic_exists(consumer, topic)));
        }
        Ok(())
    }

    fn finish_take_over(
        &self,
        answer: StartsAnswer,
        state: &mut TakeOver<'_>,
    ) -> Result<(), ConsumerError> {
        let history = &self.consumer().context().history;
        let mut ready = Vec::new();
        let mut failed: Vec<(i32, TakeOverFailure)> = Vec::new();
        {
            let mut shared = self.lock();
            for (partition, result) in answer.starts {
                // Revoked while the attempt ran: no longer ours to take over.
                if !shared.awaiting.contains(&partition) {
                    continue;
                }
                let start = match result {
                    Ok(start) => start,
                    Err(e) => {
                        failed.push((partition, TakeOverFailure::Kafka(e)));
                        continue;
                    }
                };
                // One partition at a time, so that one whose history cannot be read yet
                // does not hold up the others.
                let Shared { role, out, .. } = &mut *shared;
                match role.assigned(std::slice::from_ref(&start), history, out.as_mut()) {
                    Ok(()) => ready.push(start),
                    Err(e) => failed.push((partition, TakeOverFailure::Role(e))),
                }
            }
        }
        for start in ready {
            if let Err(e) = self.start_reading(&start) {
                failed.push((start.partition, TakeOverFailure::NotStarted(e)));
                state.prepared.insert(start.partition, start);
            }
        }
        self.report_taken_over();
        self.take_over_failed(failed, answer.topic_exists, state)
    }

    /// Decides what failed partitions mean: a permanent failure ends the run; a transient one
    /// is tried again after a back-off, and told once (not once per attempt).
    fn take_over_failed(
        &self,
        failed: Vec<(i32, TakeOverFailure)>,
        topic_exists: Option<bool>,
        state: &mut TakeOver<'_>,
    ) -> Result<(), ConsumerError> {
        if failed.is_empty() {
            state.failures = 0;
            state.told = None;
            state.topic_gone_since = None;
            return Ok(());
        }
        let partitions: Vec<i32> = failed.iter().map(|(p, _)| *p).collect();
        let (_, first) = &failed[0];
        match first.fault() {
            Fault::Permanent => {
                return Err(ConsumerError::TakeOver {
                    partitions,
                    reason: first.words(),
                });
            }
            Fault::TopicMaybeGone if topic_exists == Some(false) => {
                let since = *state.topic_gone_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= TOPIC_GONE_AFTER {
                    return Err(ConsumerError::TopicDeleted {
                        topic: self.topic.clone(),
                        brokers: self.brokers.clone(),
                    });
                }
            }
            Fault::TopicMaybeGone | Fault::Transient => state.topic_gone_since = None,
        }
        state.failures += 1;
        state.next_at = Instant::now() + take_over_backoff(state.failures);
        let (are, they_are) = if partitions.len() == 1 {
            ("is", "it is")
        } else {
            ("are", "they are")
        };
        let told = format!(
            "{} {are} not ready to read yet: {}; trying again until {they_are}",
            partition_words(&partitions),
            first.words()
        );
        if state.told.as_ref() != Some(&told) {
            state.told = Some(told.clone());
            self.lock().out.report(Activity::Notice(told));
        }
        Ok(())
    }

    /// Starts reading a partition that was paused for its take-over, at exactly the offset
    /// the role was readied for (records fetched and dropped meanwhile are read again).
    fn start_reading(&self, start: &PartitionStart) -> KafkaResult<()> {
        let consumer = self.consumer();
        consumer.seek(
            &self.topic,
            start.partition,
            Offset::Offset(start.start),
            Duration::from_secs(1),
        )?;
        if !self.control().is_paused() {
            let mut resumed = TopicPartitionList::new();
            resumed.add_partition(&self.topic, start.partition);
            consumer.resume(&resumed)?;
        }
        let mut shared = self.lock();
        shared.awaiting.remove(&start.partition);
        shared.owned.insert(start.partition, false);
        shared.taken_over.push(start.clone());
        Ok(())
    }

    /// Reports the partitions [`GroupConsumer::start_reading`] started, in one line.
    fn report_taken_over(&self) {
        let mut shared = self.lock();
        if shared.taken_over.is_empty() {
            return;
        }
        let partitions = std::mem::take(&mut shared.taken_over);
        let now = Instant::now();
        let arrived = shared.awaiting_since.unwrap_or(now);
        if shared.awaiting.is_empty() {
            shared.awaiting_since = None;
        }
        shared.changed_at = now;
        let waited = shared.idle_since.take().map_or(Duration::ZERO, |since| {
            arrived.saturating_duration_since(since)
        });
        let now_owned = shared.owned();
        shared.out.report(Activity::Assigned {
            partitions,
            waited,
            took: now.duration_since(arrived),
            now_owned,
        });
    }

    /// Pauses or resumes fetching from every owned partition. The member stays in its group
    /// (heartbeats go on), so its partitions stay its own and their lag grows.
    fn apply_pause(&self, paused: bool) {
        let owned = self.lock().owned();
        let mut partitions = TopicPartitionList::new();
        for &p in &owned {
            partitions.add_partition(&self.topic, p);
        }
        let result = if paused {
            self.consumer().pause(&partitions)
        } else {
            self.consumer().resume(&partitions)
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, paused, "pause/resume");
        }
        self.lock().out.report(Activity::Paused(paused));
    }

    /// Handles one polled message; returns how many records were handled (0 or 1).
    fn handle(&self, message: KafkaResult<BorrowedMessage<'_>>) -> Result<usize, ConsumerError> {
        match message {
            Ok(message) => {
                let record = ConsumedRecord::from_message(&message);
                let mut shared = self.lock();
                // A record fetched just before its partition was revoked belongs to the next
                // owner now; a failure in a callback stops everything.
                if shared.failure.is_some() || !shared.owned.contains_key(&record.partition) {
                    return Ok(0);
                }
                let Shared { role, out, .. } = &mut *shared;
                role.handle(&record, out.as_mut())
                    .map_err(ConsumerError::Role)?;
                shared.pending.insert(record.partition, record.offset + 1);
                shared.owned.insert(record.partition, false);
                shared.records += 1;
                shared.consumer_trouble = None;
                shared.topic_missing_since = None;
                // Only the producer's clock says when an event was made; a broker's
                // LogAppendTime would leave out the time to reach Kafka.
                if let Timestamp::CreateTime(created_ms) = message.timestamp() {
                    shared.latency.record_since(created_ms, now_micros());
                }
                Ok(1)
            }
            Err(KafkaError::PartitionEOF(partition)) => {
                if let Some(eof) = self.lock().owned.get_mut(&partition) {
                    *eof = true;
                }
                Ok(0)
            }
            Err(e) => {
                self.consumer_error(e)?;
                Ok(0)
            }
        }
    }

    /// Consumer-level errors: fatal ones stop the member, the others are reported while
    /// librdkafka retries.
    fn consumer_error(&self, error: KafkaError) -> Result<(), ConsumerError> {
        tracing::debug!(%error, "consumer error");
        let code = error.rdkafka_error_code();
        if matches!(error, KafkaError::MessageConsumptionFatal(_))
            || code == Some(RDKafkaErrorCode::Fatal)
        {
            return Err(ConsumerError::Kafka(error));
        }
        if matches!(
            code,
            Some(RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::AllBrokersDown)
        ) {
            // ConnectionHealth reports outages, once.
            return Ok(());
        }
        if code == Some(RDKafkaErrorCode::InconsistentGroupProtocol) {
            // librdkafka tries to join again every few seconds and reports each refusal;
            // explain once, until the member gets partitions.
            let mut shared = self.lock();
            if !std::mem::replace(&mut shared.refused_by_group, true) {
                let notice = inconsistent_protocol_notice(
                    &self.options.group,
                    self.assignor.as_deref().unwrap_or(CLASSIC_ASSIGNOR),
                );
                shared.out.report(Activity::Notice(notice));
            }
            return Ok(());
        }
        if matches!(
            code,
            Some(
                RDKafkaErrorCode::TopicAuthorizationFailed
                    | RDKafkaErrorCode::GroupAuthorizationFailed
                    | RDKafkaErrorCode::ClusterAuthorizationFailed
            )
        ) {
            return Err(ConsumerError::NotAuthorized {
                topic: self.topic.clone(),
                group: self.options.group.clone(),
                reason: fault::in_words(&error),
            });
        }
        if fault::classify(&error) == Fault::TopicMaybeGone {
            // Checked against the cluster's metadata in the poll loop (check_topic_exists).
            self.lock()
                .topic_missing_since
                .get_or_insert_with(Instant::now);
        }
        // While a broker is down librdkafka reports the same error for every failed fetch:
        // tell it once, until records flow again.
        let text = format!("consumer error: {error}");
        let mut shared = self.lock();
        if shared.consumer_trouble.as_ref() != Some(&text) {
            shared.consumer_trouble = Some(text.clone());
            shared.out.report(Activity::Notice(text));
        }
        Ok(())
    }

    /// Whether every assigned partition has been read to its end. An empty assignment counts
    /// only once it has lasted beyond a rebalance or two (the group may be about to give this
    /// member partitions).
    fn drained(&self) -> bool {
        let shared = self.lock();
        if !shared.assigned_once || !shared.awaiting.is_empty() {
            return false;
        }
        if shared.owned.is_empty() {
            shared.changed_at.elapsed() > EMPTY_ASSIGNMENT_GRACE
        } else {
            shared.owned.values().all(|&eof| eof)
        }
    }

    /// The role's counters now, with the latency of `window`, which starts anew.
    fn summary(&self, rate: f64, window: Window) -> Summary {
        let mut shared = self.lock();
        let latency = match window {
            Window::SinceProgress => &mut shared.latency.since_progress,
            Window::SinceSummary => &mut shared.latency.since_summary,
            Window::Run => &mut shared.latency.run,
        };
        let latency_stats = latency.stats();
        latency.clear();
        let (malformed, malformed_by_kind) = shared.role.malformed();
        Summary {
            role: self.options.role,
            group: self.options.group.clone(),
            last: window == Window::Run,
            records: shared.records,
            malformed,
            malformed_by_kind,
            events_per_s: rate,
            latency: latency_stats,
            // What this member owns now; statistics arrive once a second, so a partition
            // assigned since the last ones shows without numbers rather than not at all.
            partitions: shared
                .owned()
                .into_iter()
                .map(|partition| {
                    shared
                        .progress
                        .get(&partition)
                        .cloned()
                        .unwrap_or(PartitionProgress {
                            partition,
                            position: None,
                            committed: None,
                            end: None,
                            lag: None,
                        })
                })
                .collect(),
            counters: shared.role.counters(),
        }
    }

    fn report_summary(&self, rate: f64, window: Window) {
        let summary = self.summary(rate, window);
        self.lock().out.report(Activity::Summary(summary));
    }

    /// Checkpoints, commits synchronously and leaves the group. `checkpoint`: false after a
    /// role failure, when what was handled may not be durable and must not be committed.
    /// Returns the commit's outcome and whether leaving the group finished.
    fn close(&self, checkpoint: bool) -> (Result<(), ConsumerError>, bool) {
        let consumer = self.consumer();
        let committed = if checkpoint {
            self.commit_before_leaving()
        } else {
            self.lock().pending.clear();
            Ok(())
        };
        // The last summary shows where this member leaves its partitions, read from the
        // cluster rather than from statistics that may be a second old.
        if self.health().current().is_ok()
            && let Some(progress) = self.final_progress()
        {
            self.lock().progress = progress;
        }
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-3);
        let records = self.lock().records;
        self.report_summary(records as f64 / elapsed, Window::Run);
        // Leaving the group (rather than letting the session time out) moves our
        // partitions to the other members at once. close_queue triggers the final revoke.
        // Records still arriving meanwhile are not handled: they were never stored, so the
        // next owner reads them.
        let left = close_promptly(consumer, CLUSTER_TIMEOUT);
        (committed, left)
    }

    /// The last checkpoint and commit. While the group is rebalancing (another member joining
    /// or leaving) the coordinator refuses commits, and right after it, commits of the old
    /// generation; keep serving the rebalance until it accepts, rather than leave the next
    /// owner records this member already handled.
    fn commit_before_leaving(&self) -> Result<(), ConsumerError> {
        let consumer = self.consumer();
        // With the cluster gone, waiting for a rebalance to settle is pointless: one try.
        let deadline = if self.health().current().is_ok() {
            Instant::now() + EMPTY_ASSIGNMENT_GRACE
        } else {
            Instant::now()
        };
        loop {
            let result = {
                let mut shared = self.lock();
                shared
                    .checkpoint(consumer, &self.topic)
                    .and_then(|()| shared.commit(consumer).map_err(ConsumerError::Kafka))
            };
            match result {
                Err(ConsumerError::Kafka(e)) if is_rebalancing(&e) && Instant::now() < deadline => {
                    // Rebalance callbacks run inside poll; records it returns are not handled
                    // (nor stored): whoever owns their partition next reads them.
                    let _ = consumer.poll(POLL_TIMEOUT);
                }
                other => return other,
            }
        }
    }

    /// Committed offset, end offset and lag of every owned partition, asked of the cluster.
    fn final_progress(&self) -> Option<BTreeMap<i32, PartitionProgress>> {
        const QUICK: Duration = Duration::from_secs(3);
        let owned = self.lock().owned();
        let mut query = TopicPartitionList::new();
        for &p in &owned {
            query.add_partition(&self.topic, p);
        }
        let committed = self.consumer().committed_offsets(query, QUICK).ok()?;
        let history = &self.consumer().context().history;
        owned
            .into_iter()
            .map(|partition| {
                let (_, end) = history.bounds(partition).ok()?;
                let committed = committed
                    .find_partition(&self.topic, partition)
                    .and_then(|e| match e.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    });
                Some((
                    partition,
                    PartitionProgress {
                        partition,
                        position: committed,
                        committed,
                        end: Some(end),
                        lag: committed.map(|c| end - c),
                    },
                ))
            })
            .collect()
    }
}

impl<R: Role> std::fmt::Debug for GroupConsumer<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupConsumer")
            .field("group", &self.options.group)
            .field("topic", &self.topic)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How main prints an error: anyhow's chain, every cause once.
    fn printed(error: ConsumerError) -> String {
        crate::report::human::error_chain(&anyhow::Error::new(error))
    }

    #[test]
    fn errors_say_their_reason_once() {
        // MEASURED.md: "…the consumer failed: Meta data fetch error: UnknownPartition (Local:
        // Unknown partition): the consumer failed: Meta data fetch error: …".
        let reason = "UnknownPartition (Local: Unknown partition)";
        for (error, expected) in [
            (
                ConsumerError::Kafka(KafkaError::MetadataFetch(
                    RDKafkaErrorCode::UnknownPartition,
                )),
                "the consumer failed: Meta data fetch error: UnknownPartition (Local: Unknown \
                 partition)",
            ),
            (
                ConsumerError::Subscribe {
                    topic: "t".into(),
                    error: KafkaError::Subscription(
                        "UnknownPartition (Local: Unknown \
                                                     partition)"
                            .into(),
                    ),
                },
                "cannot subscribe to t: Subscription error: UnknownPartition (Local: Unknown \
                 partition)",
            ),
        ] {
            let text = printed(error);
            assert_eq!(text, expected);
            assert_eq!(text.matches(reason).count(), 1, "{text}");
        }
        // Display alone (the live view, logs) must not lose the reason either.
        let error = ConsumerError::Kafka(KafkaError::OffsetFetch(RDKafkaErrorCode::Fatal));
        assert!(std::error::Error::source(&error).is_none());
        assert!(error.to_string().contains("Fatal"), "{error}");
    }

    #[test]
    fn a_permanent_take_over_failure_names_the_partitions_in_words() {
        let failure = TakeOverFailure::Kafka(KafkaError::OffsetFetch(
            RDKafkaErrorCode::GroupAuthorizationFailed,
        ));
        assert_eq!(failure.fault(), Fault::Permanent);
        let error = ConsumerError::TakeOver {
            partitions: vec![0, 1, 2],
            reason: failure.words(),
        };
        assert_eq!(
            printed(error),
            "cannot take over partitions 0, 1, 2: the cluster does not authorize this client \
             (check the ACLs and -X credentials) (GroupAuthorizationFailed)"
        );
    }

    #[test]
    fn a_role_failing_on_the_clusters_weather_is_retried_and_on_its_file_is_not() {
        let replay: RoleError = Box::new(KafkaError::MessageConsumption(
            RDKafkaErrorCode::OperationTimedOut,
        ));
        assert_eq!(TakeOverFailure::Role(replay).fault(), Fault::Transient);
        let file: RoleError = Box::new(std::io::Error::other("disk full"));
        assert_eq!(TakeOverFailure::Role(file).fault(), Fault::Permanent);
    }

    #[test]
    fn take_over_retries_back_off_to_a_ceiling() {
        let waits: Vec<Duration> = (1..=7).map(take_over_backoff).collect();
        assert_eq!(
            waits,
            [250, 500, 1000, 2000, 4000, 5000, 5000].map(Duration::from_millis)
        );
    }

    #[test]
    fn commits_waiting_for_the_coordinator_are_one_kind_of_trouble() {
        let (kind, words) = commit_trouble(&KafkaError::ConsumerCommit(
            RDKafkaErrorCode::WaitingForCoordinator,
        ));
        assert_eq!(
            words,
            "the group's coordinator is moving or still loading (WaitingForCoordinator); the \
             offsets stay stored and the next commit carries them"
        );
        // One kind, so that failing every second, with changing codes, is told once.
        for code in [
            RDKafkaErrorCode::NotCoordinator,
            RDKafkaErrorCode::CoordinatorLoadInProgress,
        ] {
            assert_eq!(commit_trouble(&KafkaError::ConsumerCommit(code)).0, kind);
        }
        let (member, words) = commit_trouble(&KafkaError::ConsumerCommit(
            RDKafkaErrorCode::UnknownMemberId,
        ));
        assert_ne!(member, kind);
        assert!(words.starts_with("the group no longer knows this member (UnknownMemberId)"));
    }
}
