//! Protocol properties that need a whole cluster, checked through the
//! simulator's fault and injection API.

use lapswim_core::internals::wire::{Message, PacketWriter};
use lapswim_core::{Config, Event, OwnedInput};
use lapswim_sim::net::{Command, Flow, NetConfig, Sim, Stopped, name_index, node_addr, seed_from_env};
use lapswim_sim::scenario;
use lapswim_sim::views::{Belief, Views};

fn converged(n: usize, config: Config, seed: u64) -> (Sim, Views) {
    let mut sim = Sim::new(n, config, NetConfig { seed, ..NetConfig::default() }).unwrap();
    let mut views = Views::new(n);
    for i in 1..n {
        sim.schedule(i as u64 * 7, Command::Join { node: i, seeds: vec![0] }).unwrap();
    }
    assert!(scenario::converge(&mut sim, &mut views, 300_000), "no convergence (SWIM_SEED={seed})");
    (sim, views)
}

/// With the WAN preset (5 s period, 3 s probe timeout) the helpers' nacks
/// must arrive within the prober's period: a dead target then costs the
/// prober no local health, since every helper vouched for its network.
#[test]
fn wan_nacks_arrive_within_the_period_and_spare_local_health() {
    let seed = seed_from_env(31);
    let n = 5;
    let (mut sim, mut views) = converged(n, Config::wan(), seed);
    let crash_at = sim.now() + 100;
    sim.schedule(crash_at, Command::Crash(4)).unwrap();
    sim.set_invariant(Box::new(|s: &Sim| {
        for i in 0..4 {
            let health = s.node(i).map_err(|e| e.to_string())?.local_health();
            if health > 0 {
                return Err(format!("node {i} raised its local health to {health}"));
            }
        }
        Ok(())
    }));
    let mut failed = 0;
    let stopped = sim.run_until(crash_at + 120_000, &mut |_, _, e: &Event| {
        failed += u32::from(matches!(e, Event::Failed { .. }));
        views.apply(0, e);
        Flow::Continue
    });
    assert_eq!(stopped, Stopped::Deadline, "{:?} (SWIM_SEED={seed})", sim.violation());
    assert!(failed >= 4, "every survivor declares the crash (SWIM_SEED={seed})");
    let probes_failed: u64 = (0..4).map(|i| sim.node(i).unwrap().stats().probes_failed).sum();
    let nacks: u64 = (0..4).map(|i| sim.node(i).unwrap().stats().nacks_received).sum();
    assert!(probes_failed > 0 && nacks >= 3 * probes_failed, "{nacks} nacks for {probes_failed} failed probes");
}

fn suspect(incarnation: u32, name: &str, from: &str) -> OwnedInput {
    let mut w = PacketWriter::new(1400);
    w.push(&Message::Suspect { incarnation, name, from }).unwrap();
    OwnedInput::Packet { from: node_addr(2), bytes: w.finish().as_bytes().to_vec() }
}

/// A member whose incarnation stands at the top of the number space
/// refutes a rumour at the maximum: the count goes on past it, and the
/// cluster takes it.
#[test]
fn a_live_member_refutes_rumours_at_the_maximum_incarnation() {
    let seed = seed_from_env(32);
    let n = 4;
    let mut sim = Sim::new(n, Config::lan(), NetConfig { seed, ..NetConfig::default() }).unwrap();
    let mut views = Views::new(n);
    // Before it joins, rumours about n1 walk it to the top, in two steps
    // of less than half the space: the others first learn of it there.
    for inc in [0x7fff_fff0, 0xffff_fff0] {
        sim.schedule(0, Command::Input { node: 1, input: suspect(inc, "n1", "n2") }).unwrap();
    }
    for i in 1..n {
        sim.schedule(i as u64 * 7, Command::Join { node: i, seeds: vec![0] }).unwrap();
    }
    assert!(scenario::converge(&mut sim, &mut views, 300_000), "no convergence (SWIM_SEED={seed})");
    for o in (0..n).filter(|&o| o != 1) {
        assert_eq!(sim.node(o).unwrap().member("n1").unwrap().incarnation, 0xffff_fff1, "node {o}");
    }
    let t = sim.now();
    for node in 0..n {
        sim.schedule(t, Command::Input { node, input: suspect(u32::MAX, "n1", "n2") }).unwrap();
    }
    let mut failures = 0;
    sim.run_until(t + 120_000, &mut |_, node, e: &Event| {
        views.apply(node, e);
        if let Event::Failed { name, .. } = e {
            failures += 1;
            eprintln!("node {node} failed {name}");
        }
        Flow::Continue
    });
    assert_eq!(failures, 0, "SWIM_SEED={seed}");
    assert_eq!(sim.node(1).unwrap().incarnation(), 0, "n1 counted past u32::MAX");
    for o in (0..n).filter(|&o| o != 1) {
        assert_eq!(views.get(o, 1), Belief::Alive, "node {o} (SWIM_SEED={seed})");
        assert_eq!(sim.node(o).unwrap().member("n1").unwrap().incarnation, 0);
    }
    assert!(name_index("n1") == Some(1));
}

/// Rumours that leap a live member's incarnation far ahead, to the top of
/// the number space, reach everyone: the peers ignore them, the member
/// outbids them and then comes back to the record its peers hold, and
/// every table ends in agreement with it.
#[test]
fn rumours_leaping_far_ahead_leave_every_table_in_agreement() {
    let seed = seed_from_env(32);
    let n = 4;
    let (mut sim, mut views) = converged(n, Config::lan(), seed);
    let t = sim.now();
    // n1 follows each, to end a quarter of the space ahead of its peers.
    for (k, inc) in [0x7fff_fff0u32, 0x8000_0000, 0xc000_0000, 0x4000_0000].into_iter().enumerate() {
        for node in 0..n {
            let at = t + 5_000 * k as u64;
            sim.schedule(at, Command::Input { node, input: suspect(inc, "n1", "n2") }).unwrap();
        }
    }
    let mut taken = 0;
    sim.run_until(t + 120_000, &mut |_, node, e: &Event| {
        views.apply(node, e);
        taken += u32::from(matches!(e, Event::Failed { .. } | Event::Suspected { .. }));
        Flow::Continue
    });
    assert_eq!(taken, 0, "no peer took a leap (SWIM_SEED={seed})");
    let own = sim.node(1).unwrap().incarnation();
    assert!(own < lapswim_core::internals::INCARNATION_WINDOW, "n1 came back within its peers' reach: {own}");
    for o in (0..n).filter(|&o| o != 1) {
        assert_eq!(views.get(o, 1), Belief::Alive, "node {o} (SWIM_SEED={seed})");
        assert_eq!(sim.node(o).unwrap().member("n1").unwrap().incarnation, own, "node {o} (SWIM_SEED={seed})");
        assert!(sim.node(o).unwrap().stats().incarnation_leaps >= 3, "node {o}");
    }
}
