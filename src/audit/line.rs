//! One line of the audit log.
//!
//! ```json
//! {"topic":"order-events","partition":1,"offset":42,"key":"6f1c…","kafka_timestamp":"…",
//!  "stored_at":"…","event":{…the six-field order event…}}
//! {"topic":"order-events","partition":0,"offset":43,"key":null,"kafka_timestamp":"…",
//!  "stored_at":"…","raw":"not json","error":"not JSON: …","error_kind":"not-json"}
//! ```
//!
//! Bytes that are not UTF-8 (a key or a malformed value) are kept losslessly in base64, in
//! `key_base64` / `raw_base64` instead of `key` / `raw`; so is UTF-8 text that JSON would
//! escape into more bytes than base64 takes (control characters become six bytes each), so
//! that a line is never much longer than its record and `orderflow audit` reads every line
//! storage writes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::event::{EventError, OrderEvent};
use crate::roles::ConsumedRecord;

/// One stored record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditLine {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    /// The record key as UTF-8; null when the record had no key (or see `key_base64`).
    pub key: Option<String>,
    /// A key that is not UTF-8, in standard base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_base64: Option<String>,
    /// The record's Kafka timestamp (producer create time or broker append time).
    #[serde(serialize_with = "crate::domain::event::serialize_utc_opt")]
    pub kafka_timestamp: Option<DateTime<Utc>>,
    /// When the storage role wrote the line.
    #[serde(serialize_with = "crate::domain::event::serialize_utc")]
    pub stored_at: DateTime<Utc>,
    /// The order event, for a well-formed record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<OrderEvent>,
    /// A malformed record's value as UTF-8 text (or see `raw_base64`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// A malformed value that is not UTF-8, in standard base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_base64: Option<String>,
    /// Why the record is malformed, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why the record is malformed, as a stable name (`not-json`, `missing-key`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
}

/// Text when the bytes are UTF-8 and JSON keeps them about as short as base64 would, base64
/// otherwise.
fn text_or_base64(bytes: &[u8]) -> (Option<String>, Option<String>) {
    match std::str::from_utf8(bytes) {
        Ok(text) if json_escaped_len(text) <= base64_len(bytes.len()).max(16) => {
            (Some(text.to_owned()), None)
        }
        _ => (None, Some(BASE64.encode(bytes))),
    }
}

/// The length of `text` as a JSON string's contents (what serde_json writes).
fn json_escaped_len(text: &str) -> usize {
    text.bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..0x20 => 6,
            _ => 1,
        })
        .sum()
}

fn base64_len(bytes: usize) -> usize {
    bytes.div_ceil(3) * 4
}

impl AuditLine {
    /// The line for `record`, stored at `stored_at`.
    pub fn from_record(record: &ConsumedRecord<'_>, stored_at: DateTime<Utc>) -> AuditLine {
        let parsed = OrderEvent::from_record(record.key, record.value);
        AuditLine::from_parsed(record, &parsed, stored_at)
    }

    /// The line for `record`, which the caller already parsed.
    pub(crate) fn from_parsed(
        record: &ConsumedRecord<'_>,
        parsed: &Result<OrderEvent, EventError>,
        stored_at: DateTime<Utc>,
    ) -> AuditLine {
        let (key, key_base64) = record.key.map_or((None, None), text_or_base64);
        let kafka_timestamp = record
            .timestamp_ms
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single());
        let mut line = AuditLine {
            topic: record.topic.to_owned(),
            partition: record.partition,
            offset: record.offset,
            key,
            key_base64,
            kafka_timestamp,
            stored_at,
            event: None,
            raw: None,
            raw_base64: None,
            error: None,
            error_kind: None,
        };
        match parsed {
            Ok(event) => line.event = Some(event.clone()),
            Err(error) => {
                (line.raw, line.raw_base64) = text_or_base64(record.value.unwrap_or_default());
                line.error = Some(error.to_string());
                line.error_kind = Some(error.kind().to_owned());
            }
        }
        line
    }

    /// Appends the line and its newline to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        serde_json::to_writer(&mut *out, self).expect("an audit line always serializes");
        out.push(b'\n');
    }

    /// Whether the line is consistent: either an event, or raw bytes with an error, never
    /// both or neither.
    pub fn is_consistent(&self) -> bool {
        let raw = self.raw.is_some() as u8 + self.raw_base64.is_some() as u8;
        let key = self.key.is_some() as u8 + self.key_base64.is_some() as u8;
        let malformed = raw == 1 && self.error.is_some() && self.error_kind.is_some();
        key <= 1
            && match &self.event {
                Some(_) => raw == 0 && self.error.is_none() && self.error_kind.is_none(),
                None => malformed,
            }
    }
}

/// Where a line belongs and which record it was; read when recovering, without decoding the
/// rest of the line.
#[derive(Deserialize)]
pub(crate) struct Position {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub key_base64: Option<String>,
    #[serde(default)]
    pub kafka_timestamp: Option<DateTime<Utc>>,
}

