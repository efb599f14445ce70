//! serf's dialect at the datagram boundary: our tags go out in serf's
//! encoding and serf's come in as ours, user events cross as serf's, a
//! leave carries serf's leave intent, and every alive announces serf's
//! version range.

use core::net::SocketAddr;

use alloc::vec::Vec;

use crate::api::tags::Tags;
use crate::wire::memberlist::Limits;
use crate::wire::memberlist::dialect::{Flavour, decode_packet, encode_packet};
use crate::wire::memberlist::heard::Heard;
use crate::wire::memberlist::message::Message as Ml;
use crate::wire::memberlist::packet::Unpacked;
use crate::wire::memberlist::serf::{self, SerfMessage, UserEvent};
use crate::wire::{Message, Messages};

const SERF: Flavour = Flavour { serf: true };

fn addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7946))
}

fn tags() -> Tags {
    let mut t = Tags::new();
    t.insert("role", "web");
    t.insert("dc", "east");
    t
}

/// The memberlist messages of a plain datagram, as owned debug strings,
/// and the payloads of its user messages.
fn parts(packet: &[u8]) -> (Vec<alloc::string::String>, Vec<Vec<u8>>) {
    let unpacked = Unpacked::parse(packet, &Limits::PACKET).unwrap();
    let mut users = Vec::new();
    let all = unpacked
        .messages()
        .map(|m| {
            let m = m.unwrap();
            if let Ml::User(p) = &m {
                users.push(p.to_vec());
            }
            alloc::format!("{m:?}")
        })
        .collect();
    (all, users)
}

#[test]
fn our_tags_go_out_in_serfs_encoding_with_serfs_versions_and_come_back_as_ours() {
    let ours = tags().encode();
    let alive = Message::Alive { incarnation: 1, name: "a", addr: addr(), meta: &ours };
    let mut packet = Vec::new();
    encode_packet(core::slice::from_ref(&alive), SERF, &Heard::default(), &mut packet).unwrap();
    let Ml::Alive(a) = Ml::decode(&packet).unwrap() else { panic!("not an alive") };
    let theirs = serf::decode_tags(a.meta.unwrap()).expect("serf's tag encoding");
    assert_eq!(theirs.get("role").map(alloc::string::String::as_str), Some("web"));
    assert_eq!(theirs.len(), 2);
    assert_eq!(a.vsn, Some(&serf::VERSIONS.to_vsn()[..]), "serf's delegate range, or serf refuses the push-pull");

    // And a serf agent's alive, decoded: its tags in our encoding.
    let mut scratch = Vec::new();
    let mut msgs = Messages::new();
    decode_packet(&packet, SERF, &mut Heard::default(), &mut scratch, &mut msgs).unwrap();
    let [Message::Alive { meta, .. }] = msgs.as_slice() else { panic!("{msgs:?}") };
    assert_eq!(Tags::decode(meta), Some(tags()));

    // Plain memberlist leaves metadata alone, both ways.
    let mut plain = Vec::new();
    encode_packet(&[alive], Flavour::default(), &Heard::default(), &mut plain).unwrap();
    let Ml::Alive(a) = Ml::decode(&plain).unwrap() else { panic!("not an alive") };
    assert_eq!(a.meta, Some(&ours[..]));
    // Metadata that is not tags goes as it is.
    let raw = Message::Alive { incarnation: 1, name: "a", addr: addr(), meta: b"web" };
    let mut packet = Vec::new();
    encode_packet(&[raw], SERF, &Heard::default(), &mut packet).unwrap();
    let Ml::Alive(a) = Ml::decode(&packet).unwrap() else { panic!("not an alive") };
    assert_eq!(a.meta, Some(&b"web"[..]));
}

