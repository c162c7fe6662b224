//! Reading an audit log: opening a path only if it is an audit log, splitting it into lines
//! with a large buffer and bounded memory, and decoding one line.
//!
//! Every command of `orderflow audit` reads through [`Lines`], so a 1 GB log is read in a
//! constant amount of memory: the buffer holds at most one line beyond [`BUFFER`] bytes, and a
//! "line" longer than [`MAX_LINE`] (a binary file without newlines) is skipped, not held.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::line::AuditLine;

/// How much is read from the file at a time. Large enough that reads and the copying of a
/// partial line at the end of the buffer cost nothing next to decoding.
pub(crate) const BUFFER: usize = 1 << 20;

/// The longest line that is still decoded. A Kafka record is at most `message.max.bytes`
/// (1 MB by default); even fully JSON-escaped that stays far below this.
pub(crate) const MAX_LINE: usize = 64 << 20;

/// How much of the start of a file [`AuditLog::open`] looks at to decide whether it is an
/// audit log at all.
const HEAD: usize = 64 * 1024;

/// Why an audit log cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(
        "{path} does not exist. `orderflow storage` writes the audit log (default \
         order-events.audit.jsonl in the directory it runs in); give its path"
    )]
    NotFound { path: PathBuf },
    #[error("{path} is a directory; give the path of an audit log file")]
    IsDirectory { path: PathBuf },
    #[error("{path} is not a regular file; give the path of an audit log file")]
    NotAFile { path: PathBuf },
    #[error("{path} is empty: `orderflow storage` has not stored any record in it yet")]
    Empty { path: PathBuf },
    #[error("{path} is not an orderflow audit log: {why}")]
    NotAnAuditLog { path: PathBuf, why: String },
    // Not `source`: the reason is part of the message, and the error chain would print it
    // again.
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: io::Error },
}

/// Why one line is not an audit line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("empty line")]
    Empty,
    #[error("binary data, not text (a NUL byte at column {column})")]
    Binary { column: usize },
    #[error("not UTF-8 (an invalid byte at column {column})")]
    NotUtf8 { column: usize },
    #[error("not JSON: {reason}")]
    NotJson { reason: String },
    #[error("not an audit line: {reason}")]
    NotAnAuditLine { reason: String },
    #[error("not an audit line: {0}")]
    Inconsistent(&'static str),
    #[error("a line of {bytes} bytes, longer than any audit line can be")]
    TooLong { bytes: u64 },
}

/// One line of the file, without its newline.
#[derive(Clone, Copy, Debug)]
pub struct RawLine<'a> {
    /// 1 for the first line of the file.
    pub number: u64,
    /// The bytes of the line; empty for a line longer than [`MAX_LINE`] (see `length`).
    pub bytes: &'a [u8],
    /// The length of the line in bytes, without its newline.
    pub length: u64,
    /// Whether the line ends with a newline. Only the last line of a file can lack one: a
    /// write torn by a crash, or a line being written right now.
    pub terminated: bool,
}

impl RawLine<'_> {
    /// Decodes the line: an audit line exactly as docs/audit-log.md describes it.
    pub fn decode(&self) -> Result<AuditLine, LineError> {
        if self.bytes.len() as u64 != self.length {
            return Err(LineError::TooLong { bytes: self.length });
        }
        decode(self.bytes)
    }
}

/// Decodes one line (without its newline): it must decode with [`AuditLine`]'s serde, which
/// denies unknown fields, and be consistent (an event, or raw bytes with the error).
pub fn decode(bytes: &[u8]) -> Result<AuditLine, LineError> {
    // Checking the whole line for UTF-8 at once is faster than serde_json checking each
    // string of it on its own, which it skips for a `&str`.
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            return Err(not_text(bytes).unwrap_or(LineError::NotUtf8 {
                column: e.valid_up_to() + 1,
            }));
        }
    };
    match serde_json::from_str::<AuditLine>(text) {
        Ok(line) => match inconsistency(&line) {
            None => Ok(line),
            Some(why) => Err(LineError::Inconsistent(why)),
        },
        // The fast path failed: only now is it worth looking at what the bytes are.
        Err(error) => Err(not_text(bytes).unwrap_or_else(|| not_an_audit_line(&error))),
    }
}

