//! The offset ledger: which offsets a member may store and commit, as plain
//! (partition, offset) values. Pure bookkeeping, no Kafka: the runtime tells it what
//! happened (partitions assigned, started, revoked or lost; records handled; a flush and a
//! store that succeeded; commits that went through; a failure) and applies its answers to the
//! consumer (`shared`, `context`).
//!
//! The promise it keeps, the project's central one:
//! - an offset is stored only once the role's flush after its record succeeded: records
//!   handled since the last checkpoint are *pending* until [`Ledger::checkpointed`];
//! - only for a partition this member reads: a record of a partition it does not read is not
//!   its to handle ([`Ledger::accepts`]), and a checkpoint leaves out partitions revoked since
//!   the record was handled;
//! - a revoked partition's stored offsets are forgotten: the next assignment of it starts
//!   afresh, from where the group's commit says;
//! - once a flush has failed (or the role failed on a record), nothing handled before it is
//!   ever stored or committed by this member, whether a later flush succeeds or not: after
//!   a failed fsync, a successful one does not prove the earlier lines reached the disk
//!   ([`Ledger::abandon`]). What was stored before the failure was made durable by a flush
//!   that succeeded, so it may still be committed.
//!
//! librdkafka commits what was stored (every second, and when the runtime commits
//! synchronously); the ledger mirrors that store, so it can say what a commit carried and
//! what a revocation leaves uncommitted.

use std::collections::{BTreeMap, BTreeSet};

/// A partition and an offset in it: the next record to read there.
pub(crate) type PartitionOffset = (i32, i64);

/// A partition this member handled records of that it did not commit: the next owner reads
/// them again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Uncommitted {
    pub(crate) partition: i32,
    /// The group's committed offset there, where the next owner reads again from: as it was
    /// when this member took the partition over, or as this member last committed it. None:
    /// the group never committed there.
    pub(crate) from: Option<i64>,
    /// The offset after the last record this member handled there.
    pub(crate) until: i64,
}

/// The member's assignment and its offsets.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    /// Partitions the group gave this member that it is not reading yet: their take-over
    /// (where they start, the role readied for them) is in progress.
    awaiting: BTreeSet<i32>,
    /// The partitions being read, and per partition whether its end has been reached.
    reading: BTreeMap<i32, bool>,
    /// Per partition, the offset after the last record handled and not yet stored.
    pending: BTreeMap<i32, i64>,
    /// Per partition, the last offset stored (what the next commit will carry).
    stored: BTreeMap<i32, i64>,
    /// Per partition read, the group's committed offset: as it was when this member took
    /// the partition over, then as this member committed it. Absent: the group never
    /// committed there.
    committed: BTreeMap<i32, i64>,
    /// The last offsets reported as committed, so repeated identical commits stay quiet;
    /// kept past revocations, as a late answer for a revoked partition repeats what the
    /// revocation's commit reported.
    reported: BTreeMap<i32, i64>,
    /// Per partition read, the offset after the last record handled in this assignment.
    handled: BTreeMap<i32, i64>,
    /// Partitions this member gave up with handled records it had not committed, and where
    /// the next owner reads again; a partition given back and committed later is removed.
    left: BTreeMap<i32, Uncommitted>,
    /// A flush (or the role) failed: nothing handled so far and not stored is ever stored,
    /// and no flush is tried again.
    failed: bool,
}

impl Ledger {
    /// The group gave this member `partitions`; they are read once [`Ledger::started`].
    pub(crate) fn assigned(&mut self, partitions: &[i32]) {
        self.awaiting.extend(partitions.iter().copied());
    }

    /// Reading `partition` starts (its take-over finished); `committed` is the group's
    /// committed offset there (None: the group never committed there).
    pub(crate) fn started(&mut self, partition: i32, committed: Option<i64>) {
        self.awaiting.remove(&partition);
        self.reading.insert(partition, false);
        match committed {
            Some(offset) => self.committed.insert(partition, offset),
            None => self.committed.remove(&partition),
        };
    }

    /// `partitions` were lost (another member may own them already): what was handled of
    /// them and not stored is theirs to redo, so it is never stored. Followed by
    /// [`Ledger::revoked`].
    pub(crate) fn lost(&mut self, partitions: &[i32]) {
        self.pending.retain(|p, _| !partitions.contains(p));
    }

    /// `partitions` are no longer this member's: it stops reading them and forgets what it
    /// handled, stored and committed of them, so nothing of this assignment is ever stored
    /// for a later one. Returns those it leaves with handled records it did not commit.
    pub(crate) fn revoked(&mut self, partitions: &[i32]) -> Vec<Uncommitted> {
        let uncommitted = self.uncommitted(partitions);
        for p in partitions {
            self.reading.remove(p);
            self.awaiting.remove(p);
            self.pending.remove(p);
            self.stored.remove(p);
            self.committed.remove(p);
            if self.handled.remove(p).is_some() {
                self.left.remove(p);
            }
        }
        for u in &uncommitted {
            self.left.insert(u.partition, *u);
        }
        uncommitted
    }

    /// The partitions being read, in order.
    pub(crate) fn reading(&self) -> Vec<i32> {
        self.reading.keys().copied().collect()
    }

    /// The partitions whose take-over is in progress.
    pub(crate) fn awaiting(&self) -> &BTreeSet<i32> {
        &self.awaiting
    }

    /// Whether this member reads nothing.
    pub(crate) fn reads_nothing(&self) -> bool {
        self.reading.is_empty()
    }

