//! librdkafka's statistics JSON read into [`ClientStatistics`]: what the metrics export of
//! it (round trips per broker, queue depths).

use rdkafka::statistics::Statistics;

use crate::report::client_stats::{BrokerRtt, ClientStatistics};

/// Reads `statistics` for `topic`.
pub(crate) fn client_statistics(statistics: &Statistics, topic: &str) -> ClientStatistics {
    let mut rtt: Vec<BrokerRtt> = statistics
        .brokers
        .values()
        // Brokers from the cluster's metadata; the bootstrap and logical ones have no id.
        .filter(|broker| broker.nodeid >= 0 && broker.source == "learned")
        .filter_map(|broker| {
            let window = broker.rtt.as_ref()?;
            // No request answered in the interval: no round trip to tell.
            (window.cnt > 0).then(|| BrokerRtt {
                broker: broker.name.clone(),
                avg_us: window.avg,
                p99_us: window.p99,
            })
        })
        .collect();
    rtt.sort_by(|a, b| a.broker.cmp(&b.broker));
    let mut fetch_queue: Vec<(i32, u64)> = statistics
        .topics
        .get(topic)
        .map(|t| {
            t.partitions
                .iter()
                // librdkafka's stand-in partition for unassigned messages is -1.
                .filter(|(partition, _)| **partition >= 0)
                .map(|(partition, p)| (*partition, p.fetchq_cnt.max(0) as u64))
                .collect()
        })
        .unwrap_or_default();
    fetch_queue.sort_unstable();
    ClientStatistics {
        rtt,
        queued_messages: statistics.msg_cnt,
        queued_bytes: statistics.msg_size,
        fetch_queue,
    }
}
