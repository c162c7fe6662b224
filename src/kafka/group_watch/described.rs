//! What the cluster, or the members' announcements, tell about one group, and how the
//! protocol and assignor shown are chosen from them.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::report::group_view::{Announcement, GroupProtocol, Member, decode_assignment};

/// What the cluster, or the members' announcements, tell about one group.
pub(super) struct DescribedGroup {
    pub(super) members: Vec<Member>,
    /// The protocol as the cluster describes it.
    pub(super) protocol: Option<GroupProtocol>,
    /// The assignor as the cluster describes it (classic groups).
    pub(super) assignor: Option<String>,
    /// Whether `members` come from the announcements.
    pub(super) announced_members: bool,
    /// What the announcing members say: (protocol, assignor asked for), one entry each.
    pub(super) announced: Vec<(Option<GroupProtocol>, Option<String>)>,
    /// Whether the cluster describes it as rebalancing (see [`rebalancing`]).
    pub(super) rebalancing: bool,
}

/// Whether a group the cluster describes in `state` is rebalancing: its members are joining
/// a new generation, and until they have synced the coordinator refuses their commits (the
/// old generation's), so the committed offsets, and with them the lag, stand still although
/// the members keep reading the partitions they keep.
pub(super) fn rebalancing(state: &str) -> bool {
    matches!(state, "PreparingRebalance" | "CompletingRebalance")
}

/// The partitions of `topic` a member the cluster described owns: its assignment, decoded.
/// While the group rebalances, a member described without one (a member that just joined;
/// Kafka's classic coordinator leaves assignments out of some descriptions then) owns what
/// it owned in the last round (`before`), or nothing yet, rather than vanishing from the
/// table and the timeline for the rebalance's seconds. None: outside a rebalance, an
/// assignment that is not a consumer's.
pub(super) fn owned(
    assignment: Option<&[u8]>,
    topic: &str,
    rebalancing: bool,
    before: Option<&Vec<i32>>,
) -> Option<Vec<i32>> {
    match assignment.and_then(|a| decode_assignment(a, topic)) {
        Some(owns) => Some(owns),
        None if rebalancing => Some(before.cloned().unwrap_or_default()),
        None => None,
    }
}

impl DescribedGroup {
    /// A group the cluster described, members and all.
    pub(super) fn listed(protocol: Option<GroupProtocol>) -> DescribedGroup {
        DescribedGroup {
            members: Vec::new(),
            protocol,
            assignor: None,
            announced_members: false,
            announced: Vec::new(),
            rebalancing: false,
        }
    }

    /// A group whose members only their announcements tell.
    pub(super) fn announced(protocol: Option<GroupProtocol>) -> DescribedGroup {
        DescribedGroup {
            announced_members: true,
            ..DescribedGroup::listed(protocol)
        }
    }

    pub(super) fn heard(&mut self, a: &Announcement) {
        self.announced.push((a.group_protocol, a.assignor.clone()));
    }

    /// The group's protocol and assignor: the cluster's word where it gave one, otherwise
    /// what its announcing members agree on (None where they differ or do not say).
    pub(super) fn protocol(&self) -> (Option<GroupProtocol>, Option<String>) {
        let protocol = self
            .protocol
            .or_else(|| agreed(self.announced.iter().map(|(p, _)| *p).collect()).flatten());
        let assignor = self.assignor.clone().or_else(|| {
            // Announced assignors belong to the protocol the group uses.
            let same: Vec<Option<String>> = self
                .announced
                .iter()
                .filter(|(p, _)| protocol.is_some() && *p == protocol)
                .map(|(_, a)| a.clone())
                .collect();
            agreed(same).flatten()
        });
        (protocol, assignor)
    }
}

/// The value every one of `values` has; None when they differ or there are none.
fn agreed<T: Clone + PartialEq>(values: Vec<T>) -> Option<T> {
    let first = values.first()?.clone();
    values.iter().all(|v| *v == first).then_some(first)
}

