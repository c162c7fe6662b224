//! `orderflow audit summary`: what a log holds, counted in one pass. Counts by status, source
//! and partition, the time span, complete and in-flight orders, malformed records by kind.
//! It does not judge the log; `verify` does.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::AuditLine;
use super::reader::{AuditLog, Lines, ReadError};
use super::topics::{ByPartition, ByTopic, partitions};
use crate::domain::event::{Source, Status};
use crate::domain::lifecycle::Lifecycles;
use crate::report::human;

/// Events per status, in lifecycle order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StatusCounts {
    #[serde(rename = "PLACED")]
    pub placed: u64,
    #[serde(rename = "CONFIRMED")]
    pub confirmed: u64,
    #[serde(rename = "SHIPPED")]
    pub shipped: u64,
    #[serde(rename = "DELIVERED")]
    pub delivered: u64,
}

impl StatusCounts {
    fn slot(&mut self, status: Status) -> &mut u64 {
        match status {
            Status::Placed => &mut self.placed,
            Status::Confirmed => &mut self.confirmed,
            Status::Shipped => &mut self.shipped,
            Status::Delivered => &mut self.delivered,
        }
    }
}

/// Events per source.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SourceCounts {
    #[serde(rename = "WEB")]
    pub web: u64,
    #[serde(rename = "MOBILE")]
    pub mobile: u64,
    #[serde(rename = "API")]
    pub api: u64,
}

impl SourceCounts {
    fn slot(&mut self, source: Source) -> &mut u64 {
        match source {
            Source::Web => &mut self.web,
            Source::Mobile => &mut self.mobile,
            Source::Api => &mut self.api,
        }
    }
}

/// The earliest and the latest of a set of times.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Span {
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
}

impl Span {
    fn widen(span: &mut Option<Span>, t: DateTime<Utc>) {
        match span {
            None => *span = Some(Span { first: t, last: t }),
            Some(span) => {
                span.first = span.first.min(t);
                span.last = span.last.max(t);
            }
        }
    }
}

/// The records of one partition in the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PartitionSummary {
    pub topic: String,
    pub partition: i32,
    pub records: u64,
    /// The lowest and highest offset stored.
    pub first_offset: i64,
    pub last_offset: i64,
}

/// Orders seen, by whether they reached DELIVERED.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OrderCounts {
    pub total: u64,
    pub complete: u64,
    pub in_flight: u64,
}

/// What a log holds. Serialized as is for `--json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub file: String,
    pub bytes: u64,
    /// Every line, including those that are not audit lines and a torn last line.
    pub lines: u64,
    /// Lines that are audit lines: order events plus malformed records.
    pub records: u64,
    pub events: u64,
    pub malformed: u64,
    pub malformed_by_kind: BTreeMap<String, u64>,
    /// Lines that are not audit lines (`verify` names them), not counting a torn last line.
    pub unreadable_lines: u64,
    /// The last line has no newline: a write torn by a crash, or one in progress.
    pub torn_last_line: bool,
    pub statuses: StatusCounts,
    pub sources: SourceCounts,
    pub orders: OrderCounts,
    pub partitions: Vec<PartitionSummary>,
    /// The span of the records' Kafka timestamps, when any has one.
    pub kafka_timestamp: Option<Span>,
    /// When storage wrote the first and the last of them.
    pub stored_at: Option<Span>,
}

/// Per partition while counting: records, lowest and highest offset.
#[derive(Debug)]
struct Offsets {
    records: u64,
    first: i64,
    last: i64,
}

impl Default for Offsets {
    fn default() -> Self {
        Offsets {
            records: 0,
            first: i64::MAX,
            last: i64::MIN,
        }
    }
}

/// Summarizes the log at `log`.
pub fn summarize(log: &mut AuditLog) -> Result<Summary, ReadError> {
    let file = log.path().display().to_string();
    let mut summary = summarize_from(log.rewound()?).map_err(|e| log.read_error(e))?;
    summary.file = file;
    Ok(summary)
}

