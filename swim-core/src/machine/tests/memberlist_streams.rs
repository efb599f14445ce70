//! Streams in memberlist's format: what real memberlist 0.2.2 nodes sent
//! on streams (recorded under `tests/data/memberlist/`) is taken and
//! answered as memberlist expects, and our own joins and syncs are
//! push-pulls memberlist reads.

use super::memberlist::{ml_node, recording};
use super::*;
use crate::StreamId;
use crate::wire::memberlist::Limits;
use crate::wire::memberlist::dialect::VERSIONS;
use crate::wire::memberlist::stream::{NodeStateType, StreamMessage};

/// Every frame sent, by stream.
fn frames(actions: &[Action]) -> Vec<(StreamId, Vec<u8>)> {
    actions
        .iter()
        .filter_map(|a| if let Action::SendFrame { id, frame } = a { Some((*id, frame.to_vec())) } else { None })
        .collect()
}

fn closed(actions: &[Action], id: StreamId) -> bool {
    actions.iter().any(|a| matches!(a, Action::CloseStream { id: i } if *i == id))
}

/// The names and states of a push-pull memberlist reads, its `Join`, and
/// whether every record carries our versions.
fn push_pull(frame: &[u8]) -> (bool, Vec<(String, NodeStateType)>, bool) {
    let StreamMessage::PushPull { join, nodes, .. } =
        StreamMessage::decode(frame, &Limits::STREAM).expect("a stream message memberlist reads")
    else {
        panic!("not a push-pull")
    };
    let vsn = VERSIONS.to_vsn();
    let versioned = nodes.iter().all(|n| n.vsn == Some(&vsn[..]));
    (join, nodes.iter().map(|n| (n.name.to_string(), n.state)).collect(), versioned)
}

/// The names in a recorded push-pull, with the addresses of the alive.
fn names_in(plain: &[u8]) -> Vec<(String, Option<SocketAddr>)> {
    let mut out = Vec::new();
    let opened = crate::wire::memberlist::stream::open_stream(plain, &Limits::STREAM).unwrap();
    let StreamMessage::PushPull { nodes, .. } = StreamMessage::decode(opened.as_slice(), &Limits::STREAM).unwrap()
    else {
        panic!("not a push-pull")
    };
    for n in nodes {
        let ip = n.addr.and_then(crate::wire::memberlist::gossip::ip_from_wire);
        let alive = n.state == NodeStateType::ALIVE;
        out.push((n.name.to_string(), ip.filter(|_| alive).map(|ip| SocketAddr::new(ip, n.port))));
    }
    out
}

/// Node `name` takes the recorded stream message at `path` on a stream a
/// peer opened; returns what it did.
fn accept(node: &mut Swim<Rng64>, path: &str) -> Vec<Action> {
    let mut out = Vec::new();
    let id = StreamId::Inbound(1);
    node.handle(at(1), Input::StreamAccepted { id, from: addr(9) }, &mut out).unwrap();
    node.handle(at(2), Input::StreamFrame { id, frame: &recording(path) }, &mut out).unwrap();
    out
}

#[test]
fn a_recorded_join_is_merged_and_answered_with_a_push_pull_memberlist_reads() {
    for path in ["plain/001-stream-req-n3-n0.bin", "lzw/037-stream-req-n3-n0.bin"] {
        let mut n0 = ml_node("n0", 1);
        let out = accept(&mut n0, path);
        let go = names_in(&recording(path));
        assert!(!go.is_empty());
        // A stranger's table is not trusted at once: each new alive member
        // is pinged, in memberlist's format, before it is admitted.
        let mut out = out;
        out.extend(run(&mut n0, 3, 1_000));
        for (name, at) in go.iter().filter_map(|(n, a)| Some((n, (*a)?))) {
            let pinged = sent(&out).iter().filter(|(to, _)| *to == at).any(|(_, p)| {
                let u = crate::wire::memberlist::packet::Unpacked::parse(p, &Limits::PACKET).unwrap();
                u.messages()
                    .any(|m| matches!(m, Ok(crate::wire::memberlist::message::Message::Ping(p)) if p.node == name))
            });
            assert!(pinged, "{path}: {name} at {at} was not pinged");
        }
        let answers = frames(&out);
        assert_eq!(answers.len(), 1, "{path}: one message answers a push-pull");
        let (id, frame) = &answers[0];
        assert_eq!(*id, StreamId::Inbound(1));
        let (_, nodes, versioned) = push_pull(frame);
        assert!(nodes.contains(&("n0".to_string(), NodeStateType::ALIVE)), "{path}: {nodes:?}");
        assert!(versioned, "every record carries the versions memberlist checks");
        assert!(closed(&out, StreamId::Inbound(1)), "{path}: the stream is closed after the answer");
        assert_eq!(n0.stats().rejected_total(), 0);
    }
}

