//! `--metrics`, on `produce`, the consumer roles and `demo`.

use std::net::SocketAddr;

use clap::Args;

#[derive(Debug, Default, Args)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics on this address: GET /metrics (the Prometheus text format:
    /// lag per group and partition as kafka_consumergroup_group_lag, events handled, dead
    /// letters, rebalances, latency, the producer's deliveries; docs/metrics.md) and GET
    /// /health. Off unless given; a port already in use stops the command before it starts.
    /// Example: --metrics 127.0.0.1:9464
    #[arg(long, env = "ORDERFLOW_METRICS", value_name = "ADDR:PORT")]
    pub metrics: Option<SocketAddr>,
}
