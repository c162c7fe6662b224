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

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
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
use super::group_protocol::{
    BUILT_IN_KIP848_NOTICE, BrokerSideProperty, CLASSIC_ASSIGNOR, GroupProtocol, MemberProtocol,
    inconsistent_protocol_notice,
};
use super::topic::{APPEAR_WAIT, Patience, TopicError, TopicUser, TopicWaitError, wait_for_topic};
use crate::activity::{Activity, PartitionProgress, PartitionStart, Report, RoleCounters, Summary};
use crate::config::{KafkaSettings, redacted};
use crate::latency::Latencies;
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

/// How often a failed assignment (cluster unreachable while fetching offsets or history) is
/// tried before the member gives up.
const ASSIGN_ATTEMPTS: u32 = 3;

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

/// An error a role returns from its work; the runtime stops and reports it.
pub type RoleError = Box<dyn std::error::Error + Send + Sync>;

/// One record, borrowed from librdkafka for the time the role handles it.
#[derive(Clone, Copy, Debug)]
pub struct ConsumedRecord<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// The record's Kafka timestamp in milliseconds since the epoch, when it has one.
    pub timestamp_ms: Option<i64>,
}

impl<'a> ConsumedRecord<'a> {
    fn from_message(message: &'a impl Message) -> ConsumedRecord<'a> {
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

/// What a role does with the records of its partitions.
pub trait Role: Send + 'static {
    /// Partitions were assigned; called before any of their records is handled, so a role
    /// can rebuild per-partition state from `history`.
    fn assigned(
        &mut self,
        partitions: &[PartitionStart],
        history: &History,
        out: &mut dyn Report,
    ) -> Result<(), RoleError>;

    /// Partitions were revoked; their state can be dropped.
    fn revoked(&mut self, partitions: &[i32], out: &mut dyn Report);

    /// Handles one record. When this returns Ok, the record counts as done once the next
    /// [`Role::flush`] succeeds.
    fn handle(
        &mut self,
        record: &ConsumedRecord<'_>,
        out: &mut dyn Report,
    ) -> Result<(), RoleError>;

    /// Makes everything handled so far durable (write, fsync, deliver). Offsets are stored,
    /// and later committed, only after this returns Ok.
    fn flush(&mut self) -> Result<(), RoleError> {
        Ok(())
    }

    /// Malformed records counted, total and by kind.
    fn malformed(&self) -> (u64, BTreeMap<&'static str, u64>);

    /// The role's own counters.
    fn counters(&self) -> RoleCounters;
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
    // The reasons below are part of their messages; as `source`s they would be printed a
    // second time in the error chain.
    #[error("cannot subscribe to {topic}: {reason}")]
    Subscribe { topic: String, reason: KafkaError },
    #[error("cannot take over partitions {partitions:?}: {reason}")]
    Assign {
        partitions: Vec<i32>,
        reason: Box<ConsumerError>,
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
        self.reader
            .fetch_watermarks(&self.topic, partition, CLUSTER_TIMEOUT)
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

/// The bookkeeping the poll loop and the rebalance callbacks share.
struct Shared<R> {
    role: R,
    out: Box<dyn Report>,
    /// Per partition, the offset after the last record handled and not yet stored.
    pending: BTreeMap<i32, i64>,
    /// The current assignment, and per partition whether its end has been reached.
    owned: BTreeMap<i32, bool>,
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

impl<R: Role> GroupContext<R> {
    /// Learns where the new partitions start and lets the role get ready for them (rebuild
    /// state, check its file) before any of their records is handled.
    fn take_over(
        &self,
        consumer: &BaseConsumer<Self>,
        assigned: &[i32],
    ) -> Result<Vec<PartitionStart>, ConsumerError> {
        let starts = partition_starts(
            consumer,
            &self.history,
            &self.topic,
            assigned,
            self.from_end,
        )
        .map_err(ConsumerError::Kafka)?;
        let mut shared = self.lock();
        let Shared { role, out, .. } = &mut *shared;
        role.assigned(&starts, &self.history, out.as_mut())
            .map_err(ConsumerError::Role)?;
        Ok(starts)
    }
}

impl<R: Role> ClientContext for GroupContext<R> {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.health.log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.health.error(error, reason);
    }

    fn stats(&self, statistics: Statistics) {
        let Some(topic) = statistics.topics.get(&self.topic) else {
            return;
        };
        let known = |v: i64| (v >= 0).then_some(v);
        let mut shared = self.lock();
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
        let mut uncommitted = Vec::new();
        if !lost {
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
            shared.progress.remove(p);
            shared.stored.remove(p);
        }
        shared.changed_at = Instant::now();
        if shared.owned.is_empty() {
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

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Assign(partitions) = rebalance else {
            return;
        };
        let started = Instant::now();
        let mut assigned: Vec<i32> = partitions
            .elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .collect();
        assigned.sort_unstable();
        {
            let mut shared = self.lock();
            shared.assigned_once = true;
            shared.changed_at = started;
        }
        if assigned.is_empty() {
            // A cooperative rebalance round that gives this member nothing (yet).
            return;
        }
        let mut attempt = 1;
        let starts = loop {
            match self.take_over(consumer, &assigned) {
                Ok(starts) => break starts,
                Err(e) if attempt < ASSIGN_ATTEMPTS => {
                    tracing::debug!(error = %e, attempt, "taking over partitions failed");
                    attempt += 1;
                    std::thread::sleep(Duration::from_secs(1));
                }
                Err(e) => {
                    self.lock().failure = Some(ConsumerError::Assign {
                        partitions: assigned,
                        reason: Box::new(e),
                    });
                    return;
                }
            }
        };
        if self.control.is_paused() {
            let mut paused = TopicPartitionList::new();
            for &p in &assigned {
                paused.add_partition(&self.topic, p);
            }
            if let Err(e) = consumer.pause(&paused) {
                tracing::debug!(error = %e, "pausing new partitions");
            }
        }
        let mut shared = self.lock();
        shared.refused_by_group = false;
        for p in &assigned {
            shared.owned.insert(*p, false);
        }
        shared.changed_at = Instant::now();
        let waited = shared
            .idle_since
            .take()
            .map_or(Duration::ZERO, |since| started.duration_since(since));
        let now_owned = shared.owned();
        shared.out.report(Activity::Assigned {
            partitions: starts,
            waited,
            took: started.elapsed(),
            now_owned,
        });
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
            Err(e) => shared.out.report(Activity::CommitFailed {
                reason: e.to_string(),
            }),
        }
    }
}

/// Where each newly assigned partition starts: the group's committed offset, or the earliest
/// one for a new group; with the partition's current bounds.
fn partition_starts<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    history: &History,
    topic: &str,
    partitions: &[i32],
    from_end: bool,
) -> KafkaResult<Vec<PartitionStart>> {
    let mut query = TopicPartitionList::new();
    for &p in partitions {
        query.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(query, CLUSTER_TIMEOUT)?;
    partitions
        .iter()
        .map(|&partition| {
            let (low, high) = history.bounds(partition)?;
            let committed =
                committed
                    .find_partition(topic, partition)
                    .and_then(|e| match e.offset() {
                        Offset::Offset(o) if o >= 0 => Some(o),
                        _ => None,
                    });
            Ok(PartitionStart {
                partition,
                // A committed offset below the earliest one (retention removed records)
                // resets to the earliest, as auto.offset.reset=earliest does.
                start: match committed {
                    Some(c) => c.max(low),
                    None if from_end => high,
                    None => low,
                },
                committed: committed.is_some(),
                low,
                high,
            })
        })
        .collect()
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
            .map_err(|reason| ConsumerError::Subscribe {
                topic: self.topic.clone(),
                reason,
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
            let mut polled = self.consumer().poll(POLL_TIMEOUT);
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
        let mut shared = self.lock();
        if code == Some(RDKafkaErrorCode::InconsistentGroupProtocol) {
            // librdkafka tries to join again every few seconds and reports each refusal;
            // explain once, until the member gets partitions.
            if !std::mem::replace(&mut shared.refused_by_group, true) {
                let notice = inconsistent_protocol_notice(
                    &self.options.group,
                    self.assignor.as_deref().unwrap_or(CLASSIC_ASSIGNOR),
                );
                shared.out.report(Activity::Notice(notice));
            }
            return Ok(());
        }
        shared
            .out
            .report(Activity::Notice(format!("consumer error: {error}")));
        Ok(())
    }

    /// Whether every assigned partition has been read to its end. An empty assignment counts
    /// only once it has lasted beyond a rebalance or two (the group may be about to give this
    /// member partitions).
    fn drained(&self) -> bool {
        let shared = self.lock();
        if !shared.assigned_once {
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