#[test]
fn our_join_is_a_push_pull_and_a_recorded_answer_completes_it() {
    let mut n4 = ml_node("n4", 4);
    let mut out = Vec::new();
    n4.handle(at(0), Input::Join { seeds: &[addr(1)] }, &mut out).unwrap();
    let opened = out.iter().find_map(|a| if let Action::OpenStream { id, to } = a { Some((*id, *to)) } else { None });
    let (id, to) = opened.expect("a join opens a stream");
    assert_eq!(to, addr(1));
    let sent = frames(&out);
    assert_eq!(sent.len(), 1);
    let (join, nodes, versioned) = push_pull(&sent[0].1);
    assert!(join && versioned);
    assert_eq!(nodes, [("n4".to_string(), NodeStateType::ALIVE)]);

    // n0's answer to n4's join, as memberlist sent it.
    let path = "plain/003-stream-resp-n0-n4.bin";
    let mut out = Vec::new();
    n4.handle(at(5), Input::StreamFrame { id, frame: &recording(path) }, &mut out).unwrap();
    for (name, _) in names_in(&recording(path)) {
        assert!(n4.member(&name).is_some(), "{name} is not in the table");
    }
    assert!(closed(&out, id));
    assert!(frames(&out).is_empty(), "the initiator sends nothing after the answer");
    assert!(events(&out).iter().any(|e| matches!(e, Event::Joined { .. })), "{:?}", events(&out));
}

#[test]
fn a_recorded_stream_ping_is_acked_with_its_sequence_number() {
    for path in ["plain/013-stream-req-n2-n1.bin", "lzw/051-stream-req-n1-n2.bin"] {
        let bytes = recording(path);
        let opened = crate::wire::memberlist::stream::open_stream(&bytes, &Limits::STREAM).unwrap();
        let StreamMessage::Ping(p) = StreamMessage::decode(opened.as_slice(), &Limits::STREAM).unwrap() else {
            panic!("{path}: not a ping")
        };
        let mut target = ml_node(p.node, 1);
        let out = accept(&mut target, path);
        let sent = frames(&out);
        let acks: Vec<_> = sent
            .iter()
            .map(|(_, f)| StreamMessage::decode(f, &Limits::STREAM).expect("memberlist reads our answer"))
            .collect();
        assert!(
            matches!(acks.as_slice(), [StreamMessage::Ack(a)] if a.seq_no == p.seq_no),
            "{path}: {acks:?} for seq {}",
            p.seq_no
        );
        // A ping for someone else gets no ack.
        let mut other = ml_node("somebody-else", 1);
        assert!(frames(&accept(&mut other, path)).is_empty());
    }
}

