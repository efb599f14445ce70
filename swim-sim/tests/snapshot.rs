//! A committed digest of everything a small cluster emits through a join,
//! a crash and a leave. Any change of behaviour, however small, changes
//! it: review the change, then bless the new value with
//! `SWIM_BLESS=1 cargo test -p lapswim-sim --test snapshot`.

use lapswim_core::{Config, Event};
use lapswim_sim::net::{Command, Flow, NetConfig, Sim};

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots/digest.txt");

fn run() -> String {
    let mut sim =
        Sim::new(16, Config::lan(), NetConfig { seed: 1, latency_ms: 1, loss: 0.02, ..NetConfig::default() }).unwrap();
    for i in 1..16 {
        sim.schedule(i as u64 * 13, Command::Join { node: i, seeds: vec![0] }).unwrap();
    }
    sim.schedule(40_000, Command::Crash(5)).unwrap();
    sim.schedule(70_000, Command::Leave(9)).unwrap();
    sim.run_until(100_000, &mut |_, _, _: &Event| Flow::Continue);
    format!(
        "16 nodes, seed 1, 2% loss, crash at 40 s, leave at 70 s, 100 s: {} ({} datagrams)\n",
        sim.digest(),
        sim.stats().msgs_sent
    )
}

#[test]
fn behaviour_matches_the_committed_digest() {
    let now = run();
    assert_eq!(now, run(), "the same run gives the same digest");
    if std::env::var_os("SWIM_BLESS").is_some() {
        std::fs::write(FILE, &now).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(FILE).unwrap_or_default();
    assert_eq!(committed, now, "behaviour changed: review, then bless with SWIM_BLESS=1");
}
