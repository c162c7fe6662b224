//! `orderflow demo`: the whole order platform in one process and one terminal — a development
//! broker, a producer, order-processor, analytics and storage, and the live view.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use chrono::{Local, Utc};

use super::consumers::{exit_on_second_request, open_audit_log, presence};
use crate::cli::{ConnectionArgs, DemoArgs};
use crate::commands::produce::{Plan, RateMeter, send_in_background};
use crate::config::KafkaSettings;
use crate::dashboard::terminal::{self, Controls};
use crate::dashboard::{Dashboard, ProducerStats, ViewEvent, ViewReport};
use crate::kafka::broker::{BrokerError, BrokerOptions, DevBroker};
use crate::kafka::consumer::{
    ConsumerControl, ConsumerError, ConsumerOptions, Ending, GroupConsumer,
};
use crate::kafka::dead_letter::DeadLetters;
use crate::kafka::group_watch::GroupWatch;
use crate::kafka::producer::OrderProducer;
use crate::report::activity::{Fanout, Report};
use crate::report::human;
use crate::report::printer::{TextPrinter, summary_line};
use crate::roles::Role;
use crate::roles::analytics::Analytics;
use crate::roles::order_processor::OrderProcessor;
use crate::roles::storage::Storage;
use crate::shutdown::Shutdown;

/// How long the roles get to read the producer's last events before they are stopped.
const CATCH_UP: Duration = Duration::from_millis(1500);

/// `--listen`'s default (cli.rs): anything else was asked for.
const DEFAULT_LISTEN: &str = "127.0.0.1:9092";

/// The roles, in the order of their panels.
const ROLES: [&str; 3] = ["order-processor", "analytics", "storage"];

/// A role started by the demo.
struct Running {
    name: &'static str,
    control: ConsumerControl,
    task: tokio::task::JoinHandle<Result<Ending, ConsumerError>>,
}

/// Creates a member with its sinks, joins its group, and runs it on a thread of its own.
async fn start_role<R: Role>(
    settings: &KafkaSettings,
    role_name: &'static str,
    role: R,
    out: Box<dyn Report>,
    shutdown: &Shutdown,
) -> anyhow::Result<Running> {
    let mut sinks = vec![out];
    sinks.extend(presence(settings));
    let options = ConsumerOptions {
        role: role_name,
        group: role_name.to_owned(),
        exit_at_end: false,
    };
    let mut consumer = GroupConsumer::new(settings, options, role, Box::new(Fanout(sinks)))?;
    let control = consumer.control();
    let consumer =
        tokio::task::spawn_blocking(move || consumer.connect().map(|()| consumer)).await??;
    let shutdown = shutdown.clone();
    let task = tokio::task::spawn_blocking(move || consumer.run(&shutdown));
    Ok(Running {
        name: role_name,
        control,
        task,
    })
}

pub async fn run(
    connection: ConnectionArgs,
    args: &DemoArgs,
    shutdown: Shutdown,
) -> anyhow::Result<ExitCode> {
    exit_on_second_request(&shutdown);
    let live = !args.no_tui && std::io::stdout().is_terminal();

    // The broker: the cluster -b names, or a development broker of its own on the asked-for
    // address, or any free port if that one is taken (a broker of an earlier session, say).
    let broker_stop = Shutdown::manual();
    let (address, broker_task) = if connection.brokers_given {
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
        (connection.brokers.clone(), None)
    } else {
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
        let mut stop = broker_stop.clone();
        let task = tokio::spawn(async move { broker.serve(stop.requested_async()).await });
        (address, Some(task))
    };
    let settings = KafkaSettings::new(&address, &connection.topic, connection.properties)?;

    // The producer.
    let producer = Arc::new(OrderProducer::new(&settings)?);
    producer.check_reachable().await?;
    let sent = Arc::new(AtomicU64::new(0));
    let plan = Plan {
        seed: rand::random(),
        rate: args.rate,
        count: None,
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

    // The roles, each with its sink: the view, or a printer with the role's name.
    let (events, view_events) = mpsc::channel();
    let out = |role: &'static str| -> Box<dyn Report> {
        if live {
            Box::new(ViewReport::new(role, events.clone()))
        } else {
            Box::new(TextPrinter::with_prefix(role))
        }
    };
    let dead_letters = DeadLetters::new(&settings, "order-processor")?;
    dead_letters.check().await?;
    let audit_path =
        std::env::temp_dir().join(format!("orderflow-demo-{}.audit.jsonl", std::process::id()));
    let (log, _) = open_audit_log(&settings, Some(audit_path.clone()))?;
    let roles = vec![
        start_role(
            &settings,
            ROLES[0],
            OrderProcessor::new(Box::new(dead_letters), Duration::ZERO),
            out(ROLES[0]),
            &roles_stop,
        )
        .await?,
        start_role(
            &settings,
            ROLES[1],
            Analytics::new(),
            out(ROLES[1]),
            &roles_stop,
        )
        .await?,
        start_role(
            &settings,
            ROLES[2],
            Storage::new(log, &settings.topic),
            out(ROLES[2]),
            &roles_stop,
        )
        .await?,
    ];

    // The producer's counters, for the view (or a line now and then).
    let ticker = {
        let producer = Arc::clone(&producer);
        let sent = Arc::clone(&sent);
        let events = events.clone();
        let mut stop = roles_stop.clone();
        let target_rate = args.rate;
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
                if live {
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
    };

    let mut final_view = None;
    if live {
        let watch = {
            let events = events.clone();
            GroupWatch::start(&settings, move |view| {
                let _ = events.send(ViewEvent::Groups(view));
            })?
        };
        drop(events);
        let mut dashboard = Dashboard::new(
            &address,
            &settings.topic,
            &ROLES,
            Utc::now(),
            *Local::now().offset(),
        );
        dashboard.select(ROLES[1]);
        dashboard.feature(ROLES[1]);
        if broker_task.is_some() {
            dashboard.set_demo_broker(&address);
        }
        // Logs go to a file while the view owns the terminal (best effort).
        let _ = crate::logging::to_file();
        let mut controls = Controls::default();
        for role in &roles {
            let control = role.control.clone();
            controls.on_pause(role.name, move |paused| control.set_paused(paused));
        }
        let stop = shutdown.clone();
        let view_events_result = tokio::task::spawn_blocking(move || {
            let result = terminal::run(dashboard, &view_events, &controls, || stop.requested());
            (result, view_events)
        })
        .await?;
        let (result, view_events) = view_events_result;
        crate::logging::to_stderr();
        drop(watch);
        final_view = Some((result?, view_events));
    } else {
        drop(events);
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
    for (name, role) in ROLES.iter().zip(roles) {
        if let Err(e) = role.task.await? {
            failures.push(format!("{name}: {e}"));
        }
    }
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
    if let Some((mut dashboard, view_events)) = final_view {
        while let Ok(event) = view_events.recv_timeout(Duration::from_millis(100)) {
            dashboard.update(event);
        }
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