#[test]
fn a_cut_or_junk_stream_message_is_rejected_and_changes_nothing() {
    let go = recording("plain/001-stream-req-n3-n0.bin");
    let mut cuts: Vec<Vec<u8>> = (1..go.len()).step_by(7).map(|n| go[..n].to_vec()).collect();
    cuts.push(alloc::vec![0xff, 1, 2, 3]);
    cuts.push(alloc::vec![crate::wire::memberlist::message::MessageType::Encrypt as u8, 0, 0, 0, 4, 1, 2, 3, 4]);
    for bytes in cuts {
        let mut n0 = ml_node("n0", 1);
        let before = n0.state_digest();
        let id = StreamId::Inbound(1);
        let mut out = Vec::new();
        n0.handle(at(1), Input::StreamAccepted { id, from: addr(9) }, &mut out).unwrap();
        n0.handle(at(2), Input::StreamFrame { id, frame: &bytes }, &mut out).unwrap();
        assert_eq!(n0.stats().rejected_total(), 1, "{bytes:?}");
        assert!(closed(&out, id));
        assert!(frames(&out).is_empty());
        assert_eq!(n0.state_digest(), before);
    }
}

#[test]
fn an_error_reply_ends_our_sync() {
    let mut n4 = ml_node("n4", 4);
    let mut out = Vec::new();
    n4.handle(at(0), Input::Join { seeds: &[addr(1)] }, &mut out).unwrap();
    let id = out.iter().find_map(|a| if let Action::OpenStream { id, .. } = a { Some(*id) } else { None }).unwrap();
    let mut out = Vec::new();
    n4.handle(at(5), Input::StreamFrame { id, frame: &recording("plain/036-stream-resp-n0-n98.bin") }, &mut out)
        .unwrap();
    assert!(closed(&out, id));
    assert_eq!(n4.members().count(), 1);
}

#[test]
fn a_cluster_speaking_memberlists_format_joins_over_push_pulls() {
    let config = Config::lan().with_memberlist_wire(true);
    let mesh = super::incarnations::mesh_of(&config, &["a", "b", "c", "d"], 10_000);
    assert!(super::incarnations::all_alive(&mesh));
    // Every frame that crossed was a memberlist stream message.
    let mut push_pulls = 0;
    for (_, a) in &mesh.actions {
        if let Action::SendFrame { frame, .. } = a {
            let m = StreamMessage::decode(frame, &Limits::STREAM).expect("a memberlist stream message");
            push_pulls += usize::from(matches!(m, StreamMessage::PushPull { .. }));
        }
    }
    assert!(push_pulls >= 6, "{push_pulls} push-pulls: three joins, each answered");
}

#[cfg(feature = "encryption")]
mod sealed {
    use super::*;
    use crate::wire::keyring::Key;
    use crate::wire::memberlist::encrypt::{Cipher, open_stream};

