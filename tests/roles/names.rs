//! Names from outside: a group id Kafka refuses is refused before any connection, and plain
//! output prints hostile names (escape codes, bidi overrides) without their control
//! characters, as the live view does.

use std::time::Duration;

use super::util::{Broker, closed_port, orderflow, run_with_limit, text};

/// A group id with escape codes that would clear and recolour the terminal, a right-to-left
/// override and a zero-width space.
const HOSTILE_GROUP: &str = "evil\u{1b}[2J\u{1b}[31mRED\u{202e}\u{200b}";

/// Characters that must never reach a terminal from a name.
fn hidden(c: char) -> bool {
    (c.is_control() && c != '\n') || matches!(c, '\u{202a}'..='\u{202e}' | '\u{200b}'..='\u{200f}')
}

#[test]
fn a_group_id_kafka_refuses_is_refused_before_any_connection() {
    // Nothing listens there: the refusal must come before any attempt to connect.
    let nowhere = format!("127.0.0.1:{}", closed_port());
    for (role, group, words) in [
        ("analytics", "", "a group id cannot be empty"),
        ("order-processor", "", "a group id cannot be empty"),
        ("storage", " \t", "a group id cannot be only whitespace"),
        ("payments", "", "a group id cannot be empty"),
    ] {
        let output = run_with_limit(
            orderflow().args(["-b", &nowhere, role, "-g", group, "--no-tui"]),
            Duration::from_secs(20),
        );
        let stderr = text(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{role} -g {group:?}: {stderr}"
        );
        assert!(stderr.contains(words), "{role} -g {group:?}: {stderr}");
        assert!(!stderr.contains("queue not available"), "{stderr}");
    }
}

#[test]
fn plain_output_prints_names_from_outside_without_their_control_characters() {
    let broker = Broker::start();
    broker.produce(20, 15);
    // A record whose key and value carry escape codes too: its malformed line quotes them.
    broker.send_raw(&[(
        Some(b"\x1b[31mkey".to_vec()),
        Some(b"\x1b[2J{\"not\": \"an order\"}".to_vec()),
    )]);
    let file = tempfile::tempdir().unwrap();
    let audit = file.path().join("a\u{1b}[2J.audit.jsonl");
    for args in [
        vec!["analytics", "--no-tui"],
        vec!["order-processor"],
        vec!["storage", "--file", audit.to_str().unwrap()],
    ] {
        let mut all = args.clone();
        all.extend([
            "-g",
            HOSTILE_GROUP,
            "--exit-at-end",
            "-X",
            "client.id=\u{1b}[5mblink",
        ]);
        let output = run_with_limit(&mut broker.orderflow(&all), Duration::from_secs(120));
        let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
        assert!(output.status.success(), "{args:?}\n{stdout}\n{stderr}");
        assert!(
            stdout.contains("joining group evil[2J[31mRED as"),
            "{args:?}: the name is shown without its control characters\n{stdout}"
        );
        for (name, out) in [("stdout", &stdout), ("stderr", &stderr)] {
            if let Some(line) = out.lines().find(|l| l.chars().any(hidden)) {
                panic!("{args:?}: a {name} line carries control characters: {line:?}");
            }
        }
    }
}
