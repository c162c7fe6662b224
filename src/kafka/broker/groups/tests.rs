//! Unit tests of the group book: which joins fit a group, expiry, and what it describes.

use super::view::GroupState;
use super::*;

fn attempt(group: &str, member: &str, protocols: &[&str]) -> JoinAttempt {
    JoinAttempt {
        group: group.into(),
        member_id: member.into(),
        instance_id: None,
        client_id: "rdkafka".into(),
        host: "/127.0.0.1".into(),
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|name| Protocol {
                name: (*name).into(),
                metadata: Bytes::from(format!("meta-{name}")),
            })
            .collect(),
        session_timeout: Duration::from_secs(6),
    }
}

fn joined_member(book: &mut GroupBook, group: &str, protocols: &[&str], id: &str) {
    let now = Instant::now();
    let (ticket, _) = book.join(attempt(group, "", protocols), now).unwrap();
    book.joined(group, ticket, 0, id, 1);
}

#[test]
fn a_joiner_sharing_no_protocol_with_the_group_is_refused() {
    let mut book = GroupBook::default();
    joined_member(&mut book, "g", &["cooperative-sticky"], "m1");
    let now = Instant::now();
    // kcat's default assignors beside orderflow's.
    assert!(matches!(
        book.join(attempt("g", "", &["range", "roundrobin"]), now),
        Err(JoinRefusal::NoCommonProtocol { .. })
    ));
    assert!(matches!(
        book.join(attempt("g", "", &[]), now),
        Err(JoinRefusal::Empty)
    ));
    let mut other_type = attempt("g", "", &["cooperative-sticky"]);
    other_type.protocol_type = "connect".into();
    assert!(matches!(
        book.join(other_type, now),
        Err(JoinRefusal::ProtocolType { .. })
    ));
    // The group keeps its member.
    assert_eq!(book.describe("g", now).unwrap().members.len(), 1);
}

#[test]
fn a_joiner_that_supports_the_groups_protocol_is_forwarded_with_that_protocol_alone() {
    let mut book = GroupBook::default();
    joined_member(&mut book, "g", &["cooperative-sticky"], "m1");
    // Java's default list: range first. The mock would take range as this member's
    // protocol and abort; the front forwards cooperative-sticky alone.
    let (_, chosen) = book
        .join(
            attempt("g", "", &["range", "cooperative-sticky"]),
            Instant::now(),
        )
        .unwrap();
    assert_eq!(chosen.name, "cooperative-sticky");
    assert_eq!(chosen.metadata, Bytes::from("meta-cooperative-sticky"));
}

#[test]
fn roundrobin_into_a_range_group_is_refused_and_an_empty_group_takes_any_protocol() {
    let mut book = GroupBook::default();
    joined_member(&mut book, "g", &["range"], "m1");
    let now = Instant::now();
    assert!(book.join(attempt("g", "", &["roundrobin"]), now).is_err());
    book.left("g", "m1");
    assert!(book.join(attempt("g", "", &["roundrobin"]), now).is_ok());
}

#[test]
fn a_member_rejoining_alone_may_change_protocol() {
    let mut book = GroupBook::default();
    joined_member(&mut book, "g", &["range"], "m1");
    let (ticket, chosen) = book
        .join(attempt("g", "m1", &["roundrobin"]), Instant::now())
        .unwrap();
    assert_eq!(chosen.name, "roundrobin");
    book.joined("g", ticket, 0, "m1", 2);
    let view = book.describe("g", Instant::now()).unwrap();
    assert_eq!(view.members.len(), 1);
    assert_eq!(view.protocol, "roundrobin");
}

#[test]
fn silent_members_expire_after_their_session_timeout_and_a_grace() {
    let mut book = GroupBook::default();
    let start = Instant::now();
    let (ticket, _) = book.join(attempt("g", "", &["range"]), start).unwrap();
    book.joined("g", ticket, 0, "m1", 1);
    book.seen("g", "m1", start);
    let later = start + Duration::from_secs(6) + EXPIRY_GRACE - Duration::from_millis(1);
    assert!(book.join(attempt("g", "", &["roundrobin"]), later).is_err());
    let expired = start + Duration::from_secs(6) + EXPIRY_GRACE + Duration::from_secs(1);
    assert!(
        book.join(attempt("g", "", &["roundrobin"]), expired)
            .is_ok()
    );
}

#[test]
fn a_join_in_flight_counts_and_a_failed_first_join_does_not() {
    let mut book = GroupBook::default();
    let now = Instant::now();
    let (ticket, _) = book.join(attempt("g", "", &["range"]), now).unwrap();
    assert!(book.join(attempt("g", "", &["roundrobin"]), now).is_err());
    book.joined("g", ticket, 16, "", -1);
    assert!(book.join(attempt("g", "", &["roundrobin"]), now).is_ok());
}

#[test]
fn classic_and_kip_848_members_never_share_a_group() {
    let mut book = GroupBook::default();
    let now = Instant::now();
    joined_member(&mut book, "classic", &["range"], "m1");
    assert_eq!(
        book.consumer_heartbeat("classic", "", false, now),
        Err(ClassicGroupInUse("classic".into()))
    );
    assert!(book.consumer_heartbeat("new", "", false, now).is_ok());
    book.consumer_joined("new", "c1", now);
    assert_eq!(
        book.join(attempt("new", "", &["range"]), now).unwrap_err(),
        JoinRefusal::ConsumerGroup
    );
    assert_eq!(book.list(now)[1].kind, "consumer");
    book.consumer_heartbeat("new", "c1", true, now).unwrap();
    assert!(book.join(attempt("new", "", &["range"]), now).is_ok());
}

#[test]
fn describe_shows_members_assignments_and_state() {
    let mut book = GroupBook::default();
    let now = Instant::now();
    let (ticket, _) = book.join(attempt("g", "", &["range"]), now).unwrap();
    assert_eq!(
        book.describe("g", now).unwrap().state,
        GroupState::PreparingRebalance
    );
    book.joined("g", ticket, 0, "m1", 1);
    assert_eq!(
        book.describe("g", now).unwrap().state,
        GroupState::CompletingRebalance
    );
    book.synced("g", "m1", 1, Bytes::from_static(b"assigned"));
    let view = book.describe("g", now).unwrap();
    assert_eq!(view.state, GroupState::Stable);
    assert_eq!(view.protocol, "range");
    assert_eq!(view.members[0].assignment, Bytes::from_static(b"assigned"));
    assert_eq!(view.members[0].metadata, Bytes::from("meta-range"));
    assert_eq!(book.list(now).len(), 1);
    book.left("g", "m1");
    assert!(book.describe("g", now).is_none());
}
