use super::*;
use alloc::vec;
use core::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use proptest::prelude::*;

fn addr() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, 7946))
}

fn one(msg: &Message<'_>) -> Datagram {
    let mut w = PacketWriter::new(1400);
    w.push(msg).unwrap();
    w.finish()
}

/// A plain, unlabelled datagram around `body`.
fn wrap(body: &[u8]) -> alloc::vec::Vec<u8> {
    let mut v = alloc::vec::Vec::new();
    frame::plain_packet(body, &mut v);
    v
}

#[test]
fn golden_bytes_pin_the_format() {
    let cases: [(Message<'_>, &[u8]); 18] = [
        (Message::Ping { seq: 1, target: "b" }, &[0, 1, 1, b'b']),
        (Message::PingReq { seq: 2, target: "c", addr: addr() }, &[1, 2, 1, b'c', 0, 127, 0, 0, 1, 0x8a, 0x3e]),
        (Message::Ack { seq: 300 }, &[2, 0xac, 0x02]),
        (Message::Nack { seq: 7 }, &[3, 7]),
        (
            Message::Alive { incarnation: 2, name: "a", addr: addr(), meta: b"m" },
            &[4, 2, 1, b'a', 0, 127, 0, 0, 1, 0x8a, 0x3e, 1, b'm'],
        ),
        (Message::Suspect { incarnation: 3, name: "a", from: "b" }, &[5, 3, 1, b'a', 1, b'b']),
        (Message::Dead { incarnation: 4, name: "a", from: "a" }, &[6, 4, 1, b'a', 1, b'a']),
        (Message::SyncRequest { join: true }, &[7, 1]),
        (Message::SyncReply, &[8]),
        (Message::Query { name: "a" }, &[9, 1, b'a']),
        (Message::SyncEnd, &[10]),
        (Message::AppState { state: b"s" }, &[11, 1, b's']),
        (
            Message::User { ltime: 300, from: "a", name: "n", payload: b"p", coalesce: true },
            &[12, 0xac, 0x02, 1, b'a', 1, b'n', 1, b'p', 1],
        ),
        (Message::Direct { from: "a", payload: b"p" }, &[13, 1, b'a', 1, b'p']),
        (
            Message::Question {
                ltime: 1,
                origin: "o",
                addr: addr(),
                name: "q",
                payload: b"p",
                filter: b"",
                ack: true,
                relay_factor: 2,
                timeout_ms: 300,
            },
            &[15, 1, 1, b'o', 0, 127, 0, 0, 1, 0x8a, 0x3e, 1, b'q', 1, b'p', 0, 1, 2, 0xac, 0x02],
        ),
        (
            Message::Response { ltime: 1, from: "a", ack: false, payload: b"r", relay: Some(addr()) },
            &[16, 1, 1, b'a', 0, 1, b'r', 1, 0, 127, 0, 0, 1, 0x8a, 0x3e],
        ),
        (Message::Clocks { events: 5, queries: 2 }, &[17, 5, 2]),
        (
            Message::Coordinate { vec: &[1, 0, 0xff, 0xff], height: 300, error: 15, adjustment: -2 },
            &[18, 4, 1, 0, 0xff, 0xff, 0xac, 0x02, 15, 3],
        ),
    ];
    for (msg, body) in cases {
        let d = one(&msg);
        assert_eq!(&d[..2], &[VERSION, 0], "a plain, unlabelled header");
        assert_eq!(&d[2..d.len() - 4], body, "{msg:?}");
        let sum = crc32fast::hash(&d[..d.len() - 4]).to_be_bytes();
        assert_eq!(&d[d.len() - 4..], &sum, "the checksum covers everything before it");
        let packet = wrap(body);
        let mut out = Messages::new();
        decode(&packet, &mut out).unwrap();
        assert_eq!(out.as_slice(), [msg]);
    }
}

#[test]
fn max_alive_len_is_an_upper_bound() {
    let name: alloc::string::String = core::iter::repeat_n('x', MAX_NAME_LEN).collect();
    let meta = [0xffu8; MAX_META_LEN];
    let addr = SocketAddr::from((Ipv6Addr::from([0xff; 16]), u16::MAX));
    let msg = Message::Alive { incarnation: u32::MAX, name: &name, addr, meta: &meta };
    assert!(encode_message(&msg).len() <= max_alive_len(MAX_META_LEN));
}

#[test]
fn compound_packets_hold_several_messages() {
    let mut w = PacketWriter::new(1400);
    w.push(&Message::Ping { seq: 9, target: "x" }).unwrap();
    w.push_encoded(&encode_message(&Message::Dead { incarnation: 1, name: "y", from: "z" })).unwrap();
    assert_eq!(w.count(), 2);
    let d = w.finish();
    let mut out = Messages::new();
    decode(&d, &mut out).unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out[1], Message::Dead { incarnation: 1, name: "y", from: "z" });
}

