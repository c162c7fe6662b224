//! The responses the front makes itself, shaped as Kafka 4.1 shapes them: DescribeGroups and
//! ListGroups from the group book, CreateTopics through the mock's topic API, and the errors
//! it adds to the mock's Metadata and Produce responses.

use std::collections::HashSet;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, CreateTopicsRequest, CreateTopicsResponse, DescribeGroupsResponse,
    ListGroupsRequest, ListGroupsResponse, MetadataResponse, ProduceResponse, ResponseHeader,
    TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::MockTopics;
use super::front::{FrontError, group_id, topic_name};
use super::groups::{GroupBook, GroupView};
use super::topics;

/// Partitions a topic gets from CreateTopics with -1, as the mock's auto-creation gives them.
pub(crate) const DEFAULT_PARTITIONS: i32 = 4;

/// A partition of a Produce request the front answered itself.
#[derive(Clone, Debug)]
pub(crate) struct RefusedPartition {
    pub(crate) index: i32,
    pub(crate) code: i16,
    pub(crate) message: String,
}

/// A topic of a Produce request with refused partitions.
#[derive(Clone, Debug)]
pub(crate) struct RefusedTopic {
    pub(crate) name: TopicName,
    pub(crate) topic_id: uuid::Uuid,
    pub(crate) partitions: Vec<RefusedPartition>,
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// ApiVersions in a version Kafka does not serve: a v0 response with error 35 listing only
/// ApiVersions itself, so the client retries with a version it has.
pub(crate) fn api_versions_unsupported(correlation: i32) -> Result<Bytes, FrontError> {
    let range = ApiKey::ApiVersions.valid_versions();
    let response = ApiVersionsResponse::default()
        .with_error_code(35)
        .with_api_keys(vec![
            ApiVersion::default()
                .with_api_key(ApiKey::ApiVersions as i16)
                .with_min_version(range.min)
                .with_max_version(range.max),
        ]);
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    let encode = |buf: &mut BytesMut| -> anyhow::Result<()> {
        ResponseHeader::default()
            .with_correlation_id(correlation)
            .encode(buf, 0)?;
        response.encode(buf, 0)
    };
    encode(&mut buf).map_err(|e| FrontError::Encode {
        api: ApiKey::ApiVersions,
        version: 0,
        reason: e.to_string(),
    })?;
    let length = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&length.to_be_bytes());
    Ok(buf.freeze())
}

