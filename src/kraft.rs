//! Real Apache Kafka on loopback, started from its jars: finds a Kafka distribution and a Java
//! runtime, formats KRaft storage and runs combined broker+controller nodes (one, or three
//! with replication factor 3 and min.insync.replicas 2, as docker/compose.cluster.yml does).
//!
//! The test harness and the benches start real Kafka through this one piece, so what the
//! tests prove holds for the cluster a learner gets. No Docker: Java 17 and the jars of an
//! Apache Kafka download (its `libs/` folder) are all it takes.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

/// The Kafka version the project is tested with (docker/compose.yml runs the same).
pub const KAFKA_VERSION: &str = "4.1.0";

/// The oldest Java that runs Kafka 4 brokers.
pub const MIN_JAVA: u32 = 17;

/// How long a node may take to start. A JVM broker starts in about 5 s on two idle cores;
/// a loaded CI machine starting three at once needs several times that.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// How to get Kafka, for messages: one line per way.
pub const HOW_TO_GET_KAFKA: &str = "\
  - download Apache Kafka 4.1.0 (kafka_2.13-4.1.0.tgz) from kafka.apache.org/downloads, \
unpack it and set KAFKA_HOME to the unpacked folder;
  - or set ORDERFLOW_KAFKA_LIBS to a folder holding Kafka's jars (kafka_2.13-4.1.0.jar, \
kafka-tools-4.1.0.jar and their dependencies);
  - and have Java 17 or newer on PATH (Debian/Ubuntu: apt-get install openjdk-17-jre-headless).";

/// Why real Kafka could not be found or started.
#[derive(Debug, thiserror::Error)]
pub enum KraftError {
    #[error("no Apache Kafka found; looked in:\n{tried}\nTo get it:\n{HOW_TO_GET_KAFKA}")]
    NotFound { tried: String },
    #[error(
        "no Java runtime found ({0}); Kafka needs Java {MIN_JAVA} or newer.\n{HOW_TO_GET_KAFKA}"
    )]
    NoJava(String),
    #[error(
        "{java} is Java {found}; Kafka 4 needs Java {MIN_JAVA} or newer (set JAVA_HOME to one)"
    )]
    OldJava { java: String, found: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("formatting the storage of node {node} failed:\n{output}")]
    Format { node: usize, output: String },
    #[error("node {node} exited while starting; the last lines of {log}:\n{tail}")]
    Exited {
        node: usize,
        log: String,
        tail: String,
    },
    #[error(
        "node {node} did not start within {} s; the last lines of {log}:\n{tail}",
        START_TIMEOUT.as_secs()
    )]
    NotReady {
        node: usize,
        log: String,
        tail: String,
    },
    #[error("there is no node {node} (the cluster has {nodes})")]
    NoSuchNode { node: usize, nodes: usize },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> KraftError {
    let what = what.into();
    move |source| KraftError::Io { what, source }
}

/// An Apache Kafka distribution: the folder of its jars, and the Java that runs them.
#[derive(Clone, Debug)]
pub struct KafkaInstall {
    /// The folder holding kafka_2.13-*.jar, kafka-tools-*.jar and their dependencies.
    pub libs: PathBuf,
    /// The `java` executable.
    pub java: PathBuf,
    /// Java's major version.
    pub java_version: u32,
}

