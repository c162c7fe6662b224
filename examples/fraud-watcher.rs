//! Write your own consumer role: a fraud watcher that flags users who place more than
//! `--max-orders` orders within `--window-s` seconds.
//!
//! It is a fourth consumer group next to order-processor, analytics and storage: it gets every
//! event too (fan-out), and it runs on the same runtime as the built-in roles, so it inherits
//! their behaviour for free: partitions handed over cleanly on rebalances, offsets committed
//! only after a record is handled (at-least-once), commit-and-leave on Ctrl-C, `--exit-at-end`.
//!
//! ```sh
//! cargo run --example fraud-watcher                      # group fraud-watcher, localhost:9092
//! cargo run --example fraud-watcher -- --max-orders 2 --window-s 30
//! cargo run --example fraud-watcher -- -g fw-replay --exit-at-end --json
//! ```
//!
//! A role is one type implementing [`Role`]: `handle` is called for every record, `assigned`
//! and `revoked` when partitions move, `counters` for the summaries. `main` hands it to
//! [`orderflow::wiring::run`], which makes it a member of its group and prints what it does,
//! exactly as it does for the built-in roles.

use std::collections::{BTreeMap, HashMap, VecDeque};

use chrono::{DateTime, TimeDelta, Utc};
use clap::Parser;
use orderflow::cli::ConnectionArgs;
use orderflow::config::KafkaSettings;
use orderflow::domain::event::{OrderEvent, Status};
use orderflow::kafka::consumer::ConsumerOptions;
use orderflow::report::activity::{
    Activity, Outcome, PartitionStart, RecordNote, Report, RoleCounters,
};
use orderflow::roles::{ConsumedRecord, Replay, Role, RoleError};
use orderflow::shutdown::Shutdown;
use orderflow::wiring::{self, Output};
use uuid::Uuid;

#[derive(Parser)]
#[command(
    name = "fraud-watcher",
    about = "Flag users who place more than --max-orders orders within --window-s seconds"
)]
struct Args {
    /// Consumer group to join. A group of its own means this role gets every event, whatever
    /// the other roles do
    #[arg(short = 'g', long, default_value = "fraud-watcher", value_name = "ID")]
    group: String,

    /// Stop once every assigned partition is read to its end (after committing)
    #[arg(long)]
    exit_at_end: bool,

    /// JSON Lines instead of text (alerts are `notice` lines)
    #[arg(long)]
    json: bool,

    /// A user may place this many orders within the window; one more raises an alert
    #[arg(long, default_value_t = 3, value_name = "N")]
    max_orders: usize,

    /// The sliding window, in seconds of event time
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    window_s: i64,

    /// -b, -t and -X, exactly as every orderflow subcommand takes them (last, because their
    /// help heading applies to the flags after them).
    #[command(flatten)]
    connection: ConnectionArgs,
}

/// The role's state. Nothing here knows about Kafka: it sees records, not consumers.
struct FraudWatcher {
    max_orders: usize,
    window: TimeDelta,
    /// Per user, the orders they placed within the window: (event time, order id).
    ///
    /// Why per member and not per partition: the topic is keyed by order_id, so one user's
    /// orders are spread over every partition. With two fraud-watcher members, each sees only
    /// its partitions' share of a user's orders and may miss a burst. A production system
    /// would first re-key the events by user_id into another topic, so that all of a user's
    /// orders land in one partition, and hence with one member.
    recent: HashMap<String, VecDeque<(DateTime<Utc>, Uuid)>>,
    /// Orders placed (PLACED events), duplicates excluded.
    placed: u64,
    /// Times a user went over the limit.
    alerts: u64,
    /// Users with at least one alert; a BTreeMap so any listing is sorted.
    flagged: BTreeMap<String, u64>,
    malformed: u64,
    malformed_by_kind: BTreeMap<&'static str, u64>,
}

impl FraudWatcher {
    fn new(max_orders: usize, window: TimeDelta) -> FraudWatcher {
        FraudWatcher {
            max_orders,
            window,
            recent: HashMap::new(),
            placed: 0,
            alerts: 0,
            flagged: BTreeMap::new(),
            malformed: 0,
            malformed_by_kind: BTreeMap::new(),
        }
    }

