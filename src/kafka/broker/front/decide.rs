//! A request's fate: relayed as it is, rewritten, or answered by the front.

use std::time::Instant;

use bytes::Bytes;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse, CreateTopicsRequest, DescribeGroupsRequest, FetchRequest,
    FindCoordinatorRequest, FindCoordinatorResponse, HeartbeatRequest, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, ListGroupsRequest, MetadataRequest, OffsetCommitRequest,
    OffsetCommitResponse, OffsetFetchRequest, ProduceRequest, ProduceResponse, RequestHeader,
    SyncGroupRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::super::answers;
use super::super::batch::{self, ProduceContext};
use super::super::groups::{JoinAttempt, Protocol};
use super::super::topics;
use super::codec::{decode, encode_request, encode_response, topic_name};
use super::{Front, FrontError, Watch};

/// What the request side does with one request.
pub(super) enum Decision {
    /// Relay these bytes (the request, or a rewrite of it); `expect`: whether the mock answers.
    Relay {
        bytes: Bytes,
        watch: Watch,
        expect: bool,
    },
    /// Answer it here.
    Answer(Bytes),
}

/// Checks a ConsumerGroupHeartbeat as Kafka does and as the mock needs it: the mock asserts
/// (aborting the process) on a member epoch below -2, a rebalance timeout below -1, and a
/// subscription given as topic names without a regex or the reverse. Kafka's own checks come
/// with its messages; the names-or-regex case is made whole (an absent regex is an empty one)
/// rather than refused, since Kafka accepts it. Returns whether the request was rewritten.
fn consumer_heartbeat_fits_the_mock(
    request: &mut ConsumerGroupHeartbeatRequest,
) -> Result<bool, &'static str> {
    if request.group_id.0.is_empty() {
        return Err("GroupId can't be empty.");
    }
    if request.member_id.is_empty() {
        return Err("MemberId can't be empty.");
    }
    if request.member_epoch < -2 {
        return Err("MemberEpoch is invalid.");
    }
    if request.rebalance_timeout_ms < -1 {
        return Err("RebalanceTimeoutMs is invalid.");
    }
    if request.member_epoch == 0 {
        if request.rebalance_timeout_ms == -1 {
            return Err("RebalanceTimeoutMs must be provided in first request.");
        }
        if request
            .topic_partitions
            .as_ref()
            .is_none_or(|p| !p.is_empty())
        {
            return Err("TopicPartitions must be empty when (re-)joining.");
        }
        if request.subscribed_topic_names.is_none() && request.subscribed_topic_regex.is_none() {
            return Err(
                "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.",
            );
        }
    }
    let names_empty = request
        .subscribed_topic_names
        .as_ref()
        .is_some_and(Vec::is_empty);
    let regex_empty = request
        .subscribed_topic_regex
        .as_ref()
        .is_none_or(|r| r.is_empty());
    match (
        &request.subscribed_topic_names,
        &request.subscribed_topic_regex,
    ) {
        (None, None) => Ok(false),
        _ if names_empty && regex_empty => {
            Err("SubscribedTopicNames or SubscribedTopicRegex must name something.")
        }
        (Some(_), None) => {
            request.subscribed_topic_regex = Some(StrBytes::default());
            Ok(true)
        }
        (None, Some(_)) => {
            request.subscribed_topic_names = Some(Vec::new());
            Ok(true)
        }
        (Some(_), Some(_)) => Ok(false),
    }
}