#[test]
fn writer_never_exceeds_its_budget() {
    let mut w = PacketWriter::new(MIN_PACKET_BUDGET);
    let meta = [0u8; 200];
    let alive = Message::Alive { incarnation: 1, name: "member", addr: addr(), meta: &meta };
    let mut n = 0;
    while w.push(&alive).is_ok() {
        n += 1;
    }
    assert_eq!(n, 2);
    let len = w.remaining();
    assert!(w.push(&Message::Ack { seq: 1 }).is_ok() || len < 2);
    assert!(w.finish().len() <= MIN_PACKET_BUDGET);
}

#[test]
fn bad_datagrams_are_rejected_with_a_reason() {
    fn dec(bytes: &[u8]) -> Result<(), DecodeError> {
        decode(bytes, &mut Messages::new())
    }
    let raw: [(&[u8], DecodeError); 5] = [
        (&[], DecodeError::Empty),
        (&[VERSION], DecodeError::Truncated),
        (&[9, 0, 2, 1, 0, 0, 0, 0], DecodeError::Version),
        (&[VERSION, 0x80, 2, 1, 0, 0, 0, 0], DecodeError::Malformed),
        (&[VERSION, 0, 2, 1], DecodeError::Truncated),
    ];
    for (bytes, want) in raw {
        assert_eq!(dec(bytes), Err(want), "{bytes:?}");
    }
    let cases: [(&[u8], DecodeError); 7] = [
        (&[], DecodeError::Empty),
        (&[2], DecodeError::Truncated),
        (&[0, 1, 5, b'a'], DecodeError::Truncated),
        (&[99], DecodeError::UnknownKind),
        (&[0, 1, 2, 0xff, 0xfe], DecodeError::BadUtf8),
        (&[0, 1, 0], DecodeError::BadName),
        (&[2, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], DecodeError::Malformed),
    ];
    for (body, want) in cases {
        assert_eq!(dec(&wrap(body)), Err(want), "{body:?}");
    }
    let mut bad_sum = wrap(&[2, 1]);
    *bad_sum.last_mut().unwrap() ^= 1;
    assert_eq!(dec(&bad_sum), Err(DecodeError::Checksum));
    let big = [VERSION; MAX_DATAGRAM + 1];
    assert_eq!(dec(&big), Err(DecodeError::Oversized));
    // A valid message followed by junk: the whole datagram is refused.
    assert_eq!(dec(&wrap(&[2, 1, 2])), Err(DecodeError::Truncated));
    let many: alloc::vec::Vec<u8> = core::iter::repeat_n([2u8, 1], MAX_MESSAGES + 1).flatten().collect();
    assert_eq!(dec(&wrap(&many)), Err(DecodeError::TooManyMessages));
    // The message past the limit is still decoded and checked first: a
    // bad one is refused for what is wrong with it.
    let mut many_then_bad: alloc::vec::Vec<u8> = core::iter::repeat_n([2u8, 1], MAX_MESSAGES).flatten().collect();
    many_then_bad.extend_from_slice(&[0, 1, 0]);
    assert_eq!(dec(&wrap(&many_then_bad)), Err(DecodeError::BadName));
    let exactly = wrap(&core::iter::repeat_n([2u8, 1], MAX_MESSAGES).flatten().collect::<alloc::vec::Vec<u8>>());
    let mut out = Messages::new();
    assert_eq!(decode(&exactly, &mut out), Ok(()));
    assert_eq!(out.len(), MAX_MESSAGES);
    let mut long_meta = alloc::vec![4, 1, 1, b'a', 0, 127, 0, 0, 1, 1, 0x81, 0x04];
    long_meta.extend_from_slice(&[0; 513]);
    assert_eq!(dec(&wrap(&long_meta)), Err(DecodeError::MetaTooLong));
}

fn arb_name() -> impl Strategy<Value = alloc::string::String> {
    "[a-z0-9é-]{1,40}"
}

