//! The real-socket checks both adapters run, written once: a cluster (and
//! a mixed one) converges, detects a killed node at every survivor and sees
//! a graceful leave as `Left`; streams carry frames in order both ways and
//! keep their limits; the peer filter cuts a node off.
//!
//! Every check panics with what went wrong, and gives up within seconds.

use core::future::Future;
use core::net::SocketAddr;
use core::time::Duration;
use std::sync::Arc;

use futures_lite::future::or;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use lapswim_core::Datagram;
use lapswim_core::{Config, MemberState, StreamEnd, StreamId};

use lapswim_node::streams::{PeerFilter, StreamInput, StreamLimits, StreamStats, Streams};
use lapswim_node::{Clock, Node, NodeBuilder, NodeError, NodeStats, Runtime, StartError};

use crate::cluster::{LocalCluster, Seen};

#[path = "../../swim-cli/src/cluster.rs"]
pub mod cluster;
pub mod go;
pub mod memberlist_peer;
pub mod serf_agent;

/// A fast configuration for loopback tests: the LAN preset with 200 ms
/// protocol periods and a push-pull every 5 s (which repairs a member that
/// missed a join's gossip well within the tests' limits).
pub fn fast_config() -> Config {
    Config::lan()
        .with_push_pull_interval(Some(lapswim_core::Duration::from_secs(5)))
        .with_probe_interval(lapswim_core::Duration::from_millis(200))
        .with_probe_timeout(lapswim_core::Duration::from_millis(80))
        .with_gossip_interval(lapswim_core::Duration::from_millis(50))
        .with_join_retry_interval(lapswim_core::Duration::from_millis(200))
        .with_leave_timeout(lapswim_core::Duration::from_secs(2))
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
    // The joins are answered one after the other: the events of the first
    // ones are taken while the later ones run.
    let mut during = 0;
    cluster.join_all(|_, _| during += 1).await.expect("every join is answered");
    assert!(during > 0, "no event taken while the nodes joined");
    let ok = cluster.wait_until(Duration::from_secs(20), LocalCluster::converged, |_, _| {}).await;
    assert!(ok, "no convergence: {:?}", cluster.views());
    let converged_at = cluster.last_event().expect("the events that made it converge");
    assert!(converged_at <= lapswim_node::Clock::read() && converged_at >= cluster.started());

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
        let state = |name: &lapswim_core::MemberName| members.iter().find(|m| m.name == *name).map(|m| m.state);
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

/// How long a check waits for one expected stream input.
const EXPECT_WITHIN: Duration = Duration::from_secs(5);

/// How long a check watches for input that must not come.
const QUIET_FOR: Duration = Duration::from_millis(300);

/// `f`'s output, or `None` once `after` has passed.
pub async fn within<R: Runtime, F: Future>(runtime: &R, after: Duration, f: F) -> Option<F::Output> {
    or(async { Some(f.await) }, async {
        runtime.sleep(after).await;
        None
    })
    .await
}

/// Streams on `runtime` that accept on an OS-chosen loopback port, and
/// that port's address.
pub fn stream_endpoint<R: Runtime>(
    runtime: &R,
    limits: StreamLimits,
    filter: Option<PeerFilter>,
) -> (Streams<R>, SocketAddr) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback listener");
    listener.set_nonblocking(true).expect("non-blocking");
    let addr = listener.local_addr().expect("bound address");
    let mut streams = Streams::new(runtime.clone(), limits, filter);
    streams.listen(runtime.tcp_listener(listener).expect("register the listener"));
    (streams, addr)
}

/// The next input of `streams`, or a panic after a few seconds.
pub async fn expect_input<R: Runtime>(runtime: &R, streams: &mut Streams<R>) -> StreamInput {
    within(runtime, EXPECT_WITHIN, streams.next()).await.expect("a stream input within 5 s")
}

/// Panics if `streams` reports anything for a short while (polling it
/// meanwhile, so it takes what connections bring).
pub async fn expect_quiet<R: Runtime>(runtime: &R, streams: &mut Streams<R>) {
    let got = within(runtime, QUIET_FOR, streams.next()).await;
    assert_eq!(got, None, "no stream input expected");
}

/// How long a check waits for a counter or a cluster state before it
/// fails: far longer than any of them takes on an idle machine, so a
/// loaded one slows the check down rather than failing it.
const WAIT_AT_MOST: Duration = Duration::from_secs(20);

/// Polls `streams` (which must report nothing meanwhile) until `done`
/// holds of its counters, or panics after [`WAIT_AT_MOST`] saying it
/// waited for `what` and the counters it saw.
async fn quiet_until<R: Runtime>(
    runtime: &R,
    streams: &mut Streams<R>,
    what: &str,
    done: impl Fn(&StreamStats) -> bool,
) {
    let start = Clock::read();
    while !done(&streams.stats()) {
        let waited = Clock::read().saturating_duration_since(start);
        assert!(waited < WAIT_AT_MOST, "no {what} within {waited:?}; counters {:?}", streams.stats());
        let got = within(runtime, Duration::from_millis(50), streams.next()).await;
        assert_eq!(got, None, "no stream input expected");
    }
}

/// A payload of `len` bytes that tells frame `seed` from the others.
fn payload(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| seed.wrapping_add((i % 251) as u8)).collect()
}

fn frame_input(id: StreamId, frame: Vec<u8>) -> StreamInput {
    StreamInput::Frame { id, frame }
}