/// A request's fate.
pub(super) async fn decide(
    front: &Front,
    api: ApiKey,
    version: i16,
    correlation: i32,
    frame: Bytes,
    host: &str,
) -> Result<Decision, FrontError> {
    let relay = |frame: Bytes, watch: Watch| Decision::Relay {
        bytes: frame,
        watch,
        expect: true,
    };
    let range = api.valid_versions();
    if api == ApiKey::ApiVersions && (version < range.min || version > range.max) {
        return Ok(Decision::Answer(answers::api_versions_unsupported(
            correlation,
        )?));
    }
    Ok(match api {
        ApiKey::ApiVersions => {
            let response = ApiVersionsResponse::default().with_api_keys(front.api_versions.clone());
            Decision::Answer(encode_response(api, version, correlation, &response)?)
        }
        ApiKey::Produce => produce(version, correlation, frame)?,
        ApiKey::Fetch => {
            let (header, mut request) = decode::<FetchRequest>(api, version, &frame)?;
            if request.max_wait_ms > front.fetch_wait_cap_ms {
                request.max_wait_ms = front.fetch_wait_cap_ms;
                relay(
                    encode_request(api, version, &header, &request)?,
                    Watch::Nothing,
                )
            } else {
                relay(frame, Watch::Nothing)
            }
        }
        ApiKey::Metadata => metadata(api, version, frame)?,
        ApiKey::JoinGroup => {
            let (header, request) = decode::<JoinGroupRequest>(api, version, &frame)?;
            join_group(front, version, correlation, header, request, host)?
        }
        ApiKey::SyncGroup => {
            let (_, request) = decode::<SyncGroupRequest>(api, version, &frame)?;
            let group = request.group_id.0.to_string();
            let member = request.member_id.to_string();
            front.groups().seen(&group, &member, Instant::now());
            relay(
                frame,
                Watch::Sync {
                    group,
                    member,
                    generation: request.generation_id,
                },
            )
        }
        ApiKey::Heartbeat => {
            let (_, request) = decode::<HeartbeatRequest>(api, version, &frame)?;
            front
                .groups()
                .seen(&request.group_id.0, &request.member_id, Instant::now());
            relay(frame, Watch::Nothing)
        }
        ApiKey::LeaveGroup => {
            let (_, request) = decode::<LeaveGroupRequest>(api, version, &frame)?;
            let members = if version < 3 {
                vec![request.member_id.to_string()]
            } else {
                request
                    .members
                    .iter()
                    .map(|m| m.member_id.to_string())
                    .collect()
            };
            relay(
                frame,
                Watch::Leave {
                    group: request.group_id.0.to_string(),
                    members,
                },
            )
        }
        ApiKey::ConsumerGroupHeartbeat => {
            let (header, mut request) =
                decode::<ConsumerGroupHeartbeatRequest>(api, version, &frame)?;
            let refuse = |code: i16, message: String| -> Result<Decision, FrontError> {
                Ok(Decision::Answer(encode_response(
                    api,
                    version,
                    correlation,
                    &ConsumerGroupHeartbeatResponse::default()
                        .with_error_code(code)
                        .with_error_message(Some(StrBytes::from_string(message)))
                        .with_member_epoch(-1),
                )?))
            };
            let rewritten = match consumer_heartbeat_fits_the_mock(&mut request) {
                Ok(rewritten) => rewritten,
                Err(why) => return refuse(42, why.to_owned()),
            };
            let group = request.group_id.0.to_string();
            let leaving = request.member_epoch < 0;
            let decided = front.groups().consumer_heartbeat(
                &group,
                &request.member_id,
                leaving,
                Instant::now(),
            );
            match decided {
                Err(refusal) => return refuse(69, refusal.to_string()),
                Ok(()) if rewritten => relay(
                    encode_request(api, version, &header, &request)?,
                    Watch::ConsumerHeartbeat { group },
                ),
                Ok(()) => relay(frame, Watch::ConsumerHeartbeat { group }),
            }
        }
        ApiKey::FindCoordinator => {
            let (_, request) = decode::<FindCoordinatorRequest>(api, version, &frame)?;
            // The mock knows group and transaction coordinators only, and asserts (aborts) on
            // any other key type; Kafka answers an unknown one with INVALID_REQUEST.
            if request.key_type == 0 || request.key_type == 1 {
                relay(frame, Watch::Nothing)
            } else {
                let message = format!("Invalid coordinator type {}", request.key_type);
                let mut response = FindCoordinatorResponse::default().with_node_id(BrokerId(-1));
                if version < 4 {
                    response = response
                        .with_error_code(42)
                        .with_error_message(Some(StrBytes::from_string(message)));
                } else {
                    response = response.with_coordinators(
                        request
                            .coordinator_keys
                            .iter()
                            .map(|key| {
                                Coordinator::default()
                                    .with_key(key.clone())
                                    .with_node_id(BrokerId(-1))
                                    .with_port(-1)
                                    .with_error_code(42)
                                    .with_error_message(Some(StrBytes::from_string(
                                        message.clone(),
                                    )))
                            })
                            .collect(),
                    );
                }
                Decision::Answer(encode_response(api, version, correlation, &response)?)
            }
        }
        // Kafka serves client telemetry only with a metrics plugin, and the mock asserts
        // (aborts) on a PushTelemetry it cannot decode: neither is advertised, and a client
        // that sends one anyway is disconnected, as Kafka does for an API it does not serve.
        ApiKey::GetTelemetrySubscriptions | ApiKey::PushTelemetry => {
            return Err(FrontError::UnsupportedVersion { api, version });
        }
        ApiKey::OffsetCommit => {
            let (_, request) = decode::<OffsetCommitRequest>(api, version, &frame)?;
            match commit_from_another_broker(front, version, correlation, &request)? {
                Some(refusal) => Decision::Answer(refusal),
                None => relay(frame, Watch::Nothing),
            }
        }
        ApiKey::OffsetFetch => {
            let (header, request) = decode::<OffsetFetchRequest>(api, version, &frame)?;
            // Null topics (v2+) means "every topic the group committed"; the mock answers that
            // with a null array, which Java's clients refuse to read (Kafka's consumer-groups
            // tool then dies), so the front asks for every partition of every topic instead.
            if request.topics.is_some() || !(2..8).contains(&version) {
                relay(frame, Watch::Nothing)
            } else {
                let topics = front.topics.clone();
                let all = tokio::task::spawn_blocking(move || topics.partitions())
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or_default();
                let request = request.with_topics(Some(
                    all.into_iter()
                        .map(|(name, partitions)| {
                            OffsetFetchRequestTopic::default()
                                .with_name(topic_name(&name))
                                .with_partition_indexes((0..partitions).collect())
                        })
                        .collect(),
                ));
                relay(
                    encode_request(api, version, &header, &request)?,
                    Watch::OffsetFetchAll,
                )
            }
        }
        ApiKey::DescribeGroups => {
            let (_, request) = decode::<DescribeGroupsRequest>(api, version, &frame)?;
            let groups: Vec<String> = request.groups.iter().map(|g| g.0.to_string()).collect();
            let response = answers::describe_groups(&mut front.groups(), &groups, version);
            Decision::Answer(encode_response(api, version, correlation, &response)?)
        }
        ApiKey::ListGroups => {
            let (_, request) = decode::<ListGroupsRequest>(api, version, &frame)?;
            let response = answers::list_groups(&mut front.groups(), &request);
            Decision::Answer(encode_response(api, version, correlation, &response)?)
        }
        ApiKey::CreateTopics => {
            let (_, request) = decode::<CreateTopicsRequest>(api, version, &frame)?;
            let response = answers::create_topics(&front.topics, request, version).await;
            Decision::Answer(encode_response(api, version, correlation, &response)?)
        }
        _ => relay(frame, Watch::Nothing),
    })
}

