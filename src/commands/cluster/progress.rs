//! What a start, restart or stop is doing, in words, while the nodes start or stop.

use crate::kraft::Progress;

pub(super) fn print_progress(progress: &Progress) {
    match progress {
        Progress::Formatting { nodes } => say!(
            "  formatting the storage of {} (Kafka's StorageTool) …",
            if *nodes == 1 {
                "the node".to_owned()
            } else {
                format!("{nodes} nodes")
            }
        ),
        Progress::StillFormatting { elapsed } => {
            say!("  formatting, {:.0} s …", elapsed.as_secs_f64())
        }
        Progress::Launched { node, pid, address } => {
            say!("  node {node}: JVM started (pid {pid}), will serve clients on {address}")
        }
        Progress::Waiting {
            node,
            elapsed,
            last_log,
        } => say!(
            "  node {node}: starting, {:.0} s{}",
            elapsed.as_secs_f64(),
            last_log
                .as_deref()
                .map(|l| format!(" — {}", shorten(l, 90)))
                .unwrap_or_default()
        ),
        Progress::Started { node, elapsed } => {
            say!(
                "  node {node}: started after {:.1} s",
                elapsed.as_secs_f64()
            )
        }
        Progress::Stopping { nodes } => say!(
            "  stopping node{} {} (SIGTERM: a clean shutdown; SIGKILL after 30 s) …",
            if nodes.len() == 1 { "" } else { "s" },
            list(nodes)
        ),
        Progress::StillStopping { nodes, elapsed } => say!(
            "  waiting for node{} {} to exit, {:.0} s …",
            if nodes.len() == 1 { "" } else { "s" },
            list(nodes),
            elapsed.as_secs_f64()
        ),
        Progress::Stopped {
            node,
            elapsed,
            forced,
        } => say!(
            "  node {node}: {} after {:.1} s",
            if *forced {
                "did not exit; killed"
            } else {
                "stopped"
            },
            elapsed.as_secs_f64()
        ),
    }
}

pub(super) fn shorten(line: &str, max: usize) -> String {
    if line.chars().count() <= max {
        return line.to_owned();
    }
    let cut: String = line.chars().take(max - 1).collect();
    format!("{cut}…")
}

pub(super) fn list(nodes: &[usize]) -> String {
    nodes
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
