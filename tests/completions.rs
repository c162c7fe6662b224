//! `orderflow completions <SHELL>`, through the real binary: every shell gets a script that
//! knows the subcommands and flags, a wrong shell name is a clear usage error, and the bash
//! script, sourced into a real bash, completes what a learner types.

mod util;

use std::process::{Command, Output};
use std::time::Duration;

use util::{orderflow, run_with_limit, text};

const LIMIT: Duration = Duration::from_secs(30);

fn completions(shell: &str) -> Output {
    run_with_limit(orderflow().args(["completions", shell]), LIMIT)
}

#[test]
fn every_shell_gets_a_script_naming_the_subcommands_and_flags() {
    // How each script spells a long flag: fish declares `-l exit-at-end`, the others write it
    // out as typed.
    for (shell, flag) in [
        ("bash", "--exit-at-end"),
        ("zsh", "--exit-at-end"),
        ("fish", "-l exit-at-end"),
        ("powershell", "--exit-at-end"),
        ("elvish", "--exit-at-end"),
    ] {
        let output = completions(shell);
        assert!(output.status.success(), "{shell}: {}", text(&output.stderr));
        let script = text(&output.stdout);
        for word in [
            "order-processor",
            "analytics",
            "storage",
            "produce",
            "completions",
            flag,
            &flag.replace("exit-at-end", "brokers"),
        ] {
            assert!(
                script.contains(word),
                "the {shell} script does not mention {word}"
            );
        }
        assert!(
            output.stderr.is_empty(),
            "{shell}: nothing belongs on stderr, got {}",
            text(&output.stderr)
        );
    }
}

#[test]
fn an_unknown_shell_is_a_usage_error_that_lists_the_shells() {
    let output = completions("tcsh");
    assert_eq!(output.status.code(), Some(2), "clap's usage-error status");
    assert!(output.stdout.is_empty());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("invalid value 'tcsh'"), "{stderr}");
    assert!(
        stderr.contains("bash, elvish, fish, powershell, zsh"),
        "{stderr}"
    );
}

#[test]
fn the_help_says_how_to_install_the_script() {
    let output = run_with_limit(orderflow().args(["completions", "--help"]), LIMIT);
    assert!(output.status.success());
    let help = text(&output.stdout);
    for line in [
        "orderflow completions bash > ~/.local/share/bash-completion/completions/orderflow",
        "orderflow completions fish > ~/.config/fish/completions/orderflow.fish",
        "~/.zfunc/_orderflow",
    ] {
        assert!(help.contains(line), "--help lacks {line:?}:\n{help}");
    }
}

/// Runs `script` in a bash that has sourced the real completion script; `None` when this
/// machine has no bash.
fn in_bash_with_completions(script: &str) -> Option<Output> {
    let probe = Command::new("bash").arg("--version").output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("no bash on this machine: the bash completion script is not exercised");
        return None;
    }
    let setup = format!(
        "source <(\"{}\" completions bash) || exit 3\n{script}",
        env!("CARGO_BIN_EXE_orderflow")
    );
    let mut command = Command::new("bash");
    command.args(["--norc", "--noprofile", "-c", &setup]);
    Some(run_with_limit(&mut command, LIMIT))
}

#[test]
fn bash_registers_the_completion_function() {
    let Some(output) = in_bash_with_completions("complete -p orderflow") else {
        return;
    };
    assert!(output.status.success(), "{}", text(&output.stderr));
    let registered = text(&output.stdout);
    assert!(
        registered.contains("-F _orderflow") && registered.trim_end().ends_with("orderflow"),
        "{registered}"
    );
}

#[test]
fn bash_completes_a_subcommand_and_a_flag_as_a_learner_types_them() {
    // What bash does on Tab: fill COMP_WORDS/COMP_CWORD and call the function with the
    // command, the word being completed and the word before it.
    let script = r#"
COMP_WORDS=(orderflow or); COMP_CWORD=1
_orderflow orderflow or orderflow
echo "subcommand: ${COMPREPLY[*]}"
COMP_WORDS=(orderflow order-processor --ex); COMP_CWORD=2
_orderflow orderflow --ex order-processor
echo "flag: ${COMPREPLY[*]}"
"#;
    let Some(output) = in_bash_with_completions(script) else {
        return;
    };
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("subcommand: order-processor\n"), "{stdout}");
    assert!(stdout.contains("flag: --exit-at-end\n"), "{stdout}");
}
