//! The committed offsets of the groups shown: one client per group, since librdkafka asks
//! OffsetFetch for a client's own group.id only.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};

use super::{MAX_OFFSET_CLIENTS, REQUEST_TIMEOUT, Watcher, plain_consumer};
use crate::kafka::client::close_promptly;

impl Watcher {
    /// A group's committed offset per partition (None: never committed).
    pub(super) fn committed(
        &mut self,
        group: &str,
        topic: &str,
        partitions: &[i32],
    ) -> BTreeMap<i32, Option<i64>> {
        if !self.offsets.contains_key(group) {
            if self.offsets.len() >= MAX_OFFSET_CLIENTS + self.always_shown.len()
                && let Some(unused) = self
                    .offsets
                    .iter()
                    .min_by_key(|(_, (_, used))| *used)
                    .map(|(name, _)| name.clone())
                && let Some((client, _)) = self.offsets.remove(&unused)
            {
                close_promptly(&client, Duration::from_millis(500));
            }
            match plain_consumer(&self.settings, "offsets", group) {
                Ok(client) => {
                    self.offsets.insert(group.to_owned(), (client, self.rounds));
                }
                Err(_) => return BTreeMap::new(),
            }
        }
        let Some((client, used)) = self.offsets.get_mut(group) else {
            return BTreeMap::new();
        };
        *used = self.rounds;
        let client = &*client;
        let mut query = TopicPartitionList::new();
        for &p in partitions {
            query.add_partition(topic, p);
        }
        let Ok(answer) = client.committed_offsets(query, REQUEST_TIMEOUT) else {
            return BTreeMap::new();
        };
        partitions
            .iter()
            .map(|&p| {
                let offset = answer
                    .find_partition(topic, p)
                    .and_then(|e| match e.offset() {
                        Offset::Offset(o) if o >= 0 => Some(o),
                        _ => None,
                    });
                (p, offset)
            })
            .collect()
    }
}
