//! The simulated network: a virtual clock, a FIFO event queue, and
//! per-packet latency, loss, partitions, crashes and slow nodes.
//!
//! It moves bytes and time between state machines through the shared
//! [`Driver`] and reports their events; it has no protocol logic of its
//! own. Nodes are [`Swim`] by default, or any [`Machine`] an application
//! wraps around it (see [`Sim::with_nodes`]).

use core::net::SocketAddr;
use std::collections::{BTreeMap, BTreeSet};

use lapswim_core::Datagram;
use lapswim_core::{
    Config, Digest, Driver, Event, Identity, Input, Instant, Machine, MemberName, OwnedInput, StreamEnd, StreamId,
    Swim, Transport,
};
use rand_core::{Rng, SeedableRng};

pub use crate::addr::{SimRng, mix, name_index, node_addr, node_addr_at, node_index, node_name, seed_from_env};
use crate::clock::Clock;
pub use crate::command::{Command, NetConfig, PartitionId, SimError};

mod calendar;
mod nodes;
mod parallel;
mod tcp;

use calendar::Calendar;
use nodes::Nodes;

/// Whether the observer wants the run to go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Keep running.
    Continue,
    /// Stop after the current item.
    Stop,
}

/// Receives every event as it is emitted.
pub trait Observer {
    /// `node` emitted `event` at virtual time `t` (ms).
    fn event(&mut self, t: u64, node: usize, event: &Event) -> Flow;
}

impl<F: FnMut(u64, usize, &Event) -> Flow> Observer for F {
    fn event(&mut self, t: u64, node: usize, event: &Event) -> Flow {
        self(t, node, event)
    }
}

/// Why [`Sim::run_until`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// Virtual time reached the limit.
    Deadline,
    /// The observer asked to stop.
    Observer,
    /// The invariant hook reported a violation ([`Sim::violation`]).
    Invariant,
}

/// Traffic counters.
#[derive(Clone, Debug, Default)]
pub struct NetStats {
    /// Datagrams sent (lost ones included).
    pub msgs_sent: u64,
    /// Bytes sent (lost ones included).
    pub bytes_sent: u64,
    /// Datagrams handed to a node.
    pub packets_delivered: u64,
    /// Datagrams lost to random loss.
    pub lost: u64,
    /// Datagrams dropped by partitions or crashes.
    pub dropped: u64,
    /// Datagrams sent per node.
    pub sent_by_node: Vec<u64>,
    /// Datagrams addressed to each node (lost and dropped ones included).
    pub sent_to_node: Vec<u64>,
    /// Streams connected.
    pub streams: u64,
    /// Stream connections refused (nobody at the address) or timed out
    /// (no answer within the connect timeout).
    pub streams_failed: u64,
    /// Established streams given up because a segment stayed unacknowledged
    /// for the give-up time (across a partition, to a host that is gone).
    pub streams_stalled: u64,
    /// Stream segments sent, handshakes and retransmissions included.
    pub segments: u64,
    /// Stream segments lost (each was retransmitted, or its stream gave up).
    pub segments_lost: u64,
    /// Stream frames delivered.
    pub frames: u64,
    /// Bytes of stream frames sent on established connections (with their
    /// 4-byte length prefix): frames written to a connection that was
    /// refused or never opened left no host and are not counted.
    pub frame_bytes: u64,
    /// Traffic the nodes sent to addresses that are no node's (a forged
    /// member's address, a stranger's), by address.
    pub outside: std::collections::BTreeMap<SocketAddr, Outside>,
}

/// What the nodes sent to one address outside the cluster.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outside {
    /// Datagrams.
    pub datagrams: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Stream connections tried (none is answered).
    pub connects: u64,
}

/// Builds node `index` (again, after `restarts` restarts).
pub struct NodeSpec {
    /// The node's index.
    pub index: usize,
    /// Its name, `n{index}`.
    pub name: MemberName,
    /// Its address ([`node_addr`]).
    pub addr: SocketAddr,
    /// Its generator, seeded from the run's seed, the index and the
    /// restart count.
    pub rng: SimRng,
    /// How many times it has been restarted.
    pub restarts: u64,
    /// The seed `rng` was built from (recorded in traces).
    pub seed: u64,
}

