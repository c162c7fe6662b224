//! `orderflow audit` run as a user runs it: against a log `orderflow storage` wrote from a real
//! development broker, against crafted logs with each kind of problem, against files that are
//! not audit logs at all, and the jq recipes of docs/audit-log.md exactly as written there.

mod util;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use orderflow::audit::AuditLine;
use orderflow::audit::synthetic::SyntheticLog;
use orderflow::domain::event::{OrderEvent, Status};
use serde_json::Value;
use util::{Broker, Running, orderflow, run_with_limit, text};

const LIMIT: Duration = Duration::from_secs(60);

/// The first order of `produce --seed 1` (README.md).
const SEED_1_FIRST_ORDER: &str = "b1ea6bd8-6503-42dc-a553-583617e08e42";

/// `orderflow audit <args>`, run to completion.
fn audit(args: &[&str]) -> Output {
    let output = run_with_limit(orderflow().arg("audit").args(args), LIMIT);
    let stderr = text(&output.stderr);
    assert!(!stderr.contains("panicked"), "{args:?} panicked:\n{stderr}");
    output
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not one JSON object ({e}):\n{}", text(&output.stdout)))
}

fn path_arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A log written by `orderflow storage`: `count` events produced with `seed`, and the raw
/// records `malformed` after them.
fn storage_log(dir: &Path, count: u64, seed: u64, malformed: &[&[u8]]) -> PathBuf {
    // Its own broker process, so the topic can have the name the recipes show.
    let broker = Broker::start_with("order-events", 3);
    broker.produce(count, seed);
    let raw: Vec<util::RawRecord> = malformed
        .iter()
        .map(|value| (None, Some(value.to_vec())))
        .collect();
    broker.send_raw(&raw);
    let file = dir.join("order-events.audit.jsonl");
    let output = run_with_limit(
        &mut broker.orderflow(&["storage", "--file", path_arg(&file), "--exit-at-end"]),
        Duration::from_secs(120),
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    file
}

/// The lines of a synthetic log (three partitions, a malformed record in every 50).
fn synthetic_lines(bytes: usize) -> Vec<String> {
    let mut out = Vec::new();
    SyntheticLog::new(7, "order-events", 3)
        .malformed_every(50)
        .write_until(&mut out, bytes);
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut content = lines.join("\n");
    content.push('\n');
    std::fs::write(path, content).unwrap();
}

fn decoded(line: &str) -> AuditLine {
    serde_json::from_str(line).unwrap()
}

/// The problems `verify --json` lists, and its exit status.
fn problems(file: &Path) -> (Option<i32>, Vec<Value>) {
    let output = audit(&["verify", "--json", path_arg(file)]);
    let report = json(&output);
    let problems = report["problems"].as_array().unwrap().clone();
    assert_eq!(report["ok"], problems.is_empty(), "{report}");
    (output.status.code(), problems)
}

fn verify_text(file: &Path) -> (Option<i32>, String) {
    let output = audit(&["verify", path_arg(file)]);
    (output.status.code(), text(&output.stdout))
}

#[test]
fn a_log_written_by_storage_verifies_and_adds_up() {
    let dir = tempfile::tempdir().unwrap();
    let file = storage_log(dir.path(), 1_500, 1, &[b"hello, kafka", b"{}"]);
    let lines: Vec<AuditLine> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(decoded)
        .collect();
    assert_eq!(lines.len(), 1_502);

    let output = audit(&["verify", path_arg(&file)]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("OK: every line is an audit line"),
        "{stdout}"
    );
    assert!(stdout.contains("malformed records: 2"), "{stdout}");
    let (code, listed) = problems(&file);
    assert_eq!((code, listed.len()), (Some(0), 0));

    let summary = json(&audit(&["summary", "--json", path_arg(&file)]));
    assert_eq!(summary["lines"], 1_502);
    assert_eq!(summary["records"], 1_502);
    assert_eq!(summary["events"], 1_500);
    assert_eq!(summary["malformed"], 2);
    assert_eq!(summary["malformed_by_kind"]["not-json"], 1);
    assert_eq!(summary["malformed_by_kind"]["missing-field"], 1);
    let sum = |v: &Value| {
        v.as_object()
            .unwrap()
            .values()
            .map(|n| n.as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(sum(&summary["statuses"]), 1_500);
    assert_eq!(sum(&summary["sources"]), 1_500);
    let per_partition: u64 = summary["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["records"].as_u64().unwrap())
        .sum();
    assert_eq!(per_partition, 1_502);
    let orders = &summary["orders"];
    assert_eq!(
        orders["complete"].as_u64().unwrap() + orders["in_flight"].as_u64().unwrap(),
        orders["total"].as_u64().unwrap()
    );
    assert_eq!(orders["complete"], summary["statuses"]["DELIVERED"]);
    let text_summary = text(&audit(&["summary", path_arg(&file)]).stdout);
    assert!(text_summary.contains("1,502 lines"), "{text_summary}");

    // One known order: the lines of the file that hold it, in file order.
    let expected: Vec<(u64, i64, Status)> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let event = l.event.as_ref()?;
            (event.key().as_str() == SEED_1_FIRST_ORDER).then_some((
                i as u64 + 1,
                l.offset,
                event.status,
            ))
        })
        .collect();
    assert_eq!(expected[0].2, Status::Placed);
    for query in [SEED_1_FIRST_ORDER, &SEED_1_FIRST_ORDER[..8]] {
        let output = audit(&["order", "--json", query, path_arg(&file)]);
        assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
        let history = json(&output);
        assert_eq!(history["order_id"], SEED_1_FIRST_ORDER);
        assert_eq!(history["valid"], true);
        let got: Vec<(u64, i64, Status)> = history["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                assert_eq!(e["valid"], true, "{e}");
                (
                    e["line"].as_u64().unwrap(),
                    e["offset"].as_i64().unwrap(),
                    serde_json::from_value(e["status"].clone()).unwrap(),
                )
            })
            .collect();
        assert_eq!(got, expected);
    }
    let output = audit(&["order", SEED_1_FIRST_ORDER, path_arg(&file)]);
    let stdout = text(&output.stdout);
    assert!(stdout.contains("lifecycle valid"), "{stdout}");
    for (line, offset, status) in &expected {
        let row = format!("{line:<9} {:<10}", status.as_str());
        assert!(
            stdout.contains(&row) && stdout.contains(&format!("@{offset} ")),
            "{stdout}"
        );
    }

    let output = audit(&[
        "order",
        "00000000-0000-4000-8000-000000000000",
        path_arg(&file),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("is not in"), "{stderr}");
}

#[test]
fn a_corrupt_line_in_the_middle_is_named_by_its_number() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = synthetic_lines(40_000);
    lines.insert(
        49,
        r#"{"topic":"order-events","partition":1,"off"#.to_owned(),
    );
    let file = dir.path().join("log.jsonl");
    write_lines(&file, &lines);

    let (code, listed) = problems(&file);
    assert_eq!(code, Some(1));
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(listed[0]["kind"], "unreadable");
    assert_eq!(listed[0]["line"], 50);
    let (code, stdout) = verify_text(&file);
    assert_eq!(code, Some(1));
    assert!(stdout.contains("line 50: not JSON"), "{stdout}");
    assert!(
        stdout.contains("FAILED: 1 problem (1 line that is not an audit line)"),
        "{stdout}"
    );
}

#[test]
fn a_torn_last_line_is_reported_as_torn() {
    let dir = tempfile::tempdir().unwrap();
    let lines = synthetic_lines(20_000);
    let file = dir.path().join("log.jsonl");
    write_lines(&file, &lines);
    let next = synthetic_lines(30_000)[lines.len()].clone();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap()
        .write_all(&next.as_bytes()[..60])
        .unwrap();

    let (code, listed) = problems(&file);
    assert_eq!(code, Some(1));
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(listed[0]["kind"], "torn-last-line");
    assert_eq!(listed[0]["line"], lines.len() + 1);
    assert_eq!(listed[0]["bytes"], 60);
    let (_, stdout) = verify_text(&file);
    assert!(
        stdout.contains(&format!(
            "line {}: torn last line (60 bytes, no newline)",
            lines.len() + 1
        )),
        "{stdout}"
    );
    // The summary counts what is whole and says the last line is not.
    let summary = json(&audit(&["summary", "--json", path_arg(&file)]));
    assert_eq!(summary["records"], lines.len());
    assert_eq!(summary["torn_last_line"], true);
}

#[test]
fn a_gap_is_named_with_its_offsets_and_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = synthetic_lines(60_000);
    // Offsets 30–34 of partition 1 never reach the file: the later ones move up by 5.
    let mut before = None;
    let mut after = None;
    for (i, line) in lines.iter_mut().enumerate() {
        let mut parsed = decoded(line);
        if parsed.partition != 1 {
            continue;
        }
        if parsed.offset == 29 {
            before = Some(i + 1);
        }
        if parsed.offset >= 30 {
            after.get_or_insert(i + 1);
            parsed.offset += 5;
            *line = serde_json::to_string(&parsed).unwrap();
        }
    }
    let (before, after) = (before.unwrap(), after.unwrap());
    let file = dir.path().join("log.jsonl");
    write_lines(&file, &lines);

    let (code, listed) = problems(&file);
    assert_eq!(code, Some(1));
    assert_eq!(listed.len(), 1, "{listed:#?}");
    let gap = &listed[0];
    assert_eq!(gap["kind"], "gap");
    assert_eq!(
        (gap["topic"].as_str(), gap["partition"].as_i64()),
        (Some("order-events"), Some(1))
    );
    assert_eq!(
        (gap["from"].as_i64(), gap["to"].as_i64()),
        (Some(30), Some(34))
    );
    assert_eq!(gap["line_before"], before);
    assert_eq!(gap["line"], after);
    let (_, stdout) = verify_text(&file);
    assert!(
        stdout.contains(&format!(
            "line {after}: order-events/1 offsets 30–34 missing (5 records)"
        )),
        "{stdout}"
    );
}

