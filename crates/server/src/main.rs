//! The `sentry` binary: parses the command line and runs the command.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc: ingest allocates many small, short-lived values per event (JSON, tags, rows), and
/// it does so measurably faster than the system allocator (see bench/README.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = server::cli::Cli::parse();
    match server::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
