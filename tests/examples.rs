//! The workshop kit's examples, run for real against a development broker: the fraud-watcher
//! role written with the library, the tmux class layout, and the Python reader.

mod util;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use orderflow::domain::event::{OrderEvent, Status};
use util::{Broker, closed_port, final_summary, json_lines, orderflow, read_topic, run_with_limit};

const LIMIT: Duration = Duration::from_secs(120);

/// `target/<profile>`: where cargo put the orderflow binary under test, and its examples.
fn profile_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_orderflow"))
        .parent()
        .expect("the binary has a directory")
        .to_path_buf()
}

fn succeeded(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed ({})\nstdout:\n{}\nstderr:\n{}",
        output.status,
        util::text(&output.stdout),
        util::text(&output.stderr)
    );
}

/// The events of the topic that are order events, with their records.
fn orders(broker: &Broker) -> Vec<(util::Record, Option<OrderEvent>)> {
    read_topic(&broker.address, &broker.topic)
        .into_iter()
        .map(|r| {
            let event = OrderEvent::from_record(r.key.as_deref(), r.value.as_deref()).ok();
            (r, event)
        })
        .collect()
}

crate::on_both_brokers!(
    fraud_watcher_counts_every_record_and_flags_exactly_the_users_over_the_limit,
    python_reader_prints_partition_offset_key_and_status_of_every_record,
);

fn fraud_watcher_counts_every_record_and_flags_exactly_the_users_over_the_limit(broker: Broker) {
    let example = profile_dir()
        .join("examples")
        .join(format!("fraud-watcher{}", std::env::consts::EXE_SUFFIX));
    assert!(
        example.exists(),
        "no example binary at {}: build it with `cargo build --examples` \
         (scripts/test does, before the tests: `cargo test` builds examples only as tests)",
        example.display()
    );
    broker.produce(3000, 21);
    broker.send_raw(&[(Some(b"k".to_vec()), Some(b"not an order".to_vec()))]);

    // What it must find: with a window longer than the run, every user with more than
    // `max` distinct placed orders is flagged, once.
    let max = 2;
    let topic = orders(&broker);
    let mut placed_by_user: BTreeMap<String, BTreeSet<uuid::Uuid>> = BTreeMap::new();
    for event in topic.iter().filter_map(|(_, e)| e.as_ref()) {
        if event.status == Status::Placed {
            placed_by_user
                .entry(event.user_id.clone())
                .or_default()
                .insert(event.order_id);
        }
    }
    let placed: usize = placed_by_user.values().map(BTreeSet::len).sum();
    let flagged: BTreeSet<&str> = placed_by_user
        .iter()
        .filter(|(_, orders)| orders.len() > max)
        .map(|(user, _)| user.as_str())
        .collect();
    assert!(
        !flagged.is_empty(),
        "the generator's regulars should exceed {max} orders"
    );

    let started = Instant::now();
    let output = run_with_limit(
        Command::new(&example)
            .env_remove("ORDERFLOW_BROKERS")
            .env_remove("ORDERFLOW_TOPIC")
            .args(["-b", &broker.address, "-t", &broker.topic])
            .args(["-g", &util::unique("fraud")])
            .args(["--max-orders", &max.to_string(), "--window-s", "86400"])
            .args(["--exit-at-end", "--json"]),
        LIMIT,
    );
    succeeded("fraud-watcher", &output);
    eprintln!("fraud-watcher drained the topic in {:?}", started.elapsed());
    let lines = json_lines(&output);
    let summary = final_summary(&lines);
    assert_eq!(summary["role"], "fraud-watcher");
    assert_eq!(summary["records"], topic.len() as u64, "{summary}");
    assert_eq!(summary["records"], 3001);
    assert_eq!(summary["malformed"], 1);
    let counters = &summary["counters"];
    assert_eq!(counters["placed"], placed as u64, "{summary}");
    assert_eq!(counters["users"], placed_by_user.len() as u64);
    assert_eq!(counters["flagged_users"], flagged.len() as u64);
    assert_eq!(counters["alerts"], flagged.len() as u64);
    // Every partition was committed to its end: a restart would read nothing again.
    for partition in summary["partitions"].as_array().unwrap() {
        assert_eq!(partition["lag"], 0, "{summary}");
    }

    let alerted: BTreeSet<&str> = lines
        .iter()
        .filter(|l| l["type"] == "notice")
        .filter_map(|l| l["message"].as_str()?.strip_prefix("ALERT "))
        .map(|m| m.split(':').next().unwrap())
        .collect();
    assert_eq!(alerted, flagged);
}

/// Runs tmux on a private server (its socket in `dir`), so a test never touches the user's.
fn tmux(dir: &Path, args: &[&str]) -> Output {
    Command::new("tmux")
        .env("TMUX_TMPDIR", dir)
        .env_remove("TMUX")
        .args(args)
        .output()
        .expect("run tmux")
}

/// Stops the private tmux server, and everything in its panes, whatever the test did.
struct TmuxServer<'a>(&'a Path);

impl Drop for TmuxServer<'_> {
    fn drop(&mut self) {
        let _ = tmux(self.0, &["kill-server"]);
    }
}