#[test]
fn a_log_may_start_late_in_a_partition() {
    let dir = tempfile::tempdir().unwrap();
    // Retention removed the first 40 records of partition 0 before storage read it: some of
    // its orders first appear with a later step.
    let lines: Vec<String> = synthetic_lines(60_000)
        .into_iter()
        .filter(|l| {
            let parsed = decoded(l);
            parsed.partition != 0 || parsed.offset >= 40
        })
        .collect();
    let file = dir.path().join("log.jsonl");
    write_lines(&file, &lines);

    let (code, stdout) = verify_text(&file);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains("starts at offset 40, not 0: fine"),
        "{stdout}"
    );
    let report = json(&audit(&["verify", "--json", path_arg(&file)]));
    assert!(
        report["orders_begun_before_log"].as_u64().unwrap() > 0,
        "{report}"
    );
}

#[test]
fn a_record_stored_twice_is_named_with_both_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = synthetic_lines(60_000);
    // Right after itself (the partition's last line), and again far later, after other
    // records of its partition: both lines are found, the second by looking back.
    let first = 30;
    let copy = lines[first - 1].clone();
    lines.insert(first, copy.clone());
    lines.insert(120, copy);
    let file = dir.path().join("log.jsonl");
    write_lines(&file, &lines);
    let record = decoded(&lines[first - 1]);

    let (code, listed) = problems(&file);
    assert_eq!(code, Some(1));
    assert_eq!(listed.len(), 2, "{listed:#?}");
    for (problem, line) in listed.iter().zip([first + 1, 121]) {
        assert_eq!(problem["kind"], "duplicate");
        assert_eq!(problem["offset"], record.offset);
        assert_eq!(problem["partition"], record.partition);
        assert_eq!(problem["line"], line);
        assert_eq!(problem["first_line"], first);
    }
    let (_, stdout) = verify_text(&file);
    assert!(
        stdout.contains(&format!(
            "line 121: order-events/{} offset {} stored twice: first at line {first}, again at line 121",
            record.partition, record.offset
        )),
        "{stdout}"
    );
}

