//! The runtime of a read-process-write stage (`orderflow payments`): reads a batch of input
//! records, has the [`Stage`] turn each into at most one output record, and produces them,
//! committing the input offsets in the order the chosen [`Semantics`] says:
//!
//! - at-most-once: commit the batch's offsets (synchronously), then produce. Killed in
//!   between, the outputs are never made: loss, never a duplicate.
//! - at-least-once: produce, wait until every record is acknowledged, then commit. Killed in
//!   between, the next run makes them again: duplicates, never a loss.
//! - exactly-once: one Kafka transaction per batch holds the outputs and the input offsets
//!   (`send_offsets_to_transaction` with the consumer's group metadata, KIP-447): both are
//!   committed or neither. Any failure aborts it and the batch is read again from its first
//!   offsets. Readers with isolation.level=read_committed see each output once.
//!
//! Everything happens on the thread that polls, and librdkafka runs rebalance callbacks only
//! inside `poll`: a batch is committed (or dropped) before the next poll, so a rebalance never
//! finds half-done work. A rebalance that comes while a batch is being read drops that batch
//! before anything of it is committed; rebalances are eager (see [`setup::consumer_config`]),
//! so the partitions restart from their committed offsets and nothing is skipped.
//!
//! The stage reports plain [`StageActivity`] values; printing and the live view are elsewhere.

pub(crate) mod read;
mod setup;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};

use self::setup::{StageContext, client_id, consumer_config, producer_config};
pub(crate) use self::setup::{StageError, StageOptions};
use crate::config::KafkaSettings;
use crate::domain::payment::Semantics;
use crate::kafka::broker::is_built_in_broker;
use crate::kafka::client::{Connection, close_promptly, flush_promptly};
use crate::kafka::producer::{ProduceContext, UNSTAMPED};
use crate::kafka::topic::{
    APPEAR_WAIT, Patience, TopicMetadata, TopicUser, TopicWaitError, wait_for_topic,
};
use crate::report::stage::{StageActivity, StageReport, StageSummary, TransactionState};
use crate::roles::{ConsumedRecord, Processed, Stage};
use crate::shutdown::Shutdown;

/// A batch ends at this many input records or after [`BATCH_WAIT`]: one transaction (or one
/// commit) per batch keeps the commit cost per record small at thousands of records per
/// second, and the batch short enough that a crash repeats or loses little.
const BATCH_MAX: usize = 500;
const BATCH_WAIT: Duration = Duration::from_millis(100);

/// How long the stage waits for the cluster at start, for a commit, and for a transaction
/// step, before it counts as failed.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(10);
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the counters are reported.
const SUMMARY_INTERVAL: Duration = Duration::from_secs(2);

/// One input record's place and what the stage made of it.
struct Handled {
    partition: i32,
    offset: i64,
    processed: Processed,
}

/// The records read for one commit.
#[derive(Default)]
struct Batch {
    records: Vec<Handled>,
    /// Per partition: the first offset read (where to rewind after an abort) and the next
    /// offset to read (what to commit).
    first: BTreeMap<i32, i64>,
    next: BTreeMap<i32, i64>,
}

/// A read-process-write stage, ready to run.
pub(crate) struct StageRunner<S: Stage> {
    consumer: BaseConsumer<StageContext>,
    producer: BaseProducer<ProduceContext>,
    stage: S,
    options: StageOptions,
    input: String,
    brokers: String,
    client_id: String,
    out: Box<dyn StageReport>,
    summary: StageSummary,
    /// Partitions read to their end since the last record from them (`--exit-at-end`).
    at_end: BTreeSet<i32>,
    /// For the rates of the next summary: when the last one was made, and the counts then.
    last_summary: (Instant, u64, u64),
}

