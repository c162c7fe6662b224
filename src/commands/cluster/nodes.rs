//! `cluster stop`, `kill` and `restart`: the nodes' lifecycle after start.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;

use super::progress::{list, print_progress};
use super::{ClusterError, Place, StartLock};
use crate::kraft::{KraftCluster, KraftError, STATE_FILE};
use crate::shutdown::Shutdown;

pub(super) fn stop(place: &Place, wipe: bool) -> anyhow::Result<ExitCode> {
    let mut cluster = match KraftCluster::open(&place.dir) {
        Ok(cluster) => cluster,
        Err(KraftError::NoCluster { .. })
            if wipe
                && entries(&place.dir)
                    .iter()
                    .any(|name| is_cluster_file(name) && name != StartLock::NAME) =>
        {
            // What a start that did not finish left (node folders, no cluster.json yet).
            let _lock = StartLock::take(&place.dir)?;
            refuse_while_nodes_run(place)?;
            let left = wipe_folder(&place.dir)?;
            say!(
                "Wiped the files of a cluster whose start did not finish in {} (it had no {STATE_FILE}, \
                 no node ran); the next `orderflow cluster start{}` makes a new cluster.",
                place.show(),
                place.dir_flag
            );
            say_left(&left);
            return Ok(ExitCode::SUCCESS);
        }
        Err(KraftError::BadState { .. }) if wipe => {
            // The state file cannot say which JVMs are the cluster's: their command lines can.
            let _lock = StartLock::take(&place.dir)?;
            refuse_while_nodes_run(place)?;
            let left = wipe_folder(&place.dir)?;
            say!(
                "Wiped the cluster files in {} (its {STATE_FILE} was unreadable; no Kafka node ran \
                 from the folder); the next `orderflow cluster start{}` makes a new cluster.",
                place.show(),
                place.dir_flag
            );
            say_left(&left);
            return Ok(ExitCode::SUCCESS);
        }
        Err(KraftError::NoCluster { .. }) => {
            say!(
                "No cluster in {} (no {STATE_FILE}): nothing to stop{}.",
                place.show(),
                if wipe { " or wipe" } else { "" }
            );
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Err(e.into()),
    };
    let _lock = StartLock::take(&place.dir)?;
    let up: Vec<usize> = cluster
        .status()
        .iter()
        .filter(|n| n.running)
        .map(|n| n.id)
        .collect();
    if up.is_empty() {
        say!("The cluster in {} is already stopped.", place.show());
    } else {
        cluster.stop_observed(&mut |progress| {
            print_progress(&progress);
            true
        });
        say!(
            "Stopped the cluster in {} (node{} {}).",
            place.show(),
            if up.len() == 1 { "" } else { "s" },
            list(&up)
        );
    }
    if wipe {
        drop(cluster);
        let left = wipe_folder(&place.dir)?;
        say!(
            "Wiped it: its data and logs are deleted; the next `orderflow cluster start{}` makes a new cluster.",
            place.dir_flag
        );
        say_left(&left);
    } else {
        say!(
            "Its data is kept: `orderflow cluster start{}` starts it again with its topics and \
             offsets; `orderflow cluster stop --wipe{}` deletes it.",
            place.dir_flag,
            place.dir_flag
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether a file of a cluster's folder is one a cluster puts there.
pub(super) fn is_cluster_file(name: &str) -> bool {
    (name.starts_with("node") && name.len() > 4 && name[4..].chars().all(|c| c.is_ascii_digit()))
        || name == "log4j2.properties"
        || name == STATE_FILE
        || name == format!("{STATE_FILE}.partial")
        || name == StartLock::NAME
}

/// The names in `dir` (none when it does not exist).
pub(super) fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// What a node puts in its folder `nodeN/` (server.properties, its data, its logs, when it
/// was last seen up).
const NODE_FILES: [&str; 5] = [
    "server.properties",
    "data",
    "server.log",
    "stdout.log",
    "seen-up",
];

/// Deletes what a cluster put in its folder (and the folder, once empty); nothing else, so a
/// mistaken --dir never costs a user their own files, not even one put in a node's folder.
/// Returns the files it left, which are not orderflow's.
pub(super) fn wipe_folder(dir: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut left = Vec::new();
    for (name, path) in named_entries(dir)? {
        if !is_cluster_file(&name) {
            left.push(path);
            continue;
        }
        if name.starts_with("node") && path.is_dir() {
            for (inner, inner_path) in named_entries(&path)? {
                if NODE_FILES.contains(&inner.as_str()) {
                    remove(&inner_path)?;
                } else {
                    left.push(inner_path);
                }
            }
            // Left in place when it holds anything else.
            let _ = std::fs::remove_dir(&path);
        } else {
            remove(&path)?;
        }
    }
    let _ = std::fs::remove_dir(dir);
    left.sort();
    Ok(left)
}

fn named_entries(dir: &Path) -> anyhow::Result<Vec<(String, std::path::PathBuf)>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    Ok(entries
        .filter_map(Result::ok)
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect())
}

fn remove(path: &Path) -> anyhow::Result<()> {
    let removed = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    removed.with_context(|| format!("cannot delete {}", path.display()))
}

/// Names the files a wipe left because orderflow did not create them.
fn say_left(left: &[std::path::PathBuf]) {
    if left.is_empty() {
        return;
    }
    let names: Vec<String> = left.iter().map(|p| p.display().to_string()).collect();
    say!(
        "  Left in place, not created by orderflow: {} (delete {} yourself if you no longer \
         need {}).",
        names.join(", "),
        if left.len() == 1 { "it" } else { "them" },
        if left.len() == 1 { "it" } else { "them" }
    );
}

/// A wipe without a readable state file checks the processes themselves: a node still
/// running from the folder keeps its files open, and deleting them would break it.
fn refuse_while_nodes_run(place: &Place) -> Result<(), ClusterError> {
    let pids = crate::kraft::node_processes_in(&place.dir);
    if pids.is_empty() {
        return Ok(());
    }
    Err(ClusterError::NodesRunning {
        dir: place.show(),
        pids: list(&pids.iter().map(|&p| p as usize).collect::<Vec<_>>()),
    })
}

pub(super) fn kill(place: &Place, node: usize) -> anyhow::Result<ExitCode> {
    let mut cluster = KraftCluster::open(&place.dir)?;
    if !cluster.is_running(node)? {
        say!(
            "{}",
            ClusterError::AlreadyDown {
                node,
                dir_flag: place.dir_flag.clone()
            }
        );
        return Ok(ExitCode::SUCCESS);
    }
    let pid = cluster.pid(node)?.unwrap_or_default();
    cluster.kill(node)?;
    let others = cluster.len() - 1;
    say!(
        "Killed node {node} (pid {pid}, {}) with SIGKILL: a crash, no clean shutdown; its data is kept.",
        cluster.address(node)?
    );
    if others > 0 {
        say!(
            "  The partitions it led get new leaders once the controller notices (a few seconds): \
             `orderflow cluster status{}`.",
            place.dir_flag
        );
    }
    say!(
        "  `orderflow cluster restart {node}{}` brings it back.",
        place.dir_flag
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) fn stop_node(place: &Place, node: usize) -> anyhow::Result<ExitCode> {
    let mut cluster = KraftCluster::open(&place.dir)?;
    if !cluster.is_running(node)? {
        say!(
            "{}",
            ClusterError::AlreadyDown {
                node,
                dir_flag: place.dir_flag.clone()
            }
        );
        return Ok(ExitCode::SUCCESS);
    }
    let _lock = StartLock::take(&place.dir)?;
    let address = cluster.address(node)?;
    cluster.stop_node_observed(node, &mut |progress| {
        print_progress(&progress);
        true
    })?;
    say!("Stopped node {node} ({address}) cleanly; its data is kept.");
    if cluster.len() > 1 {
        say!(
            "  Before exiting it handed the leadership of its partitions to other nodes (a \
             controlled shutdown): `orderflow cluster status{}`.",
            place.dir_flag
        );
    }
    say!(
        "  `orderflow cluster restart {node}{}` brings it back.",
        place.dir_flag
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) fn restart(
    place: &Place,
    node: usize,
    topic: &str,
    shutdown: &Shutdown,
) -> anyhow::Result<ExitCode> {
    let mut cluster = KraftCluster::open(&place.dir)?;
    if cluster.is_running(node)? {
        say!(
            "Node {node} is already running (pid {}, {}); nothing changed.",
            cluster.pid(node)?.unwrap_or_default(),
            cluster.address(node)?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let _lock = StartLock::take(&place.dir)?;
    say!("Starting node {node} again with its data …");
    let started = Instant::now();
    cluster.restart_observed(&[node], &mut |progress| {
        print_progress(&progress);
        !shutdown.requested()
    })?;
    say!(
        "Node {node} is back on {} after {:.1} s.",
        cluster.address(node)?,
        started.elapsed().as_secs_f64()
    );
    if cluster.len() > 1 {
        say!(
            "  It catches up on what it missed, then rejoins each partition's in-sync replicas: \
             `orderflow{} cluster status{}`.",
            if topic == "order-events" {
                String::new()
            } else {
                format!(" -t {topic}")
            },
            place.dir_flag
        );
    }
    Ok(ExitCode::SUCCESS)
}
