//! Per-datagram cost of the codec and of the state machine's hot path.

use core::net::SocketAddr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use swim_core::wire::{self, Message, Messages, PacketWriter};
use swim_core::{Action, Config, Identity, Input, Instant, MemberName, Swim};

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

fn ping_ack(c: &mut Criterion) {
    let id = Identity::new(MemberName::new("me").unwrap(), addr(0));
    let mut swim = Swim::new(Config::lan(), id, Xoshiro256PlusPlus::seed_from_u64(1)).unwrap();
    let mut out = Vec::new();
    // A table of 100 members, and a quiet queue.
    let names: Vec<String> = (1..=100).map(|i| format!("node-{i}")).collect();
    for (i, n) in names.iter().enumerate() {
        let mut w = PacketWriter::new(1400);
        w.push(&Message::Alive { incarnation: 0, name: n, addr: addr(i as u16 + 1), meta: &[] }).unwrap();
        let p = w.finish();
        swim.handle(Instant::from_millis(0), Input::Packet { from: addr(1), bytes: &p }, &mut out).unwrap();
    }
    for t in 0..200 {
        swim.handle(Instant::from_millis(t * 100), Input::Timeout, &mut out).unwrap();
    }
    out.clear();
    let mut w = PacketWriter::new(1400);
    w.push(&Message::Ping { seq: 9, target: "me" }).unwrap();
    let ping = w.finish();
    let now = Instant::from_millis(20_000);
    let mut g = c.benchmark_group("state_machine");
    g.throughput(Throughput::Elements(1));
    g.bench_function("ping_in_ack_out", |b| {
        b.iter(|| {
            swim.handle(now, Input::Packet { from: addr(7), bytes: &ping }, &mut out).unwrap();
            for a in out.drain(..) {
                if let Action::Send { packet, .. } = a {
                    swim.recycle(packet);
                }
            }
        })
    });
    g.finish();
}

criterion_group!(benches, codec, ping_ack);
criterion_main!(benches);