/// Makes a node from its [`NodeSpec`].
pub type Factory<N> = Box<dyn FnMut(NodeSpec) -> Result<N, lapswim_core::Error>>;

/// Sees every datagram handed to a node: `(time, to, from, bytes)`.
pub type Tap = Box<dyn FnMut(u64, usize, usize, &[u8])>;

/// Checked after every step; an `Err` stops the run.
pub type Invariant<N> = Box<dyn FnMut(&Sim<N>) -> Result<(), String>>;

enum Item {
    Deliver {
        to: usize,
        to_addr: SocketAddr,
        from: SocketAddr,
        packet: Datagram,
    },
    Wake {
        node: usize,
        at: u64,
    },
    Command(Command),
    /// An opener sends (or resends) a stream's handshake.
    Syn(tcp::Syn),
    /// A stream's handshake completes: both ends exist from here on.
    Established {
        from: usize,
        id: StreamId,
        to: usize,
        to_addr: SocketAddr,
    },
    /// A connection reaches its listener's accept queue.
    Accept {
        to: usize,
        id: StreamId,
        from: SocketAddr,
    },
    /// A frame's (or a close's) segments are sent, or resent.
    Segment(tcp::Segment),
    /// A frame (or a close, `None`) has wholly reached one end of a
    /// stream; it is handed over in sequence.
    Arrive {
        to: usize,
        id: StreamId,
        seq: u64,
        frame: Option<Datagram>,
    },
    /// One end of a stream learns that it ended.
    StreamEnd {
        to: usize,
        id: StreamId,
        end: StreamEnd,
    },
}

/// One end of a simulated stream.
enum End {
    /// Still connecting: frames and a close wait for the connection.
    Connecting { frames: Vec<Datagram>, close: bool },
    /// Connected to this end at the other node.
    Connected(tcp::Conn),
}

struct Slot<N> {
    machine: N,
    driver: Driver,
    restarts: u64,
}

#[derive(Clone, Copy, Debug, Default)]
struct Link {
    latency_ms: Option<u64>,
    loss: Option<f64>,
}

struct Cut {
    from: Vec<bool>,
    to: Vec<bool>,
}

/// Everything but the nodes: clock, queue, faults, counters.
struct Network {
    net: NetConfig,
    queue: Calendar<Item>,
    now: u64,
    rng: SimRng,
    /// Whether each node's process is down: kept apart from [`Host`], as
    /// every datagram asks it of its sender too.
    crashed: Vec<bool>,
    /// The rest of what the network knows of each node.
    hosts: Vec<Host>,
    links: BTreeMap<(usize, usize), Link>,
    /// One-way latencies by the geo model, when it is in force.
    geo: Option<crate::geo::Geo>,
    cuts: BTreeMap<PartitionId, Vec<Cut>>,
    stats: NetStats,
    events: Vec<(usize, Event)>,
    /// Open stream ends, by node and the node's handle.
    ends: BTreeMap<(usize, StreamId), End>,
    /// The next inbound stream handle per node.
    next_inbound: Vec<u64>,
    /// Duplication and jitter, for all datagrams.
    duplication: f64,
    jitter_ms: u64,
    /// Burst loss, when on, and the one-way links now in the bad state.
    burst: Option<Burst>,
    bad_links: BTreeSet<(usize, usize)>,
}

/// What the network knows of one node besides whether it is crashed, in
/// one record. Every datagram handed over reads its receiver's clock,
/// slowness, pending wake-up, pause, deafness and address, and every one
/// sent its sender's and receiver's loss and slowness: with 10,000 nodes
/// a table per field costs a cache miss per field, a record two lines.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct Host {
    // The first line: what a wake-up reads.
    /// Until when the node is paused (a gray failure).
    paused_until: u64,
    slow_ms: u64,
    /// The node's own clock.
    clock: Clock,
    /// When the node's wake-up is scheduled (its deadline plus the
    /// slowness in force when it was asked for), with the deadline it
    /// asked for, read on its own clock.
    wake_at: Option<(u64, Instant)>,
    /// The node's current address (a restart may move it).
    addr: SocketAddr,
    /// Its own send and receive loss.
    node_loss: (f64, f64),
    /// How often the node has moved.
    moves: u16,
    /// Crashed with its host: nothing answers for it.
    host_down: bool,
    /// Whether it hears nothing (a gray failure).
    deaf: bool,
    /// Whether its datagrams are all lost ([`Command::SetMute`]).
    mute: bool,
}

