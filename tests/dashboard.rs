//! The live view without a terminal: events go into the state, whole frames are rendered into
//! ratatui's TestBackend and compared with committed snapshots (tests/snapshots/).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use orderflow::dashboard::{Action, Dashboard, ProducerStats, ViewEvent};
use orderflow::domain::event::{EventError, Status};
use orderflow::domain::lifecycle::Violation;
use orderflow::report::activity::{
    Activity, Connection, Outcome, PartitionProgress, PartitionStart, RecordNote, RoleCounters,
    Summary,
};
use orderflow::report::group_view::{
    GroupProtocol, GroupState, GroupView, Member, MembershipSource, PartitionLag,
};
use orderflow::report::latency::LatencyStats;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn at(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 18, 30, 0).unwrap() + chrono::TimeDelta::seconds(secs)
}

fn render(dashboard: &Dashboard, width: u16, height: u16) -> Terminal<TestBackend> {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| frame.render_widget(dashboard, frame.area()))
        .unwrap();
    terminal
}

fn analytics_dashboard() -> Dashboard {
    Dashboard::new(
        "localhost:9092",
        "order-events",
        &["analytics"],
        at(0),
        FixedOffset::east_opt(0).unwrap(),
    )
}

fn role(d: &mut Dashboard, role: &'static str, secs: i64, activity: Activity) {
    d.update(ViewEvent::Role {
        role,
        activity,
        at: at(secs),
    });
}

fn analytics_summary(records: u64, rate: f64, statuses: [u64; 4]) -> Summary {
    Summary {
        role: "analytics",
        group: "analytics".into(),
        last: false,
        records,
        malformed: 2,
        malformed_by_kind: BTreeMap::from([("not-json", 2)]),
        events_per_s: rate,
        latency: None,
        partitions: (0..3)
            .map(|p| PartitionProgress {
                partition: p,
                position: Some(1_000 + p as i64),
                committed: Some(1_000 + p as i64),
                end: Some(1_010 + p as i64),
                lag: Some(10),
            })
            .collect(),
        counters: RoleCounters::Analytics {
            statuses: Status::ALL
                .iter()
                .map(|s| s.as_str())
                .zip(statuses)
                .collect(),
            sources: BTreeMap::from([
                ("WEB", records / 2),
                ("MOBILE", records / 3),
                ("API", records / 6),
            ]),
            completed: statuses[3],
            in_flight: statuses[0] - statuses[3],
            payments: BTreeMap::new(),
        },
    }
}

fn join(d: &mut Dashboard, member: &str) {
    join_role(d, "analytics", member);
}

fn join_role(d: &mut Dashboard, name: &'static str, member: &str) {
    role(
        d,
        name,
        0,
        Activity::Joined {
            role: name,
            group: name.into(),
            member: member.into(),
            topic: "order-events".into(),
            brokers: "localhost:9092".into(),
            protocol: GroupProtocol::Classic,
            assignor: Some("cooperative-sticky".into()),
        },
    );
}

fn assign(d: &mut Dashboard, secs: i64, partitions: &[i32]) {
    assign_role(d, "analytics", secs, partitions);
}

fn assign_role(d: &mut Dashboard, name: &'static str, secs: i64, partitions: &[i32]) {
    role(
        d,
        name,
        secs,
        Activity::Assigned {
            partitions: partitions
                .iter()
                .map(|&p| PartitionStart {
                    partition: p,
                    start: 0,
                    committed: false,
                    low: 0,
                    high: 1_000,
                })
                .collect(),
            waited: Duration::from_millis(1_000),
            took: Duration::ZERO,
            now_owned: partitions.to_vec(),
        },
    );
}

