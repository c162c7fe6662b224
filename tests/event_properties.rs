//! Property tests of the wire format: whatever the generator or a user id contains, an event
//! survives encode → parse unchanged; whatever bytes arrive, parsing answers and never panics.

use chrono::{DateTime, TimeZone, Utc};
use orderflow::domain::event::{OrderEvent, OrderKey, Source, Status};
use orderflow::domain::generator::OrderGenerator;
use proptest::prelude::*;
use uuid::Uuid;

fn status() -> impl Strategy<Value = Status> {
    prop::sample::select(Status::ALL.to_vec())
}

fn source() -> impl Strategy<Value = Source> {
    prop::sample::select(Source::ALL.to_vec())
}

/// Any instant RFC 3339 can write with a four-digit year, at ms, µs or ns precision.
fn timestamp() -> impl Strategy<Value = DateTime<Utc>> {
    let earliest = Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap().timestamp();
    let latest = Utc
        .with_ymd_and_hms(9999, 12, 31, 23, 59, 59)
        .unwrap()
        .timestamp();
    (earliest..=latest, 0u32..1_000_000_000, 0..3usize).prop_map(|(secs, nanos, precision)| {
        let nanos = match precision {
            0 => nanos / 1_000_000 * 1_000_000,
            1 => nanos / 1_000 * 1_000,
            _ => nanos,
        };
        Utc.timestamp_opt(secs, nanos).unwrap()
    })
}

fn event() -> impl Strategy<Value = OrderEvent> {
    (any::<u128>(), "\\PC{1,40}", status(), timestamp(), source()).prop_map(
        |(id, user_id, status, timestamp, source)| OrderEvent {
            order_id: Uuid::from_u128(id),
            user_id,
            status,
            timestamp,
            source,
        },
    )
}

proptest! {
    #[test]
    fn generated_events_round_trip(seed in any::<u64>(), n in 1usize..300) {
        let mut generator = OrderGenerator::new(seed);
        for _ in 0..n {
            let event = generator.next_event(Utc::now());
            let parsed = OrderEvent::parse(event.to_json().as_bytes()).unwrap();
            prop_assert_eq!(parsed, event);
        }
    }

    #[test]
    fn any_event_round_trips_through_the_wire_and_serde(event in event()) {
        let wire = event.to_json();
        prop_assert_eq!(OrderEvent::parse(wire.as_bytes()).unwrap(), event.clone());
        let embedded = serde_json::to_string(&event).unwrap();
        prop_assert_eq!(&embedded, &wire);
        prop_assert_eq!(serde_json::from_str::<OrderEvent>(&embedded).unwrap(), event);
    }

    #[test]
    fn a_key_is_the_order_id_as_uuid_writes_it(id in any::<u128>()) {
        let id = Uuid::from_u128(id);
        let key = OrderKey::new(id);
        prop_assert_eq!(key.as_str(), id.hyphenated().to_string());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = OrderEvent::parse(&bytes);
    }

    #[test]
    fn corrupted_events_never_panic_and_are_never_silently_accepted_wrong(
        event in event(),
        cut in 0usize..400,
        byte in any::<u8>(),
    ) {
        let mut wire = event.to_json().into_bytes();
        let at = cut % wire.len();
        wire[at] = byte;
        // A changed byte either still parses (e.g. a different digit of the UUID) into an
        // event that re-encodes to exactly those bytes, or is rejected with a reason.
        match OrderEvent::parse(&wire) {
            Ok(parsed) => {
                let reparsed = OrderEvent::parse(parsed.to_json().as_bytes()).unwrap();
                prop_assert_eq!(reparsed, parsed);
            }
            Err(error) => prop_assert!(!error.to_string().is_empty()),
        }
    }
}
