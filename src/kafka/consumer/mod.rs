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
//! KIP-848's consumer protocol (`-X group.protocol=consumer`, see
//! [`crate::kafka::group_protocol`]) every rebalance is incremental. Either way a member keeps
//! the partitions that do not move and gives up the others while the group is stable. With
//! the eager protocol, the built-in broker refuses offset commits for the whole time a
//! rebalance is prepared, so the revoking member cannot commit and the next owner would read
//! the last records again.
//!
//! Records are handled on the thread that polls, so there is no queue between Kafka and the
//! role that could lose or reorder anything. The role and the bookkeeping sit behind one
//! mutex that the rebalance callbacks (which librdkafka runs inside `poll`) share; it is never
//! contended, only the callback and the loop take it, on the same thread.
//!
//! The runtime's parts: `ledger` (which offsets may be stored and committed: pure, tested
//! without a broker), `shared` (the state the loop and the callbacks share, where the
//! ledger's answers are applied), `context` (the librdkafka callbacks), `poll` (the loop),
//! `take_over` (starting newly assigned partitions), `history` (reading outside the group),
//! `config` (the settings it insists on) and `error` (why a member stops).

mod config;
mod context;
mod error;
mod history;
mod ledger;
mod poll;
mod shared;
mod take_over;
mod undecodable;

#[cfg(test)]
mod failure_tests;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};

pub use self::config::ConsumerOptions;
use self::context::GroupContext;
pub use self::error::ConsumerError;
use self::error::is_rebalancing;
pub(crate) use self::history::History;
use self::poll::Window;
use self::shared::Shared;
use crate::config::KafkaSettings;
use crate::kafka::broker::is_built_in_broker;
use crate::kafka::client::{
    ConnectError, Connection, ConnectionHealth, close_promptly, process_tag,
};
use crate::kafka::group_protocol::{BUILT_IN_KIP848_NOTICE, GroupProtocol, MemberProtocol};
use crate::kafka::topic::{
    APPEAR_WAIT, Patience, TopicAnswer, TopicMetadata, TopicUser, TopicWaitError, wait_for_topic,
};
use crate::report::activity::{Activity, PartitionProgress, Report};
use crate::roles::Role;
use crate::shutdown::Shutdown;

/// How long `poll` waits when nothing arrives: also how quickly a stop request is noticed.
const POLL_TIMEOUT: Duration = Duration::from_millis(100);

/// With `--exit-at-end`, an empty assignment only counts as "nothing to drain" once it has
/// lasted longer than two rebalances of the built-in broker (each waits the session timeout
/// minus a second): a cooperative join hands out partitions in the second round.
const EMPTY_ASSIGNMENT_GRACE: Duration = Duration::from_secs(14);

/// A topic the cluster says it does not know, for this long, was deleted: a restarted broker
/// may briefly answer without it, a deleted topic stays gone.
const TOPIC_GONE_AFTER: Duration = Duration::from_secs(15);

/// Partitions lost within this long of a broker failure were lost to the outage.
const OUTAGE_MEMORY: Duration = Duration::from_secs(30);

/// How often a summary is reported (printed), and how often progress is (for live views).
pub const SUMMARY_INTERVAL: Duration = Duration::from_secs(5);
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// How long the start-up check and the metadata calls wait for the cluster.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// The protocol it joins with, and the assignor it asks for (see
    /// [`crate::kafka::group_protocol`]).
    protocol: GroupProtocol,
    assignor: Option<String>,
    /// When the run started, for the average rate of the final summary.
    started: Instant,
    /// Whether [`GroupConsumer::connect`] succeeded.
    connected: bool,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Ctrl-C or SIGTERM.
    Stopped,
    /// `--exit-at-end` and every assigned partition is drained.
    Drained,
}