impl KafkaInstall {
    /// Finds Kafka's jars, in this order: `ORDERFLOW_KAFKA_LIBS`, `$KAFKA_HOME/libs`, then
    /// `../shared/kafka/libs` beside each of `near` (a checkout's parent holds that folder on
    /// the project's machines). Then finds Java (`JAVA`, `$JAVA_HOME/bin/java`, `java`) and
    /// checks its version.
    pub fn locate(near: &[&Path]) -> Result<KafkaInstall, KraftError> {
        let mut candidates: Vec<(String, PathBuf)> = Vec::new();
        if let Some(libs) = std::env::var_os("ORDERFLOW_KAFKA_LIBS") {
            candidates.push(("ORDERFLOW_KAFKA_LIBS".into(), PathBuf::from(libs)));
        }
        if let Some(home) = std::env::var_os("KAFKA_HOME") {
            candidates.push(("$KAFKA_HOME/libs".into(), PathBuf::from(home).join("libs")));
        }
        for dir in near {
            let libs = dir.join("../shared/kafka/libs");
            candidates.push((format!("beside {}", dir.display()), libs));
        }
        let mut tried = String::new();
        let libs = candidates.into_iter().find_map(|(from, libs)| {
            if has_kafka_jars(&libs) {
                Some(libs)
            } else {
                let _ = writeln!(tried, "  - {} ({from}): no Kafka jars", libs.display());
                None
            }
        });
        let Some(libs) = libs else {
            if tried.is_empty() {
                tried = "  (nowhere: no ORDERFLOW_KAFKA_LIBS, no KAFKA_HOME)\n".into();
            }
            return Err(KraftError::NotFound {
                tried: tried.trim_end().to_owned(),
            });
        };
        let java = java_executable();
        let java_version = java_major_version(&java)?;
        if java_version < MIN_JAVA {
            return Err(KraftError::OldJava {
                java: java.display().to_string(),
                found: java_version.to_string(),
            });
        }
        Ok(KafkaInstall {
            libs: libs.canonicalize().unwrap_or(libs),
            java,
            java_version,
        })
    }

    /// A `java` command with Kafka's jars on the class path, logging with `log4j2` into
    /// `logs`.
    fn java(&self, log4j: &Path, logs: &Path) -> Command {
        let mut command = Command::new(&self.java);
        command
            .args(["-Xms128m", "-Xmx512m", "-XX:+UseG1GC"])
            .arg("-cp")
            .arg(self.libs.join("*"))
            .arg(format!("-Dlog4j2.configurationFile={}", log4j.display()))
            .arg(format!("-Dkafka.logs.dir={}", logs.display()))
            .stdin(Stdio::null());
        command
    }
}

fn has_kafka_jars(libs: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(libs) else {
        return false;
    };
    let names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let has = |prefix: &str| {
        names
            .iter()
            .any(|n| n.starts_with(prefix) && n.ends_with(".jar"))
    };
    has("kafka_2.13-") && has("kafka-tools-") && has("kafka-clients-")
}

fn java_executable() -> PathBuf {
    if let Some(java) = std::env::var_os("JAVA") {
        return PathBuf::from(java);
    }
    if let Some(home) = std::env::var_os("JAVA_HOME") {
        let java = PathBuf::from(home).join("bin/java");
        if java.exists() {
            return java;
        }
    }
    PathBuf::from("java")
}

/// Runs `java -version` and reads the major version from its first line
/// (`openjdk version "17.0.15" 2025-04-15`, or `"1.8.0_292"` for Java 8).
fn java_major_version(java: &Path) -> Result<u32, KraftError> {
    let output = Command::new(java)
        .arg("-version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| KraftError::NoJava(format!("{}: {e}", java.display())))?;
    let text = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    parse_java_version(&text).ok_or_else(|| {
        KraftError::NoJava(format!(
            "{} -version printed no version: {}",
            java.display(),
            text.lines().next().unwrap_or("")
        ))
    })
}

fn parse_java_version(text: &str) -> Option<u32> {
    let quoted = text.split('"').nth(1)?;
    let mut parts = quoted.split(['.', '_', '-', '+']);
    let first: u32 = parts.next()?.parse().ok()?;
    if first == 1 {
        parts.next()?.parse().ok()
    } else {
        Some(first)
    }
}

/// What cluster to start.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    /// Where the nodes keep their data, configuration and logs (created if missing).
    pub dir: PathBuf,
    /// 1, or 3 for replication and failover.
    pub nodes: usize,
    /// The first client port (node i serves on `port + i - 1`, its controller on
    /// `port + 100 + i - 1`), or None for free ports chosen by the system.
    pub port: Option<u16>,
    /// The cluster belongs to this process (tests, benches): its nodes stop and its folder
    /// is removed when this process ends, however it ends.
    pub tied_to_this_process: bool,
}