/// An audit line for an event of `order` at `offset` of partition `partition`.
fn event_line(order: &str, status: Status, partition: i32, offset: i64) -> String {
    let value = format!(
        r#"{{"event_type":"ORDER_EVENT","order_id":"{order}","user_id":"user_1","status":"{status}","timestamp":"2026-11-21T18:40:00.000Z","source":"API"}}"#
    );
    let event = OrderEvent::parse(value.as_bytes()).unwrap();
    let line = AuditLine {
        topic: "order-events".into(),
        partition,
        offset,
        key: Some(order.into()),
        key_base64: None,
        kafka_timestamp: Some(event.timestamp),
        stored_at: event.timestamp,
        event: Some(event),
        raw: None,
        raw_base64: None,
        error: None,
        error_kind: None,
    };
    serde_json::to_string(&line).unwrap()
}

#[test]
fn a_lifecycle_violation_names_the_order_its_statuses_and_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = synthetic_lines(30_000);
    let last_offset = lines
        .iter()
        .map(|l| decoded(l))
        .filter(|l| l.partition == 2)
        .map(|l| l.offset)
        .max()
        .unwrap();
    let order = "0badc0de-0000-4000-8000-000000000001";
    lines.push(event_line(order, Status::Placed, 2, last_offset + 1));
    lines.push(event_line(order, Status::Shipped, 2, last_offset + 2));
    let (placed, shipped) = (lines.len() - 1, lines.len());
    let file = dir.path().join("log.jsonl");
    write_lines(&file, &lines);

    let (code, listed) = problems(&file);
    assert_eq!(code, Some(1));
    assert_eq!(listed.len(), 1, "{listed:#?}");
    let problem = &listed[0];
    assert_eq!(problem["kind"], "lifecycle");
    assert_eq!(problem["order_id"], order);
    assert_eq!(problem["status"], "SHIPPED");
    assert_eq!(problem["previous"], "PLACED");
    assert_eq!(problem["line"], shipped);
    assert_eq!(problem["previous_line"], placed);
    assert_eq!(problem["violation_kind"], "skipped-status");
    let (_, stdout) = verify_text(&file);
    assert!(
        stdout.contains(&format!(
            "line {shipped}: order {order} (order-events/2 offset {}): skipped CONFIRMED \
             (PLACED → SHIPPED); the order was at PLACED since line {placed}",
            last_offset + 2
        )),
        "{stdout}"
    );

    let output = audit(&["order", &order[..8], path_arg(&file)]);
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout.contains("lifecycle NOT valid"), "{stdout}");
    assert!(
        stdout.contains("VIOLATION: skipped CONFIRMED (PLACED → SHIPPED)"),
        "{stdout}"
    );
}

