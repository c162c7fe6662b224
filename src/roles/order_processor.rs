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

use super::outcome::{Tally, note};
use super::{ConsumedRecord, DeadLetterSink, Replay, Role, RoleError};
use crate::domain::event::OrderEvent;
use crate::domain::lifecycle::{Lifecycles, Violation};
use crate::report::activity::{Activity, Outcome, PartitionStart, Report, RoleCounters};
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
    violations: Tally,
    malformed: Tally,
    dead_lettered: u64,
}

impl OrderProcessor {
    pub fn new(dead_letters: Box<dyn DeadLetterSink>, work: Duration) -> OrderProcessor {
        OrderProcessor {
            partitions: HashMap::new(),
            dead_letters,
            work,
            valid: 0,
            violations: Tally::default(),
            malformed: Tally::default(),
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

    /// Sends `record` to the dead-letter topic, with the kind of problem and its words;
    /// returns where it went, for the record's note.
    fn dead_letter(
        &mut self,
        record: &ConsumedRecord<'_>,
        kind: &str,
        problem: &dyn std::fmt::Display,
    ) -> Result<Option<String>, RoleError> {
        self.dead_letters.send(record, kind, &problem.to_string())?;
        self.dead_lettered += 1;
        Ok(Some(self.dead_letters.topic().to_owned()))
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
        let (outcome, routed_to) = match OrderEvent::from_record(record.key, record.value) {
            Err(error) => {
                self.malformed.add(error.kind());
                let routed_to = self.dead_letter(record, error.kind(), &error)?;
                (Outcome::Malformed(error), routed_to)
            }
            Ok(event) => {
                let previous = self
                    .partitions
                    .get(&record.partition)
                    .and_then(|p| p.orders.status(&event.order_id));
                match self.check(record.partition, &event) {
                    Ok(()) => {
                        self.valid += 1;
                        (Outcome::order(&event, previous), None)
                    }
                    Err(violation) => {
                        self.violations.add(violation.kind());
                        let routed_to = self.dead_letter(record, violation.kind(), &violation)?;
                        let outcome = Outcome::Violation {
                            order_id: event.order_id,
                            status: event.status,
                            violation,
                        };
                        (outcome, routed_to)
                    }
                }
            }
        };
        out.report(note(record, outcome, routed_to));
        Ok(())
    }

    fn flush(&mut self) -> Result<(), RoleError> {
        // A record is done only once its dead letter is safely in Kafka.
        self.dead_letters.flush()
    }

    fn malformed(&self) -> (u64, BTreeMap<&'static str, u64>) {
        self.malformed.counts()
    }

    fn counters(&self) -> RoleCounters {
        RoleCounters::OrderProcessor {
            valid: self.valid,
            violations: self.violations.total(),
            violations_by_kind: self.violations.by_kind().clone(),
            dead_lettered: self.dead_lettered,
            orders_tracked: self
                .partitions
                .values()
                .map(|p| p.orders.len() as u64)
                .sum(),
        }
    }
}
