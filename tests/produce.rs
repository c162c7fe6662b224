//! `orderflow produce` against a real development broker: every event arrives once, valid,
//! keyed and in lifecycle order; seeds replay; failures are fast and clear.

mod util;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use nix::sys::signal::Signal;
use orderflow::domain::event::{OrderEvent, Status};
use orderflow::domain::lifecycle::Lifecycles;
use util::{Broker, closed_port, orderflow, read_topic, run_with_limit, signal_child, text};

const LIMIT: Duration = Duration::from_secs(90);

crate::on_both_brokers!(
    produce_count_delivers_exactly_n_valid_keyed_events_in_lifecycle_order,
    the_same_seed_gives_the_same_orders_through_kafka,
    sigterm_flushes_what_is_in_flight_and_accounts_for_it,
    every_key_lands_where_librdkafkas_own_partitioner_puts_it,
);

fn produce_count_delivers_exactly_n_valid_keyed_events_in_lifecycle_order(broker: Broker) {
    let output = run_with_limit(
        &mut broker.orderflow(&[
            "produce", "--count", "3000", "--rate", "0", "--seed", "42", "--json",
        ]),
        LIMIT,
    );
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("3,000 delivered, 0 failed"),
        "last line must account for every event: {stderr}"
    );
    // Every delivery was timed, from enqueue to its report: the exit line and --json say how
    // long they took.
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.contains(" · delivery p50 "), "{stderr}");
    let summary: serde_json::Value =
        serde_json::from_str(text(&output.stdout).trim()).expect("one JSON summary on stdout");
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["final"], true);
    assert_eq!(summary["sent"], 3000);
    assert_eq!(summary["delivered"], 3000);
    assert_eq!(summary["failed"], 0);
    let latency = &summary["delivery_latency"];
    assert_eq!(latency["records"], 3000, "{summary}");
    let ms = |key: &str| {
        latency[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key}: {latency}"))
    };
    assert!(
        0.0 < ms("p50_ms") && ms("p50_ms") <= ms("p95_ms") && ms("p95_ms") <= ms("p99_ms"),
        "{latency}"
    );
    assert!(
        ms("p99_ms") <= ms("max_ms") && ms("max_ms") < 30_000.0,
        "{latency}"
    );

    let records = read_topic(&broker.address, &broker.topic);
    assert_eq!(records.len(), 3000, "exactly N events on the topic");

    let mut partition_of = HashMap::new();
    let mut by_partition: BTreeMap<i32, Vec<_>> = BTreeMap::new();
    for record in &records {
        let value = record.value.as_deref().expect("every record has a value");
        let event = OrderEvent::parse(value).expect("every record is a valid order event");
        let key = record.key.as_deref().expect("every record has a key");
        assert_eq!(key, event.key().as_bytes(), "key = order_id");
        assert_eq!(
            *partition_of
                .entry(event.order_id)
                .or_insert(record.partition),
            record.partition,
            "all events of an order share one partition"
        );
        by_partition
            .entry(record.partition)
            .or_default()
            .push((record.offset, event));
    }
    assert_eq!(by_partition.len(), 3, "orders spread over all partitions");
    let mut statuses = [0usize; 4];
    for (partition, mut events) in by_partition {
        events.sort_by_key(|(offset, _)| *offset);
        for (i, (offset, _)) in events.iter().enumerate() {
            assert_eq!(
                *offset, i as i64,
                "partition {partition}: offsets contiguous"
            );
        }
        let mut lifecycles = Lifecycles::new();
        for (offset, event) in events {
            statuses[event.status.index()] += 1;
            lifecycles
                .observe(event.order_id, event.status)
                .unwrap_or_else(|v| panic!("partition {partition} offset {offset}: {v}"));
        }
    }
    assert!(
        statuses.iter().all(|&n| n > 300),
        "every status appears: {statuses:?}"
    );
}

