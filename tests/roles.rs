//! The consumer roles against a real development broker: fan-out, malformed input, dead
//! letters, group membership and hand-over, crash safety of the audit log, clean shutdown.

#[path = "roles/commits.rs"]
mod commits;
#[path = "roles/errors.rs"]
mod errors;
#[path = "roles/names.rs"]
mod names;
#[path = "roles/poison.rs"]
mod poison;
mod util;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use orderflow::audit::AuditLine;
use orderflow::domain::event::OrderEvent;
use serde_json::Value;
use util::{
    Broker, Running, closed_port, final_summary, json_lines, orderflow, read_topic, run_with_limit,
    text,
};

const LIMIT: Duration = Duration::from_secs(120);

fn count(value: &Value) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("not a count: {value}"))
}

/// Runs a role with --exit-at-end --json to completion; returns its JSON lines.
fn drain(broker: &Broker, args: &[&str]) -> Vec<Value> {
    let mut all = args.to_vec();
    all.extend(["--exit-at-end", "--json"]);
    let output = run_with_limit(&mut broker.orderflow(&all), LIMIT);
    assert!(
        output.status.success(),
        "{args:?} failed\nstdout:\n{}\nstderr:\n{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    json_lines(&output)
}

/// Reads an audit log, checking that every line decodes with the documented format.
fn audit_lines(path: &std::path::Path) -> Vec<AuditLine> {
    let content = std::fs::read_to_string(path).unwrap();
    assert!(
        content.is_empty() || content.ends_with('\n'),
        "no torn tail"
    );
    content
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let parsed: AuditLine = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("line {} does not decode ({e}): {line}", i + 1));
            assert!(parsed.is_consistent(), "line {}: {line}", i + 1);
            parsed
        })
        .collect()
}

crate::on_both_brokers!(
    every_role_sees_every_event,
    malformed_records_are_counted_reported_and_survived,
    dead_letters_carry_the_record_and_where_it_came_from,
    members_of_a_group_split_the_partitions_and_take_over_when_one_leaves,
    a_rebalance_never_produces_false_violations,
    storage_killed_again_and_again_keeps_every_record_exactly_once,
    sigterm_commits_so_a_restarted_member_reads_nothing_twice,
    storage_repairs_a_torn_last_line,
    members_that_join_and_drain_hand_over_without_loss,
);

