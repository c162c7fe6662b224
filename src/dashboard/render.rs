//! Drawing the live view: `impl Widget for &Dashboard`. Pure: the same state gives the same
//! frame, which is what the snapshot tests rely on. Layouts adapt to the terminal: two
//! columns from 110 columns, stacked panels below, a compact summary under 60×14; nothing
//! may panic or overlap down to 40×10.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Row, Sparkline, Table, Widget, Wrap};

use super::state::{Dashboard, RoleView, short_member};
use crate::domain::event::Status;
use crate::report::activity::{Connection, RoleCounters};
use crate::report::group_view::MembershipSource;
use crate::report::human;

const DIM: Style = Style::new().fg(Color::DarkGray);
const ACCENT: Style = Style::new().fg(Color::Cyan);
const STATUS_COLORS: [Color; 4] = [Color::Blue, Color::Cyan, Color::Yellow, Color::Green];

impl Widget for &Dashboard {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.height < 3 || area.width < 20 {
            Paragraph::new("orderflow: enlarge the terminal").render(area, buf);
            return;
        }
        let [top, body, bottom] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(0),
            Constraint::Length(1),
        ])
        .areas(area);
        self.status_line(top, buf);
        self.key_line(bottom, buf);
        if self.is_demo() {
            self.demo_body(body, buf);
        } else {
            self.single_body(body, buf);
        }
        if self.help_shown() {
            self.help_overlay(area, buf);
        }
    }
}

fn panel(title: &str) -> Block<'static> {
    Block::bordered().border_style(DIM).title(Span::styled(
        format!(" {title} "),
        ACCENT.add_modifier(Modifier::BOLD),
    ))
}

fn count(n: u64) -> String {
    human::count(n)
}

fn connection_span(connection: &Connection) -> Span<'static> {
    match connection {
        Connection::Ok => Span::styled("● connected", Style::new().fg(Color::Green)),
        Connection::Unreachable { .. } => {
            Span::styled("● broker unreachable", Style::new().fg(Color::Red))
        }
        Connection::Refused { .. } => Span::styled("● refused", Style::new().fg(Color::Red)),
        Connection::Fatal { .. } => Span::styled("● failed", Style::new().fg(Color::Red)),
    }
}

impl Dashboard {
    fn is_demo(&self) -> bool {
        self.producer().is_some() || self.roles().len() > 1
    }

    fn status_line(&self, area: Rect, buf: &mut Buffer) {
        let sep = Span::styled(" │ ", DIM);
        let mut spans = vec![Span::styled(" orderflow ", Style::new().bold().reversed())];
        if self.is_demo() {
            spans.push(Span::raw(" demo"));
            if let Some(broker) = self.demo_broker() {
                spans.push(sep.clone());
                spans.push(Span::raw(format!(
                    "broker {broker} (other terminals: -b {broker})"
                )));
            }
        } else if let Some(role) = self.selected_role() {
            spans.push(Span::raw(format!(" {}", role.name())));
            if let Some(group) = role.group() {
                spans.push(sep.clone());
                spans.push(Span::raw(format!("group {group}")));
            }
            if let Some(member) = role.member() {
                spans.push(sep.clone());
                spans.push(Span::raw(format!("member {}", short_member(member))));
            }
        }
        spans.push(sep.clone());
        if self.demo_broker().is_some() {
            spans.push(Span::raw(format!("topic {}", self.topic())));
        } else {
            spans.push(Span::raw(format!("{} › {}", self.brokers(), self.topic())));
        }
        spans.push(sep);
        let connection = self
            .roles()
            .iter()
            .map(|r| r.connection())
            .find(|c| !c.is_ok())
            .unwrap_or(&Connection::Ok);
        spans.push(connection_span(connection));
        Paragraph::new(Line::from(spans)).render(area, buf);
    }