// Two cache lines, the first holding what a wake-up reads.
const _: () = assert!(core::mem::size_of::<Host>() == 128 && core::mem::offset_of!(Host, addr) == 64);

impl Host {
    fn new(addr: SocketAddr) -> Self {
        Host {
            paused_until: 0,
            slow_ms: 0,
            clock: Clock::default(),
            wake_at: None,
            addr,
            node_loss: (0.0, 0.0),
            moves: 0,
            host_down: false,
            deaf: false,
            mute: false,
        }
    }
}

/// A Gilbert–Elliott channel's parameters ([`Command::SetBurstLoss`]).
#[derive(Clone, Copy, Debug)]
struct Burst {
    enter: f64,
    leave: f64,
    loss: f64,
}

/// One node's view of the network while its driver runs.
struct Port<'a> {
    net: &'a mut Network,
    node: usize,
}

impl Transport for Port<'_> {
    fn send(&mut self, to: SocketAddr, packet: Datagram) -> Option<Datagram> {
        self.net.send(self.node, to, packet);
        None
    }

    fn set_timer(&mut self, at: Instant) {
        let local = at;
        let at = self.net.wake_time(self.node, at);
        self.net.hosts[self.node].wake_at = Some((at, local));
        self.net.push(at, Item::Wake { node: self.node, at });
    }

    fn event(&mut self, event: Event) {
        self.net.events.push((self.node, event));
    }

    fn open_stream(&mut self, id: StreamId, to: SocketAddr) {
        if node_index(to).is_none_or(|j| j >= self.net.crashed.len()) {
            self.net.stats.outside.entry(to).or_default().connects += 1;
        }
        self.net.open_stream(self.node, id, to);
    }

    fn send_frame(&mut self, id: StreamId, frame: Datagram) -> Option<Datagram> {
        self.net.stream_send(self.node, id, frame);
        None
    }

    fn close_stream(&mut self, id: StreamId) {
        self.net.stream_close(self.node, id);
    }
}

/// The network time at which a node with `clock` and slowness `slow_ms`
/// wakes, at network time `now`, for a deadline `at` read on its clock:
/// the first time its clock reads `at` (now, if already past), plus the
/// slowness.
fn wake_time(clock: &Clock, slow_ms: u64, now: u64, at: Instant) -> u64 {
    clock.global(at.as_millis()).max(now) + slow_ms
}

impl Network {
    fn push(&mut self, at: u64, item: Item) {
        self.queue.push(at, item);
    }

    /// The earliest queued item due at or before `until`, with its time.
    fn pop_due(&mut self, until: u64) -> Option<(u64, Item)> {
        self.queue.pop_due(until)
    }

    /// When node `i` wakes for a deadline `at` it set by its own clock: the
    /// first network time its clock reads `at` (now, if already past),
    /// plus its slowness.
    fn wake_time(&self, i: usize, at: Instant) -> u64 {
        wake_time(&self.hosts[i].clock, self.hosts[i].slow_ms, self.now, at)
    }

    /// Whether a datagram due now for node `to` at `to_addr` from `from`
    /// reaches the node, counting it as delivered, lost (a deaf node) or
    /// dropped (a crashed end, or a node no longer at that address).
    fn hands_over(&mut self, to: usize, to_addr: SocketAddr, from: SocketAddr) -> bool {
        let sender_down = node_index(from).is_some_and(|f| self.crashed.get(f) == Some(&true));
        if self.hosts[to].deaf {
            self.stats.lost += 1;
            return false;
        }
        if self.crashed[to] || sender_down || self.hosts[to].addr != to_addr {
            self.stats.dropped += 1;
            return false;
        }
        self.stats.packets_delivered += 1;
        true
    }

    fn cut(&self, i: usize, j: usize) -> bool {
        self.cuts.values().flatten().any(|c| c.from[i] && c.to[j])
    }

