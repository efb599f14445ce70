//! Rule-by-rule tests of the state machine, driven by hand-made packets.

use alloc::string::ToString;
use alloc::vec::Vec;
use core::net::SocketAddr;

use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus as Rng64;

use super::mesh::Mesh;
use crate::wire::{Message, Messages, PacketWriter, decode};
use crate::{Action, Config, Duration, Error, Event, Identity, Input, Instant, MemberName, MemberState, Swim};

fn addr(i: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], 7000 + i))
}

fn node(name: &str, i: u16) -> Swim<Rng64> {
    let id = Identity::new(MemberName::new(name).unwrap(), addr(i));
    Swim::new(Config::lan(), id, Rng64::seed_from_u64(u64::from(i))).unwrap()
}

fn packet(msgs: &[Message<'_>]) -> Vec<u8> {
    let mut w = PacketWriter::new(1400);
    for m in msgs {
        w.push(m).unwrap();
    }
    w.finish().as_bytes().to_vec()
}

/// A datagram of `msgs` padded to `len` bytes, as our own requests whose
/// answers are larger than they are.
fn padded(msgs: &[Message<'_>], len: usize) -> Vec<u8> {
    let mut w = PacketWriter::new(1400);
    for m in msgs {
        w.push(m).unwrap();
    }
    let zeros = [0u8; 1400];
    let pad = len.saturating_sub(w.size()).min(zeros.len());
    w.push(&Message::Padding { bytes: &zeros[..pad.saturating_sub(3)] }).unwrap();
    w.finish().as_bytes().to_vec()
}

fn frame(msgs: &[Message<'_>]) -> Vec<u8> {
    let mut w = PacketWriter::frame(Vec::new());
    for m in msgs {
        w.push(m).unwrap();
    }
    w.finish().as_bytes().to_vec()
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn events(actions: &[Action]) -> Vec<Event> {
    actions.iter().filter_map(|a| if let Action::Event(e) = a { Some(e.clone()) } else { None }).collect()
}

/// Every message sent, with its destination, decoded.
fn sent(actions: &[Action]) -> Vec<(SocketAddr, Vec<u8>)> {
    actions
        .iter()
        .filter_map(|a| if let Action::Send { to, packet } = a { Some((*to, packet.to_vec())) } else { None })
        .collect()
}

fn kinds(bytes: &[u8]) -> Vec<u8> {
    let mut m = Messages::new();
    decode(bytes, &mut m).unwrap();
    m.iter().map(Message::kind).collect()
}

/// Feeds a datagram that introduces members, and answers from their
/// addresses the pings that check them before they are admitted: the
/// actions of both, without those pings.
fn learn(s: &mut Swim<Rng64>, t: Instant, from: SocketAddr, bytes: &[u8]) -> Result<Vec<Action>, Error> {
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

fn alive<'a>(name: &'a str, inc: u32, i: u16) -> Message<'a> {
    Message::Alive { incarnation: inc, name, addr: addr(i), meta: &[] }
}

/// Runs timeouts from `from` to `to` in 1 ms steps, collecting actions.
fn run(s: &mut Swim<Rng64>, from: u64, to: u64) -> Vec<Action> {
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
fn timeout_refusing(s: &mut Swim<Rng64>, t: u64) -> Vec<Action> {
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
fn checks_opened(actions: &[Action]) -> Vec<(SocketAddr, Vec<u8>)> {
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

#[test]
fn learns_members_from_alive_and_announces_joined() {
    let mut a = node("a", 1);
    let out = learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    assert_eq!(events(&out), [Event::Joined { name: MemberName::new("b").unwrap(), addr: addr(2) }]);
    assert_eq!(a.member("b").unwrap().state, MemberState::Alive);
    assert_eq!(a.num_live(), 2);
    // The same news again changes nothing.
    let out = learn(&mut a, at(1), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    assert!(events(&out).is_empty());
}

#[test]
fn ping_is_acked_only_when_it_names_us() {
    let mut a = node("a", 1);
    let out = a.handle_packet(at(0), addr(2), &packet(&[Message::Ping { seq: 5, target: "a" }])).unwrap();
    let s = sent(&out);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].0, addr(2));
    assert_eq!(&s[0].1[..4], &[crate::wire::VERSION, 0, 2, 5]);
    let out = a.handle_packet(at(1), addr(2), &packet(&[Message::Ping { seq: 6, target: "old" }])).unwrap();
    assert!(sent(&out).is_empty());
    assert_eq!(a.stats().misdirected, 1);
}

#[test]
fn suspicion_of_ourselves_is_refuted_with_a_higher_incarnation() {
    let mut a = node("a", 1);
    learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    let suspect = Message::Suspect { incarnation: 0, name: "a", from: "b" };
    // The buddy system: the suspicion arrives with the ping; the refutation
    // rides on the ack.
    let out = a.handle_packet(at(1), addr(2), &padded(&[Message::Ping { seq: 1, target: "a" }, suspect], 64)).unwrap();
    assert_eq!(a.incarnation(), 1);
    assert_eq!(a.stats().refutations, 1);
    assert_eq!(a.local_health(), 1, "refuting raises the local health score");
    let s = sent(&out);
    let mut m = Messages::new();
    decode(&s[0].1, &mut m).unwrap();
    assert!(matches!(m[0], Message::Ack { seq: 1 }));
    assert!(
        m.iter().any(|m| matches!(m, Message::Alive { name: "a", incarnation: 1, .. })),
        "the refutation rides on the ack: {m:?}"
    );
    // A dead rumour at a higher incarnation is outbid too.
    a.handle_packet(at(2), addr(2), &packet(&[Message::Dead { incarnation: 7, name: "a", from: "b" }])).unwrap();
    assert_eq!(a.incarnation(), 8);
    // A stale one is not.
    a.handle_packet(at(3), addr(2), &packet(&[Message::Suspect { incarnation: 3, name: "a", from: "b" }])).unwrap();
    assert_eq!(a.incarnation(), 8);
}

#[test]
fn a_refuted_suspicion_never_ends_in_failure() {
    let mut a = node("a", 1);
    learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2), alive("c", 0, 3)])).unwrap();
    let out = a
        .handle_packet(at(10), addr(3), &packet(&[Message::Suspect { incarnation: 0, name: "b", from: "c" }]))
        .unwrap();
    assert!(matches!(events(&out)[..], [Event::Suspected { local: false, .. }]));
    let out = learn(&mut a, at(20), addr(2), &packet(&[alive("b", 1, 2)])).unwrap();
    assert_eq!(events(&out), [Event::Alive { name: MemberName::new("b").unwrap(), incarnation: 1 }]);
    // Late copies of the old suspicion and a death at the old incarnation
    // are outranked by the refutation.
    a.handle_packet(at(30), addr(3), &packet(&[Message::Suspect { incarnation: 0, name: "b", from: "d" }])).unwrap();
    a.handle_packet(at(31), addr(3), &packet(&[Message::Dead { incarnation: 0, name: "b", from: "d" }])).unwrap();
    // Keep b acking so our own probes do not suspect it; c stays silent.
    let (mut failed_b, mut failed_c) = (false, false);
    for t in 32..120_000 {
        if a.deadline().is_some_and(|d| d <= at(t)) {
            for act in a.handle_timeout(at(t)) {
                if let Action::Send { to, packet } = &act
                    && *to == addr(2)
                {
                    let mut m = Messages::new();
                    decode(packet, &mut m).unwrap();
                    if let Some(Message::Ping { seq, .. }) = m.first() {
                        let ack = packet_ack(*seq);
                        a.handle_packet(at(t), addr(2), &ack).unwrap();
                    }
                }
                if let Action::Event(Event::Failed { name, .. }) = act {
                    failed_b |= name.as_str() == "b";
                    failed_c |= name.as_str() == "c";
                }
            }
        }
    }
    assert!(!failed_b);
    assert_eq!(a.member("b").unwrap().state, MemberState::Alive);
    assert!(failed_c, "the silent member is failed");
    assert!(a.member("c").is_none(), "and reaped after dead_member_retention");
}

fn packet_ack(seq: u32) -> Vec<u8> {
    packet(&[Message::Ack { seq }])
}

#[test]
fn unanswered_probe_goes_indirect_then_suspects_then_fails() {
    let mut a = node("a", 1);
    learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2), alive("c", 0, 3), alive("d", 0, 4)])).unwrap();
    let out = run(&mut a, 0, 3000);
    let s = sent(&out);
    let pings: Vec<&(SocketAddr, Vec<u8>)> = s.iter().filter(|(_, b)| kinds(b).first() == Some(&0)).collect();
    let reqs: Vec<&(SocketAddr, Vec<u8>)> = s.iter().filter(|(_, b)| kinds(b).first() == Some(&1)).collect();
    assert!(!pings.is_empty());
    // Two others are available to ask for each missed probe.
    assert!(reqs.len() >= 2);
    let ev = events(&out);
    assert!(ev.iter().any(|e| matches!(e, Event::Suspected { local: true, .. })));
    assert!(a.stats().probes_failed >= 1);
    assert!(a.local_health() >= 1, "missed nacks raise the local health score");
    // With nobody answering, suspicions end in failures (n = 4: k = 0,
    // so the timeout is the 4 s minimum).
    let out = run(&mut a, 3001, 60_000);
    let failed = events(&out).iter().filter(|e| matches!(e, Event::Failed { local: true, .. })).count();
    assert_eq!(failed, 3);
    assert_eq!(a.num_live(), 1);
}

#[test]
fn acked_probes_lower_the_local_health_score() {
    let mut a = node("a", 1);
    learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    a.handle_packet(at(0), addr(2), &packet(&[Message::Suspect { incarnation: 0, name: "a", from: "b" }])).unwrap();
    a.handle_packet(at(0), addr(2), &packet(&[Message::Suspect { incarnation: 1, name: "a", from: "b" }])).unwrap();
    assert_eq!(a.local_health(), 2);
    for t in 0..10_000 {
        if a.deadline().is_some_and(|d| d <= at(t)) {
            for (to, bytes) in sent(&a.handle_timeout(at(t))) {
                let mut m = Messages::new();
                decode(&bytes, &mut m).unwrap();
                if let (true, Some(Message::Ping { seq, .. })) = (to == addr(2), m.first()) {
                    a.handle_packet(at(t), addr(2), &packet_ack(*seq)).unwrap();
                }
            }
        }
    }
    assert_eq!(a.local_health(), 0);
}

