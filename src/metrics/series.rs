//! Every series orderflow exports, encoded at scrape time from the latest values the sinks
//! published: the members' counters, the group watch's [`GroupView`] and the producer's
//! delivery accounting. Encoding from snapshots (rather than keeping a metric object per
//! label set) means a partition or group that goes away simply stops being exported.
//!
//! Names follow what dashboards already scrape: `kafka_consumergroup_*` and
//! `kafka_partition_*` as kafka-lag-exporter names them, `orderflow_*` for the rest
//! (docs/metrics.md lists them all).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;

use crate::report::client_stats::{BrokerRtt, ClientStatistics};
use crate::report::group_view::GroupView;
use crate::report::latency::{LatencyBuckets, LatencyStats};

/// What one member (a role in a group) has counted, as its sink last published it.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct MemberCounts {
    pub(crate) role: &'static str,
    pub(crate) group: String,
    /// Every record handled, malformed ones included (the summary's `records`).
    pub(crate) records: u64,
    /// Valid order events by their status (lifecycle violations included: they are events).
    pub(crate) by_status: BTreeMap<&'static str, u64>,
    /// Records that are not order events, by kind (`not-json`, …).
    pub(crate) malformed: BTreeMap<&'static str, u64>,
    /// Events that broke their order's lifecycle, by kind.
    pub(crate) violations: BTreeMap<&'static str, u64>,
    /// Records copied to the dead-letter topic.
    pub(crate) dead_letters: u64,
    /// Records storage skipped because its audit log already held them.
    pub(crate) already_stored: u64,
    /// Rebalances seen by this member, by what they did to it: assigned, revoked, lost.
    pub(crate) rebalances: BTreeMap<&'static str, u64>,
    /// Partitions it owns now.
    pub(crate) owned: usize,
    pub(crate) commits: u64,
    pub(crate) commit_failures: u64,
    pub(crate) paused: bool,
    /// End-to-end latency over the last progress interval (about a second).
    pub(crate) latency: Option<LatencyStats>,
    /// End-to-end latency of every record measured since the start, in a histogram's
    /// buckets: the progress windows added up.
    pub(crate) latency_run: LatencyBuckets,
    /// librdkafka's last statistics of the member's client: round trips and fetch queue.
    pub(crate) client: ClientStatistics,
}

/// The producer's delivery accounting, read at scrape time.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct ProducerCounts {
    /// Events handed to the producer.
    pub(crate) sent: u64,
    /// Events the cluster acknowledged.
    pub(crate) delivered: u64,
    /// Events that will never be delivered.
    pub(crate) failed: u64,
    /// Events sent and not yet acknowledged or failed (librdkafka's queue).
    pub(crate) in_flight: u64,
    /// Enqueue to acknowledgement of every delivered event.
    pub(crate) delivery_latency: LatencyBuckets,
}

/// Reads the producer's counters (its atomics) when Prometheus scrapes.
pub(crate) type ProducerSource = Box<dyn Fn() -> ProducerCounts + Send + Sync>;

/// The latest values of everything exported.
#[derive(Default)]
pub(crate) struct Latest {
    /// One entry per member, in the order they started.
    pub(crate) members: Vec<MemberCounts>,
    pub(crate) groups: Option<GroupView>,
    pub(crate) producer: Option<ProducerSource>,
    /// librdkafka's last statistics of the producer (with --metrics, every second).
    pub(crate) producer_client: Option<ClientStatistics>,
    /// When /metrics was last read: the group watch runs only while someone scrapes.
    pub(crate) scraped_at: Option<std::time::Instant>,
}

/// The collector registered with the registry: encodes [`Latest`] on every scrape.
#[derive(Clone, Default)]
pub(crate) struct Exported(pub(crate) Arc<Mutex<Latest>>);

impl std::fmt::Debug for Exported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Exported")
    }
}

/// A sample's value, by the type of its family.
#[derive(Clone, Copy)]
enum Value {
    Count(u64),
    Level(i64),
    Real(f64),
}

