//! The live view's state and how events change it. No drawing, no Kafka, no clock: time comes
//! with the events, so a test can replay a session and get the same picture every time.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};

use super::keys::Action;
use crate::report::activity::{Activity, Connection, Outcome, PartitionStart, Summary};
use crate::report::group_view::GroupView;

/// Per-second rates kept for the throughput sparkline: one minute.
const RATE_HISTORY: usize = 60;

/// Rebalance timeline entries kept.
const TIMELINE_LENGTH: usize = 50;

/// Recent problems (malformed records, violations) kept per role.
const PROBLEMS_KEPT: usize = 5;

/// Everything that changes the view.
#[derive(Clone, Debug)]
pub enum ViewEvent {
    /// Something a role running in this process reported.
    Role {
        role: &'static str,
        activity: Activity,
        at: DateTime<Utc>,
    },
    /// A new picture of the groups reading the topic.
    Groups(GroupView),
    /// The counters of a producer running in this process (the demo).
    Producer(ProducerStats),
    /// Time passes (redraws relative times, ages the timeline).
    Tick(DateTime<Utc>),
}

/// A producer's counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProducerStats {
    pub sent: u64,
    pub delivered: u64,
    pub failed: u64,
    /// Events per second lately.
    pub rate: f64,
    /// The configured rate (0: as fast as possible).
    pub target_rate: f64,
}

/// One role running in this process, as far as the view knows it. Only its events change
/// it ([`Dashboard::update`]); the frame reads it through the accessors.
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
    fn new(role: &'static str) -> RoleView {
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
                lag: Some((end - committed).max(0)),
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
                (Some(c), Some(e)) => Some((e - c).max(0)),
                _ => None,
            },
        }
    }
}

/// A row of "this member's partitions".
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PartitionRow {
    pub(crate) partition: i32,
    pub(crate) committed: Option<i64>,
    pub(crate) end: Option<i64>,
    pub(crate) lag: Option<i64>,
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
    owner: Option<String>,
    since: DateTime<Utc>,
}

/// What an [`Action`] asks of the world outside the view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Stop the view.
    Quit,
    /// Pause the role (true) or resume it (false). The view shows it paused once the role
    /// says so.
    Pause { role: &'static str, paused: bool },
}

/// The whole live view. Only events ([`Dashboard::update`]) and actions
/// ([`Dashboard::apply`]) change it; the frame reads it through the accessors.
#[derive(Clone, Debug)]
pub struct Dashboard {
    /// Where the cluster is, for the status line.
    brokers: String,
    /// The topic the roles read.
    topic: String,
    /// The roles running in this process, in display order.
    roles: Vec<RoleView>,
    /// The role `p` pauses (and whose details the single-role layout shows).
    selected: usize,
    /// The role whose counters and throughput the demo shows beside the groups (else the
    /// selected one).
    featured: Option<&'static str>,
    /// The latest picture of the groups reading the topic.
    groups: Option<GroupView>,
    /// Rebalances seen, oldest first.
    timeline: VecDeque<TimelineEntry>,
    /// The counters of the producer running in this process (the demo).
    producer: Option<ProducerStats>,
    /// The development broker's address, in the demo.
    demo_broker: Option<String>,
    /// Whether the help overlay is shown.
    help: bool,
    /// The latest time an event brought.
    now: DateTime<Utc>,
    /// The time zone times are shown in (the machine's at start; UTC in tests).
    zone: FixedOffset,
    /// Who owned each partition of each group in the last group view, and since when.
    ownership: HashMap<(String, i32), Ownership>,
    /// The members of each group in the last group view.
    members: HashMap<String, BTreeSet<String>>,
}

/// Shortens a member id for display: `orderflow-analytics-4242` → `analytics-4242`.
pub(crate) fn short_member(id: &str) -> &str {
    id.strip_prefix("orderflow-").unwrap_or(id)
}