fn arb_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::from((Ipv4Addr::from(ip), port))),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::from((Ipv6Addr::from(ip), port))),
    ]
}

#[derive(Debug, Clone)]
enum Owned {
    Ping(u32, alloc::string::String),
    PingReq(u32, alloc::string::String, SocketAddr),
    Ack(u32),
    Nack(u32),
    Alive(u32, alloc::string::String, SocketAddr, alloc::vec::Vec<u8>),
    Suspect(u32, alloc::string::String, alloc::string::String),
    Dead(u32, alloc::string::String, alloc::string::String),
    SyncRequest(bool),
    SyncReply,
    Query(alloc::string::String),
    SyncEnd,
    AppState(alloc::vec::Vec<u8>),
    User(u64, alloc::string::String, alloc::string::String, alloc::vec::Vec<u8>, bool),
    Question(u64, alloc::string::String, SocketAddr, alloc::vec::Vec<u8>, bool, u8, u32),
    Response(u64, alloc::string::String, bool, alloc::vec::Vec<u8>, Option<SocketAddr>),
    Clocks(u64, u64),
    Direct(alloc::string::String, alloc::vec::Vec<u8>),
    Coordinate(alloc::vec::Vec<u8>, u32, u8, i32),
    SyncDigest(alloc::vec::Vec<u8>, u32),
    SyncDiff(alloc::vec::Vec<u8>, bool, bool),
}

impl Owned {
    fn msg(&self) -> Message<'_> {
        match self {
            Owned::Ping(s, t) => Message::Ping { seq: *s, target: t },
            Owned::PingReq(s, t, a) => Message::PingReq { seq: *s, target: t, addr: *a },
            Owned::Ack(s) => Message::Ack { seq: *s },
            Owned::Nack(s) => Message::Nack { seq: *s },
            Owned::Alive(i, n, a, m) => Message::Alive { incarnation: *i, name: n, addr: *a, meta: m },
            Owned::Suspect(i, n, f) => Message::Suspect { incarnation: *i, name: n, from: f },
            Owned::Dead(i, n, f) => Message::Dead { incarnation: *i, name: n, from: f },
            Owned::SyncRequest(join) => Message::SyncRequest { join: *join },
            Owned::SyncReply => Message::SyncReply,
            Owned::Query(n) => Message::Query { name: n },
            Owned::SyncEnd => Message::SyncEnd,
            Owned::AppState(s) => Message::AppState { state: s },
            Owned::User(l, f, n, p, c) => Message::User { ltime: *l, from: f, name: n, payload: p, coalesce: *c },
            Owned::Question(l, o, a, p, ack, r, t) => Message::Question {
                ltime: *l,
                origin: o,
                addr: *a,
                name: o,
                payload: p,
                filter: p,
                ack: *ack,
                relay_factor: *r,
                timeout_ms: *t,
            },
            Owned::Response(l, f, ack, p, r) => {
                Message::Response { ltime: *l, from: f, ack: *ack, payload: p, relay: *r }
            }
            Owned::Clocks(e, q) => Message::Clocks { events: *e, queries: *q },
            Owned::Direct(f, p) => Message::Direct { from: f, payload: p },
            Owned::Coordinate(v, h, e, a) => Message::Coordinate { vec: v, height: *h, error: *e, adjustment: *a },
            Owned::SyncDigest(b, e) => Message::SyncDigest { buckets: b, events: *e },
            Owned::SyncDiff(b, e, w) => Message::SyncDiff { buckets: b, events: *e, whole: *w },
        }
    }
}

