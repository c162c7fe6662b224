//! Where diagnostics (`tracing`) go: stderr, or a file while the live view owns the terminal,
//! where a log line would tear the picture apart. Quiet by default: commands print what a
//! learner needs themselves; RUST_LOG turns on more, e.g.
//! `RUST_LOG=orderflow=debug,librdkafka=debug,rdkafka=debug`.

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use tracing_subscriber::fmt::MakeWriter;

use crate::lock::lock;

/// The file logs go to while the live view runs, and its path; `None`: stderr.
static LOG_FILE: Mutex<Option<(File, PathBuf)>> = Mutex::new(None);

/// Installs the subscriber. What librdkafka and rust-rdkafka log is hidden unless asked for:
/// ConnectionHealth already turns it into words.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,librdkafka=off,rdkafka=off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Switch)
        .with_ansi(false)
        .init();
}

/// Sends logs to a file in the temporary directory until [`to_stderr`]; returns its path.
pub fn to_file() -> io::Result<PathBuf> {
    let path = std::env::temp_dir().join(format!("orderflow-{}.log", std::process::id()));
    let file = File::options().create(true).append(true).open(&path)?;
    *lock(&LOG_FILE) = Some((file, path.clone()));
    Ok(path)
}

/// Sends logs to stderr again. The file goes if nothing was logged (every view would leave
/// an empty file in the temporary directory); otherwise stderr says where it is.
pub fn to_stderr() {
    let Some((file, path)) = lock(&LOG_FILE).take() else {
        return;
    };
    let logged = file.metadata().map_or(true, |m| m.len() > 0);
    drop(file);
    if logged {
        eprintln!(
            "what was logged while the live view was open: {}",
            path.display()
        );
    } else {
        let _ = std::fs::remove_file(&path);
    }
}

/// A writer that picks stderr or the file at each write.
struct Switch;

impl<'a> MakeWriter<'a> for Switch {
    type Writer = Switch;

    fn make_writer(&'a self) -> Self::Writer {
        Switch
    }
}

impl Write for Switch {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match lock(&LOG_FILE).as_mut() {
            Some((file, _)) => file.write(buf),
            None => io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match lock(&LOG_FILE).as_mut() {
            Some((file, _)) => file.flush(),
            None => io::stderr().flush(),
        }
    }
}
