//! The `orderflow` binary: parse the command line, set up logging, run, map the outcome to an
//! exit status. Everything else lives in the library.

use std::process::ExitCode;

/// Every allocation of the process, librdkafka's too (see Cargo.toml: mimalloc overrides
/// malloc and free): the producer's hot path allocates and frees a message and its delivery
/// report per event, on different threads, where glibc's allocator cost 7 % of a produce.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
