//! What a member commits when its flush fails: nothing the failed flush covered, and it says
//! which partitions and offsets it leaves for the next owner to read again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

// `util` by name: on_both_brokers! calls `super::util::Broker`.
use super::util::{self, Broker, json_lines, read_topic, run_with_limit, text};
use super::{LIMIT, assert_holds_the_topic, count, drain, final_summary};

crate::on_both_brokers!(storage_on_a_filled_disk_names_what_it_leaves_uncommitted);

/// A tmpfs of `size` mounted on a fresh folder, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// None (saying so loudly) where mounting is not permitted (not root, a container
    /// without CAP_SYS_ADMIN).
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output();
        match output {
            Ok(o) if o.status.success() => Some(SmallDisk { dir }),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a {size} tmpfs to fill ({}); run as root to test a \
                     full disk",
                    text(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount ({e}); run as root to test a full disk");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a filler file until the disk is full; returns it.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path().join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 4096];
        while file.write_all(&block).is_ok() {}
        let _ = file.sync_all();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// The disk fills while storage has records to write: storage stops with the failure,
/// commits nothing the failed flush covered, and names every partition it leaves
/// uncommitted with the group's committed offset there (where the next owner reads again).
/// Once there is room again, a restarted storage stores every record exactly once.
fn storage_on_a_filled_disk_names_what_it_leaves_uncommitted(broker: Broker) {
    let Some(disk) = SmallDisk::mount("2m") else {
        return;
    };
    let file = disk.path().join("audit.jsonl");
    let file_arg = file.to_str().unwrap();
    broker.produce(300, 31);
    drain(&broker, &["storage", "--file", file_arg]);
    // The group's commit per partition: every record of the first 300 (offsets from 0).
    let mut committed: BTreeMap<i32, i64> = BTreeMap::new();
    for record in read_topic(&broker.address, &broker.topic) {
        *committed.entry(record.partition).or_default() += 1;
    }
    let filler = disk.fill();
    broker.produce(300, 32);

    let output = run_with_limit(
        &mut broker.orderflow(&["storage", "--file", file_arg, "--exit-at-end", "--json"]),
        LIMIT,
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    let lines = json_lines(&output);
    // The first batch may still fit in the file's last, partly filled page: whatever storage
    // committed, it had fsynced first.
    let before = committed.clone();
    for line in lines.iter().filter(|l| l["type"] == "committed") {
        for (p, offset) in line["offsets"].as_object().unwrap() {
            committed.insert(p.parse().unwrap(), offset.as_i64().unwrap());
        }
    }
    let newly: i64 = committed.iter().map(|(p, o)| o - before[p]).sum();
    let stored = count(&final_summary(&lines)["stored"]);
    assert!(
        stored >= newly as u64,
        "{newly} committed, {stored} fsynced"
    );
    let (_, left) = stderr
        .split_once("Not committed, so read again by the partitions' next owner: ")
        .unwrap_or_else(|| panic!("what is left uncommitted is not said: {stderr}"));
    let left = left.lines().next().unwrap();
    let named: Vec<(i32, i64)> = left
        .split(", ")
        .map(|item| {
            let (p, rest) = item
                .strip_prefix('p')
                .and_then(|i| i.split_once(" from offset "))
                .unwrap_or_else(|| panic!("{item:?} in {left:?}"));
            let from = rest.split_once(" to ").unwrap().0;
            (p.parse().unwrap(), from.parse().unwrap())
        })
        .collect();
    assert!(!named.is_empty(), "{stderr}");
    for (p, from) in &named {
        assert_eq!(
            Some(from),
            committed.get(p),
            "p{p}: not where the group's commit is\n{stderr}\n{lines:#?}"
        );
    }

    std::fs::remove_file(filler).unwrap();
    let lines = drain(&broker, &["storage", "--file", file_arg]);
    // The failed write may have put whole lines in the file before the disk was full: those
    // records are skipped (already stored), not stored twice.
    let summary = final_summary(&lines);
    assert_eq!(
        count(&summary["stored"]) + count(&summary["already_stored"]),
        300 - newly as u64,
        "{lines:#?}"
    );
    assert_holds_the_topic(&broker, &file, 600);
    eprintln!("committed before the failure: {newly} records; left uncommitted: {left}");
}
