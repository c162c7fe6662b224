//! The order platform's domain, with no Kafka in it: the event on the wire, the lifecycle it
//! follows, and the generator that makes shop-like streams of them.
//!
//! - [`event`]: the order event on the wire and its encoder
//! - `record`: reading an event off a record: the strict parser and its diagnosis
//! - `canonical`: the one form orderflow writes, recognised without a JSON parser
//! - [`lifecycle`]: PLACED → CONFIRMED → SHIPPED → DELIVERED, and violations of it
//! - [`generator`]: seeded, shop-like order streams and rate pacing
//! - [`payment`]: the payment event `orderflow payments` produces, and delivery semantics

mod canonical;
pub mod event;
pub mod generator;
pub mod lifecycle;
pub mod payment;
pub(crate) mod record;
