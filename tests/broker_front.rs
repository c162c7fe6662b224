//! The built-in broker's front against hostile and unusual clients: each case sends what a
//! real client (kcat, or raw requests encoded with kafka-protocol) sends, checks that the
//! client got Kafka 4.1's answer, and that the broker still serves afterwards. Where real Kafka
//! is at hand, the same raw requests go to it too, to prove the answers match.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ConsumerGroupHeartbeatResponse, CreateTopicsRequest, CreateTopicsResponse,
    DescribeGroupsRequest, DescribeGroupsResponse, FetchRequest, FetchResponse, GroupId,
    JoinGroupRequest, JoinGroupResponse, ListGroupsRequest, ListGroupsResponse, MetadataRequest,
    MetadataResponse, ProduceRequest, ProduceResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use util::{Broker, Running, orderflow, run_with_limit, text, unique};

fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

/// A raw Kafka connection: requests encoded by kafka-protocol, one at a time.
struct Raw {
    stream: TcpStream,
    correlation: i32,
}

impl Raw {
    fn connect(address: &str) -> Raw {
        let stream = TcpStream::connect(address).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Raw {
            stream,
            correlation: 0,
        }
    }

    fn send<Q: Encodable>(&mut self, api: ApiKey, version: i16, request: &Q) -> i32 {
        self.correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(s("hostile-test")));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, api.request_header_version(version))
            .unwrap();
        request.encode(&mut body, version).unwrap();
        self.write_frame(&body);
        self.correlation
    }

    fn write_frame(&mut self, body: &[u8]) {
        let mut frame = Vec::with_capacity(body.len() + 4);
        frame.extend_from_slice(&(body.len() as i32).to_be_bytes());
        frame.extend_from_slice(body);
        self.stream.write_all(&frame).expect("write");
    }

    fn receive<P: Decodable>(&mut self, api: ApiKey, version: i16, correlation: i32) -> P {
        let mut length = [0u8; 4];
        self.stream.read_exact(&mut length).expect("a response");
        let mut body = vec![0u8; i32::from_be_bytes(length) as usize];
        self.stream
            .read_exact(&mut body)
            .expect("the response body");
        let mut body = Bytes::from(body);
        let header =
            ResponseHeader::decode(&mut body, api.response_header_version(version)).unwrap();
        assert_eq!(header.correlation_id, correlation);
        P::decode(&mut body, version).unwrap()
    }

    fn call<Q: Encodable, P: Decodable>(&mut self, api: ApiKey, version: i16, request: &Q) -> P {
        let correlation = self.send(api, version, request);
        self.receive(api, version, correlation)
    }

    /// Whether the other side closed the connection (within 10 s) without answering.
    fn closed(&mut self) -> bool {
        self.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut byte = [0u8; 1];
        matches!(self.stream.read(&mut byte), Ok(0) | Err(_))
    }
}

fn join_request(group: &str, protocol_type: &str, protocols: &[&str]) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_session_timeout_ms(6_000)
        .with_rebalance_timeout_ms(6_000)
        .with_member_id(StrBytes::default())
        .with_protocol_type(s(protocol_type))
        .with_protocols(
            protocols
                .iter()
                .map(|p| {
                    JoinGroupRequestProtocol::default()
                        .with_name(s(p))
                        .with_metadata(Bytes::from_static(&[0, 1, 0, 0, 0, 0, 0, 0, 0, 0]))
                })
                .collect(),
        )
}

/// One valid uncompressed record batch, encoded by kafka-protocol.
fn batch(values: &[&str]) -> Vec<u8> {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1,
            timestamp: chrono_now_ms(),
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(v.to_string())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.to_vec()
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn fix_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

fn produce_request(topic: &str, records: Vec<u8>) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(s(topic)))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(Bytes::from(records))),
                ]),
        ])
}

