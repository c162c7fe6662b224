//! What the producer sees of the cluster's brokers, told in words: a broker it was sending
//! to stopped answering, is back, a partition's leader moved; and, when no delivery has
//! succeeded for a while, why, as far as librdkafka's statistics tell (it retries a produce
//! refused for too few in-sync replicas or sent to a leader that is gone without reporting
//! the error, so the cause is read from the brokers' states and the partitions' leaders).

use std::sync::Mutex;
use std::time::Instant;

use rdkafka::statistics::Statistics;

use super::super::cluster_watch::{ClusterWatch, Snapshot};
use crate::lock::lock;
use crate::report::activity::ClusterChange;

/// Lines kept for the reader.
const NEWS_KEPT: usize = 100;

/// The producer's view of the cluster, fed by librdkafka's callbacks.
#[derive(Debug, Default)]
pub(crate) struct ProducerWatch {
    watch: Mutex<ClusterWatch>,
    /// Lines not printed yet.
    news: Mutex<Vec<String>>,
    /// The last statistics report.
    last: Mutex<Option<Snapshot>>,
    /// Brokers the cluster stopped listing (librdkafka forgets them): still down for the
    /// reason a delivery stalls.
    gone: Mutex<std::collections::BTreeSet<i32>>,
}

impl ProducerWatch {
    /// librdkafka's error callback reported a transport failure naming a broker.
    pub(super) fn connection_failed(&self, reason: &str) {
        let change = lock(&self.watch).connection_failed(reason, Instant::now());
        if let Some(change) = change {
            self.tell([change.to_string()]);
        }
    }

    /// Keeps at most [`NEWS_KEPT`] lines for a reader that never takes them (the demo).
    fn tell(&self, lines: impl IntoIterator<Item = String>) {
        let mut news = lock(&self.news);
        news.extend(lines);
        let excess = news.len().saturating_sub(NEWS_KEPT);
        news.drain(..excess);
    }

    /// A statistics report (every second).
    pub(super) fn statistics(&self, statistics: &Statistics, topic: &str) {
        let snapshot = Snapshot::from_statistics(statistics, topic);
        let changes = lock(&self.watch).observe(&snapshot, Instant::now());
        {
            let mut gone = lock(&self.gone);
            for change in &changes {
                match change {
                    ClusterChange::BrokerLeft { broker, .. }
                    | ClusterChange::BrokerShutDown { broker, .. } => {
                        gone.insert(*broker);
                    }
                    ClusterChange::BrokerBack { broker, .. } => {
                        gone.remove(broker);
                    }
                    _ => {}
                }
            }
            gone.retain(|id| !snapshot.brokers.iter().any(|b| b.id == *id));
        }
        self.tell(changes.iter().map(ToString::to_string));
        *lock(&self.last) = Some(snapshot);
    }

    /// The lines about the cluster since the last call.
    pub(crate) fn take_news(&self) -> Vec<String> {
        std::mem::take(&mut *lock(&self.news))
    }

    /// Why deliveries may not succeed, from the last statistics: brokers unreachable,
    /// partitions without a leader or led by an unreachable broker.
    pub(crate) fn stall_reason(&self) -> String {
        let gone: Vec<i32> = lock(&self.gone).iter().copied().collect();
        match &*lock(&self.last) {
            Some(snapshot) => reason(snapshot, &gone),
            None => "librdkafka has reported nothing about the brokers yet".to_owned(),
        }
    }
}

fn ids(ids: &[i32]) -> String {
    ids.iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `gone`: brokers the cluster no longer lists, down as well.
fn reason(snapshot: &Snapshot, gone: &[i32]) -> String {
    let mut down: Vec<i32> = snapshot
        .brokers
        .iter()
        .filter(|b| !b.up)
        .map(|b| b.id)
        .chain(gone.iter().copied())
        .collect();
    down.sort_unstable();
    down.dedup();
    let brokers = snapshot.brokers.len() + gone.len();
    let without: Vec<i32> = snapshot
        .leaders
        .iter()
        .filter(|&(_, &l)| l < 0)
        .map(|(&p, _)| p)
        .collect();
    let on_down: Vec<i32> = snapshot
        .leaders
        .iter()
        .filter(|&(_, &l)| l >= 0 && down.contains(&l))
        .map(|(&p, _)| p)
        .collect();
    let mut parts = Vec::new();
    if !down.is_empty() {
        parts.push(format!(
            "broker{} {} of {} unreachable",
            if down.len() == 1 { "" } else { "s" },
            ids(&down),
            brokers
        ));
    }
    if !without.is_empty() {
        parts.push(format!(
            "partition{} {} without a leader (LEADER_NOT_AVAILABLE)",
            plural(&without),
            ids(&without)
        ));
    }
    if !on_down.is_empty() {
        parts.push(format!(
            "partition{} {} led by an unreachable broker",
            plural(&on_down),
            ids(&on_down)
        ));
    }
    if brokers >= 3 && down.len() * 2 > brokers {
        parts.push(
            "a majority of the brokers is down: where they are also the KRaft controllers (as \
             in `orderflow cluster`), no controller is left to elect new leaders or shrink \
             the in-sync replicas, and an acks=all write waits for replicas that are down"
                .to_owned(),
        );
    } else if !down.is_empty() {
        parts.push(
            "an acks=all write also needs min.insync.replicas in-sync replicas \
             (NOT_ENOUGH_REPLICAS below that)"
                .to_owned(),
        );
    }
    if parts.is_empty() {
        "every broker answers and every partition has a leader: the leaders may be refusing \
         writes for too few in-sync replicas (NOT_ENOUGH_REPLICAS), or be slow"
            .to_owned()
    } else {
        parts.join("; ")
    }
}

fn plural(items: &[i32]) -> &'static str {
    if items.len() == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::super::super::cluster_watch::BrokerState;
    use super::*;

    fn snapshot(up: &[(i32, bool)], leaders: &[(i32, i32)]) -> Snapshot {
        Snapshot {
            brokers: up
                .iter()
                .map(|&(id, up)| BrokerState {
                    id,
                    address: format!("127.0.0.1:{}", 9000 + id),
                    up,
                })
                .collect(),
            leaders: leaders.iter().copied().collect(),
            coordinator: None,
        }
    }

    #[test]
    fn the_reason_names_the_brokers_down_and_the_partitions_they_cost() {
        let two_down = reason(
            &snapshot(&[(1, true), (2, false)], &[(0, 2), (1, 1), (2, -1)]),
            &[3],
        );
        assert_eq!(
            two_down,
            "brokers 2, 3 of 3 unreachable; partition 2 without a leader (LEADER_NOT_AVAILABLE); \
             partition 0 led by an unreachable broker; a majority of the brokers is down: where \
             they are also the KRaft controllers (as in `orderflow cluster`), no controller is \
             left to elect new leaders or shrink the in-sync replicas, and an acks=all write \
             waits for replicas that are down"
        );
        let fine = reason(
            &snapshot(&[(1, true), (2, true), (3, true)], &[(0, 1)]),
            &[],
        );
        assert!(fine.contains("NOT_ENOUGH_REPLICAS"), "{fine}");
    }
}
