//! The integration-test harness: a development broker process per test on a free port, the
//! real `orderflow` binary, and a plain librdkafka reader to check what reached the topic.
#![allow(dead_code)] // each test binary uses its own subset of the harness

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

/// A name no other test (or earlier run against a long-lived broker) uses.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The orderflow binary under test, with the user's ORDERFLOW_* settings removed so that only
/// what a test passes counts.
pub fn orderflow() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_orderflow"));
    command
        .env_remove("ORDERFLOW_BROKERS")
        .env_remove("ORDERFLOW_TOPIC")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    command
}

/// Runs a command to completion, killing it if it takes longer than `limit` (a hang is a
/// failure, not a stuck CI run). Output is drained while it runs, so a chatty command cannot
/// block on a full pipe.
pub fn run_with_limit(command: &mut Command, limit: Duration) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn orderflow");
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            buf
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "command did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                text(&stdout.join().unwrap()),
                text(&stderr.join().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A development broker (`orderflow broker`) on a free port, stopped when dropped.
pub struct Broker {
    child: Child,
    /// `host:port` for `-b`.
    pub address: String,
    /// The topic it created at start.
    pub topic: String,
}

impl Broker {
    /// A broker with a fresh 3-partition topic.
    pub fn start() -> Broker {
        Broker::start_with(&unique("orders"), 3)
    }

    pub fn start_with(topic: &str, partitions: u32) -> Broker {
        let mut child = orderflow()
            .args(["broker", "--listen", "127.0.0.1:0", "-t", topic])
            .args(["--partitions", &partitions.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn orderflow broker");
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        // Keep draining stdout after the address line so the broker never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("orderflow broker listening on ") {
                    let address = rest.split_whitespace().next().unwrap_or("").to_owned();
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(address);
                    }
                }
            }
        });
        let address = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(address) => address,
            Err(_) => {
                let _ = child.kill();
                panic!("the broker did not report its address within 20 s");
            }
        };
        Broker {
            child,
            address,
            topic: topic.to_owned(),
        }
    }

    /// `orderflow -b <this broker> -t <its topic> <args…>`.
    pub fn orderflow(&self, args: &[&str]) -> Command {
        let mut command = orderflow();
        command
            .args(["-b", &self.address, "-t", &self.topic])
            .args(args);
        command
    }

    /// Sends a signal to the broker process.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        signal_child(&self.child, signal);
    }

    /// Waits for the broker to exit.
    pub fn wait(mut self, limit: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                started.elapsed() < limit,
                "broker did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn signal_child(child: &Child, signal: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, signal).expect("send signal");
}

/// One record as read back from the topic.
#[derive(Clone, Debug)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

/// Reads every record of `topic` (all partitions, from the beginning up to the high
/// watermark at the time of the call), without a consumer group.
pub fn read_topic(address: &str, topic: &str) -> Vec<Record> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", address)
        // librdkafka wants a group even for assign(); nothing is committed to it.
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .set("log_level", "3")
        .create()
        .expect("test consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let partitions = metadata.topics()[0].partitions().len() as i32;
    let mut ends = HashMap::new();
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, Duration::from_secs(10))
            .expect("watermarks");
        if high > low {
            ends.insert(partition, high);
            assignment
                .add_partition_offset(topic, partition, Offset::Offset(low))
                .expect("assign");
        }
    }
    let expected: i64 = ends.values().sum::<i64>();
    let mut records = Vec::new();
    if ends.is_empty() {
        return records;
    }
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut reached = HashMap::new();
    while reached.len() < ends.len() {
        assert!(
            Instant::now() < deadline,
            "read {} of {expected} records of {topic} within 60 s",
            records.len()
        );
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.expect("consume");
        records.push(Record {
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
        });
        if message.offset() + 1 >= ends[&message.partition()] {
            reached.insert(message.partition(), ());
        }
    }
    records.retain(|r| r.offset < ends[&r.partition]);
    records
}

/// A TCP port with nothing listening on it (bound, then released).
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}
