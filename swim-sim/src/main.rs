//! `swim-sim`: runs the benchmark scenarios and prints one JSON object per
//! line (the same as `swim sim`).

use clap::Parser;
use swim_sim::runner::{self, SimArgs};

/// Runs the benchmark scenarios of `docs/scenarios.md` on the simulator.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    args: SimArgs,
}

#[global_allocator]
static HEAP: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

fn main() {
    swim_sim::heap::set_meter(|| swim_sim::heap::held_by(HEAP.stats()));
    let cli = Cli::parse();
    match runner::run(&cli.args) {
        Ok(lines) => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            // A closed stdout (`swim-sim ... | head`) ends the output
            // quietly: nobody is left to read it.
            let _ = lines.iter().try_for_each(|l| writeln!(out, "{l}"));
        }
        Err(e) => {
            eprintln!("swim-sim: {e}");
            std::process::exit(2);
        }
    }
}
