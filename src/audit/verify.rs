//! `orderflow audit verify`: checks that a log is what storage promises (docs/audit-log.md)
//! and names every problem by its line:
//!
//! - every line is an audit line; a torn last line (a crash while writing) is told apart from
//!   damage in the middle of the file;
//! - per (topic, partition), offsets follow each other without gaps, none is stored twice and
//!   none comes after a higher one;
//! - every order's lifecycle is valid, in line order (offset order within a partition).
//!
//! What is information, not a problem: malformed records stored as such, and a partition
//! whose log starts above offset 0 (retention, or a group that started late) together with
//! the orders whose earlier events precede that start. Whether such a start is fine only the
//! topic can say: [`Report::check_against_topic`] (`verify --against-topic`) compares every
//! partition with the records Kafka still holds, given their bounds.
//!
//! One streaming pass in constant memory apart from per-order state (16 bytes of id and 16 of
//! state per order) and the problems listed. Only when a record is stored twice far apart is
//! there a second pass, to find the line it was first stored at.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Seek, SeekFrom, Write};

use serde::Serialize;
use uuid::Uuid;

use super::reader::{AuditLog, Lines, RawLine, ReadError};
use super::summary::megabytes;
use super::topics::{ByPartition, ByTopic, partitions};
use crate::domain::event::Status;
use crate::domain::lifecycle::{Violation, check};
use crate::report::human;

/// Problems listed in full; beyond this they are only counted, so that verifying a file of
/// garbage does not hold a description of each of its lines.
pub const MAX_LISTED: usize = 1_000;

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
    /// The `kind` of the problem in `--json`, also the key of `problems_by_kind`.
    pub const fn kind(&self) -> &'static str {
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

/// One partition as verify saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartitionReport {
    pub topic: String,
    pub partition: i32,
    /// Distinct records stored.
    pub records: u64,
    /// The first and the highest offset stored.
    pub first_offset: i64,
    pub last_offset: i64,
    /// Offsets missing between the first and the highest.
    pub missing: u64,
}

/// What verify found. Serialized as is for `--json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    pub file: String,
    /// No problem found.
    pub ok: bool,
    pub bytes: u64,
    pub lines: u64,
    /// Distinct records: audit lines, not counting records stored again.
    pub records: u64,
    /// Malformed records stored as such: information, not problems.
    pub malformed: u64,
    pub malformed_by_kind: BTreeMap<String, u64>,
    pub partitions: Vec<PartitionReport>,
    pub orders: u64,
    pub orders_delivered: u64,
    /// Orders whose first event in the log is not PLACED, in a partition whose log starts
    /// above offset 0: their earlier events precede the log. Information, not problems.
    pub orders_begun_before_log: u64,
    pub problems_total: u64,
    pub problems_by_kind: BTreeMap<&'static str, u64>,
    /// The first [`MAX_LISTED`] problems, in line order.
    pub problems: Vec<Problem>,
}

/// A stored offset and the line it is at.
#[derive(Clone, Copy, Debug)]
struct At {
    offset: i64,
    line: u64,
}

/// A partition while reading.
#[derive(Debug, Default)]
struct PartitionState {
    /// The highest offset stored so far.
    last: Option<At>,
    records: u64,
    /// The stored offsets as sorted, disjoint ranges: one range for a partition without
    /// gaps, so this grows only with the gaps.
    stored: Vec<(i64, i64)>,
}

/// Where a line's offset falls in its partition.
enum Placement {
    /// The next offset, or the first of the partition.
    InOrder,
    /// After a gap: `from..=to` are missing; the offset before it is at `before`.
    AfterGap { from: i64, to: i64, before: At },
    /// Stored before, at `first_line` when that is known without looking back.
    Duplicate { first_line: Option<u64> },
    /// Below the highest offset stored so far, and not stored yet.
    OutOfOrder { after: At },
}