/// The produce error code each corrupt batch gets, one connection per case.
fn produce_codes(address: &str, topic: &str) -> Vec<(&'static str, i16)> {
    let good = batch(&["one"]);
    let three = batch(&["a", "b", "c"]);
    let mut cases: Vec<(&'static str, Vec<u8>)> = Vec::new();
    let mut crc_plus_one = good.clone();
    crc_plus_one[20] = crc_plus_one[20].wrapping_add(1);
    cases.push(("CRC+1", crc_plus_one));
    let mut crc_zero = good.clone();
    crc_zero[17..21].copy_from_slice(&[0; 4]);
    cases.push(("CRC 0", crc_zero));
    let mut length5 = good.clone();
    length5[8..12].copy_from_slice(&5i32.to_be_bytes());
    cases.push(("batchLength 5", length5));
    let mut magic3 = good.clone();
    magic3[16] = 3;
    cases.push(("magic 3", magic3));
    let mut count5 = good.clone();
    count5[57..61].copy_from_slice(&5i32.to_be_bytes());
    count5[23..27].copy_from_slice(&4i32.to_be_bytes());
    fix_crc(&mut count5);
    cases.push(("count 5 for 1", count5));
    let mut count1 = three.clone();
    count1[57..61].copy_from_slice(&1i32.to_be_bytes());
    count1[23..27].copy_from_slice(&0i32.to_be_bytes());
    fix_crc(&mut count1);
    cases.push(("count 1 for 3", count1));
    let mut delta = good.clone();
    delta[23..27].copy_from_slice(&(-100i32).to_be_bytes());
    fix_crc(&mut delta);
    cases.push(("lastOffsetDelta -100", delta));
    let mut longer = good.clone();
    let length = i32::from_be_bytes(longer[8..12].try_into().unwrap());
    longer[8..12].copy_from_slice(&(length + 10).to_be_bytes());
    cases.push(("batchLength longer than the data", longer));
    cases.push(("7 random bytes", vec![7, 1, 9, 3, 8, 2, 6]));
    // Over Kafka's default message.max.bytes (1,048,588 bytes a batch).
    cases.push(("a 1,048,577-byte value", batch(&[&"x".repeat(1_048_577)])));
    cases.push(("good", good));
    cases
        .into_iter()
        .map(|(name, records)| {
            let mut raw = Raw::connect(address);
            let response: ProduceResponse =
                raw.call(ApiKey::Produce, 8, &produce_request(topic, records));
            (
                name,
                response.responses[0].partition_responses[0].error_code,
            )
        })
        .collect()
}

const PRODUCE_CODES: [(&str, i16); 11] = [
    ("CRC+1", 2),
    ("CRC 0", 2),
    ("batchLength 5", 2),
    ("magic 3", 2),
    ("count 5 for 1", 87),
    ("count 1 for 3", 87),
    ("lastOffsetDelta -100", 87),
    ("batchLength longer than the data", 87),
    ("7 random bytes", 87),
    ("a 1,048,577-byte value", 10),
    ("good", 0),
];

/// The broker still serves: metadata answers and a record produced with librdkafka is read
/// back.
fn assert_serves(broker: &Broker) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .create()
        .unwrap();
    let value = unique("still-serving");
    producer
        .send(BaseRecord::to(&broker.topic).key("k").payload(&value))
        .unwrap();
    producer.flush(Duration::from_secs(10)).unwrap();
    let records = util::read_topic(&broker.address, &broker.topic);
    assert!(
        records
            .iter()
            .any(|r| r.value.as_deref() == Some(value.as_bytes())),
        "the broker no longer stores and serves records"
    );
}

fn kcat_installed() -> bool {
    let installed = std::process::Command::new("kcat")
        .arg("-V")
        .output()
        .is_ok();
    if !installed {
        assert!(
            std::env::var_os("CI").is_none(),
            "kcat must be installed in CI (scripts/setup installs it)"
        );
        eprintln!("kcat not installed: skipping (scripts/setup installs it)");
    }
    installed
}

