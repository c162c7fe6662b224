//! The payment event on the wire: what `orderflow payments` produces for every PLACED order,
//! and the delivery semantics it ran with (docs/payments.md documents both).
//!
//! Message key: the order_id (UTF-8), so an order's payment lands in the partition its
//! events would. Value: one JSON object with exactly these fields:
//!
//! ```json
//! {"event_type":"PAYMENT_EVENT","order_id":"6f1c0a52-3d7e-4e55-9a43-2b7a1d9c8e10",
//!  "user_id":"user_123","decision":"APPROVED","semantics":"exactly-once",
//!  "order_partition":2,"order_offset":1041,"timestamp":"2026-11-21T18:30:05.123Z"}
//! ```
//!
//! Everything in it comes from the order event and where it was read, never from the clock
//! or the process: a payment made again for the same order (a duplicate) is byte for byte
//! the same record, so a duplicate is told apart only by counting.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The `event_type` of every payment event.
pub(crate) const PAYMENT_EVENT_TYPE: &str = "PAYMENT_EVENT";

/// What the payments stage decided for an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Decision {
    Approved,
    Declined,
}

impl Decision {
    pub const fn as_str(self) -> &'static str {
        match self {
            Decision::Approved => "APPROVED",
            Decision::Declined => "DECLINED",
        }
    }
}

/// When a read-process-write stage commits the offset of what it read, relative to writing
/// what it made of it: the lesson of `orderflow payments`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Semantics {
    /// Commit the input offsets, then produce: a crash in between loses the outputs.
    AtMostOnce,
    /// Produce and wait for delivery, then commit: a crash in between repeats the outputs.
    AtLeastOnce,
    /// Produce and commit the input offsets in one Kafka transaction: both or neither, for
    /// readers that read only committed records (isolation.level=read_committed).
    ExactlyOnce,
}

impl Semantics {
    pub const ALL: [Semantics; 3] = [
        Semantics::AtMostOnce,
        Semantics::AtLeastOnce,
        Semantics::ExactlyOnce,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Semantics::AtMostOnce => "at-most-once",
            Semantics::AtLeastOnce => "at-least-once",
            Semantics::ExactlyOnce => "exactly-once",
        }
    }
}

impl std::fmt::Display for Semantics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Semantics {
    type Err = String;

    fn from_str(s: &str) -> Result<Semantics, String> {
        Semantics::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| {
                format!("\"{s}\" is not a semantics: at-most-once, at-least-once or exactly-once")
            })
    }
}

/// One payment event, as the wire carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentEvent {
    /// Always [`PAYMENT_EVENT_TYPE`].
    pub event_type: String,
    /// The order paid for; also the record key.
    pub order_id: Uuid,
    /// The order's customer.
    pub user_id: String,
    pub decision: Decision,
    /// How the stage that made it committed its input: which run of the lab it belongs to.
    pub semantics: Semantics,
    /// Where the PLACED event was read: a duplicate payment names the same record.
    pub order_partition: i32,
    pub order_offset: i64,
    /// The PLACED event's own timestamp (not the time of the payment: see the module doc).
    #[serde(with = "timestamp")]
    pub timestamp: DateTime<Utc>,
}

/// Why a record is not a payment event.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("not a payment event: {0}")]
    Json(#[from] serde_json::Error),
    #[error("event_type must be \"{PAYMENT_EVENT_TYPE}\", found \"{0}\"")]
    WrongEventType(String),
    #[error("the record key is not the payment's order_id {0}")]
    KeyMismatch(Uuid),
}

impl PaymentEvent {
    /// The wire JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a payment event always serializes")
    }

    /// Parses a record: the value must be a payment event, the key (when there is one) its
    /// order_id.
    pub fn from_record(key: Option<&[u8]>, value: &[u8]) -> Result<PaymentEvent, PaymentError> {
        let event: PaymentEvent = serde_json::from_slice(value)?;
        if event.event_type != PAYMENT_EVENT_TYPE {
            return Err(PaymentError::WrongEventType(event.event_type));
        }
        if let Some(key) = key
            && key != event.order_id.hyphenated().to_string().as_bytes()
        {
            return Err(PaymentError::KeyMismatch(event.order_id));
        }
        Ok(event)
    }
}

/// The timestamp as order events carry it (`2026-11-21T18:30:05.123Z`).
mod timestamp {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::domain::event::format_timestamp(t))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = <&str>::deserialize(d)?;
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"event_type":"PAYMENT_EVENT","order_id":"6f1c0a52-3d7e-4e55-9a43-2b7a1d9c8e10","user_id":"user_123","decision":"APPROVED","semantics":"exactly-once","order_partition":2,"order_offset":1041,"timestamp":"2026-11-21T18:30:05.123Z"}"#;

    #[test]
    fn the_documented_example_round_trips_byte_for_byte() {
        let key = b"6f1c0a52-3d7e-4e55-9a43-2b7a1d9c8e10";
        let event = PaymentEvent::from_record(Some(key), GOOD.as_bytes()).expect("valid");
        assert_eq!(event.decision, Decision::Approved);
        assert_eq!(event.semantics, Semantics::ExactlyOnce);
        assert_eq!(event.to_json(), GOOD);
    }

    #[test]
    fn unknown_fields_wrong_types_and_wrong_keys_are_refused() {
        let extra = GOOD.replace("\"user_id\"", "\"amount\":3,\"user_id\"");
        assert!(PaymentEvent::from_record(None, extra.as_bytes()).is_err());
        let wrong = GOOD.replace("PAYMENT_EVENT", "ORDER_EVENT");
        assert!(matches!(
            PaymentEvent::from_record(None, wrong.as_bytes()),
            Err(PaymentError::WrongEventType(_))
        ));
        let other_key = b"00000000-0000-0000-0000-000000000000";
        assert!(matches!(
            PaymentEvent::from_record(Some(other_key), GOOD.as_bytes()),
            Err(PaymentError::KeyMismatch(_))
        ));
    }

    #[test]
    fn semantics_parse_from_their_names_only() {
        for s in Semantics::ALL {
            assert_eq!(s.as_str().parse::<Semantics>(), Ok(s));
        }
        assert!("exactly_once".parse::<Semantics>().is_err());
    }
}