impl PartitionState {
    fn place(&mut self, offset: i64, line: u64) -> Placement {
        let here = At { offset, line };
        let Some(last) = self.last else {
            self.last = Some(here);
            self.stored.push((offset, offset));
            return Placement::InOrder;
        };
        if offset == last.offset {
            return Placement::Duplicate {
                first_line: Some(last.line),
            };
        }
        if offset < last.offset {
            if self.holds(offset) {
                return Placement::Duplicate { first_line: None };
            }
            self.insert(offset);
            return Placement::OutOfOrder { after: last };
        }
        self.last = Some(here);
        let run = self.stored.last_mut().expect("a stored offset");
        if offset == last.offset + 1 {
            run.1 = offset;
            Placement::InOrder
        } else {
            self.stored.push((offset, offset));
            Placement::AfterGap {
                from: last.offset + 1,
                to: offset - 1,
                before: last,
            }
        }
    }

    fn holds(&self, offset: i64) -> bool {
        let i = self.stored.partition_point(|&(start, _)| start <= offset);
        i > 0 && self.stored[i - 1].1 >= offset
    }

    /// Adds an offset below the highest one, merging it with its neighbours.
    fn insert(&mut self, offset: i64) {
        let i = self.stored.partition_point(|&(start, _)| start <= offset);
        let joins_left = i > 0 && self.stored[i - 1].1 + 1 == offset;
        let joins_right = i < self.stored.len() && self.stored[i].0 == offset + 1;
        match (joins_left, joins_right) {
            (true, true) => {
                self.stored[i - 1].1 = self.stored[i].1;
                self.stored.remove(i);
            }
            (true, false) => self.stored[i - 1].1 = offset,
            (false, true) => self.stored[i].0 = offset,
            (false, false) => self.stored.insert(i, (offset, offset)),
        }
    }

    /// The lowest offset stored.
    fn first(&self) -> Option<i64> {
        self.stored.first().map(|&(start, _)| start)
    }

    fn missing(&self) -> u64 {
        self.stored
            .windows(2)
            .map(|w| offsets_between(w[0].1 + 1, w[1].0 - 1))
            .sum()
    }
}

/// How many offsets `from..=to` holds. Offsets come from the file, so they may be anything,
/// negative ones included: the difference of two can overflow an `i64`.
fn offsets_between(from: i64, to: i64) -> u64 {
    (i128::from(to) - i128::from(from) + 1).clamp(0, i128::from(u64::MAX)) as u64
}

/// The furthest step of an order and the line it is at.
#[derive(Clone, Copy, Debug)]
struct Step {
    status: Status,
    line: u64,
}

/// The state of one pass over the log.
#[derive(Default)]
struct Verifier {
    bytes: u64,
    lines: u64,
    records: u64,
    malformed: u64,
    malformed_by_kind: BTreeMap<String, u64>,
    partitions: ByPartition<PartitionState>,
    /// Orders per topic: orders of different topics are different orders.
    orders: ByTopic<HashMap<Uuid, Step>>,
    orders_begun_before_log: u64,
    problems_total: u64,
    problems_by_kind: BTreeMap<&'static str, u64>,
    problems: Vec<Problem>,
}

impl Verifier {
    fn problem(&mut self, problem: Problem) {
        self.problems_total += 1;
        *self.problems_by_kind.entry(problem.kind()).or_default() += 1;
        if self.problems.len() < MAX_LISTED {
            self.problems.push(problem);
        }
    }