#[test]
fn ping_req_is_relayed_and_nacked_when_the_target_is_silent() {
    let mut b = node("b", 2);
    // Only members are served: a stranger's request is dropped.
    let req = Message::PingReq { seq: 42, target: "c", addr: addr(3) };
    assert!(sent(&b.handle_packet(at(0), addr(1), &packet(core::slice::from_ref(&req))).unwrap()).is_empty());
    assert_eq!(b.stats().strangers_refused, 1);
    learn(&mut b, at(0), addr(1), &packet(&[alive("a", 0, 1), alive("c", 0, 3)])).unwrap();
    // Nor is a member asking for a probe of an address the target is not at.
    let elsewhere = Message::PingReq { seq: 41, target: "c", addr: addr(9) };
    let out = sent(&b.handle_packet(at(0), addr(1), &packet(&[elsewhere])).unwrap());
    assert_eq!(out.len(), 1, "no probe, only a nack to the member: {out:?}");
    assert_eq!((out[0].0, kinds(&out[0].1)[0]), (addr(1), 3));
    assert_eq!(b.stats().strangers_refused, 2);
    // Use up the retransmissions of the alives, so answers are bare.
    for seq in 0..20 {
        b.handle_packet(at(0), addr(1), &padded(&[Message::Ping { seq, target: "b" }], 200)).unwrap();
    }
    // A requester pads its ping-req with room for the relayed ping and the
    // ack or nack that follows.
    let out = b.handle_packet(at(0), addr(1), &padded(&[req], 40)).unwrap();
    let s = sent(&out);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].0, addr(3));
    let mut m = Messages::new();
    decode(&s[0].1, &mut m).unwrap();
    let Message::Ping { seq: ours, target: "c" } = m[0] else { panic!("expected a ping, got {m:?}") };
    // The target answers: the ack is forwarded with the requester's seq.
    let out = b.handle_packet(at(5), addr(3), &packet_ack(ours)).unwrap();
    assert_eq!(sent(&out), [(addr(1), packet_ack(42))]);
    // Another request, with a silent target: a nack at 80% of the timeout.
    b.handle_packet(at(10), addr(1), &packet(&[Message::PingReq { seq: 43, target: "c", addr: addr(3) }])).unwrap();
    let out = run(&mut b, 11, 409);
    // (b's own probes may reach a meanwhile; no nack does.)
    assert!(sent(&out).iter().all(|(to, p)| *to != addr(1) || !kinds(p).contains(&3)));
    let out = run(&mut b, 410, 410);
    assert_eq!(sent(&out), [(addr(1), packet(&[Message::Nack { seq: 43 }]))]);
}

#[test]
fn confirmations_shorten_the_suspicion() {
    let mut a = node("a", 1);
    let many: Vec<(alloc::string::String, u16)> = (0..20).map(|i| (alloc::format!("m{i}"), 10 + i)).collect();
    for (n, i) in &many {
        learn(&mut a, at(0), addr(*i), &packet(&[alive(n, 0, *i)])).unwrap();
    }
    // n = 21: min = 4 * log10(21) s = 5 288 ms, max = 6 * min, k = 2.
    let suspect = |from: &'static str| packet(&[Message::Suspect { incarnation: 0, name: "m0", from }]);
    a.handle_packet(at(1000), addr(11), &suspect("m1")).unwrap();
    let lone = a.deadline().unwrap();
    a.handle_packet(at(1000), addr(12), &suspect("m2")).unwrap();
    a.handle_packet(at(1000), addr(12), &suspect("m2")).unwrap();
    a.handle_packet(at(1000), addr(13), &suspect("m3")).unwrap();
    let mut failed_at = None;
    for t in 1000..40_000 {
        if a.deadline().is_some_and(|d| d <= at(t)) {
            for e in events(&timeout_refusing(&mut a, t)) {
                if let Event::Failed { name, .. } = e
                    && name.as_str() == "m0"
                {
                    failed_at.get_or_insert(t);
                }
            }
        }
    }
    assert!(lone < at(1000 + 5288 * 6));
    // The minimum, then (as a member that only heard of the suspicion) 6 s
    // for the accusers' verdict, a last query over a stream since
    // its own probes go unanswered (refused here), its wake-up and a moment.
    assert_eq!(failed_at, Some(1000 + 5288 + 6000 + 500 + 1), "two confirmations bring the timeout to the minimum");
}

#[test]
fn graceful_leave_is_announced_as_left_not_failed() {
    let mut a = node("a", 1);
    let mut b = node("b", 2);
    learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    learn(&mut b, at(0), addr(1), &packet(&[alive("a", 0, 1)])).unwrap();
    let mut out = a.leave(at(100)).unwrap();
    out.extend(run(&mut a, 101, 10_000));
    assert!(events(&out).contains(&Event::LeaveCompleted));
    assert!(a.has_left());
    let mut got = Vec::new();
    for (to, bytes) in sent(&out) {
        if to == addr(2) {
            got.extend(events(&b.handle_packet(at(200), addr(1), &bytes).unwrap()));
        }
    }
    assert!(got.contains(&Event::Left { name: MemberName::new("a").unwrap() }));
    assert!(!got.iter().any(|e| matches!(e, Event::Failed { .. })));
    assert_eq!(a.leave(at(20_000)), Err(Error::Leaving));
    // A departed member ignores everything.
    assert!(
        a.handle_packet(at(20_001), addr(2), &packet(&[Message::Ping { seq: 1, target: "a" }])).unwrap().is_empty()
    );
}

#[test]
fn a_leave_spends_its_transmissions_on_live_members_only() {
    // One live peer and one member dead a moment ago: gossip to the dead
    // would draw the dead one often enough to spend the whole leave on it.
    for seed in 0..64 {
        let id = Identity::new(MemberName::new("a").unwrap(), addr(1));
        let mut a = Swim::new(Config::lan(), id, Rng64::seed_from_u64(seed)).unwrap();
        learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2), alive("c", 0, 3)])).unwrap();
        run(&mut a, 1, 3000);
        a.handle_packet(at(3000), addr(2), &packet(&[Message::Dead { incarnation: 0, name: "c", from: "b" }])).unwrap();
        // c does not answer the check of its death: it is dead a probe
        // timeout later.
        run(&mut a, 3001, 3600);
        assert_eq!(a.member("c").unwrap().state, MemberState::Dead, "seed {seed}");
        let mut out = a.leave(at(3601)).unwrap();
        out.extend(run(&mut a, 3602, 20_000));
        assert!(events(&out).contains(&Event::LeaveCompleted), "seed {seed}");
        let mut to_b = 0;
        for (to, bytes) in sent(&out) {
            let mut m = Messages::new();
            decode(&bytes, &mut m).unwrap();
            if m.iter().any(|m| matches!(m, Message::Dead { name: "a", from: "a", .. })) {
                assert_eq!(to, addr(2), "seed {seed}: the leave went to the dead member");
                to_b += 1;
            }
        }
        assert!(to_b >= 1, "seed {seed}: b never heard of the leave");
    }
}

#[test]
fn join_syncs_whole_tables_with_a_seed_over_a_stream() {
    let mut a = node("a", 1);
    assert_eq!(a.join(at(0), &[]), Err(Error::NoSeeds));
    assert_eq!(a.join(at(0), &[addr(1)]), Err(Error::NoSeeds), "joining only ourselves is no join");
    let mut seed = node("s", 9);
    learn(&mut seed, at(0), addr(3), &packet(&[alive("c", 0, 3)])).unwrap();
    let mut mesh = Mesh::new(alloc::vec![a, seed]);
    mesh.input(0, 0, Input::Join { seeds: &[addr(9)] }).unwrap();
    assert!(mesh.events_of(0).any(|e| *e == Event::JoinCompleted { seed: addr(9) }));
    assert_eq!(mesh.nodes[0].num_live(), 3, "learnt the seed and its member c");
    assert_eq!(mesh.nodes[1].num_live(), 3, "the seed learnt us");
    assert!(mesh.actions.iter().any(|(i, a)| *i == 0 && matches!(a, Action::OpenStream { to, .. } if *to == addr(9))));
    // Tables went over the stream only: no datagram carried a sync.
    for (_, a) in &mesh.actions {
        if let Action::Send { packet, .. } = a {
            assert!(kinds(packet).iter().all(|k| !(7..=11).contains(k)), "{:?}", kinds(packet));
        }
    }
    assert_eq!(mesh.nodes[0].open_streams() + mesh.nodes[1].open_streams(), 0, "both ends closed");
    assert_eq!(mesh.nodes[0].stats().syncs_completed, 1);
    assert_eq!(mesh.nodes[1].stats().syncs_completed, 1);
}

#[test]
fn a_sync_request_in_a_datagram_draws_nothing() {
    let mut seed = node("s", 9);
    learn(&mut seed, at(0), addr(3), &packet(&[alive("c", 0, 3)])).unwrap();
    let out = seed.handle_packet(at(1), addr(1), &packet(&[Message::SyncRequest { join: true }])).unwrap();
    assert!(sent(&out).is_empty(), "an unauthenticated datagram never draws a table");
}
#[test]
fn join_gives_up_after_its_attempts() {
    let mut mesh = Mesh::new(alloc::vec![node("a", 1)]);
    mesh.input(0, 0, Input::Join { seeds: &[addr(9)] }).unwrap();
    mesh.run(1, 10_000);
    let attempts =
        mesh.actions.iter().filter(|(_, a)| matches!(a, Action::OpenStream { to, .. } if *to == addr(9))).count();
    assert_eq!(attempts, 5);
    assert_eq!(mesh.events_of(0).filter(|e| **e == Event::JoinFailed).count(), 1);
}
#[test]
fn bad_packets_are_counted_and_change_nothing() {
    let mut a = node("a", 1);
    learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    let before = (a.deadline(), a.incarnation(), a.num_live());
    let mut junk = packet(&[Message::Suspect { incarnation: 9, name: "a", from: "b" }]);
    junk.push(0x04); // a truncated trailing message
    assert!(rejected_as(&mut a, at(5), addr(2), &junk).is_some());
    assert_eq!(rejected_as(&mut a, at(5), addr(2), &[]), Some(crate::wire::DecodeError::Empty));
    assert_eq!((a.deadline(), a.incarnation(), a.num_live()), before);
    assert_eq!(a.stats().rejected_total(), 2);
}

#[test]
fn early_wake_ups_do_nothing() {
    let mut a = node("a", 1);
    learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    let due = a.deadline().unwrap();
    for t in 0..due.as_millis() {
        let out = a.handle_timeout(at(t));
        assert!(out.is_empty(), "woken at {t} before {due}: {out:?}");
    }
    assert!(!a.handle_timeout(due).is_empty());
}

#[test]
fn address_conflicts_are_refused_unless_restarted_or_reclaimed() {
    let mut cfg = Config::lan();
    cfg.dead_node_reclaim_time = Some(Duration::from_secs(10));
    let mut a = Swim::new(cfg, Identity::new(MemberName::new("a").unwrap(), addr(1)), Rng64::seed_from_u64(1)).unwrap();
    let b = || MemberName::new("b").unwrap();
    learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    learn(&mut a, at(0), addr(5), &packet(&[alive("b", 0, 5)])).unwrap();
    assert_eq!(a.member("b").unwrap().addr, addr(2));
    assert_eq!(a.stats().address_conflicts, 1);
    // A newer incarnation is the member itself, restarted elsewhere.
    let out = learn(&mut a, at(1), addr(5), &packet(&[alive("b", 3, 5)])).unwrap();
    assert_eq!(a.member("b").unwrap().addr, addr(5));
    assert_eq!(events(&out), [Event::Updated { name: b(), addr: addr(5) }]);
    a.handle_packet(at(10), addr(5), &packet(&[Message::Dead { incarnation: 3, name: "b", from: "x" }])).unwrap();
    // b does not answer the check of its death: dead at 510 ms.
    run(&mut a, 11, 600);
    learn(&mut a, at(5000), addr(6), &packet(&[alive("b", 3, 6)])).unwrap();
    assert_eq!(a.member("b").unwrap().addr, addr(5));
    let out = learn(&mut a, at(10_510), addr(6), &packet(&[alive("b", 3, 6)])).unwrap();
    assert_eq!(a.member("b").unwrap().addr, addr(6));
    assert_eq!(events(&out), [Event::Joined { name: b(), addr: addr(6) }]);
}
#[test]
fn invalid_configs_and_metadata_are_refused() {
    let mut cfg = Config::lan();
    cfg.probe_timeout = Duration::from_secs(2);
    let id = Identity::new(MemberName::new("a").unwrap(), addr(1));
    assert!(matches!(Swim::new(cfg, id.clone(), Rng64::seed_from_u64(1)), Err(Error::Config(_))));
    let mut big = id;
    big.meta = alloc::vec![0; 513];
    assert_eq!(Swim::new(Config::lan(), big, Rng64::seed_from_u64(1)).err(), Some(Error::MetaTooLong));
}

