//! Names as the live view prints them. Group and member names come from the cluster or from
//! announcements anyone may write: besides what [`human::without_hidden`] removes, the view
//! replaces box-drawing and block characters (printable, but a name holding `│` or `┌` draws
//! a forged panel edge), and cuts a name to the columns it is given with `…`, so a cut name
//! never passes for a whole one and a long name cannot push an entry's outcome off the panel.

use ratatui::text::Span;

use crate::report::human;

/// The most columns a member name takes in the timeline and the groups table: room for
/// `analytics-` and a long host tag, and at 80 columns still room for what happened to it.
pub(crate) const MEMBER_COLUMNS: usize = 24;

/// The most columns a group name takes in a timeline entry.
pub(crate) const GROUP_COLUMNS: usize = 24;

/// What stands in for a character that would forge the view's frame.
const REPLACED: char = '\u{FFFD}';

/// `text` with hidden characters removed and frame-forging ones replaced, at any length:
/// for lines composed of names.
pub(crate) fn harmless(text: &str) -> String {
    human::without_hidden(text)
        .chars()
        .map(|c| if forges_frame(c) { REPLACED } else { c })
        .collect()
}

/// `name` made [`harmless`] and cut to at most `columns` terminal columns, the last of them
/// `…` when it is cut.
pub(crate) fn fitted(name: &str, columns: usize) -> String {
    let shown = harmless(name);
    if width(&shown) <= columns {
        return shown;
    }
    let mut cut = String::new();
    let mut used = 0;
    for c in shown.chars() {
        let w = width_of(c);
        if used + w + 1 > columns {
            break;
        }
        cut.push(c);
        used += w;
    }
    cut.push('…');
    cut
}

/// A member id as the timeline and the table show it: without the `orderflow-` prefix, cut
/// to [`MEMBER_COLUMNS`].
pub(crate) fn member(id: &str) -> String {
    fitted(super::state::short_member(id), MEMBER_COLUMNS)
}

/// Box drawing (U+2500–U+257F) and block elements (U+2580–U+259F): what panel borders and
/// bars are drawn with.
fn forges_frame(c: char) -> bool {
    matches!(c, '\u{2500}'..='\u{259F}')
}

/// The columns `text` takes on a terminal.
pub(crate) fn width(text: &str) -> usize {
    Span::raw(text).width()
}

fn width_of(c: char) -> usize {
    let mut buf = [0; 4];
    width(c.encode_utf8(&mut buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_names_end_in_an_ellipsis_and_fit() {
        assert_eq!(fitted("analytics-1", 24), "analytics-1");
        let long = format!("analytics-{}", "y".repeat(150));
        let shown = fitted(&long, 24);
        assert_eq!(width(&shown), 24);
        assert!(shown.ends_with('…'), "{shown}");
        // Wide characters count two columns each.
        let wide = fitted("分析分析分析", 7);
        assert_eq!(wide, "分析分…");
        assert!(width(&wide) <= 7);
    }

    #[test]
    fn frame_characters_are_replaced_and_hidden_ones_removed() {
        let shown = fitted("grp with spaces│and ┌box┐\u{1b}[2J\u{200b}", 80);
        assert_eq!(shown, "grp with spaces\u{FFFD}and \u{FFFD}box\u{FFFD}[2J");
    }
}
