use super::*;
use crate::util::name::MemberName;
use crate::util::rng::tests::rng;
use crate::util::time::Instant;
use core::net::SocketAddr;

fn member(name: &str, state: MemberState) -> Member {
    Member {
        name: MemberName::new(name).unwrap(),
        addr: SocketAddr::from(([127, 0, 0, 1], 1)).into(),
        incarnation: 0,
        state,
        since: Instant::ZERO,
        meta: Default::default(),
        data_incarnation: 0,
        live_pos: None,
    }
}

#[test]
fn round_robin_probes_every_live_member_once_per_round() {
    let mut r = rng(1);
    let mut t = Members::default();
    let ids: Vec<MemberId> =
        (0..10).map(|i| t.insert(member(&alloc::format!("m{i}"), MemberState::Alive), &mut r)).collect();
    t.set_state(ids[3], MemberState::Dead, &mut r);
    for _round in 0..3 {
        let mut seen: Vec<MemberId> = (0..9).map(|_| t.next_probe_target(&mut r, &|_| (None, None)).unwrap()).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 9);
        assert!(!seen.contains(&ids[3]));
    }
}

#[test]
fn newcomers_join_the_current_round() {
    let mut r = rng(2);
    let mut t = Members::default();
    for i in 0..5 {
        t.insert(member(&alloc::format!("m{i}"), MemberState::Alive), &mut r);
    }
    let _ = t.next_probe_target(&mut r, &|_| (None, None));
    let late = t.insert(member("late", MemberState::Alive), &mut r);
    let rest: Vec<MemberId> = (0..5).map(|_| t.next_probe_target(&mut r, &|_| (None, None)).unwrap()).collect();
    assert!(rest.contains(&late));
}

#[test]
fn members_are_found_by_address_of_either_family() {
    let mut r = rng(4);
    let mut t = Members::default();
    let v4 = SocketAddr::from(([10, 0, 0, 1], 7946));
    let v6 = SocketAddr::from(([0xfd00, 0, 0, 0, 0, 0, 0, 1], 7946));
    let v6_scoped: SocketAddr = "[fe80::1%3]:7946".parse().unwrap();
    for (i, addr) in [v4, v6, v6_scoped].into_iter().enumerate() {
        let mut m = member(&alloc::format!("m{i}"), MemberState::Alive);
        m.addr = addr.into();
        t.insert(m, &mut r);
    }
    for addr in [v4, v6, v6_scoped] {
        assert!(t.is_live_at(&addr), "{addr}");
    }
    for addr in [
        SocketAddr::from(([10, 0, 0, 1], 7947)),
        SocketAddr::from(([10, 0, 0, 2], 7946)),
        "[fe80::1%4]:7946".parse().unwrap(),
        "[::ffff:10.0.0.1]:7946".parse().unwrap(),
    ] {
        assert!(!t.is_live_at(&addr), "{addr}");
    }
    let m0 = t.id_of("m0").unwrap();
    t.set_addr(m0, SocketAddr::from(([10, 0, 0, 9], 1)));
    assert!(!t.is_live_at(&v4));
    assert!(t.is_live_at(&SocketAddr::from(([10, 0, 0, 9], 1))));
}

#[test]
fn stale_handles_resolve_to_nothing() {
    let mut r = rng(3);
    let mut t = Members::default();
    let a = t.insert(member("a", MemberState::Dead), &mut r);
    assert!(t.remove(a).is_some());
    let b = t.insert(member("b", MemberState::Alive), &mut r);
    assert!(t.get(a).is_none());
    assert_eq!(t.get(b).unwrap().name.as_str(), "b");
    assert_eq!(t.id_of("a"), None);
    assert_eq!(t.live_len(), 1);
}

#[test]
fn random_live_respects_exclusions_and_count() {
    let mut r = rng(4);
    let mut t = Members::default();
    let ids: Vec<MemberId> =
        (0..6).map(|i| t.insert(member(&alloc::format!("m{i}"), MemberState::Alive), &mut r)).collect();
    let mut out = Vec::new();
    for _ in 0..50 {
        t.random_live(3, &ids[..2], &mut r, &mut out);
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|id| !ids[..2].contains(id)));
    }
    t.random_live(10, &ids[..2], &mut r, &mut out);
    assert_eq!(out.len(), 4);
}

