//! The audit log the storage role writes: a JSON Lines file with one line per record of the
//! topic, in the order the records were stored (docs/audit-log.md describes the format), and
//! the reading side behind `orderflow audit`.
//!
//! - [`line`]: one line, its encoding and decoding;
//! - [`writer`]: the single writer — file lock, crash repair, exactly-once appends, fsync;
//! - [`reader`]: opening a log for reading, splitting it into lines in bounded memory,
//!   decoding a line or saying why it is not an audit line;
//! - [`summary`], [`verify`], [`order`], [`tail`]: the four `orderflow audit` subcommands;
//! - [`topics`]: state per topic and partition while reading;
//! - [`synthetic`]: logs made without Kafka, for benchmarks and tests;
//! - [`payments`]: `audit payments`, which checks the payments topic against the orders topic
//!   rather than a log (one payment per PLACED order).

pub mod line;
pub mod order;
pub(crate) mod payments;
pub mod reader;
pub mod summary;
pub mod synthetic;
pub mod tail;
pub(crate) mod topics;
pub mod verify;
pub(crate) mod writer;

pub use line::{AuditLine, RecordId};
pub use reader::{AuditLog, LineError, ReadError};
pub use writer::AuditWriter;
