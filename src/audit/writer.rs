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

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::line::{AuditLine, Position, RecordId};

/// How much of the file is read at a time when scanning it backwards.
const SCAN_CHUNK: usize = 256 * 1024;

/// Why the audit log cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
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
pub enum FileChange {
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
pub struct Repair {
    /// Where the torn line started (the new end of the file).
    pub at_byte: u64,
    /// How many bytes were removed.
    pub removed_bytes: u64,
}

/// Appends audit lines to one locked file.
pub struct AuditWriter {
    path: PathBuf,
    /// Opened for append and read, exclusively locked for the writer's lifetime.
    file: File,
    /// Encoded lines not yet written to the file.
    pending: Vec<u8>,
    /// Per (topic, partition), the last record in the file; `None`: the file has none.
    last: HashMap<(String, i32), Option<RecordId>>,
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
    pub fn open(path: &Path) -> Result<(AuditWriter, Option<Repair>), AuditError> {
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

    /// Refuses a file that is not an audit log, before anything is cut from or added to it:
    /// `--file` pointing at the wrong file must not damage it.
    fn check_is_audit_log(&mut self) -> Result<(), AuditError> {
        let len = self.file.metadata().map_err(|e| self.read_error(e))?.len();
        let head = self.read_at(0, len.min(64 * 1024) as usize)?;
        let looks_right = match head.iter().position(|&b| b == b'\n') {
            // A whole first line must be an audit line.
            Some(end) => serde_json::from_slice::<Position>(&head[..end]).is_ok(),
            // No newline in the first 64 KiB: either an empty file, a first line torn by a
            // crash, or a very long line; all start the way every audit line starts.
            None => head.is_empty() || head.starts_with(br#"{"topic":"#),
        };
        if looks_right {
            Ok(())
        } else {
            Err(AuditError::NotAnAuditLog {
                path: self.path.clone(),
            })
        }
    }

    pub fn path(&self) -> &Path {
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

    /// A crash while appending can leave a last line without its newline. Every complete
    /// line ends with one, so anything after the last newline is cut off.
    fn repair_torn_tail(&mut self) -> Result<Option<Repair>, AuditError> {
        let len = self.file.metadata().map_err(|e| self.read_error(e))?.len();
        if len == 0 || self.read_at(len - 1, 1)?[0] == b'\n' {
            return Ok(None);
        }
        let mut end = len;
        let cut = loop {
            let start = end.saturating_sub(SCAN_CHUNK as u64);
            let chunk = self.read_at(start, (end - start) as usize)?;
            if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
                break start + i as u64 + 1;
            }
            if start == 0 {
                break 0;
            }
            end = start;
        };
        self.file.set_len(cut).map_err(|e| self.write_error(e))?;
        self.file.sync_all().map_err(|e| self.write_error(e))?;
        Ok(Some(Repair {
            at_byte: cut,
            removed_bytes: len - cut,
        }))
    }

    /// The last record of each partition of `topic` stored in the file (`None`: none).
    /// Partitions not known yet are looked up by reading the file backwards from its end,
    /// only as far as needed.
    pub fn last_stored(
        &mut self,
        topic: &str,
        partitions: &[i32],
    ) -> Result<Vec<(i32, Option<RecordId>)>, AuditError> {
        let mut wanted: HashSet<i32> = partitions
            .iter()
            .copied()
            .filter(|p| !self.last.contains_key(&(topic.to_owned(), *p)))
            .collect();
        if !wanted.is_empty() {
            self.flush_pending()?;
            let found = self.scan_backwards(topic, &mut wanted)?;
            for (partition, offset) in found {
                self.last
                    .insert((topic.to_owned(), partition), Some(offset));
            }
            for partition in wanted {
                self.last.insert((topic.to_owned(), partition), None);
            }
        }
        Ok(partitions
            .iter()
            .map(|&p| (p, self.last[&(topic.to_owned(), p)].clone()))
            .collect())
    }

    /// The last stored offset of one partition, from the cache [`AuditWriter::last_stored`]
    /// fills (and appends keep current).
    pub fn known_last(&self, topic: &str, partition: i32) -> Option<i64> {
        self.last
            .get(&(topic.to_owned(), partition))
            .and_then(|id| id.as_ref().map(|id| id.offset))
    }

    /// Reads lines from the end towards the start until every partition in `wanted` has been
    /// seen; removes the found ones from `wanted`. Lines are in stored order, so the first
    /// line of a partition met from the end holds its last offset.
    fn scan_backwards(
        &mut self,
        topic: &str,
        wanted: &mut HashSet<i32>,
    ) -> Result<Vec<(i32, RecordId)>, AuditError> {
        let mut found = Vec::new();
        let mut end = self.file.metadata().map_err(|e| self.read_error(e))?.len();
        // The bytes of a line whose start lies in a chunk not read yet.
        let mut carry: Vec<u8> = Vec::new();
        let mut visit = |line: &[u8], wanted: &mut HashSet<i32>| {
            if line.is_empty() {
                return;
            }
            // A line that does not decode is corruption for `audit verify` to report;
            // recovery only needs positions.
            if let Ok(position) = serde_json::from_slice::<Position>(line)
                && position.topic == topic
                && wanted.remove(&position.partition)
            {
                found.push((position.partition, position.record_id()));
            }
        };
        while end > 0 && !wanted.is_empty() {
            let start = end.saturating_sub(SCAN_CHUNK as u64);
            let mut chunk = self.read_at(start, (end - start) as usize)?;
            chunk.extend_from_slice(&carry);
            // Everything after the first newline of the chunk is made of whole lines.
            let first_newline = chunk.iter().position(|&b| b == b'\n');
            match first_newline {
                Some(i) => {
                    for line in chunk[i + 1..].rsplit(|&b| b == b'\n') {
                        visit(line, wanted);
                        if wanted.is_empty() {
                            break;
                        }
                    }
                    chunk.truncate(i);
                    carry = chunk;
                }
                None => carry = chunk,
            }
            end = start;
        }
        if end == 0 && !wanted.is_empty() {
            visit(&carry, wanted);
        }
        Ok(found)
    }

    /// Queues a line; it reaches the file at the next [`AuditWriter::sync`].
    pub fn append(&mut self, line: &AuditLine) {
        line.encode_into(&mut self.pending);
        self.queued_lines += 1;
        self.last
            .insert((line.topic.clone(), line.partition), Some(line.record_id()));
    }

    /// Bytes queued and not yet written.
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }

    /// Lines written and fsynced by this writer: what is durably stored.
    pub fn synced_lines(&self) -> u64 {
        self.synced_lines
    }

    /// Fails if the path no longer names the file this writer holds, or the file is shorter
    /// than what was written to it. Two `stat`s: cheap next to the fsync it accompanies.
    pub fn check_unchanged(&self) -> Result<(), AuditError> {
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
    pub fn sync(&mut self) -> Result<(), AuditError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn line(partition: i32, offset: i64) -> AuditLine {
        let record = crate::roles::ConsumedRecord {
            topic: "t",
            partition,
            offset,
            key: None,
            value: Some(b"x"),
            timestamp_ms: None,
        };
        AuditLine::from_record(&record, Utc::now())
    }

    #[test]
    fn last_offsets_come_from_the_end_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        {
            let (mut writer, repair) = AuditWriter::open(&path).unwrap();
            assert_eq!(repair, None);
            for offset in 0..5_000 {
                writer.append(&line((offset % 3) as i32, offset));
            }
            writer.sync().unwrap();
        }
        let (mut writer, _) = AuditWriter::open(&path).unwrap();
        let offsets = |found: Vec<(i32, Option<RecordId>)>| {
            found
                .into_iter()
                .map(|(p, id)| (p, id.map(|id| id.offset)))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            offsets(writer.last_stored("t", &[0, 1, 2, 7]).unwrap()),
            vec![(0, Some(4998)), (1, Some(4999)), (2, Some(4997)), (7, None)]
        );
        assert_eq!(
            offsets(writer.last_stored("other", &[0]).unwrap()),
            vec![(0, None)]
        );
        writer.append(&line(7, 1));
        assert_eq!(writer.known_last("t", 7), Some(1));
    }

    #[test]
    fn a_torn_last_line_is_cut_off_and_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        {
            let (mut writer, _) = AuditWriter::open(&path).unwrap();
            writer.append(&line(0, 0));
            writer.append(&line(0, 1));
            writer.sync().unwrap();
        }
        let whole = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(br#"{"topic":"t","partition":0,"off"#)
            .unwrap();
        let (mut writer, repair) = AuditWriter::open(&path).unwrap();
        assert_eq!(
            repair,
            Some(Repair {
                at_byte: whole,
                removed_bytes: 31
            })
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), whole);
        writer.last_stored("t", &[0]).unwrap();
        assert_eq!(writer.known_last("t", 0), Some(1));
    }

