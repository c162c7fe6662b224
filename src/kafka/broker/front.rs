//! The protocol-aware front before the mock: it reads every request frame, relays most of them
//! byte for byte, and acts on the few the mock gets wrong — refusing what would abort it or
//! corrupt a partition, answering what it does not implement — as Apache Kafka 4.1 answers them
//! (../shared/kafka/KAFKA-ANSWERS.md). Requests and answers are decoded and encoded with the
//! `kafka-protocol` crate; only the APIs acted on are decoded, and a response from the mock is
//! decoded only where the front learns from it (group membership) or adds to it.
//!
//! One connection is two tasks' worth of work joined in one future: requests (client → mock)
//! and responses (mock → client). Every request's fate is sent, in order, from the first to
//! the second: a response to expect from the mock (maybe to learn from), or an answer the front
//! made. Answers wait for the mock's responses to earlier requests, because Kafka answers a
//! connection's requests in order and Java clients insist on it.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse, CreateTopicsRequest, DescribeGroupsRequest, FetchRequest,
    FindCoordinatorRequest, FindCoordinatorResponse, GroupId, HeartbeatRequest, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest, MetadataRequest,
    MetadataResponse, OffsetFetchRequest, OffsetFetchResponse, ProduceRequest, ProduceResponse,
    RequestHeader, ResponseHeader, SyncGroupRequest, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

use super::MockTopics;
use super::answers;
use super::batch::{self, ProduceContext};
use super::groups::{GroupBook, JoinAttempt, JoinTicket, Protocol};
use super::topics;

/// Kafka's `socket.request.max.bytes`: a larger (or negative) length closes the connection.
pub const MAX_REQUEST_BYTES: i32 = 100 * 1024 * 1024;

/// The smallest request: api key, version, correlation id and a client id length.
const MIN_REQUEST_BYTES: i32 = 10;

/// Responses the front decodes are small (group and produce answers, metadata); a larger one
/// is relayed unread rather than buffered.
const MAX_WATCHED_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// Requests whose fate may wait for the response task at once; past that the client's
/// requests wait (TCP back-pressure), so a connection's memory stays bounded.
const IN_FLIGHT: usize = 1024;

/// Why the front closed a connection (Kafka closes it in each of these cases too, or the
/// other side already had).
#[derive(Debug, thiserror::Error)]
pub enum FrontError {
    #[error("cannot reach the mock broker: {0}")]
    Upstream(io::Error),
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("request length {0} is outside 10..={MAX_REQUEST_BYTES}")]
    FrameSize(i32),
    #[error("unknown API key {0}")]
    UnknownApi(i16),
    #[error("{api:?} v{version} is outside the versions Kafka 4.1 serves")]
    UnsupportedVersion { api: ApiKey, version: i16 },
    #[error("cannot decode {api:?} v{version}: {reason}")]
    Decode {
        api: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("cannot encode {api:?} v{version}: {reason}")]
    Encode {
        api: ApiKey,
        version: i16,
        reason: String,
    },
    #[error("the mock answered correlation id {0}, which no request in flight carries")]
    StrayResponse(i32),
    #[error("an acks=0 produce carried records Kafka refuses")]
    RefusedWithoutAcks,
}

/// The state every connection of one broker shares.
pub struct Front {
    /// The mock's own (random) address.
    upstream: SocketAddr,
    /// Group membership learnt from the traffic.
    groups: Mutex<GroupBook>,
    /// The mock's topics, for CreateTopics.
    topics: MockTopics,
    /// The longest a Fetch may wait at the mock, in ms (see [`super::FETCH_WAIT_CAP_MS`]).
    fetch_wait_cap_ms: i32,
    /// What ApiVersions answers: each API the mock serves, in the versions both it and Kafka
    /// 4.1 serve, and the APIs the front answers itself.
    api_versions: Vec<ApiVersion>,
}

/// The APIs the front answers itself, in every version Kafka 4.1 serves.
const ANSWERED_HERE: [ApiKey; 4] = [
    ApiKey::ApiVersions,
    ApiKey::DescribeGroups,
    ApiKey::ListGroups,
    ApiKey::CreateTopics,
];

/// Versions the mock advertises but cannot read: its JoinGroup and SyncGroup handlers read the
/// flexible versions' compact arrays (JoinGroup v6, SyncGroup v4) as 4-byte counts, and its
/// LeaveGroup handler reads no member list (v3+). librdkafka's own clients send the older
/// versions; Java's sent the newer ones and hung in the join.
const MOCK_MAX_WORKING: [(ApiKey, i16); 3] = [
    (ApiKey::JoinGroup, 5),
    (ApiKey::SyncGroup, 3),
    (ApiKey::LeaveGroup, 2),
];