    fn key_of(path: &str) -> Key {
        let manifest = String::from_utf8(recording("manifest.txt")).unwrap();
        let line = manifest.lines().find(|l| l.contains(path)).unwrap();
        let hex = line.split_whitespace().find_map(|f| f.strip_prefix("key=")).unwrap();
        let bytes: Vec<u8> =
            (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
        Key::from_slice(&bytes).expect("a 32-byte key")
    }

    #[test]
    fn a_sealed_join_is_merged_and_answered_sealed_and_refused_without_the_key() {
        let path = "aes1/071-stream-req-n3-n0.bin";
        let key = key_of(path);
        let mut n0 = ml_node("n0", 1);
        n0.install_key(key).unwrap();
        let out = accept(&mut n0, path);
        assert_eq!(n0.stats().rejected_total(), 0);
        let answers = frames(&out);
        assert_eq!(answers.len(), 1);
        let cipher = [Cipher::new(key.as_bytes()).unwrap()];
        let (plain, used) = open_stream(&cipher, &answers[0].1, 1 << 20).expect("sealed with our key");
        assert_eq!(used, answers[0].1.len());
        let (_, nodes, _) = push_pull(&plain);
        assert!(nodes.contains(&("n0".to_string(), NodeStateType::ALIVE)));

        let mut other = ml_node("n0", 1);
        other.install_key(Key::new([9; 32])).unwrap();
        let before = other.state_digest();
        let out = accept(&mut other, path);
        assert_eq!(other.stats().rejected(crate::DecodeError::Unauthenticated), 1);
        assert!(frames(&out).is_empty());
        assert_eq!(other.state_digest(), before);

        // Keyed and refusing plaintext: a plain join is refused too.
        let mut keyed = ml_node("n0", 1);
        keyed.install_key(key).unwrap();
        let out = accept(&mut keyed, "plain/001-stream-req-n3-n0.bin");
        assert_eq!(keyed.stats().rejected(crate::DecodeError::Plaintext), 1);
        assert!(frames(&out).is_empty());
    }
}

#[test]
fn a_cluster_speaking_serfs_dialect_joins_and_delivers_an_event_once_everywhere() {
    let config = Config::lan().with_serf_wire(true);
    let mut mesh = super::incarnations::mesh_of(&config, &["a", "b", "c", "d"], 10_000);
    assert!(super::incarnations::all_alive(&mesh));
    mesh.input(2, 10_001, Input::UserEvent { name: "deploy", payload: b"v1", coalesce: false }).unwrap();
    mesh.run(10_002, 20_000);
    for i in 0..4 {
        let got: Vec<&Event> = mesh
            .events
            .iter()
            .filter(|(j, e)| *j == i && matches!(e, Event::User { name, .. } if name == "deploy"))
            .map(|(_, e)| e)
            .collect();
        assert_eq!(got.len(), 1, "member {i}: {got:?}");
        // serf names no sender: the event's name stands for it, at the
        // origin as everywhere else.
        assert!(matches!(got[0], Event::User { from, .. } if from.as_str() == "deploy"), "{got:?}");
    }
}

#[test]
fn a_user_message_on_a_stream_we_opened_fails_it_and_is_not_delivered() {
    let mut n4 = ml_node("n4", 4);
    let mut out = Vec::new();
    n4.handle(at(0), Input::Join { seeds: &[addr(1)] }, &mut out).unwrap();
    let id = out.iter().find_map(|a| if let Action::OpenStream { id, .. } = a { Some(*id) } else { None }).unwrap();
    let mut out = Vec::new();
    n4.handle(at(5), Input::StreamFrame { id, frame: &recording("plain/009-stream-req-n1-n3.bin") }, &mut out).unwrap();
    assert!(closed(&out, id));
    assert!(!events(&out).iter().any(|e| matches!(e, Event::Message { .. })), "{:?}", events(&out));
    assert_eq!(n4.stats().streams_failed, 1);
}

#[test]
fn a_message_for_one_member_is_refused_in_serfs_dialect_and_nothing_is_sent() {
    let config = Config::lan().with_serf_wire(true);
    let mut mesh = super::incarnations::mesh_of(&config, &["a", "b"], 5_000);
    for reliable in [false, true] {
        let mut out = Vec::new();
        let r = mesh.nodes[0].handle(at(5_001), Input::Message { to: "b", payload: b"hi", reliable }, &mut out);
        assert_eq!(r, Err(Error::Unsupported));
        assert!(out.iter().all(|a| !matches!(a, Action::Send { .. } | Action::OpenStream { .. })), "{out:?}");
    }
}

/// serf's push-pull state: a serf agent's recent events repair a member
/// that missed them, its clocks are witnessed, and our answer carries our
/// clocks and recent events as serf's state.
#[test]
fn serfs_push_pull_state_repairs_events_and_ours_carries_our_clocks_and_events() {
    use crate::wire::memberlist::message::Body;
    use crate::wire::memberlist::serf_state::{PushPullState, StateEvent};
    use crate::wire::memberlist::stream::{PushNodeState, PushPullHeader};
    let id = crate::Identity::new(MemberName::new("n0").unwrap(), addr(1));
    let mut n0 = Swim::new(Config::lan().with_serf_wire(true), id, Rng64::seed_from_u64(1)).unwrap();
    let state = PushPullState {
        ltime: 5,
        event_ltime: 9,
        query_ltime: 3,
        events: alloc::vec![StateEvent { ltime: 7, name: "deploy", payload: b"v1" }],
    };
    let mut user_state = Vec::new();
    state.encode(&mut user_state).unwrap();
    let vsn = crate::wire::memberlist::serf::VERSIONS.to_vsn();
    let ip = [10, 0, 0, 1];
    let s1 = PushNodeState {
        name: "s1",
        addr: Some(&ip),
        port: addr(9).port(),
        meta: None,
        incarnation: 1,
        state: NodeStateType::ALIVE,
        vsn: Some(&vsn),
    };
    let mut frame = Vec::new();
    let header = PushPullHeader { nodes: 1, user_state_len: u32::try_from(user_state.len()).unwrap(), join: false };
    header.encode(&mut frame).unwrap();
    s1.write(&mut frame).unwrap();
    frame.extend_from_slice(&user_state);

    let mut out = Vec::new();
    let sid = StreamId::Inbound(1);
    n0.handle(at(1), Input::StreamAccepted { id: sid, from: addr(9) }, &mut out).unwrap();
    n0.handle(at(2), Input::StreamFrame { id: sid, frame: &frame }, &mut out).unwrap();
    let delivered: Vec<_> = events(&out)
        .into_iter()
        .filter_map(|e| match e {
            Event::User { ltime, name, payload, .. } => Some((ltime, name, payload)),
            _ => None,
        })
        .collect();
    assert_eq!(delivered, [(7, "deploy".into(), b"v1".to_vec())], "{out:?}");
    // Our answer: serf's state, with clocks past the sender's and the
    // event it repaired.
    let (_, reply) = frames(&out).into_iter().find(|(i, _)| *i == sid).expect("an answer");
    let StreamMessage::PushPull { user_state, .. } = StreamMessage::decode(&reply, &Limits::STREAM).unwrap() else {
        panic!("not a push-pull")
    };
    let ours = PushPullState::decode(user_state).unwrap();
    assert!(ours.event_ltime >= 9 && ours.query_ltime >= 3, "{ours:?}");
    assert!(ours.ltime >= 5, "past serf's member clock: {ours:?}");
    assert_eq!(ours.events, [StateEvent { ltime: 7, name: "deploy", payload: b"v1" }]);
    assert_eq!(n0.stats().rejected_total(), 0);
    // s1 is admitted once the ping that checks it is acked.
    for (to, packet) in sent(&out) {
        let unpacked = crate::wire::memberlist::packet::Unpacked::parse(&packet, &Limits::PACKET).unwrap();
        for m in unpacked.messages() {
            if let Ok(crate::wire::memberlist::message::Message::Ping(p)) = m {
                let ack = crate::wire::memberlist::message::Message::Ack(crate::wire::memberlist::probe::Ack {
                    seq_no: p.seq_no,
                    payload: None,
                });
                let mut bytes = Vec::new();
                ack.encode(&mut bytes).unwrap();
                n0.handle_packet(at(3), to, &bytes).unwrap();
            }
        }
    }
    assert_eq!(n0.member("s1").map(|m| m.state), Some(crate::MemberState::Alive));
    // Our leave intent goes past serf's member clock (serf takes only an
    // intent newer than the member's status time).
    let mut out = Vec::new();
    n0.handle(at(4), Input::Leave, &mut out).unwrap();
    out.extend(super::run(&mut n0, 5, 2_000));
    let mut intents = Vec::new();
    for (_, packet) in sent(&out) {
        let unpacked = crate::wire::memberlist::packet::Unpacked::parse(&packet, &Limits::PACKET).unwrap();
        for m in unpacked.messages() {
            if let Ok(crate::wire::memberlist::message::Message::User(body)) = m
                && let Ok(crate::wire::memberlist::serf::SerfMessage::Leave(l)) =
                    crate::wire::memberlist::serf::SerfMessage::decode(body)
            {
                intents.push((l.node.to_string(), l.ltime));
            }
        }
    }
    assert!(!intents.is_empty(), "a leave intent is sent");
    assert!(intents.iter().all(|(n, t)| n == "n0" && *t >= 5), "{intents:?}");
}
