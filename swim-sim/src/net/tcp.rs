//! Streams as TCP carries them over the simulated links.
//!
//! A stream meets the same faults as a datagram on the same link (loss,
//! burst loss, node loss, partitions, a host that is gone), packet by
//! packet: the handshake, every segment of every frame and the close.
//! What TCP adds is retransmission, so a stream under loss is late rather
//! than lost:
//!
//! - a lost handshake (the SYN, or the answer to it) is sent again after
//!   `syn_rto_ms` (1 s), then 2 s, 4 s, ... until the connect timeout;
//! - a lost data segment is sent again after `rto_ms` (200 ms), doubling
//!   for every further loss of the same segment; a segment still not
//!   through after `stream_give_up_ms` fails its stream at both ends;
//! - frames are handed over whole and in order: a frame whose segment is
//!   late holds back the frames behind it (head-of-line blocking).
//!
//! A crashed process's host still answers: a connection to it is reset at
//! once ([`StreamEnd::NotListening`] after a round trip) and its open
//! streams are reset. A host that is gone answers nothing: connections time out and
//! open streams stall. Acknowledgements are not modelled one by one: a
//! lost acknowledgement only makes TCP resend what has already arrived,
//! which changes no delivery time.

use std::collections::BTreeMap;

use core::net::SocketAddr;
use lapswim_core::Datagram;
use lapswim_core::{Input, Machine, StreamEnd, StreamId};

use super::{End, Item, Network, Sim, node_index};

/// The payload bytes of one segment (an Ethernet MTU less the IP and TCP
/// headers with timestamps).
const MSS: usize = 1448;

/// The length prefix of every frame on a stream.
const PREFIX: usize = 4;

/// The most doublings of a retransmission timeout (beyond, it stays).
const MAX_BACKOFF: u32 = 16;

/// A connection attempt: the opener's handshake, sent for the
/// `attempt`-th time.
pub(super) struct Syn {
    from: usize,
    id: StreamId,
    to_addr: SocketAddr,
    attempt: u32,
    started: u64,
}

/// The not yet delivered segments of one frame (or of a close).
pub(super) struct Segment {
    from: usize,
    from_id: StreamId,
    to: usize,
    to_id: StreamId,
    seq: u64,
    /// The frame, or `None` for the close.
    frame: Option<Datagram>,
    /// How many of its segments are still to get through.
    segments: u32,
    attempt: u32,
    first: u64,
}

/// One end of an established stream.
pub(super) struct Conn {
    /// The other end's node and handle.
    pub(super) node: usize,
    pub(super) id: StreamId,
    /// The sequence number of the next frame this end sends.
    sent: u64,
    /// The sequence number of the next frame this end hands to its node.
    next: u64,
    /// Frames that arrived ahead of one still on its way.
    held: BTreeMap<u64, Option<Datagram>>,
}

impl Conn {
    fn new(node: usize, id: StreamId) -> Self {
        Conn { node, id, sent: 0, next: 0, held: BTreeMap::new() }
    }

    /// The segments of the next frame this end (node `from`'s stream
    /// `from_id`) writes at `now`: `frame`, or the close for `None`.
    fn write(&mut self, from: usize, from_id: StreamId, frame: Option<Datagram>, now: u64) -> Segment {
        let seq = self.sent;
        self.sent += 1;
        let segments = frame.as_ref().map_or(1, |f| segments_of(f.len()));
        Segment { from, from_id, to: self.node, to_id: self.id, seq, frame, segments, attempt: 0, first: now }
    }
}

/// How many segments a frame of `len` bytes takes, its prefix included.
fn segments_of(len: usize) -> u32 {
    u32::try_from((len + PREFIX).div_ceil(MSS)).unwrap_or(u32::MAX)
}

/// `base` doubled `attempt` times (at most [`MAX_BACKOFF`]).
fn backoff(base: u64, attempt: u32) -> u64 {
    base.saturating_mul(1 << attempt.min(MAX_BACKOFF))
}

impl Network {
    /// Whether one packet from `i` to `j` is lost to a partition, a host
    /// that is gone or the random loss of the link and the nodes.
    fn segment_lost(&mut self, i: usize, j: usize) -> bool {
        self.stats.segments += 1;
        let lost = self.hosts[i].host_down || self.hosts[j].host_down || self.cut(i, j) || self.link_loses(i, j);
        if lost {
            self.stats.segments_lost += 1;
        }
        lost
    }

