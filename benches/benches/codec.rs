//! Per-datagram cost of the codec and of the state machine's hot path.

use core::net::SocketAddr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lapswim_core::internals::wire::{self, Message, Messages, PacketWriter};
use lapswim_core::{Action, Config, Identity, Input, Instant, MemberName, Swim};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

fn addr(i: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 7946))
}

/// A full datagram of alive updates, as during a bootstrap.
fn full_packet() -> Vec<u8> {
    let names: Vec<String> = (0..200).map(|i| format!("node-{i}")).collect();
    let mut w = PacketWriter::new(1400);
    w.push(&Message::Ping { seq: 1, target: "me" }).unwrap();
    for (i, n) in names.iter().enumerate() {
        let m = Message::Alive { incarnation: 3, name: n, addr: addr(i as u16), meta: &[] };
        if w.push(&m).is_err() {
            break;
        }
    }
    w.finish().into_vec()
}

fn codec(c: &mut Criterion) {
    let full = full_packet();
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Elements(1));
    g.bench_function("decode_full_datagram", |b| {
        b.iter(|| {
            let mut out = Messages::new();
            wire::decode(core::hint::black_box(&full), &mut out).unwrap();
            out.len()
        })
    });
    g.finish();
}

/// A member with a table of `n` others, settled (every update spread).
fn member_with(n: usize) -> Swim<Xoshiro256PlusPlus> {
    member_with_config(n, Config::lan())
}

/// [`member_with`] on `config`.
fn member_with_config(n: usize, config: Config) -> Swim<Xoshiro256PlusPlus> {
    let id = Identity::new(MemberName::new("me").unwrap(), addr(0));
    let mut swim = Swim::new(config, id, Xoshiro256PlusPlus::seed_from_u64(1)).unwrap();
    let mut out = Vec::new();
    // One new name a millisecond: within the admission rate (1,000/s).
    // Each newcomer is checked with a ping to its address before it is
    // admitted: the bench answers for it.
    for i in 0..n {
        let name = format!("node-{}", i + 1);
        let mut w = PacketWriter::new(1400);
        w.push(&Message::Alive { incarnation: 0, name: &name, addr: addr(i as u16 + 1), meta: &[] }).unwrap();
        let p = w.finish();
        let now = Instant::from_millis(i as u64);
        swim.handle(now, Input::Packet { from: addr(1), bytes: &p }, &mut out).unwrap();
        answer_pings(&mut swim, now, &mut out);
    }
    let start = n as u64;
    for t in 0..400 {
        let now = Instant::from_millis(start + t * 100);
        swim.handle(now, Input::Timeout, &mut out).unwrap();
        answer_pings(&mut swim, now, &mut out);
    }
    assert_eq!(swim.num_live(), n + 1);
    swim
}

/// Acks every ping in `out` from the address it went to, as a live member
/// there would, and clears `out`.
fn answer_pings(swim: &mut Swim<Xoshiro256PlusPlus>, now: Instant, out: &mut Vec<Action>) {
    let sent: Vec<(SocketAddr, Vec<u8>)> = out
        .drain(..)
        .filter_map(|a| if let Action::Send { to, packet } = a { Some((to, packet.to_vec())) } else { None })
        .collect();
    for (to, bytes) in sent {
        let mut msgs = Messages::new();
        if wire::decode(&bytes, &mut msgs).is_err() {
            continue;
        }
        let Some(&Message::Ping { seq, .. }) = msgs.first() else { continue };
        let mut w = PacketWriter::new(1400);
        w.push(&Message::Ack { seq }).unwrap();
        swim.handle(now, Input::Packet { from: to, bytes: &w.finish() }, out).unwrap();
        out.clear();
    }
}

/// A datagram as gossip brings it in a steady state: a ping with as many
/// alive updates of known members (no news) as fit.
fn compound_packet(n: usize) -> Vec<u8> {
    let names: Vec<String> = (0..n.min(200)).map(|i| format!("node-{}", i + 1)).collect();
    let mut w = PacketWriter::new(1400);
    w.push(&Message::Ping { seq: 5, target: "me" }).unwrap();
    for (i, name) in names.iter().enumerate() {
        if w.push(&Message::Alive { incarnation: 0, name, addr: addr(i as u16 + 1), meta: &[] }).is_err() {
            break;
        }
    }
    w.finish().into_vec()
}

/// Hands `bytes` from member 7 to `swim` and recycles what it sends, as a
/// runtime does.
fn answer(swim: &mut Swim<Xoshiro256PlusPlus>, now: Instant, bytes: &[u8], out: &mut Vec<Action>) {
    swim.handle(now, Input::Packet { from: addr(7), bytes }, out).unwrap();
    for a in out.drain(..) {
        if let Action::Send { packet, .. } = a {
            swim.recycle(packet);
        }
    }
}

