//! What a group member is asked to be ([`ConsumerOptions`]) and the librdkafka settings the
//! runtime insists on: the ones `-X` must not change, and the defaults it may.

use rdkafka::ClientConfig;

use super::error::ConsumerError;
use crate::config::{KafkaSettings, redacted};
use crate::kafka::group_protocol::{GroupProtocol, MemberProtocol};

/// Options of a consumer role.
#[derive(Clone, Debug)]
pub struct ConsumerOptions {
    /// The role's name (`analytics`, …), for client ids and reports.
    pub role: &'static str,
    /// The consumer group.
    pub group: String,
    /// Stop once every assigned partition is drained.
    pub exit_at_end: bool,
    /// Records that cannot be decoded are skipped (counted and named) instead of stopping
    /// the member.
    pub skip_undecodable: bool,
}

/// fetch.wait.max.ms with `--exit-at-end`: how long an empty fetch waits before it reports
/// the end of a partition.
const EXIT_AT_END_FETCH_WAIT_MS: &str = "20";

/// fetch.wait.max.ms of a member that keeps running: on the built-in broker every record waits
/// up to this long (see where it is used); while idle, the member asks this often.
const RUNNING_FETCH_WAIT_MS: &str = "100";

/// Properties the runtime depends on: `-X` must not change them.
const MANAGED_PROPERTIES: [(&str, &str); 4] = [
    ("group.id", "use -g/--group"),
    (
        "enable.auto.offset.store",
        "orderflow stores an offset only after the record's work is done",
    ),
    (
        "enable.auto.commit",
        "orderflow commits stored offsets every second",
    ),
    ("enable.partition.eof", "--exit-at-end sets it"),
];

/// Refuses a `-X` that sets a property the runtime depends on.
pub(super) fn refuse_managed(settings: &KafkaSettings) -> Result<(), ConsumerError> {
    for (key, why) in MANAGED_PROPERTIES {
        if settings.overrides(key) {
            return Err(ConsumerError::ManagedProperty { key, why });
        }
    }
    Ok(())
}

/// The group member's librdkafka configuration: the runtime's settings, then the
/// protocol's, under what `-X` sets.
pub(super) fn member_config(
    settings: &KafkaSettings,
    options: &ConsumerOptions,
    client_id: &str,
    protocol: GroupProtocol,
) -> ClientConfig {
    let eof = if options.exit_at_end { "true" } else { "false" };
    // How long the broker may hold a fetch that finds nothing new. The end of a partition
    // shows as such an empty fetch: librdkafka's 500 ms would be most of a short
    // --exit-at-end run. A running member waits longer (fewer requests while idle), but
    // not 500 ms: the built-in broker does not answer a waiting fetch when data arrives,
    // so this wait is the floor of the latency learners see there (p99 ~500 ms at the
    // default, ~100 ms at this). A real broker answers as soon as data arrives.
    let fetch_wait = if options.exit_at_end {
        EXIT_AT_END_FETCH_WAIT_MS
    } else {
        RUNNING_FETCH_WAIT_MS
    };
    let mut defaults: Vec<(&str, &str)> = vec![
        ("group.id", &options.group),
        ("client.id", client_id),
        // A new group starts from the beginning of the topic, as design.md promises.
        ("auto.offset.reset", "earliest"),
        ("enable.auto.offset.store", "false"),
        ("enable.auto.commit", "true"),
        ("auto.commit.interval.ms", "1000"),
        ("enable.partition.eof", eof),
        ("fetch.wait.max.ms", fetch_wait),
        // When the prefetch queue is full librdkafka waits fetch.queue.backoff.ms (1 s by
        // default) before it fetches again, however soon the role empties it: draining
        // 200,000 events took a second longer than 100,000 because of it. A smaller
        // queue (librdkafka aims at 100,000 messages per partition, up to 64 MB) keeps a
        // role that drains a backlog within its memory budget (65 MB peak RSS draining
        // 200,000 events from 10 partitions, 21 MB with these) at the same speed. But a role
        // empties this queue in milliseconds, and at 20 ms the fetcher idled most of a drain:
        // 500,000 events took 1.0-1.3 s to drain at 20 ms, 0.52-0.65 s at 5 (1 ms is no
        // faster, and a slow role's full queue is re-checked every backoff: 1.1 % CPU at 20,
        // 3 % at 1). docs/performance.md, "Why the drain was behind kcat on large runs".
        ("fetch.queue.backoff.ms", "5"),
        ("queued.min.messages", "10000"),
        ("queued.max.messages.kbytes", "16384"),
        // A fetched response stays in memory until its last record is handled, so the bytes
        // one fetch may bring per partition (librdkafka: 1 MB) are memory the role holds per
        // partition, a few times over. At 256 KB order-processor's peak RSS over 10,000,000
        // events on Kafka (3 partitions) fell from 40 to 34 MB, analytics' draining 300,000
        // from 27 to 21 MB, at the same drain rate on both brokers (docs/performance.md).
        // A larger record still comes whole: the broker always sends a partition's first batch.
        ("max.partition.fetch.bytes", "262144"),
        ("statistics.interval.ms", "1000"),
        ("log.connection.close", "false"),
        // A synchronous commit to a broker that vanished waits this long; librdkafka's
        // 60 s would leave someone who pressed q staring at a blank terminal.
        ("socket.timeout.ms", "10000"),
    ];
    defaults.extend_from_slice(protocol.member_properties());
    let config = settings.client_config(&defaults);
    tracing::debug!(config = %redacted(&config), "consumer configuration");
    config
}

/// Whether `auto.offset.reset`, as the user set it, starts a new group at the end.
pub(super) fn starts_at_end(settings: &KafkaSettings) -> bool {
    settings
        .properties
        .iter()
        .rev()
        .find(|p| p.key == "auto.offset.reset")
        .is_some_and(|p| matches!(p.value.as_str(), "latest" | "largest" | "end"))
}
