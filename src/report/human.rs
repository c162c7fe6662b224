//! Numbers, rates and durations written for people, and the in-place status line that
//! long-running commands show on a terminal.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// How the user runs orderflow, for commands suggested to them: `orderflow`, or what
/// `ORDERFLOW_INVOKED_AS` says (scripts/orderflow sets it to its own path, so that a user of
/// the Quick start is told `scripts/orderflow audit …`, which works for them).
pub(crate) fn invoked_as() -> String {
    std::env::var("ORDERFLOW_INVOKED_AS")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "orderflow".to_owned())
}

/// The longest name the group view prints, in characters; longer ones end in `…`.
pub(crate) const MAX_NAME_CHARS: usize = 48;

/// A name from the cluster or from another process's announcement (group, member, host,
/// client id, role), made safe to print: control characters (escape sequences that would
/// move the cursor or recolour the terminal), bidirectional overrides and isolates (which
/// reorder what is shown) and zero-width characters (which make two names look alike) are
/// removed, and it is cut to [`MAX_NAME_CHARS`].
pub(crate) fn printable(name: &str) -> String {
    let mut shown = without_hidden(name);
    if let Some((at, _)) = shown.char_indices().nth(MAX_NAME_CHARS) {
        let cut = shown[..at].char_indices().last().map_or(0, |(i, _)| i);
        shown.truncate(cut);
        shown.push('…');
    }
    shown
}

/// `text` without the characters [`printable`] removes, at any length: for lines composed
/// of such names.
pub(crate) fn without_hidden(text: &str) -> String {
    let hidden = |c: char| {
        c.is_control()
            || matches!(
                c,
                '\u{061C}'
                    | '\u{180E}'
                    | '\u{200B}'..='\u{200F}'
                    | '\u{202A}'..='\u{202E}'
                    | '\u{2060}'..='\u{2069}'
                    | '\u{FEFF}'
            )
    };
    text.chars().filter(|&c| !hidden(c)).collect()
}

/// Text for a plain-output line (the consumers' `--no-tui` lines, exit summaries, error
/// messages) made safe for a terminal: every line of it as [`without_hidden`] makes it, the
/// line breaks of a multi-line message kept. A name from outside (group, member, client id,
/// key, header, a broker's message) thus cannot clear or recolour the terminal through any
/// line that prints it; JSON output is not passed through it, as JSON escapes.
pub(crate) fn plain_text(text: &str) -> String {
    text.split('\n')
        .map(without_hidden)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A word for a shell command line: as it is when it is plain, in single quotes otherwise.
pub(crate) fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:@,".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// An error and its causes on one line, as anyhow's `{:#}` writes them, but with each cause
/// only once: many errors already name their cause in their own text (rdkafka's `KafkaError`
/// shows its code and also returns it as its source), and `{:#}` would print it again. Made
/// terminal-safe: an error may quote a group, a key or a broker's message.
pub fn error_chain(error: &anyhow::Error) -> String {
    plain_text(&raw_error_chain(error))
}

/// The chain as the errors write it.
fn raw_error_chain(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

/// `1234567` → `1,234,567`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A measured quantity with sensible precision: `0.5`, `20`, `48,210`.
pub(crate) fn decimal(value: f64) -> String {
    if value < 10.0 && value.fract().abs() > f64::EPSILON {
        format!("{value:.1}")
    } else {
        count(value.round() as u64)
    }
}

/// Events per second: `0.5/s`, `20/s`, `48,210/s`.
pub(crate) fn rate(per_second: f64) -> String {
    format!("{}/s", decimal(per_second))
}

/// `0.8 s`, `12.3 s`, `2 min 05 s`.
pub(crate) fn duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1} s")
    } else {
        let whole = d.as_secs();
        format!("{} min {:02} s", whole / 60, whole % 60)
    }
}

