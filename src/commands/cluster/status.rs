//! `cluster status`: each node and since when, the active controller, who leads and who is
//! in sync for each partition of the topic, and each group's coordinator.

use std::process::ExitCode;

use chrono::{DateTime, Local, Utc};
use serde_json::{Value, json};

use super::{LockHolder, Place};
use crate::kafka::cluster_admin::{self, ClusterView, GroupView};
use crate::kraft::{KAFKA_VERSION, KraftCluster, KraftError, NodeAction, NodeStatus};

pub(super) fn status(place: &Place, topic: &str, json: bool) -> anyhow::Result<ExitCode> {
    let holder = LockHolder::find(&place.dir);
    let mut cluster = match KraftCluster::open(&place.dir) {
        Err(KraftError::NoCluster { .. }) if holder.as_ref().is_some_and(LockHolder::starts) => {
            let holder = holder.as_ref().expect("checked");
            // Before its first JVM is launched, a new cluster has no cluster.json yet.
            say!(
                "The cluster in {} is being created: `orderflow {}` (pid {}) is running; \
                 `orderflow cluster status{}` once it has finished.",
                place.show(),
                holder.command,
                holder.pid,
                place.dir_flag
            );
            return Ok(ExitCode::SUCCESS);
        }
        opened => opened?,
    };
    let nodes = cluster.status();
    let bootstrap = cluster.bootstrap();
    // A node the lock's command launched (or is about to launch, or is stopping) is not
    // ready: asking it for metadata costs seconds of timeouts and reports errors that only
    // mean "not started yet".
    let busy = |n: &NodeStatus| {
        holder.as_ref().is_some_and(|h| {
            n.last
                .is_some_and(|e| e.at + chrono::Duration::seconds(2) >= h.since)
                || (h.starts() && n.last.is_none())
        })
    };
    let ready = |n: &NodeStatus| n.running && !busy(n);
    let up = nodes.iter().filter(|n| ready(n)).count();
    let in_hand = nodes.iter().filter(|n| busy(n)).count();
    // Only the ready nodes are asked: librdkafka would otherwise spend its timeout on a dead
    // one first.
    let live: Vec<String> = nodes
        .iter()
        .filter(|n| ready(n))
        .map(|n| n.address.clone())
        .collect();
    let controllers: Vec<String> = nodes
        .iter()
        .filter(|n| ready(n))
        .map(|n| format!("127.0.0.1:{}", n.controller_port))
        .collect();
    let live_ids: Vec<i32> = nodes
        .iter()
        .filter(|n| ready(n))
        .map(|n| n.id as i32)
        .collect();
    let view: Option<Result<ClusterView, String>> = (up > 0).then(|| {
        cluster_admin::describe(&live, &controllers, nodes.len(), topic).map_err(|e| e.to_string())
    });
    let now = Utc::now();
    if json {
        let busy: Vec<bool> = nodes.iter().map(busy).collect();
        let mut value = as_json(place, topic, &bootstrap, &nodes, view.as_ref(), now);
        if let Some(holder) = &holder {
            for (node, _) in value["nodes"]
                .as_array_mut()
                .expect("nodes")
                .iter_mut()
                .zip(busy)
                .filter(|(_, busy)| *busy)
            {
                node["state"] = json!(if holder.starts() {
                    "starting"
                } else {
                    "stopping"
                });
                node["by"] = json!(format!(
                    "{} (pid {}) is running",
                    holder.command, holder.pid
                ));
            }
            value["running"] = json!(up);
        }
        say!("{value}");
        return Ok(ExitCode::SUCCESS);
    }
    let doing = holder.as_ref().map(|h| {
        (
            if h.starts() { "starting" } else { "stopping" },
            format!("`orderflow {}` (pid {}) is running", h.command, h.pid),
        )
    });
    say!(
        "Cluster in {}: {up} of {} node{} up{}, bootstrap {bootstrap}",
        place.show(),
        nodes.len(),
        if nodes.len() == 1 { "" } else { "s" },
        match &doing {
            Some((word, running)) if in_hand > 0 => format!(", {in_hand} {word}: {running}"),
            _ => String::new(),
        }
    );
    for n in &nodes {
        let pid = match (n.running, n.pid) {
            (true, Some(pid)) => format!("pid {pid}"),
            _ => String::new(),
        };
        let (state, since) = match &doing {
            Some((word, running)) if busy(n) => (
                *word,
                if *word == "starting" {
                    format!("not ready yet: {running}")
                } else {
                    running.clone()
                },
            ),
            _ => (if n.running { "up" } else { "down" }, since(n, now)),
        };
        say!(
            "  node {}  {state:<4}  {}  {pid:<10}  {since}",
            n.id,
            n.address,
        );
    }
    say!("  logs: {}", place.dir.join("node<N>/server.log").display());
    let down: Vec<i32> = nodes
        .iter()
        .filter(|n| !n.running)
        .map(|n| n.id as i32)
        .collect();
    let named = |id: i32| {
        if down.contains(&id) {
            format!("node {id} (down)")
        } else {
            format!("node {id}")
        }
    };
    match view {
        None if in_hand > 0 => say!(
            "No node is ready yet: run `orderflow cluster status{}` again once the command \
             starting or stopping them has finished.",
            place.dir_flag
        ),
        None => say!(
            "No node is up: `orderflow cluster start{}` starts the cluster again with its data.",
            place.dir_flag
        ),
        Some(Err(e)) => say!("The cluster's metadata could not be read: {e}"),
        Some(Ok(view)) => {
            match &view.controller {
                Ok(id) => say!(
                    "  active controller: {} (it leads the KRaft quorum: the cluster's metadata, \
                     which brokers are alive, who leads what)",
                    named(*id)
                ),
                Err(e) => say!("  active controller: not known ({e})"),
            }
            if view.controller.is_ok() {
                say!(
                    "  registered brokers (the controller's view): {}",
                    ids(&view.brokers)
                );
            } else {
                // Without an active controller nothing updates a broker's metadata: the list
                // is the last one the running nodes had, and may name nodes that are down.
                say!(
                    "  registered brokers: {} (the last list node{} {} had from a controller; \
                     not updated while there is none)",
                    ids(&view.brokers),
                    if live_ids.len() == 1 { "" } else { "s" },
                    ids(&live_ids)
                );
            }
            let mut stale = false;
            match &view.partitions {
                None => say!("Topic {topic}: not on the cluster."),
                Some(partitions) => {
                    say!("Topic {topic}, as the cluster reports it:");
                    for p in partitions {
                        let leader = p.leader.map_or_else(|| "none".to_owned(), named);
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
                }
            }
            match &view.groups {
                Err(e) => say!("Groups: could not be listed ({e})"),
                Ok(groups) if groups.is_empty() && down.is_empty() => say!("Groups: none yet."),
                Ok(groups) if groups.is_empty() => say!(
                    "Groups: none listed by the nodes that run (a node that is down cannot list \
                     the groups it coordinated)."
                ),
                Ok(groups) => {
                    say!("Groups, and the broker coordinating each (its members and offsets):");
                    let width = groups.iter().map(|g| g.group.len()).max().unwrap_or(0);
                    for g in groups {
                        stale |= g.coordinator.is_some_and(|c| down.contains(&c));
                        say!(
                            "  {:width$}  coordinator {}  {}",
                            g.group,
                            coordinator(g, &named),
                            g.state
                        );
                    }
                    if !down.is_empty() {
                        say!(
                            "  (a node that is down cannot list the groups it coordinated: they \
                             show again once their coordinator has moved)"
                        );
                    }
                }
            }
            if stale && view.controller.is_ok() {
                say!(
                    "  (a node that is down is still named: the controller notices within \
                     broker.session.timeout.ms, 9 s, then elects new leaders)"
                );
            } else if stale {
                say!(
                    "  (a node that is down is still named: with no active controller no new \
                     leader is elected, until a majority of the controllers runs again)"
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn coordinator(group: &GroupView, named: &dyn Fn(i32) -> String) -> String {
    match (group.coordinator, &group.error) {
        (Some(id), _) => format!("{:<7}", named(id)),
        (None, Some(error)) => format!("none ({error})"),
        (None, None) => "none".to_owned(),
    }
}

/// Since when a node is up or down, and how orderflow knows: what a command did to it, or,
/// for a node that died by itself, when it was last seen up.
fn since(node: &NodeStatus, now: DateTime<Utc>) -> String {
    let at = |t: DateTime<Utc>| {
        format!(
            "{} ({} ago)",
            t.with_timezone(&Local).format("%H:%M:%S"),
            ago(now, t)
        )
    };
    match (node.running, node.last) {
        (true, Some(event)) if event.action == NodeAction::Started => {
            format!("since {}", at(event.at))
        }
        // Running although the last command stopped it: started by hand, or by an older
        // orderflow.
        (true, _) => "since when: not known (not started by this cluster's commands)".to_owned(),
        (false, Some(event)) if event.action != NodeAction::Started => format!(
            "since {}: {}",
            at(event.at),
            if event.action == NodeAction::Killed {
                "killed (SIGKILL)"
            } else {
                "stopped cleanly"
            }
        ),
        (false, _) => {
            let seen = match node.seen_up {
                Some(seen) => format!("it was last seen up at {}", at(seen)),
                None => "it was never seen up".to_owned(),
            };
            let log = match node.log_written {
                Some(written) if node.seen_up.is_none_or(|seen| written > seen) => {
                    format!("; its log was last written at {}", at(written))
                }
                _ => String::new(),
            };
            format!(
                "down since {seen}{log}: it ended without an orderflow command (a crash, or \
                 killed from outside)"
            )
        }
    }
}

fn ago(now: DateTime<Utc>, then: DateTime<Utc>) -> String {
    let elapsed = (now - then).to_std().unwrap_or_default();
    let secs = elapsed.as_secs();
    match secs {
        0..60 => format!("{secs} s"),
        60..3600 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    }
}

fn as_json(
    place: &Place,
    topic: &str,
    bootstrap: &str,
    nodes: &[NodeStatus],
    view: Option<&Result<ClusterView, String>>,
    now: DateTime<Utc>,
) -> Value {
    let (view, error) = match view {
        Some(Ok(view)) => (Some(view), None),
        Some(Err(e)) => (None, Some(e.as_str())),
        None => (None, None),
    };
    let time = |t: Option<DateTime<Utc>>| t.map(|t| crate::report::human::timestamp(&t));
    json!({
        "dir": place.dir,
        "bootstrap": bootstrap,
        "kafka_version": KAFKA_VERSION,
        "running": nodes.iter().filter(|n| n.running).count(),
        "at": crate::report::human::timestamp(&now),
        "nodes": nodes.iter().map(|n| {
            // "since": when it came up or went down, where a command did it; a node that
            // died by itself has only "last_seen_up".
            let by_command = n.last.filter(|e| (e.action == NodeAction::Started) == n.running);
            json!({
                "id": n.id,
                "state": if n.running { "up" } else { "down" },
                "since": time(by_command.map(|e| e.at)),
                "by": match (by_command.map(|e| e.action), n.running) {
                    (Some(NodeAction::Started), _) => "started",
                    (Some(NodeAction::Killed), _) => "killed",
                    (Some(NodeAction::Stopped), _) => "stopped",
                    (None, false) => "ended without a command",
                    (None, true) => "unknown",
                },
                "last_seen_up": time(n.seen_up),
                "log_written": time(n.log_written),
                "pid": n.pid,
                "address": n.address,
                "controller_port": n.controller_port,
                "log": n.log,
            })
        }).collect::<Vec<_>>(),
        "controller": view.and_then(|v| v.controller.as_ref().ok()),
        "controller_error": view.and_then(|v| v.controller.as_ref().err()),
        "brokers_registered": view.map(|v| &v.brokers),
        "topic": view.map(|v| json!({
            "name": topic,
            "partitions": v.partitions,
        })),
        "groups": view.and_then(|v| v.groups.as_ref().ok()),
        "groups_error": view.and_then(|v| v.groups.as_ref().err()),
        "metadata_error": error,
    })
}

pub(super) fn ids(ids: &[i32]) -> String {
    if ids.is_empty() {
        return "none".to_owned();
    }
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}
