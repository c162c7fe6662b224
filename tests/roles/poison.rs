//! Records a role cannot get past the usual way — one too large to dead-letter whole, one
//! larger than the consumer's settings take, a range it cannot decode — never stop a
//! partition for good: each is cut, skipped or stopped on as docs/consumer-output.md says.

use std::time::Duration;

// `util` by name: on_both_brokers! calls `super::util::Broker`.
use super::util::{self, Broker, read_topic, run_with_limit, text};
use super::{LIMIT, count, drain, final_summary};

crate::on_both_brokers!(
    a_key_too_large_to_dead_letter_whole_is_cut_and_the_partition_goes_on,
    a_record_larger_than_the_consumers_settings_stops_it_naming_the_setting,
    every_partition_drained_by_exit_at_end_stands_at_its_end_in_the_summary,
);

fn every_partition_drained_by_exit_at_end_stands_at_its_end_in_the_summary(broker: Broker) {
    // One record: two of the three partitions are empty, and read to their end all the same.
    broker.send_raw(&[(Some(b"only".to_vec()), Some(b"{}".to_vec()))]);
    let summary = final_summary(&drain(&broker, &["analytics"]));
    let partitions = summary["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), 3, "{summary}");
    for p in partitions {
        // It said "position": null for the empty ones, as if they had never been read.
        assert!(p["end"].is_u64(), "{p}");
        assert_eq!(p["position"], p["end"], "{summary}");
        assert_eq!(p["lag"], 0, "{summary}");
    }
}

/// The value of header `name` of `record`, if it has one.
fn header<'a>(record: &'a util::Record, name: &str) -> Option<&'a str> {
    record
        .headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn a_key_too_large_to_dead_letter_whole_is_cut_and_the_partition_goes_on(broker: Broker) {
    // As large a record as Kafka's default limit (1,048,588 bytes a batch) takes: with the
    // dead letter's headers added, a copy kept whole is over it and refused
    // (MESSAGE_TOO_LARGE), which stopped order-processor at every restart.
    let key = vec![b'k'; 1_048_000];
    let value = b"{not json ".repeat(40);
    broker.send_raw(&[(Some(key.clone()), Some(value.clone()))]);
    broker.produce(30, 3);

    let lines = drain(&broker, &["order-processor"]);
    let summary = final_summary(&lines);
    assert_eq!(count(&summary["malformed"]), 1, "{summary}");
    assert_eq!(count(&summary["dead_lettered"]), 1, "{summary}");
    assert_eq!(count(&summary["valid"]), 30, "{summary}");

    let dead = read_topic(&broker.address, &format!("{}.dlq", broker.topic));
    assert_eq!(dead.len(), 1, "{dead:?}");
    let letter = &dead[0];
    assert_eq!(header(letter, "orderflow.key.truncated"), Some("1048000"));
    assert_eq!(
        header(letter, "orderflow.truncated"),
        None,
        "the value fits"
    );
    let kept = letter.key.as_deref().expect("a key");
    assert_eq!(kept.len(), 16_384);
    assert!(key.starts_with(kept), "the key's first bytes");
    assert_eq!(letter.value.as_deref(), Some(value.as_slice()));

    // Committed: a second run finds nothing left to read.
    let again = final_summary(&drain(&broker, &["order-processor"]));
    assert_eq!(count(&again["records"]), 0, "{again}");
}

/// Sets `max.message.bytes` of `topic` on real Kafka.
fn set_max_message_bytes(broker: &Broker, topic: &str, bytes: &str) {
    use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ResourceSpecifier};
    let admin: AdminClient<rdkafka::client::DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .create()
        .expect("admin client");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let change = AlterConfig::new(ResourceSpecifier::Topic(topic)).set("max.message.bytes", bytes);
    let results = runtime
        .block_on(admin.alter_configs([&change], &AdminOptions::new()))
        .expect("AlterConfigs");
    for result in results {
        result.expect("max.message.bytes set");
    }
}

