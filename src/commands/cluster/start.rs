//! `cluster start`: formats and starts the nodes (or finds them running), creates the order
//! topics and says what to run next.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;

use super::nodes::{entries, is_cluster_file};
use super::progress::{list, print_progress};
use super::{ClusterError, DEFAULT_PORT, PARTITIONS, Place, StartLock, locate};
use crate::cli::ClusterStartArgs;
use crate::config::validate_topic;
use crate::kafka::cluster_admin;
use crate::kafka::dead_letter::dead_letter_topic;
use crate::kraft::{
    ClusterSpec, KAFKA_VERSION, KraftCluster, KraftError, NodeAction, NodeStatus, Progress,
};
use crate::shutdown::Shutdown;

pub(super) async fn start(
    place: &Place,
    topic: &str,
    args: ClusterStartArgs,
    shutdown: Shutdown,
) -> anyhow::Result<ExitCode> {
    validate_topic(topic)?;
    let started = Instant::now();
    let (bootstrap, nodes) = {
        let owned = place.clone();
        let started = tokio::task::spawn_blocking(move || start_nodes(&owned, &args, &shutdown))
            .await
            .context("the cluster command's thread failed")?;
        match started {
            Ok(started) => started,
            Err(e) => {
                // A start that failed before writing anything leaves no empty folder behind
                // (remove_dir only removes an empty one).
                let _ = std::fs::remove_dir(&place.dir);
                return Err(e);
            }
        }
    };
    let Some(nodes) = nodes else {
        // Already running: said so, nothing changed.
        print_next(place, topic, &bootstrap);
        return Ok(ExitCode::SUCCESS);
    };
    say!(
        "  topics: creating {topic} and {} …",
        dead_letter_topic(topic)
    );
    let replication = nodes as i32;
    for name in [topic.to_owned(), dead_letter_topic(topic)] {
        let set_up = cluster_admin::ensure_topic(&bootstrap, &name, PARTITIONS, replication)
            .await
            .with_context(|| {
                format!(
                    "the cluster runs on {bootstrap}, but its topics could not be set up; \
                     `orderflow cluster stop{}` stops it",
                    place.dir_flag
                )
            })?;
        let isr = if set_up.replication >= 3 {
            ", min.insync.replicas 2"
        } else {
            ""
        };
        say!(
            "  topic {}: {} partitions, replication factor {}{isr} ({})",
            set_up.name,
            set_up.partitions,
            set_up.replication,
            if set_up.created {
                "created"
            } else {
                "already there"
            }
        );
    }
    say!(
        "Kafka {KAFKA_VERSION} is running: {nodes} node{}, bootstrap {bootstrap} (ready after {:.1} s). \
         The nodes keep running after this command; their files are in {}.",
        if nodes == 1 { "" } else { "s" },
        started.elapsed().as_secs_f64(),
        place.show()
    );
    print_next(place, topic, &bootstrap);
    Ok(ExitCode::SUCCESS)
}

