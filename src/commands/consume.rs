//! The consumer roles' commands (`order-processor`, `analytics`, `storage`): how each role is
//! built from its arguments, then run as a member of its group (wiring/member.rs).

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use crate::audit::AuditWriter;
use crate::cli::{AnalyticsArgs, ConsumerArgs, OrderProcessorArgs, StorageArgs};
use crate::config::KafkaSettings;
use crate::kafka::consumer::ConsumerOptions;
use crate::kafka::dead_letter::DeadLetters;
use crate::metrics::Metrics;
use crate::roles::Role;
use crate::roles::analytics::Analytics;
use crate::roles::order_processor::OrderProcessor;
use crate::roles::registry::{self, RoleEntry};
use crate::roles::storage::Storage;
use crate::shutdown::Shutdown;
use crate::wiring::{self, Output};

/// The member options of `role` from its command line.
fn options(role: &RoleEntry, args: &ConsumerArgs) -> ConsumerOptions {
    ConsumerOptions {
        role: role.name,
        group: args
            .group
            .clone()
            .unwrap_or_else(|| role.default_group().to_owned()),
        exit_at_end: args.exit_at_end,
        skip_undecodable: args.skip_undecodable,
    }
}

/// Where the role's activity goes: the live view in a terminal, unless asked for text or
/// JSON.
fn output(args: &ConsumerArgs) -> Output {
    if !args.no_tui && !args.json && std::io::stdout().is_terminal() {
        Output::Live
    } else {
        Output::printing(args.json)
    }
}

/// Runs `role` until Ctrl-C / SIGTERM / `q`, or with --exit-at-end the end of its partitions;
/// with `metrics`, its activity and its group's lag are served there meanwhile.
async fn run<R: Role>(
    settings: &KafkaSettings,
    options: ConsumerOptions,
    role: R,
    args: &ConsumerArgs,
    notices: Vec<String>,
    metrics: Option<Metrics>,
    shutdown: Shutdown,
) -> anyhow::Result<ExitCode> {
    let mut also = Vec::new();
    let mut watch = None;
    if let Some(metrics) = &metrics {
        also.push(metrics.member(options.role, &options.group));
        // The platform's groups besides its own, so that a scrape of any one role shows
        // another role's lag growing while that role is down (a crashed member announces
        // nothing, and the built-in broker cannot list groups).
        let mut groups = registry::default_groups();
        if !groups.contains(&options.group) {
            groups.push(options.group.clone());
        }
        watch = Some(metrics.watch_groups(settings, groups)?);
    }
    let output = output(args);
    wiring::member::run_reporting(settings, options, role, output, notices, also, shutdown).await?;
    drop(watch);
    Ok(ExitCode::SUCCESS)
}

/// Binds `--metrics` first: a busy port stops the role before it builds anything or joins
/// its group.
fn serve_metrics(args: &ConsumerArgs) -> anyhow::Result<Option<Metrics>> {
    let metrics = Metrics::serve_if(args.metrics.metrics)?;
    if let Some(metrics) = &metrics {
        eprintln!("metrics: http://{}/metrics", metrics.address());
    }
    Ok(metrics)
}

/// The order-processor with its dead-letter producer, and what checking the dead-letter
/// topic found to say.
pub(super) async fn build_order_processor(
    settings: &KafkaSettings,
    group: &str,
    work: Duration,
) -> anyhow::Result<(OrderProcessor, Vec<String>)> {
    let dead_letters = DeadLetters::new(settings, group)?;
    let notices = dead_letters.check().await?.into_iter().collect();
    Ok((OrderProcessor::new(Box::new(dead_letters), work), notices))
}

pub(super) async fn order_processor(
    settings: &KafkaSettings,
    args: &OrderProcessorArgs,
    shutdown: Shutdown,
) -> anyhow::Result<ExitCode> {
    let metrics = serve_metrics(&args.consumer)?;
    let options = options(&registry::ORDER_PROCESSOR, &args.consumer);
    let mut interrupted = shutdown.clone();
    let work = Duration::from_millis(args.work_ms);
    let (role, notices) = tokio::select! {
        built = build_order_processor(settings, &options.group, work) => built?,
        _ = interrupted.requested_async() => return Ok(ExitCode::SUCCESS),
    };
    let role = role.stopping_on(shutdown.clone());
    run(
        settings,
        options,
        role,
        &args.consumer,
        notices,
        metrics,
        shutdown,
    )
    .await
}

pub(super) async fn analytics(
    settings: &KafkaSettings,
    args: &AnalyticsArgs,
    shutdown: Shutdown,
) -> anyhow::Result<ExitCode> {
    let metrics = serve_metrics(&args.consumer)?;
    let options = options(&registry::ANALYTICS, &args.consumer);
    run(
        settings,
        options,
        Analytics::new(),
        &args.consumer,
        Vec::new(),
        metrics,
        shutdown,
    )
    .await
}

/// The storage role on its audit log, opened (and repaired) before anything else happens,
/// and what the repair did.
pub(super) fn build_storage(
    settings: &KafkaSettings,
    file: Option<std::path::PathBuf>,
) -> anyhow::Result<(Storage, Vec<String>)> {
    let path = file.unwrap_or_else(|| format!("{}.audit.jsonl", settings.topic).into());
    let (log, repair) = AuditWriter::open(&path)?;
    let notices = repair
        .map(|repair| {
            format!(
                "repaired {}: removed a torn last line ({} bytes from byte {}), left by a crash \
                 while writing; its record is stored again when its partition is assigned (read again if \
                 its offset was not committed, re-read from Kafka if it was)",
                path.display(),
                repair.removed_bytes,
                repair.at_byte
            )
        })
        .into_iter()
        .collect();
    Ok((Storage::new(log, &settings.topic), notices))
}

pub(super) async fn storage(
    settings: &KafkaSettings,
    args: &StorageArgs,
    shutdown: Shutdown,
) -> anyhow::Result<ExitCode> {
    let metrics = serve_metrics(&args.consumer)?;
    let options = options(&registry::STORAGE, &args.consumer);
    let (role, notices) = build_storage(settings, args.file.clone())?;
    run(
        settings,
        options,
        role,
        &args.consumer,
        notices,
        metrics,
        shutdown,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(group: Option<&str>, json: bool) -> ConsumerArgs {
        ConsumerArgs {
            group: group.map(str::to_owned),
            exit_at_end: true,
            skip_undecodable: false,
            json,
            no_tui: false,
            metrics: Default::default(),
        }
    }

    #[test]
    fn a_role_joins_its_default_group_unless_told_another() {
        let default = options(&registry::ANALYTICS, &args(None, false));
        assert_eq!(
            (default.role, default.group.as_str(), default.exit_at_end),
            ("analytics", "analytics", true)
        );
        let other = options(&registry::STORAGE, &args(Some("replay-1"), false));
        assert_eq!((other.role, other.group.as_str()), ("storage", "replay-1"));
    }

    #[test]
    fn json_is_never_the_live_view() {
        assert_eq!(output(&args(None, true)), Output::Json);
        if !std::io::stdout().is_terminal() {
            assert_eq!(output(&args(None, false)), Output::Text);
        }
    }
}
