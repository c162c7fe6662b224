//! The rebalance timeline: what changed between one picture of the groups and the next —
//! members that joined or left, partitions that moved, and how long they had no owner.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{keep_last, short_member};
use crate::report::group_view::GroupView;

/// Rebalance timeline entries kept.
const TIMELINE_LENGTH: usize = 50;

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
}

/// The timeline, and what it remembers of the last group view to tell what changed.
#[derive(Clone, Debug, Default)]
pub(super) struct Rebalances {
    /// The changes seen, oldest first.
    timeline: VecDeque<TimelineEntry>,
    /// Whether a group view came already (the first one is no change).
    seen_a_view: bool,
    /// Who owned each partition of each group in the last group view, and since when.
    ownership: HashMap<(String, i32), Ownership>,
    /// The members of each group in the last group view.
    members: HashMap<String, BTreeSet<String>>,
}

impl Rebalances {
    /// The changes seen, oldest first.
    pub(super) fn timeline(&self) -> &VecDeque<TimelineEntry> {
        &self.timeline
    }

    /// Turns the difference between the last group view and this one into timeline entries:
    /// members that joined or left, partitions that moved and how long they had no owner.
    pub(super) fn observe(&mut self, view: &GroupView) {
        let first_view = !std::mem::replace(&mut self.seen_a_view, true);
        for group in &view.groups {
            let mut notes = Vec::new();
            let members: BTreeSet<String> = group.members.iter().map(|m| m.id.clone()).collect();
            let before = self.members.insert(group.group.clone(), members.clone());
            if let Some(before) = before {
                for joined in members.difference(&before) {
                    notes.push(format!("+ {} joined", short_member(joined)));
                }
                for left in before.difference(&members) {
                    notes.push(format!("− {} left", short_member(left)));
                }
            }
            let mut moved: BTreeMap<Move, (Vec<i32>, Duration)> = BTreeMap::new();
            for partition in &group.partitions {
                let key = (group.group.clone(), partition.partition);
                let owner = partition.owner.clone();
                match self.ownership.get(&key) {
                    Some(known) if known.owner == owner => {}
                    known => {
                        let from = known.and_then(|k| k.owner.clone());
                        let unowned_for = match known {
                            Some(k) if k.owner.is_none() && owner.is_some() => {
                                (view.at - k.since).to_std().unwrap_or_default()
                            }
                            _ => Duration::ZERO,
                        };
                        if known.is_some() {
                            let entry = moved.entry((from, owner.clone())).or_default();
                            entry.0.push(partition.partition);
                            entry.1 = entry.1.max(unowned_for);
                        }
                        self.ownership.insert(
                            key,
                            Ownership {
                                owner,
                                since: view.at,
                            },
                        );
                    }
                }
            }
            for ((from, to), (partitions, unowned_for)) in moved {
                let list = partitions
                    .iter()
                    .map(|p| format!("p{p}"))
                    .collect::<Vec<_>>()
                    .join(",");
                let from = from.as_deref().map_or("nobody", short_member);
                let note = match to.as_deref() {
                    Some(to) if unowned_for > Duration::ZERO => format!(
                        "{list} → {} after {:.1} s unowned",
                        short_member(to),
                        unowned_for.as_secs_f64()
                    ),
                    Some(to) => format!("{list} {from} → {}", short_member(to)),
                    None => format!("{list} released by {from}"),
                };
                notes.push(note);
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