#[test]
fn user_events_cross_as_serfs_and_a_leave_carries_serfs_intent() {
    let event = Message::User { ltime: 5, from: "a", name: "deploy", payload: b"v1", coalesce: true };
    let leave = Message::Dead { incarnation: 3, name: "a", from: "a" };
    let death = Message::Dead { incarnation: 3, name: "b", from: "a" };
    let mut packet = Vec::new();
    encode_packet(&[event, leave.clone(), death.clone()], SERF, &Heard::default(), &mut packet).unwrap();
    let (all, users) = parts(&packet);
    assert_eq!(all.len(), 4, "{all:?}");
    let serf: Vec<SerfMessage<'_>> = users.iter().map(|u| SerfMessage::decode(u).unwrap()).collect();
    assert_eq!(
        serf[0],
        SerfMessage::UserEvent(UserEvent { ltime: 5, name: "deploy", payload: b"v1", cc: true }),
        "the event, as serf's"
    );
    assert!(matches!(serf[1], SerfMessage::Leave(l) if l.node == "a" && l.ltime == 3), "{:?}", serf[1]);

    // Coming back: the event is ours, named as its own sender; the intent
    // is left to the `dead` beside it.
    let mut scratch = Vec::new();
    let mut msgs = Messages::new();
    decode_packet(&packet, SERF, &mut Heard::default(), &mut scratch, &mut msgs).unwrap();
    assert_eq!(
        msgs.as_slice(),
        [Message::User { ltime: 5, from: "deploy", name: "deploy", payload: b"v1", coalesce: true }, leave, death]
    );

    // A message for one member has no place among serf's.
    let direct = Message::Direct { from: "a", payload: b"\x03junk" };
    let mut packet = Vec::new();
    encode_packet(&[direct], SERF, &Heard::default(), &mut packet).unwrap();
    assert!(packet.is_empty());
    // And a user message that is not serf's is refused.
    let mut junk = Vec::new();
    Ml::User(b"\x2ajunk").encode(&mut junk).unwrap();
    let (mut scratch, mut msgs) = (Vec::new(), Messages::new());
    assert!(decode_packet(&junk, SERF, &mut Heard::default(), &mut scratch, &mut msgs).is_err());
}

