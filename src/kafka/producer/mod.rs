//! Sending order events to Kafka with every delivery accounted for: an idempotent librdkafka
//! producer whose delivery reports feed atomic counters, a reachability check that fails fast
//! with a message a learner can act on, and flush / abandon for shutdown.

mod deliveries;
mod partition;
mod watch;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, PurgeConfig};
use rdkafka::types::RDKafkaErrorCode;

pub(crate) use self::deliveries::{
    Deliveries, ProduceContext, Stamp, StatisticsHook, UNSTAMPED, wall_clock_micros,
};
use self::partition::PartitionChoice;
use super::client::{ConnectError, Connection, ConnectionHealth};
use super::topic::{
    APPEAR_WAIT, EXISTED_WAIT, Patience, ReadyTopic, TopicError, TopicUser, TopicWaitError,
    existed_before, wait_for_topic,
};
use crate::config::{KafkaSettings, redacted};

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

/// Between rounds of serving reports while waiting for them (a full queue, a flush): short
/// beside a round trip, long enough not to spin.
const SERVE_NAP: Duration = Duration::from_micros(200);

/// Serves the delivery reports that are ready, one zero-timeout poll (one batch of reports)
/// at a time, each announced to the accounting first (its clock reading times the batch),
/// as long as they settle deliveries. Not `poll(t)`: it would serve batches that arrive
/// during `t` with a reading taken before them.
fn serve_ready(producer: &BaseProducer<ProduceContext>) {
    loop {
        let before = producer.in_flight_count();
        producer.context().deliveries.serving();
        producer.poll(Duration::ZERO);
        if producer.in_flight_count() >= before {
            break;
        }
    }
}

/// How long the background delivery-report poller waits between two rounds. Stopping it
/// wakes it at once: every `produce` and every order-processor waited for the end of this
/// nap on exit (5 ms on average, a fifth of a one-event produce).
const POLL_ROUND: Duration = Duration::from_millis(10);

