//! Real Apache Kafka for the integration tests: one KRaft node shared by every test of a test
//! binary (started on first use, gone when the binary ends), a fresh topic per test, and
//! three-node clusters of their own for the tests that kill brokers. Kafka comes from
//! `orderflow::kraft`, which finds it in ORDERFLOW_KAFKA_LIBS, $KAFKA_HOME/libs or
//! ../shared/kafka/libs.
//!
//! Without Kafka, a test that needs it is skipped with one loud line saying how to get
//! Kafka; under CI (CI=true) it fails instead: CI must never pass by skipping.

use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use orderflow::kraft::{ClusterSpec, KafkaInstall, KraftCluster, KraftError};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::{Broker, unique};

/// Runs `test` once on a development broker and once on real Kafka, as two tests named
/// `<test>::builtin` and `<test>::kafka`. `test` takes the [`Broker`] to use.
#[macro_export]
macro_rules! on_both_brokers {
    ($($test:ident),+ $(,)?) => {
        $(
            mod $test {
                #[test]
                fn builtin() {
                    super::$test(super::util::Broker::start());
                }

                #[test]
                fn kafka() {
                    if let Some(broker) = super::util::Broker::kafka(stringify!($test)) {
                        super::$test(broker);
                    }
                }
            }
        )+
    };
}

/// A real Kafka cluster started by the harness.
pub struct Kafka {
    cluster: Mutex<KraftCluster>,
    /// `host:port,…` for `-b`.
    pub bootstrap: String,
    /// How many nodes it has (the replication factor of its topics).
    pub nodes: usize,
}

impl Kafka {
    /// Starts a cluster of `nodes` nodes in a folder of its own, or None (after saying why)
    /// when there is no Kafka to start and this is not CI.
    pub fn start(nodes: usize, test: &str) -> Option<Kafka> {
        let install = install(test)?;
        let dir = tempfile::Builder::new()
            .prefix("orderflow-kraft-")
            .tempdir()
            .expect("a folder for Kafka")
            .keep();
        let started = Instant::now();
        let cluster = KraftCluster::start(
            &install,
            ClusterSpec {
                dir: dir.clone(),
                nodes,
                port: fixed_port(),
                tied_to_this_process: true,
            },
        )
        .unwrap_or_else(|e| panic!("real Kafka did not start: {e}"));
        let bootstrap = cluster.bootstrap();
        wait_for_brokers(&bootstrap, nodes);
        eprintln!(
            "real Kafka {}: {nodes} node(s) on {bootstrap} started in {:.1} s (files in {})",
            orderflow::kraft::KAFKA_VERSION,
            started.elapsed().as_secs_f64(),
            dir.display()
        );
        Some(Kafka {
            cluster: Mutex::new(cluster),
            bootstrap,
            nodes,
        })
    }

    /// The one-node cluster every test of this binary shares, started on first use.
    pub fn shared(test: &str) -> Option<&'static Kafka> {
        static SHARED: OnceLock<Option<Kafka>> = OnceLock::new();
        let kafka = SHARED.get_or_init(|| Kafka::start(1, test)).as_ref();
        if kafka.is_none() {
            // The first test said how to get Kafka; each later one says what it skipped.
            skipped(test, None);
        }
        kafka
    }

    /// Creates `topic` with `partitions` partitions, replicated to every node, and waits
    /// until each partition has a leader.
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("log_level", "3")
            .create()
            .expect("admin client");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let new = NewTopic::new(
            topic,
            partitions,
            TopicReplication::Fixed(self.nodes as i32),
        );
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let results = runtime
            .block_on(admin.create_topics([&new], &options))
            .expect("CreateTopics");
        for result in results {
            if let Err((name, code)) = result {
                assert_eq!(
                    code,
                    rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists,
                    "creating {name}"
                );
            }
        }
        wait_for_leaders(&self.bootstrap, topic, partitions as usize);
    }

    /// Kills node `node` (1-based) with SIGKILL.
    pub fn kill(&self, node: usize) {
        self.cluster.lock().unwrap().kill(node).expect("kill");
    }

    /// Starts node `node` again with its data; returns once it has started.
    pub fn restart(&self, node: usize) {
        self.cluster
            .lock()
            .unwrap()
            .restart(node)
            .unwrap_or_else(|e| panic!("restarting node {node}: {e}"));
    }

    /// One of Kafka's own tools against this cluster, e.g.
    /// `org.apache.kafka.tools.consumer.group.ConsumerGroupCommand`.
    pub fn tool(&self, class: &str) -> std::process::Command {
        self.cluster.lock().unwrap().tool(class)
    }

    /// The node (Kafka's node id) that leads `partition` of `topic` now.
    pub fn leader(&self, topic: &str, partition: i32) -> usize {
        let consumer = metadata_client(&self.bootstrap);
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("metadata");
        let leader = metadata.topics()[0]
            .partitions()
            .iter()
            .find(|p| p.id() == partition)
            .expect("the partition")
            .leader();
        usize::try_from(leader).expect("a leader")
    }
}

