//! The audit log the storage role writes: a JSON Lines file with one line per record of the
//! topic, in the order the records were stored (docs/audit-log.md describes the format).
//!
//! - [`line`]: one line, its encoding and decoding;
//! - [`writer`]: the single writer — file lock, crash repair, exactly-once appends, fsync.

pub mod line;
pub mod writer;

pub use line::{AuditLine, RecordId};
pub use writer::{AuditError, AuditWriter, Repair};
