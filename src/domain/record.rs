//! Reading an order event off a record: the strict parser of the wire format (see
//! [`crate::domain::event`]), whose errors say exactly what is wrong with a message. A
//! well-formed event takes a fast path; only a malformed one pays for the diagnosis.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use uuid::Uuid;

use super::canonical;
use super::event::{EVENT_TYPE, EventError, FIELDS, OrderEvent, Source, Status};

impl FromStr for Status {
    type Err = EventError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| EventError::UnknownStatus(excerpt(s)))
    }
}

impl FromStr for Source {
    type Err = EventError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Source::ALL
            .into_iter()
            .find(|source| source.as_str() == s)
            .ok_or_else(|| EventError::UnknownSource(excerpt(s)))
    }
}

/// The longest value echoed back in an error message: a 1 MB garbage field must not turn into
/// a 1 MB log line.
const EXCERPT_CHARS: usize = 60;

fn excerpt(value: &str) -> String {
    match value.char_indices().nth(EXCERPT_CHARS) {
        None => value.to_owned(),
        Some((cut, _)) => format!("{}…", &value[..cut]),
    }
}

/// The six fields as they arrive, before their values are checked. Borrowed where possible:
/// the common case (a well-formed event) allocates only the user_id.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireFields<'a> {
    #[serde(borrow)]
    event_type: Cow<'a, str>,
    #[serde(borrow)]
    order_id: Cow<'a, str>,
    #[serde(borrow)]
    user_id: Cow<'a, str>,
    #[serde(borrow)]
    status: Cow<'a, str>,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
    #[serde(borrow)]
    source: Cow<'a, str>,
}

impl WireFields<'_> {
    /// Whether the wire's order_id is already the record key's form (lowercase, hyphenated:
    /// `validate` accepts only the 36-character form), so the key can be compared with these
    /// bytes instead of a freshly formatted id.
    fn order_id_is_key_form(&self) -> bool {
        !self.order_id.bytes().any(|b| b.is_ascii_uppercase())
    }

    /// Checks every value; the first problem, in wire order, is the one reported.
    fn validate(self) -> Result<OrderEvent, EventError> {
        if self.event_type != EVENT_TYPE {
            return Err(EventError::WrongEventType(excerpt(&self.event_type)));
        }
        let order_id = parse_order_id(&self.order_id)?;
        if self.user_id.is_empty() {
            return Err(EventError::EmptyUserId);
        }
        let status: Status = self.status.parse()?;
        let timestamp = parse_timestamp(&self.timestamp)?;
        let source: Source = self.source.parse()?;
        Ok(OrderEvent {
            order_id,
            user_id: self.user_id.into_owned(),
            status,
            timestamp,
            source,
        })
    }
}

/// Only the canonical 36-character hyphenated form is an order id: it is also the record key,
/// and `{…}` or `urn:uuid:` spellings would make keys of one order differ.
fn parse_order_id(value: &str) -> Result<Uuid, EventError> {
    let bad = |reason: String| EventError::BadOrderId {
        value: excerpt(value),
        reason,
    };
    if value.len() != 36 {
        return Err(bad(format!(
            "expected 36 characters like 6f1c0a52-3d7e-4e55-9a43-2b7a1d9c8e10, found {}",
            value.chars().count()
        )));
    }
    Uuid::try_parse(value).map_err(|e| bad(e.to_string()))
}

fn parse_timestamp(value: &str) -> Result<DateTime<Utc>, EventError> {
    if let Some(utc) = canonical_timestamp(value) {
        return Ok(utc);
    }
    let bad = |reason: String| EventError::BadTimestamp {
        value: excerpt(value),
        reason,
    };
    let utc = DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| bad(e.to_string()))?;
    // An offset can carry a four-digit year past 9999 (or before 0000) once in UTC, which
    // the wire format cannot write: refuse it rather than store another time.
    if !(0..=9999).contains(&utc.year()) {
        return Err(bad(format!(
            "it is in the year {} in UTC; the wire format has four-digit years",
            utc.year()
        )));
    }
    Ok(utc)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, the form orderflow writes, read from its digits: chrono's