    /// The partitions being read that have not been read to their end.
    pub(crate) fn not_at_end(&self) -> Vec<i32> {
        self.reading
            .iter()
            .filter(|&(_, &at_end)| !at_end)
            .map(|(&p, _)| p)
            .collect()
    }

    /// Whether `partition` is being read and has been read to its end.
    pub(crate) fn at_end(&self, partition: i32) -> bool {
        self.reading.get(&partition) == Some(&true)
    }

    /// Whether every partition being read has been read to its end.
    pub(crate) fn all_at_end(&self) -> bool {
        self.reading.values().all(|&at_end| at_end)
    }

    /// Whether a record of `partition` is this member's to handle. One fetched just before
    /// its partition was revoked belongs to the next owner; one of a partition whose
    /// take-over is in progress is read again from where the take-over starts it.
    pub(crate) fn accepts(&self, partition: i32) -> bool {
        self.reading.contains_key(&partition)
    }

    /// The role handled the record at `offset` of `partition` (one the ledger accepts): its
    /// offset is stored at the next checkpoint whose flush succeeds.
    pub(crate) fn handled(&mut self, partition: i32, offset: i64) {
        self.pending.insert(partition, offset + 1);
        self.handled.insert(partition, offset + 1);
        self.reading.insert(partition, false);
    }

    /// `partition` has been read to its end (until its next record).
    pub(crate) fn reached_end(&mut self, partition: i32) {
        if let Some(at_end) = self.reading.get_mut(&partition) {
            *at_end = true;
        }
    }

    /// What a checkpoint stores once the role's flush succeeded: `None` when nothing was
    /// handled since the last checkpoint, or after a failure (no flush is needed, or none
    /// may count), else the offsets of the partitions still read (possibly none).
    pub(crate) fn to_store(&self) -> Option<Vec<PartitionOffset>> {
        if self.failed || self.pending.is_empty() {
            return None;
        }
        Some(
            self.pending
                .iter()
                .filter(|(p, _)| self.reading.contains_key(p))
                .map(|(&p, &next)| (p, next))
                .collect(),
        )
    }

    /// The flush succeeded and [`Ledger::to_store`]'s offsets were stored: the next commit
    /// carries them. What was pending of partitions no longer read is dropped.
    pub(crate) fn checkpointed(&mut self) {
        for (partition, next) in std::mem::take(&mut self.pending) {
            if self.reading.contains_key(&partition) {
                self.stored.insert(partition, next);
            }
        }
    }

    /// A failure (a flush, a store, or the role on a record): what the role handled since
    /// the last checkpoint may not be durable, so it is never stored, and no later flush
    /// changes that (a flush that succeeds after one that failed proves nothing about what
    /// the failed one covered). What was stored before stays committable.
    pub(crate) fn abandon(&mut self) {
        self.failed = true;
        self.pending.clear();
    }

    /// Whether a failure happened ([`Ledger::abandon`]).
    pub(crate) fn failed(&self) -> bool {
        self.failed
    }

    /// A commit of everything stored went through: the offsets it committed that were not
    /// reported as committed yet.
    pub(crate) fn commit_succeeded(&mut self) -> Vec<PartitionOffset> {
        self.committed
            .extend(self.stored.iter().map(|(&p, &o)| (p, o)));
        let stored: Vec<PartitionOffset> = self.stored.iter().map(|(&p, &o)| (p, o)).collect();
        self.not_reported_yet(stored)
    }

    /// librdkafka's automatic commit committed `offsets`: those not reported as committed
    /// yet.
    pub(crate) fn auto_committed(
        &mut self,
        offsets: impl IntoIterator<Item = PartitionOffset>,
    ) -> Vec<PartitionOffset> {
        let offsets: Vec<PartitionOffset> = offsets.into_iter().collect();
        // A late answer for a partition revoked since says nothing of a later assignment.
        self.committed.extend(
            offsets
                .iter()
                .filter(|(p, _)| self.reading.contains_key(p))
                .copied(),
        );
        self.not_reported_yet(offsets)
    }

    /// Of committed `offsets`, those not reported yet; they count as reported now.
    fn not_reported_yet(&mut self, offsets: Vec<PartitionOffset>) -> Vec<PartitionOffset> {
        let new: Vec<PartitionOffset> = offsets
            .into_iter()
            .filter(|(p, o)| self.reported.get(p) != Some(o))
            .collect();
        self.reported.extend(new.iter().copied());
        new
    }

    /// Of `partitions`, those with records this member handled and did not commit (not
    /// flushed, flushed but not stored, stored but not committed), each with where the next
    /// owner reads again from and the offset after the last record handled there.
    pub(crate) fn uncommitted(&self, partitions: &[i32]) -> Vec<Uncommitted> {
        partitions
            .iter()
            .filter_map(|p| {
                let until = *self.handled.get(p)?;
                let from = self.committed.get(p).copied();
                (from.is_none_or(|from| from < until)).then_some(Uncommitted {
                    partition: *p,
                    from,
                    until,
                })
            })
            .collect()
    }

    /// Everything this member leaves uncommitted: what revocations left, and the partitions
    /// it still reads with handled records it did not commit. In partition order.
    pub(crate) fn left_uncommitted(&self) -> Vec<Uncommitted> {
        let reading: Vec<i32> = self.reading.keys().copied().collect();
        let mut left = self.left.clone();
        for u in self.uncommitted(&reading) {
            left.insert(u.partition, u);
        }
        left.into_values().collect()
    }
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
