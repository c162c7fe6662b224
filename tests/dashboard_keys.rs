//! The live view's words about its keys, read off rendered frames: the help lists every key
//! the view takes, and the demo's key line names the role `p` pauses. (The frames themselves
//! are the snapshots of tests/dashboard.rs.)

use chrono::{FixedOffset, TimeZone, Utc};
use orderflow::dashboard::{Action, Dashboard, ProducerStats, ViewEvent};
use orderflow::report::activity::Activity;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

/// The text of `dashboard` drawn at `width`×`height`, row by row.
fn screen(dashboard: &Dashboard, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| frame.render_widget(dashboard, frame.area()))
        .unwrap();
    let buffer = terminal.backend().buffer();
    buffer
        .content
        .chunks(usize::from(width))
        .map(|row| row.iter().map(|c| c.symbol()).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

fn view(roles: &[&'static str]) -> Dashboard {
    let now = Utc.with_ymd_and_hms(2026, 11, 21, 18, 30, 0).unwrap();
    Dashboard::new(
        "127.0.0.1:9092",
        "order-events",
        roles,
        now,
        FixedOffset::east_opt(0).unwrap(),
    )
}

fn demo() -> Dashboard {
    let mut d = view(&["order-processor", "analytics", "storage"]);
    d.set_demo_broker("127.0.0.1:9092");
    d.select("analytics");
    d.update(ViewEvent::Producer(ProducerStats {
        sent: 10,
        delivered: 10,
        failed: 0,
        rate: 10.0,
        target_rate: 10.0,
    }));
    d
}

fn key_line(d: &Dashboard) -> String {
    screen(d, 80, 24).lines().last().unwrap().to_owned()
}

#[test]
fn the_demo_says_which_role_p_pauses_and_resumes() {
    let mut d = demo();
    assert!(
        key_line(&d).contains("p pause analytics"),
        "{}",
        key_line(&d)
    );
    d.apply(Action::NextRole);
    assert!(key_line(&d).contains("p pause storage"), "{}", key_line(&d));
    // The pause itself is the wiring's business; the view hears of it as the role's activity.
    d.update(ViewEvent::Role {
        role: "storage",
        activity: Activity::Paused(true),
        at: Utc::now(),
    });
    let line = key_line(&d);
    assert!(line.contains("p resume storage"), "{line}");
    assert!(
        line.contains("PAUSED"),
        "the warning fits 80 columns: {line}"
    );
}

#[test]
fn the_help_lists_every_key_the_view_takes_and_only_its_panels() {
    let mut single = view(&["analytics"]);
    single.apply(Action::ToggleHelp);
    let mut demo = demo();
    demo.apply(Action::ToggleHelp);
    for d in [&single, &demo] {
        let text = screen(d, 140, 42);
        for keys in ["p / space", "? / h", "q / esc", "ctrl-c"] {
            assert!(text.contains(keys), "{keys} missing:\n{text}");
        }
    }
    let single = screen(&single, 140, 42);
    assert!(
        !single.contains("tab "),
        "one role, nothing to go round:\n{single}"
    );
    let demo = screen(&demo, 140, 42);
    assert!(demo.contains("tab  select the next role"), "{demo}");
    assert!(demo.contains("Producer:"), "{demo}");
    assert!(
        !demo.contains("This member:"),
        "the demo has no such panel:\n{demo}"
    );
}
