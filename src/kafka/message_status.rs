//! librdkafka's verdict on whether a message that failed may still be in Kafka
//! (`rd_kafka_message_status`), which rust-rdkafka's safe API does not expose. With this, the
//! crate has unsafe code in two places: here and `mock.rs`.
//!
//! The error of a failed delivery does not say it: an event purged from the queue
//! (`PurgeQueue`) may have been sent before, failed with a broker, and been queued again for a
//! retry; the broker may well have written it. librdkafka tracks that per message.
#![allow(unsafe_code)]

use rdkafka::bindings as rdsys;
use rdkafka::message::BorrowedMessage;

/// Whether Kafka may hold a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persistence {
    /// Never sent, or refused by the broker: Kafka does not have it.
    NotWritten,
    /// Sent, and no answer arrived: Kafka may have written it.
    Unknown,
    /// Kafka acknowledged it.
    Written,
}

/// What librdkafka knows of `message` (in a delivery report).
pub fn persistence(message: &BorrowedMessage<'_>) -> Persistence {
    // SAFETY: ptr() is the live rd_kafka_message_t this borrow was made from (valid for as
    // long as `message` is); rd_kafka_message_status only reads its status field.
    let status = unsafe { rdsys::rd_kafka_message_status(message.ptr()) };
    match status {
        rdsys::rd_kafka_msg_status_t::RD_KAFKA_MSG_STATUS_NOT_PERSISTED => Persistence::NotWritten,
        rdsys::rd_kafka_msg_status_t::RD_KAFKA_MSG_STATUS_PERSISTED => Persistence::Written,
        _ => Persistence::Unknown,
    }
}