/// An empty line, or binary data (NUL is valid UTF-8 but never in a line of text).
fn not_text(bytes: &[u8]) -> Option<LineError> {
    if bytes.is_empty() {
        return Some(LineError::Empty);
    }
    memchr::memchr(0, bytes).map(|i| LineError::Binary { column: i + 1 })
}

/// What makes a decoded line inconsistent, in words; `None` when it is consistent.
fn inconsistency(line: &AuditLine) -> Option<&'static str> {
    if line.is_consistent() {
        return None;
    }
    let malformed_fields = line.raw.is_some()
        || line.raw_base64.is_some()
        || line.error.is_some()
        || line.error_kind.is_some();
    Some(if line.key.is_some() && line.key_base64.is_some() {
        "it has both key and key_base64"
    } else if line.event.is_some() && malformed_fields {
        "it has both an event and a malformed record's raw/error fields"
    } else if line.raw.is_some() && line.raw_base64.is_some() {
        "it has both raw and raw_base64"
    } else if line.raw.is_none() && line.raw_base64.is_none() {
        "it has neither an event nor raw/raw_base64"
    } else {
        "a malformed record needs both error and error_kind"
    })
}

/// Why serde_json refused a line of text.
fn not_an_audit_line(error: &serde_json::Error) -> LineError {
    // serde_json says "at line 1 column N": the line is ours to number, the column is useful.
    let message = error.to_string();
    let location = format!(" at line {} column {}", error.line(), error.column());
    let message = message.strip_suffix(&location).unwrap_or(&message);
    // "unknown field `x`, expected one of …" lists every field; the first part says it all.
    let message = match message.split_once(", expected one of") {
        Some((head, _)) if message.starts_with("unknown field") => head,
        _ => message,
    };
    let reason = format!("{message} (column {})", error.column());
    match error.classify() {
        serde_json::error::Category::Data => LineError::NotAnAuditLine { reason },
        _ => LineError::NotJson { reason },
    }
}

/// Splits a byte stream into lines, reading [`BUFFER`] bytes at a time. A lending iterator:
/// each line borrows the buffer until the next call.
pub struct Lines<R> {
    source: R,
    buf: Vec<u8>,
    /// The unread bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// The number the next line gets.
    next_number: u64,
    /// The source has no more bytes.
    eof: bool,
}

impl<R: Read> Lines<R> {
    pub fn new(source: R) -> Lines<R> {
        Lines::with_capacity(source, BUFFER)
    }

    /// A reader with a buffer of `capacity` bytes (grown as long lines need, up to
    /// [`MAX_LINE`]).
    pub fn with_capacity(source: R, capacity: usize) -> Lines<R> {
        Lines {
            source,
            buf: vec![0; capacity.max(1)],
            start: 0,
            end: 0,
            next_number: 1,
            eof: false,
        }
    }

