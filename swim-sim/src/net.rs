//! The simulated network: a virtual clock, a FIFO event queue, and
//! per-packet latency, loss, partitions, crashes and slow nodes.
//!
//! It moves bytes and time between [`Swim`] state machines and reports
//! their events; it has no protocol logic of its own.

use core::cmp::Ordering;
use core::hash::{Hash, Hasher};
use core::net::{Ipv4Addr, SocketAddr};
use std::collections::BinaryHeap;

use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use swim_core::{Action, Config, Event, Identity, Input, Instant, MemberName, Swim};

/// The generator every simulated node and the network use.
pub type SimRng = Xoshiro256PlusPlus;

/// A `splitmix64` step: spreads `(seed, stream)` into an independent seed.
pub fn mix(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The address of simulated node `i`: `10.x.y.z:7946` with `i` in the
/// low 24 bits.
pub fn node_addr(i: usize) -> SocketAddr {
    let ip = Ipv4Addr::from(0x0A00_0000 | (i as u32 & 0x00FF_FFFF));
    SocketAddr::from((ip, 7946))
}

/// The node at a simulated address.
pub fn node_index(addr: SocketAddr) -> Option<usize> {
    match addr {
        SocketAddr::V4(a) if a.port() == 7946 && a.ip().octets()[0] == 10 => {
            Some((u32::from(*a.ip()) & 0x00FF_FFFF) as usize)
        }
        _ => None,
    }
}

/// The name of simulated node `i`.
pub fn node_name(i: usize) -> String {
    format!("n{i}")
}

/// The index of the simulated node called `name`.
pub fn name_index(name: &str) -> Option<usize> {
    name.strip_prefix('n')?.parse().ok()
}

/// Network parameters.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// The base seed: node `i` draws from `mix(seed, i + 1)`, the network
    /// from `mix(seed, 0)`.
    pub seed: u64,
    /// One-way latency of every packet, in ms.
    pub latency_ms: u64,
    /// Probability that a packet is lost.
    pub loss: f64,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig { seed: 1, latency_ms: 1, loss: 0.0 }
    }
}

/// Something scheduled to happen to the cluster.
#[derive(Clone, Debug)]
pub enum Command {
    /// Node joins through the seed nodes.
    Join {
        /// The joining node.
        node: usize,
        /// Nodes whose addresses it is given as seeds.
        seeds: Vec<usize>,
    },
    /// Node leaves gracefully.
    Leave(usize),
    /// Node crashes: it handles nothing more and every packet to or from it
    /// (also those in flight) is lost.
    Crash(usize),
    /// A crashed node comes back with a fresh state machine (same name and
    /// address) and joins through `seeds`.
    Restart {
        /// The node.
        node: usize,
        /// Nodes to join through.
        seeds: Vec<usize>,
    },
    /// Sets the loss probability from now on.
    SetLoss(f64),
    /// Packets from any node in `from` to any node in `to` are lost; with
    /// `both`, also the other way.
    Partition {
        /// Senders cut off.
        from: Vec<usize>,
        /// Receivers cut off.
        to: Vec<usize>,
        /// Whether the cut is symmetric.
        both: bool,
    },
    /// Removes every partition.
    Heal,
    /// Node handles every input `ms` late from now on (0: on time): an
    /// overloaded member.
    SetSlow {
        /// The node.
        node: usize,
        /// Extra delay in ms.
        ms: u64,
    },
}

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
    /// A digest of every action every node emitted (destination and bytes
    /// of each datagram, each timer, each event) with its time and node:
    /// two runs behaved identically iff their digests match.
    pub digest: u64,
}

enum Item {
    Deliver { to: usize, from: SocketAddr, bytes: Vec<u8> },
    Wake { node: usize, at: u64 },
    Kick(usize),
    Command(Command),
}

