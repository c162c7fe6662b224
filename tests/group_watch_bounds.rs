//! Announcements on `<topic>.members` are untrusted: anyone who can write to the topic can
//! announce any number of groups and members. The process that watches them (every live
//! view) must stay bounded in threads and file descriptors. Its own test binary, so that
//! /proc/self counts this watch alone.

mod util;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orderflow::config::KafkaSettings;
use orderflow::kafka::group_watch::GroupWatch;
use orderflow::report::group_view::GroupView;
use orderflow::roles::registry::default_groups;
use util::Broker;

/// Threads of this process, from /proc/self/status.
fn threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("a Threads line")
}

/// Open file descriptors of this process.
fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// The threads and file descriptors one librdkafka consumer holds once it has talked to the
/// broker and its group coordinator, as each of the watch's clients does.
fn one_client(broker: &Broker) -> (usize, usize) {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let (threads_before, fds_before) = (threads(), fds());
    let client: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &broker.address)
        .set("group.id", "group-watch-bounds-probe")
        .create()
        .unwrap();
    client
        .fetch_metadata(Some(&broker.topic), Duration::from_secs(10))
        .unwrap();
    let mut query = rdkafka::TopicPartitionList::new();
    query.add_partition(&broker.topic, 0);
    let _ = client.committed_offsets(query, Duration::from_secs(10));
    let cost = (threads() - threads_before, fds() - fds_before);
    drop(client);
    cost
}

/// The most clients the watch may hold at once, by its design (src/kafka/group_watch): one for
/// the cluster, one for the announcements, one per group shown (12 at most) and per group
/// always shown, and one being closed while its replacement opens.
fn most_clients() -> usize {
    2 + 12 + default_groups().len() + 1
}

#[test]
fn forged_announcements_cannot_exhaust_the_watching_process() {
    let broker = Broker::start();
    broker.produce(30, 1);
    let settings = KafkaSettings::new(&broker.address, &broker.topic, Vec::new()).unwrap();
    let latest: Arc<Mutex<Option<GroupView>>> = Arc::new(Mutex::new(None));
    let _watch = {
        let latest = Arc::clone(&latest);
        GroupWatch::start(&settings, default_groups(), move |view| {
            *latest.lock().unwrap() = Some(view)
        })
        .unwrap()
    };
    let started = Instant::now();
    while latest.lock().unwrap().is_none() {
        assert!(started.elapsed() < Duration::from_secs(60), "no view");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (client_threads, client_fds) = one_client(&broker);
    let (threads_before, fds_before) = (threads(), fds());

    // 5,000 announcements over 2,500 group names, with a hostile name among them.
    let now = chrono::Utc::now().to_rfc3339();
    let forged: Vec<util::RawRecord> = (0..5_000)
        .map(|i| {
            let announcement = serde_json::json!({
                "member": format!("forged-member-{i}"),
                "host": "nowhere",
                "group": format!("forged-group-{}\u{202e}\u{1b}[2J", i % 2_500),
                "role": "analytics",
                "topic": broker.topic,
                "owns": [],
                "paused": false,
                "state": "active",
                "at": now,
            });
            (
                Some(format!("forged-member-{i}").into_bytes()),
                Some(serde_json::to_vec(&announcement).unwrap()),
            )
        })
        .collect();
    broker.send_raw_to(&format!("{}.members", broker.topic), &forged);

    // Watch it take them in while they are fresh (announcements go stale after a few
    // seconds); librdkafka clients each hold several threads and a socket per broker, so one
    // per announced group would show within seconds. A cluster that describes its groups
    // (real Kafka, and the built-in broker's front) shows none of these forged groups at all:
    // announcements only add to members the cluster knows. Either way the watch must stay
    // bounded and keep delivering views.
    let (mut max_threads, mut max_fds) = (0, 0);
    let sent_at = chrono::Utc::now();
    let watching = Instant::now();
    let mut most_groups_shown = 0;
    let mut fresh_views = 0;
    let mut last_view_at = None;
    while watching.elapsed() < Duration::from_secs(20) {
        max_threads = max_threads.max(threads());
        max_fds = max_fds.max(fds());
        if let Some(view) = latest.lock().unwrap().as_ref() {
            most_groups_shown = most_groups_shown.max(view.groups.len());
            if view.at > sent_at && last_view_at != Some(view.at) {
                fresh_views += 1;
                last_view_at = Some(view.at);
            }
            for group in &view.groups {
                assert!(
                    !group.group.contains(['\u{202e}', '\u{1b}']),
                    "a hidden character reached the view: {:?}",
                    group.group
                );
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "threads {threads_before} → at most {max_threads}, fds {fds_before} → at most \
         {max_fds}; views showed at most {most_groups_shown} groups; {fresh_views} views in 20 s; \
         a client holds {client_threads} threads and {client_fds} fds, at most {} clients",
        most_clients()
    );
    assert!(
        fresh_views >= 5,
        "the watch stalled: {fresh_views} views in the 20 s after the forged announcements"
    );
    // Bounded by the watch's design, not by the 2,500 names announced (one client each
    // would be thousands of threads and descriptors). The two clients made before the
    // forged announcements (cluster, announcements) are already counted.
    let clients = most_clients() - 2;
    assert!(
        max_threads <= threads_before + clients * client_threads,
        "threads grew from {threads_before} to {max_threads}: more than {clients} clients of \
         {client_threads}"
    );
    assert!(
        max_fds <= fds_before + clients * client_fds,
        "file descriptors grew from {fds_before} to {max_fds}: more than {clients} clients of \
         {client_fds}"
    );
    assert!(most_groups_shown <= 12, "{most_groups_shown} groups shown");
}
