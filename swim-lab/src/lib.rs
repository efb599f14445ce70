//! The comparison laboratory: `swim sim`'s command line (included from
//! `swim-cli/src/lab`, one copy) with foca as a second implementation
//! (`--impl foca`), for docs/comparison.md and the benchmarks. Not
//! published; nothing shipped depends on it, and the `swim` binary does
//! not link foca.
//!
//! ```text
//! cargo run --release -p swim-lab --bin swim-sim -- s3 --loss 0.2 --impl foca
//! ```

pub mod foca_node;
#[path = "../../swim-cli/src/lab/mod.rs"]
pub mod lab;

/// The local-cluster harness the included measurements run on.
pub use swim_testkit::cluster;
/// The presets the included measurements take as flags.
#[path = "../../swim-cli/src/presets.rs"]
pub mod presets;

pub use lab::{heap, plot, print_lines, runner};

use lab::runner::{SimArgs, compared};
use lapswim_sim::scenario::{Params, Report};

/// The scenarios on foca: its own configuration, so swim's presets,
/// overrides, traces and charts do not apply.
pub fn foca(args: &SimArgs, p: &Params) -> Result<Vec<Report>, String> {
    let swim_only = args.preset != "lan"
        || args.suspicion_mult.is_some()
        || args.probe_interval_ms.is_some()
        || args.rtt_floor_ms.is_some()
        || args.record.is_some()
        || args.scenario.plot().is_some();
    if swim_only {
        return Err(
            "--impl foca runs foca's LAN configuration: --preset, the overrides, --record and --plot are swim's".into(),
        );
    }
    let reports = compared::<crate::foca_node::FocaNode>(&args.scenario, p)?
        .ok_or("--impl foca runs s1, s2, s3, s4 and spread")?;
    reports.into_iter().collect::<Result<_, _>>().map_err(|e| e.to_string())
}

/// [`runner::run`] with foca as `--impl foca`.
pub fn run(args: &SimArgs) -> Result<Vec<String>, String> {
    runner::run(args, Some(&foca))
}
