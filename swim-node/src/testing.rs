//! The real-socket cluster checks both adapters run (and a mixed cluster),
//! written once: converge, detect a killed node at every survivor, see a
//! graceful leave as `Left`.

use core::time::Duration;

use swim_core::{Config, MemberState};

use crate::cluster::LocalCluster;
use crate::node::{Node, NodeBuilder, StartError};
use crate::runtime::Runtime;

/// A fast configuration for loopback tests: the LAN preset with 200 ms
/// protocol periods and a push-pull every 5 s (which repairs a member that
/// missed a join's gossip well within the tests' limits).
pub fn fast_config() -> Config {
    Config::lan()
        .with_push_pull_interval(Some(swim_core::Duration::from_secs(5)))
        .with_probe_interval(swim_core::Duration::from_millis(200))
        .with_probe_timeout(swim_core::Duration::from_millis(80))
        .with_gossip_interval(swim_core::Duration::from_millis(50))
        .with_join_retry_interval(swim_core::Duration::from_millis(200))
        .with_leave_timeout(swim_core::Duration::from_secs(2))
}

/// A builder for test node `i` on an OS-chosen loopback port.
pub fn builder(i: usize) -> NodeBuilder {
    NodeBuilder::new(format!("node-{i}"), "127.0.0.1:0".parse().expect("literal address")).config(fast_config())
}

/// Starts `n` nodes (node `i` by `start(i)`), joins them through node 0,
/// waits for convergence, kills the last node and waits until every
/// survivor has it failed, then has the next-to-last leave and waits until
/// every remaining node has it left. Panics with what was missing.
pub async fn converge_kill_leave<R: Runtime>(
    runtime: R,
    n: usize,
    mut start: impl FnMut(usize) -> Result<Node, StartError>,
) {
    assert!(n >= 4, "needs a seed, a victim, a leaver and a witness");
    let mut cluster = LocalCluster::new(runtime);
    for i in 0..n {
        cluster.add(|| start(i)).expect("node starts");
    }
    cluster.join_all().await.expect("every join is answered");
    let ok = cluster.wait_until(Duration::from_secs(20), LocalCluster::converged, |_, _| {}).await;
    assert!(ok, "no convergence: {:?}", cluster.views());

    let victim = cluster.node(n - 1).name().clone();
    cluster.kill(n - 1).await;
    let ok = cluster.wait_until(Duration::from_secs(30), |c| c.all_see(&victim, MemberState::Dead), |_, _| {}).await;
    assert!(ok, "{victim} not failed everywhere: {:?}", cluster.views());

    let leaver = cluster.node(n - 2).name().clone();
    cluster.leave(n - 2).await.expect("leave completes");
    let ok = cluster.wait_until(Duration::from_secs(20), |c| c.all_see(&leaver, MemberState::Left), |_, _| {}).await;
    assert!(ok, "{leaver} not left everywhere: {:?}", cluster.views());
    let false_failures = cluster.false_failures();
    assert!(false_failures.is_empty(), "live or departed members declared failed: {false_failures:?}");
    for i in cluster.running().collect::<Vec<_>>() {
        let members = cluster.node(i).members().await.expect("node runs");
        let state = |name: &swim_core::MemberName| members.iter().find(|m| m.name == *name).map(|m| m.state);
        assert_eq!(state(&leaver), Some(MemberState::Left), "node {i}'s table");
        assert_eq!(state(&victim), Some(MemberState::Dead), "node {i}'s table");
        let stats = cluster.node(i).stats().await.expect("node runs");
        assert_eq!(stats.io.events_dropped, 0);
        assert_eq!(stats.io.recv_errors + stats.io.send_errors, 0, "{:?}", stats.io);
    }
    for i in cluster.running().collect::<Vec<_>>() {
        cluster.node(i).shutdown().await;
    }
}
