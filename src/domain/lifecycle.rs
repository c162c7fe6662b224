//! The order lifecycle PLACED → CONFIRMED → SHIPPED → DELIVERED: the one place that says which
//! step may follow which. The generator obeys it; order-processor and `audit verify` check it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;

use uuid::Uuid;

use crate::domain::event::Status;

impl Status {
    /// The step that must follow this one, or `None` once the order is delivered.
    pub(crate) const fn next(self) -> Option<Status> {
        match self {
            Status::Placed => Some(Status::Confirmed),
            Status::Confirmed => Some(Status::Shipped),
            Status::Shipped => Some(Status::Delivered),
            Status::Delivered => None,
        }
    }

    /// Whether an order with this status is finished.
    pub(crate) const fn is_final(self) -> bool {
        matches!(self, Status::Delivered)
    }
}

/// An event that breaks the lifecycle of its order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    /// The first event seen for an order is not PLACED.
    FirstNotPlaced { first: Status },
    /// The order jumped ahead, e.g. PLACED → SHIPPED skips CONFIRMED.
    Skipped { from: Status, to: Status },
    /// The order went back to an earlier step.
    Backwards { from: Status, to: Status },
    /// The same step was reported twice.
    Duplicate { status: Status },
}

impl Violation {
    /// A short, stable name for the kind of violation (counters, `--json`, DLQ headers).
    pub(crate) const fn kind(&self) -> &'static str {
        match self {
            Violation::FirstNotPlaced { .. } => "first-not-placed",
            Violation::Skipped { .. } => "skipped-status",
            Violation::Backwards { .. } => "went-backwards",
            Violation::Duplicate { .. } => "duplicate-status",
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::FirstNotPlaced { first } => {
                write!(f, "first event is {first}, not PLACED")
            }
            Violation::Skipped { from, to } => {
                let missing = from.next().expect("a skip starts before DELIVERED");
                write!(f, "skipped {missing} ({from} → {to})")
            }
            Violation::Backwards { from, to } => write!(f, "went backwards ({from} → {to})"),
            Violation::Duplicate { status } => write!(f, "duplicate {status}"),
        }
    }
}

impl std::error::Error for Violation {}

/// Checks one step of an order whose previous step was `previous` (`None`: never seen).
pub(crate) fn check(previous: Option<Status>, next: Status) -> Result<(), Violation> {
    match previous {
        None if next == Status::Placed => Ok(()),
        None => Err(Violation::FirstNotPlaced { first: next }),
        Some(from) if from.next() == Some(next) => Ok(()),
        Some(from) if from == next => Err(Violation::Duplicate { status: next }),
        Some(from) if next < from => Err(Violation::Backwards { from, to: next }),
        Some(from) => Err(Violation::Skipped { from, to: next }),
    }
}

/// The furthest step seen of every order: the state order-processor keeps per partition and
/// `audit summary` keeps per topic.
///
/// Open orders are all kept (the generator keeps a bounded number open). Delivered orders are
/// kept so that a late duplicate is reported as a duplicate and not as an order that never
/// started — all of them by default, or only the most recent ones with
/// [`Lifecycles::keeping_delivered`]: a long-running consumer cannot hold every order it ever
/// saw (10,000,000 events are 2,500,000 orders, about 100 MB), and duplicates come from
/// retries and re-reads, seconds after the original.
#[derive(Debug, Default)]
pub struct Lifecycles {
    /// Furthest status of every order seen and not delivered yet.
    open: HashMap<Uuid, Status>,
    /// Delivered orders still remembered.
    delivered: HashSet<Uuid>,
    /// The same orders in the order they were delivered, oldest first, when only the most
    /// recent are kept (empty otherwise).
    delivered_in_order: VecDeque<Uuid>,
    /// How many delivered orders are remembered at most; `None`: all of them.
    keep_delivered: Option<usize>,
}

impl Lifecycles {
    /// Remembers every order it sees.
    pub fn new() -> Lifecycles {
        Lifecycles::default()
    }

    /// Remembers every open order and the `keep` most recently delivered ones. An event of a
    /// delivered order forgotten since is judged as the first event of an unknown order:
    /// still a violation unless it is a PLACED, which then starts the order again.
    pub(crate) fn keeping_delivered(keep: usize) -> Lifecycles {
        let mut orders = Lifecycles {
            keep_delivered: Some(keep),
            ..Lifecycles::default()
        };
        orders.make_room_for(keep);
        orders
    }