/// A group view with the given members (id, partitions) in group analytics, plus storage
/// and order-processor groups with one member each.
fn groups(secs: i64, analytics: &[(&str, &[i32])], end: i64) -> GroupView {
    let group = |name: &str, members: &[(&str, &[i32])], committed: i64| {
        let owner = |p: i32| {
            members
                .iter()
                .find(|(_, owns)| owns.contains(&p))
                .map(|(m, _)| m.to_string())
        };
        GroupState {
            group: name.into(),
            members: members
                .iter()
                .map(|(id, owns)| Member {
                    id: id.to_string(),
                    host: "laptop".into(),
                    role: Some(name.into()),
                    owns: owns.to_vec(),
                    paused: false,
                })
                .collect(),
            partitions: (0..3)
                .map(|p| PartitionLag {
                    partition: p,
                    owner: owner(p),
                    committed: Some(committed + p as i64),
                    end: end + p as i64,
                })
                .collect(),
            protocol: Some(GroupProtocol::Classic),
            assignor: Some("cooperative-sticky".into()),
            announced_members: false,
            more_members: 0,
            rebalancing: false,
            last_heard: BTreeMap::new(),
        }
    };
    GroupView {
        topic: "order-events".into(),
        membership: MembershipSource::Announcements,
        low: (0..3).map(|p| (p, 0)).collect(),
        end: (0..3).map(|p| (p, end + p as i64)).collect(),
        groups: vec![
            group("analytics", analytics, end - 10),
            group(
                "order-processor",
                &[("orderflow-order-processor-777", &[0, 1, 2])],
                end - 3,
            ),
            group("storage", &[], end - 400),
        ],
        more_groups: 0,
        at: at(secs),
    }
}

/// Analytics two minutes into a class: counters, a minute of rates, partitions, groups.
fn mid_stream() -> Dashboard {
    let mut d = analytics_dashboard();
    join(&mut d, "orderflow-analytics-4242");
    assign(&mut d, 1, &[0, 1, 2]);
    d.update(ViewEvent::Groups(groups(
        1,
        &[("orderflow-analytics-4242", &[0, 1, 2])],
        1_010,
    )));
    for second in 0..60 {
        let rate = 18.0 + (second % 7) as f64;
        role(
            &mut d,
            "analytics",
            2 + second,
            Activity::Progress(Summary {
                latency: Some(LatencyStats {
                    p50_ms: 3.24,
                    p99_ms: 14.6,
                    max_ms: 21.0,
                    records: 20,
                    buckets: Default::default(),
                }),
                ..analytics_summary(2_400, rate, [700, 650, 560, 490])
            }),
        );
    }
    role(
        &mut d,
        "analytics",
        61,
        Activity::Committed {
            offsets: vec![(0, 1_000), (1, 1_001), (2, 1_002)],
        },
    );
    role(
        &mut d,
        "analytics",
        61,
        Activity::Record(RecordNote {
            partition: 1,
            offset: 777,
            outcome: Outcome::Malformed(EventError::UnknownStatus("LOST".into())),
            routed_to: None,
        }),
    );
    d.update(ViewEvent::Groups(groups(
        62,
        &[("orderflow-analytics-4242", &[0, 1, 2])],
        1_010,
    )));
    d
}

fn after_rebalance() -> Dashboard {
    let mut d = mid_stream();
    let here = "orderflow-analytics-4242";
    let other = "orderflow-analytics-5151";
    d.update(ViewEvent::Groups(groups(
        63,
        &[(here, &[0, 1]), (other, &[])],
        1_020,
    )));
    d.update(ViewEvent::Groups(groups(
        68,
        &[(here, &[0, 1]), (other, &[2])],
        1_030,
    )));
    role(
        &mut d,
        "analytics",
        63,
        Activity::Revoked {
            partitions: vec![2],
            lost: None,
            uncommitted: Vec::new(),
            now_owned: vec![0, 1],
        },
    );
    d
}

fn paused() -> Dashboard {
    let mut d = mid_stream();
    role(&mut d, "analytics", 63, Activity::Paused(true));
    d.update(ViewEvent::Groups(groups(
        70,
        &[("orderflow-analytics-4242", &[0, 1, 2])],
        1_600,
    )));
    d
}

#[test]
fn empty_at_start() {
    let mut d = analytics_dashboard();
    join(&mut d, "orderflow-analytics-4242");
    insta::assert_snapshot!(render(&d, 80, 24).backend());
}

#[test]
fn mid_stream_at_160x48() {
    insta::assert_snapshot!(render(&mid_stream(), 160, 48).backend());
}

#[test]
fn mid_stream_at_80x24() {
    insta::assert_snapshot!(render(&mid_stream(), 80, 24).backend());
}