/// A dead-letter topic whose own limit refuses even the cut-down copy: order-processor stops
/// (exit 1, nothing committed) with the command that lets it through, and after that command
/// a restart dead-letters the record and goes on. Real Kafka only: the built-in broker has
/// no topic configurations.
#[test]
fn a_dead_letter_topic_that_refuses_even_a_cut_copy_stops_with_a_command_that_works() {
    let Some(broker) = Broker::kafka("dead_letter_topic_refuses") else {
        return;
    };
    let dlq = format!("{}.dlq", broker.topic);
    set_max_message_bytes(&broker, &dlq, "2000");
    broker.send_raw(&[(Some(b"k".to_vec()), Some(vec![b'x'; 5_000]))]);

    let output = run_with_limit(
        &mut broker.orderflow(&["order-processor", "--exit-at-end", "--json"]),
        LIMIT,
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("refused 1 dead letter(s) as too large") && stderr.contains(&dlq),
        "{stderr}"
    );
    // Run the command it gives, as Kafka's own tool (kafka-configs.sh is ConfigCommand).
    let at = stderr.find("kafka-configs.sh ").expect("the command") + "kafka-configs.sh ".len();
    let args: Vec<&str> = stderr[at..]
        .split(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    // The harness's tool names the cluster itself: the command must name the same one.
    assert_eq!(args[..2], ["--bootstrap-server", broker.address.as_str()]);
    let args = &args[2..];
    let kafka = broker.kafka.expect("real Kafka");
    let configs = run_with_limit(
        kafka.tool("kafka.admin.ConfigCommand").args(args),
        Duration::from_secs(60),
    );
    assert!(
        configs.status.success(),
        "{args:?}: {}",
        text(&configs.stderr)
    );

    let summary = final_summary(&drain(&broker, &["order-processor"]));
    assert_eq!(count(&summary["dead_lettered"]), 1, "{summary}");
    let dead = read_topic(&broker.address, &dlq);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].value.as_ref().map(Vec::len), Some(5_000));
}

fn a_record_larger_than_the_consumers_settings_stops_it_naming_the_setting(broker: Broker) {
    broker.produce(30, 4);
    broker.send_raw(&[(Some(b"big".to_vec()), Some(vec![b'x'; 500_000]))]);
    // Settings too small for it: librdkafka drops each answer and asks again for ever, and
    // --exit-at-end never ended (or, where the partition looked drained, exited 0 unread).
    let small = [
        "-X",
        "message.max.bytes=100000",
        "-X",
        "fetch.max.bytes=100000",
        "-X",
        "receive.message.max.bytes=200000",
    ];
    let mut args = vec!["analytics", "--exit-at-end", "--json"];
    args.extend(small);
    let output = run_with_limit(&mut broker.orderflow(&args), LIMIT);
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("larger than this consumer's receive.message.max.bytes (200,000 bytes)")
            && stderr.contains("cannot be read past it"),
        "{stderr}"
    );
    // The setting it names takes the record (the 30 events before it were committed).
    let at = stderr
        .find("-X receive.message.max.bytes=")
        .expect("a setting")
        + 3;
    let setting = stderr[at..].split_whitespace().next().unwrap();
    let lines = drain(
        &broker,
        &[
            "analytics",
            "-X",
            "message.max.bytes=100000",
            "-X",
            "fetch.max.bytes=100000",
            "-X",
            setting,
        ],
    );
    let summary = final_summary(&lines);
    assert_eq!(
        count(&summary["malformed"]),
        1,
        "the large record: {summary}"
    );
    let partitions = summary["partitions"].as_array().unwrap();
    assert!(partitions.iter().all(|p| p["lag"] == 0), "{summary}");
}

/// Sends `records` (a record batch's bytes) to partition 0 of `topic` as one raw Produce v8
/// request, as a broken client would; returns the partition's error code.
fn produce_raw_batch(address: &str, topic: &str, records: Vec<u8>) -> i16 {
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{
        ApiKey, ProduceRequest, ProduceResponse, RequestHeader, ResponseHeader, TopicName,
    };
    use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
    use std::io::{Read, Write};
    const VERSION: i16 = 8;
    let request = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(Bytes::from(records))),
                ]),
        ]);
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(VERSION)
        .with_correlation_id(1);
    let mut body = BytesMut::new();
    header
        .encode(&mut body, ApiKey::Produce.request_header_version(VERSION))
        .unwrap();
    request.encode(&mut body, VERSION).unwrap();
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .write_all(&(body.len() as i32).to_be_bytes())
        .unwrap();
    stream.write_all(&body).unwrap();
    let mut length = [0u8; 4];
    stream.read_exact(&mut length).expect("an answer");
    let mut answer = vec![0u8; i32::from_be_bytes(length) as usize];
    stream.read_exact(&mut answer).unwrap();
    let mut answer = Bytes::from(answer);
    ResponseHeader::decode(
        &mut answer,
        ApiKey::Produce.response_header_version(VERSION),
    )
    .unwrap();
    let response = ProduceResponse::decode(&mut answer, VERSION).unwrap();
    response.responses[0].partition_responses[0].error_code
}

