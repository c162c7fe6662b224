//! Seeded fake order lifecycles and rate pacing. No Kafka here: `produce` and `produce --stdout`
//! both draw from [`OrderGenerator`] and wait on `Pacer`.
//!
//! The stream should look like a shop, not noise: a pool of open orders, new ones arriving,
//! each keeping its user and source and moving one lifecycle step at a time after a random
//! delay. Delays are counted in events, not seconds, so a seed gives the same sequence of
//! orders at any rate, on any machine; only the timestamps come from the wall clock.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use fake::Fake;
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use uuid::Uuid;

use crate::domain::event::{MillisTimestamps, OrderEvent, OrderKey, Source, Status, encode_fields};

/// How many events an order waits, at least and at most, before its next step. Later steps
/// take longer, as shipping does, so many orders are in flight at once.
const STEP_DELAY: [(u64, u64); 3] = [
    (3, 30),   // PLACED → CONFIRMED
    (10, 120), // CONFIRMED → SHIPPED
    (20, 200), // SHIPPED → DELIVERED
];

/// Customers are `user_1` … `user_5000`; a fifth of orders come from 50 regulars, so
/// `audit` and analytics show repeat customers.
const CUSTOMERS: u32 = 5_000;
const REGULARS: u32 = 50;

/// Channel mix, in percent: WEB, MOBILE, API.
const SOURCE_WEIGHTS: [(Source, u32); 3] =
    [(Source::Web, 50), (Source::Mobile, 35), (Source::Api, 15)];

/// An order that has not been delivered yet.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OpenOrder {
    /// When (in events since the start) the order takes its next step.
    due: u64,
    /// Creation number: breaks ties between orders due at the same event, deterministically.
    seq: u64,
    id: Uuid,
    user: u32,
    source: Source,
    status: Status,
}

impl Ord for OpenOrder {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

impl PartialOrd for OpenOrder {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Generates order events from a seed: the same seed gives the same orders (ids, users,
/// statuses, sources) in the same sequence.
pub struct OrderGenerator {
    rng: ChaCha8Rng,
    /// Events generated so far; the clock that step delays are measured in.
    tick: u64,
    /// Orders created so far.
    created: u64,
    /// Open orders, the one due first on top.
    open: BinaryHeap<Reverse<OpenOrder>>,
}

impl OrderGenerator {
    pub fn new(seed: u64) -> OrderGenerator {
        OrderGenerator {
            rng: ChaCha8Rng::seed_from_u64(seed),
            tick: 0,
            created: 0,
            open: BinaryHeap::new(),
        }
    }

    /// The next event, stamped with `now` (truncated to milliseconds, as on the wire).
    pub fn next_event(&mut self, now: DateTime<Utc>) -> OrderEvent {
        let timestamp = now
            .duration_trunc(TimeDelta::milliseconds(1))
            .unwrap_or(now);
        self.next_step().at(timestamp)
    }

    /// The next order step, without a timestamp: what [`OrderGenerator::next_event`] returns,
    /// for a sender that encodes it with [`OrderStep::encode_into`] rather than building an
    /// [`OrderEvent`] (and its user id `String`) first.
    pub fn next_step(&mut self) -> OrderStep {
        let due_now = self.open.peek().is_some_and(|o| o.0.due <= self.tick);
        let order = if due_now {
            let Reverse(mut order) = self.open.pop().expect("peeked");
            order.status = order.status.next().expect("open orders are not delivered");
            order
        } else {
            self.new_order()
        };
        let step = OrderStep {
            order_id: order.id,
            user: order.user,
            status: order.status,
            source: order.source,
        };
        if !order.status.is_final() {
            let (min, max) = STEP_DELAY[order.status.index()];
            let due = self.tick + self.rng.random_range(min..=max);
            self.open.push(Reverse(OpenOrder { due, ..order }));
        }
        self.tick += 1;
        step
    }

    fn new_order(&mut self) -> OpenOrder {
        let id = uuid::Builder::from_random_bytes(self.rng.random()).into_uuid();
        let user = if self.rng.random_bool(0.2) {
            (1..=REGULARS).fake_with_rng(&mut self.rng)
        } else {
            (1..=CUSTOMERS).fake_with_rng(&mut self.rng)
        };
        let mut pick = self.rng.random_range(0..100);
        let mut source = Source::Web;
        for (candidate, weight) in SOURCE_WEIGHTS {
            if pick < weight {
                source = candidate;
                break;
            }
            pick -= weight;
        }
        self.created += 1;
        OpenOrder {
            due: self.tick,
            seq: self.created,
            id,
            user,
            source,
            status: Status::Placed,
        }
    }
}

/// One step of an order as the generator draws it: an [`OrderEvent`] without its timestamp,
/// with the user as a number (`user_870` is user 870).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderStep {
    /// The order; also the record key.
    pub order_id: Uuid,
    /// The customer's number, 1 to 5,000.
    pub user: u32,
    /// The lifecycle step.
    pub status: Status,
    /// The channel the order came through.
    pub source: Source,
}

impl OrderStep {
    /// The event of this step, stamped `timestamp`.
    pub fn at(&self, timestamp: DateTime<Utc>) -> OrderEvent {
        OrderEvent {
            order_id: self.order_id,
            user_id: format!("user_{}", self.user),
            status: self.status,
            timestamp,
            source: self.source,
        }
    }