#[test]
fn same_seed_and_inputs_give_identical_actions() {
    fn trace(seed: u64) -> Vec<Action> {
        let id = Identity::new(MemberName::new("a").unwrap(), addr(1));
        let mut a = Swim::new(Config::lan(), id, Rng64::seed_from_u64(seed)).unwrap();
        let mut all = Vec::new();
        let names: Vec<alloc::string::String> = (0..30).map(|i| alloc::format!("m{i}")).collect();
        for (i, n) in names.iter().enumerate() {
            all.extend(
                learn(&mut a, at(i as u64), addr(10 + i as u16), &packet(&[alive(n, 0, 10 + i as u16)])).unwrap(),
            );
        }
        all.extend(run(&mut a, 30, 30_000));
        all
    }
    assert_eq!(trace(7), trace(7));
    assert_ne!(trace(7), trace(8));
}

/// a knows b; b knows a and c, and has spent c's gossip transmissions
/// elsewhere. Does a learn of c within 31 s?
fn learns_c_from_b(push_pull: Option<Duration>) -> bool {
    let mut cfg = Config::lan();
    cfg.push_pull_interval = push_pull;
    let mk = |n: &str, i: u16| {
        let id = Identity::new(MemberName::new(n).unwrap(), addr(i));
        Swim::new(cfg.clone(), id, Rng64::seed_from_u64(u64::from(i))).unwrap()
    };
    let (mut a, mut b) = (mk("a", 1), mk("b", 2));
    learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    learn(&mut b, at(0), addr(1), &packet(&[alive("a", 0, 1), alive("c", 0, 3), alive("d", 0, 7)])).unwrap();
    // Pings from another member use up b's retransmissions of c's alive.
    for seq in 0..20 {
        b.handle_packet(at(0), addr(7), &padded(&[Message::Ping { seq, target: "b" }], 200)).unwrap();
    }
    // c answers b's probes (and hears nothing of a).
    let mut c = mk("c", 3);
    learn(&mut c, at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    let mut mesh = Mesh::new(alloc::vec![a, b, c]);
    mesh.run(0, 31_000);
    let joined_c = Event::Joined { name: MemberName::new("c").unwrap(), addr: addr(3) };
    mesh.events_of(0).any(|e| *e == joined_c)
}
#[test]
fn push_pull_exchanges_whole_tables_periodically() {
    assert!(learns_c_from_b(Some(Duration::from_secs(30))), "within one push-pull interval (30 s at n <= 32)");
    assert!(!learns_c_from_b(None), "gossip alone had nothing left to tell");
}

#[test]
fn push_pull_interval_scales_like_memberlist() {
    let t = Duration::from_secs(30);
    assert_eq!(crate::protocol::lifecycle::push_pull_scale(t, 10), t);
    assert_eq!(crate::protocol::lifecycle::push_pull_scale(t, 32), t);
    assert_eq!(crate::protocol::lifecycle::push_pull_scale(t, 33), Duration::from_secs(60));
    assert_eq!(crate::protocol::lifecycle::push_pull_scale(t, 100), Duration::from_secs(90));
    assert_eq!(crate::protocol::lifecycle::push_pull_scale(t, 1000), Duration::from_secs(180));
}

#[test]
fn a_lost_refutation_is_sent_again_while_stale_rumours_circulate() {
    let mut a = node("a", 1);
    learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    a.handle_packet(at(0), addr(2), &packet(&[Message::Suspect { incarnation: 0, name: "a", from: "b" }])).unwrap();
    assert_eq!(a.incarnation(), 1);
    // Our refutation goes out until its retransmissions are spent...
    for t in 1..20 {
        a.handle_packet(at(t), addr(2), &packet(&[Message::Ping { seq: t as u32, target: "a" }])).unwrap();
    }
    // ...and a stale copy of the suspicion still arrives: re-announce,
    // without a needless new incarnation.
    let ping = Message::Ping { seq: 99, target: "a" };
    let out = a
        .handle_packet(at(30), addr(2), &padded(&[ping, Message::Suspect { incarnation: 0, name: "a", from: "b" }], 64))
        .unwrap();
    assert_eq!(a.incarnation(), 1);
    let s = sent(&out);
    let mut m = Messages::new();
    decode(&s[0].1, &mut m).unwrap();
    assert!(m.iter().any(|m| matches!(m, Message::Alive { name: "a", incarnation: 1, .. })), "{m:?}");
}

/// Drives `a` from `from` to `to` ms, returning the times of the buddy
/// pings it sent to `suspect` and of the queries about it.
fn checks(a: &mut Swim<Rng64>, from: u64, to: u64, suspect: u16) -> (Vec<u64>, Vec<u64>) {
    let (mut buddy_pings, mut queries) = (Vec::new(), Vec::new());
    for t in from..to {
        if a.deadline().is_none_or(|d| d > at(t)) {
            continue;
        }
        for (dest, b) in sent(&timeout_refusing(a, t)) {
            let mut m = Messages::new();
            decode(&b, &mut m).unwrap();
            if dest == addr(suspect) && matches!(m[..], [Message::Ping { .. }, Message::Suspect { .. }, ..]) {
                buddy_pings.push(t);
            }
            if matches!(m[0], Message::Query { .. }) {
                queries.push(t);
            }
        }
    }
    (buddy_pings, queries)
}

#[test]
fn before_a_suspicion_it_only_heard_of_expires_a_member_asks_a_peer() {
    let mut a = node("a", 1);
    learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2), alive("c", 0, 3)])).unwrap();
    // n = 3 expects no confirmations: the timeout is the 4 s minimum.
    a.handle_packet(at(10), addr(3), &packet(&[Message::Suspect { incarnation: 0, name: "b", from: "c" }])).unwrap();
    let (buddy_pings, queries) = checks(&mut a, 11, 3600, 2);
    // The checks run at deadline - 1 000 and - 500 ms (4 010 is the
    // deadline) and ask the only other peer; the suspect is not pinged for
    // them (a's own probe round may still ping it as a probe).
    assert_eq!(queries, [3010, 3510]);
    assert!(!buddy_pings.contains(&3010) && !buddy_pings.contains(&3510), "{buddy_pings:?}");
    assert_eq!(a.stats().last_chance_checks, 2);
    // The peer had the refutation that gossip did not bring us.
    let ev = events(&learn(&mut a, at(3600), addr(3), &packet(&[alive("b", 1, 2)])).unwrap());
    assert_eq!(ev, [Event::Alive { name: MemberName::new("b").unwrap(), incarnation: 1 }]);
    // Past the old deadline: no failure (a later probe of our own may of
    // course suspect the silent b again, at its new incarnation).
    let out = run(&mut a, 3601, 6000);
    assert!(!events(&out).iter().any(|e| matches!(e, Event::Failed { name, .. } if name.as_str() == "b")));
}

#[test]
fn before_a_suspicion_it_raised_expires_a_member_pings_the_suspect() {
    let mut a = node("a", 1);
    learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    // b never answers: a's own probe raises the suspicion.
    let mut raised = None;
    for t in 1..3000 {
        if a.deadline().is_some_and(|d| d <= at(t)) {
            let ev = events(&a.handle_timeout(at(t)));
            if ev.iter().any(|e| matches!(e, Event::Suspected { local: true, .. })) {
                raised = Some(t);
                break;
            }
        }
    }
    let raised = raised.expect("b is suspected by a's own probe");
    let deadline = raised + 4000;
    let (buddy_pings, queries) = checks(&mut a, raised + 1, deadline, 2);
    // The first check pings the suspect; the second would ask a peer, and
    // there is none.
    assert!(queries.is_empty(), "{queries:?}");
    assert!(buddy_pings.contains(&(deadline - 1000)) && !buddy_pings.contains(&(deadline - 500)), "{buddy_pings:?}");
}

#[test]
fn a_silent_suspect_is_still_declared_at_its_deadline() {
    // With stream checks (the default) a member that only heard of the
    // suspicion waits past its deadline for the accusers' verdict (five
    // periods, at least 6 s), asks a peer once more (over a stream too: its own probes go
    // unanswered, so its datagrams are in doubt; refused here), and
    // declares a probe timeout and a moment later. Without them, at the
    // deadline and a moment.
    for (config, expected) in
        [(Config::lan(), 4010 + 6000 + 500 + 1), (Config::lan().with_fallback_ping(false), 4010 + 1)]
    {
        let mut a =
            Swim::new(config, Identity::new(MemberName::new("a").unwrap(), addr(1)), Rng64::seed_from_u64(1)).unwrap();
        learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2), alive("c", 0, 3)])).unwrap();
        a.handle_packet(at(10), addr(3), &packet(&[Message::Suspect { incarnation: 0, name: "b", from: "c" }]))
            .unwrap();
        let mut failed_at = None;
        for t in 11..12_000 {
            if a.deadline().is_some_and(|d| d <= at(t)) {
                for e in events(&timeout_refusing(&mut a, t)) {
                    if matches!(&e, Event::Failed { name, local: true, .. } if name.as_str() == "b") {
                        failed_at.get_or_insert(t);
                    }
                }
            }
        }
        assert_eq!(failed_at, Some(expected), "the checks hold the declaration only as long as they say");
    }
}

#[test]
fn queries_are_answered_with_our_record() {
    let mut a = node("a", 1);
    // Queries carry room for the answer, as ours do.
    let query = |name| padded(&[Message::Query { name }], 64);
    learn(&mut a, at(0), addr(2), &packet(&[alive("b", 2, 2), alive("q", 0, 9)])).unwrap();
    let out = a.handle_packet(at(1), addr(9), &query("b")).unwrap();
    assert_eq!(sent(&out), [(addr(9), packet(&[alive("b", 2, 2)]))]);
    let out = a.handle_packet(at(2), addr(9), &query("a")).unwrap();
    assert_eq!(sent(&out), [(addr(9), packet(&[alive("a", 0, 1)]))]);
    let out = a.handle_packet(at(3), addr(9), &query("zz")).unwrap();
    assert!(sent(&out).is_empty());
    a.handle_packet(at(4), addr(3), &packet(&[Message::Suspect { incarnation: 2, name: "b", from: "c" }])).unwrap();
    let out = a.handle_packet(at(5), addr(9), &query("b")).unwrap();
    assert_eq!(
        sent(&out),
        [(addr(9), packet(&[Message::Suspect { incarnation: 2, name: "b", from: "c" }]))],
        "a suspicion is passed on with its accuser, not as our own confirmation"
    );
    // A query with no room for the answer gets none.
    let out = a.handle_packet(at(6), addr(9), &packet(&[Message::Query { name: "b" }])).unwrap();
    assert!(sent(&out).is_empty());
    assert_eq!(a.stats().replies_dropped, 0, "an answer that does not fit is never built");
}

