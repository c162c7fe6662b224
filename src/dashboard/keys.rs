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

/// A key of the view: the table below is both what [`action`] reads and what the help and the
/// key line print, so the words on screen cannot drift from what the keys do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Key {
    /// A character, whatever the modifiers (Ctrl-q is still `q`: terminals differ in what
    /// they report, and a learner should not have to care).
    Char(char),
    /// A character with Ctrl held.
    Ctrl(char),
    Esc,
    Tab,
}

impl Key {
    /// How the help and the key line write the key.
    pub(crate) fn name(self) -> String {
        match self {
            Key::Char(' ') => "space".to_owned(),
            Key::Char(c) => c.to_string(),
            Key::Ctrl(c) => format!("ctrl-{c}"),
            Key::Esc => "esc".to_owned(),
            Key::Tab => "tab".to_owned(),
        }
    }

    fn matches(self, key: &KeyEvent) -> bool {
        match self {
            Key::Char(c) => key.code == KeyCode::Char(c),
            Key::Ctrl(c) => {
                key.code == KeyCode::Char(c) && key.modifiers.contains(KeyModifiers::CONTROL)
            }
            Key::Esc => key.code == KeyCode::Esc,
            Key::Tab => key.code == KeyCode::Tab,
        }
    }
}

/// Every key the view takes and its action, in the order the help lists them. The first
/// match wins, so a plain `c` bound here would shadow Ctrl-C (a test keeps that from
/// happening).
pub(crate) const BINDINGS: &[(Key, Action)] = &[
    (Key::Char('p'), Action::TogglePause),
    (Key::Char(' '), Action::TogglePause),
    (Key::Tab, Action::NextRole),
    (Key::Char('?'), Action::ToggleHelp),
    (Key::Char('h'), Action::ToggleHelp),
    (Key::Char('q'), Action::Back),
    (Key::Esc, Action::Back),
    (Key::Ctrl('c'), Action::Quit),
];

/// The actions the keys have, once each, in the table's order.
pub(crate) fn actions() -> Vec<Action> {
    let mut actions = Vec::new();
    for &(_, action) in BINDINGS {
        if !actions.contains(&action) {
            actions.push(action);
        }
    }
    actions
}

/// The key the key line shows for `action`: its first in the table.
pub(crate) fn first_key(action: Action) -> String {
    BINDINGS
        .iter()
        .find(|(_, a)| *a == action)
        .map_or_else(String::new, |(k, _)| k.name())
}

/// The keys bound to `action`, as the help writes them ("q / esc").
pub(crate) fn keys_of(action: Action) -> String {
    BINDINGS
        .iter()
        .filter(|(_, a)| *a == action)
        .map(|(k, _)| k.name())
        .collect::<Vec<_>>()
        .join(" / ")
}

/// The action a key press means, if any. Releases and repeats mean nothing.
pub(crate) fn action(key: &KeyEvent) -> Option<Action> {
    if key.kind != KeyEventKind::Press {
        return None;
    }
    BINDINGS
        .iter()
        .find(|(k, _)| k.matches(key))
        .map(|&(_, action)| action)
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

    #[test]
    fn the_help_names_each_actions_keys_from_the_table() {
        assert_eq!(keys_of(Action::Back), "q / esc");
        assert_eq!(keys_of(Action::TogglePause), "p / space");
        assert_eq!(keys_of(Action::Quit), "ctrl-c");
        assert_eq!(keys_of(Action::NextRole), "tab");
        assert_eq!(actions().len(), 5, "every action has a key");
    }

    #[test]
    fn no_plain_key_shadows_a_chord() {
        for &(key, _) in BINDINGS {
            if let Key::Ctrl(c) = key {
                assert!(!BINDINGS.iter().any(|&(k, _)| k == Key::Char(c)), "{c}");
            }
        }
    }
}
