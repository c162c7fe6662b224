//! The admin requests librdkafka does not offer, sent with the kafka-protocol crate over a
//! plain TCP connection, one request at a time: the active controller (DescribeQuorum, to a
//! node's controller listener), the groups a broker coordinates (ListGroups) and each group's
//! coordinator (FindCoordinator).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::{
    ApiKey, DescribeQuorumRequest, DescribeQuorumResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, ListGroupsRequest, ListGroupsResponse, RequestHeader, ResponseHeader,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// How long one request may take: a node that is up answers these in milliseconds; one that
/// is starting or being killed may never answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a request to one node got no usable answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WireError {
    #[error("{address}: {source}")]
    Io {
        address: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{address}: cannot read its {api:?} answer: {reason}")]
    Decode {
        address: String,
        api: ApiKey,
        reason: String,
    },
    #[error("{address}: {api:?} failed with Kafka error {code}{}", message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Kafka {
        address: String,
        api: ApiKey,
        code: i16,
        message: Option<String>,
    },
}

/// A group's coordinator: its node id, or the Kafka error code that says why there is none.
pub(super) type Coordinator = Result<i32, i16>;

/// A connection to one node.
pub(super) struct Connection {
    address: String,
    stream: TcpStream,
    correlation: i32,
}

impl Connection {
    pub(super) fn open(address: &str) -> Result<Connection, WireError> {
        let io = |source| WireError::Io {
            address: address.to_owned(),
            source,
        };
        let socket: SocketAddr = address.parse().map_err(|e: std::net::AddrParseError| {
            io(std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
        })?;
        let stream = TcpStream::connect_timeout(&socket, REQUEST_TIMEOUT).map_err(io)?;
        stream.set_read_timeout(Some(REQUEST_TIMEOUT)).map_err(io)?;
        stream
            .set_write_timeout(Some(REQUEST_TIMEOUT))
            .map_err(io)?;
        Ok(Connection {
            address: address.to_owned(),
            stream,
            correlation: 0,
        })
    }

    fn call<Q: Encodable, P: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        request: &Q,
    ) -> Result<P, WireError> {
        self.correlation += 1;
        let decode = |reason: String| WireError::Decode {
            address: self.address.clone(),
            api,
            reason,
        };
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("orderflow-cluster")));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, api.request_header_version(version))
            .and_then(|()| request.encode(&mut body, version))
            .map_err(|e| decode(format!("encoding the request: {e}")))?;
        let mut frame = Vec::with_capacity(body.len() + 4);
        frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
        frame.extend_from_slice(&body);
        let io = |source| WireError::Io {
            address: self.address.clone(),
            source,
        };
        self.stream.write_all(&frame).map_err(io)?;
        let mut length = [0u8; 4];
        self.stream.read_exact(&mut length).map_err(io)?;
        let length = u32::from_be_bytes(length) as usize;
        // These answers are a few kilobytes; a length past 64 MB is not one of them.
        if length > 64 << 20 {
            return Err(decode(format!("a {length}-byte answer")));
        }
        let mut answer = vec![0u8; length];
        self.stream.read_exact(&mut answer).map_err(io)?;
        let mut answer = Bytes::from(answer);
        let header = ResponseHeader::decode(&mut answer, api.response_header_version(version))
            .map_err(|e| decode(e.to_string()))?;
        if header.correlation_id != self.correlation {
            return Err(decode(format!(
                "correlation id {} for request {}",
                header.correlation_id, self.correlation
            )));
        }
        P::decode(&mut answer, version).map_err(|e| decode(e.to_string()))
    }

    fn kafka_error(&self, api: ApiKey, code: i16, message: Option<&StrBytes>) -> WireError {
        WireError::Kafka {
            address: self.address.clone(),
            api,
            code,
            message: message.map(|m| m.to_string()),
        }
    }

    /// The node leading the KRaft metadata quorum: the active controller. Asked of a node's
    /// controller listener, which answers it itself.
    pub(super) fn active_controller(&mut self) -> Result<i32, WireError> {
        let request = DescribeQuorumRequest::default().with_topics(vec![
            TopicData::default()
                .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
                .with_partitions(vec![PartitionData::default().with_partition_index(0)]),
        ]);
        let api = ApiKey::DescribeQuorum;
        let answer: DescribeQuorumResponse = self.call(api, 0, &request)?;
        if answer.error_code != 0 {
            return Err(self.kafka_error(api, answer.error_code, answer.error_message.as_ref()));
        }
        let partition = answer
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .ok_or_else(|| self.kafka_error(api, -1, None))?;
        if partition.error_code != 0 {
            return Err(self.kafka_error(api, partition.error_code, None));
        }
        Ok(partition.leader_id.0)
    }

    /// The groups this broker coordinates, with their state (Stable, Empty,
    /// PreparingRebalance, …).
    pub(super) fn groups(&mut self) -> Result<Vec<(String, String)>, WireError> {
        let api = ApiKey::ListGroups;
        let answer: ListGroupsResponse = self.call(api, 4, &ListGroupsRequest::default())?;
        if answer.error_code != 0 {
            return Err(self.kafka_error(api, answer.error_code, None));
        }
        Ok(answer
            .groups
            .into_iter()
            .map(|g| (g.group_id.0.to_string(), g.group_state.to_string()))
            .collect())
    }

    /// Each group's coordinator as the cluster names it now: a node id, or Kafka's error code
    /// (15, COORDINATOR_NOT_AVAILABLE, while the group's offsets partition has no leader).
    pub(super) fn coordinators(
        &mut self,
        groups: &[String],
    ) -> Result<Vec<(String, Coordinator)>, WireError> {
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let request = FindCoordinatorRequest::default()
            .with_key_type(0)
            .with_coordinator_keys(
                groups
                    .iter()
                    .map(|g| StrBytes::from_string(g.clone()))
                    .collect(),
            );
        let answer: FindCoordinatorResponse = self.call(ApiKey::FindCoordinator, 4, &request)?;
        Ok(answer
            .coordinators
            .into_iter()
            .map(|c| {
                let found = if c.error_code == 0 {
                    Ok(c.node_id.0)
                } else {
                    Err(c.error_code)
                };
                (c.key.to_string(), found)
            })
            .collect())
    }
}