#[test]
fn mid_stream_at_40x10() {
    insta::assert_snapshot!(render(&mid_stream(), 40, 10).backend());
}

#[test]
fn after_a_rebalance() {
    insta::assert_snapshot!(render(&after_rebalance(), 140, 42).backend());
}

#[test]
fn paused_with_lag() {
    insta::assert_snapshot!(render(&paused(), 120, 36).backend());
}

#[test]
fn help_overlay() {
    let mut d = mid_stream();
    d.apply(Action::ToggleHelp);
    insta::assert_snapshot!(render(&d, 100, 30).backend());
}

#[test]
fn broker_unreachable() {
    let mut d = mid_stream();
    role(
        &mut d,
        "analytics",
        70,
        Activity::Connection(Connection::Unreachable {
            reason: "Connection refused".into(),
        }),
    );
    insta::assert_snapshot!(render(&d, 100, 30).backend());
}

fn processor_summary() -> Summary {
    Summary {
        role: "order-processor",
        group: "order-processor".into(),
        last: false,
        records: 5_000,
        malformed: 3,
        malformed_by_kind: BTreeMap::from([("not-json", 3)]),
        events_per_s: 20.0,
        latency: None,
        partitions: Vec::new(),
        counters: RoleCounters::OrderProcessor {
            valid: 4_995,
            violations: 2,
            violations_by_kind: BTreeMap::from([("skipped-status", 2)]),
            dead_lettered: 5,
            orders_tracked: 1_300,
        },
    }
}

#[test]
fn the_order_processor_in_its_own_terminal() {
    let mut d = Dashboard::new(
        "localhost:9092",
        "order-events",
        &["order-processor"],
        at(0),
        FixedOffset::east_opt(0).unwrap(),
    );
    role(
        &mut d,
        "order-processor",
        0,
        Activity::Joined {
            role: "order-processor",
            group: "order-processor".into(),
            member: "orderflow-order-processor-777".into(),
            topic: "order-events".into(),
            brokers: "localhost:9092".into(),
            protocol: GroupProtocol::Classic,
            assignor: Some("cooperative-sticky".into()),
        },
    );
    role(
        &mut d,
        "order-processor",
        1,
        Activity::Progress(processor_summary()),
    );
    role(
        &mut d,
        "order-processor",
        2,
        Activity::Record(RecordNote {
            partition: 2,
            offset: 91,
            outcome: Outcome::Violation {
                order_id: uuid::Uuid::from_u128(5),
                status: Status::Shipped,
                violation: Violation::Skipped {
                    from: Status::Placed,
                    to: Status::Shipped,
                },
            },
            routed_to: Some("order-events.dlq".into()),
        }),
    );
    insta::assert_snapshot!(render(&d, 80, 24).backend());
}

fn demo() -> Dashboard {
    let mut d = Dashboard::new(
        "127.0.0.1:9092",
        "order-events",
        &["order-processor", "analytics", "storage"],
        at(0),
        FixedOffset::east_opt(0).unwrap(),
    );
    d.set_demo_broker("127.0.0.1:9092");
    d.select("analytics");
    d.update(ViewEvent::Producer(ProducerStats {
        sent: 2_400,
        delivered: 2_398,
        failed: 0,
        rate: 20.0,
        target_rate: 20.0,
    }));
    role(
        &mut d,
        "order-processor",
        1,
        Activity::Progress(processor_summary()),
    );
    role(
        &mut d,
        "analytics",
        1,
        Activity::Progress(analytics_summary(2_400, 20.0, [700, 650, 560, 490])),
    );
    role(
        &mut d,
        "storage",
        1,
        Activity::Progress(Summary {
            role: "storage",
            group: "storage".into(),
            last: false,
            records: 2_395,
            malformed: 0,
            malformed_by_kind: BTreeMap::new(),
            events_per_s: 19.0,
            latency: None,
            partitions: Vec::new(),
            counters: RoleCounters::Storage {
                stored: 2_395,
                already_stored: 0,
                file: "/tmp/orderflow-demo.audit.jsonl".into(),
            },
        }),
    );
    // Both roles own every partition (the demo's panels list each one's lag), and a second
    // analytics member went away a second ago: the timeline's newest entry.
    join_role(&mut d, "order-processor", "orderflow-order-processor-777");
    join_role(&mut d, "analytics", "orderflow-analytics-4242");
    assign_role(&mut d, "order-processor", 1, &[0, 1, 2]);
    assign_role(&mut d, "analytics", 1, &[0, 1]);
    d.update(ViewEvent::Groups(groups(
        1,
        &[
            ("orderflow-analytics-4242", &[0, 1]),
            ("orderflow-analytics-4243", &[2]),
        ],
        1_010,
    )));
    assign_role(&mut d, "analytics", 2, &[0, 1, 2]);
    d.update(ViewEvent::Groups(groups(
        2,
        &[("orderflow-analytics-4242", &[0, 1, 2])],
        1_010,
    )));
    d
}

