//! Periodic syncs by difference: what two members with 1,000-member
//! tables send each other when their tables agree, differ in a record or
//! two, or differ in most.

use super::*;
use crate::protocol::lifecycle::{Sync, SyncKind, start_sync};

const PEERS: u16 = 998;

fn phantoms(skip: impl Fn(u16) -> bool) -> Vec<(MemberName, SocketAddr)> {
    (0..PEERS)
        .filter(|&i| !skip(i))
        .map(|i| (MemberName::new(&alloc::format!("m{i}")).unwrap(), addr(100 + i)))
        .collect()
}

/// a (node 0) and b (node 1), each holding the other and the phantoms
/// `skip` leaves in its table, at incarnation 0.
fn pair(config: Config, skip_a: impl Fn(u16) -> bool, skip_b: impl Fn(u16) -> bool) -> Mesh {
    let make = |name: &str, i: u16| {
        let id = Identity::new(MemberName::new(name).unwrap(), addr(i));
        Swim::new(config.clone(), id, Rng64::seed_from_u64(u64::from(i))).unwrap()
    };
    let (mut a, mut b) = (make("a", 1), make("b", 2));
    let other = |name: &str, i: u16| (MemberName::new(name).unwrap(), addr(i));
    for (s, peers) in [(&mut a, phantoms(skip_a)), (&mut b, phantoms(skip_b))] {
        let me = s.local().addr;
        let mut all = peers;
        all.extend([other("a", 1), other("b", 2)].into_iter().filter(|p| p.1 != me));
        s.seed_members(at(0), all.iter().map(|(n, a)| (n.clone(), *a, 0, &[][..])));
    }
    Mesh::new(alloc::vec![a, b])
}

/// a's periodic sync to b, run to its end; the bytes each side sent.
fn sync(mesh: &mut Mesh, why: SyncKind) -> [usize; 2] {
    let before = mesh.actions.len();
    let to = mesh.nodes[1].local().addr;
    let s = &mut mesh.nodes[0];
    let sync = Sync {
        membership: &mut s.membership,
        streams: &mut s.streams,
        user: &s.user,
        query_clock: s.queries.clock.clock(),
        outbox: &mut s.outbox,
    };
    start_sync(at(1), to, why, sync);
    let mut out = Vec::new();
    s.flush(&mut out);
    mesh.route(0, out);
    mesh.settle(1);
    let mut sent = [0; 2];
    for (i, a) in &mesh.actions[before..] {
        if let Action::SendFrame { frame, .. } = a {
            sent[*i] += frame.len();
        }
    }
    assert_eq!(mesh.nodes[0].streams.len() + mesh.nodes[1].streams.len(), 0, "both ends closed");
    sent
}

/// Answers the pings the nodes sent since action `since`, as their
/// targets would: new names are admitted once they answer one.
fn answer_pings(mesh: &mut Mesh, since: usize) {
    let pings: Vec<(usize, SocketAddr, u32)> = mesh.actions[since..]
        .iter()
        .filter_map(|(i, a)| if let Action::Send { to, packet } = a { Some((*i, *to, packet.to_vec())) } else { None })
        .flat_map(|(i, to, bytes)| {
            let mut msgs = Messages::new();
            let _ = decode(&bytes, &mut msgs);
            msgs.iter()
                .filter_map(|m| if let Message::Ping { seq, .. } = m { Some((i, to, *seq)) } else { None })
                .collect::<Vec<_>>()
        })
        .collect();
    for (i, to, seq) in pings {
        let _ = mesh.nodes[i].handle_packet(at(2), to, &packet(&[Message::Ack { seq }]));
    }
}

fn completed(mesh: &Mesh) -> [u64; 2] {
    [mesh.nodes[0].stats().syncs_completed, mesh.nodes[1].stats().syncs_completed]
}

fn incarnation(s: &Swim<Rng64>, name: &str) -> Option<(MemberState, u32)> {
    s.member(name).map(|m| (m.state, m.incarnation))
}

#[test]
fn agreeing_tables_exchange_a_summary_and_a_bitmap() {
    let mut mesh = pair(Config::lan(), |_| false, |_| false);
    let [a, b] = sync(&mut mesh, SyncKind::Difference);
    // 1,000 records: 64 buckets of 4 bytes, an alive each way, heads.
    assert!(a < 64 * 4 + 60 && b < 60, "a sent {a} bytes, b {b}");
    assert_eq!(completed(&mesh), [1, 1]);
    let mut whole = pair(Config::lan(), |_| false, |_| false);
    let [wa, wb] = sync(&mut whole, SyncKind::Periodic);
    assert!(wa > 999 * 10 && wb > 999 * 10, "whole tables: {wa} and {wb} bytes");
}