    #[test]
    fn a_second_writer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let _first = AuditWriter::open(&path).unwrap();
        assert!(matches!(
            AuditWriter::open(&path),
            Err(AuditError::Locked { .. })
        ));
        assert!(matches!(
            AuditWriter::open(dir.path()),
            Err(AuditError::IsDirectory { .. })
        ));
    }

    #[test]
    fn huge_lines_and_tiny_chunks_do_not_confuse_the_scan() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let (mut writer, _) = AuditWriter::open(&path).unwrap();
        let big = "y".repeat(3 * SCAN_CHUNK);
        let record = crate::roles::ConsumedRecord {
            topic: "t",
            partition: 1,
            offset: 10,
            key: None,
            value: Some(big.as_bytes()),
            timestamp_ms: None,
        };
        writer.append(&line(0, 3));
        writer.append(&AuditLine::from_record(&record, Utc::now()));
        writer.sync().unwrap();
        drop(writer);
        let (mut writer, _) = AuditWriter::open(&path).unwrap();
        writer.last_stored("t", &[0, 1]).unwrap();
        assert_eq!(writer.known_last("t", 0), Some(3));
        assert_eq!(writer.known_last("t", 1), Some(10));
    }

    #[test]
    fn a_file_that_is_not_an_audit_log_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        std::fs::write(&path, "my notes\nno newline at the end").unwrap();
        assert!(matches!(
            AuditWriter::open(&path),
            Err(AuditError::NotAnAuditLog { .. })
        ));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "my notes\nno newline at the end"
        );
        // A first line torn by a crash is an audit log's, and is repaired.
        let torn = dir.path().join("torn.jsonl");
        std::fs::write(&torn, r#"{"topic":"t","parti"#).unwrap();
        let (_, repair) = AuditWriter::open(&torn).unwrap();
        assert_eq!(repair.map(|r| r.at_byte), Some(0));
    }

    #[test]
    fn lines_written_early_are_still_fsynced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let (mut writer, _) = AuditWriter::open(&path).unwrap();
        writer.append(&line(0, 0));
        // Looking up another partition writes the queued line without fsync…
        writer.last_stored("t", &[1]).unwrap();
        assert!(writer.unsynced);
        // …so the next sync must still fsync.
        writer.sync().unwrap();
        assert!(!writer.unsynced);
    }

    #[test]
    fn a_removed_truncated_or_replaced_file_is_noticed_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let changed = |result: Result<(), AuditError>| match result {
            Err(AuditError::Changed { change, .. }) => change,
            other => panic!("not noticed: {other:?}"),
        };

        let (mut writer, _) = AuditWriter::open(&path).unwrap();
        writer.append(&line(0, 0));
        writer.sync().unwrap();
        std::fs::remove_file(&path).unwrap();
        writer.append(&line(0, 1));
        assert_eq!(changed(writer.sync()), FileChange::Removed);
        assert_eq!(writer.synced_lines(), 1, "the failed line is not counted");
        drop(writer);

        let (mut writer, _) = AuditWriter::open(&path).unwrap();
        writer.append(&line(0, 0));
        writer.sync().unwrap();
        let written = std::fs::metadata(&path).unwrap().len();
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        writer.append(&line(0, 1));
        assert_eq!(
            changed(writer.sync()),
            FileChange::Truncated {
                expected: written,
                now: 0
            }
        );
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            0,
            "nothing written"
        );
        drop(writer);

        let (mut writer, _) = AuditWriter::open(&path).unwrap();
        let other = dir.path().join("other.jsonl");
        std::fs::write(&other, "").unwrap();
        std::fs::rename(&other, &path).unwrap();
        writer.append(&line(0, 0));
        assert_eq!(changed(writer.sync()), FileChange::Replaced);
    }
}
