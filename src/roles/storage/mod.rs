//! `orderflow storage`: appends every record to the audit log, exactly once, and commits a
//! record's offset only after its line is fsynced. See [`crate::audit::writer`] for how the
//! file survives crashes, and for the check that the file at the path is still the one written
//! before anything is committed.
//!
//! When it is given a partition, storage also compares the group's committed offset with
//! what the file holds: a group that committed past the file's last line of a partition (the
//! file was removed, truncated or replaced by an older copy, or a torn last line's record had
//! been committed) means records are missing from the file. They are re-read from Kafka, on the
//! runtime's history reader, and stored before any record of the partition is consumed, so the
//! consumer itself needs no seek: it goes on from the committed offset, and the file's lines
//! stay in offset order. Records no longer in Kafka cannot be re-read: storage stops and says
//! how to recover.

use std::collections::BTreeMap;

use chrono::Utc;

use super::outcome::{Tally, note, plain_outcome};
use super::{ConsumedRecord, FlushFailure, Replay, Role, RoleError};
use crate::audit::{AuditLine, AuditWriter, RecordId};
use crate::domain::event::OrderEvent;
use crate::report::activity::{Activity, Outcome, PartitionStart, Report, RoleCounters};
use crate::report::human;

/// The storage role.
pub(crate) struct Storage {
    log: AuditWriter,
    /// The topic read; lines are keyed by it.
    topic: String,
    already_stored: u64,
    malformed: Tally,
    /// Once a write or fsync failed, no later one counts.
    flush_failure: FlushFailure,
}

impl Storage {
    pub(crate) fn new(log: AuditWriter, topic: &str) -> Storage {
        Storage {
            log,
            topic: topic.to_owned(),
            already_stored: 0,
            malformed: Tally::default(),
            flush_failure: FlushFailure::default(),
        }
    }
}

/// The audit log and the topic disagree about a partition's history.
#[derive(Debug, thiserror::Error)]
#[error(
    "{file} does not match topic {topic}: its last line for partition {partition} is offset \
     {offset}, but {what}. The topic was recreated (a restarted development broker starts \
     empty) or the file belongs to another cluster; move the file away or give storage \
     another --file"
)]
pub(crate) struct ForeignLog {
    file: String,
    topic: String,
    partition: i32,
    offset: i64,
    what: String,
}

/// Records the group committed are missing from the audit log, and Kafka no longer has them.
#[derive(Debug, thiserror::Error)]
#[error(
    "partition {partition}: the group committed offsets up to {committed}, but {file} {holds}, \
     and Kafka no longer has offsets {from}–{gone_until} (the partition now starts at {low}): \
     those records are missing from the audit log and cannot be read again. Put back the copy \
     of the file that holds them and start storage again; or, to accept their loss, move the \
     file aside (`mv {file} {file}.incomplete`) and start storage again: a new file is filled \
     from the earliest record Kafka still has"
)]
pub(crate) struct MissingRecords {
    file: String,
    partition: i32,
    committed: i64,
    holds: String,
    from: i64,
    gone_until: i64,
    low: i64,
}

/// How much re-read data is queued before it is written out.
const REREAD_FLUSH_BYTES: usize = 8 << 20;

/// "holds this partition up to offset 41" / "holds no line of this partition".
fn holds(last: Option<&RecordId>) -> String {
    match last {
        Some(last) => format!("holds this partition only up to offset {}", last.offset),
        None => "holds no line of this partition".to_owned(),
    }
}

impl Storage {
    /// Compares the group's committed offset with the file's end for one partition, and
    /// re-reads from Kafka what the group committed and the file lacks.
    fn fill_committed_gap(
        &mut self,
        start: &PartitionStart,
        last: Option<&RecordId>,
        history: &dyn Replay,
        out: &mut dyn Report,
    ) -> Result<(), RoleError> {
        // Without a commit the group claims nothing was stored; with no line of the
        // partition, the file can hold at most what Kafka still has, from `low`.
        if !start.committed {
            return Ok(());
        }
        let from = last.map_or(start.low, |last| last.offset + 1);
        if start.start <= from {
            return Ok(());
        }
        let file = self.log.path().display().to_string();
        if from < start.low {
            return Err(MissingRecords {
                file,
                partition: start.partition,
                committed: start.start - 1,
                holds: holds(last),
                from,
                gone_until: start.low - 1,
                low: start.low,
            }
            .into());
        }
        let mut failure = None;
        let mut reread: u64 = 0;
        let log = &mut self.log;
        let malformed = &mut self.malformed;
        history.replay(start.partition, from, start.start, &mut |record| {
            if failure.is_some()
                || log
                    .known_last(record.topic, record.partition)
                    .is_some_and(|known| record.offset <= known)
            {
                return;
            }
            let parsed = OrderEvent::from_record(record.key, record.value);
            if let Err(error) = &parsed {
                malformed.add(error.kind());
            }
            log.append(&AuditLine::from_parsed(record, &parsed, Utc::now()));
            reread += 1;
            if log.pending_bytes() >= REREAD_FLUSH_BYTES
                && let Err(e) = log.sync()
            {
                failure = Some(e);
            }
        })?;
        if let Some(e) = failure {
            return Err(e.into());
        }
        self.log.sync()?;
        out.report(Activity::Notice(format!(
            "partition {}: the group committed offsets up to {}, but {file} {}: offsets \
             {from}–{} were committed without being in the file (it was removed, truncated or \
             replaced, or a torn last line's record had been committed); re-read {} records \
             from Kafka and stored them",
            start.partition,
            start.start - 1,
            holds(last),
            start.start - 1,
            human::count(reread)
        )));
        Ok(())
    }

