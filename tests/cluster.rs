//! `orderflow cluster` run as a user runs it: the real binary starts real Kafka in the
//! background, later commands find it again through its folder, kill and restart a node, and
//! stop it leaving no JVM behind; bad input is refused with a message naming what is wrong.
//!
//! The lifecycle test needs Kafka (tests/util/kafka.rs: skipped loudly without it, a failure
//! under CI=true); the bad-input tests that stop before Kafka starts run everywhere.

mod cluster_env;
mod util;

use std::time::Duration;

use cluster_env::{
    ClusterEnv, LIMIT, StopOnDrop, cluster, free_base_port, processes_in, status_json,
};
use util::{orderflow, read_topic, run_with_limit, text};

fn node_state(status: &serde_json::Value, node: usize) -> String {
    status["nodes"][node - 1]["state"]
        .as_str()
        .expect("a state")
        .to_owned()
}

fn produce(bootstrap: &str, count: u32) {
    let output = run_with_limit(
        orderflow().args([
            "-b",
            bootstrap,
            "produce",
            "--count",
            &count.to_string(),
            "--rate",
            "0",
        ]),
        LIMIT,
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
}

#[test]
fn one_node_starts_serves_crashes_restarts_and_stops_without_leaving_a_jvm() {
    let test = "one_node_starts_serves_crashes_restarts_and_stops_without_leaving_a_jvm";
    let Some(install) = util::kafka::install(test) else {
        return;
    };
    let env = ClusterEnv::new(Some(&install));
    let _stop = StopOnDrop(&env);
    let port = free_base_port(1);
    let bootstrap = format!("127.0.0.1:{port}");

    let output = cluster(&env, &["start", "--port", &port.to_string()]);
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        text(&output.stderr)
    );
    assert!(stdout.contains("node 1: JVM started (pid"), "{stdout}");
    assert!(stdout.contains("node 1: started after"), "{stdout}");
    assert!(
        stdout.contains("topic order-events: 3 partitions, replication factor 1 (created)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("topic order-events.dlq: 3 partitions"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("export ORDERFLOW_BROKERS={bootstrap}")),
        "{stdout}"
    );

    // A node that dies without a command (a crash, a kill -9 from outside) right after the
    // start that saw it up: status can only say when it was last seen up, never "never seen
    // up".
    // The pid from cluster.json, as a user would find it: no other command has seen the node.
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.dir.join("cluster.json")).unwrap()).unwrap();
    let pid = saved["nodes"][0]["pid"].as_u64().expect("a pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9 the node");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !processes_in(&env.dir).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = status_json(&env);
    assert_eq!(
        status["nodes"][0]["by"], "ended without a command",
        "{status}"
    );
    assert!(status["nodes"][0]["last_seen_up"].is_string(), "{status}");
    let words = text(&cluster(&env, &["status"]).stdout);
    assert!(
        words.contains("down since it was last seen up at")
            && words.contains("it ended without an orderflow command"),
        "{words}"
    );
    // `start` brings it back, saying the cluster was not stopped by orderflow.
    let start = cluster(&env, &["start"]);
    assert!(start.status.success(), "{}", text(&start.stderr));
    assert!(
        text(&start.stdout).contains(
            "Node 1 of the cluster in {} ended without an orderflow command (a crash"
                .replace("{}", &env.dir.display().to_string())
                .as_str()
        ) && text(&start.stdout).contains("cluster stop --wipe --dir"),
        "{}",
        text(&start.stdout)
    );

    // The command has exited; the node runs on, and a second start changes nothing.
    let again = cluster(&env, &["start"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        text(&again.stdout).contains("is already running: 1 node on"),
        "{}",
        text(&again.stdout)
    );

    let status = status_json(&env);
    assert_eq!(status["bootstrap"], bootstrap.as_str());
    assert_eq!(status["running"], 1);
    assert_eq!(node_state(&status, 1), "up");
    assert_eq!(status["nodes"][0]["by"], "started", "{status}");
    assert!(status["nodes"][0]["since"].is_string(), "{status}");
    assert_eq!(status["controller"], 1, "{status}");
    let partitions = status["topic"]["partitions"]
        .as_array()
        .expect("partitions");
    assert_eq!(partitions.len(), 3, "{status}");
    for p in partitions {
        assert_eq!(p["leader"], 1, "{status}");
        assert_eq!(p["isr"], serde_json::json!([1]), "{status}");
    }

    produce(&bootstrap, 50);
    assert_eq!(read_topic(&bootstrap, "order-events").len(), 50);
    let storage = run_with_limit(
        orderflow()
            .args(["-b", &bootstrap, "storage", "--exit-at-end", "--file"])
            .arg(env.dir.with_file_name("audit.jsonl")),
        LIMIT,
    );
    assert!(storage.status.success(), "{}", text(&storage.stderr));
    let status = status_json(&env);
    assert_eq!(
        status["groups"],
        serde_json::json!([{"group": "storage", "state": "Empty", "coordinator": 1}]),
        "{status}"
    );
    let words = text(&cluster(&env, &["status"]).stdout);
    for expected in [
        "active controller: node 1",
        "storage  coordinator node 1",
        "partition 0  leader node 1",
    ] {
        assert!(words.contains(expected), "{expected}\n{words}");
    }

    // Bad input while it runs: another cluster on its ports, a folder that already has one,
    // a node it does not have.
    let other = ClusterEnv::new(Some(&install));
    let taken = cluster(&other, &["start", "--port", &port.to_string()]);
    assert!(!taken.status.success());
    // Which port, and which process holds it: here node 1 of the test's own cluster.
    let refused = text(&taken.stderr);
    assert!(
        refused.contains(&format!(
            "port {port} on 127.0.0.1 (node 1's client port) is taken by pid {}",
            status["nodes"][0]["pid"]
        )) && refused.contains(&format!(
            "(a Kafka node: java kafka.Kafka {}/node1/server.properties)",
            env.dir.display()
        )),
        "{refused}"
    );
    assert!(!other.dir.exists(), "a refused start leaves no folder");
    let second = cluster(&env, &["start", "--port", &(port + 1).to_string()]);
    assert!(!second.status.success());
    assert!(
        text(&second.stderr).contains("already holds a running 1-node cluster"),
        "{}",
        text(&second.stderr)
    );
    for command in ["kill", "restart", "stop-node"] {
        let no_node = cluster(&env, &[command, "2"]);
        assert_eq!(no_node.status.code(), Some(1), "{command} 2");
        assert!(
            text(&no_node.stderr).contains("there is no node 2: the cluster has only node 1"),
            "{command} 2: {}",
            text(&no_node.stderr)
        );
    }

    // A crash: SIGKILL, then the node is down, and killing it again says so.
    let pid = status["nodes"][0]["pid"].as_u64().expect("a pid");
    let kill = cluster(&env, &["kill", "1"]);
    assert!(kill.status.success(), "{}", text(&kill.stderr));
    assert!(
        text(&kill.stdout).contains(&format!("Killed node 1 (pid {pid}")),
        "{}",
        text(&kill.stdout)
    );
    let status = status_json(&env);
    assert_eq!(node_state(&status, 1), "down", "{status}");
    assert_eq!(status["running"], 0);
    assert_eq!(status["nodes"][0]["by"], "killed", "{status}");
    assert!(
        text(&cluster(&env, &["status"]).stdout).contains("killed (SIGKILL)"),
        "status says how it went down"
    );
    let again = cluster(&env, &["kill", "1"]);
    assert!(again.status.success());
    assert!(text(&again.stdout).contains("node 1 is already down"));

    // Back with its data.
    let restart = cluster(&env, &["restart", "1"]);
    assert!(restart.status.success(), "{}", text(&restart.stderr));
    assert!(
        text(&restart.stdout).contains(&format!("Node 1 is back on {bootstrap}")),
        "{}",
        text(&restart.stdout)
    );
    let again = cluster(&env, &["restart", "1"]);
    assert!(again.status.success());
    assert!(text(&again.stdout).contains("Node 1 is already running"));
    assert_eq!(node_state(&status_json(&env), 1), "up");
    produce(&bootstrap, 10);
    assert_eq!(
        read_topic(&bootstrap, "order-events").len(),
        60,
        "the restarted node kept the first 50"
    );

    // A clean stop of the node leaves no JVM, and says so when repeated.
    assert!(
        !processes_in(&env.dir).is_empty(),
        "the node runs before the stop"
    );
    let stop = cluster(&env, &["stop-node", "1"]);
    assert!(stop.status.success(), "{}", text(&stop.stderr));
    assert!(
        text(&stop.stdout).contains("Stopped node 1 (") && text(&stop.stdout).contains("cleanly"),
        "{}",
        text(&stop.stdout)
    );
    assert_eq!(processes_in(&env.dir), Vec::<String>::new());
    let status = status_json(&env);
    assert_eq!(status["nodes"][0]["by"], "stopped", "{status}");
    let again = cluster(&env, &["stop-node", "1"]);
    assert!(again.status.success());
    assert!(text(&again.stdout).contains("node 1 is already down"));
    let again = cluster(&env, &["stop"]);
    assert!(again.status.success());
    assert!(text(&again.stdout).contains("is already stopped"));

    // The folder holds this cluster: another one is refused, and --wipe is offered.
    let other = cluster(&env, &["start", "--nodes", "3"]);
    assert_eq!(other.status.code(), Some(1));
    assert!(
        text(&other.stderr).contains("holds a stopped 1-node cluster on")
            && text(&other.stderr).contains("cluster stop --wipe --dir"),
        "{}",
        text(&other.stderr)
    );

    // A node that does not come up: its last log lines, and the file they are in.
    std::fs::remove_file(env.dir.join("node1/data/meta.properties")).expect("meta.properties");
    let broken = cluster(&env, &["restart", "1"]);
    assert_eq!(broken.status.code(), Some(1));
    let said = text(&broken.stderr);
    assert!(
        said.contains(&format!(
            "node 1 exited while starting; from {}/node1/",
            env.dir.display()
        )) && said.contains("meta.properties"),
        "{said}"
    );
    assert_eq!(processes_in(&env.dir), Vec::<String>::new());

    let wipe = cluster(&env, &["stop", "--wipe"]);
    assert!(wipe.status.success());
    assert!(!env.dir.exists(), "--wipe removes the folder");
}

