//! `orderflow produce`: draws orders from the generator at the paced rate and sends them to
//! Kafka (or writes them to stdout), shows progress, and on exit accounts for every event.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::cli::ProduceArgs;
use crate::config::KafkaSettings;
use crate::kafka::producer::{DEFAULT_MESSAGE_TIMEOUT_MS, OrderProducer, ProducerError};
use crate::kafka::topic::{LESSON_PARTITIONS, alter_command};
use crate::metrics::{Metrics, ProducerCounts};
use crate::report::activity::Connection;
use crate::report::human::{self, StatusLine};
use crate::report::latency::LatencyPercentiles;
use crate::report::outage::OutageReport;
use crate::report::rate::RateMeter;
use crate::shutdown::Shutdown;
use crate::wiring::sender::{Plan, send_serving_reports, write_lines};

/// How often the status line is redrawn, and how often a plain progress line is printed when
/// stderr is not a terminal.
const REDRAW: Duration = Duration::from_millis(250);
const PLAIN_PROGRESS: Duration = Duration::from_secs(10);

/// What the run did; the command's exit status follows from it.
#[derive(Debug)]
pub(crate) struct ProduceOutcome {
    pub(crate) sent: u64,
    pub(crate) delivered: u64,
    pub(crate) failed: u64,
}

impl ProduceOutcome {
    pub(crate) fn succeeded(&self) -> bool {
        self.failed == 0 && self.delivered == self.sent
    }
}

/// `produce --json`'s one line: what the run did, for scripts and benchmarks.
#[derive(serde::Serialize)]
struct ProduceSummary<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "final")]
    last: bool,
    topic: &'a str,
    sent: u64,
    delivered: u64,
    failed: u64,
    /// From the first event handed over to the last delivery settled.
    seconds: f64,
    events_per_s: f64,
    /// Event handed to the producer to its acknowledgement, over the delivered events; null
    /// when none was delivered.
    delivery_latency: Option<LatencyPercentiles>,
}

/// Runs `orderflow produce`.
pub(crate) async fn run(
    settings: &KafkaSettings,
    args: &ProduceArgs,
    shutdown: Shutdown,
) -> anyhow::Result<ProduceOutcome> {
    let plan = Plan {
        seed: args.seed.unwrap_or_else(rand::random),
        rate: args.rate,
        count: args.count,
        sync: args.sync,
    };
    // Bound before anything else, so that a busy port stops the command at once.
    let metrics = Metrics::serve_if(args.metrics.metrics)?;
    if let Some(metrics) = &metrics {
        eprintln!("metrics: http://{}/metrics", metrics.address());
    }
    if args.stdout {
        to_stdout(plan, shutdown).await
    } else {
        // librdkafka's statistics come every second (OrderProducer::new): --metrics exports
        // them.
        let settings = delivery_settings(settings, args)?;
        to_kafka(&settings, plan, args.json, metrics, shutdown).await
    }
}

/// `--acks` and `--idempotence` as the librdkafka properties they are, before any `-X`
/// (which keeps the last word). Idempotence needs every in-sync replica's acknowledgement,
/// so it is off with `--acks 0|1` unless asked for, and refused with them if asked for.
fn delivery_settings(
    settings: &KafkaSettings,
    args: &ProduceArgs,
) -> anyhow::Result<KafkaSettings> {
    let mut settings = settings.clone();
    if args.sync {
        // One event in flight: waiting librdkafka's linger (5 ms) for more to batch with it
        // would be most of each round trip.
        settings.properties.insert(
            0,
            crate::config::Property {
                key: "linger.ms".to_owned(),
                value: "0".to_owned(),
            },
        );
    }
    if args.acks.is_none() && args.idempotence.is_none() {
        // The producer's own defaults (acks all, idempotent), and its banner, unchanged.
        return Ok(settings);
    }
    let acks = args.acks.as_deref().unwrap_or("all");
    let idempotence = match (args.idempotence.as_deref(), acks) {
        (Some("on"), "0" | "1") => anyhow::bail!(
            "--idempotence on needs --acks all: an idempotent producer counts an event as \
             written only once every in-sync replica has it"
        ),
        (Some(choice), _) => choice == "on",
        (None, acks) => acks == "all",
    };
    let flags = [
        ("acks", acks),
        (
            "enable.idempotence",
            if idempotence { "true" } else { "false" },
        ),
    ];
    for (key, value) in flags.into_iter().rev() {
        settings.properties.insert(
            0,
            crate::config::Property {
                key: key.to_owned(),
                value: value.to_owned(),
            },
        );
    }
    Ok(settings)
}

