//! Cluster-wide key rotation through internal queries: three calls, each
//! with a report of who did it, who could not and why, and who was silent.

use alloc::vec::Vec;

use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus as Rng64;

use super::{KEY, OTHER_KEY, addr};
use crate::machine::mesh::Mesh;
use crate::wire::keyring::KeyringOp;
use crate::{Config, Error, Event, Identity, Input, MemberName, QueryReport, Swim};

fn sealed_mesh(names: &[&str]) -> Mesh {
    sealed_mesh_of(&Config::lan(), names)
}

fn sealed_mesh_of(config: &Config, names: &[&str]) -> Mesh {
    let nodes = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let id = Identity::new(MemberName::new(n).unwrap(), addr(i as u16 + 1));
            let mut s = Swim::new(config.clone(), id, Rng64::seed_from_u64(i as u64 + 1)).unwrap();
            s.install_key(KEY).unwrap();
            s
        })
        .collect();
    let mut mesh = Mesh::new(nodes);
    for i in 1..names.len() {
        mesh.input(i, 0, Input::Join { seeds: &[addr(1)] }).unwrap();
    }
    mesh.run(0, 3_000);
    mesh
}

fn step(mesh: &mut Mesh, t: u64, op: Option<KeyringOp>) -> QueryReport {
    mesh.input(0, t, Input::ClusterKeys { op }).unwrap();
    let id = mesh.nodes[0].last_query().unwrap();
    mesh.run(t + 1, t + 10_000);
    let mut reports = mesh.events_of(0).filter_map(|e| match e {
        Event::Report { id: q, report } if *q == id => Some(report.clone()),
        _ => None,
    });
    let r = reports.next().expect("a report");
    assert!(reports.next().is_none());
    r
}

fn names(list: &[MemberName]) -> Vec<&str> {
    let mut v: Vec<&str> = list.iter().map(MemberName::as_str).collect();
    v.sort_unstable();
    v
}

/// Installs, uses and removes on members a, b and c of `mesh` (from
/// 3 s), each step acked by all three, ending with `OTHER_KEY` alone.
fn rotate_to_other_key(mesh: &mut Mesh) {
    let all = ["a", "b", "c"];
    let r = step(mesh, 3_001, Some(KeyringOp::Install(OTHER_KEY)));
    assert_eq!((names(&r.acked), r.failed.len(), r.silent.len()), (all.to_vec(), 0, 0), "{r:?}");
    let r = step(mesh, 13_001, Some(KeyringOp::Use(OTHER_KEY)));
    assert_eq!(names(&r.acked), all);
    let r = step(mesh, 23_001, Some(KeyringOp::Remove(KEY)));
    assert_eq!(names(&r.acked), all);
    for s in &mesh.nodes {
        assert_eq!(s.keys(), [OTHER_KEY]);
    }
}

#[test]
pub(super) fn a_rotation_is_three_calls_each_reported_member_by_member() {
    let mut mesh = sealed_mesh(&["a", "b", "c"]);
    rotate_to_other_key(&mut mesh);
    // A failure is reported with its reason: the old key is gone.
    let r = step(&mut mesh, 33_001, Some(KeyringOp::Use(KEY)));
    assert!(r.acked.is_empty());
    assert_eq!(r.failed.len(), 3);
    assert!(r.failed.iter().all(|(_, why)| why.contains("no such key")), "{:?}", r.failed);
    // The listing gives fingerprints and counts, never keys.
    let r = step(&mut mesh, 43_001, None);
    assert_eq!(r.keys, [(OTHER_KEY.fingerprint(), 3)]);
    assert_eq!(r.primary.len(), 3);
    assert!(super::super::tests::incarnations::all_alive(&mesh));
}

