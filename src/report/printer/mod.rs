//! The plain outputs of a consumer role: readable text for a terminal or a log, and JSON Lines
//! (`--json`) for scripts. Both consume [`Activity`]; neither touches Kafka.
//!
//! Text: one line per record while records arrive slowly enough to read (at most
//! [`LINES_PER_SECOND`]), otherwise a summary every few seconds; every assignment change,
//! connection change and problem always gets its line.
//!
//! JSON Lines: one object per line with a `"type"` — `joined`, `assigned`, `revoked`,
//! `committed`, `commit_failed`, `connection`, `broker`, `leaders`, `coordinator`,
//! `malformed`, `violation`, `notice`, `paused`, `summary`, `left` (see
//! docs/consumer-output.md). Valid records get no line of their own; summaries carry
//! their counts.

mod json;

pub use json::JsonPrinter;

use std::io::{self, Write};
use std::time::Instant;

use chrono::Local;

use crate::domain::event::{OrderKey, Status};
use crate::report::activity::{
    Activity, Connection, LostCause, Outcome, PartitionProgress, RecordNote, RoleCounters, Summary,
};
use crate::report::group_view::GroupProtocol;
use crate::report::human;
use crate::report::latency::LatencyStats;

/// Per-record lines allowed per second before the text printer switches to summaries.
pub(crate) const LINES_PER_SECOND: f64 = 20.0;

