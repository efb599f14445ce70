//! serf's dialect at the datagram boundary: our tags go out in serf's
//! encoding and serf's come in as ours, user events cross as serf's, a
//! leave carries serf's leave intent, and every alive announces serf's
//! version range.

use core::net::SocketAddr;

use alloc::vec::Vec;

use crate::api::tags::Tags;
use crate::wire::memberlist::Limits;
use crate::wire::memberlist::dialect::{Flavour, decode_packet, encode_packet};
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
    encode_packet(core::slice::from_ref(&alive), SERF, &mut packet).unwrap();
    let Ml::Alive(a) = Ml::decode(&packet).unwrap() else { panic!("not an alive") };
    let theirs = serf::decode_tags(a.meta.unwrap()).expect("serf's tag encoding");
    assert_eq!(theirs.get("role").map(alloc::string::String::as_str), Some("web"));
    assert_eq!(theirs.len(), 2);
    assert_eq!(a.vsn, Some(&serf::VERSIONS.to_vsn()[..]), "serf's delegate range, or serf refuses the push-pull");

    // And a serf agent's alive, decoded: its tags in our encoding.
    let mut scratch = Vec::new();
    let mut msgs = Messages::new();
    decode_packet(&packet, SERF, &mut scratch, &mut msgs).unwrap();
    let [Message::Alive { meta, .. }] = msgs.as_slice() else { panic!("{msgs:?}") };
    assert_eq!(Tags::decode(meta), Some(tags()));

    // Plain memberlist leaves metadata alone, both ways.
    let mut plain = Vec::new();
    encode_packet(&[alive], Flavour::default(), &mut plain).unwrap();
    let Ml::Alive(a) = Ml::decode(&plain).unwrap() else { panic!("not an alive") };
    assert_eq!(a.meta, Some(&ours[..]));
    // Metadata that is not tags goes as it is.
    let raw = Message::Alive { incarnation: 1, name: "a", addr: addr(), meta: b"web" };
    let mut packet = Vec::new();
    encode_packet(&[raw], SERF, &mut packet).unwrap();
    let Ml::Alive(a) = Ml::decode(&packet).unwrap() else { panic!("not an alive") };
    assert_eq!(a.meta, Some(&b"web"[..]));
}

#[test]
fn user_events_cross_as_serfs_and_a_leave_carries_serfs_intent() {
    let event = Message::User { ltime: 5, from: "a", name: "deploy", payload: b"v1", coalesce: true };
    let leave = Message::Dead { incarnation: 3, name: "a", from: "a" };
    let death = Message::Dead { incarnation: 3, name: "b", from: "a" };
    let mut packet = Vec::new();
    encode_packet(&[event, leave.clone(), death.clone()], SERF, &mut packet).unwrap();
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
    decode_packet(&packet, SERF, &mut scratch, &mut msgs).unwrap();
    assert_eq!(
        msgs.as_slice(),
        [Message::User { ltime: 5, from: "deploy", name: "deploy", payload: b"v1", coalesce: true }, leave, death]
    );

    // A message for one member has no place among serf's.
    let direct = Message::Direct { from: "a", payload: b"\x03junk" };
    let mut packet = Vec::new();
    encode_packet(&[direct], SERF, &mut packet).unwrap();
    assert!(packet.is_empty());
    // And a user message that is not serf's is refused.
    let mut junk = Vec::new();
    Ml::User(b"\x2ajunk").encode(&mut junk).unwrap();
    let (mut scratch, mut msgs) = (Vec::new(), Messages::new());
    assert!(decode_packet(&junk, SERF, &mut scratch, &mut msgs).is_err());
}
