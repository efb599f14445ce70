//! The same workload on lapswim-core and on foca: a 100-member cluster in a
//! minimal deterministic event loop (1 ms latency, no loss), bootstrapped
//! and settled for 60 virtual seconds, then measured over 10 virtual
//! seconds of steady state. Throughput is datagrams handled, so criterion
//! reports each implementation's packets per second on one machine, in one
//! run: compare the two as a ratio.

use core::net::SocketAddr;
use core::num::NonZeroU32;
use core::time::Duration as StdDuration;
use std::collections::BTreeMap;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus as Rng64;

const N: usize = 100;
const SETTLE_MS: u64 = 60_000;
const WINDOW_MS: u64 = 10_000;
const LATENCY_MS: u64 = 1;

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 7946))
}

fn index(a: SocketAddr) -> usize {
    match a {
        SocketAddr::V4(v4) => {
            let o = v4.ip().octets();
            (usize::from(o[2]) << 8) | usize::from(o[3])
        }
        SocketAddr::V6(_) => usize::MAX,
    }
}

enum Item<T> {
    Deliver {
        to: usize,
        bytes: Vec<u8>,
        from: usize,
    },
    Timer {
        node: usize,
        t: T,
    },
    /// Streams (swim's full-state syncs): accepted, a frame, closed.
    Accept {
        to: usize,
        id: lapswim_core::StreamId,
        from: usize,
    },
    Frame {
        to: usize,
        id: lapswim_core::StreamId,
        bytes: Vec<u8>,
    },
    Closed {
        to: usize,
        id: lapswim_core::StreamId,
    },
}

/// The event queue both implementations run on: (time, sequence) order.
struct Net<T> {
    queue: BTreeMap<(u64, u64), Item<T>>,
    links: BTreeMap<(usize, lapswim_core::StreamId), (usize, lapswim_core::StreamId)>,
    next_inbound: u64,
    seq: u64,
    now: u64,
    delivered: u64,
    bytes: u64,
}

impl<T> Net<T> {
    fn new() -> Self {
        Net { queue: BTreeMap::new(), links: BTreeMap::new(), next_inbound: 0, seq: 0, now: 0, delivered: 0, bytes: 0 }
    }
    fn push(&mut self, at: u64, item: Item<T>) {
        self.seq += 1;
        self.queue.insert((at, self.seq), item);
    }
    fn send(&mut self, from: usize, to: usize, bytes: Vec<u8>) {
        self.bytes += bytes.len() as u64;
        self.push(self.now + LATENCY_MS, Item::Deliver { to, bytes, from });
    }
    fn pop_until(&mut self, until: u64) -> Option<Item<T>> {
        let (&(at, _), _) = self.queue.first_key_value()?;
        if at > until {
            return None;
        }
        self.now = at;
        self.queue.pop_first().map(|(_, item)| item)
    }
}

mod swim_side {
    use super::*;
    use lapswim_core::Datagram;
    use lapswim_core::{
        Config, Driver, Event, Identity, Input, Instant, MemberName, StreamEnd, StreamId, Swim, Transport,
    };

    /// One node's side of the shared event queue.
    struct Port<'a> {
        net: &'a mut Net<u64>,
        node: usize,
    }

    impl Transport for Port<'_> {
        fn send(&mut self, to: SocketAddr, packet: Datagram) -> Option<Datagram> {
            self.net.send(self.node, index(to), packet.into_vec());
            None
        }
        fn set_timer(&mut self, at: Instant) {
            self.net.push(at.as_millis(), Item::Timer { node: self.node, t: at.as_millis() });
        }
        fn event(&mut self, _: Event) {}
        fn open_stream(&mut self, id: StreamId, to: SocketAddr) {
            let (net, j) = (&mut *self.net, index(to));
            net.next_inbound += 1;
            let peer = StreamId::Inbound(net.next_inbound);
            net.links.insert((self.node, id), (j, peer));
            net.links.insert((j, peer), (self.node, id));
            net.push(net.now + LATENCY_MS, Item::Accept { to: j, id: peer, from: self.node });
        }
        fn send_frame(&mut self, id: StreamId, frame: Datagram) -> Option<Datagram> {
            if let Some(&(j, peer)) = self.net.links.get(&(self.node, id)) {
                let at = self.net.now + LATENCY_MS;
                self.net.push(at, Item::Frame { to: j, id: peer, bytes: frame.to_vec() });
            }
            Some(frame)
        }
        fn close_stream(&mut self, id: StreamId) {
            if let Some((j, peer)) = self.net.links.remove(&(self.node, id)) {
                let at = self.net.now + LATENCY_MS;
                self.net.push(at, Item::Closed { to: j, id: peer });
            }
        }
    }

    pub(crate) struct Cluster {
        nodes: Vec<(Swim<Rng64>, Driver)>,
        pub(crate) net: Net<u64>,
    }

    impl Cluster {
        pub(crate) fn new() -> Self {
            let nodes = (0..N)
                .map(|i| {
                    let id = Identity::new(MemberName::new(&format!("n{i}")).unwrap(), addr(i));
                    (Swim::new(Config::lan(), id, Rng64::seed_from_u64(i as u64 + 1)).unwrap(), Driver::new())
                })
                .collect();
            let mut c = Cluster { nodes, net: Net::new() };
            for i in 0..N {
                c.input(i, Input::Timeout);
            }
            for i in 1..N {
                c.input(i, Input::Join { seeds: &[addr(0)] });
            }
            c.run(SETTLE_MS);
            c
        }

        fn input(&mut self, i: usize, input: Input<'_>) {
            let now = Instant::from_millis(self.net.now);
            let (swim, driver) = &mut self.nodes[i];
            let _ = driver.handle(swim, now, input, &mut Port { net: &mut self.net, node: i });
        }

        pub(crate) fn run(&mut self, until: u64) {
            while let Some(item) = self.net.pop_until(until) {
                match item {
                    Item::Deliver { to, bytes, from } => {
                        self.net.delivered += 1;
                        self.input(to, Input::Packet { from: addr(from), bytes: &bytes });
                        self.nodes[to].0.recycle(bytes.into());
                    }
                    Item::Timer { node, t } => {
                        if self.nodes[node].0.deadline() == Some(Instant::from_millis(t)) {
                            self.input(node, Input::Timeout);
                        }
                    }
                    Item::Accept { to, id, from } => self.input(to, Input::StreamAccepted { id, from: addr(from) }),
                    Item::Frame { to, id, bytes } => self.input(to, Input::StreamFrame { id, frame: &bytes }),
                    Item::Closed { to, id } => {
                        if self.net.links.remove(&(to, id)).is_some() {
                            self.input(to, Input::StreamClosed { id, end: StreamEnd::Closed });
                        }
                    }
                }
            }
        }
    }
}