    /// Sizes the delivered orders' collections for `keep` (plus the one that arrives before
    /// the oldest is forgotten) at once. Grown by doubling instead, they leave every smaller
    /// table behind in the allocator, freed but still resident: order-processor's peak RSS
    /// over 10,000,000 events on Kafka (3 partitions) went from 43.5 to 40.2 MB with this
    /// alone (the tables themselves are about 6 MB). A table's untouched pages cost nothing
    /// until used.
    fn make_room_for(&mut self, keep: usize) {
        let room = keep.saturating_add(1);
        self.delivered
            .reserve(room.saturating_sub(self.delivered.len()));
        self.delivered_in_order
            .reserve(room.saturating_sub(self.delivered_in_order.len()));
    }

    /// Records `status` for `order_id` and says whether that step was allowed. After a
    /// violation the order keeps its furthest step, so one bad event is reported once instead
    /// of making every later event of the order look wrong too.
    pub fn observe(&mut self, order_id: Uuid, status: Status) -> Result<(), Violation> {
        let previous = self.status(&order_id);
        let verdict = check(previous, status);
        let furthest = previous.map_or(status, |p| p.max(status));
        if furthest.is_final() {
            self.open.remove(&order_id);
            if self.delivered.insert(order_id) {
                self.remember_delivered(order_id);
            }
        } else {
            self.open.insert(order_id, furthest);
        }
        verdict
    }

    /// Changes how many delivered orders are remembered (a role that owns more partitions
    /// gives each a smaller share), forgetting the oldest past the new bound now.
    pub(crate) fn keep_delivered(&mut self, keep: usize) {
        if self.keep_delivered.is_some() {
            self.keep_delivered = Some(keep);
            self.forget_past_the_bound();
            self.make_room_for(keep);
        }
    }

    /// Keeps the delivery order of `order_id`, forgetting the oldest delivered order past the
    /// bound.
    fn remember_delivered(&mut self, order_id: Uuid) {
        if self.keep_delivered.is_some() {
            self.delivered_in_order.push_back(order_id);
            self.forget_past_the_bound();
        }
    }

    fn forget_past_the_bound(&mut self) {
        let Some(keep) = self.keep_delivered else {
            return;
        };
        while self.delivered_in_order.len() > keep {
            if let Some(oldest) = self.delivered_in_order.pop_front() {
                self.delivered.remove(&oldest);
            }
        }
        // A bound that shrank leaves the collections' room behind; give most of it back.
        if self.delivered.capacity() > 4 * keep.max(64) {
            self.delivered.shrink_to(2 * keep);
            self.delivered_in_order.shrink_to(2 * keep);
        }
    }

    /// The furthest step seen for one order (`None` for an order never seen, or delivered
    /// and forgotten).
    pub(crate) fn status(&self, order_id: &Uuid) -> Option<Status> {
        match self.open.get(order_id) {
            Some(status) => Some(*status),
            None => self
                .delivered
                .contains(order_id)
                .then_some(Status::Delivered),
        }
    }

    /// Orders seen that are not delivered yet.
    pub(crate) fn in_flight(&self) -> usize {
        self.open.len()
    }

