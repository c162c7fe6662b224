//! What the front knows about consumer groups, learnt from the group traffic it relays: who is
//! in each group, with which protocols, client id, host and assignment. Pure bookkeeping, no
//! I/O, so that every rule here is unit-tested.
//!
//! Two jobs:
//! - keep the mock alive: librdkafka's mock elects a group's protocol as the leader's *first*
//!   protocol and asserts (aborting the process) that every member's first protocol is that
//!   one. So the front decides, as Kafka's `ClassicGroup.supportsProtocols` would, whether a
//!   joiner fits the group, refuses it with INCONSISTENT_GROUP_PROTOCOL if not, and otherwise
//!   forwards its JoinGroup with the group's protocol alone, so that every member the mock
//!   holds announces the same first protocol;
//! - answer DescribeGroups and ListGroups, which the mock does not implement.

mod view;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;

pub(crate) use view::GroupView;
use view::view;

/// How much longer than its session timeout the front remembers a silent member. The mock
/// expires members itself; forgetting one *before* the mock does could let a joiner with
/// another protocol in while the mock still holds the old member (and then abort), so the
/// front errs on the late side.
const EXPIRY_GRACE: Duration = Duration::from_secs(5);

/// How long a KIP-848 member lives without a heartbeat: the mock's default
/// `group.consumer.session.timeout.ms` (45 s) — it does not tell its members.
const CONSUMER_SESSION_TIMEOUT: Duration = Duration::from_secs(45);

/// One protocol a joiner offers: its name (the assignor) and its metadata (subscription).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Protocol {
    pub(crate) name: String,
    pub(crate) metadata: Bytes,
}

/// A JoinGroup request, as far as the book cares.
#[derive(Clone, Debug)]
pub(crate) struct JoinAttempt {
    pub(crate) group: String,
    /// "" on a first join.
    pub(crate) member_id: String,
    pub(crate) instance_id: Option<String>,
    pub(crate) client_id: String,
    pub(crate) host: String,
    pub(crate) protocol_type: String,
    pub(crate) protocols: Vec<Protocol>,
    pub(crate) session_timeout: Duration,
}

/// Why a joiner is refused; each is INCONSISTENT_GROUP_PROTOCOL on the wire.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum JoinRefusal {
    #[error("no protocol type or no protocols")]
    Empty,
    #[error("protocol type {offered} does not match the group's {group}")]
    ProtocolType { offered: String, group: String },
    #[error("none of {offered:?} is the group's protocol {group}")]
    NoCommonProtocol { offered: Vec<String>, group: String },
    #[error("the group has KIP-848 (consumer protocol) members")]
    ConsumerGroup,
}

/// A ConsumerGroupHeartbeat (KIP-848) for a group with classic members: the mock would let
/// both kinds own the same partitions.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Group {0} is not a consumer group.")]
pub(crate) struct ClassicGroupInUse(pub String);

/// A join the front forwarded and whose response it awaits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct JoinTicket(u64);

/// One member of a classic group.
#[derive(Clone, Debug)]
struct Member {
    /// None while its first JoinGroup is in flight (the mock holds it already).
    id: Option<String>,
    instance_id: Option<String>,
    client_id: String,
    host: String,
    /// Metadata for the group's protocol.
    metadata: Bytes,
    assignment: Bytes,
    session_timeout: Duration,
    /// Its last request to the group (join, sync, heartbeat).
    last_seen: Instant,
    /// The join in flight, if any.
    ticket: Option<JoinTicket>,
}

/// One group, classic or KIP-848.
#[derive(Clone, Debug, Default)]
struct Group {
    protocol_type: String,
    /// The protocol every member the mock holds announces (first and only).
    protocol: String,
    members: Vec<Member>,
    /// KIP-848 members: member id → last heartbeat.
    consumers: HashMap<String, Instant>,
    /// Generation of the last completed join; -1 before the first.
    generation: i32,
    /// Members that have a generation's assignment (SyncGroup answered).
    synced_generation: i32,
}

/// Every group the front has seen traffic for.
#[derive(Debug, Default)]
pub(crate) struct GroupBook {
    groups: HashMap<String, Group>,
    next_ticket: u64,
    /// Every group a member has joined since the broker started, kept after its members
    /// expire: the mock keeps such a group, and it accepts a member's commit to any other
    /// (a group it never saw) without a question.
    ever_joined: HashSet<String>,
}

