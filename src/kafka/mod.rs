//! Everything that talks to Kafka. The rest of the crate sees plain domain types.

pub mod broker;
pub mod client;
pub(crate) mod client_stats;
pub mod cluster_admin;
pub mod cluster_watch;
pub mod consumer;
pub mod dead_letter;
pub mod fault;
pub mod group_protocol;
pub mod group_watch;
mod message_status;
mod mock;
pub mod presence;
pub mod producer;
pub(crate) mod stage;
pub mod topic;
