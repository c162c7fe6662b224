//! Sending order events to Kafka with every delivery accounted for: an idempotent librdkafka
//! producer whose delivery reports feed atomic counters, a reachability check that fails fast
//! with a message a learner can act on, and flush / abandon for shutdown.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext, PurgeConfig,
};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Message};

use super::client::{ConnectError, Connection, ConnectionHealth, flush_promptly};
use super::message_status::{Persistence, persistence};
use super::topic::{
    APPEAR_WAIT, EXISTED_WAIT, Patience, ReadyTopic, TopicError, TopicUser, TopicWaitError,
    existed_before, wait_for_topic,
};
use crate::config::{KafkaSettings, redacted};
use crate::lock::lock;
use crate::report::human;

/// How long an event may wait for its acknowledgement before it counts as failed, unless the
/// user sets `-X message.timeout.ms`. librdkafka's 5 minutes would make a learner who stopped
/// the broker wait far too long to see what happens to undelivered events.
pub(crate) const DEFAULT_MESSAGE_TIMEOUT_MS: u64 = 30_000;

/// How long the start-up check waits for the cluster to answer.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why producing could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    #[error("cannot create the Kafka producer: {0}")]
    Create(KafkaError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Topic(#[from] TopicError),
    #[error("the producer stopped: {0}")]
    Fatal(String),
    #[error("librdkafka refused an event: {0}")]
    Send(KafkaError),
}

/// Delivery outcomes, updated by librdkafka's delivery reports.
#[derive(Debug, Default)]
pub(crate) struct Deliveries {
    delivered: AtomicU64,
    failed: AtomicU64,
    /// Failed events Kafka does not have (never sent, or refused), with the first reason.
    not_written: Failures,
    /// Failed events that were sent and never answered: Kafka may have written them.
    unknown: Failures,
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

    /// The failed events in words, told apart by what Kafka may hold: "12 never reached Kafka
    /// (…); 6 were sent but never confirmed, so Kafka may have written them (…)".
    pub(crate) fn failures_in_words(&self) -> String {
        failure_words(
            (self.not_written.count(), &self.not_written.first_reason()),
            (self.unknown.count(), &self.unknown.first_reason()),
        )
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

/// The producer's librdkafka context: connection health plus delivery accounting.
#[derive(Default)]
pub(crate) struct ProduceContext {
    pub(crate) health: ConnectionHealth,
    pub(crate) deliveries: Deliveries,
}

impl ClientContext for ProduceContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        self.health.log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.health.error(error, reason);
    }
}

impl ProducerContext for ProduceContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.deliveries.delivered.fetch_add(1, Ordering::Relaxed);
                self.health.mark_ok();
            }
            Err((error, message)) => {
                tracing::debug!(%error, partition = message.partition(), "delivery failed");
                let persistence = persistence(message);
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

/// How long one round of the background delivery-report poller lasts. rust-rdkafka's
/// `poll(t)` always runs for `t`, so this is also how long stopping the poller can take.
const POLL_ROUND: Duration = Duration::from_millis(10);

/// An idempotent producer to one topic (the order events, or the dead-letter topic).
pub struct OrderProducer {
    inner: Arc<BaseProducer<ProduceContext>>,
    /// Serves delivery reports and errors while nobody else polls.
    poller: Option<Poller>,
    topic: String,
    brokers: String,
    /// A client that asks about the topic without creating it (see `check_reachable`).
    asker: rdkafka::ClientConfig,
}

/// A thread that polls the producer in short rounds until stopped (rust-rdkafka's
/// `ThreadedProducer` polls in 100 ms rounds, which every short run pays for on exit).
/// While a sender serves the reports itself (sending flat out), it stands aside: two threads
/// waking each other for every batch of reports cost more than the reports.
struct Poller {
    stop: Arc<AtomicBool>,
    /// Set while someone else serves the delivery reports.
    standing_aside: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Poller {
    fn start(producer: Arc<BaseProducer<ProduceContext>>) -> std::io::Result<Poller> {
        let stop = Arc::new(AtomicBool::new(false));
        let standing_aside = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let aside = Arc::clone(&standing_aside);
        let thread = std::thread::Builder::new()
            .name("delivery reports".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    if aside.load(Ordering::Relaxed) {
                        std::thread::sleep(POLL_ROUND);
                    } else {
                        // Not poll(POLL_ROUND): rust-rdkafka hands librdkafka the time left in
                        // whole milliseconds, so the last millisecond of every poll is a busy
                        // loop of zero-timeout polls (10 % of a CPU for an idle dead-letter
                        // producer). Sleep, then serve what arrived without waiting: one
                        // event per zero-timeout poll, as long as they settle deliveries.
                        std::thread::sleep(POLL_ROUND);
                        loop {
                            let before = producer.in_flight_count();
                            producer.poll(Duration::ZERO);
                            if producer.in_flight_count() >= before {
                                break;
                            }
                        }
                    }
                }
            })?;
        Ok(Poller {
            stop,
            standing_aside,
            thread: Some(thread),
        })
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for OrderProducer {
    fn drop(&mut self) {
        // Stop polling before the producer itself goes (the poller holds a reference).
        self.poller.take();
    }
}

impl OrderProducer {
    /// Creates the producer; no network I/O happens until [`OrderProducer::check_reachable`]
    /// or the first send.
    pub(crate) fn new(settings: &KafkaSettings) -> Result<OrderProducer, ProducerError> {
        // The order events go to every partition at once, so every broker is needed: connect
        // to them all as soon as the metadata names them. Sparse connections (librdkafka's
        // default) open the connection to the partitions' broker only once the bootstrap
        // connection's metadata has been handled, 10 ms of every run on the built-in broker.
        // `--rate 0` keeps librdkafka's queue full: at its default of 100,000 messages that
        // is 50-67 MiB of RSS (scripts/bench-scale); 20,000 is 21-25 MiB, with the same
        // throughput (batches are at most 10,000 messages and leave every 5 ms).
        OrderProducer::build(
            settings,
            &settings.topic,
            &[
                ("enable.sparse.connections", "false"),
                ("queue.buffering.max.messages", "20000"),
            ],
        )
    }

    /// A producer to another topic of the same cluster (the dead letters: it connects to a
    /// broker only once it has something to send there).
    pub(crate) fn for_topic(
        settings: &KafkaSettings,
        topic: &str,
    ) -> Result<OrderProducer, ProducerError> {
        OrderProducer::build(settings, topic, &[])
    }

    /// The producer, with `extra` librdkafka defaults (`-X` still overrides them).
    fn build(
        settings: &KafkaSettings,
        topic: &str,
        extra: &[(&str, &str)],
    ) -> Result<OrderProducer, ProducerError> {
        let timeout = DEFAULT_MESSAGE_TIMEOUT_MS.to_string();
        let mut defaults = vec![
            // A dead letter carries the original value, which may be large; the broker has the
            // final say on size.
            ("message.max.bytes", "16777216"),
            // Exactly once per partition even when librdkafka retries after a broker hiccup.
            ("enable.idempotence", "true"),
            ("message.timeout.ms", &timeout),
            // Without this librdkafka logs every failed connection attempt at error level;
            // ConnectionHealth reports outages once, in words.
            ("log.connection.close", "false"),
        ];
        defaults.extend_from_slice(extra);
        let config = settings.client_config(&defaults);
        tracing::debug!(config = %redacted(&config), "producer configuration");
        let inner = Arc::new(
            BaseProducer::from_config_and_context(&config, ProduceContext::default())
                .map_err(ProducerError::Create)?,
        );
        let poller = Poller::start(Arc::clone(&inner))
            .map_err(|e| ProducerError::Fatal(format!("cannot start a thread: {e}")))?;
        Ok(OrderProducer {
            inner,
            poller: Some(poller),
            topic: topic.to_owned(),
            brokers: settings.bootstrap(),
            asker: settings.outsider_config(&[
                ("allow.auto.create.topics", "false"),
                ("log.connection.close", "false"),
            ]),
        })
    }

    /// Waits until the cluster answers a metadata request for the topic and the topic is
    /// there (see [`super::topic`]: a cluster that creates topics on first use creates it
    /// now). Fails as soon as librdkafka reports every broker down (usually well within a
    /// second for a refused connection), or after [`CONNECT_TIMEOUT`] without an answer.
    pub(crate) async fn check_reachable(&self) -> Result<ReadyTopic, ProducerError> {
        let health = self.health().subscribe();
        let client = Arc::clone(&self.inner);
        let topic = self.topic.clone();
        let brokers = self.brokers.clone();
        let asker = self.asker.clone();
        let answer = tokio::task::spawn_blocking(move || {
            // The producer's own first answer cannot tell whether the cluster created the
            // topic just now: librdkafka asks for the topic as soon as it is named, and under
            // load that request, which creates it, can reach the cluster before ours.
            let existed = existed_before(&asker, &topic, EXISTED_WAIT);
            let patience = Patience {
                reach: CONNECT_TIMEOUT,
                appear: APPEAR_WAIT,
            };
            let answer = wait_for_topic(
                client.client(),
                &topic,
                &brokers,
                TopicUser::Producer,
                &health,
                patience,
            );
            let answer = answer.map(|mut ready| {
                ready.created_on_first_use |= existed == Some(false);
                ready
            });
            if answer.is_ok() {
                // librdkafka 2.12 drops the bootstrap connection after the first metadata
                // answer, and the idempotent producer's id request then waits for a 500 ms
                // retry timer; a second request over the real broker connection starts it now.
                let _ = client
                    .client()
                    .fetch_metadata(Some(&topic), Duration::from_secs(1));
            }
            answer
        })
        .await
        .map_err(|e| ProducerError::Fatal(e.to_string()))?;
        answer.map_err(|e| match e {
            TopicWaitError::Topic(e) => ProducerError::Topic(e),
            TopicWaitError::Connection(state) => self.connection_error(state),
        })
    }

    fn connection_error(&self, state: Connection) -> ProducerError {
        let brokers = self.brokers.clone();
        match state {
            Connection::Refused { reason } => ConnectError::Refused { brokers, reason }.into(),
            Connection::Fatal { reason } => ProducerError::Fatal(reason),
            Connection::Unreachable { reason } => {
                ConnectError::Unreachable { brokers, reason }.into()
            }
            Connection::Ok => ConnectError::no_answer(brokers, CONNECT_TIMEOUT).into(),
        }
    }

    /// Hands one event to librdkafka. When its queue is full, waits for room, checking
    /// `give_up` between attempts; returns `Ok(false)` if it gave up and the event was not sent.
    pub(crate) fn send(
        &self,
        key: &[u8],
        payload: &[u8],
        give_up: impl Fn() -> bool,
    ) -> Result<bool, ProducerError> {
        let mut record = BaseRecord::to(&self.topic).key(key).payload(payload);
        loop {
            match self.inner.send(record) {
                Ok(()) => return Ok(true),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    if give_up() {
                        return Ok(false);
                    }
                    record = back;
                    // Delivery reports are what frees room: serve them while waiting.
                    self.inner.poll(Duration::from_millis(1));
                }
                Err((error, _)) => {
                    if let Some(RDKafkaErrorCode::Fatal) = error.rdkafka_error_code() {
                        return Err(ProducerError::Fatal(error.to_string()));
                    }
                    return Err(ProducerError::Send(error));
                }
            }
        }
    }

    /// Hands one record with headers to librdkafka, waiting while its queue is full.
    pub(crate) fn send_record(
        &self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: OwnedHeaders,
    ) -> Result<(), ProducerError> {
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&self.topic).headers(headers);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(value) = value {
            record = record.payload(value);
        }
        loop {
            match self.inner.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    self.inner.poll(Duration::from_millis(1));
                }
                Err((error, _)) => return Err(ProducerError::Send(error)),
            }
        }
    }

    /// Serves the delivery reports that are ready, without waiting. A sender that sends flat
    /// out calls this every few hundred events, as kcat does, after
    /// [`OrderProducer::serve_reports_here`].
    pub(crate) fn serve_reports(&self) {
        self.inner.poll(Duration::ZERO);
    }

    /// Whether the calling thread serves the delivery reports itself (true) or leaves them to
    /// the background poller (false, the default).
    pub(crate) fn serve_reports_here(&self, here: bool) {
        if let Some(poller) = &self.poller {
            poller.standing_aside.store(here, Ordering::Relaxed);
        }
    }

    /// Events handed over but not yet acknowledged or failed.
    pub(crate) fn in_flight(&self) -> u64 {
        self.inner.in_flight_count().max(0) as u64
    }

    /// Waits up to `timeout` for every event in flight; true when none is left. Waits in
    /// small steps so that the last acknowledgement ends the wait at once.
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        flush_promptly(&self.inner, timeout)
    }

    /// Gives up on everything in flight: each such event is reported as failed.
    pub(crate) fn abandon(&self) {
        self.inner
            .purge(PurgeConfig::default().queue().inflight().non_blocking());
        // Delivery reports for purged events are served by polling; wait for them so the
        // counts are final.
        self.flush(Duration::from_millis(500));
    }

    pub(crate) fn deliveries(&self) -> &Deliveries {
        &self.inner.context().deliveries
    }

    pub(crate) fn health(&self) -> &ConnectionHealth {
        &self.inner.context().health
    }

    pub(crate) fn topic(&self) -> &str {
        &self.topic
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