impl GroupBook {
    /// Forgets members silent for longer than their session timeout (plus a grace), and
    /// groups left with nobody.
    pub(crate) fn expire(&mut self, now: Instant) {
        for group in self.groups.values_mut() {
            group
                .members
                .retain(|m| now.duration_since(m.last_seen) <= m.session_timeout + EXPIRY_GRACE);
            group.consumers.retain(|_, seen| {
                now.duration_since(*seen) <= CONSUMER_SESSION_TIMEOUT + EXPIRY_GRACE
            });
        }
        self.groups
            .retain(|_, g| !g.members.is_empty() || !g.consumers.is_empty());
    }

    /// Decides a JoinGroup. On success: the ticket to report the response with, and the one
    /// protocol to forward (the group's, with the joiner's metadata for it).
    pub(crate) fn join(
        &mut self,
        attempt: JoinAttempt,
        now: Instant,
    ) -> Result<(JoinTicket, Protocol), JoinRefusal> {
        self.expire(now);
        if attempt.protocol_type.is_empty() || attempt.protocols.is_empty() {
            return Err(JoinRefusal::Empty);
        }
        let group = self.groups.entry(attempt.group.clone()).or_default();
        if !group.consumers.is_empty() {
            return Err(JoinRefusal::ConsumerGroup);
        }
        // The joiner itself does not count against the group (a rejoin may change nothing).
        let others = group
            .members
            .iter()
            .filter(|m| attempt.member_id.is_empty() || m.id.as_deref() != Some(&attempt.member_id))
            .count();
        let chosen = if others == 0 {
            // Alone: Kafka (and the mock) take its first protocol.
            group.protocol_type = attempt.protocol_type.clone();
            group.protocol = attempt.protocols[0].name.clone();
            attempt.protocols[0].clone()
        } else {
            if attempt.protocol_type != group.protocol_type {
                return Err(JoinRefusal::ProtocolType {
                    offered: attempt.protocol_type,
                    group: group.protocol_type.clone(),
                });
            }
            match attempt.protocols.iter().find(|p| p.name == group.protocol) {
                Some(p) => p.clone(),
                None => {
                    return Err(JoinRefusal::NoCommonProtocol {
                        offered: attempt.protocols.into_iter().map(|p| p.name).collect(),
                        group: group.protocol.clone(),
                    });
                }
            }
        };
        self.next_ticket += 1;
        let ticket = JoinTicket(self.next_ticket);
        let existing = group
            .members
            .iter_mut()
            .find(|m| !attempt.member_id.is_empty() && m.id.as_deref() == Some(&attempt.member_id));
        let member = Member {
            id: (!attempt.member_id.is_empty()).then(|| attempt.member_id.clone()),
            instance_id: attempt.instance_id,
            client_id: attempt.client_id,
            host: attempt.host,
            metadata: chosen.metadata.clone(),
            assignment: Bytes::new(),
            session_timeout: attempt.session_timeout,
            last_seen: now,
            ticket: Some(ticket),
        };
        match existing {
            Some(m) => {
                let assignment = std::mem::take(&mut m.assignment);
                *m = Member {
                    assignment,
                    ..member
                };
            }
            None => group.members.push(member),
        }
        Ok((ticket, chosen))
    }

    /// The response to a forwarded join: error 0 makes the member known by its id; an error
    /// means the mock did not take it (it keeps a member only when it answers 0 or holds the
    /// request, and a held request ends in 0).
    pub(crate) fn joined(
        &mut self,
        group: &str,
        ticket: JoinTicket,
        error: i16,
        member_id: &str,
        generation: i32,
    ) {
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        let Some(at) = g.members.iter().position(|m| m.ticket == Some(ticket)) else {
            return;
        };
        if error != 0 || member_id.is_empty() {
            // A rejoin that failed leaves the member as the mock had it; a first join is gone.
            if g.members[at].id.is_some() && error != 25 {
                g.members[at].ticket = None;
            } else {
                g.members.remove(at);
            }
            return;
        }
        // The mock may have replaced an earlier entry for the same id (a rejoin sent as new).
        g.members
            .retain(|m| m.ticket == Some(ticket) || m.id.as_deref() != Some(member_id));
        if let Some(m) = g.members.iter_mut().find(|m| m.ticket == Some(ticket)) {
            m.id = Some(member_id.to_owned());
            m.ticket = None;
        }
        g.generation = g.generation.max(generation);
        self.ever_joined.insert(group.to_owned());
    }

