//! Network coordinates: the exchange on probes, and hostile coordinates.

use super::*;
use crate::Coordinate;

fn coordinate_msg<'a>(buf: &'a mut [u8; 16], c: &Coordinate) -> Message<'a> {
    c.message(buf)
}

fn some_coordinate() -> Coordinate {
    Coordinate::new([0.01, -0.02, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], 0.001, 0.3, 0.0).unwrap()
}

/// The messages of a datagram.
fn decoded(bytes: &[u8]) -> Vec<Message<'_>> {
    let mut m = Messages::new();
    decode(bytes, &mut m).unwrap();
    m.into_iter().collect()
}

#[test]
fn a_ping_with_a_coordinate_is_answered_with_ours_and_teaches_us_the_probers() {
    let mut a = node("a", 1);
    learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    let theirs = some_coordinate();
    let mut buf = [0u8; 16];
    let ping = packet(&[Message::Ping { seq: 5, target: "a" }, coordinate_msg(&mut buf, &theirs)]);
    let out = a.handle_packet(at(2), addr(2), &ping).unwrap();
    let s = sent(&out);
    let msgs = decoded(&s[0].1);
    assert!(matches!(msgs[0], Message::Ack { seq: 5 }));
    assert!(msgs.iter().any(|m| matches!(m, Message::Coordinate { .. })), "ours rides on the ack: {msgs:?}");
    assert!(s[0].1.len() <= ping.len(), "the answer is no larger than the question");
    assert_eq!(a.coordinate_of("b"), Some(theirs));
    assert_eq!(a.stats().coordinates_sent, 1);
    let rtt = a.estimate_rtt("a", "b").unwrap();
    assert_eq!(rtt, a.coordinate().unwrap().estimate_rtt(&theirs));
    assert_eq!(a.member("b").unwrap().coordinate, Some(theirs));
    // A plain ping gets a plain ack.
    let out = a.handle_packet(at(2), addr(2), &packet(&[Message::Ping { seq: 6, target: "a" }])).unwrap();
    assert_eq!(kinds(&sent(&out)[0].1), [2]);
}

#[test]
fn a_strangers_coordinate_is_neither_kept_nor_answered() {
    let mut a = node("a", 1);
    let mut buf = [0u8; 16];
    let ping = packet(&[Message::Ping { seq: 5, target: "a" }, coordinate_msg(&mut buf, &some_coordinate())]);
    let out = a.handle_packet(at(1), addr(9), &ping).unwrap();
    assert_eq!(kinds(&sent(&out)[0].1), [2], "a bare ack");
    assert_eq!(a.stats().coordinates_sent, 0);
    assert_eq!(a.members().filter(|m| m.coordinate.is_some()).count(), 1, "ours alone");
}

#[test]
fn hostile_coordinates_are_counted_and_never_applied() {
    let mut a = node("a", 1);
    learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    let before = a.coordinate();
    let cases: [(&[u8], u32, u8, i32); 5] = [
        (&[0; 14], 10, 30, 0),          // seven dimensions
        (&[0; 18], 10, 30, 0),          // nine
        (&[0; 16], u32::MAX, 30, 0),    // a height of 30 hours
        (&[0; 16], 10, 30, i32::MIN),   // an adjustment of -15 hours
        (&[0xff; 16], 400_001, 255, 0), // just past the plausible
    ];
    for (i, (vec, height, error, adjustment)) in cases.into_iter().enumerate() {
        let c = Message::Coordinate { vec, height, error, adjustment };
        let out = a.handle_packet(at(1 + i as u64), addr(2), &packet(&[Message::Ping { seq: 7, target: "a" }, c]));
        // The probe itself is answered: only the coordinate is refused.
        let k = kinds(&sent(&out.unwrap())[0].1);
        assert!(k[0] == 2 && !k.contains(&18), "case {i}: {k:?}");
    }
    assert_eq!(a.stats().coordinates_rejected, 5);
    assert_eq!(a.coordinate_of("b"), None);
    assert_eq!(a.coordinate(), before);
    // Past twice the dimensions the decoder refuses the datagram itself.
    let c = Message::Coordinate { vec: &[0; 34], height: 0, error: 0, adjustment: 0 };
    let bytes = packet(&[Message::Ping { seq: 8, target: "a" }, c]);
    assert_eq!(rejected_as(&mut a, at(9), addr(2), &bytes), Some(crate::DecodeError::Malformed));
}

