//! Everything that talks to Kafka. The rest of the crate sees plain domain types.

pub mod broker;
pub mod client;
pub mod consumer;
pub mod dead_letter;
pub mod group_protocol;
pub mod group_watch;
mod mock;
pub mod presence;
pub mod producer;
pub mod topic;