fn every_role_sees_every_event(broker: Broker) {
    broker.produce(3_000, 5);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let file_arg = file.to_str().unwrap().to_owned();

    // The three roles run at the same time, each in its own group: fan-out.
    let roles = [
        vec!["order-processor"],
        vec!["analytics"],
        vec!["storage", "--file", &file_arg],
    ];
    let outputs: Vec<Vec<Value>> = std::thread::scope(|s| {
        let handles: Vec<_> = roles
            .iter()
            .map(|args| s.spawn(|| drain(&broker, args)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let topic = read_topic(&broker.address, &broker.topic);
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    for record in &topic {
        let event = OrderEvent::parse(record.value.as_deref().unwrap()).unwrap();
        *statuses.entry(event.status.to_string()).or_default() += 1;
    }

    for lines in &outputs {
        let summary = final_summary(lines);
        assert_eq!(count(&summary["records"]), 3_000, "{summary}");
        assert_eq!(count(&summary["malformed"]), 0, "{summary}");
        for partition in summary["partitions"].as_array().unwrap() {
            assert_eq!(partition["lag"], 0, "drained and committed: {summary}");
        }
        // Every record carries the producer's timestamp, so every one was timed.
        let latency = &summary["latency"];
        assert_eq!(count(&latency["records"]), 3_000, "{summary}");
        let ms = |field: &str| latency[field].as_f64().unwrap();
        assert!(
            ms("max_ms") >= ms("p99_ms") && ms("p99_ms") >= ms("p50_ms") && ms("p50_ms") >= 0.0,
            "{summary}"
        );
    }
    let processor = final_summary(&outputs[0]);
    assert_eq!(count(&processor["valid"]), 3_000);
    assert_eq!(count(&processor["violations"]), 0);
    assert_eq!(count(&processor["dead_lettered"]), 0);

    let analytics = final_summary(&outputs[1]);
    for (status, n) in &statuses {
        assert_eq!(count(&analytics["statuses"][status]), *n, "{status}");
    }
    let sources: u64 = analytics["sources"]
        .as_object()
        .unwrap()
        .values()
        .map(count)
        .sum();
    assert_eq!(sources, 3_000);
    assert_eq!(count(&analytics["completed"]), statuses["DELIVERED"]);

    let storage = final_summary(&outputs[2]);
    assert_eq!(count(&storage["stored"]), 3_000);
    let lines = audit_lines(&file);
    let stored: BTreeSet<(i32, i64)> = lines.iter().map(|l| (l.partition, l.offset)).collect();
    let expected: BTreeSet<(i32, i64)> = topic.iter().map(|r| (r.partition, r.offset)).collect();
    assert_eq!(lines.len(), 3_000);
    assert_eq!(stored, expected);
    for line in &lines {
        let event = line.event.as_ref().expect("every record is an event");
        assert_eq!(line.key.as_deref(), Some(event.key().as_str()));
        assert!(line.kafka_timestamp.is_some());
    }
}

/// A malformed record (key, value) and the kind every role must report for it.
type MalformedCase = (Option<Vec<u8>>, Option<Vec<u8>>, &'static str);

/// The malformed matrix of the roles issue.
fn malformed_matrix() -> Vec<MalformedCase> {
    let good = OrderEvent::parse(
        br#"{"event_type":"ORDER_EVENT","order_id":"6f1c0a52-3d7e-4e55-9a43-2b7a1d9c8e10","user_id":"user_1","status":"PLACED","timestamp":"2026-11-21T18:30:05.123Z","source":"WEB"}"#,
    )
    .unwrap();
    let key = Some(good.key().as_bytes().to_vec());
    let with = |field: &str, value: Value| {
        let mut v: Value = serde_json::from_str(&good.to_json()).unwrap();
        v[field] = value;
        Some(v.to_string().into_bytes())
    };
    vec![
        (key.clone(), Some(b"hello, kafka".to_vec()), "not-json"),
        (key.clone(), Some(b"{}".to_vec()), "missing-field"),
        (key.clone(), Some(b"[]".to_vec()), "not-an-object"),
        (key.clone(), with("status", Value::from(3)), "wrong-type"),
        (
            key.clone(),
            with("status", Value::from("LOST")),
            "unknown-status",
        ),
        (
            key.clone(),
            with("source", Value::from("FAX")),
            "unknown-source",
        ),
        (key.clone(), Some(b"\xff\xfe{\"a\":1}".to_vec()), "not-utf8"),
        (key.clone(), Some(Vec::new()), "empty"),
        (key.clone(), None, "empty"),
        (None, Some(good.to_json().into_bytes()), "missing-key"),
        (key, Some(vec![b'x'; 1_000_000]), "not-json"),
    ]
}

fn malformed_records_are_counted_reported_and_survived(broker: Broker) {
    broker.produce(200, 8);
    let matrix = malformed_matrix();
    broker.send_raw(
        &matrix
            .iter()
            .map(|(k, v, _)| (k.clone(), v.clone()))
            .collect::<Vec<_>>(),
    );
    broker.produce(100, 9);
    let mut expected_kinds: BTreeMap<&str, u64> = BTreeMap::new();
    for (_, _, kind) in &matrix {
        *expected_kinds.entry(kind).or_default() += 1;
    }
    let total = 300 + matrix.len() as u64;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");

    for args in [
        vec!["order-processor"],
        vec!["analytics"],
        vec!["storage", "--file", file.to_str().unwrap()],
    ] {
        let lines = drain(&broker, &args);
        let summary = final_summary(&lines);
        assert_eq!(count(&summary["records"]), total, "{args:?}: {summary}");
        assert_eq!(
            count(&summary["malformed"]),
            matrix.len() as u64,
            "{args:?}: {summary}"
        );
        let kinds: BTreeMap<&str, u64> = summary["malformed_by_kind"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.as_str(), count(v)))
            .collect();
        assert_eq!(kinds, expected_kinds, "{args:?}");
        // Each one is reported on its own line too, with what is wrong.
        let reported: Vec<&Value> = lines.iter().filter(|l| l["type"] == "malformed").collect();
        assert_eq!(reported.len(), matrix.len(), "{args:?}");
        assert!(
            reported
                .iter()
                .all(|l| l["error"].as_str().is_some_and(|e| !e.is_empty()))
        );
    }

    // The audit log keeps malformed records losslessly, with the reason.
    let lines = audit_lines(&file);
    assert_eq!(lines.len() as u64, total);
    let malformed: Vec<&AuditLine> = lines.iter().filter(|l| l.event.is_none()).collect();
    assert_eq!(malformed.len(), matrix.len());
    let huge = malformed
        .iter()
        .find(|l| l.raw.as_ref().is_some_and(|r| r.len() == 1_000_000))
        .expect("the 1 MB value is stored whole");
    assert_eq!(huge.error_kind.as_deref(), Some("not-json"));
    let binary = malformed
        .iter()
        .find(|l| l.error_kind.as_deref() == Some("not-utf8"))
        .unwrap();
    assert!(binary.raw_base64.is_some() && binary.raw.is_none());
    let keyless = malformed
        .iter()
        .find(|l| l.error_kind.as_deref() == Some("missing-key"))
        .unwrap();
    assert_eq!(keyless.key, None);

    // End to end: the audit commands see the malformed records, and no gap.
    let file_arg = file.to_str().unwrap();
    let summary = run_with_limit(
        orderflow().args(["audit", "summary", "--json", file_arg]),
        LIMIT,
    );
    assert!(summary.status.success(), "{}", text(&summary.stderr));
    let summary: Value = serde_json::from_slice(&summary.stdout).unwrap();
    assert_eq!(
        count(&summary["malformed"]),
        matrix.len() as u64,
        "{summary:#}"
    );
    let by_kind: BTreeMap<&str, u64> = summary["malformed_by_kind"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.as_str(), count(v)))
        .collect();
    assert_eq!(by_kind, expected_kinds);
    let verify = run_with_limit(
        orderflow().args(["audit", "verify", "--json", file_arg]),
        LIMIT,
    );
    let report: Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(verify.status.code(), Some(0));
    assert!(
        report["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["missing"] == 0),
        "no gaps: {report:#}"
    );
}

fn dead_letters_carry_the_record_and_where_it_came_from(broker: Broker) {
    broker.produce(300, 11);
    // Lifecycle violations, each a valid event: an order that starts SHIPPED, one that skips
    // CONFIRMED, one that repeats PLACED, one that goes back.
    let event = |id: u128, status: &str| {
        let order = uuid::Uuid::from_u128(id);
        let json = format!(
            r#"{{"event_type":"ORDER_EVENT","order_id":"{order}","user_id":"user_9","status":"{status}","timestamp":"2026-11-21T18:30:05.123Z","source":"API"}}"#
        );
        (
            Some(order.hyphenated().to_string().into_bytes()),
            Some(json.into_bytes()),
        )
    };
    broker.send_raw(&[
        event(1, "SHIPPED"),
        event(2, "PLACED"),
        event(2, "SHIPPED"),
        event(3, "PLACED"),
        event(3, "PLACED"),
        event(4, "PLACED"),
        event(4, "CONFIRMED"),
        event(4, "PLACED"),
        (Some(b"k".to_vec()), Some(b"{oops".to_vec())),
    ]);
    let lines = drain(&broker, &["order-processor"]);
    let summary = final_summary(&lines);
    assert_eq!(count(&summary["violations"]), 4, "{summary}");
    assert_eq!(count(&summary["malformed"]), 1);
    assert_eq!(count(&summary["dead_lettered"]), 5);
    let kinds = &summary["violations_by_kind"];
    for kind in [
        "first-not-placed",
        "skipped-status",
        "duplicate-status",
        "went-backwards",
    ] {
        assert_eq!(kinds[kind], 1, "{kind}: {summary}");
    }

    let source: HashMap<(i32, i64), _> = read_topic(&broker.address, &broker.topic)
        .into_iter()
        .map(|r| ((r.partition, r.offset), r))
        .collect();
    let dead = read_topic(&broker.address, &format!("{}.dlq", broker.topic));
    assert_eq!(dead.len(), 5);
    let mut reasons = BTreeSet::new();
    for letter in &dead {
        let header = |name: &str| {
            letter
                .headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("no header {name} in {:?}", letter.headers))
        };
        assert_eq!(header("orderflow.source.topic"), broker.topic);
        assert_eq!(header("orderflow.group"), broker.group("order-processor"));
        assert!(!header("orderflow.error").is_empty());
        let origin = (
            header("orderflow.source.partition").parse::<i32>().unwrap(),
            header("orderflow.source.offset").parse::<i64>().unwrap(),
        );
        let original = &source[&origin];
        assert_eq!(
            letter.value, original.value,
            "the value is kept byte for byte"
        );
        assert_eq!(letter.key, original.key);
        header("orderflow.source.timestamp").parse::<i64>().unwrap();
        reasons.insert(header("orderflow.reason"));
    }
    assert_eq!(
        reasons,
        BTreeSet::from(
            [
                "first-not-placed",
                "skipped-status",
                "duplicate-status",
                "went-backwards",
                "not-json"
            ]
            .map(String::from)
        )
    );
}

fn member(broker: &Broker, role: &str, group: &str) -> Running {
    Running::spawn(&mut broker.orderflow(&[role, "-g", group, "--json"]))
}

fn members_of_a_group_split_the_partitions_and_take_over_when_one_leaves(broker: Broker) {
    broker.produce(100, 3);
    let first = member(&broker, "analytics", "pair");
    first.wait_for("the first member to own all", LIMIT, |lines| {
        util::owned(lines) == Some(vec![0, 1, 2])
    });
    let mut second = member(&broker, "analytics", "pair");
    let started = Instant::now();
    let split_after;
    loop {
        let (a, b) = (first.owned(), second.owned());
        if let (Some(a), Some(b)) = (a, b)
            && !a.is_empty()
            && !b.is_empty()
        {
            let union: BTreeSet<i64> = a.iter().chain(&b).copied().collect();
            let overlap = a.iter().any(|p| b.contains(p));
            if union == BTreeSet::from([0, 1, 2]) && !overlap {
                split_after = started.elapsed();
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the two members never split the partitions: {:?} / {:?}",
            first.owned(),
            second.owned()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    second.signal(Signal::SIGTERM);
    let left = Instant::now();
    assert!(second.wait(LIMIT).success(), "{}", second.stderr());
    first.wait_for(
        "the first member to take all back",
        Duration::from_secs(20),
        |lines| util::owned(lines) == Some(vec![0, 1, 2]),
    );
    let took = left.elapsed();
    eprintln!(
        "{}: a second member got partitions {:.1} s after it started; after it left, the \
         first owned all again in {:.1} s",
        broker.kind(),
        split_after.as_secs_f64(),
        took.as_secs_f64()
    );
    assert!(took < Duration::from_secs(10), "took over in {took:?}");
}

fn a_rebalance_never_produces_false_violations(broker: Broker) {
    broker.produce(500, 21);
    let mut producer =
        Running::spawn(&mut broker.orderflow(&["produce", "--rate", "300", "--seed", "22"]));
    let mut a = member(&broker, "order-processor", "rebalancing");
    a.wait_for("a to own all", LIMIT, |l| {
        util::owned(l) == Some(vec![0, 1, 2])
    });
    std::thread::sleep(Duration::from_secs(2));
    // B joins: partitions move to it, and it must rebuild their orders before processing.
    let mut b = member(&broker, "order-processor", "rebalancing");
    b.wait_for("b to get partitions", LIMIT, |l| {
        util::owned(l).is_some_and(|o| !o.is_empty())
    });
    std::thread::sleep(Duration::from_secs(2));
    // A leaves: everything moves to B.
    a.signal(Signal::SIGTERM);
    assert!(a.wait(LIMIT).success());
    b.wait_for("b to own all", LIMIT, |l| {
        util::owned(l) == Some(vec![0, 1, 2])
    });
    std::thread::sleep(Duration::from_secs(1));
    producer.signal(Signal::SIGTERM);
    assert!(producer.wait(LIMIT).success(), "{}", producer.stderr());
    // Let B finish what was produced, then stop it.
    std::thread::sleep(Duration::from_secs(2));
    b.signal(Signal::SIGTERM);
    assert!(b.wait(LIMIT).success());

    let (sa, sb) = (final_summary(&a.json()), final_summary(&b.json()));
    assert_eq!(
        count(&sa["violations"]) + count(&sb["violations"]),
        0,
        "{sa}\n{sb}"
    );
    assert!(count(&sb["records"]) > 0 && count(&sa["records"]) > 0);
    let rebuilt = b
        .json()
        .iter()
        .any(|l| l["type"] == "notice" && l["message"].as_str().unwrap().contains("rebuilt"));
    assert!(
        rebuilt,
        "b rebuilt the state of the partitions it was given"
    );
}

fn storage_killed_again_and_again_keeps_every_record_exactly_once(broker: Broker) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let file_arg = file.to_str().unwrap();
    let mut producer = Running::spawn(&mut broker.orderflow(&[
        "produce", "--rate", "700", "--count", "20000", "--seed", "4",
    ]));
    let storage =
        || Running::spawn(&mut broker.orderflow(&["storage", "--file", file_arg, "--json"]));
    for (round, pause) in [700u64, 1300, 400].into_iter().enumerate() {
        let mut victim = storage();
        victim.wait_for("storage to get partitions", LIMIT, |l| {
            util::owned(l).is_some_and(|o| !o.is_empty())
        });
        std::thread::sleep(Duration::from_millis(pause));
        victim.kill();
        let written = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        eprintln!("round {round}: killed after {pause} ms, file has {written} bytes");
    }
    assert!(producer.wait(LIMIT).success(), "{}", producer.stderr());

    let lines = drain(&broker, &["storage", "--file", file_arg]);
    assert!(final_summary(&lines)["records"].as_u64().is_some());
    let stored = audit_lines(&file);
    let mut seen = BTreeSet::new();
    for line in &stored {
        assert!(
            seen.insert((line.partition, line.offset)),
            "partition {} offset {} stored twice",
            line.partition,
            line.offset
        );
    }
    let expected: BTreeSet<(i32, i64)> = read_topic(&broker.address, &broker.topic)
        .iter()
        .map(|r| (r.partition, r.offset))
        .collect();
    assert_eq!(expected.len(), 20_000);
    assert_eq!(seen, expected, "every record exactly once");

    // And orderflow's own check of the file agrees.
    let verify = run_with_limit(
        orderflow().args(["audit", "verify", "--json", file_arg]),
        LIMIT,
    );
    let report: Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(verify.status.code(), Some(0), "{report:#}");
    assert_eq!(report["ok"], true);
    assert_eq!(count(&report["records"]), 20_000);
}

fn sigterm_commits_so_a_restarted_member_reads_nothing_twice(broker: Broker) {
    let mut producer =
        Running::spawn(&mut broker.orderflow(&["produce", "--rate", "400", "--seed", "6"]));
    let mut first = member(&broker, "analytics", "restart");
    first.wait_for("assignment", LIMIT, |l| {
        util::owned(l) == Some(vec![0, 1, 2])
    });
    std::thread::sleep(Duration::from_millis(2_500));
    first.signal(Signal::SIGTERM);
    assert!(first.wait(LIMIT).success(), "{}", first.stderr());
    let read_first = count(&final_summary(&first.json())["records"]);

    std::thread::sleep(Duration::from_millis(500));
    producer.signal(Signal::SIGTERM);
    assert!(producer.wait(LIMIT).success(), "{}", producer.stderr());
    let produced = read_topic(&broker.address, &broker.topic).len() as u64;

    let lines = drain(&broker, &["analytics", "-g", "restart"]);
    let read_second = count(&final_summary(&lines)["records"]);
    assert!(
        read_first > 0 && read_second > 0,
        "{read_first} / {read_second}"
    );
    assert_eq!(
        read_first + read_second,
        produced,
        "the restarted member reads exactly what the first one had not"
    );
}

#[test]
fn a_consumer_without_a_broker_says_so_quickly() {
    let address = format!("127.0.0.1:{}", closed_port());
    let started = Instant::now();
    let output = run_with_limit(
        orderflow().args(["-b", &address, "analytics"]),
        Duration::from_secs(30),
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    // As produce does (it said so in 0.2-1.5 s; consumers took 10 s).
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        stderr.contains(&address)
            && stderr.contains("Connection refused")
            && stderr.contains("orderflow broker"),
        "{stderr}"
    );
}

#[test]
fn two_storage_processes_cannot_share_a_file() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let first = Running::spawn(&mut broker.orderflow(&[
        "storage",
        "--file",
        file.to_str().unwrap(),
        "--json",
    ]));
    first.wait_for("the first storage to join", LIMIT, |l| {
        l.iter().any(|l| l["type"] == "joined")
    });
    let output = run_with_limit(
        &mut broker.orderflow(&["storage", "--file", file.to_str().unwrap()]),
        LIMIT,
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("in use by another `orderflow storage`"),
        "{stderr}"
    );
}

fn storage_repairs_a_torn_last_line(broker: Broker) {
    broker.produce(50, 12);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let file_arg = file.to_str().unwrap();
    drain(&broker, &["storage", "--file", file_arg, "-g", "first"]);
    let complete = std::fs::read(&file).unwrap();
    // A crash in the middle of a write leaves half a line.
    let mut torn = complete.clone();
    torn.extend_from_slice(&complete[..40]);
    std::fs::write(&file, &torn).unwrap();
    broker.produce(50, 13);

    let lines = drain(&broker, &["storage", "--file", file_arg, "-g", "first"]);
    let repaired = lines.iter().any(|l| {
        l["type"] == "notice" && l["message"].as_str().unwrap().contains("torn last line")
    });
    assert!(repaired, "{lines:#?}");
    assert_eq!(count(&final_summary(&lines)["stored"]), 50);
    let stored = audit_lines(&file);
    assert_eq!(stored.len(), 100);
}

fn members_that_join_and_drain_hand_over_without_loss(broker: Broker) {
    broker.produce(6_000, 31);
    let drain_member = || {
        Running::spawn(&mut broker.orderflow(&[
            "order-processor",
            "-g",
            "handover",
            "--work-ms",
            "3",
            "--exit-at-end",
            "--json",
        ]))
    };
    let mut first = drain_member();
    first.wait_for("the first member to start reading", LIMIT, |l| {
        util::owned(l).is_some_and(|o| !o.is_empty())
    });
    std::thread::sleep(Duration::from_secs(2));
    // The second member joins while the first is busy: partitions move between them, and
    // neither may stop while the other still has records to read.
    let mut second = drain_member();
    assert!(first.wait(LIMIT).success(), "{}", first.stderr());
    assert!(second.wait(LIMIT).success(), "{}", second.stderr());
    let (a, b) = (final_summary(&first.json()), final_summary(&second.json()));
    // The second member must have been given partitions. Whether any records were left on
    // them depends on how long its join took: on a starved machine the first member can read
    // a partition to its end before handing it over (seen once: p0 handed over at its end).
    let handed_over = b["partitions"].as_array().is_some_and(|p| !p.is_empty());
    assert!(handed_over, "the second member got partitions: {b}");
    // None skipped. Twice is allowed (at-least-once) but must stay rare: each member commits
    // before it hands partitions over, so only a commit the coordinator refused throughout
    // its retries (a machine starved of CPU) leaves a few records for the next owner to
    // redo. An eager hand-over on this broker repeated over a thousand.
    let processed = count(&a["records"]) + count(&b["records"]);
    assert!(
        (6_000..=6_060).contains(&processed),
        "{processed} records processed for 6,000 produced:\n{a}\n{b}"
    );
    assert_eq!(count(&a["violations"]) + count(&b["violations"]), 0);
}

#[test]
fn storage_refuses_a_log_from_an_earlier_broker() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let file_arg = file.to_str().unwrap();
    let topic = util::unique("reborn");
    {
        let broker = Broker::start_with(&topic, 3);
        broker.produce(100, 1);
        drain(&broker, &["storage", "--file", file_arg]);
    }
    // A restarted development broker starts empty: offsets begin again at 0 and mean other
    // records. Skipping "what the file already has" would drop them silently.
    let broker = Broker::start_with(&topic, 3);
    broker.produce(500, 2);
    let before = std::fs::read(&file).unwrap();
    let output = run_with_limit(
        &mut broker.orderflow(&["storage", "--file", file_arg, "--exit-at-end"]),
        LIMIT,
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("does not match topic"), "{stderr}");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        before,
        "the file is left as it was"
    );
}

crate::on_both_brokers!(
    the_joined_line_says_the_group_protocol_and_assignor,
    kip848_members_split_the_partitions_and_hand_over,
);

/// The protocol and assignor a member uses, in its `joined` line; under KIP-848 the role
/// drains as under the classic protocol, and on the built-in broker it is told what the
/// mock's KIP-848 gets wrong.
fn the_joined_line_says_the_group_protocol_and_assignor(broker: Broker) {
    broker.produce(300, 41);
    let joined = |lines: &[Value]| -> Value {
        lines
            .iter()
            .find(|l| l["type"] == "joined")
            .cloned()
            .expect("a joined line")
    };
    let classic = drain(&broker, &["analytics", "-g", "classic"]);
    assert_eq!(joined(&classic)["group_protocol"], "classic");
    assert_eq!(joined(&classic)["assignor"], "cooperative-sticky");

    let started = Instant::now();
    let kip848 = drain(
        &broker,
        &["analytics", "-g", "kip848", "-X", "group.protocol=consumer"],
    );
    eprintln!(
        "{}: a KIP-848 member drained 300 events in {:.1} s",
        broker.kind(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(joined(&kip848)["group_protocol"], "consumer");
    assert_eq!(
        joined(&kip848)["assignor"],
        Value::Null,
        "the broker's choice"
    );
    assert_eq!(count(&final_summary(&kip848)["records"]), 300);
    let notice = kip848
        .iter()
        .filter(|l| l["type"] == "notice")
        .filter_map(|l| l["message"].as_str())
        .find(|m| m.contains("built-in broker's KIP-848 is partial"));
    assert_eq!(
        notice.is_some(),
        !broker.is_kafka(),
        "the notice is the built-in broker's alone: {notice:?}"
    );
}

/// Two KIP-848 members split the partitions; when one leaves, the other takes them all.
fn kip848_members_split_the_partitions_and_hand_over(broker: Broker) {
    broker.produce(100, 43);
    let member = || {
        Running::spawn(&mut broker.orderflow(&[
            "analytics",
            "-g",
            "kip848-pair",
            "--json",
            "-X",
            "group.protocol=consumer",
        ]))
    };
    let mut first = member();
    first.wait_for("the first member to own all", LIMIT, |lines| {
        util::owned(lines) == Some(vec![0, 1, 2])
    });
    let mut second = member();
    let started = Instant::now();
    first.wait_for("the partitions to be split", LIMIT, |_| {
        match (first.owned(), second.owned()) {
            (Some(a), Some(b)) if !a.is_empty() && !b.is_empty() => {
                let union: BTreeSet<i64> = a.iter().chain(&b).copied().collect();
                union == BTreeSet::from([0, 1, 2]) && !a.iter().any(|p| b.contains(p))
            }
            _ => false,
        }
    });
    let split = started.elapsed();
    if let Some(kafka) = broker.kafka {
        // Kafka's own tools see a group of type Consumer (KIP-848), not Classic.
        let output = kafka
            .tool("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand")
            .args(["--list", "--type"])
            .output()
            .expect("kafka-consumer-groups");
        let listed = text(&output.stdout);
        let group = broker.group("kip848-pair");
        assert!(
            listed
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>() == [group.as_str(), "Consumer"]),
            "{group} is a consumer-protocol group:\n{listed}"
        );
    }
    second.signal(Signal::SIGTERM);
    let left = Instant::now();
    assert!(second.wait(LIMIT).success(), "{}", second.stderr());
    first.wait_for(
        "the first member to take all back",
        Duration::from_secs(20),
        |lines| util::owned(lines) == Some(vec![0, 1, 2]),
    );
    eprintln!(
        "{}: KIP-848: a second member got partitions {:.1} s after it started; after it left, \
         the first owned all again in {:.1} s",
        broker.kind(),
        split.as_secs_f64(),
        left.elapsed().as_secs_f64()
    );
    first.signal(Signal::SIGTERM);
    assert!(first.wait(LIMIT).success(), "{}", first.stderr());
}

/// MEASURED.md failure 2, the dead-letter side: order-processor on a cluster without the
/// dead-letter topic (and auto-create on, Kafka's default) starts, and its first dead
/// letter lands in the topic the cluster created.
#[test]
fn order_processor_without_its_dead_letter_topic_works_on_kafka() {
    let Some(broker) =
        Broker::kafka_without_dead_letters("order_processor_without_its_dead_letter_topic")
    else {
        return;
    };
    broker.produce(20, 45);
    broker.send_raw(&[(Some(b"k".to_vec()), Some(b"not json".to_vec()))]);
    let lines = drain(&broker, &["order-processor"]);
    let summary = final_summary(&lines);
    assert_eq!(count(&summary["records"]), 21);
    assert_eq!(count(&summary["dead_lettered"]), 1);
    let dlq = format!("{}.dlq", broker.topic);
    assert!(
        lines.iter().any(|l| l["type"] == "notice"
            && l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(&format!("dead-letter topic {dlq} did not exist")))),
        "says the cluster created the dead-letter topic"
    );
    assert_eq!(read_topic(&broker.address, &dlq).len(), 1);
}

/// A property librdkafka refuses under KIP-848 is refused before any connection, as the
/// user's own -X, with where that setting lives instead.
#[test]
fn a_property_refused_under_kip848_is_named_as_the_users() {
    let address = format!("127.0.0.1:{}", closed_port());
    for key in ["session.timeout.ms", "heartbeat.interval.ms"] {
        let property = format!("{key}=3000");
        let output = run_with_limit(
            orderflow().args([
                "-b",
                &address,
                "-X",
                "group.protocol=consumer",
                "-X",
                &property,
                "analytics",
                "--no-tui",
            ]),
            Duration::from_secs(30),
        );
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "your -X {key} cannot be used with -X group.protocol=consumer"
            )),
            "{stderr}"
        );
        assert!(stderr.contains("the broker sets"), "{stderr}");
    }
}

