//! Messages that say what really happened: a SASL client at a listener without SASL, a host
//! with a space in it, a `--work-ms` past its bound and its sleep under SIGTERM.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

// `util` by name: on_both_brokers! calls `super::util::Broker`.
use super::util::{self, Broker, Running, final_summary, orderflow, run_with_limit, text};
use super::{count, drain};

crate::on_both_brokers!(
    a_sasl_client_at_a_listener_without_sasl_is_told_so,
    a_committed_offset_past_the_end_is_said_in_words,
);

fn a_sasl_client_at_a_listener_without_sasl_is_told_so(broker: Broker) {
    let sasl = [
        "-X",
        "security.protocol=SASL_PLAINTEXT",
        "-X",
        "sasl.mechanism=PLAIN",
        "-X",
        "sasl.username=learner",
        "-X",
        "sasl.password=secret",
    ];
    for command in [&["analytics", "--no-tui"][..], &["produce", "--count", "1"]] {
        let mut args = command.to_vec();
        args.extend(sasl);
        let started = Instant::now();
        let output = run_with_limit(&mut broker.orderflow(&args), Duration::from_secs(30));
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{command:?}: {stderr}");
        assert!(
            stderr.contains("refused the connection")
                && stderr.contains("this listener does not use SASL"),
            "{command:?}: {stderr}"
        );
        // It was told why, not that nothing is there.
        assert!(!stderr.contains("brokers are down"), "{stderr}");
        assert!(
            !stderr.contains("Is `orderflow broker` running"),
            "{stderr}"
        );
        assert!(started.elapsed() < Duration::from_secs(10), "{command:?}");
        assert!(!stderr.contains("secret"), "the password is never printed");
    }
}

#[test]
fn a_broker_host_with_a_space_is_refused_before_any_connection() {
    for args in [
        &["-b", "local host:9092", "analytics", "--no-tui"][..],
        &[
            "-b",
            "localhost:9092,kafka 2:9092",
            "produce",
            "--count",
            "1",
        ],
    ] {
        let started = Instant::now();
        let output = run_with_limit(orderflow().args(args), Duration::from_secs(30));
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("has a space in its host") && stderr.contains("separate brokers"),
            "{stderr}"
        );
        assert!(started.elapsed() < Duration::from_secs(2), "{args:?}");
    }
}

#[test]
fn work_ms_is_bounded_and_its_sleep_ends_at_the_first_sigterm() {
    let output = run_with_limit(
        orderflow().args(["order-processor", "--work-ms", "10001"]),
        Duration::from_secs(30),
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--work-ms") && stderr.contains("0..=10000"),
        "{stderr}"
    );

    let broker = Broker::start();
    broker.produce(20, 8);
    let processor =
        Running::spawn(&mut broker.orderflow(&["order-processor", "--work-ms", "10000", "--json"]));
    processor.wait_for("its partitions", Duration::from_secs(30), |lines| {
        util::owned(lines).is_some_and(|owned| !owned.is_empty())
    });
    // Inside the first record's 10 s of work.
    std::thread::sleep(Duration::from_secs(1));
    let signalled = Instant::now();
    processor.signal(Signal::SIGTERM);
    let mut processor = processor;
    processor.wait(Duration::from_secs(30));
    assert!(
        signalled.elapsed() < Duration::from_secs(4),
        "took {:?} after SIGTERM",
        signalled.elapsed()
    );
}

/// Commits `offset` for partition 0 of the broker's topic in `group`, as a script or another
/// tool might.
fn commit_by_hand(broker: &Broker, group: &str, offset: i64) {
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .set("group.id", group)
        .create()
        .expect("consumer");
    let mut offsets = rdkafka::TopicPartitionList::new();
    offsets
        .add_partition_offset(&broker.topic, 0, rdkafka::Offset::Offset(offset))
        .unwrap();
    consumer
        .commit(&offsets, CommitMode::Sync)
        .expect("commit accepted");
}

fn a_committed_offset_past_the_end_is_said_in_words(broker: Broker) {
    broker.produce(60, 9);
    let group = broker.group("past-end");
    commit_by_hand(&broker, &group, 1_000_000_000_000);
    let lines = drain(&broker, &["analytics", "-g", "past-end"]);
    let notices: Vec<&str> = lines
        .iter()
        .filter(|l| l["type"] == "notice")
        .filter_map(|l| l["message"].as_str())
        .collect();
    assert!(
        notices.iter().any(|n| n.starts_with(
            "partition 0: the group's committed offset 1,000,000,000,000 is past the \
             partition's end"
        ) && n.contains("reads from the earliest offset")),
        "{notices:#?}"
    );
    let assigned = lines.iter().find(|l| l["type"] == "assigned").unwrap();
    let p0 = assigned["starts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["partition"] == 0)
        .unwrap();
    assert_eq!(p0["start"], 0, "it says where it really starts: {p0}");
    assert_eq!(count(&final_summary(&lines)["records"]), 60);
}