#[test]
fn kcat_with_its_default_assignors_is_refused_and_the_group_carries_on() {
    if !kcat_installed() {
        return;
    }
    let broker = Broker::start();
    let group = unique("analytics");
    let analytics =
        Running::spawn(&mut broker.orderflow(&["analytics", "-g", &group, "--json", "--no-tui"]));
    analytics.wait_for("analytics' partitions", Duration::from_secs(60), |lines| {
        util::owned(lines).is_some_and(|p| p.len() == 3)
    });

    let kcat = run_with_limit(
        std::process::Command::new("kcat").args([
            "-b",
            &broker.address,
            "-G",
            &group,
            &broker.topic,
        ]),
        Duration::from_secs(60),
    );
    let stderr = text(&kcat.stderr);
    assert_eq!(kcat.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Inconsistent group protocol"), "{stderr}");

    // The same refusal for a raw roundrobin joiner, another protocol type and no protocols.
    let mut raw = Raw::connect(&broker.address);
    for request in [
        join_request(&group, "consumer", &["roundrobin"]),
        join_request(&group, "connect", &["cooperative-sticky"]),
        join_request(&group, "consumer", &[]),
    ] {
        let response: JoinGroupResponse = raw.call(ApiKey::JoinGroup, 5, &request);
        assert_eq!(response.error_code, 23);
        assert_eq!(response.generation_id, -1);
    }
    // A KIP-848 member for this classic group: GROUP_ID_NOT_FOUND, as Kafka answers when the
    // group cannot be converted.
    let heartbeat = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s(&group)))
        .with_member_id(s(&unique("member")))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(6_000)
        .with_subscribed_topic_names(Some(vec![TopicName(s(&broker.topic))]))
        .with_topic_partitions(Some(vec![]));
    let response: ConsumerGroupHeartbeatResponse =
        raw.call(ApiKey::ConsumerGroupHeartbeat, 1, &heartbeat);
    assert_eq!(response.error_code, 69);
    assert_eq!(
        response.error_message.as_deref(),
        Some(format!("Group {group} is not a consumer group.").as_str())
    );

    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(
        analytics.owned(),
        Some(vec![0, 1, 2]),
        "analytics lost partitions"
    );
    assert!(
        !analytics.json().iter().any(|l| l["type"] == "revoked"),
        "analytics went through a rebalance"
    );
    assert_serves(&broker);
}

#[test]
fn a_joiner_that_supports_the_groups_protocol_joins_whatever_its_first_choice() {
    let broker = Broker::start();
    let group = unique("mixed");
    let analytics =
        Running::spawn(&mut broker.orderflow(&["analytics", "-g", &group, "--json", "--no-tui"]));
    analytics.wait_for("analytics' partitions", Duration::from_secs(60), |lines| {
        util::owned(lines).is_some_and(|p| p.len() == 3)
    });
    // Java's default list puts range first; the mock used to abort on it beside
    // cooperative-sticky members.
    let mut raw = Raw::connect(&broker.address);
    let response: JoinGroupResponse = raw.call(
        ApiKey::JoinGroup,
        5,
        &join_request(&group, "consumer", &["range", "cooperative-sticky"]),
    );
    assert_eq!(response.error_code, 0);
    assert_eq!(
        response.protocol_name.as_deref(),
        Some("cooperative-sticky")
    );
    assert_serves(&broker);
}

#[test]
fn a_classic_joiner_is_refused_by_a_kip_848_group() {
    let broker = Broker::start();
    let group = unique("kip848");
    let mut raw = Raw::connect(&broker.address);
    let heartbeat = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s(&group)))
        .with_member_id(s(&unique("member")))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(6_000)
        .with_subscribed_topic_names(Some(vec![TopicName(s(&broker.topic))]))
        .with_topic_partitions(Some(vec![]));
    let response: ConsumerGroupHeartbeatResponse =
        raw.call(ApiKey::ConsumerGroupHeartbeat, 1, &heartbeat);
    assert_eq!(response.error_code, 0, "{:?}", response.error_message);
    let response: JoinGroupResponse = raw.call(
        ApiKey::JoinGroup,
        5,
        &join_request(&group, "consumer", &["range"]),
    );
    assert_eq!(response.error_code, 23);
    assert_serves(&broker);
}

#[test]
fn corrupt_record_batches_get_kafkas_errors_and_nothing_is_stored() {
    let broker = Broker::start();
    let topic = broker.topic.clone();
    assert_eq!(
        produce_codes(&broker.address, &topic),
        PRODUCE_CODES.to_vec()
    );
    // Only the good batch was stored.
    let records = util::read_topic(&broker.address, &topic);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].value.as_deref(), Some(b"one".as_slice()));
    assert_serves(&broker);
}

#[test]
fn corrupt_record_batches_get_the_same_errors_on_real_kafka() {
    let Some(kafka) = Broker::kafka("corrupt_record_batches") else {
        return;
    };
    assert_eq!(
        produce_codes(&kafka.address, &kafka.topic),
        PRODUCE_CODES.to_vec()
    );
}

