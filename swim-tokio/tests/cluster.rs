//! Real loopback sockets on tokio.

use swim_node::testing::{builder, converge_kill_leave};
use swim_tokio::Tokio;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_nodes_converge_detect_a_kill_and_see_a_leave() {
    converge_kill_leave(Tokio, 10, |i| swim_tokio::start(builder(i))).await;
}
