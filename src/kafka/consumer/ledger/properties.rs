//! Property tests: random interleavings of assignments, take-overs, records, checkpoints
//! whose flush or store fails, automatic commits, revocations (handed over or lost),
//! failures and stops, applied to a ledger the way the runtime applies them
//! (`Shared::checkpoint`, `Shared::commit`, `GroupContext::pre_rebalance`, the poll loop,
//! `GroupConsumer::close`), against a model of librdkafka's offset store and of the group's
//! commits. After every step:
//! - nothing is stored or committed for a partition this member does not read;
//! - no stored or committed offset is past a record whose work was not flushed;
//! - within an assignment, stored and committed offsets never go backwards (nor below where
//!   the assignment started);
//! - the ledger's idea of what is stored is librdkafka's, and what it reports as committed
//!   was committed;
//! - after a successful checkpoint everything handled is stored, and after a clean stop it
//!   is committed;
//! - once a flush (or store) has failed, nothing handled before it is ever stored or
//!   committed, whatever later flushes do;
//! - a revocation names every partition it leaves with handled records the group's commit
//!   does not cover, with that commit (where the next owner reads again from).

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::{Ledger, Uncommitted};

const PARTITIONS: i32 = 4;

/// How one checkpoint and the commit after it go.
#[derive(Clone, Copy, Debug)]
struct Outcome {
    flush: bool,
    store: bool,
    commit: bool,
}

#[derive(Clone, Debug)]
enum Step {
    /// The group gives this member a partition.
    Assign(i32),
    /// The take-over of an awaited partition finishes: it is read from the group's commit.
    Start(i32),
    /// A record arrives (`gap` offsets after the last one: compaction, transaction markers).
    Record { partition: i32, gap: i64 },
    /// The partition was read to its end.
    Eof(i32),
    /// The checkpoint at the end of a batch.
    Checkpoint(Outcome),
    /// librdkafka's automatic commit of what is stored.
    AutoCommit { ok: bool },
    /// The group takes partitions away: handed over (checkpoint, commit), or lost.
    Revoke {
        partitions: Vec<i32>,
        lost: bool,
        outcome: Outcome,
        /// How the loop's checkpoint goes when the callback failed.
        retry: Outcome,
    },
    /// Another member moves the group's commit of a partition this member does not own.
    OthersCommit { partition: i32, by: i64 },
    /// The role fails on a record: the run ends without a checkpoint.
    RoleFails(Outcome),
    /// Ctrl-C: the last checkpoint and commit, then leaving the group.
    Stop { last: Outcome, leave: Outcome },
}

/// This member's view of one partition it reads, in the model.
#[derive(Debug)]
struct Assignment {
    /// Where reading started: the group's commit when it was taken over.
    start: i64,
    /// The offset of the next record.
    next: i64,
    /// The offset after the last record handed to the role.
    handled: Option<i64>,
    /// `handled` as it was at the last flush that succeeded.
    flushed: Option<i64>,
    /// The last offset stored, and committed, in this assignment (`start` before any).
    last_stored: i64,
    last_committed: i64,
}

#[derive(Default)]
struct Member {
    ledger: Ledger,
    /// librdkafka's offset store (what the next commit carries).
    store: BTreeMap<i32, i64>,
    /// The group's committed offsets: this member's commits and the other members'.
    group: BTreeMap<i32, i64>,
    reading: BTreeMap<i32, Assignment>,
    awaiting: BTreeSet<i32>,
    /// A flush or store failed, or the role did: from now on nothing the role does counts
    /// as flushed.
    failed: bool,
    /// What this member left uncommitted when it gave partitions up, as the group's commits
    /// show it.
    left: BTreeMap<i32, Uncommitted>,
    /// The run is over.
    over: bool,
}

impl Member {
    fn step(&mut self, step: &Step) {
        match *step {
            Step::Assign(p) => {
                if !self.reading.contains_key(&p) && !self.awaiting.contains(&p) {
                    self.ledger.assigned(&[p]);
                    self.awaiting.insert(p);
                }
            }
            Step::Start(p) => self.start(p),
            Step::Record { partition, gap } => {
                if !self.ledger.accepts(partition) {
                    assert!(
                        !self.reading.contains_key(&partition),
                        "{partition} refused"
                    );
                    return;
                }
                let a = self.reading.get_mut(&partition).expect("accepted: read");
                let offset = a.next + gap;
                a.next = offset + 1;
                a.handled = Some(offset + 1);
                self.ledger.handled(partition, offset);
            }
            Step::Eof(p) => self.ledger.reached_end(p),
            Step::Checkpoint(outcome) => {
                if self.checkpoint(outcome).is_err() {
                    // The loop returns the error; the run closes without a checkpoint.
                    self.close_after_failure(outcome);
                }
            }
            Step::AutoCommit { ok } => {
                if ok {
                    let committed = self.commit_store();
                    let reported = self.ledger.auto_committed(committed.clone());
                    assert!(reported.iter().all(|po| committed.contains(po)));
                }
            }
            Step::Revoke {
                ref partitions,
                lost,
                outcome,
                retry,
            } => {
                if self.revoke(partitions, lost, outcome) {
                    // A failure in the callback: the loop's checkpoint after the poll still
                    // runs (it must neither flush nor store), then the run stops at the top
                    // of the loop.
                    let _ = self.checkpoint(retry);
                    self.close_after_failure(retry);
                }
            }
            Step::OthersCommit { partition, by } => {
                if !self.reading.contains_key(&partition) && !self.awaiting.contains(&partition) {
                    *self.group.entry(partition).or_insert(0) += by;
                }
            }
            Step::RoleFails(outcome) => self.close_after_failure(outcome),
            Step::Stop { last, leave } => self.stop(last, leave),
        }
        self.check();
    }

