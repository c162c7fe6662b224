//! `orderflow completions <SHELL>`: prints a tab-completion script generated from the same clap
//! definition the binary parses with, so completions can never drift from the real flags.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

pub fn run(shell: Shell) -> anyhow::Result<ExitCode> {
    // clap_complete panics when its writer fails, so the script is built in memory and the
    // write to stdout (which may be a closed pipe) is handled here, as an error.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "orderflow", &mut script);
    let mut stdout = io::stdout().lock();
    stdout
        .write_all(&script)
        .and_then(|()| stdout.flush())
        .with_context(|| format!("cannot write the {shell} completion script to stdout"))?;
    Ok(ExitCode::SUCCESS)
}
