//! What the brokers of the cluster are doing, as a member sees it: which broker stopped
//! answering and when it is back, which partition got a new leader, where the group's
//! coordinator went. Everything comes from what librdkafka already reports (its error
//! callback names the broker a connection failed to; its statistics, every second, give each
//! broker's connection state, each partition's leader and the coordinator), so watching
//! costs no request. Each change is reported once, not once per failed retry.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::statistics::Statistics;

use crate::report::activity::{ClusterChange, LeaderMove};

/// One broker in one statistics report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BrokerState {
    pub(crate) id: i32,
    /// host:port
    pub(crate) address: String,
    /// Whether the client has a working connection to it.
    pub(crate) up: bool,
}

/// What one statistics report says about the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Snapshot {
    /// The brokers the client learned from the cluster (not the bootstrap addresses).
    pub(crate) brokers: Vec<BrokerState>,
    /// Per partition of the topic, its leader (-1: none known).
    pub(crate) leaders: BTreeMap<i32, i32>,
    /// The broker that coordinates the group, when known.
    pub(crate) coordinator: Option<i32>,
}

impl Snapshot {
    /// Reads librdkafka's statistics for `topic`.
    pub(crate) fn from_statistics(statistics: &Statistics, topic: &str) -> Snapshot {
        let mut snapshot = Snapshot::default();
        let mut coordinator_address = None;
        for broker in statistics.brokers.values() {
            match broker.source.as_str() {
                // Brokers from the cluster's metadata, named "host:port/id".
                "learned" if broker.nodeid >= 0 => snapshot.brokers.push(BrokerState {
                    id: broker.nodeid,
                    address: broker.nodename.clone(),
                    up: matches!(broker.state.as_str(), "UP" | "UPDATE"),
                }),
                // librdkafka's stand-in for the coordinator carries the real broker's address
                // (its own node id stays -1).
                "logical" if broker.name == "GroupCoordinator" && !broker.nodename.is_empty() => {
                    coordinator_address = Some(broker.nodename.clone());
                }
                _ => {}
            }
        }
        snapshot.coordinator = coordinator_address.and_then(|address| {
            snapshot
                .brokers
                .iter()
                .find(|b| b.address == address)
                .map(|b| b.id)
        });
        if let Some(topic) = statistics.topics.get(topic) {
            for (&partition, stats) in &topic.partitions {
                // -1 is librdkafka's queue of not-yet-partitioned messages.
                if partition >= 0 {
                    snapshot.leaders.insert(partition, stats.leader);
                }
            }
        }
        snapshot
    }
}

/// What the watch knows of one broker.
#[derive(Debug)]
struct Seen {
    /// host:port
    address: String,
    /// Since when it is unreachable or gone (None: fine).
    down_since: Option<Instant>,
    /// Whether the last statistics listed it. librdkafka forgets brokers the cluster's
    /// metadata no longer lists, which Kafka does once its controller declares one dead.
    listed: bool,
    /// Whether it gave up the leadership of a partition while it still answered: what a
    /// controlled shutdown does before the broker leaves (a crashed one leads until the
    /// controller moves its partitions away as it drops it).
    handed_over: bool,
}

impl Seen {
    fn new(address: &str) -> Seen {
        Seen {
            address: address.to_owned(),
            down_since: None,
            listed: true,
            handed_over: false,
        }
    }
}

/// The state behind the reports: what was last seen, so only changes are told.
#[derive(Debug, Default)]
pub(crate) struct ClusterWatch {
    brokers: BTreeMap<i32, Seen>,
    /// The last known leader per partition (-1: none).
    leaders: BTreeMap<i32, i32>,
    /// The last known coordinator.
    coordinator: Option<i32>,
    /// When some broker was last reported unreachable.
    last_trouble: Option<Instant>,
    /// Whether every known broker is unreachable (told once).
    all_down: bool,
}

