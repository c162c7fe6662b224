//! `-b`, `-t` and `-X`: where the Kafka cluster is, accepted by every subcommand.

use clap::Args;

use crate::config::{Property, parse_property};

/// Where the Kafka cluster is; accepted by every subcommand.
#[derive(Debug, Args)]
#[command(next_help_heading = "Connection (every subcommand)")]
pub struct ConnectionArgs {
    /// Kafka bootstrap servers, comma-separated
    #[arg(
        short = 'b',
        long,
        global = true,
        env = "ORDERFLOW_BROKERS",
        default_value = "localhost:9092",
        value_name = "HOST:PORT,..."
    )]
    pub brokers: String,

    /// Topic the order events flow through
    #[arg(
        short = 't',
        long,
        global = true,
        env = "ORDERFLOW_TOPIC",
        default_value = "order-events",
        value_name = "NAME"
    )]
    pub topic: String,

    /// A librdkafka property, repeatable, as in kcat (security, SASL, SSL, tuning).
    /// Secrets such as sasl.password are never printed
    #[arg(
        short = 'X',
        global = true,
        value_name = "KEY=VALUE",
        value_parser = parse_property
    )]
    pub properties: Vec<Property>,

    /// Whether -b or ORDERFLOW_BROKERS named the cluster (rather than the default): the demo
    /// then runs against that cluster instead of starting a broker of its own.
    #[arg(skip)]
    pub brokers_given: bool,
}
