//! What the roles tell people, as plain values and as text: no Kafka, no terminal.
//!
//! - [`activity`]: what a consumer role reports, as plain values
//! - [`latency`]: end-to-end latency of handled records, in a fixed-size histogram
//! - [`client_stats`]: what librdkafka's statistics say of round trips and queues
//! - [`group_view`]: who reads the topic — groups, members, partitions, lag
//! - [`printer`]: text and JSON Lines output of the roles
//! - [`stage`]: what a read-process-write stage (payments) reports, and its printers
//! - [`human`]: numbers, durations and errors in words for people
//! - `rate`, `outage`: the producer's rate meter and what it says about outages

pub mod activity;
pub mod client_stats;
pub mod group_view;
pub mod human;
pub mod latency;
pub(crate) mod outage;
pub mod printer;
pub(crate) mod rate;
pub(crate) mod stage;
