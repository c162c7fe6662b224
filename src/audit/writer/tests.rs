//! Unit tests of the writer: recovery from the end of the file, torn lines, the lock, fsync,
//! and a file changed under it.

use super::recovery::SCAN_CHUNK;
use super::*;
use chrono::Utc;

/// A folder of its own and the path of a log in it, not created yet.
fn new_log() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.jsonl");
    (dir, path)
}

fn line(partition: i32, offset: i64) -> AuditLine {
    let record = crate::roles::ConsumedRecord {
        topic: "t",
        partition,
        offset,
        key: None,
        value: Some(b"x"),
        timestamp_ms: None,
    };
    AuditLine::from_record(&record, Utc::now())
}

#[test]
fn last_offsets_come_from_the_end_of_the_file() {
    let (_dir, path) = new_log();
    {
        let (mut writer, repair) = AuditWriter::open(&path).unwrap();
        assert_eq!(repair, None);
        for offset in 0..5_000 {
            writer.append(&line((offset % 3) as i32, offset));
        }
        writer.sync().unwrap();
    }
    let (mut writer, _) = AuditWriter::open(&path).unwrap();
    let offsets = |found: Vec<(i32, Option<RecordId>)>| {
        found
            .into_iter()
            .map(|(p, id)| (p, id.map(|id| id.offset)))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        offsets(writer.last_stored("t", &[0, 1, 2, 7]).unwrap()),
        vec![(0, Some(4998)), (1, Some(4999)), (2, Some(4997)), (7, None)]
    );
    assert_eq!(
        offsets(writer.last_stored("other", &[0]).unwrap()),
        vec![(0, None)]
    );
    writer.append(&line(7, 1));
    assert_eq!(writer.known_last("t", 7), Some(1));
}

#[test]
fn a_torn_last_line_is_cut_off_and_reported() {
    let (_dir, path) = new_log();
    {
        let (mut writer, _) = AuditWriter::open(&path).unwrap();
        writer.append(&line(0, 0));
        writer.append(&line(0, 1));
        writer.sync().unwrap();
    }
    let whole = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(br#"{"topic":"t","partition":0,"off"#)
        .unwrap();
    let (mut writer, repair) = AuditWriter::open(&path).unwrap();
    assert_eq!(
        repair,
        Some(Repair {
            at_byte: whole,
            removed_bytes: 31
        })
    );
    assert_eq!(std::fs::metadata(&path).unwrap().len(), whole);
    writer.last_stored("t", &[0]).unwrap();
    assert_eq!(writer.known_last("t", 0), Some(1));
}

#[test]
fn a_second_writer_is_refused() {
    let (dir, path) = new_log();
    let _first = AuditWriter::open(&path).unwrap();
    assert!(matches!(
        AuditWriter::open(&path),
        Err(AuditError::Locked { .. })
    ));
    assert!(matches!(
        AuditWriter::open(dir.path()),
        Err(AuditError::IsDirectory { .. })
    ));
}

#[test]
fn huge_lines_and_tiny_chunks_do_not_confuse_the_scan() {
    let (_dir, path) = new_log();
    let (mut writer, _) = AuditWriter::open(&path).unwrap();
    let big = "y".repeat(3 * SCAN_CHUNK);
    let record = crate::roles::ConsumedRecord {
        topic: "t",
        partition: 1,
        offset: 10,
        key: None,
        value: Some(big.as_bytes()),
        timestamp_ms: None,
    };
    writer.append(&line(0, 3));
    writer.append(&AuditLine::from_record(&record, Utc::now()));
    writer.sync().unwrap();
    drop(writer);
    let (mut writer, _) = AuditWriter::open(&path).unwrap();
    writer.last_stored("t", &[0, 1]).unwrap();
    assert_eq!(writer.known_last("t", 0), Some(3));
    assert_eq!(writer.known_last("t", 1), Some(10));
}

#[test]
fn a_file_that_is_not_an_audit_log_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "my notes\nno newline at the end").unwrap();
    assert!(matches!(
        AuditWriter::open(&path),
        Err(AuditError::NotAnAuditLog { .. })
    ));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "my notes\nno newline at the end"
    );
    // A first line torn by a crash is an audit log's, and is repaired.
    let torn = dir.path().join("torn.jsonl");
    std::fs::write(&torn, r#"{"topic":"t","parti"#).unwrap();
    let (_, repair) = AuditWriter::open(&torn).unwrap();
    assert_eq!(repair.map(|r| r.at_byte), Some(0));
}

#[test]
fn lines_written_early_are_still_fsynced() {
    let (_dir, path) = new_log();
    let (mut writer, _) = AuditWriter::open(&path).unwrap();
    writer.append(&line(0, 0));
    // Looking up another partition writes the queued line without fsync…
    writer.last_stored("t", &[1]).unwrap();
    assert!(writer.unsynced);
    // …so the next sync must still fsync.
    writer.sync().unwrap();
    assert!(!writer.unsynced);
}

#[test]
fn a_removed_truncated_or_replaced_file_is_noticed_before_anything_is_written() {
    let (dir, path) = new_log();
    let changed = |result: Result<(), AuditError>| match result {
        Err(AuditError::Changed { change, .. }) => change,
        other => panic!("not noticed: {other:?}"),
    };

    let (mut writer, _) = AuditWriter::open(&path).unwrap();
    writer.append(&line(0, 0));
    writer.sync().unwrap();
    std::fs::remove_file(&path).unwrap();
    writer.append(&line(0, 1));
    assert_eq!(changed(writer.sync()), FileChange::Removed);
    assert_eq!(writer.synced_lines(), 1, "the failed line is not counted");
    drop(writer);

    let (mut writer, _) = AuditWriter::open(&path).unwrap();
    writer.append(&line(0, 0));
    writer.sync().unwrap();
    let written = std::fs::metadata(&path).unwrap().len();
    File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    writer.append(&line(0, 1));
    assert_eq!(
        changed(writer.sync()),
        FileChange::Truncated {
            expected: written,
            now: 0
        }
    );
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        0,
        "nothing written"
    );
    drop(writer);

    let (mut writer, _) = AuditWriter::open(&path).unwrap();
    let other = dir.path().join("other.jsonl");
    std::fs::write(&other, "").unwrap();
    std::fs::rename(&other, &path).unwrap();
    writer.append(&line(0, 0));
    assert_eq!(changed(writer.sync()), FileChange::Replaced);
}
