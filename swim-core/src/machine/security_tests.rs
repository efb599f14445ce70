//! Hostile input through the one door: every class of bad packet is
//! rejected with its reason, counted, and leaves the state digest as it
//! was; answers to strangers are never larger than what they sent.

use alloc::vec::Vec;
use core::net::SocketAddr;

use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus as Rng64;

use super::tests::{answer_checks, rejected_as, rejected_with};
use crate::wire::keyring::{Key, KeyringOp};
use crate::wire::seal::{Channel, Envelope};
use crate::wire::{DecodeError, Label, MAX_DATAGRAM, MAX_FRAME, Message, PacketWriter};
use crate::{Action, Config, Error, Identity, Input, Instant, MemberName, StreamId, Swim};

fn addr(i: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], 7000 + i))
}

const KEY: Key = Key::new([7; 32]);
const OTHER_KEY: Key = Key::new([8; 32]);

fn label() -> Label {
    Label::new("prod").unwrap()
}

/// Node "a" in cluster "prod" sealed with `KEY`, knowing "b" and "c".
fn node() -> Swim<Rng64> {
    let config = Config::lan().with_label(label());
    let id = Identity::new(MemberName::new("a").unwrap(), addr(1));
    let mut a = Swim::new(config, id, Rng64::seed_from_u64(1)).unwrap();
    a.install_key(KEY).unwrap();
    for (name, i) in [("b", 2), ("c", 3)] {
        let p = sealed(&[Message::Alive { incarnation: 1, name, addr: addr(i), meta: b"" }]);
        let mut out = a.handle_packet(at(0), addr(i), &p).unwrap();
        answer_checks(&mut a, at(0), &mut out, &mut envelope(label(), Some(KEY)));
    }
    assert_eq!(a.num_live(), 3);
    a
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// The envelope of "b", the sender of most test packets.
fn envelope(label: Label, key: Option<Key>) -> Envelope {
    envelope_of("b", label, key)
}

fn envelope_of(sender: &str, label: Label, key: Option<Key>) -> Envelope {
    let mut e = Envelope::new(label, &MemberName::new(sender).unwrap(), [0x5e; 12]);
    if let Some(k) = key {
        e.apply(KeyringOp::Install(k)).unwrap();
    }
    e
}

fn close(mut e: Envelope, budget: usize, msgs: &[Message<'_>]) -> Vec<u8> {
    let mut w = PacketWriter::with_layout(budget, Vec::new(), e.layout());
    for m in msgs {
        w.push(m).unwrap();
    }
    e.close(w, Channel::Datagram)
}

fn sealed(msgs: &[Message<'_>]) -> Vec<u8> {
    close(envelope(label(), Some(KEY)), 1400, msgs)
}

/// A packet that changes the state when accepted: a new member, and a
/// suspicion of a known one.
fn news() -> [Message<'static>; 2] {
    [
        Message::Alive { incarnation: 1, name: "ghost", addr: addr(9), meta: b"m" },
        Message::Suspect { incarnation: 1, name: "b", from: "c" },
    ]
}

/// Feeds `bytes` as a datagram from "b" and as a frame on a fresh inbound
/// stream; both must be rejected for `want`, counted, and change nothing.
fn assert_rejected(bytes: &[u8], want: DecodeError) {
    assert_rejected_as(bytes, bytes, want);
}

/// [`assert_rejected`] with a datagram and a frame of their own (a seal
/// binds its channel).
fn assert_rejected_as(bytes: &[u8], frame: &[u8], want: DecodeError) {
    let mut a = node();
    let before = a.state_digest();
    let rejected = a.stats().rejected(want);
    let r = rejected_as(&mut a, at(10), addr(2), bytes);
    assert_eq!(r, Some(want), "datagram of {} bytes", bytes.len());
    assert_eq!(a.state_digest(), before, "a rejected datagram ({want:?}) changed the state");
    assert_eq!(a.stats().rejected(want), rejected + 1);

    let mut out = Vec::new();
    let id = StreamId::Inbound(1);
    a.handle(at(11), Input::StreamAccepted { id, from: addr(2) }, &mut out).unwrap();
    let before = a.state_digest();
    out.clear();
    let r = rejected_with(&mut a, at(12), Input::StreamFrame { id, frame }, &mut out);
    if frame.len() <= MAX_DATAGRAM {
        assert_eq!(r, Some(want), "frame of {} bytes", frame.len());
    }
    assert!(out.iter().any(|x| matches!(x, Action::CloseStream { id: i } if *i == id)), "the stream is closed");
    // The stream's own slot is freed; nothing else moves.
    let _ = before;
    assert_eq!(a.open_streams(), 0);
    let mut b = node();
    let mut out = Vec::new();
    b.handle(at(11), Input::StreamAccepted { id, from: addr(2) }, &mut out).unwrap();
    b.handle(at(12), Input::StreamClosed { id, end: crate::StreamEnd::Failed }, &mut out).unwrap();
    assert_eq!(a.state_digest(), b.state_digest(), "a rejected frame changed more than its stream");
}

#[test]
fn the_control_packet_is_accepted_and_changes_the_state() {
    let mut a = node();
    let before = a.state_digest();
    a.handle_packet(at(10), addr(2), &sealed(&news())).unwrap();
    assert_ne!(a.state_digest(), before);
}

#[test]
fn malformed_input_is_rejected_without_side_effects() {
    let mut e = envelope(label(), Some(KEY));
    // A valid envelope around bytes that are no message.
    let mut both = |bytes: &[u8]| {
        [Channel::Datagram, Channel::Frame].map(|channel| {
            let mut w = PacketWriter::with_layout(1400, Vec::new(), e.layout());
            w.push_encoded(bytes).unwrap();
            e.close(w, channel)
        })
    };
    let [d, f] = both(&[4, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert_rejected_as(&d, &f, DecodeError::Malformed);
    let [d, f] = both(&[99]);
    assert_rejected_as(&d, &f, DecodeError::UnknownKind);
    assert_rejected(&[crate::wire::VERSION, 0x40, 1, 2], DecodeError::Malformed);
}

#[test]
fn truncated_input_is_rejected_without_side_effects() {
    let p = sealed(&news());
    for cut in [2, 10, p.len() / 2, p.len() - 1] {
        let want = if cut < 2 + 5 + 12 + 16 { DecodeError::Truncated } else { DecodeError::Unauthenticated };
        assert_rejected(&p[..cut], want);
    }
    assert_rejected(&[], DecodeError::Empty);
}

#[test]
fn oversized_input_is_rejected_without_side_effects() {
    let e = envelope(label(), Some(KEY));
    let name_of = |i: usize| alloc::format!("member-{i:05}");
    let names: Vec<_> = (0..100).map(name_of).collect();
    let msgs: Vec<_> =
        names.iter().map(|n| Message::Alive { incarnation: 1, name: n, addr: addr(5), meta: b"" }).collect();
    let big = close(e, MAX_FRAME, &msgs);
    assert!(big.len() > MAX_DATAGRAM);
    let mut a = node();
    let before = a.state_digest();
    assert_eq!(rejected_as(&mut a, at(10), addr(2), &big), Some(DecodeError::Oversized));
    assert_eq!(a.state_digest(), before);
    let huge = alloc::vec![crate::wire::VERSION; MAX_FRAME + 1];
    assert_rejected(&huge, DecodeError::Oversized);
}

#[test]
fn a_bit_flipped_anywhere_is_rejected_without_side_effects() {
    let p = sealed(&news());
    for bit in 0..p.len() * 8 {
        let mut q = p.clone();
        q[bit / 8] ^= 1 << (bit % 8);
        let mut a = node();
        let before = a.state_digest();
        assert!(rejected_as(&mut a, at(10), addr(2), &q).is_some(), "bit {bit}");
        assert_eq!(a.state_digest(), before, "bit {bit}");
    }
    // Without encryption the checksum catches it: no phantom member from a
    // flipped bit in a name.
    let plain = close(envelope(label(), None), 1400, &news());
    for bit in 0..plain.len() * 8 {
        let mut q = plain.clone();
        q[bit / 8] ^= 1 << (bit % 8);
        let config = Config::lan().with_label(label());
        let mut a =
            Swim::new(config, Identity::new(MemberName::new("a").unwrap(), addr(1)), Rng64::seed_from_u64(1)).unwrap();
        let before = a.state_digest();
        assert!(rejected_as(&mut a, at(10), addr(2), &q).is_some(), "plain bit {bit}");
        assert_eq!(a.state_digest(), before, "plain bit {bit}");
        assert_eq!(a.members().count(), 1);
    }
}

#[test]
fn wrong_key_input_is_rejected_without_side_effects() {
    assert_rejected(&close(envelope(label(), Some(OTHER_KEY)), 1400, &news()), DecodeError::Unauthenticated);
}

#[test]
fn wrong_label_input_is_rejected_without_side_effects() {
    let other = Label::new("staging").unwrap();
    assert_rejected(&close(envelope(other, Some(KEY)), 1400, &news()), DecodeError::Label);
    assert_rejected(&close(envelope(Label::EMPTY, Some(KEY)), 1400, &news()), DecodeError::Label);
}

#[test]
fn input_replayed_from_another_cluster_is_rejected_without_side_effects() {
    // Traffic captured in a cluster with the same key but another label
    // (the label is authenticated: relabelling it breaks the tag).
    let captured = close(envelope(Label::new("prue").unwrap(), Some(KEY)), 1400, &news());
    assert_rejected(&captured, DecodeError::Label);
    let mut relabelled = captured.clone();
    relabelled[3..7].copy_from_slice(b"prod");
    assert_rejected(&relabelled, DecodeError::Unauthenticated);
}

#[test]
fn plaintext_input_is_rejected_when_encryption_is_on_without_side_effects() {
    assert_rejected(&close(envelope(label(), None), 1400, &news()), DecodeError::Plaintext);
}

#[test]
fn a_node_without_the_key_understands_nothing_and_is_understood_by_nobody() {
    let mut a = node();
    let config = Config::lan().with_label(label());
    let mut outsider =
        Swim::new(config, Identity::new(MemberName::new("x").unwrap(), addr(8)), Rng64::seed_from_u64(8)).unwrap();
    let out = a.handle_timeout(at(2000));
    for act in &out {
        if let Action::Send { packet, .. } = act {
            assert_eq!(rejected_as(&mut outsider, at(2000), addr(1), packet), Some(DecodeError::Sealed));
        }
    }
    let p = close(envelope(label(), None), 1400, &news());
    assert_eq!(rejected_as(&mut a, at(2001), addr(8), &p), Some(DecodeError::Plaintext));
    assert_eq!(outsider.members().count(), 1);
}

#[test]
fn migration_accepts_plaintext_until_told_to_refuse_it() {
    let mut a = node();
    a.keyring(KeyringOp::Mode { seal_outgoing: false, accept_plaintext: true }).unwrap();
    assert!(!a.sealing());
    let plain = close(envelope(label(), None), 1400, &news());
    a.handle_packet(at(10), addr(2), &plain).unwrap();
    a.handle_packet(at(11), addr(2), &sealed(&[Message::Ping { seq: 1, target: "a" }])).unwrap();
    a.keyring(KeyringOp::Mode { seal_outgoing: true, accept_plaintext: false }).unwrap();
    assert!(a.sealing());
    assert_eq!(rejected_as(&mut a, at(12), addr(2), &plain), Some(DecodeError::Plaintext));
}

#[test]
fn the_primary_key_cannot_be_removed_and_rotation_keeps_traffic_flowing() {
    let mut a = node();
    assert_eq!(a.remove_key(KEY), Err(Error::Keyring(crate::KeyringError::Primary)));
    assert_eq!(a.use_key(OTHER_KEY), Err(Error::Keyring(crate::KeyringError::UnknownKey)));
    a.install_key(OTHER_KEY).unwrap();
    // Either key opens while both are installed.
    a.handle_packet(at(10), addr(2), &close(envelope(label(), Some(OTHER_KEY)), 1400, &news())).unwrap();
    a.handle_packet(at(11), addr(2), &sealed(&[Message::Ping { seq: 1, target: "a" }])).unwrap();
    a.use_key(OTHER_KEY).unwrap();
    a.remove_key(KEY).unwrap();
    assert_eq!(a.keys(), [OTHER_KEY]);
    let p = sealed(&[Message::Ping { seq: 2, target: "a" }]);
    assert_eq!(rejected_as(&mut a, at(12), addr(2), &p), Some(DecodeError::Unauthenticated));
}

/// The amplification bound: whatever a stranger sends (with a forged
/// source address), the bytes the node sends because of it, to anyone,
/// are no more than the bytes it received.
#[test]
fn strangers_with_forged_sources_never_draw_more_bytes_than_they_send() {
    let mut a = {
        let id = Identity::new(MemberName::new("a").unwrap(), addr(1));
        Swim::new(Config::lan(), id, Rng64::seed_from_u64(1)).unwrap()
    };
    // A cluster with a long queue of news to piggyback, and long metadata
    // on our own alive (what a refutation would carry).
    let names: Vec<_> = (0..40).map(|i| alloc::format!("member-with-a-long-name-{i:03}")).collect();
    for (i, n) in names.iter().enumerate() {
        let p = close(
            envelope(Label::EMPTY, None),
            1400,
            &[Message::Alive { incarnation: 1, name: n, addr: addr(100 + i as u16), meta: &[1; 64] }],
        );
        let mut out = a.handle_packet(at(0), addr(100 + i as u16), &p).unwrap();
        answer_checks(&mut a, at(0), &mut out, &mut envelope(Label::EMPTY, None));
    }
    a.handle(at(0), Input::SetMeta { meta: &[0xaa; 400] }, &mut Vec::new()).unwrap();
    let victim = SocketAddr::from(([192, 0, 2, 1], 53));
    let target = names[0].as_str();
    let probes: Vec<Vec<Message<'_>>> = alloc::vec![
        alloc::vec![Message::Ping { seq: 1, target: "a" }],
        alloc::vec![Message::Ping { seq: 2, target: "a" }, Message::Suspect { incarnation: 0, name: "a", from: "zz" }],
        alloc::vec![Message::PingReq { seq: 3, target, addr: addr(100) }],
        alloc::vec![Message::PingReq { seq: 4, target: "a", addr: addr(1) }],
        alloc::vec![Message::PingReq { seq: 5, target, addr: victim }],
        alloc::vec![Message::Query { name: "a" }],
        alloc::vec![Message::Query { name: target }],
        alloc::vec![Message::SyncRequest { join: true }],
        alloc::vec![Message::Direct { from: "zz", payload: b"hi" }],
        alloc::vec![Message::User { ltime: 1, from: "zz", payload: b"hi" }],
    ];
    let (mut received, mut sent) = (0usize, 0usize);
    let mut t = 1;
    for round in 0..50u16 {
        for msgs in &probes {
            let p = close(envelope(Label::EMPTY, None), 1400, msgs);
            let from = SocketAddr::from(([198, 51, 100, (round % 250) as u8], 4000 + round));
            received += p.len();
            let mut out = Vec::new();
            let _ = a.handle(at(t), Input::Packet { from, bytes: &p }, &mut out);
            // Answers that come later (a relay's nack) are counted too: wake
            // the node within the same protocol period.
            let _ = a.handle(at(t + 1), Input::Timeout, &mut out);
            t += 2;
            for act in out {
                if let Action::Send { to, packet } = act {
                    // Probes of our own members follow the protocol's clock,
                    // not the stranger: count only what went elsewhere or
                    // was an answer.
                    if !names.iter().enumerate().any(|(i, _)| to == addr(100 + i as u16)) {
                        sent += packet.len();
                    }
                }
            }
        }
    }
    std::println!("strangers sent {received} bytes and drew {sent}");
    assert!(sent <= received, "sent {sent} bytes for {received} received from strangers");
    assert!(a.stats().strangers_refused >= 150);
    assert_eq!(a.stats().relays, 0, "no probe on a stranger's behalf");
}

/// Every message kind that draws an answer or other work, many to a
/// datagram, from a stranger and from a forged member address, with and
/// without a long label, a key and long metadata: no datagram makes the
/// node send more bytes, to anyone, than the datagram held, and one
/// request in a datagram is answered.
#[test]
fn no_datagram_draws_more_bytes_than_it_holds() {
    // The longest label the default budget takes beside a sealed envelope.
    let long = "l".repeat(64);
    let names: Vec<_> = (0..40).map(|i| alloc::format!("member-with-a-long-name-{i:03}")).collect();
    let fresh: Vec<_> = (0..128).map(|i| alloc::format!("n{i}")).collect();
    let victim = SocketAddr::from(([192, 0, 2, 1], 53));
    let mut worst = 0.0f64;
    for (labelled, keyed, meta_len) in
        [(false, false, 0), (true, false, 0), (false, false, 512), (true, true, 512), (false, true, 0)]
    {
        let lab = if labelled { Label::new(&long).unwrap() } else { Label::EMPTY };
        // The member at addr(101) sends what comes from its address, so a
        // sealed datagram from there names it.
        let mut e = envelope_of(&names[1], lab.clone(), keyed.then_some(KEY));
        let config = Config::lan().with_label(lab);
        let id = Identity::new(MemberName::new("a").unwrap(), addr(1));
        let mut a = Swim::new(config, id, Rng64::seed_from_u64(1)).unwrap();
        if keyed {
            a.install_key(KEY).unwrap();
        }
        let meta = alloc::vec![7u8; meta_len];
        for (i, n) in names.iter().enumerate() {
            let at_ = addr(100 + i as u16);
            let mut w = PacketWriter::with_layout(1400, Vec::new(), e.layout());
            w.push(&Message::Alive { incarnation: 1, name: n, addr: at_, meta: &meta }).unwrap();
            let p = e.close(w, Channel::Datagram);
            let mut out = a.handle_packet(at(0), at_, &p).unwrap();
            answer_checks(&mut a, at(0), &mut out, &mut e);
        }
        assert_eq!(a.num_live(), 41);
        // Our own alive with long metadata is queued as news, like the
        // members' alives: every answer could piggyback them.
        a.handle(at(0), Input::SetMeta { meta: &meta }, &mut Vec::new()).unwrap();
        let target = names[0].as_str();
        let many = |m: Message<'static>| alloc::vec![m; 128];
        let kinds: Vec<Vec<Message<'_>>> = alloc::vec![
            (0..128).map(|seq| Message::Ping { seq, target: "a" }).collect(),
            alloc::vec![
                Message::Ping { seq: 1, target: "a" },
                Message::Suspect { incarnation: 0, name: "a", from: "zz" }
            ],
            (0..128).map(|seq| Message::PingReq { seq, target, addr: addr(100) }).collect(),
            (0..128).map(|seq| Message::PingReq { seq, target: "a", addr: addr(1) }).collect(),
            (0..128).map(|seq| Message::PingReq { seq, target, addr: victim }).collect(),
            names.iter().map(|n| Message::Query { name: n }).collect(),
            many(Message::Query { name: "a" }),
            names.iter().map(|n| Message::Dead { incarnation: 1, name: n, from: "zz" }).collect(),
            fresh.iter().map(|n| Message::Alive { incarnation: 0, name: n, addr: victim, meta: b"" }).collect(),
            fresh
                .iter()
                .enumerate()
                .map(|(i, n)| Message::Alive {
                    incarnation: 0,
                    name: n,
                    addr: SocketAddr::from(([192, 0, 2, i as u8], 53)),
                    meta: b"",
                })
                .collect(),
            names.iter().map(|n| Message::Alive { incarnation: 9, name: n, addr: victim, meta: b"" }).collect(),
            many(Message::SyncRequest { join: true }),
            many(Message::Direct { from: "zz", payload: b"hi" }),
        ];
        let sources = [SocketAddr::from(([198, 51, 100, 7], 4000)), addr(101)];
        let mut t = 10;
        for msgs in &kinds {
            for from in sources {
                // As many of the messages as fit one datagram.
                let mut w = PacketWriter::with_layout(crate::wire::MAX_DATAGRAM, Vec::new(), e.layout());
                for m in msgs {
                    if w.push(m).is_err() {
                        break;
                    }
                }
                let p = e.close(w, Channel::Datagram);
                let mut out = Vec::new();
                let _ = a.handle(at(t), Input::Packet { from, bytes: &p }, &mut out);
                t += 1;
                let drawn: usize =
                    out.iter().map(|x| if let Action::Send { packet, .. } = x { packet.len() } else { 0 }).sum();
                let answers = out.iter().filter(|x| matches!(x, Action::Send { to, .. } if *to == from)).count();
                assert!(
                    drawn <= p.len(),
                    "{} bytes drew {drawn} (label {labelled}, key {keyed}, meta {meta_len}, from {from}): {:?}",
                    p.len(),
                    msgs.first()
                );
                assert!(answers <= 1, "{answers} answers to one datagram: {:?}", msgs.first());
                worst = worst.max(drawn as f64 / p.len() as f64);
            }
        }
        assert!(a.stats().surplus_requests > 0);
    }
    std::println!("the most a datagram drew: {worst:.2} of its own bytes");
}

/// Everything `a` does over `ms`, given `ping` from "b" every 10 ms
/// (nothing else answers).
fn run_alone(a: &mut Swim<Rng64>, ms: u64, ping: &[u8]) -> Vec<Action> {
    let mut all = Vec::new();
    for t in (1..ms).step_by(10) {
        if a.deadline().is_some_and(|d| d <= at(t)) {
            all.extend(a.handle_timeout(at(t)));
        }
        all.extend(a.handle_packet(at(t), addr(2), ping).unwrap());
    }
    all
}

/// The nonce of a sealed datagram of cluster "prod".
fn nonce(packet: &[u8]) -> [u8; 12] {
    let head = 2 + 1 + label().as_bytes().len();
    packet[head..head + 12].try_into().unwrap()
}

fn nonces(actions: &[Action]) -> Vec<[u8; 12]> {
    actions
        .iter()
        .filter_map(|x| if let Action::Send { packet, .. } = x { Some(nonce(packet)) } else { None })
        .collect()
}

/// Two members built with one seed (a copied configuration, a simulator
/// rerun) under one key share no nonce once each has its own prefix, and
/// neither repeats one of its own.
#[test]
fn members_with_one_seed_and_their_own_prefixes_never_share_a_nonce() {
    let (mut a, mut b) = (node(), node());
    a.set_nonce_prefix([1; 12]);
    b.set_nonce_prefix([2; 12]);
    let ping = sealed(&[Message::Ping { seq: 1, target: "a" }]);
    let (na, nb) = (nonces(&run_alone(&mut a, 120_000, &ping)), nonces(&run_alone(&mut b, 120_000, &ping)));
    assert!(na.len() > 1000, "{} packets", na.len());
    let mut all = std::collections::BTreeSet::new();
    for n in na.iter().chain(&nb) {
        assert!(all.insert(*n), "nonce {n:02x?} used twice");
    }
}

/// Sealing draws nothing from the generator that orders probes: a sealed
/// member and a plain one built with one seed, given the same members,
/// probe and gossip the same members at the same times.
#[test]
fn sealing_does_not_move_the_probe_generator() {
    let sealed_packet = sealed;
    let mut sealed = node();
    let mut plain = {
        let config = Config::lan().with_label(label());
        let mut p =
            Swim::new(config, Identity::new(MemberName::new("a").unwrap(), addr(1)), Rng64::seed_from_u64(1)).unwrap();
        for (name, i) in [("b", 2), ("c", 3)] {
            let alive = [Message::Alive { incarnation: 1, name, addr: addr(i), meta: b"" }];
            let mut out = p.handle_packet(at(0), addr(i), &close(envelope(label(), None), 1400, &alive)).unwrap();
            answer_checks(&mut p, at(0), &mut out, &mut envelope(label(), None));
        }
        p
    };
    let shape = |actions: Vec<Action>| -> Vec<(SocketAddr, Option<Instant>)> {
        actions
            .into_iter()
            .filter_map(|x| match x {
                Action::Send { to, .. } => Some((to, None)),
                Action::SetTimer(t) => Some((addr(0), Some(t))),
                _ => None,
            })
            .collect()
    };
    let ping = [Message::Ping { seq: 1, target: "a" }];
    let s = shape(run_alone(&mut sealed, 60_000, &sealed_packet(&ping)));
    let p = shape(run_alone(&mut plain, 60_000, &close(envelope(label(), None), 1400, &ping)));
    assert!(s.len() > 50, "{} actions", s.len());
    assert_eq!(s, p);
}

/// `packet` (sealed under `KEY` in cluster "prod") opened: its sender and
/// how many messages it holds.
fn open_sent(packet: &[u8], channel: Channel) -> (Option<alloc::string::String>, usize) {
    let (e, mut scratch, mut msgs) = (envelope(label(), Some(KEY)), Vec::new(), crate::wire::Messages::new());
    let sender = e.decode(packet, MAX_FRAME, channel, &mut scratch, &mut msgs).unwrap();
    (sender.map(alloc::string::String::from), msgs.len())
}

/// A sealed datagram replayed as a stream frame does not open, nor a
/// frame as a datagram: a captured ping is not answered on a stream, a
/// captured reliable message is not delivered again by datagram.
#[test]
fn a_seal_opens_only_on_the_channel_it_was_made_for() {
    // "b" knows "a": its reliable message to "a" is one sealed frame.
    let mut b = {
        let config = Config::lan().with_label(label());
        let id = Identity::new(MemberName::new("b").unwrap(), addr(2));
        let mut b = Swim::new(config, id, Rng64::seed_from_u64(2)).unwrap();
        b.install_key(KEY).unwrap();
        let alive = [Message::Alive { incarnation: 1, name: "a", addr: addr(1), meta: b"" }];
        let mut out =
            b.handle_packet(at(0), addr(1), &close(envelope_of("a", label(), Some(KEY)), 1400, &alive)).unwrap();
        answer_checks(&mut b, at(0), &mut out, &mut envelope_of("a", label(), Some(KEY)));
        b
    };
    let mut out = Vec::new();
    b.handle(at(1), Input::Message { to: "a", payload: b"once", reliable: true }, &mut out).unwrap();
    let Some(frame) = out.iter().find_map(|x| if let Action::SendFrame { frame, .. } = x { Some(frame) } else { None })
    else {
        panic!("no frame: {out:?}")
    };
    assert_eq!(open_sent(frame, Channel::Frame), (Some("b".into()), 1));

    let mut a = node();
    let before = a.state_digest();
    let r = rejected_as(&mut a, at(10), addr(2), frame);
    assert_eq!(r, Some(DecodeError::Unauthenticated), "a frame replayed as a datagram");
    assert_eq!(a.state_digest(), before);

    // A ping sealed as a datagram, replayed on a stream.
    let ping = sealed(&[Message::Ping { seq: 9, target: "a" }]);
    let id = StreamId::Inbound(1);
    let mut out = Vec::new();
    a.handle(at(11), Input::StreamAccepted { id, from: addr(2) }, &mut out).unwrap();
    out.clear();
    let r = rejected_with(&mut a, at(12), Input::StreamFrame { id, frame: &ping }, &mut out);
    assert_eq!(r, Some(DecodeError::Unauthenticated), "a datagram replayed as a frame");
    assert!(!out.iter().any(|x| matches!(x, Action::SendFrame { .. })), "answered: {out:?}");
    assert!(out.iter().any(|x| matches!(x, Action::CloseStream { id: i } if *i == id)));
    assert_eq!(a.stats().rejected(DecodeError::Unauthenticated), 2);
}

/// One stream speaks for one member: a sealed frame naming another sender
/// than the stream's first sealed frame is rejected, counted, and closes
/// the stream.
#[test]
fn a_sealed_frame_from_another_sender_than_the_streams_first_is_rejected() {
    let frame = |sender: &str, name: &'static str, i: u16| {
        let msgs =
            [Message::SyncRequest { join: false }, Message::Alive { incarnation: 1, name, addr: addr(i), meta: b"" }];
        let mut e = envelope_of(sender, label(), Some(KEY));
        let mut w = PacketWriter::with_layout(MAX_FRAME, Vec::new(), e.layout());
        for m in &msgs {
            w.push(m).unwrap();
        }
        e.close(w, Channel::Frame)
    };
    let id = StreamId::Inbound(1);
    let mut a = node();
    let mut out = Vec::new();
    a.handle(at(10), Input::StreamAccepted { id, from: addr(2) }, &mut out).unwrap();
    a.handle(at(11), Input::StreamFrame { id, frame: &frame("b", "d", 4) }, &mut out).unwrap();
    a.handle(at(12), Input::StreamFrame { id, frame: &frame("b", "e", 5) }, &mut out).unwrap();
    // d and e answer at their addresses and are admitted.
    answer_checks(&mut a, at(12), &mut out, &mut envelope(label(), Some(KEY)));
    assert_eq!(a.open_streams(), 1);
    out.clear();
    let r = rejected_with(&mut a, at(13), Input::StreamFrame { id, frame: &frame("c", "f", 6) }, &mut out);
    assert_eq!(r, Some(DecodeError::Sender));
    assert_eq!(a.stats().rejected(DecodeError::Sender), 1);
    assert!(out.iter().any(|x| matches!(x, Action::CloseStream { id: i } if *i == id)), "{out:?}");
    assert_eq!(a.open_streams(), 0);
    assert!(a.member("e").is_some());
    assert!(a.member("f").is_none(), "nothing of the rejected frame is applied");
}

/// A sealed datagram names its sender: one from a live member's address
/// that names another member is a stranger's (a bare ack, no relayed
/// probe), even though the address is a member's.
#[test]
fn a_sealed_datagram_naming_another_sender_than_the_member_at_its_address_is_a_strangers() {
    // Padded, as members' pings are when they carry news: room for news
    // piggybacked on the ack.
    let ping = [Message::Ping { seq: 4, target: "a" }, Message::Padding { bytes: &[0; 200] }];
    let acks = |sender: &str| {
        let mut a = node();
        let out =
            a.handle_packet(at(10), addr(2), &close(envelope_of(sender, label(), Some(KEY)), 1400, &ping)).unwrap();
        let sent: Vec<_> = out
            .iter()
            .filter_map(|x| {
                if let Action::Send { to, packet } = x {
                    Some((*to, open_sent(packet, Channel::Datagram)))
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(sent.len(), 1, "one ack: {sent:?}");
        assert_eq!(sent[0].0, addr(2));
        assert_eq!(sent[0].1.0.as_deref(), Some("a"));
        sent[0].1.1
    };
    assert!(acks("b") > 1, "b, at its own address, gets news piggybacked");
    assert_eq!(acks("c"), 1, "a packet naming c from b's address gets a bare ack");

    let req = [Message::PingReq { seq: 5, target: "c", addr: addr(3) }, Message::Padding { bytes: &[0; 200] }];
    for (sender, relayed) in [("b", true), ("c", false)] {
        let mut a = node();
        let refused = a.stats().strangers_refused;
        let p = close(envelope_of(sender, label(), Some(KEY)), 1400, &req);
        let out = a.handle_packet(at(10), addr(2), &p).unwrap();
        let probed = out.iter().any(|x| matches!(x, Action::Send { to, .. } if *to == addr(3)));
        assert_eq!(probed, relayed, "ping-req sealed by {sender}: {out:?}");
        assert_eq!(a.stats().strangers_refused, refused + u64::from(!relayed));
    }
}

/// The budget holds a seal by a member with the longest name: its own
/// alive record, with the most metadata, still fits the datagram that
/// refutes a suspicion of it.
#[test]
fn the_longest_name_with_the_most_metadata_fits_a_sealed_datagram() {
    let long = "n".repeat(crate::util::name::MAX_NAME_LEN);
    let config = Config::lan().with_label(label());
    assert_eq!(config.validate(), Ok(()));
    let mut id = Identity::new(MemberName::new(&long).unwrap(), addr(1));
    id.meta = alloc::vec![7; config.max_meta_len];
    let mut a = Swim::new(config, id, Rng64::seed_from_u64(1)).unwrap();
    a.install_key(KEY).unwrap();
    let alive = [Message::Alive { incarnation: 1, name: "b", addr: addr(2), meta: b"" }];
    let mut out = a.handle_packet(at(0), addr(2), &sealed(&alive)).unwrap();
    answer_checks(&mut a, at(0), &mut out, &mut envelope(label(), Some(KEY)));
    // Padded as a member pads its ping to a suspect: room for the ack and
    // the refutation.
    let accusation = [
        Message::Ping { seq: 1, target: &long },
        Message::Suspect { incarnation: 0, name: &long, from: "b" },
        Message::Padding { bytes: &[0; 1000] },
    ];
    let out = a.handle_packet(at(10), addr(2), &sealed(&accusation)).unwrap();
    let (e, mut scratch, mut msgs) = (envelope(label(), Some(KEY)), Vec::new(), crate::wire::Messages::new());
    let Some(Action::Send { packet, .. }) = out.iter().find(|x| matches!(x, Action::Send { .. })) else {
        panic!("no answer: {out:?}")
    };
    assert!(packet.len() <= 1400, "{}", packet.len());
    let sender = e.decode(packet, MAX_DATAGRAM, Channel::Datagram, &mut scratch, &mut msgs).unwrap();
    assert_eq!(sender, Some(long.as_str()));
    assert!(msgs.iter().any(|m| matches!(m, Message::Alive { name, meta, .. } if *name == long && meta.len() == 512)));
}

/// The run loop of the README and the crate docs, as written there: `?`
/// on every call. Junk from the network must never stop it.
fn readme_loop(swim: &mut Swim<Rng64>, now: Instant, from: SocketAddr, datagram: &[u8]) -> Result<(), Error> {
    let mut out = Vec::new();
    swim.handle(now, Input::Packet { from, bytes: datagram }, &mut out)?;
    swim.handle(now, Input::Timeout, &mut out)?;
    for action in out.drain(..) {
        match action {
            Action::Send { packet, .. } => swim.recycle(packet),
            Action::SetTimer(_) | Action::Event(_) => {}
            _ => {}
        }
    }
    Ok(())
}

/// Every rejection reason, fed through the README's loop: each returns
/// `Ok`, is counted once under its reason, and (when asked for) reported
/// as an event naming its source. A reason added later without a case
/// here fails the test.
#[test]
fn every_rejection_passes_through_the_readme_loop() {
    let plain_body = |body: &[u8]| {
        let mut v = Vec::new();
        crate::wire::frame::plain_packet(body, &mut v);
        v
    };
    let many: Vec<u8> = core::iter::repeat_n([2u8, 1], crate::wire::MAX_MESSAGES + 1).flatten().collect();
    let mut long_meta = alloc::vec![4, 1, 1, b'a', 0, 127, 0, 0, 1, 1, 0x81, 0x04];
    long_meta.extend_from_slice(&[0; 513]);
    let mut bad_sum = plain_body(&[2, 1]);
    if let Some(b) = bad_sum.last_mut() {
        *b ^= 1;
    }
    let version = crate::wire::VERSION;
    // To a member with no key and no label.
    let to_plain: Vec<(Vec<u8>, DecodeError)> = alloc::vec![
        (Vec::new(), DecodeError::Empty),
        (alloc::vec![version.wrapping_add(7), 0, 2, 1, 0, 0, 0, 0], DecodeError::Version),
        (alloc::vec![version; MAX_DATAGRAM + 1], DecodeError::Oversized),
        (alloc::vec![version], DecodeError::Truncated),
        (plain_body(&[99]), DecodeError::UnknownKind),
        (plain_body(&[2, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), DecodeError::Malformed),
        (plain_body(&[0, 1, 2, 0xff, 0xfe]), DecodeError::BadUtf8),
        (plain_body(&[0, 1, 0]), DecodeError::BadName),
        (plain_body(&long_meta), DecodeError::MetaTooLong),
        (plain_body(&many), DecodeError::TooManyMessages),
        (bad_sum, DecodeError::Checksum),
        (close(envelope(label(), None), 1400, &news()), DecodeError::Label),
        (close(envelope(Label::EMPTY, Some(KEY)), 1400, &news()), DecodeError::Sealed),
    ];
    // To "a", labelled and sealed.
    let to_sealed: Vec<(Vec<u8>, DecodeError)> = alloc::vec![
        (close(envelope(label(), None), 1400, &news()), DecodeError::Plaintext),
        (close(envelope(label(), Some(OTHER_KEY)), 1400, &news()), DecodeError::Unauthenticated),
    ];
    let config = Config::lan().with_report_rejections(true);
    let mut plain =
        Swim::new(config, Identity::new(MemberName::new("p").unwrap(), addr(1)), Rng64::seed_from_u64(3)).unwrap();
    let mut sealed_node = node();
    let mut seen = Vec::new();
    for (swim, cases) in [(&mut plain, to_plain), (&mut sealed_node, to_sealed)] {
        for (bytes, want) in cases {
            let before = swim.stats();
            let mut out = Vec::new();
            // The loop itself: it must not stop.
            readme_loop(swim, at(20), addr(9), &bytes).expect("junk never stops the loop");
            swim.handle(at(20), Input::Packet { from: addr(9), bytes: &bytes }, &mut out).unwrap();
            let after = swim.stats();
            assert_eq!(after.rejected(want), before.rejected(want) + 2, "{want:?}");
            assert_eq!(after.rejected_total(), before.rejected_total() + 2, "{want:?} counted under another reason");
            seen.push(want);
        }
    }
    // Reported as events by the member that asked for them, not by the other.
    let mut out = Vec::new();
    plain.handle(at(21), Input::Packet { from: addr(9), bytes: &[] }, &mut out).unwrap();
    let reported = out.iter().find_map(|a| match a {
        Action::Event(crate::Event::Rejected { from, stream, reason }) => Some((*from, *stream, *reason)),
        _ => None,
    });
    assert_eq!(reported, Some((addr(9), None, DecodeError::Empty)));
    out.clear();
    sealed_node.handle(at(21), Input::Packet { from: addr(9), bytes: &[] }, &mut out).unwrap();
    assert!(!out.iter().any(|a| matches!(a, Action::Event(_))), "{out:?}");
    // The one frame-only reason, through the same `?`.
    let frame = |sender: &str| {
        let msgs = [Message::SyncRequest { join: false }];
        let mut e = envelope_of(sender, label(), Some(KEY));
        let mut w = PacketWriter::with_layout(MAX_FRAME, Vec::new(), e.layout());
        for m in &msgs {
            w.push(m).unwrap();
        }
        e.close(w, Channel::Frame)
    };
    let stream = |a: &mut Swim<Rng64>| -> Result<(), Error> {
        let id = StreamId::Inbound(4);
        let mut out = Vec::new();
        a.handle(at(30), Input::StreamAccepted { id, from: addr(2) }, &mut out)?;
        a.handle(at(30), Input::StreamFrame { id, frame: &frame("b") }, &mut out)?;
        a.handle(at(31), Input::StreamFrame { id, frame: &frame("c") }, &mut out)?;
        Ok(())
    };
    stream(&mut sealed_node).expect("a frame from another sender is not an Err");
    assert_eq!(sealed_node.stats().rejected(DecodeError::Sender), 1);
    seen.push(DecodeError::Sender);
    seen.sort();
    assert_eq!(seen, DecodeError::ALL, "every reason has a case");
}
