//! Writes a large audit log, as `orderflow storage` would for a busy shop, without Kafka:
//! the input of `scripts/bench-audit`. The same seed gives the same file, byte for byte.
//!
//! ```sh
//! cargo run --release --example audit-log-generator -- /tmp/big.audit.jsonl --mb 1024
//! ```

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use orderflow::audit::synthetic::SyntheticLog;

#[derive(Parser)]
#[command(about = "Write a large audit log for benchmarks, without Kafka")]
struct Args {
    /// The file to write (replaced if it exists)
    file: PathBuf,
    /// Size of the log in megabytes (10^6 bytes); the last line may go a little over
    #[arg(long, default_value_t = 1024)]
    mb: u64,
    /// Seed of the order generator
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Partitions the orders are spread over
    #[arg(long, default_value_t = 3)]
    partitions: usize,
    /// One record in this many is malformed (0: none), as a real topic has a few
    #[arg(long, default_value_t = 10_000)]
    malformed_every: u64,
}

/// Lines are encoded into a buffer of about this size, then written at once.
const BATCH: usize = 8 << 20;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let target = args.mb * 1_000_000;
    let mut log = SyntheticLog::new(args.seed, "order-events", args.partitions)
        .malformed_every(args.malformed_every);
    let mut file = File::create(&args.file)
        .with_context(|| format!("cannot create {}", args.file.display()))?;
    let mut batch = Vec::with_capacity(BATCH + 4096);
    let mut written = 0u64;
    while written < target {
        batch.clear();
        let want = (target - written).min(BATCH as u64) as usize;
        log.write_until(&mut batch, want);
        file.write_all(&batch)
            .with_context(|| format!("cannot write {}", args.file.display()))?;
        written += batch.len() as u64;
    }
    file.sync_all()?;
    eprintln!(
        "wrote {} ({:.1} MB) in {:.1} s",
        args.file.display(),
        written as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
