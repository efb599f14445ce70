//! Reliable streams and the peer filter on smol.

use lapswim_smol::Smol;
use swim_testkit as testing;

#[test]
fn frames_round_trip_in_order_both_ways() {
    smol::block_on(testing::streams_round_trip(Smol::default()));
}

#[test]
fn an_oversized_frame_fails_the_stream() {
    smol::block_on(testing::streams_oversized_frame_fails(Smol::default()));
}

#[test]
fn a_closed_port_refuses() {
    smol::block_on(testing::streams_connect_refused(Smol::default()));
}

// Relies on Linux dropping connection requests to a full listen queue.
#[cfg(target_os = "linux")]
#[test]
fn an_unanswered_connect_times_out() {
    smol::block_on(testing::streams_connect_timeout(Smol::default()));
}

#[test]
fn an_idle_peer_times_out() {
    smol::block_on(testing::streams_idle_timeout(Smol::default()));
}

#[test]
fn the_cap_refuses_opens_and_closes_accepts() {
    smol::block_on(testing::streams_cap(Smol::default()));
}

#[test]
fn the_peer_filter_refuses_streams() {
    smol::block_on(testing::streams_peer_filter(Smol::default()));
}

#[test]
fn a_node_takes_streams_on_its_port_and_filters_peers() {
    smol::block_on(testing::node_streams_and_peer_filter(Smol::default(), lapswim_smol::start));
}

#[test]
fn streams_on_a_callers_executor() {
    let ex = std::sync::Arc::new(smol::Executor::new());
    smol::block_on(ex.run(testing::streams_round_trip(Smol::on(ex.clone()))));
}