/// Asks the mock which API versions it serves (once, at start), and makes the list the front
/// advertises from it. The mock's own answer cannot be relayed: it leaves out what the front
/// serves, and Java clients take it at its word.
pub async fn advertised_versions(upstream: SocketAddr) -> Result<Vec<ApiVersion>, FrontError> {
    let mut mock = TcpStream::connect(upstream)
        .await
        .map_err(FrontError::Upstream)?;
    // v2: the highest the mock of librdkafka 2.12 answers (it has no flexible ApiVersions).
    let version = 2;
    let api = ApiKey::ApiVersions;
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("orderflow-front")));
    let request = encode_request(api, version, &header, &ApiVersionsRequest::default())?;
    mock.write_all(&request).await?;
    let length = mock.read_i32().await?;
    let length = usize::try_from(length).map_err(|_| FrontError::FrameSize(length))?;
    if length > MAX_WATCHED_RESPONSE_BYTES {
        return Err(FrontError::FrameSize(length as i32));
    }
    let mut body = vec![0u8; length];
    mock.read_exact(&mut body).await?;
    let mut body = Bytes::from(body);
    let bad = |e: anyhow::Error| FrontError::Decode {
        api,
        version,
        reason: e.to_string(),
    };
    ResponseHeader::decode(&mut body, api.response_header_version(version)).map_err(bad)?;
    let served = ApiVersionsResponse::decode(&mut body, version).map_err(bad)?;
    let mut advertised: Vec<ApiVersion> = served
        .api_keys
        .iter()
        .filter_map(|served| {
            let key = ApiKey::try_from(served.api_key).ok()?;
            if ANSWERED_HERE.contains(&key)
                || matches!(
                    key,
                    ApiKey::GetTelemetrySubscriptions | ApiKey::PushTelemetry
                )
            {
                return None;
            }
            let kafka = key.valid_versions();
            let working = MOCK_MAX_WORKING
                .iter()
                .find(|(k, _)| *k == key)
                .map_or(i16::MAX, |(_, max)| *max);
            let min = served.min_version.max(kafka.min);
            let max = served.max_version.min(kafka.max).min(working);
            (min <= max).then(|| {
                ApiVersion::default()
                    .with_api_key(served.api_key)
                    .with_min_version(min)
                    .with_max_version(max)
            })
        })
        .collect();
    advertised.extend(ANSWERED_HERE.iter().map(|key| {
        let range = key.valid_versions();
        ApiVersion::default()
            .with_api_key(*key as i16)
            .with_min_version(range.min)
            .with_max_version(range.max)
    }));
    advertised.sort_by_key(|v| v.api_key);
    Ok(advertised)
}

/// What the response side does for one request.
enum Slot {
    /// A request relayed to the mock; its response carries `correlation`.
    Relayed {
        seq: u64,
        correlation: i32,
        api: ApiKey,
        version: i16,
        watch: Watch,
    },
    /// An answer the front made itself, sent once every earlier request is answered.
    Answer { seq: u64, bytes: Bytes },
}

/// What the front learns from, or adds to, a response of the mock.
enum Watch {
    /// Relay it as it is, unread.
    Nothing,
    Join {
        group: String,
        ticket: JoinTicket,
    },
    Sync {
        group: String,
        member: String,
        generation: i32,
    },
    Leave {
        group: String,
        members: Vec<String>,
    },
    ConsumerHeartbeat {
        group: String,
    },
    /// Topics the front took out of a Metadata request: add them back with error 17; and name
    /// a controller that exists.
    Metadata {
        invalid: Vec<String>,
    },
    /// Partitions the front took out of a Produce request: add their errors back.
    Produce {
        refused: Vec<answers::RefusedTopic>,
    },
    /// An OffsetFetch for "every topic", which the front asked as "each topic there is":
    /// keep only what the group committed, as Kafka's answer to "every topic" holds.
    OffsetFetchAll,
}

/// What the request side does with one request.
enum Decision {
    /// Relay these bytes (the request, or a rewrite of it); `expect`: whether the mock answers.
    Relay {
        bytes: Bytes,
        watch: Watch,
        expect: bool,
    },
    /// Answer it here.
    Answer(Bytes),
}

impl Front {
    pub fn new(
        upstream: SocketAddr,
        topics: MockTopics,
        fetch_wait_cap_ms: i32,
        api_versions: Vec<ApiVersion>,
    ) -> Front {
        Front {
            upstream,
            groups: Mutex::new(GroupBook::default()),
            topics,
            fetch_wait_cap_ms,
            api_versions,
        }
    }

