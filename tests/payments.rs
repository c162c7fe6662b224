//! The payments stage (a read-process-write stage) and its checker: the delivery-semantics lab
//! run on real Kafka under kill -9 during a 2,000 events/s stream, the built-in broker's
//! refusal of exactly-once, and what that broker's transactions really do (the reason for
//! the refusal).

mod util;

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::Value;
use util::{Broker, Running, run_with_limit, text, unique};

const LIMIT: Duration = Duration::from_secs(90);

/// How long each killed run lives after it has its partitions, in turn: uneven, so the kills
/// land at different points of a batch.
const PAUSES_MS: [u64; 5] = [700, 450, 950, 300, 600];

/// What the checker found for one run of the lab.
#[derive(Debug)]
struct Found {
    orders: u64,
    payments: u64,
    lost: u64,
    duplicated: u64,
    extra: u64,
    unknown: u64,
}

/// `audit payments --json` against `broker`'s topic and `out`: the one run it finds.
fn check(broker: &Broker, out: &str, semantics: &str) -> (Found, Option<i32>) {
    let output = run_with_limit(
        &mut broker.orderflow(&["audit", "payments", "--payments-topic", out, "--json"]),
        LIMIT,
    );
    let report: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&output.stderr)));
    let runs = report["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1, "{report:#}");
    let run = &runs[0];
    assert_eq!(run["semantics"], semantics);
    let n = |v: &Value| v.as_u64().unwrap_or_else(|| panic!("a count: {v}"));
    (
        Found {
            orders: n(&report["orders"]),
            payments: n(&run["payments"]),
            lost: n(&run["lost"]),
            duplicated: n(&run["duplicated"]),
            extra: n(&run["extra_payments"]),
            unknown: n(&run["unknown"]),
        },
        output.status.code(),
    )
}

/// The lab: a 2,000 events/s stream, payments killed with SIGKILL five times while it runs,
/// then run to the end of its input; returns what the checker says.
fn lab(broker: &Broker, semantics: &str) -> Found {
    let out = unique("payments");
    if let Some(kafka) = broker.kafka {
        kafka.create_topic(&out, 3);
    }
    let group = format!("lab-{semantics}");
    let stage = |extra: &[&str]| {
        let mut args = vec![
            "payments",
            "--semantics",
            semantics,
            "-g",
            &group,
            "--out-topic",
            &out,
            "--json",
            // A payment provider taking a millisecond per order: kills land inside a
            // half-produced batch often enough that the semantics show.
            "--work-ms",
            "1",
        ];
        args.extend_from_slice(extra);
        broker.orderflow(&args)
    };
    let mut producer = Running::spawn(&mut broker.orderflow(&[
        "produce", "--rate", "2000", "--count", "16000", "--seed", "17",
    ]));
    for (round, pause) in PAUSES_MS.into_iter().enumerate() {
        let mut victim = Running::spawn(&mut stage(&[]));
        victim.wait_for("payments to get partitions", LIMIT, |lines| {
            lines.iter().any(|l| {
                l["type"] == "assigned" && l["partitions"].as_array().is_some_and(|p| !p.is_empty())
            })
        });
        std::thread::sleep(Duration::from_millis(pause));
        victim.kill();
        eprintln!("{semantics}: kill -9 number {} after {pause} ms", round + 1);
    }
    assert!(producer.wait(LIMIT).success(), "{}", producer.stderr());
    let drained = run_with_limit(&mut stage(&["--exit-at-end"]), LIMIT);
    assert!(
        drained.status.success(),
        "the last run failed\nstdout:\n{}\nstderr:\n{}",
        text(&drained.stdout),
        text(&drained.stderr)
    );
    // The killed runs did commit work: the last one read only what they left.
    let last = util::json_lines(&drained);
    let summary = last
        .iter()
        .rev()
        .find(|l| l["type"] == "summary" && l["final"] == true)
        .expect("a final summary");
    let read_last = summary["consumed"].as_u64().expect("a count");
    let (found, _) = check(broker, &out, semantics);
    eprintln!(
        "{semantics} on {} after {} kill -9s: {found:?}; the last run read {read_last} of \
         16,000 events",
        broker.kind(),
        PAUSES_MS.len()
    );
    assert!(
        read_last < 16_000,
        "the killed runs committed nothing: {read_last}"
    );
    assert!(
        found.orders > 3_000,
        "the stream had PLACED orders: {found:?}"
    );
    assert_eq!(found.unknown, 0, "{found:?}");
    found
}

#[test]
fn at_most_once_never_pays_twice() {
    let Some(broker) = Broker::kafka("at_most_once_never_pays_twice") else {
        return;
    };
    let found = lab(&broker, "at-most-once");
    assert_eq!((found.duplicated, found.extra), (0, 0), "{found:?}");
    assert_eq!(found.payments + found.lost, found.orders, "{found:?}");
}

#[test]
fn at_least_once_never_loses_a_payment() {
    let Some(broker) = Broker::kafka("at_least_once_never_loses_a_payment") else {
        return;
    };
    let found = lab(&broker, "at-least-once");
    assert_eq!(found.lost, 0, "{found:?}");
    assert_eq!(found.payments, found.orders + found.extra, "{found:?}");
}

#[test]
fn exactly_once_pays_every_order_once_across_kills() {
    let Some(broker) = Broker::kafka("exactly_once_pays_every_order_once_across_kills") else {
        return;
    };
    let found = lab(&broker, "exactly-once");
    assert_eq!((found.lost, found.duplicated), (0, 0), "{found:?}");
    assert_eq!(found.payments, found.orders, "{found:?}");
}

#[test]
fn exactly_once_refuses_the_built_in_broker_and_says_why() {
    let broker = Broker::start();
    let output = run_with_limit(
        &mut broker.orderflow(&["payments", "--semantics", "exactly-once", "--exit-at-end"]),
        LIMIT,
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    for words in [
        "exactly-once refused",
        "built-in broker",
        "aborted transaction are still shown to read_committed readers",
        "offsets committed inside a transaction are not stored",
        "Run it on real Kafka",
    ] {
        assert!(stderr.contains(words), "{words:?} in {stderr}");
    }
    // At-least-once runs there, and the checker agrees with it.
    broker.produce(2_000, 5);
    let drained = run_with_limit(
        &mut broker.orderflow(&["payments", "-g", "alo", "--exit-at-end", "--json"]),
        LIMIT,
    );
    assert!(drained.status.success(), "{}", text(&drained.stderr));
    let (found, code) = check(&broker, "payments", "at-least-once");
    assert_eq!(
        (found.lost, found.duplicated, code),
        (0, 0, Some(0)),
        "{found:?}"
    );
}

/// Why the refusal: on the built-in broker a read_committed reader sees the records of an
/// aborted transaction, and offsets sent in a committed transaction are not the group's.
#[test]
fn the_built_in_brokers_transactions_are_not_faithful() {
    let broker = Broker::start();
    let topic = &broker.topic;
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .set("transactional.id", unique("txn"))
        .create()
        .expect("a transactional producer");
    let group = "faithful";
    let member: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .set("group.id", group)
        .create()
        .expect("a member");
    let timeout = Duration::from_secs(10);
    producer.init_transactions(timeout).expect("init");

    producer.begin_transaction().expect("begin");
    for n in 0..3 {
        let value = format!("aborted-{n}");
        let record: BaseRecord<'_, str, str> =
            BaseRecord::to(topic).payload(value.as_str()).partition(0);
        producer.send(record).map_err(|(e, _)| e).expect("send");
    }
    producer.flush(timeout).expect("flush");
    producer.abort_transaction(timeout).expect("abort");

    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset(topic, 1, Offset::Offset(42))
        .expect("an offset");
    producer.begin_transaction().expect("begin");
    let metadata = member.group_metadata().expect("group metadata");
    producer
        .send_offsets_to_transaction(&offsets, &metadata, timeout)
        .expect("offsets into the transaction");
    producer.commit_transaction(timeout).expect("commit");

    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .set("group.id", unique("reader"))
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .create()
        .expect("a reader");
    let mut at = TopicPartitionList::new();
    at.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("an offset");
    reader.assign(&at).expect("assign");
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        match reader.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                seen.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned())
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => break,
            _ => {}
        }
    }
    assert_eq!(
        seen,
        ["aborted-0", "aborted-1", "aborted-2"],
        "a read_committed reader sees the aborted records"
    );

    let mut ask = TopicPartitionList::new();
    ask.add_partition(topic, 1);
    let committed = member
        .committed_offsets(ask, timeout)
        .expect("committed offsets");
    let stored = committed.find_partition(topic, 1).expect("asked").offset();
    assert_ne!(
        stored,
        Offset::Offset(42),
        "the transactional offset commit was stored"
    );
    eprintln!(
        "built-in broker: aborted records visible {seen:?}; transactional commit stored as {stored:?}"
    );
}

/// The producer side of the lesson: --sync and --acks deliver every event; idempotence with
/// fewer acknowledgements than all is refused, saying why.
#[test]
fn produce_sync_and_acks_deliver_and_idempotence_needs_acks_all() {
    let broker = Broker::start();
    for flags in [
        &["--sync"][..],
        &["--acks", "0"],
        &["--acks", "1", "--sync"],
        &["--acks", "all", "--idempotence", "off"],
    ] {
        let mut args = vec!["produce", "--count", "50", "--rate", "0"];
        args.extend_from_slice(flags);
        let output = run_with_limit(&mut broker.orderflow(&args), LIMIT);
        let stderr = text(&output.stderr);
        assert!(output.status.success(), "{flags:?}: {stderr}");
        assert!(
            stderr.contains("50 delivered, 0 failed"),
            "{flags:?}: {stderr}"
        );
    }
    let refused = run_with_limit(
        &mut broker.orderflow(&[
            "produce",
            "--count",
            "5",
            "--acks",
            "1",
            "--idempotence",
            "on",
        ]),
        LIMIT,
    );
    let stderr = text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--idempotence on needs --acks all"),
        "{stderr}"
    );
}
