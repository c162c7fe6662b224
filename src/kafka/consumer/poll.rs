//! The poll loop: records handed to the role in batches, one checkpoint per batch, the
//! take-over driven beside it, and the member's reports (connection, pause, progress,
//! summaries). Records are handled on the thread that polls, so nothing queues between
//! Kafka and the role.

use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::BorrowedMessage;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Timestamp, TopicPartitionList};

use super::error::ConsumerError;
use super::shared::Shared;
use super::take_over::{TakeOver, topic_exists};
use super::undecodable::is_undecodable;
use super::{
    EMPTY_ASSIGNMENT_GRACE, Ending, GroupConsumer, POLL_TIMEOUT, PROGRESS_INTERVAL,
    SUMMARY_INTERVAL, TOPIC_GONE_AFTER,
};
use crate::kafka::fault::{self, Fault};
use crate::kafka::group_protocol::{CLASSIC_ASSIGNOR, inconsistent_protocol_notice};
use crate::report::activity::{Activity, PartitionProgress, Summary};
use crate::roles::{ConsumedRecord, Role};
use crate::shutdown::Shutdown;

/// At most this many records, and this much time, between two checkpoints (flush + offset
/// store): large batches make one fsync serve thousands of audit lines; the time bound keeps
/// a slow role (`--work-ms`) storing its progress and within `max.poll.interval.ms`.
const BATCH_RECORDS: usize = 5_000;
const BATCH_TIME: Duration = Duration::from_millis(250);

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

/// The records a summary's latency covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Window {
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

impl<R: Role> GroupConsumer<R> {
    pub(super) fn poll_loop(&self, shutdown: &Shutdown) -> Result<Ending, ConsumerError> {
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
            let wait = if take_over.is_running() {
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
                // owner now; after a failure (in a callback too) nothing more is handled.
                if shared.ledger.failed() || !shared.ledger.accepts(record.partition) {
                    return Ok(0);
                }
                let Shared { role, out, .. } = &mut *shared;
                role.handle(&record, out.as_mut())
                    .map_err(ConsumerError::Role)?;
                shared.ledger.handled(record.partition, record.offset);
                shared.records += 1;
                shared.topic_missing_since = None;
                // Only the producer's clock says when an event was made; a broker's
                // LogAppendTime would leave out the time to reach Kafka.
                if let Timestamp::CreateTime(created_ms) = message.timestamp() {
                    shared.latency.record_since(created_ms, now_micros());
                }
                Ok(1)
            }
            Err(KafkaError::PartitionEOF(partition)) => {
                self.lock().ledger.reached_end(partition);
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
        // While a broker is down, or a batch cannot be decoded, librdkafka reports the same
        // error for every failed fetch: tell it once, then with a count every few seconds.
        let text = format!("consumer error: {error}");
        {
            let mut shared = self.lock();
            if let Some(line) = shared.consumer_trouble.tell(&text, Instant::now()) {
                shared.out.report(Activity::Notice(line));
            }
        }
        if is_undecodable(&error) {
            self.undecodable(&error)?;
        }
        Ok(())
    }

    /// Whether every assigned partition has been read to its end. An empty assignment counts
    /// only once it has lasted beyond a rebalance or two (the group may be about to give this
    /// member partitions).
    fn drained(&self) -> bool {
        let shared = self.lock();
        if !shared.assigned_once || !shared.ledger.awaiting().is_empty() {
            return false;
        }
        if shared.ledger.reads_nothing() {
            shared.changed_at.elapsed() > EMPTY_ASSIGNMENT_GRACE
        } else {
            shared.ledger.all_at_end()
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
        let (mut malformed, mut malformed_by_kind) = shared.role.malformed();
        // Skipped undecodable records are malformed ones the role never saw.
        if shared.skipped.records > 0 {
            malformed += shared.skipped.records;
            *malformed_by_kind.entry("undecodable").or_default() += shared.skipped.records;
        }
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

    pub(super) fn report_summary(&self, rate: f64, window: Window) {
        let summary = self.summary(rate, window);
        self.lock().out.report(Activity::Summary(summary));
    }
}