#[test]
fn by_round_trip_probes_near_members_more_and_every_member_in_bounded_time() {
    use crate::Coordinate;
    let mut r = rng(5);
    let mut t = Members::default();
    let ids: Vec<MemberId> =
        (0..40).map(|i| t.insert(member(&alloc::format!("m{i}"), MemberState::Alive), &mut r)).collect();
    t.set_selector(alloc::boxed::Box::new(crate::Topology::by_round_trip()), &mut r);
    // Members 0..10 are 5 ms away, the rest 150 ms; member 39's round trip
    // is not known.
    let index = |id: MemberId| ids.iter().position(|&x| x == id).unwrap();
    let far = |id: MemberId| index(id) >= 10;
    let c = Coordinate::new([0.0; 8], 0.0, 0.1, 0.0);
    let look = |id: MemberId| {
        let i = index(id);
        let rtt = (i < 39).then(|| core::time::Duration::from_millis(if i < 10 { 5 } else { 150 }));
        (c, rtt)
    };
    let mut far_probes = 0;
    let mut last_seen = alloc::vec![0usize; 40];
    let n = 4000;
    for k in 1..=n {
        let id = t.next_probe_target(&mut r, &look).unwrap();
        if k > 200 {
            far_probes += usize::from(far(id) && index(id) != 39);
            // Every member, far ones included, is probed within a bound:
            // a far round of 29 takes 9 × 29 choices, and a member may come
            // first in one round and last in the next.
            assert!(k - last_seen[index(id)] <= 2 * 9 * 29, "member {} waited {}", index(id), k - last_seen[index(id)]);
        }
        last_seen[index(id)] = k;
    }
    // One far probe in nine, against 29 in 40 at random.
    let share = far_probes as f64 / (n - 200) as f64;
    assert!((0.08..0.16).contains(&share), "{share}");
    assert!(last_seen.iter().all(|&k| k > n - 2 * 9 * 29), "{last_seen:?}");
}

#[test]
fn the_kept_summary_sums_follow_every_change_of_claim() {
    use crate::protocol::summary::Summary;
    let mut r = rng(9);
    let mut t = Members::default();
    let summed = |t: &Members| {
        (
            Summary::fold(MAX_BUCKETS, t.sums(), core::iter::empty()),
            Summary::of(MAX_BUCKETS, t.iter().map(|(_, m)| (m.name.as_str(), m.claim()))),
        )
    };
    let ids: Vec<MemberId> =
        (0..300).map(|i| t.insert(member(&alloc::format!("m{i}"), MemberState::Alive), &mut r)).collect();
    let (kept, counted) = summed(&t);
    assert_eq!(kept, counted);
    for (k, &id) in ids.iter().enumerate() {
        match k % 5 {
            0 => t.set_state(id, MemberState::Suspect, &mut r),
            1 => t.get_mut(id).unwrap().incarnation += 3,
            2 => {
                let mut m = t.get_mut(id).unwrap();
                m.state = MemberState::Left;
                m.incarnation = 1;
            }
            3 => {
                t.remove(id);
            }
            // Changes beside the claim leave the sums alone.
            _ => t.get_mut(id).unwrap().since = Instant::from_millis(5),
        }
        let (kept, counted) = summed(&t);
        assert_eq!(kept, counted, "after change {k}");
    }
    // Back to the empty table's sums once every record is gone.
    let rest: Vec<MemberId> = t.iter().map(|(id, _)| id).collect();
    for id in rest {
        t.remove(id);
    }
    assert!(t.sums().iter().all(|&b| b == 0));
}

#[test]
fn find_answers_as_the_name_index_does_whatever_was_found_last() {
    let mut r = rng(3);
    let mut t = Members::default();
    let a = t.insert(member("a", MemberState::Alive), &mut r);
    let b = t.insert(member("b", MemberState::Alive), &mut r);
    assert_eq!(t.find("a"), Some(a));
    assert_eq!(t.find("a"), Some(a));
    assert_eq!(t.find("b"), Some(b));
    assert_eq!(t.find("x"), None);
    assert_eq!(t.find("b"), Some(b), "a miss does not forget the last found");
    t.remove(b);
    assert_eq!(t.find("b"), None, "a removed member is not found");
    // "c" takes b's slot, under a new generation.
    let c = t.insert(member("c", MemberState::Alive), &mut r);
    assert_ne!(c, b);
    assert_eq!(t.find("b"), None);
    assert_eq!(t.find("c"), Some(c));
    let b2 = t.insert(member("b", MemberState::Alive), &mut r);
    assert_eq!(t.find("b"), Some(b2));
    assert_eq!(t.find("c"), Some(c));
}
