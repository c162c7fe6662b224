//! [`GroupContext`], the consumer's librdkafka context: connection health, rebalances,
//! commits and statistics, turned into [`Activity`] and into the [`Ledger`]'s bookkeeping.
//! librdkafka runs these callbacks inside `poll`, on the poll loop's thread.
//!
//! [`Ledger`]: super::ledger::Ledger

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::error::{ConsumerError, commit_trouble, is_rebalancing, oversized_response};
use super::history::History;
use super::shared::Shared;
use super::{ConsumerControl, OUTAGE_MEMORY};
use crate::kafka::client::ConnectionHealth;
use crate::kafka::client_stats::client_statistics;
use crate::kafka::cluster_watch::Snapshot;
use crate::report::activity::{Activity, LostCause, PartitionProgress};
use crate::roles::Role;

/// The consumer's librdkafka context: connection health, rebalances, commits, statistics.
pub(crate) struct GroupContext<R> {
    pub(super) health: ConnectionHealth,
    /// Pause requests; newly assigned partitions are paused too while it is set.
    pub(super) control: ConsumerControl,
    pub(super) shared: Arc<Mutex<Shared<R>>>,
    pub(super) history: History,
    pub(super) topic: String,
    /// A group without commits starts at the end (`-X auto.offset.reset=latest`), not at the
    /// earliest offset.
    pub(super) from_end: bool,
}

impl<R> GroupContext<R> {
    fn lock(&self) -> MutexGuard<'_, Shared<R>> {
        // A panic while holding the lock would already have ended the process's purpose;
        // keep going with the data as it was rather than panic again in a callback.
        crate::lock::lock(&self.shared)
    }
}

impl<R: Role> ClientContext for GroupContext<R> {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.health.log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let transport =
            error.rdkafka_error_code() == Some(RDKafkaErrorCode::BrokerTransportFailure);
        if let Some((size, limit)) = oversized_response(reason) {
            // librdkafka drops the connection and fetches the same answer again for ever.
            let mut shared = self.lock();
            let unread = shared.ledger.not_at_end();
            shared.fail(ConsumerError::ResponseTooLarge {
                topic: self.topic.clone(),
                size,
                limit,
                unread,
            });
        }
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
        // Round trips and queue depths, for the member's metrics (other sinks ignore them).
        shared
            .out
            .statistics(&client_statistics(&statistics, &self.topic));
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
        let revoked = partitions_of(partitions, &self.topic);
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
        if lost.is_none() {
            // Hand over exactly where we stopped: finish, store and commit before the
            // partitions go, so the next owner neither skips nor repeats anything.
            // When the flush fails, what it was to cover (the records handled since the last
            // flush that succeeded) is never stored nor committed: a later flush that succeeds
            // proves nothing about it (after a failed fsync the dirty pages may be gone). What
            // was stored before was made durable by a flush that succeeded (its lines were
            // fsynced, its dead letters acknowledged), and a failure later does not undo that,
            // so it is still committed: the next owner then reads again only what the failed
            // flush covered, and the member stops with the failure.
            let checkpoint = shared.checkpoint(consumer, &self.topic);
            shared.commit_before_handover(consumer, &revoked);
            if let Err(e) = checkpoint {
                shared.fail(e);
            }
        } else {
            // Another member may own them already: what we did not commit is theirs to redo.
            shared.ledger.lost(&revoked);
        }
        let Shared { role, out, .. } = &mut *shared;
        role.revoked(&revoked, out.as_mut());
        // Every revoked partition with handled records the group's commit does not cover:
        // not flushed, or stored and not committed.
        let left = shared.ledger.revoked(&revoked);
        let uncommitted = if lost.is_none() {
            left.iter().map(|u| u.partition).collect()
        } else {
            Vec::new()
        };
        for p in &revoked {
            shared.progress.remove(p);
        }
        if shared.ledger.awaiting().is_empty() {
            shared.awaiting_since = None;
        }
        shared.changed_at = Instant::now();
        if shared.ledger.reads_nothing() && shared.ledger.awaiting().is_empty() {
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
    /// and readies the role ([`super::GroupConsumer::advance_take_over`]). That asks the
    /// cluster, which during a broker failure may not answer for many seconds; inside this
    /// callback the wait would hold up the whole member (no records of its other partitions,
    /// no progress, no stop request) and could only end in giving up.
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Assign(partitions) = rebalance else {
            return;
        };
        let now = Instant::now();
        let assigned = partitions_of(partitions, &self.topic);
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
        shared.ledger.assigned(&assigned);
        shared.awaiting_since.get_or_insert(now);
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        let mut shared = self.lock();
        match result {
            Ok(()) => {
                let committed = shared.ledger.auto_committed(
                    offsets
                        .elements_for_topic(&self.topic)
                        .iter()
                        .filter_map(|e| match e.offset() {
                            Offset::Offset(o) => Some((e.partition(), o)),
                            _ => None,
                        }),
                );
                if shared.commit_trouble.take().is_some() {
                    shared
                        .out
                        .report(Activity::Notice("commits go through again".to_owned()));
                }
                if committed.is_empty() {
                    return;
                }
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

/// The partitions of `topic` in `list`, in order.
fn partitions_of(list: &TopicPartitionList, topic: &str) -> Vec<i32> {
    let mut partitions: Vec<i32> = list
        .elements_for_topic(topic)
        .iter()
        .map(|e| e.partition())
        .collect();
    partitions.sort_unstable();
    partitions
}
