//! `orderflow audit payments`: did every PLACED order get exactly one payment? Compares the
//! orders topic with the payments topic (both as read_committed readers see them, read by
//! the caller) and reports, per run of the lab (the `semantics` each payment carries), the
//! orders with no payment (lost), with more than one (duplicated), and payments for orders
//! the orders topic does not have (unknown). Pure: no Kafka here.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Write};

use serde::Serialize;
use uuid::Uuid;

use crate::domain::event::{OrderEvent, Status};
use crate::domain::payment::{Decision, PaymentEvent, Semantics};
use crate::report::human;

/// How many order ids each kind of problem names, at most: enough to look one up.
const EXAMPLES: usize = 5;

/// What the check found.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct PaymentsCheck {
    /// Distinct orders with a PLACED event in the orders topic.
    pub(crate) orders: u64,
    /// Records of the orders topic that are not order events (not judged).
    pub(crate) malformed_orders: u64,
    /// Records of the payments topic that are not payment events.
    pub(crate) malformed_payments: u64,
    /// One entry per semantics found in the payments, in the order at-most-once,
    /// at-least-once, exactly-once.
    pub(crate) runs: Vec<RunCheck>,
}

/// One run of the lab: the payments made with one semantics.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct RunCheck {
    pub(crate) semantics: Semantics,
    /// Payment records.
    pub(crate) payments: u64,
    pub(crate) approved: u64,
    pub(crate) declined: u64,
    /// Orders without a payment.
    pub(crate) lost: u64,
    /// Orders with more than one payment, and the payments beyond the first.
    pub(crate) duplicated: u64,
    pub(crate) extra_payments: u64,
    /// Payments for orders without a PLACED event in the orders topic.
    pub(crate) unknown: u64,
    /// A few order ids of each kind.
    pub(crate) lost_examples: Vec<Uuid>,
    pub(crate) duplicated_examples: Vec<Uuid>,
    pub(crate) unknown_examples: Vec<Uuid>,
}

/// One run's payments while they are read.
#[derive(Default)]
struct Tally {
    /// Payments per order.
    counts: HashMap<Uuid, u64>,
    /// Approved, declined.
    decisions: [u64; 2],
    /// The orders in the order of their first payment (the examples are the first found).
    order: Vec<Uuid>,
}

impl RunCheck {
    pub(crate) fn is_clean(&self) -> bool {
        self.lost == 0 && self.duplicated == 0 && self.unknown == 0
    }
}

impl PaymentsCheck {
    /// Whether there is nothing to report: payments were found, and no run lost,
    /// duplicated or invented one.
    pub(crate) fn is_clean(&self) -> bool {
        !self.runs.is_empty() && self.runs.iter().all(RunCheck::is_clean)
    }