/// Starts the folder's cluster (new, or again with its data); returns the bootstrap and the
/// number of nodes, or None for the nodes when it was running already.
pub(super) fn start_nodes(
    place: &Place,
    args: &ClusterStartArgs,
    shutdown: &Shutdown,
) -> anyhow::Result<(String, Option<usize>)> {
    std::fs::create_dir_all(&place.dir)
        .with_context(|| format!("cannot create the cluster folder {}", place.show()))?;
    let _lock = StartLock::take(&place.dir)?;
    let mut observer = |progress: Progress| {
        print_progress(&progress);
        !shutdown.requested()
    };
    match KraftCluster::open(&place.dir) {
        Ok(mut cluster) => {
            let status = cluster.status();
            let up = status.iter().filter(|n| n.running).count();
            let first_port = status_port(&status[0]);
            let differs = args.nodes.is_some_and(|n| n != cluster.len())
                || args.port.is_some_and(|p| p != first_port);
            if differs {
                let (dir, dir_flag) = (place.show(), place.dir_flag.clone());
                let (nodes, bootstrap) = (cluster.len(), cluster.bootstrap());
                return Err(if up > 0 {
                    ClusterError::Running {
                        dir,
                        dir_flag,
                        nodes,
                        bootstrap,
                    }
                } else {
                    ClusterError::Different {
                        dir,
                        dir_flag,
                        nodes,
                        bootstrap,
                    }
                }
                .into());
            }
            if up == cluster.len() {
                say!(
                    "The cluster in {} is already running: {} node{} on {}; nothing changed.",
                    place.show(),
                    cluster.len(),
                    if cluster.len() == 1 { "" } else { "s" },
                    cluster.bootstrap()
                );
                return Ok((cluster.bootstrap(), None));
            }
            let down: Vec<usize> = status.iter().filter(|n| !n.running).map(|n| n.id).collect();
            // Nodes a command started and none stopped: the cluster was not stopped by
            // orderflow (a crash, a reboot, a kill from outside).
            let crashed: Vec<usize> = status
                .iter()
                .filter(|n| !n.running && n.last.is_some_and(|e| e.action == NodeAction::Started))
                .map(|n| n.id)
                .collect();
            if !crashed.is_empty() {
                say!(
                    "{} of the cluster in {} ended without an orderflow command (a crash, a \
                     reboot, or a kill from outside); {} data is kept and used. `orderflow \
                     cluster stop --wipe{}` deletes the cluster instead, for a fresh one.",
                    if crashed.len() == 1 {
                        format!("Node {}", crashed[0])
                    } else {
                        format!("Nodes {}", list(&crashed))
                    },
                    place.show(),
                    if crashed.len() == 1 { "its" } else { "their" },
                    place.dir_flag
                );
            }
            say!(
                "orderflow cluster: starting {} of the cluster in {} again, with {} data …",
                if down.len() == 1 {
                    format!("node {}", down[0])
                } else {
                    format!("nodes {}", list(&down))
                },
                place.show(),
                if down.len() == 1 { "its" } else { "their" }
            );
            cluster.restart_observed(&down, &mut observer)?;
            cluster_admin::wait_for_brokers(&cluster.bootstrap(), cluster.len())?;
            Ok((cluster.bootstrap(), Some(cluster.len())))
        }
        Err(KraftError::NoCluster { .. }) => {
            let names: Vec<String> = entries(&place.dir)
                .into_iter()
                .filter(|name| name != StartLock::NAME)
                .collect();
            if names.iter().any(|name| !is_cluster_file(name)) {
                return Err(ClusterError::ForeignFolder { dir: place.show() }.into());
            }
            if !names.is_empty() {
                return Err(ClusterError::Unfinished {
                    dir: place.show(),
                    dir_flag: place.dir_flag.clone(),
                }
                .into());
            }
            let install = locate(args.kafka.as_deref())?;
            let nodes = args.nodes.unwrap_or(1);
            say!(
                "orderflow cluster: Kafka from {}, Java {} ({})",
                install.libs.display(),
                install.java_version,
                install.java.display()
            );
            say!(
                "starting {nodes} node{} in {} (a JVM each: seconds, not minutes) …",
                if nodes == 1 { "" } else { "s" },
                place.show()
            );
            let spec = ClusterSpec {
                dir: place.dir.clone(),
                nodes,
                port: Some(args.port.unwrap_or(DEFAULT_PORT)),
                tied_to_this_process: false,
            };
            let result = KraftCluster::start_observed(&install, spec, &mut observer);
            let cluster = match result {
                Ok(cluster) => cluster,
                Err(e @ (KraftError::PortTaken { .. } | KraftError::PortRange { .. })) => {
                    return Err(e.into());
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e).context(format!(
                        "the cluster did not start; its files are in {} (`orderflow cluster \
                         stop --wipe{}` deletes them)",
                        place.show(),
                        place.dir_flag
                    )));
                }
            };
            say!("  waiting for the nodes to register with the controller …");
            cluster_admin::wait_for_brokers(&cluster.bootstrap(), cluster.len())?;
            Ok((cluster.bootstrap(), Some(cluster.len())))
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) fn status_port(node: &NodeStatus) -> u16 {
    node.address
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_default()
}

pub(super) fn print_next(place: &Place, topic: &str, bootstrap: &str) {
    let t = if topic == "order-events" {
        String::new()
    } else {
        format!(" -t {topic}")
    };
    let d = &place.dir_flag;
    let next = [
        (
            format!("export ORDERFLOW_BROKERS={bootstrap}"),
            "then orderflow uses it without -b",
        ),
        (format!("orderflow -b {bootstrap}{t} produce --rate 20"), ""),
        (format!("orderflow -b {bootstrap}{t} analytics"), ""),
        (
            format!("orderflow{t} cluster status{d}"),
            "leaders and in-sync replicas",
        ),
        (format!("orderflow cluster kill 1{d}"), "a broker crash"),
        (format!("orderflow cluster restart 1{d}"), "and its return"),
        (
            format!("orderflow cluster stop{d}"),
            "--wipe also deletes its data",
        ),
    ];
    let width = next.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
    say!();
    say!("Next:");
    for (command, why) in next {
        if why.is_empty() {
            say!("  {command}");
        } else {
            say!("  {command:width$}   # {why}");
        }
    }
}