impl<S: Stage> StageRunner<S> {
    /// Creates both clients, checks the cluster and both topics, refuses exactly-once where
    /// transactions are not faithful, initialises transactions and subscribes.
    pub(crate) fn connect(
        settings: &KafkaSettings,
        options: StageOptions,
        stage: S,
        out: Box<dyn StageReport>,
    ) -> Result<StageRunner<S>, StageError> {
        let client_id = client_id(&options);
        let consumer = BaseConsumer::from_config_and_context(
            &consumer_config(settings, &options, &client_id),
            StageContext::default(),
        )
        .map_err(StageError::Create)?;
        let producer = BaseProducer::from_config_and_context(
            &producer_config(settings, &options, &client_id),
            ProduceContext::default(),
        )
        .map_err(StageError::Create)?;
        let brokers = settings.bootstrap();
        let health = consumer.context().health.subscribe();
        let patience = Patience {
            reach: CLUSTER_TIMEOUT,
            appear: APPEAR_WAIT,
        };
        let topics = [
            (
                consumer.client() as &dyn TopicMetadata,
                &settings.topic,
                TopicUser::Consumer,
            ),
            (producer.client(), &options.output, TopicUser::Producer),
        ];
        for (client, topic, user) in topics {
            wait_for_topic(client, topic, &brokers, user, &health, patience).map_err(
                |e| match e {
                    TopicWaitError::Topic(e) => StageError::Topic(e),
                    TopicWaitError::Connection(state) => StageError::Unreachable {
                        brokers: brokers.clone(),
                        reason: match state {
                            Connection::Refused { reason }
                            | Connection::Unreachable { reason }
                            | Connection::Fatal { reason } => reason,
                            Connection::Ok => {
                                format!("no answer within {} s", CLUSTER_TIMEOUT.as_secs())
                            }
                        },
                    },
                },
            )?;
        }
        let transactional_id = (options.semantics == Semantics::ExactlyOnce).then(|| {
            // Asked before anything transactional happens: the mock would accept it all.
            options.transactional_id()
        });
        if let Some(id) = &transactional_id {
            let built_in = consumer
                .client()
                .fetch_cluster_id(CLUSTER_TIMEOUT)
                .is_some_and(|cluster| is_built_in_broker(&cluster));
            if built_in {
                return Err(StageError::UnfaithfulTransactions);
            }
            // Before the consumer asks for its committed offsets: this fences a killed
            // predecessor and aborts what it left open, which the offset fetch would
            // otherwise wait for until the transaction timed out.
            producer
                .init_transactions(TRANSACTION_TIMEOUT)
                .map_err(|error| StageError::InitTransactions {
                    id: id.clone(),
                    error: error.to_string(),
                })?;
        }
        consumer
            .subscribe(&[&settings.topic])
            .map_err(|error| StageError::Subscribe {
                topic: settings.topic.clone(),
                error: error.to_string(),
            })?;
        let mut runner = StageRunner {
            consumer,
            producer,
            stage,
            input: settings.topic.clone(),
            brokers,
            client_id,
            out,
            summary: StageSummary {
                transaction: transactional_id.as_ref().map(|_| TransactionState::None),
                ..StageSummary::default()
            },
            at_end: BTreeSet::new(),
            last_summary: (Instant::now(), 0, 0),
            options,
        };
        runner.out.report(StageActivity::Started {
            stage: runner.options.stage,
            group: runner.options.group.clone(),
            member: runner.options.member(),
            input: runner.input.clone(),
            output: runner.options.output.clone(),
            semantics: runner.options.semantics,
            transactional_id,
        });
        tracing::debug!(client = %runner.client_id, brokers = %runner.brokers, "stage connected");
        Ok(runner)
    }

    /// Runs until stopped (Ctrl-C, SIGTERM) or, with `--exit-at-end`, drained. Blocking.
    pub(crate) fn run(mut self, shutdown: &Shutdown) -> Result<(), StageError> {
        let result = self.batches(shutdown);
        self.report_summary(true);
        // A static member does not leave the group when it closes: its partitions wait for
        // it (a restart under the same --instance gets them back at once) until the session
        // times out.
        close_promptly(&self.consumer, CLUSTER_TIMEOUT);
        flush_promptly(&self.producer, CLUSTER_TIMEOUT);
        result
    }

