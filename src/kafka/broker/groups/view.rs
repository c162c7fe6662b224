//! Groups as DescribeGroups and ListGroups show them.

use bytes::Bytes;

use super::Group;

/// A group's state as DescribeGroups and ListGroups name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl GroupState {
    pub(crate) fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
        }
    }
}

/// A member as DescribeGroups shows it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct MemberView {
    pub(crate) member_id: String,
    pub(crate) instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) host: String,
    /// The subscription it sent for the group's protocol.
    pub(crate) metadata: Bytes,
    /// What the leader gave it in the last SyncGroup.
    pub(crate) assignment: Bytes,
}

/// A group as DescribeGroups shows it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct GroupView {
    pub(crate) group: String,
    pub(crate) state: GroupState,
    pub(crate) protocol_type: String,
    pub(crate) protocol: String,
    pub(crate) members: Vec<MemberView>,
    /// "classic" or "consumer" (ListGroups v5).
    pub(crate) kind: &'static str,
}

impl Group {
    fn state(&self) -> GroupState {
        if self.members.is_empty() {
            GroupState::Empty
        } else if self.members.iter().any(|m| m.ticket.is_some()) {
            GroupState::PreparingRebalance
        } else if self.synced_generation < self.generation {
            GroupState::CompletingRebalance
        } else {
            GroupState::Stable
        }
    }
}

pub(super) fn view(group: &str, g: &Group) -> GroupView {
    if !g.consumers.is_empty() {
        // The front sees no assignment of a KIP-848 group (it would have to decode every
        // heartbeat response); Kafka too answers DescribeGroups for one as "not a classic
        // group", so only ListGroups shows these.
        return GroupView {
            group: group.to_owned(),
            state: GroupState::Stable,
            protocol_type: "consumer".into(),
            protocol: String::new(),
            members: Vec::new(),
            kind: "consumer",
        };
    }
    let state = g.state();
    GroupView {
        group: group.to_owned(),
        state,
        protocol_type: g.protocol_type.clone(),
        // Kafka names the protocol only once a generation has chosen it.
        protocol: if state == GroupState::PreparingRebalance || g.generation < 0 {
            String::new()
        } else {
            g.protocol.clone()
        },
        members: g
            .members
            .iter()
            .filter_map(|m| {
                Some(MemberView {
                    member_id: m.id.clone()?,
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    host: m.host.clone(),
                    metadata: m.metadata.clone(),
                    assignment: m.assignment.clone(),
                })
            })
            .collect(),
        kind: "classic",
    }
}
