//! The live view's state, how events change it and what the keys' actions do. No drawing,
//! no Kafka, no clock: time comes with the events, so a test can replay a session and get the
//! same picture every time.
//!
//! - [`role`]: what the view knows of each role running in this process;
//! - [`rebalances`]: the rebalance timeline, from one group view to the next.

mod rebalances;
mod role;

use std::collections::{BTreeSet, VecDeque};

use chrono::{DateTime, FixedOffset, Utc};

use super::keys::Action;
use crate::report::activity::{Activity, ClusterChange};
use crate::report::group_view::GroupView;
use rebalances::Rebalances;
pub(crate) use rebalances::TimelineEntry;
pub(crate) use role::RoleView;

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
    /// Rebalances seen, and what tells the next one.
    rebalances: Rebalances,
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
}

/// Shortens a member id for display: `orderflow-analytics-4242` → `analytics-4242`.
pub(crate) fn short_member(id: &str) -> &str {
    id.strip_prefix("orderflow-").unwrap_or(id)
}

/// Appends `item`, dropping the oldest first if `list` holds `cap` already.
fn keep_last<T>(list: &mut VecDeque<T>, cap: usize, item: T) {
    if list.len() == cap {
        list.pop_front();
    }
    list.push_back(item);
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
            rebalances: Rebalances::default(),
            producer: None,
            demo_broker: None,
            help: false,
            now,
            zone,
        }
    }

    /// Selects `role`, if the view has it.
    pub fn select(&mut self, role: &str) {
        if let Some(index) = self.roles.iter().position(|r| r.name() == role) {
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
                    role: role.name(),
                    paused: !role.paused(),
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
            .find(|r| Some(r.name()) == self.featured)
            .or_else(|| self.selected_role())
    }

    /// The latest picture of the groups, once there is one.
    pub(crate) fn groups(&self) -> Option<&GroupView> {
        self.groups.as_ref()
    }

    /// Rebalances seen, oldest first.
    pub(crate) fn timeline(&self) -> &VecDeque<TimelineEntry> {
        self.rebalances.timeline()
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
    /// The latest time an event brought.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.now
    }

    pub(crate) fn zone(&self) -> &FixedOffset {
        &self.zone
    }

    /// The member ids of roles running in this process, to mark them "(here)".
    pub(crate) fn local_members(&self) -> BTreeSet<&str> {
        self.roles.iter().filter_map(|r| r.member()).collect()
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
                self.rebalances.observe(&view);
                self.groups = Some(view);
            }
            ViewEvent::Producer(stats) => self.producer = Some(stats),
            ViewEvent::Tick(now) => self.now = self.now.max(now),
        }
    }

    fn role_activity(&mut self, role: &'static str, activity: Activity, at: DateTime<Utc>) {
        let index = match self.roles.iter().position(|r| r.name() == role) {
            Some(i) => i,
            None => {
                self.roles.push(RoleView::new(role));
                self.roles.len() - 1
            }
        };
        if let Activity::Cluster(change) = &activity {
            // The timeline tells rebalances; a broker that dies causes them, so what the
            // cluster did goes there too, in the same words as the plain output. A
            // coordinator is the role's group's; brokers and leaders are the cluster's.
            let group = match change {
                ClusterChange::CoordinatorMoved { .. } => {
                    self.roles[index].group().unwrap_or(role).to_owned()
                }
                _ => "cluster".to_owned(),
            };
            self.rebalances.note(at, &group, change.to_string());
        }
        // This process's own members tell their losses and regains: the group pictures
        // look the same when a member gets the same partitions back.
        let own = self.roles[index].group().zip(self.roles[index].member());
        if let Some((group, member)) = own {
            let (group, member) = (group.to_owned(), member.to_owned());
            match &activity {
                Activity::Revoked {
                    partitions,
                    lost: Some(_),
                    ..
                } if !partitions.is_empty() => {
                    self.rebalances.member_lost(at, &group, &member, partitions);
                }
                Activity::Assigned { partitions, .. } if !partitions.is_empty() => {
                    let list: Vec<i32> = partitions.iter().map(|p| p.partition).collect();
                    self.rebalances.member_assigned(at, &group, &member, &list);
                }
                _ => {}
            }
        }
        self.roles[index].record(activity, at);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::role::RATE_HISTORY;
    use super::*;
    use crate::report::activity::RoleCounters;
    use crate::report::activity::{PartitionStart, Summary};
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
                rebalancing: false,
                last_heard: BTreeMap::new(),
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
                payments: BTreeMap::new(),
            },
        }
    }

    #[test]
    fn a_partition_handed_over_lands_in_the_timeline_with_its_wait() {
        let mut d = dashboard();
        let a = "orderflow-analytics-1";
        let b = "orderflow-analytics-2";
        d.update(ViewEvent::Groups(view(0, &[(a, &[0, 1, 2])])));
        assert!(d.timeline().is_empty(), "the first picture is not a change");
        d.update(ViewEvent::Groups(view(1, &[(a, &[0, 1]), (b, &[])])));
        d.update(ViewEvent::Groups(view(6, &[(a, &[0, 1]), (b, &[2])])));
        let texts: Vec<&str> = d.timeline().iter().map(|e| e.text.as_str()).collect();
        assert_eq!(
            texts,
            vec![
                "+ analytics-2 joined; p2 released by analytics-1",
                "p2 → analytics-2 after 5.0 s unowned",
            ]
        );
        // Nothing heard from analytics-1 on `<topic>.members`: the view cannot say how it went.
        d.update(ViewEvent::Groups(view(9, &[(b, &[0, 1, 2])])));
        assert_eq!(
            d.timeline().back().unwrap().text,
            "− analytics-1 left or crashed; p0,p1 analytics-1 → analytics-2"
        );
    }

    #[test]
    fn the_timeline_keeps_the_last_fifty_rebalances() {
        let mut d = dashboard();
        let a = "orderflow-analytics-1";
        let b = "orderflow-analytics-2";
        for second in 0..61 {
            let owner = if second % 2 == 0 { a } else { b };
            d.update(ViewEvent::Groups(view(second, &[(owner, &[0, 1, 2])])));
        }
        let timeline = d.timeline();
        assert_eq!(timeline.len(), 50);
        assert_eq!(timeline.front().unwrap().at, at(11));
        assert_eq!(timeline.back().unwrap().at, at(60));
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
        assert_eq!(role.rates().len(), RATE_HISTORY);
        assert_eq!(role.summary().unwrap().records, 69 * 20);
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