/// One node of a running cluster.
#[derive(Debug)]
struct Node {
    /// Kafka's node.id, 1-based.
    id: usize,
    client_port: u16,
    dir: PathBuf,
    /// The JVM, while it runs.
    process: Option<Child>,
    /// For a cluster tied to this process: kills the JVM once this process has ended.
    watchdog: Option<(Child, ChildStdin)>,
}

/// A running KRaft cluster; dropping it stops every node.
#[derive(Debug)]
pub struct KraftCluster {
    install: KafkaInstall,
    spec: ClusterSpec,
    nodes: Vec<Node>,
    /// The log4j2 configuration every JVM of this cluster uses.
    log4j: PathBuf,
    /// For a cluster tied to this process: removes its folder once this process has ended.
    _cleaner: Option<(Child, ChildStdin)>,
}

impl KraftCluster {
    /// Formats the storage of every node and starts them; returns once each node has logged
    /// that it started.
    pub fn start(install: &KafkaInstall, spec: ClusterSpec) -> Result<KraftCluster, KraftError> {
        std::fs::create_dir_all(&spec.dir)
            .map_err(io(format!("creating {}", spec.dir.display())))?;
        let log4j = spec.dir.join("log4j2.properties");
        std::fs::write(&log4j, LOG4J).map_err(io(format!("writing {}", log4j.display())))?;
        let ports = match spec.port {
            Some(base) => (0..spec.nodes as u16)
                .map(|i| (base + i, base + 100 + i))
                .collect::<Vec<_>>(),
            None => free_ports(spec.nodes * 2)
                .map_err(io("choosing free ports"))?
                .chunks(2)
                .map(|p| (p[0], p[1]))
                .collect(),
        };
        let voters = ports
            .iter()
            .enumerate()
            .map(|(i, (_, controller))| format!("{}@127.0.0.1:{controller}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let cluster_id = cluster_id();
        let mut nodes = Vec::new();
        let mut formats = Vec::new();
        for (i, &(client, controller)) in ports.iter().enumerate() {
            let id = i + 1;
            let dir = spec.dir.join(format!("node{id}"));
            std::fs::create_dir_all(dir.join("data"))
                .map_err(io(format!("creating {}", dir.display())))?;
            let properties = dir.join("server.properties");
            let config = server_properties(id, spec.nodes, client, controller, &voters, &dir);
            std::fs::write(&properties, config)
                .map_err(io(format!("writing {}", properties.display())))?;
            // The nodes' formats run side by side: each is a JVM start.
            let format = install
                .java(&log4j, &dir)
                .args(["kafka.tools.StorageTool", "format", "-t", &cluster_id, "-c"])
                .arg(&properties)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(io(format!("running {}", install.java.display())))?;
            formats.push((id, format));
            nodes.push(Node {
                id,
                client_port: client,
                dir,
                process: None,
                watchdog: None,
            });
        }
        for (node, format) in formats {
            let output = format
                .wait_with_output()
                .map_err(io("waiting for Kafka's storage tool"))?;
            if !output.status.success() {
                return Err(KraftError::Format {
                    node,
                    output: String::from_utf8_lossy(&output.stdout).into_owned()
                        + &String::from_utf8_lossy(&output.stderr),
                });
            }
        }
        let cleaner = if spec.tied_to_this_process {
            let script = "while read -r _; do :; done; sleep 1; rm -rf \"$0\"";
            Some(
                when_this_process_ends(script, &spec.dir.display().to_string())
                    .map_err(io("starting the cluster's cleaner"))?,
            )
        } else {
            None
        };
        let mut cluster = KraftCluster {
            install: install.clone(),
            spec,
            nodes,
            log4j,
            _cleaner: cleaner,
        };
        for i in 0..cluster.nodes.len() {
            cluster.launch(i)?;
        }
        for i in 0..cluster.nodes.len() {
            cluster.wait_started(i, 0)?;
        }
        Ok(cluster)
    }

    /// `127.0.0.1:P1,127.0.0.1:P2,…` for `-b`.
    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// How many nodes the cluster has.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always false: a cluster has at least one node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The client address of node `node` (1-based, Kafka's node.id).
    pub fn address(&self, node: usize) -> Result<String, KraftError> {
        Ok(format!("127.0.0.1:{}", self.node(node)?.client_port))
    }

    /// Kills node `node` with SIGKILL: a crash, as `kill -9` of its JVM.
    pub fn kill(&mut self, node: usize) -> Result<(), KraftError> {
        let index = self.index(node)?;
        let node = &mut self.nodes[index];
        if let Some(mut process) = node.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
        node.watchdog = None;
        Ok(())
    }

    /// Starts node `node` again with its data (after [`KraftCluster::kill`]); returns once it
    /// has started.
    pub fn restart(&mut self, node: usize) -> Result<(), KraftError> {
        let index = self.index(node)?;
        if self.nodes[index].process.is_some() {
            return Ok(());
        }
        let log = self.nodes[index].dir.join("server.log");
        let offset = std::fs::metadata(&log).map_or(0, |m| m.len());
        self.launch(index)?;
        self.wait_started(index, offset)
    }

    /// Stops every node: SIGTERM (a clean shutdown), then SIGKILL after 30 s.
    pub fn stop(&mut self) {
        for node in &self.nodes {
            if let Some(process) = &node.process {
                let _ = Command::new("kill")
                    .arg(process.id().to_string())
                    .stdin(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for node in &mut self.nodes {
            if let Some(mut process) = node.process.take() {
                while Instant::now() < deadline {
                    if matches!(process.try_wait(), Ok(Some(_))) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = process.kill();
                let _ = process.wait();
            }
            node.watchdog = None;
        }
    }

    /// The process id of node `node`'s JVM, while it runs.
    pub fn pid(&self, node: usize) -> Result<Option<u32>, KraftError> {
        Ok(self.node(node)?.process.as_ref().map(Child::id))
    }

    /// One of Kafka's own tools (a class of kafka-tools, e.g.
    /// `org.apache.kafka.tools.consumer.group.ConsumerGroupCommand`) with
    /// `--bootstrap-server` set to this cluster; add its arguments and run it.
    pub fn tool(&self, class: &str) -> Command {
        let mut command = self.install.java(&self.log4j, &self.spec.dir);
        command
            .arg(class)
            .arg("--bootstrap-server")
            .arg(self.bootstrap());
        command
    }

    /// The folder the cluster lives in.
    pub fn dir(&self) -> &Path {
        &self.spec.dir
    }

    fn node(&self, node: usize) -> Result<&Node, KraftError> {
        Ok(&self.nodes[self.index(node)?])
    }

    fn index(&self, node: usize) -> Result<usize, KraftError> {
        if node == 0 || node > self.nodes.len() {
            return Err(KraftError::NoSuchNode {
                node,
                nodes: self.nodes.len(),
            });
        }
        Ok(node - 1)
    }

    fn launch(&mut self, index: usize) -> Result<(), KraftError> {
        let node = &self.nodes[index];
        let stdout = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.dir.join("stdout.log"))
            .map_err(io("opening the node's stdout.log"))?;
        let stderr = stdout.try_clone().map_err(io("opening stdout.log"))?;
        let mut command = self.install.java(&self.log4j, &node.dir);
        command
            .arg("kafka.Kafka")
            .arg(node.dir.join("server.properties"))
            .stdout(stdout)
            .stderr(stderr);
        if !self.spec.tied_to_this_process {
            // Its own process group: a Ctrl-C in the terminal that started it does not stop it.
            use std::os::unix::process::CommandExt as _;
            command.process_group(0);
        }
        let process = command
            .spawn()
            .map_err(io(format!("running {}", self.install.java.display())))?;
        let watchdog = if self.spec.tied_to_this_process {
            let script = "while read -r _; do :; done; kill -9 \"$0\" 2>/dev/null";
            Some(
                when_this_process_ends(script, &process.id().to_string())
                    .map_err(io("starting the node's watchdog"))?,
            )
        } else {
            None
        };
        let node = &mut self.nodes[index];
        node.process = Some(process);
        node.watchdog = watchdog;
        Ok(())
    }

    /// Waits until node `index` logs "Kafka Server started" past byte `from` of its log.
    fn wait_started(&mut self, index: usize, from: u64) -> Result<(), KraftError> {
        let started = Instant::now();
        let log = self.nodes[index].dir.join("server.log");
        loop {
            if log_says_started(&log, from) {
                return Ok(());
            }
            let node = &mut self.nodes[index];
            let exited = match node.process.as_mut() {
                Some(p) => !matches!(p.try_wait(), Ok(None)),
                None => true,
            };
            if exited || started.elapsed() > START_TIMEOUT {
                let (log_name, tail) = last_lines(&node.dir);
                let (node, log) = (node.id, log_name);
                self.stop();
                return Err(if exited {
                    KraftError::Exited { node, log, tail }
                } else {
                    KraftError::NotReady { node, log, tail }
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for KraftCluster {
    fn drop(&mut self) {
        // A test or bench that ends (or fails) takes its cluster with it at once: no data
        // of a throw-away cluster is worth a clean shutdown's wait.
        if self.spec.tied_to_this_process {
            for node in &mut self.nodes {
                if let Some(mut process) = node.process.take() {
                    let _ = process.kill();
                    let _ = process.wait();
                }
                node.watchdog = None;
            }
        }
    }
}

/// A shell running `script` (with `arg` as `$0`), which first waits for its stdin to close.
/// The caller keeps the write end: it closes when the caller drops it or its process ends,
/// however that happens (a test binary never runs the destructors of its statics).
fn when_this_process_ends(script: &str, arg: &str) -> std::io::Result<(Child, ChildStdin)> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(arg)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("piped");
    stdin.flush()?;
    Ok((child, stdin))
}

fn log_says_started(log: &Path, from: u64) -> bool {
    let Ok(file) = std::fs::File::open(log) else {
        return false;
    };
    let mut reader = BufReader::new(file);
    if from > 0 {
        use std::io::Seek as _;
        if reader.seek(std::io::SeekFrom::Start(from)).is_err() {
            return false;
        }
    }
    reader
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("Kafka Server started"))
}

/// The last lines a node logged (server.log, or stdout.log when the JVM died before logging
/// was set up), for a message.
fn last_lines(dir: &Path) -> (String, String) {
    for name in ["server.log", "stdout.log"] {
        let path = dir.join(name);
        if let Ok(text) = std::fs::read_to_string(&path)
            && !text.trim().is_empty()
        {
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(15)..].join("\n");
            return (path.display().to_string(), tail);
        }
    }
    (
        dir.join("stdout.log").display().to_string(),
        "(empty)".into(),
    )
}

/// Ports nothing listens on now (bound together, then released).
fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}

/// A KRaft cluster id: 16 random bytes in URL-safe base64 without padding, as Kafka's
/// `Uuid.randomUuid()` makes them (which also never starts one with '-').
fn cluster_id() -> String {
    loop {
        let id =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>());
        if !id.starts_with('-') {
            return id;
        }
    }
}

fn server_properties(
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

const LOG4J: &str = "status = warn
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
    fn java_versions_are_read_from_both_styles() {
        assert_eq!(
            parse_java_version("openjdk version \"17.0.15\" 2025-04-15\nOpenJDK Runtime"),
            Some(17)
        );
        assert_eq!(parse_java_version("java version \"1.8.0_292\""), Some(8));
        assert_eq!(
            parse_java_version("openjdk version \"21\" 2023-09-19"),
            Some(21)
        );
        assert_eq!(parse_java_version("openjdk version \"22-ea\""), Some(22));
        assert_eq!(parse_java_version("no version here"), None);
    }

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

    #[test]
    fn a_folder_without_kafka_jars_is_not_kafka() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!has_kafka_jars(dir.path()));
        for jar in [
            "kafka_2.13-4.1.0.jar",
            "kafka-tools-4.1.0.jar",
            "kafka-clients-4.1.0.jar",
        ] {
            std::fs::write(dir.path().join(jar), b"").unwrap();
        }
        assert!(has_kafka_jars(dir.path()));
        assert!(!has_kafka_jars(&dir.path().join("missing")));
    }
}
