//! A running cluster: its nodes, starting it, and what commands ask of it.

use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::install::KafkaInstall;
use super::jvm::{Jvm, when_this_process_ends};
use super::launch::{check_port_free, free_ports};
use super::properties::{LOG4J, cluster_id, server_properties};
use super::{ClusterSpec, KraftError, Observer, Progress, io};

/// One node of a running cluster.
#[derive(Debug)]
pub(super) struct Node {
    /// Kafka's node.id, 1-based.
    pub(super) id: usize,
    pub(super) client_port: u16,
    pub(super) controller_port: u16,
    pub(super) dir: PathBuf,
    /// The JVM, while it runs.
    pub(super) process: Option<Jvm>,
    /// For a cluster tied to this process: kills the JVM once this process has ended.
    pub(super) watchdog: Option<(Child, ChildStdin)>,
    /// What a command last did to it, and when.
    pub(super) last: Option<NodeEvent>,
}

/// What an orderflow command did to a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum NodeAction {
    /// Launched its JVM (`cluster start`, `cluster restart`).
    Started,
    /// SIGKILL (`cluster kill`, or a stop that waited too long).
    Killed,
    /// A clean shutdown (`cluster stop`, `cluster stop-node`).
    Stopped,
}

/// The last thing a command did to a node, and when: how `cluster status` knows since when
/// a node is up or down, and tells a node a command took down from one that died by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NodeEvent {
    pub(crate) action: NodeAction,
    pub(crate) at: DateTime<Utc>,
}

impl NodeEvent {
    pub(super) fn now(action: NodeAction) -> Option<NodeEvent> {
        Some(NodeEvent {
            action,
            at: Utc::now(),
        })
    }
}

/// The file in a node's folder holding when a command last saw its JVM running: all there is
/// to say of a node that died without a command (a crash, a `kill -9` from outside).
const SEEN_UP: &str = "seen-up";

impl Node {
    pub(super) fn properties(&self) -> PathBuf {
        self.dir.join("server.properties")
    }

    /// Notes that its JVM runs now (best effort: only `cluster status`'s words depend on it).
    /// Every command that sees it running calls this, so a node that dies by itself later
    /// is never "never seen up".
    pub(super) fn seen_up(&self) {
        let _ = std::fs::write(self.dir.join(SEEN_UP), Utc::now().to_rfc3339() + "\n");
    }

