//! `orderflow produce`: draws orders from the generator at the paced rate and sends them to
//! Kafka (or writes them to stdout), shows progress, and on exit accounts for every event.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;

use crate::cli::ProduceArgs;
use crate::config::KafkaSettings;
use crate::domain::generator::{OrderGenerator, Pacer};
use crate::kafka::producer::{DEFAULT_MESSAGE_TIMEOUT_MS, OrderProducer, ProducerError};
use crate::kafka::topic::{LESSON_PARTITIONS, alter_command};
use crate::report::activity::Connection;
use crate::report::human::{self, StatusLine};
use crate::shutdown::Shutdown;

/// The longest the send loop sleeps before looking at the stop flag again.
const MAX_NAP: Duration = Duration::from_millis(50);

/// How often the status line is redrawn, and how often a plain progress line is printed when
/// stderr is not a terminal.
const REDRAW: Duration = Duration::from_millis(250);
const PLAIN_PROGRESS: Duration = Duration::from_secs(10);

/// The rate shown is measured over this window.
const RATE_WINDOW: Duration = Duration::from_secs(2);

/// What the run did; the command's exit status follows from it.
#[derive(Debug)]
pub struct ProduceOutcome {
    pub sent: u64,
    pub delivered: u64,
    pub failed: u64,
}

impl ProduceOutcome {
    pub fn succeeded(&self) -> bool {
        self.failed == 0 && self.delivered == self.sent
    }
}

/// How the send loop should run.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// The generator's seed.
    pub seed: u64,
    /// Events per second; 0: as fast as possible.
    pub rate: f64,
    /// Stop after this many events; None: until stopped.
    pub count: Option<u64>,
}

/// Sends generated events to Kafka on a thread of its own until the count is reached or
/// `shutdown` is requested; `sent` counts what was handed to the producer. The caller waits
/// for deliveries (the demo uses this; `produce` runs its own loop with a status line).
pub fn send_in_background(
    producer: Arc<OrderProducer>,
    plan: Plan,
    shutdown: Shutdown,
    sent: Arc<AtomicU64>,
) -> std::io::Result<std::thread::JoinHandle<Result<(), ProducerError>>> {
    std::thread::Builder::new()
        .name("producer".into())
        .spawn(move || {
            let stop = || shutdown.requested() || !producer.health().current().is_ok_or_down();
            send_serving_reports(&producer, &plan, stop, &sent)
        })
}

/// Where generated events go: Kafka or stdout.
trait EventSink {
    type Error;

    /// Takes one event (key, JSON); `Ok(false)` means nothing more can be sent.
    fn emit(&mut self, key: &[u8], payload: &[u8]) -> Result<bool, Self::Error>;