/// Metadata, Produce and CreateTopics for names Kafka refuses; the codes each gets.
fn topic_name_codes(address: &str) -> Vec<(String, i16, i16, i16)> {
    let names = ["", "bad topic", "x/y", ".", "..", &"a".repeat(250)].map(str::to_owned);
    names
        .into_iter()
        .map(|name| {
            let mut raw = Raw::connect(address);
            let metadata: MetadataResponse = raw.call(
                ApiKey::Metadata,
                8,
                &MetadataRequest::default()
                    .with_topics(Some(vec![
                        MetadataRequestTopic::default().with_name(Some(TopicName(s(&name)))),
                    ]))
                    .with_allow_auto_topic_creation(true),
            );
            let produce: ProduceResponse =
                raw.call(ApiKey::Produce, 8, &produce_request(&name, batch(&["x"])));
            let created: CreateTopicsResponse = raw.call(
                ApiKey::CreateTopics,
                4,
                &CreateTopicsRequest::default()
                    .with_timeout_ms(5_000)
                    .with_topics(vec![
                        CreatableTopic::default()
                            .with_name(TopicName(s(&name)))
                            .with_num_partitions(1)
                            .with_replication_factor(1),
                    ]),
            );
            (
                name.chars().take(12).collect(),
                metadata.topics[0].error_code,
                produce.responses[0].partition_responses[0].error_code,
                created.topics[0].error_code,
            )
        })
        .collect()
}

#[test]
fn invalid_topic_names_are_refused_as_kafka_refuses_them() {
    let broker = Broker::start();
    for (name, metadata, produce, create) in topic_name_codes(&broker.address) {
        assert_eq!((metadata, produce, create), (17, 3, 17), "{name:?}");
    }
    // Nothing was created: the broker's topics are the pre-created one only.
    let mut raw = Raw::connect(&broker.address);
    let all: MetadataResponse = raw.call(
        ApiKey::Metadata,
        8,
        &MetadataRequest::default().with_topics(None),
    );
    let names: Vec<String> = all
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
        .collect();
    assert_eq!(names, vec![broker.topic.clone()]);
    assert_serves(&broker);
}

#[test]
fn invalid_topic_names_get_the_same_codes_on_real_kafka() {
    let Some(kafka) = Broker::kafka("invalid_topic_names") else {
        return;
    };
    for (name, metadata, produce, create) in topic_name_codes(&kafka.address) {
        assert_eq!((metadata, produce, create), (17, 3, 17), "{name:?}");
    }
}

#[test]
fn create_topics_creates_refuses_existing_and_duplicate_names() {
    let broker = Broker::start();
    let topic = unique("created");
    let mut raw = Raw::connect(&broker.address);
    let create = |names: &[&str]| {
        CreateTopicsRequest::default()
            .with_timeout_ms(5_000)
            .with_topics(
                names
                    .iter()
                    .map(|n| {
                        CreatableTopic::default()
                            .with_name(TopicName(s(n)))
                            .with_num_partitions(5)
                            .with_replication_factor(1)
                    })
                    .collect(),
            )
    };
    let first: CreateTopicsResponse = raw.call(ApiKey::CreateTopics, 7, &create(&[&topic]));
    assert_eq!(first.topics[0].error_code, 0);
    assert_eq!(first.topics[0].num_partitions, 5);
    let again: CreateTopicsResponse = raw.call(ApiKey::CreateTopics, 7, &create(&[&topic]));
    assert_eq!(again.topics[0].error_code, 36);
    let twice: CreateTopicsResponse = raw.call(ApiKey::CreateTopics, 7, &create(&["dup", "dup"]));
    assert!(twice.topics.iter().all(|t| t.error_code == 42));
    let metadata: MetadataResponse = raw.call(
        ApiKey::Metadata,
        8,
        &MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(TopicName(s(&topic)))),
        ])),
    );
    assert_eq!(metadata.topics[0].partitions.len(), 5);
    assert_serves(&broker);
}

