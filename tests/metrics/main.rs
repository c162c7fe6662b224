//! `--metrics` against a real Prometheus: it scrapes the producer and the three roles on
//! loopback, and what its HTTP API returns agrees with the roles' `--json` final summaries
//! (counts, committed offsets, lag) and with what the producer sent. Every endpoint's output
//! passes `promtool check metrics`; docs/metrics.md documents exactly the series exported;
//! docker's scrape config passes `promtool check config`; a busy port stops every command
//! before it starts.

#[path = "../util/mod.rs"]
mod util;

mod prometheus;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;
use util::{Broker, Running, closed_port, final_summary, run_with_limit, text};

use prometheus::{Prometheus, check_config, check_metrics, get, installed};

const LIMIT: Duration = Duration::from_secs(120);

fn free_address() -> SocketAddr {
    format!("127.0.0.1:{}", closed_port()).parse().unwrap()
}

fn repo() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The series docs/metrics.md documents: the first cell of each table row, in backticks.
fn documented_series() -> BTreeSet<String> {
    let docs = std::fs::read_to_string(repo().join("docs/metrics.md")).unwrap();
    docs.lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`'))
        .map(|(name, _)| name.to_owned())
        .filter(|name| name.starts_with("orderflow_") || name.starts_with("kafka_"))
        .collect()
}

/// The families an exposition declares (its `# TYPE` lines).
fn declared(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

fn count(value: &Value) -> f64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("not a count: {value}")) as f64
}

/// A JSON object of counts, as (key, count).
fn counts(value: &Value) -> BTreeMap<String, f64> {
    value
        .as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), count(v))).collect())
        .unwrap_or_default()
}

/// Without the entries that are 0 (a summary lists them, an exporter need not).
fn nonzero(map: BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    map.into_iter().filter(|(_, v)| *v != 0.0).collect()
}

crate::on_both_brokers!(prometheus_agrees_with_the_roles_summaries_and_lag);

