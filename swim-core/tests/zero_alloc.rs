//! With recycled datagrams, the steady state (ping in, ack out) does not
//! touch the allocator, run through the shared driver as runtimes do.

use core::net::SocketAddr;
use std::alloc::System;

use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use swim_core::wire::{Datagram, Message, PacketWriter};
use swim_core::{Config, Driver, Event, Identity, Input, Instant, MemberName, Swim, Transport};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// A socket that sends and hands every buffer back.
#[derive(Default)]
struct Socket {
    sent: usize,
}

impl Transport for Socket {
    fn send(&mut self, _to: SocketAddr, packet: Datagram) -> Option<Datagram> {
        self.sent += 1;
        Some(packet)
    }
    fn set_timer(&mut self, _at: Instant) {}
    fn event(&mut self, _: Event) {}
    fn open_stream(&mut self, _id: swim_core::StreamId, _to: SocketAddr) {}
    fn send_frame(&mut self, _id: swim_core::StreamId, frame: Datagram) -> Option<Datagram> {
        Some(frame)
    }
    fn close_stream(&mut self, _id: swim_core::StreamId) {}
}

#[test]
fn ping_in_ack_out_allocates_nothing() {
    let me = SocketAddr::from(([10, 0, 0, 1], 7946));
    let peer = SocketAddr::from(([10, 0, 0, 2], 7946));
    let id = Identity::new(MemberName::new("a").unwrap(), me);
    let mut s = Swim::new(Config::lan(), id, Xoshiro256PlusPlus::seed_from_u64(1)).unwrap();
    let (mut driver, mut socket) = (Driver::new(), Socket::default());
    let packet = |seq: u32| {
        let mut w = PacketWriter::new(1400);
        w.push(&Message::Ping { seq, target: "a" }).unwrap();
        w.finish()
    };
    // Warm up: the first input starts the timers and allocates the first
    // datagram buffer, which is recycled from then on.
    let p = packet(0);
    driver.handle(&mut s, Instant::from_millis(0), Input::Packet { from: peer, bytes: &p }, &mut socket).unwrap();
    let pings: Vec<_> = (1..100).map(packet).collect();
    let region = Region::new(GLOBAL);
    for (i, p) in pings.iter().enumerate() {
        let now = Instant::from_millis(1 + i as u64 % 10);
        driver.handle(&mut s, now, Input::Packet { from: peer, bytes: p }, &mut socket).unwrap();
    }
    let stats = region.change();
    assert_eq!(socket.sent, 100, "every ping was answered");
    assert_eq!((stats.allocations, stats.reallocations), (0, 0), "{stats:?}");
}
