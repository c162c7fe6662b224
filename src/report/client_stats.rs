//! What librdkafka's own statistics say that an operator watches, as plain values: the round
//! trip to each broker and the client's queues. The Kafka side reads them from the statistics
//! JSON ([`crate::kafka::client_stats`]); the metrics export them.

/// The round trip to one broker over the last statistics interval, in µs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerRtt {
    /// The broker as the cluster names it: `host:port/id`.
    pub broker: String,
    pub avg_us: i64,
    pub p99_us: i64,
}

/// One statistics report of a client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientStatistics {
    /// The brokers learned from the cluster's metadata (not the bootstrap addresses), with
    /// a round trip measured in the interval.
    pub rtt: Vec<BrokerRtt>,
    /// Messages waiting in the client's queues (a producer's not yet acknowledged).
    pub queued_messages: u64,
    /// Their size in bytes.
    pub queued_bytes: u64,
    /// Per partition of the topic: messages fetched and waiting for the application (a
    /// consumer's fetch queue).
    pub fetch_queue: Vec<(i32, u64)>,
}
