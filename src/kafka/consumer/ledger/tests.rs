//! One test per rule of the ledger.

use super::*;

/// A ledger that reads `partitions` (assigned and started).
fn reading(partitions: &[i32]) -> Ledger {
    let mut ledger = Ledger::default();
    ledger.assigned(partitions);
    for &p in partitions {
        ledger.started(p, None);
    }
    ledger
}

#[test]
fn a_handled_record_is_stored_only_at_the_checkpoint_after_it() {
    let mut ledger = reading(&[0]);
    ledger.handled(0, 41);
    // The offset stored is the next one to read.
    assert_eq!(ledger.to_store(), Some(vec![(0, 42)]));
    assert!(
        ledger.stored.is_empty(),
        "nothing is stored before the flush"
    );
    ledger.checkpointed();
    assert_eq!(ledger.stored, BTreeMap::from([(0, 42)]));
    assert_eq!(ledger.to_store(), None, "nothing left to store");
}

#[test]
fn nothing_handled_needs_no_flush() {
    let mut ledger = reading(&[0, 1]);
    assert_eq!(ledger.to_store(), None);
    ledger.handled(1, 0);
    ledger.checkpointed();
    assert_eq!(ledger.to_store(), None);
}

#[test]
fn a_checkpoint_stores_the_last_record_of_every_partition() {
    let mut ledger = reading(&[0, 1, 2]);
    for (p, o) in [(0, 5), (1, 7), (0, 6), (2, 1), (0, 9)] {
        ledger.handled(p, o);
    }
    assert_eq!(ledger.to_store(), Some(vec![(0, 10), (1, 8), (2, 2)]));
}

#[test]
fn only_partitions_being_read_have_their_records_handled() {
    let mut ledger = Ledger::default();
    assert!(!ledger.accepts(0), "never assigned");
    ledger.assigned(&[0, 1]);
    assert!(!ledger.accepts(0), "its take-over is in progress");
    ledger.started(0, None);
    assert!(ledger.accepts(0));
    assert!(!ledger.accepts(1));
    assert_eq!(ledger.awaiting(), &BTreeSet::from([1]));
    assert_eq!(ledger.reading(), vec![0]);
    ledger.revoked(&[0]);
    assert!(!ledger.accepts(0), "revoked");
}

#[test]
fn a_partition_revoked_after_its_records_were_handled_is_not_stored() {
    let mut ledger = reading(&[0, 1]);
    ledger.handled(0, 3);
    ledger.handled(1, 4);
    ledger.revoked(&[0]);
    assert_eq!(ledger.to_store(), Some(vec![(1, 5)]));
    ledger.checkpointed();
    assert_eq!(ledger.stored, BTreeMap::from([(1, 5)]));
    // Given back later, it starts afresh: nothing of the earlier assignment is stored.
    ledger.assigned(&[0]);
    ledger.started(0, None);
    assert_eq!(ledger.to_store(), None);
    assert_eq!(ledger.stored.get(&0), None);
}

#[test]
fn a_checkpoint_with_only_revoked_partitions_needs_no_flush() {
    let mut ledger = reading(&[0]);
    ledger.handled(0, 3);
    ledger.revoked(&[0]);
    assert_eq!(ledger.to_store(), None);
    assert!(ledger.stored.is_empty());
}

#[test]
fn a_revoked_partition_forgets_what_it_stored() {
    let mut ledger = reading(&[0, 1]);
    ledger.handled(0, 3);
    ledger.handled(1, 3);
    ledger.checkpointed();
    ledger.revoked(&[1]);
    assert_eq!(ledger.stored, BTreeMap::from([(0, 4)]));
    assert_eq!(ledger.commit_succeeded(), vec![(0, 4)]);
}

#[test]
fn lost_partitions_drop_what_they_did_not_store() {
    let mut ledger = reading(&[0, 1]);
    ledger.handled(0, 3);
    ledger.handled(1, 8);
    ledger.lost(&[1]);
    ledger.revoked(&[1]);
    assert_eq!(ledger.to_store(), Some(vec![(0, 4)]));
    // Given back before the next checkpoint, it does not store what it handled before.
    ledger.assigned(&[1]);
    ledger.started(1, None);
    assert_eq!(ledger.to_store(), Some(vec![(0, 4)]));
}

