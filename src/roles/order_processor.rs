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
use super::{ConsumedRecord, DeadLetterSink, FlushFailure, Replay, Role, RoleError};
use crate::domain::event::OrderEvent;
use crate::domain::lifecycle::{Lifecycles, Violation};
use crate::report::activity::{Activity, Outcome, PartitionStart, Report, RoleCounters};
use crate::report::human;
use crate::shutdown::Shutdown;

/// Delivered orders remembered over all owned partitions, to tell a late duplicate from an
/// order that never started. Duplicates come from retries and re-reads, seconds after the
/// original; 100,000 deliveries are minutes of a class's stream, and keep the role's memory
/// bounded (about 5 MB) however long it runs.
const DELIVERED_KEPT: usize = 100_000;

/// The fewest delivered orders a partition remembers, however many partitions are owned (the
/// development broker can give a topic hundreds).
const DELIVERED_KEPT_PER_PARTITION_AT_LEAST: usize = 100;

/// A partition's share of [`DELIVERED_KEPT`] when `owned` partitions are owned.
fn delivered_kept(owned: usize) -> usize {
    (DELIVERED_KEPT / owned.max(1)).max(DELIVERED_KEPT_PER_PARTITION_AT_LEAST)
}

/// The orders of one partition.
struct PartitionOrders {
    orders: Lifecycles,
    /// Retention removed the partition's oldest records: an order may have started before the
    /// first record still there, so a first event other than PLACED is not a violation.
    truncated: bool,
}

/// The order-processor role.
pub(crate) struct OrderProcessor {
    partitions: HashMap<i32, PartitionOrders>,
    dead_letters: Box<dyn DeadLetterSink>,
    /// Simulated work per record (`--work-ms`), to create lag in a workshop.
    work: Duration,
    /// Ends the simulated work early: a stop request is not kept waiting by it.
    stop: Option<Shutdown>,
    valid: u64,
    violations: Tally,
    malformed: Tally,
    dead_lettered: u64,
    /// Once a flush of the dead letters failed, no later one counts.
    flush_failure: FlushFailure,
}

impl OrderProcessor {
    pub(crate) fn new(dead_letters: Box<dyn DeadLetterSink>, work: Duration) -> OrderProcessor {
        OrderProcessor {
            partitions: HashMap::new(),
            dead_letters,
            work,
            stop: None,
            valid: 0,
            violations: Tally::default(),
            malformed: Tally::default(),
            dead_lettered: 0,
            flush_failure: FlushFailure::default(),
        }
    }

    /// The simulated work ends early at a stop request (Ctrl-C, SIGTERM).
    pub(crate) fn stopping_on(mut self, stop: Shutdown) -> OrderProcessor {
        self.stop = Some(stop);
        self
    }

