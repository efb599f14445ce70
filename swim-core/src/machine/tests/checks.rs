//! Last-chance checks, queries, probe selectors, metadata, bounds.

use super::*;

#[test]
pub(super) fn before_a_suspicion_it_only_heard_of_expires_a_member_asks_a_peer() {
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
pub(super) fn before_a_suspicion_it_raised_expires_a_member_pings_the_suspect() {
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
pub(super) fn a_silent_suspect_is_still_declared_at_its_deadline() {
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
pub(super) fn queries_are_answered_with_our_record() {
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
pub(super) fn a_custom_probe_selector_decides_who_is_probed() {
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
pub(super) fn a_topology_selector_probes_near_members_and_asks_far_ones() {
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
pub(super) fn metadata_changes_are_reported_as_updated() {
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
pub(super) fn the_member_table_and_relays_are_bounded() {
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
pub(super) fn time_going_backwards_is_taken_as_the_latest_seen() {
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
pub(super) fn first_probe(a: &mut Swim<Rng64>) -> (SocketAddr, u32, u64) {
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

pub(super) fn name_at(a: SocketAddr) -> &'static str {
    ["b", "c", "d", "e"][usize::from(a.port() - 7002)]
}