    fn line(&mut self, raw: RawLine<'_>) {
        let number = raw.number;
        self.lines += 1;
        self.bytes += raw.length + raw.terminated as u64;
        if !raw.terminated {
            self.problem(Problem::TornLastLine {
                line: number,
                bytes: raw.length,
            });
            return;
        }
        let line = match raw.decode() {
            Ok(line) => line,
            Err(error) => {
                self.problem(Problem::Unreadable {
                    line: number,
                    error: error.to_string(),
                });
                return;
            }
        };
        let partition = self
            .partitions
            .entry(&line.topic)
            .entry(line.partition)
            .or_default();
        let placement = partition.place(line.offset, number);
        if !matches!(placement, Placement::Duplicate { .. }) {
            partition.records += 1;
        }
        let log_starts_late = partition.first().is_some_and(|first| first > 0);
        let after_gap = partition.stored.len() > 1;
        match placement {
            Placement::InOrder => {}
            Placement::AfterGap { from, to, before } => self.problem(Problem::Gap {
                topic: line.topic.clone(),
                partition: line.partition,
                from,
                to,
                line_before: before.line,
                line: number,
            }),
            Placement::Duplicate { first_line } => {
                // The same record again: its event was checked the first time.
                self.problem(Problem::Duplicate {
                    topic: line.topic.clone(),
                    partition: line.partition,
                    offset: line.offset,
                    line: number,
                    first_line,
                });
                return;
            }
            Placement::OutOfOrder { after } => self.problem(Problem::OutOfOrder {
                topic: line.topic.clone(),
                partition: line.partition,
                offset: line.offset,
                line: number,
                after_offset: after.offset,
                after_line: after.line,
            }),
        }
        self.records += 1;
        let Some(event) = &line.event else {
            self.malformed += 1;
            let kind = line.error_kind.as_deref().unwrap_or("unknown");
            match self.malformed_by_kind.get_mut(kind) {
                Some(n) => *n += 1,
                None => {
                    self.malformed_by_kind.insert(kind.to_owned(), 1);
                }
            }
            return;
        };
        let orders = self.orders.entry(&line.topic);
        let previous = orders.get(&event.order_id).copied();
        let verdict = check(previous.map(|p| p.status), event.status);
        // After a violation the order keeps its furthest step, as in `Lifecycles`: one bad
        // event is reported once, not again with every later event of the order.
        let furthest = match previous {
            Some(p) if p.status >= event.status => p,
            _ => Step {
                status: event.status,
                line: number,
            },
        };
        orders.insert(event.order_id, furthest);
        match verdict {
            Ok(()) => {}
            Err(Violation::FirstNotPlaced { .. }) if log_starts_late => {
                self.orders_begun_before_log += 1;
            }
            Err(violation) => self.problem(Problem::Lifecycle {
                topic: line.topic.clone(),
                partition: line.partition,
                offset: line.offset,
                line: number,
                order_id: event.order_id,
                status: event.status,
                previous: previous.map(|p| p.status),
                previous_line: previous.map(|p| p.line),
                violation: violation.to_string(),
                violation_kind: violation.kind(),
                after_gap,
            }),
        }
    }

    fn report(self) -> Report {
        let partitions: Vec<PartitionReport> = partitions(&self.partitions)
            .filter_map(|(topic, partition, state)| {
                let (first, last) = (state.first()?, state.last?);
                Some(PartitionReport {
                    topic: topic.to_owned(),
                    partition,
                    records: state.records,
                    first_offset: first,
                    last_offset: last.offset,
                    missing: state.missing(),
                })
            })
            .collect();
        let (mut orders, mut delivered) = (0, 0);
        for (_, topic_orders) in self.orders.iter() {
            orders += topic_orders.len() as u64;
            delivered += topic_orders
                .values()
                .filter(|step| step.status.is_final())
                .count() as u64;
        }
        Report {
            file: String::new(),
            ok: self.problems_total == 0,
            bytes: self.bytes,
            lines: self.lines,
            records: self.records,
            malformed: self.malformed,
            malformed_by_kind: self.malformed_by_kind,
            partitions,
            orders,
            orders_delivered: delivered,
            orders_begun_before_log: self.orders_begun_before_log,
            problems_total: self.problems_total,
            problems_by_kind: self.problems_by_kind,
            problems: self.problems,
        }
    }
}

/// Verifies the log at `log`.
pub fn verify(log: &mut AuditLog) -> Result<Report, ReadError> {
    let file = log.path().display().to_string();
    let mut report = verify_from(log.rewound()?).map_err(|e| log.read_error(e))?;
    report.file = file;
    Ok(report)
}

/// Verifies a log read from `source`, from its current position (the `file` of the report
/// is left empty).
pub fn verify_from<R: Read + Seek>(mut source: R) -> io::Result<Report> {
    let start = source.stream_position()?;
    let mut verifier = Verifier::default();
    let mut lines = Lines::new(&mut source);
    while let Some(raw) = lines.next_line()? {
        verifier.line(raw);
    }
    let mut report = verifier.report();
    source.seek(SeekFrom::Start(start))?;
    find_first_lines(source, &mut report.problems)?;
    Ok(report)
}