    /// Runs before the send loop naps, so buffered output appears while paced.
    fn idle(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// JSON lines on stdout.
struct StdoutSink<W: Write>(W);

impl<W: Write> EventSink for StdoutSink<W> {
    type Error = io::Error;

    fn emit(&mut self, _key: &[u8], payload: &[u8]) -> io::Result<bool> {
        self.0.write_all(payload)?;
        self.0.write_all(b"\n")?;
        Ok(true)
    }

    fn idle(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// The Kafka producer; `stop` lets a send blocked on a full queue give up.
struct KafkaSink<'a, S: Fn() -> bool> {
    producer: &'a OrderProducer,
    stop: S,
    /// Events sent since delivery reports were last served here.
    unserved: u32,
}

impl<'a, S: Fn() -> bool> KafkaSink<'a, S> {
    fn new(producer: &'a OrderProducer, stop: S) -> Self {
        KafkaSink {
            producer,
            stop,
            unserved: 0,
        }
    }
}

/// How many events a flat-out sender sends between serving delivery reports.
const SERVE_REPORTS_EVERY: u32 = 256;

impl<S: Fn() -> bool> EventSink for KafkaSink<'_, S> {
    type Error = ProducerError;

    fn emit(&mut self, key: &[u8], payload: &[u8]) -> Result<bool, ProducerError> {
        let sent = self.producer.send(key, payload, &self.stop)?;
        self.unserved += 1;
        if self.unserved >= SERVE_REPORTS_EVERY {
            self.producer.serve_reports();
            self.unserved = 0;
        }
        Ok(sent)
    }

    fn idle(&mut self) -> Result<(), ProducerError> {
        // About to nap (paced sending): serve what is ready rather than leave it waiting.
        self.producer.serve_reports();
        self.unserved = 0;
        Ok(())
    }
}

/// Runs the send loop with this thread serving the delivery reports, kcat-style.
fn send_serving_reports(
    producer: &OrderProducer,
    plan: &Plan,
    stop: impl Fn() -> bool + Copy,
    sent: &AtomicU64,
) -> Result<(), ProducerError> {
    producer.serve_reports_here(true);
    let mut sink = KafkaSink::new(producer, stop);
    let result = generate(plan, stop, sent, &mut sink);
    producer.serve_reports_here(false);
    result
}

/// Generates events at the planned rate into `sink` until the count is reached, the sink
/// refuses, or `stop()` says so.
fn generate<K: EventSink>(
    plan: &Plan,
    stop: impl Fn() -> bool,
    sent: &AtomicU64,
    sink: &mut K,
) -> Result<(), K::Error> {
    let mut generator = OrderGenerator::new(plan.seed);
    let pacer = Pacer::new(plan.rate, Instant::now());
    let limit = plan.count.unwrap_or(u64::MAX);
    let mut payload = Vec::with_capacity(256);
    let mut n = 0u64;
    while n < limit {
        let allowed = pacer.allowed(Instant::now()).min(limit);
        while n < allowed {
            // Looking at the stop flag (and the connection) every event would cost more than
            // generating one; every 64 events is still well under a millisecond flat out.
            if n.is_multiple_of(64) && stop() {
                return Ok(());
            }
            let event = generator.next_event(Utc::now());
            payload.clear();
            event.encode_into(&mut payload);
            if !sink.emit(event.key().as_bytes(), &payload)? {
                return Ok(());
            }
            n += 1;
            sent.store(n, Ordering::Relaxed);
        }
        if n >= limit {
            break;
        }
        sink.idle()?;
        let due = pacer.due(n);
        loop {
            if stop() {
                return Ok(());
            }
            let now = Instant::now();
            if now >= due {
                break;
            }
            std::thread::sleep((due - now).min(MAX_NAP));
        }
    }
    Ok(())
}

/// Runs `orderflow produce`.
pub async fn run(
    settings: &KafkaSettings,
    args: &ProduceArgs,
    shutdown: Shutdown,
) -> anyhow::Result<ProduceOutcome> {
    let plan = Plan {
        seed: args.seed.unwrap_or_else(rand::random),
        rate: args.rate,
        count: args.count,
    };
    if args.stdout {
        to_stdout(plan, shutdown).await
    } else {
        to_kafka(settings, plan, shutdown).await
    }
}

/// `--stdout`: JSON lines, nothing else on stdout. A closed pipe (`| head`) ends the run
/// quietly, as it does for other Unix tools.
async fn to_stdout(plan: Plan, shutdown: Shutdown) -> anyhow::Result<ProduceOutcome> {
    let sent = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&sent);
    let result = tokio::task::spawn_blocking(move || {
        let mut sink = StdoutSink(io::BufWriter::with_capacity(64 * 1024, io::stdout().lock()));
        generate(&plan, || shutdown.requested(), &counter, &mut sink).and_then(|()| sink.idle())
    })
    .await
    .context("the generator thread failed")?;
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        other => other.context("cannot write to stdout")?,
    }
    let n = sent.load(Ordering::Relaxed);
    Ok(ProduceOutcome {
        sent: n,
        delivered: n,
        failed: 0,
    })
}

/// What to say when the cluster created the topic because we asked for it: it has the
/// cluster's default partition count, which may be fewer than the lessons need.
fn created_on_first_use(settings: &KafkaSettings, topic: &str, partitions: usize) -> String {
    let mut line = format!(
        "topic {topic} did not exist; {} created it on first use, with its default partition \
         count ({partitions})",
        settings.bootstrap()
    );
    if partitions < LESSON_PARTITIONS {
        line.push_str(&format!(
            ". The lessons on scaling need {LESSON_PARTITIONS}: {}",
            alter_command(&settings.bootstrap(), topic)
        ));
    }
    line
}

