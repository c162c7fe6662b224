//! orderflow: a terminal-driven Kafka teaching toolkit. One binary plays every role of an
//! order platform; this library holds the pieces, from the wire format up to the commands.
//!
//! - [`event`]: the order event on the wire, its encoder and strict parser
//! - [`lifecycle`]: PLACED → CONFIRMED → SHIPPED → DELIVERED, and violations of it
//! - [`generator`]: seeded, shop-like order streams and rate pacing (no Kafka)
//! - [`config`]: validated `-b`/`-t`/`-X` settings and librdkafka client configs
//! - [`kafka`]: all Kafka I/O: the producer, connection health, the development broker
//! - [`roles`]: the order platform's roles (`produce`)
//! - [`audit`]: the audit log storage writes, and reading it back (`orderflow audit`)
//! - [`commands`]: the subcommand dispatch and the infrastructure commands (`broker`)
//! - [`cli`], [`shutdown`], [`human`]: flags, Ctrl-C/SIGTERM, output for people

pub mod activity;
pub mod audit;
pub mod cli;
pub mod commands;
pub mod config;
pub mod event;
pub mod generator;
pub mod human;
pub mod kafka;
pub mod lifecycle;
pub mod printer;
pub mod roles;
pub mod shutdown;

pub use commands::run;