    /// When a command last saw its JVM running.
    fn last_seen_up(&self) -> Option<DateTime<Utc>> {
        let text = std::fs::read_to_string(self.dir.join(SEEN_UP)).ok()?;
        DateTime::parse_from_rfc3339(text.trim())
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// Whether its JVM runs; forgets a JVM that has exited.
    pub(super) fn running(&mut self) -> bool {
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

/// The state of one node, for `cluster status`.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct NodeStatus {
    /// Kafka's node.id, 1-based.
    pub(crate) id: usize,
    /// Whether its JVM runs.
    pub(crate) running: bool,
    pub(crate) pid: Option<u32>,
    /// `127.0.0.1:P` for clients.
    pub(crate) address: String,
    pub(crate) controller_port: u16,
    /// Its log file.
    pub(crate) log: PathBuf,
    /// What a command last did to it, and when (None: nothing recorded, a cluster of an
    /// older orderflow).
    pub(crate) last: Option<NodeEvent>,
    /// When a command last saw it running.
    pub(crate) seen_up: Option<DateTime<Utc>>,
    /// When its log was last written.
    pub(crate) log_written: Option<DateTime<Utc>>,
}

/// A running KRaft cluster; dropping it stops every node of a cluster tied to this process,
/// and leaves the others running.
#[derive(Debug)]
pub struct KraftCluster {
    pub(super) install: KafkaInstall,
    pub(super) spec: ClusterSpec,
    pub(super) nodes: Vec<Node>,
    /// The log4j2 configuration every JVM of this cluster uses.
    pub(super) log4j: PathBuf,
    /// For a cluster tied to this process: removes its folder once this process has ended.
    pub(super) _cleaner: Option<(Child, ChildStdin)>,
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
    pub(crate) fn start_observed(
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
            // A wiped folder's node may have left this behind.
            let _ = std::fs::remove_file(dir.join(SEEN_UP));
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
                last: None,
            });
        }
        // Each format is a JVM start (seconds): say so every second rather than wait in
        // silence, and give up when the observer does.
        let formatting = Instant::now();
        let mut last_report = Instant::now();
        while formats
            .iter_mut()
            .any(|(_, format)| matches!(format.try_wait(), Ok(None)))
        {
            if last_report.elapsed() >= Duration::from_secs(1) {
                last_report = Instant::now();
                let go_on = observer(Progress::StillFormatting {
                    elapsed: formatting.elapsed(),
                });
                if !go_on {
                    for (_, format) in &mut formats {
                        let _ = format.kill();
                        let _ = format.wait();
                    }
                    return Err(KraftError::Interrupted);
                }
            }
            std::thread::sleep(Duration::from_millis(50));
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

    /// `127.0.0.1:P1,127.0.0.1:P2,…` for `-b`.
    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// How many nodes the cluster has.
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// The client address of node `node` (1-based, Kafka's node.id).
    pub(crate) fn address(&self, node: usize) -> Result<String, KraftError> {
        Ok(format!("127.0.0.1:{}", self.node(node)?.client_port))
    }

    /// Whether node `node`'s JVM runs now.
    pub(crate) fn is_running(&mut self, node: usize) -> Result<bool, KraftError> {
        let index = self.index(node)?;
        Ok(self.nodes[index].running())
    }

    /// Each node: running or not, its pid, ports and log, and since when. A running node is
    /// noted as seen up now.
    pub(crate) fn status(&mut self) -> Vec<NodeStatus> {
        self.nodes
            .iter_mut()
            .map(|node| {
                let running = node.running();
                if running {
                    node.seen_up();
                }
                let log = node.dir.join("server.log");
                let log_written = std::fs::metadata(&log)
                    .and_then(|m| m.modified())
                    .ok()
                    .map(DateTime::<Utc>::from);
                NodeStatus {
                    id: node.id,
                    running,
                    pid: node.process.as_ref().map(Jvm::pid),
                    address: format!("127.0.0.1:{}", node.client_port),
                    controller_port: node.controller_port,
                    log,
                    last: node.last,
                    seen_up: node.last_seen_up(),
                    log_written,
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
            node.last = NodeEvent::now(NodeAction::Killed);
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
    pub(crate) fn restart_observed(
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

    /// Stops every node: SIGTERM (a clean shutdown), then SIGKILL after 30 s, telling
    /// `observer` while it waits.
    pub(crate) fn stop_observed(&mut self, observer: Observer<'_>) {
        let all: Vec<usize> = (0..self.nodes.len()).collect();
        self.stop_indices(&all, observer);
    }

    /// Stops node `node` as [`KraftCluster::stop_observed`] stops them all.
    pub(crate) fn stop_node_observed(
        &mut self,
        node: usize,
        observer: Observer<'_>,
    ) -> Result<(), KraftError> {
        let index = self.index(node)?;
        self.stop_indices(&[index], observer);
        Ok(())
    }

    /// The process id of node `node`'s JVM, while it runs.
    pub(crate) fn pid(&self, node: usize) -> Result<Option<u32>, KraftError> {
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

    pub(super) fn node(&self, node: usize) -> Result<&Node, KraftError> {
        Ok(&self.nodes[self.index(node)?])
    }

    pub(super) fn index(&self, node: usize) -> Result<usize, KraftError> {
        if node == 0 || node > self.nodes.len() {
            return Err(KraftError::NoSuchNode {
                node,
                nodes: self.nodes.len(),
            });
        }
        Ok(node - 1)
    }
}