/// DescribeGroups from what the front saw. An unknown group is "Dead" with no error before
/// v6 and GROUP_ID_NOT_FOUND from v6, as Kafka answers; a KIP-848 group likewise ("is not a
/// classic group").
pub(crate) fn describe_groups(
    book: &mut GroupBook,
    groups: &[String],
    version: i16,
) -> DescribeGroupsResponse {
    let now = std::time::Instant::now();
    let described = groups
        .iter()
        .map(|name| match book.describe(name, now) {
            Some(view) if view.kind == "classic" => described(view),
            known => {
                let (code, message) = if version >= 6 {
                    let why = if known.is_some() {
                        format!("Group {name} is not a classic group.")
                    } else {
                        format!("Group {name} not found.")
                    };
                    (69, Some(text(&why)))
                } else {
                    (0, None)
                };
                DescribedGroup::default()
                    .with_group_id(group_id(name))
                    .with_error_code(code)
                    .with_error_message(message)
                    .with_group_state(text("Dead"))
                    .with_authorized_operations(i32::MIN)
            }
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(described)
}

fn described(view: GroupView) -> DescribedGroup {
    DescribedGroup::default()
        .with_group_id(group_id(&view.group))
        .with_group_state(text(view.state.name()))
        .with_protocol_type(text(&view.protocol_type))
        .with_protocol_data(text(&view.protocol))
        // Kafka's "not requested" value.
        .with_authorized_operations(i32::MIN)
        .with_members(
            view.members
                .into_iter()
                .map(|m| {
                    DescribedGroupMember::default()
                        .with_member_id(text(&m.member_id))
                        .with_group_instance_id(m.instance_id.as_deref().map(text))
                        .with_client_id(text(&m.client_id))
                        .with_client_host(text(&m.host))
                        .with_member_metadata(m.metadata)
                        .with_member_assignment(m.assignment)
                })
                .collect(),
        )
}

/// ListGroups, with Kafka's state (v4) and type (v5) filters, both case-insensitive.
pub(crate) fn list_groups(book: &mut GroupBook, request: &ListGroupsRequest) -> ListGroupsResponse {
    let wanted = |filter: &[StrBytes], value: &str| {
        filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(value))
    };
    let groups = book
        .list(std::time::Instant::now())
        .into_iter()
        .filter(|g| wanted(&request.states_filter, g.state.name()))
        .filter(|g| wanted(&request.types_filter, g.kind))
        .map(|g| {
            ListedGroup::default()
                .with_group_id(group_id(&g.group))
                .with_protocol_type(text(&g.protocol_type))
                .with_group_state(text(g.state.name()))
                .with_group_type(text(g.kind))
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

/// CreateTopics through the mock, with Kafka's checks and messages.
pub(crate) async fn create_topics(
    mock: &MockTopics,
    request: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let mock = mock.clone();
    let validate_only = request.validate_only;
    // The mock's topic API blocks until the mock's thread has run the command.
    let results = tokio::task::spawn_blocking(move || {
        let existing = mock.names().unwrap_or_default();
        let mut seen = HashSet::new();
        let duplicated: HashSet<String> = request
            .topics
            .iter()
            .map(|t| t.name.0.to_string())
            .filter(|name| !seen.insert(name.clone()))
            .collect();
        request
            .topics
            .into_iter()
            .map(|topic| {
                let name = topic.name.0.to_string();
                let partitions = if topic.assignments.is_empty() {
                    topic.num_partitions
                } else {
                    topic.assignments.len() as i32
                };
                let outcome = check_new_topic(
                    &name,
                    partitions,
                    topic.replication_factor,
                    &existing,
                    &duplicated,
                )
                .and_then(|(partitions, replication)| {
                    if !validate_only {
                        mock.create(&name, partitions, replication)?;
                    }
                    Ok((partitions, replication))
                });
                topic_result(&name, outcome, version)
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    CreateTopicsResponse::default().with_topics(results)
}

/// Kafka's refusal of one new topic: its code and message.
pub(crate) type Refusal = (i16, String);

fn check_new_topic(
    name: &str,
    partitions: i32,
    replication: i16,
    existing: &[String],
    duplicated: &HashSet<String>,
) -> Result<(i32, i16), Refusal> {
    if duplicated.contains(name) {
        return Err((42, "Duplicate topic name.".into()));
    }
    topics::validate(name).map_err(|e| (17, e.to_string()))?;
    if existing.iter().any(|t| t == name) {
        return Err((36, format!("Topic '{name}' already exists.")));
    }
    if let Some(other) = existing.iter().find(|t| topics::collides(name, t)) {
        return Err((
            17,
            format!("Topic '{name}' collides with existing topic: {other}"),
        ));
    }
    let partitions = match partitions {
        -1 => DEFAULT_PARTITIONS,
        p if p > 0 => p,
        _ => {
            return Err((
                37,
                "Number of partitions was set to an invalid non-positive value.".into(),
            ));
        }
    };
    let replication = match replication {
        -1 | 1 => 1,
        r if r > 1 => {
            return Err((
                38,
                format!(
                    "Unable to replicate the partition {r} time(s): The target replication \
                     factor of {r} cannot be reached because only 1 broker(s) are registered."
                ),
            ));
        }
        _ => {
            return Err((
                38,
                "Replication factor must be larger than 0, or -1 to use the default value.".into(),
            ));
        }
    };
    Ok((partitions, replication))
}

fn topic_result(
    name: &str,
    outcome: Result<(i32, i16), Refusal>,
    version: i16,
) -> CreatableTopicResult {
    let result = CreatableTopicResult::default().with_name(topic_name(name));
    match outcome {
        Ok((partitions, replication)) => result
            .with_num_partitions(partitions)
            .with_replication_factor(replication),
        Err((code, message)) => result
            .with_error_code(code)
            .with_error_message((version >= 1).then(|| text(&message)))
            .with_num_partitions(-1)
            .with_replication_factor(-1),
    }
}

/// Adds the names the front took out of a Metadata request back, with 17.
pub(crate) fn metadata_invalid(response: &mut MetadataResponse, invalid: Vec<String>) {
    for name in invalid {
        response.topics.push(
            MetadataResponseTopic::default()
                .with_name(Some(topic_name(&name)))
                .with_error_code(17)
                .with_topic_authorized_operations(i32::MIN),
        );
    }
}

/// Adds the partitions the front refused to a Produce response (the mock's, or an empty one).
pub(crate) fn produce_refused(
    mut response: ProduceResponse,
    refused: Vec<RefusedTopic>,
) -> ProduceResponse {
    for topic in refused {
        let partitions = topic.partitions.into_iter().map(|p| {
            PartitionProduceResponse::default()
                .with_index(p.index)
                .with_error_code(p.code)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1)
                .with_error_message(Some(text(&p.message)))
        });
        match response
            .responses
            .iter_mut()
            .find(|t| t.name == topic.name && t.topic_id == topic.topic_id)
        {
            Some(existing) => existing.partition_responses.extend(partitions),
            None => response.responses.push(
                TopicProduceResponse::default()
                    .with_name(topic.name)
                    .with_topic_id(topic.topic_id)
                    .with_partition_responses(partitions.collect()),
            ),
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_topics_are_checked_as_kafka_checks_them() {
        let existing = vec!["dot.name".to_owned(), "orders".to_owned()];
        let none = HashSet::new();
        let check = |name: &str, p: i32, r: i16| check_new_topic(name, p, r, &existing, &none);
        assert_eq!(check("new", -1, -1), Ok((DEFAULT_PARTITIONS, 1)));
        assert_eq!(check("new", 3, 1), Ok((3, 1)));
        assert_eq!(check("orders", 3, 1).unwrap_err().0, 36);
        assert_eq!(
            check("dot_name", 3, 1).unwrap_err(),
            (
                17,
                "Topic 'dot_name' collides with existing topic: dot.name".into()
            )
        );
        assert_eq!(check("bad topic", 3, 1).unwrap_err().0, 17);
        assert_eq!(check("new", 0, 1).unwrap_err().0, 37);
        assert_eq!(check("new", 1, 3).unwrap_err().0, 38);
        assert_eq!(check("new", 1, 0).unwrap_err().0, 38);
        let twice: HashSet<String> = ["x".to_owned()].into();
        assert_eq!(
            check_new_topic("x", 1, 1, &existing, &twice).unwrap_err(),
            (42, "Duplicate topic name.".into())
        );
    }
}