/// Writes lines to stdout; a closed pipe (`| head`) silences it instead of failing the role.
fn emit(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Readable lines for people.
pub(crate) struct TextPrinter {
    /// Token bucket for per-record lines: refills at [`LINES_PER_SECOND`].
    budget: f64,
    refilled_at: Instant,
    /// Records not shown since the last summary printed.
    suppressed: u64,
    /// Put before every line when several roles share one output (the demo without a view).
    prefix: String,
}

impl Default for TextPrinter {
    fn default() -> Self {
        TextPrinter {
            budget: LINES_PER_SECOND,
            refilled_at: Instant::now(),
            suppressed: 0,
            prefix: String::new(),
        }
    }
}

impl TextPrinter {
    /// A printer whose lines start with `[name]`.
    pub(crate) fn with_prefix(name: &str) -> TextPrinter {
        TextPrinter {
            prefix: format!("[{name}] "),
            ..TextPrinter::default()
        }
    }

    /// Every text line goes out here, made terminal-safe: names from outside reach it in
    /// joins, notices, errors and summaries.
    fn line(&self, text: &str) {
        emit(&human::plain_text(&format!(
            "{} {}{text}",
            Local::now().format("%H:%M:%S"),
            self.prefix
        )));
    }

    /// Whether one more per-record line fits in the budget.
    fn allow_record_line(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.refilled_at).as_secs_f64() * LINES_PER_SECOND;
        self.budget = (self.budget + refill).min(LINES_PER_SECOND);
        self.refilled_at = now;
        if self.budget >= 1.0 {
            self.budget -= 1.0;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }
}

impl crate::report::activity::Report for TextPrinter {
    fn report(&mut self, activity: Activity) {
        match activity {
            Activity::Joined {
                role,
                group,
                member,
                topic,
                brokers,
                protocol,
                assignor,
            } => self.line(&format!(
                "{role}: joining group {} as {} ({}), reading {topic} on {brokers}; waiting for partitions…",
                // Without line breaks either: a name must not start a line of its own.
                human::without_hidden(&group),
                human::without_hidden(&member),
                protocol_words(protocol, assignor.as_deref())
            )),
            Activity::Assigned {
                partitions,
                waited,
                took,
                now_owned,
            } => {
                let starts: Vec<String> = partitions
                    .iter()
                    .map(|p| {
                        let from = if p.committed {
                            "committed offset"
                        } else {
                            "earliest offset, group has no commit"
                        };
                        format!(
                            "p{} from offset {} ({from}; end {})",
                            p.partition, p.start, p.high
                        )
                    })
                    .collect();
                let ready = if took.as_millis() >= 100 {
                    format!(", ready in {}", human::duration(took))
                } else {
                    String::new()
                };
                // A member that owned nothing waited for these; one that already had some
                // (a cooperative rebalance) just got more.
                let waited = if waited.is_zero() {
                    String::new()
                } else {
                    format!(" after {}", human::duration(waited))
                };
                self.line(&format!(
                    "assigned {}{waited}{ready}; now owns {} — {}",
                    partition_list(partitions.iter().map(|p| p.partition)),
                    partition_list(now_owned.iter().copied()),
                    starts.join(", ")
                ));
            }
            Activity::Revoked {
                partitions,
                lost,
                uncommitted,
                now_owned,
            } => {
                let how = revoked_words(lost, &uncommitted);
                self.line(&format!(
                    "{} {how}; now owns {}",
                    partition_list(partitions.iter().copied()),
                    partition_list(now_owned.iter().copied())
                ));
            }
            Activity::Committed { offsets } => {
                if self.allow_record_line() {
                    let list: Vec<String> =
                        offsets.iter().map(|(p, o)| format!("p{p}@{o}")).collect();
                    self.line(&format!("committed {}", list.join(" ")));
                }
            }
            Activity::CommitFailed { reason } => {
                self.line(&format!("commit failed: {reason}"))
            }
            Activity::Connection(state) => self.line(&connection_line(&state)),
            Activity::Cluster(change) => self.line(&change.to_string()),
            Activity::Record(note) => {
                let always = matches!(note.outcome, Outcome::Malformed(_) | Outcome::Violation { .. });
                if always || self.allow_record_line() {
                    self.line(&record_line(&note));
                }
            }
            Activity::Notice(message) => self.line(&message),
            Activity::Progress(_) => {}
            Activity::Paused(true) => {
                self.line("consumption paused: records wait in Kafka and the lag grows")
            }
            Activity::Paused(false) => self.line("consumption resumed"),
            Activity::Left => self.line("left the group; its partitions go to the other members"),
            Activity::Summary(summary) => {
                if summary.last || self.suppressed > 0 {
                    self.suppressed = 0;
                    self.line(&summary_line(&summary));
                }
            }
        }
    }
}

/// How partitions went: a hand-over claims a commit only when the commit succeeded.
fn revoked_words(lost: Option<LostCause>, uncommitted: &[i32]) -> String {
    if let Some(cause) = lost {
        format!("lost ({cause})")
    } else if uncommitted.is_empty() {
        "revoked (offsets committed first)".to_owned()
    } else {
        format!(
            "revoked; the offsets of {} could not be committed (the next owner reads their \
             records again)",
            partition_list(uncommitted.iter().copied())
        )
    }
}

/// `classic protocol, assignor cooperative-sticky`; `KIP-848 consumer protocol, assignor
/// chosen by the broker`.
fn protocol_words(protocol: GroupProtocol, assignor: Option<&str>) -> String {
    let name = match protocol {
        GroupProtocol::Classic => "classic protocol",
        GroupProtocol::Consumer => "KIP-848 consumer protocol",
    };
    match assignor {
        Some(assignor) => format!("{name}, assignor {assignor}"),
        None => format!("{name}, assignor chosen by the broker"),
    }
}

fn partition_list(partitions: impl Iterator<Item = i32>) -> String {
    let list: Vec<String> = partitions.map(|p| p.to_string()).collect();
    match list.len() {
        0 => "no partitions".to_owned(),
        1 => format!("partition {}", list[0]),
        _ => format!("partitions {}", list.join(", ")),
    }
}

fn connection_line(state: &Connection) -> String {
    match state {
        Connection::Ok => "Kafka is reachable again".to_owned(),
        Connection::Unreachable { reason } => {
            format!("warning: cannot reach Kafka ({reason}); retrying")
        }
        Connection::Refused { reason } => format!("error: Kafka refused the connection: {reason}"),
        Connection::Fatal { reason } => format!("error: {reason}"),
    }
}

fn short(order_id: &uuid::Uuid) -> String {
    OrderKey::new(*order_id).as_str()[..8].to_owned()
}

fn record_line(note: &RecordNote) -> String {
    let at = format!("p{} @{:<6}", note.partition, note.offset);
    let routed = note
        .routed_to
        .as_ref()
        .map_or(String::new(), |to| format!("  → {to}"));
    match &note.outcome {
        Outcome::Order {
            order_id,
            status,
            source,
            previous,
        } => {
            let step = match previous {
                Some(from) => format!("  ({from} → {status})"),
                None => String::new(),
            };
            format!(
                "{at} order {}  {:<9}  {:<6}{step}{routed}",
                short(order_id),
                status.as_str(),
                source.as_str()
            )
        }
        Outcome::Violation {
            order_id,
            status,
            violation,
        } => format!(
            "{at} order {}  {:<9}  VIOLATION: {violation}{routed}",
            short(order_id),
            status.as_str()
        ),
        Outcome::Malformed(error) => format!("{at} MALFORMED: {error}{routed}"),
        Outcome::AlreadyStored => format!("{at} already in the audit log: skipped"),
    }
}

fn lag_text(partitions: &[PartitionProgress]) -> String {
    if partitions.is_empty() {
        return "owns no partitions".to_owned();
    }
    let parts: Vec<String> = partitions
        .iter()
        .map(|p| match (p.committed, p.end, p.lag) {
            // Not a lag of 0: the records up to the commit are not there (a new broker on the
            // old one's address, a topic made again), so the group skips what arrives below it.
            (Some(committed), Some(end), _) if committed > end => format!(
                "p{} committed {} past its end {}",
                p.partition,
                human::count(committed as u64),
                human::count(end as u64)
            ),
            (_, _, Some(lag)) => format!("p{} {}", p.partition, human::count(lag.max(0) as u64)),
            (_, _, None) => format!("p{} –", p.partition),
        })
        .collect();
    format!("lag {}", parts.join(", "))
}

/// The one-line text form of a summary (also printed when the live view closes).
pub(crate) fn summary_line(summary: &Summary) -> String {
    let head = if summary.last { "final" } else { "summary" };
    let counts = match &summary.counters {
        RoleCounters::OrderProcessor {
            valid,
            violations,
            dead_lettered,
            orders_tracked,
            ..
        } => format!(
            "valid {} · violations {} · malformed {} · dead-lettered {} · orders tracked {}",
            human::count(*valid),
            human::count(*violations),
            human::count(summary.malformed),
            human::count(*dead_lettered),
            human::count(*orders_tracked)
        ),
        RoleCounters::Analytics {
            statuses,
            sources,
            completed,
            in_flight,
            payments,
        } => {
            let by = |map: &std::collections::BTreeMap<&'static str, u64>, names: &[&str]| {
                names
                    .iter()
                    .map(|n| format!("{n} {}", human::count(map.get(n).copied().unwrap_or(0))))
                    .collect::<Vec<_>>()
                    .join(" · ")
            };
            let status_names: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
            let payments = if payments.is_empty() {
                String::new()
            } else {
                format!(" | payments {}", by(payments, &["APPROVED", "DECLINED"]))
            };
            format!(
                "{} | {} | completed {} · in flight {} · malformed {}{payments}",
                by(statuses, &status_names),
                by(sources, &["WEB", "MOBILE", "API"]),
                human::count(*completed),
                human::count(*in_flight),
                human::count(summary.malformed)
            )
        }
        RoleCounters::Storage {
            stored,
            already_stored,
            file,
        } => format!(
            "stored {} (written and fsynced) · already stored {} · malformed {} · file {file}",
            human::count(*stored),
            human::count(*already_stored),
            human::count(summary.malformed)
        ),
        RoleCounters::Custom { counters } => {
            let named: Vec<String> = counters
                .iter()
                .map(|(name, n)| format!("{name} {}", human::count(*n)))
                .collect();
            format!(
                "{} · malformed {}",
                named.join(" · "),
                human::count(summary.malformed)
            )
        }
    };
    // Printed as it is when a live view closes, so made safe here (the storage file's name).
    human::without_hidden(&format!(
        "{head}: {} records ({}) · {counts} · {}{}",
        human::count(summary.records),
        human::rate(summary.events_per_s),
        lag_text(&summary.partitions),
        latency_text(summary.latency.as_ref())
    ))
}