/// `--stdout`: JSON lines, nothing else on stdout. A closed pipe (`| head`) ends the run
/// quietly, as it does for other Unix tools.
async fn to_stdout(plan: Plan, shutdown: Shutdown) -> anyhow::Result<ProduceOutcome> {
    let sent = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&sent);
    let result = tokio::task::spawn_blocking(move || {
        let out = io::BufWriter::with_capacity(64 * 1024, io::stdout().lock());
        write_lines(&plan, || shutdown.requested(), &counter, out)
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

/// Serves the producer's accounting on `metrics`, read at each scrape.
pub(crate) fn export_deliveries(
    metrics: &Metrics,
    producer: &Arc<OrderProducer>,
    sent: &Arc<AtomicU64>,
) {
    producer.on_statistics(Box::new(metrics.producer_statistics()));
    let (producer, sent) = (Arc::clone(producer), Arc::clone(sent));
    metrics.producer(move || {
        let deliveries = producer.deliveries();
        ProducerCounts {
            sent: sent.load(Ordering::Relaxed),
            delivered: deliveries.delivered(),
            failed: deliveries.failed(),
            in_flight: producer.in_flight(),
            delivery_latency: deliveries.latency_buckets(),
        }
    });
}

async fn to_kafka(
    settings: &KafkaSettings,
    plan: Plan,
    json: bool,
    metrics: Option<Metrics>,
    mut shutdown: Shutdown,
) -> anyhow::Result<ProduceOutcome> {
    let producer = Arc::new(OrderProducer::new(settings)?);
    let sent = Arc::new(AtomicU64::new(0));
    if let Some(metrics) = &metrics {
        export_deliveries(metrics, &producer, &sent);
    }
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
    let mut outage = OutageReport::new(
        settings
            .properties
            .iter()
            .rev()
            .find(|p| p.key == "message.timeout.ms")
            .and_then(|p| p.value.parse::<u64>().ok())
            .unwrap_or(DEFAULT_MESSAGE_TIMEOUT_MS),
    );

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

    let mut stall = Stall::new(outage_timeout_s(settings));
    let mut tell = |status: &mut StatusLine| {
        for line in producer.watch().take_news() {
            status.println(&line);
        }
        let deliveries = producer.deliveries();
        let settled = deliveries.delivered() + deliveries.failed();
        if let Some(line) = stall.tick(settled, producer.in_flight(), Instant::now(), || {
            producer.watch().stall_reason()
        }) {
            status.println(&line);
        }
    };

    // Phase 1: generate and send, until the count is reached, Ctrl-C, or a fatal error.
    let send_result: Result<(), ProducerError> = loop {
        tokio::select! {
            finished = &mut sender => break finished.context("the sender thread failed")?,
            _ = redraw.tick() => {
                tell(&mut status);
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
                if let Some(line) = outage.line(&state) {
                    status.println(&line);
                }
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
        tell(&mut status);
        tokio::select! {
            _ = flushed => {}
            _ = shutdown.wait_for(2) => {}
            Ok(()) = health.changed() => {
                let state = health.borrow_and_update().clone();
                if let Some(line) = outage.line(&state) {
                    status.println(&line);
                }
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
    let rate = outcome.delivered as f64 / elapsed.as_secs_f64().max(1e-3);
    let latency = deliveries.latency();
    eprintln!(
        "{how}: {} events sent to {} — {} delivered, {} failed, in {} ({}){}",
        human::count(outcome.sent),
        producer.topic(),
        human::count(outcome.delivered),
        human::count(outcome.failed),
        human::duration(elapsed),
        human::rate(rate),
        latency.map_or(String::new(), |l| format!(
            " · delivery p50 {} ms, p95 {} ms, p99 {} ms",
            human::decimal(l.p50_ms),
            human::decimal(l.p95_ms),
            human::decimal(l.p99_ms)
        )),
    );
    if json {
        let summary = ProduceSummary {
            kind: "summary",
            last: true,
            topic: producer.topic(),
            sent: outcome.sent,
            delivered: outcome.delivered,
            failed: outcome.failed,
            seconds: (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
            events_per_s: rate.round(),
            delivery_latency: latency,
        };
        println!(
            "{}",
            serde_json::to_string(&summary).context("cannot encode the summary")?
        );
    }
    if abandoned {
        eprintln!("abandoned the events still in flight");
    }
    send_result?;
    if outcome.failed > 0 {
        anyhow::bail!(
            "{} of {} events were not delivered: {}. The orders of those events are now \
             incomplete in Kafka: where a later event of the same order was delivered, \
             `orderflow audit verify` on storage's log reports a lifecycle violation (an \
             event whose earlier status is missing); the events without a later one leave \
             orders that `audit summary` counts as in flight",
            human::count(outcome.failed),
            human::count(outcome.sent),
            deliveries.failures_in_words()
        );
    }
    Ok(outcome)
}

/// The effective message.timeout.ms, in seconds.
fn outage_timeout_s(settings: &KafkaSettings) -> u64 {
    settings
        .properties
        .iter()
        .rev()
        .find(|p| p.key == "message.timeout.ms")
        .and_then(|p| p.value.parse::<u64>().ok())
        .unwrap_or(DEFAULT_MESSAGE_TIMEOUT_MS)
        / 1000
}

/// How long events may wait with none delivered before the producer says so: a leader
/// election takes a second or two, a broker's session timeout 9 s.
const STALL: Duration = Duration::from_secs(5);

/// Tells once when events are waiting and none has been delivered (or failed) for
/// [`STALL`], with the reason, and once when deliveries resume: librdkafka retries in
/// silence until message.timeout.ms, which would otherwise show as "0/s" and nothing else.
struct Stall {
    settled: u64,
    since: Instant,
    warned: bool,
    timeout_s: u64,
}

impl Stall {
    fn new(timeout_s: u64) -> Stall {
        Stall {
            settled: 0,
            since: Instant::now(),
            warned: false,
            timeout_s,
        }
    }

    fn tick(
        &mut self,
        settled: u64,
        in_flight: u64,
        now: Instant,
        reason: impl FnOnce() -> String,
    ) -> Option<String> {
        if settled != self.settled || in_flight == 0 {
            let waited = now.duration_since(self.since);
            self.settled = settled;
            self.since = now;
            if std::mem::take(&mut self.warned) {
                return Some(format!(
                    "deliveries resumed after {} without one",
                    human::duration(waited)
                ));
            }
            return None;
        }
        if self.warned || now.duration_since(self.since) < STALL {
            return None;
        }
        self.warned = true;
        Some(format!(
            "warning: no event delivered for {} s, {} waiting (each fails if not delivered \
             within message.timeout.ms, {} s): {}",
            now.duration_since(self.since).as_secs(),
            human::count(in_flight),
            self.timeout_s,
            reason()
        ))
    }
}

#[cfg(test)]
mod stall_tests {
    use super::*;

    #[test]
    fn a_stall_is_told_once_with_its_reason_and_its_end_once() {
        let start = Instant::now();
        let mut stall = Stall::new(30);
        stall.since = start;
        let at = |s: u64| start + Duration::from_secs(s);
        assert_eq!(stall.tick(10, 5, at(1), || "r".into()), None);
        assert_eq!(stall.tick(10, 5, at(4), || "r".into()), None);
        let warning = stall.tick(10, 5, at(7), || "brokers 2, 3 of 3 unreachable".into());
        assert_eq!(
            warning.as_deref(),
            Some(
                "warning: no event delivered for 6 s, 5 waiting (each fails if not delivered \
                 within message.timeout.ms, 30 s): brokers 2, 3 of 3 unreachable"
            )
        );
        assert_eq!(stall.tick(10, 9, at(9), || "r".into()), None);
        assert!(
            stall
                .tick(11, 9, at(10), || "r".into())
                .is_some_and(|l| l.starts_with("deliveries resumed after"))
        );
        // Nothing waiting is no stall.
        assert_eq!(stall.tick(11, 0, at(30), || "r".into()), None);
    }
}
