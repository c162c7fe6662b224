//! The groups table: every group reading the topic, its members, what each owns, its lag
//! and protocol. Every name in it comes from the cluster or from announcements anyone may
//! write, so each is printed harmless.

use std::collections::BTreeSet;

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table, Widget};

use super::member::COMMITS_HELD;
use super::{DIM, HELD, count, panel};
use crate::dashboard::names;
use crate::dashboard::state::Dashboard;
use crate::report::group_view::{GroupState, GroupView, Member, MembershipSource};

/// A group view older than this is not the cluster now: the watch rebuilds it every second,
/// and a round takes a few seconds at most while the cluster answers.
const STALE: std::time::Duration = std::time::Duration::from_secs(5);

/// What the groups table keeps first when it has fewer rows than lines: the lower, the later
/// it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    /// A member of this process: the row the viewer looks for.
    Here,
    /// A group's first line, so that every group shown keeps its name.
    First,
    /// Partitions without an owner.
    Unowned,
    /// Another member, or a group's "… N more members".
    Member,
    /// A group's total lag.
    Total,
}

/// One line of the groups table, before the table's group and protocol columns.
struct TableLine {
    /// Which group of the view it belongs to.
    group: usize,
    rank: Rank,
    /// Member, partitions, lag.
    cells: [Span<'static>; 3],
}

/// The protocol and assignor of `group` in `width` columns, on its first row; while it
/// rebalances, why its lag climbs on partitions that do not move.
fn protocol_cell(group: &GroupState, width: usize) -> Span<'static> {
    if group.rebalancing {
        let label = if COMMITS_HELD.chars().count() <= width {
            COMMITS_HELD
        } else {
            "commits held"
        };
        return Span::styled(label, HELD);
    }
    let label = match (group.protocol_label(), group.protocol) {
        (Some(label), _) if label.chars().count() <= width => label,
        (_, Some(protocol)) => protocol.to_string(),
        (_, None) => String::new(),
    };
    Span::styled(label, DIM)
}

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

    /// The fewest rows the groups table may be given (without header and borders): this
    /// process's own members and the line saying what is left out. The timeline yields rows
    /// before the table goes below this.
    pub(super) fn group_rows_essential(&self) -> u16 {
        let Some(view) = self.groups() else {
            return 1;
        };
        let here = self.local_members();
        let own = view
            .groups
            .iter()
            .flat_map(|g| &g.members)
            .filter(|m| here.contains(m.id.as_str()))
            .count();
        (own as u16 + 1).min(self.group_rows()).max(1)
    }

    /// The table's title, and when the watch has not refreshed it for a while (it cannot
    /// reach the cluster), as of when it is: members, owners and lag may all have changed.
    fn groups_title(&self, view: &GroupView) -> String {
        let title = format!("groups reading {}", self.topic());
        let age = (self.now() - view.at).to_std().unwrap_or_default();
        if age < STALE {
            return title;
        }
        let when = view.at.with_timezone(self.zone()).format("%H:%M:%S");
        format!("{title} · last known at {when}")
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
        // Each group's lines (member, partitions, lag), ranked by what the table keeps when
        // it has fewer rows than lines: this process's own members, then each group's first
        // line, unowned partitions, the other members, and totals last.
        let mut lines: Vec<TableLine> = Vec::new();
        for (index, group) in view.groups.iter().enumerate() {
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
            let first = lines.len();
            for member in &group.members {
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
                let rank = if here.contains(member.id.as_str()) {
                    Rank::Here
                } else {
                    Rank::Member
                };
                lines.push(TableLine {
                    group: index,
                    rank,
                    cells: [
                        Span::raw(member_name(member)),
                        Span::raw(owns),
                        Span::styled(count(lag_of(&member.owns) as u64), lag_style),
                    ],
                });
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
                lines.push(TableLine {
                    group: index,
                    rank: Rank::Unowned,
                    cells: [
                        Span::styled(label, DIM),
                        Span::raw(
                            unowned
                                .iter()
                                .map(|p| format!("p{p}"))
                                .collect::<Vec<_>>()
                                .join(" "),
                        ),
                        Span::raw(count(lag_of(&unowned) as u64)),
                    ],
                });
            }
            if group.more_members > 0 {
                lines.push(TableLine {
                    group: index,
                    rank: Rank::Member,
                    cells: [
                        Span::styled(
                            format!("… {} more members", count(group.more_members as u64)),
                            DIM,
                        ),
                        Span::raw(""),
                        Span::raw(""),
                    ],
                });
            }
            if group.members.len() + usize::from(!unowned.is_empty()) > 1 {
                lines.push(TableLine {
                    group: index,
                    rank: Rank::Total,
                    cells: [
                        Span::styled("total", DIM),
                        Span::raw(""),
                        Span::styled(count(total as u64), DIM),
                    ],
                });
            }
            if let Some(line) = lines.get_mut(first) {
                line.rank = line.rank.min(Rank::First);
            }
        }
        // Rows for lines: the panel's height less its borders and header.
        let room = usize::from(area.height.saturating_sub(3));
        let wanted = lines.len() + usize::from(view.more_groups > 0);
        let kept = if wanted <= room {
            vec![true; lines.len()]
        } else {
            // One row says what is left out.
            let mut order: Vec<usize> = (0..lines.len()).collect();
            order.sort_by_key(|&i| (lines[i].rank, i));
            let mut kept = vec![false; lines.len()];
            for &i in order.iter().take(room.saturating_sub(1)) {
                kept[i] = true;
            }
            kept
        };
        let mut rows = Vec::new();
        let mut named = BTreeSet::new();
        for (line, _) in lines.iter().zip(&kept).filter(|(_, k)| **k) {
            let group = &view.groups[line.group];
            let [member, owns, lag] = line.cells.clone();
            // The group's name and protocol go on its first row shown.
            let (group_cell, protocol) = if named.insert(line.group) {
                (
                    Span::styled(
                        names::fitted(&group.group, usize::from(widths[0])),
                        Style::new().bold(),
                    ),
                    protocol_cell(group, protocol_width),
                )
            } else {
                (Span::raw(""), Span::raw(""))
            };
            rows.push(Row::new(vec![group_cell, member, owns, lag, protocol]));
        }
        let hidden_rows = kept.iter().filter(|k| !**k).count();
        let hidden_groups = view.groups.len() - named.len() + view.more_groups;
        // What is left out, on the table's last row, across its columns.
        let mut left_out = None;
        if hidden_rows > 0 {
            let mut parts = Vec::new();
            if hidden_groups > 0 {
                parts.push(format!("{} more groups", count(hidden_groups as u64)));
            }
            let member_rows = hidden_rows
                - lines
                    .iter()
                    .zip(&kept)
                    .filter(|(l, k)| !**k && !named.contains(&l.group))
                    .count();
            if member_rows > 0 {
                parts.push(format!("{} more rows", count(member_rows as u64)));
            }
            left_out = Some(format!(
                "… {} not shown (a taller terminal shows them)",
                parts.join(", ")
            ));
        } else if view.more_groups > 0 {
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
            panel(&self.groups_title(view)).title_bottom(Line::styled(format!(" {source} "), DIM)),
        );
        Widget::render(table, area, buf);
        if let Some(text) = left_out
            && area.height > 3
            && area.width > 2
        {
            let row = Rect::new(area.x + 1, area.y + area.height - 2, area.width - 2, 1);
            let text = names::fitted(&text, usize::from(row.width));
            Line::styled(text, DIM).render(row, buf);
        }
    }
}
