//! docker/: the Compose files and the Dockerfile, checked without a Docker engine (there is
//! none where this project is built and tested). The files are parsed and every fact a
//! learner's `docker compose up` depends on is checked: each orderflow service runs a real
//! orderflow command (parsed with the binary's own clap definition), containers and host
//! clients are given broker addresses that the listeners really advertise, ports do not clash,
//! brokers have health checks, dependencies exist, the topic gets 3 partitions (replicated 3
//! times with min.insync.replicas 2 in the cluster), and the image runs orderflow as a user
//! that is not root. The last test breaks the real files in typical ways and expects each
//! breakage to be caught.
//!
//! The `monitoring` profile (Prometheus, Grafana and its dashboard) is checked in monitoring.rs.
//!
//! What this cannot check: that the images exist and start, and that Kafka accepts the
//! configuration. docker/README.md says so.

mod checks;
mod compose;
mod dockerfile;
mod monitoring;

use std::collections::BTreeSet;
use std::path::PathBuf;

use checks::check_compose;
use compose::parse_compose;
use dockerfile::check_dockerfile;

/// The partitions the lessons need (design.md): three, so a group of two splits them 2 + 1.
const PARTITIONS: u32 = 3;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    let path = repo().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn assert_no_problems(problems: &[String]) {
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn compose_yml_runs_one_broker_reachable_from_the_host_and_from_containers() {
    let checked = check_compose("compose.yml", &read("docker/compose.yml"));
    assert_no_problems(&checked.problems);
    let [broker] = checked.brokers.as_slice() else {
        panic!("compose.yml should run one broker");
    };
    assert!(
        broker
            .advertised
            .iter()
            .any(|l| l.host == "localhost" && l.port == 9092),
        "host clients use localhost:9092, orderflow's default"
    );
    assert_eq!(checked.role_topic.as_deref(), Some("order-events"));
    assert!(
        checked
            .topics
            .iter()
            .all(|t| t.replication_factor == Some(1))
    );
}

#[test]
fn the_cluster_has_three_brokers_and_replicates_the_topic_three_times() {
    let checked = check_compose("compose.cluster.yml", &read("docker/compose.cluster.yml"));
    assert_no_problems(&checked.problems);
    assert_eq!(checked.brokers.len(), 3);
    let host_ports: BTreeSet<u16> = checked
        .brokers
        .iter()
        .flat_map(|b| &b.advertised)
        .filter(|l| l.host == "localhost")
        .map(|l| l.port)
        .collect();
    assert_eq!(host_ports, BTreeSet::from([9092, 9093, 9094]));
    assert!(!checked.topics.is_empty());
    for topic in &checked.topics {
        assert_eq!(topic.replication_factor, Some(3), "{topic:?}");
        assert_eq!(
            topic.configs.get("min.insync.replicas").map(String::as_str),
            Some("2"),
            "{topic:?}"
        );
    }
    // The brokers' defaults agree, so a topic created on first use is as safe.
    let file = parse_compose(&read("docker/compose.cluster.yml")).unwrap();
    for broker in file.services.values().filter(|s| s.is_broker()) {
        assert_eq!(
            broker.env("KAFKA_DEFAULT_REPLICATION_FACTOR").as_deref(),
            Some("3")
        );
        assert_eq!(
            broker.env("KAFKA_MIN_INSYNC_REPLICAS").as_deref(),
            Some("2")
        );
        assert_eq!(
            broker
                .env("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR")
                .as_deref(),
            Some("3")
        );
    }
}

#[test]
fn both_files_run_every_role() {
    for file in ["docker/compose.yml", "docker/compose.cluster.yml"] {
        let checked = check_compose(file, &read(file));
        assert_eq!(
            checked.roles,
            BTreeSet::from(
                ["produce", "order-processor", "analytics", "storage"].map(String::from)
            ),
            "{file}"
        );
    }
}

#[test]
fn the_dockerfile_builds_orderflow_and_runs_it_as_a_user() {
    assert_no_problems(&check_dockerfile(
        &read("docker/Dockerfile"),
        &read(".dockerignore"),
    ));
}

/// Each check must be able to fail: break the real files the way people do, and expect the
/// breakage to be named.
#[test]
fn typical_mistakes_are_caught() {
    let compose = read("docker/compose.yml");
    let cluster = read("docker/compose.cluster.yml");
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        // (file, text, replacement, expected problem, what)
        (
            "compose",
            r#"["analytics", "--no-tui"]"#,
            r#"["analyse", "--no-tui"]"#,
            "is not an orderflow command",
            "a subcommand that does not exist",
        ),
        (
            "compose",
            r#"["analytics", "--no-tui"]"#,
            r#"["analytics", "--no-tv"]"#,
            "is not an orderflow command",
            "a flag that does not exist",
        ),
        (
            "compose",
            r#"["produce", "--rate", "20"]"#,
            r#"["produce", "--rate", "fast"]"#,
            "is not an orderflow command",
            "a bad value",
        ),
        (
            "compose",
            r#"["analytics", "--no-tui"]"#,
            r#"["analytics"]"#,
            "pass --no-tui",
            "a live view without a terminal",
        ),
        (
            "compose",
            "ORDERFLOW_BROKERS: kafka:19092",
            "ORDERFLOW_BROKERS: localhost:9092",
            "which no broker of this file advertises to containers",
            "a container told localhost",
        ),
        (
            "compose",
            "HOST://localhost:9092,DOCKER",
            "HOST://localhost:9095,DOCKER",
            "does not publish host port 9095",
            "an advertised port that is not published",
        ),
        (
            "compose",
            "DOCKER://kafka:19092\n",
            "DOCKER://broker:19092\n",
            "not its own name on the compose network",
            "an advertised name no container resolves",
        ),
        (
            "compose",
            "--topic order-events --partitions 3",
            "--topic order-events --partitions 1",
            "the lessons need 3",
            "a topic with one partition",
        ),
        (
            "compose",
            "--topic order-events.dlq",
            "--topic order-events-dlq",
            "does not create order-events.dlq",
            "no dead-letter topic",
        ),
        (
            "compose",
            "    healthcheck:\n",
            "    helthcheck:\n",
            "unknown field `helthcheck`",
            "a misspelt key",
        ),
        (
            "compose",
            "    create-topics:\n      condition",
            "    create-topic:\n      condition",
            "which is not a service",
            "a dependency on a missing service",
        ),
        (
            "compose",
            "KAFKA_CONTROLLER_QUORUM_VOTERS: 1@kafka:29093",
            "KAFKA_CONTROLLER_QUORUM_VOTERS: 1@kafka:9093",
            "is not a broker of this file",
            "a voter on the wrong port",
        ),
        (
            "compose",
            "    volumes:\n      - audit-log:/data\n",
            "",
            "not in a named volume's directory",
            "an audit log lost with its container",
        ),
        (
            "compose",
            "  profiles: [roles]\n",
            "  profiles: [roles]\n  container_name: orderflow\n",
            "cannot run two",
            "a role that cannot be scaled",
        ),
        (
            "cluster",
            "\"9093:9092\"",
            "\"9092:9092\"",
            "published by both",
            "two brokers on one host port",
        ),
        (
            "cluster",
            "--topic order-events --partitions 3 --replication-factor 3",
            "--topic order-events --partitions 3 --replication-factor 4",
            "--replication-factor of at most 3",
            "more replicas than brokers",
        ),
        (
            "cluster",
            "      kafka-3:\n        condition: service_healthy\n",
            "",
            "must wait for kafka-3 to be healthy",
            "topics created before a broker is up",
        ),
        (
            "cluster",
            "3@kafka-3:29093",
            "3@kafka-4:29093",
            "is not a broker of this file",
            "a voter that does not exist",
        ),
    ];
    for (which, from, to, expected, what) in cases {
        let (label, original) = match *which {
            "compose" => ("compose.yml", &compose),
            _ => ("compose.cluster.yml", &cluster),
        };
        assert!(
            original.contains(from),
            "{what}: {label} no longer contains {from:?}"
        );
        let broken = original.replacen(from, to, 1);
        let problems = check_compose(label, &broken).problems;
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{what}: expected a problem containing {expected:?}, got {problems:#?}"
        );
    }

    let dockerfile = read("docker/Dockerfile");
    let dockerignore = read(".dockerignore");
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "ENTRYPOINT [\"orderflow\"]",
            "ENTRYPOINT orderflow",
            "exec form",
            "a shell-form entrypoint",
        ),
        (
            "ENTRYPOINT [\"orderflow\"]",
            "ENTRYPOINT [\"/bin/sh\"]",
            "ENTRYPOINT",
            "an image that does not run orderflow",
        ),
        (
            "USER orderflow\n",
            "",
            "not root",
            "an image that runs as root",
        ),
        (
            "COPY benches benches\n",
            "",
            "must copy benches",
            "a build that cannot read Cargo.toml",
        ),
        (
            "--locked",
            "",
            "cargo build --release --locked",
            "a build that ignores Cargo.lock",
        ),
    ];
    for (from, to, expected, what) in cases {
        assert!(
            dockerfile.contains(from),
            "{what}: the Dockerfile no longer contains {from:?}"
        );
        let problems = check_dockerfile(&dockerfile.replacen(from, to, 1), &dockerignore);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{what}: expected a problem containing {expected:?}, got {problems:#?}"
        );
    }
    let problems = check_dockerfile(&dockerfile, &dockerignore.replace("target/\n", ""));
    assert!(
        problems.iter().any(|p| p.contains("exclude target/")),
        "{problems:#?}"
    );
}
