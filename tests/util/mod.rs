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
        .env_remove("ORDERFLOW_METRICS")
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

pub mod kafka;

/// Where a test's records go: a development broker (`orderflow broker`) of its own on a free
/// port, stopped when dropped, or a fresh topic on the real Kafka this test binary shares
/// ([`Broker::kafka`]).
pub struct Broker {
    /// The development broker's process; None on real Kafka.
    child: Option<Child>,
    /// The broker's stdin, for outage commands (`down`, `up`).
    commands: Option<std::process::ChildStdin>,
    /// `host:port` for `-b`.
    pub address: String,
    /// The topic it created at start.
    pub topic: String,
    /// The real Kafka cluster this topic lives on, when it is not the development broker.
    pub kafka: Option<&'static kafka::Kafka>,
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
            .stdin(Stdio::piped())
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
        let commands = child.stdin.take();
        Broker {
            child: Some(child),
            commands,
            address,
            topic: topic.to_owned(),
            kafka: None,
        }
    }

    /// Whether this is real Kafka (not the development broker).
    pub fn is_kafka(&self) -> bool {
        self.kafka.is_some()
    }

    /// Which broker, for messages: "built-in broker" or "real Kafka".
    pub fn kind(&self) -> &'static str {
        if self.is_kafka() {
            "real Kafka"
        } else {
            "built-in broker"
        }
    }

    /// Types a command into the broker's terminal: `down`, `down 3`, `up`.
    pub fn command(&mut self, command: &str) {
        use std::io::Write;
        let stdin = self
            .commands
            .as_mut()
            .expect("outage commands are the development broker's");
        writeln!(stdin, "{command}").expect("write to the broker");
        stdin.flush().expect("flush");
    }

    /// `orderflow -b <this broker> -t <its topic> <args…>`. On real Kafka, which every test
    /// of a binary shares, a role's group (`-g NAME`, or the role's default) is made this
    /// test's own with [`Broker::group`].
    pub fn orderflow(&self, args: &[&str]) -> Command {
        let mut args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        if self.is_kafka() {
            if let Some(at) = args.iter().position(|a| a == "-g" || a == "--group") {
                args[at + 1] = self.group(&args[at + 1]);
            } else if let Some(role) = args
                .first()
                .filter(|a| ["order-processor", "analytics", "storage"].contains(&a.as_str()))
            {
                let group = self.group(role);
                args.splice(1..1, ["-g".to_owned(), group]);
            }
        }
        let mut command = orderflow();
        command
            .args(["-b", &self.address, "-t", &self.topic])
            .args(args);
        command
    }

    /// The consumer group a test means by `name`: the name itself on a development broker
    /// (the test's own), the name and the topic on real Kafka (shared by the tests).
    pub fn group(&self, name: &str) -> String {
        if self.is_kafka() {
            format!("{name}.{}", self.topic)
        } else {
            name.to_owned()
        }
    }

    /// Sends a signal to the broker process.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        signal_child(self.child.as_ref().expect("a development broker"), signal);
    }

    /// Waits for the broker to exit.
    pub fn wait(mut self, limit: Duration) -> ExitStatus {
        let started = Instant::now();
        let child = self.child.as_mut().expect("a development broker");
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
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
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
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
    /// Headers as (name, UTF-8 value).
    pub headers: Vec<(String, String)>,
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
        use rdkafka::message::Headers;
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| {
                        let value = h.value.map(|v| String::from_utf8_lossy(v).into_owned());
                        (h.key.to_owned(), value.unwrap_or_default())
                    })
                    .collect()
            })
            .unwrap_or_default();
        records.push(Record {
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            headers,
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

/// A record as a misbehaving producer might send it: any key, any value, or none.
pub type RawRecord = (Option<Vec<u8>>, Option<Vec<u8>>);

/// An orderflow process running in the background whose stdout lines are collected as they
/// arrive (JSON Lines with `--json`), killed when dropped.
pub struct Running {
    child: Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Running {
    pub fn spawn(command: &mut Command) -> Running {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn orderflow");
        let collect = |pipe: Box<dyn std::io::Read + Send>| {
            let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let sink = std::sync::Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    sink.lock().unwrap().push(line);
                }
            });
            lines
        };
        let lines = collect(Box::new(child.stdout.take().unwrap()));
        let stderr = collect(Box::new(child.stderr.take().unwrap()));
        Running {
            child,
            lines,
            stderr,
        }
    }

    /// Every stdout line so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Every stdout line so far, parsed as JSON (lines that are not JSON are skipped).
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.lines()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Waits until `ready` holds for the collected JSON lines.
    pub fn wait_for(
        &self,
        what: &str,
        limit: Duration,
        ready: impl Fn(&[serde_json::Value]) -> bool,
    ) {
        let started = Instant::now();
        while !ready(&self.json()) {
            assert!(
                started.elapsed() < limit,
                "waited {limit:?} for {what}\nstdout:\n{}\nstderr:\n{}",
                self.lines().join("\n"),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The partitions this member owns according to its latest assigned/revoked line.
    pub fn owned(&self) -> Option<Vec<i64>> {
        owned(&self.json())
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        signal_child(&self.child, signal);
    }

    /// SIGKILL, no clean-up: a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The exit status if the process has ended, None while it runs.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("wait")
    }

    /// Waits for the process to exit and returns its status.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // Let the reader threads take the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return status;
            }
            assert!(
                started.elapsed() < limit,
                "did not exit within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                self.lines().join("\n"),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `owned` list of the latest assigned/revoked line.
pub fn owned(lines: &[serde_json::Value]) -> Option<Vec<i64>> {
    lines
        .iter()
        .rev()
        .find(|l| l["type"] == "assigned" || l["type"] == "revoked")
        .map(|l| {
            l["owned"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_i64().unwrap())
                .collect()
        })
}

/// JSON Lines of a finished command's stdout.
pub fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    text(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The last summary (`"final": true`) of a consumer role's JSON output.
pub fn final_summary(lines: &[serde_json::Value]) -> serde_json::Value {
    lines
        .iter()
        .rev()
        .find(|l| l["type"] == "summary" && l["final"] == true)
        .cloned()
        .unwrap_or_else(|| panic!("no final summary in {lines:#?}"))
}

impl Broker {
    /// Produces `count` generated events with `seed`, as fast as possible.
    pub fn produce(&self, count: u64, seed: u64) {
        let output = run_with_limit(
            &mut self.orderflow(&[
                "produce",
                "--count",
                &count.to_string(),
                "--rate",
                "0",
                "--seed",
                &seed.to_string(),
            ]),
            Duration::from_secs(120),
        );
        assert!(output.status.success(), "{}", text(&output.stderr));
    }

    /// Sends raw records (key, value) to this broker's topic, as a misbehaving producer
    /// would, and waits until each is acknowledged.
    pub fn send_raw(&self, records: &[RawRecord]) {
        self.send_raw_to(&self.topic, records);
    }

    /// As [`Broker::send_raw`], to another topic of this broker (created on first use).
    pub fn send_raw_to(&self, topic: &str, records: &[RawRecord]) {
        use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
        let producer: ThreadedProducer<rdkafka::producer::DefaultProducerContext> =
            ClientConfig::new()
                .set("bootstrap.servers", &self.address)
                .set("message.max.bytes", "4000000")
                .create()
                .expect("raw producer");
        for (key, value) in records {
            let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic);
            if let Some(key) = key {
                record = record.key(key.as_slice());
            }
            if let Some(value) = value {
                record = record.payload(value.as_slice());
            }
            producer.send(record).map_err(|(e, _)| e).expect("send");
        }
        producer.flush(Duration::from_secs(30)).expect("flush");
    }
}
