//! `orderflow broker`: starts the development broker, says plainly what it is and is not, and
//! serves until Ctrl-C.

use std::process::ExitCode;

use crate::cli::BrokerArgs;
use crate::config::validate_topic;
use crate::kafka::broker::{
    BrokerOptions, DevBroker, RETENTION_BYTES, RETENTION_MESSAGES, is_local_only,
};
use crate::shutdown::Shutdown;

pub async fn run(
    topic: &str,
    args: &BrokerArgs,
    mut shutdown: Shutdown,
) -> anyhow::Result<ExitCode> {
    validate_topic(topic)?;
    let options = BrokerOptions {
        listen: args.listen.clone(),
        advertise: args.advertise.clone(),
        topic: topic.to_owned(),
        partitions: args.partitions,
    };
    let mut broker = DevBroker::start(&options).await?;
    let (_, librdkafka) = rdkafka::util::get_rdkafka_version();
    let address = broker.advertised().to_owned();
    let client_flag = if address == "localhost:9092" || address == "127.0.0.1:9092" {
        "the default, no -b needed".to_owned()
    } else {
        format!("clients use -b {address}")
    };
    println!("orderflow broker listening on {address} ({client_flag})");
    println!(
        "  what        librdkafka {librdkafka} mock cluster: one broker, real Kafka protocol, in this process"
    );
    println!(
        "  topic       {topic}: {} partitions, created now; other topics are created on first use with 4",
        args.partitions
    );
    println!(
        "  holds       everything in memory, lost when it stops; per partition it drops the oldest \
         messages past {} MB or {} messages",
        RETENTION_BYTES / (1024 * 1024),
        crate::human::count(RETENTION_MESSAGES)
    );
    println!(
        "  groups      real group coordination; a rebalance waits for the members' session timeout"
    );
    println!(
        "  missing     ListGroups, DescribeGroups, CreateTopics: kafka-consumer-groups and kafka-topics --create do not work here"
    );
    if broker.local_addr().ip().is_unspecified() && args.advertise.is_none() {
        println!(
            "  note        listening on all interfaces but advertising {address}: clients on other machines need --advertise <this-host>:{}",
            broker.local_addr().port()
        );
    } else if !is_local_only(broker.local_addr().ip()) {
        println!(
            "  note        reachable from other machines: anyone who can connect can read and write"
        );
    }
    println!("Ctrl-C stops it.");

    broker.serve(shutdown.requested_async()).await;
    println!("broker stopped; its topics and offsets are gone");
    Ok(ExitCode::SUCCESS)
}
