//! Why a consumer role stops, and how the runtime words commit trouble and rebalancing.

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use super::ledger::Uncommitted;
use crate::kafka::client::ConnectError;
use crate::kafka::fault;
use crate::kafka::group_protocol::BrokerSideProperty;
use crate::kafka::topic::TopicError;
use crate::report::human;
use crate::roles::RoleError;

/// Why a consumer role stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error("cannot create the Kafka consumer: {0}")]
    Create(KafkaError),
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Topic(#[from] TopicError),
    #[error(transparent)]
    BrokerSide(#[from] BrokerSideProperty),
    #[error("-X {key} cannot be changed here: {why}")]
    ManagedProperty {
        key: &'static str,
        why: &'static str,
    },
    // No variant holds a `source`: each says its cause in its own text, and a `source` would
    // make anyhow's `{:#}` print that cause a second time.
    #[error("cannot subscribe to {topic}: {error}")]
    Subscribe { topic: String, error: KafkaError },
    #[error("cannot take over {}: {reason}", partition_words(partitions))]
    TakeOver {
        partitions: Vec<i32>,
        reason: String,
    },
    #[error(
        "topic {topic} no longer exists on {brokers}: it was deleted while this member read it; \
         create it again (3 partitions) and restart the role"
    )]
    TopicDeleted { topic: String, brokers: String },
    #[error(
        "the cluster does not let group {group} read topic {topic}: {reason}; ask its \
         administrator for Read on both"
    )]
    NotAuthorized {
        topic: String,
        group: String,
        reason: String,
    },
    #[error(
        "an answer of {} bytes to a fetch of {topic} is larger than this consumer's \
         receive.message.max.bytes ({} bytes): a record there is larger than these settings \
         take, and its partition cannot be read past it ({} not read to the end). Start the role again with -X \
         receive.message.max.bytes={suggested} (and any -X fetch.max.bytes at least 512 below \
         it), or without those -X: the defaults take every record Kafka accepts by default",
        human::count(*size), human::count(*limit), unread_words(unread),
        suggested = suggested_receive_limit(*size)
    )]
    ResponseTooLarge {
        topic: String,
        /// The answer's size and the limit it broke, as librdkafka logged them.
        size: u64,
        limit: u64,
        /// The partitions not yet read to their end (one of them holds the record).
        unread: Vec<i32>,
    },
    #[error(
        "partition {partition} of {topic} holds records this consumer cannot decode, offsets \
         {from} to {} ({reason}): nothing past them can be read, and they stay uncommitted. \
         Run the role again with --skip-undecodable to skip them (counted and named), or \
         find what wrote them (kcat -b … -t {topic} -p {partition} -o {from} -c 1)",
        until - 1
    )]
    Undecodable {
        topic: String,
        partition: i32,
        from: i64,
        until: i64,
        reason: String,
    },
    #[error("the consumer failed: {0}")]
    Kafka(KafkaError),
    #[error("{0}")]
    Role(RoleError),
    /// The member stopped with `error` leaving handled records uncommitted (`left`, in
    /// words): their partitions' next owner reads them again.
    #[error("{error}\n  Not committed, so read again by the partitions' next owner: {left}")]
    LeftUncommitted {
        error: Box<ConsumerError>,
        left: String,
    },
}

impl ConsumerError {
    /// Whether the member may still commit what it handled: a stop on records it cannot
    /// fetch or decode is no failure of the role's work (a flush, a record), which stays as
    /// durable as ever, so the next owner need not read it again.
    pub(super) fn keeps_handled_work(&self) -> bool {
        matches!(
            self,
            ConsumerError::Undecodable { .. } | ConsumerError::ResponseTooLarge { .. }
        )
    }

    /// This error, saying what the member leaves uncommitted (when it leaves anything).
    pub(super) fn leaving(self, left: &[Uncommitted]) -> ConsumerError {
        if left.is_empty() {
            return self;
        }
        ConsumerError::LeftUncommitted {
            error: Box::new(self),
            left: uncommitted_words(left),
        }
    }
}

