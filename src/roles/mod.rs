//! The roles of the order platform, one per subcommand.

pub mod analytics;
pub mod order_processor;
pub mod storage;
