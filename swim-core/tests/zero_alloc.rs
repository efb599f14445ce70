//! With a reused output buffer and recycled datagrams, the steady state
//! (ping in, ack out) does not touch the allocator.

use core::net::SocketAddr;
use std::alloc::System;

use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use swim_core::wire::{Message, PacketWriter};
use swim_core::{Action, Config, Identity, Input, Instant, MemberName, Swim};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn ping_in_ack_out_allocates_nothing() {
    let me = SocketAddr::from(([10, 0, 0, 1], 7946));
    let peer = SocketAddr::from(([10, 0, 0, 2], 7946));
    let id = Identity::new(MemberName::new("a").unwrap(), me);
    let mut s = Swim::new(Config::lan(), id, Xoshiro256PlusPlus::seed_from_u64(1)).unwrap();
    let mut out = Vec::with_capacity(16);
    let packet = |seq: u32| {
        let mut w = PacketWriter::new(1400);
        w.push(&Message::Ping { seq, target: "a" }).unwrap();
        w.finish()
    };
    // Warm up: the first input starts the timers and allocates the first
    // datagram buffer, which is recycled from then on.
    let p = packet(0);
    s.handle(Instant::from_millis(0), Input::Packet { from: peer, bytes: &p }, &mut out).unwrap();
    for a in out.drain(..) {
        if let Action::Send { packet, .. } = a {
            s.recycle(packet);
        }
    }
    let pings: Vec<_> = (1..100).map(packet).collect();
    let region = Region::new(GLOBAL);
    for (i, p) in pings.iter().enumerate() {
        s.handle(Instant::from_millis(1 + i as u64 % 10), Input::Packet { from: peer, bytes: p }, &mut out).unwrap();
        assert!(matches!(out.last(), Some(Action::Send { .. })));
        for a in out.drain(..) {
            if let Action::Send { packet, .. } = a {
                // After the socket has sent it.
                s.recycle(packet);
            }
        }
    }
    let stats = region.change();
    assert_eq!((stats.allocations, stats.reallocations), (0, 0), "{stats:?}");
}
