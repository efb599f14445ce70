//! With recycled datagrams, the steady state (ping in, ack out) does not
//! touch the allocator, run through the shared driver as runtimes do.

use core::net::SocketAddr;
use std::alloc::System;

use lapswim_core::Datagram;
use lapswim_core::internals::wire::{Message, Messages, PacketWriter, decode};
use lapswim_core::{Config, Driver, Event, Identity, Input, Instant, MemberName, Swim, Transport};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// A socket that sends and hands every buffer back.
#[derive(Default)]
struct Socket {
    sent: usize,
    /// While set, the lone pings sent (the checks of new members), to be
    /// answered.
    checks: Option<Vec<(SocketAddr, u32)>>,
}

impl Transport for Socket {
    fn send(&mut self, to: SocketAddr, packet: Datagram) -> Option<Datagram> {
        self.sent += 1;
        if let Some(checks) = &mut self.checks {
            let mut m = Messages::new();
            if decode(&packet, &mut m).is_ok()
                && let [Message::Ping { seq, .. }] = m.as_slice()
            {
                checks.push((to, *seq));
            }
        }
        Some(packet)
    }
    fn set_timer(&mut self, _at: Instant) {}
    fn event(&mut self, _: Event) {}
    fn open_stream(&mut self, _id: lapswim_core::StreamId, _to: SocketAddr) {}
    fn send_frame(&mut self, _id: lapswim_core::StreamId, frame: Datagram) -> Option<Datagram> {
        Some(frame)
    }
    fn close_stream(&mut self, _id: lapswim_core::StreamId) {}
}

/// The allocator's counts are the whole process's, and the test harness
/// allocates as it runs other tests: one test, every check in turn.
#[test]
fn the_steady_state_allocates_nothing() {
    ping_in_ack_out_allocates_nothing();
    a_members_ping_and_ack_allocate_nothing_at_any_table_size();
}

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

/// A member with `n` others in its table, settled: every update spread.
fn settled(n: usize, driver: &mut Driver, socket: &mut Socket) -> Swim<Xoshiro256PlusPlus> {
    let addr = |i: usize| SocketAddr::from(([10, 1, (i >> 8) as u8, i as u8], 7946));
    let id = Identity::new(MemberName::new("a").unwrap(), SocketAddr::from(([10, 0, 0, 1], 7946)));
    let mut s = Swim::new(Config::lan(), id, Xoshiro256PlusPlus::seed_from_u64(1)).unwrap();
    // One new name a millisecond, within the admission rate.
    for i in 0..n {
        let name = format!("m{i}");
        let mut w = PacketWriter::new(1400);
        w.push(&Message::Alive { incarnation: 0, name: &name, addr: addr(i), meta: &[] }).unwrap();
        let p = w.finish();
        let now = Instant::from_millis(i as u64);
        socket.checks = Some(Vec::new());
        driver.handle(&mut s, now, Input::Packet { from: addr(i), bytes: &p }, socket).unwrap();
        // The new member answers the ping that checks it at its address.
        for (to, seq) in socket.checks.take().unwrap_or_default() {
            let mut w = PacketWriter::new(1400);
            w.push(&Message::Ack { seq }).unwrap();
            driver.handle(&mut s, now, Input::Packet { from: to, bytes: &w.finish() }, socket).unwrap();
        }
    }
    // Long enough for every update's retransmissions at this size.
    let settle = 400 + n as u64 / 5;
    for t in 0..settle {
        driver.handle(&mut s, Instant::from_millis(n as u64 + t * 100), Input::Timeout, socket).unwrap();
    }
    // Nobody answers its probes here, so a few members have been failed
    // by now; the table is still the size asked for.
    assert!(s.num_live() >= n * 99 / 100, "{} live of {n}", s.num_live());
    s
}

fn a_members_ping_and_ack_allocate_nothing_at_any_table_size() {
    for n in [100, 1_000, 10_000] {
        let (mut driver, mut socket) = (Driver::new(), Socket::default());
        let mut s = settled(n, &mut driver, &mut socket);
        // A member pings us: the ack carries whatever piggybacks (nothing
        // queued in a settled cluster, but the path is the member's).
        let peer = SocketAddr::from(([10, 1, 0, 7], 7946));
        let packet = |seq: u32| {
            let mut w = PacketWriter::new(1400);
            w.push(&Message::Ping { seq, target: "a" }).unwrap();
            w.finish()
        };
        let now = Instant::from_millis(n as u64 + (400 + n as u64 / 5) * 100);
        let p = packet(0);
        driver.handle(&mut s, now, Input::Packet { from: peer, bytes: &p }, &mut socket).unwrap();
        let pings: Vec<_> = (1..100).map(packet).collect();
        let sent = socket.sent;
        let region = Region::new(GLOBAL);
        for p in &pings {
            driver.handle(&mut s, now, Input::Packet { from: peer, bytes: p }, &mut socket).unwrap();
        }
        let stats = region.change();
        assert_eq!(socket.sent - sent, 99, "every ping was answered (n = {n})");
        assert_eq!((stats.allocations, stats.reallocations), (0, 0), "n = {n}: {stats:?}");
    }
}
