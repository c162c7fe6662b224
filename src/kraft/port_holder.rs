//! Which process holds a TCP port, for the message that refuses to start on it: on Linux from
//! /proc (the socket's inode in /proc/net/tcp, then the process with that socket open);
//! elsewhere, or for another user's process, from `lsof` where it is installed.

use std::path::Path;
use std::process::{Command, Stdio};

/// "pid 123 (java … kafka.Kafka /tmp/k/node1/server.properties)", or what is known.
pub(super) fn holder(port: u16) -> String {
    from_proc(port)
        .or_else(|| from_lsof(port))
        .unwrap_or_else(|| {
            "another process (neither /proc nor lsof says which; `ss -ltnp` or `lsof -i` may)"
                .to_owned()
        })
}

fn from_proc(port: u16) -> Option<String> {
    let inodes: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|text| {
            text.lines()
                .skip(1)
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    let local_port = fields.get(1)?.rsplit_once(':')?.1;
                    // Any state holds the port: listening (0A), or a connection's end.
                    (u16::from_str_radix(local_port, 16).ok()? == port)
                        .then(|| fields.get(9).map(|inode| (*inode).to_owned()))?
                })
                .collect::<Vec<_>>()
        })
        .filter(|inode| inode != "0")
        .collect();
    if inodes.is_empty() {
        return None;
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    for entry in std::fs::read_dir("/proc").ok()?.filter_map(Result::ok) {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        // Another user's descriptors are not readable: that process is skipped.
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds.filter_map(Result::ok).any(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|target| wanted.iter().any(|w| Path::new(w) == target))
        });
        if holds {
            let command = std::fs::read(entry.path().join("cmdline"))
                .map(|bytes| {
                    let words: Vec<String> = bytes
                        .split(|&b| b == 0)
                        .filter(|w| !w.is_empty())
                        .map(|w| String::from_utf8_lossy(w).into_owned())
                        .collect();
                    describe(&words)
                })
                .unwrap_or_default();
            return Some(format!("pid {pid} ({command})"));
        }
    }
    Some("a process of another user".to_owned())
}

/// A command line in a few words: a Kafka node by its configuration, anything else by its
/// program and first arguments.
fn describe(words: &[String]) -> String {
    if let Some(at) = words.iter().position(|w| w == "kafka.Kafka") {
        return format!(
            "a Kafka node: {} kafka.Kafka {}",
            program(words),
            words.get(at + 1).map_or("", String::as_str)
        );
    }
    let text = std::iter::once(program(words))
        .chain(words.iter().skip(1).take(4).cloned())
        .collect::<Vec<_>>()
        .join(" ");
    if text.chars().count() > 100 {
        text.chars().take(99).collect::<String>() + "…"
    } else {
        text
    }
}

fn program(words: &[String]) -> String {
    words
        .first()
        .map(|p| p.rsplit('/').next().unwrap_or(p).to_owned())
        .unwrap_or_else(|| "?".to_owned())
}

fn from_lsof(port: u16) -> Option<String> {
    let output = Command::new("lsof")
        .args(["-nP", &format!("-iTCP:{port}"), "-Fpc"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let pid = text.lines().find_map(|l| l.strip_prefix('p'))?;
    let command = text
        .lines()
        .find_map(|l| l.strip_prefix('c'))
        .unwrap_or("?");
    Some(format!("pid {pid} ({command})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_listening_on_a_port_is_named() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let holder = holder(port);
        assert!(
            holder.starts_with(&format!("pid {} (", std::process::id())),
            "{holder}"
        );
    }

    #[test]
    fn a_kafka_node_is_named_by_its_configuration() {
        let words: Vec<String> = [
            "/usr/bin/java",
            "-Xmx512m",
            "-cp",
            "a:b",
            "kafka.Kafka",
            "/k/node1/server.properties",
        ]
        .iter()
        .map(|w| (*w).to_owned())
        .collect();
        assert_eq!(
            describe(&words),
            "a Kafka node: java kafka.Kafka /k/node1/server.properties"
        );
    }
}
