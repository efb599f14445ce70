//! The simulated network: a virtual clock, a FIFO event queue, and
//! per-packet latency, loss, partitions, crashes and slow nodes.
//!
//! It moves bytes and time between state machines through the shared
//! [`Driver`] and reports their events; it has no protocol logic of its
//! own. Nodes are [`Swim`] by default, or any [`Machine`] an application
//! wraps around it (see [`Sim::with_nodes`]).

use core::cmp::Ordering;
use core::net::SocketAddr;
use std::collections::{BTreeMap, BinaryHeap};

use rand_core::{Rng, SeedableRng};
use swim_core::wire::Datagram;
use swim_core::{
    Config, Digest, Driver, Event, Identity, Input, Instant, Machine, MemberName, OwnedInput, Swim, Transport,
};

pub use crate::addr::{SimRng, mix, name_index, node_addr, node_index, node_name, seed_from_env};
pub use crate::command::{Command, NetConfig, PartitionId, SimError};

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
}

/// Makes a node from its [`NodeSpec`].
pub type Factory<N> = Box<dyn FnMut(NodeSpec) -> Result<N, swim_core::Error>>;

/// Sees every datagram handed to a node: `(time, to, from, bytes)`.
pub type Tap = Box<dyn FnMut(u64, usize, usize, &[u8])>;

/// Checked after every step; an `Err` stops the run.
pub type Invariant<N> = Box<dyn FnMut(&Sim<N>) -> Result<(), String>>;

enum Item {
    Deliver { to: usize, from: SocketAddr, packet: Datagram },
    Wake { node: usize, at: u64 },
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
    queue: BinaryHeap<Entry>,
    seq: u64,
    now: u64,
    rng: SimRng,
    crashed: Vec<bool>,
    slow_ms: Vec<u64>,
    /// When each node's wake-up is scheduled (its deadline plus the
    /// slowness in force when it was asked for).
    wake_at: Vec<Option<u64>>,
    links: BTreeMap<(usize, usize), Link>,
    cuts: BTreeMap<PartitionId, Vec<Cut>>,
    stats: NetStats,
    events: Vec<(usize, Event)>,
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
        let at = at.as_millis() + self.net.slow_ms[self.node];
        self.net.wake_at[self.node] = Some(at);
        self.net.push(at, Item::Wake { node: self.node, at });
    }

    fn event(&mut self, event: Event) {
        self.net.events.push((self.node, event));
    }
}

impl Network {
    fn push(&mut self, at: u64, item: Item) {
        self.seq += 1;
        self.queue.push(Entry { at, seq: self.seq, item });
    }

    fn send(&mut self, i: usize, to: SocketAddr, packet: Datagram) {
        self.stats.msgs_sent += 1;
        self.stats.bytes_sent += packet.len() as u64;
        self.stats.sent_by_node[i] += 1;
        let Some(j) = node_index(to).filter(|&j| j < self.crashed.len()) else {
            self.stats.dropped += 1;
            return;
        };
        self.stats.sent_to_node[j] += 1;
        if self.cuts.values().flatten().any(|c| c.from[i] && c.to[j]) {
            self.stats.dropped += 1;
            return;
        }
        let link = self.links.get(&(i, j)).copied().unwrap_or_default();
        let loss = link.loss.unwrap_or(self.net.loss);
        if loss > 0.0 {
            let u = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            if u < loss {
                self.stats.lost += 1;
                return;
            }
        }
        let at = self.now + link.latency_ms.unwrap_or(self.net.latency_ms) + self.slow_ms[j];
        self.push(at, Item::Deliver { to: j, from: node_addr(i), packet });
    }
}

