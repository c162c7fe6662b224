//! The rebalance timeline, newest first.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use super::{DIM, panel};
use crate::dashboard::names;
use crate::dashboard::state::Dashboard;

impl Dashboard {
    /// How many rows the timeline wants in a panel `width` columns wide: its entries as
    /// wrapped, at least 3, at most `max`.
    pub(super) fn timeline_rows(&self, max: usize, width: u16) -> u16 {
        let rows: usize = self
            .timeline_lines()
            .into_iter()
            .map(|line| rows_of(line, width))
            .sum();
        rows.clamp(3, max.max(3)) as u16
    }

    /// The timeline's height (borders included) in a panel `width` columns wide, given
    /// `spare` rows left by the panels beside it: the rows it wants (at most `max`) where
    /// they are spare, and always the rows its newest entry takes (up to `max`), so that
    /// entry is read whole at any size.
    pub(super) fn timeline_height(&self, spare: u16, max: usize, width: u16) -> u16 {
        let want = self.timeline_rows(max, width) + 2;
        let newest = self
            .timeline_lines()
            .into_iter()
            .next()
            .map_or(1, |line| rows_of(line, width))
            .min(max) as u16;
        want.min(spare).max(newest + 2)
    }

    /// The timeline's entries, newest first, one line each before wrapping.
    fn timeline_lines(&self) -> Vec<Line<'static>> {
        if self.timeline().is_empty() {
            return vec![Line::styled(
                "no rebalance yet: start or stop a member anywhere to see one",
                DIM,
            )];
        }
        self.timeline()
            .iter()
            .rev()
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
                        format!("{} ", names::fitted(&entry.group, names::GROUP_COLUMNS)),
                        Style::new().bold(),
                    ),
                    Span::raw(names::units_kept(&names::harmless(&entry.text))),
                ])
            })
            .collect()
    }

    pub(super) fn timeline_panel(&self, area: Rect, buf: &mut Buffer) {
        let visible = area.height.saturating_sub(2) as usize;
        let lines: Vec<Line> = self.timeline_lines().into_iter().take(visible).collect();
        // Entries wrap between words rather than lose their end at the panel's edge (a
        // departure says in words what happened, and that takes room); what no longer fits
        // is the oldest, at the bottom.
        Paragraph::new(lines)
            .wrap(Wrap { trim: true })
            .block(panel("rebalances, newest first"))
            .render(area, buf);
    }
}

/// The rows `line` takes wrapped in a panel `width` columns wide (borders included), as
/// the panel's own wrap breaks it.
fn rows_of(line: Line<'static>, width: u16) -> usize {
    Paragraph::new(line)
        .wrap(Wrap { trim: true })
        .line_count(width.saturating_sub(2).max(1))
}
