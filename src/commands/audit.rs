//! `orderflow audit`: opens the log, runs the subcommand off the async runtime (a large log
//! takes seconds) while still answering Ctrl-C, prints text or JSON, and turns the outcome
//! into an exit status. What the subcommands do lives in [`crate::audit`].

use std::io::{self, BufWriter, StdoutLock, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use crate::audit::order;
use crate::audit::reader::{self, AuditLog, ReadError};
use crate::audit::summary;
use crate::audit::tail::{self, TailError, TailSink};
use crate::audit::verify;
use crate::cli::{AuditArgs, AuditCommand, AuditFileArgs, AuditTailArgs, ConnectionArgs};
use crate::config::KafkaSettings;
use crate::kafka::topic::partition_bounds;
use crate::shutdown::Shutdown;

/// How often `tail -f` looks at the file: often enough to feel live, rare enough to cost
/// nothing.
const POLL: Duration = Duration::from_millis(200);

type Stdout = BufWriter<StdoutLock<'static>>;

/// How long `verify --against-topic` waits for each answer of the cluster.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn run(
    connection: &ConnectionArgs,
    args: AuditArgs,
    shutdown: Shutdown,
) -> anyhow::Result<ExitCode> {
    let topic = connection.topic.as_str();
    match args.command {
        AuditCommand::Summary(args) => {
            let mut log = AuditLog::open(&path(topic, &args))?;
            let Some(summary) =
                off_runtime(shutdown.clone(), move || summary::summarize(&mut log)).await?
            else {
                return Ok(ExitCode::from(shutdown.cause().exit_status()));
            };
            print(args.json, &summary, |out| summary.write_text(out))?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Verify(args) => {
            // Validated before the file is read: a bad -b fails at once.
            let settings = if args.against_topic {
                Some(KafkaSettings::new(
                    &connection.brokers,
                    &connection.topic,
                    connection.properties.clone(),
                )?)
            } else {
                None
            };
            let mut log = AuditLog::open(&path(topic, &args.log))?;
            let Some(mut report) =
                off_runtime(shutdown.clone(), move || verify::verify(&mut log)).await?
            else {
                return Ok(ExitCode::from(shutdown.cause().exit_status()));
            };
            if let Some(settings) = settings {
                let topic = settings.topic.clone();
                let bounds = off_runtime(shutdown.clone(), move || {
                    partition_bounds(&settings, CLUSTER_TIMEOUT)
                });
                let Some(bounds) = bounds.await? else {
                    return Ok(ExitCode::from(shutdown.cause().exit_status()));
                };
                report.check_against_topic(&topic, &bounds);
            }
            let args = args.log;
            print(args.json, &report, |out| report.write_text(out))?;
            Ok(if report.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        AuditCommand::Order(args) => {
            let mut log = AuditLog::open(&path(topic, &args.log))?;
            let id = args.id;
            let found = off_runtime(shutdown.clone(), move || order::history(&mut log, &id));
            let Some(history) = found.await? else {
                return Ok(ExitCode::from(shutdown.cause().exit_status()));
            };
            print(args.log.json, &history, |out| history.write_text(out))?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Tail(args) => follow(&path(topic, &args.log), &args, shutdown).await,
        // Not a log but two topics: the payments lab's checker.
        AuditCommand::Payments(args) => {
            let settings = KafkaSettings::new(
                &connection.brokers,
                &connection.topic,
                connection.properties.clone(),
            )?;
            super::payments::audit(&settings, &args).await
        }
    }
}

/// The FILE given, or the file storage writes by default for the topic.
fn path(topic: &str, args: &AuditFileArgs) -> PathBuf {
    args.file
        .clone()
        .unwrap_or_else(|| format!("{topic}.audit.jsonl").into())
}

/// Runs `work` on a blocking thread; `None` if Ctrl-C or SIGTERM came first.
async fn off_runtime<T, E>(
    mut shutdown: Shutdown,
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> anyhow::Result<Option<T>>
where
    T: Send + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    let task = tokio::task::spawn_blocking(work);
    tokio::select! {
        done = task => Ok(Some(done??)),
        _ = shutdown.requested_async() => {
            eprintln!("stopped by {} before the end of the log", shutdown.cause().words());
            Ok(None)
        }
    }
}

/// Prints `value` as one JSON object, or as text. A closed pipe (`| head`) is not an error.
fn print(
    json: bool,
    value: &impl Serialize,
    text: impl FnOnce(&mut Stdout) -> io::Result<()>,
) -> anyhow::Result<()> {
    let mut out = BufWriter::new(io::stdout().lock());
    let written = if json {
        serde_json::to_writer(&mut out, value)
            .map_err(io::Error::from)
            .and_then(|()| writeln!(out))
    } else {
        text(&mut out)
    };
    match written.and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        result => result.context("cannot write to stdout"),
    }
}

/// `tail`'s output: lines for people, or the audit lines themselves with `--json`; notices
/// on stderr, so that the JSON on stdout stays clean.
struct TailPrinter {
    out: Stdout,
    json: bool,
}

impl TailSink for TailPrinter {
    fn line(&mut self, bytes: &[u8]) -> io::Result<()> {
        if !self.json {
            return writeln!(self.out, "{}", tail::line_text(bytes));
        }
        match reader::decode(bytes) {
            Ok(_) => {
                self.out.write_all(bytes)?;
                self.out.write_all(b"\n")
            }
            Err(error) => self.notice(&format!("a line that is not an audit line: {error}")),
        }
    }

    fn notice(&mut self, text: &str) -> io::Result<()> {
        // Keep the order of lines and notices on a terminal.
        self.out.flush()?;
        let _ = writeln!(io::stderr(), "{text}");
        Ok(())
    }
}

async fn follow(
    path: &Path,
    args: &AuditTailArgs,
    mut shutdown: Shutdown,
) -> anyhow::Result<ExitCode> {
    let log = match AuditLog::open(path) {
        // Following a log storage has only just created is a fine way to start.
        Err(ReadError::Empty { .. }) if args.follow => AuditLog::open_file(path)?,
        opened => opened?,
    };
    let mut tail = tail::last_lines(log, args.lines)?;
    let mut printer = TailPrinter {
        out: BufWriter::new(io::stdout().lock()),
        json: args.log.json,
    };
    let shown = tail
        .show(&mut printer, args.follow)
        .and_then(|()| printer.out.flush().map_err(TailError::Output));
    if !args.follow || shown.is_err() {
        return finish(shown);
    }
    let mut follower = tail.follow();
    while !shutdown.requested() {
        let polled = follower.poll(&mut printer).and_then(|more| {
            printer
                .out
                .flush()
                .map(|()| more)
                .map_err(TailError::Output)
        });
        let more = match polled {
            Ok(more) => more,
            Err(error) => return finish(Err(error)),
        };
        if !more {
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = shutdown.requested_async() => break,
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A closed pipe ends `tail` quietly; other errors are errors.
fn finish(result: Result<(), TailError>) -> anyhow::Result<ExitCode> {
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(TailError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(error) => Err(error.into()),
    }
}