    fn batches(&mut self, shutdown: &Shutdown) -> Result<(), StageError> {
        let mut assigned = BTreeSet::new();
        while !shutdown.requested() {
            let batch = self.read_batch();
            let now_assigned = self.consumer.context().assigned();
            if now_assigned != assigned {
                assigned = now_assigned;
                self.out.report(StageActivity::Assigned {
                    partitions: assigned.iter().copied().collect(),
                });
            }
            match batch {
                None => {
                    self.summary.dropped_for_rebalance += 1;
                    self.at_end.clear();
                }
                Some(batch) if batch.records.is_empty() => {
                    if self.options.exit_at_end && !assigned.is_empty() && self.drained(&assigned) {
                        return Ok(());
                    }
                }
                Some(batch) => match self.options.semantics {
                    Semantics::AtMostOnce => self.at_most_once(batch)?,
                    Semantics::AtLeastOnce => self.at_least_once(batch)?,
                    Semantics::ExactlyOnce => self.exactly_once(batch)?,
                },
            }
            if self.last_summary.0.elapsed() >= SUMMARY_INTERVAL {
                self.report_summary(false);
            }
        }
        Ok(())
    }

    /// Reads up to [`BATCH_MAX`] records for at most [`BATCH_WAIT`]; None when a rebalance
    /// came meanwhile (the batch is dropped: nothing of it was committed).
    fn read_batch(&mut self) -> Option<Batch> {
        let rebalances = self.consumer.context().rebalances();
        let deadline = Instant::now() + BATCH_WAIT;
        let mut batch = Batch::default();
        while batch.records.len() < BATCH_MAX {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let polled = self.consumer.poll(left);
            if self.consumer.context().rebalances() != rebalances {
                // The rebalance ran inside this poll, so a record it returned comes from the
                // new assignment, which started at the committed offsets: put it back, or
                // dropping it would skip it.
                if let Some(Ok(message)) = &polled {
                    let (partition, offset) = (message.partition(), message.offset());
                    if let Err(e) = self.consumer.seek(
                        &self.input,
                        partition,
                        Offset::Offset(offset),
                        CLUSTER_TIMEOUT,
                    ) {
                        tracing::debug!(partition, error = %e, "putting back a record");
                    }
                }
                return None;
            }
            match polled {
                None => {}
                Some(Ok(message)) => {
                    let record = ConsumedRecord::from_message(&message);
                    self.at_end.remove(&record.partition);
                    batch.first.entry(record.partition).or_insert(record.offset);
                    batch.next.insert(record.partition, record.offset + 1);
                    batch.records.push(Handled {
                        partition: record.partition,
                        offset: record.offset,
                        processed: self.stage.process(&record),
                    });
                    self.consumer.context().health.mark_ok();
                }
                Some(Err(KafkaError::PartitionEOF(partition))) => {
                    self.at_end.insert(partition);
                }
                Some(Err(error)) => tracing::warn!(%error, "consumer error"),
            }
        }
        Some(batch)
    }