    /// Appends the wire JSON of the event stamped `millis` milliseconds after the Unix epoch:
    /// the bytes `self.at(that time).encode_into(out)` writes, without allocating. `key` is
    /// this step's record key, which the caller needs too and so makes once.
    pub fn encode_into(
        &self,
        key: &OrderKey,
        clock: &mut MillisTimestamps,
        millis: i64,
        out: &mut Vec<u8>,
    ) {
        encode_fields(
            out,
            key,
            |out| {
                out.extend_from_slice(b"\"user_");
                write_decimal(out, self.user);
                out.push(b'"');
            },
            self.status,
            |out| clock.write(out, millis),
            self.source,
        );
    }
}

/// Appends `value` in decimal, as `format!("{value}")` would.
fn write_decimal(out: &mut Vec<u8>, mut value: u32) {
    let mut digits = [0u8; 10];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// Paces events at a fixed rate: event `n` (from 0) is due `n / rate` seconds after the start.
/// Working from the start time rather than from the previous event means a late wake-up is
/// caught up at once instead of slowing the whole run down.
#[derive(Debug, Clone)]
pub(crate) struct Pacer {
    start: Instant,
    /// Events per second; `None` = as fast as possible.
    rate: Option<f64>,
}

impl Pacer {
    /// `rate` in events per second; 0 means no pacing.
    pub fn new(rate: f64, start: Instant) -> Pacer {
        Pacer {
            start,
            rate: (rate > 0.0).then_some(rate),
        }
    }

    /// How many events (in total, from the start) may have been sent by `now`.
    pub(crate) fn allowed(&self, now: Instant) -> u64 {
        match self.rate {
            None => u64::MAX,
            // +1: event 0 is due at the start itself.
            Some(rate) => {
                (now.saturating_duration_since(self.start).as_secs_f64() * rate) as u64 + 1
            }
        }
    }

    /// When event number `n` (from 0) is due.
    pub(crate) fn due(&self, n: u64) -> Instant {
        match self.rate {
            None => self.start,
            Some(rate) => self.start + Duration::from_secs_f64(n as f64 / rate),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lifecycle::Lifecycles;

    fn run(seed: u64, n: usize) -> Vec<OrderEvent> {
        let mut generator = OrderGenerator::new(seed);
        let now = Utc::now();
        (0..n).map(|_| generator.next_event(now)).collect()
    }

    #[test]
    fn same_seed_same_orders_other_seed_other_orders() {
        let strip = |events: Vec<OrderEvent>| {
            events
                .into_iter()
                .map(|e| (e.order_id, e.user_id, e.status, e.source))
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(run(1, 2_000)), strip(run(1, 2_000)));
        assert_ne!(strip(run(1, 100)), strip(run(2, 100)));
    }

    #[test]
    fn seed_one_is_stable_across_machines_and_releases() {
        // README shows `produce --stdout --count 5 --seed 1`; if this changes, so do the docs
        // and every learner's notes. Change it only on purpose.
        let first_five: Vec<_> = run(1, 5)
            .iter()
            .map(|e| {
                (
                    e.key().as_str().to_owned(),
                    e.user_id.clone(),
                    e.status,
                    e.source,
                )
            })
            .collect();
        let expected = [
            (
                "b1ea6bd8-6503-42dc-a553-583617e08e42",
                "user_870",
                Source::Mobile,
            ),
            (
                "e35e23e5-a10b-42bf-9dda-dd310bb2797c",
                "user_4",
                Source::Web,
            ),
            (
                "e1a956a1-4a1b-4e01-8ef4-e2632f760f56",
                "user_1068",
                Source::Mobile,
            ),
            (
                "9bd6628e-fc39-444b-ae43-5b36702486b8",
                "user_18",
                Source::Api,
            ),
            (
                "0b6514ba-db56-4d7b-a0ec-ba6f595c81d3",
                "user_2978",
                Source::Api,
            ),
        ]
        .map(|(id, user, source)| (id.to_owned(), user.to_owned(), Status::Placed, source));
        assert_eq!(first_five, expected);
    }

    #[test]
    fn every_order_follows_its_lifecycle_and_keeps_user_and_source() {
        let mut orders = Lifecycles::new();
        let mut identity = std::collections::HashMap::new();
        for event in run(7, 50_000) {
            orders
                .observe(event.order_id, event.status)
                .unwrap_or_else(|v| panic!("{v} for {}", event.order_id));
            let who = identity
                .entry(event.order_id)
                .or_insert((event.user_id.clone(), event.source));
            assert_eq!(*who, (event.user_id.clone(), event.source));
        }
        // A shop, not a queue: many orders open at once, most of them finished eventually.
        assert!(orders.in_flight() > 20, "{}", orders.in_flight());
        assert!(orders.len() - orders.in_flight() > orders.len() * 9 / 10);
    }

    #[test]
    fn the_stream_mixes_statuses_and_sources() {
        let events = run(3, 20_000);
        for status in Status::ALL {
            let share = events.iter().filter(|e| e.status == status).count() as f64 / 20_000.0;
            assert!((0.2..0.3).contains(&share), "{status}: {share}");
        }
        for (source, weight) in SOURCE_WEIGHTS {
            let share = events.iter().filter(|e| e.source == source).count() as f64 / 20_000.0;
            assert!(
                (share * 100.0 - weight as f64).abs() < 5.0,
                "{source}: {share}"
            );
        }
    }

    #[test]
    fn a_step_encodes_to_the_bytes_of_its_event() {
        let mut steps = OrderGenerator::new(11);
        let mut events = OrderGenerator::new(11);
        let mut clock = MillisTimestamps::default();
        let millis = 1_795_000_000_123;
        let now = DateTime::from_timestamp_millis(millis).unwrap();
        for _ in 0..2_000 {
            let step = steps.next_step();
            let event = events.next_event(now);
            let (mut fast, mut slow) = (Vec::new(), Vec::new());
            step.encode_into(&OrderKey::new(step.order_id), &mut clock, millis, &mut fast);
            event.encode_into(&mut slow);
            assert_eq!(fast, slow);
        }
        for value in [0, 7, 10, 99, 5_000, u32::MAX] {
            let mut out = Vec::new();
            write_decimal(&mut out, value);
            assert_eq!(out, value.to_string().as_bytes());
        }
    }

    #[test]
    fn pacer_spreads_events_evenly_from_the_start() {
        let start = Instant::now();
        let pacer = Pacer::new(20.0, start);
        assert_eq!(pacer.allowed(start), 1);
        assert_eq!(pacer.allowed(start + Duration::from_millis(49)), 1);
        assert_eq!(pacer.allowed(start + Duration::from_millis(50)), 2);
        assert_eq!(pacer.allowed(start + Duration::from_secs(10)), 201);
        assert_eq!(pacer.due(20), start + Duration::from_secs(1));
        let flat_out = Pacer::new(0.0, start);
        assert_eq!(flat_out.allowed(start), u64::MAX);
    }
}