#[test]
fn a_custom_probe_selector_decides_who_is_probed() {
    use crate::util::rng::Random;
    use crate::{MemberKey, ProbeSelector};
    /// Probes only the first member it was told about.
    struct Fixed(Option<MemberKey>);
    impl ProbeSelector for Fixed {
        fn insert(&mut self, id: MemberKey, _: &crate::MemberView<'_>, _: &mut dyn Random) {
            self.0.get_or_insert(id);
        }
        fn next(&mut self) -> Option<MemberKey> {
            self.0
        }
        fn reset(&mut self, _: &[MemberKey], _: &mut dyn Random) {}
    }
    let mut a = node("a", 1);
    a.set_probe_selector(alloc::boxed::Box::new(Fixed(None)));
    learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2), alive("c", 0, 3), alive("d", 0, 4)])).unwrap();
    let mut pinged = Vec::new();
    for t in 0..10_000 {
        if a.deadline().is_some_and(|d| d <= at(t)) {
            for (to, bytes) in sent(&a.handle_timeout(at(t))) {
                if kinds(&bytes).first() == Some(&0) {
                    pinged.push(to);
                    let mut m = Messages::new();
                    decode(&bytes, &mut m).unwrap();
                    if let Message::Ping { seq, .. } = m[0] {
                        a.handle_packet(at(t), to, &packet_ack(seq)).unwrap();
                    }
                }
            }
        }
    }
    assert!(pinged.len() >= 9);
    assert!(pinged.iter().all(|&to| to == addr(2)), "{pinged:?}");
}

#[test]
fn a_topology_selector_probes_near_members_and_asks_far_ones() {
    use crate::{MemberView, Topology};
    let mut a = node("a", 1);
    let ours = b"r1".to_vec();
    let far = move |m: &MemberView<'_>| u32::from(m.meta != ours.as_slice());
    a.set_probe_selector(alloc::boxed::Box::new(Topology::new(far, 0).with_far_every(4)));
    let member = |name, i, meta| Message::Alive { incarnation: 0, name, addr: addr(i), meta };
    let near = [addr(2), addr(3)];
    learn(
        &mut a,
        at(0),
        addr(2),
        &packet(&[
            member("b", 2, b"r1"),
            member("c", 3, b"r1"),
            member("d", 4, b"r2"),
            member("e", 5, b"r2"),
            member("f", 6, b"r3"),
        ]),
    )
    .unwrap();
    // Everyone answers, but c stops answering its pings after 40 s.
    let (mut pings, mut reqs) = (Vec::new(), Vec::new());
    for t in 0..60_000 {
        if a.deadline().is_none_or(|d| d > at(t)) {
            continue;
        }
        for (to, bytes) in sent(&a.handle_timeout(at(t))) {
            let mut m = Messages::new();
            decode(&bytes, &mut m).unwrap();
            match m[0] {
                Message::Ping { seq, .. } => {
                    pings.push((t, to));
                    if to != addr(3) || t < 40_000 {
                        a.handle_packet(at(t), to, &packet_ack(seq)).unwrap();
                    }
                }
                Message::PingReq { .. } => reqs.push(to),
                _ => {}
            }
        }
    }
    let before: Vec<_> = pings.iter().filter(|(t, _)| *t < 40_000).map(|&(_, to)| to).collect();
    let near_share = before.iter().filter(|to| near.contains(to)).count() as f64 / before.len() as f64;
    // One far probe in five.
    assert!((0.75..=0.85).contains(&near_share), "near share {near_share}: {before:?}");
    for far in [addr(4), addr(5), addr(6)] {
        assert!(before.contains(&far), "far member {far} never probed");
    }
    assert!(!reqs.is_empty(), "c's silence went indirect");
    assert!(reqs.iter().all(|to| !near.contains(to)), "helpers are far members: {reqs:?}");
}

#[test]
fn metadata_changes_are_reported_as_updated() {
    let mut a = node("a", 1);
    learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    let newer = Message::Alive { incarnation: 1, name: "b", addr: addr(2), meta: b"v2" };
    let out = a.handle_packet(at(1), addr(2), &packet(&[newer])).unwrap();
    assert_eq!(events(&out), [Event::Updated { name: MemberName::new("b").unwrap(), addr: addr(2) }]);
    assert_eq!(a.member("b").unwrap().meta, b"v2");
    // A plain incarnation bump with nothing changed is not news.
    let out = a
        .handle_packet(
            at(2),
            addr(2),
            &packet(&[Message::Alive { incarnation: 2, name: "b", addr: addr(2), meta: b"v2" }]),
        )
        .unwrap();
    assert!(events(&out).is_empty());
}

#[test]
fn the_member_table_and_relays_are_bounded() {
    let mut cfg = Config::lan();
    cfg.max_members = core::num::NonZeroU32::new(2).unwrap();
    cfg.max_relays = core::num::NonZeroU32::new(1).unwrap();
    let id = Identity::new(MemberName::new("a").unwrap(), addr(1));
    let mut a = Swim::new(cfg, id, Rng64::seed_from_u64(1)).unwrap();
    learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2), alive("c", 0, 3), alive("d", 0, 4)])).unwrap();
    assert_eq!(a.num_live(), 3);
    assert_eq!(a.stats().table_full, 1);
    let req = |seq| padded(&[Message::PingReq { seq, target: "c", addr: addr(3) }], 40);
    assert_eq!(sent(&a.handle_packet(at(1), addr(2), &req(1)).unwrap()).len(), 1);
    assert!(sent(&a.handle_packet(at(1), addr(2), &req(2)).unwrap()).is_empty());
    assert_eq!(a.stats().relays_dropped, 1);
}

#[test]
fn time_going_backwards_is_taken_as_the_latest_seen() {
    let mut a = node("a", 1);
    learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    let due = a.deadline().unwrap();
    assert!(!a.handle_timeout(due).is_empty());
    let next = a.deadline().unwrap();
    // A clock that jumps back neither fires anything nor moves deadlines.
    assert!(a.handle_timeout(at(0)).is_empty());
    assert_eq!(a.deadline(), Some(next));
}

// ---- Protocol faults: each of these failed before the fix. ----

/// `a` with members b..e (addresses 2..=5), driven until its first probe:
/// returns the probe's target address and sequence number and the time.
fn first_probe(a: &mut Swim<Rng64>) -> (SocketAddr, u32, u64) {
    let members = [alive("b", 0, 2), alive("c", 0, 3), alive("d", 0, 4), alive("e", 0, 5)];
    learn(a, at(0), addr(9), &packet(&members)).unwrap();
    for t in 1..2000 {
        if a.deadline().is_none_or(|d| d > at(t)) {
            continue;
        }
        for (to, bytes) in sent(&a.handle_timeout(at(t))) {
            let mut m = Messages::new();
            decode(&bytes, &mut m).unwrap();
            if let Message::Ping { seq, .. } = m[0] {
                return (to, seq, t);
            }
        }
    }
    panic!("no probe within 2 s");
}

fn name_at(a: SocketAddr) -> &'static str {
    ["b", "c", "d", "e"][usize::from(a.port() - 7002)]
}

#[test]
fn a_nack_counts_only_from_a_helper_we_asked() {
    let mut a = node("a", 1);
    let (target, seq, t0) = first_probe(&mut a);
    // Before the probe went indirect, nobody was asked: a nack is junk.
    let out = a.handle_packet(at(t0 + 10), addr(7), &packet(&[Message::Nack { seq }])).unwrap();
    assert!(events(&out).is_empty(), "{out:?}");
    assert_eq!(a.member(name_at(target)).unwrap().state, MemberState::Alive);
    assert_eq!(a.local_health(), 0);
    // The direct ping times out: the probe goes to helpers.
    let out = run(&mut a, t0 + 11, t0 + 600);
    let helpers: Vec<SocketAddr> = sent(&out)
        .into_iter()
        .filter(|(_, b)| kinds(b).first() == Some(&Message::PingReq { seq: 0, target: "", addr: target }.kind()))
        .map(|(to, _)| to)
        .collect();
    assert_eq!(helpers.len(), 3);
    // A nack from a member we did not ask, and a helper's nack twice.
    let stranger = [2, 3, 4, 5].map(addr).into_iter().find(|x| *x != target && !helpers.contains(x)).unwrap_or(addr(8));
    a.handle_packet(at(t0 + 700), stranger, &packet(&[Message::Nack { seq }])).unwrap();
    a.handle_packet(at(t0 + 700), helpers[0], &packet(&[Message::Nack { seq }])).unwrap();
    a.handle_packet(at(t0 + 701), helpers[0], &packet(&[Message::Nack { seq }])).unwrap();
    assert_eq!(a.stats().nacks_received, 1);
    // At the period's end the probe fails with two nacks missing.
    run(&mut a, t0 + 702, t0 + 1000);
    assert_eq!(a.member(name_at(target)).unwrap().state, MemberState::Suspect);
    assert_eq!(a.local_health(), 2);
}

#[test]
fn a_late_direct_ack_clears_the_probe_after_every_helper_nacked() {
    let mut a = node("a", 1);
    let (target, seq, t0) = first_probe(&mut a);
    let out = run(&mut a, t0 + 1, t0 + 600);
    let helpers: Vec<SocketAddr> = sent(&out).into_iter().map(|(to, _)| to).filter(|to| *to != target).collect();
    assert!(!helpers.is_empty());
    for &h in &helpers {
        let ev = events(&a.handle_packet(at(t0 + 900), h, &packet(&[Message::Nack { seq }])).unwrap());
        assert!(ev.is_empty(), "no verdict before the period ends: {ev:?}");
    }
    // The target's own ack, late but within the period.
    a.handle_packet(at(t0 + 950), target, &packet_ack(seq)).unwrap();
    let out = run(&mut a, t0 + 951, t0 + 1000);
    assert!(!events(&out).iter().any(|e| matches!(e, Event::Suspected { .. })), "{out:?}");
    assert_eq!(a.member(name_at(target)).unwrap().state, MemberState::Alive);
    assert_eq!(a.stats().probes_acked, 1);
    assert_eq!(a.local_health(), 0);
}

/// a hears (by gossip, if `gossiped`) that b suspects c, then d's table
/// lists `record` about c; everyone, c included, answers a's probes (c is
/// alive but slow to refute), so a's own probes confirm nothing. When
/// does a declare c?
fn failed_after_a_table_lists(record: Message<'_>, gossiped: bool) -> Option<u64> {
    let mut a = node("a", 1);
    let members = [alive("b", 0, 2), alive("c", 0, 3), alive("d", 0, 4), alive("e", 0, 5), alive("f", 0, 6)];
    learn(&mut a, at(0), addr(9), &packet(&members)).unwrap();
    // n = 6: the suspicion starts at 6 x 4 s and expects 2 confirmations.
    if gossiped {
        a.handle_packet(at(10), addr(2), &packet(&[Message::Suspect { incarnation: 0, name: "c", from: "b" }]))
            .unwrap();
    }
    let table = frame(&[Message::SyncRequest { join: false }, alive("d", 0, 4), record, Message::SyncEnd]);
    let id = crate::StreamId::Inbound(1);
    let mut out = Vec::new();
    a.handle(at(20), Input::StreamAccepted { id, from: addr(4) }, &mut out).unwrap();
    a.handle(at(20), Input::StreamFrame { id, frame: &table }, &mut out).unwrap();
    assert!(out.iter().any(|x| matches!(x, Action::SendFrame { .. })), "a answered with its table");
    for t in 21..40_000 {
        if a.deadline().is_none_or(|d| d > at(t)) {
            continue;
        }
        let out = a.handle_timeout(at(t));
        if events(&out).iter().any(|e| matches!(e, Event::Failed { name, .. } if name.as_str() == "c")) {
            return Some(t);
        }
        for (to, b) in sent(&out) {
            let mut m = Messages::new();
            decode(&b, &mut m).unwrap();
            if let Message::Ping { seq, .. } = m[0] {
                a.handle_packet(at(t), to, &packet_ack(seq)).unwrap();
            }
        }
    }
    None
}

