//! Stream checks and ends, stalls, measured round trips, moves.

use super::*;

/// Syncs a opens over a minute in a three-member mesh, with datagrams to
/// it dropped (`deaf`) or not.
pub(super) fn syncs_in_a_minute(deaf: bool) -> usize {
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
pub(super) fn a_member_whose_probes_come_back_only_over_streams_syncs_every_few_periods() {
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
pub(super) fn suspected_and_failed_when_streams_end(end: crate::StreamEnd) -> (Option<u64>, Option<u64>) {
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
pub(super) fn a_host_that_says_nothing_listens_makes_the_member_suspect_and_failed_within_a_period() {
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
pub(super) fn a_suspect_heard_from_is_told_of_the_suspicion_once_a_period() {
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
pub(super) fn a_failed_member_stays_on_the_retry_list_through_a_newer_death() {
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
pub(super) fn raise_suspicion_of_b(a: &mut Swim<Rng64>) -> u64 {
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
pub(super) fn an_accuser_checks_over_a_stream_and_the_suspects_refutation_there_saves_it() {
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
pub(super) fn an_unanswered_stream_check_holds_the_declaration_for_a_few_periods_at_most() {
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
pub(super) fn a_stream_check_makes_the_suspect_refute_and_answer_with_its_record() {
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

pub(super) fn frame_of_ack(seq: u32) -> Vec<u8> {
    frame(&[Message::Ack { seq }])
}

#[test]
pub(super) fn a_member_stalled_past_its_checks_makes_them_before_it_declares() {
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
pub(super) fn indirect_delay(config: Config, b_rtt: u64) -> u64 {
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
pub(super) fn probe_timeouts_can_follow_the_measured_round_trip() {
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
pub(super) fn a_member_moves_to_a_new_address_only_once_it_answers_there() {
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