/// A connection from `streams`' listener, or a panic.
async fn expect_accepted<R: Runtime>(runtime: &R, streams: &mut Streams<R>) -> StreamId {
    match expect_input(runtime, streams).await {
        StreamInput::Accepted { id: id @ StreamId::Inbound(_), from } => {
            assert!(from.ip().is_loopback(), "{from}");
            id
        }
        other => panic!("expected an accepted stream, got {other:?}"),
    }
}

/// The end of stream `id`, or a panic.
async fn expect_end<R: Runtime>(runtime: &R, streams: &mut Streams<R>, id: StreamId) -> StreamEnd {
    match expect_input(runtime, streams).await {
        StreamInput::Closed { id: got, end } if got == id => end,
        other => panic!("expected the end of {id:?}, got {other:?}"),
    }
}

/// Frames sent right after `open` (before the connection exists), of
/// every size from empty to [`Datagram::MAX_FRAME_LEN`], arrive whole and in order; so
/// do frames the other way; a close after a last frame delivers it, then
/// the end (`Closed`), and the closing side hears nothing more. Then the
/// same with the accepting side closing, and the counters agree.
pub async fn streams_round_trip<R: Runtime>(runtime: R) {
    let (mut a, a_addr) = stream_endpoint(&runtime, StreamLimits::default(), None);
    let mut b = Streams::new(runtime.clone(), StreamLimits::default(), None);
    let out = StreamId::Outbound(7);
    b.open(out, a_addr);
    let frames: Vec<Vec<u8>> = [1, 0, 100, 4096, 70_000 % Datagram::MAX_FRAME_LEN, Datagram::MAX_FRAME_LEN, 3]
        .iter()
        .zip(1u8..)
        .map(|(&n, s)| payload(s, n))
        .collect();
    for f in &frames {
        b.send_frame(out, f);
    }
    let inbound = expect_accepted(&runtime, &mut a).await;
    for f in &frames {
        assert_eq!(expect_input(&runtime, &mut a).await, frame_input(inbound, f.clone()));
    }
    for i in 0..50 {
        a.send_frame(inbound, &payload(i, 10 + usize::from(i)));
    }
    for i in 0..50 {
        assert_eq!(expect_input(&runtime, &mut b).await, frame_input(out, payload(i, 10 + usize::from(i))));
    }
    b.send_frame(out, b"last from b");
    b.close(out);
    assert_eq!(expect_input(&runtime, &mut a).await, frame_input(inbound, b"last from b".to_vec()));
    assert_eq!(expect_end(&runtime, &mut a, inbound).await, StreamEnd::Closed);
    expect_quiet(&runtime, &mut b).await;
    assert!(a.is_empty() && b.is_empty());

    let (sa, sb) = (a.stats(), b.stats());
    let sent: u64 = frames.iter().map(|f| f.len() as u64 + 4).sum::<u64>() + 4 + 11;
    assert_eq!((sb.opened, sa.accepted), (1, 1));
    assert_eq!((sb.frames_sent, sa.frames_received), (frames.len() as u64 + 1, frames.len() as u64 + 1));
    assert_eq!((sb.bytes_sent, sa.bytes_received), (sent, sent));
    assert_eq!((sa.frames_sent, sb.frames_received), (50, 50));
    assert_eq!(sa.bytes_sent, sb.bytes_received);
    assert_eq!(sa.failed + sa.timed_out + sb.failed + sb.timed_out + sb.refused, 0, "{sa:?} {sb:?}");

    // The accepting side closes this time.
    let out = StreamId::Outbound(8);
    b.open(out, a_addr);
    b.send_frame(out, b"hello");
    let second = expect_accepted(&runtime, &mut a).await;
    assert_ne!(second, inbound, "an inbound id is never reused");
    assert_eq!(expect_input(&runtime, &mut a).await, frame_input(second, b"hello".to_vec()));
    a.send_frame(second, b"bye");
    a.close(second);
    assert_eq!(expect_input(&runtime, &mut b).await, frame_input(out, b"bye".to_vec()));
    assert_eq!(expect_end(&runtime, &mut b, out).await, StreamEnd::Closed);
    expect_quiet(&runtime, &mut a).await;
    assert!(a.is_empty() && b.is_empty());

    // A frame sent before the close but not taken is dropped: nothing is
    // reported about a stream after its close. Once `a` has written it,
    // `b` closes; `b`'s connection reads it (before the close, or while it
    // drains after) and `b` counts it without reporting it.
    let out = StreamId::Outbound(9);
    b.open(out, a_addr);
    let third = expect_accepted(&runtime, &mut a).await;
    a.send_frame(third, b"never taken");
    quiet_until(&runtime, &mut a, "the frame written by a", |s| s.frames_sent == 52).await;
    b.close(out);
    quiet_until(&runtime, &mut b, "the frame read by b after its close", |s| s.frames_received == 52).await;
    assert_eq!(expect_end(&runtime, &mut a, third).await, StreamEnd::Closed);
    expect_quiet(&runtime, &mut b).await;
    assert_eq!(b.stats().frames_received, 52, "it was read, and dropped");
}

