//! Recognising the one form of the wire JSON that orderflow itself writes
//! ([`super::event::encode_fields`]: the six fields in wire order, no whitespace, no escapes),
//! without a JSON parser. Every producer of this format writes that form, and reading it this
//! way costs a tenth of a general parse (issue 20: serde_json was half of every consumer
//! role's instructions per record).
//!
//! This is a recogniser, not a second parser: it accepts only byte strings that are valid JSON
//! objects with exactly these six string fields, whose values serde_json would decode to the
//! same characters — a value without a backslash or a control character decodes to itself.
//! Anything else (other field order, whitespace, escapes, anything malformed) answers `None`,
//! and the caller reads it with serde_json as before, so what is accepted and every error
//! message stay serde_json's.

/// The six values of a canonical event, as they stand between their quotes.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct CanonicalFields<'a> {
    pub event_type: &'a str,
    pub order_id: &'a str,
    pub user_id: &'a str,
    pub status: &'a str,
    pub timestamp: &'a str,
    pub source: &'a str,
}

/// What stands before each value: the object's opening and every field's name.
const OPENING: &str = r#"{"event_type":""#;
const ORDER_ID: &str = r#"","order_id":""#;
const USER_ID: &str = r#"","user_id":""#;
const STATUS: &str = r#"","status":""#;
const TIMESTAMP: &str = r#"","timestamp":""#;
const SOURCE: &str = r#"","source":""#;
const CLOSING: &str = r#""}"#;

/// The fields of `text` when it is exactly in the canonical form, else `None`.
pub(super) fn read(text: &str) -> Option<CanonicalFields<'_>> {
    let mut rest = text.strip_prefix(OPENING)?;
    let mut next = |before_next: &str| -> Option<&str> {
        let value = plain_string(rest)?;
        rest = rest[value.len()..].strip_prefix(before_next)?;
        Some(value)
    };
    let fields = CanonicalFields {
        event_type: next(ORDER_ID)?,
        order_id: next(USER_ID)?,
        user_id: next(STATUS)?,
        status: next(TIMESTAMP)?,
        timestamp: next(SOURCE)?,
        source: next(CLOSING)?,
    };
    rest.is_empty().then_some(fields)
}

/// The characters of a JSON string's contents up to its closing quote, when they need no
/// decoding: no backslash (an escape would change the characters) and no control character
/// (which JSON does not allow unescaped, so serde_json refuses it). `None` otherwise, or when
/// the string does not end.
fn plain_string(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let end = first_special(bytes)?;
    (bytes[end] == b'"').then(|| &text[..end])
}

/// The first quote, backslash or control character (below 0x20) in `bytes`. Eight bytes at a
/// time: a value is 5 to 40 bytes, and a byte-at-a-time loop was most of the reading.
fn first_special(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut chunks = bytes.chunks_exact(8);
    for (index, chunk) in chunks.by_ref().enumerate() {
        let word = u64::from_le_bytes(chunk.try_into().expect("chunks of 8"));
        // A byte's high bit is set in `below_0x20` when the byte is below 0x20, in the others
        // when it equals the byte looked for (the classic zero-byte test on `word ^ pattern`);
        // bytes at 0x80 and above are excluded by `!word`. Only the lowest set bit is exact,
        // which is the one wanted.
        let below_0x20 = word.wrapping_sub(ONES * 0x20);
        let quote = (word ^ (ONES * u64::from(b'"'))).wrapping_sub(ONES);
        let backslash = (word ^ (ONES * u64::from(b'\\'))).wrapping_sub(ONES);
        let found = (below_0x20 | quote | backslash) & !word & HIGHS;
        if found != 0 {
            return Some(index * 8 + (found.trailing_zeros() / 8) as usize);
        }
    }
    let tail = chunks.remainder();
    let special = |&b: &u8| b == b'"' || b == b'\\' || b < 0x20;
    tail.iter()
        .position(special)
        .map(|at| bytes.len() - tail.len() + at)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"event_type":"ORDER_EVENT","order_id":"6f1c0a52-3d7e-4e55-9a43-2b7a1d9c8e10","user_id":"user_42","status":"CREATED","timestamp":"2026-11-21T18:30:05.123Z","source":"WEB"}"#;

    #[test]
    fn the_canonical_form_is_read_field_by_field() {
        assert_eq!(
            read(GOOD),
            Some(CanonicalFields {
                event_type: "ORDER_EVENT",
                order_id: "6f1c0a52-3d7e-4e55-9a43-2b7a1d9c8e10",
                user_id: "user_42",
                status: "CREATED",
                timestamp: "2026-11-21T18:30:05.123Z",
                source: "WEB",
            })
        );
    }

    #[test]
    fn anything_but_the_canonical_form_is_left_to_the_json_parser() {
        let others = [
            GOOD.replacen('{', "{ ", 1),
            format!("{GOOD}\n"),
            format!(" {GOOD}"),
            GOOD.replace("user_42", r"user\u0034"),
            GOOD.replace("user_42", r#"user\"42"#),
            GOOD.replace("user_42", "user\t42"),
            GOOD.replace("user_42", "user\u{1}42"),
            GOOD.replace(r#","source":"WEB""#, ""),
            GOOD.replace(r#""source":"WEB"}"#, r#""source":"WEB","source":"WEB"}"#),
            GOOD.replace(r#""WEB"}"#, r#""WEB","extra":"x"}"#),
            GOOD.replace(r#""status":"CREATED""#, r#""status":3"#),
            GOOD[..GOOD.len() - 1].to_owned(),
            GOOD[..GOOD.len() - 2].to_owned(),
            String::new(),
        ];
        for other in others {
            assert_eq!(read(&other), None, "{other:?}");
        }
    }

    #[test]
    fn the_first_special_byte_is_found_wherever_it_stands() {
        let specials = [b'"', b'\\', 0x00, 0x01, 0x1f];
        let plain = [b'a', b' ', b'!', b'#', b'[', b']', 0x7f, 0x80, 0xc3, 0xff];
        for len in 0..40 {
            for at in 0..len {
                for special in specials {
                    for filler in plain {
                        let mut bytes = vec![filler; len];
                        bytes[at] = special;
                        // A second special byte later must not be the one reported.
                        if at + 3 < len {
                            bytes[at + 3] = b'"';
                        }
                        assert_eq!(first_special(&bytes), Some(at), "{bytes:?}");
                    }
                }
            }
            for filler in plain {
                assert_eq!(first_special(&vec![filler; len]), None);
            }
        }
    }

    #[test]
    fn values_with_any_unescaped_character_json_allows_are_read_as_they_are() {
        let text = GOOD.replace("user_42", "üser/42 \u{7f}→");
        assert_eq!(read(&text).map(|f| f.user_id), Some("üser/42 \u{7f}→"));
        // Empty and wrong values are read: judging them is the validation's work.
        let text = GOOD.replace("user_42", "").replace("CREATED", "LOST");
        let fields = read(&text).unwrap();
        assert_eq!((fields.user_id, fields.status), ("", "LOST"));
    }
}
