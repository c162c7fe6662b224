//! Nothing is lost: the built-in broker's outages (its `down`/`up` commands, librdkafka's
//! fault injection) against the real producer and consumer roles.

mod util;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;
use util::{
    Broker, Running, final_summary, json_lines, orderflow, read_topic, run_with_limit, text, unique,
};

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

/// Each partition's (committed offset of `group`, end offset), as any Kafka client sees them.
fn commits_and_ends(address: &str, topic: &str, group: &str) -> Vec<(Option<i64>, i64)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", address)
        .set("group.id", group)
        .create()
        .unwrap();
    let timeout = Duration::from_secs(10);
    let partitions = consumer
        .fetch_metadata(Some(topic), timeout)
        .unwrap()
        .topics()[0]
        .partitions()
        .len() as i32;
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(list, timeout).unwrap();
    (0..partitions)
        .map(|p| {
            let offset = match committed.find_partition(topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => Some(o),
                _ => None,
            };
            let (_, end) = consumer.fetch_watermarks(topic, p, timeout).unwrap();
            (offset, end)
        })
        .collect()
}

/// Fails if any partition of `topic` has a commit of `group` past its end.
fn assert_no_commit_past_the_end(address: &str, topic: &str, group: &str, when: &str) {
    let seen = commits_and_ends(address, topic, group);
    for (partition, (committed, end)) in seen.iter().enumerate() {
        if let Some(committed) = committed {
            assert!(
                committed <= end,
                "{when}: group {group} committed {committed} on partition {partition}, past its \
                 end {end} ({seen:?})"
            );
        }
    }
}

#[test]
fn outages_under_a_produce_stream_never_commit_past_a_partitions_end() {
    let mut broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let file_arg = file.to_str().unwrap();
    let mut producer = Running::spawn(&mut broker.orderflow(&[
        "produce", "--rate", "150", "--count", "2500", "--seed", "31",
    ]));
    let mut storage =
        Running::spawn(&mut broker.orderflow(&["storage", "--file", file_arg, "--json"]));
    let mut analytics = Running::spawn(&mut broker.orderflow(&["analytics", "--json"]));
    for member in [&storage, &analytics] {
        member.wait_for("partitions", LIMIT, |l| {
            util::owned(l).is_some_and(|o| !o.is_empty())
        });
    }
    let (address, topic) = (broker.address.clone(), broker.topic.clone());
    let check = |when: &str| {
        for group in ["storage", "analytics"] {
            assert_no_commit_past_the_end(&address, &topic, group, when);
        }
    };
    for round in 1..=3 {
        std::thread::sleep(Duration::from_secs(2));
        broker.command("down 2");
        // Sample through the outage's end and the reconnection that follows it.
        for sample in 0..8 {
            std::thread::sleep(Duration::from_millis(500));
            if sample >= 4 {
                check(&format!("after outage {round}"));
            }
        }
    }
    assert!(producer.wait(LIMIT).success(), "{}", producer.stderr());
    std::thread::sleep(Duration::from_secs(3));
    for member in [&mut storage, &mut analytics] {
        member.signal(Signal::SIGTERM);
        assert!(member.wait(LIMIT).success(), "{}", member.stderr());
    }
    check("after the members left");
    let verify = run_with_limit(orderflow().args(["audit", "verify", file_arg]), LIMIT);
    assert!(
        verify.status.success(),
        "audit verify: {}{}",
        text(&verify.stdout),
        text(&verify.stderr)
    );
}

/// A broker started on the address of one that died: it holds no group, and a member of the
/// old broker's group that reconnects to it must not commit the positions it read from the
/// old one (the new partitions end far below them). Kafka answers such a commit, from a
/// generation it never gave, with ILLEGAL_GENERATION.
#[test]
fn a_member_of_a_previous_broker_on_the_same_address_cannot_commit_into_the_new_one() {
    let listen = format!("127.0.0.1:{}", util::closed_port());
    let topic = unique("reused");
    let start = || {
        let broker =
            Running::spawn(orderflow().args(["broker", "--listen", &listen, "-t", &topic]));
        let started = Instant::now();
        while !broker
            .lines()
            .iter()
            .any(|l| l.starts_with("orderflow broker listening on"))
        {
            assert!(
                started.elapsed() < LIMIT,
                "the broker did not start: {}",
                broker.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        broker
    };
    let mut first = start();
    let client = |args: &[&str]| {
        let mut command = orderflow();
        command.args(["-b", &listen, "-t", &topic]).args(args);
        Running::spawn(&mut command)
    };
    let mut producer = client(&["produce", "--rate", "300"]);
    let analytics = client(&["analytics", "--json"]);
    analytics.wait_for("a commit", LIMIT, |l| {
        l.iter().any(|l| l["type"] == "committed")
    });
    // Records read since the last commit: positions the member has not committed yet.
    std::thread::sleep(Duration::from_millis(1500));
    first.kill();
    producer.kill();
    let second = start();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(12) {
        assert_no_commit_past_the_end(&listen, &topic, "analytics", "on the new broker");
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        second.stderr().contains("knows no such group"),
        "the new broker says why it refused the commit: {}",
        second.stderr()
    );
}
