//! The topology-aware selector on a cluster spread over three regions:
//! most datagrams stay within a region, crashes are still detected
//! everywhere, and loss causes no false failure.

use lapswim_core::Config;
use lapswim_sim::regions::{Options, regions};
use lapswim_sim::scenario::Params;

#[test]
fn probing_near_members_keeps_most_traffic_within_a_region() {
    let p = Params {
        n: 30,
        seed: 1,
        latency_ms: 1,
        jitter_ms: 0,
        config: Config::lan(),
        regions: None,
        latency_model: lapswim_sim::geo::LatencyModel::Flat,
    };
    let o = Options { regions: 3, near_ms: 5, far_ms: 80, runs: 2, loss: 0.1, selectors: lapswim_sim::regions::ALL };
    let v = regions(&p, o).expect("runs");
    assert_eq!(v["outcome"], "completed", "{v}");
    let share = |k: &str| v[k]["cross_region_share"].as_f64().expect("share");
    // Uniform choice crosses regions about two times in three.
    assert!((0.55..0.8).contains(&share("default")), "{v}");
    assert!(share("topology") < 0.3, "{v}");
    // The coordinates find the regions by themselves.
    assert!(share("coords") < 0.3, "{v}");
    for k in ["default", "topology", "coords"] {
        assert_eq!(v[k]["s2_false_failures"], 0, "{k}: {v}");
        assert_eq!(v[k]["s3_false_failures"], 0, "{k}: {v}");
        assert!(v[k]["all_live_down_ms"]["max"].as_u64().is_some(), "{k}: every crash detected: {v}");
    }
}
