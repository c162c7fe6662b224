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

mod codec;
mod decide;
mod responses;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

use super::MockTopics;
use super::answers;
use super::groups::{GroupBook, JoinTicket};
use codec::{decode_error, encode_request};
pub(crate) use codec::{group_id, topic_name};
use decide::{Decision, decide};
use responses::Responses;

/// Kafka's `socket.request.max.bytes`: a larger (or negative) length closes the connection.
pub(crate) const MAX_REQUEST_BYTES: i32 = 100 * 1024 * 1024;

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
pub(crate) enum FrontError {
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
pub(crate) struct Front {
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
pub(crate) async fn advertised_versions(
    upstream: SocketAddr,
) -> Result<Vec<ApiVersion>, FrontError> {
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
    let bad = decode_error(api, version);
    ResponseHeader::decode(&mut body, api.response_header_version(version)).map_err(&bad)?;
    let served = ApiVersionsResponse::decode(&mut body, version).map_err(&bad)?;
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

impl Front {
    pub(crate) fn new(
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
        crate::lock::lock(&self.groups)
    }
}

/// Serves one client connection until either side closes it.
pub(crate) async fn relay(
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
