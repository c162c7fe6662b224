//! The consumer roles of the order platform, one file per role, and the interface they share
//! with the runtime that feeds them. Nothing here knows Kafka: the runtime (`kafka::consumer`)
//! hands a role plain records and implements the role-side traits ([`Replay`],
//! `DeadLetterSink`), so every role can be tested with fakes of them (`fakes`, test-only).
//! What the roles do alike with a record (problems tallied by kind, the note of what became
//! of it) is `outcome`'s.
//!
//! A read-process-write stage (`payments`) is not a [`Role`]: it turns each record into at
//! most one record to produce ([`Stage`]), and its runtime (`kafka::stage`) decides when
//! the input offsets are committed relative to producing, which is the stage's lesson.

pub(crate) mod analytics;
#[cfg(test)]
mod fakes;
pub(crate) mod order_processor;
mod outcome;
pub(crate) mod payments;
pub mod registry;
pub(crate) mod storage;

use std::collections::BTreeMap;

use crate::report::activity::{PartitionStart, Report, RoleCounters};

/// An error a role returns from its work; the runtime stops and reports it.
pub type RoleError = Box<dyn std::error::Error + Send + Sync>;

/// One record, borrowed from the consumer for the time the role handles it.
#[derive(Clone, Copy, Debug)]
pub struct ConsumedRecord<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// The record's Kafka timestamp in milliseconds since the epoch, when it has one.
    pub timestamp_ms: Option<i64>,
}

/// Reads a partition's records again, outside the group: how a role rebuilds the state that
/// belongs to a partition it was just given.
pub trait Replay {
    /// Calls `visit` for every record of `partition` with `from <= offset < until`, in
    /// offset order. Returns how many records it visited (fewer than `until - from` when
    /// records were deleted meanwhile).
    fn replay(
        &self,
        partition: i32,
        from: i64,
        until: i64,
        visit: &mut dyn FnMut(&ConsumedRecord<'_>),
    ) -> Result<u64, RoleError>;
}

/// Where a role sends the records it cannot process, with the reason.
pub(crate) trait DeadLetterSink: Send {
    /// The topic dead letters go to, for the role's reports.
    fn topic(&self) -> &str;

    /// Queues `record` as a dead letter; `reason` is a short kind, `error` the words.
    fn send(
        &mut self,
        record: &ConsumedRecord<'_>,
        reason: &str,
        error: &str,
    ) -> Result<(), RoleError>;

    /// Waits until every dead letter sent so far is acknowledged; fails if any was not.
    fn flush(&mut self) -> Result<(), RoleError>;
}

/// What a role does with the records of its partitions.
pub trait Role: Send + 'static {
    /// Partitions were assigned; called before any of their records is handled, so a role
    /// can rebuild per-partition state from `history`.
    fn assigned(
        &mut self,
        partitions: &[PartitionStart],
        history: &dyn Replay,
        out: &mut dyn Report,
    ) -> Result<(), RoleError>;

    /// Partitions were revoked; their state can be dropped.
    fn revoked(&mut self, partitions: &[i32], out: &mut dyn Report);

    /// Handles one record. When this returns Ok, the record counts as done once the next
    /// [`Role::flush`] succeeds.
    fn handle(
        &mut self,
        record: &ConsumedRecord<'_>,
        out: &mut dyn Report,
    ) -> Result<(), RoleError>;

    /// Makes everything handled so far durable (write, fsync, deliver). Offsets are stored,
    /// and later committed, only after this returns Ok.
    fn flush(&mut self) -> Result<(), RoleError> {
        Ok(())
    }

    /// Malformed records counted, total and by kind.
    fn malformed(&self) -> (u64, BTreeMap<&'static str, u64>);

    /// The role's own counters.
    fn counters(&self) -> RoleCounters;
}

/// A role's flushes once one has failed: every later one fails too, with the first one's
/// words. After a failed fsync a successful one does not prove that the lines the failed one
/// covered reached the disk (Linux may drop the dirty pages and report the error only once);
/// after a dead letter was refused, a later flush that succeeds does not bring it back. The
/// runtime never flushes again after a failure; this keeps the role's own counters (lines
/// fsynced) from claiming otherwise should anything try.
#[derive(Debug, Default)]
pub(crate) struct FlushFailure(Option<String>);

impl FlushFailure {
    /// Runs `flush`, unless one failed before.
    pub(crate) fn guard(
        &mut self,
        flush: impl FnOnce() -> Result<(), RoleError>,
    ) -> Result<(), RoleError> {
        if let Some(first) = &self.0 {
            return Err(format!(
                "an earlier flush failed ({first}): nothing handled since counts as done"
            )
            .into());
        }
        flush().inspect_err(|e| self.0 = Some(e.to_string()))
    }
}

/// What a read-process-write stage made of one input record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Processed {
    /// A record to produce to the stage's output topic; `label` is what the stage's
    /// counters tally it under (a payment's decision).
    Emit {
        key: Vec<u8>,
        value: Vec<u8>,
        label: &'static str,
    },
    /// A valid record the stage has nothing to do with (an order that is not PLACED).
    Skipped,
    /// Not a record the stage can read; `kind` is the problem's short name.
    Malformed { kind: &'static str },
}

/// A read-process-write stage: a pure function of the record, so that a record processed
/// again (after a crash, a rebalance or an aborted transaction) yields the same output.
pub(crate) trait Stage: Send + 'static {
    fn process(&self, record: &ConsumedRecord<'_>) -> Processed;
}