/// RFC 3339 parser was a tenth of a consumer's work per record. `None` for anything else,
/// a leap second included, which then goes to chrono as before.
fn canonical_timestamp(value: &str) -> Option<DateTime<Utc>> {
    let bytes = value.as_bytes();
    let punctuation = [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
    ];
    if bytes.len() != 24
        || bytes[23] != b'Z'
        || punctuation.iter().any(|&(at, byte)| bytes[at] != byte)
    {
        return None;
    }
    let number = |at: std::ops::Range<usize>| {
        bytes[at].iter().try_fold(0u32, |n, &digit| {
            digit
                .is_ascii_digit()
                .then(|| n * 10 + u32::from(digit - b'0'))
        })
    };
    let year = i32::try_from(number(0..4)?).ok()?;
    let date = NaiveDate::from_ymd_opt(year, number(5..7)?, number(8..10)?)?;
    let time = NaiveTime::from_hms_milli_opt(
        number(11..13)?,
        number(14..16)?,
        number(17..19)?,
        number(20..23)?,
    )?;
    Some(date.and_time(time).and_utc())
}

impl OrderEvent {
    /// Parses one record value. Never panics, whatever the bytes.
    pub fn parse(bytes: &[u8]) -> Result<OrderEvent, EventError> {
        match fast_path(bytes) {
            Some(fields) => fields.validate(),
            None => Err(diagnose(bytes)),
        }
    }

    /// Parses a whole record: the value must be an order event and the key its order_id, the
    /// wire format's promise that keeps an order in one partition. A record without a value
    /// (a tombstone) is empty.
    pub fn from_record(key: Option<&[u8]>, value: Option<&[u8]>) -> Result<OrderEvent, EventError> {
        let bytes = value.unwrap_or_default();
        let Some(fields) = fast_path(bytes) else {
            return Err(diagnose(bytes));
        };
        // The bytes to compare the key with: the wire's own order_id when it is already in
        // the key's form (what every producer of this format writes), so that a well-formed
        // record costs no formatting of its id.
        let wire_key = fields
            .order_id_is_key_form()
            .then(|| fields.order_id.clone());
        let event = fields.validate()?;
        let matches = |key: &[u8]| match &wire_key {
            Some(wire) => key == wire.as_bytes(),
            None => key == event.key().as_bytes(),
        };
        match key {
            None => Err(EventError::MissingKey),
            Some(key) if matches(key) => Ok(event),
            // An upper-case key is the same order, but the bytes differ, and the producer's
            // partitioner hashes bytes: it may have put the order in another partition.
            Some(key) => Err(EventError::KeyMismatch {
                key: excerpt(&String::from_utf8_lossy(key)),
                order_id: event.order_id,
            }),
        }
    }
}

/// The fast path of [`OrderEvent::parse`]: a well-formed event deserializes straight into
/// borrowed fields, in one pass. The bytes are checked as UTF-8 once, as a whole (serde_json's
/// `from_slice` would check every string on its own, which cost more than the rest of the
/// parse). `None` when anything is wrong: only then do we pay for a second, diagnostic pass
/// that names the problem.
///
/// The canonical form orderflow writes is recognised without a JSON parser first
/// ([`canonical`]); any other spelling of an event goes through serde_json.
fn fast_path(bytes: &[u8]) -> Option<WireFields<'_>> {
    let text = std::str::from_utf8(bytes).ok()?;
    match canonical::read(text) {
        Some(fields) => Some(WireFields {
            event_type: fields.event_type.into(),
            order_id: fields.order_id.into(),
            user_id: fields.user_id.into(),
            status: fields.status.into(),
            timestamp: fields.timestamp.into(),
            source: fields.source.into(),
        }),
        None => serde_json::from_str::<WireFields<'_>>(text).ok(),
    }
}

/// The slow path of [`OrderEvent::parse`]: finds the first thing wrong with `bytes`.
fn diagnose(bytes: &[u8]) -> EventError {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            return EventError::NotUtf8 {
                position: e.valid_up_to(),
            };
        }
    };
    if text.trim().is_empty() {
        return EventError::Empty;
    }
    let mut values = serde_json::Deserializer::from_str(text).into_iter::<FieldList>();
    let fields = match values.next() {
        Some(Ok(FieldList::Object(fields))) => fields,
        Some(Ok(FieldList::Other(found))) => return EventError::NotAnObject { found },
        Some(Err(e)) => {
            return EventError::NotJson {
                reason: e.to_string(),
            };
        }
        None => return EventError::Empty,
    };
    let end = values.byte_offset();
    if !text[end..].trim().is_empty() {
        let position = end + (text[end..].len() - text[end..].trim_start().len());
        return EventError::TrailingData { position };
    }
    diagnose_fields(fields)
}

