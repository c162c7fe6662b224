//! `orderflow payments` (the read-process-write stage, run on kafka/stage/) and `orderflow
//! audit payments` (its checker, audit/payments.rs, fed by read_committed reads of both
//! topics).

use std::io::IsTerminal;

use anyhow::Context;
use std::process::ExitCode;
use std::time::Duration;

use crate::audit::payments::PaymentsCheck;
use crate::cli::{AuditPaymentsArgs, PaymentsArgs};
use crate::config::{KafkaSettings, validate_topic};
use crate::dashboard::stage::{self, StageView, StageViewReport};
use crate::kafka::stage::read::read_committed;
use crate::kafka::stage::{StageOptions, StageRunner};
use crate::report::stage::{StageActivity, StagePrinter, StageReport};
use crate::roles::payments::Payments;
use crate::roles::registry;
use crate::shutdown::Shutdown;

/// How long the checker may take to read each topic to its end.
const READ_LIMIT: Duration = Duration::from_secs(60);

pub(super) async fn run(
    settings: &KafkaSettings,
    args: &PaymentsArgs,
    shutdown: Shutdown,
) -> anyhow::Result<ExitCode> {
    validate_topic(&args.out_topic)?;
    let stage = Payments::new(args.seed, args.decline_rate, args.semantics)?;
    let options = StageOptions {
        stage: registry::PAYMENTS.name,
        group: args
            .group
            .clone()
            .unwrap_or_else(|| registry::PAYMENTS.default_group().to_owned()),
        instance: args.instance.clone(),
        output: args.out_topic.clone(),
        semantics: args.semantics,
        exit_at_end: args.exit_at_end,
        work: Duration::from_millis(args.work_ms),
    };
    let settings = settings.clone();
    let live = !args.json && !args.no_tui && std::io::stdout().is_terminal();
    let (out, view): (Box<dyn StageReport>, _) = if live {
        let (events, view_events) = std::sync::mpsc::channel();
        (Box::new(StageViewReport(events)), Some(view_events))
    } else {
        (Box::new(StagePrinter::new(args.json)), None)
    };
    // The stage blocks on librdkafka (polls, synchronous commits, transactions): its own
    // thread, which sees a stop request between two batches.
    let stopper = shutdown.clone();
    let task = tokio::task::spawn_blocking(move || {
        StageRunner::connect(&settings, options, stage, out)?.run(&shutdown)
    });
    let Some(view_events) = view else {
        task.await??;
        return Ok(ExitCode::SUCCESS);
    };
    // The view ends when the stage does (its sender is dropped); q asks the stage to stop.
    let shown = tokio::task::spawn_blocking(move || {
        let shown = stage::run(StageView::default(), &view_events, || stopper.request());
        if shown.is_err() {
            // Without a view the stage would run on unseen: stop it.
            stopper.request();
        }
        shown
    });
    let (stage_result, view) = tokio::join!(task, shown);
    stage_result??;
    let view = view?.context("the live view failed (--no-tui runs without it)")?;
    // The view took the terminal: the last counters stay on screen as a line.
    StagePrinter::new(false).report(StageActivity::Summary {
        summary: view.summary().clone(),
        last: true,
    });
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn audit(
    settings: &KafkaSettings,
    args: &AuditPaymentsArgs,
) -> anyhow::Result<ExitCode> {
    validate_topic(&args.payments_topic)?;
    let (settings, payments_topic) = (settings.clone(), args.payments_topic.clone());
    let (check, orders_topic) = tokio::task::spawn_blocking(move || {
        let orders = read_committed(&settings, &settings.topic, READ_LIMIT)?;
        let payments = read_committed(&settings, &payments_topic, READ_LIMIT)?;
        let check = PaymentsCheck::of(
            orders
                .iter()
                .map(|r| (r.key.as_deref(), r.value.as_deref())),
            payments
                .iter()
                .map(|r| (r.key.as_deref(), r.value.as_deref())),
        );
        anyhow::Ok((check, settings.topic.clone()))
    })
    .await??;
    if args.json {
        println!("{}", serde_json::to_string(&check)?);
    } else {
        let mut out = std::io::stdout().lock();
        check.write_text(&mut out, &orders_topic, &args.payments_topic)?;
    }
    Ok(if check.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
