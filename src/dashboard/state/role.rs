//! One role running in this process, as the live view knows it: what it owns, its counters
//! and rates, its problems and notices, and how each of its activities changes them.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::keep_last;
use crate::report::activity::{Activity, Connection, Outcome, PartitionStart, Summary};
use crate::report::group_view::GroupView;

/// Per-second rates kept for the throughput sparkline: one minute.
pub(super) const RATE_HISTORY: usize = 60;

/// Recent problems (malformed records, violations) kept per role.
const PROBLEMS_KEPT: usize = 5;

/// Notices kept per role, to repeat when the view closes.
const NOTICES_KEPT: usize = PROBLEMS_KEPT * 4;

/// One role running in this process, as far as the view knows it. Only its events change
/// it ([`RoleView::record`]); the frame reads it through the accessors.
#[derive(Clone, Debug)]
pub(crate) struct RoleView {
    /// The role's name, as its events carry it.
    role: &'static str,
    /// The group it joined.
    group: Option<String>,
    /// This member's client id.
    member: Option<String>,
    /// The partitions it owns now.
    owned: Vec<i32>,
    /// Where each owned partition started.
    starts: BTreeMap<i32, PartitionStart>,
    /// The last offsets committed, per partition.
    committed: BTreeMap<i32, i64>,
    /// The latest counters.
    summary: Option<Summary>,
    /// Events per second, one value a second, oldest first.
    rates: VecDeque<f64>,
    /// Whether it is paused (as it reported, not as asked).
    paused: bool,
    /// How its connection to the cluster is.
    connection: Connection,
    /// Since when it has been unreachable, while it is.
    unreachable_since: Option<DateTime<Utc>>,
    /// The latest malformed records and violations, newest last.
    problems: VecDeque<String>,
    /// Set once the member has left its group.
    left: bool,
    /// When it was last given or relieved of partitions, and how long it had waited.
    last_assignment: Option<(DateTime<Utc>, Duration)>,
    /// Notices (state rebuilt, file repaired, …), to repeat when the view closes.
    notices: VecDeque<String>,
}

impl RoleView {
    pub(super) fn new(role: &'static str) -> RoleView {
        RoleView {
            role,
            group: None,
            member: None,
            owned: Vec::new(),
            starts: BTreeMap::new(),
            committed: BTreeMap::new(),
            summary: None,
            rates: VecDeque::with_capacity(RATE_HISTORY),
            paused: false,
            connection: Connection::Ok,
            unreachable_since: None,
            problems: VecDeque::new(),
            left: false,
            last_assignment: None,
            notices: VecDeque::new(),
        }
    }