/// `demo --no-tui` until Ctrl-C: every role reads what the producer delivered. Returns the
/// stdout and stderr.
fn run_demo(command: &mut std::process::Command) -> (String, String) {
    let mut demo = Running::spawn(command.args(["--no-tui", "--rate", "100"]));
    std::thread::sleep(Duration::from_secs(8));
    demo.signal(Signal::SIGINT);
    let status = demo.wait(LIMIT);
    let (stdout, stderr) = (demo.lines().join("\n"), demo.stderr());
    assert!(status.success(), "{stdout}\n{stderr}");
    let delivered = stdout
        .lines()
        .find_map(|l| l.strip_prefix("producer: "))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|d| d.strip_suffix(" delivered"))
        .map(|d| d.replace(',', "").parse::<u64>().unwrap())
        .unwrap_or_else(|| panic!("no producer line in\n{stdout}"));
    assert!(delivered > 100, "{stdout}");
    for role in ["order-processor", "analytics", "storage"] {
        let line = stdout
            .lines()
            .find(|l| l.contains(&format!("[{role}] final: ")))
            .unwrap_or_else(|| panic!("no summary of {role} in\n{stdout}"));
        assert!(
            line.contains(&format!(
                "{} records",
                orderflow::report::human::count(delivered)
            )),
            "{role} read every delivered event: {line}\n{stdout}"
        );
    }
    (stdout, stderr)
}

