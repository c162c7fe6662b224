//! The runtime after a failed flush, driven without a broker: a real librdkafka consumer
//! (never connected), its rebalance callback called as librdkafka would, and a role whose
//! flushes fail or succeed on cue.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use rdkafka::TopicPartitionList;
use rdkafka::consumer::{ConsumerContext, Rebalance};

use super::*;
use crate::report::activity::{PartitionStart, RoleCounters};
use crate::roles::{ConsumedRecord, Replay, RoleError};

/// What the role saw, shared with the test.
#[derive(Default)]
struct Script {
    /// How the next flushes go (Ok when empty).
    flushes: VecDeque<Result<(), &'static str>>,
    /// How many flushes were asked for.
    flushed: usize,
}

/// A role whose flushes go as scripted.
struct Scripted(Arc<Mutex<Script>>);

impl Role for Scripted {
    fn assigned(
        &mut self,
        _: &[PartitionStart],
        _: &dyn Replay,
        _: &mut dyn Report,
    ) -> Result<(), RoleError> {
        Ok(())
    }

    fn revoked(&mut self, _: &[i32], _: &mut dyn Report) {}

    fn handle(&mut self, _: &ConsumedRecord<'_>, _: &mut dyn Report) -> Result<(), RoleError> {
        Ok(())
    }

    fn flush(&mut self) -> Result<(), RoleError> {
        let mut script = self.0.lock().unwrap();
        script.flushed += 1;
        script
            .flushes
            .pop_front()
            .unwrap_or(Ok(()))
            .map_err(Into::into)
    }

    fn malformed(&self) -> (u64, BTreeMap<&'static str, u64>) {
        (0, BTreeMap::new())
    }

    fn counters(&self) -> RoleCounters {
        RoleCounters::Custom { counters: vec![] }
    }
}

/// Keeps what the member reports.
struct Kept(Arc<Mutex<Vec<Activity>>>);

impl Report for Kept {
    fn report(&mut self, activity: Activity) {
        self.0.lock().unwrap().push(activity);
    }
}

struct Member {
    consumer: GroupConsumer<Scripted>,
    script: Arc<Mutex<Script>>,
    reported: Arc<Mutex<Vec<Activity>>>,
}