#[test]
fn a_folder_without_kafka_jars_says_how_to_get_kafka() {
    let env = ClusterEnv::new(None);
    let empty = tempfile::tempdir().unwrap();
    let output = cluster(
        &env,
        &[
            "start",
            "--kafka",
            empty.path().to_str().unwrap(),
            "--port",
            "23990",
        ],
    );
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("no Apache Kafka found"), "{stderr}");
    assert!(stderr.contains("(--kafka): no Kafka jars"), "{stderr}");
    assert!(stderr.contains("kafka_2.13-4.1.0.tgz"), "{stderr}");
    assert!(stderr.contains("KAFKA_HOME"), "{stderr}");
    assert!(stderr.contains("ORDERFLOW_KAFKA_LIBS"), "{stderr}");
    assert!(!env.dir.exists(), "a refused start leaves no folder");
}

/// A folder that looks like Kafka's libs/ to the search (the jars are empty: nothing runs).
fn fake_kafka() -> tempfile::TempDir {
    let kafka = tempfile::tempdir().unwrap();
    std::fs::create_dir(kafka.path().join("libs")).unwrap();
    for jar in [
        "kafka_2.13-4.1.0.jar",
        "kafka-tools-4.1.0.jar",
        "kafka-clients-4.1.0.jar",
    ] {
        std::fs::write(kafka.path().join("libs").join(jar), b"").unwrap();
    }
    kafka
}

