//! What became of the events handed to the producer: librdkafka's delivery reports counted
//! (delivered, failed and why, told apart by what Kafka may hold) and timed (enqueue to
//! acknowledgement, in a latency histogram).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Message};

use super::super::client::ConnectionHealth;
use super::super::client_stats::client_statistics;
use super::super::message_status::{Persistence, persistence};
use crate::lock::lock;
use crate::report::client_stats::ClientStatistics;
use crate::report::human;
use crate::report::latency::{Histogram, LatencyBuckets, LatencyPercentiles};

/// Delivery outcomes, updated by librdkafka's delivery reports.
#[derive(Debug, Default)]
pub(crate) struct Deliveries {
    delivered: AtomicU64,
    failed: AtomicU64,
    /// Failed events Kafka does not have (never sent, or refused), with the first reason.
    not_written: Failures,
    /// Failed events that were sent and never answered: Kafka may have written them.
    unknown: Failures,
    /// Failed events refused for their size (by the client's message.max.bytes or the
    /// topic's max.message.bytes): sending them again cannot help.
    too_large: AtomicU64,
    /// Enqueue to acknowledgement of the delivered events that were stamped when sent. A
    /// lock taken once per delivery report, by the one thread serving them.
    latency: Mutex<Histogram>,
    /// When the reports being served now were taken from librdkafka (µs since the epoch),
    /// set by [`Deliveries::serving`] before each poll: the reports of one poll are one
    /// batch, acknowledged together, so one clock reading times them all (a reading per
    /// report was most of what timing cost).
    served_at: AtomicI64,
}

/// A count of failed events and the first one's reason (later ones are usually the same).
#[derive(Debug, Default)]
struct Failures {
    count: AtomicU64,
    first_reason: Mutex<Option<String>>,
}

impl Failures {
    fn add(&self, reason: String) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut first = lock(&self.first_reason);
        if first.is_none() {
            *first = Some(reason);
        }
    }

    fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn first_reason(&self) -> String {
        lock(&self.first_reason)
            .clone()
            .unwrap_or_else(|| "no reason given".to_owned())
    }
}

impl Deliveries {
    pub(crate) fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    pub(crate) fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// How many of the failed events were refused as too large.
    pub(crate) fn too_large(&self) -> u64 {
        self.too_large.load(Ordering::Relaxed)
    }

    /// The failed events in words, told apart by what Kafka may hold: "12 never reached Kafka
    /// (…); 6 were sent but never confirmed, so Kafka may have written them (…)".
    pub(crate) fn failures_in_words(&self) -> String {
        failure_words(
            (self.not_written.count(), &self.not_written.first_reason()),
            (self.unknown.count(), &self.unknown.first_reason()),
        )
    }

    /// Delivery latency percentiles of the run so far; None before the first stamped
    /// delivery.
    pub(crate) fn latency(&self) -> Option<LatencyPercentiles> {
        lock(&self.latency).percentiles()
    }

    /// The delivery latencies so far in a Prometheus histogram's buckets.
    pub(crate) fn latency_buckets(&self) -> LatencyBuckets {
        lock(&self.latency).buckets()
    }

    /// Reports are about to be served: the time they are served at is now.
    pub(crate) fn serving(&self) {
        self.served_at.store(wall_clock_micros(), Ordering::Relaxed);
    }

    /// An event was delivered; a stamped one is timed to when its report is served.
    fn settled(&self, stamp: Stamp) {
        if stamp == UNSTAMPED {
            self.delivered.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut now = self.served_at.load(Ordering::Relaxed);
        if now < stamp as i64 {
            // Served by a poll nobody announced (or before any): read the clock after all.
            now = wall_clock_micros();
        }
        self.delivered_at(stamp, now);
    }

    fn delivered_at(&self, stamp: Stamp, now_us: i64) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
        if stamp != UNSTAMPED {
            lock(&self.latency).record_since_micros(stamp as i64, now_us);
        }
    }