    fn groups(&self) -> MutexGuard<'_, GroupBook> {
        // A panic while holding the lock cannot leave the book half-updated in a way that
        // matters more than losing it; keep serving.
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Serves one client connection until either side closes it.
pub async fn relay(
    front: Arc<Front>,
    client: TcpStream,
    peer: SocketAddr,
) -> Result<(), FrontError> {
    let broker = TcpStream::connect(front.upstream)
        .await
        .map_err(FrontError::Upstream)?;
    // Kafka requests are small and latency-bound: do not let Nagle hold them back.
    client.set_nodelay(true)?;
    broker.set_nodelay(true)?;
    let (client_read, client_write) = client.into_split();
    let (broker_read, broker_write) = broker.into_split();
    let (slots, slots_in) = mpsc::channel(IN_FLIGHT);
    let host = format!("/{}", peer.ip());
    let mut responses = Responses {
        front: Arc::clone(&front),
        pending: HashMap::new(),
        pending_seqs: BTreeSet::new(),
        answers: VecDeque::new(),
    };
    tokio::select! {
        result = requests(&front, client_read, broker_write, slots, &host) => result,
        result = responses.run(broker_read, client_write, slots_in) => result,
    }
}

/// Client → mock: reads each frame, decides its fate, relays or hands the answer on.
async fn requests(
    front: &Front,
    client: OwnedReadHalf,
    mut broker: OwnedWriteHalf,
    slots: mpsc::Sender<Slot>,
    host: &str,
) -> Result<(), FrontError> {
    let mut client = BufReader::with_capacity(64 * 1024, client);
    let mut seq = 0u64;
    loop {
        let length = match client.read_i32().await {
            Ok(length) => length,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if !(MIN_REQUEST_BYTES..=MAX_REQUEST_BYTES).contains(&length) {
            return Err(FrontError::FrameSize(length));
        }
        let mut frame = BytesMut::with_capacity(4 + length as usize);
        frame.put_i32(length);
        frame.resize(4 + length as usize, 0);
        client.read_exact(&mut frame[4..]).await?;
        let frame = frame.freeze();
        seq += 1;
        let (api, version, correlation) = fixed_header(&frame[4..])?;
        let slot = match decide(front, api, version, correlation, frame, host).await? {
            Decision::Relay {
                bytes,
                watch,
                expect,
            } => {
                // The slot goes first: the response task must know a correlation id before
                // the mock can possibly answer it.
                if expect {
                    let slot = Slot::Relayed {
                        seq,
                        correlation,
                        api,
                        version,
                        watch,
                    };
                    if slots.send(slot).await.is_err() {
                        return Ok(());
                    }
                }
                broker.write_all(&bytes).await?;
                continue;
            }
            Decision::Answer(bytes) => Slot::Answer { seq, bytes },
        };
        if slots.send(slot).await.is_err() {
            return Ok(());
        }
    }
}

/// The API key, version and correlation id every request starts with; an unknown key or a
/// version outside Kafka 4.1's range closes the connection, as Kafka does (except
/// ApiVersions, which Kafka answers so that the client can pick a version).
fn fixed_header(request: &[u8]) -> Result<(ApiKey, i16, i32), FrontError> {
    let key = i16::from_be_bytes([request[0], request[1]]);
    let version = i16::from_be_bytes([request[2], request[3]]);
    let correlation = i32::from_be_bytes([request[4], request[5], request[6], request[7]]);
    let api = ApiKey::try_from(key).map_err(|()| FrontError::UnknownApi(key))?;
    let range = api.valid_versions();
    if (version < range.min || version > range.max) && api != ApiKey::ApiVersions {
        return Err(FrontError::UnsupportedVersion { api, version });
    }
    Ok((api, version, correlation))
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
async fn decide(
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
/// groups.rs), else relayed carrying the group's protocol alone.
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

/// Mock → client: relays responses (decoding the watched ones) and the front's own answers,
/// each answer after the responses to every earlier request.
struct Responses {
    front: Arc<Front>,
    /// Relayed requests not answered yet, by correlation id.
    pending: HashMap<i32, (u64, ApiKey, i16, Watch)>,
    /// Their sequence numbers, to know which answers may go.
    pending_seqs: BTreeSet<u64>,
    /// The front's answers, in request order.
    answers: VecDeque<(u64, Bytes)>,
}

impl Responses {
    async fn run(
        &mut self,
        broker: OwnedReadHalf,
        client: OwnedWriteHalf,
        mut slots: mpsc::Receiver<Slot>,
    ) -> Result<(), FrontError> {
        let mut broker = BufReader::with_capacity(64 * 1024, broker);
        let mut client = BufWriter::with_capacity(64 * 1024, client);
        loop {
            tokio::select! {
                // Slots first: a response is read only once its slot is known (it was sent
                // before its request was relayed).
                biased;
                slot = slots.recv() => match slot {
                    None => return Ok(()),
                    Some(Slot::Relayed { seq, correlation, api, version, watch }) => {
                        self.pending.insert(correlation, (seq, api, version, watch));
                        self.pending_seqs.insert(seq);
                    }
                    Some(Slot::Answer { seq, bytes }) => self.answers.push_back((seq, bytes)),
                },
                readable = async { broker.fill_buf().await.map(|b| b.is_empty()) } => {
                    if readable? {
                        return Ok(()); // the mock closed the connection (broker down)
                    }
                    self.relay_response(&mut broker, &mut client).await?;
                }
            }
            while let Some((seq, _)) = self.answers.front() {
                if self.pending_seqs.first().is_some_and(|first| first < seq) {
                    break;
                }
                let (_, bytes) = self.answers.pop_front().expect("just seen");
                client.write_all(&bytes).await?;
            }
            if broker.buffer().is_empty() {
                client.flush().await?;
            }
        }
    }

    async fn relay_response(
        &mut self,
        broker: &mut BufReader<OwnedReadHalf>,
        client: &mut BufWriter<OwnedWriteHalf>,
    ) -> Result<(), FrontError> {
        let length = broker.read_i32().await?;
        let correlation = broker.read_i32().await?;
        let (seq, api, version, watch) = self
            .pending
            .remove(&correlation)
            .ok_or(FrontError::StrayResponse(correlation))?;
        self.pending_seqs.remove(&seq);
        let body_length = usize::try_from(length)
            .ok()
            .and_then(|l| l.checked_sub(4))
            .ok_or(FrontError::StrayResponse(correlation))?;
        if matches!(watch, Watch::Nothing) || body_length > MAX_WATCHED_RESPONSE_BYTES {
            client.write_i32(length).await?;
            client.write_i32(correlation).await?;
            tokio::io::copy(&mut (&mut *broker).take(body_length as u64), client).await?;
            return Ok(());
        }
        let mut frame = BytesMut::with_capacity(8 + body_length);
        frame.put_i32(length);
        frame.put_i32(correlation);
        frame.resize(8 + body_length, 0);
        broker.read_exact(&mut frame[8..]).await?;
        let frame = frame.freeze();
        let out = self
            .learn(api, version, frame.clone(), watch)
            .unwrap_or_else(|e| {
                tracing::debug!(error = %e, "relaying a response of the mock unread");
                frame
            });
        client.write_all(&out).await?;
        Ok(())
    }

    /// Learns from a watched response; returns what to send the client (the response, or it
    /// with the front's refusals added).
    fn learn(
        &self,
        api: ApiKey,
        version: i16,
        frame: Bytes,
        watch: Watch,
    ) -> Result<Bytes, FrontError> {
        let header_version = api.response_header_version(version);
        let mut body = frame.slice(4..);
        let header =
            ResponseHeader::decode(&mut body, header_version).map_err(|e| FrontError::Decode {
                api,
                version,
                reason: e.to_string(),
            })?;
        let bad = |e: anyhow::Error| FrontError::Decode {
            api,
            version,
            reason: e.to_string(),
        };
        let now = Instant::now();
        match watch {
            Watch::Nothing => Ok(frame),
            Watch::Join { group, ticket } => {
                let response = JoinGroupResponse::decode(&mut body, version).map_err(bad)?;
                self.front.groups().joined(
                    &group,
                    ticket,
                    response.error_code,
                    &response.member_id,
                    response.generation_id,
                );
                Ok(frame)
            }
            Watch::Sync {
                group,
                member,
                generation,
            } => {
                let response = SyncGroupResponse::decode(&mut body, version).map_err(bad)?;
                if response.error_code == 0 {
                    self.front
                        .groups()
                        .synced(&group, &member, generation, response.assignment);
                }
                Ok(frame)
            }
            Watch::Leave { group, members } => {
                let response = LeaveGroupResponse::decode(&mut body, version).map_err(bad)?;
                if response.error_code == 0 {
                    let mut book = self.front.groups();
                    if version < 3 {
                        members.iter().for_each(|m| book.left(&group, m));
                    } else {
                        for m in response.members.iter().filter(|m| m.error_code == 0) {
                            book.left(&group, &m.member_id);
                        }
                    }
                }
                Ok(frame)
            }
            Watch::ConsumerHeartbeat { group } => {
                let response =
                    ConsumerGroupHeartbeatResponse::decode(&mut body, version).map_err(bad)?;
                if response.error_code == 0
                    && let Some(member) = &response.member_id
                {
                    self.front.groups().consumer_joined(&group, member, now);
                }
                Ok(frame)
            }
            Watch::Metadata { invalid } => {
                let mut response = MetadataResponse::decode(&mut body, version).map_err(bad)?;
                answers::metadata_invalid(&mut response, invalid);
                // The mock never sets its controller and names node 0, which does not exist;
                // Java's admin client then waits for it forever (kafka-topics --create hung).
                if !response
                    .brokers
                    .iter()
                    .any(|b| b.node_id == response.controller_id)
                    && let Some(broker) = response.brokers.first()
                {
                    response.controller_id = broker.node_id;
                }
                encode_with_header(api, version, &header, &response)
            }
            Watch::OffsetFetchAll => {
                let mut response = OffsetFetchResponse::decode(&mut body, version).map_err(bad)?;
                for topic in &mut response.topics {
                    topic
                        .partitions
                        .retain(|p| p.committed_offset >= 0 || p.error_code != 0);
                }
                response.topics.retain(|t| !t.partitions.is_empty());
                encode_with_header(api, version, &header, &response)
            }
            Watch::Produce { refused } => {
                let response = ProduceResponse::decode(&mut body, version).map_err(bad)?;
                let response = answers::produce_refused(response, refused);
                encode_with_header(api, version, &header, &response)
            }
        }
    }
}

impl Drop for Responses {
    /// Joins whose connection closed before their answer: the mock keeps such a member until
    /// its session times out, so the book keeps it too.
    fn drop(&mut self) {
        let mut book = self.front.groups();
        for (_, _, _, watch) in self.pending.values() {
            if let Watch::Join { group, ticket } = watch {
                book.join_abandoned(group, *ticket);
            }
        }
    }
}

/// Decodes a request frame (with its length prefix) into its header and body.
fn decode<R: Decodable>(
    api: ApiKey,
    version: i16,
    frame: &Bytes,
) -> Result<(RequestHeader, R), FrontError> {
    let bad = |e: anyhow::Error| FrontError::Decode {
        api,
        version,
        reason: e.to_string(),
    };
    let mut buf = frame.slice(4..);
    let header =
        RequestHeader::decode(&mut buf, api.request_header_version(version)).map_err(bad)?;
    let body = R::decode(&mut buf, version).map_err(bad)?;
    Ok((header, body))
}

/// A rewritten request, framed.
fn encode_request<R: Encodable>(
    api: ApiKey,
    version: i16,
    header: &RequestHeader,
    request: &R,
) -> Result<Bytes, FrontError> {
    frame(api, version, |buf| {
        header.encode(buf, api.request_header_version(version))?;
        request.encode(buf, version)
    })
}

/// One of the front's answers, framed.
pub fn encode_response<R: Encodable>(
    api: ApiKey,
    version: i16,
    correlation: i32,
    response: &R,
) -> Result<Bytes, FrontError> {
    let header = ResponseHeader::default().with_correlation_id(correlation);
    encode_with_header(api, version, &header, response)
}

fn encode_with_header<R: Encodable>(
    api: ApiKey,
    version: i16,
    header: &ResponseHeader,
    response: &R,
) -> Result<Bytes, FrontError> {
    frame(api, version, |buf| {
        header.encode(buf, api.response_header_version(version))?;
        response.encode(buf, version)
    })
}

fn frame(
    api: ApiKey,
    version: i16,
    write: impl FnOnce(&mut BytesMut) -> anyhow::Result<()>,
) -> Result<Bytes, FrontError> {
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    write(&mut buf).map_err(|e| FrontError::Encode {
        api,
        version,
        reason: e.to_string(),
    })?;
    let length = i32::try_from(buf.len() - 4).map_err(|_| FrontError::Encode {
        api,
        version,
        reason: "longer than 2 GiB".into(),
    })?;
    buf[..4].copy_from_slice(&length.to_be_bytes());
    Ok(buf.freeze())
}

/// A group id as the protocol carries it.
pub fn group_id(name: &str) -> GroupId {
    GroupId(StrBytes::from_string(name.to_owned()))
}

/// A topic name as the protocol carries it.
pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}
