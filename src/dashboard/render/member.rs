//! This member's partitions: committed offset, log end and lag of each, as a line or a table.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table, Widget};

use super::{DIM, count, pack, panel};
use crate::dashboard::state::{Dashboard, RoleView};
use crate::report::human;

/// Said where a group's lag grows because it is rebalancing.
pub(super) const COMMITS_HELD: &str = "commits held: rebalancing";

/// The line that stands for this member's partitions when it has none to list.
fn owned_status(role: &RoleView) -> Option<Line<'static>> {
    if role.left() {
        Some(Line::styled("left the group", DIM))
    } else if role.owned().is_empty() {
        Some(Line::styled("owns no partitions (yet)", DIM))
    } else {
        None
    }
}

/// A partition's lag in words: a count, or "past end" when the group's commit is past the
/// partition's end (the offsets below it name no record the group read).
fn lag_text(lag: i64) -> String {
    if lag < 0 {
        "past end".to_owned()
    } else {
        count(lag as u64)
    }
}

impl Dashboard {
    /// This member's partitions and their lag, in rows of at most `width` columns: one row
    /// `p0 lag 3 · p1 lag 5 · p2 lag 0` where it fits, else `lag p0 3 · p1 5` with the rest
    /// on the rows below, never a partition cut off.
    pub(super) fn owned_rows(&self, role: &RoleView, width: u16) -> Vec<Line<'static>> {
        if let Some(line) = owned_status(role) {
            return vec![line];
        }
        let lags = self.owned_lags(role);
        let full = lags
            .iter()
            .map(|(p, lag)| match lag {
                Some(lag) => format!("p{p} lag {}", lag_text(*lag)),
                None => format!("p{p}"),
            })
            .collect::<Vec<_>>()
            .join(" · ");
        if full.chars().count() <= usize::from(width) {
            return vec![Line::from(full)];
        }
        let items: Vec<String> = lags
            .iter()
            .map(|(p, lag)| match lag {
                Some(lag) => format!("p{p} {}", lag_text(*lag)),
                None => format!("p{p} –"),
            })
            .collect();
        pack("lag ", &items, "    ", usize::from(width))
            .into_iter()
            .map(Line::from)
            .collect()
    }

    /// This member's partitions in one line of at most `width` columns: each partition's
    /// lag where it fits, else how many partitions and their total lag.
    pub(super) fn owned_summary(&self, role: &RoleView, width: u16) -> Line<'static> {
        if let Some(line) = owned_status(role) {
            return line;
        }
        let rows = self.owned_rows(role, width);
        if let [row] = rows.as_slice() {
            return row.clone();
        }
        let lags = self.owned_lags(role);
        let total: i64 = lags
            .iter()
            .filter_map(|(_, lag)| *lag)
            .map(|l| l.max(0))
            .sum();
        Line::from(format!(
            "{} partitions, lag {}",
            lags.len(),
            count(total as u64)
        ))
    }

    /// Whether `role`'s group is rebalancing as the cluster describes it: its commits are
    /// held, so the lag of the partitions it keeps grows while it reads them.
    pub(super) fn commits_held(&self, role: &RoleView) -> bool {
        self.groups().is_some_and(|view| {
            view.groups
                .iter()
                .any(|g| Some(g.group.as_str()) == role.group() && g.rebalancing)
        })
    }

    /// Each owned partition with its lag where known.
    fn owned_lags(&self, role: &RoleView) -> Vec<(i32, Option<i64>)> {
        role.owned()
            .iter()
            .map(|&p| (p, role.partition(p, self.groups()).lag))
            .collect()
    }

    pub(super) fn member_panel(&self, role: &RoleView, area: Rect, buf: &mut Buffer) {
        // Beside the lag in records, how old the last second's records were when handled
        // (lag in time); then how long the last assignment took. Each only where it fits.
        let mut title = "this member".to_owned();
        let mut extras = Vec::new();
        let held = self.commits_held(role);
        if held {
            extras.push(COMMITS_HELD.to_owned());
        }
        if let Some(latency) = role.summary().and_then(|s| s.latency.as_ref()) {
            extras.push(format!(
                "latency p50 {} ms, p99 {} ms",
                human::decimal(latency.p50_ms),
                human::decimal(latency.p99_ms)
            ));
        }
        if let Some((_, waited)) = role.last_assignment().filter(|(_, w)| !w.is_zero()) {
            extras.push(format!(
                "got its partitions after {}",
                human::duration(waited)
            ));
        }
        for extra in extras {
            if title.chars().count() + extra.chars().count() + 7 <= usize::from(area.width) {
                title = format!("{title} · {extra}");
            }
        }
        if role.owned().is_empty() {
            Paragraph::new(self.owned_rows(role, area.width.saturating_sub(2)))
                .block(panel(&title))
                .render(area, buf);
            return;
        }
        let rows: Vec<Row> = role
            .owned()
            .iter()
            .map(|&p| {
                let row = role.partition(p, self.groups());
                let lag = row.lag.map_or("–".to_owned(), lag_text);
                let lag_style = match row.lag {
                    Some(l) if l < 0 => Style::new().fg(Color::Red),
                    _ if held => Style::new().fg(Color::Yellow),
                    Some(l) if l > 100 => Style::new().fg(Color::Yellow),
                    _ => Style::new(),
                };
                Row::new(vec![
                    Span::raw(format!("p{p}")),
                    Span::raw(row.committed.map_or("–".to_owned(), |c| count(c as u64))),
                    Span::raw(row.end.map_or("–".to_owned(), |e| count(e as u64))),
                    Span::styled(lag, lag_style),
                ])
            })
            .collect();
        let table = Table::new(
            rows,
            [
                Constraint::Length(10),
                Constraint::Length(12),
                Constraint::Length(12),
                Constraint::Min(6),
            ],
        )
        .header(Row::new(vec!["partition", "committed", "end", "lag"]).style(DIM))
        .block(panel(&title));
        Widget::render(table, area, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::lag_text;

    #[test]
    fn a_commit_past_the_end_is_said_not_shown_as_lag_0() {
        assert_eq!(lag_text(1_234), "1,234");
        assert_eq!(lag_text(0), "0");
        assert_eq!(lag_text(-249), "past end");
    }
}
