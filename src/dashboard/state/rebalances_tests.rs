//! The timeline's unit tests: group pictures in sequence, and the entries they make.

use std::collections::BTreeMap;

use chrono::TimeZone;

use super::*;
use crate::report::group_view::{GroupState, Member, PartitionLag};

fn at(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 18, 30, 0).unwrap() + chrono::TimeDelta::seconds(secs)
}

/// Group analytics at `secs` with `members` (id, partitions) and what the watch last
/// heard from each member ever seen: (id, seconds, left).
fn view(
    secs: i64,
    membership: MembershipSource,
    members: &[(&str, &[i32])],
    heard: &[(&str, i64, bool)],
) -> GroupView {
    let owner = |p: i32| {
        members
            .iter()
            .find(|(_, owns)| owns.contains(&p))
            .map(|(m, _)| m.to_string())
    };
    GroupView {
        topic: "order-events".into(),
        membership,
        low: BTreeMap::new(),
        end: BTreeMap::new(),
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
            partitions: (0..2)
                .map(|p| PartitionLag {
                    partition: p,
                    owner: owner(p),
                    committed: Some(0),
                    end: 0,
                })
                .collect(),
            protocol: None,
            assignor: None,
            announced_members: false,
            more_members: 0,
            rebalancing: false,
            last_heard: heard
                .iter()
                .map(|&(id, secs, left)| (id.to_owned(), LastHeard { at: at(secs), left }))
                .collect(),
        }],
        more_groups: 0,
        at: at(secs),
    }
}

/// The timeline's last line after a group of two (a owns p0, b p1) loses b.
fn after_b_goes(membership: MembershipSource, secs: i64, b_heard: Option<(i64, bool)>) -> String {
    let both: &[(&str, &[i32])] = &[("orderflow-a-1", &[0]), ("orderflow-b-2", &[1])];
    let mut heard = vec![("orderflow-a-1", secs, false)];
    heard.extend(b_heard.map(|(at, left)| ("orderflow-b-2", at, left)));
    let mut rebalances = Rebalances::default();
    rebalances.observe(&view(0, membership, both, &heard));
    rebalances.observe(&view(1, membership, both, &heard));
    rebalances.observe(&view(secs, membership, &[("orderflow-a-1", &[0])], &heard));
    rebalances.timeline().back().expect("a change").text.clone()
}

#[test]
fn a_member_that_announced_its_leave_left_the_group() {
    assert_eq!(
        after_b_goes(MembershipSource::Cluster, 3, Some((2, true))),
        "− b-2 left the group; p1 released by b-2"
    );
    assert_eq!(
        after_b_goes(MembershipSource::Announcements, 3, Some((2, true))),
        "− b-2 left the group; p1 released by b-2"
    );
}

#[test]
fn a_member_dropped_by_the_cluster_after_silence_had_its_session_expire() {
    assert_eq!(
        after_b_goes(MembershipSource::Cluster, 46, Some((1, false))),
        "− b-2 stopped answering: silent for 45 s, its session expired and its \
         partitions were taken from it; p1 taken from b-2"
    );
}

#[test]
fn a_member_gone_silent_on_announcements_alone_is_not_said_to_have_expired() {
    assert_eq!(
        after_b_goes(MembershipSource::Announcements, 6, Some((1, false))),
        "− b-2 stopped answering: no word for 5 s and no leave announced; p1 no longer b-2's"
    );
}

#[test]
fn the_timeline_tells_a_change_in_the_view_that_shows_it_in_the_table() {
    // Group analytics loses b while it is out of the view: a round in which its members
    // read nothing of the topic. The table shows the group gone at 2 s and back at 12 s
    // without b; the timeline must say so then, and not tell of b's leave at 12 s.
    let both: &[(&str, &[i32])] = &[("orderflow-a-1", &[0]), ("orderflow-b-2", &[1])];
    let a_alone: &[(&str, &[i32])] = &[("orderflow-a-1", &[0, 1])];
    let heard = [("orderflow-a-1", 1, false)];
    let mut gone = view(2, MembershipSource::Cluster, &[], &heard);
    gone.groups.clear();
    let mut rebalances = Rebalances::default();
    for v in [
        view(0, MembershipSource::Cluster, both, &heard),
        view(1, MembershipSource::Cluster, both, &heard),
        gone,
        view(12, MembershipSource::Cluster, a_alone, &heard),
        view(13, MembershipSource::Cluster, a_alone, &heard),
        view(
            14,
            MembershipSource::Cluster,
            &[("orderflow-a-1", &[0])],
            &heard,
        ),
    ] {
        rebalances.observe(&v);
    }
    let said: Vec<(i64, &str)> = rebalances
        .timeline()
        .iter()
        .map(|e| ((e.at - at(0)).num_seconds(), e.text.as_str()))
        .collect();
    assert_eq!(
        said,
        [
            (
                2,
                "no longer in the view (it reads no partition of order-events now, or more \
                 groups read it than the view shows): a-1, b-2 no longer shown"
            ),
            // Back at 12 s: new to the view, nothing to compare; a change after it is
            // told in the view that shows it.
            (14, "p1 released by a-1"),
        ]
    );
}

