//! Gray failures in the simulator's fault API: a pause with its backlog,
//! a deaf receive path, one node's own loss, duplication and jitter.

use swim_core::{Config, Event};
use swim_sim::net::{Command, Flow, NetConfig, Sim, name_index, seed_from_env};
use swim_sim::scenario;
use swim_sim::views::Views;

fn converged(n: usize, seed: u64) -> Sim {
    let mut sim = Sim::new(n, Config::lan(), NetConfig { seed, ..NetConfig::default() }).unwrap();
    let mut views = Views::new(n);
    for i in 1..n {
        sim.schedule(0, Command::Join { node: i, seeds: vec![0] }).unwrap();
    }
    assert!(scenario::converge(&mut sim, &mut views, 60_000), "SWIM_SEED={seed}");
    sim
}

fn failed(sim: &mut Sim, until: u64) -> Vec<usize> {
    let mut out = Vec::new();
    sim.run_until(until, &mut |_, _, e: &Event| {
        if let Event::Failed { name, .. } = e {
            out.extend(name_index(name.as_str()));
        }
        Flow::Continue
    });
    out
}

#[test]
fn a_paused_node_handles_nothing_then_its_backlog_and_is_not_failed() {
    let seed = seed_from_env(31);
    let mut sim = converged(8, seed);
    let t = sim.now();
    let received = |sim: &Sim| sim.node(3).unwrap().stats().packets_received;
    sim.schedule(t, Command::Pause { node: 3, ms: 3_000 }).unwrap();
    sim.run_until(t + 1, &mut |_, _, _: &Event| Flow::Continue);
    let before = received(&sim);
    sim.run_until(t + 2_990, &mut |_, _, _: &Event| Flow::Continue);
    assert_eq!(received(&sim), before, "nothing handled during the pause");
    sim.run_until(t + 3_001, &mut |_, _, _: &Event| Flow::Continue);
    assert!(received(&sim) > before + 3, "the backlog arrives at once");
    assert!(failed(&mut sim, t + 60_000).is_empty(), "a 3 s pause is survived; SWIM_SEED={seed}");
}

#[test]
fn a_deaf_node_sends_but_receives_no_datagram() {
    let seed = seed_from_env(32);
    let mut sim = converged(6, seed);
    let t = sim.now();
    sim.schedule(t, Command::SetDeaf { node: 2, deaf: true }).unwrap();
    sim.run_until(t + 1, &mut |_, _, _: &Event| Flow::Continue);
    let (rx, tx) = {
        let s = sim.node(2).unwrap().stats();
        (s.packets_received, s.packets_sent)
    };
    sim.run_until(t + 10_000, &mut |_, _, _: &Event| Flow::Continue);
    let s = sim.node(2).unwrap().stats();
    assert_eq!(s.packets_received, rx);
    assert!(s.packets_sent > tx + 5);
    sim.schedule(sim.now(), Command::SetDeaf { node: 2, deaf: false }).unwrap();
    sim.run_until(t + 12_000, &mut |_, _, _: &Event| Flow::Continue);
    assert!(sim.node(2).unwrap().stats().packets_received > rx);
}

#[test]
fn node_loss_duplication_and_jitter_act_on_datagrams() {
    let seed = seed_from_env(33);
    let mut sim = converged(6, seed);
    let t = sim.now();
    // Everything node 1 sends is lost: the others hear nothing from it.
    sim.schedule(t, Command::SetNodeLoss { node: 1, send: 1.0, recv: 0.0 }).unwrap();
    let lost = sim.stats().lost;
    sim.run_until(t + 5_000, &mut |_, _, _: &Event| Flow::Continue);
    assert!(sim.stats().lost > lost + 5);
    sim.schedule(sim.now(), Command::SetNodeLoss { node: 1, send: 0.0, recv: 0.0 }).unwrap();
    assert!(sim.schedule(sim.now(), Command::SetNodeLoss { node: 1, send: 2.0, recv: 0.0 }).is_err());
    // Every datagram twice.
    let t = sim.now() + 1;
    sim.schedule(t, Command::SetDuplication(1.0)).unwrap();
    sim.run_until(t, &mut |_, _, _: &Event| Flow::Continue);
    let (sent, delivered) = (sim.stats().msgs_sent, sim.stats().packets_delivered);
    sim.run_until(t + 10_000, &mut |_, _, _: &Event| Flow::Continue);
    let (sent, delivered) = (sim.stats().msgs_sent - sent, sim.stats().packets_delivered - delivered);
    assert!(delivered >= 2 * sent - 4, "{delivered} delivered for {sent} sent");
    sim.schedule(sim.now(), Command::SetDuplication(0.0)).unwrap();
    // Jitter of up to 200 ms reorders datagrams; the cluster stays whole.
    sim.schedule(sim.now(), Command::SetJitter(200)).unwrap();
    let t = sim.now();
    assert!(failed(&mut sim, t + 60_000).is_empty(), "SWIM_SEED={seed}");
}