#[test]
fn the_demo_at_140x42() {
    insta::assert_snapshot!(render(&demo(), 140, 42).backend());
}

#[test]
fn the_demo_at_80x24() {
    insta::assert_snapshot!(render(&demo(), 80, 24).backend());
}

#[test]
fn the_demo_with_help_and_on_another_role() {
    let mut helped = demo();
    helped.apply(Action::ToggleHelp);
    // Analytics is selected to begin with; `tab` moves on to storage, the one `p` pauses now.
    let mut on_storage = demo();
    on_storage.apply(Action::NextRole);
    // Analytics rebalancing: its commits are held, and its panel says so.
    let mut rebalancing = demo();
    let mut view = groups(3, &[("orderflow-analytics-4242", &[0, 1, 2])], 1_030);
    view.groups[0].rebalancing = true;
    rebalancing.update(ViewEvent::Groups(view));
    for (name, d) in [
        ("with_help", &helped),
        ("on_storage", &on_storage),
        ("while_analytics_rebalances", &rebalancing),
    ] {
        for (width, height) in [(80, 24), (140, 42)] {
            let snapshot = format!("the_demo_{name}_at_{width}x{height}");
            insta::assert_snapshot!(snapshot, render(d, width, height).backend());
        }
    }
}

#[test]
fn no_size_makes_it_panic() {
    let mut helped = mid_stream();
    helped.apply(Action::ToggleHelp);
    let mut demo_helped = demo();
    demo_helped.apply(Action::ToggleHelp);
    // Every size at which a layout changes, and its neighbours.
    let widths = [
        0, 1, 5, 19, 20, 21, 39, 40, 41, 59, 60, 61, 80, 99, 100, 109, 110, 160,
    ];
    let heights = [0, 1, 2, 3, 4, 9, 10, 13, 14, 15, 23, 24, 29, 30, 42];
    for dashboard in [
        analytics_dashboard(),
        mid_stream(),
        after_rebalance(),
        helped,
        demo(),
        demo_helped,
    ] {
        for width in widths {
            for height in heights {
                render(&dashboard, width, height);
            }
        }
    }
}