/// "p0 from offset 120 to 149, p2 up to offset 36 (…)": the records handled and not
/// committed, from where the group's commit says the next owner reads again.
pub(super) fn uncommitted_words(left: &[Uncommitted]) -> String {
    let words: Vec<String> = left
        .iter()
        .map(|u| match u.from {
            Some(from) => format!("p{} from offset {from} to {}", u.partition, u.until - 1),
            None => format!(
                "p{} up to offset {} (the group never committed there: the next owner starts \
                 where auto.offset.reset says)",
                u.partition,
                u.until - 1
            ),
        })
        .collect();
    words.join(", ")
}

/// Which partitions an oversized answer leaves unread, in words.
fn unread_words(unread: &[i32]) -> String {
    if unread.is_empty() {
        "a partition".to_owned()
    } else {
        partition_words(unread)
    }
}

/// A receive.message.max.bytes that takes an answer of `size` bytes: the next whole MiB.
pub(super) fn suggested_receive_limit(size: u64) -> u64 {
    (size + 1).next_multiple_of(1 << 20)
}

/// The size and limit in librdkafka's "Receive failed: Invalid response size 17000223
/// (0..1001000): increase receive.message.max.bytes", the only word it gives of a record
/// too large for the consumer's settings (it then retries the same fetch for ever).
pub(super) fn oversized_response(reason: &str) -> Option<(u64, u64)> {
    let rest = reason.split_once("Invalid response size ")?.1;
    let (size, rest) = rest.split_once(" (")?;
    let limit = rest.split_once("..")?.1.split_once(')')?.0;
    Some((size.parse().ok()?, limit.parse().ok()?))
}

/// "partition 1", "partitions 0, 1, 2".
pub(super) fn partition_words(partitions: &[i32]) -> String {
    let list: Vec<String> = partitions.iter().map(i32::to_string).collect();
    match list.len() {
        1 => format!("partition {}", list[0]),
        _ => format!("partitions {}", list.join(", ")),
    }
}

/// Whether a commit failed only because the group is (or just was) rebalancing.
pub(super) fn is_rebalancing(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::RebalanceInProgress
                | RDKafkaErrorCode::IllegalGeneration
                // The consumer protocol's word for a commit of an assignment that just
                // changed (KIP-848): the member's epoch moved on meanwhile.
                | RDKafkaErrorCode::StaleMemberEpoch
        )
    )
}

/// A commit error in words a learner can follow: what happened and what it means for the
/// records, with librdkafka's own text where the words are not its code's name alone.
pub(super) fn rebalancing_words(error: &KafkaError) -> String {
    if is_rebalancing(error) {
        "the group is rebalancing".to_owned()
    } else if error.rdkafka_error_code() == Some(RDKafkaErrorCode::UnknownMemberId) {
        dropped_member_words(error)
    } else {
        let words = fault::in_words(error);
        let raw = error.to_string();
        if words == raw {
            raw
        } else {
            format!("{words}; librdkafka: {raw}")
        }
    }
}

/// A commit refused because the group dropped this member (UnknownMemberId), in words.
fn dropped_member_words(error: &KafkaError) -> String {
    format!(
        "the commit was refused: the group had dropped this member, whose session expired \
         while it could not reach the group's coordinator (the broker was away, or the member \
         stalled); it rejoins, and the records it had not committed are read again by their \
         partition's next owner, from the group's last commit (librdkafka: {error})"
    )
}

/// A failed automatic commit: its kind (failures of one kind are told once, however many
/// codes librdkafka cycles through: WaitingForCoordinator, NotCoordinator, …) and its words.
pub(super) fn commit_trouble(error: &KafkaError) -> (String, String) {
    if fault::is_coordinator_wait(error) {
        (
            "coordinator".to_owned(),
            format!(
                "{}; the offsets stay stored and the next commit carries them",
                fault::in_words(error)
            ),
        )
    } else if error.rdkafka_error_code() == Some(RDKafkaErrorCode::UnknownMemberId) {
        ("member".to_owned(), dropped_member_words(error))
    } else {
        let words = format!("{error}; the offsets stay stored and the next commit retries them");
        (words.clone(), words)
    }
}

