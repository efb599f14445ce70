//! One or more hand-built byte vectors per message type: what Go's
//! `encode(msgType, &msg)` writes for these values, worked out from
//! go-msgpack 0.5.3 (fields as map keys sorted by name, smallest
//! integers, raw strings, nil slices as nil). Each vector must decode to
//! the value and the value must encode to the vector.

use alloc::vec::Vec;

use super::cat;
use crate::wire::memberlist::gossip::{Alive, Dead, Suspect, Versions};
use crate::wire::memberlist::message::{Body, Message};
use crate::wire::memberlist::probe::{Ack, IndirectPing, Nack, Ping};

/// Checks that `msg` encodes to `bytes` and `bytes` decodes to `msg`.
fn pin(msg: Message<'_>, bytes: &[u8]) {
    let mut out = Vec::new();
    msg.encode(&mut out).unwrap();
    assert_eq!(out, bytes, "encoding of {msg:?}");
    assert_eq!(Message::decode(bytes).unwrap(), msg);
}

pub(super) fn ping_plain() -> Vec<u8> {
    cat(&[
        &[0x00], // pingMsg
        &[0x82], // fixmap of 2: the three `omitempty` Source* fields are zero
        &[0xa4],
        b"Node",       // key, fixstr 4 ("Node" sorts before "SeqNo")
        &[0xa1, b'b'], // "b"
        &[0xa5],
        b"SeqNo",
        &[0x01], // 1 as a positive fixint
    ])
}

#[test]
fn ping_without_source() {
    pin(Message::Ping(Ping { seq_no: 1, node: "b", ..Ping::default() }), &ping_plain());
}

pub(super) fn ping_with_source() -> Vec<u8> {
    cat(&[
        &[0x00, 0x85], // pingMsg, fixmap of 5
        &[0xa4],
        b"Node",
        &[0xa6],
        b"node-b",
        &[0xa5],
        b"SeqNo",
        &[0xcd, 0x01, 0x2c], // 300 needs a uint16
        &[0xaa],
        b"SourceAddr",                   // "SourceAddr" < "SourceNode" < "SourcePort"
        &[0xa4, 0x7f, 0x00, 0x00, 0x01], // []byte{127,0,0,1}: raw, not bin
        &[0xaa],
        b"SourceNode",
        &[0xa6],
        b"node-a",
        &[0xaa],
        b"SourcePort",
        &[0xcd, 0x1f, 0x0a], // 7946
    ])
}

#[test]
fn ping_with_source_fields() {
    let ping =
        Ping { seq_no: 300, node: "node-b", source_addr: &[127, 0, 0, 1], source_port: 7946, source_node: "node-a" };
    pin(Message::Ping(ping), &ping_with_source());
}

pub(super) fn indirect_ping() -> Vec<u8> {
    cat(&[
        &[0x01, 0x85], // indirectPingMsg, fixmap of 5 (no Source* fields)
        &[0xa4],
        b"Nack",
        &[0xc3], // true
        &[0xa4],
        b"Node",
        &[0xa1, b'c'],
        &[0xa4],
        b"Port",
        &[0xcd, 0x1f, 0x0a],
        &[0xa5],
        b"SeqNo",
        &[0x05],
        &[0xa6],
        b"Target", // last: "T" sorts after every "S"
        &[0xa4, 10, 0, 0, 2],
    ])
}

#[test]
fn indirect_ping_request() {
    let req = IndirectPing {
        seq_no: 5,
        target: Some(&[10, 0, 0, 2]),
        port: 7946,
        node: "c",
        nack: true,
        ..IndirectPing::default()
    };
    pin(Message::IndirectPing(req), &indirect_ping());
}