#[test]
fn after_a_failure_nothing_handled_since_the_last_checkpoint_is_stored() {
    let mut ledger = reading(&[0]);
    ledger.handled(0, 3);
    ledger.checkpointed();
    ledger.handled(0, 4);
    ledger.handled(0, 5);
    ledger.abandon();
    assert_eq!(ledger.to_store(), None);
    assert_eq!(
        ledger.stored,
        BTreeMap::from([(0, 4)]),
        "what was stored stays"
    );
}

#[test]
fn after_a_failed_flush_no_later_flush_stores_anything() {
    // The flush in a revocation fails; the loop's checkpoint after the poll, and the final
    // revocation, would flush again: a flush that then succeeds (a second fsync) does not
    // prove the lines the failed one covered are on disk.
    let mut ledger = reading(&[0, 1]);
    ledger.handled(0, 3);
    ledger.checkpointed();
    ledger.handled(1, 7);
    ledger.abandon();
    assert!(ledger.failed());
    assert_eq!(ledger.to_store(), None, "no flush is tried, nothing stored");
    ledger.handled(0, 4);
    assert_eq!(ledger.to_store(), None, "nor for anything handled later");
    assert_eq!(ledger.stored, BTreeMap::from([(0, 4)]));
}

#[test]
fn a_failed_revocation_names_every_partition_it_leaves_uncommitted() {
    let mut ledger = Ledger::default();
    ledger.assigned(&[0, 1, 2, 3]);
    for (p, committed) in [(0, Some(0)), (1, Some(20)), (2, None), (3, Some(5))] {
        ledger.started(p, committed);
    }
    // p0: stored and committed; p1: stored, never committed; p2: not flushed; p3: nothing.
    ledger.handled(0, 9);
    ledger.handled(1, 29);
    ledger.checkpointed();
    assert_eq!(ledger.commit_succeeded(), vec![(0, 10), (1, 30)]);
    ledger.handled(1, 39);
    ledger.checkpointed();
    ledger.handled(2, 4);
    ledger.abandon();
    let left = ledger.revoked(&[0, 1, 2, 3]);
    assert_eq!(
        left,
        vec![
            Uncommitted {
                partition: 1,
                from: Some(30),
                until: 40
            },
            Uncommitted {
                partition: 2,
                from: None,
                until: 5
            },
        ]
    );
    assert_eq!(ledger.left_uncommitted(), left);
}

#[test]
fn a_revoked_partition_keeps_nothing_pending_for_a_later_assignment() {
    // The revocation's checkpoint failed (its pending offset was not stored); given back
    // before the loop stops, nothing of the earlier assignment may be stored.
    let mut ledger = reading(&[0]);
    ledger.handled(0, 3);
    ledger.revoked(&[0]);
    ledger.assigned(&[0]);
    ledger.started(0, Some(0));
    assert_eq!(ledger.to_store(), None);
    ledger.checkpointed();
    assert!(ledger.stored.is_empty());
}

#[test]
fn what_a_partition_left_uncommitted_is_forgotten_once_committed_in_a_later_assignment() {
    let mut ledger = reading(&[0]);
    ledger.handled(0, 3);
    ledger.checkpointed();
    assert_eq!(ledger.revoked(&[0]).len(), 1, "the commit failed");
    ledger.assigned(&[0]);
    ledger.started(0, None);
    ledger.handled(0, 3);
    ledger.checkpointed();
    ledger.commit_succeeded();
    assert!(ledger.revoked(&[0]).is_empty());
    assert!(ledger.left_uncommitted().is_empty());
}