    /// The next line, or `None` at the end of the stream.
    pub fn next_line(&mut self) -> io::Result<Option<RawLine<'_>>> {
        // Bytes after `start` already known to hold no newline.
        let mut searched = 0;
        loop {
            let unread = &self.buf[self.start + searched..self.end];
            if let Some(i) = memchr::memchr(b'\n', unread) {
                let (from, to) = (self.start, self.start + searched + i);
                self.start = to + 1;
                return Ok(Some(self.line(from, to, true)));
            }
            searched = self.end - self.start;
            if self.eof {
                if self.start == self.end {
                    return Ok(None);
                }
                let (from, to) = (self.start, self.end);
                self.start = self.end;
                return Ok(Some(self.line(from, to, false)));
            }
            if self.end - self.start >= MAX_LINE {
                return self.skip_long_line().map(Some);
            }
            self.fill()?;
        }
    }

    fn line(&mut self, from: usize, to: usize, terminated: bool) -> RawLine<'_> {
        let number = self.next_number;
        self.next_number += 1;
        RawLine {
            number,
            bytes: &self.buf[from..to],
            length: (to - from) as u64,
            terminated,
        }
    }

    /// Reads more bytes after the unread ones, making room first.
    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let grown = (self.buf.len() * 2).min(MAX_LINE + BUFFER);
            self.buf.resize(grown, 0);
        }
        loop {
            match self.source.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Consumes a line longer than [`MAX_LINE`] without keeping it: counts its bytes up to
    /// its newline (or the end of the stream).
    fn skip_long_line(&mut self) -> io::Result<RawLine<'_>> {
        let mut length = 0u64;
        let terminated = loop {
            let unread = &self.buf[self.start..self.end];
            if let Some(i) = memchr::memchr(b'\n', unread) {
                length += i as u64;
                self.start += i + 1;
                break true;
            }
            length += unread.len() as u64;
            self.start = 0;
            self.end = 0;
            if self.eof {
                break false;
            }
            self.fill()?;
        };
        let number = self.next_number;
        self.next_number += 1;
        Ok(RawLine {
            number,
            bytes: &[],
            length,
            terminated,
        })
    }
}

/// An audit log file opened for reading: a regular, non-empty file whose start holds at
/// least one audit line.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: File,
}

impl AuditLog {
    /// Opens `path` and checks that it is an audit log, with a clear error for a missing
    /// file, a directory, an empty file or a file that is something else (binary data,
    /// another JSON file).
    pub fn open(path: &Path) -> Result<AuditLog, ReadError> {
        let log = AuditLog::open_file(path)?;
        if log.size()? == 0 {
            return Err(ReadError::Empty {
                path: path.to_owned(),
            });
        }
        log.check_head()?;
        Ok(log)
    }

