//! The body of the frame: for one role (compact, stacked or two columns, by terminal size)
//! or for the demo (a panel per role, then the groups and the timeline).

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget, Wrap};

use super::counters::{
    compact_lines, counter_lines, counters_title, recent_panel, recent_rows, throughput,
    throughput_with,
};
use super::member::COMMITS_HELD;
use super::{ACCENT, DIM, HELD, count, panel};
use crate::dashboard::state::Dashboard;
use crate::report::human;

/// From this width the demo shows the featured role's counters and throughput beside the
/// groups; narrower, the groups take the whole width (and the help leaves that panel out).
pub(super) const DEMO_FEATURE_WIDTH: u16 = 100;

impl Dashboard {
    /// One role in this process: its counters, throughput, partitions, and the groups.
    pub(super) fn single_body(&self, area: Rect, buf: &mut Buffer) {
        let Some(role) = self.selected_role() else {
            return;
        };
        if area.height < 14 || area.width < 60 {
            // Compact: the counters and who owns what, nothing else.
            let mut lines = counter_lines(role, area.width);
            lines.extend(self.owned_rows(role, area.width));
            Paragraph::new(lines)
                .wrap(Wrap { trim: true })
                .render(area, buf);
            return;
        }
        if area.width >= 110 {
            let [left, right] =
                Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)])
                    .areas(area);
            let counters = counter_lines(role, left.width.saturating_sub(2));
            // Notices say what happened in words, and that takes rows: they wrap.
            let recent = recent_rows(role, left.width, 12);
            let [counter_area, rate_area, recent_area] = Layout::vertical([
                Constraint::Length(counters.len() as u16 + 2),
                Constraint::Min(6),
                Constraint::Length(recent + 2),
            ])
            .areas(left);
            let member_height = role.owned().len().max(1) as u16 + 3;
            let spare = right
                .height
                .saturating_sub(member_height + self.group_rows() + 3);
            let [member_area, groups_area, timeline_area] = Layout::vertical([
                Constraint::Length(member_height),
                Constraint::Fill(1),
                Constraint::Length(
                    self.timeline_height(spare, 12, right.width).min(
                        right
                            .height
                            .saturating_sub(member_height + self.group_rows_essential() + 3),
                    ),
                ),
            ])
            .areas(right);
            Paragraph::new(counters)
                .block(panel(counters_title(role)))
                .render(counter_area, buf);
            throughput(role, rate_area, buf);
            recent_panel(role, recent_area, buf);
            self.member_panel(role, member_area, buf);
            self.groups_panel(groups_area, buf);
            self.timeline_panel(timeline_area, buf);
            return;
        }
        // Stacked. A terminal of 24 lines fits every panel only if this member's partitions
        // share the throughput panel (its bottom edge) instead of a table of their own.
        let counters = counter_lines(role, area.width.saturating_sub(2));
        let roomy = area.height >= 30;
        let counter_height = counters.len() as u16 + 2;
        let member_height = if roomy {
            role.owned().len().max(1) as u16 + 3
        } else {
            0
        };
        let spare = area
            .height
            .saturating_sub(counter_height + 3 + member_height + self.group_rows() + 3);
        let [
            counter_area,
            rate_area,
            member_area,
            groups_area,
            timeline_area,
        ] = Layout::vertical([
            Constraint::Length(counter_height),
            Constraint::Length(3),
            Constraint::Length(member_height),
            Constraint::Fill(1),
            Constraint::Length(
                self.timeline_height(spare, if roomy { 6 } else { 4 }, area.width)
                    .min(area.height.saturating_sub(
                        counter_height + 3 + member_height + self.group_rows_essential() + 3,
                    )),
            ),
        ])
        .areas(area);
        Paragraph::new(counters)
            .block(panel(counters_title(role)))
            .render(counter_area, buf);
        if roomy {
            throughput(role, rate_area, buf);
            self.member_panel(role, member_area, buf);
        } else {
            let label = " this member: ";
            let room = rate_area.width.saturating_sub(3 + label.len() as u16);
            let mut owned = vec![Span::styled(label, DIM)];
            let summary = self.owned_summary(role, room);
            let used = label.len() + summary.width();
            owned.extend(summary.spans);
            owned.push(Span::raw(" "));
            let held = format!("· {COMMITS_HELD} ");
            if self.commits_held(role)
                && used + 1 + held.chars().count() + 3 <= usize::from(rate_area.width)
            {
                owned.push(Span::styled(held, HELD));
            }
            throughput_with(role, rate_area, buf, Line::from(owned));
        }
        self.groups_panel(groups_area, buf);
        self.timeline_panel(timeline_area, buf);
    }

    /// The demo: a panel per role, then the groups and the timeline.
    pub(super) fn demo_body(&self, area: Rect, buf: &mut Buffer) {
        let panels = self.roles().len() as u16 + u16::from(self.producer().is_some());
        let cell_width = area.width / panels.max(1);
        let role_lines: Vec<Vec<Line>> = self
            .roles()
            .iter()
            .map(|role| {
                let mut lines = compact_lines(role, cell_width.saturating_sub(2));
                lines.extend(self.owned_rows(role, cell_width.saturating_sub(2)));
                if self.commits_held(role) {
                    // Its short form where the long one would wrap.
                    let fits = COMMITS_HELD.chars().count() + 2 <= usize::from(cell_width);
                    let words = if fits { COMMITS_HELD } else { "commits held" };
                    lines.push(Line::styled(words, HELD));
                }
                lines
            })
            .collect();
        // Each panel's lines as wrapped, so the tallest panel is read whole.
        let tallest = role_lines
            .iter()
            .map(|lines| {
                Paragraph::new(lines.clone())
                    .wrap(Wrap { trim: false })
                    .line_count(cell_width.saturating_sub(2).max(1)) as u16
            })
            .max()
            .unwrap_or(0);
        let roles_height = (tallest + 2).max(if area.height >= 24 { 7 } else { 6 });
        let spare = area
            .height
            .saturating_sub(roles_height + self.group_rows() + 3);
        let [roles_area, middle, timeline_area] = Layout::vertical([
            Constraint::Length(roles_height),
            Constraint::Fill(1),
            Constraint::Length(
                self.timeline_height(spare, 10, area.width).min(
                    area.height
                        .saturating_sub(roles_height + self.group_rows_essential() + 3),
                ),
            ),
        ])
        .areas(area);
        let mut columns = Vec::new();
        if self.producer().is_some() {
            columns.push(Constraint::Ratio(1, self.roles().len() as u32 + 1));
        }
        for _ in self.roles() {
            columns.push(Constraint::Ratio(1, self.roles().len() as u32 + 1));
        }
        let cells = Layout::horizontal(columns).split(roles_area);
        let mut cells = cells.iter();
        if let Some(stats) = self.producer() {
            let cell = *cells.next().expect("one cell per panel");
            let lines = vec![
                Line::from(format!(
                    "{} sent · {}",
                    count(stats.sent),
                    human::rate(stats.rate)
                )),
                Line::from(format!("delivered {}", count(stats.delivered))),
                Line::from(format!("failed {}", count(stats.failed))),
            ];
            Paragraph::new(lines)
                .block(panel("producer"))
                .render(cell, buf);
        }
        for (i, (role, lines)) in self.roles().iter().zip(role_lines).enumerate() {
            let cell = *cells.next().expect("one cell per panel");
            let mut block = panel(role.name());
            if i == self.selected() {
                block = block.border_style(ACCENT);
            }
            // Untrimmed: a partition list's later rows keep their indent.
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(block)
                .render(cell, buf);
        }
        if middle.width >= DEMO_FEATURE_WIDTH {
            let [left, right] =
                Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)])
                    .areas(middle);
            if let Some(role) = self.featured_role() {
                let lines = counter_lines(role, left.width.saturating_sub(2));
                let height = lines.len() as u16 + 2;
                let [counter_area, rate_area] =
                    Layout::vertical([Constraint::Length(height), Constraint::Min(0)]).areas(left);
                Paragraph::new(lines)
                    .block(panel(counters_title(role)))
                    .render(counter_area, buf);
                throughput(role, rate_area, buf);
            }
            self.groups_panel(right, buf);
        } else {
            self.groups_panel(middle, buf);
        }
        self.timeline_panel(timeline_area, buf);
    }
}
