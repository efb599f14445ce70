//! Members seeded straight into the table (`Swim::seed_members`), as the
//! simulator starts a converged cluster.

use super::*;

fn peers(count: u16) -> Vec<(MemberName, SocketAddr)> {
    (0..count).map(|i| (MemberName::new(&alloc::format!("m{i}")).unwrap(), addr(10 + i))).collect()
}

fn seed(s: &mut Swim<Rng64>, peers: &[(MemberName, SocketAddr)], incarnation: u32) -> usize {
    s.seed_members(at(0), peers.iter().map(|(n, a)| (n.clone(), *a, incarnation, &[][..])))
}

/// Answers every ping in `out` from where it went; returns the
/// addresses pinged and the actions of the answers.
fn answer_pings(a: &mut Swim<Rng64>, t: u64, out: &[Action]) -> (Vec<SocketAddr>, Vec<Action>) {
    let (mut pinged, mut more) = (Vec::new(), Vec::new());
    for (to, bytes) in sent(out) {
        let mut msgs = Messages::new();
        decode(&bytes, &mut msgs).unwrap();
        for m in msgs.iter() {
            if let Message::Ping { seq, .. } = m {
                pinged.push(to);
                more.extend(a.handle_packet(at(t), to, &packet(&[Message::Ack { seq: *seq }])).unwrap());
            }
        }
    }
    (pinged, more)
}

#[test]
fn a_seeded_member_probes_every_seeded_member_and_queues_nothing() {
    let mut a = node("a", 1);
    let peers = peers(40);
    assert_eq!(seed(&mut a, &peers, 3), 40);
    assert_eq!(a.num_live(), 41);
    assert_eq!(a.queued_updates(), 0, "a converged cluster has no news to spread");
    assert!(a.members().skip(1).all(|m| m.state == MemberState::Alive && m.incarnation == 3));
    // Ourselves and names already held are skipped.
    let me = [(MemberName::new("a").unwrap(), addr(1))];
    assert_eq!(seed(&mut a, &me, 0) + seed(&mut a, &peers[..5], 0), 0);
    assert_eq!(a.member("m0").unwrap().incarnation, 3);
    // The timers run from the seeding on; the first input reports them.
    let mut out = a.handle_timeout(at(0));
    assert!(a.deadline().is_some(), "the seeded member started its timers");
    let mut probed = Vec::new();
    // A round of probes, every one answered: one probe of each member,
    // and never an event or an update to spread.
    let mut t = 0;
    while t <= 42_000 {
        let (pinged, answers) = answer_pings(&mut a, t, &out);
        probed.extend(pinged);
        out.extend(answers);
        assert!(events(&out).is_empty(), "at {t} ms: {:?}", events(&out));
        assert_eq!(a.queued_updates(), 0, "at {t} ms");
        t = a.deadline().unwrap().as_millis();
        out = a.handle_timeout(at(t));
    }
    probed.sort();
    let mut all: Vec<SocketAddr> = peers.iter().map(|p| p.1).collect();
    all.sort();
    probed.dedup();
    assert_eq!(probed, all, "every seeded member probed");
    assert_eq!(a.stats().probes_failed, 0);
}

#[test]
fn seeding_stops_at_max_members() {
    let mut config = Config::lan();
    config.max_members = core::num::NonZeroU32::new(10).unwrap();
    let id = Identity::new(MemberName::new("a").unwrap(), addr(1));
    let mut a = Swim::new(config, id, Rng64::seed_from_u64(1)).unwrap();
    assert_eq!(seed(&mut a, &peers(40), 0), 10);
    assert_eq!(a.num_live(), 11);
}

#[test]
fn a_seeded_member_first_syncs_within_the_interval_scaled_to_its_table() {
    // 1,000 members: a push-pull every 30 s × 6. A member started alone
    // draws its first within 30 s; seeded, within 180 s, as in a steady
    // state.
    let mut firsts = Vec::new();
    for seed_no in 0..20u64 {
        let id = Identity::new(MemberName::new("a").unwrap(), addr(1));
        let mut a = Swim::new(Config::lan(), id, Rng64::seed_from_u64(seed_no)).unwrap();
        seed(&mut a, &peers(999), 0);
        let mut t = 0;
        let mut out = a.handle_timeout(at(0));
        loop {
            let (_, answers) = answer_pings(&mut a, t, &out);
            out.extend(answers);
            // With every probe answered, only a push-pull opens a stream:
            // its first frame carries a summary of the table (64 buckets
            // of 4 bytes for 1,000 members), not the table.
            if out.iter().any(|x| matches!(x, Action::OpenStream { .. })) {
                let sent: usize =
                    out.iter().map(|x| if let Action::SendFrame { frame, .. } = x { frame.len() } else { 0 }).sum();
                assert!((64 * 4..999 * 10).contains(&sent), "a summary: {sent} bytes");
                break;
            }
            t = a.deadline().unwrap().as_millis();
            assert!(t < 180_000, "no sync within the scaled interval");
            out = a.handle_timeout(at(t));
        }
        firsts.push(t);
    }
    assert!(firsts.iter().any(|&t| t > 30_000), "first syncs drawn beyond the unscaled interval: {firsts:?}");
}

/// New names heard by gossip at one instant: a member holding a few
/// members admits a burst of `member_admission_rate` (1,000), one holding
/// 3,000 admits as many as it holds.
#[test]
fn a_member_admits_as_many_new_names_a_second_as_it_holds_live_members() {
    let admitted = |held: u16| {
        let mut a = node("a", 1);
        seed(&mut a, &peers(held), 0);
        let _ = a.handle_timeout(at(0));
        for k in 0..2_000u16 {
            let name = alloc::format!("new{k}");
            learn(&mut a, at(1), addr(10), &packet(&[alive(&name, 0, 20_000 + k)])).unwrap();
        }
        a.members().filter(|m| m.name.as_str().starts_with("new")).count()
    };
    let rate = Config::lan().member_admission_rate.get() as usize;
    assert_eq!(admitted(10), rate, "a burst of the configured rate");
    assert_eq!(admitted(2_999), 2_000, "3,000 live members: 3,000 a second");
}
