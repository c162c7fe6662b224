//! `orderflow audit order ID`: one order's history in file order — every event of it, and
//! every malformed record keyed by its id — with whether each step keeps its lifecycle
//! valid. The id may be shortened to its first characters, as `tail` and the roles show it.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::line::AuditLine;
use super::reader::{AuditLog, Lines, ReadError};
use super::topics::ByTopic;
use crate::domain::event::{OrderKey, Source, Status};
use crate::domain::lifecycle::check;
use crate::report::human;

/// The fewest characters of an id that select an order: the eight the roles and `tail` show.
pub(crate) const MIN_PREFIX: usize = 8;

/// Which order to show: a whole id, or its first characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrderQuery {
    Id(Uuid),
    /// Lowercase, hyphenated as in the record key.
    Prefix(String),
}

impl FromStr for OrderQuery {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(id) = Uuid::try_parse(s) {
            return Ok(OrderQuery::Id(id));
        }
        let prefix = s.to_ascii_lowercase();
        let looks_like_id = prefix.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
        if !looks_like_id || prefix.len() >= 36 {
            return Err(format!(
                "\"{s}\" is not an order id (like 6f1c0a52-3d7e-4e55-9a43-2b7a1d9c8e10) or the \
                 start of one"
            ));
        }
        if prefix.len() < MIN_PREFIX {
            return Err(format!(
                "give at least the first {MIN_PREFIX} characters of the order id, as tail shows \
                 them (\"{s}\" is too short)"
            ));
        }
        Ok(OrderQuery::Prefix(prefix))
    }
}

impl fmt::Display for OrderQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OrderQuery::Id(id) => write!(f, "{id}"),
            OrderQuery::Prefix(prefix) => write!(f, "{prefix}…"),
        }
    }
}

impl OrderQuery {
    fn matches(&self, id: &Uuid) -> bool {
        match self {
            OrderQuery::Id(wanted) => wanted == id,
            OrderQuery::Prefix(prefix) => OrderKey::new(*id).as_str().starts_with(prefix.as_str()),
        }
    }
}

/// Why an order's history cannot be shown.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("order {query} is not in {file} (none of its {lines} lines is about it)")]
    NotFound {
        query: OrderQuery,
        file: String,
        lines: u64,
    },
    #[error("{query} matches {} orders in {file}: {}; give more of the id", ids.len(), list(ids))]
    Ambiguous {
        query: OrderQuery,
        file: String,
        ids: Vec<Uuid>,
    },
}

fn list(ids: &[Uuid]) -> String {
    ids.iter()
        .map(Uuid::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line of the order's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    pub line: u64,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub kafka_timestamp: Option<DateTime<Utc>>,
    pub stored_at: DateTime<Utc>,
    /// The event's fields; absent for a malformed record.
    pub status: Option<Status>,
    pub timestamp: Option<DateTime<Utc>>,
    pub source: Option<Source>,
    /// Whether this line keeps the order's lifecycle valid. A malformed record or a record
    /// stored twice does not break the lifecycle, but is not a valid step either.
    pub valid: bool,
    /// What breaks the lifecycle, in words, e.g. `skipped CONFIRMED (PLACED → SHIPPED)`.
    pub violation: Option<String>,
    /// For a malformed record keyed by the order's id: why it is malformed.
    pub error_kind: Option<String>,
    pub error: Option<String>,
    /// The same record (topic, partition, offset) is stored before, at this line.
    pub duplicate_of: Option<u64>,
}

/// One order's history. Serialized as is for `--json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct History {
    pub file: String,
    pub order_id: Uuid,
    /// The furthest step the order reached.
    pub status: Option<Status>,
    /// No event breaks the lifecycle (malformed records and records stored twice are shown
    /// but are not steps of it).
    pub valid: bool,
    pub history: Vec<HistoryEntry>,
}

/// The order a line is about: its event's order, or for a malformed record the order its key
/// names.
fn order_of(line: &AuditLine) -> Option<Uuid> {
    match (&line.event, &line.key) {
        (Some(event), _) => Some(event.order_id),
        (None, Some(key)) if key.len() == 36 => Uuid::try_parse(key).ok(),
        _ => None,
    }
}

/// The history of the order `query` selects in the log at `log`.
pub fn history(log: &mut AuditLog, query: &OrderQuery) -> Result<History, OrderError> {
    let file = log.path().display().to_string();
    let found = find(log.rewound()?, query).map_err(|e| log.read_error(e))?;
    let mut ids: Vec<Uuid> = Vec::new();
    for (id, _, _) in &found.lines {
        if !ids.contains(id) {
            ids.push(*id);
        }
    }
    match ids.as_slice() {
        [] => Err(OrderError::NotFound {
            query: query.clone(),
            file,
            lines: found.lines_read,
        }),
        [id] => Ok(build(file, *id, found.lines)),
        _ => Err(OrderError::Ambiguous {
            query: query.clone(),
            file,
            ids,
        }),
    }
}