impl Dashboard {
    /// A view of `roles` (in display order) reading `topic` at `brokers`; the first role is
    /// selected.
    pub fn new(
        brokers: &str,
        topic: &str,
        roles: &[&'static str],
        now: DateTime<Utc>,
        zone: FixedOffset,
    ) -> Dashboard {
        Dashboard {
            brokers: brokers.to_owned(),
            topic: topic.to_owned(),
            roles: roles.iter().map(|r| RoleView::new(r)).collect(),
            selected: 0,
            featured: None,
            groups: None,
            timeline: VecDeque::new(),
            producer: None,
            demo_broker: None,
            help: false,
            now,
            zone,
            ownership: HashMap::new(),
            members: HashMap::new(),
        }
    }

    /// Selects `role`, if the view has it.
    pub fn select(&mut self, role: &str) {
        if let Some(index) = self.roles.iter().position(|r| r.role == role) {
            self.selected = index;
        }
    }

    /// Shows `role`'s counters and throughput beside the groups in the demo, whichever role
    /// is selected.
    pub(crate) fn feature(&mut self, role: &'static str) {
        self.featured = Some(role);
    }

    /// Says in the status line that the demo runs its own broker at `address`.
    pub fn set_demo_broker(&mut self, address: &str) {
        self.demo_broker = Some(address.to_owned());
    }

    /// Does what a key asked for, as far as the view goes, and says what is left to do
    /// outside it.
    pub fn apply(&mut self, action: Action) -> Option<Effect> {
        match action {
            Action::Quit => return Some(Effect::Quit),
            Action::Back if self.help => self.help = false,
            Action::Back => return Some(Effect::Quit),
            Action::ToggleHelp => self.help = !self.help,
            Action::TogglePause => {
                return self.selected_role().map(|role| Effect::Pause {
                    role: role.role,
                    paused: !role.paused,
                });
            }
            Action::NextRole => {
                if !self.roles.is_empty() {
                    self.selected = (self.selected + 1) % self.roles.len();
                }
            }
        }
        None
    }

    /// Where the cluster is.
    pub(crate) fn brokers(&self) -> &str {
        &self.brokers
    }

    /// The topic the roles read.
    pub(crate) fn topic(&self) -> &str {
        &self.topic
    }

    /// The roles running in this process, in display order.
    pub(crate) fn roles(&self) -> &[RoleView] {
        &self.roles
    }

    /// The index of the role `p` acts on, in [`Dashboard::roles`].
    pub(crate) fn selected(&self) -> usize {
        self.selected
    }

    /// The role `p` acts on.
    pub(crate) fn selected_role(&self) -> Option<&RoleView> {
        self.roles.get(self.selected)
    }

    /// The role whose counters the demo shows beside the groups.
    pub(crate) fn featured_role(&self) -> Option<&RoleView> {
        self.roles
            .iter()
            .find(|r| Some(r.role) == self.featured)
            .or_else(|| self.selected_role())
    }

    /// The latest picture of the groups, once there is one.
    pub(crate) fn groups(&self) -> Option<&GroupView> {
        self.groups.as_ref()
    }

    /// Rebalances seen, oldest first.
    pub(crate) fn timeline(&self) -> &VecDeque<TimelineEntry> {
        &self.timeline
    }

    /// The demo producer's latest counters.
    pub(crate) fn producer(&self) -> Option<&ProducerStats> {
        self.producer.as_ref()
    }

    /// The demo's own broker, if it runs one.
    pub(crate) fn demo_broker(&self) -> Option<&str> {
        self.demo_broker.as_deref()
    }

    /// Whether the help overlay is shown.
    pub(crate) fn help_shown(&self) -> bool {
        self.help
    }

    /// The time zone times are shown in.
    pub(crate) fn zone(&self) -> &FixedOffset {
        &self.zone
    }

    /// The member ids of roles running in this process, to mark them "(here)".
    pub(crate) fn local_members(&self) -> BTreeSet<&str> {
        self.roles
            .iter()
            .filter_map(|r| r.member.as_deref())
            .collect()
    }

    /// Folds an event into the view.
    pub fn update(&mut self, event: ViewEvent) {
        match event {
            ViewEvent::Role { role, activity, at } => {
                self.now = self.now.max(at);
                self.role_activity(role, activity, at);
            }
            ViewEvent::Groups(view) => {
                self.now = self.now.max(view.at);
                self.group_changes(&view);
                self.groups = Some(view);
            }
            ViewEvent::Producer(stats) => self.producer = Some(stats),
            ViewEvent::Tick(now) => self.now = self.now.max(now),
        }
    }

    fn role_activity(&mut self, role: &'static str, activity: Activity, at: DateTime<Utc>) {
        let index = match self.roles.iter().position(|r| r.role == role) {
            Some(i) => i,
            None => {
                self.roles.push(RoleView::new(role));
                self.roles.len() - 1
            }
        };
        let view = &mut self.roles[index];
        match activity {
            Activity::Joined { group, member, .. } => {
                view.group = Some(group);
                view.member = Some(member);
                view.left = false;
            }
            Activity::Assigned {
                partitions,
                waited,
                now_owned,
                ..
            } => {
                for start in partitions {
                    view.committed.remove(&start.partition);
                    view.starts.insert(start.partition, start);
                }
                view.owned = now_owned;
                view.last_assignment = Some((at, waited));
            }
            Activity::Revoked { now_owned, .. } => {
                view.starts.retain(|p, _| now_owned.contains(p));
                view.committed.retain(|p, _| now_owned.contains(p));
                view.owned = now_owned;
                view.last_assignment = Some((at, Duration::ZERO));
            }
            Activity::Committed { offsets } => view.committed.extend(offsets),
            Activity::Progress(summary) | Activity::Summary(summary) => {
                if view.rates.len() == RATE_HISTORY {
                    view.rates.pop_front();
                }
                view.rates.push_back(summary.events_per_s);
                view.summary = Some(summary);
            }
            Activity::Connection(state) => view.connection = state,
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
                if view.problems.len() == PROBLEMS_KEPT {
                    view.problems.pop_front();
                }
                view.problems.push_back(text);
            }
            Activity::Paused(paused) => view.paused = paused,
            Activity::Left => {
                view.left = true;
                view.owned.clear();
            }
            Activity::Cluster(change) => {
                if view.notices.len() == PROBLEMS_KEPT * 4 {
                    view.notices.pop_front();
                }
                view.notices.push_back(change.to_string());
            }
            Activity::Notice(text) | Activity::CommitFailed { reason: text } => {
                if view.notices.len() == PROBLEMS_KEPT * 4 {
                    view.notices.pop_front();
                }
                view.notices.push_back(text);
            }
        }
    }