    /// Opens `path` for reading: it must exist and be a regular file, possibly empty.
    pub fn open_file(path: &Path) -> Result<AuditLog, ReadError> {
        let read_error = |source: io::Error| match source.kind() {
            io::ErrorKind::NotFound => ReadError::NotFound {
                path: path.to_owned(),
            },
            _ => ReadError::Read {
                path: path.to_owned(),
                reason: source,
            },
        };
        let metadata = std::fs::metadata(path).map_err(read_error)?;
        if metadata.is_dir() {
            return Err(ReadError::IsDirectory {
                path: path.to_owned(),
            });
        }
        if !metadata.is_file() {
            return Err(ReadError::NotAFile {
                path: path.to_owned(),
            });
        }
        let file = File::open(path).map_err(read_error)?;
        Ok(AuditLog {
            path: path.to_owned(),
            file,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The file, positioned at its start.
    pub(crate) fn rewound(&mut self) -> Result<&mut File, ReadError> {
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(|e| self.read_error(e))?;
        Ok(&mut self.file)
    }

    pub(crate) fn file_mut(&mut self) -> &mut File {
        &mut self.file
    }

    pub(crate) fn into_file(self) -> File {
        self.file
    }

    /// The size of the file now.
    pub(crate) fn size(&self) -> Result<u64, ReadError> {
        Ok(self.file.metadata().map_err(|e| self.read_error(e))?.len())
    }

    pub(crate) fn read_error(&self, source: io::Error) -> ReadError {
        ReadError::Read {
            path: self.path.clone(),
            reason: source,
        }
    }

    /// A file is taken for an audit log when one of the lines in its first [`HEAD`] bytes is
    /// an audit line. A damaged line near the start is then still reported by `verify` with
    /// its number, while a binary file or some other JSON is refused with one clear message.
    fn check_head(&self) -> Result<(), ReadError> {
        let mut head = Vec::with_capacity(HEAD);
        (&self.file)
            .take(HEAD as u64)
            .read_to_end(&mut head)
            .map_err(|e| self.read_error(e))?;
        let whole_file = (head.len() as u64) == self.size()?;
        let mut lines = Lines::new(head.as_slice());
        let mut first_error = None;
        while let Some(line) = lines.next_line().map_err(|e| self.read_error(e))? {
            // The head may end in the middle of a line; such a line says nothing.
            if !line.terminated && !whole_file {
                if line.number == 1 && head.starts_with(br#"{"topic":"#) {
                    // One line longer than the head: it starts as every audit line does.
                    return Ok(());
                }
                break;
            }
            match line.decode() {
                Ok(_) => return Ok(()),
                Err(error) => {
                    first_error.get_or_insert((line.number, error));
                }
            }
        }
        let why = if memchr::memchr(0, &head).is_some() {
            "it holds binary data".to_owned()
        } else if let Some((number, error)) = first_error {
            format!(
                "line {number}: {error}, and no line in its first {} KiB is an audit line \
                 (docs/audit-log.md describes them)",
                HEAD / 1024
            )
        } else {
            format!(
                "no line in its first {} KiB is an audit line (docs/audit-log.md describes them)",
                HEAD / 1024
            )
        };
        Err(ReadError::NotAnAuditLog {
            path: self.path.clone(),
            why,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line of `bytes` read with a buffer of `capacity`, as (number, text, terminated).
    fn split(bytes: &[u8], capacity: usize) -> Vec<(u64, String, bool)> {
        let mut lines = Lines::with_capacity(bytes, capacity);
        let mut out = Vec::new();
        while let Some(line) = lines.next_line().unwrap() {
            assert_eq!(line.bytes.len() as u64, line.length);
            let text = String::from_utf8_lossy(line.bytes).into_owned();
            out.push((line.number, text, line.terminated));
        }
        out
    }

    #[test]
    fn lines_are_split_whatever_the_buffer_size() {
        let text = b"one\n\ntwo two\nthree";
        let expected = vec![
            (1, "one".to_owned(), true),
            (2, String::new(), true),
            (3, "two two".to_owned(), true),
            (4, "three".to_owned(), false),
        ];
        for capacity in [1, 2, 3, 5, 64] {
            assert_eq!(split(text, capacity), expected, "capacity {capacity}");
        }
        assert_eq!(split(b"", 8), vec![]);
        assert_eq!(split(b"\n", 8), vec![(1, String::new(), true)]);
    }

    #[test]
    fn inconsistent_lines_are_named() {
        let both = r#"{"topic":"t","partition":0,"offset":1,"key":null,"kafka_timestamp":null,"stored_at":"2026-01-01T00:00:00Z","raw":"x","raw_base64":"eA==","error":"e","error_kind":"not-json"}"#;
        assert_eq!(
            decode(both.as_bytes()),
            Err(LineError::Inconsistent("it has both raw and raw_base64"))
        );
        let neither = r#"{"topic":"t","partition":0,"offset":1,"key":null,"kafka_timestamp":null,"stored_at":"2026-01-01T00:00:00Z"}"#;
        assert_eq!(
            decode(neither.as_bytes()),
            Err(LineError::Inconsistent(
                "it has neither an event nor raw/raw_base64"
            ))
        );
    }

    #[test]
    fn bad_lines_say_what_they_are() {
        assert_eq!(decode(b""), Err(LineError::Empty));
        assert_eq!(decode(b"ab\0c"), Err(LineError::Binary { column: 3 }));
        assert_eq!(decode(b"{\xff}"), Err(LineError::NotUtf8 { column: 2 }));
        let error = decode(br#"{"topic":"t","partition":0,"extra":1}"#).unwrap_err();
        assert_eq!(
            error.to_string(),
            "not an audit line: unknown field `extra` (column 34)"
        );
        let error = decode(br#"{"topic":"t","#).unwrap_err();
        assert!(
            matches!(&error, LineError::NotJson { reason } if !reason.contains("line 1")),
            "{error}"
        );
    }
}