#[test]
fn coordinates_off_sends_none_and_takes_none() {
    let id = Identity::new(MemberName::new("a").unwrap(), addr(1));
    let mut a = Swim::new(Config::lan().with_coordinates(false), id, Rng64::seed_from_u64(1)).unwrap();
    learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    let mut buf = [0u8; 16];
    let ping = packet(&[Message::Ping { seq: 5, target: "a" }, coordinate_msg(&mut buf, &some_coordinate())]);
    let out = a.handle_packet(at(2), addr(2), &ping).unwrap();
    let k = kinds(&sent(&out)[0].1);
    assert!(k[0] == 2 && !k.contains(&18), "{k:?}");
    assert_eq!(a.coordinate(), None);
    assert_eq!(a.coordinate_of("b"), None);
    // Our own probes carry none either.
    let out = run(&mut a, 1, 3000);
    assert!(sent(&out).iter().all(|(_, b)| !kinds(b).contains(&18)));
}

#[test]
fn a_probe_asks_for_the_targets_coordinate_once_and_its_ack_moves_ours() {
    let mut a = node("a", 1);
    learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    let origin = a.coordinate().unwrap();
    let theirs = Coordinate::new([0.02, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], 0.001, 0.2, 0.0).unwrap();
    let mut asked = 0;
    let mut t = 0;
    while t < 5000 {
        let mut out = Vec::new();
        a.handle(at(t), Input::Timeout, &mut out).unwrap();
        for (to, bytes) in sent(&out) {
            let msgs = decoded(&bytes);
            let Some(&Message::Ping { seq, .. }) = msgs.first() else { continue };
            assert_eq!(to, addr(2));
            let asks = msgs.iter().any(|m| matches!(m, Message::Coordinate { .. }));
            asked += usize::from(asks);
            let mut buf = [0u8; 16];
            let ack = if asks {
                packet(&[Message::Ack { seq }, coordinate_msg(&mut buf, &theirs)])
            } else {
                packet(&[Message::Ack { seq }])
            };
            a.handle_packet(at(t + 40), addr(2), &ack).unwrap();
        }
        t += 50;
    }
    assert_eq!(asked, 1, "asked once, then the coordinate held is used");
    assert!(a.stats().coordinate_updates >= 4, "{:?}", a.stats());
    assert_ne!(a.coordinate(), Some(origin), "round trips of 40 ms moved us");
    assert_eq!(a.coordinate_of("b"), Some(theirs));
}

