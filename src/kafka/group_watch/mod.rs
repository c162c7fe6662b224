//! Builds the [`GroupView`] of the topic, once a second, on a thread of its own.
//!
//! One mechanism for both kinds of cluster:
//! - **membership**: ask the cluster to describe its groups (ListGroups + DescribeGroups) and
//!   decode each member's assignment. Real Kafka answers, so every member shows, kcat
//!   included. The built-in broker does not implement those requests; then the members'
//!   own announcements on `<topic>.members` say who owns what. On real Kafka the
//!   announcements still add each orderflow member's role and pause state.
//! - **lag**: for every group, its committed offsets (OffsetFetch, which any client may ask
//!   for any group without joining it) against each partition's end offset (ListOffsets).
//!   Both clusters answer these, so lag is the same computation everywhere.
//!
//! Groups shown: those the cluster describes as reading the topic, those with announced
//! members, and the groups the caller always wants (orderflow's role groups, from the role
//! registry) once they have committed offsets.

mod described;
mod offsets;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

use self::described::{DescribedGroup, no_answer};
use super::client::{ConnectionHealth, close_promptly};
use crate::config::KafkaSettings;
use crate::report::group_view::{
    Announcement, GroupProtocol, GroupState, GroupView, Member, MemberState, MembershipSource,
    PartitionLag, announcement_topic, last_heard,
};

/// How often the view is rebuilt.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// An announcement older than this is from a member that is gone (they come every second).
const ANNOUNCEMENT_FRESHNESS: Duration = Duration::from_secs(5);

/// When starting, read this many of the latest announcements per partition: enough for the
/// members alive now (the built-in broker cannot look records up by time).
const ANNOUNCEMENT_BACKLOG: i64 = 500;

/// How long each request of a round may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// At most this many groups, and members per group, are shown; the view says how many more
/// there are. Anyone who can write to `<topic>.members` can announce any number of names: the
/// caps keep the view, and the clients it makes, bounded.
const MAX_GROUPS_SHOWN: usize = 12;
const MAX_MEMBERS_SHOWN: usize = 24;

/// At most this many clients fetch committed offsets, besides one per group always shown
/// (librdkafka asks OffsetFetch for a client's own group.id only, so one client per group
/// shown); the least recently used is closed when another is needed. Each client holds
/// threads and a connection per broker.
const MAX_OFFSET_CLIENTS: usize = MAX_GROUPS_SHOWN;

/// At most this many members' latest announcements are remembered.
const MAX_ANNOUNCED_MEMBERS: usize = 2_000;

/// A running group watch; dropping it stops the thread.
pub struct GroupWatch {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl GroupWatch {
    /// Starts watching; `deliver` gets a new view every [`WATCH_INTERVAL`]. `always_shown`
    /// (a few trusted names: orderflow's role groups, from the role registry) are shown once
    /// they have committed offsets, even without members, and come first when there are more
    /// groups than the view shows.
    pub fn start(
        settings: &KafkaSettings,
        always_shown: Vec<String>,
        deliver: impl FnMut(GroupView) + Send + 'static,
    ) -> std::io::Result<GroupWatch> {
        GroupWatch::start_when(settings, always_shown, || true, deliver)
    }