    /// Counts one placed order; returns the alert text if it takes the user over the limit.
    fn placed(&mut self, event: &OrderEvent) -> Option<String> {
        let orders = self.recent.entry(event.user_id.clone()).or_default();
        // At-least-once delivery means a record can come twice (after a crash, or a commit
        // refused during a rebalance). Keyed by order id, counting stays idempotent.
        if orders.iter().any(|(_, id)| *id == event.order_id) {
            return None;
        }
        self.placed += 1;
        orders.push_back((event.timestamp, event.order_id));
        // Event time, not the time we read it: a consumer that catches up on an hour of
        // backlog must judge the orders as they happened, not as one burst.
        let since = event.timestamp - self.window;
        orders.retain(|(at, _)| *at > since);
        // Alert once when the user crosses the limit, not on every order after it.
        if orders.len() != self.max_orders + 1 {
            return None;
        }
        self.alerts += 1;
        *self.flagged.entry(event.user_id.clone()).or_default() += 1;
        let ids: Vec<String> = orders
            .iter()
            .map(|(_, id)| id.to_string()[..8].to_owned())
            .collect();
        Some(format!(
            "ALERT {}: {} orders within {} s ({})",
            event.user_id,
            orders.len(),
            self.window.num_seconds(),
            ids.join(", ")
        ))
    }
}

impl Role for FraudWatcher {
    fn assigned(
        &mut self,
        _partitions: &[PartitionStart],
        _history: &dyn Replay,
        _out: &mut dyn Report,
    ) -> Result<(), RoleError> {
        // Nothing to prepare: the state is per user, not per partition (see `recent`).
        // order-processor shows the other way: it rebuilds per-partition state from `history`.
        Ok(())
    }

    fn revoked(&mut self, _partitions: &[i32], _out: &mut dyn Report) {}

    fn handle(
        &mut self,
        record: &ConsumedRecord<'_>,
        out: &mut dyn Report,
    ) -> Result<(), RoleError> {
        // Never fail on bad input: count it and say so. Returning Err would stop the role,
        // and its offset would never be committed, so it would stop again on every restart
        // (a poison message).
        let event = match OrderEvent::from_record(record.key, record.value) {
            Ok(event) => event,
            Err(error) => {
                self.malformed += 1;
                *self.malformed_by_kind.entry(error.kind()).or_default() += 1;
                out.report(Activity::Record(RecordNote {
                    partition: record.partition,
                    offset: record.offset,
                    outcome: Outcome::Malformed(error),
                    routed_to: None,
                }));
                return Ok(());
            }
        };
        if event.status == Status::Placed
            && let Some(alert) = self.placed(&event)
        {
            out.report(Activity::Notice(alert));
        }
        Ok(())
    }

    fn malformed(&self) -> (u64, BTreeMap<&'static str, u64>) {
        (self.malformed, self.malformed_by_kind.clone())
    }

    fn counters(&self) -> RoleCounters {
        RoleCounters::Custom {
            counters: vec![
                ("placed", self.placed),
                ("users", self.recent.len() as u64),
                ("alerts", self.alerts),
                ("flagged_users", self.flagged.len() as u64),
            ],
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    orderflow::logging::init();
    anyhow::ensure!(args.max_orders > 0, "--max-orders must be at least 1");
    anyhow::ensure!(args.window_s > 0, "--window-s must be at least 1");
    let settings = KafkaSettings::new(
        &args.connection.brokers,
        &args.connection.topic,
        args.connection.properties,
    )?;

    let options = ConsumerOptions {
        role: "fraud-watcher",
        group: args.group,
        exit_at_end: args.exit_at_end,
        skip_undecodable: false,
    };
    let role = FraudWatcher::new(args.max_orders, TimeDelta::seconds(args.window_s));
    // Ctrl-C and SIGTERM become a stop request; the member then finishes the record in hand,
    // commits and leaves the group, so its partitions move to other members at once.
    let shutdown = Shutdown::listen();
    // Text or JSON Lines on stdout, and announcements on `<topic>.members` so that the live
    // views of the other roles list this group and its members (on the built-in broker that
    // is the only way they can know; best effort). The runtime polls Kafka in a blocking loop
    // on a thread of its own.
    let output = Output::printing(args.json);
    wiring::run(&settings, options, role, output, Vec::new(), shutdown).await
}
