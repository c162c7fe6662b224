//! The help overlay: what each panel shows and what the keys do.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Widget, Wrap};

use super::{ACCENT, panel};
use crate::dashboard::state::Dashboard;

impl Dashboard {
    pub(super) fn help_overlay(&self, area: Rect, buf: &mut Buffer) {
        let lines = vec![
            Line::from("Counters: what this member read — events per status (bars) and source,"),
            Line::from("   completed (DELIVERED) and in-flight orders, malformed records."),
            Line::from("Throughput: events per second this member read, over the last minute."),
            Line::from("This member: partitions, committed offset, log end, lag; latency: how"),
            Line::from("   old the last second's records were when handled (lag in time)."),
            Line::from("Groups: every group reading the topic, its members, what each owns, lag."),
            Line::from("Rebalances: members joining and leaving, partitions moving, time unowned."),
            Line::from("Status line: the broker, topic, group, member and the connection."),
            Line::from(""),
            Line::from(vec![
                Span::styled("p ", Style::new().bold()),
                Span::raw("pause/resume: the member keeps its partitions; watch the lag grow"),
            ]),
            Line::from(vec![
                Span::styled("q ", Style::new().bold()),
                Span::raw("quit: commit, leave the group, restore the terminal"),
            ]),
            Line::from(vec![
                Span::styled("? ", Style::new().bold()),
                Span::raw("close this help"),
            ]),
        ];
        let width = (lines.iter().map(Line::width).max().unwrap_or(0) as u16 + 4).min(area.width);
        let height = (lines.len() as u16 + 2).min(area.height);
        let popup = area.centered(Constraint::Length(width), Constraint::Length(height));
        Clear.render(popup, buf);
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(panel("help").border_style(ACCENT))
            .render(popup, buf);
    }
}
