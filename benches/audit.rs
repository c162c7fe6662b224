//! Speed of reading an audit log, without the disk: `verify` and `summary` over a generated
//! log held in memory, and the two halves of their work — splitting lines and decoding them.
//! docs/performance.md ("Auditing") records the numbers; `scripts/bench-audit` measures the
//! whole command on a 1 GB file.
//!
//! Goal: at least 100 MB/s through `verify` on one core, so that a 1 GB log takes seconds.
//!
//! Run with `cargo bench --bench audit` (about 30 s plus the build).

use std::hint::black_box;
use std::io::Cursor;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use orderflow::audit::reader::{Lines, decode};
use orderflow::audit::summary::summarize_from;
use orderflow::audit::synthetic::SyntheticLog;
use orderflow::audit::verify::verify_from;

/// Large enough that per-order state outgrows the CPU caches as in a real log (about 20,000
/// orders), small enough to build in a blink.
const LOG_BYTES: usize = 32 << 20;

fn audit(c: &mut Criterion) {
    let mut log = Vec::with_capacity(LOG_BYTES + 4096);
    SyntheticLog::new(1, "order-events", 3)
        .malformed_every(10_000)
        .write_until(&mut log, LOG_BYTES);
    // A benchmark of a log with problems would measure the wrong path.
    let report = verify_from(Cursor::new(&log)).expect("in memory");
    assert!(report.ok, "{:?}", report.problems);

    let mut group = c.benchmark_group("audit");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Bytes(log.len() as u64));

    group.bench_function("verify", |b| {
        b.iter(|| black_box(verify_from(Cursor::new(black_box(&log))).unwrap()))
    });
    group.bench_function("summary", |b| {
        b.iter(|| black_box(summarize_from(black_box(log.as_slice())).unwrap()))
    });
    group.bench_function("split lines", |b| {
        b.iter(|| {
            let mut lines = Lines::new(black_box(log.as_slice()));
            let mut n = 0u64;
            while let Some(line) = lines.next_line().unwrap() {
                n += line.length;
            }
            black_box(n)
        })
    });
    group.bench_function("split + decode", |b| {
        b.iter(|| {
            let mut lines = Lines::new(black_box(log.as_slice()));
            while let Some(line) = lines.next_line().unwrap() {
                let _ = black_box(decode(line.bytes));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, audit);
criterion_main!(benches);
