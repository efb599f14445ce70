//! Waiting on a node's view of a member, for the interop tests.

use core::time::Duration;

use lapswim_core::MemberState;
use lapswim_node::Node;

/// How `node` holds `name` now, if at all.
pub(crate) async fn state_of(node: &Node, name: &str) -> Option<MemberState> {
    node.member(name).await.ok().flatten().map(|m| m.state)
}

/// Waits up to `limit` for `node` to hold `name` in a state `ok` accepts.
pub(crate) async fn wait_state(
    node: &Node,
    name: &str,
    limit: Duration,
    ok: impl Fn(Option<MemberState>) -> bool,
) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if ok(state_of(node, name).await) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
