//! Launching nodes and waiting until they have started; stopping them.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::time::{Duration, Instant};

use super::cluster::{KraftCluster, NodeAction, NodeEvent};
use super::jvm::{Jvm, when_this_process_ends};
use super::{KraftError, Observer, Progress, START_TIMEOUT, STOP_TIMEOUT, io};
impl KraftCluster {
    /// Stops the nodes at `indices` (SIGTERM, SIGKILL after [`STOP_TIMEOUT`]).
    pub(super) fn stop_indices(&mut self, indices: &[usize], observer: Observer<'_>) {
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
                    node.last = NodeEvent::now(if forced {
                        NodeAction::Killed
                    } else {
                        NodeAction::Stopped
                    });
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

    /// Launches the nodes at `indices` and waits until each has started; on failure (or
    /// when `observer` gives up) stops those nodes again (the others keep running).
    pub(super) fn launch_and_wait(
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

    pub(super) fn launch(&mut self, index: usize) -> Result<(), KraftError> {
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
        node.last = NodeEvent::now(NodeAction::Started);
        Ok(())
    }

    /// Waits until node `index` logs "Kafka Server started" past byte `from` of its log.
    pub(super) fn wait_started(
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
                self.nodes[index].seen_up();
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
pub(super) fn check_port_free(port: u16, what: &str) -> Result<(), KraftError> {
    match std::net::TcpListener::bind(("127.0.0.1", port)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(KraftError::PortTaken {
            port,
            what: what.to_owned(),
            holder: super::port_holder::holder(port),
        }),
        Err(e) => Err(io(format!("checking port {port} ({what})"))(e)),
    }
}

/// The last non-empty line of a log, without Kafka's timestamp, for progress output.
pub(super) fn last_line(log: &Path) -> Option<String> {
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

pub(super) fn log_says_started(log: &Path, from: u64) -> bool {
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
pub(super) fn last_lines(dir: &Path) -> (String, String) {
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
pub(super) fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}