#[test]
fn queries_and_answers_cross_as_serfs_and_answers_carry_the_origins_id() {
    let origin = SocketAddr::from(([127, 0, 0, 1], 7000));
    // A serf agent's query, as it gossips it.
    let query = serf::Query {
        ltime: 7,
        id: 0xdead_beef,
        addr: &[127, 0, 0, 1],
        port: 7000,
        source_node: "serf1",
        flags: serf::QUERY_FLAG_ACK,
        relay_factor: 0,
        timeout_ns: 2_500_000_000,
        name: "uptime",
        payload: b"?",
        ..serf::Query::default()
    };
    let mut body = Vec::new();
    SerfMessage::Query(query).encode(&mut body).unwrap();
    let mut packet = Vec::new();
    Ml::User(&body).encode(&mut packet).unwrap();
    let mut ids = Heard::default();
    let (mut scratch, mut msgs) = (Vec::new(), Messages::new());
    decode_packet(&packet, SERF, &mut ids, &mut scratch, &mut msgs).unwrap();
    assert_eq!(
        msgs.as_slice(),
        [Message::Question {
            ltime: 7,
            origin: "serf1",
            addr: origin,
            name: "uptime",
            payload: b"?",
            filter: &[],
            ack: true,
            relay_factor: 0,
            timeout_ms: 2_500
        }]
    );
    // Passed on, it keeps its ID (another would be a new query to serf).
    let mut again = Vec::new();
    encode_packet(&msgs, SERF, &ids, &mut again).unwrap();
    let Ml::User(body) = Ml::decode(&again).unwrap() else { panic!("not a user message") };
    assert!(matches!(SerfMessage::decode(body), Ok(SerfMessage::Query(q)) if q.id == 0xdead_beef));
    // Our answer and our acknowledgement carry its ID back.
    let answer = Message::Response { ltime: 7, from: "a", ack: false, payload: b"42", relay: None };
    let ack = Message::Response { ltime: 7, from: "a", ack: true, payload: b"", relay: None };
    let mut out = Vec::new();
    encode_packet(&[ack, answer], SERF, &ids, &mut out).unwrap();
    let (_, users) = parts(&out);
    let answers: Vec<_> = users.iter().map(|u| SerfMessage::decode(u).unwrap()).collect();
    assert_eq!(
        answers,
        [
            SerfMessage::QueryResponse(serf::QueryResponse {
                ltime: 7,
                id: 0xdead_beef,
                from: "a",
                flags: serf::QUERY_FLAG_ACK,
                payload: b""
            }),
            SerfMessage::QueryResponse(serf::QueryResponse {
                ltime: 7,
                id: 0xdead_beef,
                from: "a",
                flags: 0,
                payload: b"42"
            }),
        ]
    );
    // A filtered query is taken with its filters in our encoding: `serf
    // query -node sw1 -node sw2 -tag role=web`, as serf writes it.
    let mut filters = Vec::new();
    serf::encode_filters(&["sw1", "sw2"], &[("role", "web")], &mut filters).unwrap();
    let mut want =
        alloc::vec![0x92, 0xaa, 0, 0x92, 0xa3, b's', b'w', b'1', 0xa3, b's', b'w', b'2', 0xb4, 1, 0x82, 0xa4];
    want.extend_from_slice(b"Expr");
    want.extend_from_slice(&[0xa3, b'w', b'e', b'b', 0xa3, b'T', b'a', b'g', 0xa4, b'r', b'o', b'l', b'e']);
    assert_eq!(filters, want);
    let filtered = serf::Query { filters: &filters, ..query };
    let mut body = Vec::new();
    SerfMessage::Query(filtered).encode(&mut body).unwrap();
    let mut packet = Vec::new();
    Ml::User(&body).encode(&mut packet).unwrap();
    let (mut scratch, mut msgs) = (Vec::new(), Messages::new());
    decode_packet(&packet, SERF, &mut Heard::default(), &mut scratch, &mut msgs).unwrap();
    let [Message::Question { filter, .. }] = msgs.as_slice() else { panic!("{msgs:?}") };
    let ours = crate::protocol::queries::filter::encode_parts(&["sw1", "sw2"], &[("role", "web")]);
    assert_eq!(*filter, &ours[..]);
    let f = crate::protocol::queries::filter::Filter::decode(filter).unwrap();
    let mut web = crate::Tags::new();
    web.insert("role", "web");
    assert!(f.selects("sw1", &web.encode()));
    assert!(!f.selects("sw3", &web.encode()));
    assert!(!f.selects("sw1", &[]));
    // Passed on, it carries serf's filters again.
    let mut again = Vec::new();
    encode_packet(&msgs, SERF, &Heard::default(), &mut again).unwrap();
    let Ml::User(body) = Ml::decode(&again).unwrap() else { panic!("not a user message") };
    let Ok(SerfMessage::Query(q)) = SerfMessage::decode(body) else { panic!("not a query") };
    assert_eq!(q.filters, &filters[..]);
    // Two node filters: a member must be in both.
    let mut two = Vec::new();
    serf::encode_filters(&["a", "b"], &[], &mut two).unwrap();
    let mut second = Vec::new();
    serf::encode_filters(&["b", "c"], &[], &mut second).unwrap();
    two[0] = 0x92;
    two.extend_from_slice(&second[1..]);
    let f = serf::decode_filters(&two).unwrap();
    assert_eq!(f.nodes, [alloc::vec!["a", "b"], alloc::vec!["b", "c"]]);
    let both = serf::Query { filters: &two, ..query };
    let mut body = Vec::new();
    SerfMessage::Query(both).encode(&mut body).unwrap();
    let mut packet = Vec::new();
    Ml::User(&body).encode(&mut packet).unwrap();
    let (mut scratch, mut msgs) = (Vec::new(), Messages::new());
    decode_packet(&packet, SERF, &mut Heard::default(), &mut scratch, &mut msgs).unwrap();
    let [Message::Question { filter, .. }] = msgs.as_slice() else { panic!("{msgs:?}") };
    assert_eq!(*filter, &crate::protocol::queries::filter::encode_parts(&["b"], &[])[..]);
    // A filter of a type serf does not know: the query is not taken.
    let unknown = [0x91, 0xa2, 7, 0xc0];
    let odd = serf::Query { filters: &unknown, ..query };
    let mut body = Vec::new();
    SerfMessage::Query(odd).encode(&mut body).unwrap();
    let mut packet = Vec::new();
    Ml::User(&body).encode(&mut packet).unwrap();
    let (mut scratch, mut msgs) = (Vec::new(), Messages::new());
    decode_packet(&packet, SERF, &mut Heard::default(), &mut scratch, &mut msgs).unwrap();
    assert!(msgs.is_empty(), "{msgs:?}");
    // Ours with a filter goes with serf's filters.
    let ours = Message::Question {
        ltime: 1,
        origin: "a",
        addr: origin,
        name: "n",
        payload: b"",
        filter: &ours,
        ack: false,
        relay_factor: 0,
        timeout_ms: 1_000,
    };
    let mut out = Vec::new();
    encode_packet(&[ours], SERF, &Heard::default(), &mut out).unwrap();
    let Ml::User(body) = Ml::decode(&out).unwrap() else { panic!("not a user message") };
    let Ok(SerfMessage::Query(q)) = SerfMessage::decode(body) else { panic!("not a query") };
    assert_eq!(q.filters, &filters[..]);
}

/// What serf 0.9.4 agents announce by default: delegate protocol 5.
const SERF1_VERSIONS: [u8; 6] = [1, 5, 2, 2, 5, 5];

/// serf1's alive, announcing [`SERF1_VERSIONS`].
fn serf1_alive() -> Vec<u8> {
    let alive = crate::wire::memberlist::gossip::Alive {
        incarnation: 2,
        node: "serf1",
        addr: Some(&[127, 0, 0, 1]),
        port: 7946,
        meta: None,
        vsn: Some(&SERF1_VERSIONS),
    };
    let mut packet = Vec::new();
    Ml::Alive(alive).encode(&mut packet).unwrap();
    packet
}

