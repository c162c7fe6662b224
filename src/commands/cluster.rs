//! `orderflow cluster`: real Apache Kafka on this machine for a class without Docker (and for
//! scripts): start 1 or 3 nodes in the background, kill and restart one, show who leads what,
//! stop. The nodes are `kraft`'s; this module finds the cluster of a folder again, guards the
//! folder (one cluster each), creates the order topics and says what happened in words.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;

use crate::cli::{ClusterArgs, ClusterCommand, ClusterStartArgs};
use crate::config::validate_topic;
use crate::kafka::cluster_admin::{self, ClusterView};
use crate::kafka::dead_letter::dead_letter_topic;
use crate::kraft::{
    ClusterSpec, KAFKA_VERSION, KafkaInstall, KraftCluster, KraftError, NodeStatus, Progress,
    STATE_FILE,
};
use crate::shutdown::Shutdown;

/// `println!` that ignores a closed stdout (`orderflow cluster start | head`): the nodes
/// being started matter more than the lines nobody reads any more.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// The first client port when --port is not given (the reference launcher's too).
const DEFAULT_PORT: u16 = 19092;

/// Partitions of the order topics, as docker/ and the built-in broker make them.
const PARTITIONS: i32 = 3;

/// What stops a cluster command before it touches Kafka.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "{dir} already holds a running {nodes}-node cluster on {bootstrap}; a folder holds one \
         cluster: use it, stop it first (`orderflow cluster stop{dir_flag}`), or choose another \
         --dir"
    )]
    Running {
        dir: String,
        dir_flag: String,
        nodes: usize,
        bootstrap: String,
    },
    #[error(
        "{dir} holds a stopped {nodes}-node cluster on {bootstrap}; `orderflow cluster \
         start{dir_flag}` without --nodes/--port starts it again with its data, \
         `orderflow cluster stop --wipe{dir_flag}` deletes it, or choose another --dir"
    )]
    Different {
        dir: String,
        dir_flag: String,
        nodes: usize,
        bootstrap: String,
    },
    #[error(
        "{dir} is not empty and holds no {STATE_FILE}: it is not a cluster folder of orderflow's; \
         choose another --dir (an empty or new folder)"
    )]
    ForeignFolder { dir: String },
    #[error(
        "another `orderflow cluster` command (pid {pid}) is starting or restarting the cluster \
         in {dir}; wait for it (or remove {lock} if no such command runs)"
    )]
    Busy { dir: String, pid: u32, lock: String },
    #[error(
        "no default folder for the cluster: neither XDG_STATE_HOME nor HOME is set; pass --dir"
    )]
    NoHome,
    #[error(
        "node {node} is already down (killed or stopped); `orderflow cluster restart {node}{dir_flag}` starts it"
    )]
    AlreadyDown { node: usize, dir_flag: String },
}

pub async fn run(topic: &str, args: ClusterArgs, shutdown: Shutdown) -> anyhow::Result<ExitCode> {
    let (dir, dir_flag) = match args.dir {
        Some(dir) => {
            let flag = format!(" --dir {}", dir.display());
            (absolute(&dir)?, flag)
        }
        None => (default_dir()?, String::new()),
    };
    let place = Place { dir, dir_flag };
    match args.command {
        ClusterCommand::Start(start_args) => start(&place, topic, start_args, shutdown).await,
        ClusterCommand::Stop(stop_args) => blocking(move || stop(&place, stop_args.wipe)).await,
        ClusterCommand::Kill(node) => blocking(move || kill(&place, node.node)).await,
        ClusterCommand::Restart(node) => {
            let topic = topic.to_owned();
            blocking(move || restart(&place, node.node, &topic, &shutdown)).await
        }
        ClusterCommand::Status(status_args) => {
            let topic = topic.to_owned();
            blocking(move || status(&place, &topic, status_args.json)).await
        }
    }
}

/// The cluster's folder, and the `--dir DIR` to repeat in the commands we suggest (empty for
/// the default folder).
#[derive(Clone)]
struct Place {
    dir: PathBuf,
    dir_flag: String,
}

impl Place {
    fn show(&self) -> String {
        self.dir.display().to_string()
    }
}

/// Starting, waiting for and stopping JVMs blocks; it runs beside the async runtime.
async fn blocking(
    work: impl FnOnce() -> anyhow::Result<ExitCode> + Send + 'static,
) -> anyhow::Result<ExitCode> {
    tokio::task::spawn_blocking(work)
        .await
        .context("the cluster command's thread failed")?
}

/// $XDG_STATE_HOME/orderflow/cluster, or ~/.local/state/orderflow/cluster: state that outlives
/// a command but is not the user's documents (the XDG base-directory rules).
fn default_dir() -> Result<PathBuf, ClusterError> {
    if let Some(state) = std::env::var_os("XDG_STATE_HOME").filter(|s| !s.is_empty()) {
        return Ok(PathBuf::from(state).join("orderflow/cluster"));
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".local/state/orderflow/cluster")),
        None => Err(ClusterError::NoHome),
    }
}