#[test]
fn the_demo_runs_the_platform_on_its_own_broker() {
    let (_, stderr) = run_demo(orderflow().args(["demo", "--listen", "127.0.0.1:0"]));
    assert!(stderr.contains("its own broker at 127.0.0.1:"), "{stderr}");
}

/// `demo -b` runs the producer and the three roles on that cluster, and starts no broker.
#[test]
fn the_demo_with_b_runs_on_that_cluster() {
    let Some(broker) = Broker::kafka("the_demo_with_b_runs_on_that_cluster") else {
        return;
    };
    let (_, stderr) = run_demo(&mut broker.orderflow(&["demo"]));
    assert!(stderr.contains("no built-in broker started"), "{stderr}");
    assert!(
        stderr.contains(&format!("the cluster at {}", broker.address)),
        "{stderr}"
    );

    let refused = run_with_limit(
        &mut broker.orderflow(&["demo", "--listen", "127.0.0.1:0"]),
        LIMIT,
    );
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains("--listen is the demo's own broker's"));
}

#[test]
fn a_deleted_topic_stops_a_role_saying_so() {
    // Real Kafka only: the built-in broker recreates a topic on first use.
    let Some(broker) = Broker::kafka("a_deleted_topic_stops_a_role_saying_so") else {
        return;
    };
    broker.produce(200, 3);
    let mut analytics = Running::spawn(&mut broker.orderflow(&["analytics", "--json"]));
    analytics.wait_for("partitions", LIMIT, |l| {
        util::owned(l).is_some_and(|o| o.len() == 3)
    });
    let kafka = broker.kafka.expect("real Kafka");
    let deleted = kafka
        .tool("org.apache.kafka.tools.TopicCommand")
        .args(["--delete", "--topic", &broker.topic])
        .output()
        .expect("kafka-topics");
    assert!(deleted.status.success(), "{}", text(&deleted.stderr));
    // librdkafka notices within its metadata refresh; the role confirms it with the cluster
    // for 15 s before it gives up (a restarting broker may briefly not know a topic).
    let status = analytics.wait(Duration::from_secs(180));
    let stderr = analytics.stderr();
    assert_eq!(status.code(), Some(1), "{stderr}");
    let words = format!("topic {} no longer exists", broker.topic);
    assert_eq!(stderr.matches(&words).count(), 1, "{stderr}");
}