/// A deterministic simulated cluster of `n` nodes.
pub struct Sim<N = Swim<SimRng>> {
    nodes: Vec<Slot<N>>,
    network: Network,
    factory: Factory<N>,
    tap: Option<Tap>,
    invariant: Option<Invariant<N>>,
    violation: Option<String>,
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

impl<N: Machine> Sim<N> {
    /// `n` nodes built by `factory` (which is called again for a restart).
    pub fn with_nodes(n: usize, net: NetConfig, mut factory: Factory<N>) -> Result<Self, SimError> {
        let mut nodes = Vec::with_capacity(n);
        for i in 0..n {
            let machine = factory(spec(net.seed, i, 0)?).map_err(SimError::Node)?;
            nodes.push(Slot { machine, driver: Driver::new(), restarts: 0 });
        }
        let network = Network {
            rng: SimRng::seed_from_u64(mix(net.seed, 0)),
            net,
            queue: BinaryHeap::new(),
            seq: 0,
            now: 0,
            crashed: vec![false; n],
            slow_ms: vec![0; n],
            wake_at: vec![None; n],
            links: BTreeMap::new(),
            cuts: BTreeMap::new(),
            stats: NetStats { sent_by_node: vec![0; n], sent_to_node: vec![0; n], ..NetStats::default() },
            events: Vec::new(),
        };
        let mut sim = Sim { nodes, network, factory, tap: None, invariant: None, violation: None };
        for i in 0..n {
            sim.network.push(0, Item::Command(Command::Input { node: i, input: OwnedInput::Timeout }));
        }
        Ok(sim)
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
        for s in &self.nodes {
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
        if let Some(p) = cmd.loss().filter(|p| !(0.0..=1.0).contains(p)) {
            return Err(SimError::BadLoss(p));
        }
        let at = at.max(self.network.now);
        self.network.push(at, Item::Command(cmd));
        Ok(())
    }

    /// Runs until virtual time `until` (items at `until` included), until
    /// the observer stops it, or until the invariant hook fails.
    pub fn run_until(&mut self, until: u64, obs: &mut impl Observer) -> Stopped {
        while let Some(top) = self.network.queue.peek() {
            if top.at > until {
                break;
            }
            let Some(e) = self.network.queue.pop() else { break };
            self.network.now = e.at;
            self.process(e.item);
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
        match item {
            Item::Deliver { to, from, packet } => {
                let sender_down = node_index(from).is_some_and(|f| self.network.crashed.get(f) == Some(&true));
                if self.network.crashed[to] || sender_down {
                    self.network.stats.dropped += 1;
                    return;
                }
                self.network.stats.packets_delivered += 1;
                if let (Some(tap), Some(f)) = (self.tap.as_mut(), node_index(from)) {
                    tap(self.network.now, to, f, &packet);
                }
                self.input(to, Input::Packet { from, bytes: &packet });
                // Buffers are fungible: the receiver reuses this one.
                self.nodes[to].machine.recycle(packet);
            }
            Item::Wake { node, at } => {
                // Only the latest request counts; earlier ones were replaced.
                if self.network.wake_at[node] == Some(at) {
                    self.network.wake_at[node] = None;
                    self.input(node, Input::Timeout);
                }
            }
            Item::Command(cmd) => self.command(cmd),
        }
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::Join { node, seeds } => {
                let seeds: Vec<SocketAddr> = seeds.into_iter().map(node_addr).collect();
                self.input(node, Input::Join { seeds: &seeds });
            }
            Command::Leave(node) => self.input(node, Input::Leave),
            Command::Input { node, input } => self.input(node, input.as_input()),
            Command::Crash(node) => {
                self.network.crashed[node] = true;
                self.network.wake_at[node] = None;
            }
            Command::Restart { node, seeds } => {
                let restarts = self.nodes[node].restarts + 1;
                // A restarted process has lost all its state, its
                // incarnation number included.
                let Ok(spec) = spec(self.network.net.seed, node, restarts) else { return };
                if let Ok(machine) = (self.factory)(spec) {
                    self.nodes[node] = Slot { machine, driver: Driver::new(), restarts };
                    self.network.crashed[node] = false;
                    self.network.wake_at[node] = None;
                    let seeds: Vec<SocketAddr> = seeds.into_iter().map(node_addr).collect();
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
            Command::SetSlow { node, ms } => self.network.slow_ms[node] = ms,
        }
    }

    fn input(&mut self, i: usize, input: Input<'_>) {
        if self.network.crashed[i] {
            return;
        }
        let now = Instant::from_millis(self.network.now);
        let slot = &mut self.nodes[i];
        let mut port = Port { net: &mut self.network, node: i };
        // Refusals (a bad packet, a join after leaving) change nothing.
        let _ = slot.driver.handle(&mut slot.machine, now, input, &mut port);
    }
}

fn spec(seed: u64, i: usize, restarts: u64) -> Result<NodeSpec, SimError> {
    // Names of the form n{i} are always valid.
    let name = MemberName::new(&node_name(i)).map_err(|_| SimError::NoSuchNode(i))?;
    let stream = (i as u64 + 1) + restarts.wrapping_mul(1 << 32);
    Ok(NodeSpec { index: i, name, addr: node_addr(i), rng: SimRng::seed_from_u64(mix(seed, stream)), restarts })
}
