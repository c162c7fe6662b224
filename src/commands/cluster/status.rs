//! `cluster status`: each node, who leads what, the order topics.

use std::process::ExitCode;

use super::Place;
use crate::kafka::cluster_admin::{self, ClusterView};
use crate::kraft::{KAFKA_VERSION, KraftCluster};

pub(super) fn status(place: &Place, topic: &str, json: bool) -> anyhow::Result<ExitCode> {
    let mut cluster = KraftCluster::open(&place.dir)?;
    let nodes = cluster.status();
    let bootstrap = cluster.bootstrap();
    let up = nodes.iter().filter(|n| n.running).count();
    // Only the running nodes are asked: librdkafka would otherwise spend its timeout on a
    // dead one first.
    let live: Vec<&str> = nodes
        .iter()
        .filter(|n| n.running)
        .map(|n| n.address.as_str())
        .collect();
    let view: Option<Result<ClusterView, String>> = (up > 0)
        .then(|| cluster_admin::describe(&live.join(","), topic).map_err(|e| e.to_string()));
    if json {
        let (view, error) = match &view {
            Some(Ok(view)) => (Some(view), None),
            Some(Err(e)) => (None, Some(e.as_str())),
            None => (None, None),
        };
        let value = serde_json::json!({
            "dir": place.dir,
            "bootstrap": bootstrap,
            "kafka_version": KAFKA_VERSION,
            "running": up,
            "nodes": nodes.iter().map(|n| serde_json::json!({
                "id": n.id,
                "state": if n.running { "up" } else { "down" },
                "pid": n.pid,
                "address": n.address,
                "controller_port": n.controller_port,
                "log": n.log,
            })).collect::<Vec<_>>(),
            "brokers_registered": view.map(|v| &v.brokers),
            "topic": view.map(|v| serde_json::json!({
                "name": topic,
                "partitions": v.partitions,
            })),
            "metadata_error": error,
        });
        say!("{value}");
        return Ok(ExitCode::SUCCESS);
    }
    say!(
        "Cluster in {}: {up} of {} node{} up, bootstrap {bootstrap}",
        place.show(),
        nodes.len(),
        if nodes.len() == 1 { "" } else { "s" }
    );
    for n in &nodes {
        match (n.running, n.pid) {
            (true, Some(pid)) => say!(
                "  node {}  up    {}  pid {pid:<8} log {}",
                n.id,
                n.address,
                n.log.display()
            ),
            _ => say!(
                "  node {}  down  {}  {:12} log {}",
                n.id,
                n.address,
                "",
                n.log.display()
            ),
        }
    }
    match view {
        None => say!(
            "No node is up: `orderflow cluster start{}` starts the cluster again with its data.",
            place.dir_flag
        ),
        Some(Err(e)) => say!("The cluster's metadata could not be read: {e}"),
        Some(Ok(view)) => {
            say!(
                "  registered brokers (the controller's view): {}",
                ids(&view.brokers)
            );
            match view.partitions {
                None => say!("Topic {topic}: not on the cluster."),
                Some(partitions) => {
                    say!("Topic {topic}, as the cluster reports it:");
                    let down: Vec<i32> = nodes
                        .iter()
                        .filter(|n| !n.running)
                        .map(|n| n.id as i32)
                        .collect();
                    let mut stale = false;
                    for p in partitions {
                        let leader = p
                            .leader
                            .map_or_else(|| "none".to_owned(), |l| format!("node {l}"));
                        stale |= p.leader.is_some_and(|l| down.contains(&l));
                        let missing: Vec<i32> = p
                            .replicas
                            .iter()
                            .copied()
                            .filter(|r| !p.isr.contains(r))
                            .collect();
                        say!(
                            "  partition {}  leader {leader:<7}  replicas {}  in sync {}{}",
                            p.partition,
                            ids(&p.replicas),
                            ids(&p.isr),
                            if missing.is_empty() {
                                String::new()
                            } else {
                                format!("  (out of sync: {})", ids(&missing))
                            }
                        );
                    }
                    if stale {
                        say!(
                            "  (a node that is down is still named: the controller notices within \
                             broker.session.timeout.ms, 9 s, then elects new leaders)"
                        );
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn ids(ids: &[i32]) -> String {
    if ids.is_empty() {
        return "none".to_owned();
    }
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}