/// The text of a rendered frame, row by row.
fn screen(terminal: &Terminal<TestBackend>) -> String {
    let buffer = terminal.backend().buffer();
    let width = buffer.area.width as usize;
    buffer
        .content
        .chunks(width)
        .map(|row| row.iter().map(|c| c.symbol()).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn each_group_shows_its_protocol_and_assignor_where_known() {
    let mut d = analytics_dashboard();
    join(&mut d, "orderflow-analytics-4242");
    let mut view = groups(1, &[("orderflow-analytics-4242", &[0, 1, 2])], 1_010);
    view.membership = MembershipSource::Cluster;
    // A KIP-848 group: Kafka's DescribeGroups says nothing about it, its members announce
    // themselves and the broker's assignor.
    view.groups[0].protocol = Some(GroupProtocol::Consumer);
    view.groups[0].assignor = Some("uniform".into());
    view.groups[0].announced_members = true;
    view.groups[1].assignor = Some("range".into());
    // A group the cluster lists without saying more (it has no members).
    view.groups[2].protocol = None;
    view.groups[2].assignor = None;
    d.update(ViewEvent::Groups(view));
    let text = screen(&render(&d, 160, 48));
    let row = |group: &str| {
        text.lines()
            .find(|l| l.contains(group) && l.contains("p0"))
            .unwrap_or_else(|| panic!("no row for {group} in\n{text}"))
            .to_owned()
    };
    assert!(row("analytics ").contains("consumer uniform"), "{text}");
    assert!(row("order-processor ").contains("classic range"), "{text}");
    let storage = row("storage ");
    assert!(
        !storage.contains("classic") && !storage.contains("consumer"),
        "{storage}"
    );
    assert!(
        text.contains("members: as the cluster describes them; in KIP-848 groups, as announced"),
        "{text}"
    );
}

/// Names anyone can announce: escape sequences, a bidi override, zero-width characters and
/// a very long name are printed harmless, and the view says how many groups and members it
/// leaves out.
#[test]
fn hostile_names_and_capped_groups() {
    let mut d = mid_stream();
    let mut view = groups(
        62,
        &[
            ("orderflow-analytics-4242", &[0, 1]),
            ("evil\u{1b}[2J\u{1b}[31m\u{202e}reversed\u{200b}", &[2]),
        ],
        1_030,
    );
    view.groups[0].more_members = 37;
    view.groups[1].group = format!("forged\u{2066}{}\r\n", "x".repeat(200));
    view.more_groups = 2_488;
    d.update(ViewEvent::Groups(view));
    let terminal = render(&d, 140, 42);
    let screen: String = terminal
        .backend()
        .buffer()
        .content()
        .iter()
        .map(|cell| cell.symbol())
        .collect();
    for hidden in ['\u{1b}', '\u{202e}', '\u{200b}', '\u{2066}', '\r', '\n'] {
        assert!(!screen.contains(hidden), "{hidden:?} reached the screen");
    }
    insta::assert_snapshot!(terminal.backend());
}

/// Until the cluster has answered a description, the groups panel says it waits for one,
/// not that the broker cannot describe groups (Kafka 4.1 times out its first ones while it
/// starts); once described, it says so; a description that went unanswered is told as that.
#[test]
fn the_groups_footer_claims_no_refusal_before_one() {
    for (membership, says) in [
        (
            MembershipSource::Waiting,
            "waiting for the first description",
        ),
        (MembershipSource::Cluster, "as the cluster describes them"),
        (
            MembershipSource::Unanswered,
            "the last description went unanswered",
        ),
        (
            MembershipSource::Announcements,
            "this broker cannot describe groups",
        ),
    ] {
        let mut d = mid_stream();
        let mut view = groups(62, &[("orderflow-analytics-4242", &[0, 1, 2])], 1_030);
        view.membership = membership;
        d.update(ViewEvent::Groups(view));
        for (width, height) in [(80, 24), (140, 42)] {
            let text = screen(&render(&d, width, height));
            assert!(
                text.contains(says),
                "{membership:?} at {width}×{height}:\n{text}"
            );
            if membership != MembershipSource::Announcements {
                assert!(!text.contains("cannot"), "{membership:?}:\n{text}");
            }
        }
    }
}

/// At 80×24 the timeline grows (a member killed and restarted, a member with a 150-character
/// client id) and the groups table has fewer rows than lines: it keeps this terminal's own
/// "(here)" row and each group it can, and says in a row what it leaves out; the timeline
/// yields rows before the table loses them.
#[test]
fn the_groups_table_keeps_its_own_row_and_says_what_it_leaves_out() {
    let long = format!("orderflow-analytics-{}", "y".repeat(130));
    for second in [None, Some(long.as_str())] {
        let mut d = mid_stream();
        let other = second.unwrap_or("orderflow-analytics-5151");
        let here = "orderflow-analytics-4242";
        d.update(ViewEvent::Groups(groups(
            63,
            &[(here, &[0, 1]), (other, &[2])],
            1_030,
        )));
        d.update(ViewEvent::Groups(groups(70, &[(here, &[0, 1, 2])], 1_040)));
        d.update(ViewEvent::Groups(groups(
            75,
            &[(here, &[0, 1]), ("orderflow-analytics-6161", &[2])],
            1_050,
        )));
        d.update(ViewEvent::Groups(groups(
            80,
            &[
                (here, &[0]),
                ("orderflow-analytics-6161", &[2]),
                (other, &[1]),
            ],
            1_060,
        )));
        let terminal = render(&d, 80, 24);
        let text = screen(&terminal);
        assert!(text.contains("analytics-4242 (here)"), "{text}");
        let all_shown = ["order-processor", "storage"]
            .iter()
            .all(|g| text.contains(&format!("│{g} ")));
        assert!(
            all_shown || text.contains("more groups"),
            "a group left the table unsaid:\n{text}"
        );
        assert!(
            text.contains("more rows") || text.contains("more groups"),
            "rows left out unsaid:\n{text}"
        );
        assert!(text.contains("rebalances, newest first"), "{text}");
        let name = if second.is_some() {
            "long_member"
        } else {
            "restart"
        };
        insta::assert_snapshot!(format!("table_budget_80x24_{name}"), terminal.backend());
    }
}

/// The watch cannot refresh the groups (a cluster outage): the table it last built stays,
/// marked as of when it is; a fresh view removes the mark.
#[test]
fn a_groups_table_not_refreshed_says_as_of_when() {
    let mut d = mid_stream();
    d.update(ViewEvent::Tick(at(64)));
    let text = screen(&render(&d, 80, 24));
    assert!(
        !text.contains("last known"),
        "two seconds old is current:\n{text}"
    );
    d.update(ViewEvent::Tick(at(90)));
    for (width, height) in [(80, 24), (140, 42)] {
        let text = screen(&render(&d, width, height));
        assert!(
            text.contains("last known at 18:31:02"),
            "{width}×{height}:\n{text}"
        );
    }
    d.update(ViewEvent::Groups(groups(
        91,
        &[("orderflow-analytics-4242", &[0, 1, 2])],
        1_010,
    )));
    let text = screen(&render(&d, 80, 24));
    assert!(!text.contains("last known"), "{text}");
}

/// An outage the view lived through is told among the notices, during it and after it: the
/// status line alone forgets it once the brokers answer again.
#[test]
fn an_outage_lived_through_stays_told() {
    let mut d = mid_stream();
    role(
        &mut d,
        "analytics",
        70,
        Activity::Connection(Connection::Unreachable {
            reason: "Connection refused".into(),
        }),
    );
    let during = screen(&render(&d, 140, 42));
    assert!(
        during.contains("no broker could be reached: Connection refused"),
        "{during}"
    );
    role(
        &mut d,
        "analytics",
        99,
        Activity::Connection(Connection::Ok),
    );
    let after = screen(&render(&d, 140, 42));
    assert!(
        after.contains("the brokers answer again, after 29.0\u{a0}s out of reach"),
        "{after}"
    );
    assert!(!after.contains("no notices"), "{after}");
}

/// A member of this terminal loses its partitions (its group's coordinator was killed) and
/// gets the same ones back ten seconds later: every group picture looks the same, and the
/// timeline tells it from the member's own account.
#[test]
fn a_member_that_gets_its_own_partitions_back_is_told() {
    use orderflow::report::activity::LostCause;
    let mut d = mid_stream();
    let same = || groups(70, &[("orderflow-analytics-4242", &[0, 1, 2])], 1_010);
    d.update(ViewEvent::Groups(same()));
    role(
        &mut d,
        "analytics",
        64,
        Activity::Revoked {
            partitions: vec![0, 1, 2],
            lost: Some(LostCause::SessionExpiredWhileUnreachable),
            uncommitted: Vec::new(),
            now_owned: Vec::new(),
        },
    );
    assign(&mut d, 74, &[0, 1, 2]);
    d.update(ViewEvent::Groups(groups(
        75,
        &[("orderflow-analytics-4242", &[0, 1, 2])],
        1_010,
    )));
    for (width, height) in [(80, 24), (140, 42)] {
        let text = screen(&render(&d, width, height));
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            flat.contains("p0,p1,p2 → analytics-4242 again (here), 10.0"),
            "{width}×{height}:\n{text}"
        );
        if height == 42 {
            assert!(flat.contains("− analytics-4242 lost p0,p1,p2"), "{text}");
        }
    }
}