    fn start(&mut self, p: i32) {
        if !self.awaiting.remove(&p) {
            return;
        }
        let start = self.group.get(&p).copied().unwrap_or(0);
        self.ledger.started(p, self.group.get(&p).copied());
        self.reading.insert(
            p,
            Assignment {
                start,
                next: start,
                handled: None,
                flushed: None,
                last_stored: start,
                last_committed: start,
            },
        );
    }

    /// `Shared::checkpoint`.
    fn checkpoint(&mut self, outcome: Outcome) -> Result<(), ()> {
        let Some(to_store) = self.ledger.to_store() else {
            return Ok(());
        };
        assert!(!self.failed, "a checkpoint after a failure flushes again");
        if !outcome.flush {
            self.failed = true;
            self.ledger.abandon();
            return Err(());
        }
        if !self.failed {
            for a in self.reading.values_mut() {
                a.flushed = a.handled;
            }
        }
        if !to_store.is_empty() {
            if !outcome.store {
                self.failed = true;
                self.ledger.abandon();
                return Err(());
            }
            for &(p, offset) in &to_store {
                let a = self
                    .reading
                    .get(&p)
                    .expect("stored only for a partition read");
                assert!(Some(offset) <= a.flushed, "p{p}: {offset} stored unflushed");
                assert!(offset > a.start, "p{p}: stored {offset}, before the start");
                assert!(
                    offset >= a.last_stored,
                    "p{p}: stored {offset} went backwards"
                );
                self.store.insert(p, offset);
            }
        }
        self.ledger.checkpointed();
        for (p, a) in &self.reading {
            if let Some(handled) = a.handled {
                assert_eq!(self.ledger.stored.get(p), Some(&handled), "p{p} all stored");
            }
        }
        for (p, a) in &mut self.reading {
            if let Some(&stored) = self.store.get(p) {
                a.last_stored = stored;
            }
        }
        Ok(())
    }

    /// librdkafka commits what is stored; returns what it committed.
    fn commit_store(&mut self) -> Vec<(i32, i64)> {
        let committed: Vec<(i32, i64)> = self.store.iter().map(|(&p, &o)| (p, o)).collect();
        for &(p, offset) in &committed {
            let a = self
                .reading
                .get_mut(&p)
                .expect("committed only for a partition read");
            assert!(
                Some(offset) <= a.flushed,
                "p{p}: {offset} committed unflushed"
            );
            assert!(
                offset >= a.last_committed,
                "p{p}: commit {offset} went backwards"
            );
            a.last_committed = offset;
            self.group.insert(p, offset);
        }
        committed
    }

    /// `Shared::commit`.
    fn commit(&mut self, ok: bool) -> Result<(), ()> {
        if !ok {
            return Err(());
        }
        self.commit_store();
        let reported = self.ledger.commit_succeeded();
        for (p, offset) in reported {
            assert_eq!(self.store.get(&p), Some(&offset), "p{p}: reported {offset}");
        }
        for (p, offset) in &self.store {
            assert_eq!(self.ledger.committed.get(p), Some(offset), "p{p} reported");
        }
        Ok(())
    }

    /// `GroupContext::pre_rebalance`; returns whether it failed (the loop then stops).
    fn revoke(&mut self, partitions: &[i32], lost: bool, outcome: Outcome) -> bool {
        let revoked: Vec<i32> = partitions
            .iter()
            .copied()
            .filter(|p| self.reading.contains_key(p) || self.awaiting.contains(p))
            .collect::<BTreeSet<i32>>()
            .into_iter()
            .collect();
        if revoked.is_empty() {
            return false;
        }
        let mut failed = false;
        if lost {
            self.ledger.lost(&revoked);
        } else {
            // The checkpoint, then the commit of what is stored, whether the checkpoint
            // failed or not (what earlier flushes made durable may be committed).
            failed = self.checkpoint(outcome).is_err();
            let _ = self.commit(outcome.commit);
        }
        let expected: Vec<Uncommitted> = revoked
            .iter()
            .filter_map(|&p| {
                let until = self.reading.get(&p)?.handled?;
                let from = self.group.get(&p).copied();
                from.is_none_or(|from| from < until).then_some(Uncommitted {
                    partition: p,
                    from,
                    until,
                })
            })
            .collect();
        let told = self.ledger.revoked(&revoked);
        assert_eq!(told, expected, "what the revocation leaves uncommitted");
        for p in &revoked {
            if self.reading.get(p).is_some_and(|a| a.handled.is_some()) {
                self.left.remove(p);
            }
            // librdkafka forgets what was stored of the partitions it unassigns.
            self.store.remove(p);
            self.reading.remove(p);
            self.awaiting.remove(p);
        }
        for u in told {
            self.left.insert(u.partition, u);
        }
        failed
    }

