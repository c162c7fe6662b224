//! `orderflow audit`: its subcommands and their flags.

use clap::{Args, Subcommand};

use crate::audit::order::OrderQuery;

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Counts by status, source and partition, time span, complete and in-flight orders
    #[command(
        long_about = "\
What the log holds, in one pass: lines and records; events per status and per source; per
partition the records and the first and last offset; the span of the Kafka timestamps and of
the times the lines were stored; orders complete (DELIVERED) and in flight; malformed records by
kind; lines that are not audit lines. It judges nothing: `verify` does.",
        after_help = "\
Examples:
  orderflow audit summary
  orderflow audit summary /tmp/audit.jsonl
  orderflow audit summary --json | jq .statuses"
    )]
    Summary(AuditFileArgs),

    /// Check the log; name the line of every problem and exit 1 if there is any
    #[command(
        long_about = "\
Check that the log is what storage promises, and name the line of every problem:
  - a line that is not an audit line (and why); a torn last line, left by a crash while
    writing, is reported as such (storage removes it when it starts again);
  - per topic and partition: a gap (offsets missing between two consecutive stored offsets), a
    record stored twice (both lines), an offset below one stored before it;
  - an event that breaks its order's lifecycle (order id, statuses, lines).
A partition's log may start above offset 0 (retention, or a group that started late): that is
said, not counted as a problem, and so are orders whose earlier events precede the log.
Malformed records stored as such are counted as information.
With --against-topic the log is also compared with the topic on -b/-t: records Kafka still
holds that the log lacks (before a partition's first line, after its last, or a partition
without any line) are problems. Run it once storage has caught up (its lag is 0).

Exit status: 0 when the log is sound, 1 when there is any problem or the file cannot be read.
Memory stays flat however large the log is, apart from 32 bytes per order.",
        after_help = "\
Examples:
  orderflow audit verify
  orderflow audit verify /tmp/audit.jsonl || echo \"the log has problems\"
  orderflow audit verify --json | jq -c '.problems[] | select(.kind == \"gap\")'
  orderflow audit verify --against-topic -b localhost:9092 -t order-events"
    )]
    Verify(AuditVerifyArgs),

    /// One order's history: every line of it, and whether its lifecycle is valid
    #[command(
        long_about = "\
One order's history in file order: for every line of it the status, the event time, the
partition and offset, when it was stored, and whether the step keeps the lifecycle
PLACED → CONFIRMED → SHIPPED → DELIVERED valid. Malformed records keyed by the order's id are
shown too. ID is the whole order id or its start (at least the 8 characters tail and the
roles show). Exit status 1 when no line is about the order.",
        after_help = "\
Examples:
  orderflow audit order 6f1c0a52-3d7e-4e55-9a43-2b7a1d9c8e10
  orderflow audit order 6f1c0a52 /tmp/audit.jsonl
  orderflow audit order 6f1c0a52 --json | jq -r '.history[] | \"\\(.offset) \\(.status)\"'"
    )]
    Order(AuditOrderArgs),

    /// The last lines, one per line; -f follows the file as it grows
    #[command(
        long_about = "\
The last lines of the log, one per line: the record's time (its Kafka timestamp, UTC),
partition@offset, the order's first 8 characters, status and source; or MALFORMED and why.
With -f it keeps going: lines appended later are shown as they arrive (the file is polled a few
times a second), a truncated file is followed from its start, and so is a new file at the same
path. Ctrl-C ends it, with exit status 0.

With --json the audit lines themselves are printed, unchanged, one per line; lines that are not
audit lines and notices go to stderr.",
        after_help = "\
Examples:
  orderflow audit tail                             # the last 10 lines
  orderflow audit tail -n 50 /tmp/audit.jsonl
  orderflow audit tail -f                          # and every line storage appends
  orderflow audit tail -f --json | jq -c 'select(.error_kind)'   # malformed records as they come"
    )]
    Tail(AuditTailArgs),

    /// Check that every PLACED order got exactly one payment, per semantics; exit 1 if not
    #[command(
        long_about = "\
Read the orders topic (-t) and the payments topic (--payments-topic) as a read_committed reader
does, to their ends, and report for each semantics the payments carry (each run of `orderflow
payments`): PLACED orders with no payment (lost), with more than one (paid twice or more), and
payments for orders the orders topic does not have (unknown), with a few order ids of each.
Run it once payments has caught up. Exit status 1 on any lost, repeated or unknown payment, or
when there is no payment at all.",
        after_help = "\
Examples:
  orderflow audit payments
  orderflow audit payments --payments-topic payments-lab --json | jq '.runs[] | {semantics, lost, duplicated}'"
    )]
    Payments(AuditPaymentsArgs),
}

#[derive(Debug, Args)]
pub struct AuditPaymentsArgs {
    /// The topic `orderflow payments` produced to
    #[arg(long, value_name = "TOPIC", default_value = "payments")]
    pub payments_topic: String,

    /// Print one JSON object instead of text (docs/payments.md describes it)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    #[command(flatten)]
    pub log: AuditFileArgs,

    /// Also compare the log with the topic on -b/-t: records Kafka still holds that the log
    /// lacks, before a partition's first line or after its last, are problems
    #[arg(long)]
    pub against_topic: bool,
}

/// The file, and the output format.
#[derive(Debug, Args)]
pub struct AuditFileArgs {
    /// The audit log [default: <topic>.audit.jsonl, so order-events.audit.jsonl]
    #[arg(value_name = "FILE")]
    pub file: Option<std::path::PathBuf>,

    /// Print JSON for scripts instead of text (docs/audit-log.md describes it)
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AuditOrderArgs {
    /// The order id, or its first characters (at least 8)
    #[arg(value_name = "ID")]
    pub id: OrderQuery,

    #[command(flatten)]
    pub log: AuditFileArgs,
}

#[derive(Debug, Args)]
pub struct AuditTailArgs {
    /// How many of the last lines to show
    #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 10)]
    pub lines: u64,

    /// Keep following the file: show lines as they are appended, until Ctrl-C
    #[arg(short = 'f', long)]
    pub follow: bool,

    #[command(flatten)]
    pub log: AuditFileArgs,
}
