//! `orderflow analytics`: counts what the shop does — events per status and per source,
//! orders completed and in flight, malformed records.

use std::collections::BTreeMap;

use crate::activity::{Activity, Outcome, PartitionStart, RecordNote, Report, RoleCounters};
use crate::event::{OrderEvent, Source, Status};
use crate::kafka::consumer::{ConsumedRecord, History, Role, RoleError};

/// The analytics role's counters.
#[derive(Debug, Default)]
pub struct Analytics {
    /// Events per status, indexed by [`Status::index`].
    statuses: [u64; 4],
    /// Events per source, in [`Source::ALL`] order.
    sources: [u64; 3],
    malformed: u64,
    malformed_by_kind: BTreeMap<&'static str, u64>,
}

impl Analytics {
    pub fn new() -> Analytics {
        Analytics::default()
    }

    fn count(&self, status: Status) -> u64 {
        self.statuses[status.index()]
    }
}

impl Role for Analytics {
    fn assigned(
        &mut self,
        _partitions: &[PartitionStart],
        _history: &History,
        _out: &mut dyn Report,
    ) -> Result<(), RoleError> {
        // Counts are totals of what this member read; nothing belongs to a partition.
        Ok(())
    }

    fn revoked(&mut self, _partitions: &[i32], _out: &mut dyn Report) {}

    fn handle(
        &mut self,
        record: &ConsumedRecord<'_>,
        out: &mut dyn Report,
    ) -> Result<(), RoleError> {
        let outcome = match OrderEvent::from_record(record.key, record.value) {
            Ok(event) => {
                self.statuses[event.status.index()] += 1;
                let source = Source::ALL
                    .iter()
                    .position(|s| *s == event.source)
                    .expect("every source is listed");
                self.sources[source] += 1;
                Outcome::Order {
                    order_id: event.order_id,
                    status: event.status,
                    source: event.source,
                    previous: None,
                }
            }
            Err(error) => {
                self.malformed += 1;
                *self.malformed_by_kind.entry(error.kind()).or_default() += 1;
                Outcome::Malformed(error)
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

    fn malformed(&self) -> (u64, BTreeMap<&'static str, u64>) {
        (self.malformed, self.malformed_by_kind.clone())
    }

    fn counters(&self) -> RoleCounters {
        let completed = self.count(Status::Delivered);
        RoleCounters::Analytics {
            statuses: Status::ALL
                .iter()
                .map(|s| (s.as_str(), self.count(*s)))
                .collect(),
            sources: Source::ALL
                .iter()
                .zip(self.sources)
                .map(|(s, n)| (s.as_str(), n))
                .collect(),
            completed,
            // Placed but not yet delivered, as far as this member has seen.
            in_flight: self.count(Status::Placed).saturating_sub(completed),
        }
    }
}
