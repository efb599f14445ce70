//! Rule-by-rule tests of the state machine, driven by hand-made packets.

use alloc::vec::Vec;
use core::net::SocketAddr;

use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus as Rng64;

use crate::wire::{Message, Messages, PacketWriter, decode};
use crate::{Action, Config, Duration, Error, Event, Identity, Instant, MemberName, MemberState, Swim};

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

fn alive<'a>(name: &'a str, inc: u32, i: u16) -> Message<'a> {
    Message::Alive { incarnation: inc, name, addr: addr(i), meta: &[] }
}

/// Runs timeouts from `from` to `to` in 1 ms steps, collecting actions.
fn run(s: &mut Swim<Rng64>, from: u64, to: u64) -> Vec<Action> {
    let mut all = Vec::new();
    for t in from..=to {
        if s.next_deadline().is_some_and(|d| d <= at(t)) {
            all.extend(s.handle_timeout(at(t)));
        }
    }
    all
}

#[test]
fn learns_members_from_alive_and_announces_joined() {
    let mut a = node("a", 1);
    let out = a.handle_packet(at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    assert_eq!(events(&out), [Event::Joined { name: MemberName::new("b").unwrap(), addr: addr(2) }]);
    assert_eq!(a.member("b").unwrap().state, MemberState::Alive);
    assert_eq!(a.num_live(), 2);
    // The same news again changes nothing.
    let out = a.handle_packet(at(1), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    assert!(events(&out).is_empty());
}

#[test]
fn ping_is_acked_only_when_it_names_us() {
    let mut a = node("a", 1);
    let out = a.handle_packet(at(0), addr(2), &packet(&[Message::Ping { seq: 5, target: "a" }])).unwrap();
    let s = sent(&out);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].0, addr(2));
    assert_eq!(&s[0].1[..3], &[1, 2, 5]);
    let out = a.handle_packet(at(1), addr(2), &packet(&[Message::Ping { seq: 6, target: "old" }])).unwrap();
    assert!(sent(&out).is_empty());
    assert_eq!(a.stats().misdirected, 1);
}