    fn send(&mut self, i: usize, to: SocketAddr, packet: Datagram) {
        self.stats.msgs_sent += 1;
        self.stats.bytes_sent += packet.len() as u64;
        self.stats.sent_by_node[i] += 1;
        let Some(j) = node_index(to).filter(|&j| j < self.crashed.len()) else {
            self.stats.dropped += 1;
            let o = self.stats.outside.entry(to).or_default();
            o.datagrams += 1;
            o.bytes += packet.len() as u64;
            return;
        };
        self.stats.sent_to_node[j] += 1;
        if self.cut(i, j) {
            self.stats.dropped += 1;
            return;
        }
        if self.hosts[i].mute || self.link_loses(i, j) {
            self.stats.lost += 1;
            return;
        }
        let base = self.now + self.latency(i, j) + self.hosts[j].slow_ms;
        let from = self.hosts[i].addr;
        if self.duplication > 0.0 && self.chance() < self.duplication {
            let at = base + self.jitter();
            self.push(at, Item::Deliver { to: j, to_addr: to, from, packet: packet.clone() });
        }
        let at = base + self.jitter();
        self.push(at, Item::Deliver { to: j, to_addr: to, from, packet });
    }

    /// Whether the random loss of link `i` → `j` and of both nodes takes
    /// one packet (a datagram or a stream segment alike).
    fn link_loses(&mut self, i: usize, j: usize) -> bool {
        let loss = self.links.get(&(i, j)).and_then(|l| l.loss).unwrap_or(self.net.loss);
        // Every draw is made, so a link's burst state moves with each packet.
        [loss, self.hosts[i].node_loss.0, self.hosts[j].node_loss.1, self.burst_loss(i, j)]
            .into_iter()
            .any(|p| p > 0.0 && self.chance() < p)
    }

    /// Moves link `i` → `j`'s burst channel one packet on; the loss
    /// probability of its state (0 when good or when burst loss is off).
    fn burst_loss(&mut self, i: usize, j: usize) -> f64 {
        let Some(b) = self.burst else { return 0.0 };
        let bad = self.bad_links.contains(&(i, j));
        let flip = if bad { b.leave } else { b.enter };
        let bad = if flip > 0.0 && self.chance() < flip { !bad } else { bad };
        if bad {
            self.bad_links.insert((i, j));
            b.loss
        } else {
            self.bad_links.remove(&(i, j));
            0.0
        }
    }

    /// The extra latency of one datagram.
    fn jitter(&mut self) -> u64 {
        if self.jitter_ms == 0 { 0 } else { self.rng.next_u64() % (self.jitter_ms + 1) }
    }

