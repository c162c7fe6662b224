//! Storage against a real audit log in a temporary directory and a fake history.

use std::path::PathBuf;

use super::*;
use crate::domain::event::Status::*;
use crate::roles::fakes::{
    FakeHistory, Reports, StoredRecord, TOPIC, assign, committed, event, fresh, garbage, handle,
};

/// An audit log in a directory of its own, removed with it.
struct Log {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Log {
    fn new() -> Log {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        Log { _dir: dir, path }
    }

    /// Storage on this log as a new run opens it, given `starts` with `history` to compare
    /// and read again from: the storage and what it reported, or why it stopped.
    fn start(
        &self,
        starts: &[PartitionStart],
        history: &FakeHistory,
    ) -> Result<(Storage, Reports), RoleError> {
        let (log, _repair) = AuditWriter::open(&self.path).expect("the log opens");
        let mut storage = Storage::new(log, TOPIC);
        let out = assign(&mut storage, starts, history)?;
        Ok((storage, out))
    }

    /// Storage on this log for a group that never committed: it reads no history.
    fn fresh(&self) -> Storage {
        self.start(&[fresh(0, 0, 0)], &FakeHistory::default())
            .expect("nothing to compare")
            .0
    }

    /// A first run that stores `records` of partition 0 and stops.
    fn first_run(&self, records: &[StoredRecord]) {
        let mut storage = self.fresh();
        for record in records {
            handle(&mut storage, record);
        }
        storage.flush().unwrap();
    }

    /// The lines, as (partition, offset, error kind).
    fn lines(&self) -> Vec<(i32, i64, Option<String>)> {
        std::fs::read_to_string(&self.path)
            .unwrap()
            .lines()
            .map(|line| {
                let line: AuditLine = serde_json::from_str(line).expect("an audit line");
                assert_eq!(line.topic, TOPIC);
                assert_eq!(line.event.is_some(), line.error_kind.is_none());
                (line.partition, line.offset, line.error_kind)
            })
            .collect()
    }

    fn offsets(&self) -> Vec<i64> {
        self.lines().iter().map(|line| line.1).collect()
    }