fn diagnose_fields(fields: Vec<(String, serde_json::Value)>) -> EventError {
    let mut seen = [false; FIELDS.len()];
    for (name, _) in &fields {
        match FIELDS.iter().position(|f| f == name) {
            None => return EventError::UnknownField(excerpt(name)),
            Some(i) if seen[i] => return EventError::DuplicateField(name.clone()),
            Some(i) => seen[i] = true,
        }
    }
    if let Some(i) = seen.iter().position(|present| !present) {
        return EventError::MissingField(FIELDS[i]);
    }
    let mut strings: [&str; FIELDS.len()] = [""; FIELDS.len()];
    for (name, value) in &fields {
        let i = FIELDS
            .iter()
            .position(|f| f == name)
            .expect("checked above");
        match value {
            serde_json::Value::String(s) => strings[i] = s,
            other => {
                return EventError::NotAString {
                    field: FIELDS[i],
                    found: json_kind(other),
                };
            }
        }
    }
    let [event_type, order_id, user_id, status, timestamp, source] = strings;
    let wire = WireFields {
        event_type: event_type.into(),
        order_id: order_id.into(),
        user_id: user_id.into(),
        status: status.into(),
        timestamp: timestamp.into(),
        source: source.into(),
    };
    match wire.validate() {
        Err(e) => e,
        // The fast path rejected it, yet every check passes: serde and this pass disagree.
        // Report the JSON as-is rather than claim the event is fine.
        Ok(_) => EventError::NotJson {
            reason: "the object could not be decoded".to_owned(),
        },
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// A JSON value seen only as far as diagnosis needs: an object keeps its entries in order and
/// with duplicates (serde_json's `Map` would silently keep the last one).
enum FieldList {
    Object(Vec<(String, serde_json::Value)>),
    Other(&'static str),
}

impl<'de> Deserialize<'de> for FieldList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldListVisitor;

        impl<'de> Visitor<'de> for FieldListVisitor {
            type Value = FieldList;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FieldList, A::Error> {
                let mut fields = Vec::new();
                while let Some(entry) = map.next_entry::<String, serde_json::Value>()? {
                    fields.push(entry);
                }
                Ok(FieldList::Object(fields))
            }

            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<FieldList, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(FieldList::Other("an array"))
            }

            fn visit_bool<E>(self, _: bool) -> Result<FieldList, E> {
                Ok(FieldList::Other("a boolean"))
            }

            fn visit_i64<E>(self, _: i64) -> Result<FieldList, E> {
                Ok(FieldList::Other("a number"))
            }

            fn visit_u64<E>(self, _: u64) -> Result<FieldList, E> {
                Ok(FieldList::Other("a number"))
            }

            fn visit_f64<E>(self, _: f64) -> Result<FieldList, E> {
                Ok(FieldList::Other("a number"))
            }

            fn visit_str<E>(self, _: &str) -> Result<FieldList, E> {
                Ok(FieldList::Other("a string"))
            }

            fn visit_unit<E>(self) -> Result<FieldList, E> {
                Ok(FieldList::Other("null"))
            }
        }

        deserializer.deserialize_any(FieldListVisitor)
    }
}
/// Decoding an embedded event applies the same checks as [`OrderEvent::parse`].
impl<'de> Deserialize<'de> for OrderEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        WireFields::deserialize(deserializer)?
            .validate()
            .map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::format_timestamp;
    use crate::domain::event::tests::{GOOD, parse, with};

    #[test]
    fn field_order_and_whitespace_do_not_matter() {
        let reordered = r#" { "source" : "API", "status":"SHIPPED", "user_id":"u",
            "timestamp":"2026-01-02T03:04:05+01:00", "order_id":"6F1C0A52-3D7E-4E55-9A43-2B7A1D9C8E10",
            "event_type":"ORDER_EVENT" } "#;
        let event = parse(reordered).unwrap();
        assert_eq!(event.source, Source::Api);
        assert_eq!(
            format_timestamp(&event.timestamp),
            "2026-01-02T02:04:05.000Z"
        );
        assert_eq!(event.key().as_str(), "6f1c0a52-3d7e-4e55-9a43-2b7a1d9c8e10");
    }

    #[test]
    fn a_time_past_the_four_digit_years_in_utc_is_malformed_not_moved() {
        for (value, year) in [
            ("9999-12-31T23:00:00-05:00", "10000"),
            ("0000-01-01T00:30:00+01:00", "-1"),
        ] {
            let err = parse(&with("timestamp", &format!("\"{value}\""))).unwrap_err();
            assert_eq!(err.kind(), "bad-timestamp", "{value}");
            assert!(err.to_string().contains(year), "{err}");
        }
        let last = parse(&with("timestamp", r#""9999-12-31T18:59:59-05:00""#)).unwrap();
        assert_eq!(
            format_timestamp(&last.timestamp),
            "9999-12-31T23:59:59.000Z"
        );
    }

    #[test]
    fn every_kind_of_malformed_message_is_named() {
        let cases: Vec<(Vec<u8>, EventError)> = vec![
            (b"".to_vec(), EventError::Empty),
            (b"  \n".to_vec(), EventError::Empty),
            (
                b"{\"a\":\xff}".to_vec(),
                EventError::NotUtf8 { position: 5 },
            ),
            (
                b"[]".to_vec(),
                EventError::NotAnObject { found: "an array" },
            ),
            (
                b"42".to_vec(),
                EventError::NotAnObject { found: "a number" },
            ),
            (b"null".to_vec(), EventError::NotAnObject { found: "null" }),
            (b"{}".to_vec(), EventError::MissingField("event_type")),
            (
                format!("{GOOD} x").into_bytes(),
                EventError::TrailingData {
                    position: GOOD.len() + 1,
                },
            ),
            (
                with("status", r#""LOST""#).into_bytes(),
                EventError::UnknownStatus("LOST".into()),
            ),
            (
                with("source", r#""FAX""#).into_bytes(),
                EventError::UnknownSource("FAX".into()),
            ),
            (
                with("event_type", r#""REFUND""#).into_bytes(),
                EventError::WrongEventType("REFUND".into()),
            ),
            (
                with("status", "3").into_bytes(),
                EventError::NotAString {
                    field: "status",
                    found: "a number",
                },
            ),
            (
                with("user_id", r#""""#).into_bytes(),
                EventError::EmptyUserId,
            ),
            (
                with("extra", "1").into_bytes(),
                EventError::UnknownField("extra".into()),
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(
                OrderEvent::parse(&bytes),
                Err(expected),
                "input {:?}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }

    #[test]
    fn bad_values_carry_the_reason() {
        let err = parse(&with("order_id", r#""not-a-uuid""#)).unwrap_err();
        assert_eq!(err.kind(), "bad-order-id");
        assert!(err.to_string().contains("not-a-uuid"), "{err}");

        let err = parse(&with("timestamp", r#""yesterday""#)).unwrap_err();
        assert_eq!(err.kind(), "bad-timestamp");
        assert!(err.to_string().contains("yesterday"), "{err}");

        let err = parse("{\"event_type\": ").unwrap_err();
        assert_eq!(err.kind(), "not-json");
    }

    #[test]
    fn records_need_the_order_id_as_key() {
        let event = parse(GOOD).unwrap();
        let key = event.key();
        let value = GOOD.as_bytes();
        assert_eq!(
            OrderEvent::from_record(Some(key.as_bytes()), Some(value)),
            Ok(event.clone())
        );
        assert_eq!(
            OrderEvent::from_record(None, Some(value)),
            Err(EventError::MissingKey)
        );
        assert_eq!(
            OrderEvent::from_record(Some(b"other"), Some(value))
                .unwrap_err()
                .kind(),
            "key-mismatch"
        );
        assert_eq!(
            OrderEvent::from_record(Some(key.as_bytes()), None),
            Err(EventError::Empty)
        );
    }

    #[test]
    fn a_field_given_twice_is_malformed() {
        let json = GOOD.replace(r#""source":"WEB""#, r#""source":"WEB","source":"API""#);
        assert_eq!(
            parse(&json),
            Err(EventError::DuplicateField("source".into()))
        );
    }

    /// What the parse answered before the canonical form had its own reader: serde_json
    /// for every value, chrono for every time.
    fn through_serde_and_chrono(bytes: &[u8]) -> Result<OrderEvent, EventError> {
        let fields = std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| serde_json::from_str::<WireFields<'_>>(text).ok());
        let Some(fields) = fields else {
            return Err(diagnose(bytes));
        };
        let timestamp = DateTime::parse_from_rfc3339(&fields.timestamp)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| e.to_string());
        let parsed = fields.validate();
        if let Ok(event) = &parsed {
            assert_eq!(Ok(event.timestamp), timestamp, "{bytes:?}");
        }
        parsed
    }

    #[test]
    fn the_canonical_reader_answers_what_serde_answers_for_every_one_byte_change() {
        let good = GOOD.as_bytes();
        assert!(canonical::read(GOOD).is_some(), "GOOD is canonical");
        let replacements: &[&[u8]] = &[
            b"\"",
            b"\\",
            b" ",
            b",",
            b":",
            b"}",
            b"{",
            b"0",
            b"9",
            b"x",
            b"\x01",
            b"\x7f",
            "é".as_bytes(),
            b"\xff",
            b"",
        ];
        let mut checked = 0;
        for at in 0..=good.len() {
            for replacement in replacements {
                for replace in [true, false] {
                    if replace && at == good.len() {
                        continue;
                    }
                    let skip = usize::from(replace);
                    let bytes = [&good[..at], replacement, &good[at + skip..]].concat();
                    assert_eq!(
                        OrderEvent::parse(&bytes),
                        through_serde_and_chrono(&bytes),
                        "{:?}",
                        String::from_utf8_lossy(&bytes)
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 5_000, "{checked}");
    }

    #[test]
    fn what_orderflow_writes_is_read_by_the_canonical_reader() {
        // Otherwise every record would quietly take serde_json's slower path (issue 20).
        let mut generator = crate::domain::generator::OrderGenerator::new(7);
        for _ in 0..500 {
            let json = generator.next_event(chrono::Utc::now()).to_json();
            let fields = canonical::read(&json).expect("the encoder's form is canonical");
            assert!(canonical_timestamp(fields.timestamp).is_some(), "{json}");
        }
    }

    #[test]
    fn the_canonical_time_reader_answers_what_chrono_answers() {
        let times = [
            "2026-11-21T18:30:05.123Z",
            "0000-01-01T00:00:00.000Z",
            "9999-12-31T23:59:59.999Z",
            "2024-02-29T12:00:00.000Z",
            "2023-02-29T12:00:00.000Z",
            "2026-13-01T00:00:00.000Z",
            "2026-00-01T00:00:00.000Z",
            "2026-04-31T00:00:00.000Z",
            "2026-01-00T00:00:00.000Z",
            "2026-01-01T24:00:00.000Z",
            "2026-01-01T23:60:00.000Z",
            "2016-12-31T23:59:60.500Z",
            "2026-01-01T00:00:61.000Z",
            "2026-01-01t00:00:00.000Z",
            "2026-01-01T00:00:00.000z",
            "2026-01-01 00:00:00.000Z",
            "2026-01-01T00:00:00,000Z",
            "2026-01-01T00:00:00.0000",
            "+026-01-01T00:00:00.000Z",
            "2026-01-01T00:00:00.00aZ",
            "2026-01-01T00:00:00.123+00:00",
            "2026-01-01T00:00:00Z",
        ];
        for time in times {
            let json = GOOD.replace("2026-11-21T18:30:05.123Z", time);
            assert_eq!(
                parse(&json),
                through_serde_and_chrono(json.as_bytes()),
                "{time}"
            );
        }
        assert!(canonical_timestamp("2026-11-21T18:30:05.123Z").is_some());
        assert!(canonical_timestamp("2016-12-31T23:59:60.500Z").is_none());
    }

    #[test]
    fn huge_values_are_cut_short_in_messages() {
        let huge = "X".repeat(1_000_000);
        let err = parse(&with("status", &format!("\"{huge}\""))).unwrap_err();
        assert!(err.to_string().len() < 200);
    }
}
