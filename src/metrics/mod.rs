//! Prometheus metrics for `--metrics ADDR:PORT`: an HTTP endpoint serving `/metrics` (the
//! Prometheus text format, encoded by `prometheus-client`) and `/health`.
//!
//! The roles know nothing of it. What is exported comes from three places the wiring already
//! has: each member's [`Activity`](crate::report::activity::Activity) stream (one more
//! [`Report`] sink beside the printer or the live view), the group watch's
//! [`GroupView`] (lag and offsets per group and partition, named as kafka-lag-exporter names
//! them), and the producer's delivery accounting. docs/metrics.md documents every series.
//!
//! - `series`: the exported series, encoded at scrape time from the latest values
//! - `member`: a member's sink
//! - `server`: the HTTP endpoint

mod member;
mod series;
mod server;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::registry::Registry;

use self::member::MemberMetrics;
pub(crate) use self::series::ProducerCounts;
use self::series::{Exported, Latest};
use self::server::MetricsEndpoint;
use crate::config::KafkaSettings;
use crate::kafka::group_watch::GroupWatch;
use crate::report::activity::Report;
use crate::report::client_stats::ClientStatistics;
use crate::report::group_view::GroupView;

/// After this long without a scrape, the group watch stops asking the cluster (Prometheus
/// scrapes every 15 s by default; docker/'s every 5 s).
const UNSCRAPED: Duration = Duration::from_secs(60);

/// Why metrics cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error(
        "cannot serve metrics on {address}: the address is in use (another orderflow with \
         --metrics, or an exporter?); pick another port with --metrics or ORDERFLOW_METRICS"
    )]
    AddressInUse { address: SocketAddr },
    #[error("cannot serve metrics on {address}: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot serve metrics: {reason}")]
    Serve { reason: String },
}

/// A process's metrics: the series its parts publish, and the endpoint serving them. Cheap
/// to clone; the endpoint stops when the last clone is dropped.
#[derive(Clone)]
pub(crate) struct Metrics {
    latest: Arc<Mutex<Latest>>,
    endpoint: Arc<MetricsEndpoint>,
}

impl Metrics {
    /// Binds `address` and serves on it. Call it before anything else starts, so that a busy
    /// port stops the command before it joins a group or sends an event.
    pub(crate) fn serve(address: SocketAddr) -> Result<Metrics, MetricsError> {
        let listener = server::bind(address)?;
        let exported = Exported::default();
        let latest = Arc::clone(&exported.0);
        let mut registry = Registry::default();
        registry.register_collector(Box::new(exported));
        let endpoint = MetricsEndpoint::serve(listener, Arc::new(registry))?;
        tracing::info!(address = %endpoint.address(), "serving /metrics and /health");
        Ok(Metrics {
            latest,
            endpoint: Arc::new(endpoint),
        })
    }

    /// Serves on `address` if one was asked for.
    pub(crate) fn serve_if(address: Option<SocketAddr>) -> Result<Option<Metrics>, MetricsError> {
        address.map(Metrics::serve).transpose()
    }

    /// The address served on.
    pub(crate) fn address(&self) -> SocketAddr {
        self.endpoint.address()
    }

    /// The sink of a member of `role` in `group`.
    pub(crate) fn member(&self, role: &'static str, group: &str) -> Box<dyn Report> {
        Box::new(MemberMetrics::new(Arc::clone(&self.latest), role, group))
    }

    /// Starts a group watch whose views become the `kafka_consumergroup_*` and
    /// `kafka_partition_*` series; dropping it stops it. `groups`: shown once they have
    /// committed, even without members (the roles' own groups). It runs while the endpoint is
    /// scraped (within [`UNSCRAPED`]): nobody scraping costs no requests, and the lag it
    /// last saw is dropped rather than served stale when scrapes resume.
    pub(crate) fn watch_groups(
        &self,
        settings: &KafkaSettings,
        groups: Vec<String>,
    ) -> std::io::Result<GroupWatch> {
        let latest = Arc::clone(&self.latest);
        let asked = Arc::clone(&self.latest);
        let wanted = move || {
            let mut latest = asked.lock().unwrap_or_else(|p| p.into_inner());
            let scraped = latest.scraped_at.is_some_and(|at| at.elapsed() < UNSCRAPED);
            if !scraped {
                latest.groups = None;
            }
            scraped
        };
        GroupWatch::start_when(settings, groups, wanted, move |view: GroupView| {
            latest.lock().unwrap_or_else(|p| p.into_inner()).groups = Some(view);
        })
    }

    /// Exports the producer's counters, read from `read` at each scrape.
    pub(crate) fn producer(&self, read: impl Fn() -> ProducerCounts + Send + Sync + 'static) {
        self.latest
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .producer = Some(Box::new(read));
    }

    /// Exports librdkafka's statistics of the producer: give the returned hook to the
    /// producer, whose statistics it stores for the next scrape.
    pub(crate) fn producer_statistics(&self) -> impl Fn(&ClientStatistics) + Send + Sync + 'static {
        let latest = Arc::clone(&self.latest);
        move |statistics: &ClientStatistics| {
            latest
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .producer_client = Some(statistics.clone());
        }
    }

    /// What a scrape returns now (the tests' view of the exposition).
    #[cfg(test)]
    fn encoded(&self) -> String {
        let exported = Exported(Arc::clone(&self.latest));
        let mut registry = Registry::default();
        registry.register_collector(Box::new(exported));
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)
            .expect("encoding to a String");
        text
    }
}

#[cfg(test)]
mod tests;
