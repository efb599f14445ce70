//! The state machine under arbitrary inputs in arbitrary order: it never
//! panics, and its invariants hold after every step.

use core::net::SocketAddr;

use lapswim_core::internals::wire::{Message, PacketWriter};
use lapswim_core::{Action, Config, Identity, Input, Instant, MemberName, Swim};
use proptest::prelude::*;
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

const NAMES: [&str; 5] = ["me", "b", "c", "d", "e"];

fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i], 7946))
}

#[derive(Debug, Clone)]
enum Op {
    /// A well-formed datagram with these messages.
    Msgs(u8, Vec<(u8, u8, u8, u32)>),
    /// Arbitrary bytes.
    Junk(u8, Vec<u8>),
    /// Time passes, then a wake-up.
    Wait(u16),
    Join(Vec<u8>),
    Leave,
}

fn message(kind: u8, a: u8, b: u8, n: u32) -> Message<'static> {
    let name = NAMES[usize::from(a) % NAMES.len()];
    let other = NAMES[usize::from(b) % NAMES.len()];
    match kind % 17 {
        0 => Message::Ping { seq: n % 8, target: name },
        1 => Message::PingReq { seq: n % 8, target: name, addr: addr(b % 6) },
        2 => Message::Ack { seq: n % 16 },
        3 => Message::Nack { seq: n % 16 },
        4 => Message::Alive { incarnation: n % 4, name, addr: addr(a % 6), meta: &[] },
        5 => Message::Suspect { incarnation: n % 4, name, from: other },
        6 => Message::Dead { incarnation: n % 4, name, from: other },
        7 => Message::SyncRequest { join: n.is_multiple_of(2) },
        8 => Message::SyncReply,
        9 => Message::Query { name },
        10 => Message::SyncEnd,
        11 => Message::AppState { state: b"state" },
        12 => Message::User {
            ltime: u64::from(n % 8),
            from: other,
            name: "e",
            payload: b"hello",
            coalesce: a.is_multiple_of(2),
        },
        13 => Message::Question {
            ltime: u64::from(n % 8),
            origin: other,
            addr: addr(b % 6),
            name: "q",
            payload: b"?",
            filter: &[],
            ack: a.is_multiple_of(2),
            relay_factor: a % 3,
            timeout_ms: n % 5000,
        },
        14 => Message::Response {
            ltime: u64::from(n % 8),
            from: other,
            ack: a.is_multiple_of(2),
            payload: b"!",
            relay: b.is_multiple_of(2).then(|| addr(a % 6)),
        },
        15 => Message::Clocks { events: u64::from(n), queries: u64::from(n / 2) },
        _ => Message::Direct { from: other, payload: b"hi" },
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<u8>(), proptest::collection::vec((any::<u8>(), any::<u8>(), any::<u8>(), any::<u32>()), 1..5))
            .prop_map(|(f, m)| Op::Msgs(f, m)),
        1 => (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..64)).prop_map(|(f, b)| Op::Junk(f, b)),
        3 => any::<u16>().prop_map(Op::Wait),
        1 => proptest::collection::vec(any::<u8>(), 0..3).prop_map(Op::Join),
        1 => Just(Op::Leave),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_and_keeps_its_invariants(seed in any::<u64>(), ops in proptest::collection::vec(op(), 1..60)) {
        let me = Identity::new(MemberName::new("me").unwrap(), addr(0));
        let mut s = Swim::new(Config::lan(), me, Xoshiro256PlusPlus::seed_from_u64(seed)).unwrap();
        let mut now = 0u64;
        let mut out = Vec::new();
        let mut started = false;
        for op in ops {
            out.clear();
            let before = s.stats().rejected_total();
            match &op {
                Op::Msgs(from, msgs) => {
                    let mut w = PacketWriter::new(1400);
                    for &(k, a, b, n) in msgs {
                        let _ = w.push(&message(k, a, b, n));
                    }
                    let bytes = w.finish();
                    started |= s.handle(Instant::from_millis(now), Input::Packet { from: addr(from % 6), bytes: &bytes }, &mut out).is_ok();
                }
                Op::Junk(from, bytes) => {
                    let r = s.handle(Instant::from_millis(now), Input::Packet { from: addr(from % 6), bytes }, &mut out);
                    // Bytes from the network are never an error.
                    prop_assert!(r.is_ok());
                    let rejected = s.stats().rejected_total() > before;
                    started |= !rejected;
                    // A rejected datagram emits nothing and counts once.
                    if rejected {
                        prop_assert!(out.is_empty());
                        prop_assert_eq!(s.stats().rejected_total(), before + 1);
                    }
                }
                Op::Wait(ms) => {
                    now += u64::from(*ms);
                    started |= s.handle(Instant::from_millis(now), Input::Timeout, &mut out).is_ok();
                    // Everything due has been handled.
                    prop_assert!(s.deadline().is_none_or(|d| d > Instant::from_millis(now)));
                }
                Op::Join(seeds) => {
                    let seeds: Vec<SocketAddr> = seeds.iter().map(|&i| addr(i % 6)).collect();
                    started |= s.handle(Instant::from_millis(now), Input::Join { seeds: &seeds }, &mut out).is_ok();
                }
                Op::Leave => {
                    started |= s.handle(Instant::from_millis(now), Input::Leave, &mut out).is_ok();
                }
            }
            for a in &out {
                if let Action::Send { packet, .. } = a {
                    prop_assert!(packet.len() <= s.config().packet_budget);
                }
                if let Action::SetTimer(at) = a {
                    prop_assert!(*at >= Instant::from_millis(now));
                }
            }
            let members: Vec<_> = s.members().collect();
            let live = members.iter().filter(|m| !m.is_local && m.state.is_live()).count();
            prop_assert_eq!(live + 1, s.num_live());
            prop_assert!(members.iter().filter(|m| m.is_local).count() == 1);
            prop_assert!(members.iter().all(|m| m.is_local || m.name.as_str() != "me"));
            if started && !s.has_left() {
                prop_assert!(s.deadline().is_some());
            }
            prop_assert!(s.local_health() < s.config().awareness_max_multiplier.get());
        }
    }
}
