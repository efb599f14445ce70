//! Cluster-level property: whatever mix of loss, slow nodes, short
//! partitions and crashes hits a converged cluster, once the network
//! heals every live node sees every live node alive and every crashed
//! node failed, and the run replays identically from its seed. A failure
//! prints the schedule and seed to replay it.

use lapswim_core::Config;
use lapswim_sim::net::{Command, NetConfig, Sim};
use lapswim_sim::scenario;
use lapswim_sim::views::{Belief, Views};
use proptest::prelude::*;

const N: usize = 10;

#[derive(Clone, Debug)]
enum Fault {
    Loss(u8),
    Slow(usize, u16),
    OneWay(usize, u16),
    Crash(usize),
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        (0u8..=15).prop_map(Fault::Loss),
        (0..N, 0u16..400).prop_map(|(n, ms)| Fault::Slow(n, ms)),
        (0..N, 500u16..3000).prop_map(|(n, ms)| Fault::OneWay(n, ms)),
        (0..N).prop_map(Fault::Crash),
    ]
}

/// Runs one schedule; returns the final views, who crashed, and the digest
/// of every action emitted.
fn run(seed: u64, faults: &[(u32, Fault)]) -> Result<(Views, [bool; N], lapswim_core::Digest), TestCaseError> {
    let mut sim = Sim::new(N, Config::lan(), NetConfig { seed, ..NetConfig::default() }).unwrap();
    let mut views = Views::new(N);
    for i in 1..N {
        sim.schedule(0, Command::Join { node: i, seeds: vec![0] }).unwrap();
    }
    // Gossip alone may miss a pair; push-pull (every 30 s) repairs it.
    prop_assert!(scenario::converge(&mut sim, &mut views, 65_000), "no convergence before the faults (seed {})", seed);
    let start = sim.now();
    let mut crashed = [false; N];
    for (at, f) in faults {
        let at = start + u64::from(*at);
        match *f {
            Fault::Loss(p) => sim.schedule(at, Command::SetLoss(f64::from(p) / 100.0)).unwrap(),
            Fault::Slow(n, ms) => sim.schedule(at, Command::SetSlow { node: n, ms: u64::from(ms) }).unwrap(),
            Fault::OneWay(n, ms) => {
                let others = (0..N).filter(|&i| i != n).collect();
                sim.schedule(at, Command::Partition { id: 1, from: vec![n], to: others, both: false }).unwrap();
                sim.schedule(at + u64::from(ms), Command::Heal).unwrap();
            }
            Fault::Crash(n) => {
                // Keep a majority alive, so there is a cluster to heal.
                if crashed.iter().filter(|c| **c).count() < 3 {
                    crashed[n] = true;
                    sim.schedule(at, Command::Crash(n)).unwrap();
                }
            }
        }
    }
    let calm = start + 70_000;
    sim.schedule(calm, Command::Heal).unwrap();
    sim.schedule(calm, Command::SetLoss(0.0)).unwrap();
    for n in 0..N {
        sim.schedule(calm, Command::SetSlow { node: n, ms: 0 }).unwrap();
    }
    scenario::observe(&mut sim, &mut views, calm + 120_000);
    Ok((views, crashed, sim.digest()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn the_cluster_heals_to_the_truth(seed in any::<u64>(), faults in proptest::collection::vec((0u32..60_000, fault()), 1..8)) {
        let (views, crashed, digest) = run(seed, &faults)?;
        for o in (0..N).filter(|&o| !crashed[o]) {
            for t in (0..N).filter(|&t| t != o) {
                let want = if crashed[t] { Belief::Dead } else { Belief::Alive };
                prop_assert_eq!(views.get(o, t), want, "node {} about node {} (seed {})", o, t, seed);
            }
        }
        // The same seed and schedule replay to the same actions, byte for byte.
        let (_, _, again) = run(seed, &faults)?;
        prop_assert_eq!(digest, again, "seed {} is not reproducible", seed);
    }
}
