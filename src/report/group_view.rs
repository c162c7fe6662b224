//! Who reads the topic: every consumer group, its members, the partitions each member owns,
//! and each partition's lag. Plain values, built by [`crate::kafka::group_watch`] and shown by
//! the live view (docs/group-view.md explains where each piece comes from).
//!
//! Membership comes from the cluster when it can describe groups (real Kafka: every member,
//! kcat included) and otherwise from the members' own announcements: each orderflow member
//! publishes an [`Announcement`] to `<topic>.members` when its assignment changes and every
//! second. Lag (log end offset − committed offset) comes from the cluster on both.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The topic members announce themselves on, next to the order topic.
pub(crate) fn announcement_topic(topic: &str) -> String {
    format!("{topic}.members")
}

/// The protocol a group rebalances with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupProtocol {
    /// The members run the rebalance; the client picks the assignor.
    Classic,
    /// KIP-848: the broker runs it, with a server-side assignor.
    Consumer,
}

impl GroupProtocol {
    /// The name librdkafka (`group.protocol`) and Kafka's tools use.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupProtocol::Classic => "classic",
            GroupProtocol::Consumer => "consumer",
        }
    }
}

impl std::fmt::Display for GroupProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an orderflow member says about itself on `<topic>.members` (key: the member id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Announcement {
    /// The member's client id, as the cluster knows it (`orderflow-analytics-4242`).
    pub member: String,
    /// The machine it runs on.
    pub host: String,
    pub group: String,
    /// Its orderflow role (`analytics`, …).
    pub role: String,
    /// The topic it reads.
    pub topic: String,
    /// The partitions it owns now.
    pub owns: Vec<i32>,
    /// Whether its consumption is paused (the live view's `p`).
    pub paused: bool,
    /// `active`, or `left` when it leaves its group.
    pub state: MemberState,
    pub at: DateTime<Utc>,
    /// The protocol it joined with (absent from members of older versions).
    #[serde(default)]
    pub group_protocol: Option<GroupProtocol>,
    /// The assignor it asked for; none: the broker's choice (consumer protocol).
    #[serde(default)]
    pub assignor: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum MemberState {
    Active,
    Left,
}

/// Where the membership in a [`GroupView`] comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MembershipSource {
    /// The cluster described the groups (DescribeGroups): every member, orderflow or not.
    Cluster,
    /// The cluster answered that it cannot describe groups (an error of its own, not a
    /// timeout): orderflow members' announcements.
    Announcements,
    /// No description has come back yet (the first requests timed out or found no
    /// coordinator, as while a cluster starts): orderflow members' announcements meanwhile.
    Waiting,
    /// The cluster described the groups before but did not answer this time (a broker down,
    /// a coordinator moving): orderflow members' announcements meanwhile.
    Unanswered,
}

impl MembershipSource {
    /// Whether the members shown are those the cluster described (not announcements).
    pub fn described(self) -> bool {
        self == MembershipSource::Cluster
    }
}

/// One member of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The client id (what `kafka-consumer-groups` calls CLIENT-ID).
    pub id: String,
    pub host: String,
    /// The orderflow role, when the member is one of ours.
    pub role: Option<String>,
    /// The partitions of the topic it owns.
    pub owns: Vec<i32>,
    pub paused: bool,
}

/// One partition as one group sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionLag {
    pub partition: i32,
    /// The member owning it, if any.
    pub owner: Option<String>,
    /// The group's committed offset (None: the group never committed one).
    pub committed: Option<i64>,
    /// The log end offset.
    pub end: i64,
}

impl PartitionLag {
    /// Records produced and not yet committed by the group. A group that never committed
    /// lags by the whole partition.
    pub(crate) fn lag(&self, low: i64) -> i64 {
        (self.end - self.committed.unwrap_or(low)).max(0)
    }
}

