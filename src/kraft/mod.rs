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

mod cluster;
mod install;
mod jvm;
mod launch;
mod port_holder;
mod properties;
mod state;

use std::path::PathBuf;
use std::time::Duration;

pub use cluster::KraftCluster;
pub(crate) use cluster::{NodeAction, NodeStatus};
pub use install::KafkaInstall;
pub(crate) use jvm::node_processes_in;

/// The Kafka version the project is tested with (docker/compose.yml runs the same).
pub const KAFKA_VERSION: &str = "4.1.0";

/// The oldest Java that runs Kafka 4 brokers.
pub(crate) const MIN_JAVA: u32 = 17;

/// How long a node may take to start. A JVM broker starts in about 5 s on two idle cores;
/// a loaded CI machine starting three at once needs several times that.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// How to get Kafka, for messages: one line per way.
pub(crate) const HOW_TO_GET_KAFKA: &str =
    "  - run `scripts/setup --kafka` in the orderflow checkout (Maven fetches Kafka 4.1.0's jars \
into ~/.cache/orderflow, where orderflow looks);
  - or download Apache Kafka 4.1.0 (kafka_2.13-4.1.0.tgz) from kafka.apache.org/downloads, \
unpack it and set KAFKA_HOME to the unpacked folder;
  - or set ORDERFLOW_KAFKA_LIBS to a folder holding Kafka's jars (kafka_2.13-4.1.0.jar, \
kafka-tools-4.1.0.jar and their dependencies);
  - or give `orderflow cluster start --kafka PATH` the unpacked download;
  - and have Java 17 or newer on PATH (Debian/Ubuntu: apt-get install openjdk-17-jre-headless).";

/// How to get Java 17, for messages.
pub(crate) const HOW_TO_GET_JAVA: &str =
    "  Debian/Ubuntu: sudo apt-get install openjdk-17-jre-headless; Fedora: sudo dnf install \
java-17-openjdk-headless; macOS: brew install openjdk@17; anywhere: adoptium.net.
  Then put its bin/ first on PATH, or set JAVA_HOME to it (or JAVA to its java).";

/// The file in a cluster's folder that records its nodes, so later commands find them.
pub(crate) const STATE_FILE: &str = "cluster.json";

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
        "port {port} on 127.0.0.1 ({what}) is taken by {holder}; stop it, or choose other \
         ports with --port (node i uses P+i-1 for clients and P+100+i-1 for its controller)"
    )]
    PortTaken {
        port: u16,
        what: String,
        /// The process holding it ("pid 123 (command)"), as far as this user can see.
        holder: String,
    },
    #[error(
        "--port {port} with {nodes} node(s) needs ports up to {}, past 65535",
        u32::from(*port) + 100 + *nodes as u32 - 1
    )]
    PortRange { port: u16, nodes: usize },
    #[error("no cluster in {dir} (no {STATE_FILE}); start one with `orderflow cluster start`")]
    NoCluster { dir: String },
    #[error(
        "{path} is not a cluster state file orderflow wrote ({reason}), so the nodes of this \
         folder cannot be found from it; `orderflow cluster stop --wipe --dir {dir}` deletes the \
         folder's cluster files (once no Kafka node runs from it), then `cluster start` makes a \
         new cluster"
    )]
    BadState {
        path: String,
        dir: String,
        reason: String,
    },
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
pub(crate) enum Progress {
    /// Kafka's storage tool is formatting the nodes' data folders.
    Formatting { nodes: usize },
    /// Still formatting (about once a second): a JVM start per node.
    StillFormatting { elapsed: Duration },
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
pub(crate) type Observer<'a> = &'a mut dyn FnMut(Progress) -> bool;