/// A member reading partitions 0 and 1 of `t` (the group committed p1 up to 40), never
/// connected: a closed port, so nothing it does reaches a cluster.
fn member(flushes: &[Result<(), &'static str>]) -> Member {
    let settings = KafkaSettings::new("127.0.0.1:9", "t", vec![]).unwrap();
    let options = ConsumerOptions {
        role: "test",
        group: "g".to_owned(),
        exit_at_end: false,
        skip_undecodable: false,
    };
    let script = Arc::new(Mutex::new(Script {
        flushes: flushes.iter().copied().collect(),
        flushed: 0,
    }));
    let reported = Arc::new(Mutex::new(Vec::new()));
    let consumer = GroupConsumer::new(
        &settings,
        options,
        Scripted(Arc::clone(&script)),
        Box::new(Kept(Arc::clone(&reported))),
    )
    .unwrap();
    {
        let mut shared = consumer.lock();
        shared.ledger.assigned(&[0, 1]);
        shared.ledger.started(0, None);
        shared.ledger.started(1, Some(40));
    }
    Member {
        consumer,
        script,
        reported,
    }
}

impl Member {
    fn handled(&self, partition: i32, offset: i64) {
        self.consumer.lock().ledger.handled(partition, offset);
    }

    /// librdkafka's revocation callback (a hand-over, not a loss).
    fn revoke(&self, partitions: &[i32]) {
        let mut list = TopicPartitionList::new();
        for &p in partitions {
            list.add_partition("t", p);
        }
        let consumer = self.consumer.consumer();
        consumer
            .context()
            .pre_rebalance(consumer, &Rebalance::Revoke(&list));
    }

    /// The poll loop's checkpoint after a batch.
    fn checkpoint(&self) -> Result<(), ConsumerError> {
        let consumer = self.consumer.consumer();
        self.consumer.lock().checkpoint(consumer, "t")
    }

    fn flushed(&self) -> usize {
        self.script.lock().unwrap().flushed
    }

    /// The partitions each revocation said it left uncommitted.
    fn revocations(&self) -> Vec<Vec<i32>> {
        self.reported
            .lock()
            .unwrap()
            .iter()
            .filter_map(|a| match a {
                Activity::Revoked { uncommitted, .. } => Some(uncommitted.clone()),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn a_flush_failed_in_a_revocation_is_not_retried_by_the_loop() {
    let member = member(&[Err("fsync: Input/output error")]);
    member.handled(0, 5);
    member.handled(1, 44);
    member.revoke(&[0]);
    assert_eq!(member.flushed(), 1);
    // The loop's checkpoint right after: the next flush would succeed, and must not be
    // asked for, nor store p1's offset (its work was covered by the flush that failed).
    member.checkpoint().unwrap();
    assert_eq!(member.flushed(), 1, "a flush after the failed one");
    assert!(member.consumer.lock().ledger.to_store().is_none());
    // The member stops with the first failure, naming what it leaves uncommitted.
    let failure = member.consumer.lock().failure.take().expect("the failure");
    let left = member.consumer.lock().ledger.left_uncommitted();
    let error = failure.leaving(&left).to_string();
    assert_eq!(
        error,
        "fsync: Input/output error\n  Not committed, so read again by the partitions' next \
         owner: p0 up to offset 5 (the group never committed there: the next owner starts \
         where auto.offset.reset says), p1 from offset 40 to 44"
    );
    // The final revocation (leaving the group) does not flush either.
    member.revoke(&[1]);
    assert_eq!(member.flushed(), 1);
    assert_eq!(member.revocations(), vec![vec![0], vec![1]]);
    assert!(
        member.consumer.lock().failure.is_none(),
        "nothing failed again"
    );
}

#[test]
fn the_first_failure_is_the_one_the_member_stops_with() {
    let member = member(&[Err("the first"), Err("the second")]);
    member.handled(0, 1);
    member
        .consumer
        .lock()
        .fail(ConsumerError::Role("the first".into()));
    member
        .consumer
        .lock()
        .fail(ConsumerError::Role("the second".into()));
    let failure = member.consumer.lock().failure.take().unwrap();
    assert_eq!(failure.to_string(), "the first");
}

#[test]
fn a_failure_while_leaving_ends_the_run_with_it() {
    let failed = |words: &str| ConsumerError::Role(words.to_owned().into());
    let late = Some(failed("the final revocation's flush failed"));
    let ending = first_failure(Ok(Ending::Stopped), Ok(()), late);
    assert_eq!(
        ending.unwrap_err().to_string(),
        "the final revocation's flush failed"
    );
    // The first failure wins.
    let ending = first_failure(
        Err(failed("loop")),
        Err(failed("commit")),
        Some(failed("late")),
    );
    assert_eq!(ending.unwrap_err().to_string(), "loop");
    let ending = first_failure(
        Ok(Ending::Drained),
        Err(failed("commit")),
        Some(failed("late")),
    );
    assert_eq!(ending.unwrap_err().to_string(), "commit");
    assert_eq!(
        first_failure(Ok(Ending::Drained), Ok(()), None).unwrap(),
        Ending::Drained
    );
}

#[test]
fn a_flush_failed_while_leaving_is_not_retried_by_the_final_revocation() {
    // Ctrl-C: the last checkpoint's flush fails; leaving the group revokes the partitions,
    // whose checkpoint would flush again (and succeed).
    let member = member(&[Err("fsync: Input/output error")]);
    member.handled(0, 7);
    let error = member.consumer.commit_before_leaving().unwrap_err();
    assert_eq!(error.to_string(), "fsync: Input/output error");
    member.revoke(&[0, 1]);
    assert_eq!(member.flushed(), 1, "a flush after the failed one");
    assert!(member.consumer.lock().failure.is_none());
    assert_eq!(member.revocations(), vec![vec![0]]);
}