    /// `GroupConsumer::close(false)`: after a failure nothing more is stored; leaving the
    /// group revokes the rest.
    fn close_after_failure(&mut self, leave: Outcome) {
        self.failed = true;
        self.ledger.abandon();
        self.leave(leave);
    }

    /// `GroupConsumer::close(true)`: the last checkpoint and commit, then leaving the group.
    fn stop(&mut self, last: Outcome, leave: Outcome) {
        let clean = self
            .checkpoint(last)
            .and_then(|()| self.commit(last.commit))
            .is_ok();
        if clean {
            for (p, a) in &self.reading {
                if let Some(handled) = a.handled {
                    assert_eq!(self.group.get(p), Some(&handled), "p{p} all committed");
                }
            }
        }
        // When the last checkpoint failed, the final revocation's checkpoint must neither
        // flush nor store; it commits what was stored before the failure.
        self.leave(leave);
    }

    /// The final revocation when the member leaves the group.
    fn leave(&mut self, outcome: Outcome) {
        let all: Vec<i32> = self.reading.keys().chain(&self.awaiting).copied().collect();
        self.revoke(&all, false, outcome);
        self.over = true;
        let left: Vec<Uncommitted> = self.left.values().copied().collect();
        assert_eq!(
            self.ledger.left_uncommitted(),
            left,
            "what the member says it leaves uncommitted"
        );
    }

    fn check(&self) {
        assert_eq!(
            self.ledger.stored, self.store,
            "the ledger mirrors the store"
        );
        let reading: Vec<i32> = self.reading.keys().copied().collect();
        assert_eq!(self.ledger.reading(), reading);
        assert_eq!(self.ledger.awaiting(), &self.awaiting);
    }
}

fn outcome() -> impl Strategy<Value = Outcome> {
    (
        proptest::bool::weighted(0.85),
        proptest::bool::weighted(0.9),
        proptest::bool::weighted(0.8),
    )
        .prop_map(|(flush, store, commit)| Outcome {
            flush,
            store,
            commit,
        })
}

fn step() -> impl Strategy<Value = Step> {
    let partition = 0..PARTITIONS;
    prop_oneof![
        3 => partition.clone().prop_map(Step::Assign),
        3 => partition.clone().prop_map(Step::Start),
        12 => (partition.clone(), prop_oneof![4 => Just(0i64), 1 => 1..3i64])
            .prop_map(|(partition, gap)| Step::Record { partition, gap }),
        1 => partition.clone().prop_map(Step::Eof),
        4 => outcome().prop_map(Step::Checkpoint),
        2 => proptest::bool::weighted(0.8).prop_map(|ok| Step::AutoCommit { ok }),
        2 => (
            proptest::collection::vec(partition.clone(), 1..3),
            proptest::bool::weighted(0.2),
            outcome(),
            outcome(),
        )
            .prop_map(|(partitions, lost, outcome, retry)| Step::Revoke {
                partitions,
                lost,
                outcome,
                retry,
            }),
        1 => (partition, 1..20i64).prop_map(|(partition, by)| Step::OthersCommit { partition, by }),
    ]
}

/// Rarely, a run ends early.
fn ending() -> impl Strategy<Value = Option<Step>> {
    prop_oneof![
        6 => Just(None),
        1 => outcome().prop_map(|o| Some(Step::RoleFails(o))),
        2 => (outcome(), outcome()).prop_map(|(last, leave)| Some(Step::Stop { last, leave })),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn offsets_are_stored_and_committed_only_for_flushed_work_of_owned_partitions(
        steps in proptest::collection::vec(step(), 0..80),
        early in ending(),
        at in 0usize..80,
    ) {
        let mut member = Member::default();
        for (i, step) in steps.iter().enumerate() {
            if i == at && let Some(end) = &early {
                member.step(end);
            }
            if member.over {
                break;
            }
            member.step(step);
        }
        if !member.over {
            // A clean stop: everything handled is committed.
            let ok = Outcome { flush: true, store: true, commit: true };
            member.step(&Step::Stop { last: ok, leave: ok });
        }
        prop_assert!(member.over);
        prop_assert!(member.ledger.reads_nothing());
        prop_assert!(member.store.is_empty());
    }
}
