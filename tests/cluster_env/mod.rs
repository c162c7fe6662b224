//! `orderflow cluster` as the tests run it: the real binary, Kafka and Java from the test
//! harness's search passed the way a user would, a folder and ports of the test's own, and a
//! clean-up that stops the cluster however the test ends.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::util::{orderflow, run_with_limit, text};

/// A start waits for a JVM (5–15 s), a restart after a kill also for the controller to drop
/// the dead registration (about 9 s more); a loaded machine needs several times that.
pub const LIMIT: Duration = Duration::from_secs(180);

/// `orderflow cluster ARGS… --dir DIR`, with Kafka and Java from the test harness's search.
pub fn cluster(env: &ClusterEnv, args: &[&str]) -> Output {
    let mut command = orderflow();
    command.arg("cluster").args(args).arg("--dir").arg(&env.dir);
    env.apply(&mut command);
    run_with_limit(&mut command, LIMIT)
}

/// Where Kafka is for the binary under test: what the harness found, passed the way a user
/// would (ORDERFLOW_KAFKA_LIBS, JAVA), so the binary's own search is what is exercised.
pub struct ClusterEnv {
    pub dir: PathBuf,
    pub libs: Option<PathBuf>,
    pub java: Option<PathBuf>,
    _temp: tempfile::TempDir,
}

impl ClusterEnv {
    pub fn new(install: Option<&orderflow::kraft::KafkaInstall>) -> ClusterEnv {
        let temp = tempfile::Builder::new()
            .prefix("orderflow-cluster-test-")
            .tempdir()
            .expect("a temporary folder");
        ClusterEnv {
            dir: temp.path().join("cluster"),
            libs: install.map(|i| i.libs.clone()),
            java: install.map(|i| i.java.clone()),
            _temp: temp,
        }
    }

    pub fn apply(&self, command: &mut Command) {
        command.env_remove("KAFKA_HOME").env_remove("JAVA_HOME");
        match &self.libs {
            Some(libs) => command.env("ORDERFLOW_KAFKA_LIBS", libs),
            None => command.env_remove("ORDERFLOW_KAFKA_LIBS"),
        };
        if let Some(java) = &self.java {
            command.env("JAVA", java);
        }
    }
}

/// Stops the test's cluster however the test ends, so a failed assertion leaves no JVM.
pub struct StopOnDrop<'a>(pub &'a ClusterEnv);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        if self.0.dir.join("cluster.json").exists() {
            let _ = cluster(self.0, &["stop", "--wipe"]);
        }
    }
}

/// A first client port P for `nodes` nodes with P..P+nodes-1 and their controllers'
/// P+100.. free, from a range of the tests' own: away from the system's ephemeral ports and
/// from 19092, where a user's own `orderflow cluster` listens by default.
/// Ports handed out to this test binary's tests are never handed out again: two tests
/// running at once would otherwise both find the same ports free before either binds them
/// (and a node would join the other test's quorum).
pub fn free_base_port(nodes: u16) -> u16 {
    static HANDED: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed = HANDED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let free = |port: u16| {
        !handed.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
    };
    let offset = (std::process::id() % 400) as u16;
    let base = (0..400u16)
        .map(|i| 23000 + (offset + i) % 400)
        .find(|&p| (0..nodes).all(|i| free(p + i) && free(p + 100 + i)))
        .expect("free ports in 23000-23502");
    handed.extend((0..nodes).flat_map(|i| [base + i, base + 100 + i]));
    base
}

pub fn status_json(env: &ClusterEnv) -> serde_json::Value {
    let output = cluster(env, &["status", "--json"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("status --json prints one JSON object")
}

/// Every process whose command line names `dir`: the cluster's JVMs, while any runs.
pub fn processes_in(dir: &Path) -> Vec<String> {
    let needle = dir.display().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&needle) && c.contains("kafka.Kafka"))
        .collect()
}