#[test]
fn a_table_sync_is_not_a_confirmation_of_a_suspicion() {
    // d's table lists c as suspect, naming d.
    let failed_at = failed_after_a_table_lists(Message::Suspect { incarnation: 0, name: "c", from: "d" }, true);
    // 24 010 is the suspicion's own deadline; a member that only heard of
    // it then waits 6 s for the accusers' verdict, asks peers once more,
    // and declares a probe timeout and a moment later.
    assert_eq!(failed_at, Some(24_010 + 6_000 + 500 + 1), "the relayed record did not shorten the suspicion");
}

#[test]
fn a_death_in_a_table_is_a_suspicion_whose_verdict_is_already_in() {
    let dead = Message::Dead { incarnation: 0, name: "c", from: "d" };
    // Taken as a suspicion (c may refute), with the full timeout, but
    // declared at its deadline and a moment: d has already declared, so
    // there is no verdict to wait for, and d's own Dead may be long gone
    // from gossip (and c from d's table) by then.
    assert_eq!(failed_after_a_table_lists(dead.clone(), false), Some(20 + 24_000 + 1));
    // A suspicion already heard of by gossip (b accuses) learns the same,
    // and d's declaration counts as a second, independent accuser: the
    // timeout shrinks to its one-confirmation length, 11 381 ms from the
    // start (the Lifeguard formula at n = 6, k = 2), and a declares then.
    assert_eq!(failed_after_a_table_lists(dead, true), Some(10 + 11_381 + 1));
}

#[test]
fn a_leave_evicted_from_a_full_queue_is_not_reported_complete_unsent() {
    let mut cfg = Config::lan();
    cfg.max_queued_updates = core::num::NonZeroU32::new(1).unwrap();
    cfg.gossip_nodes = 0;
    let id = Identity::new(MemberName::new("a").unwrap(), addr(1));
    let mut a = Swim::new(cfg, id, Rng64::seed_from_u64(1)).unwrap();
    learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    run(&mut a, 1, 3000);
    let out = a.leave(at(3000)).unwrap();
    assert!(!events(&out).contains(&Event::LeaveCompleted));
    // News of a stranger fills the one-entry queue.
    let out = learn(&mut a, at(3001), addr(3), &packet(&[alive("x", 0, 3)])).unwrap();
    assert!(!events(&out).contains(&Event::LeaveCompleted), "the leave was never sent");
    // It completes once the leave has gone out, on a's probes.
    let mut leaves_sent = 0;
    let mut completed = false;
    for t in 3002..9000 {
        if a.deadline().is_none_or(|d| d > at(t)) {
            continue;
        }
        let out = a.handle_timeout(at(t));
        for (_, b) in sent(&out) {
            let mut m = Messages::new();
            decode(&b, &mut m).unwrap();
            leaves_sent += m.iter().filter(|m| matches!(m, Message::Dead { name: "a", from: "a", .. })).count();
        }
        if events(&out).contains(&Event::LeaveCompleted) {
            completed = true;
            break;
        }
    }
    assert!(completed);
    assert!(leaves_sent > 0);
}

#[test]
fn an_incarnation_is_never_pinned_at_the_maximum() {
    let mut a = node("a", 1);
    learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    let suspect = |inc| packet(&[Message::Suspect { incarnation: inc, name: "a", from: "b" }]);
    // Rumours walk a's incarnation up to the top of the number space.
    a.handle_packet(at(1), addr(2), &suspect(0x7fff_fff0)).unwrap();
    assert_eq!(a.incarnation(), 0x7fff_fff1);
    a.handle_packet(at(2), addr(2), &suspect(0xffff_fff0)).unwrap();
    assert_eq!(a.incarnation(), 0xffff_fff1);
    a.handle_packet(at(3), addr(2), &suspect(u32::MAX)).unwrap();
    // Counting goes on past the maximum...
    assert_eq!(a.incarnation(), 0);
    // ...and a peer that holds the rumour takes the refutation.
    let mut c = node("c", 3);
    learn(&mut c, at(0), addr(1), &packet(&[alive("a", 0xffff_fff1, 1)])).unwrap();
    c.handle_packet(at(1), addr(2), &suspect(u32::MAX)).unwrap();
    assert_eq!(c.member("a").unwrap().state, MemberState::Suspect);
    let ev = events(&learn(&mut c, at(2), addr(1), &packet(&[alive("a", 0, 1)])).unwrap());
    assert_eq!(ev, [Event::Alive { name: MemberName::new("a").unwrap(), incarnation: 0 }]);
    // A rumour far behind (serially older) is not news.
    let ev = events(&c.handle_packet(at(3), addr(2), &suspect(0x8000_0005)).unwrap());
    assert!(ev.is_empty(), "{ev:?}");
}

#[test]
fn a_claim_far_ahead_of_the_held_incarnation_is_ignored_and_counted() {
    let window = crate::protocol::table::record::INCARNATION_WINDOW;
    let mut a = node("a", 1);
    learn(&mut a, at(0), addr(2), &packet(&[alive("b", 5, 2)])).unwrap();
    let dead = |inc| Message::Dead { incarnation: inc, name: "b", from: "x" };
    // Forged without a key: claims half the number space ahead, and just
    // past the window, neither declare, suspect, move nor take b.
    let half = 5 + (1 << 31) - 1;
    let forged = [
        dead(half),
        Message::Suspect { incarnation: half, name: "b", from: "x" },
        Message::Dead { incarnation: half, name: "b", from: "b" },
        alive("b", half, 2),
        alive("b", half, 9),
        dead(5 + window + 1),
        Message::Suspect { incarnation: 5 + window + 1, name: "b", from: "x" },
        alive("b", 5 + 2 * window + 1, 2),
    ];
    for (k, m) in forged.iter().enumerate() {
        let ev = events(&a.handle_packet(at(1 + k as u64), addr(9), &packet(core::slice::from_ref(m))).unwrap());
        assert!(ev.is_empty(), "{m:?}: {ev:?}");
        let b = a.member("b").unwrap();
        assert_eq!((b.state, b.incarnation, b.addr), (MemberState::Alive, 5, addr(2)), "{m:?}");
        assert_eq!(a.stats().incarnation_leaps, k as u64 + 1);
    }
    // A claim at the edge of the window is an ordinary newer claim (a
    // death heard by gossip, believed once b has not answered its check)...
    assert!(events(&a.handle_packet(at(20), addr(9), &packet(&[dead(5 + window)])).unwrap()).is_empty());
    let ev = events(&run(&mut a, 21, 600));
    assert!(matches!(&ev[..], [Event::Failed { incarnation, .. }] if *incarnation == 5 + window), "{ev:?}");
    // ...and the member's answer to it is taken, even by a peer that
    // never heard the claim.
    let refutation = packet(&[alive("b", 5 + window + 1, 2)]);
    a.handle_packet(at(601), addr(2), &refutation).unwrap();
    assert_eq!(a.member("b").unwrap().state, MemberState::Alive);
    let mut c = node("c", 3);
    learn(&mut c, at(0), addr(2), &packet(&[alive("b", 5, 2)])).unwrap();
    c.handle_packet(at(601), addr(2), &refutation).unwrap();
    assert_eq!(c.member("b").unwrap().incarnation, 5 + window + 1);
    assert_eq!(a.stats().incarnation_leaps + c.stats().incarnation_leaps, forged.len() as u64);
}

#[test]
fn a_member_pushed_far_ahead_returns_to_the_incarnation_its_peers_hold() {
    let mut a = node("a", 1);
    learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    // A rumour about ourselves is always outbid: after a restart our old
    // record may be anywhere ahead of the 0 we start from.
    a.handle_packet(at(1), addr(9), &packet(&[Message::Dead { incarnation: 0x7fff_ffff, name: "a", from: "x" }]))
        .unwrap();
    assert_eq!(a.incarnation(), 0x8000_0000);
    // If that was a forgery, b still holds us at 0 and will not take an
    // alive that far ahead: its accusation, or its record of our alive as
    // a table sync brings it, is answered one past it, which it takes.
    let suspected = Message::Suspect { incarnation: 0, name: "a", from: "b" };
    a.handle_packet(at(2), addr(2), &packet(&[suspected])).unwrap();
    assert_eq!(a.incarnation(), 1);
    // A rumour serially behind us but out of reach is no different.
    a.handle_packet(at(3), addr(9), &packet(&[Message::Suspect { incarnation: 0x9000_0000, name: "a", from: "x" }]))
        .unwrap();
    assert_eq!(a.incarnation(), 0x9000_0001);
    learn(&mut a, at(4), addr(2), &packet(&[alive("a", 1, 1)])).unwrap();
    assert_eq!(a.incarnation(), 2);
    // Within the window a stale record is only answered with our alive.
    a.handle_packet(at(5), addr(2), &packet(&[Message::Suspect { incarnation: 1, name: "a", from: "b" }])).unwrap();
    assert_eq!(a.incarnation(), 2);
}

#[test]
fn a_forged_death_half_the_number_space_ahead_leaves_every_table_in_agreement() {
    let mut mesh = mesh_of(&Config::lan(), &["a", "b", "c", "d"], 5_000);
    assert!(all_alive(&mesh));
    let held = mesh.nodes[2].incarnation();
    let forged = packet(&[Message::Dead { incarnation: held.wrapping_add(0x7fff_ffff), name: "c", from: "x" }]);
    // Every member but d hears it, c included.
    for i in 0..3 {
        let _ = mesh.input(i, 5_001, Input::Packet { from: addr(9), bytes: &forged });
    }
    mesh.run(5_002, 70_000);
    assert_eq!(failed_events(&mesh, "c"), 0, "nobody took c for failed");
    assert!(all_alive(&mesh));
    let own = mesh.nodes[2].incarnation();
    for i in [0, 1, 3] {
        assert_eq!(mesh.nodes[i].member("c").unwrap().incarnation, own, "node {i} agrees with c");
    }
}

/// Two members wired back to back (no latency); returns how many times
/// each was woken by its timer between `quiet_from` and `to` ms.
fn wakeups_of_a_quiet_pair(quiet_from: u64, to: u64) -> [u32; 2] {
    let mut mesh = Mesh::new(alloc::vec![node("a", 1), node("b", 2)]);
    mesh.input(1, 0, Input::Join { seeds: &[addr(1)] }).unwrap();
    mesh.run(0, quiet_from - 1);
    mesh.wakeups = alloc::vec![0; 2];
    mesh.run(quiet_from, to);
    [mesh.wakeups[0], mesh.wakeups[1]]
}
#[test]
fn an_idle_member_wakes_once_a_period() {
    // After the join's updates have spread, only the protocol period wakes
    // a member: one wake-up a period (the timeout of an acked probe is
    // dropped).
    // Gossip ticking on an empty queue would add 5 wake-ups a second.
    let [a, b] = wakeups_of_a_quiet_pair(10_000, 29_999);
    for w in [a, b] {
        assert!(w <= 20 + 2, "{w} wake-ups in 20 s");
    }
}