    /// A uniform draw in [0, 1).
    fn chance(&mut self) -> f64 {
        (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn latency(&self, i: usize, j: usize) -> u64 {
        if let Some(ms) = self.links.get(&(i, j)).and_then(|l| l.latency_ms) {
            return ms;
        }
        self.geo.as_ref().and_then(|g| g.one_way_ms(i, j)).unwrap_or(self.net.latency_ms)
    }

    /// Tells one end, after a latency, that its stream ended (unless its
    /// owner closed it first).
    fn end_stream(&mut self, to: usize, id: StreamId, end: StreamEnd, after: u64) {
        let at = self.now + after;
        self.push(at, Item::StreamEnd { to, id, end });
    }
}

/// A deterministic simulated cluster of `n` nodes.
pub struct Sim<N = Swim<SimRng>> {
    nodes: Nodes<N>,
    network: Network,
    factory: Factory<N>,
    tap: Option<Tap>,
    invariant: Option<Invariant<N>>,
    violation: Option<String>,
    /// Where this run's traces go, when recording.
    record: Option<std::path::PathBuf>,
}

impl Sim<Swim<SimRng>> {
    /// `n` [`Swim`] nodes named `n0 .. n{n-1}` with `config`, each alone
    /// until told to join. Every node is started at time 0.
    pub fn new(n: usize, config: Config, net: NetConfig) -> Result<Self, SimError> {
        Sim::with_nodes(
            n,
            net,
            Box::new(move |spec: NodeSpec| Swim::new(config.clone(), Identity::new(spec.name, spec.addr), spec.rng)),
        )
    }
}

impl<N: Machine + 'static> Sim<N> {
    /// `n` nodes built by `factory` (which is called again for a restart).
    pub fn with_nodes(n: usize, net: NetConfig, mut factory: Factory<N>) -> Result<Self, SimError> {
        let mut nodes = Nodes::with_capacity(n);
        let record = recording::next_run();
        for i in 0..n {
            let spec = spec(net.seed, i, 0, node_addr(i))?;
            let seed = spec.seed;
            let machine = factory(spec).map_err(SimError::Node)?;
            let mut driver = Driver::new();
            recording::start(&record, &mut driver, &machine, i, 0, seed);
            nodes.push(Slot { machine, driver, restarts: 0 });
        }
        let jitter_ms = net.jitter_ms;
        let geo = (net.latency_model == crate::geo::LatencyModel::Geo).then(|| crate::geo::Geo::new(n, 6, net.seed));
        let network = Network {
            rng: SimRng::seed_from_u64(mix(net.seed, 0)),
            net,
            queue: Calendar::default(),
            now: 0,
            crashed: vec![false; n],
            hosts: (0..n).map(|i| Host::new(node_addr(i))).collect(),
            links: BTreeMap::new(),
            geo,
            cuts: BTreeMap::new(),
            stats: NetStats { sent_by_node: vec![0; n], sent_to_node: vec![0; n], ..NetStats::default() },
            events: Vec::new(),
            ends: BTreeMap::new(),
            next_inbound: vec![0; n],
            duplication: 0.0,
            jitter_ms,
            burst: None,
            bad_links: BTreeSet::new(),
        };
        let mut sim = Sim { nodes, network, factory, tap: None, invariant: None, violation: None, record };
        for i in 0..n {
            sim.network.push(0, Item::Command(Command::Input { node: i, input: OwnedInput::Timeout }));
        }
        Ok(sim)
    }

    /// The geo latency model in force, if any (see [`crate::geo`]).
    pub fn geo(&self) -> Option<&crate::geo::Geo> {
        self.network.geo.as_ref()
    }

    /// Puts `geo` in force: one-way latencies from it from now on (links
    /// set with [`Command::SetLink`] still win).
    pub fn set_geo(&mut self, geo: crate::geo::Geo) {
        self.network.geo = Some(geo);
    }

    /// Virtual time now, in ms.
    pub fn now(&self) -> u64 {
        self.network.now
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Node `i`'s state machine.
    pub fn node(&self, i: usize) -> Result<&N, SimError> {
        self.nodes.get(i).map(|s| &s.machine).ok_or(SimError::NoSuchNode(i))
    }

    /// Node `i`'s state machine, to change by hand (a scenario's set-up,
    /// such as the `steady` scenario's tables built directly). What is done
    /// through it is no input: the node's digest ([`Sim::digest`]) and a
    /// recorded trace do not see it, so a trace of such a run does not
    /// replay; the run itself stays a function of its seed.
    pub fn node_mut(&mut self, i: usize) -> Result<&mut N, SimError> {
        self.nodes.get_mut(i).map(|s| &mut s.machine).ok_or(SimError::NoSuchNode(i))
    }

    /// Node `i`'s current address (a restart with a new address moves it).
    pub fn addr(&self, i: usize) -> Result<SocketAddr, SimError> {
        self.network.hosts.get(i).map(|h| h.addr).ok_or(SimError::NoSuchNode(i))
    }

    /// How many times node `i` has been restarted (each restart is a new
    /// life: a fresh state machine).
    pub fn restarts(&self, i: usize) -> Result<u64, SimError> {
        self.nodes.get(i).map(|s| s.restarts).ok_or(SimError::NoSuchNode(i))
    }

    /// Whether node `i` has crashed (and not restarted).
    pub fn is_crashed(&self, i: usize) -> Result<bool, SimError> {
        self.network.crashed.get(i).copied().ok_or(SimError::NoSuchNode(i))
    }

    /// Traffic counters so far.
    pub fn stats(&self) -> &NetStats {
        &self.network.stats
    }

    /// A digest of every action every node emitted, with its time: two
    /// runs behaved identically iff their digests match.
    pub fn digest(&self) -> Digest {
        let mut d = Digest::new();
        for s in self.nodes.iter() {
            d.write_u64(s.driver.digest().value());
        }
        d
    }

    /// The network's generator, for scenario choices that must be
    /// reproducible from the seed.
    pub fn rng(&mut self) -> &mut SimRng {
        &mut self.network.rng
    }

    /// The loss probability in force on links without their own.
    pub fn loss(&self) -> f64 {
        self.network.net.loss
    }

    /// Installs `tap`, called with every datagram delivered from then on
    /// (for tracing; it cannot change the run).
    pub fn set_tap(&mut self, tap: Tap) {
        self.tap = Some(tap);
    }

    /// Installs `check`, run after every step (delivery, wake-up, command);
    /// the first `Err` stops [`Sim::run_until`] with [`Stopped::Invariant`]
    /// and is kept in [`Sim::violation`].
    pub fn set_invariant(&mut self, check: Invariant<N>) {
        self.invariant = Some(check);
    }

    /// The invariant violation that stopped the run, if one did.
    pub fn violation(&self) -> Option<&str> {
        self.violation.as_deref()
    }

    /// Schedules `cmd` at virtual time `at` (not before now). A command
    /// naming a node that does not exist, or a loss outside `0..=1`, is
    /// refused here and nothing is scheduled.
    pub fn schedule(&mut self, at: u64, cmd: Command) -> Result<(), SimError> {
        if let Some(&bad) = cmd.nodes().iter().find(|&&i| i >= self.nodes.len()) {
            return Err(SimError::NoSuchNode(bad));
        }
        if let Some(p) = cmd.probabilities().into_iter().find(|p| !(0.0..=1.0).contains(p)) {
            return Err(SimError::BadLoss(p));
        }
        if let Command::SetClock { drift_ppm, .. } = cmd
            && drift_ppm < Clock::MIN_PPM
        {
            return Err(SimError::BadDrift(drift_ppm));
        }
        let at = at.max(self.network.now);
        self.network.push(at, Item::Command(cmd));
        Ok(())
    }

    /// Runs until virtual time `until` (items at `until` included), until
    /// the observer stops it, or until the invariant hook fails.
    pub fn run_until(&mut self, until: u64, obs: &mut impl Observer) -> Stopped {
        while let Some((at, item)) = self.network.pop_due(until) {
            self.network.now = at;
            self.process(item);
            let mut flow = Flow::Continue;
            let now = self.network.now;
            for (node, ev) in self.network.events.drain(..) {
                if obs.event(now, node, &ev) == Flow::Stop {
                    flow = Flow::Stop;
                }
            }
            if let Some(mut check) = self.invariant.take() {
                let verdict = check(self);
                self.invariant = Some(check);
                if let Err(msg) = verdict {
                    self.violation = Some(format!("at {now} ms: {msg}"));
                    return Stopped::Invariant;
                }
            }
            if flow == Flow::Stop {
                return Stopped::Observer;
            }
        }
        self.network.now = self.network.now.max(until);
        Stopped::Deadline
    }

    fn process(&mut self, item: Item) {
        // A paused node takes nothing until the pause ends: everything for
        // it waits, in order, and comes at once.
        let target = match &item {
            // The kernel handshakes and resends for a paused process; the
            // process takes in nothing.
            Item::Deliver { to, .. }
            | Item::Accept { to, .. }
            | Item::Arrive { to, .. }
            | Item::StreamEnd { to, .. } => Some(*to),
            Item::Wake { node, .. } => Some(*node),
            Item::Command(_) | Item::Syn(_) | Item::Established { .. } | Item::Segment(_) => None,
        };
        if let Some(t) = target
            && self.network.hosts[t].paused_until > self.network.now
        {
            let at = self.network.hosts[t].paused_until;
            self.network.push(at, item);
            return;
        }
        match item {
            Item::Deliver { to, to_addr, from, packet } => {
                if !self.network.hands_over(to, to_addr, from) {
                    return;
                }
                if let (Some(tap), Some(f)) = (self.tap.as_mut(), node_index(from)) {
                    tap(self.network.now, to, f, &packet);
                }
                self.input(to, Input::Packet { from, bytes: &packet });
                // Buffers are fungible: the receiver reuses this one.
                self.nodes[to].machine.recycle(packet);
            }
            Item::Wake { node, at } => {
                // Only the latest request counts; earlier ones were replaced.
                if self.network.hosts[node].wake_at.is_some_and(|(w, _)| w == at) {
                    self.network.hosts[node].wake_at = None;
                    self.input(node, Input::Timeout);
                }
            }
            Item::Command(cmd) => self.command(cmd),
            Item::Syn(syn) => self.network.syn(syn),
            Item::Established { from, id, to, to_addr } => self.network.established(from, id, to, to_addr),
            Item::Accept { to, id, from } => {
                if self.network.ends.contains_key(&(to, id)) {
                    self.input(to, Input::StreamAccepted { id, from });
                }
            }
            Item::Segment(segment) => self.network.segment(segment),
            Item::Arrive { to, id, seq, frame } => self.arrive(to, id, seq, frame),
            Item::StreamEnd { to, id, end } => {
                // Only an end its owner still holds hears of it.
                match self.network.ends.remove(&(to, id)) {
                    Some(End::Connecting { close: true, .. }) | None => {}
                    Some(_) => self.input(to, Input::StreamClosed { id, end }),
                }
            }
        }
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Join { node, seeds } => {
                let seeds: Vec<SocketAddr> = seeds.into_iter().map(|s| self.network.hosts[s].addr).collect();
                self.input(node, Input::Join { seeds: &seeds });
            }
            Command::Leave(node) => self.input(node, Input::Leave),
            Command::Input { node, input } => self.input(node, input.as_input()),
            Command::Crash(node) => {
                self.network.crashed[node] = true;
                self.network.hosts[node].wake_at = None;
                self.network.break_streams(node, true);
            }
            Command::CrashHost(node) => {
                self.network.crashed[node] = true;
                self.network.hosts[node].host_down = true;
                self.network.hosts[node].wake_at = None;
                self.network.break_streams(node, false);
            }
            Command::Restart { node, seeds, new_addr } => {
                let restarts = self.nodes[node].restarts + 1;
                self.network.break_streams(node, true);
                if new_addr {
                    self.network.hosts[node].moves = self.network.hosts[node].moves.wrapping_add(1);
                    self.network.hosts[node].addr = node_addr_at(node, self.network.hosts[node].moves);
                }
                // A restarted process has lost all its state, its
                // incarnation number included.
                let Ok(spec) = spec(self.network.net.seed, node, restarts, self.network.hosts[node].addr) else {
                    return;
                };
                let seed = spec.seed;
                if let Ok(machine) = (self.factory)(spec) {
                    let mut driver = Driver::new();
                    recording::start(&self.record, &mut driver, &machine, node, restarts, seed);
                    self.nodes[node] = Slot { machine, driver, restarts };
                    self.network.crashed[node] = false;
                    self.network.hosts[node].host_down = false;
                    self.network.hosts[node].wake_at = None;
                    let seeds: Vec<SocketAddr> = seeds.into_iter().map(|s| self.network.hosts[s].addr).collect();
                    self.input(node, Input::Join { seeds: &seeds });
                }
            }
            Command::SetLoss(p) => self.network.net.loss = p,
            Command::SetLink { from, to, latency_ms, loss } => {
                self.network.links.insert((from, to), Link { latency_ms, loss });
            }
            Command::Partition { id, from, to, both } => {
                let n = self.nodes.len();
                let mask = |set: &[usize]| {
                    let mut m = vec![false; n];
                    for &i in set {
                        m[i] = true;
                    }
                    m
                };
                let (f, t) = (mask(&from), mask(&to));
                let mut cuts = vec![Cut { from: f.clone(), to: t.clone() }];
                if both {
                    cuts.push(Cut { from: t, to: f });
                }
                self.network.cuts.insert(id, cuts);
            }
            Command::HealPartition(id) => {
                self.network.cuts.remove(&id);
            }
            Command::Heal => self.network.cuts.clear(),
            Command::SetSlow { node, ms } => self.network.hosts[node].slow_ms = ms,
            Command::Pause { node, ms } => {
                let until = self.network.now + ms;
                self.network.hosts[node].paused_until = self.network.hosts[node].paused_until.max(until);
            }
            Command::SetDeaf { node, deaf } => self.network.hosts[node].deaf = deaf,
            Command::SetMute { node, mute } => self.network.hosts[node].mute = mute,
            Command::SetNodeLoss { node, send, recv } => self.network.hosts[node].node_loss = (send, recv),
            Command::SetDuplication(p) => self.network.duplication = p,
            Command::SetJitter(ms) => self.network.jitter_ms = ms,
            Command::SetBurstLoss { enter, leave, loss } => {
                self.network.bad_links.clear();
                self.network.burst = (enter > 0.0).then_some(Burst { enter, leave, loss });
            }
            Command::SetClock { node, step_ms, drift_ppm } => {
                let now = self.network.now;
                self.network.hosts[node].clock.set(now, step_ms, drift_ppm);
                // A pending wake-up was set by the old clock: move it to when
                // the new one reads the deadline.
                if let Some((_, d)) = self.network.hosts[node].wake_at {
                    let at = self.network.wake_time(node, d);
                    self.network.hosts[node].wake_at = Some((at, d));
                    self.network.push(at, Item::Wake { node, at });
                }
            }
        }
    }

    fn input(&mut self, i: usize, input: Input<'_>) {
        if self.network.crashed[i] {
            return;
        }
        let now = Instant::from_millis(self.network.hosts[i].clock.local(self.network.now));
        let slot = &mut self.nodes[i];
        let mut port = Port { net: &mut self.network, node: i };
        // Refusals (a bad packet, a join after leaving) change nothing.
        let _ = slot.driver.handle(&mut slot.machine, now, input, &mut port);
    }
}

/// Recording every node's trace: one directory per simulated run, one file
/// per node life (`n{i}.trace`, `n{i}.r{k}.trace` after the k-th restart).
pub mod recording {
    use core::sync::atomic::{AtomicUsize, Ordering};
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    use lapswim_core::Driver;
    use lapswim_core::Machine;
    use lapswim_core::Swim;
    use lapswim_core::trace::{TraceHeader, TraceWriter};

