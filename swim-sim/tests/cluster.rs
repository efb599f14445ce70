//! Whole-cluster behaviour on the simulated network.

use lapswim_core::{Config, Event};
use lapswim_sim::net::{Command, Flow, NetConfig, Sim, name_index};
use lapswim_sim::scenario;
use lapswim_sim::views::{Belief, Views};

fn cluster(n: usize, seed: u64) -> Sim {
    cluster_with(n, seed, Config::lan())
}

fn cluster_with(n: usize, seed: u64, config: Config) -> Sim {
    Sim::new(n, config, NetConfig { seed, ..NetConfig::default() }).unwrap()
}

fn join_all(sim: &mut Sim) {
    for i in 1..sim.len() {
        sim.schedule(i as u64 * 7 % 1000, Command::Join { node: i, seeds: vec![0] }).unwrap();
    }
}

/// Runs to `until`, tracking views; `f` sees every event.
fn run(sim: &mut Sim, views: &mut Views, until: u64, mut f: impl FnMut(u64, usize, &Event)) {
    sim.run_until(until, &mut |t, node, e: &Event| {
        views.apply(node, e);
        f(t, node, e);
        Flow::Continue
    });
}

fn converge(n: usize, seed: u64) -> (Sim, Views) {
    converge_with(n, seed, Config::lan())
}

fn converge_with(n: usize, seed: u64, config: Config) -> (Sim, Views) {
    let mut sim = cluster_with(n, seed, config);
    let mut views = Views::new(n);
    join_all(&mut sim);
    let converged = scenario::converge(&mut sim, &mut views, 120_000);
    assert!(converged, "{n} nodes (seed {seed}) did not converge by {} ms", sim.now());
    (sim, views)
}

#[test]
fn three_sixteen_and_a_hundred_nodes_converge_from_joins() {
    for n in [3, 16, 100] {
        let (sim, _) = converge(n, 11);
        for i in 0..n {
            assert_eq!(sim.node(i).unwrap().num_live(), n, "node {i} of {n}");
        }
    }
}

#[test]
fn a_crashed_node_is_suspected_then_failed_at_every_live_node() {
    let n = 16;
    let (mut sim, mut views) = converge(n, 12);
    let crash_at = sim.now() + 1000;
    let x = 5;
    sim.schedule(crash_at, Command::Crash(x)).unwrap();
    let mut suspected_at = vec![None; n];
    let mut failed_at = vec![None; n];
    run(&mut sim, &mut views, crash_at + 60_000, |t, node, e| match e {
        Event::Suspected { name, .. } if name_index(name.as_str()) == Some(x) => {
            suspected_at[node].get_or_insert(t);
        }
        Event::Failed { name, .. } => {
            assert_eq!(name_index(name.as_str()), Some(x), "only the crashed node fails");
            failed_at[node].get_or_insert(t);
        }
        _ => {}
    });
    for i in (0..n).filter(|&i| i != x) {
        assert_eq!(views.get(i, x), Belief::Dead, "node {i}");
        let (s, f) = (suspected_at[i], failed_at[i]);
        assert!(f.is_some(), "node {i} never failed {x}");
        // Every node passes through suspicion, by its own probe or gossip,
        // unless the failure reached it first.
        if let (Some(s), Some(f)) = (s, f) {
            assert!(s < f);
        }
    }
    assert!(suspected_at.iter().flatten().count() >= n / 2);
}

#[test]
fn a_graceful_leave_shows_left_everywhere_and_never_failed() {
    let n = 16;
    let (mut sim, mut views) = converge(n, 13);
    let x = 9;
    let at = sim.now() + 500;
    sim.schedule(at, Command::Leave(x)).unwrap();
    let mut completed = false;
    run(&mut sim, &mut views, at + 60_000, |_, node, e| {
        if let Event::Failed { name, .. } = e {
            panic!("node {node} reported {name} failed");
        }
        completed |= node == x && *e == Event::LeaveCompleted;
    });
    assert!(completed);
    assert!(sim.node(x).unwrap().has_left());
    for i in (0..n).filter(|&i| i != x) {
        assert_eq!(views.get(i, x), Belief::Left, "node {i}");
    }
}

