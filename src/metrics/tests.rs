use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};

use chrono::Utc;
use uuid::Uuid;

use super::*;
use crate::domain::event::{OrderEvent, Source, Status};
use crate::report::activity::{Activity, Outcome, RecordNote, Summary};
use crate::report::group_view::{GroupState, Member, MembershipSource, PartitionLag};

fn loopback() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 0))
}

fn record(outcome: Outcome, routed_to: Option<&str>) -> Activity {
    Activity::Record(RecordNote {
        partition: 0,
        offset: 0,
        outcome,
        routed_to: routed_to.map(str::to_owned),
    })
}

fn placed() -> Outcome {
    Outcome::Order {
        order_id: Uuid::nil(),
        status: Status::Placed,
        source: Source::Web,
        previous: None,
    }
}

#[test]
fn a_busy_port_is_a_clear_error() {
    let taken = TcpListener::bind(loopback()).unwrap();
    let address = taken.local_addr().unwrap();
    let Err(error) = Metrics::serve(address) else {
        panic!("served on a busy port");
    };
    assert!(
        matches!(error, MetricsError::AddressInUse { .. }),
        "{error}"
    );
    assert!(error.to_string().contains(&address.to_string()), "{error}");
}

#[test]
fn records_are_counted_and_published_with_the_next_activity() {
    let metrics = Metrics::serve(loopback()).unwrap();
    let mut sink = metrics.member("analytics", "g1");
    let malformed = OrderEvent::parse(b"{").unwrap_err();
    sink.report(record(placed(), None));
    sink.report(record(placed(), None));
    sink.report(record(Outcome::Malformed(malformed.clone()), Some("t.dlq")));
    // Records alone are not published yet (no lock per record).
    assert!(
        metrics
            .encoded()
            .contains("orderflow_records_handled_total{role=\"analytics\",group=\"g1\"} 0")
    );
    sink.report(Activity::Paused(true));
    let text = metrics.encoded();
    for line in [
        "orderflow_records_handled_total{role=\"analytics\",group=\"g1\"} 3",
        "orderflow_events_handled_total{role=\"analytics\",group=\"g1\",status=\"PLACED\"} 2",
        &format!(
            "orderflow_malformed_records_total{{role=\"analytics\",group=\"g1\",kind=\"{}\"}} 1",
            malformed.kind()
        ),
        "orderflow_dead_letters_total{role=\"analytics\",group=\"g1\"} 1",
        "orderflow_consumer_paused{role=\"analytics\",group=\"g1\"} 1",
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
}

#[test]
fn rebalances_count_by_change_and_set_the_partitions_owned() {
    let metrics = Metrics::serve(loopback()).unwrap();
    let mut sink = metrics.member("storage", "s");
    sink.report(Activity::Assigned {
        partitions: Vec::new(),
        waited: Duration::ZERO,
        took: Duration::ZERO,
        now_owned: vec![0, 1, 2],
    });
    sink.report(Activity::Revoked {
        partitions: vec![2],
        lost: None,
        uncommitted: Vec::new(),
        now_owned: vec![0, 1],
    });
    let text = metrics.encoded();
    assert!(
        text.contains(
            "orderflow_rebalances_total{role=\"storage\",group=\"s\",change=\"assigned\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "orderflow_rebalances_total{role=\"storage\",group=\"s\",change=\"revoked\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("orderflow_partitions_owned{role=\"storage\",group=\"s\"} 2"),
        "{text}"
    );
}

#[test]
fn lag_and_offsets_are_named_as_kafka_lag_exporter_names_them() {
    let metrics = Metrics::serve(loopback()).unwrap();
    let view = GroupView {
        topic: "orders".into(),
        membership: MembershipSource::Announcements,
        low: BTreeMap::from([(0, 0), (1, 5)]),
        end: BTreeMap::from([(0, 100), (1, 50)]),
        groups: vec![GroupState {
            group: "analytics".into(),
            members: vec![Member {
                id: "orderflow-analytics-1".into(),
                host: "box".into(),
                role: Some("analytics".into()),
                owns: vec![0],
                paused: false,
            }],
            partitions: vec![
                PartitionLag {
                    partition: 0,
                    owner: Some("orderflow-analytics-1".into()),
                    committed: Some(90),
                    end: 100,
                },
                PartitionLag {
                    partition: 1,
                    owner: None,
                    committed: None,
                    end: 50,
                },
            ],
            protocol: None,
            assignor: None,
            announced_members: true,
            more_members: 0,
            rebalancing: false,
            last_heard: BTreeMap::new(),
        }],
        more_groups: 0,
        at: Utc::now(),
    };
    metrics.latest.lock().unwrap().groups = Some(view);
    let text = metrics.encoded();
    for line in [
        "kafka_consumergroup_group_lag{group=\"analytics\",topic=\"orders\",partition=\"0\",member_host=\"box\",consumer_id=\"orderflow-analytics-1\"} 10",
        // Never committed: it lags by what is still in the partition.
        "kafka_consumergroup_group_lag{group=\"analytics\",topic=\"orders\",partition=\"1\",member_host=\"\",consumer_id=\"\"} 45",
        "kafka_consumergroup_group_offset{group=\"analytics\",topic=\"orders\",partition=\"0\",member_host=\"box\",consumer_id=\"orderflow-analytics-1\"} 90",
        "kafka_consumergroup_group_sum_lag{group=\"analytics\",topic=\"orders\"} 55",
        "kafka_consumergroup_group_max_lag{group=\"analytics\",topic=\"orders\"} 45",
        "kafka_partition_latest_offset{topic=\"orders\",partition=\"1\"} 50",
        "kafka_partition_earliest_offset{topic=\"orders\",partition=\"1\"} 5",
    ] {
        assert!(text.contains(line), "{line} not in\n{text}");
    }
    assert!(!text.contains("group_offset{group=\"analytics\",topic=\"orders\",partition=\"1\""));
}

#[test]
fn the_producer_is_read_at_scrape_time_and_health_answers() {
    let metrics = Metrics::serve(loopback()).unwrap();
    metrics.producer(|| ProducerCounts {
        sent: 7,
        delivered: 6,
        failed: 1,
        in_flight: 0,
        delivery_latency: Default::default(),
    });
    let text = metrics.encoded();
    assert!(text.contains("orderflow_producer_sent_total 7"), "{text}");
    assert!(text.contains("orderflow_producer_failed_total 1"), "{text}");
    assert_eq!(get(metrics.address(), "/health").0, 200);
    let (status, body) = get(metrics.address(), "/metrics");
    assert_eq!(status, 200);
    assert!(
        body.contains("# TYPE orderflow_producer_delivered_total counter"),
        "{body}"
    );
    assert_eq!(get(metrics.address(), "/nope").0, 404);
}

/// A plain HTTP/1.0 GET, to see the endpoint as a scraper does.
fn get(address: SocketAddr, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect_timeout(&address, Duration::from_secs(2)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A progress report with `latencies` (ms) handled in its window.
fn progress(latencies: &[u64], last: bool) -> Summary {
    let mut window = crate::report::latency::Histogram::default();
    for ms in latencies {
        window.record(Duration::from_millis(*ms));
    }
    Summary {
        role: "analytics",
        group: "g".into(),
        last,
        records: latencies.len() as u64,
        malformed: 0,
        malformed_by_kind: BTreeMap::new(),
        events_per_s: 0.0,
        latency: window.stats(),
        partitions: Vec::new(),
        counters: crate::report::activity::RoleCounters::Custom {
            counters: Vec::new(),
        },
    }
}

#[test]
fn end_to_end_latency_is_a_histogram_of_every_window_added_up() {
    let metrics = Metrics::serve(loopback()).unwrap();
    let mut sink = metrics.member("analytics", "g");
    sink.report(Activity::Progress(progress(&[2, 3], false)));
    sink.report(Activity::Progress(progress(&[], false)));
    sink.report(Activity::Progress(progress(&[40, 7_000], false)));
    let text = metrics.encoded();
    let labels = "role=\"analytics\",group=\"g\"";
    for line in [
        "# TYPE orderflow_end_to_end_latency_seconds histogram".to_owned(),
        format!("orderflow_end_to_end_latency_seconds_count{{{labels}}} 4"),
        format!("orderflow_end_to_end_latency_seconds_bucket{{{labels},le=\"0.001\"}} 0"),
        format!("orderflow_end_to_end_latency_seconds_bucket{{{labels},le=\"0.005\"}} 2"),
        format!("orderflow_end_to_end_latency_seconds_bucket{{{labels},le=\"0.05\"}} 3"),
        format!("orderflow_end_to_end_latency_seconds_bucket{{{labels},le=\"10\"}} 4"),
        format!("orderflow_end_to_end_latency_seconds_bucket{{{labels},le=\"+Inf\"}} 4"),
        // The last window's statistics stay gauges.
        format!("orderflow_end_to_end_latency_recent_seconds{{{labels},statistic=\"max\"}} 7"),
    ] {
        assert!(text.contains(&line), "{line} not in\n{text}");
    }
    let sum = text
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!(
                "orderflow_end_to_end_latency_seconds_sum{{{labels}}} "
            ))
        })
        .unwrap();
    assert!((sum.parse::<f64>().unwrap() - 7.045).abs() < 1e-6, "{sum}");
    // The final summary holds the whole run, the records since the last progress included.
    sink.report(Activity::Summary(progress(&[2, 3, 40, 7_000, 9], true)));
    assert!(metrics.encoded().contains(&format!(
        "orderflow_end_to_end_latency_seconds_count{{{labels}}} 5"
    )));
}
