//! What verify found, checked against the topic, and written for people.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;

use super::problem::{MissingPlace, Problem, kinds_text};
use crate::audit::summary::megabytes;
use crate::report::human;
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
    /// The first [`MAX_LISTED`](super::MAX_LISTED) problems, in line order.
    pub problems: Vec<Problem>,
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
    pub(crate) fn check_against_topic(&mut self, topic: &str, bounds: &[TopicPartitionBounds]) {
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
            problem.tally(
                &mut self.problems_total,
                &mut self.problems_by_kind,
                &mut self.problems,
            );
        }
        self.ok = self.problems_total == 0;
    }
}

impl Report {
    /// The report for people: what the log holds, each problem on a line, the verdict.
    pub(crate) fn write_text(&self, out: &mut impl Write) -> io::Result<()> {
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
