//! Real loopback sockets on smol, and a cluster mixing smol and tokio nodes.

use lapswim_smol::Smol;
use swim_testkit::{builder, converge_kill_leave};

#[test]
fn ten_nodes_converge_detect_a_kill_and_see_a_leave() {
    smol::block_on(converge_kill_leave(Smol::default(), 10, |i| lapswim_smol::start(builder(i))));
}

#[test]
fn ten_nodes_on_a_callers_executor() {
    let ex = std::sync::Arc::new(smol::Executor::new());
    let start = |i| lapswim_smol::start_on(&ex, builder(i));
    smol::block_on(ex.run(converge_kill_leave(Smol::on(ex.clone()), 10, start)));
}

#[test]
fn a_cluster_of_smol_and_tokio_nodes_works_as_one() {
    let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    // Even nodes on smol, odd ones on tokio; the kill and the leave hit one
    // of each.
    let start = |i: usize| {
        if i.is_multiple_of(2) {
            lapswim_smol::start(builder(i))
        } else {
            let _guard = tokio.enter();
            lapswim_tokio::start(builder(i))
        }
    };
    smol::block_on(converge_kill_leave(Smol::default(), 10, start));
}

#[test]
fn a_sealed_cluster_keeps_outsiders_out_and_rotates_its_key() {
    smol::block_on(swim_testkit::sealed_cluster_rotates_keys(Smol::default(), 5, lapswim_smol::start));
}

#[test]
fn a_recorded_cluster_replays_identically() {
    let dir = std::env::temp_dir().join(format!("swim-smol-traces-{}", std::process::id()));
    smol::block_on(swim_testkit::recorded_cluster_replays(Smol::default(), 5, &dir, lapswim_smol::start));
    let _ = std::fs::remove_dir_all(&dir);
}
