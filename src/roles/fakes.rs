//! Fakes of what the runtime gives a role, for the roles' unit tests: a partition's history as
//! a list of records, a dead-letter sink that remembers what it was sent (and fails when told
//! to), and a report that keeps every activity. No Kafka, no threads.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::DateTime;
use uuid::Uuid;

use super::{ConsumedRecord, DeadLetterSink, Replay, Role, RoleError};
use crate::domain::event::{OrderEvent, Source, Status};
use crate::report::activity::{Activity, Outcome, PartitionStart, RecordNote, Report};

/// The topic every fake record comes from.
pub(super) const TOPIC: &str = "order-events";

/// The topic the fake dead-letter sink stands for.
pub(super) const DEAD_LETTER_TOPIC: &str = "order-events-dlq";

/// A record as the topic holds it.
#[derive(Clone, Debug)]
pub(super) struct StoredRecord {
    pub(super) partition: i32,
    pub(super) offset: i64,
    pub(super) key: Option<Vec<u8>>,
    pub(super) value: Option<Vec<u8>>,
    pub(super) timestamp_ms: Option<i64>,
}

impl StoredRecord {
    /// The record as the runtime hands it to a role.
    pub(super) fn consumed(&self) -> ConsumedRecord<'_> {
        ConsumedRecord {
            topic: TOPIC,
            partition: self.partition,
            offset: self.offset,
            key: self.key.as_deref(),
            value: self.value.as_deref(),
            timestamp_ms: self.timestamp_ms,
        }
    }
}

/// A well-formed event of order number `order` (keyed by its order id, as the wire format
/// wants) at `partition`/`offset`.
pub(super) fn event(partition: i32, offset: i64, order: u128, status: Status) -> StoredRecord {
    let timestamp_ms = 1_790_000_000_000 + offset;
    let event = OrderEvent {
        order_id: Uuid::from_u128(order),
        user_id: format!("user_{order}"),
        status,
        timestamp: DateTime::from_timestamp_millis(timestamp_ms).expect("a valid time"),
        source: Source::ALL[order as usize % Source::ALL.len()],
    };
    StoredRecord {
        partition,
        offset,
        key: Some(event.key().as_bytes().to_vec()),
        value: Some(event.to_json().into_bytes()),
        timestamp_ms: Some(timestamp_ms),
    }
}

/// A record whose value is `value`, not an order event.
pub(super) fn garbage(partition: i32, offset: i64, value: &str) -> StoredRecord {
    StoredRecord {
        partition,
        offset,
        key: Some(b"not-an-order".to_vec()),
        value: Some(value.as_bytes().to_vec()),
        timestamp_ms: Some(1_790_000_000_000 + offset),
    }
}

/// A partition assigned to a group that never committed for it: read from `low`.
pub(super) fn fresh(partition: i32, low: i64, high: i64) -> PartitionStart {
    PartitionStart {
        partition,
        start: low,
        committed: false,
        low,
        high,
    }
}

/// A partition assigned to a group that committed up to `start` (the next offset to read).
pub(super) fn committed(partition: i32, low: i64, start: i64, high: i64) -> PartitionStart {
    PartitionStart {
        partition,
        start,
        committed: true,
        low,
        high,
    }
}

/// A topic's history: the records of each partition, in offset order.
#[derive(Default)]
pub(super) struct FakeHistory {
    partitions: BTreeMap<i32, Vec<StoredRecord>>,
    /// Replays fail (Kafka cannot be read).
    failing: bool,
    /// The ranges replayed, as (partition, from, until).
    asked: Mutex<Vec<(i32, i64, i64)>>,
}

impl FakeHistory {
    pub(super) fn of(records: impl IntoIterator<Item = StoredRecord>) -> FakeHistory {
        let mut history = FakeHistory::default();
        for record in records {
            history
                .partitions
                .entry(record.partition)
                .or_default()
                .push(record);
        }
        history
    }

    pub(super) fn failing() -> FakeHistory {
        FakeHistory {
            failing: true,
            ..FakeHistory::default()
        }
    }

    pub(super) fn asked(&self) -> Vec<(i32, i64, i64)> {
        self.asked.lock().unwrap().clone()
    }
}