impl ClusterWatch {
    /// librdkafka's error callback reported a transport failure; its reason names the broker
    /// ("127.0.0.1:21093/2: Connect to ipv4#127.0.0.1:21093 failed: Connection refused (after
    /// 0ms in state CONNECT)"). Returns the change when this broker was fine until now.
    pub(crate) fn connection_failed(
        &mut self,
        reason: &str,
        now: Instant,
    ) -> Option<ClusterChange> {
        let (name, rest) = reason.trim().split_once(": ")?;
        let (address, id) = name.rsplit_once('/')?;
        // "host:port/bootstrap": a bootstrap address, not a broker of the cluster yet.
        let id: i32 = id.parse().ok()?;
        self.last_trouble = Some(now);
        let entry = self.brokers.entry(id).or_insert_with(|| Seen::new(address));
        if entry.down_since.is_some() {
            return None;
        }
        entry.down_since = Some(now);
        if self.brokers.len() > 1 && self.brokers.values().all(|s| s.down_since.is_some()) {
            // The last one that answered: not one broker down but all of them.
            self.all_down = true;
            return Some(ClusterChange::ClusterUnreachable {
                brokers: self.brokers.len(),
            });
        }
        Some(ClusterChange::BrokerUnreachable {
            broker: id,
            address: address.to_owned(),
            reason: super::client::tidy_reason(rest),
        })
    }

    /// A statistics report: brokers back, leaders and the coordinator moved.
    pub(crate) fn observe(&mut self, snapshot: &Snapshot, now: Instant) -> Vec<ClusterChange> {
        let mut changes = Vec::new();
        for broker in &snapshot.brokers {
            let entry = self
                .brokers
                .entry(broker.id)
                .or_insert_with(|| Seen::new(&broker.address));
            entry.address.clone_from(&broker.address);
            let rejoined = !entry.listed;
            entry.listed = true;
            // Connected again; or listed again after the cluster had dropped it (librdkafka
            // connects to a broker only when it needs it, so a broker that leads nothing
            // this member reads may never show a connection).
            if (broker.up || rejoined)
                && let Some(since) = entry.down_since.take()
            {
                entry.handed_over = false;
                self.all_down = false;
                changes.push(ClusterChange::BrokerBack {
                    broker: broker.id,
                    address: broker.address.clone(),
                    after: now.duration_since(since),
                    rejoined: rejoined && !broker.up,
                });
            }
        }
        // The first report only primes: a broker missing from it was never seen.
        if !snapshot.brokers.is_empty() {
            let leaders = &self.leaders;
            for (&id, seen) in &mut self.brokers {
                if seen.listed && !snapshot.brokers.iter().any(|b| b.id == id) {
                    seen.listed = false;
                    seen.down_since.get_or_insert(now);
                    let address = seen.address.clone();
                    let leads = leaders.values().any(|&l| l == id);
                    changes.push(if seen.handed_over && !leads {
                        ClusterChange::BrokerShutDown {
                            broker: id,
                            address,
                        }
                    } else {
                        ClusterChange::BrokerLeft {
                            broker: id,
                            address,
                        }
                    });
                }
            }
        }
        let brokers = &mut self.brokers;
        let all_down = self.all_down;
        let moves: Vec<LeaderMove> = snapshot
            .leaders
            .iter()
            .filter_map(|(&partition, &leader)| {
                let before = self.leaders.insert(partition, leader)?;
                let known = |id: i32| (id >= 0).then_some(id);
                if before == leader {
                    return None;
                }
                if let Some(from) = brokers.get_mut(&before)
                    && from.listed
                    && from.down_since.is_none()
                {
                    from.handed_over = true;
                }
                // With no broker answering, a leader librdkafka forgot is no election:
                // nothing is elected until a broker answers again.
                if all_down && leader < 0 {
                    return None;
                }
                Some(LeaderMove {
                    partition,
                    from: known(before),
                    to: known(leader),
                })
            })
            .collect();
        if !moves.is_empty() {
            changes.push(ClusterChange::LeadersMoved(moves));
        }
        if let Some(to) = snapshot.coordinator {
            if let Some(from) = self.coordinator
                && from != to
            {
                changes.push(ClusterChange::CoordinatorMoved { from, to });
            }
            self.coordinator = Some(to);
        }
        changes
    }

