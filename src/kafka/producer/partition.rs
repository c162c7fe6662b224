//! The partition of a keyed event, chosen by orderflow with exactly the rule librdkafka's
//! default partitioner (`consistent_random`) applies to a non-empty key: the key's CRC-32
//! modulo the topic's partition count. Handing librdkafka the partition skips its partitioner
//! and its slower CRC-32 for every event (about 110 fewer instructions an event, of about
//! 5,100); every key still lands where librdkafka, kcat or any librdkafka client puts it.
//!
//! The count comes from the topic's metadata at start and then from librdkafka's statistics
//! (every second): a topic given more partitions moves keys to them once the statistics show
//! it, as librdkafka does once its metadata does. Whenever this cannot be exact, librdkafka
//! chooses: when `-X partitioner` names another rule, when statistics are off (the count could
//! not follow), for an empty key (random), and after librdkafka refused a partition as unknown
//! (a topic recreated with fewer partitions) until the next statistics report.

use std::sync::atomic::{AtomicU32, Ordering};

use rdkafka::statistics::Statistics;

/// The partition librdkafka's `consistent_random` partitioner gives a non-empty `key` in a
/// topic of `partitions` (> 0) partitions.
pub(crate) fn partition_for_key(key: &[u8], partitions: u32) -> i32 {
    (crc32fast::hash(key) % partitions) as i32
}

/// Whether and with what partition count the producer chooses partitions itself.
#[derive(Debug, Default)]
pub(crate) struct PartitionChoice {
    /// The count to choose with; 0: let librdkafka choose.
    partitions: AtomicU32,
    /// False when the choice could differ from librdkafka's (see the module comment).
    exact: bool,
}

impl PartitionChoice {
    /// A choice that follows the topic when `exact` (no other partitioner asked for, and
    /// statistics on), else one that always leaves the partition to librdkafka.
    pub(crate) fn new(exact: bool) -> PartitionChoice {
        PartitionChoice {
            partitions: AtomicU32::new(0),
            exact,
        }
    }

    /// Whether the producer's configuration lets orderflow choose as librdkafka would: no
    /// `partitioner` set (librdkafka's default is `consistent_random`), and statistics on,
    /// which is how the count follows the topic.
    pub(crate) fn exact_under(partitioner: Option<&str>, statistics_ms: Option<&str>) -> bool {
        let statistics_on = statistics_ms
            .and_then(|ms| ms.trim().parse::<u64>().ok())
            .is_some_and(|ms| ms > 0);
        partitioner.is_none() && statistics_on
    }

    /// The partition for `key`, or None to let librdkafka choose.
    pub(crate) fn for_key(&self, key: &[u8]) -> Option<i32> {
        let partitions = self.partitions.load(Ordering::Relaxed);
        (partitions > 0 && !key.is_empty()).then(|| partition_for_key(key, partitions))
    }

    /// The topic has `partitions` partitions (its metadata said so).
    pub(crate) fn set_partitions(&self, partitions: usize) {
        if self.exact {
            let count = u32::try_from(partitions).unwrap_or(0);
            self.partitions.store(count, Ordering::Relaxed);
        }
    }

    /// librdkafka refused a chosen partition as unknown: it chooses until the count is known
    /// again.
    pub(crate) fn forget(&self) {
        self.partitions.store(0, Ordering::Relaxed);
    }