/// Whether a failed description is the cluster not answering (yet), rather than refusing:
/// a timeout, a broker out of reach, a coordinator not there or still loading.
pub(super) fn no_answer(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        None | Some(
            RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::TimedOutQueue
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::CoordinatorNotAvailable
                | RDKafkaErrorCode::CoordinatorLoadInProgress
                | RDKafkaErrorCode::NotCoordinator
        )
    )
}

#[cfg(test)]
pub(super) mod tests {
    #[test]
    fn a_timeout_is_no_answer_and_an_error_of_the_cluster_is_a_refusal() {
        use rdkafka::error::{KafkaError, RDKafkaErrorCode};
        let failed = |code| KafkaError::GroupListFetch(code);
        assert!(super::no_answer(&failed(
            RDKafkaErrorCode::OperationTimedOut
        )));
        assert!(super::no_answer(&failed(
            RDKafkaErrorCode::CoordinatorLoadInProgress
        )));
        assert!(!super::no_answer(&failed(
            RDKafkaErrorCode::GroupAuthorizationFailed
        )));
        assert!(!super::no_answer(&failed(
            RDKafkaErrorCode::UnsupportedVersion
        )));
    }

    use super::*;
    use crate::report::group_view::MemberState;
    use chrono::Utc;

    /// An active member's announcement, with the given protocol and assignor.
    pub(crate) fn announcement(
        protocol: Option<GroupProtocol>,
        assignor: Option<&str>,
    ) -> Announcement {
        Announcement {
            member: "m".into(),
            host: "h".into(),
            group: "g".into(),
            role: "analytics".into(),
            topic: "t".into(),
            owns: vec![],
            paused: false,
            state: MemberState::Active,
            at: Utc::now(),
            group_protocol: protocol,
            assignor: assignor.map(str::to_owned),
        }
    }

    #[test]
    fn a_rebalancing_members_partitions_are_those_it_had() {
        assert!(rebalancing("PreparingRebalance") && rebalancing("CompletingRebalance"));
        assert!(!rebalancing("Stable") && !rebalancing("Empty") && !rebalancing("Dead"));
        // A rebalancing member described with an empty assignment.
        let before = vec![1, 2];
        assert_eq!(owned(Some(&[]), "t", true, Some(&before)), Some(vec![1, 2]));
        assert_eq!(owned(None, "t", true, None), Some(vec![]));
        assert_eq!(owned(Some(&[]), "t", false, Some(&before)), None);
        // One with an assignment (the built-in broker keeps the last) shows that.
        let assignment = [0, 0, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, 0, 0, 0, 2];
        assert_eq!(
            owned(Some(&assignment), "t", true, Some(&before)),
            Some(vec![2])
        );
    }

    #[test]
    fn the_clusters_word_on_a_protocol_comes_first() {
        let mut classic = DescribedGroup::listed(Some(GroupProtocol::Classic));
        classic.assignor = Some("range".into());
        classic.heard(&announcement(
            Some(GroupProtocol::Classic),
            Some("cooperative-sticky"),
        ));
        assert_eq!(
            classic.protocol(),
            (Some(GroupProtocol::Classic), Some("range".into()))
        );
    }

    #[test]
    fn without_it_the_members_must_agree() {
        let mut kip848 = DescribedGroup::announced(None);
        kip848.heard(&announcement(
            Some(GroupProtocol::Consumer),
            Some("uniform"),
        ));
        kip848.heard(&announcement(
            Some(GroupProtocol::Consumer),
            Some("uniform"),
        ));
        assert_eq!(
            kip848.protocol(),
            (Some(GroupProtocol::Consumer), Some("uniform".into()))
        );
        // One member asked for an assignor, the other left it to the broker.
        kip848.heard(&announcement(Some(GroupProtocol::Consumer), None));
        assert_eq!(kip848.protocol(), (Some(GroupProtocol::Consumer), None));
        // A classic member in the same group (the built-in broker lets it): unknown.
        kip848.heard(&announcement(
            Some(GroupProtocol::Classic),
            Some("cooperative-sticky"),
        ));
        assert_eq!(kip848.protocol(), (None, None));
        assert_eq!(DescribedGroup::announced(None).protocol(), (None, None));
    }
}
