//! `orderflow analytics`: counts what the shop does — events per status and per source,
//! orders completed and in flight, malformed records.

use std::collections::{BTreeMap, HashSet};

use uuid::Uuid;

use super::outcome::{Tally, note, plain_outcome};
use super::{ConsumedRecord, Replay, Role, RoleError};
use crate::domain::event::{OrderEvent, Source, Status};
use crate::domain::payment::{Decision, PaymentEvent};
use crate::report::activity::{PartitionStart, Report, RoleCounters};

/// The analytics role's counters.
#[derive(Debug, Default)]
pub(crate) struct Analytics {
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
    /// Payment events (`orderflow payments`' output), approved and declined: analytics run
    /// on the payments topic counts the stage's decisions.
    payments: [u64; 2],
}

impl Analytics {
    pub(crate) fn new() -> Analytics {
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
        if parsed.is_err()
            && let Some(value) = record.value
            && let Ok(payment) = PaymentEvent::from_record(record.key, value)
        {
            // Not an order, nor malformed: a payment, counted by decision (no record note,
            // whose outcomes are those of orders).
            self.payments[usize::from(payment.decision == Decision::Declined)] += 1;
            return Ok(());
        }
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
            payments: if self.payments == [0, 0] {
                BTreeMap::new()
            } else {
                BTreeMap::from([
                    (Decision::Approved.as_str(), self.payments[0]),
                    (Decision::Declined.as_str(), self.payments[1]),
                ])
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::activity::Outcome;
    use crate::roles::fakes::{FakeHistory, Reports, assign, event, fresh, garbage, handle};
    use Status::*;

    /// Analytics after reading `events`, as (partition, order number, status).
    fn after(events: &[(i32, u128, Status)]) -> Analytics {
        let mut analytics = Analytics::new();
        read(&mut analytics, events);
        analytics
    }

    fn read(analytics: &mut Analytics, events: &[(i32, u128, Status)]) {
        for &(partition, order, status) in events {
            handle(analytics, &event(partition, 0, order, status));
        }
    }

    fn in_flight(analytics: &Analytics) -> u64 {
        let RoleCounters::Analytics { in_flight, .. } = analytics.counters() else {
            unreachable!("analytics counts as analytics")
        };
        in_flight
    }

    #[test]
    fn counts_events_by_status_and_source_and_completed_orders() {
        // The fake records' source is WEB, MOBILE, API by order number, from 0.
        let analytics = after(&[
            (0, 0, Placed),
            (0, 0, Confirmed),
            (1, 1, Placed),
            (0, 0, Shipped),
            (0, 0, Delivered),
            (2, 5, Placed),
        ]);
        assert_eq!(
            analytics.counters(),
            RoleCounters::Analytics {
                statuses: BTreeMap::from([
                    ("PLACED", 3),
                    ("CONFIRMED", 1),
                    ("SHIPPED", 1),
                    ("DELIVERED", 1)
                ]),
                sources: BTreeMap::from([("WEB", 4), ("MOBILE", 1), ("API", 1)]),
                completed: 1,
                in_flight: 2,
                payments: BTreeMap::new(),
            }
        );
        assert_eq!(analytics.malformed(), (0, BTreeMap::new()));
    }

    #[test]
    fn every_record_is_noted_and_malformed_ones_are_counted_by_kind() {
        let mut analytics = Analytics::new();
        let out = handle(&mut analytics, &event(3, 41, 1, Placed));
        let notes = out.notes();
        assert_eq!((notes[0].partition, notes[0].offset), (3, 41));
        assert_eq!(
            notes[0].outcome,
            Outcome::Order {
                order_id: Uuid::from_u128(1),
                status: Placed,
                source: Source::Mobile,
                previous: None,
            }
        );
        assert_eq!(notes[0].routed_to, None);
        for value in ["", "[]", "{}", ""] {
            let out = handle(&mut analytics, &garbage(3, 42, value));
            assert!(matches!(out.outcomes()[0], Outcome::Malformed(_)));
        }
        assert_eq!(
            analytics.malformed(),
            (
                4,
                BTreeMap::from([("empty", 2), ("missing-field", 1), ("not-an-object", 1)])
            )
        );
        let RoleCounters::Analytics { statuses, .. } = analytics.counters() else {
            unreachable!()
        };
        assert_eq!(statuses.values().sum::<u64>(), 1);
    }

    #[test]
    fn an_assignment_reads_no_history_and_reports_nothing() {
        let history = FakeHistory::of([event(0, 0, 1, Placed)]);
        let out = assign(&mut Analytics::new(), &[fresh(0, 0, 1)], &history).unwrap();
        assert!(history.asked().is_empty());
        assert!(out.0.is_empty());
    }

    #[test]
    fn an_order_read_twice_is_one_order_in_flight() {
        let mut analytics = after(&[(0, 1, Placed), (0, 1, Placed), (0, 1, Confirmed)]);
        read(&mut analytics, &[(1, 2, Placed)]);
        assert_eq!(in_flight(&analytics), 2);
        read(&mut analytics, &[(0, 1, Delivered)]);
        assert_eq!(in_flight(&analytics), 1);
        // A delivery read again does not make the order negative or open.
        read(&mut analytics, &[(0, 1, Delivered)]);
        assert_eq!(in_flight(&analytics), 1);
    }

    #[test]
    fn a_partition_that_moves_takes_its_open_orders_along() {
        let mut analytics = after(&[(0, 1, Placed), (2, 2, Placed)]);
        analytics.revoked(&[2], &mut Reports::default());
        assert_eq!(in_flight(&analytics), 1);
    }

    #[test]
    fn payments_are_counted_by_decision_not_as_malformed() {
        use crate::domain::payment::Semantics;
        use crate::roles::payments::Payments;
        use crate::roles::{Processed, Stage};

        let mut analytics = Analytics::new();
        for (order, rate) in [(1, 0.0), (2, 0.0), (3, 1.0)] {
            let placed = event(0, order as i64, order, Placed);
            let stage = Payments::new(1, rate, Semantics::ExactlyOnce).expect("a rate");
            let Processed::Emit { key, value, .. } = stage.process(&placed.consumed()) else {
                panic!("a PLACED order is paid");
            };
            let payment = crate::roles::fakes::StoredRecord {
                partition: 0,
                offset: order as i64,
                key: Some(key),
                value: Some(value),
                timestamp_ms: None,
            };
            let out = handle(&mut analytics, &payment);
            assert!(out.notes().is_empty(), "a payment is not an order's note");
        }
        let RoleCounters::Analytics { payments, .. } = analytics.counters() else {
            unreachable!()
        };
        assert_eq!(payments, BTreeMap::from([("APPROVED", 2), ("DECLINED", 1)]));
        assert_eq!(analytics.malformed().0, 0);
    }
}