/// One consumer group reading the topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupState {
    pub group: String,
    pub members: Vec<Member>,
    pub partitions: Vec<PartitionLag>,
    /// Its protocol, where the cluster (or, without a description, its members) says.
    pub protocol: Option<GroupProtocol>,
    /// The assignor it uses: for a classic group the one the cluster chose from the
    /// members' lists; for a consumer-protocol group the one its members asked for.
    pub assignor: Option<String>,
    /// Whether the members come from announcements although the cluster describes groups:
    /// Kafka's DescribeGroups (what librdkafka's group list sends) says nothing about a
    /// consumer-protocol group, so only its orderflow members show.
    pub announced_members: bool,
    /// Members left out of `members` beyond the view's cap (the view says how many).
    pub more_members: usize,
    /// When the watch last heard from each orderflow member of the group on
    /// `<topic>.members` in the last minute, members gone included (the most recent
    /// [`LAST_HEARD_KEPT`]): how the timeline tells a member that left from one that stopped
    /// answering.
    pub last_heard: BTreeMap<String, LastHeard>,
    /// Whether the cluster describes the group as rebalancing (PreparingRebalance or
    /// CompletingRebalance): until its members have joined the new generation, their commits
    /// are refused, so its lag grows on partitions that do not move. False where the cluster
    /// does not describe groups.
    pub rebalancing: bool,
}

/// At most this many members' [`LastHeard`] per group: anyone can announce any name.
const LAST_HEARD_KEPT: usize = 24;

/// The latest announcement of an orderflow member, as far as leaving goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastHeard {
    /// When it was sent.
    pub at: DateTime<Utc>,
    /// Whether it said the member left its group (a member announces that as it leaves; one
    /// killed or hung never does).
    pub left: bool,
}

impl GroupState {
    /// The protocol and assignor in a few words (`classic cooperative-sticky`,
    /// `consumer uniform`), for tables; None when unknown.
    pub(crate) fn protocol_label(&self) -> Option<String> {
        let protocol = self.protocol?;
        Some(match &self.assignor {
            Some(assignor) => format!("{protocol} {assignor}"),
            None => protocol.to_string(),
        })
    }
}

impl GroupState {
    /// Total lag of the group over all partitions; `low` gives each partition's earliest
    /// offset (where a group without commits would start).
    pub fn total_lag(&self, low: &BTreeMap<i32, i64>) -> i64 {
        self.partitions
            .iter()
            .map(|p| p.lag(low.get(&p.partition).copied().unwrap_or(0)))
            .sum()
    }
}

/// Every group reading the topic, at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupView {
    pub topic: String,
    pub membership: MembershipSource,
    /// Per partition, its earliest offset still in the log.
    pub low: BTreeMap<i32, i64>,
    /// Per partition, its log end offset.
    pub end: BTreeMap<i32, i64>,
    /// Sorted by group name.
    pub groups: Vec<GroupState>,
    /// Groups left out of `groups` beyond the view's cap (the view says how many).
    pub more_groups: usize,
    pub at: DateTime<Utc>,
}

/// The latest word of `group`'s orderflow members reading `topic`, from `announcements` (each
/// member's latest, with when it was sent), stale or not: the most recently heard
/// [`LAST_HEARD_KEPT`].
pub(crate) fn last_heard<'a>(
    announcements: impl Iterator<Item = &'a (Announcement, DateTime<Utc>)>,
    group: &str,
    topic: &str,
) -> BTreeMap<String, LastHeard> {
    let mut heard: Vec<(&String, LastHeard)> = announcements
        .filter(|(a, _)| a.group == group && a.topic == topic)
        .map(|(a, at)| {
            let left = a.state == MemberState::Left;
            (&a.member, LastHeard { at: *at, left })
        })
        .collect();
    heard.sort_by_key(|(_, h)| std::cmp::Reverse(h.at));
    heard.truncate(LAST_HEARD_KEPT);
    heard.into_iter().map(|(id, h)| (id.clone(), h)).collect()
}

