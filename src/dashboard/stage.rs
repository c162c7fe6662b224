//! The live view of a read-process-write stage (`orderflow payments` in a terminal): its input
//! and output rates over the last minute, its transaction state and aborted transactions, what
//! it decided (approved / declined), and its latest notices. State + update + render, fed by
//! plain [`StageActivity`] values; the terminal loop is [`run`]. No Kafka here.

use std::collections::VecDeque;
use std::io;
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::time::Duration;

use ratatui::buffer::Buffer;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Sparkline, Widget, Wrap};

use crate::report::human;
use crate::report::stage::{StageActivity, StageReport, StageSummary, TransactionState};

/// Rates kept for the sparklines: one per summary (every 2 s), about a minute.
const HISTORY: usize = 30;

/// Notices and aborts kept for the panel.
const NOTICES: usize = 6;

/// How often the terminal loop looks for keys and events.
const FRAME: Duration = Duration::from_millis(200);

/// What the view knows of the stage.
#[derive(Debug, Default)]
pub(crate) struct StageView {
    /// The `started` line, in words: input → output, semantics, member.
    heading: Option<String>,
    /// Whether the stage uses transactions (exactly-once).
    transactional: bool,
    assigned: Vec<i32>,
    /// The latest counters.
    summary: StageSummary,
    /// Input and output records per second, oldest first.
    input_rates: VecDeque<u64>,
    output_rates: VecDeque<u64>,
    /// The latest aborts and notices, newest last.
    notices: VecDeque<String>,
}

impl StageView {
    pub(crate) fn update(&mut self, activity: StageActivity) {
        match activity {
            StageActivity::Started {
                stage,
                group,
                member,
                input,
                output,
                semantics,
                transactional_id,
            } => {
                self.transactional = transactional_id.is_some();
                self.heading = Some(format!(
                    "{stage}: {input} → {output} · {semantics} · group {group} · member {member}"
                ));
            }
            StageActivity::Assigned { partitions } => self.assigned = partitions,
            StageActivity::Aborted { reason } => {
                self.note(format!("transaction aborted: {reason}"));
            }
            StageActivity::Notice(text) => self.note(text),
            StageActivity::Summary { summary, .. } => {
                for (history, rate) in [
                    (&mut self.input_rates, summary.input_rate),
                    (&mut self.output_rates, summary.output_rate),
                ] {
                    if history.len() == HISTORY {
                        history.pop_front();
                    }
                    history.push_back(rate.round() as u64);
                }
                self.summary = summary;
            }
        }
    }

    fn note(&mut self, text: String) {
        if self.notices.len() == NOTICES {
            self.notices.pop_front();
        }
        self.notices.push_back(text);
    }

    /// The last counters, for the line printed once the view is closed.
    pub(crate) fn summary(&self) -> &StageSummary {
        &self.summary
    }

    fn counter_lines(&self) -> Vec<Line<'static>> {
        let s = &self.summary;
        let label = |name: &'static str, color: Color| {
            Span::styled(
                format!(
                    "{name} {}  ",
                    human::count(s.by_label.get(name).copied().unwrap_or(0))
                ),
                Style::new().fg(color),
            )
        };
        let mut lines = vec![
            Line::from(format!(
                "read {} · produced {} · skipped {} · malformed {}",
                human::count(s.consumed),
                human::count(s.produced),
                human::count(s.skipped),
                human::count(s.malformed)
            )),
            Line::from(vec![
                label("APPROVED", Color::Green),
                label("DECLINED", Color::Red),
            ]),
            Line::from(format!(
                "batches committed {} · dropped for a rebalance {} · partitions {:?}",
                human::count(s.batches),
                human::count(s.dropped_for_rebalance),
                self.assigned
            )),
        ];
        if self.transactional {
            let state = s.transaction.unwrap_or(TransactionState::None);
            let color = match state {
                TransactionState::Aborted => Color::Red,
                TransactionState::Open => Color::Yellow,
                _ => Color::Green,
            };
            lines.push(Line::from(vec![
                Span::raw("transaction "),
                Span::styled(
                    state.as_str(),
                    Style::new().fg(color).add_modifier(Modifier::BOLD),
                ),
                Span::raw(format!(
                    " · committed {} · aborted {}",
                    human::count(s.transactions_committed),
                    human::count(s.transactions_aborted)
                )),
            ]));
        } else {
            lines.push(Line::styled(
                "no transactions (at-most-once / at-least-once)",
                Style::new().add_modifier(Modifier::DIM),
            ));
        }
        lines
    }
}

