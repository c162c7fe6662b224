//! The help overlay: what each panel of this view shows (the demo's panels are not a single
//! role's) and every key the view takes, listed from the key table itself
//! ([`BINDINGS`](crate::dashboard::keys::BINDINGS)) so that the help cannot drift from the keys.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Widget};

use super::counters::counters_title;
use super::layouts::DEMO_FEATURE_WIDTH;
use super::{ACCENT, panel};
use crate::dashboard::keys::{self, Action};
use crate::dashboard::state::Dashboard;

/// The widest the help's text gets: it stays readable on a wide terminal and fits 80 columns.
const MAX_TEXT_WIDTH: usize = 76;
/// The indent of a paragraph's following lines, so that each paragraph stands out.
const HANG: &str = "   ";

impl Dashboard {
    pub(super) fn help_overlay(&self, area: Rect, buf: &mut Buffer) {
        let width = usize::from(area.width.saturating_sub(4)).clamp(1, MAX_TEXT_WIDTH);
        let mut lines = Vec::new();
        for paragraph in self.panel_help(area.width) {
            lines.extend(wrap(&paragraph, 0, width).into_iter().map(Line::from));
        }
        lines.push(Line::from(""));
        for action in keys::actions() {
            let Some(what) = self.key_help(action) else {
                continue;
            };
            // The key names lead the first line, in bold; the words wrap after them.
            let names = format!("{}  ", keys::keys_of(action));
            let mut wrapped = wrap(&what, names.chars().count(), width).into_iter();
            lines.push(Line::from(vec![
                Span::styled(names, Style::new().bold()),
                Span::raw(wrapped.next().unwrap_or_default()),
            ]));
            lines.extend(wrapped.map(Line::from));
        }
        let width = (lines.iter().map(Line::width).max().unwrap_or(0) as u16 + 4).min(area.width);
        let height = (lines.len() as u16 + 2).min(area.height);
        let popup = area.centered(Constraint::Length(width), Constraint::Length(height));
        Clear.render(popup, buf);
        Paragraph::new(lines)
            .block(panel("help").border_style(ACCENT))
            .render(popup, buf);
    }

    /// What each panel of this view, `width` columns wide, shows: a paragraph each.
    fn panel_help(&self, width: u16) -> Vec<String> {
        if !self.is_demo() {
            return vec![
                "Counters: what this member read — events per status (bars) and source, \
                 completed (DELIVERED) and in-flight orders, malformed records."
                    .to_owned(),
                "Throughput: events per second this member read, over the last minute.".to_owned(),
                "This member: partitions, committed offset, log end, lag; latency: how old \
                 the last second's records were when handled (lag in time)."
                    .to_owned(),
                "Groups: every group reading the topic, its members, what each owns, lag."
                    .to_owned(),
                "Rebalances: members joining and leaving, partitions moving, time unowned."
                    .to_owned(),
                "Status line: the broker, topic, group, member and the connection.".to_owned(),
            ];
        }
        let mut help = Vec::new();
        if self.producer().is_some() {
            help.push(
                "Producer: events sent and their rate, delivered (acknowledged by the \
                 broker), failed."
                    .to_owned(),
            );
        }
        let names: Vec<&str> = self.roles().iter().map(|r| r.name()).collect();
        help.push(format!(
            "A panel per role ({}): records read and their rate, its counters, the \
             partitions it owns and their lag. The selected role's panel has a cyan border \
             and the key line names it.",
            names.join(", ")
        ));
        if let Some(role) = self.featured_role().filter(|_| width >= DEMO_FEATURE_WIDTH) {
            help.push(format!(
                "Beside the groups, the {} role's {} and its events per second over the \
                 last minute.",
                role.name(),
                counters_title(role)
            ));
        }
        help.push(
            "Groups: every group reading the topic, its members, what each owns, lag.".to_owned(),
        );
        help.push(
            "Rebalances: members joining and leaving, partitions moving, time unowned.".to_owned(),
        );
        help.push(
            "Status line: the demo's broker (other terminals join with -b), the topic, \
             the connection."
                .to_owned(),
        );
        help
    }

    /// What `action`'s keys do in this view, or `None` where they do nothing.
    fn key_help(&self, action: Action) -> Option<String> {
        let demo = self.is_demo();
        Some(match action {
            Action::TogglePause => match self.selected_role() {
                Some(role) if demo => format!(
                    "pause or resume {} (the selected role): it keeps its partitions; \
                     watch its lag grow",
                    role.name()
                ),
                Some(_) => {
                    "pause/resume: the member keeps its partitions; watch the lag grow".to_owned()
                }
                None => return None,
            },
            // With one role there is nothing to go round.
            Action::NextRole if self.roles().len() > 1 => {
                "select the next role: the one p pauses".to_owned()
            }
            Action::NextRole => return None,
            Action::ToggleHelp => "close this help".to_owned(),
            Action::Back if demo => {
                "close this help; then quit: the producer stops, each role catches up, \
                 commits and leaves its group, the terminal is restored"
                    .to_owned()
            }
            Action::Back => {
                "close this help; then quit: commit, leave the group, restore the terminal"
                    .to_owned()
            }
            Action::Quit => "quit at once, even with this help shown".to_owned(),
        })
    }
}

/// `text` in lines of at most `width` characters, broken between words, the first line
/// starting after `start` characters already written; the lines after the first are indented
/// by [`HANG`]. A word longer than a line gets a line of its own (and is cut by the panel),
/// never split.
fn wrap(text: &str, start: usize, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    // Characters on the current line, counting what was written before the first.
    let mut used = start;
    let mut has_words = false;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let len = word.chars().count();
        if has_words && used + 1 + len > width {
            lines.push(std::mem::replace(&mut line, HANG.to_owned()));
            used = HANG.len();
            has_words = false;
        }
        if has_words {
            line.push(' ');
            used += 1;
        }
        line.push_str(word);
        used += len;
        has_words = true;
    }
    if has_words {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wrapping_breaks_between_words_and_indents_what_follows() {
        assert_eq!(
            wrap("one two three four", 0, 9),
            ["one two", "   three", "   four"]
        );
        assert_eq!(wrap("short", 0, 76), ["short"]);
        assert_eq!(wrap("enormousword x", 0, 4), ["enormousword", "   x"]);
        assert_eq!(wrap("after keys", 4, 9), ["after", "   keys"]);
    }
}
