//! What can be wrong with a log, and how each problem reads.

use std::collections::BTreeMap;

use serde::Serialize;
use uuid::Uuid;

use super::MAX_LISTED;
use super::partition::offsets_between;
use crate::domain::event::Status;
use crate::report::human;
/// One thing wrong with the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Problem {
    /// A line in the file that is not an audit line.
    Unreadable { line: u64, error: String },
    /// The last line has no newline: a crash in the middle of a write.
    TornLastLine { line: u64, bytes: u64 },
    /// Offsets `from..=to` are missing between two consecutive stored offsets.
    Gap {
        topic: String,
        partition: i32,
        from: i64,
        to: i64,
        /// The line of the stored offset before the gap, and of the one after it.
        line_before: u64,
        line: u64,
    },
    /// A record stored again; `first_line` is where it was stored first.
    Duplicate {
        topic: String,
        partition: i32,
        offset: i64,
        line: u64,
        first_line: Option<u64>,
    },
    /// An offset lower than one stored before it, not stored before itself.
    OutOfOrder {
        topic: String,
        partition: i32,
        offset: i64,
        line: u64,
        after_offset: i64,
        after_line: u64,
    },
    /// An event that breaks its order's lifecycle.
    Lifecycle {
        topic: String,
        partition: i32,
        offset: i64,
        line: u64,
        order_id: Uuid,
        status: Status,
        /// The furthest step of the order before this event, and the line it is at.
        previous: Option<Status>,
        previous_line: Option<u64>,
        violation: String,
        violation_kind: &'static str,
        /// Offsets of the partition are missing before this line: the order's missing step
        /// may be among them.
        after_gap: bool,
    },
    /// Records `from..=to` are still in Kafka but not in the log (`--against-topic`).
    NotInLog {
        topic: String,
        partition: i32,
        from: i64,
        to: i64,
        /// Where in the partition they are missing.
        place: MissingPlace,
    },
}

/// Where records Kafka holds are missing from the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MissingPlace {
    /// Before the partition's first line.
    BeforeFirstLine,
    /// After its last line.
    AfterLastLine,
    /// The log has no line of the partition.
    NoLine,
}

impl Problem {
    /// Counts the problem in `total` and `by_kind`, and lists it in `listed` while that holds
    /// fewer than [`MAX_LISTED`].
    pub(super) fn tally(
        self,
        total: &mut u64,
        by_kind: &mut BTreeMap<&'static str, u64>,
        listed: &mut Vec<Problem>,
    ) {
        *total += 1;
        *by_kind.entry(self.kind()).or_default() += 1;
        if listed.len() < MAX_LISTED {
            listed.push(self);
        }
    }

    /// The `kind` of the problem in `--json`, also the key of `problems_by_kind`.
    pub(crate) const fn kind(&self) -> &'static str {
        match self {
            Problem::Unreadable { .. } => "unreadable",
            Problem::TornLastLine { .. } => "torn-last-line",
            Problem::Gap { .. } => "gap",
            Problem::Duplicate { .. } => "duplicate",
            Problem::OutOfOrder { .. } => "out-of-order",
            Problem::Lifecycle { .. } => "lifecycle",
            Problem::NotInLog { .. } => "not-in-log",
        }
    }
}

impl Problem {
    /// The problem for people, starting with its line.
    pub(crate) fn text(&self) -> String {
        match self {
            Problem::NotInLog {
                topic,
                partition,
                from,
                to,
                place,
            } => {
                let offsets = offsets_text(*from, *to, "", " (1 record)");
                let place = match place {
                    MissingPlace::BeforeFirstLine => {
                        "before the partition's first line: the log starts later than the topic"
                    }
                    MissingPlace::AfterLastLine => {
                        "after the partition's last line (is storage still catching up?)"
                    }
                    MissingPlace::NoLine => "and the log has no line of this partition",
                };
                format!("{topic}/{partition} {offsets} are in Kafka but not in the log, {place}")
            }
            Problem::Unreadable { line, error } => format!("line {line}: {error}"),
            Problem::TornLastLine { line, bytes } => format!(
                "line {line}: torn last line ({} bytes, no newline): a write cut short by a \
                 crash, not damage to the file; `orderflow storage` removes it when it starts \
                 and stores that record again",
                human::count(*bytes)
            ),
            Problem::Gap {
                topic,
                partition,
                from,
                to,
                line_before,
                line,
            } => {
                let offsets = offsets_text(*from, *to, " missing", "");
                format!(
                    "line {line}: {topic}/{partition} {offsets}: the line before in this \
                     partition (line {line_before}) has offset {}, this one {}",
                    from.saturating_sub(1),
                    to.saturating_add(1)
                )
            }
            Problem::Duplicate {
                topic,
                partition,
                offset,
                line,
                first_line,
            } => match first_line {
                Some(first) => format!(
                    "line {line}: {topic}/{partition} offset {offset} stored twice: first at \
                     line {first}, again at line {line}"
                ),
                None => format!(
                    "line {line}: {topic}/{partition} offset {offset} stored twice: again at \
                     line {line}"
                ),
            },
            Problem::OutOfOrder {
                topic,
                partition,
                offset,
                line,
                after_offset,
                after_line,
            } => format!(
                "line {line}: {topic}/{partition} offset {offset} out of order: the partition \
                 was already at offset {after_offset} (line {after_line})"
            ),
            Problem::Lifecycle {
                topic,
                partition,
                offset,
                line,
                order_id,
                violation,
                previous,
                previous_line,
                after_gap,
                ..
            } => {
                let before = match (previous, previous_line) {
                    (Some(status), Some(at)) => {
                        format!("; the order was at {status} since line {at}")
                    }
                    _ => String::new(),
                };
                let gap = if *after_gap {
                    " (offsets of this partition are missing before it: the missing step may be \
                     among them)"
                } else {
                    ""
                };
                format!(
                    "line {line}: order {order_id} ({topic}/{partition} offset {offset}): \
                     {violation}{before}{gap}"
                )
            }
        }
    }
}

/// `offset 5<after><one>` for one offset, `offsets 5–9<after> (5 records)` for more.
fn offsets_text(from: i64, to: i64, after: &str, one: &str) -> String {
    if from == to {
        format!("offset {from}{after}{one}")
    } else {
        format!(
            "offsets {from}–{to}{after} ({} records)",
            human::count(offsets_between(from, to))
        )
    }
}

/// `1 gap, 2 duplicates`.
pub(super) fn kinds_text(by_kind: &BTreeMap<&'static str, u64>) -> String {
    by_kind
        .iter()
        .map(|(kind, n)| {
            let name = match (*kind, *n == 1) {
                ("unreadable", true) => "line that is not an audit line",
                ("unreadable", false) => "lines that are not audit lines",
                ("torn-last-line", _) => "torn last line",
                ("gap", true) => "gap",
                ("gap", false) => "gaps",
                ("duplicate", true) => "duplicate",
                ("duplicate", false) => "duplicates",
                ("out-of-order", _) => "out of order",
                ("lifecycle", true) => "lifecycle violation",
                ("lifecycle", false) => "lifecycle violations",
                ("not-in-log", true) => "range of records Kafka has and the log lacks",
                ("not-in-log", false) => "ranges of records Kafka has and the log lacks",
                (other, _) => other,
            };
            format!("{} {name}", human::count(*n))
        })
        .collect::<Vec<_>>()
        .join(", ")
}
