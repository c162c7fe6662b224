//! Property tests of the audit log reader: whatever bytes a file holds, the line splitter gives
//! them back exactly and every command answers (a report, a summary or a typed error) without
//! panicking; a log as storage writes it always verifies.

use std::io::{self, Cursor};

use orderflow::audit::AuditLog;
use orderflow::audit::order::{self, OrderQuery};
use orderflow::audit::reader::{Lines, decode};
use orderflow::audit::summary::{summarize, summarize_from};
use orderflow::audit::synthetic::SyntheticLog;
use orderflow::audit::tail::{self, TailSink};
use orderflow::audit::verify::{verify, verify_from};
use proptest::prelude::*;

/// The first lines of a synthetic log with malformed records, ending with a newline.
fn sound_log(lines: usize) -> Vec<u8> {
    let mut log = SyntheticLog::new(3, "order-events", 3).malformed_every(7);
    let mut out = Vec::new();
    for _ in 0..lines {
        log.next_line().encode_into(&mut out);
    }
    out
}

/// Bytes that are mostly an audit log: a sound one with a few bytes changed, cut or added.
fn damaged_log() -> impl Strategy<Value = Vec<u8>> {
    let log = sound_log(40);
    let len = log.len();
    (
        prop::collection::vec((0..len, any::<u8>()), 0..6),
        0..=len,
        prop::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(move |(edits, cut, tail)| {
            let mut bytes = log.clone();
            for (at, byte) in edits {
                bytes[at] = byte;
            }
            bytes.truncate(cut.max(1));
            bytes.extend_from_slice(&tail);
            bytes
        })
}

/// Collects what `tail` shows.
#[derive(Default)]
struct Shown {
    lines: Vec<Vec<u8>>,
}

impl TailSink for Shown {
    fn line(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.lines.push(bytes.to_vec());
        Ok(())
    }

    fn notice(&mut self, _: &str) -> io::Result<()> {
        Ok(())
    }
}

/// Everything `orderflow audit` can do with a file; none of it may panic.
fn inspect_file(bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.jsonl");
    std::fs::write(&path, bytes).unwrap();
    if let Ok(mut log) = AuditLog::open(&path) {
        let summary = summarize(&mut log).unwrap();
        let report = verify(&mut log).unwrap();
        assert_eq!(summary.lines, report.lines);
        let query: OrderQuery = "00000000".parse().unwrap();
        let _ = order::history(&mut log, &query);
    }
    let n = bytes.len() as u64 % 7;
    let log = AuditLog::open_file(&path).unwrap();
    let mut shown = Shown::default();
    tail::last_lines(log, n)
        .unwrap()
        .show(&mut shown, false)
        .unwrap();
    // Exactly the last `n` complete lines.
    let complete = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(end) => &bytes[..end],
        None => &bytes[..0],
    };
    let lines: Vec<&[u8]> = if bytes.contains(&b'\n') {
        complete.split(|&b| b == b'\n').collect()
    } else {
        Vec::new()
    };
    let expected = &lines[lines.len().saturating_sub(n as usize)..];
    assert_eq!(shown.lines, expected);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn lines_give_back_exactly_the_bytes(
        bytes in prop::collection::vec(prop::sample::select(b"ab{}\"\n\0\xff".to_vec()), 0..600),
        capacity in 1usize..80,
    ) {
        let mut lines = Lines::with_capacity(bytes.as_slice(), capacity);
        let mut back = Vec::new();
        let mut expected_number = 1;
        while let Some(line) = lines.next_line().unwrap() {
            prop_assert_eq!(line.number, expected_number);
            expected_number += 1;
            prop_assert!(line.terminated || back.len() + line.bytes.len() == bytes.len());
            back.extend_from_slice(line.bytes);
            if line.terminated {
                back.push(b'\n');
            }
            let _ = decode(line.bytes);
        }
        prop_assert_eq!(back, bytes);
    }

    #[test]
    fn any_bytes_are_read_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let report = verify_from(Cursor::new(&bytes)).unwrap();
        let summary = summarize_from(bytes.as_slice()).unwrap();
        prop_assert_eq!(report.lines, summary.lines);
        prop_assert_eq!(report.ok, bytes.is_empty());
    }

    #[test]
    fn any_file_is_refused_or_read_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        inspect_file(&bytes);
    }

    #[test]
    fn damaged_logs_are_read_without_panicking(bytes in damaged_log()) {
        let report = verify_from(Cursor::new(&bytes)).unwrap();
        let summary = summarize_from(bytes.as_slice()).unwrap();
        prop_assert_eq!(report.lines, summary.lines);
        inspect_file(&bytes);
    }

    #[test]
    fn a_log_as_storage_writes_it_verifies(lines in 0usize..300) {
        let log = sound_log(lines);
        let report = verify_from(Cursor::new(&log)).unwrap();
        prop_assert!(report.ok, "{:?}", report.problems);
        prop_assert_eq!(report.records, lines as u64);
        let summary = summarize_from(log.as_slice()).unwrap();
        prop_assert_eq!(summary.records, lines as u64);
        prop_assert_eq!(summary.events + summary.malformed, lines as u64);
    }
}
