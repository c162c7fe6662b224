//! The order event: the fixed wire format of the `order-events` topic and its fast encoder.
//! Reading it back, with a strict parser whose errors say exactly what is wrong with a
//! message, is `domain::record`'s.
//!
//! Wire format (design.md): key = the order_id as UTF-8, value = one JSON object with exactly
//! the fields `event_type` (always `ORDER_EVENT`), `order_id` (a UUID), `user_id`, `status`,
//! `timestamp` (RFC 3339, UTC) and `source`. Anything else is *malformed*.

use std::fmt;

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The only accepted value of `event_type`.
pub(crate) const EVENT_TYPE: &str = "ORDER_EVENT";

/// Where an order was placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Source {
    Web,
    Mobile,
    Api,
}

impl Source {
    /// Every source, in display order.
    pub const ALL: [Source; 3] = [Source::Web, Source::Mobile, Source::Api];

    /// The wire name (`WEB`, `MOBILE`, `API`).
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Source::Web => "WEB",
            Source::Mobile => "MOBILE",
            Source::Api => "API",
        }
    }
}

/// Where an order is in its lifecycle. The allowed transitions live in [`crate::domain::lifecycle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Placed,
    Confirmed,
    Shipped,
    Delivered,
}

impl Status {
    /// Every status, in lifecycle order.
    pub const ALL: [Status; 4] = [
        Status::Placed,
        Status::Confirmed,
        Status::Shipped,
        Status::Delivered,
    ];

    /// The wire name (`PLACED`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Placed => "PLACED",
            Status::Confirmed => "CONFIRMED",
            Status::Shipped => "SHIPPED",
            Status::Delivered => "DELIVERED",
        }
    }

    /// Position in the lifecycle, 0 for PLACED; also an index into per-status arrays.
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One order event, as produced to and consumed from the topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderEvent {
    /// The order this event belongs to; also the record key, so an order stays in one partition.
    pub order_id: Uuid,
    /// The customer, e.g. `user_123`.
    pub user_id: String,
    /// The lifecycle step this event reports.
    pub status: Status,
    /// When the step happened (wall clock of the producer).
    pub timestamp: DateTime<Utc>,
    /// The channel the order came through.
    pub source: Source,
}

/// Why a message is not an order event. Each variant names the problem precisely, so a learner
/// can see what a malformed message got wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("empty message")]
    Empty,
    #[error("not UTF-8 (invalid byte at position {position})")]
    NotUtf8 { position: usize },
    #[error("not JSON: {reason}")]
    NotJson { reason: String },
    #[error("not a JSON object but {found}")]
    NotAnObject { found: &'static str },
    #[error("extra data after the JSON object (from byte {position})")]
    TrailingData { position: usize },
    #[error("missing field \"{0}\"")]
    MissingField(&'static str),
    #[error("unknown field \"{0}\"")]
    UnknownField(String),
    #[error("field \"{0}\" appears more than once")]
    DuplicateField(String),
    #[error("field \"{field}\" must be a string, found {found}")]
    NotAString {
        field: &'static str,
        found: &'static str,
    },
    #[error("event_type must be \"{EVENT_TYPE}\", found \"{0}\"")]
    WrongEventType(String),
    #[error("order_id \"{value}\" is not a UUID ({reason})")]
    BadOrderId { value: String, reason: String },
    #[error("user_id is empty")]
    EmptyUserId,
    #[error("unknown status \"{0}\" (expected PLACED, CONFIRMED, SHIPPED or DELIVERED)")]
    UnknownStatus(String),
    #[error("unknown source \"{0}\" (expected WEB, MOBILE or API)")]
    UnknownSource(String),
    #[error("timestamp \"{value}\" is not an RFC 3339 time ({reason})")]
    BadTimestamp { value: String, reason: String },
    #[error("the record has no key (the key must be the order_id)")]
    MissingKey,
    #[error("the record key \"{key}\" is not the event's order_id {order_id}")]
    KeyMismatch { key: String, order_id: Uuid },
}

impl EventError {
    /// A short, stable name for the kind of problem: used as a counter key, in `--json` output
    /// and in dead-letter headers, where the full message is too long to group by.
    pub const fn kind(&self) -> &'static str {
        match self {
            EventError::Empty => "empty",
            EventError::NotUtf8 { .. } => "not-utf8",
            EventError::NotJson { .. } => "not-json",
            EventError::NotAnObject { .. } => "not-an-object",
            EventError::TrailingData { .. } => "trailing-data",
            EventError::MissingField(_) => "missing-field",
            EventError::UnknownField(_) => "unknown-field",
            EventError::DuplicateField(_) => "duplicate-field",
            EventError::NotAString { .. } => "wrong-type",
            EventError::WrongEventType(_) => "wrong-event-type",
            EventError::BadOrderId { .. } => "bad-order-id",
            EventError::EmptyUserId => "empty-user-id",
            EventError::UnknownStatus(_) => "unknown-status",
            EventError::UnknownSource(_) => "unknown-source",
            EventError::BadTimestamp { .. } => "bad-timestamp",
            EventError::MissingKey => "missing-key",
            EventError::KeyMismatch { .. } => "key-mismatch",
        }
    }
}

