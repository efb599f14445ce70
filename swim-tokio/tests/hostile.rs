//! A running node under junk datagrams and a consumer that never reads.

use core::time::Duration;
use std::net::UdpSocket;

use lapswim_tokio::{MemberState, Node, NodeEvent, NodeStats};
use swim_testkit::builder;

/// How long a check waits for a counter or a member before it fails: far
/// longer than either takes on an idle machine.
const WAIT_AT_MOST: Duration = Duration::from_secs(20);

/// `node`'s counters once `done` holds of them; panics after
/// [`WAIT_AT_MOST`] saying it waited for `what` and the counters it saw.
async fn stats_until(node: &Node, what: &str, done: impl Fn(&NodeStats) -> bool) -> NodeStats {
    let start = tokio::time::Instant::now();
    loop {
        let stats = node.stats().await.expect("runs");
        if done(&stats) {
            return stats;
        }
        assert!(start.elapsed() < WAIT_AT_MOST, "no {what} within {:?}; counters {stats:?}", start.elapsed());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn junk_datagrams_are_counted_and_change_nothing() {
    let node = lapswim_tokio::start(builder(0)).expect("starts");
    let before = node.members().await.expect("runs");
    let junk = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let payloads: [&[u8]; 5] = [b"", b"\x00", b"\x01\xff\xff\xff", &[0xAB; 1400], &[7; 4000]];
    for p in payloads {
        junk.send_to(p, node.addr()).expect("send");
    }
    // A truncated copy of a real datagram's start: version byte, then a
    // cut-off message.
    junk.send_to(&[1, 0], node.addr()).expect("send");
    // Once the node has rejected all six, none of them changed its table.
    let stats = stats_until(&node, "6 datagrams rejected", |s| s.protocol.rejected_total() >= 6).await;
    assert_eq!(stats.protocol.rejected_total(), 6, "every junk datagram is rejected and counted");
    assert_eq!(node.members().await.expect("runs"), before);

    // And the node still works: another joins it.
    let other = lapswim_tokio::start(builder(1)).expect("starts");
    other.join(&[node.addr()]).await.expect("joins");
    // The node admits it once it has answered a ping at its address.
    let start = tokio::time::Instant::now();
    loop {
        let members = node.members().await.expect("runs");
        if members.iter().any(|m| m.name == *other.name() && m.state == MemberState::Alive) {
            break;
        }
        let waited = start.elapsed();
        assert!(
            waited < WAIT_AT_MOST,
            "the node has not admitted the member that joined it in {waited:?}: {members:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    other.shutdown().await;
    node.shutdown().await;
    assert!(node.members().await.is_err(), "a stopped node answers no more");
}

#[tokio::test]
async fn a_slow_consumer_loses_nothing_silently() {
    let seed = lapswim_tokio::start(builder(0).event_capacity(2)).expect("starts");
    let events = seed.events();
    let mut others = Vec::new();
    for i in 1..5 {
        let node = lapswim_tokio::start(builder(i)).expect("starts");
        node.join(&[seed.addr()]).await.expect("joins");
        others.push(node);
    }
    // Four joins into a queue of two.
    stats_until(&seed, "2 events dropped", |s| s.io.events_dropped >= 2).await;
    // The queued events, then the count of what was lost, then the rest.
    assert!(matches!(events.next().await, Some(NodeEvent::Protocol { .. })));
    assert!(matches!(events.next().await, Some(NodeEvent::Protocol { .. })));
    others[0].shutdown().await; // makes a new event happen at the seed
    let lagged = tokio::time::timeout(WAIT_AT_MOST, events.next()).await.expect("an event comes");
    assert!(matches!(lagged, Some(NodeEvent::Lagged { missed }) if missed >= 2), "{lagged:?}");
    for n in others {
        n.shutdown().await;
    }
    seed.shutdown().await;
}
