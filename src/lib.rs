//! orderflow: a terminal-driven Kafka teaching toolkit. One binary plays every role of an
//! order platform; this library holds the pieces, from the wire format up to the commands.
//!
//! - [`domain`]: the order event on the wire, its lifecycle, the generator (no Kafka)
//! - [`roles`]: the order platform's consumer roles (order-processor, analytics, storage) and
//!   their registry, the one list of them
//! - [`report`]: what the roles report, as plain values and as text / JSON Lines
//! - [`config`]: validated `-b`/`-t`/`-X` settings and librdkafka client configs
//! - [`kafka`]: all Kafka I/O — producer, consumer-group runtime, dead letters, member
//!   announcements, the group watch, connection health, the development broker
//! - [`kraft`]: real Apache Kafka on loopback from its jars (tests, benches, `orderflow
//!   cluster`), no Docker
//! - [`audit`]: the audit log storage writes, and reading it back (`orderflow audit`)
//! - [`dashboard`]: the live view (ratatui), fed by plain events, no Kafka
//! - [`wiring`]: a role run as a member of its group, printing or in the live view; the
//!   producer's send loop (what every command and the examples share)
//! - [`commands`]: the subcommand dispatch and every command (`produce`, the consumer roles,
//!   `broker`, `cluster`, `demo`, `audit`, `completions`)
//! - `metrics`: `--metrics`: the Prometheus endpoint, fed by the same reports as the printers
//! - [`cli`], [`shutdown`], [`logging`]: flags, stop requests, diagnostics

pub mod audit;
pub mod cli;
pub mod commands;
pub mod config;
pub mod dashboard;
pub mod domain;
pub mod kafka;
pub mod kraft;
mod lock;
pub mod logging;
pub(crate) mod metrics;
pub mod report;
pub mod roles;
pub mod shutdown;
pub mod wiring;

pub use commands::run;