/// Writes one family (its HELP and TYPE even without samples, so the name is always
/// visible to whoever checks what is exported).
fn family<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    samples: impl IntoIterator<Item = (L, Value)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in samples {
        let mut sample = metric.encode_family(&labels)?;
        match value {
            Value::Count(n) => sample.encode_counter::<NoLabelSet, u64, f64>(&n, None)?,
            Value::Level(n) => sample.encode_gauge(&n)?,
            Value::Real(x) => sample.encode_gauge(&x)?,
        }
    }
    Ok(())
}

/// Writes one histogram family: per label set, cumulative `_bucket{le}` series, `_sum` and
/// `_count`, as prometheus-client encodes them.
fn histograms<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, LatencyBuckets)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (labels, buckets) in samples {
        metric
            .encode_family(&labels)?
            .encode_histogram::<NoLabelSet>(
                buckets.sum_seconds,
                buckets.count(),
                &buckets.by_bound(),
                None,
            )?;
    }
    Ok(())
}

/// The labels of a member's series.
type MemberLabels = Vec<(&'static str, String)>;

fn member_labels(m: &MemberCounts) -> MemberLabels {
    vec![("role", m.role.to_owned()), ("group", m.group.clone())]
}

/// A member's labels plus one more.
fn with(m: &MemberCounts, key: &'static str, value: &str) -> MemberLabels {
    let mut labels = member_labels(m);
    labels.push((key, value.to_owned()));
    labels
}

impl Collector for Exported {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut latest = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        latest.scraped_at = Some(std::time::Instant::now());
        encode_members(&mut encoder, &latest.members)?;
        encode_groups(&mut encoder, latest.groups.as_ref())?;
        let producer = latest.producer.as_ref().map(|read| read());
        encode_producer(&mut encoder, producer)?;
        encode_clients(&mut encoder, &latest)
    }
}

fn encode_members(
    encoder: &mut DescriptorEncoder,
    members: &[MemberCounts],
) -> Result<(), std::fmt::Error> {
    use MetricType::{Counter, Gauge};
    let each = |value: fn(&MemberCounts) -> Value| {
        members.iter().map(move |m| (member_labels(m), value(m)))
    };
    let by = |map: fn(&MemberCounts) -> &BTreeMap<&'static str, u64>, key: &'static str| {
        members.iter().flat_map(move |m| {
            map(m)
                .iter()
                .map(move |(k, n)| (with(m, key, k), Value::Count(*n)))
        })
    };
    family(
        encoder,
        "orderflow_records_handled",
        "Records a consumer role handled, malformed ones included",
        Counter,
        each(|m| Value::Count(m.records)),
    )?;
    family(
        encoder,
        "orderflow_events_handled",
        "Valid order events a consumer role handled, by the event's status",
        Counter,
        by(|m| &m.by_status, "status"),
    )?;
    family(
        encoder,
        "orderflow_malformed_records",
        "Records that are not order events, by kind",
        Counter,
        by(|m| &m.malformed, "kind"),
    )?;
    family(
        encoder,
        "orderflow_lifecycle_violations",
        "Events that broke their order's lifecycle (order-processor), by kind",
        Counter,
        by(|m| &m.violations, "kind"),
    )?;
    family(
        encoder,
        "orderflow_dead_letters",
        "Records copied to the dead-letter topic <topic>.dlq",
        Counter,
        each(|m| Value::Count(m.dead_letters)),
    )?;
    family(
        encoder,
        "orderflow_already_stored_records",
        "Records storage skipped because its audit log already held them",
        Counter,
        each(|m| Value::Count(m.already_stored)),
    )?;
    family(
        encoder,
        "orderflow_rebalances",
        "Rebalances this member took part in, by what they did to it: assigned, revoked, lost",
        Counter,
        by(|m| &m.rebalances, "change"),
    )?;
    family(
        encoder,
        "orderflow_partitions_owned",
        "Partitions of the topic this member owns now",
        Gauge,
        each(|m| Value::Level(m.owned as i64)),
    )?;
    family(
        encoder,
        "orderflow_commits",
        "Offset commits of this member that succeeded",
        Counter,
        each(|m| Value::Count(m.commits)),
    )?;
    family(
        encoder,
        "orderflow_commit_failures",
        "Offset commits of this member that failed (retried by the next commit)",
        Counter,
        each(|m| Value::Count(m.commit_failures)),
    )?;
    family(
        encoder,
        "orderflow_consumer_paused",
        "1 while this member's consumption is paused (the live view's p), else 0",
        Gauge,
        each(|m| Value::Level(i64::from(m.paused))),
    )?;
    let quantiles = members.iter().flat_map(|m| {
        m.latency.iter().flat_map(move |l| {
            // Not `quantile`: that label belongs to the summary type, which these are not
            // (promtool refuses it on a gauge).
            [("p50", l.p50_ms), ("p99", l.p99_ms), ("max", l.max_ms)]
                .map(|(stat, ms)| (with(m, "statistic", stat), Value::Real(ms / 1000.0)))
        })
    });
    family(
        encoder,
        "orderflow_end_to_end_latency_recent_seconds",
        "Producer timestamp to handled, over the last second's records: statistic p50, p99 and max",
        Gauge,
        quantiles,
    )?;
    histograms(
        encoder,
        "orderflow_end_to_end_latency_seconds",
        "Producer timestamp to handled, every record measured since the start",
        members.iter().map(|m| (member_labels(m), m.latency_run)),
    )
}