struct Entry {
    at: u64,
    seq: u64,
    item: Item,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    // Reversed: the heap pops the earliest (time, sequence) first.
    fn cmp(&self, o: &Self) -> Ordering {
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

struct Node {
    swim: Swim<SimRng>,
    crashed: bool,
    slow_ms: u64,
    timer: Option<u64>,
    restarts: u64,
}

struct Cut {
    from: Vec<bool>,
    to: Vec<bool>,
}

/// A deterministic simulated cluster of `n` nodes.
pub struct Sim {
    config: Config,
    net: NetConfig,
    nodes: Vec<Node>,
    queue: BinaryHeap<Entry>,
    seq: u64,
    now: u64,
    rng: SimRng,
    cuts: Vec<Cut>,
    stats: NetStats,
    out: Vec<Action>,
    events: Vec<(usize, Event)>,
    tap: Option<Tap>,
}

/// Sees every datagram handed to a node: `(time, to, from, bytes)`.
pub type Tap = Box<dyn FnMut(u64, usize, usize, &[u8])>;

impl Sim {
    /// `n` nodes named `n0 .. n{n-1}`, each alone until told to join.
    /// Every node is started at time 0.
    pub fn new(n: usize, config: Config, net: NetConfig) -> Result<Sim, swim_core::Error> {
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            nodes.push(Node {
                swim: make_node(&config, net.seed, i, 0)?,
                crashed: false,
                slow_ms: 0,
                timer: None,
                restarts: 0,
            });
        }
        let mut sim = Sim {
            rng: SimRng::seed_from_u64(mix(net.seed, 0)),
            config,
            net,
            nodes,
            queue: BinaryHeap::new(),
            seq: 0,
            now: 0,
            cuts: Vec::new(),
            stats: NetStats { sent_by_node: vec![0; n], ..NetStats::default() },
            out: Vec::new(),
            events: Vec::new(),
            tap: None,
        };
        for i in 0..n {
            sim.push(0, Item::Kick(i));
        }
        Ok(sim)
    }

    /// Virtual time now, in ms.
    pub fn now(&self) -> u64 {
        self.now
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
    pub fn node(&self, i: usize) -> &Swim<SimRng> {
        &self.nodes[i].swim
    }

    /// Whether node `i` has crashed (and not restarted).
    pub fn is_crashed(&self, i: usize) -> bool {
        self.nodes[i].crashed
    }

    /// Traffic counters so far.
    pub fn stats(&self) -> &NetStats {
        &self.stats
    }

    /// The network's generator, for scenario choices that must be
    /// reproducible from the seed.
    pub fn rng(&mut self) -> &mut SimRng {
        &mut self.rng
    }

    /// The loss probability in force.
    pub fn loss(&self) -> f64 {
        self.net.loss
    }

    /// Installs `tap`, called with every datagram delivered from then on
    /// (for tracing; it cannot change the run).
    pub fn set_tap(&mut self, tap: Tap) {
        self.tap = Some(tap);
    }

    /// Schedules `cmd` at virtual time `at` (not before now).
    pub fn schedule(&mut self, at: u64, cmd: Command) {
        let at = at.max(self.now);
        self.push(at, Item::Command(cmd));
    }

    /// Runs until virtual time `until` (items at `until` included) or until
    /// the observer stops it.
    pub fn run_until(&mut self, until: u64, obs: &mut impl Observer) -> Stopped {
        while let Some(top) = self.queue.peek() {
            if top.at > until {
                break;
            }
            let Some(e) = self.queue.pop() else { break };
            self.now = e.at;
            self.process(e.item);
            let mut flow = Flow::Continue;
            for (node, ev) in self.events.drain(..) {
                if obs.event(self.now, node, &ev) == Flow::Stop {
                    flow = Flow::Stop;
                }
            }
            if flow == Flow::Stop {
                return Stopped::Observer;
            }
        }
        self.now = self.now.max(until);
        Stopped::Deadline
    }

    fn push(&mut self, at: u64, item: Item) {
        self.seq += 1;
        self.queue.push(Entry { at, seq: self.seq, item });
    }

    fn process(&mut self, item: Item) {
        match item {
            Item::Deliver { to, from, bytes } => {
                let node = &self.nodes[to];
                if node.crashed || node_index(from).is_some_and(|f| self.nodes[f].crashed) {
                    self.stats.dropped += 1;
                    return;
                }
                self.stats.packets_delivered += 1;
                if let (Some(tap), Some(f)) = (self.tap.as_mut(), node_index(from)) {
                    tap(self.now, to, f, &bytes);
                }
                self.input(to, Input::Packet { from, bytes: &bytes });
                // Buffers are fungible: the receiver reuses this one.
                self.nodes[to].swim.recycle(bytes.into());
            }
            Item::Wake { node, at } => {
                if self.nodes[node].crashed || self.nodes[node].timer != Some(at) {
                    return;
                }
                self.nodes[node].timer = None;
                self.input(node, Input::Timeout);
            }
            Item::Kick(node) => {
                if !self.nodes[node].crashed {
                    self.input(node, Input::Timeout);
                }
            }
            Item::Command(cmd) => self.command(cmd),
        }
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Join { node, seeds } => {
                if self.nodes[node].crashed {
                    return;
                }
                let seeds: Vec<SocketAddr> = seeds.into_iter().map(node_addr).collect();
                self.input(node, Input::Join { seeds: &seeds });
            }
            Command::Leave(node) => {
                if !self.nodes[node].crashed {
                    self.input(node, Input::Leave);
                }
            }
            Command::Crash(node) => {
                self.nodes[node].crashed = true;
                self.nodes[node].timer = None;
            }
            Command::Restart { node, seeds } => {
                let n = &mut self.nodes[node];
                n.restarts += 1;
                // A restarted process has lost all its state, its
                // incarnation number included.
                if let Ok(swim) = make_node(&self.config, self.net.seed, node, n.restarts) {
                    n.swim = swim;
                    n.crashed = false;
                    n.timer = None;
                    let seeds: Vec<SocketAddr> = seeds.into_iter().map(node_addr).collect();
                    self.input(node, Input::Join { seeds: &seeds });
                }
            }
            Command::SetLoss(p) => self.net.loss = p,
            Command::Partition { from, to, both } => {
                let n = self.nodes.len();
                let mask = |set: &[usize]| {
                    let mut m = vec![false; n];
                    for &i in set {
                        if i < n {
                            m[i] = true;
                        }
                    }
                    m
                };
                let (f, t) = (mask(&from), mask(&to));
                if both {
                    self.cuts.push(Cut { from: t.clone(), to: f.clone() });
                }
                self.cuts.push(Cut { from: f, to: t });
            }
            Command::Heal => self.cuts.clear(),
            Command::SetSlow { node, ms } => self.nodes[node].slow_ms = ms,
        }
    }

    fn input(&mut self, i: usize, input: Input<'_>) {
        let mut out = core::mem::take(&mut self.out);
        out.clear();
        let now = Instant::from_millis(self.now);
        // Refusals (a bad packet, a join after leaving) change nothing.
        let _ = self.nodes[i].swim.handle(now, input, &mut out);
        let from = node_addr(i);
        let mut h = std::hash::DefaultHasher::new();
        (self.stats.digest, self.now, i).hash(&mut h);
        for action in &out {
            match action {
                Action::Send { to, packet } => (0u8, to, packet.as_bytes()).hash(&mut h),
                Action::SetTimer(at) => (1u8, at.as_millis()).hash(&mut h),
                Action::Event(e) => (2u8, format!("{e:?}")).hash(&mut h),
            }
        }
        self.stats.digest = h.finish();
        for action in out.drain(..) {
            match action {
                Action::Send { to, packet } => self.send(i, from, to, packet.into_vec()),
                Action::SetTimer(at) => {
                    let at = at.as_millis() + self.nodes[i].slow_ms;
                    self.nodes[i].timer = Some(at);
                    self.push(at, Item::Wake { node: i, at });
                }
                Action::Event(e) => self.events.push((i, e)),
            }
        }
        self.out = out;
    }

    fn send(&mut self, i: usize, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        self.stats.msgs_sent += 1;
        self.stats.bytes_sent += bytes.len() as u64;
        self.stats.sent_by_node[i] += 1;
        let Some(j) = node_index(to).filter(|&j| j < self.nodes.len()) else {
            self.stats.dropped += 1;
            return;
        };
        if self.cuts.iter().any(|c| c.from[i] && c.to[j]) {
            self.stats.dropped += 1;
            return;
        }
        if self.net.loss > 0.0 {
            let u = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            if u < self.net.loss {
                self.stats.lost += 1;
                return;
            }
        }
        let at = self.now + self.net.latency_ms + self.nodes[j].slow_ms;
        self.push(at, Item::Deliver { to: j, from, bytes });
    }
}

fn make_node(config: &Config, seed: u64, i: usize, restarts: u64) -> Result<Swim<SimRng>, swim_core::Error> {
    // Names of the form n{i} are always valid.
    let name = MemberName::new(&node_name(i)).map_err(|_| swim_core::Error::NoSeeds)?;
    let stream = (i as u64 + 1) + restarts.wrapping_mul(1 << 32);
    let rng = SimRng::seed_from_u64(mix(seed, stream));
    Swim::new(config.clone(), Identity::new(name, node_addr(i)), rng)
}