/// In serf's dialect the same three calls go as serf's own key queries
/// (`_serf_install-key`...), answered as serf answers them, so that serf
/// agents rotate with us; a failure carries serf's reason.
#[test]
pub(super) fn in_serfs_dialect_a_rotation_goes_as_serfs_key_queries() {
    let mut mesh = sealed_mesh_of(&Config::lan().with_serf_wire(true), &["a", "b", "c"]);
    rotate_to_other_key(&mut mesh);
    let all = ["a", "b", "c"];
    // Removing a key no longer held succeeds, as with memberlist's keyring;
    // using one fails with serf's reason.
    let r = step(&mut mesh, 33_001, Some(KeyringOp::Remove(KEY)));
    assert_eq!(names(&r.acked), all);
    let r = step(&mut mesh, 43_001, Some(KeyringOp::Use(KEY)));
    assert_eq!(r.failed.len(), 3);
    assert!(r.failed.iter().all(|(_, why)| why == "Requested key is not in the keyring"), "{:?}", r.failed);
    let r = step(&mut mesh, 53_001, None);
    assert_eq!(r.keys, [(OTHER_KEY.fingerprint(), 3)]);
    assert_eq!(r.primary.len(), 3);
    assert!(super::super::tests::incarnations::all_alive(&mesh));
    // Never raised to the application.
    for i in 0..3 {
        assert!(!mesh.events_of(i).any(|e| matches!(e, Event::Query { .. })));
    }
}

/// A serf key query that did not come sealed changes nothing (a member
/// that still takes plaintext, mid-migration, would otherwise take a key
/// from anyone); a member that does not seal asks no key query.
#[test]
pub(super) fn in_serfs_dialect_a_key_query_in_plaintext_changes_nothing() {
    use crate::wire::Message;
    use crate::wire::memberlist::dialect::{Flavour, encode_packet};
    use crate::wire::memberlist::heard::Heard;
    use crate::wire::memberlist::serf_keys::{KeyQuery, encode_request};
    let config = Config::lan().with_serf_wire(true);
    let mut mesh = sealed_mesh_of(&config, &["a", "b"]);
    let mode = KeyringOp::Mode { seal_outgoing: true, accept_plaintext: true };
    mesh.nodes[1].handle(crate::Instant::ZERO, Input::Keyring(mode), &mut Vec::new()).unwrap();
    let mut request = Vec::new();
    encode_request(OTHER_KEY.as_bytes(), &mut request).unwrap();
    let question = Message::Question {
        ltime: 50,
        origin: "a",
        addr: addr(1),
        name: KeyQuery::Install.name(),
        payload: &request,
        filter: &[],
        ack: false,
        relay_factor: 0,
        timeout_ms: 5_000,
    };
    let mut plain = Vec::new();
    encode_packet(&[question], Flavour { serf: true }, &Heard::default(), &mut plain).unwrap();
    let out = mesh.nodes[1].handle_packet(crate::Instant::from_millis(3_100), addr(1), &plain).unwrap();
    assert!(out.iter().any(|a| matches!(a, crate::Action::Send { to, .. } if *to == addr(1))), "answered");
    assert_eq!(mesh.nodes[1].keys(), [KEY]);
    assert!(!mesh.events_of(1).any(|e| matches!(e, Event::Query { .. })));

    mesh.nodes[0].handle(crate::Instant::ZERO, Input::Keyring(mode), &mut Vec::new()).unwrap();
    let not_sealing = KeyringOp::Mode { seal_outgoing: false, accept_plaintext: true };
    mesh.nodes[0].handle(crate::Instant::ZERO, Input::Keyring(not_sealing), &mut Vec::new()).unwrap();
    let r = mesh.nodes[0].handle(crate::Instant::ZERO, Input::ClusterKeys { op: None }, &mut Vec::new());
    assert_eq!(r, Err(Error::NotSealing));
}

#[test]
pub(super) fn a_member_that_does_not_seal_cannot_send_keys() {
    let id = Identity::new(MemberName::new("a").unwrap(), addr(1));
    let mut a = Swim::new(Config::lan(), id, Rng64::seed_from_u64(1)).unwrap();
    let mut out = Vec::new();
    let r = a.handle(crate::Instant::ZERO, Input::ClusterKeys { op: Some(KeyringOp::Install(KEY)) }, &mut out);
    assert_eq!(r, Err(Error::NotSealing));
    assert!(out.is_empty());
}
