//! Starting a consumer role: its options, where its activity goes (printer or live view, and
//! its announcements), its Kafka runtime on a thread of its own, and the exit status.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use chrono::{Local, Utc};

use crate::audit::AuditWriter;
use crate::cli::{AnalyticsArgs, ConsumerArgs, OrderProcessorArgs, StorageArgs};
use crate::config::KafkaSettings;
use crate::dashboard::terminal::{self, Controls};
use crate::dashboard::{Dashboard, ViewEvent, ViewReport};
use crate::kafka::consumer::{ConsumerOptions, GroupConsumer};
use crate::kafka::dead_letter::DeadLetters;
use crate::kafka::group_watch::GroupWatch;
use crate::kafka::presence::Presence;
use crate::report::activity::{Activity, Fanout, Report};
use crate::report::printer::{JsonPrinter, TextPrinter, summary_line};
use crate::roles::Role;
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

/// Whether the role opens the live view: in a terminal, unless asked for text or JSON.
fn live(args: &ConsumerArgs) -> bool {
    !args.no_tui && !args.json && std::io::stdout().is_terminal()
}

/// The member's announcements on `<topic>.members`, so that views elsewhere see it. Best
/// effort: without them the role works the same.
pub(super) fn presence(settings: &KafkaSettings) -> Option<Box<dyn Report>> {
    match Presence::new(settings) {
        Ok(presence) => Some(Box::new(presence)),
        Err(e) => {
            tracing::debug!(error = %e, "no announcements");
            None
        }
    }
}

/// A second Ctrl-C while a member is finishing up (committing, leaving the group) means
/// "now": what was not committed is read again by the next owner.
pub(super) fn exit_on_second_request(shutdown: &Shutdown) {
    let mut impatient = shutdown.clone();
    tokio::spawn(async move {
        impatient.wait_for(2).await;
        crate::logging::to_stderr();
        eprintln!("stopped without finishing: uncommitted records will be read again");
        std::process::exit(130);
    });
}

/// Runs `role` until Ctrl-C / SIGTERM / `q`, or with --exit-at-end the end of its partitions.
async fn run<R: Role>(
    settings: &KafkaSettings,
    options: ConsumerOptions,
    role: R,
    args: &ConsumerArgs,
    notices: Vec<String>,
    shutdown: Shutdown,
) -> anyhow::Result<ExitCode> {
    exit_on_second_request(&shutdown);
    if !live(args) {
        let mut out = printer(args);
        for notice in notices {
            out.report(Activity::Notice(notice));
        }
        let mut sinks = vec![out];
        sinks.extend(presence(settings));
        let consumer = GroupConsumer::new(settings, options, role, Box::new(Fanout(sinks)))?;
        tokio::task::spawn_blocking(move || consumer.run(&shutdown)).await??;
        return Ok(ExitCode::SUCCESS);
    }

    let role_name = options.role;
    let (events, view_events) = mpsc::channel();
    let mut sinks: Vec<Box<dyn Report>> =
        vec![Box::new(ViewReport::new(role_name, events.clone()))];
    sinks.extend(presence(settings));
    let mut consumer = GroupConsumer::new(settings, options, role, Box::new(Fanout(sinks)))?;
    let control = consumer.control();
    // Fail (unreachable broker, missing topic) before taking over the terminal.
    let consumer =
        tokio::task::spawn_blocking(move || consumer.connect().map(|()| consumer)).await??;
    let watch = {
        let events = events.clone();
        GroupWatch::start(settings, move |view| {
            let _ = events.send(ViewEvent::Groups(view));
        })?
    };
    drop(events);
    // When the member stops on its own (--exit-at-end, an error), the view closes too.
    let finished = Arc::new(AtomicBool::new(false));
    let member = {
        let shutdown = shutdown.clone();
        let finished = Arc::clone(&finished);
        tokio::task::spawn_blocking(move || {
            let ran = consumer.run(&shutdown);
            finished.store(true, Ordering::Relaxed);
            ran
        })
    };
    let dashboard = Dashboard::new(
        &settings.bootstrap(),
        &settings.topic,
        &[role_name],
        Utc::now(),
        *Local::now().offset(),
    );
    // Logs go to a file while the view owns the terminal (best effort).
    let _ = crate::logging::to_file();
    let mut controls = Controls::default();
    controls.on_pause(role_name, move |paused| control.set_paused(paused));
    let view = {
        let shutdown = shutdown.clone();
        let finished = Arc::clone(&finished);
        tokio::task::spawn_blocking(move || {
            let result = terminal::run(dashboard, &view_events, &controls, || {
                shutdown.requested() || finished.load(Ordering::Relaxed)
            });
            (result, view_events)
        })
    };
    let (result, view_events) = view.await?;
    crate::logging::to_stderr();
    if !finished.load(Ordering::Relaxed) {
        println!(
            "{role_name}: committing and leaving group {}… (Ctrl-C to stop without committing)",
            args.group.as_deref().unwrap_or(role_name)
        );
    }
    // `q` in the view, or a signal: either way the member now finishes and leaves.
    shutdown.request();
    let ran = member.await?;
    drop(watch);
    let mut dashboard = result?;
    while let Ok(event) = view_events.recv_timeout(Duration::from_millis(100)) {
        dashboard.update(event);
    }
    for notice in notices {
        println!("{notice}");
    }
    for role in dashboard.roles() {
        for notice in role.notices() {
            println!("{notice}");
        }
        if let Some(summary) = role.summary() {
            println!("{}", summary_line(summary));
        }
    }
    ran?;
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
    let notices = tokio::select! {
        checked = dead_letters.check() => checked?.into_iter().collect(),
        _ = interrupted.requested_async() => return Ok(ExitCode::SUCCESS),
    };
    let role = OrderProcessor::new(Box::new(dead_letters), Duration::from_millis(args.work_ms));
    run(settings, options, role, &args.consumer, notices, shutdown).await
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
        &args.consumer,
        Vec::new(),
        shutdown,
    )
    .await
}

/// The storage role's audit log, opened (and repaired) before anything else happens.
pub(super) fn open_audit_log(
    settings: &KafkaSettings,
    file: Option<std::path::PathBuf>,
) -> anyhow::Result<(AuditWriter, Vec<String>)> {
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
    Ok((log, notices))
}

pub async fn storage(
    settings: &KafkaSettings,
    args: &StorageArgs,
    shutdown: Shutdown,
) -> anyhow::Result<ExitCode> {
    let options = options("storage", &args.consumer);
    let (log, notices) = open_audit_log(settings, args.file.clone())?;
    let role = Storage::new(log, &settings.topic);
    run(settings, options, role, &args.consumer, notices, shutdown).await
}
