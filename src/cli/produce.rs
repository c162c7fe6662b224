//! `orderflow produce`, `orderflow demo` and `orderflow broker`: their flags, and the rate
//! they pace at.

use clap::Args;

#[derive(Debug, Args)]
pub struct BrokerArgs {
    /// Address to accept Kafka clients on (port 0 picks a free one)
    #[arg(long, default_value = "127.0.0.1:9092", value_name = "HOST:PORT")]
    pub listen: String,

    /// Address the broker tells clients to connect to [default: the --listen address].
    /// Set it when clients on other machines connect
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise: Option<String>,

    /// Partitions of the topic created at start
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub partitions: i32,
}

#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Events per second; 0 sends as fast as the broker takes them
    #[arg(
        long,
        default_value = "10",
        value_name = "EVENTS/S",
        value_parser = parse_rate,
        allow_negative_numbers = true
    )]
    pub rate: f64,

    /// Stop after this many events, once every one is delivered [default: run until Ctrl-C]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,

    /// Seed of the order generator: the same seed gives the same orders (ids, users,
    /// statuses, sources) on every machine [default: random, printed at start]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Write the events as JSON lines to stdout instead of Kafka (for jq or kcat -P)
    #[arg(long)]
    pub stdout: bool,

    #[command(flatten)]
    pub metrics: super::MetricsArgs,

    /// Acknowledgements each event waits for: 0 (none: the producer never hears of a lost
    /// event), 1 (the partition leader's), all (every in-sync replica's) [default: all]
    #[arg(long, value_name = "0|1|all", value_parser = ["0", "1", "all"])]
    pub acks: Option<String>,

    /// on: librdkafka's retries never write an event twice nor out of order (needs --acks
    /// all); off: a retry after a lost answer may write it twice [default: on, off with
    /// --acks 0 or 1]
    #[arg(long, value_name = "on|off", value_parser = ["on", "off"])]
    pub idempotence: Option<String>,

    /// Wait for each event's acknowledgement before sending the next: one event in flight,
    /// so events/s is one over the round trip
    #[arg(long)]
    pub sync: bool,
    /// At the end, print the run's summary as one JSON object on stdout: sent, delivered,
    /// failed, events/s and the delivery latency's p50, p95 and p99
    #[arg(long, conflicts_with = "stdout")]
    pub json: bool,
}

/// The highest rate we pace at; beyond it `--rate 0` (no pacing) is what is meant.
const MAX_RATE: f64 = 1_000_000.0;

fn parse_rate(arg: &str) -> Result<f64, String> {
    let rate: f64 = arg
        .parse()
        .map_err(|_| format!("\"{arg}\" is not a number of events per second"))?;
    if !rate.is_finite() || rate < 0.0 {
        return Err("the rate must be 0 (as fast as possible) or a positive number".to_owned());
    }
    if rate > MAX_RATE {
        return Err(format!(
            "at most {MAX_RATE} events/s can be paced; use --rate 0 for as fast as possible"
        ));
    }
    Ok(rate)
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Events per second the producer sends; 0 sends as fast as the broker takes them
    #[arg(
        long,
        default_value = "20",
        value_name = "EVENTS/S",
        value_parser = parse_rate,
        allow_negative_numbers = true
    )]
    pub rate: f64,

    /// Address of the demo's broker; if it is taken, a free port is used instead
    #[arg(long, default_value = "127.0.0.1:9092", value_name = "HOST:PORT")]
    pub listen: String,

    /// Plain text from every role instead of the live view
    #[arg(long)]
    pub no_tui: bool,

    #[command(flatten)]
    pub metrics: super::MetricsArgs,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_checked() {
        assert_eq!(parse_rate("2.5"), Ok(2.5));
        assert_eq!(parse_rate("0"), Ok(0.0));
        assert!(parse_rate("-1").is_err());
        assert!(parse_rate("NaN").is_err());
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("1e9").is_err());
    }
}
