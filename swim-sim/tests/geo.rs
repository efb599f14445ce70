//! The geo latency model in the scenarios: a cluster on the globe
//! converges, detects a crash everywhere, and its probes see round trips
//! of the model's shape.

use lapswim_core::Config;
use lapswim_sim::geo::{Geo, LatencyModel};
use lapswim_sim::scenario::{self, Params};

fn params(n: usize) -> Params {
    Params {
        n,
        seed: 1,
        latency_ms: 1,
        jitter_ms: 0,
        config: Config::lan(),
        regions: None,
        latency_model: LatencyModel::Geo,
    }
}

#[test]
fn a_cluster_on_the_globe_converges_and_detects_a_crash() {
    let p = params(60);
    let s1 = scenario::s1(&p).unwrap().line;
    assert_eq!(s1["outcome"], "converged", "{s1}");
    assert_eq!(s1["latency_model"], "geo", "{s1}");
    let s2 = scenario::s2(&p, 2).unwrap().line;
    assert_eq!(s2["false_failures"], 0, "{s2}");
    assert!(s2["all_live_down_ms"]["max"].as_u64().is_some(), "every crash detected: {s2}");
}

#[test]
fn the_simulated_network_delivers_at_the_model_s_latencies() {
    // The model the network builds from a seed is the one `Geo::new`
    // builds: a probe between two members takes their round trip.
    let g = Geo::new(40, 6, 9);
    let sim_geo = {
        let net = lapswim_sim::net::NetConfig { seed: 9, latency_model: LatencyModel::Geo, ..Default::default() };
        let sim = lapswim_sim::net::Sim::new(40, Config::lan(), net).unwrap();
        sim.geo().cloned().expect("the geo model is in force")
    };
    for (i, j) in [(0, 1), (0, 7), (3, 22), (39, 5)] {
        assert_eq!(sim_geo.rtt_ms(i, j), g.rtt_ms(i, j));
    }
    let same = g.rtt_ms(0, 6).unwrap();
    let across = g.rtt_ms(0, 1).unwrap();
    assert!(same < across, "members of one region are nearer ({same} ms) than of two ({across} ms)");
}

#[test]
fn the_protocol_s_coordinates_estimate_round_trips_as_well_as_serf_s_published_ones() {
    let lines = lapswim_sim::coords::coords(&params(150), 200).unwrap();
    assert_eq!(lines.len(), 2);
    let (ours, reference) = (&lines[0], &lines[1]);
    assert_eq!((ours["impl"].as_str(), ours["algorithm"].as_str()), (Some("swim"), Some("swim")), "{ours}");
    assert_eq!(
        (reference["impl"].as_str(), reference["algorithm"].as_str()),
        (Some("reference"), Some("serf")),
        "{reference}"
    );
    for line in [ours, reference] {
        let median = line["median_rel_error"].as_f64().unwrap();
        let p95 = line["p95_rel_error"].as_f64().unwrap();
        assert!(median < 0.15, "{line}");
        assert!(median <= p95, "{line}");
        assert!(line["converged_ms"].as_u64().is_some_and(|t| t <= 200_000), "{line}");
    }
    // The protocol learns from the probes a SWIM member makes anyway, at
    // the cost of a coordinate on some of them.
    let ours_median = ours["median_rel_error"].as_f64().unwrap();
    let theirs = reference["median_rel_error"].as_f64().unwrap();
    assert!(ours_median <= theirs + 0.02, "{ours_median} against {theirs}");
    assert!(ours["coordinates_sent_per_node_per_s"].as_f64().unwrap() > 0.0, "{ours}");
}
