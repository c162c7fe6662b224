//! The rebalance timeline: what changed between one picture of the groups and the next —
//! members that joined or left, partitions that moved, and how long they had no owner. A
//! member that left (it said so on `<topic>.members`) is told from one that stopped
//! answering (killed or hung: its last word was not a leave); where the view cannot tell,
//! the timeline says so.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::keep_last;
use crate::dashboard::names;
use crate::report::group_view::{GroupView, LastHeard, MembershipSource};

/// Rebalance timeline entries kept.
const TIMELINE_LENGTH: usize = 50;

/// Members announce themselves every second: one unheard for longer than this before it
/// disappeared had stopped answering. Shorter, its leave may just not have arrived yet.
const SILENCE: Duration = Duration::from_secs(3);

/// How a member came to be missing from the group, as far as the group view can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Departure {
    /// Its last announcement said it left (it sent LeaveGroup).
    Left,
    /// Silent this long before it disappeared, without announcing a leave.
    StoppedAnswering(Duration),
    /// Not an orderflow member, or its last word too recent to judge.
    Unknown,
}

impl Departure {
    fn of(heard: Option<&LastHeard>, now: DateTime<Utc>) -> Departure {
        match heard {
            Some(h) if h.left => Departure::Left,
            Some(h) => match (now - h.at).to_std() {
                Ok(silent) if silent > SILENCE => Departure::StoppedAnswering(silent),
                _ => Departure::Unknown,
            },
            None => Departure::Unknown,
        }
    }

    /// The timeline's words for `member` going this way.
    fn note(self, member: &str, membership: MembershipSource) -> String {
        match (self, membership) {
            (Departure::Left, _) => format!("− {member} left the group"),
            // The cluster dropped it: its session expired. The seconds are from its last word
            // to the view without it, which is more than the session timeout (on the built-in
            // broker the rebalance that drops it waits too), so they are not called that.
            (Departure::StoppedAnswering(silent), MembershipSource::Cluster) => format!(
                "− {member} stopped answering: silent for {} s, its session expired and its \
                 partitions were taken from it",
                silent.as_secs()
            ),
            // Membership from announcements: the view only knows it fell silent; the group
            // takes its partitions when its session expires.
            (Departure::StoppedAnswering(silent), _) => format!(
                "− {member} stopped answering: no word for {} s and no leave announced",
                silent.as_secs()
            ),
            (Departure::Unknown, _) => format!("− {member} left or crashed"),
        }
    }
}

/// One line of the rebalance timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TimelineEntry {
    /// When the group view that showed the change was taken.
    pub(crate) at: DateTime<Utc>,
    /// The group that changed.
    pub(crate) group: String,
    /// What moved, e.g. `+ analytics-4243 joined; p2 analytics-4242 → analytics-4243 (5.1 s)`.
    pub(crate) text: String,
}

/// A change of owner: (from, to), either side possibly nobody.
type Move = (Option<String>, Option<String>);

/// Who owned a partition of a group, and since when.
#[derive(Clone, Debug)]
struct Ownership {
    /// The member that owned it, if any.
    owner: Option<String>,
    /// Since the group view that first showed this owner (or no owner).
    since: DateTime<Utc>,
    /// The latest group view that showed this.
    seen: DateTime<Utc>,
    /// For no owner: the last view that still showed an owner. Views may not come for a
    /// while (the watch cannot reach the cluster), and the partition may have had no owner
    /// from any moment after that one.
    owned_until: Option<DateTime<Utc>>,
}

/// A gap between two group views longer than this is the watch not seeing (a round takes a
/// second or two): an unowned time across it is told as an upper bound.
const VIEW_GAP: Duration = Duration::from_secs(3);

/// The timeline, and what it remembers of the last group view to tell what changed.
#[derive(Clone, Debug, Default)]
pub(super) struct Rebalances {
    /// When each member of this process (by group and member id) lost its partitions, until
    /// it is given partitions again: a member that gets the same partitions back leaves the
    /// group pictures unchanged, so its own account is the one that tells it.
    lost: HashMap<(String, String), DateTime<Utc>>,
    /// Since when each group has been rebalancing, as the cluster describes it.
    rebalancing: HashMap<String, DateTime<Utc>>,
    /// The changes seen, oldest first.
    timeline: VecDeque<TimelineEntry>,
    /// Whether a group view came already (the first one is no change).
    seen_a_view: bool,
    /// Who owned each partition of each group in the last group view, and since when.
    ownership: HashMap<(String, i32), Ownership>,
    /// The members of each group in the last group view.
    members: HashMap<String, BTreeSet<String>>,
}

