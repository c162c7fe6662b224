//! Starting a consumer role: its options, its printer, its Kafka runtime on a thread of its
//! own, and the exit status.

use std::process::ExitCode;
use std::time::Duration;

use crate::activity::{Activity, Report};
use crate::audit::AuditWriter;
use crate::cli::{AnalyticsArgs, ConsumerArgs, OrderProcessorArgs, StorageArgs};
use crate::config::KafkaSettings;
use crate::kafka::consumer::{ConsumerOptions, GroupConsumer, Role};
use crate::kafka::dead_letter::DeadLetters;
use crate::printer::{JsonPrinter, TextPrinter};
use crate::roles::analytics::Analytics;
use crate::roles::order_processor::OrderProcessor;
use crate::roles::storage::Storage;
use crate::shutdown::Shutdown;

fn printer(args: &ConsumerArgs) -> Box<dyn Report> {
    if args.json {
        Box::new(JsonPrinter)
    } else {
        Box::new(TextPrinter::default())
    }
}

fn options(role: &'static str, args: &ConsumerArgs) -> ConsumerOptions {
    ConsumerOptions {
        role,
        group: args.group.clone().unwrap_or_else(|| role.to_owned()),
        exit_at_end: args.exit_at_end,
    }
}

/// Runs `role` until Ctrl-C / SIGTERM or, with --exit-at-end, the end of its partitions.
async fn run<R: Role>(
    settings: &KafkaSettings,
    options: ConsumerOptions,
    role: R,
    out: Box<dyn Report>,
    shutdown: Shutdown,
) -> anyhow::Result<ExitCode> {
    let consumer = GroupConsumer::new(settings, options, role, out)?;
    // A second Ctrl-C while the member is finishing up (committing, leaving the group) means
    // "now": what was not committed is read again by the next owner.
    let mut impatient = shutdown.clone();
    tokio::spawn(async move {
        impatient.wait_for(2).await;
        eprintln!("stopped without finishing: uncommitted records will be read again");
        std::process::exit(130);
    });
    tokio::task::spawn_blocking(move || consumer.run(&shutdown)).await??;
    Ok(ExitCode::SUCCESS)
}

pub async fn order_processor(
    settings: &KafkaSettings,
    args: &OrderProcessorArgs,
    shutdown: Shutdown,
) -> anyhow::Result<ExitCode> {
    let options = options("order-processor", &args.consumer);
    let dead_letters = DeadLetters::new(settings, &options.group)?;
    let mut interrupted = shutdown.clone();
    tokio::select! {
        checked = dead_letters.check() => checked?,
        _ = interrupted.requested_async() => return Ok(ExitCode::SUCCESS),
    }
    let role = OrderProcessor::new(dead_letters, Duration::from_millis(args.work_ms));
    run(settings, options, role, printer(&args.consumer), shutdown).await
}

pub async fn analytics(
    settings: &KafkaSettings,
    args: &AnalyticsArgs,
    shutdown: Shutdown,
) -> anyhow::Result<ExitCode> {
    let options = options("analytics", &args.consumer);
    run(
        settings,
        options,
        Analytics::new(),
        printer(&args.consumer),
        shutdown,
    )
    .await
}

pub async fn storage(
    settings: &KafkaSettings,
    args: &StorageArgs,
    shutdown: Shutdown,
) -> anyhow::Result<ExitCode> {
    let options = options("storage", &args.consumer);
    let path = args
        .file
        .clone()
        .unwrap_or_else(|| format!("{}.audit.jsonl", settings.topic).into());
    let (log, repair) = AuditWriter::open(&path)?;
    let mut out = printer(&args.consumer);
    if let Some(repair) = repair {
        out.report(Activity::Notice(format!(
            "repaired {}: removed a torn last line ({} bytes from byte {}), left by a crash \
             while writing; its record was never committed and is read again",
            path.display(),
            repair.removed_bytes,
            repair.at_byte
        )));
    }
    run(
        settings,
        options,
        Storage::new(log, &settings.topic),
        out,
        shutdown,
    )
    .await
}