/// The names of the six fields, in wire order.
pub(super) const FIELDS: [&str; 6] = [
    "event_type",
    "order_id",
    "user_id",
    "status",
    "timestamp",
    "source",
];

impl OrderEvent {
    /// The record key: the order id in its canonical lowercase hyphenated form.
    pub fn key(&self) -> OrderKey {
        OrderKey::new(self.order_id)
    }

    /// Appends the wire JSON (no trailing newline) to `out`. Hand-written because the producer
    /// encodes every event it sends (its send loop skips the `OrderEvent` and goes to
    /// `encode_fields` directly, with the same bytes).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        encode_fields(
            out,
            &self.key(),
            |out| write_json_string(out, &self.user_id),
            self.status,
            |out| write_timestamp(out, &self.timestamp),
            self.source,
        );
    }

    /// The wire JSON as a string.
    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(192);
        self.encode_into(&mut out);
        // Every piece written above is UTF-8: literals, hex digits and a JSON-escaped `&str`.
        String::from_utf8(out).expect("encoder writes UTF-8")
    }
}

/// An order id formatted as a record key, without allocating.
#[derive(Clone, Copy)]
pub struct OrderKey([u8; uuid::fmt::Hyphenated::LENGTH]);

/// Each byte value's two lowercase hex digits.
const HEX_PAIRS: [[u8; 2]; 256] = {
    let digits = b"0123456789abcdef";
    let mut pairs = [[0u8; 2]; 256];
    let mut byte = 0;
    while byte < 256 {
        pairs[byte] = [digits[byte >> 4], digits[byte & 15]];
        byte += 1;
    }
    pairs
};

/// Where each of a UUID's 16 bytes goes in its hyphenated form (8-4-4-4-12 digits).
const HEX_AT: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

impl OrderKey {
    /// The hyphenated lowercase form `uuid` writes, a digit pair per byte from a table: the
    /// producer makes a key for every event, and uuid's encoder cost 125 instructions a key
    /// (callgrind), this one about 50.
    pub fn new(order_id: Uuid) -> OrderKey {
        let mut buf = [b'-'; uuid::fmt::Hyphenated::LENGTH];
        for (byte, at) in order_id.as_bytes().iter().zip(HEX_AT) {
            buf[at..at + 2].copy_from_slice(&HEX_PAIRS[usize::from(*byte)]);
        }
        OrderKey(buf)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        // encode_lower writes ASCII hex digits and hyphens only.
        std::str::from_utf8(&self.0).expect("a UUID is ASCII")
    }
}

