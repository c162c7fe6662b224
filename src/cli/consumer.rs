//! The consumer roles' flags: those every role has, and each role's own.

use clap::Args;

/// The longest `--work-ms`: ten seconds a record already shows lag growing; much more would
/// look like a hang.
const MAX_WORK_MS: u64 = 10_000;

/// Options every consumer role has.
#[derive(Debug, Args)]
pub struct ConsumerArgs {
    /// Consumer group to join [default: the role's name]. A new group starts at the
    /// earliest offset
    #[arg(short = 'g', long, value_name = "ID", value_parser = crate::config::parse_group)]
    pub group: Option<String>,

    /// Stop once every assigned partition is read to its end (after committing), as kcat -e
    #[arg(long)]
    pub exit_at_end: bool,

    /// Skip records that cannot be decoded (a corrupt batch, a compression codec this build
    /// lacks): each range is named and counted as malformed "undecodable". Without it the
    /// role stops at them, naming the offsets
    #[arg(long)]
    pub skip_undecodable: bool,

    /// JSON Lines on stdout, one object per line with a "type": joined, assigned, revoked,
    /// committed, commit_failed, connection, malformed, violation, notice, paused, summary,
    /// left (docs/consumer-output.md)
    #[arg(long)]
    pub json: bool,

    /// Plain text instead of the live view, even in a terminal (the view is never used when
    /// stdout is not a terminal)
    #[arg(long)]
    pub no_tui: bool,

    #[command(flatten)]
    pub metrics: super::MetricsArgs,
}

#[derive(Debug, Args)]
pub struct OrderProcessorArgs {
    #[command(flatten)]
    pub consumer: ConsumerArgs,

    /// Simulated work per record, in milliseconds (at most 10,000), to make the processor
    /// slow and its lag grow
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 0,
        value_parser = clap::value_parser!(u64).range(0..=MAX_WORK_MS)
    )]
    pub work_ms: u64,
}

#[derive(Debug, Args)]
pub struct AnalyticsArgs {
    #[command(flatten)]
    pub consumer: ConsumerArgs,
}

#[derive(Debug, Args)]
pub struct StorageArgs {
    #[command(flatten)]
    pub consumer: ConsumerArgs,

    /// The audit log to append to [default: <topic>.audit.jsonl, so order-events.audit.jsonl]
    #[arg(long, value_name = "PATH")]
    pub file: Option<std::path::PathBuf>,
}
