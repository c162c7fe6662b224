//! What a stage is asked to be, the librdkafka settings its two clients need, the consumer's
//! callbacks (rebalances, connection health), and why a stage stops.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;

use crate::config::KafkaSettings;
use crate::domain::payment::Semantics;
use crate::kafka::client::{ConnectionHealth, process_tag};
use crate::kafka::topic::TopicError;

/// Options of a read-process-write stage.
#[derive(Clone, Debug)]
pub(crate) struct StageOptions {
    /// The stage's name (`payments`): client ids, transactional ids, reports.
    pub(crate) stage: &'static str,
    /// The consumer group.
    pub(crate) group: String,
    /// This member's name within the group: its static group.instance.id and, with
    /// exactly-once, its transactional.id. A member restarted under the same name takes
    /// its place at once (no rebalance) and fences the one it replaces.
    pub(crate) instance: String,
    /// Where the stage produces.
    pub(crate) output: String,
    pub(crate) semantics: Semantics,
    /// Stop once every assigned partition is read to its end.
    pub(crate) exit_at_end: bool,
    /// Simulated work per output record (a payment provider's answer), spent between
    /// producing one output and the next: it widens the window in which a crash finds a
    /// batch half produced, which is where the semantics differ.
    pub(crate) work: std::time::Duration,
}

impl StageOptions {
    /// The static member id: one per `--instance`.
    pub(crate) fn member(&self) -> String {
        format!("{}-{}", self.stage, self.instance)
    }

    /// The transactional.id (exactly-once): one per member, KIP-447 style. Kafka fences
    /// an older producer with the same id, and the group's generation fences a member the
    /// group has moved on from; a restarted member's `init_transactions` also aborts the
    /// transaction its killed predecessor left open, so readers are not held up by it.
    pub(crate) fn transactional_id(&self) -> String {
        format!("orderflow-{}-{}-{}", self.stage, self.group, self.instance)
    }
}

/// Why a stage stops.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StageError {
    #[error("cannot create the Kafka clients: {0}")]
    Create(KafkaError),
    #[error("cannot reach the cluster at {brokers}: {reason}")]
    Unreachable { brokers: String, reason: String },
    #[error(transparent)]
    Topic(#[from] TopicError),
    #[error(
        "--semantics exactly-once refused: the built-in broker (librdkafka's mock cluster) \
         accepts Kafka transactions but does not keep their promises: records of an aborted \
         transaction are still shown to read_committed readers, and offsets committed inside \
         a transaction are not stored, so a restarted stage would read its input again. The \
         lesson would show duplicates that real Kafka never makes. Run it on real Kafka \
         (`orderflow cluster start`, or docker/compose.yml), or pick --semantics \
         at-least-once or at-most-once here"
    )]
    UnfaithfulTransactions,
    #[error("cannot start transactions with transactional.id {id}: {error}")]
    InitTransactions { id: String, error: String },
    #[error("cannot subscribe to {topic}: {error}")]
    Subscribe { topic: String, error: String },
    #[error(
        "this member was replaced: another `orderflow {stage}` joined group {group} as \
         --instance {instance} ({error}). Give each member its own --instance"
    )]
    Fenced {
        stage: &'static str,
        group: String,
        instance: String,
        error: String,
    },
    #[error("librdkafka refused a record to the output topic: {0}")]
    Send(KafkaError),
    #[error("the transaction could not be {what}, and Kafka says it cannot go on: {error}")]
    Transaction { what: &'static str, error: String },
    #[error("{failed} of {sent} records to {topic} were not delivered ({reason}); {consequence}")]
    Undelivered {
        failed: u64,
        sent: u64,
        topic: String,
        reason: String,
        /// What it means for the input, which depends on the semantics.
        consequence: &'static str,
    },
}

/// How a stage's consumer reads: eager rebalances (every rebalance takes all partitions and
/// gives them anew from the committed offsets, so a batch read across a rebalance can be
/// dropped whole and nothing is skipped), offsets committed only by the stage, and
/// read_committed so that the offset fetch waits for a pending transactional commit.
pub(crate) fn consumer_config(
    settings: &KafkaSettings,
    options: &StageOptions,
    client_id: &str,
) -> ClientConfig {
    let eof = if options.exit_at_end { "true" } else { "false" };
    let member = options.member();
    settings.client_config(&[
        ("group.id", &options.group),
        ("group.instance.id", &member),
        ("client.id", client_id),
        ("auto.offset.reset", "earliest"),
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("isolation.level", "read_committed"),
        ("partition.assignment.strategy", "range"),
        // As the roles do: a member that died is replaced within seconds (a restarted one
        // under the same --instance at once).
        ("session.timeout.ms", "6000"),
        ("heartbeat.interval.ms", "1000"),
        ("enable.partition.eof", eof),
        ("fetch.wait.max.ms", "100"),
        ("socket.timeout.ms", "10000"),
        ("log.connection.close", "false"),
    ])
}

/// The stage's producer: idempotent, every replica acknowledging; with exactly-once
/// transactional, with a transaction timeout short enough that a transaction left open by
/// a member that is never restarted stops holding read_committed readers back within
/// seconds (Kafka's default is a minute).
pub(crate) fn producer_config(
    settings: &KafkaSettings,
    options: &StageOptions,
    client_id: &str,
) -> ClientConfig {
    let transactional_id = options.transactional_id();
    let mut defaults: Vec<(&str, &str)> = vec![
        ("client.id", client_id),
        ("acks", "all"),
        ("enable.idempotence", "true"),
        ("linger.ms", "5"),
        ("message.timeout.ms", "30000"),
        ("log.connection.close", "false"),
    ];
    if options.semantics == Semantics::ExactlyOnce {
        defaults.push(("transactional.id", &transactional_id));
        defaults.push(("transaction.timeout.ms", "10000"));
        // librdkafka insists a record may not outlive the transaction it belongs to.
        defaults.push(("message.timeout.ms", "10000"));
    }
    settings.outsider_config(&defaults)
}

/// The client id of a stage's clients.
pub(crate) fn client_id(options: &StageOptions) -> String {
    format!("orderflow-{}-{}", options.stage, process_tag())
}

/// The consumer's callbacks: connection health, and which partitions the latest rebalance
/// gave (with a counter of rebalances, so the loop can tell that one happened while it read).
#[derive(Default)]
pub(crate) struct StageContext {
    pub(crate) health: ConnectionHealth,
    pub(crate) rebalances: AtomicU64,
    pub(crate) assigned: Mutex<BTreeSet<i32>>,
}

impl StageContext {
    pub(crate) fn rebalances(&self) -> u64 {
        self.rebalances.load(Ordering::SeqCst)
    }

    pub(crate) fn assigned(&self) -> BTreeSet<i32> {
        self.assigned.lock().expect("not poisoned").clone()
    }
}

impl ClientContext for StageContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        self.health.log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.health.error(error, reason);
    }
}

impl ConsumerContext for StageContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        // Counted before the partitions go: a batch the loop is collecting is dropped.
        self.rebalances.fetch_add(1, Ordering::SeqCst);
        if let Rebalance::Revoke(_) = rebalance {
            self.assigned.lock().expect("not poisoned").clear();
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            let mut assigned = self.assigned.lock().expect("not poisoned");
            *assigned = list.elements().iter().map(|e| e.partition()).collect();
        }
    }
}