#[test]
fn suspicion_of_ourselves_is_refuted_with_a_higher_incarnation() {
    let mut a = node("a", 1);
    a.handle_packet(at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    let suspect = Message::Suspect { incarnation: 0, name: "a", from: "b" };
    // The buddy system: the suspicion arrives with the ping; the refutation
    // rides on the ack.
    let out = a.handle_packet(at(1), addr(2), &packet(&[Message::Ping { seq: 1, target: "a" }, suspect])).unwrap();
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
    a.handle_packet(at(0), addr(2), &packet(&[alive("b", 0, 2), alive("c", 0, 3)])).unwrap();
    let out = a
        .handle_packet(at(10), addr(3), &packet(&[Message::Suspect { incarnation: 0, name: "b", from: "c" }]))
        .unwrap();
    assert!(matches!(events(&out)[..], [Event::Suspected { local: false, .. }]));
    let out = a.handle_packet(at(20), addr(2), &packet(&[alive("b", 1, 2)])).unwrap();
    assert_eq!(events(&out), [Event::Alive { name: MemberName::new("b").unwrap(), incarnation: 1 }]);
    // Late copies of the old suspicion and a death at the old incarnation
    // are outranked by the refutation.
    a.handle_packet(at(30), addr(3), &packet(&[Message::Suspect { incarnation: 0, name: "b", from: "d" }])).unwrap();
    a.handle_packet(at(31), addr(3), &packet(&[Message::Dead { incarnation: 0, name: "b", from: "d" }])).unwrap();
    // Keep b acking so our own probes do not suspect it; c stays silent.
    let (mut failed_b, mut failed_c) = (false, false);
    for t in 32..120_000 {
        if a.next_deadline().is_some_and(|d| d <= at(t)) {
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
    a.handle_packet(at(0), addr(2), &packet(&[alive("b", 0, 2), alive("c", 0, 3), alive("d", 0, 4)])).unwrap();
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
    a.handle_packet(at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    a.handle_packet(at(0), addr(2), &packet(&[Message::Suspect { incarnation: 0, name: "a", from: "b" }])).unwrap();
    a.handle_packet(at(0), addr(2), &packet(&[Message::Suspect { incarnation: 1, name: "a", from: "b" }])).unwrap();
    assert_eq!(a.local_health(), 2);
    for t in 0..10_000 {
        if a.next_deadline().is_some_and(|d| d <= at(t)) {
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
    let req = Message::PingReq { seq: 42, target: "c", addr: addr(3) };
    let out = b.handle_packet(at(0), addr(1), &packet(&[req])).unwrap();
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
    assert!(sent(&out).iter().all(|(to, _)| *to != addr(1)));
    let out = run(&mut b, 410, 410);
    assert_eq!(sent(&out), [(addr(1), packet(&[Message::Nack { seq: 43 }]))]);
}

#[test]
fn confirmations_shorten_the_suspicion() {
    let mut a = node("a", 1);
    let many: Vec<(alloc::string::String, u16)> = (0..20).map(|i| (alloc::format!("m{i}"), 10 + i)).collect();
    for (n, i) in &many {
        a.handle_packet(at(0), addr(*i), &packet(&[alive(n, 0, *i)])).unwrap();
    }
    // n = 21: min = 4 * log10(21) s = 5 288 ms, max = 6 * min, k = 2.
    let suspect = |from: &'static str| packet(&[Message::Suspect { incarnation: 0, name: "m0", from }]);
    a.handle_packet(at(1000), addr(11), &suspect("m1")).unwrap();
    let lone = a.next_deadline().unwrap();
    a.handle_packet(at(1000), addr(12), &suspect("m2")).unwrap();
    a.handle_packet(at(1000), addr(12), &suspect("m2")).unwrap();
    a.handle_packet(at(1000), addr(13), &suspect("m3")).unwrap();
    let mut failed_at = None;
    for t in 1000..40_000 {
        if a.next_deadline().is_some_and(|d| d <= at(t)) {
            for e in events(&a.handle_timeout(at(t))) {
                if let Event::Failed { name, .. } = e
                    && name.as_str() == "m0"
                {
                    failed_at.get_or_insert(t);
                }
            }
        }
    }
    assert!(lone < at(1000 + 5288 * 6));
    assert_eq!(failed_at, Some(1000 + 5288), "two confirmations bring the timeout to the minimum");
}

#[test]
fn graceful_leave_is_announced_as_left_not_failed() {
    let mut a = node("a", 1);
    let mut b = node("b", 2);
    a.handle_packet(at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    b.handle_packet(at(0), addr(1), &packet(&[alive("a", 0, 1)])).unwrap();
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
fn join_asks_seeds_for_their_table_and_completes_on_reply() {
    let mut a = node("a", 1);
    let mut seed = node("s", 9);
    seed.handle_packet(at(0), addr(3), &packet(&[alive("c", 0, 3)])).unwrap();
    assert_eq!(a.join(at(0), &[]), Err(Error::NoSeeds));
    assert_eq!(a.join(at(0), &[addr(1)]), Err(Error::NoSeeds), "joining only ourselves is no join");
    let out = a.join(at(0), &[addr(9)]).unwrap();
    let req = sent(&out);
    assert_eq!(req.len(), 1);
    assert_eq!(kinds(&req[0].1), [7, 4]);
    let reply = seed.handle_packet(at(1), addr(1), &req[0].1).unwrap();
    let mut ev = Vec::new();
    for (to, bytes) in sent(&reply) {
        if to == addr(1) {
            ev.extend(events(&a.handle_packet(at(2), addr(9), &bytes).unwrap()));
        }
    }
    assert!(ev.contains(&Event::JoinCompleted { seed: addr(9) }));
    assert_eq!(a.num_live(), 3, "learnt the seed and its member c");
    assert_eq!(seed.num_live(), 3, "the seed learnt us");
}

#[test]
fn join_gives_up_after_its_attempts() {
    let mut a = node("a", 1);
    let mut out = a.join(at(0), &[addr(9)]).unwrap();
    out.extend(run(&mut a, 1, 10_000));
    let requests = sent(&out).iter().filter(|(to, _)| *to == addr(9)).count();
    assert_eq!(requests, 5);
    assert_eq!(events(&out).iter().filter(|e| **e == Event::JoinFailed).count(), 1);
}

#[test]
fn bad_packets_are_counted_and_change_nothing() {
    let mut a = node("a", 1);
    a.handle_packet(at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    let before = (a.next_deadline(), a.incarnation(), a.num_live());
    let mut junk = packet(&[Message::Suspect { incarnation: 9, name: "a", from: "b" }]);
    junk.push(0x04); // a truncated trailing message
    assert!(matches!(a.handle_packet(at(5), addr(2), &junk), Err(Error::Rejected(_))));
    assert_eq!(a.handle_packet(at(5), addr(2), &[]), Err(Error::Rejected(crate::wire::DecodeError::Empty)));
    assert_eq!((a.next_deadline(), a.incarnation(), a.num_live()), before);
    assert_eq!(a.stats().rejected_total(), 2);
}

#[test]
fn early_wake_ups_do_nothing() {
    let mut a = node("a", 1);
    a.handle_packet(at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    let due = a.next_deadline().unwrap();
    for t in 0..due.as_millis() {
        let out = a.handle_timeout(at(t));
        assert!(out.is_empty(), "woken at {t} before {due}: {out:?}");
    }
    assert!(!a.handle_timeout(due).is_empty());
}

#[test]
fn address_conflicts_are_refused_until_reclaim_time() {
    let mut cfg = Config::lan();
    cfg.dead_node_reclaim_time = Some(Duration::from_secs(10));
    let mut a = Swim::new(cfg, Identity::new(MemberName::new("a").unwrap(), addr(1)), Rng64::seed_from_u64(1)).unwrap();
    a.handle_packet(at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    a.handle_packet(at(0), addr(5), &packet(&[alive("b", 3, 5)])).unwrap();
    assert_eq!(a.member("b").unwrap().addr, addr(2));
    assert_eq!(a.stats().address_conflicts, 1);
    a.handle_packet(at(10), addr(2), &packet(&[Message::Dead { incarnation: 0, name: "b", from: "x" }])).unwrap();
    a.handle_packet(at(5000), addr(5), &packet(&[alive("b", 0, 5)])).unwrap();
    assert_eq!(a.member("b").unwrap().addr, addr(2));
    let out = a.handle_packet(at(10_010), addr(5), &packet(&[alive("b", 0, 5)])).unwrap();
    assert_eq!(a.member("b").unwrap().addr, addr(5));
    assert_eq!(events(&out), [Event::Joined { name: MemberName::new("b").unwrap(), addr: addr(5) }]);
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
                a.handle_packet(at(i as u64), addr(10 + i as u16), &packet(&[alive(n, 0, 10 + i as u16)])).unwrap(),
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
    a.handle_packet(at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    b.handle_packet(at(0), addr(1), &packet(&[alive("a", 0, 1), alive("c", 0, 3)])).unwrap();
    // Pings from elsewhere use up b's retransmissions of c's alive.
    for seq in 0..20 {
        b.handle_packet(at(0), addr(7), &packet(&[Message::Ping { seq, target: "b" }])).unwrap();
    }
    let mut learnt_c = false;
    for t in 0..=31_000 {
        if a.next_deadline().is_none_or(|d| d > at(t)) {
            continue;
        }
        for (to, bytes) in sent(&a.handle_timeout(at(t))) {
            if to != addr(2) {
                continue;
            }
            // b answers whatever a sends it (probes, and a push-pull
            // request with its table).
            for (to, reply) in sent(&b.handle_packet(at(t), addr(1), &bytes).unwrap()) {
                if to == addr(1) {
                    let ev = events(&a.handle_packet(at(t), addr(2), &reply).unwrap());
                    learnt_c |= ev.contains(&Event::Joined { name: MemberName::new("c").unwrap(), addr: addr(3) });
                }
            }
        }
    }
    learnt_c
}

#[test]
fn push_pull_exchanges_whole_tables_periodically() {
    assert!(learns_c_from_b(Some(Duration::from_secs(30))), "within one push-pull interval (30 s at n <= 32)");
    assert!(!learns_c_from_b(None), "gossip alone had nothing left to tell");
}

#[test]
fn push_pull_interval_scales_like_memberlist() {
    let t = Duration::from_secs(30);
    assert_eq!(crate::push_pull_scale(t, 10), t);
    assert_eq!(crate::push_pull_scale(t, 32), t);
    assert_eq!(crate::push_pull_scale(t, 33), Duration::from_secs(60));
    assert_eq!(crate::push_pull_scale(t, 100), Duration::from_secs(90));
    assert_eq!(crate::push_pull_scale(t, 1000), Duration::from_secs(180));
}

#[test]
fn a_lost_refutation_is_sent_again_while_stale_rumours_circulate() {
    let mut a = node("a", 1);
    a.handle_packet(at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
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
        .handle_packet(at(30), addr(2), &packet(&[ping, Message::Suspect { incarnation: 0, name: "a", from: "b" }]))
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
        if a.next_deadline().is_none_or(|d| d > at(t)) {
            continue;
        }
        for (dest, b) in sent(&a.handle_timeout(at(t))) {
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
    a.handle_packet(at(0), addr(2), &packet(&[alive("b", 0, 2), alive("c", 0, 3)])).unwrap();
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
    let ev = events(&a.handle_packet(at(3600), addr(3), &packet(&[alive("b", 1, 2)])).unwrap());
    assert_eq!(ev, [Event::Alive { name: MemberName::new("b").unwrap(), incarnation: 1 }]);
    // Past the old deadline: no failure (a later probe of our own may of
    // course suspect the silent b again, at its new incarnation).
    let out = run(&mut a, 3601, 6000);
    assert!(!events(&out).iter().any(|e| matches!(e, Event::Failed { name, .. } if name.as_str() == "b")));
}

#[test]
fn before_a_suspicion_it_raised_expires_a_member_pings_the_suspect() {
    let mut a = node("a", 1);
    a.handle_packet(at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    // b never answers: a's own probe raises the suspicion.
    let mut raised = None;
    for t in 1..3000 {
        if a.next_deadline().is_some_and(|d| d <= at(t)) {
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
    assert!(queries.is_empty(), "{queries:?}");
    assert!(buddy_pings.contains(&(deadline - 1000)) && buddy_pings.contains(&(deadline - 500)), "{buddy_pings:?}");
}

#[test]
fn a_silent_suspect_is_still_declared_at_its_deadline() {
    let mut a = node("a", 1);
    a.handle_packet(at(0), addr(2), &packet(&[alive("b", 0, 2), alive("c", 0, 3)])).unwrap();
    a.handle_packet(at(10), addr(3), &packet(&[Message::Suspect { incarnation: 0, name: "b", from: "c" }])).unwrap();
    let mut failed_at = None;
    for t in 11..10_000 {
        if a.next_deadline().is_some_and(|d| d <= at(t)) {
            for e in events(&a.handle_timeout(at(t))) {
                if matches!(&e, Event::Failed { name, local: true, .. } if name.as_str() == "b") {
                    failed_at.get_or_insert(t);
                }
            }
        }
    }
    assert_eq!(failed_at, Some(4010), "the checks do not delay the declaration");
}

#[test]
fn queries_are_answered_with_our_record() {
    let mut a = node("a", 1);
    a.handle_packet(at(0), addr(2), &packet(&[alive("b", 2, 2)])).unwrap();
    let out = a.handle_packet(at(1), addr(9), &packet(&[Message::Query { name: "b" }])).unwrap();
    assert_eq!(sent(&out), [(addr(9), packet(&[alive("b", 2, 2)]))]);
    let out = a.handle_packet(at(2), addr(9), &packet(&[Message::Query { name: "a" }])).unwrap();
    assert_eq!(sent(&out), [(addr(9), packet(&[alive("a", 0, 1)]))]);
    let out = a.handle_packet(at(3), addr(9), &packet(&[Message::Query { name: "zz" }])).unwrap();
    assert!(sent(&out).is_empty());
    a.handle_packet(at(4), addr(3), &packet(&[Message::Suspect { incarnation: 2, name: "b", from: "c" }])).unwrap();
    let out = a.handle_packet(at(5), addr(9), &packet(&[Message::Query { name: "b" }])).unwrap();
    assert_eq!(
        sent(&out),
        [(addr(9), packet(&[Message::Suspect { incarnation: 2, name: "b", from: "c" }]))],
        "a suspicion is passed on with its accuser, not as our own confirmation"
    );
}

#[test]
fn a_custom_probe_selector_decides_who_is_probed() {
    use crate::{MemberKey, ProbeSelector, Random};
    /// Probes only the first member it was told about.
    struct Fixed(Option<MemberKey>);
    impl ProbeSelector for Fixed {
        fn insert(&mut self, id: MemberKey, _: &mut dyn Random) {
            self.0.get_or_insert(id);
        }
        fn next(&mut self) -> Option<MemberKey> {
            self.0
        }
        fn reset(&mut self, _: &[MemberKey], _: &mut dyn Random) {}
    }
    let mut a = node("a", 1);
    a.set_probe_selector(alloc::boxed::Box::new(Fixed(None)));
    a.handle_packet(at(0), addr(2), &packet(&[alive("b", 0, 2), alive("c", 0, 3), alive("d", 0, 4)])).unwrap();
    let mut pinged = Vec::new();
    for t in 0..10_000 {
        if a.next_deadline().is_some_and(|d| d <= at(t)) {
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
fn metadata_changes_are_reported_as_updated() {
    let mut a = node("a", 1);
    a.handle_packet(at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
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
    a.handle_packet(at(0), addr(2), &packet(&[alive("b", 0, 2), alive("c", 0, 3), alive("d", 0, 4)])).unwrap();
    assert_eq!(a.num_live(), 3);
    assert_eq!(a.stats().table_full, 1);
    let req = |seq| packet(&[Message::PingReq { seq, target: "c", addr: addr(3) }]);
    assert_eq!(sent(&a.handle_packet(at(1), addr(2), &req(1)).unwrap()).len(), 1);
    assert!(sent(&a.handle_packet(at(1), addr(2), &req(2)).unwrap()).is_empty());
    assert_eq!(a.stats().relays_dropped, 1);
}

#[test]
fn time_going_backwards_is_taken_as_the_latest_seen() {
    let mut a = node("a", 1);
    a.handle_packet(at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    let due = a.next_deadline().unwrap();
    assert!(!a.handle_timeout(due).is_empty());
    let next = a.next_deadline().unwrap();
    // A clock that jumps back neither fires anything nor moves deadlines.
    assert!(a.handle_timeout(at(0)).is_empty());
    assert_eq!(a.next_deadline(), Some(next));
}

// ---- Protocol faults: each of these failed before the fix. ----

/// `a` with members b..e (addresses 2..=5), driven until its first probe:
/// returns the probe's target address and sequence number and the time.
fn first_probe(a: &mut Swim<Rng64>) -> (SocketAddr, u32, u64) {
    let members = [alive("b", 0, 2), alive("c", 0, 3), alive("d", 0, 4), alive("e", 0, 5)];
    a.handle_packet(at(0), addr(9), &packet(&members)).unwrap();
    for t in 1..2000 {
        if a.next_deadline().is_none_or(|d| d > at(t)) {
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

#[test]
fn a_table_sync_is_not_a_confirmation_of_a_suspicion() {
    let mut a = node("a", 1);
    let members = [alive("b", 0, 2), alive("c", 0, 3), alive("d", 0, 4), alive("e", 0, 5), alive("f", 0, 6)];
    a.handle_packet(at(0), addr(9), &packet(&members)).unwrap();
    // n = 6: the suspicion starts at 6 x 4 s and expects 2 confirmations.
    a.handle_packet(at(10), addr(2), &packet(&[Message::Suspect { incarnation: 0, name: "c", from: "b" }])).unwrap();
    // d's table lists c as suspect, naming d.
    let table = [Message::SyncReply, alive("d", 0, 4), Message::Suspect { incarnation: 0, name: "c", from: "d" }];
    a.handle_packet(at(20), addr(4), &packet(&table)).unwrap();
    // Everyone, c included, answers a's probes (c is alive but slow to
    // refute), so a's own probes confirm nothing.
    let mut failed_at = None;
    for t in 21..30_000 {
        if a.next_deadline().is_none_or(|d| d > at(t)) {
            continue;
        }
        let out = a.handle_timeout(at(t));
        if events(&out).iter().any(|e| matches!(e, Event::Failed { name, .. } if name.as_str() == "c")) {
            failed_at = Some(t);
            break;
        }
        for (to, b) in sent(&out) {
            let mut m = Messages::new();
            decode(&b, &mut m).unwrap();
            if let Message::Ping { seq, .. } = m[0] {
                a.handle_packet(at(t), to, &packet_ack(seq)).unwrap();
            }
        }
    }
    assert_eq!(failed_at, Some(24_010), "the relayed record did not shorten the suspicion");
}

#[test]
fn a_leave_evicted_from_a_full_queue_is_not_reported_complete_unsent() {
    let mut cfg = Config::lan();
    cfg.max_queued_updates = core::num::NonZeroU32::new(1).unwrap();
    cfg.gossip_nodes = 0;
    let id = Identity::new(MemberName::new("a").unwrap(), addr(1));
    let mut a = Swim::new(cfg, id, Rng64::seed_from_u64(1)).unwrap();
    a.handle_packet(at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
    run(&mut a, 1, 3000);
    let out = a.leave(at(3000)).unwrap();
    assert!(!events(&out).contains(&Event::LeaveCompleted));
    // News of a stranger fills the one-entry queue.
    let out = a.handle_packet(at(3001), addr(3), &packet(&[alive("x", 0, 3)])).unwrap();
    assert!(!events(&out).contains(&Event::LeaveCompleted), "the leave was never sent");
    // It completes once the leave has gone out, on a's probes.
    let mut leaves_sent = 0;
    let mut completed = false;
    for t in 3002..9000 {
        if a.next_deadline().is_none_or(|d| d > at(t)) {
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
    a.handle_packet(at(0), addr(2), &packet(&[alive("b", 0, 2)])).unwrap();
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
    c.handle_packet(at(0), addr(1), &packet(&[alive("a", 0xffff_fff1, 1)])).unwrap();
    c.handle_packet(at(1), addr(2), &suspect(u32::MAX)).unwrap();
    assert_eq!(c.member("a").unwrap().state, MemberState::Suspect);
    let ev = events(&c.handle_packet(at(2), addr(1), &packet(&[alive("a", 0, 1)])).unwrap());
    assert_eq!(ev, [Event::Alive { name: MemberName::new("a").unwrap(), incarnation: 0 }]);
    // A rumour far behind (serially older) is not news.
    let ev = events(&c.handle_packet(at(3), addr(2), &suspect(0x8000_0005)).unwrap());
    assert!(ev.is_empty(), "{ev:?}");
}

/// Two members wired back to back (no latency); returns how many times
/// each was woken by its timer between `quiet_from` and `to` ms.
fn wakeups_of_a_quiet_pair(quiet_from: u64, to: u64) -> [u32; 2] {
    let mut nodes = [node("a", 1), node("b", 2)];
    let mut wakeups = [0; 2];
    let mut inflight: Vec<(usize, SocketAddr, Vec<u8>)> = Vec::new();
    let mut out = nodes[1].join(at(0), &[addr(1)]).unwrap();
    let deliver = |out: &mut Vec<Action>, from: usize, inflight: &mut Vec<(usize, SocketAddr, Vec<u8>)>| {
        for (to, bytes) in sent(out) {
            inflight.push((usize::from(to == addr(2)), addr(from as u16 + 1), bytes));
        }
        out.clear();
    };
    deliver(&mut out, 1, &mut inflight);
    for t in 0..=to {
        while let Some((i, from, bytes)) = inflight.pop() {
            let mut out = nodes[i].handle_packet(at(t), from, &bytes).unwrap_or_default();
            deliver(&mut out, i, &mut inflight);
        }
        for i in 0..2 {
            if nodes[i].next_deadline().is_some_and(|d| d <= at(t)) {
                if t >= quiet_from {
                    wakeups[i] += 1;
                }
                let mut out = nodes[i].handle_timeout(at(t));
                deliver(&mut out, i, &mut inflight);
            }
        }
    }
    wakeups
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
