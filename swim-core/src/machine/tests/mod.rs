//! Rule-by-rule tests of the state machine, driven by hand-made packets.

use alloc::string::ToString;
use alloc::vec::Vec;
use core::net::SocketAddr;

use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus as Rng64;

use super::mesh::Mesh;
use crate::wire::{Message, Messages, PacketWriter, decode};
use crate::{Action, Config, Duration, Error, Event, Identity, Input, Instant, MemberName, MemberState, Swim};
use alloc::string::String;

pub(super) fn addr(i: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], 7000 + i))
}

pub(super) fn node(name: &str, i: u16) -> Swim<Rng64> {
    let id = Identity::new(MemberName::new(name).unwrap(), addr(i));
    Swim::new(Config::lan(), id, Rng64::seed_from_u64(u64::from(i))).unwrap()
}

pub(super) fn packet(msgs: &[Message<'_>]) -> Vec<u8> {
    let mut w = PacketWriter::new(1400);
    for m in msgs {
        w.push(m).unwrap();
    }
    w.finish().as_bytes().to_vec()
}

/// A datagram of `msgs` padded to `len` bytes, as our own requests whose
/// answers are larger than they are.
pub(super) fn padded(msgs: &[Message<'_>], len: usize) -> Vec<u8> {
    let mut w = PacketWriter::new(1400);
    for m in msgs {
        w.push(m).unwrap();
    }
    let zeros = [0u8; 1400];
    let pad = len.saturating_sub(w.size()).min(zeros.len());
    w.push(&Message::Padding { bytes: &zeros[..pad.saturating_sub(3)] }).unwrap();
    w.finish().as_bytes().to_vec()
}

pub(super) fn frame(msgs: &[Message<'_>]) -> Vec<u8> {
    let mut w = PacketWriter::frame(Vec::new());
    for m in msgs {
        w.push(m).unwrap();
    }
    w.finish().as_bytes().to_vec()
}

pub(super) fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

pub(super) fn events(actions: &[Action]) -> Vec<Event> {
    actions.iter().filter_map(|a| if let Action::Event(e) = a { Some(e.clone()) } else { None }).collect()
}

/// Every message sent, with its destination, decoded.
pub(super) fn sent(actions: &[Action]) -> Vec<(SocketAddr, Vec<u8>)> {
    actions
        .iter()
        .filter_map(|a| if let Action::Send { to, packet } = a { Some((*to, packet.to_vec())) } else { None })
        .collect()
}

pub(super) fn kinds(bytes: &[u8]) -> Vec<u8> {
    let mut m = Messages::new();
    decode(bytes, &mut m).unwrap();
    m.iter().map(Message::kind).collect()
}

/// Feeds a datagram that introduces members, and answers from their
/// addresses the pings that check them before they are admitted: the
/// actions of both, without those pings.
pub(super) fn learn(s: &mut Swim<Rng64>, t: Instant, from: SocketAddr, bytes: &[u8]) -> Result<Vec<Action>, Error> {
    let mut out = s.handle_packet(t, from, bytes)?;
    let mut plain =
        crate::wire::seal::Envelope::new(crate::wire::Label::EMPTY, &MemberName::new("x").unwrap(), [0; 12]);
    answer_checks(s, t, &mut out, &mut plain);
    Ok(out)
}

/// Answers every admission ping in `out` (a lone ping: what a datagram
/// draws besides answers) with an ack from where it went, and drops it;
/// `e` opens and closes the node's packets.
/// Hands `input` to `s`, which must take it (bytes from the network are
/// never an `Err`), and returns the reason it was rejected for, read off
/// the counters, if it was.
pub(super) fn rejected_with(
    s: &mut Swim<Rng64>,
    now: Instant,
    input: Input<'_>,
    out: &mut Vec<Action>,
) -> Option<crate::wire::DecodeError> {
    let before = s.stats();
    s.handle(now, input, out).expect("bytes from the network are never an Err");
    let after = s.stats();
    crate::wire::DecodeError::ALL.into_iter().find(|&r| after.rejected(r) > before.rejected(r))
}

/// [`rejected_with`] for a datagram from `from`.
pub(super) fn rejected_as(
    s: &mut Swim<Rng64>,
    now: Instant,
    from: SocketAddr,
    bytes: &[u8],
) -> Option<crate::wire::DecodeError> {
    rejected_with(s, now, Input::Packet { from, bytes }, &mut Vec::new())
}

pub(super) fn answer_checks(
    s: &mut Swim<Rng64>,
    t: Instant,
    out: &mut Vec<Action>,
    e: &mut crate::wire::seal::Envelope,
) {
    use crate::wire::seal::Channel;
    let mut scratch = Vec::new();
    let mut i = 0;
    while i < out.len() {
        let check = match &out[i] {
            Action::Send { to, packet: p } => {
                let mut m = Messages::new();
                e.decode(p, crate::wire::MAX_DATAGRAM, Channel::Datagram, &mut scratch, &mut m).ok().and_then(|_| {
                    match m.as_slice() {
                        [Message::Ping { seq, .. }] => Some((*to, *seq)),
                        _ => None,
                    }
                })
            }
            _ => None,
        };
        match check {
            Some((to, seq)) => {
                out.remove(i);
                let mut w = PacketWriter::with_layout(1400, Vec::new(), e.layout());
                w.push(&Message::Ack { seq }).unwrap();
                let ack = e.close(w, Channel::Datagram);
                let more = s.handle_packet(t, to, &ack).unwrap_or_default();
                out.extend(more);
            }
            None => i += 1,
        }
    }
}

pub(super) fn alive<'a>(name: &'a str, inc: u32, i: u16) -> Message<'a> {
    Message::Alive { incarnation: inc, name, addr: addr(i), meta: &[] }
}

/// Runs timeouts from `from` to `to` in 1 ms steps, collecting actions.
pub(super) fn run(s: &mut Swim<Rng64>, from: u64, to: u64) -> Vec<Action> {
    let mut all = Vec::new();
    for t in from..=to {
        if s.deadline().is_some_and(|d| d <= at(t)) {
            all.extend(s.handle_timeout(at(t)));
        }
    }
    all
}

/// Times out `s` at `t` like a runtime whose every connection is refused
/// at once (nobody listens: the peers are down).
pub(super) fn timeout_refusing(s: &mut Swim<Rng64>, t: u64) -> Vec<Action> {
    let out = s.handle_timeout(at(t));
    for a in &out {
        if let Action::OpenStream { id, .. } = a {
            let mut more = Vec::new();
            s.handle(at(t), Input::StreamClosed { id: *id, end: crate::StreamEnd::Refused }, &mut more).unwrap();
        }
    }
    out
}

/// The streams opened in `actions`, with the messages of their frames.
pub(super) fn checks_opened(actions: &[Action]) -> Vec<(SocketAddr, Vec<u8>)> {
    let mut opened = Vec::new();
    for a in actions {
        match a {
            Action::OpenStream { id, to } => opened.push((*id, *to, Vec::new())),
            Action::SendFrame { id, frame } => {
                if let Some(o) = opened.iter_mut().find(|o| o.0 == *id) {
                    o.2 = kinds(frame);
                }
            }
            _ => {}
        }
    }
    opened.into_iter().map(|(_, to, k)| (to, k)).collect()
}

mod checks;
mod cluster;
mod coordinates;
mod delta;
mod detection;
pub(in crate::machine) mod incarnations;
mod joins;
mod memberlist;
mod memberlist_streams;
mod seeded;
mod serf;
mod streams;

#[allow(unused_imports, reason = "helpers shared between the test files")]
use checks::*;
#[allow(unused_imports, reason = "helpers shared between the test files")]
use cluster::*;
#[allow(unused_imports, reason = "helpers shared between the test files")]
use detection::*;
#[allow(unused_imports, reason = "helpers shared between the test files")]
use incarnations::*;
#[allow(unused_imports, reason = "helpers shared between the test files")]
use joins::*;
#[allow(unused_imports, reason = "helpers shared between the test files")]
use streams::*;