    /// Makes sure the last line the file holds for a partition is the record the topic has
    /// at that offset. Otherwise offsets in the file mean other records, and skipping "what
    /// the file already has" would silently drop new ones.
    fn check_same_history(
        &self,
        start: &PartitionStart,
        last: &RecordId,
        history: &dyn Replay,
    ) -> Result<(), RoleError> {
        let foreign = |what: String| ForeignLog {
            file: self.log.path().display().to_string(),
            topic: self.topic.clone(),
            partition: start.partition,
            offset: last.offset,
            what,
        };
        if last.offset >= start.high {
            return Err(foreign(format!("the partition ends at offset {}", start.high)).into());
        }
        if last.offset < start.low {
            // Retention removed that record: nothing left to compare with.
            return Ok(());
        }
        let mut found = None;
        history.replay(
            start.partition,
            last.offset,
            last.offset + 1,
            &mut |record| {
                found = Some(RecordId::of_record(record));
            },
        )?;
        match found {
            Some(record) if record == *last => Ok(()),
            Some(_) => Err(foreign(
                "the topic's record at that offset has another key or timestamp".to_owned(),
            )
            .into()),
            None => Err(foreign("the topic has no record at that offset".to_owned()).into()),
        }
    }
}

impl Role for Storage {
    fn assigned(
        &mut self,
        partitions: &[PartitionStart],
        history: &dyn Replay,
        out: &mut dyn Report,
    ) -> Result<(), RoleError> {
        let numbers: Vec<i32> = partitions.iter().map(|p| p.partition).collect();
        for (start, (_, last)) in partitions
            .iter()
            .zip(self.log.last_stored(&self.topic, &numbers)?)
        {
            if let Some(last) = &last {
                self.check_same_history(start, last, history)?;
            }
            self.fill_committed_gap(start, last.as_ref(), history, out)?;
            let Some(last) = last else { continue };
            if last.offset >= start.start {
                // Why the commit lags the file (a crash, a member dropped from the group
                // during an outage, a commit that never reached the coordinator) is not
                // something storage can know; that the file holds those records, it can.
                let held = if last.offset == start.start {
                    format!(
                        "offset {}, past the group's committed offset; that record is",
                        last.offset
                    )
                } else {
                    format!(
                        "offsets {}–{}, past the group's committed offset; those {} records are",
                        start.start,
                        last.offset,
                        human::count((last.offset - start.start + 1) as u64)
                    )
                };
                out.report(Activity::Notice(format!(
                    "partition {}: {} already holds {held} skipped, not stored twice",
                    start.partition,
                    self.log.path().display(),
                )));
            }
        }
        Ok(())
    }

    fn revoked(&mut self, _partitions: &[i32], _out: &mut dyn Report) {}

    fn handle(
        &mut self,
        record: &ConsumedRecord<'_>,
        out: &mut dyn Report,
    ) -> Result<(), RoleError> {
        let outcome = if self
            .log
            .known_last(record.topic, record.partition)
            .is_some_and(|last| record.offset <= last)
        {
            self.already_stored += 1;
            Outcome::AlreadyStored
        } else {
            let parsed = OrderEvent::from_record(record.key, record.value);
            self.log
                .append(&AuditLine::from_parsed(record, &parsed, Utc::now()));
            plain_outcome(parsed, &mut self.malformed)
        };
        out.report(note(record, outcome, None));
        Ok(())
    }

    /// Writes, fsyncs and checks that the file at the path still holds what was written;
    /// the runtime stores the offsets only after this. Once this failed, it always fails.
    fn flush(&mut self) -> Result<(), RoleError> {
        self.flush_failure.guard(|| Ok(self.log.sync()?))
    }

    fn malformed(&self) -> (u64, BTreeMap<&'static str, u64>) {
        self.malformed.counts()
    }

    fn counters(&self) -> RoleCounters {
        RoleCounters::Storage {
            // Only lines written and fsynced count as stored: a failed write or fsync must
            // not be reported as records kept.
            stored: self.log.synced_lines(),
            already_stored: self.already_stored,
            file: self.log.path().display().to_string(),
        }
    }
}

#[cfg(test)]
mod tests;