#[test]
fn a_commit_reports_only_offsets_not_reported_yet() {
    let mut ledger = reading(&[0, 1]);
    assert!(ledger.commit_succeeded().is_empty(), "nothing stored");
    ledger.handled(0, 3);
    ledger.handled(1, 3);
    ledger.checkpointed();
    assert_eq!(ledger.commit_succeeded(), vec![(0, 4), (1, 4)]);
    assert!(
        ledger.commit_succeeded().is_empty(),
        "the same offsets again"
    );
    ledger.handled(1, 4);
    ledger.checkpointed();
    assert_eq!(ledger.commit_succeeded(), vec![(1, 5)]);
}

#[test]
fn automatic_and_synchronous_commits_share_what_was_reported() {
    let mut ledger = reading(&[0, 1]);
    ledger.handled(0, 3);
    ledger.handled(1, 3);
    ledger.checkpointed();
    assert_eq!(ledger.auto_committed([(0, 4)]), vec![(0, 4)]);
    assert!(ledger.auto_committed([(0, 4)]).is_empty());
    assert_eq!(ledger.commit_succeeded(), vec![(1, 4)]);
    assert!(ledger.auto_committed([(0, 4), (1, 4)]).is_empty());
}

#[test]
fn a_revocation_names_what_it_leaves_uncommitted_and_where_the_next_owner_starts() {
    let mut ledger = Ledger::default();
    ledger.assigned(&[0, 1, 2]);
    ledger.started(0, None);
    ledger.started(1, None);
    // The group committed p2 up to 3 before this member took it over.
    ledger.started(2, Some(3));
    ledger.handled(0, 9);
    ledger.handled(1, 9);
    ledger.checkpointed();
    assert_eq!(ledger.commit_succeeded(), vec![(0, 10), (1, 10)]);
    ledger.handled(0, 19);
    ledger.handled(2, 4);
    ledger.checkpointed();
    // p0 was committed up to 10; p1 is fully committed; p2 is where the group left it.
    let from: Vec<(i32, Option<i64>)> = ledger
        .uncommitted(&[0, 1, 2])
        .into_iter()
        .map(|u| (u.partition, u.from))
        .collect();
    assert_eq!(from, vec![(0, Some(10)), (2, Some(3))]);
    assert!(ledger.uncommitted(&[1]).is_empty());
}

#[test]
fn where_the_next_owner_starts_comes_from_this_assignment_only() {
    let mut ledger = reading(&[0]);
    ledger.handled(0, 99);
    ledger.checkpointed();
    assert_eq!(ledger.commit_succeeded(), vec![(0, 100)]);
    ledger.revoked(&[0]);
    // Another member commits up to 250; given back, this member reads from there.
    ledger.assigned(&[0]);
    ledger.started(0, Some(250));
    ledger.handled(0, 260);
    ledger.checkpointed();
    let left = ledger.revoked(&[0]);
    assert_eq!(left.len(), 1);
    assert_eq!(
        left[0].from,
        Some(250),
        "not this member's commit of an earlier assignment"
    );
    // Never committed by anyone: no offset is claimed.
    ledger.assigned(&[1]);
    ledger.started(1, None);
    ledger.handled(1, 0);
    assert_eq!(ledger.revoked(&[1])[0].from, None);
}

#[test]
fn the_end_of_a_partition_holds_until_its_next_record() {
    let mut ledger = reading(&[0, 1]);
    assert!(!ledger.all_at_end());
    ledger.reached_end(0);
    ledger.reached_end(1);
    ledger.reached_end(7);
    assert!(ledger.all_at_end(), "a partition not read does not count");
    ledger.handled(1, 0);
    assert!(!ledger.all_at_end());
    ledger.revoked(&[0, 1]);
    assert!(ledger.reads_nothing());
    assert!(ledger.all_at_end(), "nothing read is all read");
}

#[test]
fn a_late_answer_for_a_revoked_partition_is_not_reported_twice() {
    // The revocation's commit found the automatic commit had carried the offsets already
    // (its answer not yet handled) and reported them; the answer arrives after the revocation.
    let mut ledger = reading(&[0]);
    ledger.handled(0, 3);
    ledger.checkpointed();
    assert_eq!(ledger.commit_succeeded(), vec![(0, 4)]);
    ledger.revoked(&[0]);
    assert!(ledger.auto_committed([(0, 4)]).is_empty());
}