    /// Node `i` opens stream `id` to `to`: its handshake goes out now.
    pub(super) fn open_stream(&mut self, i: usize, id: StreamId, to: SocketAddr) {
        self.ends.insert((i, id), End::Connecting { frames: Vec::new(), close: false });
        self.syn(Syn { from: i, id, to_addr: to, attempt: 0, started: self.now });
    }

    /// Sends a handshake; schedules what follows from its fate.
    pub(super) fn syn(&mut self, s: Syn) {
        if self.crashed[s.from] || !matches!(self.ends.get(&(s.from, s.id)), Some(End::Connecting { .. })) {
            return;
        }
        // No host at all answers nothing; a host answers whether or not a
        // process listens (a reset), if its answer gets back.
        let host = node_index(s.to_addr).filter(|&j| j < self.crashed.len());
        let answer = match host {
            Some(j) if !self.segment_lost(s.from, j) => {
                let listening = self.hosts[j].addr == s.to_addr && !self.crashed[j];
                (!self.segment_lost(j, s.from)).then_some((j, listening))
            }
            _ => None,
        };
        match answer {
            Some((j, true)) => {
                let at = self.now + self.latency(s.from, j) + self.latency(j, s.from);
                self.push(at, Item::Established { from: s.from, id: s.id, to: j, to_addr: s.to_addr });
            }
            Some((j, false)) => {
                self.stats.streams_failed += 1;
                let after = self.latency(s.from, j) + self.latency(j, s.from);
                self.end_stream(s.from, s.id, StreamEnd::NotListening, after);
            }
            None => {
                let limit = s.started + self.net.connect_timeout_ms;
                // Resends at 1, 3, 7, ... s after the first (Linux's SYN
                // retries at an initial RTO of 1 s).
                let next = s.started + backoff(self.net.syn_rto_ms, s.attempt + 1) - self.net.syn_rto_ms;
                if next < limit {
                    self.push(next, Item::Syn(Syn { attempt: s.attempt + 1, ..s }));
                } else {
                    self.stats.streams_failed += 1;
                    self.end_stream(s.from, s.id, StreamEnd::TimedOut, limit.saturating_sub(self.now));
                }
            }
        }
    }

    /// The handshake of `from`'s stream `id` to node `to` has completed:
    /// both ends now exist, and what the opener queued meanwhile goes out.
    pub(super) fn established(&mut self, from: usize, id: StreamId, to: usize, to_addr: SocketAddr) {
        let Some(End::Connecting { frames, close }) = self.ends.remove(&(from, id)) else { return };
        if self.crashed[from] {
            return;
        }
        if self.crashed[to] || self.hosts[to].addr != to_addr {
            // The listener went away during the handshake: its host resets
            // the connection.
            self.ends.insert((from, id), End::Connecting { frames: Vec::new(), close });
            self.stats.streams_failed += 1;
            let after = self.latency(from, to) + self.latency(to, from);
            self.end_stream(from, id, StreamEnd::NotListening, after);
            return;
        }
        self.stats.streams += 1;
        self.next_inbound[to] += 1;
        let peer = StreamId::Inbound(self.next_inbound[to]);
        self.ends.insert((from, id), End::Connected(Conn::new(to, peer)));
        self.ends.insert((to, peer), End::Connected(Conn::new(from, id)));
        let from_addr = self.hosts[from].addr;
        self.push(self.now, Item::Accept { to, id: peer, from: from_addr });
        for frame in frames {
            self.stream_send(from, id, frame);
        }
        if close {
            self.stream_close(from, id);
        }
    }

    /// Node `i` writes `frame` on stream `id`. Its bytes count once they
    /// go onto a connection: a frame written while connecting waits for
    /// the handshake, and one whose connection is refused or dropped never
    /// leaves the host, as with a real socket.
    pub(super) fn stream_send(&mut self, i: usize, id: StreamId, frame: Datagram) {
        match self.ends.get_mut(&(i, id)) {
            Some(End::Connecting { frames, close: false }) => frames.push(frame),
            Some(End::Connected(c)) => {
                self.stats.frame_bytes += frame.len() as u64 + PREFIX as u64;
                let segment = c.write(i, id, Some(frame), self.now);
                self.segment(segment);
            }
            Some(End::Connecting { close: true, .. }) | None => {}
        }
    }