/// Fills in where each listed duplicate was first stored, when that was not the line just
/// before it in its partition: a second pass, only over the lines before the last such
/// duplicate, and only for logs that have one.
fn find_first_lines(source: impl Read, problems: &mut [Problem]) -> io::Result<()> {
    let mut wanted: HashMap<(String, i32, i64), Vec<usize>> = HashMap::new();
    let mut until = 0;
    for (i, problem) in problems.iter().enumerate() {
        if let Problem::Duplicate {
            topic,
            partition,
            offset,
            line,
            first_line: None,
        } = problem
        {
            wanted
                .entry((topic.clone(), *partition, *offset))
                .or_default()
                .push(i);
            until = until.max(*line);
        }
    }
    if wanted.is_empty() {
        return Ok(());
    }
    let mut lines = Lines::new(source);
    while let Some(raw) = lines.next_line()? {
        if raw.number >= until || wanted.is_empty() {
            break;
        }
        let Ok(line) = raw.decode() else { continue };
        let key = (line.topic, line.partition, line.offset);
        if let Some(indices) = wanted.remove(&key) {
            for i in indices {
                if let Problem::Duplicate { first_line, .. } = &mut problems[i] {
                    *first_line = Some(raw.number);
                }
            }
        }
    }
    Ok(())
}

/// The bounds of one partition of the topic: the earliest offset Kafka still holds and the
/// next one it will write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopicPartitionBounds {
    pub partition: i32,
    pub low: i64,
    pub high: i64,
}

impl Report {
    /// Adds a problem for every record of `topic` that Kafka still holds and the log lacks:
    /// before a partition's first line, after its last, or in a partition without a line.
    /// Gaps between lines are already problems.
    pub fn check_against_topic(&mut self, topic: &str, bounds: &[TopicPartitionBounds]) {
        let mut found = Vec::new();
        for b in bounds {
            if b.low >= b.high {
                continue;
            }
            let logged = self
                .partitions
                .iter()
                .find(|p| p.topic == topic && p.partition == b.partition);
            let missing = |from: i64, to: i64, place| Problem::NotInLog {
                topic: topic.to_owned(),
                partition: b.partition,
                from,
                to,
                place,
            };
            match logged {
                None => found.push(missing(b.low, b.high - 1, MissingPlace::NoLine)),
                Some(p) => {
                    if b.low < p.first_offset {
                        let to = p.first_offset.min(b.high) - 1;
                        found.push(missing(b.low, to, MissingPlace::BeforeFirstLine));
                    }
                    if p.last_offset + 1 < b.high {
                        let from = (p.last_offset + 1).max(b.low);
                        found.push(missing(from, b.high - 1, MissingPlace::AfterLastLine));
                    }
                }
            }
        }
        for problem in found {
            self.problems_total += 1;
            *self.problems_by_kind.entry(problem.kind()).or_default() += 1;
            if self.problems.len() < MAX_LISTED {
                self.problems.push(problem);
            }
        }
        self.ok = self.problems_total == 0;
    }
}