#[test]
fn a_falsely_suspected_live_node_refutes_and_stays_alive() {
    let n = 16;
    let (mut sim, mut views) = converge(n, 14);
    let x = 3;
    let others: Vec<usize> = (0..n).filter(|&i| i != x).collect();
    // x hears everyone, but nobody hears x: its acks are lost for 4 s.
    let start = sim.now() + 100;
    sim.schedule(start, Command::Partition { id: 1, from: vec![x], to: others.clone(), both: false }).unwrap();
    sim.schedule(start + 4_000, Command::Heal).unwrap();
    let mut suspected = 0;
    run(&mut sim, &mut views, start + 90_000, |_, _, e| match e {
        Event::Suspected { name, .. } if name_index(name.as_str()) == Some(x) => suspected += 1,
        Event::Failed { name, .. } => panic!("{name} declared failed"),
        _ => {}
    });
    assert!(suspected > 0, "the one-way partition must raise a suspicion");
    assert!(sim.node(x).unwrap().incarnation() > 0, "x refuted with a higher incarnation");
    assert!(sim.node(x).unwrap().stats().refutations > 0);
    for &i in &others {
        assert_eq!(views.get(i, x), Belief::Alive, "node {i}");
    }
}

#[test]
fn a_hundred_nodes_at_ten_percent_loss_declare_no_live_node_failed() {
    let n = 100;
    // Without the stream fallback (lossless here), so lost datagrams do
    // raise suspicions and it is the refutations that save the members.
    let (mut sim, mut views) = converge_with(n, 15, Config::lan().with_fallback_ping(false));
    let start = sim.now();
    sim.schedule(start, Command::SetLoss(0.10)).unwrap();
    let mut suspicions = 0;
    run(&mut sim, &mut views, start + 300_000, |t, node, e| match e {
        Event::Failed { name, .. } => panic!("t={t}: node {node} declared live {name} failed"),
        Event::Suspected { .. } => suspicions += 1,
        _ => {}
    });
    assert!(suspicions > 0, "10% loss must cause some suspicions, all refuted");
    assert_eq!(views.up_pairs(), views.all_pairs());
}

#[test]
fn same_seed_same_digest() {
    let digest = |seed| {
        let mut sim = cluster(20, seed);
        join_all(&mut sim);
        sim.schedule(20_000, Command::SetLoss(0.05)).unwrap();
        sim.schedule(30_000, Command::Crash(4)).unwrap();
        sim.run_until(90_000, &mut |_, _, _: &Event| Flow::Continue);
        (sim.digest(), sim.stats().msgs_sent)
    };
    assert_eq!(digest(21), digest(21));
    assert_ne!(digest(21).0, digest(22).0);
}

#[test]
fn a_restarted_node_rejoins_and_refutes_its_death() {
    let n = 8;
    let (mut sim, mut views) = converge(n, 16);
    let t = sim.now();
    sim.schedule(t + 100, Command::Crash(2)).unwrap();
    // Detected within ~10 s; the tombstones last 30 s more.
    run(&mut sim, &mut views, t + 25_000, |_, _, _| {});
    assert!((0..n).filter(|&i| i != 2).all(|i| views.get(i, 2) == Belief::Dead));
    views.reset_observer(2);
    sim.schedule(t + 25_000, Command::Restart { node: 2, seeds: vec![0], new_addr: false }).unwrap();
    run(&mut sim, &mut views, t + 60_000, |_, _, _| {});
    assert!(sim.node(2).unwrap().incarnation() > 0, "the restarted node outbid its old death");
    assert_eq!(views.alive_pairs(), views.all_pairs());
}

#[test]
fn stream_bytes_count_each_frame_once_as_it_goes_onto_a_connection() {
    // Joins and push-pulls on a network without loss or crashes: every
    // frame a node wrote went onto a connection exactly once, so the
    // network's count is what the nodes say they sent, with the 4-byte
    // length prefix of each frame. (Frames written while the connection
    // was still being made used to be counted twice: once written, once
    // sent.)
    let (mut sim, mut views) = converge(20, 3);
    run(&mut sim, &mut views, 120_000, |_, _, _| {});
    let sent: u64 = (0..sim.len())
        .map(|i| {
            let s = sim.node(i).unwrap().stats();
            s.frame_bytes_sent + 4 * s.frames_sent
        })
        .sum();
    assert!(sim.stats().streams > 20, "joins and push-pulls ran: {:?}", sim.stats());
    assert_eq!(sim.stats().frame_bytes, sent);
}