proptest::proptest! {
    /// Whatever coordinates and round trips a member meets, ours stays a
    /// coordinate a network could have, and every estimate is finite.
    #[test]
    fn any_coordinates_and_round_trips_leave_ours_sound(
        peers in proptest::collection::vec(
            (proptest::collection::vec(proptest::prelude::any::<u8>(), 0..=32),
             proptest::prelude::any::<u32>(), proptest::prelude::any::<u8>(), proptest::prelude::any::<i32>(),
             0u64..20_000),
            1..12),
    ) {
        let mut a = node("a", 1);
        learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
        let mut t = 1;
        for (vec, height, error, adjustment, rtt) in &peers {
            let c = Message::Coordinate { vec, height: *height, error: *error, adjustment: *adjustment };
            // As the prober's coordinate on a ping...
            let _ = a.handle_packet(at(t), addr(2), &packet(&[Message::Ping { seq: 1, target: "a" }, c.clone()]));
            // ...and on the ack to our own probe, `rtt` ms later.
            let mut out = Vec::new();
            a.handle(at(t + 1000), Input::Timeout, &mut out).unwrap();
            for (_, bytes) in sent(&out) {
                let mut m = Messages::new();
                decode(&bytes, &mut m).unwrap();
                if let Some(&Message::Ping { seq, .. }) = m.first() {
                    let ack = packet(&[Message::Ack { seq }, c.clone()]);
                    let _ = a.handle_packet(at(t + 1000 + rtt), addr(2), &ack);
                }
            }
            t += 2000 + rtt;
        }
        let ours = a.coordinate().unwrap();
        proptest::prop_assert!(ours.vec().iter().all(|x| x.is_finite()));
        proptest::prop_assert!(ours.height() >= 0.0 && ours.height() <= 10.0);
        proptest::prop_assert!(ours.error().is_finite() && ours.error() <= 2.55);
        if let Some(rtt) = a.estimate_rtt("a", "b") {
            proptest::prop_assert!(rtt.as_secs_f64().is_finite());
        }
        let s = a.stats();
        proptest::prop_assert!(s.coordinates_rejected <= 2 * peers.len() as u64);
    }
}

/// serf's dialect: every ack to a member's ping carries our coordinate as
/// serf writes it, and the coordinate in a serf agent's ack to our ping is
/// taken as the native format takes one beside an ack.
mod serf_dialect {
    use super::*;
    use crate::wire::memberlist::Limits;
    use crate::wire::memberlist::dialect::{Flavour, encode_packet};
    use crate::wire::memberlist::heard::Heard;
    use crate::wire::memberlist::message::Message as Ml;
    use crate::wire::memberlist::packet::Unpacked;
    use crate::wire::memberlist::probe::{Ack, Ping};
    use crate::wire::memberlist::serf_ping::SerfCoordinate;

    fn serf_node() -> Swim<Rng64> {
        let id = Identity::new(MemberName::new("a").unwrap(), addr(1));
        Swim::new(Config::lan().with_serf_wire(true), id, Rng64::seed_from_u64(1)).unwrap()
    }

    /// A datagram as a serf agent at `addr(2)` would send it.
    fn from_serf(msg: Ml<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        msg.encode(&mut out).unwrap();
        out
    }

    /// Every memberlist message in `bytes`, with an ack's payload.
    fn acks(bytes: &[u8]) -> Vec<(u32, Option<Vec<u8>>)> {
        let unpacked = Unpacked::parse(bytes, &Limits::PACKET).unwrap();
        unpacked
            .messages()
            .filter_map(|m| match m.unwrap() {
                Ml::Ack(a) => Some((a.seq_no, a.payload.map(<[u8]>::to_vec))),
                _ => None,
            })
            .collect()
    }

    fn with_b() -> Swim<Rng64> {
        let mut a = serf_node();
        let mut b = Vec::new();
        encode_packet(&[alive("b", 1, 2)], Flavour { serf: true }, &Heard::default(), &mut b).unwrap();
        // Admitted once the ping that checks it is acked.
        let out = a.handle_packet(at(0), addr(2), &b).unwrap();
        for (_, bytes) in sent(&out) {
            let ping = Unpacked::parse(&bytes, &Limits::PACKET)
                .unwrap()
                .messages()
                .find_map(|m| if let Ok(Ml::Ping(p)) = m { Some(p.seq_no) } else { None });
            if let Some(seq) = ping {
                a.handle_packet(at(1), addr(2), &from_serf(Ml::Ack(Ack { seq_no: seq, payload: None }))).unwrap();
            }
        }
        assert_eq!(a.member("b").map(|m| m.state), Some(MemberState::Alive));
        assert!(a.coordinate().is_some());
        a
    }

