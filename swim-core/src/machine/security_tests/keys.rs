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
    let nodes = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let id = Identity::new(MemberName::new(n).unwrap(), addr(i as u16 + 1));
            let mut s = Swim::new(Config::lan(), id, Rng64::seed_from_u64(i as u64 + 1)).unwrap();
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

#[test]
pub(super) fn a_rotation_is_three_calls_each_reported_member_by_member() {
    let mut mesh = sealed_mesh(&["a", "b", "c"]);
    let all = ["a", "b", "c"];
    let r = step(&mut mesh, 3_001, Some(KeyringOp::Install(OTHER_KEY)));
    assert_eq!((names(&r.acked), r.failed.len(), r.silent.len()), (all.to_vec(), 0, 0));
    let r = step(&mut mesh, 13_001, Some(KeyringOp::Use(OTHER_KEY)));
    assert_eq!(names(&r.acked), all);
    let r = step(&mut mesh, 23_001, Some(KeyringOp::Remove(KEY)));
    assert_eq!(names(&r.acked), all);
    for s in &mesh.nodes {
        assert_eq!(s.keys(), [OTHER_KEY]);
    }
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

#[test]
pub(super) fn a_member_that_does_not_seal_cannot_send_keys() {
    let id = Identity::new(MemberName::new("a").unwrap(), addr(1));
    let mut a = Swim::new(Config::lan(), id, Rng64::seed_from_u64(1)).unwrap();
    let mut out = Vec::new();
    let r = a.handle(crate::Instant::ZERO, Input::ClusterKeys { op: Some(KeyringOp::Install(KEY)) }, &mut out);
    assert_eq!(r, Err(Error::NotSealing));
    assert!(out.is_empty());
}