#[test]
fn garbage_and_oversized_frames_close_the_connection_and_nothing_else() {
    let broker = Broker::start();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("HTTP", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        ("negative length", (-5i32).to_be_bytes().to_vec()),
        (
            "oversized length",
            (200 * 1024 * 1024i32).to_be_bytes().to_vec(),
        ),
        ("unknown api key", {
            let mut frame = 12i32.to_be_bytes().to_vec();
            frame.extend_from_slice(&[0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
            frame
        }),
        ("Produce v14", {
            let mut frame = 10i32.to_be_bytes().to_vec();
            frame.extend_from_slice(&[0, 0, 0, 14, 0, 0, 0, 1, 0, 0]);
            frame
        }),
    ];
    for (name, bytes) in cases {
        let mut raw = Raw::connect(&broker.address);
        raw.stream.write_all(&bytes).unwrap();
        assert!(raw.closed(), "{name}: the connection stayed open");
    }
    // A JoinGroup announcing 2^31-1 protocols in 40 bytes: a decoder that believed the count
    // would try to allocate it all.
    let mut raw = Raw::connect(&broker.address);
    let mut body = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(ApiKey::JoinGroup as i16)
        .with_request_api_version(5)
        .with_correlation_id(1)
        .encode(&mut body, ApiKey::JoinGroup.request_header_version(5))
        .unwrap();
    body.put_i16(1);
    body.put_slice(b"g");
    body.put_i32(6000);
    body.put_i32(6000);
    body.put_i16(0);
    body.put_i16(-1);
    body.put_i16(8);
    body.put_slice(b"consumer");
    body.put_i32(i32::MAX);
    raw.write_frame(&body);
    assert!(raw.closed(), "a 2^31-element array was not refused");
    assert_serves(&broker);
}

#[test]
fn describe_and_list_groups_show_every_member_of_every_client() {
    if !kcat_installed() {
        return;
    }
    let broker = Broker::start();
    let group = unique("watched");
    let analytics =
        Running::spawn(&mut broker.orderflow(&["analytics", "-g", &group, "--json", "--no-tui"]));
    analytics.wait_for("analytics' partitions", Duration::from_secs(60), |lines| {
        util::owned(lines).is_some_and(|p| p.len() == 3)
    });
    let kcat_group = unique("kcat");
    let mut kcat = std::process::Command::new("kcat")
        .args([
            "-b",
            &broker.address,
            "-G",
            &kcat_group,
            &broker.topic,
            "-q",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();

    let mut raw = Raw::connect(&broker.address);
    let started = Instant::now();
    let listed = loop {
        let listed: ListGroupsResponse =
            raw.call(ApiKey::ListGroups, 4, &ListGroupsRequest::default());
        let stable = listed
            .groups
            .iter()
            .filter(|g| g.group_state.as_str() == "Stable")
            .count();
        if stable >= 2 || started.elapsed() > Duration::from_secs(30) {
            break listed;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let names: Vec<&str> = listed
        .groups
        .iter()
        .map(|g| g.group_id.0.as_str())
        .collect();
    assert!(names.contains(&group.as_str()), "{names:?}");
    assert!(names.contains(&kcat_group.as_str()), "{names:?}");

    let described: DescribeGroupsResponse = raw.call(
        ApiKey::DescribeGroups,
        5,
        &DescribeGroupsRequest::default().with_groups(vec![
            GroupId(s(&group)),
            GroupId(s(&kcat_group)),
            GroupId(s("nobody")),
        ]),
    );
    let ours = &described.groups[0];
    assert_eq!(ours.group_state.as_str(), "Stable");
    assert_eq!(ours.protocol_type.as_str(), "consumer");
    assert_eq!(ours.protocol_data.as_str(), "cooperative-sticky");
    assert_eq!(ours.members.len(), 1);
    assert!(ours.members[0].client_id.starts_with("orderflow-analytics"));
    assert_eq!(ours.members[0].client_host.as_str(), "/127.0.0.1");
    assert!(!ours.members[0].member_assignment.is_empty());
    let theirs = &described.groups[1];
    assert_eq!(theirs.protocol_data.as_str(), "range");
    assert_eq!(theirs.members[0].client_id.as_str(), "rdkafka");
    assert_eq!(described.groups[2].group_state.as_str(), "Dead");
    let v6: DescribeGroupsResponse = raw.call(
        ApiKey::DescribeGroups,
        6,
        &DescribeGroupsRequest::default().with_groups(vec![GroupId(s("nobody"))]),
    );
    assert_eq!(v6.groups[0].error_code, 69);

    // Kafka's own tool, where its jars are at hand.
    if let Some(java) = kafka_tool("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand") {
        let mut command = java;
        command.args([
            "--bootstrap-server",
            &broker.address,
            "--describe",
            "--members",
            "--group",
            &group,
        ]);
        let output = run_with_limit(&mut command, Duration::from_secs(60));
        let stdout = text(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}\n{}",
            text(&output.stderr)
        );
        assert!(stdout.contains("orderflow-analytics"), "{stdout}");
        let mut list =
            kafka_tool("org.apache.kafka.tools.consumer.group.ConsumerGroupCommand").unwrap();
        list.args(["--bootstrap-server", &broker.address, "--list"]);
        let output = run_with_limit(&mut list, Duration::from_secs(60));
        let stdout = text(&output.stdout);
        assert!(stdout.contains(&kcat_group), "{stdout}");
    }
    let _ = kcat.kill();
    let _ = kcat.wait();
    assert_serves(&broker);
}

/// `java -cp <Kafka's jars> CLASS`, when Java and the jars of ../shared/kafka are here.
fn kafka_tool(class: &str) -> Option<std::process::Command> {
    let libs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/kafka/libs");
    let java_works = std::process::Command::new("java")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !libs.is_dir() || !java_works {
        assert!(
            std::env::var_os("CI").is_none(),
            "Java and ../shared/kafka/libs must be there in CI"
        );
        eprintln!("no Java or no Kafka jars: skipping Kafka's tool");
        return None;
    }
    let mut command = std::process::Command::new("java");
    command
        .arg("-cp")
        .arg(format!("{}/*", libs.display()))
        .arg(class);
    Some(command)
}

#[test]
fn an_empty_fetch_is_answered_soon_after_a_produce() {
    let broker = Broker::start();
    let topic = broker.topic.clone();
    let mut raw = Raw::connect(&broker.address);
    let produced: ProduceResponse = raw.call(
        ApiKey::Produce,
        8,
        &produce_request(&topic, batch(&["first"])),
    );
    assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);
    let fetch = |offset: i64| {
        use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
        FetchRequest::default()
            .with_replica_id(kafka_protocol::messages::BrokerId(-1))
            .with_max_wait_ms(30_000)
            .with_min_bytes(1)
            .with_max_bytes(1024 * 1024)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(TopicName(s(&topic)))
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(0)
                            .with_fetch_offset(offset)
                            .with_partition_max_bytes(1024 * 1024),
                    ]),
            ])
    };
    // Nothing past offset 1: Kafka would hold this for up to 30 s, and answer within a few
    // ms of a produce; the front caps the wait so that the mock answers at once.
    let started = Instant::now();
    let _: FetchResponse = raw.call(ApiKey::Fetch, 11, &fetch(1));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "an empty fetch was held {:?}",
        started.elapsed()
    );
    // And the consumer roles see records promptly: orderflow's own end-to-end check.
    let output = run_with_limit(
        orderflow().args([
            "-b",
            &broker.address,
            "-t",
            &topic,
            "produce",
            "--count",
            "5",
        ]),
        Duration::from_secs(30),
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
}

