//! Storage against a real audit log in a temporary directory and a fake history.

use std::path::{Path, PathBuf};

use super::*;
use crate::domain::event::Status::*;
use crate::roles::fakes::{
    FakeHistory, Reports, StoredRecord, TOPIC, committed, event, fresh, garbage,
};

/// Storage on the audit log at `path`, as a new run opens it.
fn storage(path: &Path) -> Storage {
    let (log, _repair) = AuditWriter::open(path).expect("the log opens");
    Storage::new(log, TOPIC)
}

fn log_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("audit.jsonl")
}

/// The file's lines, as (partition, offset, error kind).
fn lines(path: &Path) -> Vec<(i32, i64, Option<String>)> {
    std::fs::read_to_string(path)
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

fn stored(storage: &Storage) -> (u64, u64) {
    match storage.counters() {
        RoleCounters::Storage {
            stored,
            already_stored,
            ..
        } => (stored, already_stored),
        other => panic!("{other:?}"),
    }
}

fn handle(storage: &mut Storage, record: &StoredRecord) -> Reports {
    let mut out = Reports::default();
    storage
        .handle(&record.consumed(), &mut out)
        .expect("storage queues every record");
    out
}

/// A first run that stores `records` of partition 0 and stops.
fn first_run(path: &Path, records: &[StoredRecord]) {
    let mut storage = storage(path);
    storage
        .assigned(
            &[fresh(0, 0, 0)],
            &FakeHistory::default(),
            &mut Reports::default(),
        )
        .unwrap();
    for record in records {
        handle(&mut storage, record);
    }
    storage.flush().unwrap();
}

fn orders(range: std::ops::Range<i64>) -> Vec<StoredRecord> {
    range
        .map(|offset| event(0, offset, offset as u128, Placed))
        .collect()
}

#[test]
fn writes_a_line_per_record_and_counts_only_what_is_fsynced() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_in(&dir);
    let mut storage = storage(&path);
    storage
        .assigned(
            &[fresh(0, 0, 3)],
            &FakeHistory::default(),
            &mut Reports::default(),
        )
        .unwrap();
    let out = handle(&mut storage, &event(0, 0, 1, Placed));
    assert!(matches!(out.outcomes()[0], Outcome::Order { .. }));
    assert_eq!(out.notes()[0].routed_to, None);
    handle(&mut storage, &garbage(0, 1, "{}"));
    handle(&mut storage, &event(0, 2, 1, Confirmed));
    assert_eq!(stored(&storage), (0, 0), "nothing is fsynced yet");
    storage.flush().unwrap();
    assert_eq!(stored(&storage), (3, 0));
    assert_eq!(
        lines(&path),
        [
            (0, 0, None),
            (0, 1, Some("missing-field".to_owned())),
            (0, 2, None)
        ]
    );
    assert_eq!(
        storage.malformed(),
        (1, BTreeMap::from([("missing-field", 1)]))
    );
    let RoleCounters::Storage { file, .. } = storage.counters() else {
        unreachable!()
    };
    assert_eq!(file, path.display().to_string());
}

#[test]
fn a_removed_file_fails_the_flush_and_nothing_counts_as_stored() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_in(&dir);
    let mut storage = storage(&path);
    storage
        .assigned(
            &[fresh(0, 0, 1)],
            &FakeHistory::default(),
            &mut Reports::default(),
        )
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    handle(&mut storage, &event(0, 0, 1, Placed));
    let error = storage.flush().unwrap_err().to_string();
    assert!(
        error.contains("was removed while storage was writing it"),
        "{error}"
    );
    assert_eq!(stored(&storage), (0, 0));
}

#[test]
fn what_the_file_holds_past_the_commit_is_skipped_not_stored_twice() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_in(&dir);
    let records = orders(0..4);
    first_run(&path, &records[..3]);

    let mut storage = storage(&path);
    let history = FakeHistory::of(records.clone());
    let mut out = Reports::default();
    storage
        .assigned(&[committed(0, 0, 1, 4)], &history, &mut out)
        .unwrap();
    assert_eq!(
        out.notices(),
        [format!(
            "partition 0: {} already holds offsets 1–2, past the group's committed offset; \
             those 2 records are skipped, not stored twice",
            path.display()
        )]
    );
    for record in &records[1..] {
        handle(&mut storage, record);
    }
    storage.flush().unwrap();
    assert_eq!(stored(&storage), (1, 2));
    let offsets: Vec<i64> = lines(&path).iter().map(|l| l.1).collect();
    assert_eq!(offsets, [0, 1, 2, 3]);
}

