//! Joins, full-state syncs, refusals, determinism, push-pull.

use super::*;

#[test]
pub(super) fn join_syncs_whole_tables_with_a_seed_over_a_stream() {
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
pub(super) fn a_sync_request_in_a_datagram_draws_nothing() {
    let mut seed = node("s", 9);
    learn(&mut seed, at(0), addr(3), &packet(&[alive("c", 0, 3)])).unwrap();
    let out = seed.handle_packet(at(1), addr(1), &packet(&[Message::SyncRequest { join: true }])).unwrap();
    assert!(sent(&out).is_empty(), "an unauthenticated datagram never draws a table");
}
#[test]
pub(super) fn join_gives_up_after_its_attempts() {
    let mut mesh = Mesh::new(alloc::vec![node("a", 1)]);
    mesh.input(0, 0, Input::Join { seeds: &[addr(9)] }).unwrap();
    mesh.run(1, 10_000);
    let attempts =
        mesh.actions.iter().filter(|(_, a)| matches!(a, Action::OpenStream { to, .. } if *to == addr(9))).count();
    assert_eq!(attempts, 5);
    assert_eq!(mesh.events_of(0).filter(|e| **e == Event::JoinFailed).count(), 1);
}
#[test]
pub(super) fn bad_packets_are_counted_and_change_nothing() {
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
pub(super) fn early_wake_ups_do_nothing() {
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
pub(super) fn address_conflicts_are_refused_unless_restarted_or_reclaimed() {
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
pub(super) fn invalid_configs_and_metadata_are_refused() {
    let mut cfg = Config::lan();
    cfg.probe_timeout = Duration::from_secs(2);
    let id = Identity::new(MemberName::new("a").unwrap(), addr(1));
    assert!(matches!(Swim::new(cfg, id.clone(), Rng64::seed_from_u64(1)), Err(Error::Config(_))));
    let mut big = id;
    big.meta = alloc::vec![0; 513];
    assert_eq!(Swim::new(Config::lan(), big, Rng64::seed_from_u64(1)).err(), Some(Error::MetaTooLong));
}

#[test]
pub(super) fn same_seed_and_inputs_give_identical_actions() {
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
pub(super) fn learns_c_from_b(push_pull: Option<Duration>) -> bool {
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
pub(super) fn push_pull_exchanges_whole_tables_periodically() {
    assert!(learns_c_from_b(Some(Duration::from_secs(30))), "within one push-pull interval (30 s at n <= 32)");
    assert!(!learns_c_from_b(None), "gossip alone had nothing left to tell");
}

#[test]
pub(super) fn push_pull_interval_scales_like_memberlist() {
    let t = Duration::from_secs(30);
    assert_eq!(crate::protocol::lifecycle::push_pull_scale(t, 10), t);
    assert_eq!(crate::protocol::lifecycle::push_pull_scale(t, 32), t);
    assert_eq!(crate::protocol::lifecycle::push_pull_scale(t, 33), Duration::from_secs(60));
    assert_eq!(crate::protocol::lifecycle::push_pull_scale(t, 100), Duration::from_secs(90));
    assert_eq!(crate::protocol::lifecycle::push_pull_scale(t, 1000), Duration::from_secs(180));
}

#[test]
pub(super) fn a_lost_refutation_is_sent_again_while_stale_rumours_circulate() {
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
pub(super) fn checks(a: &mut Swim<Rng64>, from: u64, to: u64, suspect: u16) -> (Vec<u64>, Vec<u64>) {
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
