//! `swim-loopback`: N nodes in this process on loopback sockets; one JSON
//! line of convergence, detection, CPU, memory and traffic.

use std::process::ExitCode;

use clap::Parser;
use swim_lab::loopback::{self, LoopbackArgs};

/// Measure N nodes in this process on loopback: convergence, detection,
/// CPU, memory and traffic (one JSON line).
#[derive(Parser, Debug)]
#[command(name = "swim-loopback", version)]
struct Cli {
    #[command(flatten)]
    args: LoopbackArgs,
}

/// The counting allocator `swim loopback` ran with, so that its CPU and
/// memory figures stay comparable.
#[global_allocator]
static HEAP: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match loopback::run(cli.args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            use std::io::Write;
            let _ = writeln!(std::io::stderr().lock(), "swim-loopback: {e}");
            ExitCode::FAILURE
        }
    }
}
