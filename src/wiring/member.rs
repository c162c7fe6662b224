//! A role as a member of its consumer group: its options, where its activity goes (a
//! printer or the live view, and its announcements on `<topic>.members`), and its Kafka
//! runtime on a thread of its own. [`run`] is a whole run, as `orderflow analytics` does it;
//! the demo starts several members with `start` and shows them in one view.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::KafkaSettings;
use crate::kafka::consumer::{
    ConsumerControl, ConsumerError, ConsumerOptions, Ending, GroupConsumer,
};
use crate::kafka::presence::Presence;
use crate::report::activity::{Activity, Fanout, Report};
use crate::report::printer::{JsonPrinter, TextPrinter};
use crate::roles::Role;
use crate::shutdown::Shutdown;

/// Where a member's activity goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// Readable lines on stdout.
    Text,
    /// JSON Lines on stdout (docs/consumer-output.md).
    Json,
    /// The live view, which takes over the terminal until the member stops or `q`.
    Live,
}

impl Output {
    /// Text, or JSON Lines when `json`: how a role prints without the live view.
    pub fn printing(json: bool) -> Output {
        if json { Output::Json } else { Output::Text }
    }
}

/// Runs `role` as a member of `options.group` until Ctrl-C / SIGTERM / `q`, or with
/// `exit_at_end` the end of its partitions; then it commits and leaves the group. `notices`
/// are said first (printing) or once the view closes (live). A second stop request exits at
/// once, without committing.
pub async fn run<R: Role>(
    settings: &KafkaSettings,
    options: ConsumerOptions,
    role: R,
    output: Output,
    notices: Vec<String>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    run_reporting(
        settings,
        options,
        role,
        output,
        notices,
        Vec::new(),
        shutdown,
    )
    .await
}

/// [`run`], with every activity also given to `also` (the member's metrics).
pub(crate) async fn run_reporting<R: Role>(
    settings: &KafkaSettings,
    options: ConsumerOptions,
    role: R,
    output: Output,
    notices: Vec<String>,
    also: Vec<Box<dyn Report>>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    exit_on_second_request(&shutdown);
    let printer: Box<dyn Report> = match output {
        Output::Text => Box::new(TextPrinter::default()),
        Output::Json => Box::new(JsonPrinter),
        Output::Live => {
            return super::live::run(settings, options, role, notices, also, shutdown).await;
        }
    };
    let mut out = beside(printer, also);
    for notice in notices {
        out.report(Activity::Notice(notice));
    }
    let consumer = GroupConsumer::new(settings, options, role, with_presence(settings, out))?;
    tokio::task::spawn_blocking(move || consumer.run(&shutdown)).await??;
    Ok(())
}

/// `out`, and `also` beside it when there is anything there.
pub(crate) fn beside(out: Box<dyn Report>, also: Vec<Box<dyn Report>>) -> Box<dyn Report> {
    if also.is_empty() {
        return out;
    }
    let mut sinks = vec![out];
    sinks.extend(also);
    Box::new(Fanout(sinks))
}

/// `out` together with the member's announcements on `<topic>.members`, so that views
/// elsewhere see it. Best effort: without them the role works the same.
pub(crate) fn with_presence(settings: &KafkaSettings, out: Box<dyn Report>) -> Box<dyn Report> {
    let mut sinks = vec![out];
    match Presence::new(settings) {
        Ok(presence) => sinks.push(Box::new(presence)),
        Err(e) => tracing::debug!(error = %e, "no announcements"),
    }
    Box::new(Fanout(sinks))
}

/// A second Ctrl-C while a member is finishing up (committing, leaving the group) means
/// "now": what was not committed is read again by the next owner.
pub(crate) fn exit_on_second_request(shutdown: &Shutdown) {
    let mut impatient = shutdown.clone();
    tokio::spawn(async move {
        impatient.wait_for(2).await;
        crate::logging::to_stderr();
        eprintln!("stopped without finishing: uncommitted records will be read again");
        std::process::exit(130);
    });
}

/// A member that joined its group and runs on a thread of its own.
pub(crate) struct Running {
    /// The role it plays (the live view's panel).
    role: &'static str,
    /// Pauses and resumes the member (the live view's `p`).
    control: ConsumerControl,
    /// Set when the run ends, whether on request or on its own (`--exit-at-end`, an error).
    finished: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Result<Ending, ConsumerError>>,
}

/// Creates a member of `role` reporting to `out` (and announcing itself), joins its group —
/// failing here, before anything else starts, when the broker cannot be reached or the topic
/// is missing — and runs it until `shutdown`.
pub(crate) async fn start<R: Role>(
    settings: &KafkaSettings,
    options: ConsumerOptions,
    role: R,
    out: Box<dyn Report>,
    shutdown: &Shutdown,
) -> anyhow::Result<Running> {
    let role_name = options.role;
    let mut consumer = GroupConsumer::new(settings, options, role, with_presence(settings, out))?;
    let control = consumer.control();
    let consumer =
        tokio::task::spawn_blocking(move || consumer.connect().map(|()| consumer)).await??;
    let finished = Arc::new(AtomicBool::new(false));
    let task = {
        let shutdown = shutdown.clone();
        let finished = Arc::clone(&finished);
        tokio::task::spawn_blocking(move || {
            let ran = consumer.run(&shutdown);
            finished.store(true, Ordering::Relaxed);
            ran
        })
    };
    Ok(Running {
        role: role_name,
        control,
        finished,
        task,
    })
}

impl Running {
    /// The role it plays.
    pub(crate) fn name(&self) -> &'static str {
        self.role
    }

    /// What the live view's `p` does to this member.
    pub(crate) fn pause(&self) -> Box<dyn Fn(bool) + Send> {
        let control = self.control.clone();
        Box::new(move |paused| control.set_paused(paused))
    }

    /// Whether the run has ended, to be asked from any thread.
    pub(crate) fn finished(&self) -> impl Fn() -> bool + Send + 'static {
        let finished = Arc::clone(&self.finished);
        move || finished.load(Ordering::Relaxed)
    }

    /// Waits for the run to end (commit and leave, once stopped); Err if its thread failed.
    pub(crate) async fn ended(self) -> anyhow::Result<Result<Ending, ConsumerError>> {
        Ok(self.task.await?)
    }
}
