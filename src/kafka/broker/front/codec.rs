//! Framing, decoding and encoding requests and responses with the `kafka-protocol` crate.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, GroupId, RequestHeader, ResponseHeader, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::FrontError;

/// What a decoding failure of `api` v`version` becomes.
pub(super) fn decode_error(api: ApiKey, version: i16) -> impl Fn(anyhow::Error) -> FrontError {
    move |e| FrontError::Decode {
        api,
        version,
        reason: e.to_string(),
    }
}

/// Decodes a request frame (with its length prefix) into its header and body.
pub(super) fn decode<R: Decodable>(
    api: ApiKey,
    version: i16,
    frame: &Bytes,
) -> Result<(RequestHeader, R), FrontError> {
    let bad = decode_error(api, version);
    let mut buf = frame.slice(4..);
    let header =
        RequestHeader::decode(&mut buf, api.request_header_version(version)).map_err(&bad)?;
    let body = R::decode(&mut buf, version).map_err(&bad)?;
    Ok((header, body))
}

/// A rewritten request, framed.
pub(super) fn encode_request<R: Encodable>(
    api: ApiKey,
    version: i16,
    header: &RequestHeader,
    request: &R,
) -> Result<Bytes, FrontError> {
    encode_framed(
        api,
        version,
        header,
        api.request_header_version(version),
        request,
    )
}

/// One of the front's answers, framed.
pub(super) fn encode_response<R: Encodable>(
    api: ApiKey,
    version: i16,
    correlation: i32,
    response: &R,
) -> Result<Bytes, FrontError> {
    let header = ResponseHeader::default().with_correlation_id(correlation);
    encode_with_header(api, version, &header, response)
}

/// A response under a header of its own (the mock's, when the front rewrote its body), framed.
pub(super) fn encode_with_header<R: Encodable>(
    api: ApiKey,
    version: i16,
    header: &ResponseHeader,
    response: &R,
) -> Result<Bytes, FrontError> {
    encode_framed(
        api,
        version,
        header,
        api.response_header_version(version),
        response,
    )
}

/// A header and a body behind their length.
fn encode_framed<H: Encodable, B: Encodable>(
    api: ApiKey,
    version: i16,
    header: &H,
    header_version: i16,
    body: &B,
) -> Result<Bytes, FrontError> {
    let encode_error = |reason: String| FrontError::Encode {
        api,
        version,
        reason,
    };
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    header
        .encode(&mut buf, header_version)
        .and_then(|()| body.encode(&mut buf, version))
        .map_err(|e| encode_error(e.to_string()))?;
    let length =
        i32::try_from(buf.len() - 4).map_err(|_| encode_error("longer than 2 GiB".into()))?;
    buf[..4].copy_from_slice(&length.to_be_bytes());
    Ok(buf.freeze())
}

/// A group id as the protocol carries it.
pub(crate) fn group_id(name: &str) -> GroupId {
    GroupId(StrBytes::from_string(name.to_owned()))
}

/// A topic name as the protocol carries it.
pub(crate) fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}