    fn fail(&self, reason: String, persistence: Persistence) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        match persistence {
            Persistence::NotWritten => self.not_written.add(reason),
            // A failed event librdkafka saw persisted still got no successful report: the
            // producer cannot tell it is there, so it is not counted as delivered.
            Persistence::Unknown | Persistence::Written => self.unknown.add(reason),
        }
    }
}

/// See [`Deliveries::failures_in_words`]: (count, first reason) of the events Kafka does not
/// have, and of those it may have.
fn failure_words(not_written: (u64, &str), unknown: (u64, &str)) -> String {
    let never = |n: u64, reason: &str| {
        let verb = if n == 1 { "was" } else { "were" };
        format!(
            "{} {verb} never written to Kafka ({reason})",
            human::count(n)
        )
    };
    let maybe = |n: u64, reason: &str| {
        let (verb, them) = if n == 1 {
            ("was", "it")
        } else {
            ("were", "them")
        };
        format!(
            "{} {verb} sent but never confirmed, so Kafka may have written {them} ({reason})",
            human::count(n)
        )
    };
    match (not_written, unknown) {
        ((0, _), (0, _)) => "none failed".to_owned(),
        ((n, reason), (0, _)) => never(n, reason),
        ((0, _), (n, reason)) => maybe(n, reason),
        ((n, r), (m, q)) => format!("{}; {}", never(n, r), maybe(m, q)),
    }
}

/// Where the producer's statistics go (the metrics), when someone wants them.
pub(crate) type StatisticsHook = Box<dyn Fn(&ClientStatistics) + Send + Sync>;

/// The producer's librdkafka context: connection health plus delivery accounting.
#[derive(Default)]
pub(crate) struct ProduceContext {
    pub(crate) health: ConnectionHealth,
    pub(crate) deliveries: Deliveries,
    /// Set once, by [`super::OrderProducer::on_statistics`]; librdkafka reports statistics
    /// only when `statistics.interval.ms` asks it to.
    pub(crate) statistics: OnceLock<StatisticsHook>,
    /// The topic whose partitions the statistics describe.
    pub(crate) topic: OnceLock<String>,
    /// The brokers and leaders as the producer sees them.
    pub(crate) watch: super::watch::ProducerWatch,
    /// The partition count keyed events are placed with (see [`super::partition`]).
    pub(crate) partitions: super::partition::PartitionChoice,
}

impl ClientContext for ProduceContext {
    fn stats(&self, statistics: Statistics) {
        let topic = self.topic.get().map_or("", String::as_str);
        self.partitions.follow(&statistics, topic);
        self.watch.statistics(&statistics, topic);
        if let Some(hook) = self.statistics.get() {
            hook(&client_statistics(&statistics, topic));
        }
    }

    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        self.health.log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::BrokerTransportFailure) {
            self.watch.connection_failed(reason);
        }
        self.health.error(error, reason);
    }
}

/// What each record carries to its delivery report: when it was handed to the producer, in
/// µs since the Unix epoch by the wall clock (the reading that also stamps the event, so
/// timing costs the send no clock of its own), or [`UNSTAMPED`]. A plain integer: no
/// allocation per record.
pub(crate) type Stamp = usize;

/// A record sent without a time (dead letters, announcements): not timed.
pub(crate) const UNSTAMPED: Stamp = 0;

/// The wall clock in µs since the Unix epoch (a clock before 1970 reads 0).
pub(crate) fn wall_clock_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_micros() as i64)
}

impl ProducerContext for ProduceContext {
    type DeliveryOpaque = Stamp;

