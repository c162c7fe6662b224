//! `DIR/cluster.json`: a cluster's state, kept so that other commands find it again.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::cluster::{KraftCluster, Node, NodeEvent};
use super::install::KafkaInstall;
use super::jvm::{Jvm, is_node_process};
use super::{ClusterSpec, KAFKA_VERSION, KraftError, STATE_FILE, io};
/// What `DIR/cluster.json` holds: enough to find a cluster's nodes again from another
/// process, and to start them again with the Kafka and Java that formatted them.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SavedCluster {
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
pub(super) struct SavedNode {
    id: usize,
    client_port: u16,
    controller_port: u16,
    /// The JVM's pid when it was last started; null once it was stopped or killed.
    pid: Option<u32>,
    /// What a command last did to it, and when (missing in the files of older orderflows).
    #[serde(default)]
    last: Option<NodeEvent>,
}

impl KraftCluster {
    /// Finds the cluster whose state is in `dir`/[`STATE_FILE`] (started by an earlier
    /// command), with each node running or not as it is now.
    pub(crate) fn open(dir: &Path) -> Result<KraftCluster, KraftError> {
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
                dir: dir.display().to_string(),
                reason: e.to_string(),
            })?;
        if saved.nodes.is_empty() {
            return Err(KraftError::BadState {
                path: path.display().to_string(),
                dir: dir.display().to_string(),
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
                last: n.last,
            })
            .collect();
        for node in &mut nodes {
            if node.running() {
                node.seen_up();
            }
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

    /// Writes `dir`/[`STATE_FILE`] (not for a cluster tied to this process: nothing else
    /// needs to find it). Written through a temporary file, so a reader never sees half.
    pub(super) fn save(&self) -> Result<(), KraftError> {
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
                    last: n.last,
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
}
