//! A member's metrics sink: one more [`Report`] beside the printer or the live view. It
//! counts in plain fields on the member's own thread (a record costs a few additions, no
//! lock) and publishes a copy for scrapes on every activity that is not a record: at least
//! once a second (each progress report), and with the final summary.

use std::sync::{Arc, Mutex};

use super::series::{Latest, MemberCounts};
use crate::domain::event::Status;
use crate::report::activity::{Activity, Outcome, Report};
use crate::report::client_stats::ClientStatistics;

/// The metrics of one member of a group.
pub(crate) struct MemberMetrics {
    counts: MemberCounts,
    /// Valid events by status, indexed by `Status::index`: the one count every record
    /// makes, kept out of `counts.by_status` (a map) until it is published.
    statuses: [u64; Status::ALL.len()],
    /// Where scrapes read it; `slot` is this member's entry.
    latest: Arc<Mutex<Latest>>,
    slot: usize,
}

impl MemberMetrics {
    pub(crate) fn new(latest: Arc<Mutex<Latest>>, role: &'static str, group: &str) -> Self {
        let counts = MemberCounts {
            role,
            group: group.to_owned(),
            ..MemberCounts::default()
        };
        let slot = {
            let mut shared = latest.lock().unwrap_or_else(|p| p.into_inner());
            shared.members.push(counts.clone());
            shared.members.len() - 1
        };
        MemberMetrics {
            counts,
            statuses: [0; Status::ALL.len()],
            latest,
            slot,
        }
    }

    fn publish(&mut self) {
        for status in Status::ALL {
            let count = self.statuses[status.index()];
            if count > 0 {
                self.counts.by_status.insert(status.as_str(), count);
            }
        }
        let mut shared = self.latest.lock().unwrap_or_else(|p| p.into_inner());
        shared.members[self.slot].clone_from(&self.counts);
    }

    fn count(&mut self, outcome: &Outcome, dead_lettered: bool) {
        let c = &mut self.counts;
        c.records += 1;
        match outcome {
            Outcome::Order { status, .. } => self.statuses[status.index()] += 1,
            Outcome::Violation {
                status, violation, ..
            } => {
                self.statuses[status.index()] += 1;
                *c.violations.entry(violation.kind()).or_default() += 1;
            }
            Outcome::Malformed(error) => *c.malformed.entry(error.kind()).or_default() += 1,
            Outcome::AlreadyStored => c.already_stored += 1,
        }
        if dead_lettered {
            c.dead_letters += 1;
        }
    }
}

impl Report for MemberMetrics {
    fn statistics(&mut self, statistics: &ClientStatistics) {
        self.counts.client.clone_from(statistics);
        self.publish();
    }

    fn report(&mut self, activity: Activity) {
        let c = &mut self.counts;
        match activity {
            Activity::Record(note) => {
                self.count(&note.outcome, note.routed_to.is_some());
                // Records come by the thousand a second: published with the next progress.
                return;
            }
            Activity::Assigned { now_owned, .. } => {
                *c.rebalances.entry("assigned").or_default() += 1;
                c.owned = now_owned.len();
            }
            Activity::Revoked {
                lost, now_owned, ..
            } => {
                let change = if lost.is_some() { "lost" } else { "revoked" };
                *c.rebalances.entry(change).or_default() += 1;
                c.owned = now_owned.len();
            }
            Activity::Committed { .. } => c.commits += 1,
            Activity::CommitFailed { .. } => c.commit_failures += 1,
            Activity::Paused(paused) => c.paused = paused,
            Activity::Progress(summary) => {
                if let Some(window) = &summary.latency {
                    c.latency_run.add(&window.buckets);
                }
                c.latency = summary.latency;
            }
            // The final summary's latency is the whole run's: the records handled since the
            // last progress report are in it too.
            Activity::Summary(summary) if summary.last => {
                if let Some(run) = summary
                    .latency
                    .filter(|run| run.buckets.count() >= c.latency_run.count())
                {
                    c.latency_run = *run.buckets;
                }
            }
            Activity::Left => c.owned = 0,
            Activity::Summary(_)
            | Activity::Joined { .. }
            | Activity::Connection(_)
            | Activity::Cluster(_)
            | Activity::Notice(_) => {}
        }
        self.publish();
    }
}