    /// Turns the difference between the last group view and this one into timeline entries:
    /// members that joined or left, partitions that moved and how long they had no owner.
    fn group_changes(&mut self, view: &GroupView) {
        let first_view = self.groups.is_none();
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
                if self.timeline.len() == TIMELINE_LENGTH {
                    self.timeline.pop_front();
                }
                self.timeline.push_back(TimelineEntry {
                    at: view.at,
                    group: group.group.clone(),
                    text: notes.join("; "),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::activity::RoleCounters;
    use crate::report::group_view::{GroupState, Member, MembershipSource, PartitionLag};
    use chrono::TimeZone;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_790_000_000 + secs, 0).unwrap()
    }

    fn dashboard() -> Dashboard {
        Dashboard::new(
            "localhost:9092",
            "order-events",
            &["analytics"],
            at(0),
            FixedOffset::east_opt(0).unwrap(),
        )
    }

    fn view(secs: i64, members: &[(&str, &[i32])]) -> GroupView {
        let owner = |p: i32| {
            members
                .iter()
                .find(|(_, owns)| owns.contains(&p))
                .map(|(m, _)| m.to_string())
        };
        GroupView {
            topic: "order-events".into(),
            membership: MembershipSource::Announcements,
            low: (0..3).map(|p| (p, 0)).collect(),
            end: (0..3).map(|p| (p, 100)).collect(),
            groups: vec![GroupState {
                group: "analytics".into(),
                members: members
                    .iter()
                    .map(|(id, owns)| Member {
                        id: id.to_string(),
                        host: "h".into(),
                        role: Some("analytics".into()),
                        owns: owns.to_vec(),
                        paused: false,
                    })
                    .collect(),
                partitions: (0..3)
                    .map(|p| PartitionLag {
                        partition: p,
                        owner: owner(p),
                        committed: Some(90),
                        end: 100,
                    })
                    .collect(),
                protocol: None,
                assignor: None,
                announced_members: false,
                more_members: 0,
            }],
            more_groups: 0,
            at: at(secs),
        }
    }

    fn summary(records: u64, rate: f64, statuses: [u64; 4]) -> Summary {
        Summary {
            role: "analytics",
            group: "analytics".into(),
            last: false,
            records,
            malformed: 0,
            malformed_by_kind: BTreeMap::new(),
            events_per_s: rate,
            latency: None,
            partitions: Vec::new(),
            counters: RoleCounters::Analytics {
                statuses: ["PLACED", "CONFIRMED", "SHIPPED", "DELIVERED"]
                    .into_iter()
                    .zip(statuses)
                    .collect(),
                sources: BTreeMap::new(),
                completed: statuses[3],
                in_flight: statuses[0] - statuses[3],
            },
        }
    }

    #[test]
    fn a_partition_handed_over_lands_in_the_timeline_with_its_wait() {
        let mut d = dashboard();
        let a = "orderflow-analytics-1";
        let b = "orderflow-analytics-2";
        d.update(ViewEvent::Groups(view(0, &[(a, &[0, 1, 2])])));
        assert!(d.timeline.is_empty(), "the first picture is not a change");
        d.update(ViewEvent::Groups(view(1, &[(a, &[0, 1]), (b, &[])])));
        d.update(ViewEvent::Groups(view(6, &[(a, &[0, 1]), (b, &[2])])));
        let texts: Vec<&str> = d.timeline.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                "+ analytics-2 joined; p2 released by analytics-1",
                "p2 → analytics-2 after 5.0 s unowned",
            ]
        );
        d.update(ViewEvent::Groups(view(9, &[(b, &[0, 1, 2])])));
        assert_eq!(
            d.timeline.back().unwrap().text,
            "− analytics-1 left; p0,p1 analytics-1 → analytics-2"
        );
    }

    #[test]
    fn progress_feeds_counters_and_a_minute_of_rates() {
        let mut d = dashboard();
        for second in 0..70 {
            d.update(ViewEvent::Role {
                role: "analytics",
                activity: Activity::Progress(summary(second * 20, 20.0, [second, 0, 0, 0])),
                at: at(second as i64),
            });
        }
        let role = &d.roles[0];
        assert_eq!(role.rates.len(), RATE_HISTORY);
        assert_eq!(role.summary.as_ref().unwrap().records, 69 * 20);
        assert_eq!(d.now, at(69));
    }

    #[test]
    fn own_partitions_show_lag_from_the_freshest_end_offsets() {
        let mut d = dashboard();
        d.update(ViewEvent::Role {
            role: "analytics",
            activity: Activity::Assigned {
                partitions: vec![PartitionStart {
                    partition: 1,
                    start: 40,
                    committed: true,
                    low: 0,
                    high: 50,
                }],
                waited: Duration::from_secs(1),
                took: Duration::ZERO,
                now_owned: vec![1],
            },
            at: at(1),
        });
        let row = d.roles[0].partition(1, None);
        assert_eq!(
            (row.committed, row.end, row.lag),
            (Some(40), Some(50), Some(10))
        );
        d.update(ViewEvent::Role {
            role: "analytics",
            activity: Activity::Committed {
                offsets: vec![(1, 45)],
            },
            at: at(2),
        });
        // Paused: the member's own statistics stop, the group view's end offsets move on.
        d.update(ViewEvent::Groups(view(3, &[])));
        let row = d.roles[0].partition(1, d.groups.as_ref());
        assert_eq!(
            (row.committed, row.end, row.lag),
            (Some(45), Some(100), Some(55))
        );
    }

    fn three_roles() -> Dashboard {
        Dashboard::new(
            "localhost:9092",
            "order-events",
            &["order-processor", "analytics", "storage"],
            at(0),
            FixedOffset::east_opt(0).unwrap(),
        )
    }

    #[test]
    fn back_closes_the_help_first_then_quits() {
        let mut d = dashboard();
        assert_eq!(d.apply(Action::ToggleHelp), None);
        assert!(d.help_shown());
        assert_eq!(d.apply(Action::Back), None);
        assert!(!d.help_shown());
        assert_eq!(d.apply(Action::Back), Some(Effect::Quit));
    }

    #[test]
    fn quit_quits_even_with_the_help_shown() {
        let mut d = dashboard();
        d.apply(Action::ToggleHelp);
        assert_eq!(d.apply(Action::Quit), Some(Effect::Quit));
        assert_eq!(d.apply(Action::ToggleHelp), None);
        assert!(!d.help_shown(), "help toggles back off");
    }

    #[test]
    fn pausing_asks_for_the_selected_role_and_its_opposite_state() {
        let mut d = three_roles();
        d.select("analytics");
        assert_eq!(
            d.apply(Action::TogglePause),
            Some(Effect::Pause {
                role: "analytics",
                paused: true
            })
        );
        assert!(!d.roles()[1].paused(), "paused only once the role says so");
        d.update(ViewEvent::Role {
            role: "analytics",
            activity: Activity::Paused(true),
            at: at(1),
        });
        assert_eq!(
            d.apply(Action::TogglePause),
            Some(Effect::Pause {
                role: "analytics",
                paused: false
            })
        );
    }

    #[test]
    fn tab_goes_round_the_roles() {
        let mut d = three_roles();
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(d.selected_role().unwrap().name());
            assert_eq!(d.apply(Action::NextRole), None);
        }
        assert_eq!(
            seen,
            ["order-processor", "analytics", "storage", "order-processor"]
        );
        d.select("no-such-role");
        assert_eq!(d.selected_role().unwrap().name(), "analytics");
    }

    #[test]
    fn without_roles_nothing_is_selected_or_paused() {
        let mut d = Dashboard::new(
            "localhost:9092",
            "order-events",
            &[],
            at(0),
            FixedOffset::east_opt(0).unwrap(),
        );
        assert_eq!(d.apply(Action::NextRole), None);
        assert_eq!(d.apply(Action::TogglePause), None);
    }

    #[test]
    fn the_featured_role_stays_whatever_is_selected() {
        let mut d = three_roles();
        assert_eq!(d.featured_role().unwrap().name(), "order-processor");
        d.feature("analytics");
        d.apply(Action::NextRole);
        d.apply(Action::NextRole);
        assert_eq!(d.selected_role().unwrap().name(), "storage");
        assert_eq!(d.featured_role().unwrap().name(), "analytics");
    }
}