#[test]
fn tail_shows_the_last_lines() {
    let dir = tempfile::tempdir().unwrap();
    let lines = synthetic_lines(30_000);
    let file = dir.path().join("log.jsonl");
    write_lines(&file, &lines);

    let output = audit(&["tail", "-n", "3", path_arg(&file)]);
    assert_eq!(output.status.code(), Some(0));
    let shown: Vec<String> = text(&output.stdout).lines().map(str::to_owned).collect();
    assert_eq!(shown.len(), 3, "{shown:#?}");
    for (shown, line) in shown.iter().zip(&lines[lines.len() - 3..]) {
        let line = decoded(line);
        assert!(
            shown.contains(&format!("p{}@{} ", line.partition, line.offset)),
            "{shown}"
        );
        match &line.event {
            Some(event) => {
                assert!(shown.contains(&event.key().as_str()[..8]), "{shown}");
                assert!(shown.contains(event.status.as_str()), "{shown}");
            }
            None => assert!(shown.contains("MALFORMED"), "{shown}"),
        }
    }
    // --json: the lines themselves.
    let output = audit(&["tail", "--json", "-n", "4", path_arg(&file)]);
    assert_eq!(
        text(&output.stdout),
        lines[lines.len() - 4..].join("\n") + "\n"
    );
    // Fewer lines than asked for: all of them.
    let output = audit(&["tail", "-n", "100000", path_arg(&file)]);
    assert_eq!(text(&output.stdout).lines().count(), lines.len());
}