    use super::SimRng;

    static DIR: Mutex<Option<PathBuf>> = Mutex::new(None);
    static RUNS: AtomicUsize = AtomicUsize::new(0);

    /// Records every simulated run from now on under `dir` (`run0`,
    /// `run1`, ... for scenarios that run several), or stops with `None`.
    pub fn record_to(dir: Option<&Path>) {
        if let Ok(mut d) = DIR.lock() {
            *d = dir.map(Path::to_path_buf);
        }
        RUNS.store(0, Ordering::SeqCst);
    }

    /// The directory of the next run, created, when recording.
    pub(crate) fn next_run() -> Option<PathBuf> {
        let base = DIR.lock().ok()?.clone()?;
        let dir = base.join(format!("run{}", RUNS.fetch_add(1, Ordering::SeqCst)));
        std::fs::create_dir_all(&dir).ok()?;
        Some(dir)
    }

    /// Creates a trace file readable by its owner only (0600 on unix): it
    /// holds no key, but every payload the application gave the node.
    fn create(path: &Path) -> std::io::Result<std::fs::File> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path)?;
        #[cfg(unix)]
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        Ok(file)
    }

    /// Starts recording node `i`'s life `restarts` into `dir`.
    pub(crate) fn start<N: Machine + 'static>(
        dir: &Option<PathBuf>,
        driver: &mut Driver,
        machine: &N,
        i: usize,
        restarts: u64,
        seed: u64,
    ) {
        // Only the state machine can be rebuilt from a header (other
        // machines, foca's among them, are not recorded).
        let header = (machine as &dyn core::any::Any).downcast_ref::<Swim<SimRng>>().map(|s| TraceHeader::of(seed, s));
        let (Some(dir), Some(header)) = (dir, header) else { return };
        let name = if restarts == 0 { format!("n{i}.trace") } else { format!("n{i}.r{restarts}.trace") };
        let Ok(mut file) = create(&dir.join(name)) else { return };
        let sink = move |b: &[u8]| {
            let _ = std::io::Write::write_all(&mut file, b);
        };
        driver.record(TraceWriter::new(&header, Box::new(sink)));
    }
}

fn spec(seed: u64, i: usize, restarts: u64, addr: SocketAddr) -> Result<NodeSpec, SimError> {
    // Names of the form n{i} are always valid.
    let name = MemberName::new(&node_name(i)).map_err(|_| SimError::NoSuchNode(i))?;
    let stream = (i as u64 + 1) + restarts.wrapping_mul(1 << 32);
    let seed = mix(seed, stream);
    Ok(NodeSpec { index: i, name, addr, rng: SimRng::seed_from_u64(seed), restarts, seed })
}