    /// Whether a member ever joined `group` on this broker: a commit from a member of a group
    /// that never had one here comes from a client of another broker (an earlier one on this
    /// address), with positions read there.
    pub(crate) fn ever_joined(&self, group: &str) -> bool {
        self.ever_joined.contains(group)
    }

    /// The connection that carried a join closed before its answer: the mock keeps the member
    /// until its session times out, without telling anyone its id; it stays counted (so the
    /// protocol stays locked) until then.
    pub(crate) fn join_abandoned(&mut self, group: &str, ticket: JoinTicket) {
        if let Some(m) = self
            .groups
            .get_mut(group)
            .and_then(|g| g.members.iter_mut().find(|m| m.ticket == Some(ticket)))
        {
            m.ticket = None;
        }
    }

    /// A member's SyncGroup answered with error 0: its assignment for `generation`.
    pub(crate) fn synced(
        &mut self,
        group: &str,
        member_id: &str,
        generation: i32,
        assignment: Bytes,
    ) {
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        if let Some(m) = g
            .members
            .iter_mut()
            .find(|m| m.id.as_deref() == Some(member_id))
        {
            m.assignment = assignment;
            g.synced_generation = g.synced_generation.max(generation);
            g.generation = g.generation.max(generation);
        }
    }

    /// A member's heartbeat, sync or commit: it is alive.
    pub(crate) fn seen(&mut self, group: &str, member_id: &str, now: Instant) {
        if let Some(m) = self.groups.get_mut(group).and_then(|g| {
            g.members
                .iter_mut()
                .find(|m| m.id.as_deref() == Some(member_id))
        }) {
            m.last_seen = now;
        }
    }

    /// A LeaveGroup the mock accepted.
    pub(crate) fn left(&mut self, group: &str, member_id: &str) {
        if let Some(g) = self.groups.get_mut(group) {
            g.members.retain(|m| m.id.as_deref() != Some(member_id));
            if g.members.is_empty() && g.consumers.is_empty() {
                self.groups.remove(group);
            }
        }
    }

    /// Decides a ConsumerGroupHeartbeat (KIP-848). `leaving`: member epoch -1 or -2.
    pub(crate) fn consumer_heartbeat(
        &mut self,
        group: &str,
        member_id: &str,
        leaving: bool,
        now: Instant,
    ) -> Result<(), ClassicGroupInUse> {
        self.expire(now);
        if self
            .groups
            .get(group)
            .is_some_and(|g| !g.members.is_empty())
        {
            return Err(ClassicGroupInUse(group.to_owned()));
        }
        let g = self.groups.entry(group.to_owned()).or_default();
        if leaving {
            g.consumers.remove(member_id);
            if g.consumers.is_empty() {
                self.groups.remove(group);
            }
        } else if !member_id.is_empty() {
            g.consumers.insert(member_id.to_owned(), now);
        }
        Ok(())
    }

    /// The member id the mock gave a KIP-848 member on its first heartbeat.
    pub(crate) fn consumer_joined(&mut self, group: &str, member_id: &str, now: Instant) {
        if !member_id.is_empty() {
            self.ever_joined.insert(group.to_owned());
            self.groups
                .entry(group.to_owned())
                .or_default()
                .consumers
                .insert(member_id.to_owned(), now);
        }
    }

    /// DescribeGroups of one group; None if the front knows no such group.
    pub(crate) fn describe(&mut self, group: &str, now: Instant) -> Option<GroupView> {
        self.expire(now);
        let g = self.groups.get(group)?;
        Some(view(group, g))
    }

    /// ListGroups: every group with members.
    pub(crate) fn list(&mut self, now: Instant) -> Vec<GroupView> {
        self.expire(now);
        let mut all: Vec<GroupView> = self.groups.iter().map(|(id, g)| view(id, g)).collect();
        all.sort_by(|a, b| a.group.cmp(&b.group));
        all
    }
}

#[cfg(test)]
mod tests;
