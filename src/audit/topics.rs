//! State kept per topic, or per (topic, partition), while reading a log. A log normally holds
//! one topic (storage writes the topic it reads), but nothing stops two storage runs with
//! different `-t` from sharing a file, so everything is keyed by topic as well.

use std::collections::BTreeMap;

/// A map from topic name to `T`, looked up per line without allocating: a short list
/// searched in order, which beats hashing for the one or two topics a log holds.
#[derive(Debug)]
pub(crate) struct ByTopic<T> {
    topics: Vec<(String, T)>,
}

impl<T> Default for ByTopic<T> {
    fn default() -> Self {
        ByTopic { topics: Vec::new() }
    }
}

impl<T: Default> ByTopic<T> {
    /// The state of `topic`, created empty on first use.
    pub(crate) fn entry(&mut self, topic: &str) -> &mut T {
        let index = match self.topics.iter().position(|(name, _)| name == topic) {
            Some(index) => index,
            None => {
                self.topics.push((topic.to_owned(), T::default()));
                self.topics.len() - 1
            }
        };
        &mut self.topics[index].1
    }
}

impl<T> ByTopic<T> {
    /// Every topic in name order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &T)> {
        let mut sorted: Vec<&(String, T)> = self.topics.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        sorted
            .into_iter()
            .map(|(name, state)| (name.as_str(), state))
    }
}

/// State per (topic, partition).
pub(crate) type ByPartition<T> = ByTopic<BTreeMap<i32, T>>;

/// Every (topic, partition) in order, with its state.
pub(crate) fn partitions<T>(map: &ByPartition<T>) -> impl Iterator<Item = (&str, i32, &T)> {
    map.iter().flat_map(|(topic, partitions)| {
        partitions
            .iter()
            .map(move |(partition, state)| (topic, *partition, state))
    })
}
