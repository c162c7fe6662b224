//! This member's partitions: committed offset, log end and lag of each, as a line or a table.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table, Widget};

use super::{DIM, count, panel};
use crate::dashboard::state::{Dashboard, RoleView};
use crate::report::human;

impl Dashboard {
    pub(super) fn owned_line(&self, role: &RoleView) -> Line<'static> {
        if role.left() {
            return Line::styled("left the group", DIM);
        }
        if role.owned().is_empty() {
            return Line::styled("owns no partitions (yet)", DIM);
        }
        let parts: Vec<String> = role
            .owned()
            .iter()
            .map(|&p| {
                let row = role.partition(p, self.groups());
                match row.lag {
                    Some(lag) => format!("p{p} lag {}", count(lag as u64)),
                    None => format!("p{p}"),
                }
            })
            .collect();
        Line::from(parts.join(" · "))
    }

    pub(super) fn member_panel(&self, role: &RoleView, area: Rect, buf: &mut Buffer) {
        // Beside the lag in records, how old the last second's records were when handled
        // (lag in time); then how long the last assignment took. Each only where it fits.
        let mut title = "this member".to_owned();
        let mut extras = Vec::new();
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
            Paragraph::new(self.owned_line(role))
                .block(panel(&title))
                .render(area, buf);
            return;
        }
        let rows: Vec<Row> = role
            .owned()
            .iter()
            .map(|&p| {
                let row = role.partition(p, self.groups());
                let lag = row.lag.map_or("–".to_owned(), |l| count(l as u64));
                let lag_style = match row.lag {
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
