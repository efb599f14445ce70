//! Nacks, tables as evidence, incarnation windows, idle wake-ups.

use super::*;

#[test]
pub(super) fn a_nack_counts_only_from_a_helper_we_asked() {
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
pub(super) fn a_late_direct_ack_clears_the_probe_after_every_helper_nacked() {
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
pub(super) fn failed_after_a_table_lists(record: Message<'_>, gossiped: bool) -> Option<u64> {
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
pub(super) fn a_table_sync_is_not_a_confirmation_of_a_suspicion() {
    // d's table lists c as suspect, naming d.
    let failed_at = failed_after_a_table_lists(Message::Suspect { incarnation: 0, name: "c", from: "d" }, true);
    // 24 010 is the suspicion's own deadline; a member that only heard of
    // it then waits 6 s for the accusers' verdict, asks peers once more,
    // and declares a probe timeout and a moment later.
    assert_eq!(failed_at, Some(24_010 + 6_000 + 500 + 1), "the relayed record did not shorten the suspicion");
}

#[test]
pub(super) fn a_death_in_a_table_is_a_suspicion_whose_verdict_is_already_in() {
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
pub(super) fn a_leave_evicted_from_a_full_queue_is_not_reported_complete_unsent() {
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
pub(super) fn an_incarnation_is_never_pinned_at_the_maximum() {
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
pub(super) fn a_claim_far_ahead_of_the_held_incarnation_is_ignored_and_counted() {
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
pub(super) fn a_member_pushed_far_ahead_returns_to_the_incarnation_its_peers_hold() {
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
pub(super) fn a_forged_death_half_the_number_space_ahead_leaves_every_table_in_agreement() {
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
pub(super) fn wakeups_of_a_quiet_pair(quiet_from: u64, to: u64) -> [u32; 2] {
    let mut mesh = Mesh::new(alloc::vec![node("a", 1), node("b", 2)]);
    mesh.input(1, 0, Input::Join { seeds: &[addr(1)] }).unwrap();
    mesh.run(0, quiet_from - 1);
    mesh.wakeups = alloc::vec![0; 2];
    mesh.run(quiet_from, to);
    [mesh.wakeups[0], mesh.wakeups[1]]
}
#[test]
pub(super) fn an_idle_member_wakes_once_a_period() {
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
pub(in crate::machine) fn mesh_of(config: &Config, names: &[&str], ms: u64) -> Mesh {
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

pub(super) fn failed_events(mesh: &Mesh, name: &str) -> usize {
    mesh.events.iter().filter(|(_, e)| matches!(e, Event::Failed { name: n, .. } if n.as_str() == name)).count()
}

pub(in crate::machine) fn all_alive(mesh: &Mesh) -> bool {
    let names: Vec<MemberName> = mesh.nodes.iter().map(|s| s.local().name.clone()).collect();
    mesh.nodes.iter().all(|s| names.iter().all(|n| s.member(n.as_str()).is_some_and(|m| m.state == MemberState::Alive)))
}