/// Appends the wire JSON of one event to `out`, its fields in wire order: the one encoder of
/// every event orderflow writes. `user_id` writes the user id as a JSON string literal and
/// `timestamp` the time's characters (without quotes).
pub(crate) fn encode_fields(
    out: &mut Vec<u8>,
    key: &OrderKey,
    user_id: impl FnOnce(&mut Vec<u8>),
    status: Status,
    timestamp: impl FnOnce(&mut Vec<u8>),
    source: Source,
) {
    out.extend_from_slice(br#"{"event_type":"ORDER_EVENT","order_id":""#);
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(br#"","user_id":"#);
    user_id(out);
    out.extend_from_slice(br#","status":""#);
    out.extend_from_slice(status.as_str().as_bytes());
    out.extend_from_slice(br#"","timestamp":""#);
    timestamp(out);
    out.extend_from_slice(br#"","source":""#);
    out.extend_from_slice(source.as_str().as_bytes());
    out.extend_from_slice(br#""}"#);
}

/// Writes millisecond timestamps as [`write_timestamp`] does, formatting the date and the time
/// of day once per second instead of once per event: the producer stamps every event it sends
/// with the wall clock, and chrono's calendar arithmetic was a sixth of its own work.
#[derive(Debug, Default)]
pub struct MillisTimestamps {
    /// The second (since the Unix epoch) `prefix` is for.
    second: Option<i64>,
    /// `2026-11-21T18:30:05.` for that second.
    prefix: [u8; 20],
}

impl MillisTimestamps {
    /// Writes the time `millis` milliseconds after the Unix epoch, e.g.
    /// `2026-11-21T18:30:05.123Z`.
    pub fn write(&mut self, out: &mut Vec<u8>, millis: i64) {
        let (second, milli) = (millis.div_euclid(1000), millis.rem_euclid(1000) as u32);
        if self.second != Some(second) {
            let mut full = Vec::with_capacity(24);
            let time = DateTime::from_timestamp(second, 0).unwrap_or_default();
            write_timestamp(&mut full, &time);
            self.prefix.copy_from_slice(&full[..20]);
            self.second = Some(second);
        }
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(&[
            b'0' + (milli / 100) as u8,
            b'0' + (milli / 10 % 10) as u8,
            b'0' + (milli % 10) as u8,
            b'Z',
        ]);
    }
}

/// Writes `value` as a JSON string literal. Plain ASCII (every generated user id) is copied
/// directly; anything needing escapes goes through serde_json.
fn write_json_string(out: &mut Vec<u8>, value: &str) {
    let plain = value
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\');
    if plain {
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, value).expect("writing to a Vec cannot fail");
    }
}

/// Writes `2026-11-21T18:30:05.123Z`: milliseconds when the time has no finer part (every
/// generated event), otherwise as many digits as it needs, so that parse → encode is lossless.
fn write_timestamp(out: &mut Vec<u8>, t: &DateTime<Utc>) {
    let mut buf = TimeText::default();
    buf.write(t, true);
    out.extend_from_slice(buf.as_bytes());
}

/// A timestamp's text on the stack: long enough for `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
#[derive(Default)]
struct TimeText {
    bytes: [u8; 30],
    len: usize,
}

impl TimeText {
    fn push(&mut self, byte: u8) {
        self.bytes[self.len] = byte;
        self.len += 1;
    }

    fn digits(&mut self, value: u32, width: usize) {
        let mut v = value;
        for slot in self.bytes[self.len..self.len + width].iter_mut().rev() {
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
        self.len += width;
    }

    /// The date and time in UTC; the fraction as 3, 6 or 9 digits, whichever keeps every
    /// non-zero one, and none for a whole second unless `always_fraction`.
    fn write(&mut self, t: &DateTime<Utc>, always_fraction: bool) {
        self.digits(t.year().clamp(0, 9999) as u32, 4);
        self.push(b'-');
        self.digits(t.month(), 2);
        self.push(b'-');
        self.digits(t.day(), 2);
        self.push(b'T');
        self.digits(t.hour(), 2);
        self.push(b':');
        self.digits(t.minute(), 2);
        self.push(b':');
        self.digits(t.second(), 2);
        let nanos = t.nanosecond().min(999_999_999);
        if nanos != 0 || always_fraction {
            self.push(b'.');
            if nanos.is_multiple_of(1_000_000) {
                self.digits(nanos / 1_000_000, 3);
            } else if nanos.is_multiple_of(1_000) {
                self.digits(nanos / 1_000, 6);
            } else {
                self.digits(nanos, 9);
            }
        }
        self.push(b'Z');
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).expect("digits and punctuation are ASCII")
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// A time serialized exactly as chrono's own `Serialize` writes it (`2026-12-01T16:20:28Z`,
/// `…28.123Z`, `…28.123456Z`, `…28.123456789Z`), for serde's `serialize_with`. chrono's goes
/// through `collect_str` and `fmt`, one character at a time through serde_json's escaping
/// writer: storage writes two of these per line, and they cost it as much as the rest of the
/// line. Years outside 0000–9999 and leap seconds, which chrono spells differently, are left
/// to chrono.
pub(crate) fn serialize_utc<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    if !(0..=9999).contains(&t.year()) || t.nanosecond() >= 1_000_000_000 {
        return t.serialize(s);
    }
    let mut text = TimeText::default();
    text.write(t, false);
    s.serialize_str(text.as_str())
}

/// [`serialize_utc`] for an optional time (`null` for none, as chrono's).
pub(crate) fn serialize_utc_opt<S: Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    struct Time<'a>(&'a DateTime<Utc>);
    impl Serialize for Time<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            serialize_utc(self.0, s)
        }
    }
    match t {
        Some(t) => s.serialize_some(&Time(t)),
        None => s.serialize_none(),
    }
}

/// Formats a timestamp the way events carry it.
pub(crate) fn format_timestamp(t: &DateTime<Utc>) -> String {
    let mut out = Vec::with_capacity(30);
    write_timestamp(&mut out, t);
    String::from_utf8(out).expect("timestamps are ASCII")
}

/// Events embed as the wire object (the audit log stores them so).
impl Serialize for OrderEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("OrderEvent", FIELDS.len())?;
        s.serialize_field("event_type", EVENT_TYPE)?;
        s.serialize_field("order_id", self.key().as_str())?;
        s.serialize_field("user_id", &self.user_id)?;
        s.serialize_field("status", self.status.as_str())?;
        let mut timestamp = TimeText::default();
        timestamp.write(&self.timestamp, true);
        s.serialize_field("timestamp", timestamp.as_str())?;
        s.serialize_field("source", self.source.as_str())?;
        s.end()
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    #[test]
    fn serialize_utc_writes_what_chrono_writes() {
        #[derive(Serialize)]
        struct Ours {
            #[serde(serialize_with = "serialize_utc")]
            t: DateTime<Utc>,
            #[serde(serialize_with = "serialize_utc_opt")]
            o: Option<DateTime<Utc>>,
        }
        #[derive(Serialize)]
        struct Chrono {
            t: DateTime<Utc>,
            o: Option<DateTime<Utc>>,
        }
        let mut times = Vec::new();
        for secs in [
            0,
            1_764_606_028,
            -62_167_219_200, // 0000-01-01
            253_402_300_799, // 9999-12-31T23:59:59
            253_402_300_800, // 10000-01-01: chrono's own spelling
            -62_167_219_201, // the year -1
            951_782_400,     // 2000-02-29
        ] {
            for nanos in [
                0,
                1,
                1_000,
                7_000_000,
                123_456_789,
                999_999_999,
                1_500_000_000,
            ] {
                times.extend(DateTime::from_timestamp(secs, nanos));
            }
        }
        assert!(times.len() > 40);
        for t in times {
            for o in [None, Some(t)] {
                let ours = serde_json::to_string(&Ours { t, o }).unwrap();
                let chrono = serde_json::to_string(&Chrono { t, o }).unwrap();
                assert_eq!(ours, chrono, "{t:?}");
            }
        }
    }

    pub(in crate::domain) const GOOD: &str = r#"{"event_type":"ORDER_EVENT","order_id":"6f1c0a52-3d7e-4e55-9a43-2b7a1d9c8e10","user_id":"user_123","status":"PLACED","timestamp":"2026-11-21T18:30:05.123Z","source":"WEB"}"#;

    pub(in crate::domain) fn parse(s: &str) -> Result<OrderEvent, EventError> {
        OrderEvent::parse(s.as_bytes())
    }

    /// The design example with one field set to the JSON `value`.
    pub(in crate::domain) fn with(field: &str, value: &str) -> String {
        let mut v: serde_json::Value = serde_json::from_str(GOOD).unwrap();
        v[field] = serde_json::from_str(value).unwrap();
        v.to_string()
    }

    #[test]
    fn parses_the_design_example_and_encodes_it_byte_for_byte() {
        let event = parse(GOOD).unwrap();
        assert_eq!(event.status, Status::Placed);
        assert_eq!(event.source, Source::Web);
        assert_eq!(event.user_id, "user_123");
        assert_eq!(event.key().as_str(), "6f1c0a52-3d7e-4e55-9a43-2b7a1d9c8e10");
        assert_eq!(event.to_json(), GOOD);
    }

    #[test]
    fn serde_embedding_matches_the_wire_encoding() {
        let event = parse(GOOD).unwrap();
        assert_eq!(serde_json::to_string(&event).unwrap(), GOOD);
        let back: OrderEvent = serde_json::from_str(GOOD).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn sub_millisecond_timestamps_survive_a_round_trip() {
        let json = with("timestamp", r#""2026-11-21T18:30:05.123456Z""#);
        let event = parse(&json).unwrap();
        assert!(event.to_json().contains("05.123456Z"));
        assert_eq!(parse(&event.to_json()).unwrap(), event);
    }

    #[test]
    fn cached_millisecond_timestamps_match_the_encoder() {
        let mut cached = MillisTimestamps::default();
        // Within a second, across a second, a minute, a day and a year, and back again.
        for millis in [
            1_795_000_000_000_i64,
            1_795_000_000_999,
            1_795_000_001_000,
            1_795_000_001_007,
            1_798_761_599_999,
            1_798_761_600_000,
            1_795_000_000_010,
            0,
        ] {
            let mut out = Vec::new();
            cached.write(&mut out, millis);
            let time = DateTime::from_timestamp_millis(millis).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), format_timestamp(&time));
        }
    }

    #[test]
    fn user_ids_needing_escapes_are_escaped() {
        let json = with("user_id", r#""say \"hi\"\n\u00e9""#);
        let event = parse(&json).unwrap();
        assert_eq!(event.user_id, "say \"hi\"\né");
        assert_eq!(parse(&event.to_json()).unwrap(), event);
    }
}