/// How long an entry counts as news: the same words from another role of this process (the
/// demo runs three, and each sees the same broker go) within it are not told again.
const SAME_NEWS: chrono::TimeDelta = chrono::TimeDelta::seconds(30);

impl Rebalances {
    /// The changes seen, oldest first.
    pub(super) fn timeline(&self) -> &VecDeque<TimelineEntry> {
        &self.timeline
    }

    /// A group the last view showed and this one does not (no member reads the topic any
    /// more, or more groups than the view shows) is gone from the table now, and the
    /// timeline says so now. What is remembered of it goes too: compared on its return
    /// with what it was before it went, the timeline would tell of changes the table
    /// showed long before (a leave, seconds late); back, it is new to the view.
    fn forget_groups_gone(&mut self, view: &GroupView) {
        let shown: BTreeSet<&str> = view.groups.iter().map(|g| g.group.as_str()).collect();
        let gone: Vec<String> = self
            .members
            .keys()
            .filter(|g| !shown.contains(g.as_str()))
            .cloned()
            .collect();
        for group in gone {
            let members = self.members.remove(&group).unwrap_or_default();
            self.ownership.retain(|(g, _), _| *g != group);
            self.rebalancing.remove(&group);
            if !members.is_empty() {
                let shown: Vec<String> = members.iter().map(|m| names::member(m)).collect();
                let entry = TimelineEntry {
                    at: view.at,
                    group,
                    text: format!(
                        "no longer in the view (it reads no partition of {} now, or more \
                         groups read it than the view shows): {} no longer shown",
                        view.topic,
                        shown.join(", ")
                    ),
                };
                keep_last(&mut self.timeline, TIMELINE_LENGTH, entry);
            }
        }
    }

    /// A member of this process lost `partitions` (not handed over: the group dropped it).
    pub(super) fn member_lost(
        &mut self,
        at: DateTime<Utc>,
        group: &str,
        member: &str,
        partitions: &[i32],
    ) {
        self.lost.insert((group.to_owned(), member.to_owned()), at);
        let text = format!(
            "− {} lost {}: the group dropped it (here)",
            names::member(member),
            names::partition_list(partitions)
        );
        self.note(at, group, text);
    }

    /// A member of this process was given `partitions`; after a loss, that is told, with how
    /// long they had been lost.
    pub(super) fn member_assigned(
        &mut self,
        at: DateTime<Utc>,
        group: &str,
        member: &str,
        partitions: &[i32],
    ) {
        let Some(lost_at) = self.lost.remove(&(group.to_owned(), member.to_owned())) else {
            return;
        };
        let secs = (at - lost_at).num_milliseconds().max(0) as f64 / 1000.0;
        let text = format!(
            "+ {} → {} again (here), {secs:.1} s after it lost them",
            names::partition_list(partitions),
            names::member(member)
        );
        self.note(at, group, text);
    }

    /// Something the cluster did that a group felt (a broker gone or back, leaders or a
    /// coordinator moved), told once however many roles of this process saw it.
    pub(super) fn note(&mut self, at: DateTime<Utc>, group: &str, text: String) {
        let told = self
            .timeline
            .iter()
            .rev()
            .take_while(|e| at - e.at < SAME_NEWS)
            .any(|e| e.group == group && e.text == text);
        if !told {
            let entry = TimelineEntry {
                at,
                group: group.to_owned(),
                text,
            };
            keep_last(&mut self.timeline, TIMELINE_LENGTH, entry);
        }
    }