crate::on_both_brokers!(
    storage_stops_when_its_file_is_removed,
    storage_stops_when_its_file_is_truncated,
    storage_stops_when_its_file_is_replaced,
    storage_rereads_what_the_group_committed_past_its_file,
    storage_rereads_a_torn_last_line_whose_record_was_committed,
);

/// The file holds every record of the topic exactly once, and `audit verify` agrees.
fn assert_holds_the_topic(broker: &Broker, file: &std::path::Path, expected: usize) {
    let mut seen = BTreeSet::new();
    for line in audit_lines(file) {
        assert!(
            seen.insert((line.partition, line.offset)),
            "partition {} offset {} stored twice",
            line.partition,
            line.offset
        );
    }
    let topic: BTreeSet<(i32, i64)> = read_topic(&broker.address, &broker.topic)
        .iter()
        .map(|r| (r.partition, r.offset))
        .collect();
    assert_eq!(topic.len(), expected);
    let missing: Vec<_> = topic.difference(&seen).take(5).collect();
    assert_eq!(seen.len(), expected, "first missing: {missing:?}");
    assert_eq!(seen, topic, "every record exactly once");
    let verify = run_with_limit(
        orderflow().args(["audit", "verify", "--json", file.to_str().unwrap()]),
        LIMIT,
    );
    let report: Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(verify.status.code(), Some(0), "{report:#}");
    assert_eq!(count(&report["records"]), expected as u64);
}

