//! A broker of a three-node Kafka cluster (RF 3, min ISR 2) dies under load and comes back:
//! the producer delivers every event, storage's audit log holds every record exactly once,
//! analytics reads on, no role exits, and the roles say in words what happened (MEASURED.md,
//! failure 1). Real Kafka only: the built-in broker is one node (its outages: tests/chaos.rs).
//!
//! ORDERFLOW_TEST_KAFKA_PORT pins the cluster's ports (see tests/util/kafka.rs).

mod util;

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;
use util::kafka::Kafka;
use util::{Broker, Running, final_summary, read_topic, run_with_limit, text, unique};

const LIMIT: Duration = Duration::from_secs(180);
const EVENTS: u64 = 60_000;

/// The lines of type `kind` that concern broker `node`.
fn about(lines: &[Value], kind: &str, node: usize) -> Vec<Value> {
    let node = node as i64;
    lines
        .iter()
        .filter(|l| l["type"] == kind)
        .filter(|l| match kind {
            "leaders" => l["moves"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["from"].as_i64() == Some(node)),
            _ => l["broker"].as_i64() == Some(node),
        })
        .cloned()
        .collect()
}

#[test]
fn a_partition_leader_killed_under_load_costs_no_event_no_record_and_no_role() {
    let Some(kafka) = Kafka::start(3, "failover") else {
        return;
    };
    let kafka: &'static Kafka = Box::leak(Box::new(kafka));
    let broker = Broker::on(kafka, &unique("failover"), 3);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let file_arg = file.to_str().unwrap();

    let mut storage =
        Running::spawn(&mut broker.orderflow(&["storage", "--file", file_arg, "--json"]));
    let mut analytics = Running::spawn(&mut broker.orderflow(&["analytics", "--json"]));
    for member in [&storage, &analytics] {
        member.wait_for("partitions", LIMIT, |l| {
            util::owned(l).is_some_and(|o| o.len() == 3)
        });
    }
    let count = EVENTS.to_string();
    let mut producer = Running::spawn(&mut broker.orderflow(&[
        "produce", "--rate", "2000", "--count", &count, "--seed", "31",
    ]));
    std::thread::sleep(Duration::from_secs(8));
    let victim = kafka.leader(&broker.topic, 1);
    kafka.kill(victim);
    let killed_at = Instant::now();
    std::thread::sleep(Duration::from_secs(15));
    kafka.restart(victim);
    eprintln!(
        "node {victim} (leader of partition 1) was down for {:.1} s",
        killed_at.elapsed().as_secs_f64()
    );

    assert!(producer.wait(LIMIT).success(), "{}", producer.stderr());
    let stderr = producer.stderr();
    assert!(stderr.contains("60,000 delivered, 0 failed"), "{stderr}");

    // Storage catches up: every event in the audit log.
    let started = Instant::now();
    let lines_in_file = || {
        std::fs::read_to_string(&file)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    while lines_in_file() < EVENTS as usize {
        assert!(
            started.elapsed() < LIMIT,
            "storage stored {} of {EVENTS}\n{}",
            lines_in_file(),
            storage.lines().join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // No role exited on its own along the way.
    for (name, member) in [("storage", &mut storage), ("analytics", &mut analytics)] {
        assert_eq!(
            member.exited(),
            None,
            "{name} exited during the failover\n{}\n{}",
            member.lines().join("\n"),
            member.stderr()
        );
    }
    for member in [&mut storage, &mut analytics] {
        member.signal(Signal::SIGTERM);
        assert!(member.wait(LIMIT).success(), "{}", member.stderr());
    }

    // Exactly once in the audit log, and as many lines as the topic has records.
    let verify = run_with_limit(util::orderflow().args(["audit", "verify", file_arg]), LIMIT);
    assert!(verify.status.success(), "{}", text(&verify.stdout));
    let topic = read_topic(&broker.address, &broker.topic);
    assert_eq!(
        topic.len() as u64,
        EVENTS,
        "the idempotent producer wrote each event once"
    );
    assert_eq!(lines_in_file(), topic.len());

    // Analytics read on: everything it owns is committed to the end (at least once: records
    // of partitions lost during the outage are read again).
    let analytics_lines = analytics.json();
    let last = final_summary(&analytics_lines);
    assert!(last["records"].as_u64().unwrap() >= EVENTS, "{last}");
    for partition in last["partitions"].as_array().unwrap() {
        assert_eq!(partition["lag"], 0, "{last}");
    }

    // Both say, in words, which broker went away and where partition 1's leader went.
    for (name, lines) in [("storage", storage.json()), ("analytics", analytics_lines)] {
        let unreachable = about(&lines, "broker", victim)
            .into_iter()
            .find(|l| l["state"] == "unreachable");
        let unreachable = unreachable.unwrap_or_else(|| {
            panic!("{name} did not say broker {victim} was unreachable:\n{lines:#?}")
        });
        assert!(
            unreachable["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("broker {victim} (127.0.0.1:")),
            "{unreachable}"
        );
        let moved = about(&lines, "leaders", victim);
        assert!(
            !moved.is_empty(),
            "{name} did not say the leaders of broker {victim} moved:\n{lines:#?}"
        );
        // Told once per change, not once per retry.
        assert!(
            about(&lines, "broker", victim)
                .iter()
                .filter(|l| l["state"] == "unreachable")
                .count()
                <= 2,
            "{lines:#?}"
        );
        let commit_failures = lines
            .iter()
            .filter(|l| l["type"] == "commit_failed")
            .count();
        assert!(
            commit_failures <= 3,
            "{name}: {commit_failures} commit_failed lines"
        );
    }
}