/// On the wire a frame is a 4-byte big-endian length and the payload; a
/// frame of exactly the limit passes; a longer announced length fails the
/// stream and closes the connection, unread; a peer of ours sending a
/// frame over the other's limit fails there too.
pub async fn streams_oversized_frame_fails<R: Runtime>(runtime: R) {
    let limits = StreamLimits { max_frame: 1000, ..StreamLimits::default() };
    let (mut a, a_addr) = stream_endpoint(&runtime, limits, None);
    let mut raw = runtime.connect(a_addr).await.expect("connect");
    raw.write_all(&[0, 0, 0, 3, b'a', b'b', b'c']).await.expect("write");
    let id = expect_accepted(&runtime, &mut a).await;
    assert_eq!(expect_input(&runtime, &mut a).await, frame_input(id, b"abc".to_vec()));
    a.send_frame(id, b"xy");
    let mut got = [0; 6];
    within(&runtime, EXPECT_WITHIN, raw.read_exact(&mut got)).await.expect("in time").expect("read");
    assert_eq!(got, [0, 0, 0, 2, b'x', b'y']);

    let mut full = 1000u32.to_be_bytes().to_vec();
    full.extend(payload(9, 1000));
    raw.write_all(&full).await.expect("write");
    assert_eq!(expect_input(&runtime, &mut a).await, frame_input(id, payload(9, 1000)));

    raw.write_all(&1001u32.to_be_bytes()).await.expect("write");
    raw.write_all(&[0; 64]).await.expect("write");
    assert_eq!(expect_end(&runtime, &mut a, id).await, StreamEnd::Failed);
    let mut rest = [0; 16];
    let read = within(&runtime, EXPECT_WITHIN, raw.read(&mut rest)).await.expect("the connection is closed");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert_eq!(a.stats().failed, 1);

    let mut b = Streams::new(runtime.clone(), StreamLimits::default(), None);
    let out = StreamId::Outbound(1);
    b.open(out, a_addr);
    b.send_frame(out, &payload(1, 1001));
    let id = expect_accepted(&runtime, &mut a).await;
    assert_eq!(expect_end(&runtime, &mut a, id).await, StreamEnd::Failed);
    assert!(matches!(expect_end(&runtime, &mut b, out).await, StreamEnd::Closed | StreamEnd::Failed));
    assert_eq!(a.stats().failed, 2);
}

/// Connecting to a closed port ends the stream `NotListening` (its host
/// said nothing listens there), frames queued on it or not; not reported
/// when the stream was closed first.
pub async fn streams_connect_refused<R: Runtime>(runtime: R) {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("address")
    };
    let mut b = Streams::new(runtime.clone(), StreamLimits::default(), None);
    b.open(StreamId::Outbound(1), closed);
    b.send_frame(StreamId::Outbound(1), b"never sent");
    assert_eq!(expect_end(&runtime, &mut b, StreamId::Outbound(1)).await, StreamEnd::NotListening);
    assert!(b.is_empty());
    let stats = b.stats();
    assert_eq!((stats.opened, stats.refused, stats.frames_sent), (1, 1, 0));

    b.open(StreamId::Outbound(2), closed);
    b.close(StreamId::Outbound(2));
    quiet_until(&runtime, &mut b, "the closed stream's refused connect counted", |s| s.refused == 2).await;
    expect_quiet(&runtime, &mut b).await;
    assert_eq!(b.stats().refused, 2, "counted all the same");
    // Nor is an outcome decided at once (here the cap's).
    let mut none = Streams::new(runtime.clone(), StreamLimits { max_streams: 0, ..StreamLimits::default() }, None);
    none.open(StreamId::Outbound(1), closed);
    none.close(StreamId::Outbound(1));
    expect_quiet(&runtime, &mut none).await;
    assert_eq!(none.stats().over_cap, 1);
}

/// A connect that is not answered ends `TimedOut` after the connect
/// timeout. The peer is a listener that never accepts: once its queue is
/// full, Linux drops further connection requests unanswered (other systems
/// may refuse them instead).
pub async fn streams_connect_timeout<R: Runtime>(runtime: R) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let to = listener.local_addr().expect("address");
    let limits = StreamLimits {
        connect_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_secs(60),
        max_streams: 1000,
        ..StreamLimits::default()
    };
    let mut b = Streams::new(runtime.clone(), limits, None);
    // More than any listen queue std sets up (128, or the system's cap).
    let n = 300;
    for i in 0..n {
        b.open(StreamId::Outbound(i), to);
    }
    let mut timed_out = 0;
    while let Some(input) = within(&runtime, Duration::from_secs(2), b.next()).await {
        match input {
            StreamInput::Closed { end: StreamEnd::TimedOut, .. } => timed_out += 1,
            other => panic!("only timeouts expected, got {other:?}"),
        }
    }
    assert!(timed_out > 0 && timed_out < n, "{timed_out} of {n} timed out");
    assert_eq!(b.stats().timed_out, timed_out);
    drop(listener);
}

/// Frames keep a stream alive; a peer that sends nothing for the idle
/// timeout ends it `TimedOut`, and the peer sees the connection close.
pub async fn streams_idle_timeout<R: Runtime>(runtime: R) {
    // The idle timeout is well above the frames' spacing, so that a loaded
    // machine's late timer does not end the stream before its time.
    let idle = Duration::from_millis(1200);
    let limits = StreamLimits { idle_timeout: idle, ..StreamLimits::default() };
    let (mut a, a_addr) = stream_endpoint(&runtime, limits, None);
    let mut b = Streams::new(runtime.clone(), StreamLimits::default(), None);
    let out = StreamId::Outbound(1);
    b.open(out, a_addr);
    b.send_frame(out, b"0");
    let id = expect_accepted(&runtime, &mut a).await;
    assert_eq!(expect_input(&runtime, &mut a).await, frame_input(id, b"0".to_vec()));
    // Ten frames 150 ms apart: longer than the idle timeout in all, never
    // idle for it.
    for i in 1..=10u8 {
        runtime.sleep(Duration::from_millis(150)).await;
        b.send_frame(out, &[i]);
        assert_eq!(expect_input(&runtime, &mut a).await, frame_input(id, vec![i]));
    }
    let quiet_from = Clock::read();
    assert_eq!(expect_end(&runtime, &mut a, id).await, StreamEnd::TimedOut);
    let waited = Clock::read().saturating_duration_since(quiet_from);
    assert!(waited >= idle - Duration::from_millis(100) && waited < Duration::from_secs(5), "{waited:?}");
    assert!(matches!(expect_end(&runtime, &mut b, out).await, StreamEnd::Closed | StreamEnd::Failed));
    assert_eq!(a.stats().timed_out, 1);
}