    fn name(&self) -> String {
        self.path.display().to_string()
    }
}

/// (stored, already stored)
fn stored(storage: &Storage) -> (u64, u64) {
    let RoleCounters::Storage {
        stored,
        already_stored,
        ..
    } = storage.counters()
    else {
        unreachable!("storage counts as storage")
    };
    (stored, already_stored)
}

/// Orders at the offsets of `range` of partition 0.
fn orders(range: std::ops::Range<i64>) -> Vec<StoredRecord> {
    range
        .map(|offset| event(0, offset, offset as u128, Placed))
        .collect()
}

#[test]
fn writes_a_line_per_record_and_counts_only_what_is_fsynced() {
    let log = Log::new();
    let mut storage = log.fresh();
    let out = handle(&mut storage, &event(0, 0, 1, Placed));
    assert!(matches!(out.outcomes()[0], Outcome::Order { .. }));
    assert_eq!(out.notes()[0].routed_to, None);
    handle(&mut storage, &garbage(0, 1, "{}"));
    handle(&mut storage, &event(0, 2, 1, Confirmed));
    assert_eq!(stored(&storage), (0, 0), "nothing is fsynced yet");
    storage.flush().unwrap();
    assert_eq!(stored(&storage), (3, 0));
    let missing = Some("missing-field".to_owned());
    assert_eq!(log.lines(), [(0, 0, None), (0, 1, missing), (0, 2, None)]);
    assert_eq!(
        storage.malformed(),
        (1, BTreeMap::from([("missing-field", 1)]))
    );
    let RoleCounters::Storage { file, .. } = storage.counters() else {
        unreachable!()
    };
    assert_eq!(file, log.name());
}

#[test]
fn a_removed_file_fails_the_flush_and_nothing_counts_as_stored() {
    let log = Log::new();
    let mut storage = log.fresh();
    std::fs::remove_file(&log.path).unwrap();
    handle(&mut storage, &event(0, 0, 1, Placed));
    let error = storage.flush().unwrap_err().to_string();
    assert!(
        error.contains("was removed while storage was writing it"),
        "{error}"
    );
    assert_eq!(stored(&storage), (0, 0));
}

#[test]
fn once_a_flush_failed_no_later_flush_counts_as_stored() {
    // The file is moved away while storage writes (its flush fails: the path no longer holds
    // it) and put back: the next flush would succeed, but a success after a failure proves
    // nothing about what the failed one covered (after a failed fsync, Linux may have dropped
    // the pages), so it fails too and nothing counts as stored.
    let log = Log::new();
    let mut storage = log.fresh();
    handle(&mut storage, &event(0, 0, 1, Placed));
    let away = log.path.with_extension("away");
    std::fs::rename(&log.path, &away).unwrap();
    let first = storage.flush().unwrap_err().to_string();
    assert!(first.contains("was removed"), "{first}");
    std::fs::rename(&away, &log.path).unwrap();
    handle(&mut storage, &event(0, 1, 1, Confirmed));
    let again = storage.flush().unwrap_err().to_string();
    assert!(
        again.starts_with("an earlier flush failed (") && again.contains(&first),
        "{again}"
    );
    assert_eq!(stored(&storage), (0, 0));
}

#[test]
fn what_the_file_holds_past_the_commit_is_skipped_not_stored_twice() {
    let log = Log::new();
    let records = orders(0..4);
    log.first_run(&records[..3]);

    let history = FakeHistory::of(records.clone());
    let (mut storage, out) = log.start(&[committed(0, 0, 1, 4)], &history).unwrap();
    assert_eq!(
        out.notices(),
        [format!(
            "partition 0: {} already holds offsets 1–2, past the group's committed offset; \
             those 2 records are skipped, not stored twice",
            log.name()
        )]
    );
    for record in &records[1..] {
        handle(&mut storage, record);
    }
    storage.flush().unwrap();
    assert_eq!(stored(&storage), (1, 2));
    assert_eq!(log.offsets(), [0, 1, 2, 3]);
}

#[test]
fn one_record_past_the_commit_is_named_as_one() {
    let log = Log::new();
    let records = orders(0..3);
    log.first_run(&records);
    let history = FakeHistory::of(records);
    let (_, out) = log.start(&[committed(0, 0, 2, 3)], &history).unwrap();
    assert_eq!(
        out.notices(),
        [format!(
            "partition 0: {} already holds offset 2, past the group's committed offset; \
             that record is skipped, not stored twice",
            log.name()
        )]
    );
}

#[test]
fn what_the_group_committed_past_the_file_is_read_again_from_the_history() {
    let log = Log::new();
    let mut records = orders(0..5);
    records[2] = garbage(0, 2, "[]");
    log.first_run(&records[..1]);

    let history = FakeHistory::of(records.clone());
    let (mut storage, out) = log.start(&[committed(0, 0, 4, 5)], &history).unwrap();
    // Offset 0 is compared with the topic's record, then 1–3 are read again.
    assert_eq!(history.asked(), [(0, 0, 1), (0, 1, 4)]);
    let notices = out.notices();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(
        notices[0].starts_with(&format!(
            "partition 0: the group committed offsets up to 3, but {} holds this partition \
             only up to offset 0: offsets",
            log.name()
        )),
        "{notices:?}"
    );
    assert!(
        notices[0].contains("re-read 3 records") && notices[0].ends_with("stored them"),
        "{notices:?}"
    );
    assert_eq!(
        storage.malformed(),
        (1, BTreeMap::from([("not-an-object", 1)]))
    );
    assert_eq!(stored(&storage), (3, 0), "re-read lines are fsynced");
    handle(&mut storage, &records[4]);
    storage.flush().unwrap();
    assert_eq!(log.offsets(), [0, 1, 2, 3, 4]);
}

#[test]
fn an_empty_file_is_filled_from_the_first_record_kafka_has() {
    let log = Log::new();
    let history = FakeHistory::of(orders(2..6));
    let (_, out) = log.start(&[committed(0, 2, 4, 6)], &history).unwrap();
    assert_eq!(history.asked(), [(0, 2, 4)]);
    assert!(out.notices()[0].contains("holds no line of this partition"));
    assert_eq!(log.offsets(), [2, 3]);
}

#[test]
fn without_a_commit_nothing_is_read_again() {
    let log = Log::new();
    let history = FakeHistory::of(orders(0..3));
    let (storage, out) = log.start(&[fresh(0, 0, 3)], &history).unwrap();
    assert!(history.asked().is_empty());
    assert!(out.0.is_empty());
    assert_eq!(stored(&storage), (0, 0));
}

#[test]
fn what_the_file_lacks_and_kafka_no_longer_has_stops_storage() {
    let log = Log::new();
    log.first_run(&orders(0..1));
    // The group committed up to offset 4; the file ends at 0; retention removed 0–2.
    let history = FakeHistory::of(orders(3..6));
    let Err(error) = log.start(&[committed(0, 3, 5, 6)], &history) else {
        panic!("storage went on without offsets 1–2");
    };
    let error = error.to_string();
    assert!(
        error.starts_with(&format!(
            "partition 0: the group committed offsets up to 4, but {} holds this partition \
             only up to offset 0, and Kafka no longer has offsets 1–2 (the partition now \
             starts at 3)",
            log.name()
        )),
        "{error}"
    );
    assert_eq!(history.asked(), [], "nothing to compare or read again");
    assert_eq!(log.lines().len(), 1, "nothing is written");
}

/// Storage given partition 0 of `history` after a first run stored offsets 0–2: what its
/// error says is wrong.
fn foreign(history: FakeHistory, high: i64) -> String {
    let log = Log::new();
    log.first_run(&orders(0..3));
    let Err(error) = log.start(&[committed(0, 0, 3, high)], &history) else {
        panic!("storage took a foreign log");
    };
    let error = error.to_string();
    let prefix = format!(
        "{} does not match topic {TOPIC}: its last line for partition 0 is offset 2, but ",
        log.name()
    );
    assert!(error.starts_with(&prefix), "{error}");
    assert!(
        error.ends_with("move the file away or give storage another --file"),
        "{error}"
    );
    error[prefix.len()..].to_owned()
}

#[test]
fn a_log_of_another_history_of_the_topic_is_refused() {
    // The topic was recreated: another order stands at offset 2.
    let mut other = orders(0..3);
    other[2] = event(0, 2, 99, Placed);
    assert!(
        foreign(FakeHistory::of(other), 3)
            .starts_with("the topic's record at that offset has another key or timestamp.")
    );
    // The topic is shorter than the file.
    assert!(
        foreign(FakeHistory::of(orders(0..2)), 2).starts_with("the partition ends at offset 2.")
    );
    // The offset is within the topic, but no record is there (compacted, deleted).
    assert!(
        foreign(FakeHistory::of(orders(0..2)), 3)
            .starts_with("the topic has no record at that offset.")
    );
}

#[test]
fn a_last_line_retention_removed_from_the_topic_cannot_be_compared_and_is_accepted() {
    let log = Log::new();
    log.first_run(&orders(0..3));
    let history = FakeHistory::of(orders(5..8));
    let (_, out) = log.start(&[fresh(0, 5, 8)], &history).unwrap();
    assert_eq!(history.asked(), []);
    assert!(out.0.is_empty(), "{:?}", out.0);
}