    #[test]
    fn our_ack_carries_our_coordinate_as_serf_writes_it() {
        let mut a = with_b();
        // As memberlist 0.2.2 sends it, with where to answer.
        let ip = [10, 0, 0, 1];
        let ping = Ping { seq_no: 7, node: "a", source_addr: &ip, source_port: 7002, source_node: "b" };
        let ping = from_serf(Ml::Ping(ping));
        let out = a.handle_packet(at(2), addr(2), &ping).unwrap();
        let got: Vec<_> = sent(&out).iter().flat_map(|(_, p)| acks(p)).collect();
        let [(7, Some(payload))] = got.as_slice() else { panic!("one ack with a payload: {got:?}") };
        let c = SerfCoordinate::decode(payload).unwrap();
        let ours = a.coordinate().unwrap();
        assert_eq!((c.dims, c.vec, c.height, c.error), (8, ours.vec(), ours.height(), ours.error()));
        // A stranger's ping gets a bare ack.
        let out = a.handle_packet(at(3), addr(9), &ping).unwrap();
        let got: Vec<_> = sent(&out).iter().flat_map(|(_, p)| acks(p)).collect();
        assert_eq!(got, [(7, None)]);
    }

    #[test]
    fn a_serf_agents_ack_teaches_us_its_coordinate_and_junk_costs_only_the_coordinate() {
        let theirs = Coordinate::new([0.004, 0.0, -0.002, 0.0, 0.0, 0.0, 0.0, 0.001], 0.0005, 0.4, 0.0).unwrap();
        let serf = SerfCoordinate {
            vec: theirs.vec(),
            dims: 8,
            error: theirs.error(),
            adjustment: theirs.adjustment(),
            height: theirs.height(),
        };
        let mut good = Vec::new();
        serf.encode(&mut good);
        let mut answers = [good.as_slice(), &[1, 0x81, 0xa3, b'V', b'e', b'c', 0x91, 0], &[9, 9, 9]].into_iter();
        let mut a = with_b();
        let mut t = 2;
        let mut acked = 0;
        while t < 20_000 && acked < 3 {
            for (to, bytes) in sent(&run(&mut a, t, t + 100)) {
                let pinged = Unpacked::parse(&bytes, &Limits::PACKET)
                    .unwrap()
                    .messages()
                    .find_map(|m| if let Ok(Ml::Ping(p)) = m { Some(p.seq_no) } else { None });
                let Some(seq) = pinged else { continue };
                let payload = answers.next().unwrap();
                assert_eq!(to, addr(2));
                let ack = from_serf(Ml::Ack(Ack { seq_no: seq, payload: Some(payload) }));
                a.handle_packet(at(t + 100), addr(2), &ack).unwrap();
                acked += 1;
                if acked == 1 {
                    assert_eq!(a.coordinate_of("b"), Some(theirs));
                    assert_eq!(a.stats().coordinates_rejected, 0);
                }
            }
            t += 100;
        }
        assert_eq!(acked, 3);
        // One component, and a payload of another version: each refused,
        // while the ack itself is taken.
        assert_eq!(a.stats().coordinates_rejected, 2, "{:?}", a.stats());
        assert_eq!(a.stats().rejected_total(), 0);
        assert_eq!(a.member("b").unwrap().state, MemberState::Alive);
        assert_eq!(a.coordinate_of("b"), Some(theirs));
    }

    #[test]
    fn members_speaking_serfs_dialect_learn_one_anothers_coordinates() {
        let config = Config::lan().with_serf_wire(true);
        let mut mesh = super::super::incarnations::mesh_of(&config, &["a", "b", "c"], 10_000);
        mesh.run(10_001, 30_000);
        for s in &mesh.nodes {
            for other in ["a", "b", "c"] {
                assert!(s.coordinate_of(other).is_some(), "{} holds no coordinate for {other}", s.local().name);
            }
            assert!(s.stats().coordinate_updates > 0);
        }
    }
}