/// An open beyond the cap ends `Refused` at once; a connection accepted
/// beyond it is closed at once and never reported; both are counted, and a
/// freed slot takes the next stream.
pub async fn streams_cap<R: Runtime>(runtime: R) {
    let one = StreamLimits { max_streams: 1, ..StreamLimits::default() };
    let (mut a, a_addr) = stream_endpoint(&runtime, one, None);
    let mut b = Streams::new(runtime.clone(), one, None);
    let mut c = Streams::new(runtime.clone(), StreamLimits::default(), None);

    b.open(StreamId::Outbound(1), a_addr);
    let first = expect_accepted(&runtime, &mut a).await;
    b.open(StreamId::Outbound(2), a_addr);
    b.send_frame(StreamId::Outbound(2), b"dropped");
    assert_eq!(expect_end(&runtime, &mut b, StreamId::Outbound(2)).await, StreamEnd::Refused);
    assert_eq!((b.stats().over_cap, b.stats().opened, b.len()), (1, 1, 1));

    c.open(StreamId::Outbound(1), a_addr);
    c.send_frame(StreamId::Outbound(1), b"x");
    quiet_until(&runtime, &mut a, "a connection closed over the cap", |s| s.over_cap == 1).await;
    assert!(matches!(expect_end(&runtime, &mut c, StreamId::Outbound(1)).await, StreamEnd::Closed | StreamEnd::Failed));
    assert_eq!((a.stats().over_cap, a.stats().accepted), (1, 1));

    b.close(StreamId::Outbound(1));
    assert_eq!(expect_end(&runtime, &mut a, first).await, StreamEnd::Closed);
    c.open(StreamId::Outbound(2), a_addr);
    let second = expect_accepted(&runtime, &mut a).await;
    assert_ne!(first, second);
}

/// A stream to a peer the filter refuses ends `Refused` without a connect;
/// a connection from one is closed on accept; both are counted.
pub async fn streams_peer_filter<R: Runtime>(runtime: R) {
    let (mut a, a_addr) = stream_endpoint(&runtime, StreamLimits::default(), None);
    let not_a: PeerFilter = Arc::new(move |addr| addr != a_addr);
    let mut b = Streams::new(runtime.clone(), StreamLimits::default(), Some(not_a));
    b.open(StreamId::Outbound(1), a_addr);
    assert_eq!(expect_end(&runtime, &mut b, StreamId::Outbound(1)).await, StreamEnd::Refused);
    expect_quiet(&runtime, &mut a).await;
    assert_eq!((b.stats().filtered, b.stats().opened, a.stats().accepted), (1, 0, 0));

    let nobody: PeerFilter = Arc::new(|_| false);
    let (mut d, d_addr) = stream_endpoint(&runtime, StreamLimits::default(), Some(nobody));
    let mut c = Streams::new(runtime.clone(), StreamLimits::default(), None);
    c.open(StreamId::Outbound(1), d_addr);
    quiet_until(&runtime, &mut d, "a connection from a filtered peer", |s| s.filtered == 1).await;
    assert!(matches!(expect_end(&runtime, &mut c, StreamId::Outbound(1)).await, StreamEnd::Closed | StreamEnd::Failed));
    assert_eq!((d.stats().filtered, d.stats().accepted), (1, 0));
}

/// `node`'s counters once `done` holds of them; panics after
/// [`WAIT_AT_MOST`] saying it waited for `what` and the counters it saw.
async fn stats_until<R: Runtime>(runtime: &R, node: &Node, what: &str, done: impl Fn(&NodeStats) -> bool) -> NodeStats {
    let start = Clock::read();
    loop {
        let stats = node.stats().await.expect("node runs");
        if done(&stats) {
            return stats;
        }
        let waited = Clock::read().saturating_duration_since(start);
        assert!(waited < WAIT_AT_MOST, "no {what} within {waited:?}; counters {stats:?}");
        runtime.sleep(Duration::from_millis(20)).await;
    }
}

/// Follows the cluster's events (each passed to `on_event`) until `done`
/// holds of the counters of every running node (`done(i, stats)`), reading
/// them every 100 ms; returns them, by node index. Panics after
/// [`WAIT_AT_MOST`] saying it waited for `what` and the counters it saw.
async fn cluster_stats_until<R: Runtime>(
    cluster: &mut LocalCluster<R>,
    what: &str,
    mut done: impl FnMut(usize, &NodeStats) -> bool,
    mut on_event: impl FnMut(&LocalCluster<R>, &Seen),
) -> Vec<Option<NodeStats>> {
    let start = Clock::read();
    loop {
        let mut all = vec![None; cluster.nodes().len()];
        for i in cluster.running().collect::<Vec<_>>() {
            all[i] = Some(cluster.node(i).stats().await.expect("node runs"));
        }
        if all.iter().enumerate().all(|(i, s)| s.as_ref().is_none_or(|s| done(i, s))) {
            return all;
        }
        let waited = Clock::read().saturating_duration_since(start);
        assert!(waited < WAIT_AT_MOST, "no {what} within {waited:?}; counters {all:?}");
        cluster.sleep(Duration::from_millis(100), &mut on_event).await;
    }
}

