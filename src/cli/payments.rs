//! `orderflow payments`' flags.

use clap::Args;

use crate::domain::payment::Semantics;

/// The longest `--work-ms` per order: a batch holds up to 500 records and is produced whole
/// before the stage looks at a stop request again, so a larger value would make Ctrl-C look
/// like a hang.
const MAX_WORK_MS: u64 = 1_000;

#[derive(Debug, Args)]
pub struct PaymentsArgs {
    /// Consumer group to join [default: payments]. A new group starts at the earliest offset
    #[arg(short = 'g', long, value_name = "ID", value_parser = crate::config::parse_group)]
    pub group: Option<String>,

    /// When the input offsets are committed: at-most-once (commit, then produce),
    /// at-least-once (produce, wait for delivery, then commit) or exactly-once (both in one
    /// Kafka transaction; needs real Kafka)
    #[arg(long, value_name = "SEMANTICS", default_value = "at-least-once")]
    pub semantics: Semantics,

    /// The topic payment events go to
    #[arg(long, value_name = "TOPIC", default_value = "payments")]
    pub out_topic: String,

    /// The share of orders declined, from 0 to 1
    #[arg(long, value_name = "FRACTION", default_value_t = 0.1)]
    pub decline_rate: f64,

    /// Seed of the decisions: the same seed declines the same orders, in any run
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,

    /// This member's name in the group (its group.instance.id, and with exactly-once its
    /// transactional.id): a member restarted with the same name takes its place at once;
    /// give every member running at the same time its own
    #[arg(long, value_name = "NAME", default_value = "1")]
    pub instance: String,

    /// Simulated time the payment provider takes per PLACED order, in milliseconds (at most
    /// 1,000): a crash then often finds a batch half produced, which is where the semantics
    /// differ
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 0,
        value_parser = clap::value_parser!(u64).range(0..=MAX_WORK_MS)
    )]
    pub work_ms: u64,

    /// Stop once every assigned partition is read to its end, after committing
    #[arg(long)]
    pub exit_at_end: bool,

    /// JSON Lines on stdout, one object per line with a "type": started, assigned, aborted,
    /// notice, summary (docs/payments.md)
    #[arg(long)]
    pub json: bool,

    /// Plain text instead of the live view, even in a terminal (the view is never used when
    /// stdout is not a terminal)
    #[arg(long)]
    pub no_tui: bool,
}
