//! The producer's send loop: order events drawn from the generator at the planned rate and
//! handed to Kafka (or written to stdout) on a thread of its own. `produce` and `demo` both
//! send this way; what they show meanwhile is theirs.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::domain::event::{MillisTimestamps, OrderKey};
use crate::domain::generator::{OrderGenerator, Pacer};
use crate::kafka::producer::{OrderProducer, ProducerError, Stamp, wall_clock_micros};
use crate::report::activity::Connection;
use crate::shutdown::Shutdown;

/// The longest the send loop sleeps before looking at the stop flag again.
const MAX_NAP: Duration = Duration::from_millis(50);

/// How the send loop should run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plan {
    /// The generator's seed.
    pub(crate) seed: u64,
    /// Events per second; 0: as fast as possible.
    pub(crate) rate: f64,
    /// Stop after this many events; None: until stopped.
    pub(crate) count: Option<u64>,
    /// Wait for each event's acknowledgement before the next (`produce --sync`).
    pub(crate) sync: bool,
}

/// Sends generated events to Kafka on a thread of its own until the count is reached or
/// `shutdown` is requested; `sent` counts what was handed to the producer. The caller waits
/// for deliveries (the demo uses this; `produce` runs its own loop with a status line).
pub(crate) fn send_in_background(
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

    /// Takes one event (key, JSON), stamped at `now_us` (µs since the epoch, the reading its
    /// timestamp comes from); `Ok(false)` means nothing more can be sent.
    fn emit(&mut self, key: &[u8], payload: &[u8], now_us: i64) -> Result<bool, Self::Error>;

    /// Runs before the send loop naps and each time it wakes, so buffered output appears
    /// (and delivery reports are served) while paced.
    fn idle(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }

    /// The longest the send loop may nap before calling [`EventSink::idle`] again.
    fn nap(&self) -> Duration {
        MAX_NAP
    }
}

/// JSON lines, on stdout.
struct StdoutSink<W: Write>(W);

impl<W: Write> EventSink for StdoutSink<W> {
    type Error = io::Error;

    fn emit(&mut self, _key: &[u8], payload: &[u8], _now_us: i64) -> io::Result<bool> {
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
    /// Wait for each event's acknowledgement before the next.
    sync: bool,
}

impl<'a, S: Fn() -> bool> KafkaSink<'a, S> {
    fn new(producer: &'a OrderProducer, stop: S, sync: bool) -> Self {
        KafkaSink {
            producer,
            stop,
            unserved: 0,
            sync,
        }
    }

    /// `--sync`: serves reports in short steps until the event just sent is settled (or
    /// `stop` says so). Not the 2 ms steps of a flush: they would be the round trip.
    fn wait_for_delivery(&self) {
        let _ = self.producer.flush(Duration::ZERO);
        while self.producer.in_flight() > 0 && !(self.stop)() {
            self.producer.serve_reports();
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

/// The send loop's nap while events are in flight: short beside a round trip on loopback.
const REPORT_NAP: Duration = Duration::from_micros(200);

/// How many events a flat-out sender sends between serving delivery reports.
const SERVE_REPORTS_EVERY: u32 = 256;

impl<S: Fn() -> bool> EventSink for KafkaSink<'_, S> {
    type Error = ProducerError;

    fn emit(&mut self, key: &[u8], payload: &[u8], now_us: i64) -> Result<bool, ProducerError> {
        // Times the delivery from the moment the event was stamped (never 0: that is
        // "unstamped").
        let stamp = (now_us.max(1)) as Stamp;
        let sent = self.producer.send(key, payload, stamp, &self.stop)?;
        if self.sync {
            self.wait_for_delivery();
            return Ok(sent);
        }
        self.unserved += 1;
        if self.unserved >= SERVE_REPORTS_EVERY {
            self.producer.serve_reports();
            self.unserved = 0;
        }
        Ok(sent)
    }

    fn idle(&mut self) -> Result<(), ProducerError> {
        // Napping (paced sending): serve what is ready rather than leave it waiting.
        self.producer.serve_reports();
        self.unserved = 0;
        Ok(())
    }

    fn nap(&self) -> Duration {
        // While events wait for their acknowledgement, wake often enough to serve their
        // reports as they come: they would otherwise wait for the next event (100 ms at
        // 10 events/s), and so would their delivery latency. Nothing in flight: a long nap.
        if self.producer.in_flight() > 0 {
            REPORT_NAP
        } else {
            MAX_NAP
        }
    }
}

/// Runs the send loop with this thread serving the delivery reports, kcat-style.
pub(crate) fn send_serving_reports(
    producer: &OrderProducer,
    plan: &Plan,
    stop: impl Fn() -> bool + Copy,
    sent: &AtomicU64,
) -> Result<(), ProducerError> {
    producer.serve_reports_here(true);
    let mut sink = KafkaSink::new(producer, stop, plan.sync);
    let result = generate(plan, stop, sent, &mut sink);
    producer.serve_reports_here(false);
    result
}

/// Writes the planned events as JSON lines to `out` until the count is reached or `stop()`
/// says so, and flushes it.
pub(crate) fn write_lines(
    plan: &Plan,
    stop: impl Fn() -> bool,
    sent: &AtomicU64,
    out: impl Write,
) -> io::Result<()> {
    let mut sink = StdoutSink(out);
    generate(plan, stop, sent, &mut sink).and_then(|()| sink.idle())
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
    let mut clock = MillisTimestamps::default();
    let mut n = 0u64;
    while n < limit {
        let allowed = pacer.allowed(Instant::now()).min(limit);
        while n < allowed {
            // Looking at the stop flag (and the connection) every event would cost more than
            // generating one; every 64 events is still well under a millisecond flat out.
            if n.is_multiple_of(64) && stop() {
                return Ok(());
            }
            let step = generator.next_step();
            let key = OrderKey::new(step.order_id);
            payload.clear();
            // One clock reading stamps the event and starts its delivery's timing.
            let now_us = wall_clock_micros();
            step.encode_into(&key, &mut clock, now_us / 1000, &mut payload);
            if !sink.emit(key.as_bytes(), &payload, now_us)? {
                return Ok(());
            }
            n += 1;
            sent.store(n, Ordering::Relaxed);
        }
        if n >= limit {
            break;
        }
        let due = pacer.due(n);
        loop {
            sink.idle()?;
            if stop() {
                return Ok(());
            }
            let now = Instant::now();
            if now >= due {
                break;
            }
            std::thread::sleep((due - now).min(sink.nap()));
        }
    }
    Ok(())
}

impl Connection {
    /// Whether sending can go on: an outage is waited out (events queue in memory until their
    /// timeout), refused credentials and fatal errors are not.
    pub(crate) fn is_ok_or_down(&self) -> bool {
        matches!(self, Connection::Ok | Connection::Unreachable { .. })
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
            sync: false,
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
            sync: false,
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
            sync: false,
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

        fn emit(&mut self, key: &[u8], payload: &[u8], _now_us: i64) -> Result<bool, ()> {
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