    /// Node `i` closes stream `id`: the other end learns after the frames
    /// already written, or the connection is closed as soon as it opens.
    pub(super) fn stream_close(&mut self, i: usize, id: StreamId) {
        match self.ends.remove(&(i, id)) {
            Some(End::Connecting { frames, .. }) => {
                self.ends.insert((i, id), End::Connecting { frames, close: true });
            }
            Some(End::Connected(mut c)) => {
                let segment = c.write(i, id, None, self.now);
                self.segment(segment);
            }
            None => {}
        }
    }

    /// Sends (or resends) what is left of a frame; once all of it is
    /// through, it arrives after a latency.
    pub(super) fn segment(&mut self, s: Segment) {
        // A sender that is gone resends nothing; an end that is gone takes
        // nothing (its host reset the stream or it was given up), unless its
        // host is gone too, and then nothing tells the sender so.
        let reset = !self.ends.contains_key(&(s.to, s.to_id)) && !self.hosts[s.to].host_down;
        if self.crashed[s.from] || reset {
            return;
        }
        let lost = (0..s.segments).filter(|_| self.segment_lost(s.from, s.to)).count() as u32;
        if lost == 0 {
            let at = self.now + self.latency(s.from, s.to) + self.hosts[s.to].slow_ms + self.jitter();
            self.push(at, Item::Arrive { to: s.to, id: s.to_id, seq: s.seq, frame: s.frame });
            return;
        }
        let next = self.now + backoff(self.net.rto_ms, s.attempt);
        let give_up = s.first + self.net.stream_give_up_ms;
        if next > give_up {
            self.stats.streams_stalled += 1;
            let after = give_up.saturating_sub(self.now);
            self.end_stream(s.to, s.to_id, StreamEnd::TimedOut, after);
            self.end_stream(s.from, s.from_id, StreamEnd::TimedOut, after);
            return;
        }
        self.push(next, Item::Segment(Segment { segments: lost, attempt: s.attempt + 1, ..s }));
    }

    /// Every stream of node `i` ends with its process. With `reset`, its
    /// host resets them and the other ends learn after a latency; without
    /// (the host is gone), they learn nothing and stall.
    pub(super) fn break_streams(&mut self, i: usize, reset: bool) {
        let mine: Vec<(StreamId, Option<(usize, StreamId)>)> = self
            .ends
            .range((i, StreamId::Outbound(0))..)
            .take_while(|((n, _), _)| *n == i)
            .map(|((_, id), end)| match end {
                End::Connected(c) => (*id, Some((c.node, c.id))),
                End::Connecting { .. } => (*id, None),
            })
            .collect();
        for (id, peer) in mine {
            self.ends.remove(&(i, id));
            if let (true, Some((j, peer))) = (reset, peer)
                && self.ends.contains_key(&(j, peer))
            {
                let lat = self.latency(i, j);
                self.end_stream(j, peer, StreamEnd::Failed, lat);
            }
        }
    }
}

impl<N: Machine + 'static> Sim<N> {
    /// A frame (or the close) of stream `id` has wholly reached node `to`:
    /// it is handed over with any held frames that follow it, in order.
    pub(super) fn arrive(&mut self, to: usize, id: StreamId, seq: u64, frame: Option<Datagram>) {
        let (mut seq, mut frame) = (seq, frame);
        loop {
            let Some(End::Connected(c)) = self.network.ends.get_mut(&(to, id)) else { return };
            if seq != c.next {
                c.held.insert(seq, frame);
                return;
            }
            c.next += 1;
            let Some(bytes) = frame else {
                self.network.ends.remove(&(to, id));
                self.input(to, Input::StreamClosed { id, end: StreamEnd::Closed });
                return;
            };
            self.network.stats.frames += 1;
            self.input(to, Input::StreamFrame { id, frame: &bytes });
            self.nodes[to].machine.recycle(bytes);
            let Some(End::Connected(c)) = self.network.ends.get_mut(&(to, id)) else { return };
            let Some(held) = c.held.remove(&c.next) else { return };
            (seq, frame) = (c.next, held);
        }
    }
}
