//! The `orderflow` binary: parse the command line, set up logging, run, map the outcome to an
//! exit status. Everything else lives in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = orderflow::cli::parse();
    orderflow::logging::init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(orderflow::run(cli));
    // A metadata request still waiting on an unreachable broker must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", orderflow::report::human::error_chain(&error));
            ExitCode::FAILURE
        }
    }
}