/// `names` joined through the first, settled for `ms`.
fn mesh_of(config: &Config, names: &[&str], ms: u64) -> Mesh {
    let nodes = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let id = Identity::new(MemberName::new(n).unwrap(), addr(i as u16 + 1));
            Swim::new(config.clone(), id, Rng64::seed_from_u64(i as u64 + 1)).unwrap()
        })
        .collect();
    let mut mesh = Mesh::new(nodes);
    for i in 1..names.len() {
        mesh.input(i, 0, Input::Join { seeds: &[addr(1)] }).unwrap();
    }
    mesh.run(0, ms);
    mesh
}

fn failed_events(mesh: &Mesh, name: &str) -> usize {
    mesh.events.iter().filter(|(_, e)| matches!(e, Event::Failed { name: n, .. } if n.as_str() == name)).count()
}

fn all_alive(mesh: &Mesh) -> bool {
    let names: Vec<MemberName> = mesh.nodes.iter().map(|s| s.local().name.clone()).collect();
    mesh.nodes.iter().all(|s| names.iter().all(|n| s.member(n.as_str()).is_some_and(|m| m.state == MemberState::Alive)))
}

#[test]
fn a_member_whose_datagrams_are_lost_is_saved_by_the_stream_ping() {
    for fallback in [true, false] {
        let config = Config::lan().with_fallback_ping(fallback);
        let mut mesh = mesh_of(&config, &["a", "b", "c"], 5_000);
        assert!(all_alive(&mesh));
        // Every datagram c sends is lost; its streams work.
        mesh.drop_datagram = |from, _| from == 2;
        mesh.run(5_001, 60_000);
        let acks: u64 = mesh.nodes.iter().map(|s| s.stats().fallback_acks).sum();
        if fallback {
            assert_eq!(failed_events(&mesh, "c"), 0, "c answered over streams");
            assert!(acks > 0);
        } else {
            assert!(failed_events(&mesh, "c") > 0, "without the stream ping c is lost");
            assert_eq!(acks, 0);
        }
    }
}

#[test]
fn a_healed_partition_merges_again_through_reconnects() {
    for reconnect in [Some(Duration::from_secs(30)), None] {
        let config = Config::lan().with_reconnect_interval(reconnect);
        let mut mesh = mesh_of(&config, &["a", "b", "c", "d"], 5_000);
        assert!(all_alive(&mesh));
        // {a, b} | {c, d}, long enough that each side fails and reaps the other.
        mesh.cut = |i, j| (i < 2) != (j < 2);
        mesh.run(5_001, 90_000);
        assert!(failed_events(&mesh, "c") > 0 && failed_events(&mesh, "a") > 0);
        assert!(mesh.nodes[0].member("c").is_none(), "reaped after dead_member_retention");
        mesh.cut = |_, _| false;
        mesh.run(90_001, 160_000);
        assert_eq!(all_alive(&mesh), reconnect.is_some(), "reconnect {reconnect:?}");
    }
}

#[test]
fn set_meta_bumps_the_incarnation_and_others_see_it() {
    let mut mesh = mesh_of(&Config::lan(), &["a", "b"], 3_000);
    let before = mesh.nodes[0].incarnation();
    assert_eq!(mesh.input(0, 3_001, Input::SetMeta { meta: &[0; 513] }), Err(Error::MetaTooLong));
    mesh.input(0, 3_001, Input::SetMeta { meta: b"role=db" }).unwrap();
    assert_eq!(mesh.nodes[0].incarnation(), before + 1);
    mesh.run(3_002, 6_000);
    assert_eq!(mesh.nodes[1].member("a").unwrap().meta, b"role=db");
    let updated = Event::Updated { name: MemberName::new("a").unwrap(), addr: addr(1) };
    assert!(mesh.events_of(1).any(|e| *e == updated));
}

#[test]
fn broadcasts_are_delivered_once_everywhere_in_lamport_order() {
    let mut mesh = mesh_of(&Config::lan(), &["a", "b", "c"], 3_000);
    mesh.input(0, 3_001, Input::Broadcast { payload: b"one" }).unwrap();
    mesh.run(3_002, 8_000);
    mesh.input(2, 8_001, Input::Broadcast { payload: b"two" }).unwrap();
    mesh.run(8_002, 15_000);
    let user = |i: usize| -> Vec<(u64, Vec<u8>)> {
        mesh.events_of(i)
            .filter_map(
                |e| if let Event::User { ltime, payload, .. } = e { Some((*ltime, payload.clone())) } else { None },
            )
            .collect()
    };
    for i in 0..3 {
        assert_eq!(user(i), [(0, b"one".to_vec()), (1, b"two".to_vec())], "node {i}");
    }
    assert_eq!(mesh.input(0, 15_001, Input::Broadcast { payload: &[0; 1025] }), Err(Error::TooLarge));
}

#[test]
fn direct_messages_arrive_and_a_failed_reliable_one_is_reported() {
    let mut mesh = mesh_of(&Config::lan(), &["a", "b"], 3_000);
    mesh.input(0, 3_001, Input::Message { to: "b", payload: b"dgram", reliable: false }).unwrap();
    mesh.input(0, 3_001, Input::Message { to: "b", payload: b"stream", reliable: true }).unwrap();
    let got: Vec<(Vec<u8>, bool)> = mesh
        .events_of(1)
        .filter_map(|e| {
            if let Event::Message { payload, reliable, .. } = e { Some((payload.clone(), *reliable)) } else { None }
        })
        .collect();
    assert_eq!(got, [(b"dgram".to_vec(), false), (b"stream".to_vec(), true)]);
    assert_eq!(
        mesh.input(0, 3_002, Input::Message { to: "zz", payload: b"x", reliable: true }),
        Err(Error::UnknownMember)
    );
    mesh.streams = false;
    mesh.input(0, 3_003, Input::Message { to: "b", payload: b"lost", reliable: true }).unwrap();
    assert!(mesh.events_of(0).any(|e| *e == Event::MessageFailed { to: MemberName::new("b").unwrap() }));
    assert_eq!(mesh.events_of(0).filter(|e| matches!(e, Event::MessageFailed { .. })).count(), 1, "only the lost one");
}

#[test]
fn application_state_travels_in_the_join_sync() {
    let mut mesh = Mesh::new(alloc::vec![node("a", 1), node("b", 2)]);
    mesh.input(0, 0, Input::SetAppState { state: b"A" }).unwrap();
    mesh.input(1, 0, Input::SetAppState { state: b"B" }).unwrap();
    mesh.input(1, 0, Input::Join { seeds: &[addr(1)] }).unwrap();
    let state = |i: usize| {
        mesh.events_of(i).find_map(|e| {
            if let Event::AppState { from, join, state } = e {
                Some((from.as_str().to_string(), *join, state.clone()))
            } else {
                None
            }
        })
    };
    assert_eq!(state(0), Some(("b".into(), true, b"B".to_vec())));
    assert_eq!(state(1), Some(("a".into(), true, b"A".to_vec())));
}

#[test]
fn a_malformed_frame_closes_its_stream_and_changes_nothing() {
    let mut a = node("a", 1);
    learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    let id = crate::StreamId::Inbound(7);
    let mut out = Vec::new();
    a.handle(at(1), Input::StreamAccepted { id, from: addr(3) }, &mut out).unwrap();
    let mut bad = frame(&[Message::SyncRequest { join: false }, alive("c", 0, 3)]);
    bad.push(0x04);
    let before = (a.num_live(), a.incarnation());
    out.clear();
    assert!(rejected_with(&mut a, at(2), Input::StreamFrame { id, frame: &bad }, &mut out).is_some());
    assert!(out.contains(&Action::CloseStream { id }));
    assert_eq!((a.num_live(), a.incarnation()), before);
    assert!(a.member("c").is_none());
    assert_eq!(a.open_streams(), 0);
    // Frames on a stream that is gone are ignored.
    out.clear();
    a.handle(at(3), Input::StreamFrame { id, frame: &frame(&[alive("c", 0, 3)]) }, &mut out).unwrap();
    assert!(a.member("c").is_none());
}

#[test]
fn streams_beyond_the_cap_are_refused_and_silent_ones_time_out() {
    let cfg = Config::lan().with_max_streams(core::num::NonZeroU32::new(2).unwrap());
    let mut a = Swim::new(cfg, Identity::new(MemberName::new("a").unwrap(), addr(1)), Rng64::seed_from_u64(1)).unwrap();
    let mut out = Vec::new();
    for n in 1..=3 {
        a.handle(at(0), Input::StreamAccepted { id: crate::StreamId::Inbound(n), from: addr(5) }, &mut out).unwrap();
    }
    assert_eq!(a.open_streams(), 2);
    assert!(out.contains(&Action::CloseStream { id: crate::StreamId::Inbound(3) }));
    assert_eq!(a.stats().streams_refused, 1);
    // A stream reserved by an outbound id is not the runtime's to accept.
    out.clear();
    a.handle(at(0), Input::StreamAccepted { id: crate::StreamId::Outbound(9), from: addr(5) }, &mut out).unwrap();
    assert_eq!(a.open_streams(), 2);
    // Nothing arrives: both are given up after the stream timeout.
    let out = run(&mut a, 1, 10_001);
    assert_eq!(out.iter().filter(|x| matches!(x, Action::CloseStream { .. })).count(), 2);
    assert_eq!(a.open_streams(), 0);
}

#[test]
fn a_node_restarted_at_a_new_address_rejoins_cleanly() {
    let mut mesh = mesh_of(&Config::lan(), &["a", "b", "c"], 5_000);
    // c restarts with no memory, at a new address, and joins through a.
    let id = Identity::new(MemberName::new("c").unwrap(), addr(13));
    mesh.nodes[2] = Swim::new(Config::lan(), id, Rng64::seed_from_u64(99)).unwrap();
    mesh.input(2, 5_001, Input::Join { seeds: &[addr(1)] }).unwrap();
    mesh.run(5_002, 60_000);
    assert_eq!(failed_events(&mesh, "c"), 0);
    for i in 0..2 {
        let c = mesh.nodes[i].member("c").unwrap();
        assert_eq!((c.state, c.addr), (MemberState::Alive, addr(13)), "node {i}");
    }
    assert!(mesh.nodes[2].incarnation() > 0, "c outbid its old self");
}

