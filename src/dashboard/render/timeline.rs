//! The rebalance timeline, newest first.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::{DIM, panel};
use crate::dashboard::state::Dashboard;
use crate::report::human;

impl Dashboard {
    /// How many rows the timeline wants: its entries, at least 3, at most `max`.
    pub(super) fn timeline_rows(&self, max: usize) -> u16 {
        self.timeline().len().clamp(3, max) as u16
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
        Paragraph::new(lines)
            .block(panel("rebalances, newest first"))
            .render(area, buf);
    }
}