    fn delivery(&self, result: &DeliveryResult<'_>, stamp: Stamp) {
        match result {
            Ok(_) => {
                self.deliveries.settled(stamp);
                self.health.mark_ok();
            }
            Err((error, message)) => {
                tracing::debug!(%error, partition = message.partition(), "delivery failed");
                let persistence = persistence(message);
                if matches!(
                    error.rdkafka_error_code(),
                    Some(
                        RDKafkaErrorCode::MessageSizeTooLarge
                            | RDKafkaErrorCode::MessageBatchTooLarge
                    )
                ) {
                    self.deliveries.too_large.fetch_add(1, Ordering::Relaxed);
                }
                self.deliveries
                    .fail(describe_failure(error, persistence), persistence);
            }
        }
    }
}

fn describe_failure(error: &KafkaError, persistence: Persistence) -> String {
    match error.rdkafka_error_code() {
        Some(RDKafkaErrorCode::MessageTimedOut) => {
            "not acknowledged within message.timeout.ms".to_owned()
        }
        // Queued also holds events that were sent, failed with a broker, and wait to be sent
        // again: only librdkafka's status tells them apart.
        Some(RDKafkaErrorCode::PurgeQueue) if persistence == Persistence::NotWritten => {
            "abandoned before it was sent".to_owned()
        }
        Some(RDKafkaErrorCode::PurgeQueue) => "abandoned while waiting to be sent again".to_owned(),
        Some(RDKafkaErrorCode::PurgeInflight) => {
            "abandoned while waiting for the broker's answer".to_owned()
        }
        Some(code) => code.to_string(),
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_say_what_kafka_may_hold() {
        assert_eq!(
            failure_words((14, "abandoned before it was sent"), (0, "")),
            "14 were never written to Kafka (abandoned before it was sent)"
        );
        // MEASURED.md: 14 reported "abandoned before it was sent", 6 of them in the topic.
        assert_eq!(
            failure_words(
                (8, "abandoned before it was sent"),
                (6, "abandoned while waiting to be sent again")
            ),
            "8 were never written to Kafka (abandoned before it was sent); 6 were sent but \
             never confirmed, so Kafka may have written them (abandoned while waiting to be \
             sent again)"
        );
        assert_eq!(
            failure_words((0, ""), (1, "not acknowledged within message.timeout.ms")),
            "1 was sent but never confirmed, so Kafka may have written it (not acknowledged \
             within message.timeout.ms)"
        );
    }

    #[test]
    fn stamped_deliveries_are_timed_and_others_only_counted() {
        let deliveries = Deliveries::default();
        assert_eq!(deliveries.latency(), None);
        deliveries.delivered_at(1_000_000, 1_002_000);
        deliveries.delivered_at(UNSTAMPED, 5_000_000);
        // A clock that went back counts as 0, not as a huge number.
        deliveries.delivered_at(2_000_000, 1_999_000);
        assert_eq!(deliveries.delivered(), 3);
        let latency = deliveries.latency().unwrap();
        assert_eq!(latency.records, 2);
        assert_eq!(latency.max_ms, 2.0);
        assert_eq!(latency.p50_ms, 0.0);
        assert_eq!(deliveries.latency_buckets().count(), 2);
        // Timed to the serving poll's reading; a stale reading is not trusted.
        let stamp = (wall_clock_micros() - 5_000) as Stamp;
        deliveries.serving();
        deliveries.settled(stamp);
        deliveries.settled(usize::MAX >> 1);
        let latency = deliveries.latency().unwrap();
        assert_eq!(latency.records, 4);
        assert!(
            latency.max_ms >= 5.0 && latency.max_ms < 60_000.0,
            "{latency:?}"
        );
    }

    #[test]
    fn a_requeued_event_is_not_called_unsent() {
        let purged = KafkaError::MessageProduction(RDKafkaErrorCode::PurgeQueue);
        assert_eq!(
            describe_failure(&purged, Persistence::NotWritten),
            "abandoned before it was sent"
        );
        assert_eq!(
            describe_failure(&purged, Persistence::Unknown),
            "abandoned while waiting to be sent again"
        );
    }
}