/// How the audit log is changed under a running storage.
#[derive(Clone, Copy, Debug)]
enum Tamper {
    Remove,
    Truncate,
    /// An older copy (its first lines) put in its place, as a restore from a backup would.
    Replace,
}

/// Changes the audit log while storage writes to it: storage must stop with an error that
/// names the file and the change, without committing the lines the file does not hold; a
/// restarted storage then stores every record exactly once.
fn storage_stops_when_its_file_is_changed(broker: Broker, tamper: Tamper, says: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let file_arg = file.to_str().unwrap();
    let mut producer = Running::spawn(&mut broker.orderflow(&[
        "produce", "--rate", "800", "--count", "6000", "--seed", "21",
    ]));
    let mut storage =
        Running::spawn(&mut broker.orderflow(&["storage", "--file", file_arg, "--json"]));
    storage.wait_for("storage to commit", LIMIT, |lines| {
        lines.iter().any(|l| l["type"] == "committed")
    });
    match tamper {
        Tamper::Remove => std::fs::remove_file(&file).unwrap(),
        Tamper::Truncate => std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(0)
            .unwrap(),
        Tamper::Replace => {
            let content = std::fs::read_to_string(&file).unwrap();
            let older: String = content.split_inclusive('\n').take(10).collect();
            let copy = dir.path().join("backup.jsonl");
            std::fs::write(&copy, older).unwrap();
            std::fs::rename(&copy, &file).unwrap();
        }
    }
    let status = storage.wait(LIMIT);
    let stderr = storage.stderr();
    assert!(
        !status.success(),
        "storage went on after {tamper:?}: {stderr}"
    );
    assert!(
        stderr.contains(file_arg) && stderr.contains(says),
        "{stderr}"
    );
    assert!(stderr.contains("Start storage again"), "{stderr}");
    let summary = final_summary(&storage.json());
    assert!(producer.wait(LIMIT).success(), "{}", producer.stderr());

    let lines = drain(&broker, &["storage", "--file", file_arg]);
    let reread = lines
        .iter()
        .any(|l| l["type"] == "notice" && l["message"].as_str().unwrap().contains("re-read"));
    assert!(reread, "the restart re-read what was committed: {lines:#?}");
    assert_holds_the_topic(&broker, &file, 6_000);
    eprintln!("{tamper:?}: the stopped storage's final summary: {summary}");
}