    /// Orders remembered: the open ones and the delivered ones still kept.
    pub(crate) fn len(&self) -> usize {
        self.open.len() + self.delivered.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    #[test]
    fn the_happy_path_is_allowed() {
        assert_eq!(check(None, Placed), Ok(()));
        assert_eq!(check(Some(Placed), Confirmed), Ok(()));
        assert_eq!(check(Some(Confirmed), Shipped), Ok(()));
        assert_eq!(check(Some(Shipped), Delivered), Ok(()));
    }

    #[test]
    fn every_other_step_is_a_named_violation() {
        assert_eq!(
            check(None, Shipped),
            Err(Violation::FirstNotPlaced { first: Shipped })
        );
        assert_eq!(
            check(Some(Placed), Shipped),
            Err(Violation::Skipped {
                from: Placed,
                to: Shipped
            })
        );
        assert_eq!(
            check(Some(Shipped), Confirmed),
            Err(Violation::Backwards {
                from: Shipped,
                to: Confirmed
            })
        );
        assert_eq!(
            check(Some(Delivered), Delivered),
            Err(Violation::Duplicate { status: Delivered })
        );
        let allowed = Status::ALL
            .iter()
            .flat_map(|&from| Status::ALL.iter().map(move |&to| (from, to)))
            .filter(|&(from, to)| check(Some(from), to).is_ok())
            .count();
        assert_eq!(allowed, 3, "exactly the three forward steps are allowed");
    }

    #[test]
    fn messages_say_what_went_wrong() {
        let skipped = Violation::Skipped {
            from: Placed,
            to: Delivered,
        };
        assert_eq!(
            skipped.to_string(),
            "skipped CONFIRMED (PLACED → DELIVERED)"
        );
        assert_eq!(
            Violation::FirstNotPlaced { first: Shipped }.to_string(),
            "first event is SHIPPED, not PLACED"
        );
    }

    #[test]
    fn a_violation_is_reported_once_not_cascaded() {
        let mut orders = Lifecycles::new();
        let id = Uuid::from_u128(7);
        assert!(orders.observe(id, Placed).is_ok());
        assert!(orders.observe(id, Shipped).is_err()); // skipped CONFIRMED
        assert!(orders.observe(id, Delivered).is_ok()); // continues from SHIPPED
        assert_eq!(
            orders.observe(id, Delivered),
            Err(Violation::Duplicate { status: Delivered })
        );
        assert_eq!(orders.status(&id), Some(Delivered));
        assert_eq!(orders.in_flight(), 0);
    }

    #[test]
    fn a_bounded_state_forgets_the_oldest_delivered_orders_only() {
        let mut orders = Lifecycles::keeping_delivered(2);
        let deliver = |orders: &mut Lifecycles, id: u128| {
            for status in Status::ALL {
                assert!(orders.observe(Uuid::from_u128(id), status).is_ok());
            }
        };
        assert!(orders.observe(Uuid::from_u128(99), Placed).is_ok());
        for id in 1..=3 {
            deliver(&mut orders, id);
        }
        assert_eq!(
            orders.len(),
            3,
            "order 99 open, 2 and 3 delivered: 1 forgotten"
        );
        assert_eq!(orders.in_flight(), 1);
        assert_eq!(orders.status(&Uuid::from_u128(1)), None);
        // A late duplicate of a remembered order is a duplicate; of a forgotten one, an
        // order that never started — a violation either way.
        assert_eq!(
            orders.observe(Uuid::from_u128(3), Delivered),
            Err(Violation::Duplicate { status: Delivered })
        );
        assert_eq!(
            orders.observe(Uuid::from_u128(1), Delivered),
            Err(Violation::FirstNotPlaced { first: Delivered })
        );
        assert_eq!(orders.status(&Uuid::from_u128(99)), Some(Placed));
        // A smaller share forgets the oldest now; the open order stays.
        orders.keep_delivered(1);
        assert_eq!(orders.len(), 2);
        assert_eq!(orders.status(&Uuid::from_u128(2)), None);
        assert_eq!(orders.status(&Uuid::from_u128(99)), Some(Placed));
    }

    #[test]
    fn a_bounded_state_never_grows_its_tables_while_it_fills() {
        let mut orders = Lifecycles::keeping_delivered(1000);
        let room = (
            orders.delivered.capacity(),
            orders.delivered_in_order.capacity(),
        );
        assert!(room.0 > 1000 && room.1 > 1000, "{room:?}");
        for id in 0..5000u128 {
            for status in Status::ALL {
                assert!(orders.observe(Uuid::from_u128(id), status).is_ok());
            }
        }
        assert_eq!(orders.len(), 1000);
        let after = (
            orders.delivered.capacity(),
            orders.delivered_in_order.capacity(),
        );
        // The set's capacity counts its free slots, which removals can use up (it then
        // cleans up in place); it must not have grown.
        assert!(
            after.0 <= room.0 && after.1 == room.1,
            "the tables were sized for the bound at once: {room:?}, then {after:?}"
        );
        // A larger share makes room for it at once too.
        orders.keep_delivered(3000);
        assert!(orders.delivered.capacity() > 3000);
        assert!(orders.delivered_in_order.capacity() > 3000);
    }

    #[test]
    fn an_unbounded_state_keeps_every_delivered_order() {
        let mut orders = Lifecycles::new();
        for id in 0..1000u128 {
            for status in Status::ALL {
                assert!(orders.observe(Uuid::from_u128(id), status).is_ok());
            }
        }
        assert_eq!(orders.len(), 1000);
        assert_eq!(
            orders.observe(Uuid::from_u128(0), Delivered),
            Err(Violation::Duplicate { status: Delivered })
        );
    }
}