#[test]
fn kafkas_own_topic_tool_and_console_consumer_work_on_the_built_in_broker() {
    let Some(_) = kafka_tool("org.apache.kafka.tools.TopicCommand") else {
        return;
    };
    let broker = Broker::start();
    let created = unique("made-by-kafka-topics");
    let run = |class: &str, args: &[&str]| {
        let mut command = kafka_tool(class).unwrap();
        command
            .args(["--bootstrap-server", &broker.address])
            .args(args);
        let output = run_with_limit(&mut command, Duration::from_secs(90));
        let stdout = text(&output.stdout);
        assert!(
            output.status.success(),
            "{class} {args:?}\n{stdout}\n{}",
            text(&output.stderr)
        );
        stdout
    };
    run(
        "org.apache.kafka.tools.TopicCommand",
        &["--create", "--topic", &created, "--partitions", "2"],
    );
    let listed = run("org.apache.kafka.tools.TopicCommand", &["--list"]);
    assert!(listed.contains(&created), "{listed}");
    // `--describe` needs DescribeConfigs, which neither the mock nor the front serves; the
    // partition count is checked through Metadata instead.
    let mut raw = Raw::connect(&broker.address);
    let metadata: MetadataResponse = raw.call(
        ApiKey::Metadata,
        8,
        &MetadataRequest::default().with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(TopicName(s(&created)))),
        ])),
    );
    assert_eq!(metadata.topics[0].partitions.len(), 2);

    // Kafka's console consumer, in a group of its own (Java's JoinGroup v6 and SyncGroup v4
    // made the mock drop the connection; the front advertises the versions it can read).
    let output = run_with_limit(
        orderflow().args([
            "-b",
            &broker.address,
            "-t",
            &broker.topic,
            "produce",
            "--count",
            "20",
        ]),
        Duration::from_secs(30),
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let consumed = run(
        "org.apache.kafka.tools.consumer.ConsoleConsumer",
        &[
            "--topic",
            &broker.topic,
            "--from-beginning",
            "--max-messages",
            "20",
            "--timeout-ms",
            "30000",
        ],
    );
    assert_eq!(
        consumed.lines().filter(|l| l.contains("order_id")).count(),
        20,
        "{consumed}"
    );
    assert_serves(&broker);
}