async fn to_kafka(
    settings: &KafkaSettings,
    plan: Plan,
    mut shutdown: Shutdown,
) -> anyhow::Result<ProduceOutcome> {
    let producer = Arc::new(OrderProducer::new(settings)?);
    eprintln!("orderflow produce: {}", settings.describe());
    let ready = tokio::select! {
        checked = producer.check_reachable() => checked?,
        _ = shutdown.requested_async() => {
            eprintln!("stopped before anything was sent");
            return Ok(ProduceOutcome { sent: 0, delivered: 0, failed: 0 });
        }
    };
    let partitions = ready.partitions;
    if ready.created_on_first_use {
        eprintln!(
            "{}",
            created_on_first_use(settings, producer.topic(), partitions)
        );
    }
    let pace = if plan.rate > 0.0 {
        format!("at {} events/s", human::decimal(plan.rate))
    } else {
        "as fast as possible".to_owned()
    };
    let amount = plan.count.map_or("until Ctrl-C".to_owned(), |n| {
        format!("{} events", human::count(n))
    });
    eprintln!(
        "producing to {} ({partitions} partitions): {amount}, {pace}, seed {} (--seed {} replays these orders)",
        producer.topic(),
        plan.seed,
        plan.seed
    );

    let started = Instant::now();
    let sent = Arc::new(AtomicU64::new(0));
    let mut sender = {
        let producer = Arc::clone(&producer);
        let sent = Arc::clone(&sent);
        let shutdown = shutdown.clone();
        tokio::task::spawn_blocking(move || {
            // An event that failed is lost: stop generating more that would fail the same way.
            let stop = || {
                shutdown.requested()
                    || !producer.health().current().is_ok_or_down()
                    || producer.deliveries().failed() > 0
            };
            send_serving_reports(&producer, &plan, stop, &sent)
        })
    };

    let mut status = StatusLine::on_stderr();
    let mut meter = RateMeter::default();
    let mut health = producer.health().subscribe();
    let mut redraw = tokio::time::interval(REDRAW);
    let mut last_plain = Instant::now();
    let mut outage = OutageReport {
        in_outage: false,
        timeout_ms: settings
            .properties
            .iter()
            .rev()
            .find(|p| p.key == "message.timeout.ms")
            .and_then(|p| p.value.parse::<u64>().ok())
            .unwrap_or(DEFAULT_MESSAGE_TIMEOUT_MS),
    };

    let progress = |sent: u64, meter: &mut RateMeter| {
        let deliveries = producer.deliveries();
        format!(
            "sent {} · delivered {} · failed {} · {}",
            human::count(sent),
            human::count(deliveries.delivered()),
            human::count(deliveries.failed()),
            human::rate(meter.sample(deliveries.delivered())),
        )
    };

    // Phase 1: generate and send, until the count is reached, Ctrl-C, or a fatal error.
    let send_result: Result<(), ProducerError> = loop {
        tokio::select! {
            finished = &mut sender => break finished.context("the sender thread failed")?,
            _ = redraw.tick() => {
                let line = progress(sent.load(Ordering::Relaxed), &mut meter);
                if status.is_live() {
                    status.draw(&line);
                } else if last_plain.elapsed() >= PLAIN_PROGRESS {
                    eprintln!("{line}");
                    last_plain = Instant::now();
                }
            }
            Ok(()) = health.changed() => {
                let state = health.borrow_and_update().clone();
                outage.report(&mut status, &state);
            }
        }
    };
    if let Err(error) = &send_result {
        status.println(&format!("error: {error}"));
    }

    // Phase 2: wait for every event in flight; a second Ctrl-C abandons them.
    let mut abandoned = false;
    while producer.in_flight() > 0 {
        if shutdown.signals() >= 2
            || matches!(producer.health().current(), Connection::Fatal { .. })
        {
            producer.abandon();
            abandoned = true;
            break;
        }
        let flusher = Arc::clone(&producer);
        let flushed =
            tokio::task::spawn_blocking(move || flusher.flush(Duration::from_millis(100)));
        let hint = if shutdown.requested() {
            " (Ctrl-C again to abandon them)"
        } else {
            ""
        };
        status.draw(&format!(
            "{} · waiting for {} in flight{hint}",
            progress(sent.load(Ordering::Relaxed), &mut meter),
            human::count(producer.in_flight())
        ));
        tokio::select! {
            _ = flushed => {}
            _ = shutdown.wait_for(2) => {}
            Ok(()) = health.changed() => {
                let state = health.borrow_and_update().clone();
                outage.report(&mut status, &state);
            }
        }
    }
    status.clear();

    let deliveries = producer.deliveries();
    let outcome = ProduceOutcome {
        sent: sent.load(Ordering::Relaxed),
        delivered: deliveries.delivered(),
        failed: deliveries.failed(),
    };
    let elapsed = started.elapsed();
    let how = if shutdown.requested() {
        "stopped"
    } else {
        "done"
    };
    eprintln!(
        "{how}: {} events sent to {} — {} delivered, {} failed, in {} ({})",
        human::count(outcome.sent),
        producer.topic(),
        human::count(outcome.delivered),
        human::count(outcome.failed),
        human::duration(elapsed),
        human::rate(outcome.delivered as f64 / elapsed.as_secs_f64().max(1e-3)),
    );
    if abandoned {
        eprintln!("abandoned the events still in flight");
    }
    send_result?;
    if outcome.failed > 0 {
        anyhow::bail!(
            "{} of {} events were not delivered: {}",
            human::count(outcome.failed),
            human::count(outcome.sent),
            deliveries.failures_in_words()
        );
    }
    Ok(outcome)
}

