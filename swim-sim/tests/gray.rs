//! Gray failures in the simulator's fault API: a pause with its backlog,
//! a deaf receive path, one node's own loss, duplication and jitter.

use lapswim_core::{Config, Event};
use lapswim_sim::net::{Command, Flow, NetConfig, Sim, name_index, seed_from_env};
use lapswim_sim::scenario;
use lapswim_sim::views::Views;

fn converged(n: usize, seed: u64) -> Sim {
    converged_with(n, seed, Config::lan())
}

fn converged_with(n: usize, seed: u64, config: Config) -> Sim {
    let mut sim = Sim::new(n, config, NetConfig { seed, ..NetConfig::default() }).unwrap();
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

#[test]
fn burst_loss_loses_its_stationary_share_and_stops_when_turned_off() {
    let seed = seed_from_env(34);
    let mut sim = converged(6, seed);
    let t = sim.now();
    // Bad one datagram in ten on average (0.02 / (0.02 + 0.18)), bursts
    // of 1 / 0.18 ≈ 5.6 datagrams, everything lost while bad.
    sim.schedule(t, Command::SetBurstLoss { enter: 0.02, leave: 0.18, loss: 1.0 }).unwrap();
    // Every packet moves its link's channel, datagrams and stream segments
    // alike, so the share holds over both together.
    let packets = |s: &lapswim_sim::net::NetStats| (s.msgs_sent + s.segments, s.lost + s.segments_lost);
    let (sent, lost) = packets(sim.stats());
    let failures = failed(&mut sim, t + 120_000);
    let (sent_now, lost_now) = packets(sim.stats());
    let share = (lost_now - lost) as f64 / (sent_now - sent) as f64;
    assert!((0.06..0.14).contains(&share), "lost {share}; SWIM_SEED={seed}");
    assert!(failures.is_empty(), "10 % burst loss is survived; SWIM_SEED={seed}");
    let t = sim.now();
    sim.schedule(t, Command::SetBurstLoss { enter: 0.0, leave: 0.0, loss: 0.0 }).unwrap();
    sim.run_until(t, &mut |_, _, _: &Event| Flow::Continue);
    let lost = sim.stats().lost;
    sim.run_until(t + 10_000, &mut |_, _, _: &Event| Flow::Continue);
    assert_eq!(sim.stats().lost, lost);
    assert!(sim.schedule(t, Command::SetBurstLoss { enter: 0.5, leave: 1.5, loss: 1.0 }).is_err());
}

#[test]
fn clocks_with_offsets_and_drift_run_their_timers_at_their_own_rate() {
    let seed = seed_from_env(35);
    let mut sim = converged(6, seed);
    let t = sim.now();
    // Node 1 a day ahead and 10 % fast, node 2 an hour ahead and 10 % slow.
    sim.schedule(t, Command::SetClock { node: 1, step_ms: 86_400_000, drift_ppm: 100_000 }).unwrap();
    sim.schedule(t, Command::SetClock { node: 2, step_ms: 3_600_000, drift_ppm: -100_000 }).unwrap();
    assert!(sim.schedule(t, Command::SetClock { node: 2, step_ms: 0, drift_ppm: -1_000_000 }).is_err());
    sim.run_until(t, &mut |_, _, _: &Event| Flow::Continue);
    let probes = |sim: &Sim, i: usize| sim.node(i).unwrap().stats().probes_sent;
    let before: Vec<u64> = (0..3).map(|i| probes(&sim, i)).collect();
    assert!(failed(&mut sim, t + 200_000).is_empty(), "SWIM_SEED={seed}");
    let count: Vec<f64> = (0..3).map(|i| (probes(&sim, i) - before[i]) as f64).collect();
    // One probe a period by each node's own clock: 200, 220 and 180.
    assert!((count[0] - 200.0).abs() <= 4.0, "{count:?}");
    assert!((count[1] / count[0] - 1.1).abs() < 0.03, "{count:?}");
    assert!((count[2] / count[0] - 0.9).abs() < 0.03, "{count:?}");
}

#[test]
fn a_deaf_member_does_not_declare_a_member_that_stalls() {
    // Node 2 hears no datagram for 120 s while node 5 stalls for 4 s every
    // 7 s: 2 suspects 5 and cannot hear the refutation by datagram (and
    // no push-pull comes to its rescue); its last-chance checks over
    // streams must reach 5 once it wakes.
    let seed = seed_from_env(36);
    let mut sim = converged_with(10, seed, Config::lan().with_push_pull_interval(None));
    let t = sim.now();
    sim.schedule(t, Command::SetDeaf { node: 2, deaf: true }).unwrap();
    sim.schedule(t + 120_000, Command::SetDeaf { node: 2, deaf: false }).unwrap();
    for k in 0..17 {
        sim.schedule(t + 1_000 + k * 7_000, Command::Pause { node: 5, ms: 4_000 }).unwrap();
    }
    let suspected = sim.node(2).unwrap().stats().suspicions_raised;
    let failed = failed(&mut sim, t + 180_000);
    assert!(sim.node(2).unwrap().stats().suspicions_raised > suspected, "the deaf node did suspect");
    assert!(!failed.contains(&5), "{failed:?}; SWIM_SEED={seed}");
}

#[test]
fn the_gray_scenario_declares_no_healthy_member_failed() {
    let seed = seed_from_env(1);
    let p = scenario::Params {
        n: 30,
        seed,
        latency_ms: 1,
        jitter_ms: 0,
        config: Config::lan(),
        regions: None,
        latency_model: lapswim_sim::geo::LatencyModel::Flat,
    };
    let run = lapswim_sim::gray::gray(&p, 0.5).unwrap();
    let line = &run.line;
    assert_eq!(line["outcome"], "completed", "{line}; SWIM_SEED={seed}");
    assert_eq!(line["false_failures"], 0, "{line}");
    assert!(line["suspicions"].as_u64().unwrap() > 0, "the faults did bite: {line}");
    assert_eq!(line["node_periods"], 30 * 1800, "{line}");
}

#[test]
fn the_fast_preset_detects_a_crash_in_half_the_time_and_survives_stalls() {
    let seed = seed_from_env(1);
    // The median over 80 crashes (four seeds of 20): one seed's 20 put the
    // ratio anywhere between 0.55 and 0.75.
    let median = |config: Config| {
        let mut all: Vec<f64> = Vec::new();
        for k in 0..4 {
            let p = scenario::Params {
                n: 30,
                seed: seed + k,
                latency_ms: 1,
                jitter_ms: 0,
                config: config.clone(),
                regions: None,
                latency_model: lapswim_sim::geo::LatencyModel::Flat,
            };
            let line = scenario::s2(&p, 20).unwrap().line;
            assert_eq!(line["false_failures"], 0, "{line}; SWIM_SEED={seed}");
            all.extend(line["all_live_down_ms"]["per_run"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()));
        }
        all.sort_by(f64::total_cmp);
        (all[all.len() / 2 - 1] + all[all.len() / 2]) / 2.0
    };
    let (lan, fast) = (median(Config::lan()), median(Config::fast()));
    // 1,789 ms against 2,923.5 ms when written. The lan preset's crashes
    // are found sooner than with the build before names were admitted at
    // their address (its per-seed medians were 3,309, 4,004, 3,470 and
    // 2,835 ms), the fast preset's about as soon (1,822, 1,764, 1,631 and
    // 1,842 ms): the second check holds the fast preset there.
    assert!(fast < 0.65 * lan, "fast {fast} ms vs lan {lan} ms; SWIM_SEED={seed}");
    assert!(fast <= 1_900.0, "fast {fast} ms; SWIM_SEED={seed}");
    // Stalls of up to 5 s outlast its 3 s suspicion; the stream checks and
    // the accusers' verdict keep the stalled members alive. (At 100 members,
    // the size the scenario is specified for: at 30 the suspicion is
    // shorter still, and some seeds fail a member stalled 5 s.)
    let p = scenario::Params {
        n: 100,
        seed,
        latency_ms: 1,
        jitter_ms: 0,
        config: Config::fast(),
        regions: None,
        latency_model: lapswim_sim::geo::LatencyModel::Flat,
    };
    let line = lapswim_sim::gray::gray(&p, 0.5).unwrap().line;
    assert_eq!(line["false_failures"], 0, "{line}; SWIM_SEED={seed}");
}
