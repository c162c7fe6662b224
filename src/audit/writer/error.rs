//! Why the audit log cannot be written, and what a writer finds to repair.

use std::io;
use std::path::PathBuf;

/// Why the audit log cannot be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AuditError {
    #[error("{path} is a directory; --file needs a file path")]
    IsDirectory { path: PathBuf },
    // The io::Errors are `reason`s, not `source`s: part of the message, and the error chain
    // would print a source again.
    #[error("cannot open the audit log {path}: {reason}")]
    Open { path: PathBuf, reason: io::Error },
    #[error(
        "{path} is in use by another `orderflow storage`: two writers would interleave their \
         lines. Stop the other one, or give this one its own file with --file"
    )]
    Locked { path: PathBuf },
    #[error("cannot write the audit log {path}: {reason}")]
    Write { path: PathBuf, reason: io::Error },
    #[error("cannot read the audit log {path}: {reason}")]
    Read { path: PathBuf, reason: io::Error },
    #[error(
        "{path} is not an orderflow audit log (its first line is not an audit line); \
         refusing to write to it. Give storage another --file"
    )]
    NotAnAuditLog { path: PathBuf },
    #[error(
        "{path} {change} while storage was writing it: the lines written since the last \
         commit are not in the file at that path, so storage stops without committing them. \
         Start storage again: it reads again from the group's last commit, and re-reads from \
         Kafka what the group committed but the file lacks. If the change was a mistake, put \
         the file back first; if the file at that path now holds lines written after the \
         change, move it aside (a new file is filled from the earliest record Kafka holds)"
    )]
    Changed { path: PathBuf, change: FileChange },
}

/// What happened to the audit log under a running writer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FileChange {
    /// No file at the path any more (`rm`, `mv`).
    Removed,
    /// Another file is at the path (an older copy put back, a new file).
    Replaced,
    /// The same file, but shorter than what was written to it (`truncate`, an editor).
    Truncated { expected: u64, now: u64 },
}

impl std::fmt::Display for FileChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileChange::Removed => write!(f, "was removed"),
            FileChange::Replaced => write!(f, "was replaced by another file"),
            FileChange::Truncated { expected, now } => write!(
                f,
                "was truncated (it is {now} bytes long, storage had written {expected})"
            ),
        }
    }
}

/// A torn last line found and removed when opening.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Repair {
    /// Where the torn line started (the new end of the file).
    pub(crate) at_byte: u64,
    /// How many bytes were removed.
    pub(crate) removed_bytes: u64,
}
