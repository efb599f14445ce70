//! Real memberlist 0.2.2 nodes (`interop/memberlist-peer`) on loopback,
//! driven through `swim_testkit::memberlist_peer`: they join, see each
//! other's metadata and state, carry user messages, report a crashed node
//! dead and a departed one left, and keep a node with the wrong key out.
//!
//! Needs `go` and Debian's `golang-github-hashicorp-memberlist-dev`
//! (which `.ci/run` installs): without them the tests are skipped, or fail
//! when `CI` is set.

use core::time::Duration;
use std::path::Path;

use serde_json::Value;
use swim_testkit::memberlist_peer::{MemberlistPeer, PeerOptions, b64, unb64};

/// How long joins and their gossip may take.
const JOINED: Duration = Duration::from_secs(15);
/// How long a crash may take to be declared (fast timers: a probe every
/// 200 ms, then at most 4.8 s of suspicion).
const DECLARED_DEAD: Duration = Duration::from_secs(20);
/// How long a single message or a leave may take.
const DELIVERED: Duration = Duration::from_secs(10);

fn spawn(binary: &Path, options: PeerOptions) -> MemberlistPeer {
    MemberlistPeer::spawn(binary, &options).unwrap_or_else(|e| panic!("{e}"))
}

fn is_event<'a>(kind: &'a str, name: &'a str) -> impl Fn(&Value) -> bool + 'a {
    move |ev| ev["ev"] == kind && ev["name"] == name
}

fn user_message(msg: &[u8]) -> impl Fn(&Value) -> bool + '_ {
    move |ev| ev["ev"] == "user" && unb64(&ev["msg"]).as_deref() == Some(msg)
}

/// Waits until `peer` lists exactly `names` as live members, all alive.
fn wait_members(peer: &mut MemberlistPeer, names: &[&str]) {
    let mut want: Vec<&str> = names.to_vec();
    want.sort_unstable();
    for _ in 0..100 {
        let members = peer.members(DELIVERED).unwrap_or_else(|e| panic!("{e}"));
        let mut got: Vec<&str> = members.iter().filter(|m| m.state == "alive").map(|m| m.name.as_str()).collect();
        got.sort_unstable();
        if got == want && members.len() == want.len() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let members = peer.members(DELIVERED);
    panic!("{} does not list {want:?} alive: {members:?}", peer.name());
}

#[test]
fn two_peers_join_see_metadata_and_state_and_carry_user_messages() {
    let Some(binary) = MemberlistPeer::for_test() else { return };
    let mut a = spawn(&binary, PeerOptions::new("a").meta("meta of a").state("state of a").ack_payload("ack of a"));
    let mut b = spawn(&binary, PeerOptions::new("b").meta("meta of b").state("state of b").join(a.addr()));

    let joined = b.wait_for(|ev| ev["ev"] == "joined" || ev["ev"] == "error", JOINED).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(joined["ev"], "joined", "{joined}");
    let seen = a.wait_for(is_event("join", "b"), JOINED).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((&seen["meta"], &seen["addr"]), (&"meta of b".into(), &b.addr().to_string().into()), "{seen}");
    let seen = b.wait_for(is_event("join", "a"), JOINED).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((&seen["meta"], &seen["addr"]), (&"meta of a".into(), &a.addr().to_string().into()), "{seen}");
    // The join's push-pull carries each side's local state.
    let state =
        b.wait_for(|ev| ev["ev"] == "remote_state" && ev["join"] == true, JOINED).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(unb64(&state["state"]).as_deref(), Some(&b"state of a"[..]), "{state}");
    let state = a.wait_for(|ev| ev["ev"] == "remote_state", JOINED).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(unb64(&state["state"]).as_deref(), Some(&b"state of b"[..]), "{state}");
    wait_members(&mut a, &["a", "b"]);
    wait_members(&mut b, &["a", "b"]);
    let listed = a.members(DELIVERED).unwrap_or_else(|e| panic!("{e}"));
    let listed_b = listed.iter().find(|m| m.name == "b").expect("b listed");
    assert_eq!((listed_b.meta.as_str(), listed_b.addr.clone()), ("meta of b", b.addr().to_string()));

    a.send_reliable("b", b"over a stream").unwrap_or_else(|e| panic!("{e}"));
    b.wait_for(user_message(b"over a stream"), DELIVERED).unwrap_or_else(|e| panic!("{e}"));
    b.send_best_effort("a", b"in a datagram").unwrap_or_else(|e| panic!("{e}"));
    a.wait_for(user_message(b"in a datagram"), DELIVERED).unwrap_or_else(|e| panic!("{e}"));
    // By address, not name: SendToAddress.
    let to = b.addr().to_string();
    a.send_best_effort(&to, b"to an address").unwrap_or_else(|e| panic!("{e}"));
    b.wait_for(user_message(b"to an address"), DELIVERED).unwrap_or_else(|e| panic!("{e}"));
    a.broadcast(b"gossiped").unwrap_or_else(|e| panic!("{e}"));
    b.wait_for(user_message(b"gossiped"), DELIVERED).unwrap_or_else(|e| panic!("{e}"));
    // b's probes of a come back with a's ack payload.
    let ack = b.wait_for(is_event("ack_payload", "a"), DELIVERED).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ack["payload"], b64(b"ack of a"), "{ack}");
    // An unknown member is an error, not a hang.
    let err = a.send_reliable("nobody", b"x").expect_err("no member named nobody");
    assert!(err.contains("nobody"), "{err}");
}