/// A batch of `values` whose attributes claim gzip while its records are not compressed:
/// its CRC is right, so the built-in broker stores it (it checks compressed batches only to
/// their CRC), and no consumer can decode it.
fn undecodable_batch(values: &[&str]) -> Vec<u8> {
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
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
            // offset - sequence constant: one batch (the batch's base sequence stays -1).
            sequence: i as i32 - 1,
            timestamp: 1_764_000_000_000,
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
    let mut batch = buf.to_vec();
    batch[22] |= 1; // attributes, low byte: codec 1, gzip
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch
}

/// The built-in broker with a 3-partition topic: 300 events, one undecodable batch of three
/// records in partition 0, 300 events more; returns the broker and where the batch starts.
/// Built-in broker only: Kafka refuses such a batch (-1, UNKNOWN_SERVER_ERROR); what it can
/// serve undecodably (a codec this librdkafka lacks) this build cannot be made to lack.
fn topic_with_an_undecodable_batch() -> (Broker, i64) {
    let broker = Broker::start();
    broker.produce(300, 12);
    let (_, from) = partition_end(&broker, 0);
    let batch = undecodable_batch(&["a", "b", "c"]);
    assert_eq!(produce_raw_batch(&broker.address, &broker.topic, batch), 0);
    broker.produce(300, 13);
    (broker, from)
}

/// The bounds of `partition`, asked with librdkafka.
fn partition_end(broker: &Broker, partition: i32) -> (i64, i64) {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .create()
        .unwrap();
    consumer
        .fetch_watermarks(&broker.topic, partition, Duration::from_secs(10))
        .unwrap()
}

fn notices(lines: &[serde_json::Value]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l["type"] == "notice")
        .filter_map(|l| l["message"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn an_undecodable_range_stops_a_role_naming_its_offsets_and_its_error_once() {
    let (broker, from) = topic_with_an_undecodable_batch();
    let output = run_with_limit(
        &mut broker.orderflow(&["analytics", "--exit-at-end", "--json"]),
        LIMIT,
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "partition 0 of {} holds records this consumer cannot decode, offsets {from} to {}",
            broker.topic,
            from + 2
        )) && stderr.contains("--skip-undecodable"),
        "{stderr}"
    );
    // What it read before them was committed: nothing is left for the next owner to redo.
    assert!(!stderr.contains("Not committed"), "{stderr}");
    // librdkafka reported the error thousands of times a second: told once (or with a count).
    let lines = util::json_lines(&output);
    let errors = notices(&lines)
        .into_iter()
        .filter(|n| n.starts_with("consumer error"))
        .count();
    assert!(errors <= 3, "{errors} consumer error lines");
}

#[test]
fn skip_undecodable_skips_the_range_counts_it_and_commits_past_it() {
    let (broker, from) = topic_with_an_undecodable_batch();
    let lines = drain(&broker, &["analytics", "--skip-undecodable"]);
    let summary = final_summary(&lines);
    assert_eq!(count(&summary["records"]), 600, "{summary}");
    assert_eq!(
        count(&summary["malformed_by_kind"]["undecodable"]),
        3,
        "{summary}"
    );
    let expected = format!(
        "skipped partition 0 offsets {from} to {} (3 records): they cannot be decoded",
        from + 2
    );
    assert!(
        notices(&lines).iter().any(|n| n.starts_with(&expected)),
        "{:#?}",
        notices(&lines)
    );
    // Committed past the range: the group reads nothing again, and skips nothing again.
    let again = final_summary(&drain(&broker, &["analytics", "--skip-undecodable"]));
    assert_eq!(count(&again["records"]), 0, "{again}");
    assert_eq!(count(&again["malformed"]), 0, "{again}");
}