/// Waits until `process` has printed `n` lines on stdout.
fn wait_for_lines(process: &Running, n: usize) {
    let started = Instant::now();
    while process.lines().len() < n {
        assert!(
            started.elapsed() < LIMIT,
            "waited for {n} lines:\n{}\nstderr:\n{}",
            process.lines().join("\n"),
            process.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (a bounded while) for tail's notice on stderr: it is written before the line that
/// follows it, but the two pipes are read by different threads, so the line can arrive first.
fn wait_for_notice(tail: &Running, words: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !tail.stderr().contains(words) {
        assert!(
            Instant::now() < deadline,
            "no notice with {words:?}: {}",
            tail.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn tail_follows_appended_lines_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let lines = synthetic_lines(40_000);
    let file = dir.path().join("log.jsonl");
    write_lines(&file, &lines[..20]);
    let mut tail =
        Running::spawn(orderflow().args(["audit", "tail", "-f", "-n", "2", path_arg(&file)]));
    wait_for_lines(&tail, 2);

    // storage appends; a line can reach the file in two writes: it is shown once whole.
    let mut appender = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    let more = lines[20..25].join("\n") + "\n";
    let (head, rest) = more.split_at(more.len() - 30);
    appender.write_all(head.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    appender.write_all(rest.as_bytes()).unwrap();
    wait_for_lines(&tail, 7);
    let shown = tail.lines();
    let last = decoded(&lines[24]);
    assert!(
        shown[6].contains(&format!("p{}@{} ", last.partition, last.offset)),
        "{shown:#?}"
    );

    // A crash tears a line; storage, starting again, cuts it off and writes on: nothing
    // shown twice, the torn line never shown.
    let whole = std::fs::metadata(&file).unwrap().len();
    appender.write_all(&lines[25].as_bytes()[..40]).unwrap();
    // tail looks five times a second: it has read the torn line by now.
    std::thread::sleep(Duration::from_millis(1_000));
    appender.set_len(whole).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    appender
        .write_all((lines[26].clone() + "\n").as_bytes())
        .unwrap();
    wait_for_lines(&tail, 8);
    let next = decoded(&lines[26]);
    assert!(tail.lines()[7].contains(&format!("p{}@{} ", next.partition, next.offset)));
    wait_for_notice(&tail, "cut off");

    // Truncated and written again from the start: followed from the start.
    std::fs::write(&file, lines[30].clone() + "\n").unwrap();
    wait_for_lines(&tail, 9);
    let first = decoded(&lines[30]);
    assert!(tail.lines()[8].contains(&format!("p{}@{} ", first.partition, first.offset)));
    wait_for_notice(&tail, "truncated");

    tail.signal(Signal::SIGINT);
    let status = tail.wait(LIMIT);
    assert_eq!(status.code(), Some(0), "{}", tail.stderr());
    assert_eq!(tail.lines().len(), 9, "{:#?}", tail.lines());
}

#[test]
fn files_that_are_not_audit_logs_get_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    let binary = dir.path().join("binary.jsonl");
    let bytes: Vec<u8> = (0..50_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&binary, bytes).unwrap();
    let other_json = dir.path().join("events.jsonl");
    std::fs::write(&other_json, "{\"event_type\":\"ORDER_EVENT\"}\n{\"a\":1}\n").unwrap();
    let missing = dir.path().join("missing.jsonl");
    let cases: [(&Path, &str); 5] = [
        (&missing, "does not exist"),
        (dir.path(), "is a directory"),
        (&empty, "is empty"),
        (
            &binary,
            "is not an orderflow audit log: it holds binary data",
        ),
        (
            &other_json,
            "is not an orderflow audit log: line 1: not an audit line",
        ),
    ];
    for (path, message) in cases {
        for command in [
            vec!["summary"],
            vec!["verify"],
            vec!["verify", "--json"],
            vec!["order", SEED_1_FIRST_ORDER],
            vec!["tail"],
        ] {
            let mut args = command.clone();
            args.push(path_arg(path));
            let output = audit(&args);
            let stderr = text(&output.stderr);
            assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
            assert!(stderr.contains(message), "{args:?}: {stderr}");
            assert!(output.stdout.is_empty(), "{args:?}");
        }
    }
}

/// The ```sh blocks of the "Recipes" section of docs/audit-log.md.
fn recipes() -> Vec<String> {
    let doc = include_str!("../docs/audit-log.md");
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with("Recipes"))
        .expect("docs/audit-log.md has a Recipes section");
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in section.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), line) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "an unclosed ```sh block");
    blocks
}

/// Runs a recipe as a user would, in `dir`, with this orderflow first on the PATH.
fn run_recipe(recipe: &str, dir: &Path) -> Output {
    let bin = Path::new(env!("CARGO_BIN_EXE_orderflow")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    run_with_limit(
        std::process::Command::new("bash")
            .args(["-c", recipe])
            .current_dir(dir)
            .env("PATH", path),
        LIMIT,
    )
}

#[test]
fn the_recipes_in_the_docs_work_as_written() {
    let recipes = recipes();
    assert!(recipes.len() >= 5, "{recipes:#?}");
    let clean = tempfile::tempdir().unwrap();
    let file = storage_log(clean.path(), 400, 1, &[b"hello, kafka"]);
    for recipe in &recipes {
        let output = run_recipe(recipe, clean.path());
        assert!(
            output.status.success() && output.stderr.is_empty(),
            "{recipe}\nstatus {:?}\nstderr:\n{}",
            output.status,
            text(&output.stderr)
        );
    }

    // The same log with a gap: every recipe has something to say, the gap included.
    let damaged = tempfile::tempdir().unwrap();
    let lines: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .filter(|l| {
            let parsed = decoded(l);
            parsed.partition != 0 || parsed.offset != 10
        })
        .map(str::to_owned)
        .collect();
    write_lines(&damaged.path().join("order-events.audit.jsonl"), &lines);
    let mut gap_found = false;
    for recipe in &recipes {
        let output = run_recipe(recipe, damaged.path());
        let stdout = text(&output.stdout);
        assert!(
            output.status.success() && output.stderr.is_empty() && !stdout.trim().is_empty(),
            "{recipe}\nstatus {:?}\nstdout:\n{stdout}\nstderr:\n{}",
            output.status,
            text(&output.stderr)
        );
        gap_found |= stdout.contains("order-events/0") && stdout.contains("10");
    }
    assert!(
        gap_found,
        "no recipe found the gap at order-events/0 offset 10"
    );
}

/// A long verify stopped by a signal says which signal it was and exits as shells expect of
/// it: 130 for Ctrl-C, 143 for SIGTERM (it said "Ctrl-C" and 130 for both).
#[test]
fn a_verify_stopped_by_a_signal_names_the_signal() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.audit.jsonl");
    let mut out = std::fs::File::create(&file).unwrap();
    // Long enough that verify is still reading when the signal comes: a sound stretch, then
    // the same bytes again and again (what verify then reports does not matter here).
    let mut chunk = Vec::new();
    SyntheticLog::new(3, "order-events", 3).write_until(&mut chunk, 4 << 20);
    for _ in 0..40 {
        out.write_all(&chunk).unwrap();
    }
    drop(out);
    for (signal, status, words) in [
        (Signal::SIGTERM, 143, "stopped by SIGTERM"),
        (Signal::SIGINT, 130, "stopped by Ctrl-C"),
    ] {
        let mut verify = Running::spawn(orderflow().args(["audit", "verify", path_arg(&file)]));
        std::thread::sleep(Duration::from_millis(300));
        verify.signal(signal);
        let exit = verify.wait(LIMIT);
        assert_eq!(exit.code(), Some(status), "{}", verify.stderr());
        assert!(verify.stderr().contains(words), "{}", verify.stderr());
    }
}