    /// [`GroupWatch::start`], with the rounds skipped while `wanted()` says nobody looks (a
    /// metrics endpoint nobody scrapes): an unwatched view costs no requests.
    pub fn start_when(
        settings: &KafkaSettings,
        always_shown: Vec<String>,
        wanted: impl Fn() -> bool + Send + 'static,
        mut deliver: impl FnMut(GroupView) + Send + 'static,
    ) -> std::io::Result<GroupWatch> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let settings = settings.clone();
        let thread = std::thread::Builder::new()
            .name("group watch".into())
            .spawn(move || {
                let mut watcher = match Watcher::new(&settings, always_shown) {
                    Ok(watcher) => watcher,
                    Err(e) => {
                        tracing::warn!(error = %e, "the group view cannot start");
                        return;
                    }
                };
                while !stopped.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    if wanted()
                        && let Some(view) = watcher.round()
                    {
                        deliver(view);
                    }
                    let rest = WATCH_INTERVAL.saturating_sub(started.elapsed());
                    // Sleep in slices so that stopping is quick.
                    let until = Instant::now() + rest;
                    while Instant::now() < until && !stopped.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            })?;
        Ok(GroupWatch {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for GroupWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The watch's clients and memory between rounds.
struct Watcher {
    settings: KafkaSettings,
    /// Groups shown once they have committed offsets, even without members.
    always_shown: Vec<String>,
    /// Metadata, end offsets and group descriptions, on a connection of its own.
    cluster: BaseConsumer<ConnectionHealth>,
    /// Reads `<topic>.members`.
    announcements: BaseConsumer<ConnectionHealth>,
    /// Whether `announcements` is assigned yet (the topic may not exist before the first
    /// member announces itself).
    reading_announcements: bool,
    /// One client per group shown, to fetch its committed offsets, with the round it was
    /// last used in; at most [`MAX_OFFSET_CLIENTS`] plus one per group always shown.
    offsets: HashMap<String, (BaseConsumer<ConnectionHealth>, u64)>,
    /// Rounds so far, the clock of `offsets`.
    rounds: u64,
    /// The latest announcement of each member, with its Kafka timestamp.
    members: BTreeMap<String, (Announcement, DateTime<Utc>)>,
    /// Whether the cluster describes groups: None until it answered, Some(false) once it
    /// answered a description with an error of its own.
    describes_groups: Option<bool>,
    /// Whether a description ever came back.
    described_ever: bool,
    /// When describing last failed, to try again now and then.
    describe_failed_at: Option<Instant>,
    /// What each described member owned in the last round, by (group, member id): what it
    /// still owns while its group rebalances and the description says nothing.
    owned_before: HashMap<(String, String), Vec<i32>>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // Quitting the view should not wait 100 ms per client (see close_promptly).
        let clients = [&self.cluster, &self.announcements]
            .into_iter()
            .chain(self.offsets.values().map(|(client, _)| client));
        for client in clients {
            close_promptly(client, Duration::from_millis(500));
        }
    }
}

fn plain_consumer(
    settings: &KafkaSettings,
    purpose: &str,
    group: &str,
) -> rdkafka::error::KafkaResult<BaseConsumer<ConnectionHealth>> {
    let config = settings.outsider_config(&[
        ("group.id", group),
        (
            "client.id",
            &format!("orderflow-view-{purpose}-{}", super::client::process_tag()),
        ),
        ("enable.auto.commit", "false"),
        ("log.connection.close", "false"),
    ]);
    BaseConsumer::from_config_and_context(&config, ConnectionHealth::default())
}

impl Watcher {
    fn new(
        settings: &KafkaSettings,
        always_shown: Vec<String>,
    ) -> rdkafka::error::KafkaResult<Watcher> {
        let own_group = format!("orderflow-view-{}", super::client::process_tag());
        Ok(Watcher {
            settings: settings.clone(),
            always_shown,
            cluster: plain_consumer(settings, "cluster", &own_group)?,
            announcements: plain_consumer(settings, "members", &own_group)?,
            reading_announcements: false,
            offsets: HashMap::new(),
            rounds: 0,
            members: BTreeMap::new(),
            describes_groups: None,
            described_ever: false,
            describe_failed_at: None,
            owned_before: HashMap::new(),
        })
    }

    /// One round: read new announcements, describe groups, fetch offsets, build the view.
    fn round(&mut self) -> Option<GroupView> {
        let topic = self.settings.topic.clone();
        let metadata = self
            .cluster
            .fetch_metadata(Some(&topic), REQUEST_TIMEOUT)
            .ok()?;
        let partitions: Vec<i32> = metadata
            .topics()
            .first()?
            .partitions()
            .iter()
            .map(|p| p.id())
            .collect();
        let mut low = BTreeMap::new();
        let mut end = BTreeMap::new();
        for &p in &partitions {
            let (l, h) = self
                .cluster
                .fetch_watermarks(&topic, p, REQUEST_TIMEOUT)
                .ok()?;
            low.insert(p, l);
            end.insert(p, h);
        }

        self.read_announcements();
        let described = self.describe_groups(&topic);
        let now = Utc::now();
        let fresh = |at: &DateTime<Utc>| {
            (now - *at)
                .to_std()
                .map_or(true, |age| age < ANNOUNCEMENT_FRESHNESS)
        };
        let announced: Vec<&Announcement> = self
            .members
            .values()
            .filter(|(a, at)| a.state == MemberState::Active && a.topic == topic && fresh(at))
            .map(|(a, _)| a)
            .collect();

        let (membership, mut by_group) = match described {
            Ok(groups) => (MembershipSource::Cluster, groups),
            Err(source) => (source, BTreeMap::new()),
        };
        // Announcements: the whole membership on the built-in broker, and of the
        // consumer-protocol groups the cluster does not describe; elsewhere they add the role
        // and pause state to members the cluster described.
        for a in &announced {
            let group = by_group.entry(a.group.clone()).or_insert_with(|| {
                if membership.described() {
                    // A group the last description did not list yet (it just formed).
                    DescribedGroup::listed(None)
                } else {
                    DescribedGroup::announced(None)
                }
            });
            match group.members.iter_mut().find(|m| m.id == a.member) {
                Some(member) => {
                    member.role = Some(a.role.clone());
                    member.paused = a.paused;
                }
                None if group.announced_members => group.members.push(Member {
                    id: a.member.clone(),
                    host: a.host.clone(),
                    role: Some(a.role.clone()),
                    owns: a.owns.clone(),
                    paused: a.paused,
                }),
                None => {}
            }
            group.heard(a);
        }

        // Kafka lists every consumer-protocol group of the cluster, whatever it reads; keep
        // those that can be about this topic (one always shown, or one with announced members),
        // so that no client is made to ask about the others' offsets.
        let always_shown = &self.always_shown;
        by_group.retain(|name, g| {
            !(g.announced_members && g.announced.is_empty() && !always_shown.contains(name))
        });
        let mut names: BTreeSet<String> = by_group.keys().cloned().collect();
        names.extend(always_shown.iter().cloned());
        // Beyond the cap, the groups always shown come first, then the groups the cluster
        // itself described, then those with the most announced members: forged names cannot
        // push the lesson's groups out of the view.
        let mut names: Vec<String> = names.into_iter().collect();
        names.sort_by_key(|name| {
            let described = by_group.get(name);
            (
                !always_shown.contains(name),
                described.is_none_or(|g| g.announced_members),
                std::cmp::Reverse(described.map_or(0, |g| g.members.len())),
                name.clone(),
            )
        });
        let more_groups = names.len().saturating_sub(MAX_GROUPS_SHOWN);
        names.truncate(MAX_GROUPS_SHOWN);
        names.sort();
        self.rounds += 1;
        let mut groups = Vec::new();
        for name in names {
            let committed = self.committed(&name, &topic, &partitions);
            let described = by_group.remove(&name).unwrap_or_else(|| {
                if membership.described() {
                    DescribedGroup::listed(None)
                } else {
                    DescribedGroup::announced(None)
                }
            });
            let (protocol, assignor) = described.protocol();
            let rebalancing = described.rebalancing;
            let announced_members =
                described.announced_members && membership == MembershipSource::Cluster;
            let mut members = described.members;
            if members.is_empty() && committed.values().all(Option::is_none) {
                // A role group that never ran: nothing to show.
                continue;
            }
            members.sort_by(|a, b| a.id.cmp(&b.id));
            let owner_of = |p: i32| {
                members
                    .iter()
                    .find(|m| m.owns.contains(&p))
                    .map(|m| m.id.clone())
            };
            let partitions = partitions
                .iter()
                .map(|&p| PartitionLag {
                    partition: p,
                    owner: owner_of(p),
                    committed: committed.get(&p).copied().flatten(),
                    end: end[&p],
                })
                .collect();
            let more_members = members.len().saturating_sub(MAX_MEMBERS_SHOWN);
            members.truncate(MAX_MEMBERS_SHOWN);
            let last_heard = last_heard(self.members.values(), &name, &topic);
            groups.push(GroupState {
                group: name,
                members,
                partitions,
                protocol,
                assignor,
                announced_members,
                more_members,
                last_heard,
                rebalancing,
            });
        }
        Some(GroupView {
            topic,
            membership,
            low,
            end,
            groups,
            more_groups,
            at: now,
        })
    }

    /// Reads every announcement that arrived since the last round.
    fn read_announcements(&mut self) {
        let topic = announcement_topic(&self.settings.topic);
        if !self.reading_announcements {
            let Ok(metadata) = self.cluster.fetch_metadata(Some(&topic), REQUEST_TIMEOUT) else {
                return;
            };
            let Some(t) = metadata.topics().first() else {
                return;
            };
            if t.error().is_some() || t.partitions().is_empty() {
                return;
            }
            let mut assignment = TopicPartitionList::new();
            for p in t.partitions() {
                let start = match self
                    .cluster
                    .fetch_watermarks(&topic, p.id(), REQUEST_TIMEOUT)
                {
                    Ok((low, high)) => (high - ANNOUNCEMENT_BACKLOG).max(low),
                    Err(_) => return,
                };
                if assignment
                    .add_partition_offset(&topic, p.id(), Offset::Offset(start))
                    .is_err()
                {
                    return;
                }
            }
            if self.announcements.assign(&assignment).is_err() {
                return;
            }
            self.reading_announcements = true;
        }
        let deadline = Instant::now() + Duration::from_millis(200);
        while let Some(polled) = self.announcements.poll(Duration::from_millis(20)) {
            if let Ok(message) = polled {
                let at = message
                    .timestamp()
                    .to_millis()
                    .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
                    .unwrap_or_else(Utc::now);
                // Unparsable announcements, and stale ones (the backlog read at start, or a
                // replay of old records), say nothing about who is here now.
                let stale = (Utc::now() - at)
                    .to_std()
                    .is_ok_and(|age| age >= ANNOUNCEMENT_FRESHNESS);
                if !stale
                    && let Some(a) = message
                        .payload()
                        .and_then(|v| serde_json::from_slice::<Announcement>(v).ok())
                {
                    self.remember(a, at);
                }
            }
            if Instant::now() > deadline {
                break;
            }
        }
        // Forget members long gone, so the map does not grow with every run of a class.
        let now = Utc::now();
        self.members
            .retain(|_, (_, at)| (now - *at).num_seconds() < 60);
    }

    /// Keeps a member's latest announcement; when [`MAX_ANNOUNCED_MEMBERS`] are known, the
    /// one heard from longest ago makes room.
    fn remember(&mut self, a: Announcement, at: DateTime<Utc>) {
        if !self.members.contains_key(&a.member)
            && self.members.len() >= MAX_ANNOUNCED_MEMBERS
            && let Some(oldest) = self
                .members
                .iter()
                .min_by_key(|(_, (_, heard))| *heard)
                .map(|(id, _)| id.clone())
        {
            self.members.remove(&oldest);
        }
        self.members.insert(a.member.clone(), (a, at));
    }

    /// The cluster's own description of its consumer groups, when it gives one: the
    /// members and assignor of every classic group reading `topic` (or a role group), and,
    /// without members, every consumer-protocol group. Without one, where the members shown
    /// come from instead and why: the cluster refused (asked again every 30 s), has not
    /// answered yet, or answered before but not now (asked again next round).
    fn describe_groups(
        &mut self,
        topic: &str,
    ) -> Result<BTreeMap<String, DescribedGroup>, MembershipSource> {
        if self.describes_groups == Some(false)
            && self
                .describe_failed_at
                .is_some_and(|at| at.elapsed() < Duration::from_secs(30))
        {
            return Err(MembershipSource::Announcements);
        }
        match self.cluster.fetch_group_list(None, REQUEST_TIMEOUT) {
            Ok(list) => {
                self.describes_groups = Some(true);
                self.described_ever = true;
                let mut groups = BTreeMap::new();
                let mut owned_now = HashMap::new();
                for group in list.groups() {
                    // librdkafka lists the groups (ListGroups) and describes them with
                    // DescribeGroups v0, which Kafka answers for a consumer-protocol (KIP-848)
                    // group with state Dead and nothing else; a listed group is not dead.
                    if group.state() == "Dead" && group.protocol_type().is_empty() {
                        groups.insert(
                            group.name().to_owned(),
                            DescribedGroup::announced(Some(GroupProtocol::Consumer)),
                        );
                        continue;
                    }
                    if group.protocol_type() != "consumer" {
                        continue;
                    }
                    let rebalancing = described::rebalancing(group.state());
                    let members: Vec<Member> = group
                        .members()
                        .iter()
                        .filter_map(|m| {
                            let key = (group.name().to_owned(), m.id().to_owned());
                            let before = self.owned_before.get(&key);
                            let owns =
                                described::owned(m.assignment(), topic, rebalancing, before)?;
                            owned_now.insert(key, owns.clone());
                            Some(Member {
                                id: m.client_id().to_owned(),
                                host: m.client_host().trim_start_matches('/').to_owned(),
                                role: None,
                                owns,
                                paused: false,
                            })
                        })
                        .collect();
                    let reads_topic = members.iter().any(|m| !m.owns.is_empty());
                    if reads_topic || self.always_shown.iter().any(|g| g == group.name()) {
                        let mut described = DescribedGroup::listed(Some(GroupProtocol::Classic));
                        described.members = members;
                        described.rebalancing = rebalancing;
                        // The assignor the group chose; empty while it has no members.
                        described.assignor =
                            Some(group.protocol().to_owned()).filter(|p| !p.is_empty());
                        groups.insert(group.name().to_owned(), described);
                    }
                }
                self.owned_before = owned_now;
                Ok(groups)
            }
            Err(e) if no_answer(&e) => {
                tracing::debug!(error = %e, "no description of the groups this round");
                Err(if self.described_ever {
                    MembershipSource::Unanswered
                } else {
                    MembershipSource::Waiting
                })
            }
            Err(e) => {
                tracing::debug!(error = %e, "the cluster does not describe groups");
                self.describes_groups = Some(false);
                self.describe_failed_at = Some(Instant::now());
                Err(MembershipSource::Announcements)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::described::tests::announcement;
    use super::*;

    #[test]
    fn announced_members_are_remembered_up_to_a_cap() {
        // No I/O: creating clients does not connect.
        let settings = KafkaSettings::new("127.0.0.1:1", "t", Vec::new()).unwrap();
        let mut watcher = Watcher::new(&settings, Vec::new()).unwrap();
        let start = Utc::now();
        for i in 0..MAX_ANNOUNCED_MEMBERS + 500 {
            let mut a = announcement(None, None);
            a.member = format!("m{i}");
            watcher.remember(a, start + chrono::Duration::milliseconds(i as i64));
        }
        assert_eq!(watcher.members.len(), MAX_ANNOUNCED_MEMBERS);
        // The ones heard from longest ago made room.
        assert!(!watcher.members.contains_key("m0"));
        assert!(
            watcher
                .members
                .contains_key(&format!("m{}", MAX_ANNOUNCED_MEMBERS + 499))
        );
        // A member heard again keeps its place without evicting another.
        let mut again = announcement(None, None);
        again.member = "m600".into();
        watcher.remember(again, start);
        assert_eq!(watcher.members.len(), MAX_ANNOUNCED_MEMBERS);
    }
}