/// orderflow chooses each event's partition itself (librdkafka's rule, without its
/// partitioner's cost): a plain librdkafka producer, with its default partitioner, must put
/// the same keys in the same partitions.
fn every_key_lands_where_librdkafkas_own_partitioner_puts_it(broker: Broker) {
    broker.produce(2000, 17);
    let mut chosen = HashMap::new();
    for record in read_topic(&broker.address, &broker.topic) {
        let key = record.key.expect("every event has a key");
        chosen.insert(key, record.partition);
    }
    let used: std::collections::BTreeSet<i32> = chosen.values().copied().collect();
    assert_eq!(
        used.len(),
        3,
        "the orders spread over all partitions: {used:?}"
    );

    let probes: Vec<util::RawRecord> = chosen
        .keys()
        .map(|key| (Some(key.clone()), Some(b"probe".to_vec())))
        .collect();
    broker.send_raw(&probes);
    let mut compared = 0;
    for record in read_topic(&broker.address, &broker.topic) {
        if record.value.as_deref() != Some(b"probe".as_slice()) {
            continue;
        }
        let key = record.key.expect("a probe has a key");
        assert_eq!(
            chosen[&key],
            record.partition,
            "{}: orderflow chose partition {}, librdkafka's partitioner {} ({})",
            String::from_utf8_lossy(&key),
            chosen[&key],
            record.partition,
            broker.kind()
        );
        compared += 1;
    }
    assert_eq!(compared, chosen.len(), "every probe read back");
}

/// The order data of a run, without the wall-clock timestamps.
fn orders(lines: &str) -> Vec<(String, String, Status, String)> {
    lines
        .lines()
        .map(|line| {
            let event = OrderEvent::parse(line.as_bytes()).expect("valid line");
            (
                event.key().as_str().to_owned(),
                event.user_id,
                event.status,
                event.source.to_string(),
            )
        })
        .collect()
}

