//! Recovery when a writer opens the log: refusing a file that is not an audit log, cutting a
//! torn last line, and finding each partition's last stored record by reading backwards.

use std::collections::HashSet;

use super::{AuditError, AuditWriter, Repair};
use crate::audit::line::{Position, RecordId};

/// How much of the file is read at a time when scanning it backwards.
pub(super) const SCAN_CHUNK: usize = 256 * 1024;

impl AuditWriter {
    /// Refuses a file that is not an audit log, before anything is cut from or added to it:
    /// `--file` pointing at the wrong file must not damage it.
    pub(super) fn check_is_audit_log(&mut self) -> Result<(), AuditError> {
        let len = self.file.metadata().map_err(|e| self.read_error(e))?.len();
        let head = self.read_at(0, len.min(64 * 1024) as usize)?;
        let looks_right = match head.iter().position(|&b| b == b'\n') {
            // A whole first line must be an audit line.
            Some(end) => serde_json::from_slice::<Position>(&head[..end]).is_ok(),
            // No newline in the first 64 KiB: either an empty file, a first line torn by a
            // crash, or a very long line; all start the way every audit line starts.
            None => head.is_empty() || head.starts_with(br#"{"topic":"#),
        };
        if looks_right {
            Ok(())
        } else {
            Err(AuditError::NotAnAuditLog {
                path: self.path.clone(),
            })
        }
    }

    /// A crash while appending can leave a last line without its newline. Every complete
    /// line ends with one, so anything after the last newline is cut off.
    pub(super) fn repair_torn_tail(&mut self) -> Result<Option<Repair>, AuditError> {
        let len = self.file.metadata().map_err(|e| self.read_error(e))?.len();
        if len == 0 || self.read_at(len - 1, 1)?[0] == b'\n' {
            return Ok(None);
        }
        let mut end = len;
        let cut = loop {
            let start = end.saturating_sub(SCAN_CHUNK as u64);
            let chunk = self.read_at(start, (end - start) as usize)?;
            if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
                break start + i as u64 + 1;
            }
            if start == 0 {
                break 0;
            }
            end = start;
        };
        self.file.set_len(cut).map_err(|e| self.write_error(e))?;
        self.file.sync_all().map_err(|e| self.write_error(e))?;
        Ok(Some(Repair {
            at_byte: cut,
            removed_bytes: len - cut,
        }))
    }

    /// The last record of each partition of `topic` stored in the file (`None`: none).
    /// Partitions not known yet are looked up by reading the file backwards from its end,
    /// only as far as needed.
    pub(crate) fn last_stored(
        &mut self,
        topic: &str,
        partitions: &[i32],
    ) -> Result<Vec<(i32, Option<RecordId>)>, AuditError> {
        let mut wanted: HashSet<i32> = partitions
            .iter()
            .copied()
            .filter(|p| self.known(topic, *p).is_none())
            .collect();
        if !wanted.is_empty() {
            self.flush_pending()?;
            let found = self.scan_backwards(topic, &mut wanted)?;
            let known = self.last.entry(topic.to_owned()).or_default();
            for (partition, offset) in found {
                known.insert(partition, Some(offset));
            }
            for partition in wanted {
                known.insert(partition, None);
            }
        }
        Ok(partitions
            .iter()
            .map(|&p| (p, self.known(topic, p).cloned().flatten()))
            .collect())
    }

    /// The last stored offset of one partition, from the cache [`AuditWriter::last_stored`]
    /// fills (and appends keep current).
    pub(crate) fn known_last(&self, topic: &str, partition: i32) -> Option<i64> {
        self.known(topic, partition)
            .and_then(|id| id.as_ref().map(|id| id.offset))
    }

    /// What the cache holds for a partition: `None` if it was never looked up.
    fn known(&self, topic: &str, partition: i32) -> Option<&Option<RecordId>> {
        self.last.get(topic)?.get(&partition)
    }

    /// Reads lines from the end towards the start until every partition in `wanted` has been
    /// seen; removes the found ones from `wanted`. Lines are in stored order, so the first
    /// line of a partition met from the end holds its last offset.
    fn scan_backwards(
        &mut self,
        topic: &str,
        wanted: &mut HashSet<i32>,
    ) -> Result<Vec<(i32, RecordId)>, AuditError> {
        let mut found = Vec::new();
        let mut end = self.file.metadata().map_err(|e| self.read_error(e))?.len();
        // The bytes of a line whose start lies in a chunk not read yet.
        let mut carry: Vec<u8> = Vec::new();
        let mut visit = |line: &[u8], wanted: &mut HashSet<i32>| {
            if line.is_empty() {
                return;
            }
            // A line that does not decode is corruption for `audit verify` to report;
            // recovery only needs positions.
            if let Ok(position) = serde_json::from_slice::<Position>(line)
                && position.topic == topic
                && wanted.remove(&position.partition)
            {
                found.push((position.partition, position.record_id()));
            }
        };
        while end > 0 && !wanted.is_empty() {
            let start = end.saturating_sub(SCAN_CHUNK as u64);
            let mut chunk = self.read_at(start, (end - start) as usize)?;
            chunk.extend_from_slice(&carry);
            // Everything after the first newline of the chunk is made of whole lines.
            let first_newline = chunk.iter().position(|&b| b == b'\n');
            match first_newline {
                Some(i) => {
                    for line in chunk[i + 1..].rsplit(|&b| b == b'\n') {
                        visit(line, wanted);
                        if wanted.is_empty() {
                            break;
                        }
                    }
                    chunk.truncate(i);
                    carry = chunk;
                }
                None => carry = chunk,
            }
            end = start;
        }
        if end == 0 && !wanted.is_empty() {
            visit(&carry, wanted);
        }
        Ok(found)
    }
}
