//! Drawing the live view: `impl Widget for &Dashboard`. Pure: the same state gives the same
//! frame, which is what the snapshot tests rely on. Layouts adapt to the terminal: two
//! columns from 110 columns, stacked panels below, a compact summary under 60×14; nothing
//! may panic or overlap down to 40×10.
//!
//! This file draws the frame's outline (status line, key line) and picks the body's layout;
//! each panel has a file of its own:
//! - [`layouts`]: the body, for one role or the demo, at each terminal size;
//! - [`counters`]: a role's counters, throughput and recent problems;
//! - [`member`]: this member's partitions;
//! - [`groups`]: the groups reading the topic;
//! - [`timeline`]: the rebalance timeline;
//! - [`help`]: the help overlay.

mod counters;
mod groups;
mod help;
mod layouts;
mod member;
mod timeline;

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Widget};

use super::keys::{self, Action};
use super::names;
use super::state::Dashboard;
use crate::report::activity::Connection;
use crate::report::human;

/// Borders, labels and anything secondary.
const DIM: Style = Style::new().fg(Color::DarkGray);
/// What a rebalance holds back: commits, so lag grows.
const HELD: Style = Style::new().fg(Color::Yellow);
/// Panel titles and the selected role's panel.
const ACCENT: Style = Style::new().fg(Color::Cyan);

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

/// A bordered panel with its title.
fn panel(title: &str) -> Block<'static> {
    Block::bordered().border_style(DIM).title(Span::styled(
        format!(" {title} "),
        ACCENT.add_modifier(Modifier::BOLD),
    ))
}

/// `items` joined by ` · ` in rows of at most `width` columns, broken only between items:
/// the first row starts with `first`, the others with `indent`. An item wider than a row
/// has a row of its own (the panel's wrap breaks it between words).
fn pack(first: &str, items: &[String], indent: &str, width: usize) -> Vec<String> {
    let mut rows = Vec::new();
    let mut row = first.to_owned();
    let mut row_has_item = false;
    for item in items {
        let needed = if row_has_item { 3 } else { 0 } + item.chars().count();
        if row_has_item && row.chars().count() + needed > width {
            rows.push(std::mem::replace(&mut row, indent.to_owned()));
            row_has_item = false;
        }
        if row_has_item {
            row.push_str(" · ");
        }
        row.push_str(item);
        row_has_item = true;
    }
    rows.push(row);
    rows
}