impl Replay for FakeHistory {
    fn replay(
        &self,
        partition: i32,
        from: i64,
        until: i64,
        visit: &mut dyn FnMut(&ConsumedRecord<'_>),
    ) -> Result<u64, RoleError> {
        self.asked.lock().unwrap().push((partition, from, until));
        if self.failing {
            return Err("the history cannot be read".into());
        }
        let mut visited = 0;
        for record in self.partitions.get(&partition).into_iter().flatten() {
            if (from..until).contains(&record.offset) {
                visit(&record.consumed());
                visited += 1;
            }
        }
        Ok(visited)
    }
}

/// One dead letter the fake sink was sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct DeadLetter {
    pub(super) partition: i32,
    pub(super) offset: i64,
    pub(super) reason: String,
    pub(super) error: String,
}

#[derive(Default)]
struct SinkState {
    sent: Vec<DeadLetter>,
    fail_sends: bool,
    fail_flushes: bool,
    /// Only the next flush fails.
    fail_next_flush: bool,
    flushes: usize,
}

/// A dead-letter sink; clones share what was sent, so a test keeps one while the role owns
/// the other.
#[derive(Clone, Default)]
pub(super) struct FakeDeadLetters(Arc<Mutex<SinkState>>);

impl FakeDeadLetters {
    pub(super) fn sent(&self) -> Vec<DeadLetter> {
        self.0.lock().unwrap().sent.clone()
    }

    pub(super) fn flushes(&self) -> usize {
        self.0.lock().unwrap().flushes
    }

    /// From now on, sending fails.
    pub(super) fn fail_sends(&self) {
        self.0.lock().unwrap().fail_sends = true;
    }

    /// From now on, flushing fails.
    pub(super) fn fail_flushes(&self) {
        self.0.lock().unwrap().fail_flushes = true;
    }

    /// The next flush fails; the ones after it succeed.
    pub(super) fn fail_next_flush(&self) {
        self.0.lock().unwrap().fail_next_flush = true;
    }
}

impl DeadLetterSink for FakeDeadLetters {
    fn topic(&self) -> &str {
        DEAD_LETTER_TOPIC
    }

    fn send(
        &mut self,
        record: &ConsumedRecord<'_>,
        reason: &str,
        error: &str,
    ) -> Result<(), RoleError> {
        let mut state = self.0.lock().unwrap();
        if state.fail_sends {
            return Err("the dead-letter topic refused the record".into());
        }
        state.sent.push(DeadLetter {
            partition: record.partition,
            offset: record.offset,
            reason: reason.to_owned(),
            error: error.to_owned(),
        });
        Ok(())
    }

    fn flush(&mut self) -> Result<(), RoleError> {
        let mut state = self.0.lock().unwrap();
        state.flushes += 1;
        if state.fail_flushes || std::mem::take(&mut state.fail_next_flush) {
            return Err("a dead letter was not acknowledged".into());
        }
        Ok(())
    }
}

/// Keeps everything a role reports.
#[derive(Debug, Default)]
pub(super) struct Reports(pub(super) Vec<Activity>);

impl Report for Reports {
    fn report(&mut self, activity: Activity) {
        self.0.push(activity);
    }
}

impl Reports {
    /// The records' notes, in order.
    pub(super) fn notes(&self) -> Vec<&RecordNote> {
        self.0
            .iter()
            .filter_map(|activity| match activity {
                Activity::Record(note) => Some(note),
                _ => None,
            })
            .collect()
    }

    /// The records' outcomes, in order.
    pub(super) fn outcomes(&self) -> Vec<&Outcome> {
        self.notes().into_iter().map(|note| &note.outcome).collect()
    }

    /// The notices, in order.
    pub(super) fn notices(&self) -> Vec<&str> {
        self.0
            .iter()
            .filter_map(|activity| match activity {
                Activity::Notice(text) => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// Gives `role` the partitions `starts`, with `history` to rebuild from; what it reported.
pub(super) fn assign(
    role: &mut dyn Role,
    starts: &[PartitionStart],
    history: &dyn Replay,
) -> Result<Reports, RoleError> {
    let mut out = Reports::default();
    role.assigned(starts, history, &mut out)?;
    Ok(out)
}

/// Hands `record` to `role`, which must take it; what it reported.
pub(super) fn handle(role: &mut dyn Role, record: &StoredRecord) -> Reports {
    try_handle(role, record).expect("the role takes the record")
}

/// Hands `record` to `role`: what it reported, or why it stopped (and what it had reported).
pub(super) fn try_handle(
    role: &mut dyn Role,
    record: &StoredRecord,
) -> Result<Reports, (RoleError, Reports)> {
    let mut out = Reports::default();
    match role.handle(&record.consumed(), &mut out) {
        Ok(()) => Ok(out),
        Err(error) => Err((error, out)),
    }
}