    /// Whether every partition of `assigned` is read to its end. librdkafka reports the end
    /// of a partition once per offset it reached there, so a partition read again (rewound
    /// after an abort) is asked about: its position against its end.
    fn drained(&mut self, assigned: &BTreeSet<i32>) -> bool {
        let Ok(positions) = self.consumer.position() else {
            return false;
        };
        for &partition in assigned {
            if self.at_end.contains(&partition) {
                continue;
            }
            let position = positions
                .find_partition(&self.input, partition)
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                });
            let end = self
                .consumer
                .fetch_watermarks(&self.input, partition, CLUSTER_TIMEOUT)
                .ok()
                .map(|(_, high)| high);
            match (position, end) {
                (Some(position), Some(end)) if position >= end => {
                    self.at_end.insert(partition);
                }
                _ => return false,
            }
        }
        true
    }

    fn offsets(&self, batch: &Batch) -> TopicPartitionList {
        let mut list = TopicPartitionList::new();
        for (&partition, &next) in &batch.next {
            list.add_partition_offset(&self.input, partition, Offset::Offset(next))
                .expect("a valid offset");
        }
        list
    }

    /// Commit first, produce after: a refused commit drops the batch unproduced (whoever
    /// owns the partitions next reads it again, and nothing of it was produced).
    fn at_most_once(&mut self, batch: Batch) -> Result<(), StageError> {
        if let Err(e) = self
            .consumer
            .commit(&self.offsets(&batch), CommitMode::Sync)
        {
            self.out.report(StageActivity::Notice(format!(
                "commit refused ({e}): {} records dropped unproduced; the partitions' next \
                 owner reads them again",
                batch.records.len()
            )));
            self.rewind(&batch);
            return Ok(());
        }
        self.summary.batches += 1;
        let sent = self.send(&batch).map_err(StageError::Send)?;
        self.wait_for_deliveries(sent)?;
        Ok(())
    }

    /// Produce, wait for every acknowledgement, then commit: a refused commit leaves the
    /// outputs made, and the next owner makes them again (duplicates, the price of never
    /// losing one).
    fn at_least_once(&mut self, batch: Batch) -> Result<(), StageError> {
        let sent = self.send(&batch).map_err(StageError::Send)?;
        self.wait_for_deliveries(sent)?;
        match self
            .consumer
            .commit(&self.offsets(&batch), CommitMode::Sync)
        {
            Ok(()) => self.summary.batches += 1,
            Err(e) => self.out.report(StageActivity::Notice(format!(
                "commit refused ({e}) after {sent} records were produced: the partitions' next \
                 owner produces them again"
            ))),
        }
        Ok(())
    }

    /// One transaction: the outputs and the input offsets, committed together or aborted
    /// together. After an abort the batch is read again from its first offsets.
    fn exactly_once(&mut self, batch: Batch) -> Result<(), StageError> {
        let before = self.summary.clone();
        match self.transaction(&batch) {
            Ok(()) => {
                self.summary.batches += 1;
                self.summary.transactions_committed += 1;
                self.summary.transaction = Some(TransactionState::Committed);
                Ok(())
            }
            Err((_, error)) if is_fenced(&error) => Err(StageError::Fenced {
                stage: self.options.stage,
                group: self.options.group.clone(),
                instance: self.options.instance.clone(),
                error: error.to_string(),
            }),
            Err((what, error)) if is_fatal(&error) => Err(StageError::Transaction {
                what,
                error: error.to_string(),
            }),
            Err((what, error)) => {
                // What `send` counted belongs to the aborted transaction: not produced.
                let consumed = self.summary.consumed;
                self.summary = StageSummary { consumed, ..before };
                self.producer
                    .abort_transaction(TRANSACTION_TIMEOUT)
                    .map_err(|error| StageError::Transaction {
                        what: "aborted",
                        error: error.to_string(),
                    })?;
                self.summary.transactions_aborted += 1;
                self.summary.transaction = Some(TransactionState::Aborted);
                self.rewind(&batch);
                self.out.report(StageActivity::Aborted {
                    reason: format!("{what}: {error}"),
                });
                Ok(())
            }
        }
    }

    fn transaction(&mut self, batch: &Batch) -> Result<(), (&'static str, KafkaError)> {
        self.producer
            .begin_transaction()
            .map_err(|e| ("begun", e))?;
        self.summary.transaction = Some(TransactionState::Open);
        self.send(batch).map_err(|e| ("filled", e))?;
        let metadata = self
            .consumer
            .group_metadata()
            .ok_or(("given the group's metadata", KafkaError::NoMessageReceived))?;
        self.producer
            .send_offsets_to_transaction(&self.offsets(batch), &metadata, TRANSACTION_TIMEOUT)
            .map_err(|e| ("given the input offsets", e))?;
        self.producer
            .commit_transaction(TRANSACTION_TIMEOUT)
            .map_err(|e| ("committed", e))
    }

    /// Queues every output of `batch` (waiting for room when librdkafka's queue is full) and
    /// counts the batch's records; returns how many were queued.
    fn send(&mut self, batch: &Batch) -> Result<u64, KafkaError> {
        let mut sent = 0;
        for record in &batch.records {
            self.summary.consumed += 1;
            let (key, value, label) = match &record.processed {
                Processed::Emit { key, value, label } => (key, value, *label),
                Processed::Skipped => {
                    self.summary.skipped += 1;
                    continue;
                }
                Processed::Malformed { kind } => {
                    self.summary.malformed += 1;
                    tracing::debug!(kind, record.partition, record.offset, "malformed input");
                    continue;
                }
            };
            if !self.options.work.is_zero() {
                std::thread::sleep(self.options.work);
            }
            loop {
                let out = BaseRecord::with_opaque_to(&self.options.output, UNSTAMPED)
                    .key(key)
                    .payload(value);
                match self.producer.send(out) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        self.producer.poll(Duration::from_millis(5));
                    }
                    Err((error, _)) => return Err(error),
                }
            }
            sent += 1;
            self.summary.produced += 1;
            *self.summary.by_label.entry(label).or_default() += 1;
        }
        self.producer.poll(Duration::ZERO);
        Ok(sent)
    }

    /// Waits until everything queued is acknowledged; fails when any record was not.
    fn wait_for_deliveries(&mut self, sent: u64) -> Result<(), StageError> {
        let failed_before = self.producer.context().deliveries.failed();
        flush_promptly(&self.producer, TRANSACTION_TIMEOUT);
        let failed = self.producer.context().deliveries.failed() - failed_before;
        let waiting = self.producer.in_flight_count().max(0) as u64;
        if failed > 0 || waiting > 0 {
            let mut reason = Vec::new();
            if failed > 0 {
                reason.push(self.producer.context().deliveries.failures_in_words());
            }
            if waiting > 0 {
                reason.push(format!(
                    "{waiting} still unacknowledged after {} s",
                    TRANSACTION_TIMEOUT.as_secs()
                ));
            }
            return Err(StageError::Undelivered {
                failed: failed + waiting,
                sent,
                topic: self.options.output.clone(),
                reason: reason.join("; "),
                consequence: if self.options.semantics == Semantics::AtMostOnce {
                    "their input offsets were committed before producing (at-most-once), so \
                     these records are lost"
                } else {
                    "their input offsets were not committed, so a restarted stage makes them \
                     again"
                },
            });
        }
        Ok(())
    }

    /// Reads `batch`'s partitions again from its first offsets.
    fn rewind(&mut self, batch: &Batch) {
        for (&partition, &first) in &batch.first {
            if let Err(e) = self.consumer.seek(
                &self.input,
                partition,
                Offset::Offset(first),
                CLUSTER_TIMEOUT,
            ) {
                // A partition that moved away meanwhile restarts at its committed offset.
                tracing::debug!(partition, error = %e, "rewind");
            }
            self.at_end.remove(&partition);
        }
    }

    fn report_summary(&mut self, last: bool) {
        let (since, consumed, produced) = self.last_summary;
        let elapsed = since.elapsed().as_secs_f64().max(1e-3);
        self.summary.input_rate = (self.summary.consumed - consumed) as f64 / elapsed;
        self.summary.output_rate = (self.summary.produced - produced) as f64 / elapsed;
        self.last_summary = (Instant::now(), self.summary.consumed, self.summary.produced);
        self.out.report(StageActivity::Summary {
            summary: self.summary.clone(),
            last,
        });
    }
}

/// Whether Kafka says another producer with this transactional.id, or another member with
/// this group.instance.id, has taken this one's place.
fn is_fenced(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::Fenced
                | RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::FencedInstanceId
                | RDKafkaErrorCode::InvalidProducerEpoch
        )
    )
}

/// Whether the transactional producer cannot go on (abort would not help).
fn is_fatal(error: &KafkaError) -> bool {
    match error {
        KafkaError::Transaction(e) => e.is_fatal(),
        _ => false,
    }
}