    /// Whether some broker is unreachable or gone: then it is worth asking the cluster for
    /// news (librdkafka asks on its own only every 5 minutes while all seems well, so a
    /// restarted broker that leads nothing would go unnoticed).
    pub(crate) fn awaits_news(&self) -> bool {
        self.brokers.values().any(|seen| seen.down_since.is_some())
    }

    /// Whether some broker is unreachable now, or was within `window`.
    pub(crate) fn troubled_within(&self, window: Duration, now: Instant) -> bool {
        self.brokers.values().any(|seen| seen.down_since.is_some())
            || self
                .last_trouble
                .is_some_and(|at| now.duration_since(at) < window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(up: &[(i32, bool)], leaders: &[(i32, i32)], coordinator: i32) -> Snapshot {
        Snapshot {
            brokers: up
                .iter()
                .map(|&(id, up)| BrokerState {
                    id,
                    address: format!("127.0.0.1:{}", 21091 + id),
                    up,
                })
                .collect(),
            leaders: leaders.iter().copied().collect(),
            coordinator: Some(coordinator),
        }
    }

    #[test]
    fn a_broker_failure_is_told_once_and_so_is_its_return() {
        let start = Instant::now();
        let mut watch = ClusterWatch::default();
        let all_up = snapshot(
            &[(1, true), (2, true), (3, true)],
            &[(0, 1), (1, 2), (2, 3)],
            1,
        );
        assert!(
            watch.observe(&all_up, start).is_empty(),
            "the first report only primes"
        );

        let refused = "127.0.0.1:21093/2: Connect to ipv4#127.0.0.1:21093 failed: Connection \
                       refused (after 0ms in state CONNECT)";
        let change = watch.connection_failed(refused, start).unwrap();
        assert_eq!(
            change.to_string(),
            "broker 2 (127.0.0.1:21093) is unreachable: Connect to ipv4#127.0.0.1:21093 \
             failed: Connection refused; the client keeps trying"
        );
        // librdkafka retries every few hundred milliseconds: no line per retry.
        assert_eq!(watch.connection_failed(refused, start), None);
        assert!(watch.troubled_within(Duration::ZERO, start));

        let later = start + Duration::from_secs(10);
        let moved = snapshot(
            &[(1, true), (2, false), (3, true)],
            &[(0, 1), (1, 3), (2, 3)],
            1,
        );
        let changes = watch.observe(&moved, later);
        assert_eq!(changes.len(), 1);
        assert_eq!(
            changes[0].to_string(),
            "partition 1's leader moved from broker 2 to broker 3"
        );
        assert!(watch.observe(&moved, later).is_empty(), "nothing new");

        let back = snapshot(
            &[(1, true), (2, true), (3, true)],
            &[(0, 1), (1, 3), (2, 3)],
            1,
        );
        let changes = watch.observe(&back, start + Duration::from_secs(24));
        assert_eq!(
            changes,
            vec![ClusterChange::BrokerBack {
                broker: 2,
                address: "127.0.0.1:21093".into(),
                after: Duration::from_secs(24),
                rejoined: false,
            }]
        );
        assert_eq!(
            changes[0].to_string(),
            "broker 2 (127.0.0.1:21093) is reachable again, after 24.0 s"
        );
        assert!(!watch.troubled_within(Duration::from_secs(5), start + Duration::from_secs(30)));
    }

    #[test]
    fn a_broker_the_cluster_drops_and_lists_again_is_told_without_a_connection() {
        let start = Instant::now();
        let mut watch = ClusterWatch::default();
        watch.observe(&snapshot(&[(1, true), (2, true)], &[(0, 1)], 2), start);
        // Kafka's controller fenced broker 1: the metadata (and librdkafka) forget it.
        let changes = watch.observe(&snapshot(&[(2, true)], &[(0, 2)], 2), start);
        let text: Vec<String> = changes.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "broker 1 (127.0.0.1:21092) left the cluster: Kafka declared it dead and moves \
                 its partitions' leadership to the other brokers",
                "partition 0's leader moved from broker 1 to broker 2",
            ]
        );
        assert!(watch.troubled_within(Duration::ZERO, start));
        // Restarted, listed again; nothing this member reads needs a connection to it.
        let changes = watch.observe(
            &snapshot(&[(1, false), (2, true)], &[(0, 2)], 2),
            start + Duration::from_secs(30),
        );
        assert_eq!(
            changes.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["broker 1 (127.0.0.1:21092) is back in the cluster, after 30.0 s"]
        );
    }

