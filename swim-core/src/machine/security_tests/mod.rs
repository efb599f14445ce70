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

pub(super) fn addr(i: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], 7000 + i))
}

pub(super) const KEY: Key = Key::new([7; 32]);
pub(super) const OTHER_KEY: Key = Key::new([8; 32]);

pub(super) fn label() -> Label {
    Label::new("prod").unwrap()
}

/// Node "a" in cluster "prod" sealed with `KEY`, knowing "b" and "c".
pub(super) fn node() -> Swim<Rng64> {
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

pub(super) fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// The envelope of "b", the sender of most test packets.
pub(super) fn envelope(label: Label, key: Option<Key>) -> Envelope {
    envelope_of("b", label, key)
}

pub(super) fn envelope_of(sender: &str, label: Label, key: Option<Key>) -> Envelope {
    let mut e = Envelope::new(label, &MemberName::new(sender).unwrap(), [0x5e; 12]);
    if let Some(k) = key {
        e.apply(KeyringOp::Install(k)).unwrap();
    }
    e
}

pub(super) fn close(mut e: Envelope, budget: usize, msgs: &[Message<'_>]) -> Vec<u8> {
    let mut w = PacketWriter::with_layout(budget, Vec::new(), e.layout());
    for m in msgs {
        w.push(m).unwrap();
    }
    e.close(w, Channel::Datagram)
}

pub(super) fn sealed(msgs: &[Message<'_>]) -> Vec<u8> {
    close(envelope(label(), Some(KEY)), 1400, msgs)
}

/// A packet that changes the state when accepted: a new member, and a
/// suspicion of a known one.
pub(super) fn news() -> [Message<'static>; 2] {
    [
        Message::Alive { incarnation: 1, name: "ghost", addr: addr(9), meta: b"m" },
        Message::Suspect { incarnation: 1, name: "b", from: "c" },
    ]
}

/// Feeds `bytes` as a datagram from "b" and as a frame on a fresh inbound
/// stream; both must be rejected for `want`, counted, and change nothing.
pub(super) fn assert_rejected(bytes: &[u8], want: DecodeError) {
    assert_rejected_as(bytes, bytes, want);
}

/// [`assert_rejected`] with a datagram and a frame of their own (a seal
/// binds its channel).
pub(super) fn assert_rejected_as(bytes: &[u8], frame: &[u8], want: DecodeError) {
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
pub(super) fn the_control_packet_is_accepted_and_changes_the_state() {
    let mut a = node();
    let before = a.state_digest();
    a.handle_packet(at(10), addr(2), &sealed(&news())).unwrap();
    assert_ne!(a.state_digest(), before);
}

#[test]
pub(super) fn malformed_input_is_rejected_without_side_effects() {
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
pub(super) fn truncated_input_is_rejected_without_side_effects() {
    let p = sealed(&news());
    for cut in [2, 10, p.len() / 2, p.len() - 1] {
        let want = if cut < 2 + 5 + 12 + 16 { DecodeError::Truncated } else { DecodeError::Unauthenticated };
        assert_rejected(&p[..cut], want);
    }
    assert_rejected(&[], DecodeError::Empty);
}

#[test]
pub(super) fn oversized_input_is_rejected_without_side_effects() {
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
pub(super) fn a_bit_flipped_anywhere_is_rejected_without_side_effects() {
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
pub(super) fn wrong_key_input_is_rejected_without_side_effects() {
    assert_rejected(&close(envelope(label(), Some(OTHER_KEY)), 1400, &news()), DecodeError::Unauthenticated);
}

#[test]
pub(super) fn wrong_label_input_is_rejected_without_side_effects() {
    let other = Label::new("staging").unwrap();
    assert_rejected(&close(envelope(other, Some(KEY)), 1400, &news()), DecodeError::Label);
    assert_rejected(&close(envelope(Label::EMPTY, Some(KEY)), 1400, &news()), DecodeError::Label);
}

#[test]
pub(super) fn input_replayed_from_another_cluster_is_rejected_without_side_effects() {
    // Traffic captured in a cluster with the same key but another label
    // (the label is authenticated: relabelling it breaks the tag).
    let captured = close(envelope(Label::new("prue").unwrap(), Some(KEY)), 1400, &news());
    assert_rejected(&captured, DecodeError::Label);
    let mut relabelled = captured.clone();
    relabelled[3..7].copy_from_slice(b"prod");
    assert_rejected(&relabelled, DecodeError::Unauthenticated);
}

#[test]
pub(super) fn plaintext_input_is_rejected_when_encryption_is_on_without_side_effects() {
    assert_rejected(&close(envelope(label(), None), 1400, &news()), DecodeError::Plaintext);
}

#[test]
pub(super) fn a_node_without_the_key_understands_nothing_and_is_understood_by_nobody() {
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
pub(super) fn migration_accepts_plaintext_until_told_to_refuse_it() {
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
pub(super) fn the_primary_key_cannot_be_removed_and_rotation_keeps_traffic_flowing() {
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

mod amplification;
mod keys;
mod seals;

#[allow(unused_imports, reason = "helpers shared between the test files")]
use amplification::*;
#[allow(unused_imports, reason = "helpers shared between the test files")]
use seals::*;