impl<R: Role> GroupConsumer<R> {
    /// Creates the consumer (no I/O yet).
    pub fn new(
        settings: &KafkaSettings,
        options: ConsumerOptions,
        role: R,
        out: Box<dyn Report>,
    ) -> Result<GroupConsumer<R>, ConsumerError> {
        config::refuse_managed(settings)?;
        let client_id = format!("orderflow-{}-{}", options.role, process_tag());
        // The assignor, session timeout and heartbeat interval are the client's to set only
        // under the classic protocol; librdkafka refuses a consumer-protocol member that sets
        // them, so a -X that does is refused here, naming it as the user's.
        let protocol = GroupProtocol::of(settings);
        protocol.check(settings)?;
        let config = config::member_config(settings, &options, &client_id, protocol);
        // The id the cluster will know the member by: a `-X client.id` replaces ours, and the
        // member's announcements must carry the same one for group views to match them.
        let client_id = config.get("client.id").map_or(client_id, str::to_owned);
        let shared = Arc::new(Mutex::new(Shared::new(role, out)));
        let context = GroupContext {
            health: ConnectionHealth::default(),
            control: ConsumerControl::default(),
            shared: Arc::clone(&shared),
            history: History::new(settings).map_err(ConsumerError::Create)?,
            topic: settings.topic.clone(),
            from_end: config::starts_at_end(settings),
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
        crate::lock::lock(&self.shared)
    }

    /// Checks that the cluster answers and the topic exists (asking again for a moment
    /// while it does not, see [`crate::kafka::topic`]). Fails fast when librdkafka reports every
    /// broker down.
    fn check_cluster(&self) -> Result<(), ConsumerError> {
        let health = self.health().subscribe();
        let patience = Patience {
            reach: CLUSTER_TIMEOUT,
            appear: APPEAR_WAIT,
        };
        match wait_for_topic(
            &Serving(self.consumer()),
            &self.topic,
            &self.brokers,
            TopicUser::Consumer,
            &health,
            patience,
        ) {
            Ok(_) => Ok(()),
            Err(TopicWaitError::Topic(e)) => Err(ConsumerError::Topic(e)),
            Err(TopicWaitError::Connection(state)) => {
                let brokers = self.brokers.clone();
                Err(ConsumerError::Connect(match state {
                    Connection::Refused { reason } => ConnectError::Refused { brokers, reason },
                    Connection::Unreachable { reason } | Connection::Fatal { reason } => {
                        ConnectError::Unreachable { brokers, reason }
                    }
                    Connection::Ok => ConnectError::no_answer(brokers, CLUSTER_TIMEOUT),
                }))
            }
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
        let checkpoint = result
            .as_ref()
            .map_or_else(ConsumerError::keeps_handled_work, |_| true);
        let (committed, left) = self.close(checkpoint);
        self.lock().out.report(Activity::Left);
        if !left {
            // Dropping a consumer that could not finish leaving waits for the cluster
            // without a deadline; the process is about to exit, so let the OS clean up.
            std::mem::forget(self.consumer.take());
        }
        let late = self.lock().failure.take();
        first_failure(result, committed, late)
            .map_err(|error| error.leaving(&self.lock().ledger.left_uncommitted()))
    }

    /// Checkpoints, commits synchronously and leaves the group. `checkpoint`: false after a
    /// failure, when what was handled since the last checkpoint may not be durable and must
    /// not be committed (what was stored before still is).
    /// Returns the commit's outcome and whether leaving the group finished.
    fn close(&self, checkpoint: bool) -> (Result<(), ConsumerError>, bool) {
        let consumer = self.consumer();
        let committed = if checkpoint {
            self.commit_before_leaving()
        } else {
            self.lock().ledger.abandon();
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
                    // A revocation inside that poll whose flush failed: nothing it covered is
                    // committed, and that failure is the member's reason to stop.
                    if let Some(failure) = self.lock().failure.take() {
                        return Err(failure);
                    }
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
        let at_end: Vec<i32> = owned
            .iter()
            .copied()
            .filter(|&p| self.lock().ledger.at_end(p))
            .collect();
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
                // A partition read to its end without a commit (it was empty) stands at its
                // end: null would say it was never read.
                let position = committed.or(at_end.contains(&partition).then_some(end));
                Some((
                    partition,
                    PartitionProgress {
                        partition,
                        position,
                        committed,
                        end: Some(end),
                        lag: position.map(|p| end - p),
                    },
                ))
            })
            .collect()
    }
}

/// The consumer's metadata client, serving the consumer's events around each request: a
/// consumer's error events (a refused connection, every broker down) reach its context
/// only through `poll`, so without it the start-up check heard nothing of them and waited
/// out its 10 s, where the producer (whose events a thread serves) said so in 0.2 s.
struct Serving<'a, C: ConsumerContext>(&'a BaseConsumer<C>);

impl<C: ConsumerContext> Serving<'_, C> {
    /// Not subscribed yet, so a poll returns no record, only serves events.
    fn serve(&self) {
        let _ = self.0.poll(Duration::ZERO);
    }
}

impl<C: ConsumerContext> TopicMetadata for Serving<'_, C> {
    fn describe_topic(&self, topic: &str, timeout: Duration) -> Option<TopicAnswer> {
        self.serve();
        let answer = self.0.client().describe_topic(topic, timeout);
        self.serve();
        answer
    }

    fn topic_names(&self, timeout: Duration) -> Option<Vec<String>> {
        self.serve();
        self.0.client().topic_names(timeout)
    }
}

/// How a run ends: with the first failure, the member's reason to stop; the loop's, else the
/// last checkpoint's or commit's (`committed`), else one in a rebalance callback while leaving
/// (`late`: in the polls of the last commit, or the final revocation). Later ones follow from
/// the first.
fn first_failure(
    result: Result<Ending, ConsumerError>,
    committed: Result<(), ConsumerError>,
    late: Option<ConsumerError>,
) -> Result<Ending, ConsumerError> {
    let ending = result?;
    committed?;
    late.map_or(Ok(ending), Err)
}

impl<R: Role> std::fmt::Debug for GroupConsumer<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupConsumer")
            .field("group", &self.options.group)
            .field("topic", &self.topic)
            .finish()
    }
}