/// A node listens for streams on its UDP port and counts what they bring;
/// its peer filter drops datagrams from and to a refused peer (the core
/// never sees those), and closes connections it refuses. `start` starts a
/// node on `runtime`.
pub async fn node_streams_and_peer_filter<R: Runtime>(
    runtime: R,
    start: impl Fn(NodeBuilder) -> Result<Node, StartError>,
) {
    let blocked = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let allowed = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let blocked_addr = blocked.local_addr().expect("address");
    let filter: PeerFilter = Arc::new(move |addr| addr != blocked_addr);
    let node = start(builder(0).peer_filter(filter)).expect("node starts");

    // Datagrams in: junk from the refused peer is dropped before the core.
    for _ in 0..3 {
        blocked.send_to(b"junk", node.addr()).expect("send");
    }
    allowed.send_to(b"junk", node.addr()).expect("send");
    // Out: a join through the refused peer (a sync over a stream) never
    // connects to it.
    let joiner = node.clone();
    runtime.spawn(async move {
        let _ = joiner.join(&[blocked_addr]).await;
    });
    let stats = stats_until(&runtime, &node, "3 datagrams, the join's stream and the junk counted", |s| {
        s.io.datagrams_filtered >= 3 && s.io.streams.filtered >= 1 && s.protocol.rejected_total() >= 1
    })
    .await;
    assert!(stats.io.datagrams_filtered >= 3, "3 in: {:?}", stats.io);
    assert!(stats.io.streams.filtered >= 1, "the join's stream: {:?}", stats.io);
    assert_eq!(stats.protocol.rejected_total(), 1, "only the allowed junk reaches the core");
    blocked.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    assert!(blocked.recv_from(&mut [0; 1500]).is_err(), "the refused peer got a datagram");

    // Streams come in on the UDP port; an oversized frame fails one.
    let mut raw = runtime.connect(node.addr()).await.expect("TCP on the node's port");
    raw.write_all(&[0, 0, 0, 2, 1, 2]).await.expect("write");
    raw.write_all(&u32::MAX.to_be_bytes()).await.expect("write");
    let mut rest = [0; 16];
    let read = within(&runtime, EXPECT_WITHIN, raw.read(&mut rest)).await.expect("the node closes the stream");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    // The first frame is not a valid packet either: either the runtime
    // fails the stream on the oversized length first, or it hands the
    // frame over and the core rejects it (the junk datagram was the core's
    // first rejection).
    let failed = |s: &NodeStats| s.io.streams.failed >= 1 || s.protocol.rejected_total() >= 2;
    let stats = stats_until(&runtime, &node, "the oversized stream failed", failed).await;
    let streams = stats.io.streams;
    assert_eq!(streams.accepted, 1, "{streams:?}");
    assert!(streams.frames_received <= 1, "{streams:?}");
    assert!(failed(&stats), "{streams:?} {:?}", stats.protocol);
    // The application calls reach the core (which may refuse them, but
    // not for being sent).
    assert_eq!(node.set_meta(b"meta".to_vec()).await, Ok(()));
    assert_eq!(node.set_app_state(b"state".to_vec()).await, Ok(()));
    assert_eq!(node.event("all", b"all".to_vec(), false).await, Ok(()));
    let sent = node.send("nobody", b"hi".to_vec(), true).await;
    assert!(matches!(sent, Ok(()) | Err(NodeError::Protocol(lapswim_core::Error::UnknownMember))), "{sent:?}");
    node.shutdown().await;
    assert_eq!(node.event("late", b"late".to_vec(), false).await, Err(NodeError::Stopped));

    // A node refusing everyone closes every connection on accept.
    let node = start(builder(1).peer_filter(Arc::new(|_| false))).expect("node starts");
    let mut raw = runtime.connect(node.addr()).await.expect("connect");
    let read = within(&runtime, EXPECT_WITHIN, raw.read(&mut rest)).await.expect("the node closes the connection");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let streams =
        stats_until(&runtime, &node, "the connection filtered", |s| s.io.streams.filtered >= 1).await.io.streams;
    assert_eq!((streams.filtered, streams.accepted), (1, 0), "{streams:?}");
    node.shutdown().await;
}