/// The nodes are started with absolute paths in their command lines (which is how a later
/// command recognises them), whatever folder the user is in.
fn absolute(dir: &Path) -> anyhow::Result<PathBuf> {
    if dir.is_absolute() {
        return Ok(dir.to_path_buf());
    }
    Ok(std::env::current_dir()
        .context("cannot read the current folder")?
        .join(dir))
}

/// Where to look for ../shared/kafka/libs: the current folder, and the repository this binary
/// was built in (the first folder above it with a Cargo.toml).
fn near_places() -> Vec<PathBuf> {
    let mut places = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        places.push(cwd);
    }
    if let Ok(exe) = std::env::current_exe()
        && let Some(repo) = exe
            .ancestors()
            .skip(1)
            .find(|d| d.join("Cargo.toml").is_file())
    {
        places.push(repo.to_path_buf());
    }
    places
}

async fn start(
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
fn start_nodes(
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
            let occupied = std::fs::read_dir(&place.dir)
                .with_context(|| format!("cannot read {}", place.show()))?
                .filter_map(Result::ok)
                .any(|e| e.file_name() != StartLock::NAME);
            if occupied {
                return Err(ClusterError::ForeignFolder { dir: place.show() }.into());
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

fn status_port(node: &NodeStatus) -> u16 {
    node.address
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_default()
}

fn locate(kafka: Option<&Path>) -> Result<KafkaInstall, KraftError> {
    let places = near_places();
    let near: Vec<&Path> = places.iter().map(PathBuf::as_path).collect();
    KafkaInstall::locate_from(kafka, &near)
}

fn print_progress(progress: &Progress) {
    match progress {
        Progress::Formatting { nodes } => say!(
            "  formatting the storage of {} (Kafka's StorageTool) …",
            if *nodes == 1 {
                "the node".to_owned()
            } else {
                format!("{nodes} nodes")
            }
        ),
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

fn shorten(line: &str, max: usize) -> String {
    if line.chars().count() <= max {
        return line.to_owned();
    }
    let cut: String = line.chars().take(max - 1).collect();
    format!("{cut}…")
}

fn list(nodes: &[usize]) -> String {
    nodes
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_next(place: &Place, topic: &str, bootstrap: &str) {
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

fn stop(place: &Place, wipe: bool) -> anyhow::Result<ExitCode> {
    let mut cluster = match KraftCluster::open(&place.dir) {
        Ok(cluster) => cluster,
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
        wipe_folder(&place.dir)?;
        say!(
            "Wiped it: its data and logs are deleted; the next `orderflow cluster start{}` makes a new cluster.",
            place.dir_flag
        );
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

/// Deletes what a cluster put in its folder (and the folder, once empty); nothing else, so a
/// mistaken --dir never costs a user their own files.
fn wipe_folder(dir: &Path) -> anyhow::Result<()> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = (name.starts_with("node") && name[4..].chars().all(|c| c.is_ascii_digit()))
            || name == "log4j2.properties"
            || name == STATE_FILE
            || name == format!("{STATE_FILE}.partial")
            || name == StartLock::NAME;
        if !ours {
            continue;
        }
        let path = entry.path();
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.with_context(|| format!("cannot delete {}", path.display()))?;
    }
    // Left in place when it holds anything else.
    let _ = std::fs::remove_dir(dir);
    Ok(())
}

fn kill(place: &Place, node: usize) -> anyhow::Result<ExitCode> {
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

fn restart(
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

fn status(place: &Place, topic: &str, json: bool) -> anyhow::Result<ExitCode> {
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

fn ids(ids: &[i32]) -> String {
    if ids.is_empty() {
        return "none".to_owned();
    }
    ids.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
}

/// A folder's start/restart/stop lock: two such commands at once on one folder would launch
/// two JVMs for one node. Holds the pid of its command; a lock whose command is gone is taken
/// over.
struct StartLock {
    path: PathBuf,
}

impl StartLock {
    const NAME: &'static str = "cluster.lock";

    fn take(dir: &Path) -> Result<StartLock, anyhow::Error> {
        let path = dir.join(StartLock::NAME);
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    use std::io::Write as _;
                    writeln!(file, "{}", std::process::id())
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    return Ok(StartLock { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let pid = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|t| t.trim().parse::<u32>().ok());
                    match pid {
                        Some(pid) if process_exists(pid) => {
                            return Err(ClusterError::Busy {
                                dir: dir.display().to_string(),
                                pid,
                                lock: path.display().to_string(),
                            }
                            .into());
                        }
                        // Left by a command that was killed: take it over.
                        _ => {
                            let _ = std::fs::remove_file(&path);
                        }
                    }
                }
                Err(e) => {
                    return Err(
                        anyhow::Error::new(e).context(format!("cannot create {}", path.display()))
                    );
                }
            }
        }
        Err(anyhow::anyhow!("cannot take the lock {}", path.display()))
    }
}

impl Drop for StartLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn process_exists(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // Signal 0 checks that the process exists without touching it; EPERM: it exists, as
    // another user's.
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(e) => e == nix::errno::Errno::EPERM,
    }
}