    #[test]
    fn elections_and_a_moving_coordinator_are_told() {
        let now = Instant::now();
        let mut watch = ClusterWatch::default();
        watch.observe(&snapshot(&[(1, true)], &[(0, 1), (1, 1)], 1), now);
        let changes = watch.observe(&snapshot(&[(1, true)], &[(0, -1), (1, 2)], 3), now);
        let text: Vec<String> = changes.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "partition 0 has no leader: Kafka is electing one; partition 1's leader moved \
                 from broker 1 to broker 2",
                "the group's coordinator moved from broker 1 to broker 3",
            ]
        );
        let changes = watch.observe(&snapshot(&[(1, true)], &[(0, 3), (1, 2)], 3), now);
        assert_eq!(changes[0].to_string(), "partition 0's leader is broker 3");
    }

    #[test]
    fn bootstrap_addresses_and_other_errors_are_not_brokers() {
        let mut watch = ClusterWatch::default();
        let now = Instant::now();
        assert_eq!(
            watch.connection_failed(
                "127.0.0.1:21092/bootstrap: Connect to ipv4#127.0.0.1:21092 failed: Connection \
                 refused",
                now
            ),
            None
        );
        assert_eq!(watch.connection_failed("3/3 brokers are down", now), None);
    }

    #[test]
    fn a_clean_shutdown_and_a_cluster_that_stopped_are_not_told_as_crashes() {
        let now = Instant::now();
        let mut watch = ClusterWatch::default();
        let three = [(1, true), (2, true), (3, true)];
        watch.observe(&snapshot(&three, &[(0, 3), (1, 1), (2, 2)], 1), now);
        // A controlled shutdown: broker 3 hands partition 0 over while it still answers,
        // then stops answering, then the cluster stops listing it.
        let changes = watch.observe(&snapshot(&three, &[(0, 1), (1, 1), (2, 2)], 1), now);
        assert_eq!(
            changes[0].to_string(),
            "partition 0's leader moved from broker 3 to broker 1"
        );
        let refused = |port: u16, id: i32| {
            format!(
                "127.0.0.1:{port}/{id}: Connect to ipv4#127.0.0.1:{port} failed: Connection \
                 refused"
            )
        };
        assert!(watch.connection_failed(&refused(21094, 3), now).is_some());
        let changes = watch.observe(
            &snapshot(&[(1, true), (2, true)], &[(0, 1), (1, 1), (2, 2)], 1),
            now,
        );
        assert_eq!(
            changes.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "broker 3 (127.0.0.1:21094) left the cluster after handing the leadership of its \
              partitions to other brokers: a clean (controlled) shutdown"
            ]
        );
        // Then every broker stops: one line for the cluster, no election claimed.
        assert!(watch.connection_failed(&refused(21093, 2), now).is_some());
        let last = watch.connection_failed(&refused(21092, 1), now).unwrap();
        assert_eq!(
            last.to_string(),
            "the cluster is unreachable: none of its 3 brokers answers (stopped, or cut off \
             from this machine); the client keeps trying"
        );
        let changes = watch.observe(
            &snapshot(&[(1, false), (2, false)], &[(0, -1), (1, -1), (2, -1)], 1),
            now,
        );
        assert!(changes.is_empty(), "{changes:?}");
    }
}