fn prometheus_agrees_with_the_roles_summaries_and_lag(broker: Broker) {
    if !installed("promtool") {
        return;
    }
    broker.produce(2_000, 7);
    // Two malformed records, so that the malformed and dead-letter series count something.
    broker.send_raw(&[
        (Some(b"k".to_vec()), Some(b"not json".to_vec())),
        (None, Some(Vec::new())),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.jsonl");
    let roles: [(&str, Vec<&str>); 3] = [
        ("order-processor", vec![]),
        ("analytics", vec![]),
        ("storage", vec!["--file", file.to_str().unwrap()]),
    ];
    let producer_at = free_address();
    let at: Vec<SocketAddr> = roles.iter().map(|_| free_address()).collect();
    let mut targets = vec![("produce", producer_at)];
    targets.extend(roles.iter().zip(&at).map(|((role, _), a)| (*role, *a)));
    let Some(prometheus) = Prometheus::start(&targets) else {
        return;
    };

    let mut running: Vec<Running> = roles
        .iter()
        .zip(&at)
        .map(|((role, extra), address)| {
            let address = address.to_string();
            let mut args = vec![*role, "--json", "--metrics", &address];
            args.extend(extra.iter().copied());
            Running::spawn(&mut broker.orderflow(&args))
        })
        .collect();
    // Once Prometheus scrapes the roles, it scrapes the producer from its first second.
    let started = Instant::now();
    while prometheus.query("up == 1").len() < roles.len() {
        assert!(
            started.elapsed() < LIMIT,
            "Prometheus does not scrape the roles"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The producer adds 1,000 more while the roles read, paced (about 3 s) so that it is
    // scraped a few times.
    let mut producer = Running::spawn(&mut broker.orderflow(&[
        "produce",
        "--rate",
        "300",
        "--count",
        "1000",
        "--seed",
        "8",
        "--metrics",
        &producer_at.to_string(),
    ]));
    let total = 3_002.0;

    // Wait until Prometheus has seen every role handle every record and commit it all.
    let started = Instant::now();
    for (role, _) in &roles {
        let group = broker.group(role);
        loop {
            let handled = prometheus.value(&format!(
                "orderflow_records_handled_total{{job=\"{role}\"}}"
            ));
            let lag = prometheus.value(&format!(
                "kafka_consumergroup_group_sum_lag{{job=\"{role}\",group=\"{group}\"}}"
            ));
            if handled == Some(total) && lag == Some(0.0) {
                break;
            }
            assert!(
                started.elapsed() < LIMIT,
                "{role} on the {}: Prometheus saw {handled:?} records and lag {lag:?}\nstderr:\n{}",
                broker.kind(),
                running[0].stderr()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    assert!(producer.wait(LIMIT).success(), "{}", producer.stderr());
    // The producer's series: scraped while it ran, never more than it says it sent at the end.
    let delivered = prometheus
        .value("max_over_time(orderflow_producer_delivered_total{job=\"produce\"}[5m])")
        .unwrap_or_else(|| {
            panic!(
                "the producer was not scraped: {:?}",
                prometheus.query("up{job=\"produce\"}")
            )
        });
    assert!(delivered > 0.0 && delivered <= 1_000.0, "{delivered}");
    assert_eq!(
        prometheus.value("max_over_time(orderflow_producer_failed_total{job=\"produce\"}[5m])"),
        Some(0.0)
    );
    assert!(
        producer.stderr().contains("1,000 delivered, 0 failed"),
        "{}",
        producer.stderr()
    );
    // librdkafka's statistics: the producer's queues and every role's round trip to each
    // broker of the cluster (one on the built-in broker here, one on the harness's Kafka).
    assert!(
        prometheus
            .value("max_over_time(orderflow_producer_queue_messages{job=\"produce\"}[5m])")
            .is_some()
    );
    for (role, _) in &roles {
        let rtt = prometheus.query(&format!(
            "orderflow_broker_rtt_seconds{{job=\"{role}\",statistic=\"avg\"}}"
        ));
        assert!(!rtt.is_empty(), "{role}: no round trips");
        for (labels, seconds) in &rtt {
            assert!(labels["broker"].contains(':'), "{labels:?}");
            assert!(*seconds > 0.0 && *seconds < 10.0, "{labels:?}: {seconds}");
        }
        let fetch_queue = prometheus.by(
            &format!("orderflow_consumer_fetch_queue_messages{{job=\"{role}\"}}"),
            "partition",
        );
        assert_eq!(fetch_queue.len(), 3, "{role}: {fetch_queue:?}");
    }
    // Its delivery latency histogram counted the deliveries it had when last scraped.
    let timed = prometheus
        .value(
            "max_over_time(orderflow_producer_delivery_latency_seconds_count{job=\"produce\"}[5m])",
        )
        .unwrap();
    assert!(
        timed > 0.0 && timed <= delivered,
        "{timed} timed, {delivered} delivered"
    );

    // Each endpoint's own output: valid for promtool, and together exactly what the docs list.
    let mut exported = BTreeSet::new();
    for address in &at {
        let (status, body) = get(*address, "/metrics").expect("the role serves /metrics");
        assert_eq!(status, 200);
        assert_eq!(check_metrics(&body), "", "promtool on {address}:\n{body}");
        exported.extend(declared(&body));
        assert_eq!(get(*address, "/health").map(|(s, _)| s), Some(200));
    }
    // The producer has exited; a producer's families are the same whoever serves them, so
    // they are read from Prometheus's metadata of the job.
    let (_, metadata) = get(
        prometheus.address,
        "/api/v1/targets/metadata?match_target=%7Bjob%3D%22produce%22%7D",
    )
    .expect("metadata");
    let metadata: Value = serde_json::from_str(&metadata).unwrap();
    for entry in metadata["data"].as_array().unwrap() {
        let name = entry["metric"].as_str().unwrap();
        if name.starts_with("orderflow_producer") {
            let suffix = if entry["type"] == "counter" {
                "_total"
            } else {
                ""
            };
            exported.insert(format!("{}{suffix}", name.trim_end_matches("_total")));
        }
    }
    assert_eq!(exported, documented_series(), "exported vs docs/metrics.md");

    // Stop the roles: their final summaries must say what Prometheus last saw (a target that
    // is gone has its series marked stale, so the last values are asked for).
    for role in &running {
        role.signal(Signal::SIGTERM);
    }
    let last_by = |selector: &str, label: &str| prometheus.by(&last(selector), label);
    for ((role, _), member) in roles.iter().zip(&mut running) {
        assert!(member.wait(LIMIT).success(), "{role}: {}", member.stderr());
        let summary = final_summary(&member.json());
        let job = format!("job=\"{role}\"");
        let scraped = |series: &str| prometheus.value(&last(&format!("{series}{{{job}}}")));
        assert_eq!(
            scraped("orderflow_records_handled_total"),
            Some(count(&summary["records"])),
            "{role}"
        );
        assert_eq!(
            nonzero(last_by(
                &format!("orderflow_malformed_records_total{{{job}}}"),
                "kind"
            )),
            nonzero(counts(&summary["malformed_by_kind"])),
            "{role}"
        );
        match *role {
            "analytics" => assert_eq!(
                last_by(
                    &format!("orderflow_events_handled_total{{{job}}}"),
                    "status"
                ),
                nonzero(counts(&summary["statuses"])),
            ),
            "order-processor" => {
                assert_eq!(
                    scraped("orderflow_dead_letters_total"),
                    Some(count(&summary["dead_lettered"]))
                );
                assert!(count(&summary["dead_lettered"]) >= 2.0);
                assert_eq!(
                    nonzero(last_by(
                        &format!("orderflow_lifecycle_violations_total{{{job}}}"),
                        "kind"
                    )),
                    nonzero(counts(&summary["violations_by_kind"])),
                );
            }
            _ => assert_eq!(
                scraped("orderflow_records_handled_total"),
                Some(count(&summary["stored"]) + count(&summary["already_stored"]))
            ),
        }
        // Lag, committed offsets and log end offsets per partition, as the summary has them.
        let group = broker.group(role);
        let of_group = format!("{job},group=\"{group}\"");
        let lag = last_by(
            &format!("kafka_consumergroup_group_lag{{{of_group}}}"),
            "partition",
        );
        let offset = last_by(
            &format!("kafka_consumergroup_group_offset{{{of_group}}}"),
            "partition",
        );
        let end = last_by(
            &format!("kafka_partition_latest_offset{{{job}}}"),
            "partition",
        );
        let partitions = summary["partitions"].as_array().unwrap();
        assert_eq!(partitions.len(), 3, "{summary}");
        for p in partitions {
            let key = p["partition"].to_string();
            assert_eq!(
                lag.get(&key).copied(),
                Some(count(&p["lag"])),
                "{role} partition {key}"
            );
            assert_eq!(
                offset.get(&key).copied(),
                Some(count(&p["committed"])),
                "{role} {key}"
            );
            assert_eq!(
                end.get(&key).copied(),
                Some(count(&p["end"])),
                "{role} {key}"
            );
        }
        assert_eq!(offset.values().sum::<f64>(), total);
        latency_agrees(&prometheus, role, &summary);
    }
}

/// The `le` bounds of orderflow's latency histograms, in seconds (docs/metrics.md).
const LATENCY_BOUNDS: [f64; 17] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0,
];

/// The bucket (lower, upper bound) holding `seconds`.
fn latency_bucket(seconds: f64) -> (f64, f64) {
    let at = LATENCY_BOUNDS
        .iter()
        .position(|&bound| seconds <= bound)
        .unwrap_or(LATENCY_BOUNDS.len() - 1);
    let lower = if at == 0 { 0.0 } else { LATENCY_BOUNDS[at - 1] };
    (lower, LATENCY_BOUNDS[at])
}

/// The end-to-end latency histogram Prometheus last scraped holds every record the role
/// measured, and its p99 (`histogram_quantile`, interpolated within a bucket) falls in the
/// bucket of the role's own `--json` p99 of the run.
fn latency_agrees(prometheus: &Prometheus, role: &str, summary: &Value) {
    let latency = &summary["latency"];
    let job = format!("job=\"{role}\"");
    let histogram = |series: &str| {
        prometheus.value(&last(&format!(
            "orderflow_end_to_end_latency_seconds_{series}{{{job}}}"
        )))
    };
    assert_eq!(
        histogram("count"),
        Some(count(&latency["records"])),
        "{role}: {latency}"
    );
    assert!(histogram("sum").is_some_and(|sum| sum > 0.0), "{role}");
    let p99 = prometheus
        .value(&format!(
            "histogram_quantile(0.99, {})",
            last(&format!(
                "orderflow_end_to_end_latency_seconds_bucket{{{job}}}"
            ))
        ))
        .unwrap_or_else(|| panic!("{role}: no histogram_quantile"));
    let json_p99 = latency["p99_ms"].as_f64().unwrap() / 1000.0;
    let (lower, upper) = latency_bucket(p99);
    // The JSON rounds to 0.01 ms, and a fine bucket straddling a bound is counted above it
    // (up to about 3 %).
    assert!(
        json_p99 >= lower * 0.97 - 0.00001 && json_p99 <= upper + 0.00001,
        "{role}: Prometheus's p99 {p99} s is in the bucket ({lower}, {upper}], the role's \
         --json p99 is {json_p99} s"
    );
    eprintln!("{role}: histogram_quantile p99 {p99:.4} s, --json p99 {json_p99:.4} s");
}

/// A busy --metrics port is an error before anything else happens: no broker is reached
/// (there is none at -b), nothing is sent, no group is joined.
#[test]
fn a_busy_metrics_port_stops_every_command_at_once() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().to_string();
    let nowhere = format!("127.0.0.1:{}", closed_port());
    for command in [
        vec!["produce", "--count", "1"],
        vec!["order-processor", "--no-tui"],
        vec!["analytics", "--no-tui"],
        vec![
            "storage",
            "--no-tui",
            "--file",
            "/nonexistent/dir/audit.jsonl",
        ],
        vec!["demo", "--no-tui"],
    ] {
        let started = Instant::now();
        let output = run_with_limit(
            util::orderflow()
                .args(["-b", &nowhere])
                .args(&command)
                .env("ORDERFLOW_METRICS", &busy),
            Duration::from_secs(30),
        );
        let stderr = text(&output.stderr);
        assert!(!output.status.success(), "{command:?}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "cannot serve metrics on {busy}: the address is in use"
            )),
            "{command:?}: {stderr}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{command:?} took {:?}",
            started.elapsed()
        );
    }
}

/// The demo serves every part on one endpoint: the producer and the three roles (by their
/// `role` label) and the lag of the three groups.
#[test]
fn the_demo_serves_its_producer_and_every_role_on_one_endpoint() {
    let address = free_address();
    let mut demo = Running::spawn(util::orderflow().args([
        "demo",
        "--no-tui",
        "--listen",
        "127.0.0.1:0",
        "--rate",
        "100",
        "--metrics",
        &address.to_string(),
    ]));
    let started = Instant::now();
    let (body, roles) = loop {
        let body = get(address, "/metrics")
            .map(|(_, body)| body)
            .unwrap_or_default();
        let roles: BTreeSet<&str> = ["order-processor", "analytics", "storage"]
            .into_iter()
            .filter(|role| {
                body.lines().any(|l| {
                    l.starts_with(&format!("orderflow_records_handled_total{{role=\"{role}\""))
                        && !l.ends_with(" 0")
                })
            })
            .collect();
        let lagged: BTreeSet<&str> = ["order-processor", "analytics", "storage"]
            .into_iter()
            .filter(|g| body.contains(&format!("kafka_consumergroup_group_sum_lag{{group=\"{g}\"")))
            .collect();
        if roles.len() == 3
            && lagged.len() == 3
            && !body.contains("orderflow_producer_delivered_total 0")
            && body.contains("orderflow_producer_delivered_total")
        {
            break (body, roles);
        }
        assert!(
            started.elapsed() < LIMIT,
            "the demo's metrics never showed every part:\n{body}\nstderr:\n{}",
            demo.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(roles.len(), 3);
    if installed("promtool") {
        assert_eq!(check_metrics(&body), "", "{body}");
    }
    demo.signal(Signal::SIGINT);
    assert!(demo.wait(LIMIT).success(), "{}", demo.stderr());
}

#[test]
fn dockers_scrape_config_is_valid_for_promtool() {
    if !installed("promtool") {
        return;
    }
    check_config(&repo().join("docker/prometheus/prometheus.yml")).unwrap();
}

#[test]
fn metrics_is_off_by_default_and_explained_in_help() {
    for command in ["produce", "order-processor", "analytics", "storage", "demo"] {
        let output = run_with_limit(util::orderflow().args([command, "--help"]), LIMIT);
        let help = text(&output.stdout);
        assert!(help.contains("--metrics <ADDR:PORT>"), "{command}: {help}");
        assert!(help.contains("ORDERFLOW_METRICS"), "{command}: {help}");
        assert!(
            help.contains("/metrics") && help.contains("/health"),
            "{command}: {help}"
        );
    }
}

/// The last value Prometheus scraped of `selector` within five minutes, stale or not.
fn last(selector: &str) -> String {
    format!("last_over_time({selector}[5m])")
}
