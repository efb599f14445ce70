//! The `steady` scenario at small n: tables built directly, no bootstrap,
//! one crash detected everywhere and nothing else failed.

use lapswim_core::{Config, Event};
use lapswim_sim::net::{Flow, NetConfig, Sim, seed_from_env};
use lapswim_sim::scenario::Params;
use lapswim_sim::steady;

fn params(n: usize, seed: u64) -> Params {
    Params {
        n,
        seed,
        latency_ms: 1,
        jitter_ms: 0,
        config: Config::lan(),
        regions: None,
        latency_model: lapswim_sim::geo::LatencyModel::Flat,
    }
}

#[test]
fn seeded_tables_are_whole_from_the_start_without_a_join() {
    let (n, seed) = (50, seed_from_env(11));
    let mut sim = Sim::new(n, Config::lan(), NetConfig { seed, ..NetConfig::default() }).unwrap();
    assert_eq!(steady::seed_converged(&mut sim).unwrap(), n, "seed {seed}");
    for i in 0..n {
        let node = sim.node(i).unwrap();
        assert_eq!(node.num_live(), n, "seed {seed}: node {i} holds everyone");
        assert_eq!(node.queued_updates(), 0, "seed {seed}: a converged cluster has nothing to spread");
    }
    // Running on: no join, no member learnt or lost, nothing sent but
    // probes and syncs.
    let mut news = Vec::new();
    sim.run_until(20_000, &mut |t, i, e: &Event| {
        if !matches!(e, Event::JoinCompleted { .. } | Event::Joined { .. } | Event::Failed { .. }) {
            return Flow::Continue;
        }
        news.push((t, i, e.clone()));
        Flow::Continue
    });
    assert!(news.is_empty(), "seed {seed}: {news:?}");
    let probes: u64 = (0..n).map(|i| sim.node(i).unwrap().stats().probes_acked).sum();
    assert!(probes >= (n as u64) * 18, "seed {seed}: every node probes every period ({probes} acked)");
}

#[test]
fn steady_detects_the_crash_everywhere_and_fails_no_one_else() {
    let seed = seed_from_env(11);
    let line = steady::steady(&params(50, seed), 40).unwrap();
    assert_eq!(line["scenario"], "steady");
    assert_eq!(line["outcome"], "completed", "seed {seed}: {line}");
    assert_eq!(line["members_at_start"], 50, "seed {seed}: the tables were whole from the start");
    assert_eq!(line["joins"], 0, "seed {seed}: no bootstrap");
    assert_eq!(line["false_failures"], 0, "seed {seed}: {line}");
    let crash = line["crash_at_ms"].as_u64().unwrap();
    assert!((10_000..11_000).contains(&crash), "seed {seed}: {crash}");
    let down = line["all_live_down_ms"].as_u64().expect("every live node has the crashed one failed");
    assert!(line["first_suspect_ms"].as_u64().unwrap() <= down, "seed {seed}: {line}");
    assert_eq!(line["virtual_ms"], 40_000, "seed {seed}: detected within the run, which ran as long as asked");
    assert!(line["virtual_per_wall"].as_f64().unwrap() > 0.0);
    assert!(line["msgs_per_node_per_s"].as_f64().unwrap() > 1.0, "seed {seed}: at least a probe and its ack");
    assert!(line["bytes_per_node_per_s"].as_f64().unwrap() > 0.0);
    assert!(line["sync_bytes_per_node_per_s"].as_f64().unwrap() > 0.0, "seed {seed}: push-pulls ran");
    for field in ["n", "seed", "latency_ms", "loss", "config", "wall_s", "cpu_s", "peak_rss_mib", "seed_wall_s"] {
        assert!(line.get(field).is_some(), "{field} missing: {line}");
    }
    // Same arguments, same run.
    let again = steady::steady(&params(50, seed), 40).unwrap();
    assert_eq!(line["digest"], again["digest"]);
}
