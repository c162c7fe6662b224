//! `orderflow demo`: the whole order platform in one process and one terminal — a development
//! broker, a producer, order-processor, analytics and storage, and the live view.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::time::Duration;

use super::consume::{build_order_processor, build_storage};
use super::produce::export_deliveries;
use crate::cli::{ConnectionArgs, DemoArgs};
use crate::config::KafkaSettings;
use crate::dashboard::terminal::Controls;
use crate::dashboard::{ProducerStats, ViewEvent};
use crate::kafka::broker::{BrokerError, BrokerOptions, DevBroker};
use crate::kafka::consumer::ConsumerOptions;
use crate::kafka::producer::OrderProducer;
use crate::metrics::Metrics;
use crate::report::activity::Report;
use crate::report::human;
use crate::report::printer::{TextPrinter, summary_line};
use crate::report::rate::RateMeter;
use crate::roles::Role;
use crate::roles::analytics::Analytics;
use crate::roles::registry::{self, ROLES, RoleEntry, Shows};
use crate::shutdown::Shutdown;
use crate::wiring::live::{self, LiveView};
use crate::wiring::member::{self, Running, exit_on_second_request};
use crate::wiring::sender::{Plan, send_in_background};

/// How long the roles get to read the producer's last events before they are stopped.
const CATCH_UP: Duration = Duration::from_millis(1500);

/// The development broker, serving on a task of its own.
type BrokerTask = tokio::task::JoinHandle<()>;

/// `--listen`'s default (cli.rs): anything else was asked for.
const DEFAULT_LISTEN: &str = "127.0.0.1:9092";

/// Starts `role` as a member of its default group, reporting to `out`.
async fn start_role<R: Role>(
    settings: &KafkaSettings,
    entry: &RoleEntry,
    role: R,
    out: Box<dyn Report>,
    shutdown: &Shutdown,
) -> anyhow::Result<Running> {
    let options = ConsumerOptions {
        role: entry.name,
        group: entry.default_group().to_owned(),
        exit_at_end: false,
        skip_undecodable: false,
    };
    member::start(settings, options, role, out, shutdown).await
}

/// The roles in panel order, each with its sink: its panel of `view`, or without a view a
/// printer with the role's name (and its `metrics`); storage writes its audit log to
/// `audit_path`.
async fn start_roles(
    settings: &KafkaSettings,
    view: Option<&LiveView>,
    metrics: Option<&Metrics>,
    audit_path: &Path,
    stop: &Shutdown,
) -> anyhow::Result<Vec<Running>> {
    let out = |role: &RoleEntry| -> Box<dyn Report> {
        let shown: Box<dyn Report> = match view {
            Some(view) => view.report(role.name),
            None => Box::new(TextPrinter::with_prefix(role.name)),
        };
        let also = metrics
            .map(|m| m.member(role.name, role.default_group()))
            .into_iter()
            .collect();
        member::beside(shown, also)
    };
    let processor = &registry::ORDER_PROCESSOR;
    let (order_processor, _) =
        build_order_processor(settings, processor.default_group(), Duration::ZERO).await?;
    let (storage, _) = build_storage(settings, Some(audit_path.to_owned()))?;
    Ok(vec![
        start_role(settings, processor, order_processor, out(processor), stop).await?,
        start_role(
            settings,
            &registry::ANALYTICS,
            Analytics::new(),
            out(&registry::ANALYTICS),
            stop,
        )
        .await?,
        start_role(
            settings,
            &registry::STORAGE,
            storage,
            out(&registry::STORAGE),
            stop,
        )
        .await?,
    ])
}

/// The broker: the cluster -b names, or a development broker of its own on the asked-for
/// address, or any free port if that one is taken (a broker of an earlier session, say),
/// serving until `stop`. Returns its address, and the development broker's task.
async fn broker(
    connection: &ConnectionArgs,
    args: &DemoArgs,
    stop: &Shutdown,
) -> anyhow::Result<(String, Option<BrokerTask>)> {
    if connection.brokers_given {
        if args.listen != DEFAULT_LISTEN {
            anyhow::bail!(
                "--listen is the demo's own broker's address; with -b {} the demo starts no \
                 broker and uses that cluster (drop one of the two)",
                connection.brokers
            );
        }
        eprintln!(
            "demo: on the cluster at {} (-b): no built-in broker started; topic {}",
            connection.brokers, connection.topic
        );
        return Ok((connection.brokers.clone(), None));
    }
    let mut options = BrokerOptions {
        listen: args.listen.clone(),
        advertise: None,
        topic: connection.topic.clone(),
        partitions: 3,
    };
    let mut broker = match DevBroker::start(&options).await {
        Err(BrokerError::AddressInUse { .. }) => {
            options.listen = "127.0.0.1:0".into();
            DevBroker::start(&options).await?
        }
        started => started?,
    };
    let address = broker.advertised().to_owned();
    let mut stop = stop.clone();
    let task = tokio::spawn(async move { broker.serve(stop.requested_async()).await });
    Ok((address, Some(task)))
}

/// The producer's counters every half second: to the view when there is one (`view`),
/// otherwise a line now and then; until `stop`.
fn producer_ticker(
    producer: Arc<OrderProducer>,
    sent: Arc<AtomicU64>,
    view: Option<Sender<ViewEvent>>,
    mut stop: Shutdown,
    target_rate: f64,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut meter = RateMeter::default();
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut ticks = 0u64;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.requested_async() => return,
            }
            let deliveries = producer.deliveries();
            let stats = ProducerStats {
                sent: sent.load(Ordering::Relaxed),
                delivered: deliveries.delivered(),
                failed: deliveries.failed(),
                rate: meter.sample(deliveries.delivered()),
                target_rate,
            };
            ticks += 1;
            if let Some(events) = &view {
                let _ = events.send(ViewEvent::Producer(stats));
            } else if ticks.is_multiple_of(10) {
                println!(
                    "[producer] sent {} · delivered {} · failed {} · {}",
                    human::count(stats.sent),
                    human::count(stats.delivered),
                    human::count(stats.failed),
                    human::rate(stats.rate)
                );
            }
        }
    })
}