fn ping_ack(c: &mut Criterion) {
    let mut w = PacketWriter::new(1400);
    w.push(&Message::Ping { seq: 9, target: "me" }).unwrap();
    let ping = w.finish();
    // A probe that asks for our coordinate: it carries the prober's, which
    // we keep, and our answer carries ours.
    let theirs = lapswim_core::Coordinate::new([0.01, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], 0.001, 0.2, 0.0).unwrap();
    let mut vec = [0u8; 16];
    for (chunk, x) in vec.chunks_exact_mut(2).zip(theirs.vec()) {
        chunk.copy_from_slice(&((x / 25e-6).round() as i16).to_le_bytes());
    }
    let mut w = PacketWriter::new(1400);
    w.push(&Message::Ping { seq: 9, target: "me" }).unwrap();
    w.push(&Message::Coordinate { vec: &vec, height: 40, error: 20, adjustment: 0 }).unwrap();
    let asking = w.finish();
    let mut g = c.benchmark_group("state_machine");
    g.throughput(Throughput::Elements(1));
    for n in [100, 1_000, 10_000] {
        let mut swim = member_with(n);
        let compound = compound_packet(n);
        let now = Instant::from_millis(n as u64 + 60_000);
        let mut out = Vec::new();
        g.bench_function(format!("ping_in_ack_out/{n}"), |b| b.iter(|| answer(&mut swim, now, &ping, &mut out)));
        g.bench_function(format!("ping_with_coordinate_in_ack_out/{n}"), |b| {
            b.iter(|| answer(&mut swim, now, &asking, &mut out))
        });
        g.bench_function(format!("compound_applied/{n}"), |b| b.iter(|| answer(&mut swim, now, &compound, &mut out)));
        // The same member without coordinates: what a ping cost before them.
        let mut off = member_with_config(n, Config::lan().with_coordinates(false));
        g.bench_function(format!("ping_in_ack_out_coordinates_off/{n}"), |b| {
            b.iter(|| answer(&mut off, now, &ping, &mut out))
        });
    }
    g.finish();
}

/// The same two workloads on foca, at the same sizes: a member with `n`
/// others in its table (learned without broadcasting, so nothing is
/// queued) handles a ping, and a ping carrying as many alive updates of
/// known members as fit in 1,400 bytes.
mod foca_side {
    use super::addr;
    use core::num::NonZeroU32;
    use foca::{AccumulatingRuntime, Codec, Config, Foca, Header, Member, Message, NoCustomBroadcast};
    use foca::{PostcardCodec, State};
    use rand_core::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;
    use swim_benches::FocaId as Id;

    fn id(i: usize) -> Id {
        Id::new(addr(i as u16))
    }

    pub(crate) struct Node {
        foca: Foca<Id, PostcardCodec, Xoshiro256PlusPlus, NoCustomBroadcast>,
        rt: AccumulatingRuntime<Id>,
    }

    impl Node {
        pub(crate) fn with(n: usize) -> Self {
            let config = Config::new_lan(NonZeroU32::new(n as u32 + 1).unwrap());
            let foca = Foca::new(id(0), config, Xoshiro256PlusPlus::seed_from_u64(1), PostcardCodec);
            let mut node = Node { foca, rt: AccumulatingRuntime::new() };
            let members = (1..=n).map(|i| Member::new(id(i), 0, State::Alive));
            node.foca.apply_many(members, false, &mut node.rt).unwrap();
            node.drain();
            assert_eq!(node.foca.num_members(), n);
            node
        }

        fn drain(&mut self) {
            while self.rt.to_send().is_some() {}
            while self.rt.to_schedule().is_some() {}
            while self.rt.to_notify().is_some() {}
        }

        /// Hands `bytes` to foca and takes what it sends.
        pub(crate) fn answer(&mut self, bytes: &[u8]) {
            self.foca.handle_data(bytes, &mut self.rt).unwrap();
            self.drain();
        }
    }

    /// A ping from member 7; with `updates`, as many alive records of
    /// known members as fit.
    pub(crate) fn ping(n: usize, updates: bool) -> Vec<u8> {
        let mut codec = PostcardCodec;
        let header = Header { src: id(7), src_incarnation: 0, dst: id(0), message: Message::Ping(5) };
        let mut buf = Vec::new();
        codec.encode_header(&header, &mut buf).unwrap();
        if updates {
            let count_at = buf.len();
            buf.extend_from_slice(&[0, 0]);
            let mut count = 0u16;
            for i in 1..=n.min(200) {
                let mut one = Vec::new();
                codec.encode_member(&Member::new(id(i), 0, State::Alive), &mut one).unwrap();
                if buf.len() + one.len() > 1400 {
                    break;
                }
                buf.extend_from_slice(&one);
                count += 1;
            }
            buf[count_at..count_at + 2].copy_from_slice(&count.to_be_bytes());
        }
        buf
    }
}

/// ping in/ack out and a compound datagram on foca, at the sizes of
/// `ping_ack`, in the same run.
fn foca_ping_ack(c: &mut Criterion) {
    let mut g = c.benchmark_group("foca");
    g.throughput(Throughput::Elements(1));
    for n in [100, 1_000, 10_000] {
        let mut node = foca_side::Node::with(n);
        let (ping, compound) = (foca_side::ping(n, false), foca_side::ping(n, true));
        g.bench_function(format!("ping_in_ack_out/{n}"), |b| b.iter(|| node.answer(&ping)));
        g.bench_function(format!("compound_applied/{n}"), |b| b.iter(|| node.answer(&compound)));
    }
    g.finish();
}

criterion_group!(benches, codec, ping_ack, foca_ping_ack);
criterion_main!(benches);