#[test]
fn a_member_restarted_from_0_outbids_an_old_record_far_beyond_the_window() {
    let far = 40 * crate::protocol::table::record::INCARNATION_WINDOW;
    let mut nodes = alloc::vec![node("a", 1), node("b", 2), node("c", 3)];
    // c's old life ran its incarnation far up before the others met it.
    let rumour = packet(&[Message::Suspect { incarnation: far, name: "c", from: "x" }]);
    nodes[2].handle_packet(at(0), addr(9), &rumour).unwrap();
    let mut mesh = Mesh::new(nodes);
    for i in 1..3 {
        mesh.input(i, 0, Input::Join { seeds: &[addr(1)] }).unwrap();
    }
    mesh.run(0, 5_000);
    assert!(all_alive(&mesh));
    assert_eq!(mesh.nodes[0].member("c").unwrap().incarnation, far + 1);
    // c restarts with no memory, from 0, at its address, and rejoins.
    let id = Identity::new(MemberName::new("c").unwrap(), addr(3));
    mesh.nodes[2] = Swim::new(Config::lan(), id, Rng64::seed_from_u64(99)).unwrap();
    mesh.input(2, 5_001, Input::Join { seeds: &[addr(1)] }).unwrap();
    mesh.run(5_002, 60_000);
    assert_eq!(failed_events(&mesh, "c"), 0);
    assert!(all_alive(&mesh));
    let own = mesh.nodes[2].incarnation();
    assert_eq!(own, far + 2, "c outbid its old record by one");
    for i in 0..2 {
        assert_eq!(mesh.nodes[i].member("c").unwrap().incarnation, own, "node {i}");
    }
}

#[test]
fn a_new_member_syncs_again_soon_after_its_join() {
    let mut mesh = Mesh::new(alloc::vec![node("a", 1), node("b", 2)]);
    mesh.input(1, 0, Input::Join { seeds: &[addr(1)] }).unwrap();
    mesh.run(1, 10_000);
    let opened =
        |mesh: &Mesh| mesh.actions.iter().filter(|(i, a)| *i == 1 && matches!(a, Action::OpenStream { .. })).count();
    // The join's sync, then two more within 2-4 protocol periods of each
    // other (EARLY_SYNC_PERIODS), well before the 30 s push-pull interval.
    assert!(
        opened(&mesh) > crate::protocol::lifecycle::EARLY_SYNCS as usize,
        "{} syncs: the join's and the early ones",
        opened(&mesh)
    );
    let early = opened(&mesh);
    mesh.run(10_001, 40_000);
    assert!(opened(&mesh) - early <= 2, "then the regular interval");
}

#[test]
fn a_failed_periodic_sync_is_tried_again_a_period_later_a_bounded_number_of_times() {
    let mut mesh = Mesh::new(alloc::vec![node("a", 1), node("b", 2), node("c", 3)]);
    for (i, j) in [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)] {
        let name = ["a", "b", "c"][j];
        mesh.input(i, 0, Input::Packet { from: addr(j as u16 + 1), bytes: &packet(&[alive(name, 0, j as u16 + 1)]) })
            .unwrap();
    }
    // Every stream is refused; datagrams get through, so only syncs open
    // streams.
    mesh.streams = false;
    let opens =
        |mesh: &Mesh| mesh.actions.iter().filter(|(i, a)| *i == 0 && matches!(a, Action::OpenStream { .. })).count();
    let mut opened = Vec::new();
    for t in 1..=95_000 {
        let before = opens(&mesh);
        mesh.run(t, t);
        opened.extend(core::iter::repeat_n(t, opens(&mesh) - before));
    }
    let gaps: Vec<u64> = opened.windows(2).map(|w| w[1] - w[0]).collect();
    // Each regular sync (30 s apart) is followed by two retries, one
    // protocol period apart, and no more.
    let retries = gaps.iter().filter(|&&g| g == 1_000).count();
    assert!(retries >= 4, "syncs opened at {opened:?}");
    assert!(gaps.windows(3).all(|w| w.iter().any(|&g| g > 1_000)), "syncs opened at {opened:?}");
    assert!(opened.len() <= 3 * 4, "syncs opened at {opened:?}");
}

/// a holds b and c alive; c's gossip says b is dead. Returns when a
/// reported b failed (within 5 s), given whether b answers a's check with
/// a refutation.
fn failed_after_a_gossiped_death(b_answers: bool) -> (Option<u64>, bool) {
    let mut a = node("a", 1);
    learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2), alive("c", 0, 3)])).unwrap();
    let dead = Message::Dead { incarnation: 0, name: "b", from: "c" };
    let out = a.handle_packet(at(10), addr(3), &packet(core::slice::from_ref(&dead))).unwrap();
    let mut failed = events(&out).iter().any(|e| matches!(e, Event::Failed { .. })).then_some(10);
    // The check: a bare ping to b, no larger than the death was.
    let mut checked = false;
    for (to, bytes) in sent(&out) {
        let mut m = Messages::new();
        decode(&bytes, &mut m).unwrap();
        if let (true, [Message::Ping { seq, target: "b" }]) = (to == addr(2), m.as_slice()) {
            checked = true;
            assert!(
                bytes.len() <= packet(core::slice::from_ref(&dead)).len(),
                "the check costs no more than the death"
            );
            if b_answers {
                // Its ack alone holds the death back.
                a.handle_packet(at(11), addr(2), &packet(&[Message::Ack { seq: *seq }])).unwrap();
            }
        }
    }
    for t in 12..5_000 {
        if a.deadline().is_some_and(|d| d <= at(t)) {
            let out = a.handle_timeout(at(t));
            if failed.is_none()
                && events(&out).iter().any(|e| matches!(e, Event::Failed { name, .. } if name.as_str() == "b"))
            {
                failed = Some(t);
            }
        }
    }
    (failed, checked)
}

#[test]
fn a_death_declared_elsewhere_is_checked_with_the_member_before_it_is_believed() {
    // A running member answers: never reported failed.
    assert_eq!(failed_after_a_gossiped_death(true), (None, true));
    // A silent one is failed a probe timeout later.
    let (failed, checked) = failed_after_a_gossiped_death(false);
    assert!(checked);
    assert_eq!(failed, Some(510));
    // A repeat of the death while it is checked changes nothing.
    let mut a = node("a", 1);
    learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2), alive("c", 0, 3), alive("d", 0, 4)])).unwrap();
    a.handle_packet(at(10), addr(3), &packet(&[Message::Dead { incarnation: 0, name: "b", from: "c" }])).unwrap();
    let out =
        a.handle_packet(at(20), addr(4), &packet(&[Message::Dead { incarnation: 0, name: "b", from: "d" }])).unwrap();
    assert!(events(&out).is_empty() && sent(&out).iter().all(|(to, _)| *to != addr(2)));
    assert_eq!(a.stats().deaths_checked, 1);
}

/// Syncs a opens over a minute in a three-member mesh, with datagrams to
/// it dropped (`deaf`) or not.
fn syncs_in_a_minute(deaf: bool) -> usize {
    let mut mesh = Mesh::new(alloc::vec![node("a", 1), node("b", 2), node("c", 3)]);
    for (i, j) in [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)] {
        let name = ["a", "b", "c"][j];
        mesh.input(i, 0, Input::Packet { from: addr(j as u16 + 1), bytes: &packet(&[alive(name, 0, j as u16 + 1)]) })
            .unwrap();
    }
    if deaf {
        mesh.drop_datagram = |_, to| to == 0;
    }
    mesh.run(1, 60_000);
    let sync = Message::SyncRequest { join: false }.kind();
    let mine: Vec<Action> = mesh.actions.iter().filter(|(i, _)| *i == 0).map(|(_, a)| a.clone()).collect();
    checks_opened(&mine).iter().filter(|(_, kinds)| kinds.first() == Some(&sync)).count()
}

#[test]
fn a_member_whose_probes_come_back_only_over_streams_syncs_every_few_periods() {
    let (hearing, deaf) = (syncs_in_a_minute(false), syncs_in_a_minute(true));
    assert!(hearing <= 3, "{hearing} syncs in a minute at the regular interval");
    assert!(
        deaf >= 8,
        "{deaf} syncs in a minute while deaf: one every {} periods",
        crate::protocol::lifecycle::DEAF_SYNC_PERIODS
    );
}

/// a and b, b silent; every stream a opens ends with `end` at once.
/// Returns when a suspected b and when it declared b failed.
fn suspected_and_failed_when_streams_end(end: crate::StreamEnd) -> (Option<u64>, Option<u64>) {
    let mut a = node("a", 1);
    learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    let (mut suspected, mut failed) = (None, None);
    for t in 1..60_000 {
        if a.deadline().is_none_or(|d| d > at(t)) {
            continue;
        }
        let mut out = a.handle_timeout(at(t));
        let opened: Vec<crate::StreamId> =
            out.iter().filter_map(|x| if let Action::OpenStream { id, .. } = x { Some(*id) } else { None }).collect();
        for id in opened {
            a.handle(at(t), Input::StreamClosed { id, end }, &mut out).unwrap();
        }
        for e in events(&out) {
            match e {
                Event::Suspected { local: true, .. } => suspected = suspected.or(Some(t)),
                Event::Failed { .. } => failed = failed.or(Some(t)),
                _ => {}
            }
        }
    }
    (suspected, failed)
}

#[test]
fn a_host_that_says_nothing_listens_makes_the_member_suspect_and_failed_within_a_period() {
    let (s_refused, f_refused) = suspected_and_failed_when_streams_end(crate::StreamEnd::Refused);
    let (s_closed, f_closed) = suspected_and_failed_when_streams_end(crate::StreamEnd::NotListening);
    let (s_refused, f_refused, s_closed, f_closed) =
        (s_refused.unwrap(), f_refused.unwrap(), s_closed.unwrap(), f_closed.unwrap());
    // The stream ping goes out at the probe timeout; the host's answer
    // makes b suspect then, not at the end of the period...
    assert_eq!(s_refused - s_closed, 500, "suspected at {s_closed} ms, else at {s_refused} ms");
    // ...and failed one period later, not a whole suspicion later.
    assert!(f_closed - s_closed <= 1_001, "failed {} ms after the suspicion", f_closed - s_closed);
    assert!(f_refused - s_refused >= 4_000, "a refusal for another reason is no such evidence");
}

#[test]
fn a_suspect_heard_from_is_told_of_the_suspicion_once_a_period() {
    let mut a = node("a", 1);
    learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2), alive("c", 0, 3)])).unwrap();
    a.handle_packet(at(10), addr(3), &packet(&[Message::Suspect { incarnation: 0, name: "b", from: "c" }])).unwrap();
    let told = |out: &[Action]| {
        sent(out).iter().any(|(to, bytes)| {
            let mut m = Messages::new();
            decode(bytes, &mut m).unwrap();
            // Its own datagram, not an ack that carries gossip.
            *to == addr(2) && matches!(m.iter().next(), Some(Message::Suspect { name: "b", from: "c", .. }))
        })
    };
    // b pings a: it is running, and has not refuted.
    let ping = packet(&[Message::Ping { seq: 7, target: "a" }]);
    assert!(told(&a.handle_packet(at(20), addr(2), &ping).unwrap()));
    assert!(!told(&a.handle_packet(at(30), addr(2), &ping).unwrap()), "once a period");
    assert!(told(&a.handle_packet(at(1_030), addr(2), &ping).unwrap()));
    // Once it refutes, there is nothing to tell.
    learn(&mut a, at(1_040), addr(2), &packet(&[alive("b", 1, 2)])).unwrap();
    assert!(!told(&a.handle_packet(at(2_100), addr(2), &ping).unwrap()));
}

#[test]
fn a_failed_member_stays_on_the_retry_list_through_a_newer_death() {
    for newer_death in [false, true] {
        let mut a = node("a", 1);
        learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
        a.handle_packet(at(1), addr(3), &packet(&[Message::Dead { incarnation: 0, name: "b", from: "x" }])).unwrap();
        if newer_death {
            a.handle_packet(at(2), addr(3), &packet(&[Message::Dead { incarnation: 1, name: "b", from: "x" }]))
                .unwrap();
        }
        // b is the only other member, and dead: a stream to it is a reconnect.
        let out = run(&mut a, 3, 31_000);
        let retried = out.iter().any(|x| matches!(x, Action::OpenStream { to, .. } if *to == addr(2)));
        assert!(retried, "newer death: {newer_death}");
        assert!(a.stats().reconnects > 0);
    }
}