/// A member's OffsetCommit (generation 0 or more) to a group no member ever joined on this
/// broker: the mock stores it, but the member got its generation, and read its positions,
/// from another broker (one that stopped, and this one started on its address). Its offsets
/// would then sit past the ends of this broker's partitions, hiding their records from the
/// group. Kafka answers a commit with a generation it never gave ILLEGAL_GENERATION (before
/// v9) or GROUP_ID_NOT_FOUND (v9 on), for every partition; the member then rejoins and reads
/// from this broker's offsets. Commits outside a group (generation -1, admin tools) pass.
fn commit_from_another_broker(
    front: &Front,
    version: i16,
    correlation: i32,
    request: &OffsetCommitRequest,
) -> Result<Option<Bytes>, FrontError> {
    use kafka_protocol::messages::offset_commit_response::{
        OffsetCommitResponsePartition, OffsetCommitResponseTopic,
    };
    let group = request.group_id.0.as_str();
    if request.generation_id_or_member_epoch < 0 || front.groups().ever_joined(group) {
        return Ok(None);
    }
    tracing::warn!(
        "refused an offset commit to group {} (member {}, generation {}): this broker knows no \
         such group, no member joined it here; a client of an earlier broker on this address? \
         It rejoins and reads from this broker's offsets",
        crate::report::human::without_hidden(group),
        crate::report::human::without_hidden(&request.member_id),
        request.generation_id_or_member_epoch
    );
    let code = if version >= 9 { 69 } else { 22 };
    let response = OffsetCommitResponse::default().with_topics(
        request
            .topics
            .iter()
            .map(|t| {
                OffsetCommitResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_topic_id(t.topic_id)
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                OffsetCommitResponsePartition::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(code)
                            })
                            .collect(),
                    )
            })
            .collect(),
    );
    Ok(Some(encode_response(
        ApiKey::OffsetCommit,
        version,
        correlation,
        &response,
    )?))
}