impl Broker {
    /// A fresh 3-partition topic on the real Kafka this test binary shares, or None when
    /// there is none (outside CI; the test is then skipped, saying so).
    pub fn kafka(test: &str) -> Option<Broker> {
        Broker::kafka_with(test, &unique("orders"), 3)
    }

    pub fn kafka_with(test: &str, topic: &str, partitions: i32) -> Option<Broker> {
        let kafka = Kafka::shared(test)?;
        Some(Broker::on(kafka, topic, partitions))
    }

    /// A fresh 3-partition topic without the dead-letter topic beside it: a cluster set up
    /// by hand rather than by docker/compose.yml.
    pub fn kafka_without_dead_letters(test: &str) -> Option<Broker> {
        let kafka = Kafka::shared(test)?;
        let topic = unique("orders");
        kafka.create_topic(&topic, 3);
        Some(Broker {
            child: None,
            commands: None,
            address: kafka.bootstrap.clone(),
            topic,
            kafka: Some(kafka),
        })
    }

    /// A fresh topic on `kafka`.
    pub fn on(kafka: &'static Kafka, topic: &str, partitions: i32) -> Broker {
        kafka.create_topic(topic, partitions);
        // As docker/compose.yml does: a cluster a class uses has the dead-letter topic.
        kafka.create_topic(&format!("{topic}.dlq"), partitions);
        Broker {
            child: None,
            commands: None,
            address: kafka.bootstrap.clone(),
            topic: topic.to_owned(),
            kafka: Some(kafka),
        }
    }
}

/// ORDERFLOW_TEST_KAFKA_PORT: the first client port of the clusters the tests start (node i
/// on port + i - 1, its controller on port + 100 + i - 1) instead of free ports, for machines
/// where each user keeps to a range of ports. One cluster at a time: for one test binary
/// that starts one cluster (tests/failover.rs), not for the shared node of many binaries.
fn fixed_port() -> Option<u16> {
    let port = std::env::var("ORDERFLOW_TEST_KAFKA_PORT").ok()?;
    Some(
        port.parse()
            .unwrap_or_else(|_| panic!("ORDERFLOW_TEST_KAFKA_PORT={port} is not a port")),
    )
}

/// Finds Kafka and Java, or says loudly why not and returns None (a failure under CI).
pub fn install(test: &str) -> Option<KafkaInstall> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    match KafkaInstall::locate(&[manifest]) {
        Ok(install) => Some(install),
        Err(
            e @ (KraftError::NotFound { .. } | KraftError::NoJava(_) | KraftError::OldJava { .. }),
        ) => {
            skipped(test, Some(&e));
            None
        }
        Err(e) => panic!("{e}"),
    }
}

fn skipped(test: &str, why: Option<&KraftError>) {
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
    if let Some(why) = why {
        eprintln!(
            "\n===== REAL KAFKA TESTS SKIPPED: {why}\n===== (README: \"Real Kafka without \
             Docker\")\n"
        );
    }
    assert!(
        !ci,
        "CI=true and no real Kafka for {test}: the real-Kafka tests must run in CI"
    );
    eprintln!("===== skipped on real Kafka (no Kafka found): {test}");
}

fn metadata_client(bootstrap: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "3")
        .create()
        .expect("metadata client")
}

/// Waits until the cluster's metadata lists `nodes` brokers: a node that logged its start
/// may not be registered (unfenced) yet, and a topic replicated three times needs all three.
fn wait_for_brokers(bootstrap: &str, nodes: usize) {
    let consumer = metadata_client(bootstrap);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(metadata) = consumer.fetch_metadata(None, Duration::from_secs(5))
            && metadata.brokers().len() >= nodes
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "Kafka on {bootstrap} did not list {nodes} brokers within 60 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn wait_for_leaders(bootstrap: &str, topic: &str, partitions: usize) {
    let consumer = metadata_client(bootstrap);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(metadata) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5))
            && let Some(t) = metadata.topics().first()
            && t.error().is_none()
            && t.partitions().len() == partitions
            && t.partitions()
                .iter()
                .all(|p| p.leader() >= 0 && p.error().is_none())
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "topic {topic} on {bootstrap} had no leader for every partition within 60 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