fn arb_msg() -> impl Strategy<Value = Owned> {
    prop_oneof![
        (any::<u32>(), arb_name()).prop_map(|(s, t)| Owned::Ping(s, t)),
        (any::<u32>(), arb_name(), arb_addr()).prop_map(|(s, t, a)| Owned::PingReq(s, t, a)),
        any::<u32>().prop_map(Owned::Ack),
        any::<u32>().prop_map(Owned::Nack),
        (any::<u32>(), arb_name(), arb_addr(), proptest::collection::vec(any::<u8>(), 0..64))
            .prop_map(|(i, n, a, m)| Owned::Alive(i, n, a, m)),
        (any::<u32>(), arb_name(), arb_name()).prop_map(|(i, n, f)| Owned::Suspect(i, n, f)),
        (any::<u32>(), arb_name(), arb_name()).prop_map(|(i, n, f)| Owned::Dead(i, n, f)),
        any::<bool>().prop_map(Owned::SyncRequest),
        Just(Owned::SyncReply),
        arb_name().prop_map(Owned::Query),
        Just(Owned::SyncEnd),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Owned::AppState),
        (any::<u64>(), arb_name(), arb_name(), proptest::collection::vec(any::<u8>(), 0..64), any::<bool>())
            .prop_map(|(l, f, n, p, c)| Owned::User(l, f, n, p, c)),
        (
            any::<u64>(),
            arb_name(),
            arb_addr(),
            proptest::collection::vec(any::<u8>(), 0..64),
            any::<bool>(),
            any::<u8>(),
            any::<u32>()
        )
            .prop_map(|(l, o, a, p, ack, r, t)| Owned::Question(l, o, a, p, ack, r, t)),
        (
            any::<u64>(),
            arb_name(),
            any::<bool>(),
            proptest::collection::vec(any::<u8>(), 0..64),
            proptest::option::of(arb_addr())
        )
            .prop_map(|(l, f, ack, p, r)| Owned::Response(l, f, ack, p, r)),
        (any::<u64>(), any::<u64>()).prop_map(|(e, q)| Owned::Clocks(e, q)),
        (arb_name(), proptest::collection::vec(any::<u8>(), 0..64)).prop_map(|(f, p)| Owned::Direct(f, p)),
        (proptest::collection::vec(any::<u8>(), 0..=32), any::<u32>(), any::<u8>(), any::<i32>())
            .prop_map(|(v, h, e, a)| Owned::Coordinate(v, h, e, a)),
        ((0u32..=6).prop_flat_map(|k| proptest::collection::vec(any::<u8>(), 4 << k)), any::<u32>())
            .prop_map(|(b, e)| Owned::SyncDigest(b, e)),
        (proptest::collection::vec(any::<u8>(), 0..=32), any::<bool>(), any::<bool>())
            .prop_map(|(b, e, w)| Owned::SyncDiff(b, e, w)),
    ]
}

proptest! {
    #[test]
    fn codec_round_trips_by_value(msgs in proptest::collection::vec(arb_msg(), 1..20)) {
        let mut w = PacketWriter::new(MAX_DATAGRAM);
        let mut written = alloc::vec::Vec::new();
        for m in &msgs {
            if w.push(&m.msg()).is_ok() {
                written.push(m.msg());
            }
        }
        prop_assume!(!written.is_empty());
        let d = w.finish();
        prop_assert!(d.len() <= MAX_DATAGRAM);
        let mut out = Messages::new();
        decode(&d, &mut out).unwrap();
        prop_assert_eq!(out.as_slice(), written.as_slice());
    }

    /// A message goes in, as its own encoding, exactly when it takes at
    /// most `room` bytes and fits what is left of the budget; otherwise
    /// the packet is unchanged.
    #[test]
    fn push_within_writes_whole_messages_or_nothing(
        msgs in proptest::collection::vec((arb_msg(), 0usize..200), 1..40),
        budget in MIN_PACKET_BUDGET..=MAX_DATAGRAM,
    ) {
        let mut w = PacketWriter::new(budget);
        let mut expected = alloc::vec::Vec::new();
        for (m, room) in &msgs {
            let alone = encode_message(&m.msg());
            let fits = alone.len() <= *room && alone.len() <= w.remaining() && w.count() < MAX_MESSAGES;
            let before = w.count();
            match w.push_within(&m.msg(), *room) {
                Ok(len) => {
                    prop_assert!(fits);
                    prop_assert_eq!(len, alone.len());
                    expected.extend_from_slice(&alone);
                }
                Err(Full) => {
                    prop_assert!(!fits);
                    prop_assert_eq!(w.count(), before);
                }
            }
        }
        prop_assert_eq!(&w.buf[w.layout.head..], expected.as_slice());
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1600)) {
        let mut out = Messages::new();
        let _ = decode(&bytes, &mut out);
    }

    #[test]
    fn decoding_mutated_packets_never_panics(
        m in arb_msg(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = one(&m.msg()).as_bytes().to_vec();
        for (i, b) in flips {
            let i = i.index(bytes.len());
            bytes[i] = b;
        }
        let mut out = Messages::new();
        let _ = decode(&bytes, &mut out);
    }
}
