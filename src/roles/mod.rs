//! The roles of the order platform, one per subcommand.

pub mod producer;
