//! `orderflow storage`: appends every record to the audit log, exactly once, and commits a
//! record's offset only after its line is fsynced. See [`crate::audit::writer`] for how the
//! file survives crashes.

use std::collections::BTreeMap;

use chrono::Utc;

use crate::activity::{Activity, Outcome, PartitionStart, RecordNote, Report, RoleCounters};
use crate::audit::{AuditLine, AuditWriter, RecordId};
use crate::event::OrderEvent;
use crate::human;
use crate::kafka::consumer::{ConsumedRecord, History, Role, RoleError};

/// The storage role.
pub struct Storage {
    log: AuditWriter,
    /// The topic read; lines are keyed by it.
    topic: String,
    stored: u64,
    already_stored: u64,
    malformed: u64,
    malformed_by_kind: BTreeMap<&'static str, u64>,
}

impl Storage {
    pub fn new(log: AuditWriter, topic: &str) -> Storage {
        Storage {
            log,
            topic: topic.to_owned(),
            stored: 0,
            already_stored: 0,
            malformed: 0,
            malformed_by_kind: BTreeMap::new(),
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
pub struct ForeignLog {
    file: String,
    topic: String,
    partition: i32,
    offset: i64,
    what: String,
}

impl Storage {
    /// Makes sure the last line the file holds for a partition is the record the topic has
    /// at that offset. Otherwise offsets in the file mean other records, and skipping "what
    /// the file already has" would silently drop new ones.
    fn check_same_history(
        &self,
        start: &PartitionStart,
        last: &RecordId,
        history: &History,
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
        history: &History,
        out: &mut dyn Report,
    ) -> Result<(), RoleError> {
        let numbers: Vec<i32> = partitions.iter().map(|p| p.partition).collect();
        for (start, (_, last)) in partitions
            .iter()
            .zip(self.log.last_stored(&self.topic, &numbers)?)
        {
            let Some(last) = last else { continue };
            self.check_same_history(start, &last, history)?;
            if last.offset >= start.start {
                // Why the commit lags the file (a crash, a member dropped from the group
                // during an outage, a commit that never reached the coordinator) is not
                // something storage can know; that the file holds those records, it can.
                out.report(Activity::Notice(format!(
                    "partition {}: {} already holds offsets {}–{}, past the group's committed \
                     offset; those {} records are skipped, not stored twice",
                    start.partition,
                    self.log.path().display(),
                    start.start,
                    last.offset,
                    human::count((last.offset - start.start + 1) as u64)
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
            self.stored += 1;
            match parsed {
                Ok(event) => Outcome::Order {
                    order_id: event.order_id,
                    status: event.status,
                    source: event.source,
                    previous: None,
                },
                Err(error) => {
                    self.malformed += 1;
                    *self.malformed_by_kind.entry(error.kind()).or_default() += 1;
                    Outcome::Malformed(error)
                }
            }
        };
        out.report(Activity::Record(RecordNote {
            partition: record.partition,
            offset: record.offset,
            outcome,
            routed_to: None,
        }));
        Ok(())
    }

    fn flush(&mut self) -> Result<(), RoleError> {
        Ok(self.log.sync()?)
    }

    fn malformed(&self) -> (u64, BTreeMap<&'static str, u64>) {
        (self.malformed, self.malformed_by_kind.clone())
    }

    fn counters(&self) -> RoleCounters {
        RoleCounters::Storage {
            stored: self.stored,
            already_stored: self.already_stored,
            file: self.log.path().display().to_string(),
        }
    }
}
