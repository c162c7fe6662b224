//! Real Apache Kafka on loopback, started from its jars: finds a Kafka distribution and a Java
//! runtime, formats KRaft storage and runs combined broker+controller nodes (one, or three
//! with replication factor 3 and min.insync.replicas 2, as docker/compose.cluster.yml does).
//!
//! The test harness, the benches and `orderflow cluster` start real Kafka through this one
//! piece, so what the tests prove holds for the cluster a learner gets. No Docker: Java 17 and
//! the jars of an Apache Kafka download (its `libs/` folder) are all it takes.
//!
//! A cluster that is not tied to the process that started it outlives it: its state (nodes,
//! ports, pids, the Kafka and Java it runs on) is kept in `DIR/cluster.json`, and
//! [`KraftCluster::open`] finds it again from there, so separate commands can kill, restart,
//! inspect and stop it.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The Kafka version the project is tested with (docker/compose.yml runs the same).
pub const KAFKA_VERSION: &str = "4.1.0";

/// The oldest Java that runs Kafka 4 brokers.
pub const MIN_JAVA: u32 = 17;

/// How long a node may take to start. A JVM broker starts in about 5 s on two idle cores;
/// a loaded CI machine starting three at once needs several times that.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// How to get Kafka, for messages: one line per way.
pub const HOW_TO_GET_KAFKA: &str =
    "  - download Apache Kafka 4.1.0 (kafka_2.13-4.1.0.tgz) from kafka.apache.org/downloads, \
unpack it and set KAFKA_HOME to the unpacked folder;
  - or set ORDERFLOW_KAFKA_LIBS to a folder holding Kafka's jars (kafka_2.13-4.1.0.jar, \
kafka-tools-4.1.0.jar and their dependencies);
  - or give `orderflow cluster start --kafka PATH` the unpacked download;
  - and have Java 17 or newer on PATH (Debian/Ubuntu: apt-get install openjdk-17-jre-headless).";

/// How to get Java 17, for messages.
pub const HOW_TO_GET_JAVA: &str =
    "  Debian/Ubuntu: sudo apt-get install openjdk-17-jre-headless; Fedora: sudo dnf install \
java-17-openjdk-headless; macOS: brew install openjdk@17; anywhere: adoptium.net.
  Then put its bin/ first on PATH, or set JAVA_HOME to it (or JAVA to its java).";

/// The file in a cluster's folder that records its nodes, so later commands find them.
pub const STATE_FILE: &str = "cluster.json";

/// How long a clean stop may take before a node is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why real Kafka could not be found or started.
#[derive(Debug, thiserror::Error)]
pub enum KraftError {
    #[error("no Apache Kafka found; looked in:\n{tried}\nTo get it:\n{HOW_TO_GET_KAFKA}")]
    NotFound { tried: String },
    #[error(
        "no Java runtime found ({0}); Kafka needs Java {MIN_JAVA} or newer. To get it:\n{HOW_TO_GET_JAVA}"
    )]
    NoJava(String),
    #[error(
        "{java} is Java {found}; Kafka 4 needs Java {MIN_JAVA} or newer. To get it:\n{HOW_TO_GET_JAVA}"
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
    #[error("node {node} exited while starting; from {log}:\n{tail}")]
    Exited {
        node: usize,
        log: String,
        tail: String,
    },
    #[error(
        "node {node} did not start within {} s; from {log}:\n{tail}",
        START_TIMEOUT.as_secs()
    )]
    NotReady {
        node: usize,
        log: String,
        tail: String,
    },
    #[error("there is no node {node}: the cluster has {}", node_range(*nodes))]
    NoSuchNode { node: usize, nodes: usize },
    #[error(
        "port {port} on 127.0.0.1 is taken ({what}); stop what listens there, or choose other \
         ports with --port (node i uses P+i-1 for clients and P+100+i-1 for its controller)"
    )]
    PortTaken { port: u16, what: String },
    #[error(
        "--port {port} with {nodes} node(s) needs ports up to {}, past 65535",
        u32::from(*port) + 100 + *nodes as u32 - 1
    )]
    PortRange { port: u16, nodes: usize },
    #[error("no cluster in {dir} (no {STATE_FILE}); start one with `orderflow cluster start`")]
    NoCluster { dir: String },
    #[error("{path} is not a cluster state file orderflow wrote: {reason}")]
    BadState { path: String, reason: String },
    #[error("stopped waiting for the nodes to start (interrupted); the nodes were stopped")]
    Interrupted,
}

