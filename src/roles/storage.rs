//! `orderflow storage`: appends every record to the audit log, exactly once, and commits a
//! record's offset only after its line is fsynced. See [`crate::audit::writer`] for how the
//! file survives crashes.

use std::collections::BTreeMap;

use chrono::Utc;

use crate::activity::{Activity, Outcome, PartitionStart, RecordNote, Report, RoleCounters};
use crate::audit::{AuditLine, AuditWriter};
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

impl Role for Storage {
    fn assigned(
        &mut self,
        partitions: &[PartitionStart],
        _history: &History,
        out: &mut dyn Report,
    ) -> Result<(), RoleError> {
        let numbers: Vec<i32> = partitions.iter().map(|p| p.partition).collect();
        for (partition, last) in self.log.last_stored(&self.topic, &numbers)? {
            let start = partitions
                .iter()
                .find(|p| p.partition == partition)
                .map_or(0, |p| p.start);
            if let Some(last) = last.filter(|&last| last >= start) {
                out.report(Activity::Notice(format!(
                    "partition {partition}: {} holds offsets up to {last}, beyond the group's \
                     committed offset {start} (a crash before the commit); those {} records \
                     are skipped, not stored twice",
                    self.log.path().display(),
                    human::count((last - start + 1) as u64)
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
