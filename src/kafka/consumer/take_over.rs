//! The take-over of newly assigned partitions, beside the poll loop: where each starts (the
//! group's commit, the partition's bounds), readying the role for it, and starting to read
//! it; retried with back-off while the cluster is not ready, ended by a permanent failure.

use std::collections::BTreeMap;
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::{Offset, TopicPartitionList};

use super::error::{ConsumerError, partition_words};
use super::history::History;
use super::shared::Shared;
use super::{GroupConsumer, OUTAGE_MEMORY, TOPIC_GONE_AFTER};
use crate::kafka::fault::{self, Fault};
use crate::report::activity::{Activity, PartitionStart};
use crate::report::human;
use crate::roles::{Role, RoleError};

/// How long one attempt to learn where newly assigned partitions start (the group's commits,
/// the partitions' bounds) may wait for the cluster. It runs beside the poll loop, so a wait
/// stalls no other partition; and it is short, so that a leader elected meanwhile is used by
/// the next attempt rather than after a long wait on the old one.
const TAKE_OVER_TIMEOUT: Duration = Duration::from_secs(3);

/// The back-off between attempts to take over partitions: the first retry soon (the cluster
/// often settles within a second), doubling up to the last.
const TAKE_OVER_FIRST_RETRY: Duration = Duration::from_millis(250);
const TAKE_OVER_LAST_RETRY: Duration = Duration::from_secs(5);

/// What one attempt to take over partitions learned: per partition where it starts, or why
/// that is not known yet.
struct StartsAnswer {
    starts: Vec<(i32, Result<PartitionStart, KafkaError>)>,
    /// Asked only when the cluster said it does not know the topic or a partition: whether
    /// the topic exists (None: the cluster did not answer).
    topic_exists: Option<bool>,
    /// Partitions whose committed offset is past their end, with that offset and the end:
    /// they start where auto.offset.reset says, as librdkafka would (silently) reset them.
    past_end: Vec<(i32, i64, i64)>,
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
    let mut past_end = Vec::new();
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
                    let start = bounds(partition).map(|(low, high)| {
                        // A committed offset past the end points at records that do not exist
                        // (offsets of a topic deleted and created again, or set by hand): it
                        // counts as no commit, and the member says so.
                        let committed = committed.filter(|&c| {
                            let usable = c <= high;
                            if !usable {
                                past_end.push((partition, c, high));
                            }
                            usable
                        });
                        PartitionStart {
                            partition,
                            // A committed offset below the earliest one (retention removed
                            // records) resets to the earliest, as auto.offset.reset=earliest
                            // does.
                            start: match committed {
                                Some(c) => c.max(low),
                                None if from_end => high,
                                None => low,
                            },
                            committed: committed.is_some(),
                            low,
                            high,
                        }
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
        past_end,
    }
}

/// Whether the cluster knows `topic` (None: it did not answer). A consumer's metadata request
/// does not create topics, so asking does not bring a deleted topic back.
pub(super) fn topic_exists<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
) -> Option<bool> {
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
pub(super) struct TakeOver<'scope> {
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
    pub(super) fn new() -> Self {
        TakeOver {
            running: None,
            failures: 0,
            next_at: Instant::now(),
            told: None,
            topic_gone_since: None,
            prepared: BTreeMap::new(),
        }
    }

    /// Whether an attempt is waiting for the cluster's answer.
    pub(super) fn is_running(&self) -> bool {
        self.running.is_some()
    }
}

/// The wait before attempt `failures + 1`.
fn take_over_backoff(failures: u32) -> Duration {
    TAKE_OVER_FIRST_RETRY
        .saturating_mul(1 << failures.saturating_sub(1).min(8))
        .min(TAKE_OVER_LAST_RETRY)
}

impl<R: Role> GroupConsumer<R> {
    /// Drives the take-over of newly assigned partitions: starts an attempt on a thread of its
    /// own when one is due, and when it has answered, readies the role for every partition
    /// whose start is known and starts reading it. A transient failure (a leader being
    /// elected, the coordinator moving, a broker down) is retried with back-off for as long
    /// as this member owns the partitions; only a permanent one ends the run.
    pub(super) fn advance_take_over<'scope, 'env>(
        &'env self,
        scope: &'scope Scope<'scope, 'env>,
        state: &mut TakeOver<'scope>,
    ) -> Result<(), ConsumerError> {
        if let Some(handle) = state.running.take_if(|h| h.is_finished()) {
            match handle.join() {
                Ok(answer) => self.finish_take_over(answer, state)?,
                Err(_) => {
                    return Err(ConsumerError::TakeOver {
                        partitions: self.lock().ledger.awaiting().iter().copied().collect(),
                        reason: "the thread asking the cluster panicked".to_owned(),
                    });
                }
            }
        }
        if state.running.is_some() || Instant::now() < state.next_at {
            return Ok(());
        }
        let awaiting = self.lock().ledger.awaiting().clone();
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
            .ledger
            .awaiting()
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
            let reset = if self.consumer().context().from_end {
                "the end (auto.offset.reset=latest)"
            } else {
                "the earliest offset (auto.offset.reset=earliest)"
            };
            for &(partition, committed, end) in &answer.past_end {
                shared.out.report(Activity::Notice(format!(
                    "partition {partition}: the group's committed offset {} is past the \
                     partition's end ({}): no record has it (a topic deleted and created again \
                     under the same name, or offsets set by hand), so it counts as no commit \
                     and this member reads from {reset}",
                    human::count(committed as u64),
                    human::count(end as u64),
                )));
            }
            for (partition, result) in answer.starts {
                // Revoked while the attempt ran: no longer ours to take over.
                if !shared.ledger.awaiting().contains(&partition) {
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
        shared
            .ledger
            .started(start.partition, start.committed.then_some(start.start));
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
        if shared.ledger.awaiting().is_empty() {
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
}

#[cfg(test)]
mod tests {
    use rdkafka::types::RDKafkaErrorCode;

    use super::*;
    use crate::kafka::consumer::error::printed;

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
}
