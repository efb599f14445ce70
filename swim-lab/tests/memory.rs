//! The `memory` scenario's figures, checked: a member entry costs a node
//! at most 128 bytes once its news has spread and at most twice that while
//! news of every member is queued (16-byte names, no metadata), at 1,000
//! and 10,000 members. Heap bytes counted by the allocator: deterministic
//! for a given build, not a timing.

use swim_lab::run;
use swim_lab::runner::SimArgs;

#[global_allocator]
static HEAP: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

fn memory(n: usize) -> serde_json::Value {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SimArgs,
    }
    let cli = Cli::parse_from(["swim-sim", "memory", "--nodes", &n.to_string()]);
    let lines = run(&cli.args).expect("runs");
    serde_json::from_str(&lines[0]).expect("one JSON line")
}

#[test]
fn a_member_entry_costs_at_most_128_bytes_and_twice_that_at_the_bootstrap_peak() {
    lapswim_sim::heap::set_meter(|| swim_lab::heap::held_by(HEAP.stats()));
    for n in [1_000usize, 10_000] {
        let v = memory(n);
        assert_eq!(v["outcome"], "completed", "{v}");
        assert_eq!(v["queued_at_peak"], n, "news of every member was queued at once: {v}");
        let steady = v["bytes_per_member"].as_f64().expect("figure");
        let peak = v["peak_bytes_per_member"].as_f64().expect("figure");
        println!("n = {n}: {steady} B per member, {peak} B at the peak");
        assert!(steady > 40.0 && steady <= 128.0, "n = {n}: {steady} B per member");
        assert!(peak <= 256.0, "n = {n}: {peak} B per member at the peak");
    }
}
