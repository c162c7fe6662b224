//! orderflow: a terminal-driven Kafka teaching toolkit. One binary plays every role of an
//! order platform; this library holds the pieces, from the wire format up to the commands.
//!
//! - [`event`]: the order event on the wire, its encoder and strict parser
//! - [`lifecycle`]: PLACED → CONFIRMED → SHIPPED → DELIVERED, and violations of it
//! - [`generator`]: seeded, shop-like order streams and rate pacing (no Kafka)
//! - [`config`]: validated `-b`/`-t`/`-X` settings and librdkafka client configs
//! - [`kafka`]: all Kafka I/O — producer, consumer-group runtime, dead letters, member
//!   announcements, the group watch, connection health, the development broker
//! - [`kraft`]: real Apache Kafka on loopback from its jars (tests, benches), no Docker
//! - [`activity`]: what a consumer role reports, as plain values
//! - [`latency`]: end-to-end latency of handled records (producer timestamp to done), in a
//!   fixed-size histogram
//! - [`group_view`]: who reads the topic — groups, members, partitions, lag — as plain values
//! - [`roles`]: the order platform's roles (produce, order-processor, analytics, storage)
//! - [`audit`]: the audit log storage writes, and reading it back (`orderflow audit`)
//! - [`printer`]: text and JSON Lines output of the roles
//! - [`dashboard`]: the live view (ratatui), fed by plain events, no Kafka
//! - [`commands`]: the subcommand dispatch and the commands that are not roles (`broker`,
//!   `demo`, `audit`, `completions`)
//! - [`cli`], [`shutdown`], [`logging`], [`human`]: flags, stop requests, diagnostics,
//!   output for people

pub mod activity;
pub mod audit;
pub mod cli;
pub mod commands;
pub mod config;
pub mod dashboard;
pub mod event;
pub mod generator;
pub mod group_view;
pub mod human;
pub mod kafka;
pub mod kraft;
pub mod latency;
pub mod lifecycle;
pub mod logging;
pub mod printer;
pub mod roles;
pub mod shutdown;

pub use commands::run;