/// The record a line stands for, as far as telling records apart goes: its offset, key and
/// Kafka timestamp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordId {
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub timestamp_ms: Option<i64>,
}

impl RecordId {
    pub(crate) fn of_record(record: &ConsumedRecord<'_>) -> RecordId {
        RecordId {
            offset: record.offset,
            key: record.key.map(<[u8]>::to_vec),
            timestamp_ms: record.timestamp_ms,
        }
    }
}

impl RecordId {
    /// The record a stored line names: its offset, its key (as text or base64) and its Kafka
    /// timestamp.
    fn stored(
        offset: i64,
        key: &Option<String>,
        key_base64: &Option<String>,
        kafka_timestamp: Option<DateTime<Utc>>,
    ) -> RecordId {
        let key = match (key, key_base64) {
            (Some(key), _) => Some(key.clone().into_bytes()),
            (None, Some(encoded)) => BASE64.decode(encoded).ok(),
            (None, None) => None,
        };
        RecordId {
            offset,
            key,
            timestamp_ms: kafka_timestamp.map(|t| t.timestamp_millis()),
        }
    }
}

impl Position {
    pub(crate) fn record_id(&self) -> RecordId {
        RecordId::stored(
            self.offset,
            &self.key,
            &self.key_base64,
            self.kafka_timestamp,
        )
    }
}

impl AuditLine {
    pub(crate) fn record_id(&self) -> RecordId {
        RecordId::stored(
            self.offset,
            &self.key,
            &self.key_base64,
            self.kafka_timestamp,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record<'a>(key: Option<&'a [u8]>, value: Option<&'a [u8]>) -> ConsumedRecord<'a> {
        ConsumedRecord {
            topic: "order-events",
            partition: 2,
            offset: 9,
            key,
            value,
            timestamp_ms: Some(1_763_000_000_123),
        }
    }

    #[test]
    fn a_good_record_stores_its_event_and_decodes_back() {
        let value = br#"{"event_type":"ORDER_EVENT","order_id":"6f1c0a52-3d7e-4e55-9a43-2b7a1d9c8e10","user_id":"user_1","status":"PLACED","timestamp":"2026-11-21T18:30:05.123Z","source":"WEB"}"#;
        let key = b"6f1c0a52-3d7e-4e55-9a43-2b7a1d9c8e10";
        let line = AuditLine::from_record(&record(Some(key), Some(value)), Utc::now());
        assert!(line.event.is_some() && line.is_consistent());
        let mut out = Vec::new();
        line.encode_into(&mut out);
        assert_eq!(out.last(), Some(&b'\n'));
        let back: AuditLine = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, line);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(r#""kafka_timestamp":"2025-11-13T02:13:20.123Z""#),
            "{text}"
        );
    }

    #[test]
    fn malformed_bytes_are_kept_losslessly() {
        let line = AuditLine::from_record(&record(Some(b"\xff\x00"), Some(b"\xfe{")), Utc::now());
        assert_eq!(line.error_kind.as_deref(), Some("not-utf8"));
        assert_eq!(line.raw_base64.as_deref(), Some("/ns="));
        assert_eq!(line.key_base64.as_deref(), Some("/wA="));
        assert!(line.is_consistent());

        let line = AuditLine::from_record(&record(None, None), Utc::now());
        assert_eq!(line.raw.as_deref(), Some(""));
        assert_eq!(line.error_kind.as_deref(), Some("empty"));
    }

    #[test]
    fn control_bytes_are_stored_in_base64_so_the_line_stays_near_the_records_size() {
        // 11.5 MB of \x01 would be a 69 MB line as JSON text: too long for audit to read.
        let value = vec![1u8; 11_500_000];
        let line = AuditLine::from_record(&record(Some(b"k"), Some(&value)), Utc::now());
        assert!(line.raw.is_none() && line.is_consistent());
        let mut out = Vec::new();
        line.encode_into(&mut out);
        assert!(
            out.len() < value.len() / 3 * 4 + 1_000,
            "{} bytes",
            out.len()
        );
        assert!(out.len() < crate::audit::reader::MAX_LINE);
        let back: AuditLine = serde_json::from_slice(&out).unwrap();
        assert_eq!(BASE64.decode(back.raw_base64.unwrap()).unwrap(), value);

        // Ordinary text stays text, even with a few escapes; a short control-laden key too.
        let text =
            AuditLine::from_record(&record(Some(b"a\tb"), Some(b"say \"hi\"\n")), Utc::now());
        assert_eq!(text.raw.as_deref(), Some("say \"hi\"\n"));
        assert_eq!(text.key.as_deref(), Some("a\tb"));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let text = r#"{"topic":"t","partition":0,"offset":1,"key":null,"kafka_timestamp":null,"stored_at":"2026-01-01T00:00:00Z","raw":"x","error":"e","error_kind":"not-json","extra":1}"#;
        assert!(serde_json::from_str::<AuditLine>(text).is_err());
    }
}
