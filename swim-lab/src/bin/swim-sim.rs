//! `swim-sim`: `swim sim` with foca as a second implementation
//! (`--impl foca`), for the comparisons; one JSON object per line.

use clap::Parser;
use swim_lab::runner::SimArgs;

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
    lapswim_sim::heap::set_meter(|| swim_lab::heap::held_by(HEAP.stats()));
    let cli = Cli::parse();
    match swim_lab::run(&cli.args) {
        Ok(lines) => swim_lab::print_lines(&lines),
        Err(e) => {
            eprintln!("swim-sim: {e}");
            std::process::exit(2);
        }
    }
}