#[test]
fn java_older_than_17_is_named_with_how_to_get_17() {
    let kafka = fake_kafka();
    let java = kafka.path().join("java");
    // What Java 11's `java -version` prints (on stderr).
    std::fs::write(
        &java,
        "#!/bin/sh\necho 'openjdk version \"11.0.22\" 2024-01-16' >&2\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&java, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut env = ClusterEnv::new(None);
    env.java = Some(java.clone());
    let output = cluster(
        &env,
        &[
            "start",
            "--kafka",
            kafka.path().to_str().unwrap(),
            "--port",
            "23990",
        ],
    );
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{} is Java 11; Kafka 4 needs Java 17 or newer",
            java.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("openjdk-17-jre-headless"), "{stderr}");

    env.java = Some(kafka.path().join("no-such-java"));
    let output = cluster(
        &env,
        &[
            "start",
            "--kafka",
            kafka.path().to_str().unwrap(),
            "--port",
            "23990",
        ],
    );
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("no Java runtime found"), "{stderr}");
    assert!(stderr.contains("JAVA_HOME"), "{stderr}");
}

#[test]
fn commands_on_a_folder_without_a_cluster_say_so() {
    let env = ClusterEnv::new(None);
    let status = cluster(&env, &["status"]);
    assert!(!status.status.success());
    assert!(
        text(&status.stderr).contains("no cluster in")
            && text(&status.stderr).contains("cluster start"),
        "{}",
        text(&status.stderr)
    );
    for args in [&["kill", "1"][..], &["restart", "1"]] {
        let output = cluster(&env, args);
        assert!(!output.status.success(), "{args:?}");
        assert!(text(&output.stderr).contains("no cluster in"), "{args:?}");
    }
    // Stopping what is not there is not an error: scripts stop in their clean-up.
    let stop = cluster(&env, &["stop", "--wipe"]);
    assert!(stop.status.success());
    assert!(text(&stop.stdout).contains("nothing to stop or wipe"));

    // A folder of someone else's files is not taken over.
    std::fs::create_dir_all(&env.dir).unwrap();
    std::fs::write(env.dir.join("notes.txt"), "mine").unwrap();
    let start = cluster(&env, &["start", "--port", "23990"]);
    assert!(!start.status.success());
    assert!(
        text(&start.stderr).contains("is not a cluster folder of orderflow's"),
        "{}",
        text(&start.stderr)
    );
    assert!(env.dir.join("notes.txt").exists());
}

