//! Reliable streams and the peer filter on tokio.

use lapswim_tokio::Tokio;
use swim_testkit as testing;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_round_trip_in_order_both_ways() {
    testing::streams_round_trip(Tokio).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_fails_the_stream() {
    testing::streams_oversized_frame_fails(Tokio).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_refuses() {
    testing::streams_connect_refused(Tokio).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_peer_times_out() {
    testing::streams_idle_timeout(Tokio).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cap_refuses_opens_and_closes_accepts() {
    testing::streams_cap(Tokio).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peer_filter_refuses_streams() {
    testing::streams_peer_filter(Tokio).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_takes_streams_on_its_port_and_filters_peers() {
    testing::node_streams_and_peer_filter(Tokio, lapswim_tokio::start).await;
}

// Relies on Linux dropping connection requests to a full listen queue.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_connect_times_out() {
    testing::streams_connect_timeout(Tokio).await;
}
