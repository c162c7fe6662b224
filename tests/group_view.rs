//! The group view against a real development broker: two members of a group, started and
//! stopped as separate processes, and the view following who owns what, and the lag.

mod util;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use orderflow::config::KafkaSettings;
use orderflow::group_view::{GroupView, MembershipSource};
use orderflow::kafka::group_watch::GroupWatch;
use util::{Broker, Running};

const LIMIT: Duration = Duration::from_secs(60);

/// The members of `group` in the latest view, with what each owns.
fn members(view: &GroupView, group: &str) -> Vec<(String, Vec<i32>)> {
    view.groups
        .iter()
        .find(|g| g.group == group)
        .map(|g| {
            g.members
                .iter()
                .map(|m| (m.id.clone(), m.owns.clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn wait_for(
    latest: &Mutex<Option<GroupView>>,
    what: &str,
    ready: impl Fn(&GroupView) -> bool,
) -> GroupView {
    let started = Instant::now();
    loop {
        if let Some(view) = latest.lock().unwrap().as_ref()
            && ready(view)
        {
            return view.clone();
        }
        assert!(
            started.elapsed() < LIMIT,
            "waited {LIMIT:?} for {what}; last view: {:#?}",
            latest.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_group_table_follows_members_coming_and_going() {
    let broker = Broker::start();
    broker.produce(300, 1);
    let settings = KafkaSettings::new(&broker.address, &broker.topic, Vec::new()).unwrap();
    let latest = Arc::new(Mutex::new(None));
    let _watch = {
        let latest = Arc::clone(&latest);
        GroupWatch::start(&settings, move |view| *latest.lock().unwrap() = Some(view)).unwrap()
    };

    let member = |args: &[&str]| {
        let mut all = vec!["analytics", "-g", "watched", "--no-tui"];
        all.extend(args);
        Running::spawn(&mut broker.orderflow(&all))
    };
    let first = member(&[]);
    let view = wait_for(&latest, "one member owning every partition", |v| {
        let m = members(v, "watched");
        m.len() == 1 && m[0].1 == vec![0, 1, 2]
    });
    // The built-in broker cannot describe groups: membership comes from announcements.
    assert_eq!(view.membership, MembershipSource::Announcements);
    // Everything produced so far is read and committed: no lag left.
    wait_for(&latest, "the lag to drop to zero", |v| {
        v.groups
            .iter()
            .find(|g| g.group == "watched")
            .is_some_and(|g| g.total_lag(&v.low) == 0)
    });

    let mut second = member(&[]);
    wait_for(&latest, "two members splitting the partitions", |v| {
        let m = members(v, "watched");
        let mut all: Vec<i32> = m.iter().flat_map(|(_, owns)| owns.clone()).collect();
        all.sort();
        m.len() == 2 && m.iter().all(|(_, owns)| !owns.is_empty()) && all == vec![0, 1, 2]
    });

    second.signal(Signal::SIGTERM);
    assert!(second.wait(LIMIT).success());
    let view = wait_for(
        &latest,
        "the first member alone again with everything",
        |v| {
            let m = members(v, "watched");
            m.len() == 1 && m[0].1 == vec![0, 1, 2]
        },
    );
    // The role groups show once they have committed something; this one never ran here.
    assert!(view.groups.iter().all(|g| g.group != "storage"));
    drop(first);
}
