//! The fault schedule the cluster properties share: drawn from a case's
//! seed alone, put on a converged cluster of [`N`] nodes.

#![allow(unreachable_pub, reason = "shared between test files")]

use lapswim_core::Config;
use lapswim_core::internals::Random;
use lapswim_sim::net::{Command, NetConfig, Sim, SimRng};
use lapswim_sim::scenario;
use lapswim_sim::views::Views;
use rand_core::SeedableRng;

pub const N: usize = 10;
/// Faults start within this window after convergence.
pub const FAULTS_MS: u64 = 60_000;
/// The long partition: longer than the longest suspicion (4 s × 6 at n = 10).
pub const PARTITION_MS: (u64, u64) = (50_000, 70_000);
/// When every fault is lifted, after the faults' start.
pub const CALM_AFTER_MS: u64 = FAULTS_MS + PARTITION_MS.1;
/// How long a quiet cluster gets to converge.
pub const QUIET_MS: u64 = 120_000;

/// A uniform draw in `lo..=hi`.
pub fn pick(rng: &mut SimRng, lo: u64, hi: u64) -> u64 {
    lo + Random::below(rng, (hi - lo + 1) as usize) as u64
}

fn chance(rng: &mut SimRng, per_mille: u64) -> f64 {
    pick(rng, 0, per_mille) as f64 / 1000.0
}

/// What the schedule did that the checks need to know.
#[derive(Debug, Default)]
pub struct Plan {
    /// The partition: its minority, start and end.
    pub cut: Option<(Vec<usize>, u64, u64)>,
    /// Nodes that crash and stay down.
    pub down: Vec<usize>,
    /// Restarts: the node and when it came back.
    pub restarts: Vec<(usize, u64)>,
    /// Human-readable schedule, for the failure message.
    pub log: Vec<String>,
}

/// Draws a fault schedule from `seed` and puts it on `sim`, starting at `t0`.
pub fn schedule(sim: &mut Sim, seed: u64, t0: u64) -> Plan {
    let mut rng = SimRng::seed_from_u64(seed ^ 0xC4A0_5EED);
    let mut plan = Plan::default();
    let mut crashed = 0;
    let put = |sim: &mut Sim, plan: &mut Plan, at: u64, cmd: Command| {
        plan.log.push(format!("+{}ms {cmd:?}", at - t0));
        sim.schedule(at, cmd).unwrap();
    };
    for _ in 0..pick(&mut rng, 3, 10) {
        let at = t0 + pick(&mut rng, 0, FAULTS_MS);
        let node = pick(&mut rng, 0, N as u64 - 1) as usize;
        match pick(&mut rng, 0, 9) {
            0 => put(sim, &mut plan, at, Command::SetLoss(chance(&mut rng, 150))),
            1 => {
                let (enter, leave) = (0.01 + chance(&mut rng, 40), 0.2 + chance(&mut rng, 300));
                put(sim, &mut plan, at, Command::SetBurstLoss { enter, leave, loss: 1.0 });
            }
            2 => put(sim, &mut plan, at, Command::Pause { node, ms: pick(&mut rng, 500, 5_000) }),
            3 => {
                put(sim, &mut plan, at, Command::SetDeaf { node, deaf: true });
                let end = at + pick(&mut rng, 5_000, 60_000);
                put(sim, &mut plan, end, Command::SetDeaf { node, deaf: false });
            }
            4 => {
                let (send, recv) = (chance(&mut rng, 300), chance(&mut rng, 300));
                put(sim, &mut plan, at, Command::SetNodeLoss { node, send, recv });
            }
            5 => put(sim, &mut plan, at, Command::SetDuplication(chance(&mut rng, 200))),
            6 => put(sim, &mut plan, at, Command::SetJitter(pick(&mut rng, 0, 100))),
            7 => {
                let step_ms = pick(&mut rng, 0, 10_000_000);
                let drift_ppm = pick(&mut rng, 0, 100_000) as i32 - 50_000;
                put(sim, &mut plan, at, Command::SetClock { node, step_ms, drift_ppm });
            }
            8 if plan.cut.is_none() => {
                let size = pick(&mut rng, 1, 3) as usize;
                let mut order: Vec<usize> = (0..N).collect();
                (&mut rng as &mut dyn Random).shuffle(&mut order);
                let (minority, rest) = (order[..size].to_vec(), order[size..].to_vec());
                let end = at + pick(&mut rng, PARTITION_MS.0, PARTITION_MS.1);
                put(sim, &mut plan, at, Command::Partition { id: 1, from: minority.clone(), to: rest, both: true });
                put(sim, &mut plan, end, Command::HealPartition(1));
                plan.cut = Some((minority, at, end));
            }
            9 if crashed < 3 && !plan.down.contains(&node) => {
                crashed += 1;
                put(sim, &mut plan, at, Command::Crash(node));
                if pick(&mut rng, 0, 1) == 0 {
                    let back = at + pick(&mut rng, 5_000, 40_000);
                    let seeds = (0..N).filter(|&i| i != node).collect();
                    let new_addr = pick(&mut rng, 0, 1) == 0;
                    put(sim, &mut plan, back, Command::Restart { node, seeds, new_addr });
                    plan.restarts.push((node, back));
                } else {
                    plan.down.push(node);
                }
            }
            _ => {}
        }
    }
    // Calm: every fault lifted (clocks keep their drift: that is normal).
    let calm = t0 + CALM_AFTER_MS;
    for cmd in [Command::Heal, Command::SetLoss(0.0), Command::SetDuplication(0.0), Command::SetJitter(0)] {
        sim.schedule(calm, cmd).unwrap();
    }
    sim.schedule(calm, Command::SetBurstLoss { enter: 0.0, leave: 0.0, loss: 0.0 }).unwrap();
    for node in 0..N {
        sim.schedule(calm, Command::SetDeaf { node, deaf: false }).unwrap();
        sim.schedule(calm, Command::SetNodeLoss { node, send: 0.0, recv: 0.0 }).unwrap();
    }
    plan
}

/// A cluster of [`N`] members on `seed`'s network, all joined through node
/// 0 and converged: where every case starts.
pub fn converged(seed: u64) -> Result<Sim, String> {
    let mut sim = Sim::new(N, Config::lan(), NetConfig { seed, ..NetConfig::default() }).map_err(|e| e.to_string())?;
    let mut views = Views::new(N);
    for i in 1..N {
        sim.schedule(0, Command::Join { node: i, seeds: vec![0] }).map_err(|e| e.to_string())?;
    }
    if !scenario::converge(&mut sim, &mut views, 65_000) {
        return Err("no convergence before the faults".into());
    }
    Ok(sim)
}
