//! Merging is the precedence rule, on real state machines: random claims
//! about one member, delivered in different orders to several members,
//! leave every one of them with the same record of it.

use core::net::SocketAddr;

use lapswim_core::internals::wire::{Message, Messages, PacketWriter, decode};
use lapswim_core::{Action, Config, Identity, Instant, MemberName, MemberState, Swim};
use proptest::prelude::*;
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

fn addr(i: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i], 7946))
}

/// A claim about member "m": kind (alive, suspect, dead, left) and an
/// incarnation offset from the base.
type Claim = (u8, u32);

fn datagram(base: u32, (kind, off): Claim) -> Vec<u8> {
    let incarnation = base.wrapping_add(off);
    // Only "m" raises its incarnation, so one incarnation has one metadata.
    let meta = [off as u8];
    let msg = match kind % 4 {
        0 => Message::Alive { incarnation, name: "m", addr: addr(9), meta: &meta },
        1 => Message::Suspect { incarnation, name: "m", from: "x" },
        2 => Message::Dead { incarnation, name: "m", from: "x" },
        _ => Message::Dead { incarnation, name: "m", from: "m" },
    };
    let mut w = PacketWriter::new(1400);
    w.push(&msg).unwrap();
    w.finish().as_bytes().to_vec()
}

/// Applies `claims` in order to a member that knows "m" at `base`; returns
/// its record of "m" once the checks of deaths heard by gossip are over
/// (a probe timeout later). No suspicion expires by then.
fn record(node: u8, base: u32, claims: &[Claim]) -> (MemberState, u32, Vec<u8>) {
    let me = Identity::new(MemberName::new(&format!("o{node}")).unwrap(), addr(node));
    let mut s = Swim::new(Config::lan(), me, Xoshiro256PlusPlus::seed_from_u64(u64::from(node))).unwrap();
    let out = s.handle_packet(Instant::from_millis(0), addr(9), &datagram(base, (0, 0))).unwrap();
    // "m" answers the ping that checks it at its address, and is admitted.
    for a in &out {
        let mut m = Messages::new();
        if let Action::Send { to, packet } = a
            && decode(packet, &mut m).is_ok()
            && let [Message::Ping { seq, .. }] = m.as_slice()
        {
            let mut w = PacketWriter::new(1400);
            w.push(&Message::Ack { seq: *seq }).unwrap();
            s.handle_packet(Instant::from_millis(0), *to, w.finish().as_bytes()).unwrap();
        }
    }
    for &c in claims {
        s.handle_packet(Instant::from_millis(1), addr(8), &datagram(base, c)).unwrap();
    }
    s.handle_timeout(Instant::from_millis(1_000));
    let m = s.member("m").unwrap();
    (m.state, m.incarnation, m.meta.to_vec())
}

fn shuffled(claims: &[Claim], mut z: u64) -> Vec<Claim> {
    let mut v = claims.to_vec();
    for i in (1..v.len()).rev() {
        z = z.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        v.swap(i, (z >> 33) as usize % (i + 1));
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn claims_in_any_order_end_in_the_same_record(
        base in prop_oneof![Just(0u32), Just(u32::MAX - 2), Just(0x7fff_fffe), any::<u32>()],
        claims in proptest::collection::vec((0u8..4, 0u32..5), 1..10),
        orders in proptest::collection::vec(any::<u64>(), 3),
    ) {
        let first = record(1, base, &claims);
        for (i, &z) in orders.iter().enumerate() {
            let other = record(i as u8 + 2, base, &shuffled(&claims, z));
            prop_assert_eq!(&first, &other, "base {} claims {:?}", base, claims);
        }
        // Twice over changes nothing either.
        let twice: Vec<Claim> = claims.iter().chain(&claims).copied().collect();
        prop_assert_eq!(&first, &record(5, base, &twice));
    }
}
