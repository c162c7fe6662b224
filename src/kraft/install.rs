//! Finding an Apache Kafka distribution and the Java that runs it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{KraftError, MIN_JAVA};
/// Where `scripts/setup --kafka` puts Kafka's jars (in `libs/`): `ORDERFLOW_KAFKA_CACHE`, or
/// `orderflow/kafka-<version>` in the user's cache folder (`$XDG_CACHE_HOME`, `~/.cache`).
fn setup_cache() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("ORDERFLOW_KAFKA_CACHE") {
        return Some(PathBuf::from(dir));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
    Some(
        base.join("orderflow")
            .join(format!("kafka-{}", super::KAFKA_VERSION)),
    )
}

/// An Apache Kafka distribution: the folder of its jars, and the Java that runs them.
#[derive(Clone, Debug)]
pub struct KafkaInstall {
    /// The folder holding kafka_2.13-*.jar, kafka-tools-*.jar and their dependencies.
    pub libs: PathBuf,
    /// The `java` executable.
    pub java: PathBuf,
    /// Java's major version.
    pub java_version: u32,
}

impl KafkaInstall {
    /// Finds Kafka's jars, in this order: `ORDERFLOW_KAFKA_LIBS`, `$KAFKA_HOME/libs`, the
    /// folder `scripts/setup --kafka` fills, then `../shared/kafka/libs` beside each of `near` (a checkout's parent holds that folder on
    /// the project's machines). Then finds Java (`JAVA`, `$JAVA_HOME/bin/java`, `java`) and
    /// checks its version.
    pub fn locate(near: &[&Path]) -> Result<KafkaInstall, KraftError> {
        KafkaInstall::locate_from(None, near)
    }

    /// As [`KafkaInstall::locate`], but when `kafka` is given (an unpacked Apache download,
    /// or a folder of its jars) only there.
    pub(crate) fn locate_from(
        kafka: Option<&Path>,
        near: &[&Path],
    ) -> Result<KafkaInstall, KraftError> {
        let mut candidates: Vec<(String, PathBuf)> = Vec::new();
        if let Some(kafka) = kafka {
            // An unpacked download has its jars in libs/; a folder of jars is taken as it is.
            let libs = if kafka.join("libs").is_dir() {
                kafka.join("libs")
            } else {
                kafka.to_path_buf()
            };
            candidates.push(("--kafka".into(), libs));
        } else if let Some(libs) = std::env::var_os("ORDERFLOW_KAFKA_LIBS") {
            candidates.push(("ORDERFLOW_KAFKA_LIBS".into(), PathBuf::from(libs)));
        }
        if kafka.is_none() {
            if let Some(home) = std::env::var_os("KAFKA_HOME") {
                candidates.push(("$KAFKA_HOME/libs".into(), PathBuf::from(home).join("libs")));
            }
            if let Some(cache) = setup_cache() {
                candidates.push(("scripts/setup --kafka".into(), cache.join("libs")));
            }
            for dir in near {
                let libs = dir.join("../shared/kafka/libs");
                candidates.push((format!("beside {}", dir.display()), libs));
            }
        }
        let mut tried = String::new();
        let libs = candidates.into_iter().find_map(|(from, libs)| {
            if has_kafka_jars(&libs) {
                Some(libs)
            } else {
                let _ = writeln!(tried, "  - {} ({from}): no Kafka jars", libs.display());
                None
            }
        });
        let Some(libs) = libs else {
            if tried.is_empty() {
                tried = "  (nowhere: no ORDERFLOW_KAFKA_LIBS, no KAFKA_HOME)\n".into();
            }
            return Err(KraftError::NotFound {
                tried: tried.trim_end().to_owned(),
            });
        };
        let java = java_executable();
        let java_version = java_major_version(&java)?;
        if java_version < MIN_JAVA {
            return Err(KraftError::OldJava {
                java: java.display().to_string(),
                found: java_version.to_string(),
            });
        }
        Ok(KafkaInstall {
            libs: libs.canonicalize().unwrap_or(libs),
            java,
            java_version,
        })
    }

    /// A `java` command with Kafka's jars on the class path, logging with `log4j2` into
    /// `logs`.
    pub(super) fn java(&self, log4j: &Path, logs: &Path) -> Command {
        let mut command = Command::new(&self.java);
        command
            .args(["-Xms128m", "-Xmx512m", "-XX:+UseG1GC"])
            .arg("-cp")
            .arg(self.libs.join("*"))
            .arg(format!("-Dlog4j2.configurationFile={}", log4j.display()))
            .arg(format!("-Dkafka.logs.dir={}", logs.display()))
            .stdin(Stdio::null());
        command
    }
}

pub(super) fn has_kafka_jars(libs: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(libs) else {
        return false;
    };
    let names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let has = |prefix: &str| {
        names
            .iter()
            .any(|n| n.starts_with(prefix) && n.ends_with(".jar"))
    };
    has("kafka_2.13-") && has("kafka-tools-") && has("kafka-clients-")
}

pub(super) fn java_executable() -> PathBuf {
    if let Some(java) = std::env::var_os("JAVA") {
        return PathBuf::from(java);
    }
    if let Some(home) = std::env::var_os("JAVA_HOME") {
        let java = PathBuf::from(home).join("bin/java");
        if java.exists() {
            return java;
        }
    }
    PathBuf::from("java")
}

/// Runs `java -version` and reads the major version from its first line
/// (`openjdk version "17.0.15" 2025-04-15`, or `"1.8.0_292"` for Java 8).
pub(super) fn java_major_version(java: &Path) -> Result<u32, KraftError> {
    let output = Command::new(java)
        .arg("-version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| KraftError::NoJava(format!("{}: {e}", java.display())))?;
    let text = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    parse_java_version(&text).ok_or_else(|| {
        KraftError::NoJava(format!(
            "{} -version printed no version: {}",
            java.display(),
            text.lines().next().unwrap_or("")
        ))
    })
}

pub(super) fn parse_java_version(text: &str) -> Option<u32> {
    let quoted = text.split('"').nth(1)?;
    let mut parts = quoted.split(['.', '_', '-', '+']);
    let first: u32 = parts.next()?.parse().ok()?;
    if first == 1 {
        parts.next()?.parse().ok()
    } else {
        Some(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_versions_are_read_from_both_styles() {
        assert_eq!(
            parse_java_version("openjdk version \"17.0.15\" 2025-04-15\nOpenJDK Runtime"),
            Some(17)
        );
        assert_eq!(parse_java_version("java version \"1.8.0_292\""), Some(8));
        assert_eq!(
            parse_java_version("openjdk version \"21\" 2023-09-19"),
            Some(21)
        );
        assert_eq!(parse_java_version("openjdk version \"22-ea\""), Some(22));
        assert_eq!(parse_java_version("no version here"), None);
    }

    #[test]
    fn a_folder_without_kafka_jars_is_not_kafka() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!has_kafka_jars(dir.path()));
        for jar in [
            "kafka_2.13-4.1.0.jar",
            "kafka-tools-4.1.0.jar",
            "kafka-clients-4.1.0.jar",
        ] {
            std::fs::write(dir.path().join(jar), b"").unwrap();
        }
        assert!(has_kafka_jars(dir.path()));
        assert!(!has_kafka_jars(&dir.path().join("missing")));
    }
}