    /// A statistics report: the partitions librdkafka knows of `topic` (its metadata's, not
    /// the "unassigned" pseudo-partition -1 nor partitions the metadata no longer lists).
    pub(crate) fn follow(&self, statistics: &Statistics, topic: &str) {
        if let Some(known) = statistics.topics.get(topic) {
            let partitions = known
                .partitions
                .values()
                .filter(|p| p.partition >= 0 && !p.unknown)
                .count();
            self.set_partitions(partitions);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys and the partitions kcat 1.7 (librdkafka 2.0.2, default partitioner) put them in,
    /// in a 12-partition topic of the built-in broker; the 3-partition column is the same
    /// rule (zlib's crc32 % 3).
    const KCAT: [(&str, i32, i32); 9] = [
        ("300e1166-c6dc-4803-afa8-5d01a45d7300", 7, 1),
        ("51ae284c-3770-417b-ae25-7742a434792e", 3, 0),
        ("5db49c22-b454-40cc-9548-349711fae4dc", 9, 0),
        ("605b0ed7-abe7-4508-b0e7-d078dc3b40cc", 0, 0),
        ("65100dec-23a3-488c-94bf-d57abbb95104", 5, 2),
        ("83ad3bd5-6917-4668-a046-5cc8a0861eca", 6, 0),
        ("fbffe83b-712c-4588-9d98-bd53ee1deb9a", 10, 1),
        ("a", 3, 0),
        ("order-1", 7, 1),
    ];

    #[test]
    fn keys_go_where_librdkafka_puts_them() {
        for (key, of_12, of_3) in KCAT {
            assert_eq!(partition_for_key(key.as_bytes(), 12), of_12, "{key}");
            assert_eq!(partition_for_key(key.as_bytes(), 3), of_3, "{key}");
        }
        assert_eq!(partition_for_key(b"anything", 1), 0);
    }

    #[test]
    fn the_choice_is_librdkafkas_whenever_it_could_differ() {
        let choice = PartitionChoice::new(true);
        // No count yet: librdkafka chooses.
        assert_eq!(choice.for_key(b"a"), None);
        choice.set_partitions(12);
        assert_eq!(choice.for_key(b"a"), Some(3));
        // An empty key gets a random partition from librdkafka.
        assert_eq!(choice.for_key(b""), None);
        choice.forget();
        assert_eq!(choice.for_key(b"a"), None);
        choice.set_partitions(3);
        assert_eq!(choice.for_key(b"order-1"), Some(1));

        let inexact = PartitionChoice::new(false);
        inexact.set_partitions(12);
        assert_eq!(inexact.for_key(b"a"), None);

        assert!(PartitionChoice::exact_under(None, Some("1000")));
        assert!(!PartitionChoice::exact_under(
            Some("murmur2_random"),
            Some("1000")
        ));
        assert!(!PartitionChoice::exact_under(
            Some("consistent_random"),
            Some("1000")
        ));
        assert!(!PartitionChoice::exact_under(None, Some("0")));
        assert!(!PartitionChoice::exact_under(None, None));
    }

    #[test]
    fn the_count_follows_the_statistics() {
        let choice = PartitionChoice::new(true);
        choice.set_partitions(3);
        let report = |partitions: &[(i32, bool)]| {
            let partitions = partitions
                .iter()
                .map(|&(partition, unknown)| {
                    let listed = rdkafka::statistics::Partition {
                        partition,
                        unknown,
                        ..Default::default()
                    };
                    (partition, listed)
                })
                .collect();
            let topic = rdkafka::statistics::Topic {
                topic: "orders".into(),
                partitions,
                ..Default::default()
            };
            let mut statistics = Statistics::default();
            statistics.topics.insert("orders".into(), topic);
            statistics
        };
        // Grown to 12 (and the pseudo-partition -1 is not one).
        let grown: Vec<(i32, bool)> = (-1..12).map(|p| (p, false)).collect();
        choice.follow(&report(&grown), "orders");
        assert_eq!(choice.for_key(b"a"), Some(3));
        // A partition the metadata no longer lists does not count.
        choice.follow(
            &report(&[(-1, false), (0, false), (1, false), (2, false), (3, true)]),
            "orders",
        );
        assert_eq!(
            choice.for_key(b"300e1166-c6dc-4803-afa8-5d01a45d7300"),
            Some(1)
        );
        // Another topic's report changes nothing.
        choice.follow(&report(&grown), "payments");
        assert_eq!(
            choice.for_key(b"300e1166-c6dc-4803-afa8-5d01a45d7300"),
            Some(1)
        );
    }
}
