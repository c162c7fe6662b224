//! `orderflow cluster`: real Apache Kafka on this machine for a class without Docker (and for
//! scripts): start 1 or 3 nodes in the background, kill and restart one, show who leads what,
//! stop. The nodes are `kraft`'s; this module finds the cluster of a folder again, guards the
//! folder (one cluster each), creates the order topics and says what happened in words.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use crate::cli::{ClusterArgs, ClusterCommand};
use crate::kraft::{KafkaInstall, KraftError, STATE_FILE};
use crate::shutdown::Shutdown;

/// `println!` that ignores a closed stdout (`orderflow cluster start | head`): the nodes
/// being started matter more than the lines nobody reads any more.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

// After `say!`, which they use.
mod nodes;
mod progress;
mod start;
mod status;

/// The first client port when --port is not given (the reference launcher's too).
const DEFAULT_PORT: u16 = 19092;

/// Partitions of the order topics, as docker/ and the built-in broker make them.
const PARTITIONS: i32 = 3;

/// What stops a cluster command before it touches Kafka.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClusterError {
    #[error(
        "{dir} already holds a running {nodes}-node cluster on {bootstrap}; a folder holds one \
         cluster: use it, stop it first (`orderflow cluster stop{dir_flag}`; `stop --wipe` also \
         deletes it, for a new one), or choose another --dir"
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
        "{dir} holds what a `cluster start` that did not finish left (node folders, no \
         {STATE_FILE}): `orderflow cluster stop --wipe{dir_flag}` deletes it, then start again"
    )]
    Unfinished { dir: String, dir_flag: String },
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
        "Kafka nodes run from {dir} (pid {pids}) but no readable {STATE_FILE} names them; nothing \
         was deleted: stop them first (`kill PID` is a clean shutdown), then wipe again"
    )]
    NodesRunning { dir: String, pids: String },
    #[error(
        "{path} is a file, not a folder: --dir takes the cluster's folder (new or empty, or one a `cluster start` made)"
    )]
    NotAFolder { path: String },
    #[error(
        "node {node} is already down (killed or stopped); `orderflow cluster restart {node}{dir_flag}` starts it"
    )]
    AlreadyDown { node: usize, dir_flag: String },
}

pub(crate) async fn run(
    topic: &str,
    args: ClusterArgs,
    shutdown: Shutdown,
) -> anyhow::Result<ExitCode> {
    let (dir, dir_flag) = match args.dir {
        Some(dir) => {
            let flag = format!(" --dir {}", dir.display());
            (absolute(&dir)?, flag)
        }
        None => (default_dir()?, String::new()),
    };
    not_a_file(&dir)?;
    let place = Place { dir, dir_flag };
    match args.command {
        ClusterCommand::Start(start_args) => {
            start::start(&place, topic, start_args, shutdown).await
        }
        ClusterCommand::Stop(stop_args) => {
            blocking(move || nodes::stop(&place, stop_args.wipe)).await
        }
        ClusterCommand::Kill(node) => blocking(move || nodes::kill(&place, node.node)).await,
        ClusterCommand::StopNode(node) => {
            blocking(move || nodes::stop_node(&place, node.node)).await
        }
        ClusterCommand::Restart(node) => {
            let topic = topic.to_owned();
            blocking(move || nodes::restart(&place, node.node, &topic, &shutdown)).await
        }
        ClusterCommand::Status(status_args) => {
            let topic = topic.to_owned();
            blocking(move || status::status(&place, &topic, status_args.json)).await
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

/// A --dir (or one of the folders above it) that is a file is named before a command
/// creates or reads anything: the system's words ("File exists", "Not a directory") do not
/// say which path is wrong.
fn not_a_file(dir: &Path) -> Result<(), ClusterError> {
    for path in dir.ancestors() {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => return Ok(()),
            Ok(_) => {
                return Err(ClusterError::NotAFolder {
                    path: path.display().to_string(),
                });
            }
            // Missing: `cluster start` creates it; look further up.
            Err(_) => {}
        }
    }
    Ok(())
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

fn locate(kafka: Option<&Path>) -> Result<KafkaInstall, KraftError> {
    let places = near_places();
    let near: Vec<&Path> = places.iter().map(PathBuf::as_path).collect();
    KafkaInstall::locate_from(kafka, &near)
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

/// The command that holds a folder's lock while it runs (`cluster start`, `restart 2`,
/// `stop`…): what `cluster status` says of the nodes it is starting or stopping.
pub(super) struct LockHolder {
    pub(super) pid: u32,
    /// "cluster start", "cluster restart 2": from its command line.
    pub(super) command: String,
    /// When it took the lock.
    pub(super) since: chrono::DateTime<chrono::Utc>,
}

impl LockHolder {
    pub(super) fn find(dir: &Path) -> Option<LockHolder> {
        let path = dir.join(StartLock::NAME);
        let pid = std::fs::read_to_string(&path)
            .ok()?
            .trim()
            .parse::<u32>()
            .ok()?;
        if pid == std::process::id() || !process_exists(pid) {
            return None;
        }
        let since = std::fs::metadata(&path).ok()?.modified().ok()?.into();
        let args: Vec<String> = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                String::from_utf8_lossy(&b)
                    .split('\0')
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        // The subcommand after "cluster", and its node number if it has one.
        let command = args
            .iter()
            .position(|a| a == "cluster")
            .map(|at| {
                let mut words = vec!["cluster".to_owned()];
                if let Some(sub) = args.get(at + 1).filter(|a| !a.starts_with('-')) {
                    words.push(sub.clone());
                    if let Some(node) = args.get(at + 2).filter(|a| a.parse::<usize>().is_ok()) {
                        words.push(node.clone());
                    }
                }
                words.join(" ")
            })
            .unwrap_or_else(|| "an orderflow cluster command".to_owned());
        Some(LockHolder {
            pid,
            command,
            since,
        })
    }

    /// Whether it starts nodes (start, restart) rather than stopping them.
    pub(super) fn starts(&self) -> bool {
        self.command.starts_with("cluster start") || self.command.starts_with("cluster restart")
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