#[test]
fn records_that_differ_cross_both_ways_and_nothing_else() {
    // a lacks m7, b lacks m500; b holds m20 suspect, a holds m30 at a newer
    // incarnation.
    let mut mesh = pair(Config::lan(), |i| i == 7, |i| i == 500);
    let t = at(1);
    let b = &mut mesh.nodes[1];
    b.handle_packet(t, addr(3), &packet(&[Message::Suspect { incarnation: 0, name: "m20", from: "b" }])).unwrap();
    let a = &mut mesh.nodes[0];
    a.handle_packet(t, addr(130), &packet(&[alive("m30", 4, 130)])).unwrap();
    let since = mesh.actions.len();
    let [sent_a, sent_b] = sync(&mut mesh, SyncKind::Difference);
    answer_pings(&mut mesh, since);
    let (a, b) = (&mesh.nodes[0], &mesh.nodes[1]);
    assert_eq!(incarnation(a, "m7"), Some((MemberState::Alive, 0)));
    assert_eq!(incarnation(b, "m500"), Some((MemberState::Alive, 0)));
    assert_eq!(incarnation(b, "m30"), Some((MemberState::Alive, 4)));
    assert_eq!(incarnation(a, "m20"), Some((MemberState::Suspect, 0)));
    // Four buckets of about 16 records each way, not 1,000 records.
    assert!(sent_a < 3_000 && sent_b < 3_000, "a sent {sent_a} bytes, b {sent_b}");
    assert_eq!(completed(&mesh), [1, 1]);
    // Now they agree: the next sync finds nothing to send.
    let [a2, b2] = sync(&mut mesh, SyncKind::Difference);
    assert!(a2 < 64 * 4 + 60 && b2 < 60, "a sent {a2} bytes, b {b2}");
}

#[test]
fn tables_that_differ_mostly_are_exchanged_whole() {
    // a knows a tenth of the members: its summary has 8 buckets, and all
    // of them differ from b's.
    let mut mesh = pair(Config::lan(), |i| i % 10 != 0, |_| false);
    let since = mesh.actions.len();
    let [sent_a, sent_b] = sync(&mut mesh, SyncKind::Difference);
    answer_pings(&mut mesh, since);
    assert_eq!(mesh.nodes[0].num_live(), 1000, "a learnt every member");
    assert!(sent_b > 999 * 10, "b sent its whole table: {sent_b} bytes");
    // Its summary and alive, and an empty third half: nothing b lacked.
    assert!(sent_a < 100, "a sent {sent_a} bytes");
    assert_eq!(completed(&mesh), [1, 1]);
}

#[test]
fn a_rumour_about_the_opener_is_refuted_within_the_sync() {
    let mut mesh = pair(Config::lan(), |_| false, |_| false);
    let b = &mut mesh.nodes[1];
    b.handle_packet(at(1), addr(3), &packet(&[Message::Suspect { incarnation: 0, name: "a", from: "b" }])).unwrap();
    sync(&mut mesh, SyncKind::Difference);
    // a heard the suspicion in b's answer and sent its refutation back.
    assert_eq!(mesh.nodes[0].incarnation(), 1);
    assert_eq!(incarnation(&mesh.nodes[1], "a"), Some((MemberState::Alive, 1)));
}

#[test]
fn kept_events_cross_only_when_they_differ() {
    let mut mesh = pair(Config::lan(), |_| false, |_| false);
    mesh.input(0, 1, Input::UserEvent { name: "deploy", payload: b"v1", coalesce: false }).unwrap();
    // Keep b from hearing it by gossip: the sync alone repairs it.
    mesh.actions.clear();
    mesh.events.clear();
    let [a, _] = sync(&mut mesh, SyncKind::Difference);
    let delivered = mesh.events_of(1).filter(|e| matches!(e, Event::User { .. })).count();
    assert_eq!(delivered, 1, "b delivered the event a kept");
    assert!(a < 64 * 4 + 120, "{a} bytes");
    // Both keep it now: the next sync sends no event.
    let before = mesh.events.len();
    sync(&mut mesh, SyncKind::Difference);
    assert!(mesh.events[before..].iter().all(|(_, e)| !matches!(e, Event::User { .. })));
}

#[test]
fn without_delta_sync_the_periodic_sync_sends_whole_tables() {
    let mut mesh = pair(Config::lan().with_delta_sync(false), |_| false, |_| false);
    mesh.input(0, 0, Input::Timeout).unwrap();
    mesh.input(1, 0, Input::Timeout).unwrap();
    // The member's own push-pull, whatever peer it picks: a whole table.
    for t in 1..200_000 {
        let s = &mut mesh.nodes[0];
        if s.deadline().is_some_and(|d| d <= at(t)) {
            let out = s.handle_timeout(at(t));
            // Its frames headed by a sync request (not a stream ping).
            let sent: usize = out
                .iter()
                .filter_map(|x| if let Action::SendFrame { frame, .. } = x { Some(frame) } else { None })
                .filter(|frame| {
                    let mut m = Messages::new();
                    crate::wire::decode_frame(frame, &mut m).is_ok()
                        && matches!(m.first(), Some(Message::SyncRequest { .. }))
                })
                .map(|frame| frame.len())
                .sum();
            if sent > 0 {
                assert!(sent > 999 * 10, "{sent} bytes");
                return;
            }
        }
    }
    panic!("no push-pull in 200 s");
}