/// How main prints an error: anyhow's chain, every cause once.
#[cfg(test)]
pub(super) fn printed(error: ConsumerError) -> String {
    crate::report::human::error_chain(&anyhow::Error::new(error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_their_reason_once() {
        // MEASURED.md: "…the consumer failed: Meta data fetch error: UnknownPartition (Local:
        // Unknown partition): the consumer failed: Meta data fetch error: …".
        let reason = "UnknownPartition (Local: Unknown partition)";
        for (error, expected) in [
            (
                ConsumerError::Kafka(KafkaError::MetadataFetch(
                    RDKafkaErrorCode::UnknownPartition,
                )),
                "the consumer failed: Meta data fetch error: UnknownPartition (Local: Unknown \
                 partition)",
            ),
            (
                ConsumerError::Subscribe {
                    topic: "t".into(),
                    error: KafkaError::Subscription(
                        "UnknownPartition (Local: Unknown \
                                                     partition)"
                            .into(),
                    ),
                },
                "cannot subscribe to t: Subscription error: UnknownPartition (Local: Unknown \
                 partition)",
            ),
        ] {
            let text = printed(error);
            assert_eq!(text, expected);
            assert_eq!(text.matches(reason).count(), 1, "{text}");
        }
        // Display alone (the live view, logs) must not lose the reason either.
        let error = ConsumerError::Kafka(KafkaError::OffsetFetch(RDKafkaErrorCode::Fatal));
        assert!(std::error::Error::source(&error).is_none());
        assert!(error.to_string().contains("Fatal"), "{error}");
    }

    #[test]
    fn an_oversized_answer_is_read_from_librdkafkas_words() {
        let reason = "127.0.0.1:23934/1: Receive failed: Invalid response size 17000223 \
                      (0..1001000): increase receive.message.max.bytes (after 110ms in state UP)";
        assert_eq!(oversized_response(reason), Some((17_000_223, 1_001_000)));
        assert_eq!(oversized_response("1/1 brokers are down"), None);
        assert_eq!(suggested_receive_limit(17_000_223), 17_825_792);
        assert_eq!(suggested_receive_limit(1 << 20), 2 << 20);
        let text = ConsumerError::ResponseTooLarge {
            topic: "t".into(),
            size: 17_000_223,
            limit: 1_001_000,
            unread: vec![1],
        }
        .to_string();
        assert!(
            text.contains("17,000,223 bytes")
                && text.contains("cannot be read past it (partition 1 not read to the end)")
                && text.contains("-X receive.message.max.bytes=17825792"),
            "{text}"
        );
    }

    #[test]
    fn commits_waiting_for_the_coordinator_are_one_kind_of_trouble() {
        let (kind, words) = commit_trouble(&KafkaError::ConsumerCommit(
            RDKafkaErrorCode::WaitingForCoordinator,
        ));
        assert_eq!(
            words,
            "the group's coordinator is moving or still loading (WaitingForCoordinator); the \
             offsets stay stored and the next commit carries them"
        );
        // One kind, so that failing every second, with changing codes, is told once.
        for code in [
            RDKafkaErrorCode::NotCoordinator,
            RDKafkaErrorCode::CoordinatorLoadInProgress,
        ] {
            assert_eq!(commit_trouble(&KafkaError::ConsumerCommit(code)).0, kind);
        }
        let (member, words) = commit_trouble(&KafkaError::ConsumerCommit(
            RDKafkaErrorCode::UnknownMemberId,
        ));
        assert_ne!(member, kind);
        assert_eq!(
            words,
            "the commit was refused: the group had dropped this member, whose session expired \
             while it could not reach the group's coordinator (the broker was away, or the \
             member stalled); it rejoins, and the records it had not committed are read again \
             by their partition's next owner, from the group's last commit (librdkafka: \
             Consumer commit error: UnknownMemberId (Broker: Unknown member))"
        );
        // The commit before a hand-over says the same, and librdkafka's text of any other.
        assert_eq!(
            rebalancing_words(&KafkaError::ConsumerCommit(
                RDKafkaErrorCode::UnknownMemberId
            )),
            words
        );
        assert_eq!(
            rebalancing_words(&KafkaError::ConsumerCommit(
                RDKafkaErrorCode::RequestTimedOut
            )),
            "the cluster did not answer in time (RequestTimedOut); librdkafka: Consumer commit \
             error: RequestTimedOut (Broker: Request timed out)"
        );
    }
}
