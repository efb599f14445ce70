//! A running node under junk datagrams and a consumer that never reads.

use core::time::Duration;
use std::net::UdpSocket;

use swim_testkit::builder;
use swim_tokio::{MemberState, NodeEvent};

#[tokio::test]
async fn junk_datagrams_are_counted_and_change_nothing() {
    let node = swim_tokio::start(builder(0)).expect("starts");
    let before = node.members().await.expect("runs");
    let junk = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let payloads: [&[u8]; 5] = [b"", b"\x00", b"\x01\xff\xff\xff", &[0xAB; 1400], &[7; 4000]];
    for p in payloads {
        junk.send_to(p, node.addr()).expect("send");
    }
    // A truncated copy of a real datagram's start: version byte, then a
    // cut-off message.
    junk.send_to(&[1, 0], node.addr()).expect("send");
    let mut rejected = 0;
    for _ in 0..100 {
        let stats = node.stats().await.expect("runs");
        rejected = stats.protocol.rejected_total();
        if rejected == 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(rejected, 6, "every junk datagram is rejected and counted");
    assert_eq!(node.members().await.expect("runs"), before);

    // And the node still works: another joins it.
    let other = swim_tokio::start(builder(1)).expect("starts");
    other.join(&[node.addr()]).await.expect("joins");
    // The node admits it once it has answered a ping at its address.
    let mut admitted = false;
    for _ in 0..500 {
        let members = node.members().await.expect("runs");
        admitted = members.iter().any(|m| m.name == *other.name() && m.state == MemberState::Alive);
        if admitted {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(admitted, "the node admits a member that joins it");
    other.shutdown().await;
    node.shutdown().await;
    assert!(node.members().await.is_err(), "a stopped node answers no more");
}

#[tokio::test]
async fn a_slow_consumer_loses_nothing_silently() {
    let seed = swim_tokio::start(builder(0).event_capacity(2)).expect("starts");
    let events = seed.events();
    let mut others = Vec::new();
    for i in 1..5 {
        let node = swim_tokio::start(builder(i)).expect("starts");
        node.join(&[seed.addr()]).await.expect("joins");
        others.push(node);
    }
    let mut dropped = 0;
    for _ in 0..200 {
        dropped = seed.stats().await.expect("runs").io.events_dropped;
        if dropped >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(dropped >= 2, "four joins into a queue of two: {dropped} dropped");
    // The queued events, then the count of what was lost, then the rest.
    assert!(matches!(events.next().await, Some(NodeEvent::Protocol { .. })));
    assert!(matches!(events.next().await, Some(NodeEvent::Protocol { .. })));
    others[0].shutdown().await; // makes a new event happen at the seed
    let lagged = tokio::time::timeout(Duration::from_secs(10), events.next()).await.expect("an event comes");
    assert!(matches!(lagged, Some(NodeEvent::Lagged { missed }) if missed >= 2), "{lagged:?}");
    for n in others {
        n.shutdown().await;
    }
    seed.shutdown().await;
}