#[test]
fn indirect_ping_with_nil_target_and_source() {
    let bytes = cat(&[
        &[0x01, 0x88], // all eight fields
        &[0xa4],
        b"Nack",
        &[0xc2], // false
        &[0xa4],
        b"Node",
        &[0xa0], // "": not omitempty, so written
        &[0xa4],
        b"Port",
        &[0x00],
        &[0xa5],
        b"SeqNo",
        &[0xce, 0xff, 0xff, 0xff, 0xff], // u32::MAX needs a uint32
        &[0xaa],
        b"SourceAddr",
        &[0xb0], // 16 bytes of IPv6: fixstr 16
        &[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        &[0xaa],
        b"SourceNode",
        &[0xa1, b's'],
        &[0xaa],
        b"SourcePort",
        &[0x7f], // 127: still a fixint
        &[0xa6],
        b"Target",
        &[0xc0], // nil []byte
    ])
    .to_vec();
    let v6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let req = IndirectPing {
        seq_no: u32::MAX,
        target: None,
        port: 0,
        node: "",
        nack: false,
        source_addr: &v6,
        source_port: 127,
        source_node: "s",
    };
    pin(Message::IndirectPing(req), &bytes);
}

pub(super) fn ack_nil_payload() -> Vec<u8> {
    cat(&[
        &[0x02, 0x82], // ackRespMsg, fixmap of 2
        &[0xa7],
        b"Payload", // "Payload" < "SeqNo"
        &[0xc0],    // nil: memberlist's `ackResp{seq, nil}`
        &[0xa5],
        b"SeqNo",
        &[0x07],
    ])
}

#[test]
fn ack_with_nil_payload() {
    pin(Message::Ack(Ack { seq_no: 7, payload: None }), &ack_nil_payload());
}

#[test]
fn ack_with_empty_and_long_payloads() {
    // An empty, non-nil payload is an empty fixstr, not nil.
    let empty = cat(&[&[0x02, 0x82, 0xa7], b"Payload", &[0xa0, 0xa5], b"SeqNo", &[0x07]]);
    pin(Message::Ack(Ack { seq_no: 7, payload: Some(&[]) }), &empty);
    // 40 bytes: go-msgpack skips str8 (0xd9) without WriteExt, so raw16.
    let payload = [0x5a; 40];
    let long = cat(&[&[0x02, 0x82, 0xa7], b"Payload", &[0xda, 0x00, 0x28], &payload, &[0xa5], b"SeqNo", &[0xcc, 0x80]]);
    pin(Message::Ack(Ack { seq_no: 128, payload: Some(&payload) }), &long);
}

pub(super) fn nack() -> Vec<u8> {
    cat(&[
        &[0x0b, 0x81], // nackRespMsg is 11, fixmap of 1
        &[0xa5],
        b"SeqNo",
        &[0xce, 0x00, 0x01, 0x11, 0x70], // 70000 needs a uint32
    ])
}

#[test]
fn nack_response() {
    pin(Message::Nack(Nack { seq_no: 70_000 }), &nack());
}

pub(super) fn suspect() -> Vec<u8> {
    cat(&[
        &[0x03, 0x83], // suspectMsg, fixmap of 3
        &[0xa4],
        b"From", // "From" < "Incarnation" < "Node"
        &[0xa1, b'b'],
        &[0xab],
        b"Incarnation",
        &[0xcc, 0xc8], // 200 needs a uint8
        &[0xa4],
        b"Node",
        &[0xa1, b'a'],
    ])
}

#[test]
fn suspect_message() {
    pin(Message::Suspect(Suspect { incarnation: 200, node: "a", from: "b" }), &suspect());
}

pub(super) fn alive() -> Vec<u8> {
    cat(&[
        &[0x04, 0x86], // aliveMsg, fixmap of 6
        &[0xa4],
        b"Addr",
        &[0xa4, 127, 0, 0, 1],
        &[0xab],
        b"Incarnation",
        &[0x01],
        &[0xa4],
        b"Meta",
        &[0xc0], // nil: no delegate metadata
        &[0xa4],
        b"Node",
        &[0xa1, b'a'],
        &[0xa4],
        b"Port",
        &[0xcd, 0x1f, 0x0a],
        &[0xa3],
        b"Vsn",
        &[0xa6, 1, 5, 2, 2, 5, 4], // []uint8 is []byte: a raw string, not an array
    ])
}

#[test]
fn alive_message() {
    let vsn = [1, 5, 2, 2, 5, 4];
    let msg = Alive { incarnation: 1, node: "a", addr: Some(&[127, 0, 0, 1]), port: 7946, meta: None, vsn: Some(&vsn) };
    pin(Message::Alive(msg), &alive());
    let versions = Versions::from_vsn(&vsn).unwrap();
    assert_eq!((versions.protocol_min, versions.protocol_max, versions.protocol_cur), (1, 5, 2));
    assert_eq!(versions.to_vsn(), vsn);
}

#[test]
fn alive_with_32_bytes_of_meta() {
    // 32 bytes is the first length past fixstr: raw16.
    let meta = [b'm'; 32];
    let bytes = cat(&[
        &[0x04, 0x86, 0xa4],
        b"Addr",
        &[0xa4, 127, 0, 0, 1, 0xab],
        b"Incarnation",
        &[0xcd, 0x01, 0x00], // 256 needs a uint16
        &[0xa4],
        b"Meta",
        &[0xda, 0x00, 0x20],
        &meta,
        &[0xa4],
        b"Node",
        &[0xa1, b'a', 0xa4],
        b"Port",
        &[0xcd, 0x1f, 0x0a, 0xa3],
        b"Vsn",
        &[0xa6, 1, 5, 2, 0, 0, 0],
    ]);
    let msg = Alive {
        incarnation: 256,
        node: "a",
        addr: Some(&[127, 0, 0, 1]),
        port: 7946,
        meta: Some(&meta),
        vsn: Some(&[1, 5, 2, 0, 0, 0]),
    };
    pin(Message::Alive(msg), &bytes);
}

pub(super) fn dead() -> Vec<u8> {
    cat(&[
        &[0x05, 0x83], // deadMsg, fixmap of 3
        &[0xa4],
        b"From",
        &[0xa1, b'a'],
        &[0xab],
        b"Incarnation",
        &[0x03],
        &[0xa4],
        b"Node",
        &[0xa1, b'a'], // From == Node: a graceful leave
    ])
}

#[test]
fn dead_message() {
    pin(Message::Dead(Dead { incarnation: 3, node: "a", from: "a" }), &dead());
}

#[test]
fn user_message() {
    // userMsg (8), then the application's bytes as they are.
    pin(Message::User(b"hello"), &cat(&[&[0x08], b"hello"]));
}

#[test]
fn decoding_takes_keys_in_any_order_widths_and_unknown_keys() {
    // What another encoder might send: keys unsorted, an over-wide
    // integer, `str8` and `bin8` for strings and bytes, an unknown key
    // with a nested value, `1` for true. Go accepts all of it.
    let bytes = cat(&[
        &[0x01, 0x87],
        &[0xa5],
        b"SeqNo",
        &[0xcf, 0, 0, 0, 0, 0, 0, 0, 0x09], // uint64 9
        &[0xa5],
        b"Extra",
        &[0x92, 0x81, 0xa1, b'k', 0xc0, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0], // [{k: nil}, 0.0]
        &[0xa6],
        b"Target",
        &[0xc4, 0x04, 10, 0, 0, 3], // bin8
        &[0xa4],
        b"Node",
        &[0xd9, 0x01, b'n'], // str8
        &[0xa4],
        b"Nack",
        &[0x01],
        &[0xa4],
        b"Port",
        &[0xd0, 0x50], // int8 80
        &[0xa4],
        b"Port",
        &[0xd1, 0x00, 0x51], // a duplicate key: the later value wins, as in Go
    ]);
    let got = IndirectPing::decode(bytes.get(1..).unwrap()).unwrap();
    assert_eq!(
        got,
        IndirectPing {
            seq_no: 9,
            target: Some(&[10, 0, 0, 3]),
            port: 81,
            node: "n",
            nack: true,
            ..IndirectPing::default()
        }
    );
}

#[test]
fn nil_fields_and_a_nil_struct_are_zero_values() {
    let bytes = cat(&[&[0x82, 0xa5], b"SeqNo", &[0xc0, 0xa4], b"Node", &[0xc0]]);
    assert_eq!(Ping::decode(&bytes).unwrap(), Ping::default());
    assert_eq!(Nack::decode(&[0xc0]).unwrap(), Nack::default());
}

#[test]
fn wrong_types_and_ranges_are_malformed() {
    use crate::wire::memberlist::error::Error;
    // SeqNo negative, beyond u32, a string; Port beyond u16; a struct as
    // an array; a bool that is 2; a string field sent as bin.
    let cases: [&[u8]; 7] = [
        &[0x81, 0xa5, b'S', b'e', b'q', b'N', b'o', 0xff],
        &[0x81, 0xa5, b'S', b'e', b'q', b'N', b'o', 0xcf, 0, 0, 0, 1, 0, 0, 0, 0],
        &[0x81, 0xa5, b'S', b'e', b'q', b'N', b'o', 0xa1, b'1'],
        &[0x81, 0xa4, b'P', b'o', b'r', b't', 0xce, 0, 1, 0, 0],
        &[0x91, 0x01],
        &[0x81, 0xa4, b'N', b'a', b'c', b'k', 0x02],
        &[0x81, 0xa4, b'N', b'o', b'd', b'e', 0xc4, 0x01, b'x'],
    ];
    for case in cases {
        assert_eq!(IndirectPing::decode(case), Err(Error::Malformed), "{case:x?}");
    }
    let not_utf8 = [0x81, 0xa4, b'N', b'o', b'd', b'e', 0xa1, 0xff];
    assert_eq!(Ping::decode(&not_utf8), Err(Error::BadUtf8));
}

#[test]
fn message_types_are_numbered_as_memberlist_0_2_2() {
    use crate::wire::memberlist::message::MessageType as T;
    let all = [
        T::Ping,
        T::IndirectPing,
        T::AckResp,
        T::Suspect,
        T::Alive,
        T::Dead,
        T::PushPull,
        T::Compound,
        T::User,
        T::Compress,
        T::Encrypt,
        T::NackResp,
        T::HasCrc,
        T::Err,
    ];
    for (i, t) in all.into_iter().enumerate() {
        assert_eq!(t as usize, i);
        assert_eq!(T::from_byte(i as u8), Some(t));
    }
    assert_eq!(T::from_byte(14), None);
}

#[test]
fn ip_bytes_both_ways() {
    use crate::wire::memberlist::gossip::{IpBytes, ip_from_wire};
    use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let v4 = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));
    assert_eq!(IpBytes::new(v4).as_slice(), &[10, 1, 2, 3]);
    assert_eq!(ip_from_wire(&[10, 1, 2, 3]), Some(v4));
    // Go's net.ParseIP("10.1.2.3") is 16 bytes, IPv4-mapped.
    let mapped = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3];
    assert_eq!(ip_from_wire(&mapped), Some(v4));
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    assert_eq!(ip_from_wire(IpBytes::new(v6).as_slice()), Some(v6));
    assert_eq!(ip_from_wire(&[1, 2, 3]), None);
}
