//! Everything that talks to Kafka. The rest of the crate sees plain domain types.

pub mod broker;
pub mod client;
mod mock;
pub mod producer;
