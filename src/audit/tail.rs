//! `orderflow audit tail`: the last lines of a log, found by reading backwards from its end
//! (so a 1 GB log starts at once), and a [`Follower`] that picks up appended lines by polling
//! the file, copes with the file being truncated or replaced, and holds back a line until
//! its newline arrives (a line being written is not torn, only unfinished).

use std::fs::{File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;

use super::reader::{AuditLog, Lines, MAX_LINE, ReadError, decode};
use crate::domain::event::OrderKey;
use crate::report::human;

/// How much is read at a time, backwards and forwards.
const CHUNK: usize = 64 * 1024;

/// The most a single [`Follower::poll`] reads, so a burst of appended lines is shown in
/// steps instead of being held in memory at once.
const MAX_POLL: u64 = 8 << 20;

/// Where the lines go: the command prints them, tests collect them.
pub trait TailSink {
    /// One complete line, without its newline.
    fn line(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Something that happened to the file, in words.
    fn notice(&mut self, text: &str) -> io::Result<()>;
}

/// Why tailing stopped.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Writing the output failed (a closed pipe: `| head`).
    #[error("cannot write the output: {0}")]
    Output(io::Error),
}

/// The end of a log as found when tailing starts.
pub struct Tail {
    log: AuditLog,
    /// Where the last lines asked for start.
    start: u64,
    /// Just after the last newline: where complete lines end.
    complete_end: u64,
    /// The size of the file; bytes after `complete_end` are an unfinished last line.
    len: u64,
}

/// Finds the last `n` complete lines of `log`.
pub fn last_lines(mut log: AuditLog, n: u64) -> Result<Tail, ReadError> {
    let len = log.size()?;
    let complete_end = last_newline(log.file_mut(), len)
        .map_err(|e| log.read_error(e))?
        .map_or(0, |at| at + 1);
    let start = start_of_last(log.file_mut(), complete_end, n).map_err(|e| log.read_error(e))?;
    Ok(Tail {
        log,
        start,
        complete_end,
        len,
    })
}

/// The position of the last newline before `end`.
fn last_newline(file: &mut File, end: u64) -> io::Result<Option<u64>> {
    let mut found = None;
    scan_backwards(file, end, |at| {
        found = Some(at);
        false
    })?;
    Ok(found)
}

/// Where the last `n` lines ending at `complete_end` (just after a newline) start.
fn start_of_last(file: &mut File, complete_end: u64, n: u64) -> io::Result<u64> {
    if n == 0 || complete_end == 0 {
        return Ok(complete_end);
    }
    // The newline ending the last line starts nothing; each one before it starts a line.
    let mut remaining = n;
    let mut start = 0;
    scan_backwards(file, complete_end - 1, |at| {
        remaining -= 1;
        if remaining == 0 {
            start = at + 1;
            return false;
        }
        true
    })?;
    Ok(start)
}

/// Calls `newline` with the position of every newline before `end`, last first, while it
/// returns true.
fn scan_backwards(
    file: &mut File,
    end: u64,
    mut newline: impl FnMut(u64) -> bool,
) -> io::Result<()> {
    let mut buf = vec![0; CHUNK];
    let mut end = end;
    while end > 0 {
        let from = end.saturating_sub(CHUNK as u64);
        let chunk = &mut buf[..(end - from) as usize];
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(chunk)?;
        for i in memchr::memrchr_iter(b'\n', chunk) {
            if !newline(from + i as u64) {
                return Ok(());
            }
        }
        end = from;
    }
    Ok(())
}

impl Tail {
    /// Sends the last lines to `sink`. Without `follow`, an unfinished last line is reported
    /// as a notice.
    pub fn show(&mut self, sink: &mut impl TailSink, follow: bool) -> Result<(), TailError> {
        let (start, end) = (self.start, self.complete_end);
        let path = self.log.path().to_owned();
        let read_error = |source| ReadError::Read {
            path: path.clone(),
            reason: source,
        };
        let file = self.log.file_mut();
        file.seek(SeekFrom::Start(start)).map_err(read_error)?;
        let mut lines = Lines::new(file.take(end - start));
        while let Some(line) = lines.next_line().map_err(read_error)? {
            if line.bytes.len() as u64 == line.length {
                sink.line(line.bytes).map_err(TailError::Output)?;
            } else {
                sink.notice(&too_long(line.length))
                    .map_err(TailError::Output)?;
            }
        }
        let unfinished = self.len - self.complete_end;
        if unfinished > 0 && !follow {
            sink.notice(&format!(
                "the last line has no newline ({unfinished} bytes): torn by a crash, or being \
                 written right now"
            ))
            .map_err(TailError::Output)?;
        }
        Ok(())
    }

    /// Follows the log from the end of its last complete line.
    pub(crate) fn follow(self) -> Follower {
        let path = self.log.path().to_owned();
        let file = self.log.into_file();
        Follower {
            path,
            identity: identity_of(&file),
            file,
            position: self.complete_end,
            pending: Vec::new(),
            skipping: false,
            missing: false,
            chunk: vec![0; CHUNK],
        }
    }
}

fn too_long(bytes: u64) -> String {
    format!("skipped a line of {bytes} bytes, longer than any audit line can be")
}

/// Which file a path names: a new file at the same path (log rotation, a new storage run
/// after `mv`) has another identity.
#[cfg(unix)]
fn identity(metadata: &Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((metadata.dev(), metadata.ino()))
}

#[cfg(not(unix))]
fn identity(_: &Metadata) -> Option<(u64, u64)> {
    None
}

fn identity_of(file: &File) -> Option<(u64, u64)> {
    file.metadata().ok().as_ref().and_then(identity)
}

/// Follows a log as it grows.
pub(crate) struct Follower {
    path: PathBuf,
    /// The file being followed; kept open, so a replaced file is read to its end first.
    file: File,
    identity: Option<(u64, u64)>,
    /// Bytes of `file` consumed: shown lines and `pending`.
    position: u64,
    /// The start of a line whose newline has not arrived yet.
    pending: Vec<u8>,
    /// Dropping the rest of a line longer than any audit line, up to its newline.
    skipping: bool,
    /// The path was found missing (and this was said).
    missing: bool,
    /// Read buffer, reused.
    chunk: Vec<u8>,
}

impl Follower {
    /// Sends lines appended since the last poll to `sink`. Returns whether more bytes are
    /// waiting already (a burst larger than one poll reads).
    pub(crate) fn poll(&mut self, sink: &mut impl TailSink) -> Result<bool, TailError> {
        match std::fs::metadata(&self.path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !self.missing {
                    self.missing = true;
                    let text = format!(
                        "{} was removed; waiting for a file to appear at that path",
                        self.path.display()
                    );
                    sink.notice(&text).map_err(TailError::Output)?;
                }
            }
            Err(e) => return Err(self.read_error(e).into()),
            Ok(metadata) => {
                let same_file = identity(&metadata) == self.identity;
                if !same_file {
                    // What the old file got before it was replaced is shown first.
                    while self.read_new(sink)? {}
                    self.reopen(sink)?;
                } else if metadata.len() < self.position {
                    self.shrunk(metadata.len(), sink)?;
                }
                self.missing = false;
            }
        }
        self.read_new(sink)
    }

    fn read_error(&self, source: io::Error) -> ReadError {
        ReadError::Read {
            path: self.path.clone(),
            reason: source,
        }
    }

    /// The file got shorter than what was read of it.
    fn shrunk(&mut self, len: u64, sink: &mut impl TailSink) -> Result<(), TailError> {
        let complete = self.position - self.pending.len() as u64;
        let text = if len >= complete {
            // Only the unfinished line went: storage, starting after a crash, cuts off the
            // torn line it left. What was shown stays valid.
            self.pending.truncate((len - complete) as usize);
            self.position = len;
            format!(
                "the unfinished last line of {} was cut off (storage removes a line torn by a \
                 crash when it starts again)",
                self.path.display()
            )
        } else {
            self.position = 0;
            self.pending.clear();
            format!(
                "{} was truncated; following it from its start",
                self.path.display()
            )
        };
        self.skipping = false;
        sink.notice(&text).map_err(TailError::Output)
    }

    fn reopen(&mut self, sink: &mut impl TailSink) -> Result<(), TailError> {
        self.file = AuditLog::open_file(&self.path)?.into_file();
        self.identity = identity_of(&self.file);
        self.position = 0;
        self.pending.clear();
        self.skipping = false;
        let text = format!(
            "{} is a new file; following it from its start",
            self.path.display()
        );
        sink.notice(&text).map_err(TailError::Output)
    }

    /// Reads what was appended (at most [`MAX_POLL`] bytes) and sends its complete lines.
    fn read_new(&mut self, sink: &mut impl TailSink) -> Result<bool, TailError> {
        let len = self.file.metadata().map_err(|e| self.read_error(e))?.len();
        if len <= self.position {
            return Ok(false);
        }
        let until = len.min(self.position + MAX_POLL);
        self.file
            .seek(SeekFrom::Start(self.position))
            .map_err(|e| self.read_error(e))?;
        while self.position < until {
            let want = ((until - self.position) as usize).min(self.chunk.len());
            let got = match self.file.read(&mut self.chunk[..want]) {
                Ok(0) => break,
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.read_error(e).into()),
            };
            self.position += got as u64;
            self.split(got, sink)?;
        }
        Ok(len > self.position)
    }

    /// Sends the complete lines of `chunk[..got]`, joined to `pending`; keeps the rest.
    fn split(&mut self, got: usize, sink: &mut impl TailSink) -> Result<(), TailError> {
        let mut rest = &self.chunk[..got];
        while let Some(i) = memchr::memchr(b'\n', rest) {
            if self.skipping {
                self.skipping = false;
            } else if self.pending.is_empty() {
                sink.line(&rest[..i]).map_err(TailError::Output)?;
            } else {
                self.pending.extend_from_slice(&rest[..i]);
                sink.line(&self.pending).map_err(TailError::Output)?;
                self.pending.clear();
            }
            rest = &rest[i + 1..];
        }
        if !self.skipping {
            self.pending.extend_from_slice(rest);
            if self.pending.len() > MAX_LINE {
                sink.notice(&too_long(self.pending.len() as u64))
                    .map_err(TailError::Output)?;
                self.pending = Vec::new();
                self.skipping = true;
            }
        }
        Ok(())
    }
}

/// A line for people: time, partition@offset, the order's short id, status and source; or
/// MALFORMED with the error; or why it is not an audit line.
pub(crate) fn line_text(bytes: &[u8]) -> String {
    let line = match decode(bytes) {
        Ok(line) => line,
        Err(error) => return format!("NOT AN AUDIT LINE: {error}"),
    };
    // The record's time when it has one; when it was stored otherwise.
    let time = human::timestamp(&line.kafka_timestamp.unwrap_or(line.stored_at));
    let at = format!("p{}@{}", line.partition, line.offset);
    match &line.event {
        Some(event) => format!(
            "{time}  {at:<12} {}  {:<9}  {}",
            &OrderKey::new(event.order_id).as_str()[..8],
            event.status.as_str(),
            event.source.as_str()
        ),
        None => format!(
            "{time}  {at:<12} MALFORMED: {}",
            line.error.as_deref().unwrap_or("(no error given)")
        ),
    }
}
