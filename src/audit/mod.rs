//! The audit log the storage role writes: a JSON Lines file with one line per record of the
//! topic, in the order the records were stored (docs/audit-log.md describes the format), and
//! the reading side behind `orderflow audit`.
//!
//! - [`line`]: one line, its encoding and decoding;
//! - [`writer`]: the single writer — file lock, crash repair, exactly-once appends, fsync;
//! - [`reader`]: opening a log for reading, splitting it into lines in bounded memory,
//!   decoding a line or saying why it is not an audit line.

pub mod line;
pub mod reader;
pub mod writer;

pub use line::{AuditLine, RecordId};
pub use reader::{AuditLog, LineError, ReadError};
pub use writer::{AuditError, AuditWriter, Repair};
