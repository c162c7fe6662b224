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

mod partition;
mod problem;
mod report;

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Seek, SeekFrom};

use uuid::Uuid;

use super::reader::{AuditLog, Lines, RawLine, ReadError};
use super::summary::count_malformed;
use super::topics::{ByPartition, ByTopic, partitions};
use crate::domain::event::Status;
use crate::domain::lifecycle::{Violation, check};
use partition::{PartitionState, Placement};
pub use problem::{MissingPlace, Problem};
pub use report::{PartitionReport, Report, TopicPartitionBounds};

/// Problems listed in full; beyond this they are only counted, so that verifying a file of
/// garbage does not hold a description of each of its lines.
pub(crate) const MAX_LISTED: usize = 1_000;

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
        problem.tally(
            &mut self.problems_total,
            &mut self.problems_by_kind,
            &mut self.problems,
        );
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
            count_malformed(&mut self.malformed_by_kind, &line);
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
