//! Mock → client: the responses relayed, learnt from, and merged with the front's answers.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ConsumerGroupHeartbeatResponse, JoinGroupResponse, LeaveGroupResponse,
    MetadataResponse, OffsetFetchResponse, ProduceResponse, ResponseHeader, SyncGroupResponse,
};
use kafka_protocol::protocol::Decodable;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

use super::super::answers;
use super::codec::{decode_error, encode_with_header};
use super::{Front, FrontError, MAX_WATCHED_RESPONSE_BYTES, Slot, Watch};

/// Mock → client: relays responses (decoding the watched ones) and the front's own answers,
/// each answer after the responses to every earlier request.
pub(super) struct Responses {
    /// The state every connection shares (the group book, to learn into).
    pub(super) front: Arc<Front>,
    /// Relayed requests not answered yet, by correlation id.
    pub(super) pending: HashMap<i32, (u64, ApiKey, i16, Watch)>,
    /// Their sequence numbers, to know which answers may go.
    pub(super) pending_seqs: BTreeSet<u64>,
    /// The front's answers, in request order.
    pub(super) answers: VecDeque<(u64, Bytes)>,
}

impl Responses {
    pub(super) async fn run(
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
        let bad = decode_error(api, version);
        let header = ResponseHeader::decode(&mut body, header_version).map_err(&bad)?;
        let now = Instant::now();
        match watch {
            Watch::Nothing => Ok(frame),
            Watch::Join { group, ticket } => {
                let response = JoinGroupResponse::decode(&mut body, version).map_err(&bad)?;
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
                let response = SyncGroupResponse::decode(&mut body, version).map_err(&bad)?;
                if response.error_code == 0 {
                    self.front
                        .groups()
                        .synced(&group, &member, generation, response.assignment);
                }
                Ok(frame)
            }
            Watch::Leave { group, members } => {
                let response = LeaveGroupResponse::decode(&mut body, version).map_err(&bad)?;
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
                    ConsumerGroupHeartbeatResponse::decode(&mut body, version).map_err(&bad)?;
                if response.error_code == 0
                    && let Some(member) = &response.member_id
                {
                    self.front.groups().consumer_joined(&group, member, now);
                }
                Ok(frame)
            }
            Watch::Metadata { invalid } => {
                let mut response = MetadataResponse::decode(&mut body, version).map_err(&bad)?;
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
                let mut response = OffsetFetchResponse::decode(&mut body, version).map_err(&bad)?;
                for topic in &mut response.topics {
                    topic
                        .partitions
                        .retain(|p| p.committed_offset >= 0 || p.error_code != 0);
                }
                response.topics.retain(|t| !t.partitions.is_empty());
                encode_with_header(api, version, &header, &response)
            }
            Watch::Produce { refused } => {
                let response = ProduceResponse::decode(&mut body, version).map_err(&bad)?;
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
