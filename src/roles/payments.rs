//! The payments stage: for every PLACED order it decides, seeded, whether the payment is
//! approved or declined, and makes the payment event (domain/payment.rs). Other statuses are
//! skipped; records that are not order events are counted as malformed and skipped.
//!
//! The decision is a function of the seed and the order id alone, never of a random stream
//! drawn in order: a PLACED event processed again (after a crash, a rebalance, an aborted
//! transaction) gets the same decision, so a duplicate payment is a copy rather than a
//! contradiction, and two runs with the same seed decide alike whatever they crashed on.

use uuid::Uuid;

use super::{ConsumedRecord, Processed, Stage};
use crate::domain::event::{OrderEvent, Status};
use crate::domain::payment::{Decision, PAYMENT_EVENT_TYPE, PaymentEvent, Semantics};

/// Why payments cannot be built from its arguments.
#[derive(Debug, thiserror::Error, PartialEq)]
pub(crate) enum PaymentsError {
    #[error("--decline-rate {0} is not a fraction between 0 and 1 (0.1 declines one in ten)")]
    DeclineRate(f64),
}

/// The payments stage.
#[derive(Clone, Debug)]
pub(crate) struct Payments {
    /// The seed of every decision.
    seed: u64,
    /// The share of orders declined, in [0, 1].
    decline_rate: f64,
    /// Written into every payment, so the checker can tell the runs of the lab apart.
    semantics: Semantics,
}

impl Payments {
    pub(crate) fn new(
        seed: u64,
        decline_rate: f64,
        semantics: Semantics,
    ) -> Result<Payments, PaymentsError> {
        if !(0.0..=1.0).contains(&decline_rate) {
            return Err(PaymentsError::DeclineRate(decline_rate));
        }
        Ok(Payments {
            seed,
            decline_rate,
            semantics,
        })
    }

    /// The decision for `order`: declined for a `decline_rate` share of order ids.
    pub(crate) fn decide(&self, order: Uuid) -> Decision {
        let (high, low) = order.as_u64_pair();
        let hash = mix(mix(self.seed ^ high) ^ low);
        // The top 53 bits as a fraction in [0, 1): uniform, exact in an f64.
        let fraction = (hash >> 11) as f64 / (1u64 << 53) as f64;
        if fraction < self.decline_rate {
            Decision::Declined
        } else {
            Decision::Approved
        }
    }

    /// The payment for a PLACED `order` read at `partition`/`offset`.
    pub(crate) fn payment(&self, order: &OrderEvent, partition: i32, offset: i64) -> PaymentEvent {
        PaymentEvent {
            event_type: PAYMENT_EVENT_TYPE.to_owned(),
            order_id: order.order_id,
            user_id: order.user_id.clone(),
            decision: self.decide(order.order_id),
            semantics: self.semantics,
            order_partition: partition,
            order_offset: offset,
            timestamp: order.timestamp,
        }
    }
}

impl Stage for Payments {
    fn process(&self, record: &ConsumedRecord<'_>) -> Processed {
        let order = match OrderEvent::from_record(record.key, record.value) {
            Ok(order) => order,
            Err(e) => return Processed::Malformed { kind: e.kind() },
        };
        if order.status != Status::Placed {
            return Processed::Skipped;
        }
        let payment = self.payment(&order, record.partition, record.offset);
        Processed::Emit {
            key: order.key().as_bytes().to_vec(),
            value: payment.to_json().into_bytes(),
            label: payment.decision.as_str(),
        }
    }
}

/// splitmix64's finaliser: every input bit moves about half of the output bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roles::fakes::{event, garbage};

    fn stage(rate: f64) -> Payments {
        Payments::new(7, rate, Semantics::ExactlyOnce).expect("a valid rate")
    }

    #[test]
    fn a_placed_order_becomes_its_payment_keyed_by_the_order() {
        let record = event(2, 41, 9, Status::Placed);
        let Processed::Emit { key, value, label } = stage(0.0).process(&record.consumed()) else {
            panic!("a PLACED order is paid");
        };
        assert_eq!(Some(key.clone()), record.key);
        let payment = PaymentEvent::from_record(Some(&key), &value).expect("the wire format");
        assert_eq!(payment.order_id, Uuid::from_u128(9));
        assert_eq!(payment.user_id, "user_9");
        assert_eq!(payment.decision, Decision::Approved);
        assert_eq!(label, "APPROVED");
        assert_eq!(payment.semantics, Semantics::ExactlyOnce);
        assert_eq!((payment.order_partition, payment.order_offset), (2, 41));
    }

    #[test]
    fn other_statuses_are_skipped_and_garbage_is_malformed() {
        for status in [Status::Confirmed, Status::Shipped, Status::Delivered] {
            let record = event(0, 1, 3, status);
            assert_eq!(stage(0.5).process(&record.consumed()), Processed::Skipped);
        }
        let record = garbage(0, 2, "{not json");
        assert_eq!(
            stage(0.5).process(&record.consumed()),
            Processed::Malformed { kind: "not-json" }
        );
    }

    #[test]
    fn processing_again_gives_the_same_bytes() {
        let record = event(1, 5, 77, Status::Placed);
        let payments = stage(0.5);
        assert_eq!(
            payments.process(&record.consumed()),
            payments.process(&record.consumed())
        );
    }

    #[test]
    fn the_decline_rate_is_the_share_declined_and_the_seed_changes_which() {
        let orders: Vec<Uuid> = (0..20_000u128).map(|n| Uuid::from_u128(n * 7919)).collect();
        let declined = |p: &Payments| {
            orders
                .iter()
                .filter(|&&o| p.decide(o) == Decision::Declined)
                .count()
        };
        assert_eq!(declined(&stage(0.0)), 0);
        assert_eq!(declined(&stage(1.0)), orders.len());
        let tenth = declined(&stage(0.1));
        assert!(
            (1_700..2_300).contains(&tenth),
            "{tenth} of 20,000 declined"
        );
        let other = Payments::new(8, 0.1, Semantics::AtMostOnce).expect("valid");
        let differ = orders
            .iter()
            .filter(|&&o| other.decide(o) != stage(0.1).decide(o))
            .count();
        assert!(
            differ > 1_000,
            "another seed changed only {differ} decisions"
        );
    }

    #[test]
    fn a_rate_outside_zero_to_one_is_refused() {
        for rate in [-0.1, 1.5, f64::NAN] {
            assert!(Payments::new(1, rate, Semantics::AtLeastOnce).is_err());
        }
    }
}