/// Summarizes a log read from `source` (its `file` is left empty).
pub fn summarize_from(source: impl Read) -> io::Result<Summary> {
    let mut lines = Lines::new(source);
    let mut summary = Summary {
        file: String::new(),
        bytes: 0,
        lines: 0,
        records: 0,
        events: 0,
        malformed: 0,
        malformed_by_kind: BTreeMap::new(),
        unreadable_lines: 0,
        torn_last_line: false,
        statuses: StatusCounts::default(),
        sources: SourceCounts::default(),
        orders: OrderCounts::default(),
        partitions: Vec::new(),
        kafka_timestamp: None,
        stored_at: None,
    };
    let mut offsets: ByPartition<Offsets> = ByTopic::default();
    // Orders of different topics are different orders.
    let mut orders: ByTopic<Lifecycles> = ByTopic::default();
    while let Some(raw) = lines.next_line()? {
        summary.lines += 1;
        summary.bytes += raw.length + raw.terminated as u64;
        if !raw.terminated {
            summary.torn_last_line = true;
            continue;
        }
        let Ok(line) = raw.decode() else {
            summary.unreadable_lines += 1;
            continue;
        };
        summary.records += 1;
        let partition = offsets
            .entry(&line.topic)
            .entry(line.partition)
            .or_default();
        partition.records += 1;
        partition.first = partition.first.min(line.offset);
        partition.last = partition.last.max(line.offset);
        if let Some(t) = line.kafka_timestamp {
            Span::widen(&mut summary.kafka_timestamp, t);
        }
        Span::widen(&mut summary.stored_at, line.stored_at);
        match &line.event {
            Some(event) => {
                summary.events += 1;
                *summary.statuses.slot(event.status) += 1;
                *summary.sources.slot(event.source) += 1;
                // A violation is verify's business; here only the furthest step counts.
                let _ = orders
                    .entry(&line.topic)
                    .observe(event.order_id, event.status);
            }
            None => {
                summary.malformed += 1;
                count_malformed(&mut summary.malformed_by_kind, &line);
            }
        }
    }
    summary.partitions = partitions(&offsets)
        .map(|(topic, partition, o)| PartitionSummary {
            topic: topic.to_owned(),
            partition,
            records: o.records,
            first_offset: o.first,
            last_offset: o.last,
        })
        .collect();
    for (_, lifecycles) in orders.iter() {
        let in_flight = lifecycles.in_flight() as u64;
        summary.orders.total += lifecycles.len() as u64;
        summary.orders.in_flight += in_flight;
        summary.orders.complete += lifecycles.len() as u64 - in_flight;
    }
    Ok(summary)
}

/// Counts a malformed record under its error kind (`unknown` when the line names none).
pub(crate) fn count_malformed(by_kind: &mut BTreeMap<String, u64>, line: &AuditLine) {
    let kind = line.error_kind.as_deref().unwrap_or("unknown");
    match by_kind.get_mut(kind) {
        Some(n) => *n += 1,
        None => {
            by_kind.insert(kind.to_owned(), 1);
        }
    }
}

/// `a · b · c` from (name, count) pairs.
fn counts<'a>(pairs: impl IntoIterator<Item = (&'a str, u64)>) -> String {
    pairs
        .into_iter()
        .map(|(name, n)| format!("{name} {}", human::count(n)))
        .collect::<Vec<_>>()
        .join(" · ")
}

fn span_text(span: &Span) -> String {
    let length = (span.last - span.first).to_std().unwrap_or_default();
    format!(
        "{} → {} ({})",
        human::timestamp(&span.first),
        human::timestamp(&span.last),
        human::duration(length)
    )
}

/// `5.2 MB`.
pub(crate) fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

impl Summary {
    /// The summary for people.
    pub(crate) fn write_text(&self, out: &mut impl Write) -> io::Result<()> {
        writeln!(
            out,
            "{}: {} lines ({})",
            self.file,
            human::count(self.lines),
            megabytes(self.bytes)
        )?;
        writeln!(
            out,
            "  records      {}: {} order events · {} malformed",
            human::count(self.records),
            human::count(self.events),
            human::count(self.malformed)
        )?;
        let s = &self.statuses;
        writeln!(
            out,
            "  statuses     {}",
            counts([
                ("PLACED", s.placed),
                ("CONFIRMED", s.confirmed),
                ("SHIPPED", s.shipped),
                ("DELIVERED", s.delivered),
            ])
        )?;
        let s = &self.sources;
        writeln!(
            out,
            "  sources      {}",
            counts([("WEB", s.web), ("MOBILE", s.mobile), ("API", s.api)])
        )?;
        writeln!(
            out,
            "  orders       {}: {} complete (DELIVERED) · {} in flight",
            human::count(self.orders.total),
            human::count(self.orders.complete),
            human::count(self.orders.in_flight)
        )?;
        if !self.malformed_by_kind.is_empty() {
            writeln!(
                out,
                "  malformed    {}",
                counts(self.malformed_by_kind.iter().map(|(k, n)| (k.as_str(), *n)))
            )?;
        }
        for (i, p) in self.partitions.iter().enumerate() {
            let head = if i == 0 { "partitions" } else { "" };
            writeln!(
                out,
                "  {head:<12} {}/{}  {} records, offsets {}–{}",
                p.topic,
                p.partition,
                human::count(p.records),
                p.first_offset,
                p.last_offset
            )?;
        }
        if let Some(span) = &self.kafka_timestamp {
            writeln!(out, "  kafka time   {}", span_text(span))?;
        }
        if let Some(span) = &self.stored_at {
            writeln!(out, "  stored       {}", span_text(span))?;
        }
        if self.unreadable_lines > 0 {
            writeln!(
                out,
                "  not audit lines  {} (`orderflow audit verify` names them)",
                human::count(self.unreadable_lines)
            )?;
        }
        if self.torn_last_line {
            writeln!(
                out,
                "  the last line has no newline: torn by a crash, or being written (not counted)"
            )?;
        }
        Ok(())
    }
}
