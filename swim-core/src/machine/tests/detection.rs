//! Probes, acks, indirect checks, refutation, local health, leave.

use super::*;

#[test]
pub(super) fn learns_members_from_alive_and_announces_joined() {
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
pub(super) fn ping_is_acked_only_when_it_names_us() {
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
pub(super) fn suspicion_of_ourselves_is_refuted_with_a_higher_incarnation() {
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
pub(super) fn a_refuted_suspicion_never_ends_in_failure() {
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

pub(super) fn packet_ack(seq: u32) -> Vec<u8> {
    packet(&[Message::Ack { seq }])
}

#[test]
pub(super) fn unanswered_probe_goes_indirect_then_suspects_then_fails() {
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
pub(super) fn acked_probes_lower_the_local_health_score() {
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
pub(super) fn ping_req_is_relayed_and_nacked_when_the_target_is_silent() {
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
pub(super) fn confirmations_shorten_the_suspicion() {
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
pub(super) fn graceful_leave_is_announced_as_left_not_failed() {
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
pub(super) fn a_leave_spends_its_transmissions_on_live_members_only() {
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