#[test]
fn two_nodes_are_refused_with_the_reason() {
    let env = ClusterEnv::new(None);
    let output = cluster(&env, &["start", "--nodes", "2"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("a cluster has 1 node, or 3 for replication and failover"),
        "{}",
        text(&output.stderr)
    );
}

/// `scripts/setup --kafka` puts Kafka's jars in a cache folder (ORDERFLOW_KAFKA_CACHE, or
/// ~/.cache/orderflow/kafka-4.1.0): `cluster start` takes them from there before looking
/// beside the checkout. A Java that says it is 17 and then fails at once keeps the test
/// from starting anything.
#[test]
fn the_jars_scripts_setup_fetched_are_found_in_its_cache() {
    let cache = fake_kafka();
    let java = cache.path().join("java");
    std::fs::write(
        &java,
        "#!/bin/sh\nif [ \"$1\" = -version ]; then echo 'openjdk version \"17.0.9\" 2023-10-17' >&2; exit 0; fi\nexit 1\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&java, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut env = ClusterEnv::new(None);
    env.java = Some(java);
    let mut command = orderflow();
    env.apply(&mut command);
    command
        .env("ORDERFLOW_KAFKA_CACHE", cache.path())
        .args(["cluster", "start", "--dir"])
        .arg(&env.dir)
        .args(["--port", "23990"]);
    let output = run_with_limit(&mut command, Duration::from_secs(60));
    let stderr = text(&output.stderr);
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains(&format!(
            "Kafka from {}",
            cache.path().join("libs").display()
        )) || stderr.contains(&format!(
            "Kafka from {}",
            cache.path().join("libs").display()
        )),
        "{stdout}\n{stderr}"
    );
    assert!(!output.status.success(), "{stdout}\n{stderr}");
}

/// What a `cluster start` that died before writing cluster.json leaves (node folders, the
/// log4j2 file): start says so and offers --wipe, which deletes it.
#[test]
fn a_folder_left_by_an_unfinished_start_is_named_and_wiped() {
    let env = ClusterEnv::new(None);
    std::fs::create_dir_all(env.dir.join("node1/data")).unwrap();
    std::fs::write(env.dir.join("node1/server.properties"), "node.id=1\n").unwrap();
    std::fs::write(env.dir.join("log4j2.properties"), "").unwrap();
    let start = cluster(&env, &["start", "--port", "23990"]);
    assert_eq!(start.status.code(), Some(1));
    assert!(
        text(&start.stderr).contains("holds what a `cluster start` that did not finish left")
            && text(&start.stderr).contains("cluster stop --wipe --dir"),
        "{}",
        text(&start.stderr)
    );
    let wipe = cluster(&env, &["stop", "--wipe"]);
    assert!(wipe.status.success(), "{}", text(&wipe.stderr));
    assert!(
        text(&wipe.stdout).contains("Wiped the files of a cluster whose start did not finish"),
        "{}",
        text(&wipe.stdout)
    );
    assert!(!env.dir.exists());
}

/// A file the user put in a node's folder is not orderflow's: `stop --wipe` deletes the
/// cluster's files around it and names it.
#[test]
fn wipe_leaves_and_names_a_users_file_in_a_node_folder() {
    let env = ClusterEnv::new(None);
    std::fs::create_dir_all(env.dir.join("node1/data")).unwrap();
    std::fs::write(env.dir.join("node1/server.properties"), "node.id=1\n").unwrap();
    std::fs::write(env.dir.join("node1/junk"), "x").unwrap();
    let wipe = cluster(&env, &["stop", "--wipe"]);
    assert!(wipe.status.success(), "{}", text(&wipe.stderr));
    let junk = env.dir.join("node1/junk");
    assert!(junk.exists(), "the user's file is kept");
    assert!(!env.dir.join("node1/data").exists());
    assert!(!env.dir.join("node1/server.properties").exists());
    assert!(
        text(&wipe.stdout).contains(&format!(
            "Left in place, not created by orderflow: {}",
            junk.display()
        )),
        "{}",
        text(&wipe.stdout)
    );
}

/// A cluster.json that is not orderflow's (torn, edited): every command names the remedy,
/// and `stop --wipe` still deletes it once no node runs from the folder.
#[test]
fn a_corrupt_state_file_is_named_with_the_remedy_and_wiped() {
    let env = ClusterEnv::new(None);
    std::fs::create_dir_all(env.dir.join("node1/data")).unwrap();
    std::fs::write(env.dir.join("cluster.json"), "{bad\n").unwrap();
    for args in [
        &["status"][..],
        &["start", "--port", "23990"],
        &["kill", "1"],
    ] {
        let output = cluster(&env, args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let said = text(&output.stderr);
        assert!(
            said.contains("is not a cluster state file orderflow wrote")
                && said.contains(&format!(
                    "`orderflow cluster stop --wipe --dir {}`",
                    env.dir.display()
                )),
            "{args:?}: {said}"
        );
    }
    let wipe = cluster(&env, &["stop", "--wipe"]);
    assert!(wipe.status.success(), "{}", text(&wipe.stderr));
    assert!(
        text(&wipe.stdout).contains("its cluster.json was unreadable; no Kafka node ran"),
        "{}",
        text(&wipe.stdout)
    );
    assert!(!env.dir.exists(), "{}", text(&wipe.stdout));
}

/// --dir naming a file (or a path under one) says so instead of the system's "File exists".
#[test]
fn a_dir_that_is_a_file_is_named() {
    let env = ClusterEnv::new(None);
    std::fs::create_dir_all(env.dir.parent().unwrap()).unwrap();
    std::fs::write(&env.dir, "mine").unwrap();
    for args in [
        &["start", "--port", "23990"][..],
        &["status"],
        &["stop", "--wipe"],
    ] {
        let output = cluster(&env, args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        assert!(
            text(&output.stderr)
                .contains(&format!("{} is a file, not a folder", env.dir.display())),
            "{args:?}: {}",
            text(&output.stderr)
        );
    }
    assert_eq!(std::fs::read_to_string(&env.dir).unwrap(), "mine");
    let mut command = orderflow();
    command
        .args(["cluster", "status", "--dir"])
        .arg(env.dir.join("sub"));
    let under = run_with_limit(&mut command, LIMIT);
    assert!(
        text(&under.stderr).contains(&format!("{} is a file, not a folder", env.dir.display())),
        "{}",
        text(&under.stderr)
    );
}

/// `cluster --help` lists every subcommand (clap lists them from the subcommands) and each
/// one's help opens.
#[test]
fn cluster_help_names_every_subcommand() {
    let help = run_with_limit(orderflow().args(["cluster", "--help"]), LIMIT);
    assert!(help.status.success());
    let words = text(&help.stdout);
    let commands: Vec<&str> = words
        .split("Commands:\n")
        .nth(1)
        .expect("a Commands: section")
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|&c| c != "help")
        .collect();
    for expected in ["start", "stop", "kill", "stop-node", "restart", "status"] {
        assert!(commands.contains(&expected), "{expected}: {commands:?}");
    }
    for command in commands {
        let one = run_with_limit(orderflow().args(["cluster", command, "--help"]), LIMIT);
        assert!(one.status.success(), "{command}");
    }
    // The long text above the list names no subcommand list of its own to fall behind.
    let about = words.split("Usage:").next().unwrap();
    assert!(!about.contains("\n  kill N"), "{about}");
}

/// Three nodes, one cluster start for every check: `status` while `start` runs names the
/// nodes as starting (not "up" with metadata errors); the producer tells which broker went
/// away and, once no delivery succeeds, why; `status` with the quorum lost does not promise
/// an election; the producer's exit words say what its failures cost the orders.
#[test]
fn three_nodes_starting_then_losing_their_quorum_are_told_as_they_are() {
    let test = "three_nodes_starting_then_losing_their_quorum_are_told_as_they_are";
    let Some(install) = util::kafka::install(test) else {
        return;
    };
    let env = ClusterEnv::new(Some(&install));
    let _stop = StopOnDrop(&env);
    let port = free_base_port(3);
    let bootstrap = format!("127.0.0.1:{port}");

    let mut start = orderflow();
    start
        .args([
            "cluster",
            "start",
            "--nodes",
            "3",
            "--port",
            &port.to_string(),
        ])
        .arg("--dir")
        .arg(&env.dir);
    env.apply(&mut start);
    let mut start = util::Running::spawn(&mut start);
    let mut while_starting = Vec::new();
    let deadline = std::time::Instant::now() + LIMIT;
    while start.exited().is_none() && std::time::Instant::now() < deadline {
        let output = cluster(&env, &["status"]);
        let words = text(&output.stdout);
        if words.contains("not ready yet") {
            while_starting.push(words);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let started = start.wait(LIMIT);
    assert!(
        started.success(),
        "{}\n{}",
        start.lines().join("\n"),
        start.stderr()
    );
    assert!(
        !while_starting.is_empty(),
        "no status while starting said so"
    );
    for words in &while_starting {
        assert!(
            words.contains("starting: `orderflow cluster start` (pid")
                && !words.contains("BrokerTransportFailure")
                && !words.contains("could not be listed"),
            "{words}"
        );
    }

    let mut producer = util::Running::spawn(orderflow().args([
        "-b",
        &bootstrap,
        "-X",
        "message.timeout.ms=15000",
        "produce",
        "--rate",
        "20",
        "--seed",
        "7",
    ]));
    std::thread::sleep(Duration::from_secs(3));

    // A clean stop of node 3: its sentence reads as one.
    let stop = cluster(&env, &["stop-node", "3"]);
    assert!(stop.status.success(), "{}", text(&stop.stderr));
    assert!(
        text(&stop.stdout).contains("to other nodes (a controlled shutdown)"),
        "{}",
        text(&stop.stdout)
    );
    std::thread::sleep(Duration::from_secs(2));
    // Then a crash of node 2: the quorum (3 voters) has one left.
    let kill = cluster(&env, &["kill", "2"]);
    assert!(kill.status.success(), "{}", text(&kill.stderr));

    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let words = loop {
        let words = text(&cluster(&env, &["status"]).stdout);
        if words.contains("active controller: not known") {
            break words;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the controller stayed known:\n{words}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(!words.contains("broker.session.timeout.ms"), "{words}");
    assert!(!words.contains("the controller's view"), "{words}");
    assert!(
        words.contains("(the last list node 1 had from a controller"),
        "{words}"
    );

    // The producer: which broker is unreachable, then that nothing is delivered, and why.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !producer
        .stderr()
        .contains("warning: no event delivered for")
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    let said = producer.stderr();
    assert!(
        said.contains("(127.0.0.1:") && said.contains("is unreachable"),
        "{said}"
    );
    assert!(said.contains("warning: no event delivered for"), "{said}");
    assert!(
        said.contains("unreachable") && said.contains("of 3"),
        "{said}"
    );
    // Node 3's clean stop is not told as a crash.
    assert!(
        said.contains("broker 3 (127.0.0.1:")
            && said.contains("left the cluster after handing the leadership")
            && !said.contains("Kafka declared it dead"),
        "{said}"
    );
    // Ctrl-C twice abandons what waits (librdkafka may hold a request to the live leader
    // past message.timeout.ms): the exit says what the failed events cost the orders.
    producer.signal(nix::sys::signal::Signal::SIGINT);
    std::thread::sleep(Duration::from_millis(500));
    producer.signal(nix::sys::signal::Signal::SIGINT);
    let status = producer.wait(Duration::from_secs(60));
    assert!(!status.success());
    let said = producer.stderr();
    assert!(
        said.contains("events were not delivered") && said.contains("lifecycle violation"),
        "{said}"
    );
    // A clean stop of the last node would wait for a controller that cannot be elected.
    let kill = cluster(&env, &["kill", "1"]);
    assert!(kill.status.success(), "{}", text(&kill.stderr));
}
