//! Produce-side record batch checks, as Kafka's `LogValidator` makes them: the mock stores
//! whatever bytes a client sends, and one corrupt batch then stalls every consumer of its
//! partition for good.
//!
//! The checks run on the raw bytes of one partition's `records` field, at the fixed offsets
//! of the v2 batch header. kafka-protocol's `RecordBatchDecoder` reads the same format, but
//! it answers every problem with one untyped error, while Kafka answers some with
//! CORRUPT_MESSAGE and others with INVALID_RECORD, and it neither notices bytes left after
//! the last record nor a second batch; it would also build every record (keys, values,
//! header maps) only to drop them. So the walk here only reads lengths, allocates nothing and
//! classifies as Kafka does (cases and codes: ../shared/kafka/KAFKA-ANSWERS.md).

/// Kafka's error for a partition's records.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BatchError {
    /// 2 CORRUPT_MESSAGE: the bytes are not what their header claims (CRC, sizes, magic).
    #[error("{0}")]
    Corrupt(&'static str),
    /// 87 INVALID_RECORD: a well-formed batch Kafka will not store.
    #[error("{0}")]
    Invalid(&'static str),
    /// -1 UNKNOWN_SERVER_ERROR: Kafka's answer to an unknown compression codec.
    #[error("{0}")]
    UnknownCodec(&'static str),
    /// 76 UNSUPPORTED_COMPRESSION_TYPE: zstd before Produce v7.
    #[error("{0}")]
    UnsupportedCompression(&'static str),
    /// 53 TRANSACTIONAL_ID_AUTHORIZATION_FAILED: a transactional batch without a
    /// transactional id on the request.
    #[error("{0}")]
    TransactionalWithoutId(&'static str),
    /// 10 MESSAGE_TOO_LARGE: a batch over Kafka's default `message.max.bytes`.
    #[error(
        "The record batch size in the append is {0} bytes which exceeds the maximum \
         configured value of {MAX_MESSAGE_BYTES}."
    )]
    TooLarge(usize),
}

impl BatchError {
    /// The error code in the Produce response.
    pub(crate) fn code(&self) -> i16 {
        match self {
            BatchError::Corrupt(_) => 2,
            BatchError::Invalid(_) => 87,
            BatchError::UnknownCodec(_) => -1,
            BatchError::UnsupportedCompression(_) => 76,
            BatchError::TransactionalWithoutId(_) => 53,
            BatchError::TooLarge(_) => 10,
        }
    }
}

/// Kafka's default `message.max.bytes` (1 MiB + LOG_OVERHEAD), the largest batch a broker
/// stores. The mock takes any size, then drops a partition's oldest records past 5 MB: one
/// 17 MB record emptied its partition, itself included, and the producer was told it was
/// stored.
pub(crate) const MAX_MESSAGE_BYTES: usize = 1_048_588;

/// baseOffset (8) + batchLength (4): the part of a batch its length does not count.
const LOG_OVERHEAD: usize = 12;
/// Kafka's smallest acceptable batchLength (`LegacyRecord.RECORD_OVERHEAD_V0`).
const MIN_BATCH_LENGTH: i32 = 14;
/// The whole v2 header, up to the first record.
const HEADER_LENGTH: usize = 61;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const RECORD_COUNT_AT: usize = 57;

/// What the request says about the batches it carries.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ProduceContext {
    /// The Produce request's version.
    pub(crate) version: i16,
    /// Whether the request names a transactional id.
    pub(crate) transactional_id: bool,
}

/// Checks one partition's records as Kafka does before appending them.
pub(crate) fn validate(records: &[u8], context: ProduceContext) -> Result<(), BatchError> {
    let batch = first_batch(records)?;
    if batch.len() > MAX_MESSAGE_BYTES {
        return Err(BatchError::TooLarge(batch.len()));
    }
    let rest = &records[batch.len()..];
    // Kafka's batch iterator stops quietly at a truncated trailing batch (the first is then
    // stored), but a second complete batch is refused: v2 requests carry exactly one.
    if rest.len() >= LOG_OVERHEAD {
        let length = i32_at(rest, 8);
        if length < MIN_BATCH_LENGTH {
            return Err(BatchError::Corrupt(
                "Record size is less than the minimum record overhead (14)",
            ));
        }
        if rest.len() >= LOG_OVERHEAD + length as usize {
            return Err(BatchError::Invalid(
                "Compressed outer record has more than one batch",
            ));
        }
    }
    if batch.len() < HEADER_LENGTH {
        return Err(BatchError::Corrupt(
            "Record batch is smaller than the minimum allowed overhead 61",
        ));
    }
    let crc = u32::from_be_bytes(batch[CRC_AT..CRC_AT + 4].try_into().expect("4 bytes"));
    if crc32c::crc32c(&batch[ATTRIBUTES_AT..]) != crc {
        return Err(BatchError::Corrupt("Record is corrupt (CRC mismatch)"));
    }
    let attributes = u16::from_be_bytes([batch[ATTRIBUTES_AT], batch[ATTRIBUTES_AT + 1]]);
    let codec = attributes & 0x7;
    let transactional = attributes & 0x10 != 0;
    let control = attributes & 0x20 != 0;
    if i64::from_be_bytes(batch[..8].try_into().expect("8 bytes")) != 0 {
        return Err(BatchError::Invalid(
            "The base offset of the record batch must be 0",
        ));
    }
    if codec > 4 {
        return Err(BatchError::UnknownCodec("Unknown compression type id"));
    }
    if codec == 4 && context.version < 7 {
        return Err(BatchError::UnsupportedCompression(
            "Produce requests with version below 7 cannot use ZStandard compression",
        ));
    }
    if control {
        return Err(BatchError::Invalid("Clients may not send control records"));
    }
    if transactional && !context.transactional_id {
        return Err(BatchError::TransactionalWithoutId(
            "A transactional batch needs a transactional id",
        ));
    }
    let count = i32_at(batch, RECORD_COUNT_AT);
    if count <= 0 {
        return Err(BatchError::Invalid("Record batch has no records"));
    }
    if i32_at(batch, LAST_OFFSET_DELTA_AT) != count - 1 {
        return Err(BatchError::Invalid("Inconsistent batch offset range"));
    }
    if codec == 0 {
        check_records(&batch[HEADER_LENGTH..], count)?;
    }
    // A compressed batch's records are checked by their CRC only: the front does not
    // decompress what it relays (the consumers do).
    Ok(())
}

/// The first batch of `records`, its length checked against the data.
fn first_batch(records: &[u8]) -> Result<&[u8], BatchError> {
    if records.len() < LOG_OVERHEAD {
        return Err(BatchError::Invalid(
            "The record set holds no complete batch",
        ));
    }
    let length = i32_at(records, 8);
    if length < MIN_BATCH_LENGTH {
        return Err(BatchError::Corrupt(
            "Record size is less than the minimum record overhead (14)",
        ));
    }
    let end = LOG_OVERHEAD + length as usize;
    if records.len() < end {
        // Kafka's iterator finds no batch at all here.
        return Err(BatchError::Invalid(
            "The record set holds no complete batch",
        ));
    }
    match records[MAGIC_AT] as i8 {
        2 => Ok(&records[..end]),
        0 | 1 => Err(BatchError::Invalid(
            "Produce requests with version 3 and above must use magic 2",
        )),
        _ => Err(BatchError::Corrupt("Invalid magic byte")),
    }
}

/// Walks `count` records: each length varint, and inside each record its key, value and
/// header lengths, which must end exactly where the record does; and no bytes after the last.
fn check_records(mut data: &[u8], count: i32) -> Result<(), BatchError> {
    let bad = BatchError::Invalid("Found invalid record structure");
    for _ in 0..count {
        let length = varint(&mut data).ok_or_else(|| bad.clone())?;
        let length = usize::try_from(length).map_err(|_| bad.clone())?;
        if length == 0 || length > data.len() {
            return Err(BatchError::Invalid("Found invalid record length"));
        }
        let (record, rest) = data.split_at(length);
        check_record(record).ok_or_else(|| bad.clone())?;
        data = rest;
    }
    if data.is_empty() {
        Ok(())
    } else {
        Err(BatchError::Invalid(
            "Found invalid number of record headers or bytes after the last record",
        ))
    }
}

/// One record's fields; None if any length runs past the record or it has bytes left over.
fn check_record(mut record: &[u8]) -> Option<()> {
    record = record.get(1..)?; // attributes
    varlong(&mut record)?; // timestamp delta
    varint(&mut record)?; // offset delta
    skip_bytes(&mut record, true)?; // key
    skip_bytes(&mut record, true)?; // value
    let headers = varint(&mut record)?;
    if headers < 0 {
        return None;
    }
    for _ in 0..headers {
        skip_bytes(&mut record, false)?; // header key
        skip_bytes(&mut record, true)?; // header value
    }
    record.is_empty().then_some(())
}

/// Skips a varint-length-prefixed field (-1: null, if `nullable`).
fn skip_bytes(data: &mut &[u8], nullable: bool) -> Option<()> {
    let length = varint(data)?;
    if length == -1 && nullable {
        return Some(());
    }
    let length = usize::try_from(length).ok()?;
    *data = data.get(length..)?;
    Some(())
}

/// A zigzag varint of at most 5 bytes (Kafka's `ByteUtils.readVarint`).
fn varint(data: &mut &[u8]) -> Option<i32> {
    let raw = unsigned(data, 5)?;
    let raw = u32::try_from(raw).ok()?;
    Some(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

/// A zigzag varlong of at most 10 bytes.
fn varlong(data: &mut &[u8]) -> Option<i64> {
    let raw = unsigned(data, 10)?;
    Some(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

fn unsigned(data: &mut &[u8], max_bytes: usize) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..max_bytes {
        let byte = *data.get(i)?;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *data = &data[i + 1..];
            return Some(value);
        }
    }
    None
}

fn i32_at(data: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(data[at..at + 4].try_into().expect("4 bytes"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    const CONTEXT: ProduceContext = ProduceContext {
        version: 8,
        transactional_id: false,
    };

    /// A valid batch of `n` records, encoded by kafka-protocol.
    pub(crate) fn batch(n: usize) -> Vec<u8> {
        let records: Vec<Record> = (0..n)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: i as i32,
                timestamp: 1_700_000_000_000,
                key: Some(bytes::Bytes::from(format!("key-{i}"))),
                value: Some(bytes::Bytes::from(format!("value-{i}"))),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .unwrap();
        buf.to_vec()
    }

    fn fix_crc(batch: &mut [u8]) {
        let crc = crc32c::crc32c(&batch[ATTRIBUTES_AT..]);
        batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    }

    fn set_i32(batch: &mut [u8], at: usize, value: i32) {
        batch[at..at + 4].copy_from_slice(&value.to_be_bytes());
    }

    #[test]
    fn a_good_batch_passes() {
        assert_eq!(validate(&batch(1), CONTEXT), Ok(()));
        assert_eq!(validate(&batch(3), CONTEXT), Ok(()));
        // A truncated second batch is ignored, as Kafka's iterator does.
        let mut two = batch(1);
        two.extend_from_slice(&batch(1)[..20]);
        assert_eq!(validate(&two, CONTEXT), Ok(()));
    }

    #[test]
    fn corrupt_bytes_are_corrupt_message() {
        let mut bad_crc = batch(1);
        bad_crc[CRC_AT + 3] ^= 1;
        assert_eq!(validate(&bad_crc, CONTEXT).unwrap_err().code(), 2);
        let mut zero_crc = batch(1);
        set_i32(&mut zero_crc, CRC_AT, 0);
        assert_eq!(validate(&zero_crc, CONTEXT).unwrap_err().code(), 2);
        for length in [5, -1] {
            let mut short = batch(1);
            set_i32(&mut short, 8, length);
            assert_eq!(validate(&short, CONTEXT).unwrap_err().code(), 2, "{length}");
        }
        // batchLength shorter than the data: the CRC no longer covers it.
        let mut shorter = batch(3);
        let length = i32_at(&shorter, 8);
        set_i32(&mut shorter, 8, length - 10);
        assert_eq!(validate(&shorter, CONTEXT).unwrap_err().code(), 2);
        let mut magic = batch(1);
        magic[MAGIC_AT] = 3;
        assert_eq!(validate(&magic, CONTEXT).unwrap_err().code(), 2);
    }

    #[test]
    fn inconsistent_batches_are_invalid_record() {
        let invalid = |b: &[u8]| validate(b, CONTEXT).unwrap_err().code();
        let mut longer = batch(1);
        let length = i32_at(&longer, 8);
        set_i32(&mut longer, 8, length + 10);
        assert_eq!(invalid(&longer), 87);
        for (count, n) in [(5, 1), (1, 3), (0, 1)] {
            let mut wrong = batch(n);
            set_i32(&mut wrong, RECORD_COUNT_AT, count);
            set_i32(&mut wrong, LAST_OFFSET_DELTA_AT, count - 1);
            fix_crc(&mut wrong);
            assert_eq!(invalid(&wrong), 87, "count {count} for {n}");
        }
        for delta in [1, -100] {
            let mut wrong = batch(1);
            set_i32(&mut wrong, LAST_OFFSET_DELTA_AT, delta);
            fix_crc(&mut wrong);
            assert_eq!(invalid(&wrong), 87, "lastOffsetDelta {delta}");
        }
        let mut offset = batch(1);
        offset[7] = 5;
        assert_eq!(invalid(&offset), 87);
        let mut control = batch(1);
        control[ATTRIBUTES_AT + 1] |= 0x20;
        fix_crc(&mut control);
        assert_eq!(invalid(&control), 87);
        let mut two = batch(1);
        two.extend_from_slice(&batch(1));
        assert_eq!(invalid(&two), 87);
        let mut magic1 = batch(1);
        magic1[MAGIC_AT] = 1;
        assert_eq!(invalid(&magic1), 87);
        assert_eq!(invalid(&[]), 87);
        assert_eq!(invalid(&[1, 2, 3, 4, 5, 6, 7]), 87);
        // A record-length varint far too big, and a key longer than its record.
        let mut big = batch(1);
        big[HEADER_LENGTH] = 0x7e;
        fix_crc(&mut big);
        assert_eq!(invalid(&big), 87);
        let mut key = batch(1);
        // record: length, attributes, timestampDelta, offsetDelta, then the key length.
        key[HEADER_LENGTH + 4] = 0x7e;
        fix_crc(&mut key);
        assert_eq!(invalid(&key), 87);
    }

    #[test]
    fn codecs_and_transactions_get_kafkas_codes() {
        let mut codec7 = batch(1);
        codec7[ATTRIBUTES_AT + 1] |= 7;
        fix_crc(&mut codec7);
        assert_eq!(validate(&codec7, CONTEXT).unwrap_err().code(), -1);
        let mut zstd = batch(1);
        zstd[ATTRIBUTES_AT + 1] |= 4;
        fix_crc(&mut zstd);
        let v3 = ProduceContext {
            version: 3,
            ..CONTEXT
        };
        assert_eq!(validate(&zstd, v3).unwrap_err().code(), 76);
        let mut transactional = batch(1);
        transactional[ATTRIBUTES_AT + 1] |= 0x10;
        fix_crc(&mut transactional);
        assert_eq!(validate(&transactional, CONTEXT).unwrap_err().code(), 53);
    }

    #[test]
    fn varints_read_as_kafka_writes_them() {
        let mut data: &[u8] = &[0x01];
        assert_eq!(varint(&mut data), Some(-1));
        let mut data: &[u8] = &[0xac, 0x02];
        assert_eq!(varint(&mut data), Some(150));
        let mut data: &[u8] = &[0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(varint(&mut data), None);
    }
}
