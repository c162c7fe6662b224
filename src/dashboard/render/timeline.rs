//! The rebalance timeline, newest first.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use super::{DIM, panel};
use crate::dashboard::state::Dashboard;
use crate::report::human;

impl Dashboard {
    /// How many rows the timeline wants in a panel `width` columns wide: its entries as
    /// wrapped (about: the wrap breaks between words), at least 3, at most `max`.
    pub(super) fn timeline_rows(&self, max: usize, width: u16) -> u16 {
        let inner = usize::from(width.saturating_sub(2)).max(1);
        let rows: usize = self
            .timeline()
            .iter()
            .rev()
            .map(|entry| {
                // "HH:MM:SS group text"
                let chars = 9 + entry.group.chars().count() + 1 + entry.text.chars().count();
                chars.div_ceil(inner)
            })
            .sum();
        rows.clamp(3, max) as u16
    }
    pub(super) fn timeline_panel(&self, area: Rect, buf: &mut Buffer) {
        let visible = area.height.saturating_sub(2) as usize;
        let lines: Vec<Line> = if self.timeline().is_empty() {
            vec![Line::styled(
                "no rebalance yet: start or stop a member anywhere to see one",
                DIM,
            )]
        } else {
            self.timeline()
                .iter()
                .rev()
                .take(visible)
                .map(|entry| {
                    Line::from(vec![
                        Span::styled(
                            entry
                                .at
                                .with_timezone(self.zone())
                                .format("%H:%M:%S ")
                                .to_string(),
                            DIM,
                        ),
                        Span::styled(
                            format!("{} ", human::printable(&entry.group)),
                            Style::new().bold(),
                        ),
                        Span::raw(human::without_hidden(&entry.text)),
                    ])
                })
                .collect()
        };
        // Entries wrap between words rather than lose their end at the panel's edge (a
        // departure says in words what happened, and that takes room); what no longer fits
        // is the oldest, at the bottom.
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(panel("rebalances, newest first"))
            .render(area, buf);
    }
}