/// An idempotent producer to one topic (the order events, or the dead-letter topic).
pub struct OrderProducer {
    inner: Arc<BaseProducer<ProduceContext>>,
    /// Serves delivery reports and errors while nobody else polls.
    poller: Option<Poller>,
    topic: String,
    brokers: String,
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
                    // Not poll(POLL_ROUND): rust-rdkafka hands librdkafka the time left in
                    // whole milliseconds, so the last millisecond of every poll is a busy
                    // loop of zero-timeout polls (10 % of a CPU for an idle dead-letter
                    // producer). Nap (until unparked by `drop`), then serve what arrived
                    // without waiting: one event per zero-timeout poll, as long as they
                    // settle deliveries.
                    std::thread::park_timeout(POLL_ROUND);
                    if !stopped.load(Ordering::Relaxed) && !aside.load(Ordering::Relaxed) {
                        serve_ready(&producer);
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
            thread.thread().unpark();
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
        // Statistics every second: each broker's connection and each partition's leader,
        // which the producer tells of (and says why deliveries stall), and the round trips
        // and queue depth --metrics exports.
        OrderProducer::build(
            settings,
            &settings.topic,
            &[
                ("enable.sparse.connections", "false"),
                ("queue.buffering.max.messages", "20000"),
                ("statistics.interval.ms", "1000"),
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
        let exact = PartitionChoice::exact_under(
            config.get("partitioner"),
            config.get("statistics.interval.ms"),
        );
        let context = ProduceContext {
            partitions: PartitionChoice::new(exact),
            ..ProduceContext::default()
        };
        let inner = Arc::new(
            BaseProducer::from_config_and_context(&config, context)
                .map_err(ProducerError::Create)?,
        );
        let _ = inner.context().topic.set(topic.to_owned());
        let poller = Poller::start(Arc::clone(&inner))
            .map_err(|e| ProducerError::Fatal(format!("cannot start a thread: {e}")))?;
        Ok(OrderProducer {
            inner,
            poller: Some(poller),
            topic: topic.to_owned(),
            brokers: settings.bootstrap(),
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
        let answer = tokio::task::spawn_blocking(move || {
            // Asked before the topic is named (see `existed_before`): the first answer about
            // the named topic cannot tell whether the cluster created it just now.
            let existed = existed_before(client.client(), &topic, &health, EXISTED_WAIT);
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
        if let Ok(ready) = &answer {
            self.inner
                .context()
                .partitions
                .set_partitions(ready.partitions);
        }
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

    /// Hands one event to librdkafka, `stamp` saying when (see [`Stamp`]: its delivery is
    /// timed from then). When the queue is full, waits for room, checking `give_up` between
    /// attempts; returns `Ok(false)` if it gave up and the event was not sent.
    pub(crate) fn send(
        &self,
        key: &[u8],
        payload: &[u8],
        stamp: Stamp,
        give_up: impl Fn() -> bool,
    ) -> Result<bool, ProducerError> {
        let mut record = BaseRecord::with_opaque_to(&self.topic, stamp)
            .key(key)
            .payload(payload);
        record.partition = self.inner.context().partitions.for_key(key);
        loop {
            match self.inner.send(record) {
                Ok(()) => return Ok(true),
                // The topic has fewer partitions than the count chosen with (recreated
                // smaller): librdkafka chooses from its own metadata until the statistics
                // tell the count again.
                Err((
                    KafkaError::MessageProduction(RDKafkaErrorCode::UnknownPartition),
                    mut back,
                )) if back.partition.is_some() => {
                    self.inner.context().partitions.forget();
                    back.partition = None;
                    record = back;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    if give_up() {
                        return Ok(false);
                    }
                    record = back;
                    // Delivery reports are what frees room: serve them while waiting (in
                    // zero-timeout polls, each announced: see `serve_ready`).
                    serve_ready(&self.inner);
                    std::thread::sleep(SERVE_NAP);
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
        let mut record: BaseRecord<'_, [u8], [u8], Stamp> =
            BaseRecord::with_opaque_to(&self.topic, UNSTAMPED).headers(headers);
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
        serve_ready(&self.inner);
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
        // As `client::flush_promptly`, but serving in announced zero-timeout polls, so that
        // the last reports are timed to when they are served.
        let deadline = Instant::now() + timeout;
        // Not a flush that skips linger.ms: librdkafka sends lingering batches at once only
        // while an rd_kafka_flush call is in progress, and with delivery reports as events
        // (rust-rdkafka's way) a zero-timeout call is over before a broker thread wakes. So
        // the last batch leaves after its linger (5 ms; measured: a one-event produce to
        // Kafka waits 6-7 ms for its delivery at linger.ms 5, 1.1 ms at 0). This call only
        // wakes the broker threads.
        let _ = self.inner.flush(Duration::ZERO);
        while self.inner.in_flight_count() > 0 && Instant::now() < deadline {
            serve_ready(&self.inner);
            std::thread::sleep(SERVE_NAP);
        }
        self.inner.in_flight_count() <= 0
    }

    /// Gives up on everything in flight: each such event is reported as failed.
    pub(crate) fn abandon(&self) {
        self.inner
            .purge(PurgeConfig::default().queue().inflight().non_blocking());
        // Delivery reports for purged events are served by polling; wait for them so the
        // counts are final.
        self.flush(Duration::from_millis(500));
    }

    /// Hands librdkafka's statistics to `hook` from now on (they come only if
    /// `statistics.interval.ms` was set); a second hook is ignored.
    pub(crate) fn on_statistics(&self, hook: StatisticsHook) {
        let context = self.inner.context();
        let _ = context.topic.set(self.topic.clone());
        let _ = context.statistics.set(hook);
    }

    pub(crate) fn deliveries(&self) -> &Deliveries {
        &self.inner.context().deliveries
    }

    /// The brokers and leaders as this producer sees them (from librdkafka's statistics,
    /// when `statistics.interval.ms` is set, and its error callback).
    pub(crate) fn watch(&self) -> &watch::ProducerWatch {
        &self.inner.context().watch
    }

    pub(crate) fn health(&self) -> &ConnectionHealth {
        &self.inner.context().health
    }

    pub(crate) fn topic(&self) -> &str {
        &self.topic
    }
}
