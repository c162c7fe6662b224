//! The live view's keys, as actions: which key means what, and nothing more. Pure, so the key
//! map is tested without a terminal; what an action does is the state's business
//! ([`Dashboard::apply`](super::Dashboard::apply)).

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// What the user asked for with a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Ctrl-C: stop the view, even with the help shown.
    Quit,
    /// `q` or Esc: close the help if it is shown, else stop the view.
    Back,
    /// `?` or `h`: show or hide the help.
    ToggleHelp,
    /// `p` or space: pause the selected role, or resume it.
    TogglePause,
    /// Tab: select the next role.
    NextRole,
}

/// The action a key press means, if any. Releases and repeats mean nothing.
pub(crate) fn action(key: &KeyEvent) -> Option<Action> {
    if key.kind != KeyEventKind::Press {
        return None;
    }
    if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
        return Some(Action::Quit);
    }
    match key.code {
        KeyCode::Char('q') | KeyCode::Esc => Some(Action::Back),
        KeyCode::Char('?') | KeyCode::Char('h') => Some(Action::ToggleHelp),
        KeyCode::Char('p') | KeyCode::Char(' ') => Some(Action::TogglePause),
        KeyCode::Tab => Some(Action::NextRole),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode) -> Option<Action> {
        action(&KeyEvent::new(code, KeyModifiers::NONE))
    }

    #[test]
    fn each_key_means_its_action() {
        assert_eq!(press(KeyCode::Char('q')), Some(Action::Back));
        assert_eq!(press(KeyCode::Esc), Some(Action::Back));
        assert_eq!(press(KeyCode::Char('?')), Some(Action::ToggleHelp));
        assert_eq!(press(KeyCode::Char('h')), Some(Action::ToggleHelp));
        assert_eq!(press(KeyCode::Char('p')), Some(Action::TogglePause));
        assert_eq!(press(KeyCode::Char(' ')), Some(Action::TogglePause));
        assert_eq!(press(KeyCode::Tab), Some(Action::NextRole));
    }

    #[test]
    fn ctrl_c_quits_and_a_plain_c_does_nothing() {
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action(&ctrl_c), Some(Action::Quit));
        assert_eq!(press(KeyCode::Char('c')), None);
    }

    #[test]
    fn other_modifiers_do_not_change_a_key() {
        let ctrl_q = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::CONTROL);
        assert_eq!(action(&ctrl_q), Some(Action::Back));
        let shift_tab = KeyEvent::new(KeyCode::Tab, KeyModifiers::SHIFT);
        assert_eq!(action(&shift_tab), Some(Action::NextRole));
    }

    #[test]
    fn unknown_keys_and_releases_mean_nothing() {
        assert_eq!(press(KeyCode::Char('x')), None);
        assert_eq!(press(KeyCode::Enter), None);
        assert_eq!(press(KeyCode::BackTab), None);
        let release = KeyEvent::new_with_kind(
            KeyCode::Char('q'),
            KeyModifiers::NONE,
            KeyEventKind::Release,
        );
        assert_eq!(action(&release), None);
        let repeat =
            KeyEvent::new_with_kind(KeyCode::Char('p'), KeyModifiers::NONE, KeyEventKind::Repeat);
        assert_eq!(action(&repeat), None);
    }
}
