//! `orderflow broker`: reachable at its fixed address by any librdkafka client, with the
//! topic pre-created, and clear about a port already taken.

mod util;

use std::time::Duration;

use nix::sys::signal::Signal;
use util::{Broker, orderflow, run_with_limit, text, unique};

#[test]
fn clients_see_the_pre_created_topic_through_the_listen_address() {
    let broker = Broker::start_with(&unique("six"), 6);
    let consumer: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .create()
        .unwrap();
    use rdkafka::consumer::Consumer;
    let metadata = consumer
        .fetch_metadata(Some(&broker.topic), Duration::from_secs(10))
        .unwrap();
    assert_eq!(metadata.topics()[0].partitions().len(), 6);
    // The broker advertises the forwarder's address, not the mock's random port, so every
    // later connection goes through --listen too.
    let advertised: Vec<_> = metadata
        .brokers()
        .iter()
        .map(|b| format!("{}:{}", b.host(), b.port()))
        .collect();
    assert_eq!(advertised, vec![broker.address.clone()]);
}

#[test]
fn kcat_produces_and_consumes_through_the_broker() {
    if std::process::Command::new("kcat")
        .arg("-V")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "kcat must be installed in CI (scripts/setup installs it)"
        );
        eprintln!("kcat not installed: skipping (scripts/setup installs it)");
        return;
    }
    let broker = Broker::start();
    let lines = run_with_limit(
        orderflow().args([
            "produce", "--stdout", "--count", "50", "--rate", "0", "--seed", "3",
        ]),
        Duration::from_secs(30),
    );
    let mut kcat = std::process::Command::new("kcat")
        .args(["-b", &broker.address, "-t", &broker.topic, "-P"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    kcat.stdin.take().unwrap().write_all(&lines.stdout).unwrap();
    assert!(kcat.wait().unwrap().success());
    let consumed = run_with_limit(
        std::process::Command::new("kcat").args([
            "-b",
            &broker.address,
            "-t",
            &broker.topic,
            "-C",
            "-e",
            "-q",
        ]),
        Duration::from_secs(30),
    );
    assert!(consumed.status.success());
    let mut got: Vec<_> = text(&consumed.stdout).lines().map(str::to_owned).collect();
    let mut sent: Vec<_> = text(&lines.stdout).lines().map(str::to_owned).collect();
    got.sort();
    sent.sort();
    assert_eq!(got, sent);
}

#[test]
fn a_taken_port_is_reported_with_a_way_out() {
    let first = Broker::start();
    let output = run_with_limit(
        orderflow().args(["broker", "--listen", &first.address]),
        Duration::from_secs(30),
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("already in use"), "{stderr}");
    assert!(stderr.contains("--listen"), "{stderr}");
}

#[test]
fn ctrl_c_stops_the_broker_cleanly() {
    let broker = Broker::start();
    broker.signal(Signal::SIGINT);
    let status = broker.wait(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
}

#[test]
fn the_broker_refuses_b_and_points_to_listen() {
    let port = util::closed_port();
    let address = format!("127.0.0.1:{port}");
    for args in [
        vec!["broker", "-b", address.as_str()],
        vec!["-b", address.as_str(), "broker"],
    ] {
        let output = run_with_limit(orderflow().args(&args), Duration::from_secs(20));
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("run `orderflow broker --listen {address}`")),
            "{args:?}: {stderr}"
        );
        // It refused before listening anywhere, so it says nothing about an address.
        assert!(!text(&output.stdout).contains("listening"), "{args:?}");
    }
}