impl Problem {
    /// The problem for people, starting with its line.
    pub fn text(&self) -> String {
        match self {
            Problem::NotInLog {
                topic,
                partition,
                from,
                to,
                place,
            } => {
                let offsets = if from == to {
                    format!("offset {from} (1 record)")
                } else {
                    format!(
                        "offsets {from}–{to} ({} records)",
                        human::count(offsets_between(*from, *to))
                    )
                };
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
                let offsets = if from == to {
                    format!("offset {from} missing")
                } else {
                    format!(
                        "offsets {from}–{to} missing ({} records)",
                        human::count(offsets_between(*from, *to))
                    )
                };
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

/// `1 gap, 2 duplicates`.
fn kinds_text(by_kind: &BTreeMap<&'static str, u64>) -> String {
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

impl Report {
    /// The report for people: what the log holds, each problem on a line, the verdict.
    pub fn write_text(&self, out: &mut impl Write) -> io::Result<()> {
        writeln!(
            out,
            "{}: {} lines ({}), {} records",
            self.file,
            human::count(self.lines),
            megabytes(self.bytes),
            human::count(self.records)
        )?;
        for p in &self.partitions {
            let mut text = format!(
                "  {}/{}  {} records, offsets {}–{}",
                p.topic,
                p.partition,
                human::count(p.records),
                p.first_offset,
                p.last_offset
            );
            if p.first_offset > 0 {
                text += &format!(
                    "; starts at offset {}, not 0: fine, a log may begin later (retention \
                     removed older records, or storage's group started late)",
                    p.first_offset
                );
            }
            if p.missing > 0 {
                text += &format!("; {} offsets missing", human::count(p.missing));
            }
            writeln!(out, "{text}")?;
        }
        if self.malformed > 0 {
            let kinds: Vec<String> = self
                .malformed_by_kind
                .iter()
                .map(|(kind, n)| format!("{kind} {}", human::count(*n)))
                .collect();
            writeln!(
                out,
                "  malformed records: {} ({}), stored as such: information, not a problem of \
                 the log",
                human::count(self.malformed),
                kinds.join(", ")
            )?;
        }
        writeln!(
            out,
            "  orders: {} ({} delivered, {} in flight)",
            human::count(self.orders),
            human::count(self.orders_delivered),
            human::count(self.orders - self.orders_delivered)
        )?;
        if self.orders_begun_before_log > 0 {
            writeln!(
                out,
                "  {} orders first appear after PLACED in a partition whose log starts after \
                 offset 0: their earlier events precede the log (not a problem)",
                human::count(self.orders_begun_before_log)
            )?;
        }
        for problem in &self.problems {
            writeln!(out, "{}", problem.text())?;
        }
        let unlisted = self.problems_total - self.problems.len() as u64;
        if unlisted > 0 {
            writeln!(
                out,
                "… and {} more problems not listed (the counts are complete)",
                human::count(unlisted)
            )?;
        }
        if self.ok {
            writeln!(
                out,
                "OK: every line is an audit line, offsets are contiguous in every partition, no \
                 record is stored twice, every order's lifecycle is valid"
            )
        } else {
            let noun = if self.problems_total == 1 {
                "problem"
            } else {
                "problems"
            };
            writeln!(
                out,
                "FAILED: {} {noun} ({})",
                human::count(self.problems_total),
                kinds_text(&self.problems_by_kind)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Places `offsets` in order, one line each; returns what each was found to be.
    fn place(offsets: &[i64]) -> (PartitionState, Vec<&'static str>) {
        let mut state = PartitionState::default();
        let found = offsets
            .iter()
            .enumerate()
            .map(
                |(line, &offset)| match state.place(offset, line as u64 + 1) {
                    Placement::InOrder => "in order",
                    Placement::AfterGap { .. } => "after gap",
                    Placement::Duplicate { .. } => "duplicate",
                    Placement::OutOfOrder { .. } => "out of order",
                },
            )
            .collect();
        (state, found)
    }

    #[test]
    fn offsets_are_placed_in_their_partition() {
        let (state, found) = place(&[5, 6, 9, 9, 7, 6, 8, 10]);
        assert_eq!(
            found,
            [
                "in order",
                "in order",
                "after gap",
                "duplicate",
                "out of order",
                "duplicate",
                "out of order",
                "in order"
            ]
        );
        assert_eq!(
            state.stored,
            vec![(5, 10)],
            "the late offsets filled the gap"
        );
        assert_eq!((state.first(), state.missing()), (Some(5), 0));
    }

    #[test]
    fn any_offsets_are_counted_without_overflow() {
        let (state, found) = place(&[i64::MIN, -1, i64::MAX, i64::MAX, 0]);
        assert_eq!(
            found,
            [
                "in order",
                "after gap",
                "after gap",
                "duplicate",
                "out of order"
            ]
        );
        assert_eq!(state.missing(), u64::MAX - 3, "all but the four stored");
    }
}