/// Runs `orderflow demo` until Ctrl-C (or `q`), then stops its parts in order.
pub(crate) async fn run(
    connection: ConnectionArgs,
    args: &DemoArgs,
    shutdown: Shutdown,
) -> anyhow::Result<ExitCode> {
    exit_on_second_request(&shutdown);
    let live = !args.no_tui && std::io::stdout().is_terminal();
    // Bound before the broker starts, so that a busy port stops the demo at once.
    let metrics = Metrics::serve_if(args.metrics.metrics)?;
    if let Some(metrics) = &metrics {
        eprintln!("metrics: http://{}/metrics", metrics.address());
    }

    let broker_stop = Shutdown::manual();
    let (address, broker_task) = broker(&connection, args, &broker_stop).await?;
    let settings = KafkaSettings::new(&address, &connection.topic, connection.properties)?;

    // The producer.
    let producer = Arc::new(OrderProducer::new(&settings)?);
    producer.check_reachable().await?;
    let sent = Arc::new(AtomicU64::new(0));
    let plan = Plan {
        seed: rand::random(),
        rate: args.rate,
        count: None,
        sync: false,
    };
    // Each part stops on its own signal, so that quitting can go in order: the producer
    // first, then (once they have caught up) the roles, then the broker.
    let producer_stop = Shutdown::manual();
    let roles_stop = Shutdown::manual();
    let sender = send_in_background(
        Arc::clone(&producer),
        plan,
        producer_stop.clone(),
        Arc::clone(&sent),
    )?;

    let view = LiveView::new();
    let audit_path =
        std::env::temp_dir().join(format!("orderflow-demo-{}.audit.jsonl", std::process::id()));
    if let Some(metrics) = &metrics {
        export_deliveries(metrics, &producer, &sent);
    }
    let roles = start_roles(
        &settings,
        live.then_some(&view),
        metrics.as_ref(),
        &audit_path,
        &roles_stop,
    )
    .await?;
    let metrics_watch = metrics
        .as_ref()
        .map(|m| m.watch_groups(&settings, registry::default_groups()))
        .transpose()?;

    // The producer's counters, for the view (or a line now and then).
    let ticker = producer_ticker(
        Arc::clone(&producer),
        Arc::clone(&sent),
        live.then(|| view.events()),
        roles_stop.clone(),
        args.rate,
    );

    let mut final_view = None;
    if live {
        let watch = view.watch(&settings)?;
        let mut dashboard = live::dashboard(&address, &settings.topic, &registry::names());
        // The role whose counters and rate stand beside the groups, selected to begin with.
        if let Some(featured) = ROLES.iter().find(|r| r.shows == Shows::CountersAndRate) {
            dashboard.select(featured.name);
            dashboard.feature(featured.name);
        }
        if broker_task.is_some() {
            dashboard.set_demo_broker(&address);
        }
        let mut controls = Controls::default();
        for role in &roles {
            controls.on_pause(role.name(), role.pause());
        }
        let stop = shutdown.clone();
        let closed = view
            .show(dashboard, controls, move || stop.requested())
            .await?;
        drop(watch);
        final_view = Some(closed.state()?);
    } else {
        drop(view);
        let whose = if broker_task.is_some() {
            "its own broker"
        } else {
            "the cluster"
        };
        eprintln!(
            "demo: {whose} at {address}, producing {} events/s; Ctrl-C stops",
            human::decimal(args.rate)
        );
        let mut waiting = shutdown.clone();
        waiting.requested_async().await;
    }

    // Stopping, in order: the producer delivers what is in flight, the roles read it, commit
    // and leave their groups, then the broker goes.
    producer_stop.request();
    let sent_result = tokio::task::spawn_blocking(move || sender.join()).await?;
    let flusher = Arc::clone(&producer);
    tokio::task::spawn_blocking(move || flusher.flush(Duration::from_secs(5))).await?;
    tokio::time::sleep(CATCH_UP).await;
    roles_stop.request();
    let _ = ticker.await;
    let mut failures = Vec::new();
    for (entry, role) in ROLES.iter().zip(roles) {
        if let Err(e) = role.ended().await? {
            failures.push(format!("{}: {e}", entry.name));
        }
    }
    drop(metrics_watch);
    broker_stop.request();
    if let Some(task) = broker_task {
        let _ = task.await;
    }

    let deliveries = producer.deliveries();
    println!(
        "producer: {} events sent, {} delivered, {} failed",
        human::count(sent.load(Ordering::Relaxed)),
        human::count(deliveries.delivered()),
        human::count(deliveries.failed())
    );
    if let Some(last_view) = final_view {
        let dashboard = last_view.settle();
        for role in dashboard.roles() {
            if let Some(summary) = role.summary() {
                println!("{}: {}", role.name(), summary_line(summary));
            }
        }
    }
    println!(
        "audit log: {} (look inside: `{} audit summary {}`)",
        audit_path.display(),
        human::invoked_as(),
        human::shell_word(&audit_path.display().to_string())
    );
    if let Ok(Err(e)) = sent_result {
        failures.push(format!("producer: {e}"));
    }
    if failures.is_empty() && deliveries.failed() == 0 {
        Ok(ExitCode::SUCCESS)
    } else {
        for failure in failures {
            eprintln!("error: {failure}");
        }
        Ok(ExitCode::FAILURE)
    }
}
