//! A role's own numbers: its counters (by the kind of counters its summary carries), its
//! throughput over the last minute, and its recent problems and notices.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline, Widget, Wrap};

use super::{DIM, count, pack, panel};
use crate::dashboard::names;
use crate::dashboard::state::RoleView;
use crate::domain::event::Status;
use crate::report::activity::RoleCounters;
use crate::report::human;

/// The bars of the four statuses, in lifecycle order.
const STATUS_COLORS: [Color; 4] = [Color::Blue, Color::Cyan, Color::Yellow, Color::Green];

pub(super) fn counters_title(role: &RoleView) -> &'static str {
    match role.summary().map(|s| &s.counters) {
        Some(RoleCounters::OrderProcessor { .. }) => "order lifecycles",
        Some(RoleCounters::Storage { .. }) => "audit log",
        Some(RoleCounters::Custom { .. }) => "counters",
        _ => "events by status and source",
    }
}

/// The role's counters, as full lines for a panel of `width` columns.
pub(super) fn counter_lines(role: &RoleView, width: u16) -> Vec<Line<'static>> {
    let Some(summary) = role.summary() else {
        return vec![Line::styled("waiting for the first records…", DIM)];
    };
    let mut lines = Vec::new();
    match &summary.counters {
        RoleCounters::Analytics {
            statuses,
            sources,
            completed,
            in_flight,
            ..
        } => {
            let numbers: Vec<u64> = Status::ALL
                .iter()
                .map(|s| statuses.get(s.as_str()).copied().unwrap_or(0))
                .collect();
            let widest = numbers.iter().map(|n| count(*n).len()).max().unwrap_or(1);
            let max = numbers.iter().copied().max().unwrap_or(0).max(1);
            let bar_room = (width as usize).saturating_sub(11 + widest + 1);
            for ((status, n), color) in Status::ALL.iter().zip(&numbers).zip(STATUS_COLORS) {
                lines.push(Line::from(vec![
                    Span::raw(format!("{:<10} {:>widest$} ", status.as_str(), count(*n))),
                    Span::styled(bar(*n, max, bar_room), Style::new().fg(color)),
                ]));
            }
            let source_text: Vec<String> = ["WEB", "MOBILE", "API"]
                .iter()
                .map(|s| format!("{s} {}", count(sources.get(s).copied().unwrap_or(0))))
                .collect();
            lines.push(Line::from(source_text.join(" · ")));
            lines.push(Line::from(format!(
                "completed {} · in flight {} · malformed {}",
                count(*completed),
                count(*in_flight),
                count(summary.malformed)
            )));
        }
        RoleCounters::OrderProcessor {
            valid,
            violations,
            violations_by_kind,
            dead_lettered,
            orders_tracked,
        } => {
            lines.push(Line::from(format!("valid steps      {}", count(*valid))));
            let kinds: Vec<String> = violations_by_kind
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            let violation_line = if kinds.is_empty() {
                format!("violations       {}", count(*violations))
            } else {
                format!(
                    "violations       {} ({})",
                    count(*violations),
                    kinds.join(", ")
                )
            };
            lines.push(Line::from(violation_line));
            lines.push(Line::from(format!(
                "malformed        {}",
                count(summary.malformed)
            )));
            lines.push(Line::from(format!(
                "dead-lettered    {}",
                count(*dead_lettered)
            )));
            lines.push(Line::from(format!(
                "orders tracked   {}",
                count(*orders_tracked)
            )));
        }
        RoleCounters::Storage {
            stored,
            already_stored,
            file,
        } => {
            lines.push(Line::from(format!("lines stored      {}", count(*stored))));
            lines.push(Line::from(format!(
                "already in file   {}",
                count(*already_stored)
            )));
            lines.push(Line::from(format!(
                "malformed kept    {}",
                count(summary.malformed)
            )));
            lines.push(Line::from(format!("file {file}")));
        }
        RoleCounters::Custom { counters } => {
            let widest = counters
                .iter()
                .map(|(name, _)| name.len())
                .max()
                .unwrap_or(0)
                .max("malformed".len());
            for (name, n) in counters {
                lines.push(Line::from(format!("{name:<widest$}  {}", count(*n))));
            }
            lines.push(Line::from(format!(
                "{:<widest$}  {}",
                "malformed",
                count(summary.malformed)
            )));
        }
    }
    lines
}

/// The rows the recent problems and notices take wrapped in a panel `width` columns wide
/// (borders included): at least 1, at most `max`.
pub(super) fn recent_rows(role: &RoleView, width: u16, max: u16) -> u16 {
    let rows = Paragraph::new(recent_lines(role))
        .wrap(Wrap { trim: true })
        .line_count(width.saturating_sub(2).max(1));
    (rows as u16).clamp(1, max)
}