/// `a` knows b and c; b never answers, so `a`'s own probe suspects it.
/// Returns the time it was raised.
fn raise_suspicion_of_b(a: &mut Swim<Rng64>) -> u64 {
    learn(a, at(0), addr(2), &packet(&[alive("b", 0, 2), alive("c", 0, 3)])).unwrap();
    for t in 1..10_000 {
        if a.deadline().is_some_and(|d| d <= at(t)) {
            let out = timeout_refusing(a, t);
            if events(&out)
                .iter()
                .any(|e| matches!(e, Event::Suspected { name, local: true, .. } if name.as_str() == "b"))
            {
                return t;
            }
            // c answers everything sent to it.
            for (to, b) in sent(&out) {
                let mut m = Messages::new();
                decode(&b, &mut m).unwrap();
                if let (true, Some(Message::Ping { seq, .. })) = (to == addr(3), m.first()) {
                    a.handle_packet(at(t), addr(3), &packet_ack(*seq)).unwrap();
                }
            }
        }
    }
    panic!("b is never suspected");
}

#[test]
fn an_accuser_checks_over_a_stream_and_the_suspects_refutation_there_saves_it() {
    let mut a = node("a", 1);
    let raised = raise_suspicion_of_b(&mut a);
    // The first check (deadline - 1 s; n = 3: 4 s minimum) goes to b by
    // datagram and over a stream, with the suspicion.
    let first = raised + 4000 - 1000;
    let out = run(&mut a, raised + 1, first);
    let opened = checks_opened(&out);
    assert!(opened.iter().any(|(to, k)| *to == addr(2) && k.starts_with(&[0, 5])), "{opened:?}");
    let Some(Action::OpenStream { id, .. }) =
        out.iter().rev().find(|x| matches!(x, Action::OpenStream { to, .. } if *to == addr(2)))
    else {
        unreachable!()
    };
    // Datagrams from b never arrive (a cannot hear them); the stream
    // brings b's refutation.
    let mut more = Vec::new();
    a.handle(
        at(first + 3),
        Input::StreamFrame { id: *id, frame: &frame(&[Message::Ack { seq: 0 }, alive("b", 1, 2)]) },
        &mut more,
    )
    .unwrap();
    assert!(events(&more).contains(&Event::Alive { name: MemberName::new("b").unwrap(), incarnation: 1 }));
    let later = run(&mut a, first + 4, first + 8000);
    assert!(!events(&later).iter().any(|e| matches!(e, Event::Failed { name, .. } if name.as_str() == "b")));
}

#[test]
fn an_unanswered_stream_check_holds_the_declaration_for_a_few_periods_at_most() {
    let mut a = node("a", 1);
    let raised = raise_suspicion_of_b(&mut a);
    let deadline = raised + 4000;
    let first = deadline - 1000;
    // The runtime connects the check and b says nothing (paused).
    let mut failed_at = None;
    for t in raised + 1..deadline + 20_000 {
        if a.deadline().is_some_and(|d| d <= at(t)) {
            for e in events(&a.handle_timeout(at(t))) {
                if matches!(&e, Event::Failed { name, .. } if name.as_str() == "b") {
                    failed_at.get_or_insert(t);
                }
            }
        }
    }
    // The check waits five periods, at least 6 s, from when it went out.
    let failed_at = failed_at.expect("declared in the end");
    assert!(failed_at > deadline, "held past the deadline: {failed_at} vs {deadline}");
    // Its second check (a query, over a stream too: its own probes go
    // unanswered) waits as long from 500 ms later.
    assert!(failed_at <= first + 500 + 6000 + 1000, "{failed_at} vs check at {first}");
}

#[test]
fn a_stream_check_makes_the_suspect_refute_and_answer_with_its_record() {
    let mut b = node("b", 2);
    learn(&mut b, at(0), addr(1), &packet(&[alive("a", 0, 1)])).unwrap();
    let id = crate::StreamId::Inbound(7);
    let mut out = Vec::new();
    b.handle(at(5), Input::StreamAccepted { id, from: addr(1) }, &mut out).unwrap();
    let check =
        frame(&[Message::Ping { seq: 9, target: "b" }, Message::Suspect { incarnation: 0, name: "b", from: "a" }]);
    b.handle(at(6), Input::StreamFrame { id, frame: &check }, &mut out).unwrap();
    assert_eq!(b.incarnation(), 1, "refuted");
    let answer = out.iter().find_map(|x| match x {
        Action::SendFrame { id: i, frame } if *i == id => Some(frame.to_vec()),
        _ => None,
    });
    assert_eq!(answer, Some(frame(&[Message::Ack { seq: 9 }, alive("b", 1, 2)])));
    // A plain fallback ping (no suspicion) gets the bare ack, as before.
    let id = crate::StreamId::Inbound(8);
    let mut out = Vec::new();
    b.handle(at(7), Input::StreamAccepted { id, from: addr(1) }, &mut out).unwrap();
    b.handle(at(8), Input::StreamFrame { id, frame: &frame(&[Message::Ping { seq: 10, target: "b" }]) }, &mut out)
        .unwrap();
    assert!(out.iter().any(|x| matches!(x, Action::SendFrame { frame, .. } if frame[..] == frame_of_ack(10)[..])));
}

fn frame_of_ack(seq: u32) -> Vec<u8> {
    frame(&[Message::Ack { seq }])
}

#[test]
fn a_member_stalled_past_its_checks_makes_them_before_it_declares() {
    let mut a = node("a", 1);
    learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2), alive("c", 0, 3)])).unwrap();
    a.handle_packet(at(10), addr(3), &packet(&[Message::Suspect { incarnation: 0, name: "b", from: "c" }])).unwrap();
    // Nothing runs from 11 ms to 8 s (the deadline was 4 010): a pause.
    // The late wake-up first lets the backlog be read (a moment), then
    // the checks are made.
    let mut out = timeout_refusing(&mut a, 8_000);
    out.extend(timeout_refusing(&mut a, 8_001));
    assert!(!events(&out).iter().any(|e| matches!(e, Event::Failed { .. })), "no declaration on waking");
    assert!(sent(&out).iter().any(|(to, b)| *to == addr(3) && kinds(b)[0] == 9), "a query to the peer");
    // c answers with the refutation a missed while paused.
    let ev = events(&learn(&mut a, at(8_002), addr(3), &packet(&[alive("b", 1, 2)])).unwrap());
    assert_eq!(ev, [Event::Alive { name: MemberName::new("b").unwrap(), incarnation: 1 }]);
}

/// Drives `a` (which knows b at 2 and c at 3) for `periods` seconds, b
/// answering every ping after `b_rtt` ms and c at once; then b goes
/// silent. Returns how long after its next ping to b `a` asked others to
/// probe it.
fn indirect_delay(config: Config, b_rtt: u64) -> u64 {
    let mut a =
        Swim::new(config, Identity::new(MemberName::new("a").unwrap(), addr(1)), Rng64::seed_from_u64(3)).unwrap();
    learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2), alive("c", 0, 3)])).unwrap();
    let mut pending: Vec<(u64, u32)> = Vec::new();
    let mut silent_ping: Option<u64> = None;
    for t in 1..60_000u64 {
        let mut out = Vec::new();
        if let Some(i) = pending.iter().position(|&(when, _)| when == t) {
            let (_, seq) = pending.remove(i);
            out.extend(a.handle_packet(at(t), addr(2), &packet_ack(seq)).unwrap());
        }
        if a.deadline().is_some_and(|d| d <= at(t)) {
            out.extend(a.handle_timeout(at(t)));
        }
        for (to, b) in sent(&out) {
            let mut m = Messages::new();
            decode(&b, &mut m).unwrap();
            match (m.first(), to) {
                (Some(Message::Ping { seq, .. }), to) if to == addr(2) => {
                    if t < 30_000 {
                        pending.push((t + b_rtt, *seq));
                    } else {
                        silent_ping.get_or_insert(t);
                    }
                }
                (Some(Message::Ping { seq, .. }), to) if to == addr(3) => {
                    a.handle_packet(at(t), addr(3), &packet_ack(*seq)).unwrap();
                }
                (Some(Message::PingReq { target: "b", .. }), _) => {
                    if let Some(p) = silent_ping {
                        return t - p;
                    }
                }
                _ => {}
            }
        }
    }
    panic!("no indirect probe of b");
}

#[test]
fn probe_timeouts_can_follow_the_measured_round_trip() {
    // Fixed: the configured 500 ms, whatever the network does.
    assert_eq!(indirect_delay(Config::lan(), 10), 500);
    // From measurement: b answers in 10 ms, so the timeout shrinks to its
    // round trip plus deviations, here the 20 ms floor.
    let rtt = Config::lan().with_rtt_probe_timeout(Some(Duration::from_millis(20)));
    assert_eq!(indirect_delay(rtt.clone(), 10), 20);
    // A slow member keeps a longer timeout (its 120 ms round trip and a
    // margin), and never more than the configured ceiling.
    let slow = indirect_delay(rtt.clone(), 120);
    assert!((120..=200).contains(&slow), "{slow}");
    // 700 ms round trips (acked before the period ends): capped at 500.
    assert_eq!(indirect_delay(rtt, 700), 500);
    assert_eq!(
        Config::lan().with_rtt_probe_timeout(Some(Duration::from_millis(600))).validate(),
        Err(crate::api::config::ConfigError::RttProbeTimeout)
    );
}

/// An alive that moves a live member to another address is believed only
/// once the member answers there: until then it keeps its address, and a
/// claim nobody answers for is dropped.
#[test]
fn a_member_moves_to_a_new_address_only_once_it_answers_there() {
    let mut a = node("a", 1);
    learn(&mut a, at(0), addr(2), &packet(&[alive("b", 0, 2), alive("c", 0, 3)])).unwrap();
    // A forged move: nobody answers at addr(9).
    let out = a.handle_packet(at(10), addr(3), &packet(&[alive("b", 1, 9)])).unwrap();
    let pings: Vec<_> = sent(&out).into_iter().filter(|(to, _)| *to == addr(9)).collect();
    assert_eq!(pings.len(), 1, "one ping checks the new address");
    assert_eq!(kinds(&pings[0].1), [0]);
    assert_eq!(a.member("b").unwrap().addr, addr(2), "b keeps its address meanwhile");
    run(&mut a, 11, 2_000);
    assert_eq!(a.member("b").unwrap().addr, addr(2), "an unanswered move is dropped");
    assert_eq!(a.member("b").unwrap().incarnation, 0);
    // The member really moved: it answers there, and the move is taken.
    let out = learn(&mut a, at(2_001), addr(3), &packet(&[alive("b", 1, 9)])).unwrap();
    assert_eq!(a.member("b").unwrap().addr, addr(9));
    // Reported as an update, or as alive again if b's silence at its old
    // address had made it suspect meanwhile.
    let reported = events(&out).iter().any(|e| matches!(e, Event::Updated { .. } | Event::Alive { .. }));
    assert!(reported, "{:?}", events(&out));
    assert!(a.stats().admission_checks >= 2);
}