/// A time as the audit log and the events write it, to the millisecond: the log stores when
/// a line was written to the nanosecond, more than a reader can use.
pub(crate) fn timestamp(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A status line on stderr, redrawn in place when stderr is a terminal. Elsewhere (a pipe, a
/// log file, CI) redrawing would leave a mess, so it stays silent and the command prints
/// ordinary lines instead.
pub(crate) struct StatusLine {
    enabled: bool,
    /// Whether something is drawn now and must be cleared before other output.
    drawn: bool,
}

impl StatusLine {
    pub(crate) fn on_stderr() -> StatusLine {
        StatusLine {
            enabled: std::io::stderr().is_terminal(),
            drawn: false,
        }
    }

    /// Whether the line is redrawn in place (stderr is a terminal).
    pub(crate) fn is_live(&self) -> bool {
        self.enabled
    }

    pub(crate) fn draw(&mut self, text: &str) {
        if self.enabled {
            let mut err = std::io::stderr().lock();
            // \r + "erase line" keeps a shorter line from leaving the tail of a longer one.
            let _ = write!(err, "\r\x1b[2K{text}");
            let _ = err.flush();
            self.drawn = true;
        }
    }

    /// Removes the line so that the next output starts on a clean line.
    pub(crate) fn clear(&mut self) {
        if self.drawn {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            self.drawn = false;
        }
    }

    /// Prints a whole line above the status line.
    pub(crate) fn println(&mut self, text: &str) {
        self.clear();
        eprintln!("{}", plain_text(text));
    }
}

impl Drop for StatusLine {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_chain_names_each_cause_once() {
        use rdkafka::error::KafkaError;
        use rdkafka::types::RDKafkaErrorCode;
        // KafkaError's text already holds its code, which is also its source.
        let error = anyhow::Error::new(KafkaError::MetadataFetch(
            RDKafkaErrorCode::UnknownPartition,
        ))
        .context("cannot take over partition 1");
        assert_eq!(
            error_chain(&error),
            "cannot take over partition 1: Meta data fetch error: UnknownPartition (Local: \
             Unknown partition)"
        );
        let io = anyhow::Error::new(std::io::Error::other("disk full")).context("cannot write");
        assert_eq!(error_chain(&io), "cannot write: disk full");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(rate(0.5), "0.5/s");
        assert_eq!(rate(20.0), "20/s");
        assert_eq!(rate(48_210.4), "48,210/s");
        assert_eq!(duration(Duration::from_millis(800)), "0.8 s");
        assert_eq!(duration(Duration::from_secs(125)), "2 min 05 s");
        let t = DateTime::parse_from_rfc3339("2026-11-21T18:30:05.123456789Z").unwrap();
        assert_eq!(timestamp(&t.to_utc()), "2026-11-21T18:30:05.123Z");
    }

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(
            shell_word("order-events.audit.jsonl"),
            "order-events.audit.jsonl"
        );
        assert_eq!(shell_word("/tmp/a b.jsonl"), "'/tmp/a b.jsonl'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
    }

    #[test]
    fn printable_names_lose_what_would_deceive_a_terminal() {
        assert_eq!(printable("analytics"), "analytics");
        assert_eq!(
            printable("evil\x1b[2J\x1b[31mgroup\r\n"),
            "evil[2J[31mgroup"
        );
        assert_eq!(
            printable("pay\u{202E}lanigiro\u{2066}x\u{2069}"),
            "paylanigirox"
        );
        assert_eq!(
            printable("st\u{200B}or\u{200D}age\u{FEFF}\u{2060}"),
            "storage"
        );
        assert_eq!(printable("ünïcödé-名前"), "ünïcödé-名前");
        let long = "x".repeat(1_000);
        let shown = printable(&long);
        assert_eq!(shown.chars().count(), MAX_NAME_CHARS);
        assert!(shown.ends_with('…'));
        assert_eq!(
            printable(&"y".repeat(MAX_NAME_CHARS)),
            "y".repeat(MAX_NAME_CHARS)
        );
    }

    #[test]
    fn plain_text_keeps_its_own_line_breaks_and_nothing_hidden() {
        assert_eq!(
            plain_text("group \x1b[2Jg\u{200B}\u{202E}x\r\n  the next line\t"),
            "group [2Jgx\n  the next line"
        );
        assert_eq!(plain_text("plain"), "plain");
    }
}