#[test]
fn without_a_word_from_it_or_too_soon_the_view_does_not_guess() {
    // Not an orderflow member (kcat): nothing announced.
    assert_eq!(
        after_b_goes(MembershipSource::Cluster, 10, None),
        "− b-2 left or crashed; p1 no longer b-2's"
    );
    // Heard a second ago: its leave may still be on its way.
    assert_eq!(
        after_b_goes(MembershipSource::Cluster, 10, Some((9, false))),
        "− b-2 left or crashed; p1 no longer b-2's"
    );
}

#[test]
fn what_the_cluster_did_lands_in_the_timeline_once() {
    let mut d = crate::dashboard::state::Dashboard::new(
        "localhost:9092",
        "order-events",
        &["analytics", "storage"],
        at(0),
        chrono::FixedOffset::east_opt(0).unwrap(),
    );
    let down = crate::report::activity::ClusterChange::BrokerLeft {
        broker: 2,
        address: "127.0.0.1:19093".into(),
    };
    let moved = crate::report::activity::ClusterChange::LeadersMoved(vec![
        crate::report::activity::LeaderMove {
            partition: 0,
            from: Some(2),
            to: Some(3),
        },
    ]);
    for (role, change, second) in [
        ("analytics", down.clone(), 10),
        ("storage", down, 11),
        ("storage", moved, 11),
        (
            "storage",
            crate::report::activity::ClusterChange::CoordinatorMoved { from: 2, to: 1 },
            12,
        ),
    ] {
        d.update(crate::dashboard::state::ViewEvent::Role {
            role,
            activity: crate::report::activity::Activity::Cluster(change),
            at: at(second),
        });
    }
    let entries: Vec<(&str, &str)> = d
        .timeline()
        .iter()
        .map(|e| (e.group.as_str(), e.text.as_str()))
        .collect();
    assert_eq!(
        entries,
        [
            (
                "cluster",
                "broker 2 (127.0.0.1:19093) left the cluster: Kafka declared it dead and \
                 moves its partitions' leadership to the other brokers"
            ),
            (
                "cluster",
                "partition 0's leader moved from broker 2 to broker 3"
            ),
            (
                "storage",
                "the group's coordinator moved from broker 2 to broker 1"
            ),
        ]
    );
}

/// A cluster outage: the watch saw the group last at 2 s, then nothing until 30 s, when
/// the member was gone; a new one takes the partitions at 32 s. They were unowned for up
/// to 30 s (since the view at 2 s), not the 2 s since the view saw them unowned.
#[test]
fn an_unowned_time_across_views_missed_counts_from_the_last_owner_seen() {
    let c = MembershipSource::Cluster;
    let heard = [("orderflow-a-1", 2, false), ("orderflow-a-2", 31, false)];
    let mut rebalances = Rebalances::default();
    for v in [
        view(1, c, &[("orderflow-a-1", &[0, 1])], &heard),
        view(2, c, &[("orderflow-a-1", &[0, 1])], &heard),
        view(30, c, &[], &heard),
        view(32, c, &[("orderflow-a-2", &[0, 1])], &heard),
    ] {
        rebalances.observe(&v);
    }
    let last = rebalances.timeline().back().map(|e| e.text.clone());
    assert_eq!(
        last.as_deref(),
        Some("+ a-2 joined; p0,p1 → a-2 after up to 30.0 s unowned")
    );
    // Views a second apart tell the time since the view first saw no owner, as before.
    let mut rebalances = Rebalances::default();
    for v in [
        view(1, c, &[("orderflow-a-1", &[0, 1])], &heard),
        view(2, c, &[], &heard),
        view(4, c, &[("orderflow-a-2", &[0, 1])], &heard),
    ] {
        rebalances.observe(&v);
    }
    let last = rebalances.timeline().back().map(|e| e.text.clone());
    assert_eq!(
        last.as_deref(),
        Some("+ a-2 joined; p0,p1 → a-2 after 2.0 s unowned")
    );
}

/// The group rebalances (its coordinator moved; every member rejoined) and every member gets
/// its partitions back: the pictures before and after are the same, the described state
/// tells it.
#[test]
fn a_rebalance_that_changes_no_owner_is_told() {
    let c = MembershipSource::Cluster;
    let heard = [("orderflow-a-1", 20, false)];
    let same = |secs, rebalancing| {
        let mut v = view(secs, c, &[("orderflow-a-1", &[0, 1])], &heard);
        v.groups[0].rebalancing = rebalancing;
        v
    };
    let mut rebalances = Rebalances::default();
    for v in [
        same(1, false),
        same(4, true),
        same(9, true),
        same(14, false),
    ] {
        rebalances.observe(&v);
    }
    let texts: Vec<&str> = rebalances
        .timeline()
        .iter()
        .map(|e| e.text.as_str())
        .collect();
    assert_eq!(
        texts,
        ["rebalanced for 10.0 s; every member kept its partitions"]
    );
}
