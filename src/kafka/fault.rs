//! Whether a Kafka error is a passing condition of the cluster (a leader election, the group's
//! coordinator moving, a broker down) or one that retrying cannot fix, and how to say it.
//!
//! A cluster of three brokers loses one and carries on: for the ~10 s Kafka takes to notice a
//! dead broker and elect new leaders, requests time out or answer "not leader", "unknown
//! partition", "coordinator not available". None of that may end a role; only what needs a
//! person (credentials, ACLs, a deleted topic) does.

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// What a failed request means for whoever made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// The cluster is electing, moving or restarting something: ask again a little later.
    Transient,
    /// The cluster does not know the topic or partition. While metadata settles after a
    /// broker failure that is passing, but it is also what a deleted topic looks like: ask the
    /// cluster whether the topic still exists before giving up.
    TopicMaybeGone,
    /// Retrying cannot help: a person has to change something (credentials, ACLs, names).
    Permanent,
}

/// Classifies an error by its code. Unknown codes count as transient: a role that retries a
/// permanent problem says so every time it tries, while one that stops on a passing problem
/// loses its partitions for nothing.
pub(crate) fn classify(error: &KafkaError) -> Fault {
    if matches!(error, KafkaError::MessageConsumptionFatal(_)) {
        return Fault::Permanent;
    }
    match error.rdkafka_error_code() {
        Some(code) => classify_code(code),
        // Errors without a code (a NUL in a name, a closed client) are programming or
        // configuration errors, never the cluster's weather.
        None => Fault::Permanent,
    }
}

fn classify_code(code: RDKafkaErrorCode) -> Fault {
    use RDKafkaErrorCode as C;
    match code {
        C::UnknownTopic | C::UnknownTopicOrPartition | C::UnknownPartition | C::UnknownTopicId => {
            Fault::TopicMaybeGone
        }
        C::TopicAuthorizationFailed
        | C::GroupAuthorizationFailed
        | C::ClusterAuthorizationFailed
        | C::Authentication
        | C::SaslAuthenticationFailed
        | C::UnsupportedSASLMechanism
        | C::IllegalSASLState
        | C::SSL
        | C::Fatal
        | C::InvalidGroupId
        | C::InvalidTopic
        | C::InvalidArgument => Fault::Permanent,
        _ => Fault::Transient,
    }
}

/// A transient error in words a learner can follow, with librdkafka's name of it.
pub(crate) fn in_words(error: &KafkaError) -> String {
    use RDKafkaErrorCode as C;
    let Some(code) = error.rdkafka_error_code() else {
        return error.to_string();
    };
    let words = match code {
        C::OperationTimedOut | C::RequestTimedOut | C::MessageTimedOut | C::TimedOutQueue => {
            "the cluster did not answer in time"
        }
        C::UnknownPartition
        | C::UnknownTopicOrPartition
        | C::UnknownTopic
        | C::LeaderNotAvailable
        | C::NotLeaderForPartition
        | C::FencedLeaderEpoch
        | C::UnknownLeaderEpoch
        | C::ReplicaNotAvailable
        | C::EligibleLeadersNotAvailable
        | C::PreferredLeaderNotAvailable => "no leader can be reached for it yet",
        C::NotCoordinator
        | C::CoordinatorNotAvailable
        | C::CoordinatorLoadInProgress
        | C::WaitingForCoordinator => "the group's coordinator is moving or still loading",
        C::BrokerTransportFailure | C::AllBrokersDown | C::NetworkException => {
            "a broker cannot be reached"
        }
        C::TopicAuthorizationFailed | C::GroupAuthorizationFailed => {
            "the cluster does not authorize this client (check the ACLs and -X credentials)"
        }
        C::UnknownMemberId => "the group no longer knows this member",
        C::RebalanceInProgress | C::IllegalGeneration => "the group is rebalancing",
        _ => return error.to_string(),
    };
    format!("{words} ({code:?})")
}

/// Whether a failed commit only waits for the group's coordinator (moving, loading, or on a
/// broker that is down): the offsets stay stored and the next commit carries them.
pub(crate) fn is_coordinator_wait(error: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        error.rdkafka_error_code(),
        Some(
            C::WaitingForCoordinator
                | C::NotCoordinator
                | C::CoordinatorNotAvailable
                | C::CoordinatorLoadInProgress
                | C::BrokerTransportFailure
                | C::AllBrokersDown
                | C::RequestTimedOut
                | C::OperationTimedOut
                | C::TimedOutQueue
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_broker_failure_answers_is_transient() {
        for code in [
            RDKafkaErrorCode::OperationTimedOut,
            RDKafkaErrorCode::RequestTimedOut,
            RDKafkaErrorCode::LeaderNotAvailable,
            RDKafkaErrorCode::NotLeaderForPartition,
            RDKafkaErrorCode::NotCoordinator,
            RDKafkaErrorCode::CoordinatorLoadInProgress,
            RDKafkaErrorCode::CoordinatorNotAvailable,
            RDKafkaErrorCode::WaitingForCoordinator,
            RDKafkaErrorCode::BrokerTransportFailure,
            RDKafkaErrorCode::AllBrokersDown,
            RDKafkaErrorCode::NotEnoughReplicas,
            RDKafkaErrorCode::FencedLeaderEpoch,
        ] {
            assert_eq!(
                classify(&KafkaError::MetadataFetch(code)),
                Fault::Transient,
                "{code:?}"
            );
        }
    }

    #[test]
    fn an_unknown_partition_is_checked_before_it_counts_as_deleted() {
        // What MEASURED.md's failure 1 ended the role with.
        let seen = KafkaError::MetadataFetch(RDKafkaErrorCode::UnknownPartition);
        assert_eq!(classify(&seen), Fault::TopicMaybeGone);
        assert_eq!(
            classify(&KafkaError::OffsetFetch(
                RDKafkaErrorCode::UnknownTopicOrPartition
            )),
            Fault::TopicMaybeGone
        );
    }

    #[test]
    fn authorization_and_fatal_errors_are_permanent() {
        for code in [
            RDKafkaErrorCode::TopicAuthorizationFailed,
            RDKafkaErrorCode::GroupAuthorizationFailed,
            RDKafkaErrorCode::SaslAuthenticationFailed,
            RDKafkaErrorCode::Fatal,
        ] {
            assert_eq!(
                classify(&KafkaError::OffsetFetch(code)),
                Fault::Permanent,
                "{code:?}"
            );
        }
        assert_eq!(
            classify(&KafkaError::MessageConsumptionFatal(
                RDKafkaErrorCode::OperationTimedOut
            )),
            Fault::Permanent
        );
        assert_eq!(classify(&KafkaError::Canceled), Fault::Permanent);
    }

    #[test]
    fn words_name_the_condition_and_the_code_once() {
        let words = in_words(&KafkaError::MetadataFetch(
            RDKafkaErrorCode::UnknownPartition,
        ));
        assert_eq!(
            words,
            "no leader can be reached for it yet (UnknownPartition)"
        );
        let words = in_words(&KafkaError::ConsumerCommit(
            RDKafkaErrorCode::WaitingForCoordinator,
        ));
        assert_eq!(
            words,
            "the group's coordinator is moving or still loading (WaitingForCoordinator)"
        );
    }

    #[test]
    fn commits_waiting_for_the_coordinator_are_told_apart_from_refusals() {
        assert!(is_coordinator_wait(&KafkaError::ConsumerCommit(
            RDKafkaErrorCode::WaitingForCoordinator
        )));
        assert!(!is_coordinator_wait(&KafkaError::ConsumerCommit(
            RDKafkaErrorCode::UnknownMemberId
        )));
    }
}