/// The orders `produce --stdout --count 400 --seed <seed>` writes.
fn stdout_orders(seed: u64) -> Vec<(String, String, Status, String)> {
    let output = run_with_limit(
        orderflow()
            .args([
                "produce", "--stdout", "--count", "400", "--rate", "0", "--seed",
            ])
            .arg(seed.to_string()),
        LIMIT,
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(output.stderr.is_empty(), "stdout mode prints nothing else");
    orders(&text(&output.stdout))
}

#[test]
fn the_same_seed_gives_the_same_orders_on_stdout() {
    let first = stdout_orders(9);
    assert_eq!(first.len(), 400);
    assert_eq!(first, stdout_orders(9), "same seed, same sequence");
    assert_ne!(stdout_orders(10), first, "another seed, other orders");
}

fn the_same_seed_gives_the_same_orders_through_kafka(broker: Broker) {
    // Through Kafka the same seed gives the same events; each partition keeps their order.
    let first = stdout_orders(9);
    let output = run_with_limit(
        &mut broker.orderflow(&["produce", "--count", "400", "--rate", "0", "--seed", "9"]),
        LIMIT,
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let mut records = read_topic(&broker.address, &broker.topic);
    records.sort_by_key(|r| (r.partition, r.offset));
    let mut partition_of = HashMap::new();
    let mut from_kafka: BTreeMap<i32, Vec<_>> = BTreeMap::new();
    for record in records {
        let line = text(record.value.as_deref().unwrap());
        let order = orders(&line).remove(0);
        partition_of.insert(order.0.clone(), record.partition);
        from_kafka.entry(record.partition).or_default().push(order);
    }
    let mut expected: BTreeMap<i32, Vec<_>> = BTreeMap::new();
    for order in first {
        expected
            .entry(partition_of[&order.0])
            .or_default()
            .push(order);
    }
    assert_eq!(from_kafka, expected);
}

#[test]
fn readme_example_is_stable() {
    let output = run_with_limit(
        orderflow().args(["produce", "--stdout", "--count", "5", "--seed", "1"]),
        LIMIT,
    );
    assert!(output.status.success());
    let ids: Vec<_> = orders(&text(&output.stdout))
        .into_iter()
        .map(|(id, ..)| id)
        .collect();
    assert_eq!(ids.len(), 5);
    assert_eq!(ids[0], "b1ea6bd8-6503-42dc-a553-583617e08e42");
}

#[test]
fn an_unreachable_broker_fails_fast_and_says_what_to_do() {
    let address = format!("127.0.0.1:{}", closed_port());
    let started = std::time::Instant::now();
    let output = run_with_limit(
        orderflow().args(["-b", &address, "produce", "--count", "5"]),
        Duration::from_secs(30),
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    assert!(stderr.contains(&address), "names the address: {stderr}");
    assert!(
        stderr.contains("orderflow broker"),
        "suggests the broker: {stderr}"
    );
    assert!(
        stderr.lines().count() <= 5,
        "a message, not a wall of librdkafka logs: {stderr}"
    );
}

#[test]
fn bad_flags_get_clap_style_errors() {
    for (args, flag) in [
        (&["produce", "--rate", "-1"][..], "--rate"),
        (&["produce", "--count", "abc"][..], "--count"),
        (&["produce", "-X", "novalue"][..], "-X"),
        (&["produce", "--count", "0"][..], "--count"),
    ] {
        let output = run_with_limit(orderflow().args(args), LIMIT);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: invalid value") && stderr.contains(flag),
            "{args:?}: {stderr}"
        );
    }
    let output = run_with_limit(
        orderflow().args(["produce", "-X", "no.such.property=1"]),
        LIMIT,
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no.such.property"), "{stderr}");
    // --json's summary goes to stdout, where --stdout writes the events.
    let output = run_with_limit(orderflow().args(["produce", "--stdout", "--json"]), LIMIT);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}

fn sigterm_flushes_what_is_in_flight_and_accounts_for_it(broker: Broker) {
    let mut child = broker
        .orderflow(&["produce", "--rate", "500"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    signal_child(&child, Signal::SIGTERM);
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < Duration::from_secs(30), "did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("stopped: "), "{stderr}");
    // "stopped: 1,234 events sent to … — 1,234 delivered, 0 failed, in …"
    let number = |word: &str| -> usize {
        let words: Vec<&str> = last.split_whitespace().collect();
        let at = words
            .iter()
            .position(|w| w.trim_end_matches(',') == word)
            .unwrap_or_else(|| panic!("no {word:?} in {last}"));
        words[at - 1].replace(',', "").parse().unwrap()
    };
    let sent = number("events");
    let delivered = number("delivered");
    assert!(sent > 100, "{last}");
    assert_eq!(sent, delivered, "{last}");
    assert!(last.contains(" 0 failed"), "{last}");
    assert_eq!(read_topic(&broker.address, &broker.topic).len(), delivered);
}

/// MEASURED.md failure 2: on a fresh cluster with Kafka's default auto.create.topics.enable,
/// the very first produce used to exit 1 saying the topic did not exist while Kafka created
/// it from that request. A cluster of its own, so that nothing has touched it before.
#[test]
fn the_first_produce_on_a_fresh_kafka_creates_the_topic_and_delivers() {
    let Some(kafka) = util::kafka::Kafka::start(1, "the_first_produce_on_a_fresh_kafka") else {
        return;
    };
    let topic = util::unique("fresh");
    let output = run_with_limit(
        orderflow().args([
            "-b",
            &kafka.bootstrap,
            "-t",
            &topic,
            "produce",
            "--count",
            "5",
        ]),
        LIMIT,
    );
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("5 delivered, 0 failed"), "{stderr}");
    assert!(
        stderr.contains(&format!("topic {topic} did not exist")) && stderr.contains("created it"),
        "says the cluster created the topic: {stderr}"
    );
    assert_eq!(read_topic(&kafka.bootstrap, &topic).len(), 5);
}

/// On Kafka and on the built-in broker, a consumer role does not create a missing topic; it
/// asks for a few seconds (a producer elsewhere may be creating it) and then says what to do.
fn a_consumer_of_a_missing_topic_says_how_to_create_it(broker: Broker) {
    let topic = util::unique("never-created");
    let started = std::time::Instant::now();
    let output = run_with_limit(
        orderflow().args([
            "-b",
            &broker.address,
            "-t",
            &topic,
            "analytics",
            "--no-tui",
            "--exit-at-end",
        ]),
        LIMIT,
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "asked again before giving up ({:?})",
        started.elapsed()
    );
    assert!(
        stderr.contains("A consumer does not create topics"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "kafka-topics --bootstrap-server {} --create --topic {topic} --partitions 3",
            broker.address
        )),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("does not exist").count(),
        1,
        "said once: {stderr}"
    );
}

crate::on_both_brokers!(a_consumer_of_a_missing_topic_says_how_to_create_it);