fn storage_stops_when_its_file_is_removed(broker: Broker) {
    storage_stops_when_its_file_is_changed(broker, Tamper::Remove, "was removed");
}

fn storage_stops_when_its_file_is_truncated(broker: Broker) {
    storage_stops_when_its_file_is_changed(broker, Tamper::Truncate, "was truncated");
}

fn storage_stops_when_its_file_is_replaced(broker: Broker) {
    storage_stops_when_its_file_is_changed(broker, Tamper::Replace, "was replaced");
}

/// The file was swapped for an older copy while storage was stopped: the group has committed
/// past what the file holds, and storage re-reads the difference from Kafka.
fn storage_rereads_what_the_group_committed_past_its_file(broker: Broker) {
    broker.produce(300, 22);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let file_arg = file.to_str().unwrap();
    drain(&broker, &["storage", "--file", file_arg]);
    let content = std::fs::read_to_string(&file).unwrap();
    let older: String = content.split_inclusive('\n').take(100).collect();
    std::fs::write(&file, older).unwrap();
    broker.produce(200, 23);

    let lines = drain(&broker, &["storage", "--file", file_arg]);
    let notices: Vec<&str> = lines
        .iter()
        .filter(|l| l["type"] == "notice")
        .filter_map(|l| l["message"].as_str())
        .filter(|m| m.contains("were committed without being in the file"))
        .collect();
    assert!(!notices.is_empty(), "{lines:#?}");
    assert_eq!(count(&final_summary(&lines)["stored"]), 400);
    assert_holds_the_topic(&broker, &file, 500);
}

/// A crash tore the last line, but its record's offset had been committed (the fsync made
/// part of the line durable, and the commit went out): the record is re-read, not lost.
fn storage_rereads_a_torn_last_line_whose_record_was_committed(broker: Broker) {
    broker.produce(60, 24);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let file_arg = file.to_str().unwrap();
    drain(&broker, &["storage", "--file", file_arg]);
    let mut content = std::fs::read(&file).unwrap();
    // Cut the last line in its middle.
    content.truncate(content.len() - 30);
    std::fs::write(&file, &content).unwrap();

    let lines = drain(&broker, &["storage", "--file", file_arg]);
    let messages: Vec<&str> = lines
        .iter()
        .filter(|l| l["type"] == "notice")
        .filter_map(|l| l["message"].as_str())
        .collect();
    assert!(
        messages.iter().any(|m| m.contains("torn last line")),
        "{messages:#?}"
    );
    assert!(
        !messages.iter().any(|m| m.contains("never committed")),
        "{messages:#?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("re-read 1 records")),
        "{messages:#?}"
    );
    assert_eq!(count(&final_summary(&lines)["stored"]), 1);
    assert_holds_the_topic(&broker, &file, 60);
}

