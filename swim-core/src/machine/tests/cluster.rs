//! Meshes of members: stream pings, partitions, user data, restarts, syncs.

use super::*;

#[test]
pub(super) fn a_member_whose_datagrams_are_lost_is_saved_by_the_stream_ping() {
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
pub(super) fn a_healed_partition_merges_again_through_reconnects() {
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
pub(super) fn set_meta_bumps_the_incarnation_and_others_see_it() {
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
pub(super) fn events_are_delivered_once_everywhere_in_lamport_order() {
    let mut mesh = mesh_of(&Config::lan(), &["a", "b", "c"], 3_000);
    mesh.input(0, 3_001, Input::UserEvent { name: "deploy", payload: b"one", coalesce: false }).unwrap();
    mesh.run(3_002, 8_000);
    mesh.input(2, 8_001, Input::UserEvent { name: "deploy", payload: b"two", coalesce: true }).unwrap();
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
    assert_eq!(
        mesh.input(0, 15_001, Input::UserEvent { name: "", payload: &[0; 513], coalesce: false }),
        Err(Error::TooLarge)
    );
}

#[test]
pub(super) fn direct_messages_arrive_and_a_failed_reliable_one_is_reported() {
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
pub(super) fn application_state_travels_in_the_join_sync() {
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
pub(super) fn a_malformed_frame_closes_its_stream_and_changes_nothing() {
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
pub(super) fn streams_beyond_the_cap_are_refused_and_silent_ones_time_out() {
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
pub(super) fn a_node_restarted_at_a_new_address_rejoins_cleanly() {
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
pub(super) fn a_member_restarted_from_0_outbids_an_old_record_far_beyond_the_window() {
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
pub(super) fn a_new_member_syncs_again_soon_after_its_join() {
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

/// Syncs node 1 opened in `mesh`.
fn syncs_of_b(mesh: &Mesh) -> usize {
    let sync = Message::SyncRequest { join: false }.kind();
    let mine: Vec<Action> = mesh.actions.iter().filter(|(i, _)| *i == 1).map(|(_, a)| a.clone()).collect();
    checks_opened(&mine).iter().filter(|(_, kinds)| kinds.first() == Some(&sync)).count()
}

#[test]
pub(super) fn a_new_member_keeps_syncing_early_while_its_table_grows() {
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
    let nodes = names.iter().enumerate().map(|(i, n)| node(n, i as u16 + 1)).collect();
    let mut mesh = Mesh::new(nodes);
    mesh.input(1, 0, Input::Join { seeds: &[addr(1)] }).unwrap();
    // The cluster keeps forming: another member joins every 2.5 s.
    let mut t = 0;
    for k in 2..names.len() {
        let at = (k as u64 - 1) * 2_500;
        mesh.run(t + 1, at);
        mesh.input(k, at, Input::Join { seeds: &[addr(1)] }).unwrap();
        t = at;
    }
    mesh.run(t + 1, 29_000);
    // The join's sync and the two early ones, then more while b's table
    // still grew; all before the 30 s interval.
    let growing = syncs_of_b(&mesh);
    let fixed = 1 + crate::protocol::lifecycle::EARLY_SYNCS as usize;
    assert!(growing > fixed + 2, "{growing} syncs in 29 s");
    assert!(growing <= fixed + crate::protocol::lifecycle::MORE_EARLY_SYNCS as usize, "{growing} syncs");
}

#[test]
pub(super) fn the_seed_of_a_new_cluster_syncs_early_once_it_answered_a_join() {
    let mut mesh = Mesh::new(alloc::vec![node("a", 1), node("b", 2), node("c", 3)]);
    mesh.input(1, 0, Input::Join { seeds: &[addr(1)] }).unwrap();
    mesh.input(2, 0, Input::Join { seeds: &[addr(1)] }).unwrap();
    mesh.run(1, 12_000);
    let sync = Message::SyncRequest { join: false }.kind();
    let of_a: Vec<Action> = mesh.actions.iter().filter(|(i, _)| *i == 0).map(|(_, a)| a.clone()).collect();
    let syncs = checks_opened(&of_a).iter().filter(|(_, kinds)| kinds.first() == Some(&sync)).count();
    // Its regular push-pull falls anywhere in the 30 s interval; the two
    // early ones come 2-4 and 4-8 periods after the first join it answered.
    assert!(syncs >= crate::protocol::lifecycle::EARLY_SYNCS as usize, "{syncs} syncs by the seed in 12 s");
}

#[test]
pub(super) fn a_failed_periodic_sync_is_tried_again_a_period_later_a_bounded_number_of_times() {
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
pub(super) fn failed_after_a_gossiped_death(b_answers: bool) -> (Option<u64>, bool) {
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
pub(super) fn a_death_declared_elsewhere_is_checked_with_the_member_before_it_is_believed() {
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
