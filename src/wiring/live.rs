//! The live view around running members: the channel they report into, the group watch that
//! feeds the group table, the terminal on a thread of its own, and the view's last state once
//! it closes (for the notices and summaries printed after it).

use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use chrono::{Local, Utc};

use super::member;
use crate::config::KafkaSettings;
use crate::dashboard::terminal::{self, Controls};
use crate::dashboard::{Dashboard, ViewEvent, ViewReport};
use crate::kafka::consumer::ConsumerOptions;
use crate::kafka::group_watch::GroupWatch;
use crate::report::activity::Report;
use crate::report::human;
use crate::report::printer::summary_line;
use crate::roles::{Role, registry};
use crate::shutdown::Shutdown;

/// A live view before it opens: members and the producer report into its channel.
pub(crate) struct LiveView {
    events: Sender<ViewEvent>,
    view_events: Receiver<ViewEvent>,
}

impl LiveView {
    pub(crate) fn new() -> LiveView {
        let (events, view_events) = mpsc::channel();
        LiveView {
            events,
            view_events,
        }
    }

    /// The sink of a member of `role`: its panel.
    pub(crate) fn report(&self, role: &'static str) -> Box<dyn Report> {
        Box::new(ViewReport::new(role, self.events.clone()))
    }

    /// Where other events for the view go (the producer's counters).
    pub(crate) fn events(&self) -> Sender<ViewEvent> {
        self.events.clone()
    }

    /// Starts the group watch that fills the view's group table; dropping it stops it. The
    /// roles' own groups are shown once they have committed offsets, even without members.
    pub(crate) fn watch(&self, settings: &KafkaSettings) -> std::io::Result<GroupWatch> {
        let events = self.events.clone();
        GroupWatch::start(settings, registry::default_groups(), move |view| {
            let _ = events.send(ViewEvent::Groups(view));
        })
    }

    /// Shows `dashboard` until `q` (or Ctrl-C in the view), or until `stop()` says so; logs
    /// go to a file meanwhile and back to stderr after.
    pub(crate) async fn show(
        self,
        dashboard: Dashboard,
        controls: Controls,
        stop: impl Fn() -> bool + Send + 'static,
    ) -> anyhow::Result<ClosedView> {
        // Once every member is gone, nothing more is coming: the view's channel then ends.
        drop(self.events);
        // Logs go to a file while the view owns the terminal (best effort).
        let _ = crate::logging::to_file();
        let view_events = self.view_events;
        let (result, view_events) = tokio::task::spawn_blocking(move || {
            let result = terminal::run(dashboard, &view_events, &controls, stop);
            (result, view_events)
        })
        .await?;
        crate::logging::to_stderr();
        Ok(ClosedView {
            result,
            view_events,
        })
    }
}

/// The state a view is opened with: the cluster, the topic, a panel per role.
pub(crate) fn dashboard(brokers: &str, topic: &str, roles: &[&'static str]) -> Dashboard {
    Dashboard::new(brokers, topic, roles, Utc::now(), *Local::now().offset())
}

/// A view that was closed, with the events its members still send while they finish.
pub(crate) struct ClosedView {
    result: std::io::Result<Dashboard>,
    view_events: Receiver<ViewEvent>,
}

impl ClosedView {
    /// The view's state as it closed; Err if the terminal failed.
    pub(crate) fn state(self) -> anyhow::Result<LastView> {
        Ok(LastView {
            dashboard: self.result?,
            view_events: self.view_events,
        })
    }
}

/// A closed view's state, still taking in the members' last words.
pub(crate) struct LastView {
    dashboard: Dashboard,
    view_events: Receiver<ViewEvent>,
}

impl LastView {
    /// Takes in what the members said while they finished (their final summaries); call it
    /// once they have stopped.
    pub(crate) fn settle(mut self) -> Dashboard {
        while let Ok(event) = self.view_events.recv_timeout(Duration::from_millis(100)) {
            self.dashboard.update(event);
        }
        self.dashboard
    }
}

/// One member in the live view, as `orderflow analytics` runs in a terminal: the view closes
/// when the member stops on its own; `q` or a signal stops the member; `also` gets its
/// activity too. Afterwards `notices`, the member's own notices and its final summary are
/// printed.
pub(super) async fn run<R: Role>(
    settings: &KafkaSettings,
    options: ConsumerOptions,
    role: R,
    notices: Vec<String>,
    also: Vec<Box<dyn Report>>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let role_name = options.role;
    let group = options.group.clone();
    let view = LiveView::new();
    let out = member::beside(view.report(role_name), also);
    // Fail (unreachable broker, missing topic) before taking over the terminal.
    let running = member::start(settings, options, role, out, &shutdown).await?;
    let watch = view.watch(settings)?;
    let dashboard = dashboard(&settings.bootstrap(), &settings.topic, &[role_name]);
    let mut controls = Controls::default();
    controls.on_pause(role_name, running.pause());
    let finished = running.finished();
    let closed = {
        let shutdown = shutdown.clone();
        let finished = running.finished();
        view.show(dashboard, controls, move || {
            shutdown.requested() || finished()
        })
        .await?
    };
    if !finished() {
        println!(
            "{role_name}: committing and leaving group {}… (Ctrl-C to stop without committing)",
            human::without_hidden(&group)
        );
    }
    // `q` in the view, or a signal: either way the member now finishes and leaves.
    shutdown.request();
    let ran = running.ended().await?;
    drop(watch);
    let dashboard = closed.state()?.settle();
    for notice in notices {
        println!("{}", human::plain_text(&notice));
    }
    for role in dashboard.roles() {
        for notice in role.notices() {
            println!("{}", human::plain_text(notice));
        }
        if let Some(summary) = role.summary() {
            println!("{}", summary_line(summary));
        }
    }
    ran?;
    Ok(())
}
