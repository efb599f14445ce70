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
    // A filtered query is not taken (serf's filters are not read yet)...
    let filtered = serf::Query { filtered: true, ..query };
    let mut body = Vec::new();
    SerfMessage::Query(filtered).encode(&mut body).unwrap();
    // (encode writes no filter: mark one by hand, a list of one filter)
    let at = body.windows(7).position(|w| w == b"Filters").unwrap() + 7;
    body[at] = 0x91;
    body.insert(at + 1, 0xc0);
    let mut packet = Vec::new();
    Ml::User(&body).encode(&mut packet).unwrap();
    let (mut scratch, mut msgs) = (Vec::new(), Messages::new());
    decode_packet(&packet, SERF, &mut Heard::default(), &mut scratch, &mut msgs).unwrap();
    assert!(msgs.is_empty(), "{msgs:?}");
    // ...and ours with a filter is not sent.
    let ours = Message::Question {
        ltime: 1,
        origin: "a",
        addr: origin,
        name: "n",
        payload: b"",
        filter: b"\x01",
        ack: false,
        relay_factor: 0,
        timeout_ms: 1_000,
    };
    let mut out = Vec::new();
    encode_packet(&[ours], SERF, &Heard::default(), &mut out).unwrap();
    assert!(out.is_empty());
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