/// A cluster of `n` split into two halves by peer filters (datagrams
/// dropped, stream connects refused, both ways) for longer than the
/// longest suspicion: each half declares the other failed. Then the
/// filters lift, and the cluster must merge again by itself (reconnect
/// attempts to failed members) within 30 s.
pub async fn split_and_heal<R: Runtime>(runtime: R, n: usize, start: impl Fn(NodeBuilder) -> Result<Node, StartError>) {
    use core::sync::atomic::{AtomicBool, Ordering};
    use std::sync::RwLock;

    // n = 10: suspicion 0.8 s at least, 4.8 s at most; dead members leave
    // the table after 3 s and are retried every second.
    let config = fast_config()
        .with_reconnect_interval(Some(lapswim_core::Duration::from_secs(1)))
        .with_gossip_to_the_dead_time(lapswim_core::Duration::from_secs(2))
        .with_dead_member_retention(lapswim_core::Duration::from_secs(3));
    let split = Arc::new(AtomicBool::new(false));
    let halves: Arc<RwLock<[Vec<SocketAddr>; 2]>> = Arc::default();
    let mut cluster = LocalCluster::new(runtime);
    for i in 0..n {
        let (split, halves) = (split.clone(), halves.clone());
        let side = usize::from(i >= n / 2);
        let filter: PeerFilter = Arc::new(move |peer| {
            !split.load(Ordering::Relaxed) || !halves.read().map(|h| h[1 - side].contains(&peer)).unwrap_or(false)
        });
        cluster.add(|| start(builder(i).config(config.clone()).peer_filter(filter))).expect("node starts");
    }
    {
        let mut h = halves.write().expect("lock");
        for (i, node) in cluster.nodes().iter().enumerate() {
            h[usize::from(i >= n / 2)].push(node.addr());
        }
    }
    cluster.join_all(|_, _| {}).await.expect("every join is answered");
    assert!(cluster.wait_until(Duration::from_secs(20), LocalCluster::converged, |_, _| {}).await, "no convergence");

    split.store(true, Ordering::Relaxed);
    let names: Vec<_> = cluster.nodes().iter().map(|n| n.name().clone()).collect();
    let apart = |c: &LocalCluster<R>| {
        (0..n).all(|i| {
            (0..n).filter(|&j| (i < n / 2) != (j < n / 2)).all(|j| c.view(i, &names[j]) == Some(MemberState::Dead))
        })
    };
    let ok = cluster.wait_until(Duration::from_secs(20), apart, |_, _| {}).await;
    assert!(ok, "the halves did not declare each other failed: {:?}", cluster.views());
    // Past the reap time, the failed members are out of the tables.
    let start = Clock::read();
    loop {
        let members = cluster.node(0).members().await.expect("node runs");
        if members.len() <= n / 2 {
            break;
        }
        let waited = Clock::read().saturating_duration_since(start);
        assert!(waited < WAIT_AT_MOST, "the failed members not reaped within {waited:?}: {members:?}");
        cluster.sleep(Duration::from_millis(100), |_, _| {}).await;
    }

    split.store(false, Ordering::Relaxed);
    let ok = cluster.wait_until(Duration::from_secs(30), LocalCluster::converged, |_, _| {}).await;
    assert!(ok, "no merge after the heal: {:?}", cluster.views());
    let reconnects: u64 = {
        let mut total = 0;
        for node in cluster.nodes() {
            total += node.stats().await.expect("node runs").protocol.reconnects;
        }
        total
    };
    assert!(reconnects > 0, "healed by reconnect attempts");
    for node in cluster.nodes() {
        node.shutdown().await;
    }
}

