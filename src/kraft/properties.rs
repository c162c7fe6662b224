//! What each node is configured with: its server.properties, the log4j2 configuration, the
//! cluster id.

use std::path::Path;

use base64::Engine as _;
/// A KRaft cluster id: 16 random bytes in URL-safe base64 without padding, as Kafka's
/// `Uuid.randomUuid()` makes them (which also never starts one with '-').
pub(super) fn cluster_id() -> String {
    loop {
        let id =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>());
        if !id.starts_with('-') {
            return id;
        }
    }
}

pub(super) fn server_properties(
    id: usize,
    nodes: usize,
    client: u16,
    controller: u16,
    voters: &str,
    dir: &Path,
) -> String {
    // Three nodes replicate everything three times and accept a write once two have it:
    // one broker may die without losing or refusing anything (docker/compose.cluster.yml).
    let (rf, isr) = if nodes >= 3 { (3, 2) } else { (1, 1) };
    format!(
        "process.roles=broker,controller
node.id={id}
controller.quorum.voters={voters}
listeners=PLAINTEXT://127.0.0.1:{client},CONTROLLER://127.0.0.1:{controller}
advertised.listeners=PLAINTEXT://127.0.0.1:{client}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={data}
num.partitions=3
default.replication.factor={rf}
min.insync.replicas={isr}
offsets.topic.replication.factor={rf}
transaction.state.log.replication.factor={rf}
transaction.state.log.min.isr={isr}
share.coordinator.state.topic.replication.factor={rf}
share.coordinator.state.topic.min.isr={isr}
# A class or a test has a handful of groups: 50 partitions of __consumer_offsets (Kafka's
# default) only make the first group's join wait for their creation.
offsets.topic.num.partitions=5
transaction.state.log.num.partitions=5
# Members get partitions as soon as they join (Kafka waits 3 s for more members by default).
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
",
        data = dir.join("data").display()
    )
}

pub(super) const LOG4J: &str = "status = warn
appender.file.type = File
appender.file.name = F
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.f.ref = F
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ids_look_like_kafkas() {
        for _ in 0..100 {
            let id = cluster_id();
            assert_eq!(id.len(), 22);
            assert!(!id.starts_with('-'));
            assert!(
                id.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            );
        }
    }

    #[test]
    fn three_nodes_replicate_three_times_and_need_two_in_sync() {
        let config = server_properties(2, 3, 9093, 9193, "1@a,2@b,3@c", Path::new("/x"));
        assert!(config.contains("node.id=2\n"));
        assert!(config.contains("default.replication.factor=3\n"));
        assert!(config.contains("min.insync.replicas=2\n"));
        assert!(config.contains("advertised.listeners=PLAINTEXT://127.0.0.1:9093\n"));
        let single = server_properties(1, 1, 9092, 9192, "1@a", Path::new("/x"));
        assert!(single.contains("offsets.topic.replication.factor=1\n"));
    }
}
