//! The groups table: every group reading the topic, its members, what each owns, its lag
//! and protocol. Every name in it comes from the cluster or from announcements anyone may
//! write, so each is printed harmless.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table, Widget};

use super::member::COMMITS_HELD;
use super::{DIM, HELD, count, panel};
use crate::dashboard::names;
use crate::dashboard::state::Dashboard;
use crate::report::group_view::{Member, MembershipSource};

impl Dashboard {
    /// How many rows the groups table needs (without header and borders).
    pub(super) fn group_rows(&self) -> u16 {
        let Some(view) = self.groups() else {
            return 1;
        };
        let rows: usize = view
            .groups
            .iter()
            .map(|g| {
                let unowned = g.partitions.iter().any(|p| p.owner.is_none());
                let rows = g.members.len() + usize::from(unowned);
                rows + usize::from(rows > 1)
            })
            .sum();
        rows.max(1) as u16
    }

    pub(super) fn groups_panel(&self, area: Rect, buf: &mut Buffer) {
        let Some(view) = self.groups() else {
            Paragraph::new(Line::styled("asking the cluster about its groups…", DIM))
                .block(panel(&format!("groups reading {}", self.topic())))
                .render(area, buf);
            return;
        };
        let here = self.local_members();
        // Every name here comes from the cluster or from announcements anyone may write.
        let member_name = |member: &Member| {
            let mut name = names::member(&member.id);
            if here.contains(member.id.as_str()) {
                name.push_str(" (here)");
            }
            if member.paused {
                name.push_str(" ⏸");
            }
            name
        };
        // The member column is as wide as its longest name; the protocol column gets what
        // is left, and shows the assignor only where it fits whole.
        let member_width = view
            .groups
            .iter()
            .flat_map(|g| &g.members)
            .map(|m| names::width(&member_name(m)))
            .max()
            .unwrap_or(0)
            .max(14) as u16;
        let widths = [16, member_width, 10, 7];
        let used: u16 = widths.iter().sum::<u16>() + widths.len() as u16 + 2;
        let protocol_width = usize::from(area.width.saturating_sub(used));
        let mut rows = Vec::new();
        for group in &view.groups {
            let lag_of = |partitions: &[i32]| -> i64 {
                group
                    .partitions
                    .iter()
                    .filter(|p| partitions.contains(&p.partition))
                    .map(|p| p.lag(view.low.get(&p.partition).copied().unwrap_or(0)))
                    .sum()
            };
            let total = group.total_lag(&view.low);
            let lag_style = if group.rebalancing {
                HELD
            } else {
                Style::new()
            };
            let mut first = true;
            let group_cell = |first: &mut bool| {
                if *first {
                    Span::styled(
                        names::fitted(&group.group, usize::from(widths[0])),
                        Style::new().bold(),
                    )
                } else {
                    Span::raw("")
                }
            };
            // The protocol and assignor, on the group's first row only.
            let protocol_cell = |first: &mut bool| {
                if std::mem::take(first) {
                    if group.rebalancing {
                        // Why its lag climbs on partitions that do not move.
                        let label = if COMMITS_HELD.chars().count() <= protocol_width {
                            COMMITS_HELD
                        } else {
                            "commits held"
                        };
                        return Span::styled(label, HELD);
                    }
                    let label = match (group.protocol_label(), group.protocol) {
                        (Some(label), _) if label.chars().count() <= protocol_width => label,
                        (_, Some(protocol)) => protocol.to_string(),
                        (_, None) => String::new(),
                    };
                    Span::styled(label, DIM)
                } else {
                    Span::raw("")
                }
            };
            for member in &group.members {
                let name = member_name(member);
                let owns = if member.owns.is_empty() {
                    "–".to_owned()
                } else {
                    member
                        .owns
                        .iter()
                        .map(|p| format!("p{p}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                rows.push(Row::new(vec![
                    group_cell(&mut first),
                    Span::raw(name),
                    Span::raw(owns),
                    Span::styled(count(lag_of(&member.owns) as u64), lag_style),
                    protocol_cell(&mut first),
                ]));
            }
            let unowned: Vec<i32> = group
                .partitions
                .iter()
                .filter(|p| p.owner.is_none())
                .map(|p| p.partition)
                .collect();
            if !unowned.is_empty() {
                let label = if group.members.is_empty() {
                    "no members"
                } else {
                    "no owner"
                };
                rows.push(Row::new(vec![
                    group_cell(&mut first),
                    Span::styled(label, DIM),
                    Span::raw(
                        unowned
                            .iter()
                            .map(|p| format!("p{p}"))
                            .collect::<Vec<_>>()
                            .join(" "),
                    ),
                    Span::raw(count(lag_of(&unowned) as u64)),
                    protocol_cell(&mut first),
                ]));
            }
            if group.more_members > 0 {
                rows.push(Row::new(vec![
                    group_cell(&mut first),
                    Span::styled(
                        format!("… {} more members", count(group.more_members as u64)),
                        DIM,
                    ),
                    Span::raw(""),
                    Span::raw(""),
                    protocol_cell(&mut first),
                ]));
            }
            if group.members.len() + usize::from(!unowned.is_empty()) > 1 {
                rows.push(Row::new(vec![
                    Span::raw(""),
                    Span::styled("total", DIM),
                    Span::raw(""),
                    Span::styled(count(total as u64), DIM),
                ]));
            }
        }
        if view.more_groups > 0 {
            rows.push(Row::new(vec![
                Span::styled(format!("… {} more", count(view.more_groups as u64)), DIM),
                Span::styled("groups not shown", DIM),
            ]));
        }
        let source = match view.membership {
            MembershipSource::Cluster if view.groups.iter().any(|g| g.announced_members) => {
                // Short enough for a half-width panel.
                "members: as the cluster describes them; in KIP-848 groups, as announced"
            }
            MembershipSource::Cluster => "members: as the cluster describes them",
            MembershipSource::Announcements => {
                "members as they announce themselves (this broker cannot describe groups)"
            }
            // Not "cannot": no answer is not a refusal.
            MembershipSource::Waiting => {
                "members as they announce themselves (waiting for the first description)"
            }
            MembershipSource::Unanswered => {
                "members as they announce themselves (the last description went unanswered)"
            }
        };
        let table = Table::new(
            rows,
            [
                Constraint::Length(widths[0]),
                Constraint::Length(widths[1]),
                Constraint::Length(widths[2]),
                Constraint::Length(widths[3]),
                Constraint::Fill(1),
            ],
        )
        .header(Row::new(vec!["group", "member", "partitions", "lag", "protocol"]).style(DIM))
        .block(
            panel(&format!("groups reading {}", self.topic()))
                .title_bottom(Line::styled(format!(" {source} "), DIM)),
        );
        Widget::render(table, area, buf);
    }
}