mod foca_side {
    use super::*;
    use foca::{AccumulatingRuntime, Config, Foca, NoCustomBroadcast, PostcardCodec, Timer};

    use swim_benches::FocaId as Id;

    type Node = Foca<Id, PostcardCodec, Rng64, NoCustomBroadcast>;

    pub(crate) struct Cluster {
        nodes: Vec<Node>,
        pub(crate) net: Net<Timer<Id>>,
        rt: AccumulatingRuntime<Id>,
    }

    impl Cluster {
        pub(crate) fn new() -> Self {
            let config = Config::new_lan(NonZeroU32::new(N as u32).unwrap());
            let nodes = (0..N)
                .map(|i| {
                    Foca::new(
                        Id { addr: addr(i), bump: 0 },
                        config.clone(),
                        Rng64::seed_from_u64(i as u64 + 1),
                        PostcardCodec,
                    )
                })
                .collect();
            let mut c = Cluster { nodes, net: Net::new(), rt: AccumulatingRuntime::new() };
            for i in 1..N {
                let _ = c.nodes[i].announce(Id { addr: addr(0), bump: 0 }, &mut c.rt);
                c.drain(i);
            }
            c.run(SETTLE_MS);
            c
        }

        fn drain(&mut self, i: usize) {
            while let Some((to, data)) = self.rt.to_send() {
                self.net.send(i, index(to.addr), data.to_vec());
            }
            while let Some((after, t)) = self.rt.to_schedule() {
                let at = self.net.now + StdDuration::as_millis(&after) as u64;
                self.net.push(at, Item::Timer { node: i, t });
            }
            while self.rt.to_notify().is_some() {}
        }

        pub(crate) fn run(&mut self, until: u64) {
            while let Some(item) = self.net.pop_until(until) {
                match item {
                    Item::Deliver { to, bytes, .. } => {
                        self.net.delivered += 1;
                        let _ = self.nodes[to].handle_data(&bytes, &mut self.rt);
                        self.drain(to);
                    }
                    Item::Timer { node, t } => {
                        let _ = self.nodes[node].handle_timer(t, &mut self.rt);
                        self.drain(node);
                    }
                    // foca runs on datagrams alone.
                    Item::Accept { .. } | Item::Frame { .. } | Item::Closed { .. } => {}
                }
            }
        }

        pub(crate) fn members(&self, i: usize) -> usize {
            self.nodes[i].num_members()
        }
    }
}

fn steady_state(c: &mut Criterion) {
    // Count what a window holds (deterministic), and say what each side
    // sends in it, for the record.
    let mut s = swim_side::Cluster::new();
    let (d0, b0) = (s.net.delivered, s.net.bytes);
    s.run(SETTLE_MS + WINDOW_MS);
    let swim_pkts = s.net.delivered - d0;
    let mut f = foca_side::Cluster::new();
    let (e0, c0) = (f.net.delivered, f.net.bytes);
    f.run(SETTLE_MS + WINDOW_MS);
    let foca_pkts = f.net.delivered - e0;
    let per = |x: u64| x as f64 / N as f64 / (WINDOW_MS as f64 / 1000.0);
    eprintln!(
        "steady state, n = {N}: swim {:.2} msgs/node/s, {:.1} B/node/s; foca {:.2} msgs/node/s, {:.1} B/node/s (foca sees {} members at node 0)",
        per(swim_pkts),
        per(s.net.bytes - b0),
        per(foca_pkts),
        per(f.net.bytes - c0),
        f.members(0) + 1,
    );

    let mut g = c.benchmark_group("steady_state_100");
    g.sample_size(10);
    g.throughput(Throughput::Elements(swim_pkts));
    g.bench_function("swim", |b| {
        b.iter_batched(swim_side::Cluster::new, |mut c| c.run(SETTLE_MS + WINDOW_MS), BatchSize::LargeInput)
    });
    g.throughput(Throughput::Elements(foca_pkts));
    g.bench_function("foca", |b| {
        b.iter_batched(foca_side::Cluster::new, |mut c| c.run(SETTLE_MS + WINDOW_MS), BatchSize::LargeInput)
    });
    g.finish();
}

criterion_group!(benches, steady_state);
criterion_main!(benches);
