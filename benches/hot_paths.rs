//! Speed of the per-event hot paths, without Kafka: what `produce` does for every event
//! (generate an order step, encode it as JSON) and what every consumer does for every record
//! (parse it, or reject it with a named reason), and what the consumer runtime adds per record
//! to time it (the latency histograms). docs/performance.md records the numbers.
//!
//! Goal: generator + encode at 1 million events/s or more on one core, so that the producer's
//! own work never limits `produce --rate 0`.
//!
//! Run with `cargo bench --bench hot_paths`; each benchmark measures for a few seconds only, so
//! the whole run takes well under a minute.

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::Utc;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use orderflow::domain::event::{MillisTimestamps, OrderEvent, OrderKey};
use orderflow::domain::generator::OrderGenerator;
use orderflow::report::latency::{Histogram, Latencies};

/// The design document's example event: the shape every generated event has.
const WELL_FORMED: &str = r#"{"event_type":"ORDER_EVENT","order_id":"6f1c0a52-3d7e-4e55-9a43-2b7a1d9c8e10","user_id":"user_123","status":"PLACED","timestamp":"2026-11-21T18:30:05.123Z","source":"WEB"}"#;

/// Valid JSON with the right fields but a status outside the lifecycle. serde accepts the
/// object, so this is rejected on the fast path, by the value checks.
const UNKNOWN_STATUS: &str = r#"{"event_type":"ORDER_EVENT","order_id":"6f1c0a52-3d7e-4e55-9a43-2b7a1d9c8e10","user_id":"user_123","status":"LOST","timestamp":"2026-11-21T18:30:05.123Z","source":"WEB"}"#;

/// An extra field: serde's `deny_unknown_fields` rejects it, so the parser takes the
/// diagnostic slow path (a second pass into a generic JSON tree to name the problem).
const UNKNOWN_FIELD: &str = r#"{"event_type":"ORDER_EVENT","order_id":"6f1c0a52-3d7e-4e55-9a43-2b7a1d9c8e10","user_id":"user_123","status":"PLACED","timestamp":"2026-11-21T18:30:05.123Z","source":"WEB","coupon":"X"}"#;

/// A field missing: also the slow path, which must read the whole object before it can say
/// which field is absent.
const MISSING_FIELD: &str = r#"{"event_type":"ORDER_EVENT","order_id":"6f1c0a52-3d7e-4e55-9a43-2b7a1d9c8e10","user_id":"user_123","status":"PLACED","timestamp":"2026-11-21T18:30:05.123Z"}"#;

/// Short runs: the numbers are stable to a few percent after 3 s, and `cargo bench` should
/// finish in well under a minute.
fn short<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1));
    group
}

/// What `produce` does per event: draw the next step from the generator, stamped with the
/// wall clock, and encode it into a reused buffer.
fn produce_path(c: &mut Criterion) {
    let mut group = short(c, "produce");

    // Exactly the send loop of `produce` (wiring/sender.rs), minus the hand-off to Kafka: the
    // generator's step, its key, and its JSON with the cached timestamp.
    let mut generator = OrderGenerator::new(1);
    let mut clock = MillisTimestamps::default();
    let mut buf = Vec::with_capacity(256);
    group.bench_function("send loop: step+key+encode", |b| {
        b.iter(|| {
            let step = generator.next_step();
            let key = OrderKey::new(step.order_id);
            let millis = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.as_millis() as i64);
            buf.clear();
            step.encode_into(&key, &mut clock, millis, &mut buf);
            black_box((key, &buf));
        })
    });

    // The same through an `OrderEvent`, as the send loop did before issue 20 (and as the
    // synthetic audit log still does).
    let mut generator = OrderGenerator::new(1);
    let mut buf = Vec::with_capacity(256);
    group.bench_function("generate+encode", |b| {
        b.iter(|| {
            let event = generator.next_event(Utc::now());
            buf.clear();
            event.encode_into(&mut buf);
            black_box((event.key(), &buf));
        })
    });

    // The two halves on their own, to see where the time goes.
    let mut generator = OrderGenerator::new(1);
    let now = Utc::now();
    group.bench_function("generate (fixed clock)", |b| {
        b.iter(|| black_box(generator.next_event(black_box(now))))
    });

    let event = OrderEvent::parse(WELL_FORMED.as_bytes()).expect("well-formed");
    let mut buf = Vec::with_capacity(256);
    group.bench_function("encode", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&event).encode_into(&mut buf);
            black_box(&buf);
        })
    });
    group.finish();
}

/// What every consumer does per record.
fn parse_path(c: &mut Criterion) {
    let mut group = short(c, "parse");
    let cases = [
        ("well-formed", WELL_FORMED, true),
        ("unknown status (value check)", UNKNOWN_STATUS, false),
        ("unknown field (diagnostic pass)", UNKNOWN_FIELD, false),
        ("missing field (diagnostic pass)", MISSING_FIELD, false),
    ];
    for (name, json, ok) in cases {
        // A benchmark of the wrong path would be worse than none.
        assert_eq!(OrderEvent::parse(json.as_bytes()).is_ok(), ok, "{name}");
        group.bench_function(name, |b| {
            b.iter(|| black_box(OrderEvent::parse(black_box(json.as_bytes()))))
        });
    }
    group.finish();
}

/// What the consumer runtime adds per record for its latency figures: read the wall clock and
/// count the record's age in the three windows' histograms.
fn latency_path(c: &mut Criterion) {
    let mut group = short(c, "latency");
    let mut latencies = Latencies::default();
    let created_ms = Utc::now().timestamp_millis() - 3;
    group.bench_function("clock+record", |b| {
        b.iter(|| {
            let now_us = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as i64);
            latencies.record_since(black_box(created_ms), now_us);
        })
    });
    let mut histogram = Histogram::default();
    for ms in 0..1_000 {
        histogram.record(Duration::from_millis(ms));
    }
    // Once a second (progress) and every 5 s (summary), not per record.
    group.bench_function("p50+p99+max of 1,000 ms", |b| {
        b.iter(|| black_box(histogram.stats()))
    });
    group.finish();
}

criterion_group!(benches, produce_path, parse_path, latency_path);
criterion_main!(benches);
