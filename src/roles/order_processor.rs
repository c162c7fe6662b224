//! `orderflow order-processor`: follows every order through its lifecycle and reports what
//! breaks it (a skipped step, a step backwards, a duplicate, an order that does not start with
//! PLACED). Malformed records and violations go to the dead-letter topic; the processor never
//! stops on them.
//!
//! The key pins an order to a partition, so an order's state belongs to its partition: when a
//! partition is assigned, its state is rebuilt from the partition's history (up to where this
//! member starts) before any new record is processed, so a rebalance never produces false
//! violations; when it is revoked, the state is dropped.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::DeadLetterSink;
use super::{ConsumedRecord, Replay, Role, RoleError};
use crate::domain::event::OrderEvent;
use crate::domain::lifecycle::{Lifecycles, Violation};
use crate::report::activity::{
    Activity, Outcome, PartitionStart, RecordNote, Report, RoleCounters,
};
use crate::report::human;

/// The orders of one partition.
struct PartitionOrders {
    orders: Lifecycles,
    /// Retention removed the partition's oldest records: an order may have started before the
    /// first record still there, so a first event other than PLACED is not a violation.
    truncated: bool,
}

/// The order-processor role.
pub struct OrderProcessor {
    partitions: HashMap<i32, PartitionOrders>,
    dead_letters: Box<dyn DeadLetterSink>,
    /// Simulated work per record (`--work-ms`), to create lag in a workshop.
    work: Duration,
    valid: u64,
    violations: u64,
    violations_by_kind: BTreeMap<&'static str, u64>,
    malformed: u64,
    malformed_by_kind: BTreeMap<&'static str, u64>,
    dead_lettered: u64,
}

impl OrderProcessor {
    pub fn new(dead_letters: Box<dyn DeadLetterSink>, work: Duration) -> OrderProcessor {
        OrderProcessor {
            partitions: HashMap::new(),
            dead_letters,
            work,
            valid: 0,
            violations: 0,
            violations_by_kind: BTreeMap::new(),
            malformed: 0,
            malformed_by_kind: BTreeMap::new(),
            dead_lettered: 0,
        }
    }

    /// Checks one event against its order's state.
    fn check(&mut self, partition: i32, event: &OrderEvent) -> Result<(), Violation> {
        let state = self
            .partitions
            .entry(partition)
            .or_insert_with(|| PartitionOrders {
                orders: Lifecycles::new(),
                truncated: false,
            });
        match state.orders.observe(event.order_id, event.status) {
            Err(Violation::FirstNotPlaced { .. }) if state.truncated => Ok(()),
            verdict => verdict,
        }
    }
}

impl Role for OrderProcessor {
    fn assigned(
        &mut self,
        partitions: &[PartitionStart],
        history: &dyn Replay,
        out: &mut dyn Report,
    ) -> Result<(), RoleError> {
        for start in partitions {
            let began = Instant::now();
            let mut orders = Lifecycles::new();
            let replayed =
                history.replay(start.partition, start.low, start.start, &mut |record| {
                    // Only the state matters here: problems in the history were reported (and
                    // dead-lettered) by whoever processed those records.
                    if let Ok(event) = OrderEvent::from_record(record.key, record.value) {
                        let _ = orders.observe(event.order_id, event.status);
                    }
                })?;
            if replayed > 0 {
                out.report(Activity::Notice(format!(
                    "partition {}: rebuilt the state of {} orders from offsets {}..{} in {}",
                    start.partition,
                    human::count(orders.len() as u64),
                    start.low,
                    start.start,
                    human::duration(began.elapsed())
                )));
            }
            self.partitions.insert(
                start.partition,
                PartitionOrders {
                    orders,
                    truncated: start.low > 0,
                },
            );
        }
        Ok(())
    }

    fn revoked(&mut self, partitions: &[i32], _out: &mut dyn Report) {
        for partition in partitions {
            self.partitions.remove(partition);
        }
    }

    fn handle(
        &mut self,
        record: &ConsumedRecord<'_>,
        out: &mut dyn Report,
    ) -> Result<(), RoleError> {
        if !self.work.is_zero() {
            std::thread::sleep(self.work);
        }
        let mut routed_to = None;
        let outcome = match OrderEvent::from_record(record.key, record.value) {
            Err(error) => {
                self.malformed += 1;
                *self.malformed_by_kind.entry(error.kind()).or_default() += 1;
                self.dead_letters
                    .send(record, error.kind(), &error.to_string())?;
                self.dead_lettered += 1;
                routed_to = Some(self.dead_letters.topic().to_owned());
                Outcome::Malformed(error)
            }
            Ok(event) => {
                let previous = self
                    .partitions
                    .get(&record.partition)
                    .and_then(|p| p.orders.status(&event.order_id));
                match self.check(record.partition, &event) {
                    Ok(()) => {
                        self.valid += 1;
                        Outcome::Order {
                            order_id: event.order_id,
                            status: event.status,
                            source: event.source,
                            previous,
                        }
                    }
                    Err(violation) => {
                        self.violations += 1;
                        *self.violations_by_kind.entry(violation.kind()).or_default() += 1;
                        self.dead_letters
                            .send(record, violation.kind(), &violation.to_string())?;
                        self.dead_lettered += 1;
                        routed_to = Some(self.dead_letters.topic().to_owned());
                        Outcome::Violation {
                            order_id: event.order_id,
                            status: event.status,
                            violation,
                        }
                    }
                }
            }
        };
        out.report(Activity::Record(RecordNote {
            partition: record.partition,
            offset: record.offset,
            outcome,
            routed_to,
        }));
        Ok(())
    }

    fn flush(&mut self) -> Result<(), RoleError> {
        // A record is done only once its dead letter is safely in Kafka.
        self.dead_letters.flush()
    }

    fn malformed(&self) -> (u64, BTreeMap<&'static str, u64>) {
        (self.malformed, self.malformed_by_kind.clone())
    }

    fn counters(&self) -> RoleCounters {
        RoleCounters::OrderProcessor {
            valid: self.valid,
            violations: self.violations,
            violations_by_kind: self.violations_by_kind.clone(),
            dead_lettered: self.dead_lettered,
            orders_tracked: self
                .partitions
                .values()
                .map(|p| p.orders.len() as u64)
                .sum(),
        }
    }
}