#[test]
fn a_crashed_peer_is_reported_dead_and_a_departed_one_left() {
    let Some(binary) = MemberlistPeer::for_test() else { return };
    let mut a = spawn(&binary, PeerOptions::new("a"));
    let mut b = spawn(&binary, PeerOptions::new("b").join(a.addr()));
    let mut killed = spawn(&binary, PeerOptions::new("killed").join(a.addr()));
    let mut quitter = spawn(&binary, PeerOptions::new("quitter").join(a.addr()));
    let all = ["a", "b", "killed", "quitter"];
    for peer in [&mut a, &mut b, &mut killed, &mut quitter] {
        wait_members(peer, &all);
    }

    // SIGKILL: no goodbye at all.
    killed.kill().unwrap_or_else(|e| panic!("{e}"));
    for peer in [&mut a, &mut b, &mut quitter] {
        let ev = peer.wait_for(is_event("leave", "killed"), DECLARED_DEAD).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ev["state"], "dead", "{ev}");
    }
    // Shutdown without Leave: found dead the same way.
    let status = quitter.quit(DELIVERED).unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "quit exits 0: {status}");
    for peer in [&mut a, &mut b] {
        let ev = peer.wait_for(is_event("leave", "quitter"), DECLARED_DEAD).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ev["state"], "dead", "{ev}");
    }

    // Leave: its own dead message, so left rather than dead.
    let status = b.leave(DELIVERED).unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "leave exits 0: {status}");
    let ev = a.wait_for(is_event("leave", "b"), DELIVERED).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ev["state"], "left", "{ev}");

    wait_members(&mut a, &["a"]);
    let mut all = a.members_all(DELIVERED).unwrap_or_else(|e| panic!("{e}"));
    all.sort_by(|x, y| x.name.cmp(&y.name));
    let states: Vec<(&str, &str)> = all.iter().map(|m| (m.name.as_str(), m.state.as_str())).collect();
    assert_eq!(states, [("a", "alive"), ("b", "left"), ("killed", "dead"), ("quitter", "dead")]);
    assert!(
        !a.has_seen(|ev| ev["ev"] == "leave" && ev["name"] == "a" || ev["ev"] == "error"),
        "a saw itself leave, or an error"
    );
}

#[test]
fn a_shared_key_joins_and_a_wrong_or_missing_key_does_not() {
    let Some(binary) = MemberlistPeer::for_test() else { return };
    let key: Vec<u8> = (0..32).collect();
    let wrong: Vec<u8> = (100..132).collect();
    let mut a = spawn(&binary, PeerOptions::new("a").key(&key).meta("keyed a"));
    let mut b = spawn(&binary, PeerOptions::new("b").key(&key).meta("keyed b").join(a.addr()));
    let ev = a.wait_for(is_event("join", "b"), JOINED).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ev["meta"], "keyed b", "{ev}");
    let ev = b.wait_for(is_event("join", "a"), JOINED).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ev["meta"], "keyed a", "{ev}");
    b.send_reliable("a", b"encrypted").unwrap_or_else(|e| panic!("{e}"));
    a.wait_for(user_message(b"encrypted"), DELIVERED).unwrap_or_else(|e| panic!("{e}"));

    let mut intruders =
        [spawn(&binary, PeerOptions::new("wrong-key").key(&wrong)), spawn(&binary, PeerOptions::new("no-key"))];
    for intruder in &mut intruders {
        let err = intruder.join(a.addr()).expect_err("the join fails");
        assert!(err.contains(&a.addr().ip().to_string()), "{err}");
    }
    // A few protocol periods later, a still has none of them.
    std::thread::sleep(Duration::from_secs(2));
    wait_members(&mut a, &["a", "b"]);
    wait_members(&mut b, &["a", "b"]);
    for intruder in &mut intruders {
        let name = intruder.name().to_owned();
        assert!(!a.has_seen(|ev| ev["name"] == name.as_str()), "a heard of {name}");
        wait_members(intruder, &[&name]);
    }
}