    /// Turns the difference between the last group view and this one into timeline entries:
    /// members that joined or left, partitions that moved and how long they had no owner.
    pub(super) fn observe(&mut self, view: &GroupView) {
        let first_view = !std::mem::replace(&mut self.seen_a_view, true);
        self.forget_groups_gone(view);
        for group in &view.groups {
            let mut notes = Vec::new();
            let members: BTreeSet<String> = group.members.iter().map(|m| m.id.clone()).collect();
            let before = self.members.insert(group.group.clone(), members.clone());
            let mut departures = HashMap::new();
            if let Some(before) = before {
                for joined in members.difference(&before) {
                    notes.push(format!("+ {} joined", names::member(joined)));
                }
                for gone in before.difference(&members) {
                    let departure = Departure::of(group.last_heard.get(gone), view.at);
                    notes.push(departure.note(&names::member(gone), view.membership));
                    departures.insert(gone.clone(), departure);
                }
            }
            // The partitions of each move, how long they had no owner, and whether that is
            // only an upper bound.
            let mut moved: BTreeMap<Move, (Vec<i32>, Duration, bool)> = BTreeMap::new();
            for partition in &group.partitions {
                let key = (group.group.clone(), partition.partition);
                let owner = partition.owner.clone();
                match self.ownership.get_mut(&key) {
                    Some(known) if known.owner == owner => known.seen = view.at,
                    known => {
                        let known = known.map(|k| &*k);
                        let from = known.and_then(|k| k.owner.clone());
                        let age =
                            |from: DateTime<Utc>| (view.at - from).to_std().unwrap_or_default();
                        let (unowned_for, up_to) = match known {
                            Some(k) if k.owner.is_none() && owner.is_some() => {
                                match k.owned_until {
                                    Some(until)
                                        if (k.since - until).to_std().unwrap_or_default()
                                            > VIEW_GAP =>
                                    {
                                        (age(until), true)
                                    }
                                    _ => (age(k.since), false),
                                }
                            }
                            _ => (Duration::ZERO, false),
                        };
                        if known.is_some() {
                            let entry = moved.entry((from, owner.clone())).or_default();
                            entry.0.push(partition.partition);
                            entry.1 = entry.1.max(unowned_for);
                            entry.2 |= up_to;
                        }
                        let owned_until = match known {
                            Some(k) if owner.is_none() && k.owner.is_some() => Some(k.seen),
                            _ => None,
                        };
                        self.ownership.insert(
                            key,
                            Ownership {
                                owner,
                                since: view.at,
                                seen: view.at,
                                owned_until,
                            },
                        );
                    }
                }
            }
            for ((from, to), (partitions, unowned_for, up_to)) in moved {
                let list = names::partition_list(&partitions);
                let departure = from.as_ref().and_then(|f| departures.get(f)).copied();
                let from = from
                    .as_deref()
                    .map_or_else(|| "nobody".to_owned(), names::member);
                let note = match to.as_deref() {
                    Some(to) if unowned_for > Duration::ZERO => format!(
                        "{list} → {} after {}{:.1} s unowned",
                        names::member(to),
                        // The view saw no group for a while: since the last view that
                        // showed an owner, which is as long as it can have been.
                        if up_to { "up to " } else { "" },
                        unowned_for.as_secs_f64()
                    ),
                    Some(to) => format!("{list} {from} → {}", names::member(to)),
                    None => match (departure, view.membership) {
                        (None | Some(Departure::Left), _) => format!("{list} released by {from}"),
                        (Some(Departure::StoppedAnswering(_)), MembershipSource::Cluster) => {
                            format!("{list} taken from {from}")
                        }
                        _ => format!("{list} no longer {from}'s"),
                    },
                };
                notes.push(note);
            }
            // A rebalance after which every member kept its partitions (the group dropped
            // them all and they rejoined, as when its coordinator moves) changes nothing the
            // pictures compare: the described state is what tells it.
            if group.rebalancing {
                self.rebalancing
                    .entry(group.group.clone())
                    .or_insert(view.at);
            } else if let Some(since) = self.rebalancing.remove(&group.group) {
                let told = self
                    .timeline
                    .iter()
                    .any(|e| e.group == group.group && e.at >= since);
                if notes.is_empty() && !told && !first_view {
                    let secs = (view.at - since).num_milliseconds().max(0) as f64 / 1000.0;
                    notes.push(format!(
                        "rebalanced for {secs:.1} s; every member kept its partitions"
                    ));
                }
            }
            if !first_view && !notes.is_empty() {
                let entry = TimelineEntry {
                    at: view.at,
                    group: group.group.clone(),
                    text: notes.join("; "),
                };
                keep_last(&mut self.timeline, TIMELINE_LENGTH, entry);
            }
        }
    }
}

#[cfg(test)]
#[path = "rebalances_tests.rs"]
mod tests;
