//! The state the poll loop and the rebalance callbacks share, and where the [`Ledger`]'s
//! answers are applied to the consumer: checkpoints (flush, then store) and commits.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaResult;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::context::GroupContext;
use super::error::{ConsumerError, is_rebalancing, rebalancing_words, uncommitted_words};
use super::ledger::Ledger;
use super::undecodable::{Repeats, Skipped};
use crate::kafka::cluster_watch::ClusterWatch;
use crate::report::activity::{Activity, PartitionProgress, PartitionStart, Report};
use crate::report::latency::Latencies;
use crate::roles::Role;

/// The bookkeeping the poll loop and the rebalance callbacks share.
pub(super) struct Shared<R> {
    pub(super) role: R,
    pub(super) out: Box<dyn Report>,
    /// The assignment and its offsets: what may be stored and committed.
    pub(super) ledger: Ledger,
    /// Since when the ledger awaits partitions (their take-over is in progress).
    pub(super) awaiting_since: Option<Instant>,
    /// Partitions started since the last `assigned` report.
    pub(super) taken_over: Vec<PartitionStart>,
    /// Brokers, leaders and the coordinator as the statistics and errors last showed them.
    pub(super) watch: ClusterWatch,
    /// The last commit problem told, so a commit failing every second is told once.
    pub(super) commit_trouble: Option<String>,
    /// Consumer errors told, each once and then with a count (librdkafka repeats one for
    /// every failed fetch, thousands a second).
    pub(super) consumer_trouble: Repeats,
    /// Undecodable records skipped (`--skip-undecodable`).
    pub(super) skipped: Skipped,
    /// Since when librdkafka reports the topic (or a partition) unknown, until records flow
    /// again: long enough, and the cluster confirms, and the topic was deleted.
    pub(super) topic_missing_since: Option<Instant>,
    /// Whether any assignment was received yet (for `--exit-at-end`).
    pub(super) assigned_once: bool,
    /// When the assignment last changed (for `--exit-at-end` with an empty one).
    pub(super) changed_at: Instant,
    /// Since when this member owns nothing (subscribe or last revocation).
    pub(super) idle_since: Option<Instant>,
    /// A failure inside a callback, surfaced by the loop (or, during `close`, by `run`): the
    /// first one, the member's reason to stop.
    pub(super) failure: Option<ConsumerError>,
    /// Latest per-partition numbers from librdkafka's statistics.
    pub(super) progress: std::collections::BTreeMap<i32, PartitionProgress>,
    /// Whether the group's refusal of this member's assignor (INCONSISTENT_GROUP_PROTOCOL)
    /// has been explained since it last had partitions.
    pub(super) refused_by_group: bool,
    /// Records handled in this run.
    pub(super) records: u64,
    /// How old the records were when the role had handled them, per reporting window.
    pub(super) latency: Latencies,
}

impl<R: Role> Shared<R> {
    pub(super) fn new(role: R, out: Box<dyn Report>) -> Shared<R> {
        Shared {
            role,
            out,
            ledger: Ledger::default(),
            awaiting_since: None,
            taken_over: Vec::new(),
            watch: ClusterWatch::default(),
            commit_trouble: None,
            consumer_trouble: Repeats::default(),
            skipped: Skipped::default(),
            topic_missing_since: None,
            assigned_once: false,
            changed_at: Instant::now(),
            idle_since: None,
            failure: None,
            progress: std::collections::BTreeMap::new(),
            refused_by_group: false,
            records: 0,
            latency: Latencies::default(),
        }
    }

    /// Flushes the role and stores the offsets of everything it finished. When the flush or
    /// the store fails, the ledger abandons what the flush was to cover: it is never stored,
    /// and no flush is tried again ([`Ledger::abandon`]).
    pub(super) fn checkpoint(
        &mut self,
        consumer: &BaseConsumer<GroupContext<R>>,
        topic: &str,
    ) -> Result<(), ConsumerError> {
        let Some(to_store) = self.ledger.to_store() else {
            return Ok(());
        };
        let stored = self.flush_and_store(consumer, topic, to_store);
        match stored {
            Ok(()) => self.ledger.checkpointed(),
            Err(_) => self.ledger.abandon(),
        }
        stored
    }

    fn flush_and_store(
        &mut self,
        consumer: &BaseConsumer<GroupContext<R>>,
        topic: &str,
        to_store: Vec<(i32, i64)>,
    ) -> Result<(), ConsumerError> {
        self.role.flush().map_err(ConsumerError::Role)?;
        let mut offsets = TopicPartitionList::new();
        for (partition, next) in to_store {
            offsets
                .add_partition_offset(topic, partition, Offset::Offset(next))
                .map_err(ConsumerError::Kafka)?;
        }
        if offsets.count() > 0 {
            consumer
                .store_offsets(&offsets)
                .map_err(ConsumerError::Kafka)?;
        }
        Ok(())
    }

    /// Keeps the first failure: a later one follows from it (the member is stopping).
    pub(super) fn fail(&mut self, error: ConsumerError) {
        if self.failure.is_some() {
            tracing::debug!(%error, "a later failure, after the one the member stops with");
        } else {
            self.failure = Some(error);
        }
    }

    /// Commits the stored offsets now, waits for the answer and reports what was committed
    /// (librdkafka does not call the commit callback for synchronous commits).
    pub(super) fn commit(&mut self, consumer: &BaseConsumer<GroupContext<R>>) -> KafkaResult<()> {
        match consumer.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => {
                self.commit_trouble = None;
                let committed = self.ledger.commit_succeeded();
                if !committed.is_empty() {
                    self.out.report(Activity::Committed { offsets: committed });
                }
                Ok(())
            }
            // Nothing stored that is not committed already (an automatic commit whose callback
            // has not run yet carried it): what is stored is committed.
            Err(e) if e.rdkafka_error_code() == Some(RDKafkaErrorCode::NoOffset) => {
                let committed = self.ledger.commit_succeeded();
                if !committed.is_empty() {
                    self.out.report(Activity::Committed { offsets: committed });
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The commit before partitions are handed over. The coordinator refuses commits while
    /// the group is still rebalancing (the built-in broker for the whole time a rebalance is
    /// prepared), and the rebalance cannot finish while this callback runs; but the state
    /// often settles within moments, so try a few times. What still cannot be committed is
    /// said plainly: the next owner reads those records again (at-least-once).
    pub(super) fn commit_before_handover(
        &mut self,
        consumer: &BaseConsumer<GroupContext<R>>,
        revoked: &[i32],
    ) {
        const ATTEMPTS: u32 = 5;
        let mut attempt = 1;
        loop {
            match self.commit(consumer) {
                Ok(()) => return,
                Err(e) if is_rebalancing(&e) && attempt < ATTEMPTS => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => {
                    let uncommitted = self.ledger.uncommitted(revoked);
                    if !uncommitted.is_empty() {
                        self.out.report(Activity::CommitFailed {
                            reason: format!(
                                "could not commit before handing over ({}): the next owner reads again {}",
                                rebalancing_words(&e),
                                uncommitted_words(&uncommitted)
                            ),
                        });
                    }
                    return;
                }
            }
        }
    }

    /// The partitions this member reads.
    pub(super) fn owned(&self) -> Vec<i32> {
        self.ledger.reading()
    }
}
