//! The audit log's single writer. It makes the file hold every record exactly once, even
//! across crashes:
//!
//! - an exclusive lock on the file: a second storage process gets a clear error instead of
//!   interleaving lines with the first;
//! - on open, a torn last line (a crash in the middle of a write) is cut off and reported;
//! - for each partition, the last stored offset is read from the end of the file, and records
//!   at or below it are skipped, because a crash can come after the lines reached the file
//!   and before their offsets were committed;
//! - [`AuditWriter::sync`] writes and fsyncs; only then does the runtime store the offsets;
//! - before every write and after every fsync, the file at the path must still be the file
//!   this writer appends to (same device and inode, at least as long as what it wrote): a log
//!   removed, truncated or replaced under a running storage would otherwise take lines (and
//!   their commits) into an unlinked inode or a hole, and the records would be lost silently.

mod error;
mod recovery;

use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::line::{AuditLine, RecordId};
pub(crate) use error::{AuditError, FileChange, Repair};

/// Appends audit lines to one locked file.
pub struct AuditWriter {
    path: PathBuf,
    /// Opened for append and read, exclusively locked for the writer's lifetime.
    file: File,
    /// Encoded lines not yet written to the file.
    pending: Vec<u8>,
    /// Per topic and partition, the last record in the file; `None`: the file has none.
    /// Nested rather than keyed by `(String, i32)`, so that the per-record lookup and update
    /// borrow the record's topic instead of allocating a copy of it.
    last: HashMap<String, HashMap<i32, Option<RecordId>>>,
    /// Bytes were written since the last fsync.
    unsynced: bool,
    /// Device and inode of the file opened: the path must keep naming this file.
    identity: (u64, u64),
    /// How long the file is, as far as this writer knows: it never gets shorter.
    written: u64,
    /// Lines appended since the last sync, and lines written and fsynced in all: what the
    /// role may report as stored is only the second.
    queued_lines: u64,
    synced_lines: u64,
}

impl AuditWriter {
    /// Opens (or creates) the log, takes the lock and repairs a torn last line.
    pub(crate) fn open(path: &Path) -> Result<(AuditWriter, Option<Repair>), AuditError> {
        if path.is_dir() {
            return Err(AuditError::IsDirectory {
                path: path.to_owned(),
            });
        }
        let created = !path.exists();
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(|source| AuditError::Open {
                path: path.to_owned(),
                reason: source,
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(AuditError::Locked {
                    path: path.to_owned(),
                });
            }
            Err(TryLockError::Error(source)) => {
                return Err(AuditError::Open {
                    path: path.to_owned(),
                    reason: source,
                });
            }
        }
        let metadata = file.metadata().map_err(|source| AuditError::Open {
            path: path.to_owned(),
            reason: source,
        })?;
        let mut writer = AuditWriter {
            path: path.to_owned(),
            file,
            pending: Vec::with_capacity(1 << 20),
            last: HashMap::new(),
            unsynced: false,
            identity: (metadata.dev(), metadata.ino()),
            written: 0,
            queued_lines: 0,
            synced_lines: 0,
        };
        if created {
            // The new file's directory entry must survive a power cut as well as its lines.
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if let Ok(dir) = File::open(dir) {
                let _ = dir.sync_all();
            }
        }
        writer.check_is_audit_log()?;
        let repair = writer.repair_torn_tail()?;
        writer.written = writer
            .file
            .metadata()
            .map_err(|e| writer.read_error(e))?
            .len();
        Ok((writer, repair))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn read_error(&self, source: io::Error) -> AuditError {
        AuditError::Read {
            path: self.path.clone(),
            reason: source,
        }
    }

    fn write_error(&self, source: io::Error) -> AuditError {
        AuditError::Write {
            path: self.path.clone(),
            reason: source,
        }
    }

    /// Reads `len` bytes at `at`.
    fn read_at(&mut self, at: u64, len: usize) -> Result<Vec<u8>, AuditError> {
        let mut buf = vec![0; len];
        self.file
            .seek(SeekFrom::Start(at))
            .and_then(|_| self.file.read_exact(&mut buf))
            .map_err(|e| self.read_error(e))?;
        Ok(buf)
    }

    /// Queues a line; it reaches the file at the next [`AuditWriter::sync`].
    pub(crate) fn append(&mut self, line: &AuditLine) {
        line.encode_into(&mut self.pending);
        self.queued_lines += 1;
        let partitions = match self.last.get_mut(line.topic.as_str()) {
            Some(partitions) => partitions,
            None => self.last.entry(line.topic.clone()).or_default(),
        };
        match partitions.get_mut(&line.partition) {
            Some(Some(last)) => update_record_id(last, line),
            _ => {
                partitions.insert(line.partition, Some(line.record_id()));
            }
        }
    }

    /// Bytes queued and not yet written.
    pub(crate) fn pending_bytes(&self) -> usize {
        self.pending.len()
    }

    /// Lines written and fsynced by this writer: what is durably stored.
    pub(crate) fn synced_lines(&self) -> u64 {
        self.synced_lines
    }

    /// Fails if the path no longer names the file this writer holds, or the file is shorter
    /// than what was written to it. Two `stat`s: cheap next to the fsync it accompanies.
    pub(crate) fn check_unchanged(&self) -> Result<(), AuditError> {
        let changed = |change| AuditError::Changed {
            path: self.path.clone(),
            change,
        };
        let at_path = match std::fs::metadata(&self.path) {
            Ok(metadata) => metadata,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(changed(FileChange::Removed));
            }
            Err(e) => return Err(self.read_error(e)),
        };
        if (at_path.dev(), at_path.ino()) != self.identity {
            return Err(changed(FileChange::Replaced));
        }
        let now = self.file.metadata().map_err(|e| self.read_error(e))?.len();
        if now < self.written {
            return Err(changed(FileChange::Truncated {
                expected: self.written,
                now,
            }));
        }
        Ok(())
    }

    fn flush_pending(&mut self) -> Result<(), AuditError> {
        if !self.pending.is_empty() {
            // Checked before writing, so that nothing lands in a file that is no longer the
            // log (or after a truncation, at an offset that leaves a hole of lost lines).
            self.check_unchanged()?;
            self.file
                .write_all(&self.pending)
                .map_err(|e| self.write_error(e))?;
            self.written += self.pending.len() as u64;
            self.pending.clear();
            self.unsynced = true;
        }
        Ok(())
    }

    /// Writes every queued line, makes it durable (fsync) and checks that the file at the
    /// path still holds it. Only after this returns Ok may the lines' offsets be committed.
    pub(crate) fn sync(&mut self) -> Result<(), AuditError> {
        self.flush_pending()?;
        if self.unsynced {
            self.file.sync_data().map_err(|e| self.write_error(e))?;
            self.unsynced = false;
            // A change between the write and the fsync would leave the lines where nobody
            // reads them.
            self.check_unchanged()?;
        }
        self.synced_lines += std::mem::take(&mut self.queued_lines);
        Ok(())
    }
}

/// Makes `last` the record id of `line`, as [`AuditLine::record_id`] would, reusing the key's
/// buffer: the writer updates one per stored record.
fn update_record_id(last: &mut RecordId, line: &AuditLine) {
    match (&line.key, &mut last.key) {
        (Some(key), Some(buffer)) => {
            buffer.clear();
            buffer.extend_from_slice(key.as_bytes());
            last.offset = line.offset;
            last.timestamp_ms = line.kafka_timestamp.map(|t| t.timestamp_millis());
        }
        _ => *last = line.record_id(),
    }
}

#[cfg(test)]
mod tests;