/// The partitions an analytics member owns, read from the "(here)" row of the group table
/// on its screen: `analytics-4242 (here)   p0 p2   12`.
fn partitions_here(screen: &str) -> BTreeSet<u32> {
    screen
        .lines()
        .filter_map(|line| line.split_once("(here)"))
        .flat_map(|(_, rest)| {
            rest.split_whitespace()
                .map_while(|word| word.strip_prefix('p')?.parse::<u32>().ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn tmux_class_opens_every_pane_and_the_two_analytics_members_split_the_partitions() {
    if !Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        eprintln!("SKIPPED: tmux is not installed (scripts/setup installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let _server = TmuxServer(dir.path());
    let session = "orderflow-test";
    let brokers = format!("127.0.0.1:{}", closed_port());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tmux-class.sh");
    let class = |args: &[&str]| {
        run_with_limit(
            Command::new(&script)
                .current_dir(dir.path())
                .env("TMUX_TMPDIR", dir.path())
                .env("ORDERFLOW_BIN", env!("CARGO_BIN_EXE_orderflow"))
                .env_remove("TMUX")
                .args(["--session", session])
                .args(args),
            LIMIT,
        )
    };
    let started = Instant::now();
    succeeded(
        "tmux-class.sh",
        &class(&["--brokers", &brokers, "--rate", "50", "--detach"]),
    );

    let panes = tmux(
        dir.path(),
        &[
            "list-panes",
            "-s",
            "-t",
            session,
            "-F",
            "#{pane_title}=#{pane_id}",
        ],
    );
    let panes: BTreeMap<String, String> = util::text(&panes.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(title, id)| (title.to_owned(), id.to_owned()))
        .collect();
    let titles: Vec<&str> = panes.keys().map(String::as_str).collect();
    assert_eq!(
        titles,
        [
            "analytics",
            "analytics-2",
            "broker",
            "order-processor",
            "producer",
            "storage"
        ]
    );
    let again = class(&["--brokers", &brokers, "--detach"]);
    assert!(!again.status.success(), "a second session with one name");
    assert!(util::text(&again.stderr).contains("exists already"));

    // The two members of group analytics each own some partitions, and together all three:
    // the group split them (and the view's group table says so).
    let screen = |title: &str| {
        util::text(&tmux(dir.path(), &["capture-pane", "-p", "-t", &panes[title]]).stdout)
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (one, two) = (
            partitions_here(&screen("analytics")),
            partitions_here(&screen("analytics-2")),
        );
        if !one.is_empty() && !two.is_empty() && one.is_disjoint(&two) && one.len() + two.len() == 3
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the analytics members did not split the partitions within 90 s ({one:?}, {two:?})\n\
             analytics:\n{}\nanalytics-2:\n{}\nbroker:\n{}",
            screen("analytics"),
            screen("analytics-2"),
            screen("broker")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "the class layout was up and split in {:?}",
        started.elapsed()
    );

    succeeded("tmux-class.sh --kill", &class(&["--kill"]));
    assert!(
        !tmux(dir.path(), &["has-session", "-t", session])
            .status
            .success(),
        "the session is gone"
    );
    // Ctrl-C let storage finish: its audit log is sound.
    let verify = run_with_limit(
        orderflow()
            .current_dir(dir.path())
            .args(["audit", "verify", "order-events.audit.jsonl"]),
        LIMIT,
    );
    succeeded("audit verify", &verify);
}

/// A virtual environment with examples/python/requirements.txt installed, kept under the
/// target directory and made again when the requirements change.
fn python_venv() -> PathBuf {
    // The test runs on both brokers at once: one of them makes the venv, the other waits.
    static VENV: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    VENV.get_or_init(make_python_venv).clone()
}

fn make_python_venv() -> PathBuf {
    let requirements =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python/requirements.txt");
    let wanted = std::fs::read_to_string(&requirements).unwrap();
    let venv = profile_dir().parent().unwrap().join("python-venv");
    let python = venv.join("bin/python");
    let stamp = venv.join("orderflow-requirements.txt");
    if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(&wanted) {
        return python;
    }
    let _ = std::fs::remove_dir_all(&venv);
    let created = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .output()
        .unwrap_or_else(|e| {
            panic!("python3 is needed for this test (scripts/setup installs it): {e}")
        });
    succeeded(
        "python3 -m venv (Debian/Ubuntu: apt-get install python3-venv)",
        &created,
    );
    let installed = run_with_limit(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(&requirements),
        Duration::from_secs(300),
    );
    succeeded(
        "pip install -r examples/python/requirements.txt",
        &installed,
    );
    std::fs::write(&stamp, wanted).unwrap();
    python
}

fn python_reader_prints_partition_offset_key_and_status_of_every_record(broker: Broker) {
    let started = Instant::now();
    let python = python_venv();
    eprintln!("python venv ready in {:?}", started.elapsed());
    broker.produce(40, 5);
    broker.send_raw(&[(Some(b"k".to_vec()), Some(b"{\"half\":".to_vec()))]);
    let expected: BTreeSet<String> = orders(&broker)
        .iter()
        .map(|(record, event)| {
            let what = event
                .as_ref()
                .map_or("not an order event", |e| e.status.as_str());
            let key = String::from_utf8_lossy(record.key.as_deref().unwrap_or(b"-")).into_owned();
            format!("p{} @{} {key} {what}", record.partition, record.offset)
        })
        .collect();
    assert_eq!(expected.len(), 41);

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python/read_orders.py");
    let output = run_with_limit(
        Command::new(&python)
            .arg(&script)
            .args(["-b", &broker.address, "-t", &broker.topic])
            .args(["-g", &util::unique("python"), "--count", "41"]),
        LIMIT,
    );
    succeeded("read_orders.py", &output);
    let stdout = util::text(&output.stdout);
    assert!(
        stdout.starts_with("assigned partitions [0, 1, 2]"),
        "{stdout}"
    );
    // "p1 @42     <key>  PLACED     user_1  WEB": partition, offset, key and status.
    let printed: BTreeSet<String> = stdout
        .lines()
        .filter(|l| l.starts_with('p'))
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let what = if words[3] == "not" {
                "not an order event".to_owned()
            } else {
                words[3].to_owned()
            };
            format!("{} {} {} {what}", words[0], words[1], words[2])
        })
        .collect();
    assert_eq!(printed, expected);
}