#[test]
fn an_alive_passed_on_keeps_the_members_own_versions() {
    let packet = serf1_alive();
    let mut heard = Heard::new("me");
    let (mut scratch, mut msgs) = (Vec::new(), Messages::new());
    decode_packet(&packet, SERF, &mut heard, &mut scratch, &mut msgs).unwrap();
    let mut again = Vec::new();
    encode_packet(&msgs, SERF, &heard, &mut again).unwrap();
    let Ml::Alive(a) = Ml::decode(&again).unwrap() else { panic!("not an alive") };
    assert_eq!(a.vsn, Some(&SERF1_VERSIONS[..]), "memberlist refutes its own alive with other versions");
    // A member not heard from gets the dialect's range.
    let other = Message::Alive { incarnation: 1, name: "x", addr: addr(), meta: b"" };
    let mut out = Vec::new();
    encode_packet(&[other], SERF, &heard, &mut out).unwrap();
    let Ml::Alive(a) = Ml::decode(&out).unwrap() else { panic!("not an alive") };
    assert_eq!(a.vsn, Some(&serf::VERSIONS.to_vsn()[..]));
}

#[test]
fn versions_are_kept_only_from_a_datagram_that_decodes_whole() {
    let part = serf1_alive();
    let junk = [0xff_u8, 1, 2];
    let mut packet = Vec::new();
    crate::wire::memberlist::packet::encode_compound(&[&part, &junk], &mut packet).unwrap();
    let mut heard = Heard::new("me");
    let (mut scratch, mut msgs) = (Vec::new(), Messages::new());
    assert!(decode_packet(&packet, SERF, &mut heard, &mut scratch, &mut msgs).is_err());
    assert_eq!(heard.versions_of("serf1"), None, "a rejected datagram leaves nothing behind");
}

/// An answer relayed as serf relays it (`messageRelay`: where to, then
/// the answer) is ours to pass on to the origin, and ours relayed through
/// a serf agent goes the same way.
#[test]
fn relayed_answers_cross_as_serfs() {
    let origin = SocketAddr::from(([127, 0, 0, 1], 7000));
    let answer = serf::QueryResponse { ltime: 9, id: 77, from: "serf2", flags: 0, payload: b"up" };
    // go-msgpack's bytes for `relayHeader{DestAddr: 127.0.0.1:7000,
    // DestName: "serf1"}`, then the answer with its type byte.
    let mut body = alloc::vec![9, 0x82, 0xa8];
    body.extend_from_slice(b"DestAddr");
    body.extend_from_slice(&[0x83, 0xa2, b'I', b'P', 0xa4, 127, 0, 0, 1, 0xa4]);
    body.extend_from_slice(b"Port");
    body.extend_from_slice(&[0xcd, 0x1b, 0x58, 0xa4]);
    body.extend_from_slice(b"Zone");
    body.extend_from_slice(&[0xa0, 0xa8]);
    body.extend_from_slice(b"DestName");
    body.extend_from_slice(&[0xa5, b's', b'e', b'r', b'f', b'1']);
    SerfMessage::QueryResponse(answer).encode(&mut body).unwrap();
    let mut packet = Vec::new();
    Ml::User(&body).encode(&mut packet).unwrap();
    let mut heard = Heard::default();
    let (mut scratch, mut msgs) = (Vec::new(), Messages::new());
    decode_packet(&packet, SERF, &mut heard, &mut scratch, &mut msgs).unwrap();
    assert_eq!(
        msgs.as_slice(),
        [Message::Response { ltime: 9, from: "serf2", ack: false, payload: b"up", relay: Some(origin) }]
    );
    // Passed on to the origin, it keeps the query's ID.
    let direct = Message::Response { ltime: 9, from: "serf2", ack: false, payload: b"up", relay: None };
    let mut out = Vec::new();
    encode_packet(&[direct], SERF, &heard, &mut out).unwrap();
    let Ml::User(sent) = Ml::decode(&out).unwrap() else { panic!("not a user message") };
    assert_eq!(SerfMessage::decode(sent), Ok(SerfMessage::QueryResponse(answer)));
    // Ours through a relay: the same header, without the origin's name.
    let ours = Message::Response { ltime: 9, from: "serf2", ack: false, payload: b"up", relay: Some(origin) };
    let mut out = Vec::new();
    encode_packet(&[ours], SERF, &heard, &mut out).unwrap();
    let Ml::User(sent) = Ml::decode(&out).unwrap() else { panic!("not a user message") };
    let want = serf::Relay { dest_ip: &[127, 0, 0, 1], dest_port: 7000, dest_name: "", response: answer };
    assert_eq!(SerfMessage::decode(sent), Ok(SerfMessage::Relay(want)));
    let at = body.windows(8).position(|w| w == b"DestName").unwrap();
    assert_eq!(sent[..at], body[..at], "the header as serf writes it");
    // A relay of anything but an answer is not taken.
    assert!(matches!(SerfMessage::decode(&[9, 0x80, 3, 0x80]), Ok(SerfMessage::Other(serf::SerfType::Relay))));
}