    /// Waits out the simulated work of one record, or until a stop is requested.
    fn work(&self) {
        const STEP: Duration = Duration::from_millis(10);
        let until = Instant::now() + self.work;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || self.stop.as_ref().is_some_and(Shutdown::requested) {
                return;
            }
            std::thread::sleep(left.min(STEP));
        }
    }

    /// Checks one event against its order's state.
    fn check(&mut self, partition: i32, event: &OrderEvent) -> Result<(), Violation> {
        let keep = delivered_kept(self.partitions.len() + 1);
        let state = self
            .partitions
            .entry(partition)
            .or_insert_with(|| PartitionOrders {
                orders: Lifecycles::keeping_delivered(keep),
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
        let keep = delivered_kept(self.partitions.len() + partitions.len());
        for start in partitions {
            let began = Instant::now();
            let mut orders = Lifecycles::keeping_delivered(keep);
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
        // The partitions owned before share the bound with the new ones.
        let keep = delivered_kept(self.partitions.len());
        for owned in self.partitions.values_mut() {
            owned.orders.keep_delivered(keep);
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
            self.work();
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
        // A record is done only once its dead letter is safely in Kafka; a dead letter that
        // was not is not brought back by a later flush that succeeds.
        self.flush_failure.guard(|| self.dead_letters.flush())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::Status::{self, *};
    use crate::roles::fakes::{
        DEAD_LETTER_TOPIC, FakeDeadLetters, FakeHistory, assign, committed, event, fresh, garbage,
        handle, try_handle,
    };

    #[test]
    fn the_delivered_orders_kept_are_shared_by_the_owned_partitions() {
        assert_eq!(delivered_kept(0), DELIVERED_KEPT);
        assert_eq!(delivered_kept(3), DELIVERED_KEPT / 3);
        assert_eq!(delivered_kept(480), DELIVERED_KEPT / 480);
        assert_eq!(delivered_kept(5_000), DELIVERED_KEPT_PER_PARTITION_AT_LEAST);
    }

    fn processor() -> (OrderProcessor, FakeDeadLetters) {
        let sink = FakeDeadLetters::default();
        (
            OrderProcessor::new(Box::new(sink.clone()), Duration::ZERO),
            sink,
        )
    }

    /// The counters, with violations and dead letters counted by kind as `problems`.
    fn counts(
        valid: u64,
        problems: &[(&'static str, u64)],
        dead_lettered: u64,
        orders_tracked: u64,
    ) -> RoleCounters {
        RoleCounters::OrderProcessor {
            valid,
            violations: problems.iter().map(|(_, n)| n).sum(),
            violations_by_kind: problems.iter().copied().collect(),
            dead_lettered,
            orders_tracked,
        }
    }

    fn tracked(processor: &OrderProcessor) -> u64 {
        let RoleCounters::OrderProcessor { orders_tracked, .. } = processor.counters() else {
            unreachable!("an order-processor counts as one")
        };
        orders_tracked
    }

    /// The outcome of a valid event of order number `order` after `previous`.
    fn order(order: u128, status: Status, previous: Option<Status>) -> Outcome {
        let record = event(0, 0, order, status);
        let event = OrderEvent::from_record(record.key.as_deref(), record.value.as_deref())
            .expect("a valid event");
        Outcome::order(&event, previous)
    }

    #[test]
    fn an_assigned_partition_is_rebuilt_from_its_history_so_a_rebalance_finds_no_violation() {
        let history = FakeHistory::of([
            event(0, 0, 1, Placed),
            event(0, 1, 2, Placed),
            event(0, 2, 1, Confirmed),
            // Read by the next owner, not replayed: the member starts at offset 3.
            event(0, 3, 2, Confirmed),
        ]);
        let (mut processor, sink) = processor();
        let out = assign(&mut processor, &[committed(0, 0, 3, 4)], &history).unwrap();
        assert_eq!(history.asked(), [(0, 0, 3)]);
        let notices = out.notices();
        assert_eq!(notices.len(), 1, "{notices:?}");
        assert!(
            notices[0]
                .starts_with("partition 0: rebuilt the state of 2 orders from offsets 0..3 in "),
            "{notices:?}"
        );

        let out = handle(&mut processor, &event(0, 3, 2, Confirmed));
        assert_eq!(out.outcomes(), [&order(2, Confirmed, Some(Placed))]);
        let out = handle(&mut processor, &event(0, 4, 1, Shipped));
        assert_eq!(out.outcomes(), [&order(1, Shipped, Some(Confirmed))]);
        assert_eq!(out.notes()[0].routed_to, None);
        assert!(sink.sent().is_empty());
        assert_eq!(processor.counters(), counts(2, &[], 0, 2));
    }

    #[test]
    fn problems_in_the_history_only_rebuild_state_and_are_not_dead_lettered_again() {
        let history = FakeHistory::of([
            garbage(0, 0, "not json"),
            event(0, 1, 1, Confirmed),
            event(0, 2, 1, Placed),
        ]);
        let (mut processor, sink) = processor();
        assign(&mut processor, &[committed(0, 0, 3, 3)], &history).unwrap();
        assert!(sink.sent().is_empty());
        assert_eq!(processor.malformed(), (0, BTreeMap::new()));
        assert_eq!(processor.counters(), counts(0, &[], 0, 1));
        // The furthest step seen was CONFIRMED: SHIPPED follows it.
        let out = handle(&mut processor, &event(0, 3, 1, Shipped));
        assert_eq!(out.outcomes(), [&order(1, Shipped, Some(Confirmed))]);
    }

    #[test]
    fn a_partition_with_nothing_before_its_start_is_not_replayed_or_announced() {
        let history = FakeHistory::of([event(0, 0, 1, Placed)]);
        let (mut processor, _sink) = processor();
        let out = assign(&mut processor, &[fresh(0, 0, 1), fresh(1, 0, 0)], &history).unwrap();
        assert!(out.0.is_empty(), "{:?}", out.0);
        assert_eq!(tracked(&processor), 0);
    }

    #[test]
    fn a_history_that_cannot_be_read_stops_the_assignment() {
        let (mut processor, _sink) = processor();
        let failing = FakeHistory::failing();
        let error = assign(&mut processor, &[committed(0, 0, 3, 3)], &failing).unwrap_err();
        assert_eq!(error.to_string(), "the history cannot be read");
    }

    #[test]
    fn a_malformed_record_goes_to_the_dead_letters_with_its_kind() {
        let (mut processor, sink) = processor();
        let record = garbage(2, 7, "{\"event_type\": ");
        let out = handle(&mut processor, &record);
        let error =
            OrderEvent::from_record(record.key.as_deref(), record.value.as_deref()).unwrap_err();
        assert_eq!(out.outcomes(), [&Outcome::Malformed(error.clone())]);
        let note = out.notes()[0];
        assert_eq!(note.routed_to.as_deref(), Some(DEAD_LETTER_TOPIC));
        assert_eq!((note.partition, note.offset), (2, 7));
        let sent = sink.sent();
        assert_eq!(sent.len(), 1);
        assert_eq!((sent[0].partition, sent[0].offset), (2, 7));
        assert_eq!(sent[0].reason, "not-json");
        assert_eq!(sent[0].error, error.to_string());
        assert_eq!(
            processor.malformed(),
            (1, BTreeMap::from([("not-json", 1)]))
        );
        assert_eq!(processor.counters(), counts(0, &[], 1, 0));
    }

    #[test]
    fn a_violation_goes_to_the_dead_letters_with_its_kind() {
        let (mut processor, sink) = processor();
        handle(&mut processor, &event(0, 0, 1, Placed));
        let out = handle(&mut processor, &event(0, 1, 1, Shipped));
        let violation = Violation::Skipped {
            from: Placed,
            to: Shipped,
        };
        assert_eq!(
            out.outcomes(),
            [&Outcome::Violation {
                order_id: uuid::Uuid::from_u128(1),
                status: Shipped,
                violation,
            }]
        );
        assert_eq!(out.notes()[0].routed_to.as_deref(), Some(DEAD_LETTER_TOPIC));
        let sent = sink.sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].offset, 1);
        assert_eq!(sent[0].reason, "skipped-status");
        assert_eq!(sent[0].error, "skipped CONFIRMED (PLACED → SHIPPED)");
        // A duplicate and an order that does not start with PLACED are violations too.
        handle(&mut processor, &event(0, 2, 1, Shipped));
        handle(&mut processor, &event(0, 3, 2, Confirmed));
        let problems = [
            ("duplicate-status", 1),
            ("first-not-placed", 1),
            ("skipped-status", 1),
        ];
        assert_eq!(processor.counters(), counts(1, &problems, 3, 2));
        assert_eq!(processor.malformed(), (0, BTreeMap::new()));
    }

    #[test]
    fn in_a_partition_retention_truncated_an_order_may_start_after_placed() {
        let (mut processor, sink) = processor();
        let starts = [fresh(0, 5, 9), fresh(1, 0, 9)];
        assign(&mut processor, &starts, &FakeHistory::default()).unwrap();
        let out = handle(&mut processor, &event(0, 5, 1, Shipped));
        assert_eq!(out.outcomes(), [&order(1, Shipped, None)]);
        // Where the partition is whole, it is a violation.
        handle(&mut processor, &event(1, 0, 2, Shipped));
        assert_eq!(sink.sent()[0].reason, "first-not-placed");
        assert_eq!(
            processor.counters(),
            counts(1, &[("first-not-placed", 1)], 1, 2)
        );
    }

    #[test]
    fn a_dead_letter_the_sink_refuses_stops_the_processor() {
        let (mut processor, sink) = processor();
        sink.fail_sends();
        let (error, out) = try_handle(&mut processor, &garbage(0, 0, "")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the dead-letter topic refused the record"
        );
        assert!(out.0.is_empty(), "nothing is reported done: {:?}", out.0);
        // A violation it refuses too.
        let (_, out) = try_handle(&mut processor, &event(0, 1, 1, Delivered)).unwrap_err();
        assert!(out.0.is_empty(), "{:?}", out.0);
        let RoleCounters::OrderProcessor { dead_lettered, .. } = processor.counters() else {
            unreachable!()
        };
        assert_eq!(dead_lettered, 0);
    }

    #[test]
    fn flush_is_the_sinks_flush_and_fails_with_it() {
        let (mut processor, sink) = processor();
        processor.flush().unwrap();
        assert_eq!(sink.flushes(), 1);
        sink.fail_flushes();
        let error = processor.flush().unwrap_err();
        assert_eq!(error.to_string(), "a dead letter was not acknowledged");
        assert_eq!(sink.flushes(), 2);
    }

    #[test]
    fn once_a_flush_failed_no_later_flush_succeeds() {
        // The sink refuses one flush (a dead letter was not acknowledged), then would accept
        // the next: the refused dead letter is not in Kafka, so the record it stands for is
        // not done, whatever later flushes say.
        let (mut processor, sink) = processor();
        handle(&mut processor, &garbage(0, 0, "{}"));
        sink.fail_next_flush();
        let first = processor.flush().unwrap_err().to_string();
        assert_eq!(first, "a dead letter was not acknowledged");
        let again = processor.flush().unwrap_err().to_string();
        assert_eq!(
            again,
            "an earlier flush failed (a dead letter was not acknowledged): nothing handled \
             since counts as done"
        );
        assert_eq!(sink.flushes(), 1, "the sink is not asked again");
    }

    #[test]
    fn a_revoked_partition_takes_its_orders_along() {
        let (mut processor, _sink) = processor();
        handle(&mut processor, &event(0, 0, 1, Placed));
        handle(&mut processor, &event(1, 0, 2, Placed));
        assert_eq!(tracked(&processor), 2);
        processor.revoked(&[0], &mut crate::roles::fakes::Reports::default());
        assert_eq!(tracked(&processor), 1);
        // The order's state left with its partition: its next step is no longer known.
        let out = handle(&mut processor, &event(0, 1, 1, Confirmed));
        assert!(
            matches!(
                out.outcomes()[0],
                Outcome::Violation {
                    violation: Violation::FirstNotPlaced { first: Confirmed },
                    ..
                }
            ),
            "{:?}",
            out.outcomes()
        );
    }

    proptest::proptest! {
        /// Whatever offset a member takes a partition over at, rebuilding from the history
        /// gives every later record the verdict a member that read the whole partition gave.
        #[test]
        fn a_member_taking_over_anywhere_judges_as_one_that_read_it_all(
            seed in 0u64..1_000,
            len in 1usize..120,
            split in 0usize..120,
            repeats in proptest::collection::vec(0usize..120, 0..6),
        ) {
            let mut generator = crate::domain::generator::OrderGenerator::new(seed);
            let mut events: Vec<OrderEvent> =
                (0..len).map(|_| generator.next_event(chrono::Utc::now())).collect();
            // Some events read twice (a producer retry): duplicates, reported as violations.
            for at in repeats {
                if at < events.len() {
                    events.insert(at, events[at].clone());
                }
            }
            let records: Vec<_> = events
                .iter()
                .enumerate()
                .map(|(offset, e)| {
                    let mut record = event(0, offset as i64, e.order_id.as_u128(), e.status);
                    record.value = Some(e.to_json().into_bytes());
                    record
                })
                .collect();
            let split = split.min(records.len());
            let end = records.len() as i64;

            let (mut whole, _) = processor();
            let judged: Vec<Outcome> = records
                .iter()
                .map(|r| handle(&mut whole, r).outcomes()[0].clone())
                .collect();

            let (mut next, _) = processor();
            let history = FakeHistory::of(records[..split].to_vec());
            let starts = [committed(0, 0, split as i64, end)];
            assign(&mut next, &starts, &history).unwrap();
            for (record, verdict) in records[split..].iter().zip(&judged[split..]) {
                let out = handle(&mut next, record);
                proptest::prop_assert_eq!(out.outcomes()[0], verdict);
            }
        }
    }
}