fn encode_groups(
    encoder: &mut DescriptorEncoder,
    view: Option<&GroupView>,
) -> Result<(), std::fmt::Error> {
    use MetricType::Gauge;
    type Labels = Vec<(&'static str, String)>;
    let mut lag: Vec<(Labels, Value)> = Vec::new();
    let mut offset: Vec<(Labels, Value)> = Vec::new();
    let mut max_lag: Vec<(Labels, Value)> = Vec::new();
    let mut sum_lag: Vec<(Labels, Value)> = Vec::new();
    let mut latest: Vec<(Labels, Value)> = Vec::new();
    let mut earliest: Vec<(Labels, Value)> = Vec::new();
    if let Some(view) = view {
        for (partition, end) in &view.end {
            let labels = vec![
                ("topic", view.topic.clone()),
                ("partition", partition.to_string()),
            ];
            latest.push((labels.clone(), Value::Level(*end)));
            let low = view.low.get(partition).copied().unwrap_or(0);
            earliest.push((labels, Value::Level(low)));
        }
        for group in &view.groups {
            let group_labels = vec![
                ("group", group.group.clone()),
                ("topic", view.topic.clone()),
            ];
            let (mut most, mut total) = (0, 0);
            for p in &group.partitions {
                let owner = p
                    .owner
                    .as_ref()
                    .and_then(|id| group.members.iter().find(|m| &m.id == id));
                let labels = vec![
                    ("group", group.group.clone()),
                    ("topic", view.topic.clone()),
                    ("partition", p.partition.to_string()),
                    (
                        "member_host",
                        owner.map(|m| m.host.clone()).unwrap_or_default(),
                    ),
                    ("consumer_id", p.owner.clone().unwrap_or_default()),
                ];
                let behind = p.lag(view.low.get(&p.partition).copied().unwrap_or(0));
                most = most.max(behind);
                total += behind;
                lag.push((labels.clone(), Value::Level(behind)));
                if let Some(committed) = p.committed {
                    offset.push((labels, Value::Level(committed)));
                }
            }
            max_lag.push((group_labels.clone(), Value::Level(most)));
            sum_lag.push((group_labels, Value::Level(total)));
        }
    }
    family(
        encoder,
        "kafka_consumergroup_group_lag",
        "Records produced and not yet committed by the group, per partition (log end offset - committed offset)",
        Gauge,
        lag,
    )?;
    family(
        encoder,
        "kafka_consumergroup_group_offset",
        "The group's committed offset per partition",
        Gauge,
        offset,
    )?;
    family(
        encoder,
        "kafka_consumergroup_group_max_lag",
        "The group's largest partition lag",
        Gauge,
        max_lag,
    )?;
    family(
        encoder,
        "kafka_consumergroup_group_sum_lag",
        "The group's lag over all partitions",
        Gauge,
        sum_lag,
    )?;
    family(
        encoder,
        "kafka_partition_latest_offset",
        "The partition's log end offset: the offset the next produced record gets",
        Gauge,
        latest,
    )?;
    family(
        encoder,
        "kafka_partition_earliest_offset",
        "The partition's earliest offset still in the log",
        Gauge,
        earliest,
    )
}

fn encode_producer(
    encoder: &mut DescriptorEncoder,
    producer: Option<ProducerCounts>,
) -> Result<(), std::fmt::Error> {
    use MetricType::{Counter, Gauge};
    let one = |value: fn(&ProducerCounts) -> Value| {
        producer
            .iter()
            .map(move |p| (Vec::<(&str, String)>::new(), value(p)))
            .collect::<Vec<_>>()
    };
    family(
        encoder,
        "orderflow_producer_sent",
        "Events the producer handed to Kafka",
        Counter,
        one(|p| Value::Count(p.sent)),
    )?;
    family(
        encoder,
        "orderflow_producer_delivered",
        "Events the cluster acknowledged",
        Counter,
        one(|p| Value::Count(p.delivered)),
    )?;
    family(
        encoder,
        "orderflow_producer_failed",
        "Events that will never be delivered (timed out or refused)",
        Counter,
        one(|p| Value::Count(p.failed)),
    )?;
    family(
        encoder,
        "orderflow_producer_in_flight",
        "Events sent and not yet acknowledged: librdkafka's queue depth",
        Gauge,
        one(|p| Value::Level(p.in_flight as i64)),
    )?;
    histograms(
        encoder,
        "orderflow_producer_delivery_latency_seconds",
        "Event handed to the producer to its acknowledgement, every delivered event",
        producer
            .iter()
            .map(|p| (Vec::<(&str, String)>::new(), p.delivery_latency)),
    )
}

/// librdkafka's statistics: each client's round trip per broker, the producer's queue and the
/// consumers' fetch queues.
fn encode_clients(encoder: &mut DescriptorEncoder, latest: &Latest) -> Result<(), std::fmt::Error> {
    use MetricType::Gauge;
    let rtt = |role: &str, rtt: &[BrokerRtt]| {
        rtt.iter()
            .flat_map(|b| {
                [("avg", b.avg_us), ("p99", b.p99_us)].map(|(statistic, us)| {
                    let labels = vec![
                        ("role", role.to_owned()),
                        ("broker", b.broker.clone()),
                        ("statistic", statistic.to_owned()),
                    ];
                    (labels, Value::Real(us as f64 / 1e6))
                })
            })
            .collect::<Vec<_>>()
    };
    let mut rtts: Vec<_> = latest
        .members
        .iter()
        .flat_map(|m| rtt(m.role, &m.client.rtt))
        .collect();
    if let Some(producer) = &latest.producer_client {
        rtts.extend(rtt("produce", &producer.rtt));
    }
    family(
        encoder,
        "orderflow_broker_rtt_seconds",
        "Round trip of the client's requests to each broker over the last statistics interval (librdkafka's rtt): statistic avg and p99",
        Gauge,
        rtts,
    )?;
    let queue = |value: fn(&ClientStatistics) -> u64| {
        latest
            .producer_client
            .iter()
            .map(move |c| (Vec::<(&str, String)>::new(), Value::Level(value(c) as i64)))
            .collect::<Vec<_>>()
    };
    family(
        encoder,
        "orderflow_producer_queue_messages",
        "Messages in the producer's queues, waiting to be sent or acknowledged (librdkafka's msg_cnt)",
        Gauge,
        queue(|c| c.queued_messages),
    )?;
    family(
        encoder,
        "orderflow_producer_queue_bytes",
        "Bytes of the messages in the producer's queues (librdkafka's msg_size)",
        Gauge,
        queue(|c| c.queued_bytes),
    )?;
    let fetched = latest.members.iter().flat_map(|m| {
        m.client.fetch_queue.iter().map(move |(partition, n)| {
            (
                with(m, "partition", &partition.to_string()),
                Value::Level(*n as i64),
            )
        })
    });
    family(
        encoder,
        "orderflow_consumer_fetch_queue_messages",
        "Records fetched and not yet handed to the role, per partition (librdkafka's fetchq_cnt)",
        Gauge,
        fetched,
    )
}