/// ` · latency p50 1.8 ms, p99 6.2 ms, max 14 ms`, or nothing when no record had a producer
/// timestamp in the window.
fn latency_text(latency: Option<&LatencyStats>) -> String {
    let Some(l) = latency else {
        return String::new();
    };
    let ms = |v: f64| format!("{} ms", human::decimal(v));
    format!(
        " · latency p50 {}, p99 {}, max {}",
        ms(l.p50_ms),
        ms(l.p99_ms),
        ms(l.max_ms)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::event::Source;
    use crate::domain::lifecycle::Violation;

    #[test]
    fn a_revocation_claims_a_commit_only_when_there_was_one() {
        assert_eq!(
            revoked_words(None, &[]),
            "revoked (offsets committed first)"
        );
        assert_eq!(
            revoked_words(None, &[1, 2]),
            "revoked; the offsets of partitions 1, 2 could not be committed (the next owner \
             reads their records again)"
        );
        assert!(revoked_words(Some(LostCause::Dropped), &[]).starts_with("lost"));
    }

    #[test]
    fn record_lines_say_what_happened() {
        let id = uuid::Uuid::parse_str("6f1c0a52-3d7e-4e55-9a43-2b7a1d9c8e10").unwrap();
        let line = record_line(&RecordNote {
            partition: 1,
            offset: 42,
            outcome: Outcome::Order {
                order_id: id,
                status: Status::Confirmed,
                source: Source::Web,
                previous: Some(Status::Placed),
            },
            routed_to: None,
        });
        assert_eq!(
            line,
            "p1 @42     order 6f1c0a52  CONFIRMED  WEB     (PLACED → CONFIRMED)"
        );
        let line = record_line(&RecordNote {
            partition: 0,
            offset: 7,
            outcome: Outcome::Violation {
                order_id: id,
                status: Status::Shipped,
                violation: Violation::Skipped {
                    from: Status::Placed,
                    to: Status::Shipped,
                },
            },
            routed_to: Some("order-events.dlq".into()),
        });
        assert!(
            line.ends_with("VIOLATION: skipped CONFIRMED (PLACED → SHIPPED)  → order-events.dlq"),
            "{line}"
        );
    }

    #[test]
    fn a_custom_roles_counters_keep_their_order_in_text_and_json() {
        let summary = Summary {
            role: "fraud-watcher",
            group: "fraud-watcher".into(),
            last: true,
            records: 1200,
            malformed: 1,
            malformed_by_kind: [("not-json", 1)].into_iter().collect(),
            events_per_s: 0.0,
            latency: None,
            partitions: Vec::new(),
            counters: RoleCounters::Custom {
                counters: vec![("placed", 300), ("users", 250), ("flagged", 2)],
            },
        };
        assert_eq!(
            summary_line(&summary),
            "final: 1,200 records (0/s) · placed 300 · users 250 · flagged 2 · malformed 1 · \
             owns no partitions"
        );
        let json = serde_json::to_string(&summary).unwrap();
        assert!(
            json.ends_with(r#""counters":{"placed":300,"users":250,"flagged":2}}"#),
            "{json}"
        );
    }

    #[test]
    fn a_summary_says_how_old_its_records_were() {
        let summary = Summary {
            role: "analytics",
            group: "analytics".into(),
            last: false,
            records: 10,
            malformed: 0,
            malformed_by_kind: std::collections::BTreeMap::new(),
            events_per_s: 2.0,
            latency: Some(LatencyStats {
                p50_ms: 1.84,
                p99_ms: 6.2,
                max_ms: 14.03,
                records: 10,
                buckets: Default::default(),
            }),
            partitions: Vec::new(),
            counters: RoleCounters::Custom {
                counters: vec![("placed", 10)],
            },
        };
        let line = summary_line(&summary);
        assert!(
            line.ends_with("owns no partitions · latency p50 1.8 ms, p99 6.2 ms, max 14 ms"),
            "{line}"
        );
        let json = serde_json::to_value(&summary).unwrap();
        assert_eq!(
            json["latency"],
            serde_json::json!({"p50_ms": 1.84, "p99_ms": 6.2, "max_ms": 14.03, "records": 10})
        );
    }

    #[test]
    fn a_commit_past_the_partitions_end_is_not_shown_as_lag_0() {
        let progress = |partition, committed, end, lag| PartitionProgress {
            partition,
            position: committed,
            committed,
            end: Some(end),
            lag,
        };
        assert_eq!(
            lag_text(&[
                progress(0, Some(10), 12, Some(2)),
                progress(1, Some(468), 219, Some(0)),
                progress(2, None, 5, None),
            ]),
            "lag p0 2, p1 committed 468 past its end 219, p2 –"
        );
    }

    #[test]
    fn the_line_budget_refills_over_time() {
        let mut printer = TextPrinter::default();
        let allowed = (0..100).filter(|_| printer.allow_record_line()).count();
        assert_eq!(allowed, LINES_PER_SECOND as usize);
        assert_eq!(printer.suppressed, 100 - LINES_PER_SECOND as u64);
    }
}