/// Produce: every partition's records checked as Kafka's LogValidator does, and topic names as
/// Kafka's produce path does (3 for a name it cannot have, 17 for its internal topics). Good
/// partitions are relayed; refused ones are answered (merged into the mock's response).
fn produce(version: i16, correlation: i32, frame: Bytes) -> Result<Decision, FrontError> {
    let api = ApiKey::Produce;
    let (header, mut request) = decode::<ProduceRequest>(api, version, &frame)?;
    let context = ProduceContext {
        version,
        transactional_id: request.transactional_id.is_some(),
    };
    let mut refused = Vec::new();
    for topic in &mut request.topic_data {
        let name = topic.name.0.to_string();
        // From v13 a topic is named by its id alone; the mock does not serve v13.
        let by_name = version < 13 || !name.is_empty();
        let topic_error = if !by_name {
            None
        } else if topics::is_internal(&name) {
            Some((17, format!("Cannot append to internal topic {name}")))
        } else if let Err(why) = topics::validate(&name) {
            Some((3, why.to_string()))
        } else {
            None
        };
        let mut partitions = Vec::new();
        topic.partition_data.retain(|p| {
            let error = match (&topic_error, &p.records) {
                (Some((code, message)), _) => Some((*code, message.clone())),
                (None, None) => Some((87, "Produce request has no records".to_owned())),
                (None, Some(records)) => batch::validate(records, context)
                    .err()
                    .map(|e| (e.code(), e.to_string())),
            };
            match error {
                Some((code, message)) => {
                    partitions.push(answers::RefusedPartition {
                        index: p.index,
                        code,
                        message,
                    });
                    false
                }
                None => true,
            }
        });
        if !partitions.is_empty() {
            refused.push(answers::RefusedTopic {
                name: topic.name.clone(),
                topic_id: topic.topic_id,
                partitions,
            });
        }
    }
    let expect = request.acks != 0;
    if refused.is_empty() {
        return Ok(Decision::Relay {
            bytes: frame,
            watch: Watch::Nothing,
            expect,
        });
    }
    if !expect {
        // Kafka closes the connection of an acks=0 producer whose records it refuses: there is
        // no response to carry the error.
        return Err(FrontError::RefusedWithoutAcks);
    }
    request.topic_data.retain(|t| !t.partition_data.is_empty());
    if request.topic_data.is_empty() {
        let response = answers::produce_refused(ProduceResponse::default(), refused);
        return Ok(Decision::Answer(encode_response(
            api,
            version,
            correlation,
            &response,
        )?));
    }
    Ok(Decision::Relay {
        bytes: encode_request(api, version, &header, &request)?,
        watch: Watch::Produce { refused },
        expect: true,
    })
}

/// Metadata: names Kafka refuses (17 INVALID_TOPIC_EXCEPTION) are taken out before the mock
/// would auto-create them, and answered in its response.
fn metadata(api: ApiKey, version: i16, frame: Bytes) -> Result<Decision, FrontError> {
    let (header, mut request) = decode::<MetadataRequest>(api, version, &frame)?;
    let mut invalid = Vec::new();
    if let Some(wanted) = &mut request.topics {
        wanted.retain(|t| match &t.name {
            Some(name) if topics::validate(name).is_err() => {
                invalid.push(name.0.to_string());
                false
            }
            _ => true,
        });
    }
    // v0 reads an empty list as "every topic" and has no controller; its clients are long
    // gone, relay as it is.
    if version == 0 {
        return Ok(Decision::Relay {
            bytes: frame,
            watch: Watch::Nothing,
            expect: true,
        });
    }
    if invalid.is_empty() {
        return Ok(Decision::Relay {
            bytes: frame,
            watch: Watch::Metadata { invalid },
            expect: true,
        });
    }
    Ok(Decision::Relay {
        bytes: encode_request(api, version, &header, &request)?,
        watch: Watch::Metadata { invalid },
        expect: true,
    })
}

/// JoinGroup: refused with 23 INCONSISTENT_GROUP_PROTOCOL when it does not fit the group (see
/// groups/), else relayed carrying the group's protocol alone.
fn join_group(
    front: &Front,
    version: i16,
    correlation: i32,
    header: RequestHeader,
    mut request: JoinGroupRequest,
    host: &str,
) -> Result<Decision, FrontError> {
    let api = ApiKey::JoinGroup;
    let group = request.group_id.0.to_string();
    let attempt = JoinAttempt {
        group: group.clone(),
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: header
            .client_id
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default(),
        host: host.to_owned(),
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .iter()
            .map(|p| Protocol {
                name: p.name.to_string(),
                metadata: p.metadata.clone(),
            })
            .collect(),
        session_timeout: std::time::Duration::from_millis(
            u64::try_from(request.session_timeout_ms).unwrap_or(0),
        ),
    };
    let decided = front.groups().join(attempt, Instant::now());
    match decided {
        Err(refusal) => {
            tracing::info!(%group, %refusal, "JoinGroup refused: INCONSISTENT_GROUP_PROTOCOL");
            let response = JoinGroupResponse::default()
                .with_error_code(23)
                .with_generation_id(-1)
                .with_member_id(request.member_id.clone())
                .with_protocol_name((version < 7).then(StrBytes::default));
            Ok(Decision::Answer(encode_response(
                api,
                version,
                correlation,
                &response,
            )?))
        }
        Ok((ticket, chosen)) => {
            request.protocols.retain(|p| p.name.as_str() == chosen.name);
            request.protocols.truncate(1);
            Ok(Decision::Relay {
                bytes: encode_request(api, version, &header, &request)?,
                watch: Watch::Join { group, ticket },
                expect: true,
            })
        }
    }
}
