//! Everything that talks to Kafka. The rest of the crate sees plain domain types.

pub mod broker;
pub mod client;
pub mod consumer;
pub mod dead_letter;
mod mock;
pub mod producer;
