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
use super::state::{Dashboard, short_member};
use crate::report::activity::Connection;
use crate::report::human;

/// Borders, labels and anything secondary.
const DIM: Style = Style::new().fg(Color::DarkGray);
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

    /// The top line: what runs, where, and the connection.
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
