//! `orderflow analytics`: counts what the shop does — events per status and per source,
//! orders completed and in flight, malformed records.

use std::collections::{BTreeMap, HashSet};

use uuid::Uuid;

use super::outcome::{Tally, note, plain_outcome};
use super::{ConsumedRecord, Replay, Role, RoleError};
use crate::domain::event::{OrderEvent, Source, Status};
use crate::report::activity::{PartitionStart, Report, RoleCounters};

/// The analytics role's counters.
#[derive(Debug, Default)]
pub struct Analytics {
    /// Events per status, indexed by [`Status::index`].
    statuses: [u64; 4],
    /// Events per source, in [`Source::ALL`] order.
    sources: [u64; 3],
    malformed: Tally,
    /// Per owned partition, the orders seen but not delivered yet. A set, so that an event
    /// read twice (a redelivery, a duplicate) is not another order; per partition, because
    /// an order's events all live in its key's partition, so a partition that moves takes
    /// its open orders with it. Bounded by the orders open at once, not by the stream.
    open: BTreeMap<i32, HashSet<Uuid>>,
}

impl Analytics {
    pub fn new() -> Analytics {
        Analytics::default()
    }

    fn count(&self, status: Status) -> u64 {
        self.statuses[status.index()]
    }

    /// Counts a valid event, read from `partition`.
    fn observe(&mut self, partition: i32, event: &OrderEvent) {
        self.statuses[event.status.index()] += 1;
        let source = Source::ALL
            .iter()
            .position(|s| *s == event.source)
            .expect("every source is listed");
        self.sources[source] += 1;
        let open = self.open.entry(partition).or_default();
        if event.status == Status::Delivered {
            open.remove(&event.order_id);
        } else {
            open.insert(event.order_id);
        }
    }
}

impl Role for Analytics {
    fn assigned(
        &mut self,
        _partitions: &[PartitionStart],
        _history: &dyn Replay,
        _out: &mut dyn Report,
    ) -> Result<(), RoleError> {
        // Counts are totals of what this member read; nothing belongs to a partition.
        Ok(())
    }

    fn revoked(&mut self, partitions: &[i32], _out: &mut dyn Report) {
        for partition in partitions {
            self.open.remove(partition);
        }
    }

    fn handle(
        &mut self,
        record: &ConsumedRecord<'_>,
        out: &mut dyn Report,
    ) -> Result<(), RoleError> {
        let parsed = OrderEvent::from_record(record.key, record.value);
        if let Ok(event) = &parsed {
            self.observe(record.partition, event);
        }
        out.report(note(
            record,
            plain_outcome(parsed, &mut self.malformed),
            None,
        ));
        Ok(())
    }

    fn malformed(&self) -> (u64, BTreeMap<&'static str, u64>) {
        self.malformed.counts()
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
            // Seen but not yet delivered, in the partitions this member owns.
            in_flight: self.open.values().map(|orders| orders.len() as u64).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::activity::Fanout;

    fn event(order: u128, status: Status) -> (Vec<u8>, Vec<u8>) {
        let id = Uuid::from_u128(order);
        let json = format!(
            r#"{{"event_type":"ORDER_EVENT","order_id":"{id}","user_id":"user_1","status":"{status}","timestamp":"2026-11-21T18:30:05.123Z","source":"WEB"}}"#
        );
        (id.to_string().into_bytes(), json.into_bytes())
    }

    fn handle(analytics: &mut Analytics, partition: i32, order: u128, status: Status) {
        let (key, value) = event(order, status);
        let record = ConsumedRecord {
            topic: "order-events",
            partition,
            offset: 0,
            key: Some(&key),
            value: Some(&value),
            timestamp_ms: None,
        };
        analytics
            .handle(&record, &mut Fanout(Vec::new()))
            .expect("analytics never fails a record");
    }

    fn in_flight(analytics: &Analytics) -> u64 {
        match analytics.counters() {
            RoleCounters::Analytics { in_flight, .. } => in_flight,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_order_read_twice_is_one_order_in_flight() {
        let mut analytics = Analytics::new();
        handle(&mut analytics, 0, 1, Status::Placed);
        handle(&mut analytics, 0, 1, Status::Placed);
        handle(&mut analytics, 0, 1, Status::Confirmed);
        handle(&mut analytics, 1, 2, Status::Placed);
        assert_eq!(in_flight(&analytics), 2);
        handle(&mut analytics, 0, 1, Status::Delivered);
        assert_eq!(in_flight(&analytics), 1);
        // A delivery read again does not make the order negative or open.
        handle(&mut analytics, 0, 1, Status::Delivered);
        assert_eq!(in_flight(&analytics), 1);
    }

    #[test]
    fn a_partition_that_moves_takes_its_open_orders_along() {
        let mut analytics = Analytics::new();
        handle(&mut analytics, 0, 1, Status::Placed);
        handle(&mut analytics, 2, 2, Status::Placed);
        analytics.revoked(&[2], &mut Fanout(Vec::new()));
        assert_eq!(in_flight(&analytics), 1);
    }
}