/// Decodes a member's assignment as the classic consumer protocol carries it (version,
/// then for each topic its name and partition numbers, then user data), keeping the
/// partitions of `topic`. Never panics: a truncated or foreign blob gives `None`.
pub(crate) fn decode_assignment(bytes: &[u8], topic: &str) -> Option<Vec<i32>> {
    let mut input = bytes;
    let mut take = |n: usize| -> Option<&[u8]> {
        if input.len() < n {
            return None;
        }
        let (head, rest) = input.split_at(n);
        input = rest;
        Some(head)
    };
    let _version = i16::from_be_bytes(take(2)?.try_into().ok()?);
    let topics = i32::from_be_bytes(take(4)?.try_into().ok()?);
    let mut owned = Vec::new();
    for _ in 0..topics.max(0) {
        let name_len = i16::from_be_bytes(take(2)?.try_into().ok()?);
        let name = take(usize::try_from(name_len).ok()?)?;
        let count = i32::from_be_bytes(take(4)?.try_into().ok()?);
        let mut partitions = Vec::new();
        for _ in 0..count.max(0) {
            partitions.push(i32::from_be_bytes(take(4)?.try_into().ok()?));
        }
        if name == topic.as_bytes() {
            owned.extend(partitions);
        }
    }
    owned.sort_unstable();
    Some(owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(topics: &[(&str, &[i32])]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&1i16.to_be_bytes());
        out.extend_from_slice(&(topics.len() as i32).to_be_bytes());
        for (name, partitions) in topics {
            out.extend_from_slice(&(name.len() as i16).to_be_bytes());
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&(partitions.len() as i32).to_be_bytes());
            for p in *partitions {
                out.extend_from_slice(&p.to_be_bytes());
            }
        }
        out.extend_from_slice(&(-1i32).to_be_bytes()); // no user data
        out
    }

    #[test]
    fn assignments_decode_to_the_partitions_of_our_topic() {
        let bytes = assignment(&[("other", &[0]), ("order-events", &[2, 0])]);
        assert_eq!(decode_assignment(&bytes, "order-events"), Some(vec![0, 2]));
        assert_eq!(decode_assignment(&bytes, "nope"), Some(vec![]));
    }

    #[test]
    fn truncated_assignments_are_refused_not_panicked_on() {
        let bytes = assignment(&[("order-events", &[0, 1, 2])]);
        for cut in 0..bytes.len() - 4 {
            let _ = decode_assignment(&bytes[..cut], "order-events");
        }
        assert_eq!(
            decode_assignment(&[0, 1, 0x7f, 0xff, 0xff, 0xff], "t"),
            None
        );
    }

    #[test]
    fn the_last_word_of_each_member_of_the_group_is_kept_newest_first_up_to_a_cap() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let word = |member: String, group: &str, secs: i64, state: MemberState| {
            let at = t0 + chrono::TimeDelta::seconds(secs);
            let a = Announcement {
                member,
                host: "h".into(),
                group: group.into(),
                role: "analytics".into(),
                topic: "t".into(),
                owns: vec![],
                paused: false,
                state,
                at,
                group_protocol: None,
                assignor: None,
            };
            (a, at)
        };
        let mut heard: Vec<_> = (0..30)
            .map(|i| word(format!("m{i}"), "g", i, MemberState::Active))
            .collect();
        heard.push(word("gone".into(), "g", 100, MemberState::Left));
        heard.push(word("other".into(), "elsewhere", 200, MemberState::Active));
        let kept = last_heard(heard.iter(), "g", "t");
        assert_eq!(kept.len(), LAST_HEARD_KEPT);
        assert!(kept["gone"].left);
        assert!(!kept.contains_key("other"), "another group's member");
        assert!(!kept.contains_key("m0"), "the oldest made room");
        assert!(!kept["m29"].left);
    }

    #[test]
    fn lag_counts_from_the_commit_or_from_the_start() {
        let p = PartitionLag {
            partition: 0,
            owner: None,
            committed: Some(90),
            end: 100,
        };
        assert_eq!(p.lag(0), 10);
        let never = PartitionLag {
            committed: None,
            ..p
        };
        assert_eq!(never.lag(20), 80);
    }
}
