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
);

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