/// The lines of the orders a query matches, in file order.
struct Found {
    lines: Vec<(Uuid, u64, AuditLine)>,
    lines_read: u64,
}

fn find(source: impl Read, query: &OrderQuery) -> io::Result<Found> {
    let mut lines = Lines::new(source);
    let mut found = Found {
        lines: Vec::new(),
        lines_read: 0,
    };
    while let Some(raw) = lines.next_line()? {
        found.lines_read += 1;
        if !raw.terminated {
            continue;
        }
        let Ok(line) = raw.decode() else { continue };
        if let Some(id) = order_of(&line).filter(|id| query.matches(id)) {
            found.lines.push((id, raw.number, line));
        }
    }
    Ok(found)
}

fn build(file: String, order_id: Uuid, lines: Vec<(Uuid, u64, AuditLine)>) -> History {
    // Orders of different topics are different orders; this one's steps are checked per topic.
    let mut furthest: ByTopic<Option<Status>> = ByTopic::default();
    let mut stored: Vec<(String, i32, i64, u64)> = Vec::new();
    let mut history = Vec::with_capacity(lines.len());
    for (_, number, line) in lines {
        let mut entry = HistoryEntry {
            line: number,
            topic: line.topic.clone(),
            partition: line.partition,
            offset: line.offset,
            kafka_timestamp: line.kafka_timestamp,
            stored_at: line.stored_at,
            status: line.event.as_ref().map(|e| e.status),
            timestamp: line.event.as_ref().map(|e| e.timestamp),
            source: line.event.as_ref().map(|e| e.source),
            valid: false,
            violation: None,
            error_kind: line.error_kind.clone(),
            error: line.error.clone(),
            duplicate_of: None,
        };
        let record = (line.topic.clone(), line.partition, line.offset);
        entry.duplicate_of = stored
            .iter()
            .find(|(t, p, o, _)| (t, *p, *o) == (&record.0, record.1, record.2))
            .map(|s| s.3);
        if entry.duplicate_of.is_none() {
            stored.push((record.0, record.1, record.2, number));
            if let Some(event) = &line.event {
                let previous = furthest.entry(&line.topic);
                match check(*previous, event.status) {
                    Ok(()) => entry.valid = true,
                    Err(violation) => entry.violation = Some(violation.to_string()),
                }
                *previous = Some(previous.map_or(event.status, |p| p.max(event.status)));
            }
        }
        history.push(entry);
    }
    let valid = history.iter().all(|e| e.violation.is_none());
    let status = history.iter().filter_map(|e| e.status).max();
    History {
        file,
        order_id,
        status,
        valid,
        history,
    }
}

impl History {
    /// The history for people: a heading, then one line per line of the log.
    pub(crate) fn write_text(&self, out: &mut impl Write) -> io::Result<()> {
        let reached = self.status.map_or("no event".to_owned(), |s| s.to_string());
        let verdict = if self.valid {
            "lifecycle valid"
        } else {
            "lifecycle NOT valid"
        };
        writeln!(
            out,
            "order {} in {}: {} lines, reached {reached}, {verdict}",
            self.order_id,
            self.file,
            self.history.len()
        )?;
        writeln!(
            out,
            "  {:<9} {:<10} {:<25} {:<16} {:<25} step",
            "line", "status", "event time", "partition@offset", "stored at"
        )?;
        for e in &self.history {
            let status = e.status.map_or("MALFORMED", Status::as_str);
            let time = e.timestamp.map_or(String::new(), |t| human::timestamp(&t));
            let at = format!("p{}@{}", e.partition, e.offset);
            let step = match (&e.duplicate_of, &e.violation, &e.error) {
                (Some(first), _, _) => format!("the same record as line {first}, stored again"),
                (None, Some(violation), _) => format!("VIOLATION: {violation}"),
                (None, None, Some(error)) => error.clone(),
                (None, None, None) => "ok".to_owned(),
            };
            writeln!(
                out,
                "  {:<9} {status:<10} {time:<25} {at:<16} {:<25} {step}",
                e.line,
                human::timestamp(&e.stored_at)
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_their_starts_are_accepted() {
        let id = "6f1c0a52-3d7e-4e55-9a43-2b7a1d9c8e10";
        assert_eq!(
            id.parse::<OrderQuery>(),
            Ok(OrderQuery::Id(Uuid::parse_str(id).unwrap()))
        );
        assert_eq!(
            "6F1C0A52".parse::<OrderQuery>(),
            Ok(OrderQuery::Prefix("6f1c0a52".into()))
        );
        assert!(
            "6f1c"
                .parse::<OrderQuery>()
                .unwrap_err()
                .contains("at least")
        );
        assert!("hello-world".parse::<OrderQuery>().is_err());
        let query: OrderQuery = "6f1c0a52-3d".parse().unwrap();
        assert!(query.matches(&Uuid::parse_str(id).unwrap()));
    }
}