    /// The role's name.
    pub(crate) fn name(&self) -> &'static str {
        self.role
    }

    /// The group it joined, once it has.
    pub(crate) fn group(&self) -> Option<&str> {
        self.group.as_deref()
    }

    /// This member's client id, once it has joined.
    pub(crate) fn member(&self) -> Option<&str> {
        self.member.as_deref()
    }

    /// The partitions it owns now.
    pub(crate) fn owned(&self) -> &[i32] {
        &self.owned
    }

    /// The latest counters.
    pub(crate) fn summary(&self) -> Option<&Summary> {
        self.summary.as_ref()
    }

    /// Events per second, one value a second, oldest first.
    pub(crate) fn rates(&self) -> &VecDeque<f64> {
        &self.rates
    }

    pub(crate) fn paused(&self) -> bool {
        self.paused
    }

    pub(crate) fn connection(&self) -> &Connection {
        &self.connection
    }

    /// The latest malformed records and violations, newest last.
    pub(crate) fn problems(&self) -> &VecDeque<String> {
        &self.problems
    }

    /// Whether the member has left its group.
    pub(crate) fn left(&self) -> bool {
        self.left
    }

    /// When it was last given or relieved of partitions, and how long it had waited.
    pub(crate) fn last_assignment(&self) -> Option<(DateTime<Utc>, Duration)> {
        self.last_assignment
    }

    /// Notices (state rebuilt, file repaired, …), oldest first.
    pub(crate) fn notices(&self) -> &VecDeque<String> {
        &self.notices
    }

    /// Offset, end and lag of an owned partition. The group view's numbers come first: they
    /// are what the groups table shows (one picture, one truth), and its end offsets move
    /// even while this member is paused, when its own statistics stop with its fetches.
    pub(crate) fn partition(&self, partition: i32, groups: Option<&GroupView>) -> PartitionRow {
        let seen_by_group = groups.and_then(|view| {
            let group = view
                .groups
                .iter()
                .find(|g| Some(&g.group) == self.group.as_ref())?;
            let lag = group.partitions.iter().find(|p| p.partition == partition)?;
            Some((lag.committed, lag.end))
        });
        if let Some((Some(committed), end)) = seen_by_group {
            return PartitionRow {
                partition,
                committed: Some(committed),
                end: Some(end),
                lag: Some(end - committed),
            };
        }
        let progress = self
            .summary
            .as_ref()
            .and_then(|s| s.partitions.iter().find(|p| p.partition == partition));
        let committed = self
            .committed
            .get(&partition)
            .copied()
            .or_else(|| progress.and_then(|p| p.committed))
            .or_else(|| self.starts.get(&partition).map(|s| s.start));
        let end = [
            groups.and_then(|g| g.end.get(&partition).copied()),
            progress.and_then(|p| p.end),
            self.starts.get(&partition).map(|s| s.high),
        ]
        .into_iter()
        .flatten()
        .max();
        PartitionRow {
            partition,
            committed,
            end,
            lag: match (committed, end) {
                (Some(c), Some(e)) => Some(e - c),
                _ => None,
            },
        }
    }

    /// Folds one of the role's activities, reported at `at`, into what the view knows.
    pub(super) fn record(&mut self, activity: Activity, at: DateTime<Utc>) {
        match activity {
            Activity::Joined { group, member, .. } => {
                self.group = Some(group);
                self.member = Some(member);
                self.left = false;
            }
            Activity::Assigned {
                partitions,
                waited,
                now_owned,
                ..
            } => {
                for start in partitions {
                    self.committed.remove(&start.partition);
                    self.starts.insert(start.partition, start);
                }
                self.owned = now_owned;
                self.last_assignment = Some((at, waited));
            }
            Activity::Revoked { now_owned, .. } => {
                self.starts.retain(|p, _| now_owned.contains(p));
                self.committed.retain(|p, _| now_owned.contains(p));
                self.owned = now_owned;
                self.last_assignment = Some((at, Duration::ZERO));
            }
            Activity::Committed { offsets } => self.committed.extend(offsets),
            Activity::Progress(summary) | Activity::Summary(summary) => {
                keep_last(&mut self.rates, RATE_HISTORY, summary.events_per_s);
                self.summary = Some(summary);
            }
            Activity::Connection(state) => {
                // An outage the view lived through stays told among the notices: once the
                // brokers answer again, the status line no longer shows it.
                match (&self.connection, &state) {
                    (Connection::Ok, Connection::Unreachable { reason }) => {
                        self.unreachable_since = Some(at);
                        keep_last(
                            &mut self.notices,
                            NOTICES_KEPT,
                            format!("no broker could be reached: {reason}"),
                        );
                    }
                    (Connection::Unreachable { .. }, Connection::Ok) => {
                        if let Some(since) = self.unreachable_since.take() {
                            let secs = (at - since).num_milliseconds().max(0) as f64 / 1000.0;
                            keep_last(
                                &mut self.notices,
                                NOTICES_KEPT,
                                format!("the brokers answer again, after {secs:.1} s out of reach"),
                            );
                        }
                    }
                    _ => {}
                }
                self.connection = state;
            }
            Activity::Record(note) => {
                let text = match &note.outcome {
                    Outcome::Malformed(error) => {
                        format!("p{}@{} {error}", note.partition, note.offset)
                    }
                    Outcome::Violation { violation, .. } => {
                        format!("p{}@{} {violation}", note.partition, note.offset)
                    }
                    Outcome::Order { .. } | Outcome::AlreadyStored => return,
                };
                keep_last(&mut self.problems, PROBLEMS_KEPT, text);
            }
            Activity::Paused(paused) => self.paused = paused,
            Activity::Left => {
                self.left = true;
                self.owned.clear();
            }
            Activity::Cluster(change) => {
                keep_last(&mut self.notices, NOTICES_KEPT, change.to_string());
            }
            Activity::Notice(text) | Activity::CommitFailed { reason: text } => {
                keep_last(&mut self.notices, NOTICES_KEPT, text);
            }
        }
    }
}

/// A row of "this member's partitions".
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PartitionRow {
    pub(crate) partition: i32,
    pub(crate) committed: Option<i64>,
    pub(crate) end: Option<i64>,
    /// `end - committed`: below 0 when the group committed past the partition's end (a
    /// client of an earlier broker on the same address, a topic recreated): not "lag 0", the
    /// next owner's position is out of range.
    pub(crate) lag: Option<i64>,
}