#[test]
fn one_record_past_the_commit_is_named_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_in(&dir);
    let records = orders(0..3);
    first_run(&path, &records);
    let mut out = Reports::default();
    storage(&path)
        .assigned(
            &[committed(0, 0, 2, 3)],
            &FakeHistory::of(records),
            &mut out,
        )
        .unwrap();
    assert_eq!(
        out.notices(),
        [format!(
            "partition 0: {} already holds offset 2, past the group's committed offset; \
             that record is skipped, not stored twice",
            path.display()
        )]
    );
}

#[test]
fn what_the_group_committed_past_the_file_is_read_again_from_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_in(&dir);
    let mut records = orders(0..5);
    records[2] = garbage(0, 2, "[]");
    first_run(&path, &records[..1]);

    let mut storage = storage(&path);
    let history = FakeHistory::of(records.clone());
    let mut out = Reports::default();
    storage
        .assigned(&[committed(0, 0, 4, 5)], &history, &mut out)
        .unwrap();
    // Offset 0 is compared with the topic's record, then 1–3 are read again.
    assert_eq!(history.asked(), [(0, 0, 1), (0, 1, 4)]);
    let notices = out.notices();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(
        notices[0].starts_with(&format!(
            "partition 0: the group committed offsets up to 3, but {} holds this partition \
             only up to offset 0: offsets",
            path.display()
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
    let offsets: Vec<i64> = lines(&path).iter().map(|l| l.1).collect();
    assert_eq!(offsets, [0, 1, 2, 3, 4]);
}

#[test]
fn an_empty_file_is_filled_from_the_first_record_kafka_has() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_in(&dir);
    let mut storage = storage(&path);
    let history = FakeHistory::of(orders(2..6));
    let mut out = Reports::default();
    storage
        .assigned(&[committed(0, 2, 4, 6)], &history, &mut out)
        .unwrap();
    assert_eq!(history.asked(), [(0, 2, 4)]);
    assert!(out.notices()[0].contains("holds no line of this partition"));
    let offsets: Vec<i64> = lines(&path).iter().map(|l| l.1).collect();
    assert_eq!(offsets, [2, 3]);
}

#[test]
fn without_a_commit_nothing_is_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_in(&dir);
    let mut storage = storage(&path);
    let history = FakeHistory::of(orders(0..3));
    let mut out = Reports::default();
    storage
        .assigned(&[fresh(0, 0, 3)], &history, &mut out)
        .unwrap();
    assert!(history.asked().is_empty());
    assert!(out.0.is_empty());
    assert_eq!(stored(&storage), (0, 0));
}

#[test]
fn what_the_file_lacks_and_kafka_no_longer_has_stops_storage() {
    let dir = tempfile::tempdir().unwrap();
    let path = log_in(&dir);
    first_run(&path, &orders(0..1));
    // The group committed up to offset 4; the file ends at 0; retention removed 0–2.
    let history = FakeHistory::of(orders(3..6));
    let error = storage(&path)
        .assigned(&[committed(0, 3, 5, 6)], &history, &mut Reports::default())
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with(&format!(
            "partition 0: the group committed offsets up to 4, but {} holds this partition \
             only up to offset 0, and Kafka no longer has offsets 1–2 (the partition now \
             starts at 3)",
            path.display()
        )),
        "{error}"
    );
    assert_eq!(
        history.asked(),
        [],
        "nothing could be compared or read again"
    );
    assert_eq!(lines(&path).len(), 1, "nothing is written");
}

/// Storage given partition 0 of `history` after a first run stored offsets 0–2: the error.
fn foreign(history: FakeHistory, high: i64) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = log_in(&dir);
    first_run(&path, &orders(0..3));
    let error = storage(&path)
        .assigned(
            &[committed(0, 0, 3, high)],
            &history,
            &mut Reports::default(),
        )
        .unwrap_err()
        .to_string();
    let prefix = format!(
        "{} does not match topic {TOPIC}: its last line for partition 0 is offset 2, but ",
        path.display()
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
    let dir = tempfile::tempdir().unwrap();
    let path = log_in(&dir);
    first_run(&path, &orders(0..3));
    let history = FakeHistory::of(orders(5..8));
    let mut out = Reports::default();
    storage(&path)
        .assigned(&[fresh(0, 5, 8)], &history, &mut out)
        .unwrap();
    assert_eq!(history.asked(), []);
    assert!(out.0.is_empty(), "{:?}", out.0);
}
