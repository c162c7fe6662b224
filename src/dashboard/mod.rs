//! The live view (ratatui): state + update + render, and the terminal loop around them.
//! It consumes plain events ([`ViewEvent`]) and never touches Kafka.
//!
//! - `state`: the dashboard's state, how each event changes it and what each action does;
//! - `keys`: which key means which action;
//! - `names`: names from the cluster and announcements, made harmless and cut to fit;
//! - `render`: the frame, drawn from the state alone;
//! - `terminal`: taking over the terminal, keys, redraw pacing, and giving it back;
//! - `stage`: the smaller view of a read-process-write stage (`orderflow payments`).

mod keys;
mod names;
mod render;
pub(crate) mod stage;
mod state;
pub(crate) mod terminal;

pub use keys::Action;
pub use state::{Dashboard, Effect, ProducerStats, ViewEvent};

use std::sync::mpsc::Sender;

use crate::report::activity::{Activity, Outcome, Report};

/// A role's [`Report`] sink that feeds the live view. Records are aggregated before they get
/// here (the role's counters arrive with its progress every second), so only the rare ones
/// worth showing on their own — malformed records and violations — cross the channel: at
/// 50,000 events a second the view sees a handful of events, not fifty thousand.
pub(crate) struct ViewReport {
    /// The role whose activity this is.
    role: &'static str,
    /// Where the view reads its events.
    events: Sender<ViewEvent>,
}

impl ViewReport {
    pub(crate) fn new(role: &'static str, events: Sender<ViewEvent>) -> ViewReport {
        ViewReport { role, events }
    }
}

impl Report for ViewReport {
    fn report(&mut self, activity: Activity) {
        if let Activity::Record(note) = &activity
            && matches!(note.outcome, Outcome::Order { .. } | Outcome::AlreadyStored)
        {
            return;
        }
        // The view may be gone already (the user quit): the role finishes without it.
        let _ = self.events.send(ViewEvent::Role {
            role: self.role,
            activity,
            at: chrono::Utc::now(),
        });
    }
}