#[test]
fn requests_that_tripped_the_mocks_assertions_get_kafkas_errors() {
    use kafka_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse};
    let broker = Broker::start();
    let mut raw = Raw::connect(&broker.address);
    let heartbeat = |epoch: i32, names: Option<Vec<TopicName>>| {
        ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(s(&unique("g"))))
            .with_member_id(s(&unique("member")))
            .with_member_epoch(epoch)
            .with_rebalance_timeout_ms(6_000)
            .with_subscribed_topic_names(names)
            .with_topic_partitions(Some(vec![]))
    };
    // A member epoch below -2 (the mock asserted), and a first heartbeat subscribing to nothing.
    for request in [heartbeat(-3, None), heartbeat(0, None)] {
        let response: ConsumerGroupHeartbeatResponse =
            raw.call(ApiKey::ConsumerGroupHeartbeat, 1, &request);
        assert_eq!(response.error_code, 42, "{:?}", response.error_message);
    }
    // A coordinator type the mock does not know (it asserted too).
    let response: FindCoordinatorResponse = raw.call(
        ApiKey::FindCoordinator,
        3,
        &FindCoordinatorRequest::default()
            .with_key(s("g"))
            .with_key_type(5),
    );
    assert_eq!(response.error_code, 42);
    assert_serves(&broker);
}

/// The codes of three OffsetCommits to a group nobody ever joined: a member's (generation 3)
/// at v8 and at v9, and a simple one (generation -1, as admin tools send) at v8.
fn commit_codes_for_a_group_never_joined(address: &str, topic: &str) -> (i16, i16, i16) {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::{
        FindCoordinatorRequest, FindCoordinatorResponse, OffsetCommitRequest, OffsetCommitResponse,
    };
    let group = unique("never-joined");
    let mut raw = Raw::connect(address);
    // A fresh Kafka creates its offsets topic on the first FindCoordinator: ask until ready.
    let started = Instant::now();
    loop {
        let found: FindCoordinatorResponse = raw.call(
            ApiKey::FindCoordinator,
            3,
            &FindCoordinatorRequest::default().with_key(s(&group)),
        );
        if found.error_code == 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{found:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut commit = |version: i16, generation: i32| {
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(s(&group)))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(s(if generation < 0 {
                ""
            } else {
                "rdkafka-old-member"
            }))
            .with_topics(vec![
                OffsetCommitRequestTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_partitions(vec![
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(468),
                    ]),
            ]);
        let response: OffsetCommitResponse = raw.call(ApiKey::OffsetCommit, version, &request);
        response.topics[0].partitions[0].error_code
    };
    (commit(8, 3), commit(9, 3), commit(8, -1))
}

#[test]
fn a_members_commit_to_a_group_never_joined_is_refused_as_kafka_refuses_it() {
    let broker = Broker::start();
    assert_eq!(
        commit_codes_for_a_group_never_joined(&broker.address, &broker.topic),
        (22, 69, 0),
        "ILLEGAL_GENERATION, GROUP_ID_NOT_FOUND, accepted"
    );
    assert_serves(&broker);
}

#[test]
fn a_members_commit_to_a_group_never_joined_gets_the_same_codes_on_real_kafka() {
    let Some(kafka) = Broker::kafka("commit_to_a_group_never_joined") else {
        return;
    };
    assert_eq!(
        commit_codes_for_a_group_never_joined(&kafka.address, &kafka.topic),
        (22, 69, 0)
    );
}