/// Writing fails (a full disk; /dev/full answers every write with ENOSPC): storage stops, and
/// neither its summary nor the group claims that anything was stored.
#[test]
fn storage_on_a_full_disk_claims_nothing_was_stored() {
    let broker = Broker::start();
    broker.produce(300, 25);
    let output = run_with_limit(
        &mut broker.orderflow(&["storage", "--file", "/dev/full", "--exit-at-end", "--json"]),
        LIMIT,
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    let lines = json_lines(&output);
    assert_eq!(count(&final_summary(&lines)["stored"]), 0, "{lines:#?}");
    assert!(
        !lines.iter().any(|l| l["type"] == "committed"),
        "nothing may be committed: {lines:#?}"
    );
    // The group has no commit: a storage with a real file stores all 300 records.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let lines = drain(&broker, &["storage", "--file", file.to_str().unwrap()]);
    assert_eq!(count(&final_summary(&lines)["stored"]), 300);
    assert_holds_the_topic(&broker, &file, 300);
}

crate::on_both_brokers!(storage_log_missing_its_first_records_fails_verify_against_topic);

/// A log that starts after offset 0 of a partition whose earlier records Kafka still holds:
/// plain verify cannot tell it from a log that began late on purpose; against the topic it is
/// reported, and so are records after a partition's last line.
fn storage_log_missing_its_first_records_fails_verify_against_topic(broker: Broker) {
    broker.produce(300, 26);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let file_arg = file.to_str().unwrap();
    drain(&broker, &["storage", "--file", file_arg]);
    let verify = |extra: &[&str]| {
        let mut args = vec!["audit", "verify", "--json"];
        args.extend_from_slice(extra);
        args.push(file_arg);
        let output = run_with_limit(&mut broker.orderflow(&args), LIMIT);
        let report: Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", text(&output.stderr)));
        (output.status.code(), report)
    };
    let (code, report) = verify(&["--against-topic"]);
    assert_eq!(code, Some(0), "a complete log is sound: {report:#}");

    // Drop partition 0's first ten records from the log, and add records it does not hold.
    let content = std::fs::read_to_string(&file).unwrap();
    let kept: String = content
        .split_inclusive('\n')
        .filter(|l| {
            let line: AuditLine = serde_json::from_str(l).unwrap();
            !(line.partition == 0 && line.offset < 10)
        })
        .collect();
    std::fs::write(&file, kept).unwrap();
    broker.produce(30, 27);

    let (code, report) = verify(&[]);
    assert_eq!(
        code,
        Some(0),
        "alone, a late start is information: {report:#}"
    );
    let (code, report) = verify(&["--against-topic"]);
    assert_eq!(code, Some(1), "{report:#}");
    let problems = report["problems"].as_array().unwrap();
    let before: Vec<&Value> = problems
        .iter()
        .filter(|p| p["kind"] == "not-in-log" && p["place"] == "before-first-line")
        .collect();
    assert_eq!(before.len(), 1, "{report:#}");
    assert_eq!(before[0]["partition"], 0);
    assert_eq!(
        (before[0]["from"].as_i64(), before[0]["to"].as_i64()),
        (Some(0), Some(9))
    );
    let after: i64 = problems
        .iter()
        .filter(|p| p["kind"] == "not-in-log" && p["place"] == "after-last-line")
        .map(|p| p["to"].as_i64().unwrap() - p["from"].as_i64().unwrap() + 1)
        .sum();
    assert_eq!(after, 30, "{report:#}");

    // The text names the partition and the offsets.
    let output = run_with_limit(
        &mut broker.orderflow(&["audit", "verify", "--against-topic", file_arg]),
        LIMIT,
    );
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("/0 offsets 0–9 (10 records) are in Kafka but not in the log"),
        "{stdout}"
    );
}

/// Records the group committed are missing from the file, and retention (here DeleteRecords)
/// removed them from Kafka: storage cannot re-read them, so it stops and says how to recover;
/// following its advice gives a sound log of what Kafka still has. Real Kafka only: the
/// built-in broker does not delete records on request.
#[test]
fn storage_stops_when_what_its_file_lacks_is_gone_from_kafka() {
    use rdkafka::admin::{AdminClient, AdminOptions};
    use rdkafka::client::DefaultClientContext;
    let Some(broker) = Broker::kafka("storage_stops_when_what_its_file_lacks_is_gone_from_kafka")
    else {
        return;
    };
    broker.produce(300, 28);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let file_arg = file.to_str().unwrap();
    drain(&broker, &["storage", "--file", file_arg]);
    let content = std::fs::read_to_string(&file).unwrap();
    let older: String = content.split_inclusive('\n').take(30).collect();
    std::fs::write(&file, older).unwrap();

    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .create()
        .unwrap();
    let mut below = rdkafka::TopicPartitionList::new();
    for p in 0..3 {
        below
            .add_partition_offset(&broker.topic, p, rdkafka::Offset::Offset(60))
            .unwrap();
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime
        .block_on(admin.delete_records(&below, &AdminOptions::new()))
        .unwrap();

    let output = run_with_limit(
        &mut broker.orderflow(&["storage", "--file", file_arg, "--exit-at-end"]),
        LIMIT,
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Kafka no longer has offsets"), "{stderr}");
    assert!(
        stderr.contains(&format!("mv {file_arg} {file_arg}.incomplete")),
        "{stderr}"
    );

    // What it says to do.
    std::fs::rename(&file, dir.path().join("audit.jsonl.incomplete")).unwrap();
    let lines = drain(&broker, &["storage", "--file", file_arg]);
    let kept = read_topic(&broker.address, &broker.topic).len();
    assert_eq!(count(&final_summary(&lines)["stored"]), kept as u64);
    assert_holds_the_topic(&broker, &file, kept);
}