/// A query over real sockets in a cluster of `n`: every member raises it
/// once and answers; the origin hears each member's ack and answer once,
/// then the query's end. Tags set on one member reach the others.
pub async fn queries_are_answered<R: Runtime>(
    runtime: R,
    n: usize,
    start: impl Fn(NodeBuilder) -> Result<Node, StartError>,
) {
    use lapswim_core::{Event, QueryOptions, Tags};
    let mut cluster = LocalCluster::new(runtime);
    for i in 0..n {
        cluster.add(|| start(builder(i).config(fast_config()))).expect("node starts");
    }
    cluster.join_all(|_, _| {}).await.expect("every join is answered");
    assert!(cluster.wait_until(Duration::from_secs(20), LocalCluster::converged, |_, _| {}).await, "no convergence");
    let tags: Tags = [("role", "web")].into_iter().collect();
    cluster.node(0).set_tags(tags.clone()).await.expect("tags set");
    let options =
        QueryOptions::default().with_ack(true).with_relay_factor(1).with_timeout(lapswim_core::Duration::from_secs(5));
    let origin = n - 1;
    let id = cluster.node(origin).query("load", b"?".to_vec(), options).await.expect("query asked");
    let raised = core::cell::RefCell::new(Vec::new());
    let acks = core::cell::RefCell::new(Vec::new());
    let answers = core::cell::RefCell::new(Vec::new());
    let done = core::cell::Cell::new(0);
    let note = |seen: &Seen| match &seen.event {
        Event::Query { id, from, .. } => {
            assert_eq!(from, cluster_name(origin).as_str());
            raised.borrow_mut().push((seen.observer, *id));
        }
        Event::QueryAck { id: q, from } if *q == id && seen.observer == origin => {
            acks.borrow_mut().push(from.to_string())
        }
        Event::QueryResponse { id: q, from, payload } if *q == id && seen.observer == origin => {
            answers.borrow_mut().push((from.to_string(), payload.clone()))
        }
        Event::QueryDone { id: q } if *q == id && seen.observer == origin => done.set(done.get() + 1),
        _ => {}
    };
    let all_raised = cluster.wait_until(WAIT_AT_MOST, |_| raised.borrow().len() == n, |_, seen| note(seen)).await;
    assert!(all_raised, "raised by {:?}", raised.borrow());
    let to_answer = raised.borrow().clone();
    for (i, qid) in to_answer {
        cluster.node(i).respond(qid, format!("load-{i}").into_bytes()).await.expect("answered");
    }
    let ended = cluster.wait_until(WAIT_AT_MOST, |_| done.get() > 0, |_, seen| note(seen)).await;
    assert!(ended, "no QueryDone");
    let mut want: Vec<String> = (0..n).map(cluster_name).collect();
    want.sort();
    let mut acked = acks.borrow().clone();
    acked.sort();
    assert_eq!(acked, want, "each member acked once");
    let mut answered = answers.borrow().clone();
    answered.sort();
    let expected: Vec<(String, Vec<u8>)> = (0..n)
        .map(|i| (cluster_name(i), format!("load-{i}").into_bytes()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(answered, expected, "each member answered once");
    assert_eq!(done.get(), 1);
    let members = cluster.node(origin).members().await.expect("members");
    let zero = members.iter().find(|m| m.name.as_str() == cluster_name(0)).expect("member 0");
    assert_eq!(zero.tags, tags, "tags travel with the member");
    for node in cluster.nodes() {
        node.shutdown().await;
    }
}

/// The name [`builder`] gives node `i`.
fn cluster_name(i: usize) -> String {
    format!("node-{i}")
}

/// Three broadcasts from different members of a cluster of `n`: every
/// member reports each exactly once, in Lamport order per sender.
pub async fn broadcasts_reach_everyone_once<R: Runtime>(
    runtime: R,
    n: usize,
    start: impl Fn(NodeBuilder) -> Result<Node, StartError>,
) {
    // Gossip reaches every member only with high probability: at 5 members
    // each member sends a broadcast `4 × ceil(log10 6)` = 4 times, to
    // members drawn at random, and about one run in 40 left one member
    // without one of the three broadcasts. Twice the transmissions make
    // that chance about its square; the test is of delivery once and in
    // order, not of gossip's odds.
    let config = fast_config().with_retransmit_mult(core::num::NonZeroU32::new(8).expect("non-zero"));
    let mut cluster = LocalCluster::new(runtime);
    for i in 0..n {
        cluster.add(|| start(builder(i).config(config.clone()))).expect("node starts");
    }
    cluster.join_all(|_, _| {}).await.expect("every join is answered");
    assert!(cluster.wait_until(Duration::from_secs(20), LocalCluster::converged, |_, _| {}).await, "no convergence");
    for (k, from) in [0, n / 2, n - 1].into_iter().enumerate() {
        cluster.node(from).event("hello", format!("hello-{k}").into_bytes(), false).await.expect("broadcast");
    }
    let got = core::cell::RefCell::new(vec![Vec::<(String, Vec<u8>)>::new(); n]);
    let wanted = 3 * n;
    let count = core::cell::Cell::new(0);
    let mut duplicates = 0;
    let delivered = cluster
        .wait_until(
            WAIT_AT_MOST,
            |_| count.get() == wanted,
            |_, seen| {
                if let lapswim_core::Event::User { from, payload, .. } = &seen.event {
                    let entry = (from.as_str().to_string(), payload.clone());
                    let mut got = got.borrow_mut();
                    if got[seen.observer].contains(&entry) {
                        duplicates += 1;
                    } else {
                        got[seen.observer].push(entry);
                        count.set(count.get() + 1);
                    }
                }
            },
        )
        .await;
    assert!(delivered, "not every broadcast reached every member within {WAIT_AT_MOST:?}; by member: {got:?}");
    // The broadcasts go on being gossiped for a while: each member sends
    // each of them `limit` times, at the latest at its next `limit` gossip
    // rounds (four to a probe period). Once every member has run `limit`
    // more probe rounds, no copy is left to come, and none was reported
    // twice.
    let limit = u64::from(lapswim_core::internals::retransmit_limit(config.retransmit_mult.get(), n));
    let sent = probes_sent(&mut cluster).await;
    let all = cluster_stats_until(
        &mut cluster,
        &format!("{} more probe rounds at every member", limit + 2),
        |i, s| s.protocol.probes_sent >= sent[i] + limit + 2,
        |_, seen| duplicates += usize::from(matches!(seen.event, lapswim_core::Event::User { .. })),
    )
    .await;
    let stats: Vec<_> = all.iter().flatten().map(|s| &s.protocol).collect();
    assert!(stats.iter().all(|s| s.events_delivered == 3), "{stats:?}");
    // Copies did come again, and were dropped.
    assert!(stats.iter().map(|s| s.events_duplicate).sum::<u64>() > 0, "{stats:?}");
    // Events reported before the counters were read.
    cluster
        .sleep(Duration::from_millis(100), |_, seen| {
            duplicates += usize::from(matches!(seen.event, lapswim_core::Event::User { .. }));
        })
        .await;
    assert_eq!(duplicates, 0);
    assert_eq!(count.get(), wanted, "{got:?}");
    // A direct message, best effort and reliable.
    let to = cluster.node(1).name().to_string();
    cluster.node(0).send(&to, b"psst".to_vec(), false).await.expect("sent");
    cluster.node(0).send(&to, b"sure".to_vec(), true).await.expect("sent");
    let direct = core::cell::RefCell::new(Vec::new());
    cluster
        .wait_until(
            Duration::from_secs(5),
            |_| direct.borrow().len() >= 2,
            |_, seen| {
                if let lapswim_core::Event::Message { payload, reliable, .. } = &seen.event {
                    direct.borrow_mut().push((seen.observer, payload.clone(), *reliable));
                }
            },
        )
        .await;
    let mut direct = direct.into_inner();
    direct.sort();
    assert_eq!(direct, [(1, b"psst".to_vec(), false), (1, b"sure".to_vec(), true)]);
    for node in cluster.nodes() {
        node.shutdown().await;
    }
}

/// A cluster sealed with one key: `n` nodes converge; a node without the
/// key, and one with another key, cannot join (every packet of theirs is
/// rejected, and they understand none of the cluster's); then the cluster
/// rotates to a new key by the documented procedure (install everywhere,
/// use everywhere, remove the old everywhere) and stays whole, with no
/// member declared failed.
pub async fn sealed_cluster_rotates_keys<R: Runtime>(
    runtime: R,
    n: usize,
    start: impl Fn(NodeBuilder) -> Result<Node, StartError>,
) {
    use lapswim_core::{Key, KeyringOp};
    let (old, new, wrong) = (Key::new([1; 32]), Key::new([2; 32]), Key::new([3; 32]));
    let mut cluster = LocalCluster::new(runtime);
    for i in 0..n {
        cluster.add(|| start(builder(i).keys([old]))).expect("node starts");
    }
    cluster.join_all(|_, _| {}).await.expect("every join is answered");
    assert!(cluster.wait_until(Duration::from_secs(20), LocalCluster::converged, |_, _| {}).await, "no convergence");
    let seed = [cluster.node(0).addr()];
    // Without the key, with another, or with it but sending plaintext (the
    // first step of a migration, which a cluster that requires sealing
    // refuses).
    for outsider in [builder(100), builder(101).keys([wrong]), builder(102).keys([old]).encryption_mode(false, true)] {
        let node =
            start(outsider.config(fast_config().with_join_attempts(core::num::NonZeroU32::MIN))).expect("starts");
        assert!(node.join(&seed).await.is_err(), "a node without the cluster's key joins");
        assert_eq!(node.members().await.expect("members").len(), 1, "the outsider learned nothing");
        node.shutdown().await;
    }
    let rejected = cluster.node(0).stats().await.expect("stats").protocol.rejected_total();
    assert!(rejected > 0, "the outsiders' packets are rejected");
    let mut failed = 0;
    let steps: [(KeyringOp, &[Key]); 3] =
        [(KeyringOp::Install(new), &[old, new]), (KeyringOp::Use(new), &[new, old]), (KeyringOp::Remove(old), &[new])];
    for (op, keys) in steps {
        for i in 0..n {
            cluster.node(i).keyring(op).await.expect("keyring change");
            assert_eq!(cluster.node(i).keys().await.expect("keys"), keys, "installed keys after {op:?}");
        }
        // Every node then probes each of the others at least once (round
        // robin) with the keyring of this step, and is answered.
        let acked = acks(&mut cluster).await;
        cluster_stats_until(
            &mut cluster,
            &format!("{n} more probes acked at every node after {op:?}"),
            |i, s| s.protocol.probes_acked >= acked[i] + n as u64,
            |_, seen| failed += usize::from(matches!(seen.event, lapswim_core::Event::Failed { .. })),
        )
        .await;
    }
    assert!(cluster.node(0).keyring(KeyringOp::Remove(new)).await.is_err(), "the primary key cannot be removed");
    // A failure comes at the end of a suspicion: with every member seen
    // alive everywhere after two more rounds of probes answered, none is
    // under way.
    let acked = acks(&mut cluster).await;
    cluster_stats_until(
        &mut cluster,
        "two more rounds of probes acked at every node",
        |i, s| s.protocol.probes_acked >= acked[i] + 2 * n as u64,
        |_, seen| failed += usize::from(matches!(seen.event, lapswim_core::Event::Failed { .. })),
    )
    .await;
    let converged = cluster
        .wait_until(WAIT_AT_MOST, LocalCluster::converged, |_, seen| {
            failed += usize::from(matches!(seen.event, lapswim_core::Event::Failed { .. }));
        })
        .await;
    assert!(converged, "cluster split: {:?}", cluster.views());
    assert_eq!(failed, 0, "a member was declared failed during the rotation");
    for node in cluster.nodes() {
        node.shutdown().await;
    }
}

/// Probes sent so far by each node (0 for a stopped one).
async fn probes_sent<R: Runtime>(cluster: &mut LocalCluster<R>) -> Vec<u64> {
    let all = cluster_stats_until(cluster, "counters", |_, _| true, |_, _| {}).await;
    all.iter().map(|s| s.as_ref().map_or(0, |s| s.protocol.probes_sent)).collect()
}

/// Probes acked so far by each node (0 for a stopped one).
async fn acks<R: Runtime>(cluster: &mut LocalCluster<R>) -> Vec<u64> {
    let all = cluster_stats_until(cluster, "counters", |_, _| true, |_, _| {}).await;
    all.iter().map(|s| s.as_ref().map_or(0, |s| s.protocol.probes_acked)).collect()
}

/// [`converge_kill_leave`] with every node recording its trace to `dir`,
/// then every trace replayed offline: digest for digest identical, and a
/// replay of a differently configured build diverges.
pub async fn recorded_cluster_replays<R: Runtime>(
    runtime: R,
    n: usize,
    dir: &std::path::Path,
    start: impl Fn(NodeBuilder) -> Result<Node, StartError>,
) {
    use rand_core::SeedableRng;
    std::fs::create_dir_all(dir).expect("trace directory");
    let path = |i: usize| dir.join(format!("node-{i}.trace"));
    converge_kill_leave(runtime, n, |i| start(builder(i).record(path(i)))).await;
    let rng = rand_xoshiro::Xoshiro256PlusPlus::seed_from_u64;
    let mut total = 0;
    for i in 0..n {
        let bytes = std::fs::read(path(i)).expect("a trace per node");
        let r = lapswim_core::trace::replay(&bytes, &[], rng, None, false).expect("a whole trace");
        assert_eq!(r.divergence, None, "node {i} replayed differently");
        // The victim is killed early; the others run on.
        assert!(r.inputs > 0, "node {i}: no input");
        total += r.inputs;
    }
    assert!(total > 100, "{total} inputs in all");
    // A build that behaves differently is caught.
    let bytes = std::fs::read(path(0)).expect("trace");
    let reader = lapswim_core::trace::TraceReader::new(&bytes).expect("a trace");
    let mut header = reader.header.clone();
    header.config.gossip_nodes += 1;
    let records: Vec<_> = reader.map(|r| r.expect("whole")).collect();
    let changed = lapswim_core::internals::trace::to_bytes(&header, &records);
    let r = lapswim_core::trace::replay(&changed, &[], rng, None, false).expect("a whole trace");
    assert!(r.divergence.is_some(), "a changed build replays identically");
}