impl Connection {
    /// Whether sending can go on: an outage is waited out (events queue in memory until their
    /// timeout), refused credentials and fatal errors are not.
    fn is_ok_or_down(&self) -> bool {
        matches!(self, Connection::Ok | Connection::Unreachable { .. })
    }
}

/// Tells the user when the cluster goes away and when it is back, once each: librdkafka
/// reports an outage many times over, with changing reasons.
struct OutageReport {
    in_outage: bool,
    /// The effective message.timeout.ms, to say how long events can wait.
    timeout_ms: u64,
}

impl OutageReport {
    fn report(&mut self, status: &mut StatusLine, state: &Connection) {
        let line = match state {
            Connection::Ok if self.in_outage => {
                self.in_outage = false;
                "Kafka is reachable again; sending resumes".to_owned()
            }
            Connection::Unreachable { reason } if !self.in_outage => {
                self.in_outage = true;
                format!(
                    "warning: cannot reach Kafka ({reason}); events wait in memory and fail if \
                     not delivered within {} s",
                    self.timeout_ms / 1000
                )
            }
            Connection::Refused { reason } => {
                format!("error: Kafka refused the connection: {reason}")
            }
            Connection::Fatal { reason } => format!("error: the producer cannot go on: {reason}"),
            Connection::Ok | Connection::Unreachable { .. } => return,
        };
        status.println(&line);
    }
}

/// Rate of a growing counter over the last [`RATE_WINDOW`].
#[derive(Default)]
pub struct RateMeter {
    samples: VecDeque<(Instant, u64)>,
}

impl RateMeter {
    /// Records the counter's current total; returns its rate per second.
    pub fn sample(&mut self, total: u64) -> f64 {
        let now = Instant::now();
        self.samples.push_back((now, total));
        while self
            .samples
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > RATE_WINDOW)
        {
            self.samples.pop_front();
        }
        let (first_at, first_total) = self.samples.front().copied().unwrap_or((now, total));
        let span = now.duration_since(first_at).as_secs_f64();
        if span < 0.2 {
            0.0
        } else {
            (total - first_total) as f64 / span
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_stops_at_the_count_and_emits_valid_events() {
        let plan = Plan {
            seed: 1,
            rate: 0.0,
            count: Some(500),
        };
        let sent = AtomicU64::new(0);
        let mut sink = Collect::default();
        generate(&plan, || false, &sent, &mut sink).unwrap();
        assert_eq!(sink.events.len(), 500);
        assert_eq!(sent.load(Ordering::Relaxed), 500);
    }

    #[test]
    fn generate_honours_stop_and_emit_refusal() {
        let plan = Plan {
            seed: 1,
            rate: 0.0,
            count: None,
        };
        let sent = AtomicU64::new(0);
        let mut sink = Collect {
            refuse_after: Some(9),
            ..Collect::default()
        };
        generate(&plan, || false, &sent, &mut sink).unwrap();
        assert_eq!(sent.load(Ordering::Relaxed), 9);

        let stopped = AtomicU64::new(0);
        let mut sink = Collect::default();
        generate(&plan, || true, &stopped, &mut sink).unwrap();
        assert_eq!(sink.events.len(), 0);
    }

    #[test]
    fn stdout_lines_are_the_wire_json() {
        let plan = Plan {
            seed: 5,
            rate: 0.0,
            count: Some(3),
        };
        let mut sink = StdoutSink(Vec::new());
        generate(&plan, || false, &AtomicU64::new(0), &mut sink).unwrap();
        let text = String::from_utf8(sink.0).unwrap();
        assert_eq!(text.lines().count(), 3);
        for line in text.lines() {
            crate::domain::event::OrderEvent::parse(line.as_bytes()).unwrap();
        }
    }

    /// Keeps what it is given, checking each event as it arrives.
    #[derive(Default)]
    struct Collect {
        events: Vec<crate::domain::event::OrderEvent>,
        refuse_after: Option<usize>,
    }

    impl EventSink for Collect {
        type Error = ();

        fn emit(&mut self, key: &[u8], payload: &[u8]) -> Result<bool, ()> {
            if self.refuse_after == Some(self.events.len()) {
                return Ok(false);
            }
            let event = crate::domain::event::OrderEvent::parse(payload).expect("valid");
            assert_eq!(key, event.key().as_bytes());
            self.events.push(event);
            Ok(true)
        }
    }
}
