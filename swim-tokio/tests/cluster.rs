//! Real loopback sockets on tokio.

use lapswim_tokio::Tokio;
use swim_testkit::{builder, converge_kill_leave};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_nodes_converge_detect_a_kill_and_see_a_leave() {
    converge_kill_leave(Tokio, 10, |i| lapswim_tokio::start(builder(i))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_harness_reports_a_live_member_declared_failed() {
    use core::time::Duration;
    use lapswim_core::MemberState;
    use lapswim_core::internals::wire::{Message, PacketWriter};
    use swim_testkit::cluster::LocalCluster;

    use core::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let mut cluster = LocalCluster::new(Tokio);
    cluster.add(|| lapswim_tokio::start(builder(0))).expect("node starts");
    // node-1 can be made deaf to node-0 (and only to it).
    let deaf = Arc::new(AtomicBool::new(false));
    let node0 = cluster.node(0).addr();
    let flag = deaf.clone();
    let filter = Arc::new(move |peer: core::net::SocketAddr| !(flag.load(Ordering::SeqCst) && peer == node0));
    cluster.add(|| lapswim_tokio::start(builder(1).peer_filter(filter))).expect("node starts");
    cluster.join_all(|_, _| {}).await.expect("join answered");
    assert!(cluster.wait_until(Duration::from_secs(10), LocalCluster::converged, |_, _| {}).await);
    assert!(cluster.false_failures().is_empty());
    // A forged death of the running node-1, sent to node-0 (nothing
    // authenticates datagrams without a key). node-0 checks it with
    // node-1 first, which would refute it: node-1 does not hear node-0
    // now, so the death stands, and the harness must count it.
    deaf.store(true, Ordering::SeqCst);
    let mut w = PacketWriter::new(1400);
    w.push(&Message::Dead { incarnation: 0, name: "node-1", from: "intruder" }).expect("fits");
    let forger = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    forger.send_to(w.finish().as_bytes(), cluster.node(0).addr()).expect("send");
    let name = cluster.node(1).name().clone();
    let seen = cluster.wait_until(Duration::from_secs(5), |c| c.view(0, &name) == Some(MemberState::Dead), |_, _| {});
    assert!(seen.await, "node-0 took the forged death");
    assert_eq!(cluster.false_failures().len(), 1, "{:?}", cluster.false_failures());
    assert_eq!(cluster.false_failures()[0].observer, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_cluster_heals_by_itself() {
    swim_testkit::split_and_heal(Tokio, 10, lapswim_tokio::start).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_and_direct_messages_reach_their_members_once() {
    swim_testkit::broadcasts_reach_everyone_once(Tokio, 5, lapswim_tokio::start).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_are_raised_acked_and_answered_over_real_sockets() {
    swim_testkit::queries_are_answered(Tokio, 4, lapswim_tokio::start).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_cluster_keeps_outsiders_out_and_rotates_its_key() {
    swim_testkit::sealed_cluster_rotates_keys(Tokio, 5, lapswim_tokio::start).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_cluster_replays_identically() {
    let dir = std::env::temp_dir().join(format!("swim-tokio-traces-{}", std::process::id()));
    swim_testkit::recorded_cluster_replays(Tokio, 5, &dir, lapswim_tokio::start).await;
    let _ = std::fs::remove_dir_all(&dir);
}
