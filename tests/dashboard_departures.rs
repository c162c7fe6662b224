//! The rebalance timeline tells a member that left from one that stopped answering, in whole
//! frames: group views in sequence go into the live view, the frame is compared with a
//! committed snapshot (tests/snapshots/).

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use orderflow::dashboard::{Dashboard, ViewEvent};
use orderflow::report::group_view::{
    GroupState, GroupView, LastHeard, Member, MembershipSource, PartitionLag,
};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn at(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 18, 30, 0).unwrap() + chrono::TimeDelta::seconds(secs)
}

/// Group analytics on real Kafka (the cluster describes it) at `secs`: `members` (id, owned
/// partitions), and what the watch last heard from each member (id, seconds, left).
fn view(secs: i64, members: &[(&str, &[i32])], heard: &[(&str, i64, bool)]) -> GroupView {
    let owner = |p: i32| {
        members
            .iter()
            .find(|(_, owns)| owns.contains(&p))
            .map(|(m, _)| m.to_string())
    };
    GroupView {
        topic: "order-events".into(),
        membership: MembershipSource::Cluster,
        low: (0..3).map(|p| (p, 0)).collect(),
        end: (0..3).map(|p| (p, 1_000)).collect(),
        groups: vec![GroupState {
            group: "analytics".into(),
            members: members
                .iter()
                .map(|(id, owns)| Member {
                    id: id.to_string(),
                    host: "laptop".into(),
                    role: Some("analytics".into()),
                    owns: owns.to_vec(),
                    paused: false,
                })
                .collect(),
            partitions: (0..3)
                .map(|p| PartitionLag {
                    partition: p,
                    owner: owner(p),
                    committed: Some(990),
                    end: 1_000,
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
                .collect::<BTreeMap<_, _>>(),
        }],
        more_groups: 0,
        at: at(secs),
    }
}

/// Three analytics members; analytics-1 leaves cleanly at 10 s, analytics-2 is killed at
/// 20 s and the group drops it when its session expires, 45 s later; then (if
/// `reassigned`) its partition goes to analytics-3.
fn a_leave_then_a_crash(reassigned: bool) -> Dashboard {
    let (a, b, c) = (
        "orderflow-analytics-1",
        "orderflow-analytics-2",
        "orderflow-analytics-3",
    );
    let mut d = Dashboard::new(
        "localhost:9092",
        "order-events",
        &["analytics"],
        at(0),
        FixedOffset::east_opt(0).unwrap(),
    );
    let all = [(a, 9, false), (b, 9, false), (c, 9, false)];
    d.update(ViewEvent::Groups(view(
        9,
        &[(a, &[0]), (b, &[1]), (c, &[2])],
        &all,
    )));
    let left = [(a, 10, true), (b, 10, false), (c, 10, false)];
    d.update(ViewEvent::Groups(view(11, &[(b, &[1]), (c, &[2])], &left)));
    d.update(ViewEvent::Groups(view(
        14,
        &[(b, &[0, 1]), (c, &[2])],
        &left,
    )));
    let crashed = [(a, 10, true), (b, 20, false), (c, 64, false)];
    // The watch's views come every second: the last one with analytics-2 still in the group
    // (its session not yet expired) is from 64 s.
    d.update(ViewEvent::Groups(view(
        64,
        &[(b, &[0, 1]), (c, &[2])],
        &crashed,
    )));
    d.update(ViewEvent::Groups(view(65, &[(c, &[0, 2])], &crashed)));
    if reassigned {
        d.update(ViewEvent::Groups(view(68, &[(c, &[0, 1, 2])], &crashed)));
    }
    d
}

fn render(d: &Dashboard, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| frame.render_widget(d, frame.area()))
        .unwrap();
    terminal
}

#[test]
fn a_leave_then_a_crash_at_140x42() {
    insta::assert_snapshot!(render(&a_leave_then_a_crash(true), 140, 42).backend());
}

#[test]
fn the_crash_at_80x24() {
    // 24 lines show the newest entry only: the crash, before its partition moves.
    insta::assert_snapshot!(render(&a_leave_then_a_crash(false), 80, 24).backend());
}

/// Analytics-1 (this terminal) owns every partition; analytics-2 joins, and while the group
/// rebalances the cluster holds analytics-1's commits: its lag climbs on the partitions it
/// keeps reading, and the view says why.
fn a_join_holding_commits() -> Dashboard {
    use orderflow::report::activity::{Activity, PartitionStart};
    use orderflow::report::group_view::GroupProtocol;
    let (a, b) = ("orderflow-analytics-1", "orderflow-analytics-2");
    let mut d = Dashboard::new(
        "localhost:9092",
        "order-events",
        &["analytics"],
        at(0),
        FixedOffset::east_opt(0).unwrap(),
    );
    let activity = |d: &mut Dashboard, secs, activity| {
        d.update(ViewEvent::Role {
            role: "analytics",
            activity,
            at: at(secs),
        })
    };
    activity(
        &mut d,
        0,
        Activity::Joined {
            role: "analytics",
            group: "analytics".into(),
            member: a.into(),
            topic: "order-events".into(),
            brokers: "localhost:9092".into(),
            protocol: GroupProtocol::Classic,
            assignor: Some("cooperative-sticky".into()),
        },
    );
    activity(
        &mut d,
        1,
        Activity::Assigned {
            partitions: (0..3)
                .map(|partition| PartitionStart {
                    partition,
                    start: 0,
                    committed: true,
                    low: 0,
                    high: 990,
                })
                .collect(),
            waited: std::time::Duration::ZERO,
            took: std::time::Duration::ZERO,
            now_owned: vec![0, 1, 2],
        },
    );
    let heard = [(a, 9, false), (b, 9, false)];
    d.update(ViewEvent::Groups(view(9, &[(a, &[0, 1, 2])], &heard)));
    let mut joining = view(10, &[(a, &[0, 1, 2]), (b, &[])], &heard);
    joining.groups[0].rebalancing = true;
    for p in &mut joining.groups[0].partitions {
        // Records keep coming; the commits stand still.
        p.end = 1_060;
    }
    d.update(ViewEvent::Groups(joining));
    d
}

#[test]
fn a_join_holding_commits_at_140x42_and_80x24() {
    let d = a_join_holding_commits();
    for (width, height) in [(140, 42), (80, 24)] {
        let frame = render(&d, width, height);
        let name = format!("a_join_holding_commits_at_{width}x{height}");
        insta::assert_snapshot!(name, frame.backend());
    }
}

/// The rows of the screen, as text.
fn rows(terminal: &Terminal<TestBackend>) -> Vec<String> {
    let buffer = terminal.backend().buffer();
    let width = usize::from(buffer.area.width);
    buffer
        .content()
        .chunks(width)
        .map(|row| row.iter().map(|cell| cell.symbol()).collect())
        .collect()
}

/// A member with a 150-character client id (`-X client.id=…`) crashes and a partition
/// moves to another with a hostile name, in a group whose name is 200 characters and forges
/// panel edges: every cut name ends in `…`, no name's `│` or `┌` reaches the screen, and the
/// outcome of each timeline entry (who got the partition) stays readable at 80×24 and 140×42.
#[test]
fn long_and_hostile_names_are_cut_with_an_ellipsis() {
    let long = format!("analytics-{}", "y".repeat(140));
    let evil = "analytics-\u{1b}[2Jevil-member-name-that-is-long";
    let group = format!("grp with spaces│and ┌box┐ {}", "x".repeat(200));
    let renamed = |mut v: GroupView| {
        v.groups[0].group = group.clone();
        v
    };
    let mut d = Dashboard::new(
        "localhost:9092",
        "order-events",
        &["analytics"],
        at(0),
        FixedOffset::east_opt(0).unwrap(),
    );
    let heard = [(long.as_str(), 9, false), (evil, 9, false)];
    d.update(ViewEvent::Groups(renamed(view(
        9,
        &[(long.as_str(), &[0, 1]), (evil, &[2])],
        &heard,
    ))));
    let heard = [(long.as_str(), 10, true), (evil, 11, false)];
    d.update(ViewEvent::Groups(renamed(view(
        12,
        &[(evil, &[0, 1, 2])],
        &heard,
    ))));
    for (width, height) in [(80, 24), (140, 42)] {
        let terminal = render(&d, width, height);
        let screen = rows(&terminal).join("\n");
        for forged in ["spaces│", "┌box", "box┐", "\u{1b}"] {
            assert!(
                !screen.contains(forged),
                "{forged:?} from a name at {width}×{height}:\n{screen}"
            );
        }
        assert!(screen.contains("grp with spaces\u{FFFD}and"), "{screen}");
        assert!(
            screen.contains("yyyyyyy…"),
            "the long member is cut with … at {width}×{height}:\n{screen}"
        );
        // The outcome of the move: the partitions, the arrow and who got them.
        let outcome = "p0,p1 analytics-yyyyyyyyyyyyy… → analytics-[2Jevil-membe…";
        assert!(
            screen
                .replace('\n', " ")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .contains(&outcome.split_whitespace().collect::<Vec<_>>().join(" ")),
            "the move's outcome is read whole at {width}×{height}:\n{screen}"
        );
        insta::assert_snapshot!(format!("long_names_{width}x{height}"), terminal.backend());
    }
}
