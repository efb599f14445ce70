//! A swim node speaking memberlist's format (`Config::memberlist_wire`)
//! beside real memberlist 0.2.2 nodes (`interop/memberlist-peer`), on
//! loopback, with no join on either side: each is introduced to the other
//! by an `alive` datagram in memberlist's format alone, as gossip would
//! bring it. From there probes and gossip cross both ways: each lists the
//! other alive, best-effort user messages arrive both ways, a Go node
//! killed with SIGKILL is failed at the swim node, and a swim node that
//! stops is declared dead by the Go node. (Joins over push-pulls are
//! `memberlist_cluster.rs`.)
//!
//! Needs `go` and Debian's `golang-github-hashicorp-memberlist-dev`
//! (which `.ci/run` installs): without them the test is skipped, or fails
//! when `CI` is set.

mod support;

use core::net::SocketAddr;
use core::time::Duration;

use lapswim_core::{Config, Event, MemberState};
use lapswim_node::{Node, NodeBuilder, NodeEvent};
use support::{state_of, wait_state};
use swim_testkit::memberlist_peer::{MemberlistPeer, PeerOptions};

/// Appends a msgpack string or byte string of up to 31 bytes, as
/// go-msgpack writes both (a "fixstr").
fn short_raw(out: &mut Vec<u8>, bytes: &[u8]) {
    assert!(bytes.len() < 32);
    out.push(0xa0 | bytes.len() as u8);
    out.extend_from_slice(bytes);
}

/// memberlist's `alive` for `name` at `addr`, incarnation 1, no metadata,
/// memberlist 0.2.2's version range, written by hand from its format (the
/// codec is the library's own, not public): a type byte, then a map of six
/// fields in name order.
fn alive(name: &str, addr: SocketAddr) -> Vec<u8> {
    let SocketAddr::V4(v4) = addr else { panic!("loopback v4") };
    let mut out = vec![4, 0x86];
    short_raw(&mut out, b"Addr");
    short_raw(&mut out, &v4.ip().octets());
    short_raw(&mut out, b"Incarnation");
    out.push(1);
    short_raw(&mut out, b"Meta");
    out.push(0xc0);
    short_raw(&mut out, b"Node");
    short_raw(&mut out, name.as_bytes());
    short_raw(&mut out, b"Port");
    out.push(0xcd);
    out.extend_from_slice(&v4.port().to_be_bytes());
    short_raw(&mut out, b"Vsn");
    short_raw(&mut out, &[1, 5, 2, 0, 0, 0]);
    out
}

fn introduce(name: &str, at: SocketAddr, to: SocketAddr) {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.send_to(&alive(name, at), to).expect("send");
}

fn start_swim(name: &str) -> Node {
    let config = Config::fast().with_memberlist_wire(true);
    let builder = NodeBuilder::new(name, "127.0.0.1:0".parse().expect("an address")).config(config);
    lapswim_tokio::start(builder).expect("the swim node starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swim_node_and_memberlist_nodes_see_each_other_and_each_others_crashes() {
    let Some(binary) = MemberlistPeer::for_test() else { return };
    let spawn = |name: &str| MemberlistPeer::spawn(&binary, &PeerOptions::new(name)).unwrap_or_else(|e| panic!("{e}"));

    // go1 and sw1 introduced to each other.
    let mut go1 = spawn("go1");
    let sw1 = start_swim("sw1");
    introduce("go1", go1.addr(), sw1.addr());
    introduce("sw1", sw1.addr(), go1.addr());
    assert!(
        wait_state(&sw1, "go1", Duration::from_secs(10), |s| s == Some(MemberState::Alive)).await,
        "the swim node admitted the memberlist node: {:?}",
        state_of(&sw1, "go1").await
    );
    go1.wait_for(|ev| ev["ev"] == "join" && ev["name"] == "sw1", Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}"));
    // A few seconds of probing both ways: nobody is suspected.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(state_of(&sw1, "go1").await, Some(MemberState::Alive));
    assert!(!go1.has_seen(|ev| ev["ev"] == "leave" && ev["name"] == "sw1"), "the memberlist node kept the swim node");

    // Best-effort user messages, both ways: memberlist names no sender, so
    // the swim node takes the member at the source address for it.
    let events = sw1.events();
    go1.send_best_effort("sw1", b"from go").unwrap_or_else(|e| panic!("{e}"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut got = None;
    while got.is_none() && tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(200), events.next()).await {
            Ok(Some(NodeEvent::Protocol { event: Event::Message { from, payload, .. }, .. })) => {
                got = Some((from.as_str().to_owned(), payload));
            }
            Ok(Some(_)) | Err(_) => {}
            Ok(None) => break,
        }
    }
    assert_eq!(got, Some(("go1".to_owned(), b"from go".to_vec())), "the Go node's message at the swim node");
    sw1.send("go1", b"from swim".to_vec(), false).await.expect("sent");
    go1.wait_for(|ev| ev["ev"] == "user" && ev["msg"] == "ZnJvbSBzd2lt", Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}"));

    // kill -9 of the memberlist node: failed at the swim node.
    go1.kill().unwrap_or_else(|e| panic!("{e}"));
    let killed = tokio::time::Instant::now();
    assert!(
        wait_state(&sw1, "go1", Duration::from_secs(30), |s| matches!(s, Some(MemberState::Dead) | None)).await,
        "the swim node failed the killed memberlist node: {:?}",
        state_of(&sw1, "go1").await
    );

    eprintln!("memberlist node killed: failed at the swim node after {} ms", killed.elapsed().as_millis());

    // The swim node stops: declared dead by a memberlist node that knew it.
    let mut go2 = spawn("go2");
    introduce("go2", go2.addr(), sw1.addr());
    introduce("sw1", sw1.addr(), go2.addr());
    go2.wait_for(|ev| ev["ev"] == "join" && ev["name"] == "sw1", Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(wait_state(&sw1, "go2", Duration::from_secs(10), |s| s == Some(MemberState::Alive)).await);
    sw1.shutdown().await;
    let stopped = tokio::time::Instant::now();
    let left = go2
        .wait_for(|ev| ev["ev"] == "leave" && ev["name"] == "sw1", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("swim node stopped: dead at the memberlist node after {} ms", stopped.elapsed().as_millis());
    assert_eq!(left["state"], "dead", "{left}");
    let _ = go2.quit(Duration::from_secs(5));
}
