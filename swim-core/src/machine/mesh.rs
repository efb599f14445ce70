//! A test harness: members wired back to back with no latency, datagrams
//! and streams both, with a filter to drop datagrams between chosen pairs.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::net::SocketAddr;

use rand_xoshiro::Xoshiro256PlusPlus as Rng64;

use crate::{Action, Event, Input, Instant, StreamEnd, StreamId, Swim};

enum Item {
    Packet { from: SocketAddr, bytes: Vec<u8> },
    Accepted { id: StreamId, from: SocketAddr },
    Frame { id: StreamId, frame: Vec<u8> },
    Closed { id: StreamId, end: StreamEnd },
}

pub(super) struct Mesh {
    pub(super) nodes: Vec<Swim<Rng64>>,
    queue: VecDeque<(usize, Item)>,
    links: BTreeMap<(usize, StreamId), (usize, StreamId)>,
    next_inbound: u64,
    /// Every event, with the node that emitted it.
    pub(super) events: Vec<(usize, Event)>,
    /// Every action, with the node that emitted it.
    pub(super) actions: Vec<(usize, Action)>,
    /// Datagrams from one node to another are dropped while this says so.
    pub(super) drop_datagram: fn(usize, usize) -> bool,
    /// Whether streams connect.
    pub(super) streams: bool,
    /// Datagrams and stream connections between these pairs are cut.
    pub(super) cut: fn(usize, usize) -> bool,
    /// Wake-ups per node.
    pub(super) wakeups: Vec<u32>,
}

impl Mesh {
    pub(super) fn new(nodes: Vec<Swim<Rng64>>) -> Self {
        let n = nodes.len();
        Mesh {
            nodes,
            queue: VecDeque::new(),
            links: BTreeMap::new(),
            next_inbound: 0,
            events: Vec::new(),
            actions: Vec::new(),
            drop_datagram: |_, _| false,
            streams: true,
            cut: |_, _| false,
            wakeups: alloc::vec![0; n],
        }
    }

    fn index(&self, addr: SocketAddr) -> Option<usize> {
        self.nodes.iter().position(|s| s.local().addr == addr)
    }

    /// Hands `input` to node `i` at `t` and routes everything that follows.
    pub(super) fn input(&mut self, i: usize, t: u64, input: Input<'_>) -> Result<(), crate::Error> {
        let mut out = Vec::new();
        let r = self.nodes[i].handle(Instant::from_millis(t), input, &mut out);
        self.route(i, out);
        self.settle(t);
        r
    }

    pub(super) fn route(&mut self, i: usize, out: Vec<Action>) {
        for a in out {
            self.actions.push((i, a.clone()));
            match a {
                Action::Send { to, packet } => {
                    let from = self.nodes[i].local().addr;
                    if let Some(j) = self.index(to).filter(|&j| !(self.drop_datagram)(i, j) && !(self.cut)(i, j)) {
                        self.queue.push_back((j, Item::Packet { from, bytes: packet.to_vec() }));
                    }
                }
                Action::OpenStream { id, to } => match self.index(to).filter(|&j| self.streams && !(self.cut)(i, j)) {
                    Some(j) => {
                        self.next_inbound += 1;
                        let peer = StreamId::Inbound(self.next_inbound);
                        self.links.insert((i, id), (j, peer));
                        self.links.insert((j, peer), (i, id));
                        let from = self.nodes[i].local().addr;
                        self.queue.push_back((j, Item::Accepted { id: peer, from }));
                    }
                    None => self.queue.push_back((i, Item::Closed { id, end: StreamEnd::Refused })),
                },
                Action::SendFrame { id, frame } => {
                    if let Some(&(j, peer)) = self.links.get(&(i, id)).filter(|(j, _)| !(self.cut)(i, *j)) {
                        self.queue.push_back((j, Item::Frame { id: peer, frame: frame.to_vec() }));
                    }
                }
                Action::CloseStream { id } => {
                    if let Some((j, peer)) = self.links.remove(&(i, id))
                        && self.links.remove(&(j, peer)).is_some()
                    {
                        self.queue.push_back((j, Item::Closed { id: peer, end: StreamEnd::Closed }));
                    }
                }
                Action::Event(e) => self.events.push((i, e)),
                Action::SetTimer(_) => {}
            }
        }
    }

    /// Delivers everything in flight at `t`.
    pub(super) fn settle(&mut self, t: u64) {
        while let Some((j, item)) = self.queue.pop_front() {
            let now = Instant::from_millis(t);
            let mut out = Vec::new();
            let swim = &mut self.nodes[j];
            let _ = match &item {
                Item::Packet { from, bytes } => swim.handle(now, Input::Packet { from: *from, bytes }, &mut out),
                Item::Accepted { id, from } => {
                    swim.handle(now, Input::StreamAccepted { id: *id, from: *from }, &mut out)
                }
                Item::Frame { id, frame } => swim.handle(now, Input::StreamFrame { id: *id, frame }, &mut out),
                Item::Closed { id, end } => {
                    self.links.remove(&(j, *id));
                    swim.handle(now, Input::StreamClosed { id: *id, end: *end }, &mut out)
                }
            };
            self.route(j, out);
        }
    }

    /// Runs every node's timers from `from` to `to` ms, 1 ms apart.
    pub(super) fn run(&mut self, from: u64, to: u64) {
        for t in from..=to {
            for i in 0..self.nodes.len() {
                if self.nodes[i].deadline().is_some_and(|d| d <= Instant::from_millis(t)) {
                    self.wakeups[i] += 1;
                    let _ = self.input(i, t, Input::Timeout);
                }
            }
        }
    }

    pub(super) fn events_of(&self, i: usize) -> impl Iterator<Item = &Event> {
        self.events.iter().filter(move |(n, _)| *n == i).map(|(_, e)| e)
    }
}