    /// Checks `payments` against `orders`; both are (key, value) records.
    pub(crate) fn of<'a>(
        orders: impl IntoIterator<Item = (Option<&'a [u8]>, Option<&'a [u8]>)>,
        payments: impl IntoIterator<Item = (Option<&'a [u8]>, Option<&'a [u8]>)>,
    ) -> PaymentsCheck {
        let mut placed: Vec<Uuid> = Vec::new();
        let mut seen = HashSet::new();
        let mut malformed_orders = 0;
        for (key, value) in orders {
            match OrderEvent::from_record(key, value) {
                Ok(event) if event.status == Status::Placed => {
                    if seen.insert(event.order_id) {
                        placed.push(event.order_id);
                    }
                }
                Ok(_) => {}
                Err(_) => malformed_orders += 1,
            }
        }
        let mut by_run: BTreeMap<Semantics, Tally> = BTreeMap::new();
        let mut malformed_payments = 0;
        for (key, value) in payments {
            let Ok(payment) = PaymentEvent::from_record(key, value.unwrap_or_default()) else {
                malformed_payments += 1;
                continue;
            };
            let Tally {
                counts,
                decisions,
                order,
            } = by_run.entry(payment.semantics).or_default();
            let count = counts.entry(payment.order_id).or_default();
            if *count == 0 {
                order.push(payment.order_id);
            }
            *count += 1;
            decisions[usize::from(payment.decision == Decision::Declined)] += 1;
        }
        let runs = by_run
            .into_iter()
            .map(|(semantics, tally)| {
                let Tally {
                    counts,
                    decisions: [approved, declined],
                    order,
                } = tally;
                let lost: Vec<Uuid> = placed
                    .iter()
                    .filter(|o| !counts.contains_key(o))
                    .copied()
                    .collect();
                let duplicated: Vec<Uuid> =
                    order.iter().filter(|o| counts[o] > 1).copied().collect();
                let unknown: Vec<Uuid> = order
                    .iter()
                    .filter(|o| !seen.contains(o))
                    .copied()
                    .collect();
                RunCheck {
                    semantics,
                    payments: counts.values().sum(),
                    approved,
                    declined,
                    lost: lost.len() as u64,
                    duplicated: duplicated.len() as u64,
                    extra_payments: duplicated.iter().map(|o| counts[o] - 1).sum(),
                    unknown: unknown.len() as u64,
                    lost_examples: lost.into_iter().take(EXAMPLES).collect(),
                    duplicated_examples: duplicated.into_iter().take(EXAMPLES).collect(),
                    unknown_examples: unknown.into_iter().take(EXAMPLES).collect(),
                }
            })
            .collect();
        PaymentsCheck {
            orders: placed.len() as u64,
            malformed_orders,
            malformed_payments,
            runs,
        }
    }

    /// The report for people.
    pub(crate) fn write_text(
        &self,
        out: &mut dyn Write,
        orders: &str,
        payments: &str,
    ) -> io::Result<()> {
        writeln!(
            out,
            "{orders}: {} placed orders; {payments}: {} payments (read_committed)",
            human::count(self.orders),
            human::count(self.runs.iter().map(|r| r.payments).sum())
        )?;
        if self.malformed_orders + self.malformed_payments > 0 {
            writeln!(
                out,
                "not judged: {} records of {orders} and {} of {payments} are not events",
                human::count(self.malformed_orders),
                human::count(self.malformed_payments)
            )?;
        }
        if self.runs.is_empty() {
            writeln!(
                out,
                "no payments at all: has `orderflow payments` run with --out-topic {payments}?"
            )?;
        }
        for run in &self.runs {
            let verdict = match (run.lost > 0, run.duplicated > 0 || run.unknown > 0) {
                (false, false) => "every order paid exactly once",
                (true, false) => "LOSS",
                (false, true) => "DUPLICATES",
                (true, true) => "LOSS and DUPLICATES",
            };
            writeln!(
                out,
                "{:<14} {} payments ({} approved, {} declined): lost {}, paid more than once {} \
                 ({} extra payments), unknown orders {} — {verdict}",
                format!("{}:", run.semantics),
                human::count(run.payments),
                human::count(run.approved),
                human::count(run.declined),
                human::count(run.lost),
                human::count(run.duplicated),
                human::count(run.extra_payments),
                human::count(run.unknown),
            )?;
            for (what, ids) in [
                ("lost", &run.lost_examples),
                ("paid more than once", &run.duplicated_examples),
                ("unknown", &run.unknown_examples),
            ] {
                if !ids.is_empty() {
                    let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
                    writeln!(out, "    {what}, e.g.: {}", ids.join(" "))?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;
    use crate::domain::event::Source;
    use crate::domain::payment::PAYMENT_EVENT_TYPE;

    fn order(n: u128, status: Status) -> (Vec<u8>, Vec<u8>) {
        let event = OrderEvent {
            order_id: Uuid::from_u128(n),
            user_id: format!("user_{n}"),
            status,
            timestamp: DateTime::from_timestamp_millis(1_790_000_000_000).expect("a time"),
            source: Source::Web,
        };
        (
            event.key().as_bytes().to_vec(),
            event.to_json().into_bytes(),
        )
    }

    fn payment(n: u128, semantics: Semantics) -> (Vec<u8>, Vec<u8>) {
        let event = PaymentEvent {
            event_type: PAYMENT_EVENT_TYPE.to_owned(),
            order_id: Uuid::from_u128(n),
            user_id: format!("user_{n}"),
            decision: if n.is_multiple_of(2) {
                Decision::Approved
            } else {
                Decision::Declined
            },
            semantics,
            order_partition: 0,
            order_offset: n as i64,
            timestamp: DateTime::from_timestamp_millis(1_790_000_000_000).expect("a time"),
        };
        (
            event.order_id.to_string().into_bytes(),
            event.to_json().into_bytes(),
        )
    }

    fn check(orders: &[(Vec<u8>, Vec<u8>)], payments: &[(Vec<u8>, Vec<u8>)]) -> PaymentsCheck {
        PaymentsCheck::of(
            orders
                .iter()
                .map(|(k, v)| (Some(k.as_slice()), Some(v.as_slice()))),
            payments
                .iter()
                .map(|(k, v)| (Some(k.as_slice()), Some(v.as_slice()))),
        )
    }

    #[test]
    fn each_run_is_judged_on_its_own() {
        let orders = vec![
            order(1, Status::Placed),
            order(1, Status::Confirmed),
            order(2, Status::Placed),
            order(3, Status::Placed),
        ];
        let payments = vec![
            // at-most-once lost order 3
            payment(1, Semantics::AtMostOnce),
            payment(2, Semantics::AtMostOnce),
            // at-least-once paid order 2 twice
            payment(1, Semantics::AtLeastOnce),
            payment(2, Semantics::AtLeastOnce),
            payment(2, Semantics::AtLeastOnce),
            payment(3, Semantics::AtLeastOnce),
            // exactly-once: each once, plus an order nobody placed
            payment(1, Semantics::ExactlyOnce),
            payment(2, Semantics::ExactlyOnce),
            payment(3, Semantics::ExactlyOnce),
            payment(9, Semantics::ExactlyOnce),
        ];
        let found = check(&orders, &payments);
        assert_eq!(found.orders, 3);
        let [amo, alo, eos] = &found.runs[..] else {
            panic!("three runs: {found:?}");
        };
        assert_eq!((amo.lost, amo.duplicated, amo.unknown), (1, 0, 0));
        assert_eq!(amo.lost_examples, [Uuid::from_u128(3)]);
        assert_eq!((alo.lost, alo.duplicated, alo.extra_payments), (0, 1, 1));
        assert_eq!((eos.lost, eos.duplicated, eos.unknown), (0, 0, 1));
        assert_eq!((alo.approved, alo.declined), (2, 2));
        assert!(!found.is_clean());
        let mut text = Vec::new();
        found
            .write_text(&mut text, "orders", "payments")
            .expect("text");
        let text = String::from_utf8(text).expect("UTF-8");
        assert!(text.contains("at-most-once:"), "{text}");
        assert!(text.contains("— LOSS\n"), "{text}");
    }

    #[test]
    fn a_clean_run_is_clean_and_no_payments_is_not() {
        let orders = vec![order(1, Status::Placed), order(2, Status::Placed)];
        let payments = vec![
            payment(1, Semantics::ExactlyOnce),
            payment(2, Semantics::ExactlyOnce),
        ];
        assert!(check(&orders, &payments).is_clean());
        let none = check(&orders, &[]);
        assert!(!none.is_clean());
        let malformed = check(&orders, &[(b"k".to_vec(), b"{}".to_vec())]);
        assert_eq!(malformed.malformed_payments, 1);
        assert!(!malformed.is_clean());
    }
}
