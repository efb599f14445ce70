//! S2-style crash detection on a mixed cluster over real sockets: three
//! memberlist 0.2.2 nodes (`interop/memberlist-peer`) and three swim nodes
//! speaking memberlist's format, every one on memberlist's
//! `DefaultLANConfig` timers (swim's `Config::lan()`). Each run forms a
//! fresh cluster, lets it settle, crashes one node (a Go node with
//! SIGKILL, or a swim node stopped without a word: its sockets close as a
//! killed process's do) and measures, from the crash, when each survivor
//! holds it failed. The Go side's figures are what memberlist itself
//! does on the same cluster, so the two columns compare the detectors.
//!
//! A measurement, not a check: ignored by `cargo test`. Run it with
//!
//! ```text
//! SWIM_S2_RUNS=5 cargo test --release -p lapswim-tokio --test mixed_s2 -- --ignored --nocapture
//! ```
//!
//! Each run prints one JSON line; the last line sums them up (medians).

#[allow(dead_code, reason = "a shared module: this test uses part of it")]
mod support;

use core::time::Duration;
use std::path::Path;

use lapswim_core::{Config, MemberState};
use lapswim_node::{Node, NodeBuilder};
use support::state_of;
use swim_testkit::memberlist_peer::{MemberlistPeer, PeerOptions};

const LIMIT: Duration = Duration::from_secs(60);

/// Which kind of node a run crashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Victim {
    Go,
    Swim,
}

/// One run's figures, in ms from the crash: when the last survivor of
/// each kind held the victim failed.
struct Run {
    victim: Victim,
    swim_side_ms: u128,
    go_side_ms: u128,
    /// What the swim survivors refused, all told.
    rejected: u64,
}

fn start_swim(name: &str) -> Node {
    let config = Config::lan().with_memberlist_wire(true);
    let builder = NodeBuilder::new(name, "127.0.0.1:0".parse().expect("an address")).config(config);
    lapswim_tokio::start(builder).expect("the swim node starts")
}

fn go_peer(binary: &Path, name: &str, join: Option<core::net::SocketAddr>) -> MemberlistPeer {
    let mut options = PeerOptions::new(name);
    // memberlist's DefaultLANConfig, as the swim nodes' Config::lan().
    options.fast = false;
    if let Some(join) = join {
        options = options.join(join);
    }
    MemberlistPeer::spawn(binary, &options).unwrap_or_else(|e| panic!("{e}"))
}

/// Forms the cluster, crashes one node of `victim`'s kind, and measures.
async fn run(binary: &Path, victim: Victim) -> Run {
    let sw: Vec<Node> = ["sw1", "sw2", "sw3"].iter().map(|n| start_swim(n)).collect();
    let mut go = vec![go_peer(binary, "go1", None)];
    sw[0].join(&[go[0].addr()]).await.expect("sw1 joins go1");
    go.push(go_peer(binary, "go2", Some(sw[0].addr())));
    go.push(go_peer(binary, "go3", Some(go[1].addr())));
    sw[1].join(&[sw[0].addr()]).await.expect("sw2 joins sw1");
    sw[2].join(&[go[2].addr()]).await.expect("sw3 joins go3");
    let all = ["go1", "go2", "go3", "sw1", "sw2", "sw3"];
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let mut whole = true;
        for node in &sw {
            for name in all {
                whole &= name == node.name().as_str() || state_of(node, name).await == Some(MemberState::Alive);
            }
        }
        for g in &mut go {
            let alive = g.members(Duration::from_secs(5)).unwrap_or_default();
            whole &= all.iter().all(|n| alive.iter().any(|m| m.name == *n && m.state == "alive"));
        }
        if whole {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the cluster did not form");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Settled, as S2's warm-up: a few probe rounds on every node.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let (name, crashed) = match victim {
        Victim::Go => {
            go[2].kill().unwrap_or_else(|e| panic!("{e}"));
            ("go3", tokio::time::Instant::now())
        }
        Victim::Swim => {
            let node = sw.last().expect("three swim nodes").clone();
            node.shutdown().await;
            ("sw3", tokio::time::Instant::now())
        }
    };
    let swim_survivors: Vec<&Node> = sw.iter().filter(|n| n.name().as_str() != name).collect();
    let mut swim_down: Vec<Option<u128>> = vec![None; swim_survivors.len()];
    let go_survivors: Vec<usize> = (0..go.len()).filter(|&i| go[i].name() != name).collect();
    let mut go_down: Vec<Option<u128>> = vec![None; go_survivors.len()];
    while swim_down.iter().chain(&go_down).any(Option::is_none) {
        let ms = crashed.elapsed().as_millis();
        assert!(ms < LIMIT.as_millis(), "{name} not failed everywhere within {LIMIT:?}");
        for (i, node) in swim_survivors.iter().enumerate() {
            if swim_down[i].is_none() && matches!(state_of(node, name).await, Some(MemberState::Dead) | None) {
                swim_down[i] = Some(ms);
            }
        }
        for (slot, &i) in go_down.iter_mut().zip(&go_survivors) {
            if slot.is_none() && go[i].has_seen(|ev| ev["ev"] == "leave" && ev["name"] == name) {
                *slot = Some(ms);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Datagrams or streams a swim survivor could not take (a sign of a gap
    // in the dialect, not of the network).
    let mut rejected = 0;
    for node in &swim_survivors {
        rejected += node.stats().await.map(|s| s.protocol.rejected_total()).unwrap_or_default();
    }
    for node in &sw {
        node.shutdown().await;
    }
    for mut g in go {
        let _ = g.kill();
    }
    let last = |v: &[Option<u128>]| v.iter().flatten().copied().max().unwrap_or_default();
    Run { victim, swim_side_ms: last(&swim_down), go_side_ms: last(&go_down), rejected }
}

fn median(mut v: Vec<u128>) -> f64 {
    v.sort_unstable();
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2] as f64,
        n => (v[n / 2 - 1] + v[n / 2]) as f64 / 2.0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement of a minute or more: run it by hand (see the module's doc)"]
async fn mixed_cluster_crash_detection() {
    let Some(binary) = MemberlistPeer::for_test() else { return };
    let runs: usize = std::env::var("SWIM_S2_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let mut all = Vec::new();
    for i in 0..runs {
        for victim in [Victim::Go, Victim::Swim] {
            let r = run(&binary, victim).await;
            println!(
                "{{\"run\":{i},\"victim\":\"{}\",\"swim_survivors_all_down_ms\":{},\"go_survivors_all_down_ms\":{},\"swim_rejected\":{}}}",
                if r.victim == Victim::Go { "go" } else { "swim" },
                r.swim_side_ms,
                r.go_side_ms,
                r.rejected
            );
            all.push(r);
        }
    }
    let med =
        |victim: Victim, side: fn(&Run) -> u128| median(all.iter().filter(|r| r.victim == victim).map(side).collect());
    println!(
        "{{\"runs\":{runs},\"go_killed\":{{\"swim_survivors_median_ms\":{},\"go_survivors_median_ms\":{}}},\"swim_killed\":{{\"swim_survivors_median_ms\":{},\"go_survivors_median_ms\":{}}}}}",
        med(Victim::Go, |r| r.swim_side_ms),
        med(Victim::Go, |r| r.go_side_ms),
        med(Victim::Swim, |r| r.swim_side_ms),
        med(Victim::Swim, |r| r.go_side_ms),
    );
}
