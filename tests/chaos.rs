//! Nothing is lost: the built-in broker's outages (its `down`/`up` commands, librdkafka's
//! fault injection) against the real producer and consumer roles.

mod util;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;
use util::{Broker, Running, final_summary, json_lines, read_topic, run_with_limit, text};

const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn a_broker_outage_while_producing_loses_and_repeats_nothing() {
    let mut broker = Broker::start();
    let mut producer = Running::spawn(&mut broker.orderflow(&[
        "produce", "--rate", "300", "--count", "3000", "--seed", "17",
    ]));
    std::thread::sleep(Duration::from_secs(2));
    broker.command("down 3");
    assert!(producer.wait(LIMIT).success(), "{}", producer.stderr());
    let stderr = producer.stderr();
    assert!(stderr.contains("cannot reach Kafka"), "{stderr}");
    assert!(stderr.contains("reachable again"), "{stderr}");
    assert!(stderr.contains("3,000 delivered, 0 failed"), "{stderr}");

    let records = read_topic(&broker.address, &broker.topic);
    assert_eq!(
        records.len(),
        3_000,
        "every event once: the idempotent producer repeats none"
    );
    let distinct: BTreeSet<_> = records.iter().map(|r| r.value.clone()).collect();
    assert_eq!(distinct.len(), 3_000);
}

#[test]
fn a_broker_that_never_returns_fails_the_producer_within_its_delivery_timeout() {
    let mut broker = Broker::start();
    let mut producer = Running::spawn(&mut broker.orderflow(&[
        "produce",
        "--rate",
        "200",
        "-X",
        "message.timeout.ms=4000",
    ]));
    std::thread::sleep(Duration::from_millis(1_500));
    broker.command("down");
    let down_at = Instant::now();
    let status = producer.wait(Duration::from_secs(60));
    let took = down_at.elapsed();
    let stderr = producer.stderr();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        took < Duration::from_secs(15),
        "stopped {took:?} after the outage began"
    );
    assert!(stderr.contains("events were not delivered: "), "{stderr}");
    assert!(
        stderr.contains("(not acknowledged within message.timeout.ms)"),
        "{stderr}"
    );
}

#[test]
fn consumers_ride_out_an_outage_and_the_audit_log_stays_exactly_once() {
    let mut broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let file_arg = file.to_str().unwrap();
    let mut producer = Running::spawn(&mut broker.orderflow(&[
        "produce", "--rate", "250", "--count", "3000", "--seed", "23",
    ]));
    let mut storage =
        Running::spawn(&mut broker.orderflow(&["storage", "--file", file_arg, "--json"]));
    let mut analytics = Running::spawn(&mut broker.orderflow(&["analytics", "--json"]));
    for member in [&storage, &analytics] {
        member.wait_for("partitions", LIMIT, |l| {
            util::owned(l).is_some_and(|o| !o.is_empty())
        });
    }
    std::thread::sleep(Duration::from_secs(2));
    broker.command("down 4");
    assert!(producer.wait(LIMIT).success(), "{}", producer.stderr());
    // Let the consumers catch up, then stop them cleanly.
    std::thread::sleep(Duration::from_secs(5));
    for member in [&mut storage, &mut analytics] {
        member.signal(Signal::SIGTERM);
        assert!(member.wait(LIMIT).success(), "{}", member.stderr());
    }
    let saw_outage = |lines: &[Value]| {
        lines
            .iter()
            .any(|l| l["type"] == "connection" && l["state"] == "unreachable")
    };
    assert!(saw_outage(&storage.json()), "storage reported the outage");

    // Whatever was not read before stopping is read now, from the committed offsets.
    let drain = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--exit-at-end", "--json"]);
        let output = run_with_limit(&mut broker.orderflow(&all), LIMIT);
        assert!(output.status.success(), "{}", text(&output.stderr));
        final_summary(&json_lines(&output))["records"]
            .as_u64()
            .unwrap()
    };
    drain(&["storage", "--file", file_arg]);
    let read_later = drain(&["analytics"]);
    let read_first = final_summary(&analytics.json())["records"]
        .as_u64()
        .unwrap();
    assert!(
        read_first + read_later >= 3_000,
        "analytics lost records: {read_first} + {read_later}"
    );

    let content = std::fs::read_to_string(&file).unwrap();
    let mut stored = BTreeSet::new();
    for line in content.lines() {
        let line: Value = serde_json::from_str(line).unwrap();
        let at = (
            line["partition"].as_i64().unwrap(),
            line["offset"].as_i64().unwrap(),
        );
        assert!(stored.insert(at), "{at:?} stored twice");
    }
    let expected: BTreeSet<(i64, i64)> = read_topic(&broker.address, &broker.topic)
        .iter()
        .map(|r| (r.partition as i64, r.offset))
        .collect();
    assert_eq!(
        stored, expected,
        "every record in the audit log exactly once"
    );
}

#[test]
fn an_outage_longer_than_the_session_says_what_happened_once() {
    // MEASURED.md, failure 4: the member is dropped while the cluster is away; that must read
    // as what it is (no crash, one line per kind of commit trouble), and nothing may be lost.
    let mut broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let file_arg = file.to_str().unwrap();
    let mut storage =
        Running::spawn(&mut broker.orderflow(&["storage", "--file", file_arg, "--json"]));
    storage.wait_for("partitions", LIMIT, |l| {
        util::owned(l).is_some_and(|o| o.len() == 3)
    });
    let mut producer = Running::spawn(&mut broker.orderflow(&[
        "produce", "--rate", "200", "--count", "4000", "--seed", "29",
    ]));
    std::thread::sleep(Duration::from_secs(3));
    // Longer than the members' 6 s session timeout.
    broker.command("down 10");
    assert!(producer.wait(LIMIT).success(), "{}", producer.stderr());
    let stored = || {
        std::fs::read_to_string(&file)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    let started = Instant::now();
    while stored() < 4_000 {
        assert!(started.elapsed() < LIMIT, "stored {} of 4,000", stored());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        storage.exited(),
        None,
        "storage exited: {}",
        storage.stderr()
    );
    storage.signal(Signal::SIGTERM);
    assert!(storage.wait(LIMIT).success(), "{}", storage.stderr());

    let lines = storage.json();
    let lost: Vec<&Value> = lines
        .iter()
        .filter(|l| l["type"] == "revoked" && l["lost"] == true)
        .collect();
    assert!(
        !lost.is_empty(),
        "the outage outlasted the session: {lines:#?}"
    );
    for l in &lost {
        assert_eq!(
            l["lost_because"], "session_expired_while_unreachable",
            "{l}"
        );
    }
    let commit_failures: Vec<&Value> = lines
        .iter()
        .filter(|l| l["type"] == "commit_failed")
        .collect();
    assert!(
        commit_failures.len() <= 2,
        "one line per kind of commit trouble, not one per retry: {commit_failures:#?}"
    );
    for l in lines.iter().filter(|l| l["type"] == "notice") {
        let message = l["message"].as_str().unwrap();
        assert!(!message.contains("crash"), "nothing crashed: {message}");
    }

    let verify = run_with_limit(util::orderflow().args(["audit", "verify", file_arg]), LIMIT);
    assert!(verify.status.success(), "{}", text(&verify.stdout));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().lines().count(),
        read_topic(&broker.address, &broker.topic).len(),
        "every record in the audit log exactly once"
    );
}
