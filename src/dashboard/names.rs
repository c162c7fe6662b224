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

/// `text` with each number bound to its unit (`29.0 s`, `150 ms`, `3 min`) by a no-break
/// space, so that a wrapped line never shows the number at the end of one row and its unit
/// at the start of the next.
pub(crate) fn units_kept(text: &str) -> String {
    const UNITS: [&str; 5] = ["s", "ms", "min", "h", "%"];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(' ') {
        let (before, after) = (&rest[..at], &rest[at + 1..]);
        let unit_len = after
            .find(|c: char| !(c.is_alphabetic() || c == '%'))
            .unwrap_or(after.len());
        let bound =
            before.ends_with(|c: char| c.is_ascii_digit()) && UNITS.contains(&&after[..unit_len]);
        out.push_str(before);
        out.push(if bound { '\u{00A0}' } else { ' ' });
        rest = after;
    }
    out.push_str(rest);
    out
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

/// Partitions as the timeline lists them: `p0,p1,p2`.
pub(crate) fn partition_list(partitions: &[i32]) -> String {
    partitions
        .iter()
        .map(|p| format!("p{p}"))
        .collect::<Vec<_>>()
        .join(",")
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
    fn numbers_keep_their_units() {
        assert_eq!(
            units_kept("back after 29.0 s, 150 ms; 3 sources, 2 min. 5 s"),
            "back after 29.0\u{a0}s, 150\u{a0}ms; 3 sources, 2\u{a0}min. 5\u{a0}s"
        );
        assert_eq!(units_kept("p0 seen"), "p0 seen");
    }

    #[test]
    fn a_wrapped_line_keeps_a_number_with_its_unit() {
        use ratatui::buffer::Buffer;
        use ratatui::layout::Rect;
        use ratatui::widgets::{Paragraph, Widget, Wrap};
        // 20 columns: "back in the cluster, after 29.0" ends at column 15 of the 2nd row.
        let text = "broker 2 back in the cluster, after 29.0 s";
        let area = Rect::new(0, 0, 20, 4);
        let mut buf = Buffer::empty(area);
        Paragraph::new(units_kept(text))
            .wrap(Wrap { trim: true })
            .render(area, &mut buf);
        let rows: Vec<String> = (0..4)
            .map(|y| (0..20).map(|x| buf[(x, y)].symbol()).collect::<String>())
            .collect();
        assert!(
            rows.iter().any(|row| row.contains("29.0\u{a0}s")),
            "{rows:#?}"
        );
    }

    #[test]
    fn frame_characters_are_replaced_and_hidden_ones_removed() {
        let shown = fitted("grp with spaces│and ┌box┐\u{1b}[2J\u{200b}", 80);
        assert_eq!(shown, "grp with spaces\u{FFFD}and \u{FFFD}box\u{FFFD}[2J");
    }
}