/// A count with thousands separators.
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
    /// Whether this is the demo: a producer or several roles in this process.
    fn is_demo(&self) -> bool {
        self.producer().is_some() || self.roles().len() > 1
    }

    /// The top line: what runs, where, and the connection. Where the terminal is too narrow
    /// for all of it, the least needed parts shorten or go first (the demo's hint for other
    /// terminals, the member, the group, the broker's address); the connection stays.
    fn status_line(&self, area: Rect, buf: &mut Buffer) {
        // Each part's forms, the fullest first; `steps` says which part gives way next, to
        // its next form (a part with one form goes).
        let mut parts: Vec<Vec<String>> = Vec::new();
        let mut steps = Vec::new();
        let mut group_step = None;
        if self.is_demo() {
            if let Some(broker) = self.demo_broker() {
                steps.push(parts.len());
                parts.push(vec![
                    format!("broker {broker} (other terminals: -b {broker})"),
                    format!("broker {broker}"),
                ]);
            }
        } else if let Some(role) = self.selected_role() {
            group_step = Some(parts.len());
            let member = parts.len() + 1;
            parts.push(
                role.group()
                    .map(|g| format!("group {}", names::harmless(&human::printable(g))))
                    .into_iter()
                    .collect(),
            );
            parts.push(
                role.member()
                    .map(|m| format!("member {}", names::member(m)))
                    .into_iter()
                    .collect(),
            );
            steps.push(member);
        }
        let topic_step = parts.len();
        if self.demo_broker().is_some() {
            parts.push(vec![format!("topic {}", self.topic())]);
        } else {
            steps.push(topic_step);
            parts.push(vec![
                format!("{} › {}", self.brokers(), self.topic()),
                format!("topic {}", self.topic()),
            ]);
        }
        // The group goes late: it says what this member shares its partitions with. In a
        // very narrow terminal the topic goes, then the demo's broker.
        steps.extend(group_step);
        steps.push(topic_step);
        if self.is_demo() && self.demo_broker().is_some() {
            steps.push(0);
        }
        let what = if self.is_demo() {
            " demo".to_owned()
        } else {
            self.selected_role()
                .map_or(String::new(), |role| format!(" {}", role.name()))
        };
        let connection = connection_span(
            self.roles()
                .iter()
                .map(|r| r.connection())
                .find(|c| !c.is_ok())
                .unwrap_or(&Connection::Ok),
        );
        let fixed = " orderflow ".chars().count() + what.chars().count() + 3 + connection.width();
        let used = |parts: &[Vec<String>]| -> usize {
            parts
                .iter()
                .filter_map(|forms| forms.first())
                .map(|p| p.chars().count() + 3)
                .sum()
        };
        let mut steps = steps.into_iter();
        while fixed + used(&parts) > usize::from(area.width) {
            let Some(step) = steps.next() else { break };
            let forms = &mut parts[step];
            if !forms.is_empty() {
                forms.remove(0);
            }
        }
        let sep = Span::styled(" │ ", DIM);
        let mut spans = vec![
            Span::styled(" orderflow ", Style::new().bold().reversed()),
            Span::raw(what),
        ];
        for part in parts.iter().filter_map(|forms| forms.first()) {
            spans.push(sep.clone());
            spans.push(Span::raw(part.clone()));
        }
        spans.push(sep);
        spans.push(connection);
        Paragraph::new(Line::from(spans)).render(area, buf);
    }

    /// The bottom line: the keys, and a warning while the selected role is paused. In the
    /// demo it says which role `p` pauses: the cyan border alone does not tell everyone.
    fn key_line(&self, area: Rect, buf: &mut Buffer) {
        let key = |action: Action| Span::styled(keys::first_key(action), Style::new().bold());
        let demo = self.roles().len() > 1;
        let pause = match self.selected_role() {
            Some(role) if demo && role.paused() => format!(" resume {}  ", role.name()),
            Some(role) if demo => format!(" pause {}  ", role.name()),
            _ => " pause/resume  ".to_owned(),
        };
        let mut spans = vec![
            Span::raw(" "),
            key(Action::Back),
            Span::raw(" quit  "),
            key(Action::TogglePause),
            Span::raw(pause),
            key(Action::ToggleHelp),
            Span::raw(" help"),
        ];
        if demo {
            spans.push(Span::raw("  "));
            spans.push(key(Action::NextRole));
            spans.push(Span::raw(" next role"));
        }
        if let Some(role) = self.selected_role().filter(|r| r.paused()) {
            // The demo's key line has named the role already; 80 columns have no room twice.
            let warning = if demo {
                "   ⏸ PAUSED: lag grows".to_owned()
            } else {
                format!("   ⏸ {} PAUSED: lag grows", role.name())
            };
            spans.push(Span::styled(warning, Style::new().fg(Color::Yellow).bold()));
        }
        Paragraph::new(Line::from(spans)).render(area, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::pack;

    fn items(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn packing_breaks_between_items_only() {
        let lags = items(&["p0 3", "p1 5", "p2 1,234"]);
        assert_eq!(
            pack("lag ", &lags, "    ", 40),
            ["lag p0 3 · p1 5 · p2 1,234"]
        );
        assert_eq!(
            pack("lag ", &lags, "    ", 18),
            ["lag p0 3 · p1 5", "    p2 1,234"]
        );
        assert_eq!(pack("", &items(&["a long item"]), "", 4), ["a long item"]);
        assert_eq!(pack("", &[], "", 4), [""]);
    }
}