fn node_range(nodes: usize) -> String {
    match nodes {
        1 => "only node 1".to_owned(),
        n => format!("nodes 1 to {n}"),
    }
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
        KafkaInstall::locate_from(None, near)
    }

    /// As [`KafkaInstall::locate`], but when `kafka` is given (an unpacked Apache download,
    /// or a folder of its jars) only there.
    pub fn locate_from(kafka: Option<&Path>, near: &[&Path]) -> Result<KafkaInstall, KraftError> {
        let mut candidates: Vec<(String, PathBuf)> = Vec::new();
        if let Some(kafka) = kafka {
            // An unpacked download has its jars in libs/; a folder of jars is taken as it is.
            let libs = if kafka.join("libs").is_dir() {
                kafka.join("libs")
            } else {
                kafka.to_path_buf()
            };
            candidates.push(("--kafka".into(), libs));
        } else if let Some(libs) = std::env::var_os("ORDERFLOW_KAFKA_LIBS") {
            candidates.push(("ORDERFLOW_KAFKA_LIBS".into(), PathBuf::from(libs)));
        }
        if kafka.is_none() {
            if let Some(home) = std::env::var_os("KAFKA_HOME") {
                candidates.push(("$KAFKA_HOME/libs".into(), PathBuf::from(home).join("libs")));
            }
            for dir in near {
                let libs = dir.join("../shared/kafka/libs");
                candidates.push((format!("beside {}", dir.display()), libs));
            }
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
    /// is removed when this process ends, however it ends. Otherwise its nodes run in a
    /// process group of their own and its state is kept in `dir`/[`STATE_FILE`].
    pub tied_to_this_process: bool,
}

/// What a start, restart or stop is doing, for a command to show while it waits.
#[derive(Clone, Debug)]
pub enum Progress {
    /// Kafka's storage tool is formatting the nodes' data folders.
    Formatting { nodes: usize },
    /// Node `node`'s JVM runs as `pid` and is starting.
    Launched {
        node: usize,
        pid: u32,
        address: String,
    },
    /// Still waiting for node `node` (about once a second); the last line it logged.
    Waiting {
        node: usize,
        elapsed: Duration,
        last_log: Option<String>,
    },
    /// Node `node` logged that it started.
    Started { node: usize, elapsed: Duration },
    /// SIGTERM was sent to these nodes; waiting for them to exit.
    Stopping { nodes: Vec<usize> },
    /// Still waiting for these nodes to exit (about once a second).
    StillStopping {
        nodes: Vec<usize>,
        elapsed: Duration,
    },
    /// Node `node` exited; `forced` when it had to be killed after [`STOP_TIMEOUT`].
    Stopped {
        node: usize,
        elapsed: Duration,
        forced: bool,
    },
}

/// Receives [`Progress`]; returning false while nodes start gives up (they are stopped).
pub type Observer<'a> = &'a mut dyn FnMut(Progress) -> bool;

/// A node's JVM.
#[derive(Debug)]
enum Jvm {
    /// Started by this process.
    Child(Child),
    /// Started by an earlier command and found again from the state file: only its pid is
    /// known, and it is signalled rather than waited for.
    Detached(u32),
}

impl Jvm {
    fn pid(&self) -> u32 {
        match self {
            Jvm::Child(child) => child.id(),
            Jvm::Detached(pid) => *pid,
        }
    }

    /// Whether the JVM still runs. (A detached pid was checked to be this node's Kafka when
    /// the state file was read: [`is_node_process`].)
    fn running(&mut self) -> bool {
        match self {
            Jvm::Child(child) => matches!(child.try_wait(), Ok(None)),
            Jvm::Detached(pid) => process_alive(*pid),
        }
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        let Ok(pid) = i32::try_from(self.pid()) else {
            return;
        };
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
    }

    /// SIGKILL, and waits until it is gone.
    fn kill(&mut self) {
        match self {
            Jvm::Child(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Jvm::Detached(_) => {
                self.signal(nix::sys::signal::Signal::SIGKILL);
                let deadline = Instant::now() + Duration::from_secs(10);
                while self.running() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

/// Whether process `pid` exists and has not exited. A process that has exited but not been
/// reaped (a zombie: its parent, the command that started it, is gone) has released its
/// ports and files; one still exiting has not, and counts as alive until it is a zombie.
fn process_alive(pid: u32) -> bool {
    let stat = Path::new("/proc").join(pid.to_string()).join("stat");
    if Path::new("/proc/self").exists() {
        return match std::fs::read_to_string(stat) {
            // "pid (comm) S ...": the state follows the last ')'.
            Ok(text) => text
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next())
                .is_some_and(|state| state != 'Z' && state != 'X'),
            Err(_) => false,
        };
    }
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // No /proc (macOS): signal 0 checks that the process exists.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

/// Whether process `pid` is the Kafka JVM started with `properties`. A pid alone is not
/// enough: the number may have been reused since the state file was written.
fn is_node_process(pid: u32, properties: &Path) -> bool {
    let command_line = if Path::new("/proc/self").exists() {
        // A zombie (exited, not yet reaped) has an empty command line: it counts as gone.
        match std::fs::read(format!("/proc/{pid}/cmdline")) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).replace('\0', " "),
            Err(_) => return false,
        }
    } else {
        match Command::new("ps")
            .args(["-o", "args=", "-p", &pid.to_string()])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
        {
            Ok(output) if output.status.success() => {
                String::from_utf8_lossy(&output.stdout).into_owned()
            }
            _ => return false,
        }
    };
    command_line.contains("kafka.Kafka") && command_line.contains(&properties.display().to_string())
}

/// One node of a running cluster.
#[derive(Debug)]
struct Node {
    /// Kafka's node.id, 1-based.
    id: usize,
    client_port: u16,
    controller_port: u16,
    dir: PathBuf,
    /// The JVM, while it runs.
    process: Option<Jvm>,
    /// For a cluster tied to this process: kills the JVM once this process has ended.
    watchdog: Option<(Child, ChildStdin)>,
}

impl Node {
    fn properties(&self) -> PathBuf {
        self.dir.join("server.properties")
    }

    /// Whether its JVM runs; forgets a JVM that has exited.
    fn running(&mut self) -> bool {
        let running = self.process.as_mut().is_some_and(Jvm::running);
        if !running {
            if let Some(Jvm::Child(mut child)) = self.process.take() {
                let _ = child.wait();
            }
            self.watchdog = None;
        }
        running
    }
}

/// What `DIR/cluster.json` holds: enough to find a cluster's nodes again from another
/// process, and to start them again with the Kafka and Java that formatted them.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedCluster {
    /// The Kafka version orderflow was built for (informational).
    kafka_version: String,
    /// Kafka's jars.
    libs: PathBuf,
    /// The `java` executable and its major version.
    java: PathBuf,
    java_version: u32,
    nodes: Vec<SavedNode>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedNode {
    id: usize,
    client_port: u16,
    controller_port: u16,
    /// The JVM's pid when it was last started; null once it was stopped or killed.
    pid: Option<u32>,
}

/// The state of one node, for `cluster status`.
#[derive(Clone, Debug, Serialize)]
pub struct NodeStatus {
    /// Kafka's node.id, 1-based.
    pub id: usize,
    /// Whether its JVM runs.
    pub running: bool,
    pub pid: Option<u32>,
    /// `127.0.0.1:P` for clients.
    pub address: String,
    pub controller_port: u16,
    /// Its log file.
    pub log: PathBuf,
}

/// A running KRaft cluster; dropping it stops every node of a cluster tied to this process,
/// and leaves the others running.
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
        KraftCluster::start_observed(install, spec, &mut |_| true)
    }

    /// As [`KraftCluster::start`], telling `observer` what happens while it waits. With a
    /// fixed `spec.port`, every port is checked first: a taken one is named before anything
    /// is written.
    pub fn start_observed(
        install: &KafkaInstall,
        spec: ClusterSpec,
        observer: Observer<'_>,
    ) -> Result<KraftCluster, KraftError> {
        let ports = match spec.port {
            Some(base) => {
                if u32::from(base) + 100 + spec.nodes as u32 - 1 > u32::from(u16::MAX) {
                    return Err(KraftError::PortRange {
                        port: base,
                        nodes: spec.nodes,
                    });
                }
                let ports: Vec<(u16, u16)> = (0..spec.nodes as u16)
                    .map(|i| (base + i, base + 100 + i))
                    .collect();
                for (i, &(client, controller)) in ports.iter().enumerate() {
                    check_port_free(client, &format!("node {}'s client port", i + 1))?;
                    check_port_free(controller, &format!("node {}'s controller port", i + 1))?;
                }
                ports
            }
            None => free_ports(spec.nodes * 2)
                .map_err(io("choosing free ports"))?
                .chunks(2)
                .map(|p| (p[0], p[1]))
                .collect(),
        };
        std::fs::create_dir_all(&spec.dir)
            .map_err(io(format!("creating {}", spec.dir.display())))?;
        let log4j = spec.dir.join("log4j2.properties");
        std::fs::write(&log4j, LOG4J).map_err(io(format!("writing {}", log4j.display())))?;
        let voters = ports
            .iter()
            .enumerate()
            .map(|(i, (_, controller))| format!("{}@127.0.0.1:{controller}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let cluster_id = cluster_id();
        let mut nodes = Vec::new();
        let mut formats = Vec::new();
        observer(Progress::Formatting { nodes: spec.nodes });
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
                controller_port: controller,
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
        let all: Vec<usize> = (0..cluster.nodes.len()).collect();
        cluster.launch_and_wait(&all, observer)?;
        Ok(cluster)
    }

    /// Finds the cluster whose state is in `dir`/[`STATE_FILE`] (started by an earlier
    /// command), with each node running or not as it is now.
    pub fn open(dir: &Path) -> Result<KraftCluster, KraftError> {
        let path = dir.join(STATE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KraftError::NoCluster {
                    dir: dir.display().to_string(),
                });
            }
            Err(e) => return Err(io(format!("reading {}", path.display()))(e)),
        };
        let saved: SavedCluster =
            serde_json::from_str(&text).map_err(|e| KraftError::BadState {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        if saved.nodes.is_empty() {
            return Err(KraftError::BadState {
                path: path.display().to_string(),
                reason: "it lists no nodes".into(),
            });
        }
        let mut nodes: Vec<Node> = saved
            .nodes
            .iter()
            .map(|n| Node {
                id: n.id,
                client_port: n.client_port,
                controller_port: n.controller_port,
                dir: dir.join(format!("node{}", n.id)),
                // A pid that is no longer this node's Kafka (it exited, and the number may
                // have been reused since) is forgotten.
                process: n
                    .pid
                    .filter(|&pid| {
                        is_node_process(pid, &dir.join(format!("node{}/server.properties", n.id)))
                    })
                    .map(Jvm::Detached),
                watchdog: None,
            })
            .collect();
        for node in &mut nodes {
            node.running();
        }
        Ok(KraftCluster {
            install: KafkaInstall {
                libs: saved.libs,
                java: saved.java,
                java_version: saved.java_version,
            },
            spec: ClusterSpec {
                dir: dir.to_path_buf(),
                nodes: nodes.len(),
                port: Some(nodes[0].client_port),
                tied_to_this_process: false,
            },
            nodes,
            log4j: dir.join("log4j2.properties"),
            _cleaner: None,
        })
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

    /// The Kafka and Java this cluster runs on.
    pub fn install(&self) -> &KafkaInstall {
        &self.install
    }

    /// The client address of node `node` (1-based, Kafka's node.id).
    pub fn address(&self, node: usize) -> Result<String, KraftError> {
        Ok(format!("127.0.0.1:{}", self.node(node)?.client_port))
    }

    /// Whether node `node`'s JVM runs now.
    pub fn is_running(&mut self, node: usize) -> Result<bool, KraftError> {
        let index = self.index(node)?;
        Ok(self.nodes[index].running())
    }

    /// Each node: running or not, its pid, ports and log.
    pub fn status(&mut self) -> Vec<NodeStatus> {
        self.nodes
            .iter_mut()
            .map(|node| {
                let running = node.running();
                NodeStatus {
                    id: node.id,
                    running,
                    pid: node.process.as_ref().map(Jvm::pid),
                    address: format!("127.0.0.1:{}", node.client_port),
                    controller_port: node.controller_port,
                    log: node.dir.join("server.log"),
                }
            })
            .collect()
    }

    /// Kills node `node` with SIGKILL: a crash, as `kill -9` of its JVM.
    pub fn kill(&mut self, node: usize) -> Result<(), KraftError> {
        let index = self.index(node)?;
        let node = &mut self.nodes[index];
        if let Some(mut process) = node.process.take() {
            process.kill();
        }
        node.watchdog = None;
        self.save()
    }

    /// Starts node `node` again with its data (after [`KraftCluster::kill`]); returns once it
    /// has started.
    pub fn restart(&mut self, node: usize) -> Result<(), KraftError> {
        self.restart_observed(&[node], &mut |_| true)
    }

    /// Starts the given nodes again with their data (those that are not running), telling
    /// `observer` while it waits; returns once each has started.
    pub fn restart_observed(
        &mut self,
        nodes: &[usize],
        observer: Observer<'_>,
    ) -> Result<(), KraftError> {
        let mut down = Vec::new();
        for &node in nodes {
            let index = self.index(node)?;
            if !self.nodes[index].running() {
                down.push(index);
            }
        }
        for &index in &down {
            let node = &self.nodes[index];
            // A node killed a moment ago may still be closing its sockets.
            let deadline = Instant::now() + Duration::from_secs(3);
            for (port, what) in [
                (node.client_port, "client"),
                (node.controller_port, "controller"),
            ] {
                let what = format!("node {}'s {what} port", node.id);
                while let Err(e) = check_port_free(port, &what) {
                    if Instant::now() > deadline {
                        return Err(e);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        self.launch_and_wait(&down, observer)
    }

    /// Stops every node: SIGTERM (a clean shutdown), then SIGKILL after 30 s.
    pub fn stop(&mut self) {
        self.stop_observed(&mut |_| true);
    }

    /// As [`KraftCluster::stop`], telling `observer` while it waits.
    pub fn stop_observed(&mut self, observer: Observer<'_>) {
        let all: Vec<usize> = (0..self.nodes.len()).collect();
        self.stop_indices(&all, observer);
    }

    /// Stops the nodes at `indices` (SIGTERM, SIGKILL after [`STOP_TIMEOUT`]).
    fn stop_indices(&mut self, indices: &[usize], observer: Observer<'_>) {
        let mut waiting: Vec<usize> = Vec::new();
        for &index in indices {
            let node = &mut self.nodes[index];
            if node.running() {
                if let Some(process) = &node.process {
                    process.signal(nix::sys::signal::Signal::SIGTERM);
                }
                waiting.push(index);
            }
        }
        if waiting.is_empty() {
            return;
        }
        observer(Progress::Stopping {
            nodes: waiting.iter().map(|&i| self.nodes[i].id).collect(),
        });
        let started = Instant::now();
        let mut last_report = Instant::now();
        while !waiting.is_empty() {
            let forced = started.elapsed() > STOP_TIMEOUT;
            let mut still = Vec::new();
            for index in waiting {
                let node = &mut self.nodes[index];
                if forced && let Some(process) = node.process.as_mut() {
                    process.kill();
                }
                if node.running() {
                    still.push(index);
                } else {
                    node.process = None;
                    observer(Progress::Stopped {
                        node: node.id,
                        elapsed: started.elapsed(),
                        forced,
                    });
                }
            }
            waiting = still;
            if !waiting.is_empty() && last_report.elapsed() >= Duration::from_secs(1) {
                last_report = Instant::now();
                observer(Progress::StillStopping {
                    nodes: waiting.iter().map(|&i| self.nodes[i].id).collect(),
                    elapsed: started.elapsed(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        for &index in indices {
            self.nodes[index].watchdog = None;
        }
        let _ = self.save();
    }

    /// The process id of node `node`'s JVM, while it runs.
    pub fn pid(&self, node: usize) -> Result<Option<u32>, KraftError> {
        Ok(self.node(node)?.process.as_ref().map(Jvm::pid))
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

    /// Writes `dir`/[`STATE_FILE`] (not for a cluster tied to this process: nothing else
    /// needs to find it). Written through a temporary file, so a reader never sees half.
    fn save(&self) -> Result<(), KraftError> {
        if self.spec.tied_to_this_process {
            return Ok(());
        }
        let saved = SavedCluster {
            kafka_version: KAFKA_VERSION.to_owned(),
            libs: self.install.libs.clone(),
            java: self.install.java.clone(),
            java_version: self.install.java_version,
            nodes: self
                .nodes
                .iter()
                .map(|n| SavedNode {
                    id: n.id,
                    client_port: n.client_port,
                    controller_port: n.controller_port,
                    pid: n.process.as_ref().map(Jvm::pid),
                })
                .collect(),
        };
        let path = self.spec.dir.join(STATE_FILE);
        let partial = self.spec.dir.join(format!("{STATE_FILE}.partial"));
        let text = serde_json::to_string_pretty(&saved).expect("plain data") + "\n";
        std::fs::write(&partial, text)
            .and_then(|()| std::fs::rename(&partial, &path))
            .map_err(io(format!("writing {}", path.display())))
    }

    /// Launches the nodes at `indices` and waits until each has started; on failure (or
    /// when `observer` gives up) stops those nodes again (the others keep running).
    fn launch_and_wait(
        &mut self,
        indices: &[usize],
        observer: Observer<'_>,
    ) -> Result<(), KraftError> {
        let mut offsets = Vec::new();
        for &index in indices {
            let log = self.nodes[index].dir.join("server.log");
            offsets.push(std::fs::metadata(&log).map_or(0, |m| m.len()));
            let launched = self.launch(index);
            // Saved at once: a command interrupted from here on still leaves the pids behind
            // for `cluster stop`.
            let saved = self.save();
            launched?;
            saved?;
            let node = &self.nodes[index];
            observer(Progress::Launched {
                node: node.id,
                pid: node.process.as_ref().map_or(0, Jvm::pid),
                address: format!("127.0.0.1:{}", node.client_port),
            });
        }
        let started = Instant::now();
        for (&index, &offset) in indices.iter().zip(&offsets) {
            if let Err(e) = self.wait_started(index, offset, started, observer) {
                self.stop_indices(indices, observer);
                return Err(e);
            }
        }
        Ok(())
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
            .arg(node.properties())
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
        node.process = Some(Jvm::Child(process));
        node.watchdog = watchdog;
        Ok(())
    }

    /// Waits until node `index` logs "Kafka Server started" past byte `from` of its log.
    fn wait_started(
        &mut self,
        index: usize,
        from: u64,
        started: Instant,
        observer: Observer<'_>,
    ) -> Result<(), KraftError> {
        let log = self.nodes[index].dir.join("server.log");
        let mut last_report = Instant::now();
        loop {
            let id = self.nodes[index].id;
            if log_says_started(&log, from) {
                observer(Progress::Started {
                    node: id,
                    elapsed: started.elapsed(),
                });
                return Ok(());
            }
            let exited = !self.nodes[index].running();
            let timed_out = started.elapsed() > START_TIMEOUT;
            let mut given_up = false;
            if !exited && !timed_out && last_report.elapsed() >= Duration::from_secs(1) {
                last_report = Instant::now();
                given_up = !observer(Progress::Waiting {
                    node: id,
                    elapsed: started.elapsed(),
                    last_log: last_line(&log),
                });
            }
            if exited || timed_out || given_up {
                let (log, tail) = last_lines(&self.nodes[index].dir);
                return Err(if given_up {
                    KraftError::Interrupted
                } else if exited {
                    KraftError::Exited {
                        node: id,
                        log,
                        tail,
                    }
                } else {
                    KraftError::NotReady {
                        node: id,
                        log,
                        tail,
                    }
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
                    process.kill();
                }
                node.watchdog = None;
            }
        }
    }
}

/// Fails with [`KraftError::PortTaken`] if something listens on (or holds) 127.0.0.1:`port`.
fn check_port_free(port: u16, what: &str) -> Result<(), KraftError> {
    match std::net::TcpListener::bind(("127.0.0.1", port)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(KraftError::PortTaken {
            port,
            what: what.to_owned(),
        }),
        Err(e) => Err(io(format!("checking port {port} ({what})"))(e)),
    }
}

/// The last non-empty line of a log, without Kafka's timestamp, for progress output.
fn last_line(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    // "[2026-12-01 11:02:03,123] INFO message (logger)" → "INFO message"
    let line = line.split_once("] ").map_or(line, |(_, rest)| rest);
    let line = line
        .rsplit_once(" (")
        .map_or(line, |(message, _)| message)
        .trim();
    (!line.is_empty()).then(|| line.to_owned())
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
            let start = lines.len().saturating_sub(15);
            let mut tail = lines[start..].join("\n");
            // A node that fails logs its reason once and then pages of orderly shutdown: the
            // first error (and what caused it) is what the reader needs.
            if let Some(first) = lines[..start].iter().position(|l| l.contains("] ERROR ")) {
                let cause = lines[first..start]
                    .iter()
                    .find(|l| l.starts_with("Caused by:"))
                    .map(|l| format!("\n{l}"))
                    .unwrap_or_default();
                tail = format!("{}{cause}\n…\n{tail}", lines[first]);
            }
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
