//! A node's JVM: the child this process started, or a pid found again; and the shell
//! watchdogs that act once this process has ended.

use std::io::Write as _;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};
/// A node's JVM.
#[derive(Debug)]
pub(super) enum Jvm {
    /// Started by this process.
    Child(Child),
    /// Started by an earlier command and found again from the state file: only its pid is
    /// known, and it is signalled rather than waited for.
    Detached(u32),
}

impl Jvm {
    pub(super) fn pid(&self) -> u32 {
        match self {
            Jvm::Child(child) => child.id(),
            Jvm::Detached(pid) => *pid,
        }
    }

    /// Whether the JVM still runs. (A detached pid was checked to be this node's Kafka when
    /// the state file was read: [`is_node_process`].)
    pub(super) fn running(&mut self) -> bool {
        match self {
            Jvm::Child(child) => matches!(child.try_wait(), Ok(None)),
            Jvm::Detached(pid) => process_alive(*pid),
        }
    }

    pub(super) fn signal(&self, signal: nix::sys::signal::Signal) {
        let Ok(pid) = i32::try_from(self.pid()) else {
            return;
        };
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
    }

    /// SIGKILL, and waits until it is gone.
    pub(super) fn kill(&mut self) {
        match self {
            Jvm::Child(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Jvm::Detached(_) => {
                self.signal(nix::sys::signal::Signal::SIGKILL);
                let deadline = Instant::now() + Duration::from_secs(10);
                while self.running() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
    }
}

/// Whether process `pid` exists and has not exited. A process that has exited but not been
/// reaped (a zombie: its parent, the command that started it, is gone) has released its
/// ports and files; one still exiting has not, and counts as alive until it is a zombie.
pub(super) fn process_alive(pid: u32) -> bool {
    let stat = Path::new("/proc").join(pid.to_string()).join("stat");
    if Path::new("/proc/self").exists() {
        return match std::fs::read_to_string(stat) {
            // "pid (comm) S ...": the state follows the last ')'.
            Ok(text) => text
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next())
                .is_some_and(|state| state != 'Z' && state != 'X'),
            Err(_) => false,
        };
    }
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // No /proc (macOS): signal 0 checks that the process exists.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}

/// Whether process `pid` is the Kafka JVM started with `properties`. A pid alone is not
/// enough: the number may have been reused since the state file was written.
pub(super) fn is_node_process(pid: u32, properties: &Path) -> bool {
    let command_line = if Path::new("/proc/self").exists() {
        // A zombie (exited, not yet reaped) has an empty command line: it counts as gone.
        match std::fs::read(format!("/proc/{pid}/cmdline")) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).replace('\0', " "),
            Err(_) => return false,
        }
    } else {
        match Command::new("ps")
            .args(["-o", "args=", "-p", &pid.to_string()])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
        {
            Ok(output) if output.status.success() => {
                String::from_utf8_lossy(&output.stdout).into_owned()
            }
            _ => return false,
        }
    };
    command_line.contains("kafka.Kafka") && command_line.contains(&properties.display().to_string())
}

/// A shell running `script` (with `arg` as `$0`), which first waits for its stdin to close.
/// The caller keeps the write end: it closes when the caller drops it or its process ends,
/// however that happens (a test binary never runs the destructors of its statics).
pub(super) fn when_this_process_ends(
    script: &str,
    arg: &str,
) -> std::io::Result<(Child, ChildStdin)> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(arg)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdin = child.stdin.take().expect("piped");
    stdin.flush()?;
    Ok((child, stdin))
}

/// The pids of every Kafka JVM started from a node folder of `dir` (`DIR/nodeN/`), found by
/// their command lines: what may still run when the state file that names them is lost.
pub(crate) fn node_processes_in(dir: &Path) -> Vec<u32> {
    let needle = format!("{}/node", dir.display());
    let runs_from_dir = |command_line: &str| {
        command_line.contains("kafka.Kafka")
            && command_line.contains(&needle)
            && command_line.contains("server.properties")
    };
    if let Ok(entries) = std::fs::read_dir("/proc") {
        return entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
            .filter(|&pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|b| runs_from_dir(&String::from_utf8_lossy(&b).replace('\0', " ")))
            })
            .collect();
    }
    // No /proc (macOS): ps lists every process with its command line.
    let Ok(output) = Command::new("ps")
        .args(["-axo", "pid=,args="])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| runs_from_dir(line))
        .filter_map(|line| line.split_whitespace().next()?.parse().ok())
        .collect()
}