/// The latest problems (malformed records, violations) and notices of a role, newest first.
fn recent_lines(role: &RoleView) -> Vec<Line<'static>> {
    let problems = role
        .problems()
        .iter()
        .rev()
        .map(|p| Line::styled(names::units_kept(p), Style::new().fg(Color::Red)));
    let notices = role
        .notices()
        .iter()
        .rev()
        .map(|n| Line::styled(names::units_kept(n), DIM));
    let mut lines: Vec<Line> = problems.chain(notices).collect();
    if lines.is_empty() {
        lines.push(Line::styled("no malformed records, no notices", DIM));
    }
    lines
}

/// The recent problems and notices, newest first; what does not fit is the oldest.
pub(super) fn recent_panel(role: &RoleView, area: Rect, buf: &mut Buffer) {
    Paragraph::new(recent_lines(role))
        .wrap(Wrap { trim: true })
        .block(panel("recent problems and notices"))
        .render(area, buf);
}

/// A few short lines for a demo panel `width` columns wide; the records and their rate
/// share a row where they fit, and take two where not.
pub(super) fn compact_lines(role: &RoleView, width: u16) -> Vec<Line<'static>> {
    let Some(summary) = role.summary() else {
        return vec![Line::styled("starting…", DIM)];
    };
    let records = [
        format!("{} records", count(summary.records)),
        human::rate(summary.events_per_s),
    ];
    let mut lines: Vec<Line> = pack("", &records, "", usize::from(width))
        .into_iter()
        .map(Line::from)
        .collect();
    match &summary.counters {
        RoleCounters::Analytics {
            completed,
            in_flight,
            payments,
            ..
        } => {
            lines.push(Line::from(format!("completed {}", count(*completed))));
            lines.push(Line::from(format!("in flight {}", count(*in_flight))));
            for (decision, n) in payments {
                lines.push(Line::from(format!("payments {decision} {}", count(*n))));
            }
        }
        RoleCounters::OrderProcessor {
            violations,
            dead_lettered,
            ..
        } => {
            lines.push(Line::from(format!("violations {}", count(*violations))));
            lines.push(Line::from(format!(
                "dead-lettered {}",
                count(*dead_lettered)
            )));
        }
        RoleCounters::Storage { stored, .. } => {
            lines.push(Line::from(format!("stored {}", count(*stored))));
            lines.push(Line::from(format!(
                "malformed {}",
                count(summary.malformed)
            )));
        }
        // The first two: a demo panel has room for little more.
        RoleCounters::Custom { counters } => {
            for (name, n) in counters.iter().take(2) {
                lines.push(Line::from(format!("{name} {}", count(*n))));
            }
        }
    }
    if role.paused() {
        lines.push(Line::styled("⏸ paused", Style::new().fg(Color::Yellow)));
    }
    lines
}

/// A horizontal bar of `value` out of `max` in `room` cells, with eighth-cell precision.
fn bar(value: u64, max: u64, room: usize) -> String {
    const PARTIAL: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    if room == 0 || max == 0 {
        return String::new();
    }
    let eighths = (value as u128 * room as u128 * 8 / max as u128) as usize;
    let mut out = "█".repeat(eighths / 8);
    out.push_str(PARTIAL[eighths % 8]);
    out
}

pub(super) fn throughput(role: &RoleView, area: Rect, buf: &mut Buffer) {
    throughput_with(role, area, buf, Line::default());
}

/// The throughput panel with `bottom` on its lower edge.
pub(super) fn throughput_with(role: &RoleView, area: Rect, buf: &mut Buffer, bottom: Line) {
    let data: Vec<u64> = role.rates().iter().map(|r| r.round() as u64).collect();
    let now = role.rates().back().copied().unwrap_or(0.0);
    let peak = data.iter().copied().max().unwrap_or(0);
    let title = format!(
        "events/s, last minute · now {} · peak {}",
        human::decimal(now),
        count(peak)
    );
    Sparkline::default()
        .data(&data)
        .max(peak.max(1))
        .style(Style::new().fg(Color::Green))
        .block(panel(&title).title_bottom(bottom))
        .render(area, buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_with_eighths() {
        assert_eq!(bar(8, 8, 2), "██");
        assert_eq!(bar(1, 16, 2), "▏");
        assert_eq!(bar(0, 8, 2), "");
        assert_eq!(bar(5, 0, 2), "");
        assert_eq!(bar(5, 5, 0), "");
    }
}