impl Widget for &StageView {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let heading = self
            .heading
            .clone()
            .unwrap_or_else(|| "connecting…".to_owned());
        let [top, rates, bottom] = Layout::vertical([
            Constraint::Length(6),
            Constraint::Length(6),
            Constraint::Min(3),
        ])
        .areas(area);
        Paragraph::new(self.counter_lines())
            .wrap(Wrap { trim: true })
            .block(Block::bordered().title(format!(" {heading} ")))
            .render(top, buf);
        let [input, output] =
            Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                .areas(rates);
        for (area, name, history, now, color) in [
            (
                input,
                "in",
                &self.input_rates,
                self.summary.input_rate,
                Color::Cyan,
            ),
            (
                output,
                "out",
                &self.output_rates,
                self.summary.output_rate,
                Color::Magenta,
            ),
        ] {
            let data: Vec<u64> = history.iter().copied().collect();
            Sparkline::default()
                .data(&data)
                .style(Style::new().fg(color))
                .block(Block::bordered().title(format!(" {name}: {now:.0} records/s ")))
                .render(area, buf);
        }
        let notices: Vec<Line<'static>> = if self.notices.is_empty() {
            vec![Line::styled(
                "nothing to report · q quits",
                Style::new().add_modifier(Modifier::DIM),
            )]
        } else {
            self.notices.iter().cloned().map(Line::from).collect()
        };
        Paragraph::new(notices)
            .wrap(Wrap { trim: true })
            .block(Block::bordered().title(" aborts and notices · q quits "))
            .render(bottom, buf);
    }
}

/// A stage's [`StageReport`] that feeds the view.
pub(crate) struct StageViewReport(pub(crate) Sender<StageActivity>);

impl StageReport for StageViewReport {
    fn report(&mut self, activity: StageActivity) {
        // The view may be gone already (the user quit): the stage finishes without it.
        let _ = self.0.send(activity);
    }
}

/// Shows `view` in the terminal until the stage stops (its sender is dropped) or the user
/// presses q or Ctrl-C (then `quit` is called, and the view keeps showing what comes until
/// the stage has stopped).
pub(crate) fn run(
    mut view: StageView,
    events: &Receiver<StageActivity>,
    quit: impl Fn(),
) -> io::Result<StageView> {
    let mut terminal = ratatui::try_init()?;
    let result = (|| -> io::Result<()> {
        terminal.clear()?;
        loop {
            loop {
                match events.try_recv() {
                    Ok(activity) => view.update(activity),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return Ok(()),
                }
            }
            terminal.draw(|frame| frame.render_widget(&view, frame.area()))?;
            if event::poll(FRAME)?
                && let Event::Key(key) = event::read()?
                && key.kind == KeyEventKind::Press
                && (key.code == KeyCode::Char('q')
                    || (key.code == KeyCode::Char('c')
                        && key.modifiers.contains(KeyModifiers::CONTROL)))
            {
                quit();
            }
        }
    })();
    ratatui::restore();
    result.map(|()| view)
}

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::domain::payment::Semantics;

    fn screen(view: &StageView) -> String {
        let mut terminal = Terminal::new(TestBackend::new(100, 20)).expect("a test terminal");
        terminal
            .draw(|frame| frame.render_widget(view, frame.area()))
            .expect("drawn");
        let buffer = terminal.backend().buffer();
        (0..buffer.area.height)
            .map(|y| {
                (0..buffer.area.width)
                    .map(|x| buffer[(x, y)].symbol())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn the_view_shows_rates_decisions_and_the_transaction_state() {
        let mut view = StageView::default();
        view.update(StageActivity::Started {
            stage: "payments",
            group: "lab".into(),
            member: "payments-1".into(),
            input: "order-events".into(),
            output: "payments".into(),
            semantics: Semantics::ExactlyOnce,
            transactional_id: Some("orderflow-payments-lab-1".into()),
        });
        view.update(StageActivity::Assigned {
            partitions: vec![0, 1, 2],
        });
        let mut summary = StageSummary {
            consumed: 4_000,
            produced: 1_000,
            transactions_committed: 8,
            transactions_aborted: 1,
            transaction: Some(TransactionState::Committed),
            input_rate: 2_000.0,
            output_rate: 500.0,
            ..StageSummary::default()
        };
        summary.by_label.insert("APPROVED", 900);
        summary.by_label.insert("DECLINED", 100);
        view.update(StageActivity::Aborted {
            reason: "committed: Broker: Producer fenced".into(),
        });
        view.update(StageActivity::Summary {
            summary,
            last: false,
        });
        let screen = screen(&view);
        for words in [
            "payments: order-events → payments · exactly-once",
            "APPROVED 900",
            "DECLINED 100",
            "transaction committed · committed 8 · aborted 1",
            "in: 2000 records/s",
            "out: 500 records/s",
            "transaction aborted: committed: Broker: Producer fenced",
        ] {
            assert!(screen.contains(words), "{words:?} in\n{screen}");
        }
    }

    #[test]
    fn without_transactions_it_says_so() {
        let mut view = StageView::default();
        view.update(StageActivity::Started {
            stage: "payments",
            group: "lab".into(),
            member: "payments-1".into(),
            input: "order-events".into(),
            output: "payments".into(),
            semantics: Semantics::AtLeastOnce,
            transactional_id: None,
        });
        assert!(screen(&view).contains("no transactions"));
    }
}