    fn key_line(&self, area: Rect, buf: &mut Buffer) {
        let key = |k: &'static str| Span::styled(k, Style::new().bold());
        let mut spans = vec![
            Span::raw(" "),
            key("q"),
            Span::raw(" quit  "),
            key("p"),
            Span::raw(" pause/resume  "),
            key("?"),
            Span::raw(" help"),
        ];
        if self.roles().len() > 1 {
            spans.push(Span::raw("  "));
            spans.push(key("tab"));
            spans.push(Span::raw(" next role"));
        }
        if let Some(role) = self.selected_role().filter(|r| r.paused()) {
            spans.push(Span::styled(
                format!("   ⏸ {} PAUSED: lag grows", role.name()),
                Style::new().fg(Color::Yellow).bold(),
            ));
        }
        Paragraph::new(Line::from(spans)).render(area, buf);
    }

    /// One role in this process: its counters, throughput, partitions, and the groups.
    fn single_body(&self, area: Rect, buf: &mut Buffer) {
        let Some(role) = self.selected_role() else {
            return;
        };
        if area.height < 14 || area.width < 60 {
            // Compact: the counters and who owns what, nothing else.
            let mut lines = counter_lines(role, area.width);
            lines.push(self.owned_line(role));
            Paragraph::new(lines).render(area, buf);
            return;
        }
        if area.width >= 110 {
            let [left, right] =
                Layout::horizontal([Constraint::Percentage(45), Constraint::Percentage(55)])
                    .areas(area);
            let counters = counter_lines(role, left.width.saturating_sub(2));
            let recent = (role.problems().len() + role.notices().len()).clamp(1, 8) as u16;
            let [counter_area, rate_area, recent_area] = Layout::vertical([
                Constraint::Length(counters.len() as u16 + 2),
                Constraint::Min(6),
                Constraint::Length(recent + 2),
            ])
            .areas(left);
            let [member_area, groups_area, timeline_area] = Layout::vertical([
                Constraint::Length(role.owned().len().max(1) as u16 + 3),
                Constraint::Min(self.group_rows() + 3),
                Constraint::Length(self.timeline_rows(12) + 2),
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
        // take one line instead of a table.
        let counters = counter_lines(role, area.width.saturating_sub(2));
        let roomy = area.height >= 30;
        let member_height = if roomy {
            role.owned().len().max(1) as u16 + 3
        } else {
            3
        };
        let [
            counter_area,
            rate_area,
            member_area,
            groups_area,
            timeline_area,
        ] = Layout::vertical([
            Constraint::Length(counters.len() as u16 + 2),
            Constraint::Length(3),
            Constraint::Length(member_height),
            Constraint::Min(4),
            Constraint::Length(if roomy { 6 } else { 3 }),
        ])
        .areas(area);
        Paragraph::new(counters)
            .block(panel(counters_title(role)))
            .render(counter_area, buf);
        throughput(role, rate_area, buf);
        if roomy {
            self.member_panel(role, member_area, buf);
        } else {
            Paragraph::new(self.owned_line(role))
                .block(panel("this member's partitions"))
                .render(member_area, buf);
        }
        self.groups_panel(groups_area, buf);
        self.timeline_panel(timeline_area, buf);
    }

    /// The demo: a panel per role, then the groups and the timeline.
    fn demo_body(&self, area: Rect, buf: &mut Buffer) {
        let roles_height = if area.height >= 24 { 7 } else { 6 };
        let [roles_area, middle, timeline_area] = Layout::vertical([
            Constraint::Length(roles_height),
            Constraint::Min(self.group_rows() + 3),
            Constraint::Length(self.timeline_rows(10) + 2),
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
        for (i, role) in self.roles().iter().enumerate() {
            let cell = *cells.next().expect("one cell per panel");
            let mut block = panel(role.name());
            if i == self.selected() {
                block = block.border_style(ACCENT);
            }
            let mut lines = compact_lines(role);
            lines.push(self.owned_line(role));
            Paragraph::new(lines).block(block).render(cell, buf);
        }
        if middle.width >= 100 {
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

    /// How many rows the timeline wants: its entries, at least 3, at most `max`.
    fn timeline_rows(&self, max: usize) -> u16 {
        self.timeline().len().clamp(3, max) as u16
    }

    /// How many rows the groups table needs (without header and borders).
    fn group_rows(&self) -> u16 {
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

    fn owned_line(&self, role: &RoleView) -> Line<'static> {
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

    fn member_panel(&self, role: &RoleView, area: Rect, buf: &mut Buffer) {
        // Beside the lag in records, how old the last second's records were when handled
        // (lag in time); then how long the last assignment took. Each only where it fits.
        let mut title = "this member".to_owned();
        let mut extras = Vec::new();
        if let Some(latency) = role.summary().and_then(|s| s.latency) {
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

    fn groups_panel(&self, area: Rect, buf: &mut Buffer) {
        let Some(view) = self.groups() else {
            Paragraph::new(Line::styled("asking the cluster about its groups…", DIM))
                .block(panel(&format!("groups reading {}", self.topic())))
                .render(area, buf);
            return;
        };
        let here = self.local_members();
        // Every name here comes from the cluster or from announcements anyone may write.
        let member_name = |member: &crate::report::group_view::Member| {
            let mut name = human::printable(short_member(&member.id));
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
            .map(|m| member_name(m).chars().count())
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
            let mut first = true;
            let group_cell = |first: &mut bool| {
                if *first {
                    Span::styled(human::printable(&group.group), Style::new().bold())
                } else {
                    Span::raw("")
                }
            };
            // The protocol and assignor, on the group's first row only.
            let protocol_cell = |first: &mut bool| {
                if std::mem::take(first) {
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
                    Span::raw(count(lag_of(&member.owns) as u64)),
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

    fn timeline_panel(&self, area: Rect, buf: &mut Buffer) {
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

    fn help_overlay(&self, area: Rect, buf: &mut Buffer) {
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

fn counters_title(role: &RoleView) -> &'static str {
    match role.summary().map(|s| &s.counters) {
        Some(RoleCounters::OrderProcessor { .. }) => "order lifecycles",
        Some(RoleCounters::Storage { .. }) => "audit log",
        Some(RoleCounters::Custom { .. }) => "counters",
        _ => "events by status and source",
    }
}

/// The role's counters, as full lines for a panel of `width` columns.
fn counter_lines(role: &RoleView, width: u16) -> Vec<Line<'static>> {
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

/// The latest problems (malformed records, violations) and notices of a role, newest first.
fn recent_panel(role: &RoleView, area: Rect, buf: &mut Buffer) {
    let problems = role
        .problems()
        .iter()
        .rev()
        .map(|p| Line::styled(p.clone(), Style::new().fg(Color::Red)));
    let notices = role
        .notices()
        .iter()
        .rev()
        .map(|n| Line::styled(n.clone(), DIM));
    let mut lines: Vec<Line> = problems.chain(notices).collect();
    if lines.is_empty() {
        lines.push(Line::styled("no malformed records, no notices", DIM));
    }
    Paragraph::new(lines)
        .wrap(Wrap { trim: true })
        .block(panel("recent problems and notices"))
        .render(area, buf);
}

/// A few short lines for a demo panel.
fn compact_lines(role: &RoleView) -> Vec<Line<'static>> {
    let Some(summary) = role.summary() else {
        return vec![Line::styled("starting…", DIM)];
    };
    let mut lines = vec![Line::from(format!(
        "{} records · {}",
        count(summary.records),
        human::rate(summary.events_per_s)
    ))];
    match &summary.counters {
        RoleCounters::Analytics {
            completed,
            in_flight,
            ..
        } => {
            lines.push(Line::from(format!("completed {}", count(*completed))));
            lines.push(Line::from(format!("in flight {}", count(*in_flight))));
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

fn throughput(role: &RoleView, area: Rect, buf: &mut Buffer) {
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
        .block(panel(&title))
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
