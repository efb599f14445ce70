//! Three real memberlist 0.2.2 nodes (`interop/memberlist-peer`) and three
//! swim nodes speaking memberlist's format (`Config::memberlist_wire`) join
//! one another over push-pulls on loopback, Go nodes joining through swim
//! nodes and swim nodes through Go nodes, and run as one cluster: each side
//! lists the other with its metadata and its push-pull state, a killed Go
//! node is failed at every swim node, a stopped swim node is dead at every
//! Go node, leaves are seen as leaves both ways, and a reliable user
//! message reaches a Go node. With a shared key the cluster forms as well,
//! and a swim node with another key is kept out.
//!
//! Needs `go` and Debian's `golang-github-hashicorp-memberlist-dev`
//! (which `.ci/run` installs): without them the tests are skipped, or fail
//! when `CI` is set.

mod support;

use core::time::Duration;
use std::path::Path;

use lapswim_core::{Config, Event, Key, MemberState};
use lapswim_node::{Node, NodeBuilder, NodeEvent};
use support::{state_of, wait_state};
use swim_testkit::memberlist_peer::{MemberlistPeer, PeerOptions, b64};

const LIMIT: Duration = Duration::from_secs(30);

fn spawn(binary: &Path, options: PeerOptions) -> MemberlistPeer {
    MemberlistPeer::spawn(binary, &options).unwrap_or_else(|e| panic!("{e}"))
}

fn start_swim(name: &str, key: Option<Key>) -> Node {
    let config = Config::fast().with_memberlist_wire(true);
    let mut builder = NodeBuilder::new(name, "127.0.0.1:0".parse().expect("an address"))
        .config(config)
        .meta(format!("meta-{name}").into_bytes());
    if let Some(key) = key {
        builder = builder.keys([key]);
    }
    lapswim_tokio::start(builder).expect("the swim node starts")
}

/// Waits until the Go node lists exactly `names` alive.
fn wait_go_members(go: &mut MemberlistPeer, names: &[&str]) -> Vec<swim_testkit::memberlist_peer::Member> {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let members = go.members(Duration::from_secs(5)).unwrap_or_else(|e| panic!("{e}"));
        let mut alive: Vec<&str> = members.iter().filter(|m| m.state == "alive").map(|m| m.name.as_str()).collect();
        alive.sort_unstable();
        let mut want = names.to_vec();
        want.sort_unstable();
        if alive == want {
            return members;
        }
        if tokio::time::Instant::now() >= deadline {
            // Its log's end comes with the error.
            let log = go.wait_for(|_| false, Duration::ZERO).err().unwrap_or_default();
            panic!("{} lists {alive:?}, not {want:?}\n{log}", go.name());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the swim node lists exactly `names` alive.
async fn wait_swim_members(node: &Node, names: &[&str]) {
    let deadline = tokio::time::Instant::now() + LIMIT;
    let mut want = names.to_vec();
    want.sort_unstable();
    loop {
        let members = node.members().await.expect("members");
        let mut alive: Vec<String> =
            members.iter().filter(|m| m.state == MemberState::Alive).map(|m| m.name.as_str().to_owned()).collect();
        alive.sort_unstable();
        if alive == want {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{} lists {alive:?}, not {want:?}", node.name());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_memberlist_nodes_and_three_swim_nodes_form_one_cluster() {
    let Some(binary) = MemberlistPeer::for_test() else { return };
    let go_opts = |name: &str| PeerOptions::new(name).meta(format!("meta-{name}")).state(format!("state-{name}"));
    let mut go1 = spawn(&binary, go_opts("go1"));
    let sw1 = start_swim("sw1", None);
    let events = sw1.events();
    sw1.set_app_state(b"state-sw1".to_vec()).await.expect("app state");
    // A swim node joins a Go node, a Go node joins through a swim node...
    assert_eq!(sw1.join(&[go1.addr()]).await.expect("sw1 joins go1"), go1.addr());
    let mut go2 = spawn(&binary, go_opts("go2").join(sw1.addr()));
    let mut go3 = spawn(&binary, go_opts("go3").join(go2.addr()));
    // ...and swim nodes through each kind.
    let sw2 = start_swim("sw2", None);
    sw2.join(&[sw1.addr()]).await.expect("sw2 joins sw1");
    let sw3 = start_swim("sw3", None);
    sw3.join(&[go3.addr()]).await.expect("sw3 joins go3");

    let all = ["go1", "go2", "go3", "sw1", "sw2", "sw3"];
    for node in [&sw1, &sw2, &sw3] {
        wait_swim_members(node, &all).await;
    }
    for go in [&mut go1, &mut go2, &mut go3] {
        let members = wait_go_members(go, &all);
        for m in members.iter().filter(|m| m.name.starts_with("sw")) {
            assert_eq!(m.meta, format!("meta-{}", m.name), "{}'s metadata at {}", m.name, go.name());
        }
    }
    for name in ["go1", "go2", "go3"] {
        let m = sw2.member(name).await.expect("member").expect("listed");
        assert_eq!(m.meta, format!("meta-{name}").into_bytes(), "{name}'s metadata at sw2");
    }
    // The push-pull's user state, both ways.
    go1.wait_for(|ev| ev["ev"] == "remote_state" && ev["state"] == b64(b"state-sw1"), LIMIT)
        .unwrap_or_else(|e| panic!("{e}"));
    let deadline = tokio::time::Instant::now() + LIMIT;
    let mut state = None;
    while state.is_none() && tokio::time::Instant::now() < deadline {
        if let Ok(Some(NodeEvent::Protocol { event: Event::AppState { from, state: s, .. }, .. })) =
            tokio::time::timeout(Duration::from_millis(200), events.next()).await
            && from.as_str() == "go1"
        {
            state = Some(s);
        }
    }
    assert_eq!(state.as_deref(), Some(&b"state-go1"[..]), "go1's push-pull state at sw1");

    // A reliable user message from a swim node reaches a Go node.
    sw2.send("go2", b"reliable from swim".to_vec(), true).await.expect("sent");
    go2.wait_for(|ev| ev["ev"] == "user" && ev["msg"] == b64(b"reliable from swim"), LIMIT)
        .unwrap_or_else(|e| panic!("{e}"));

    // kill -9 of a Go node: failed at every swim node.
    go3.kill().unwrap_or_else(|e| panic!("{e}"));
    let killed = tokio::time::Instant::now();
    for node in [&sw1, &sw2, &sw3] {
        let gone = wait_state(node, "go3", LIMIT, |s| matches!(s, Some(MemberState::Dead) | None)).await;
        assert!(gone, "{} failed the killed Go node: {:?}", node.name(), state_of(node, "go3").await);
        eprintln!("go3 killed: failed at {} after {} ms", node.name(), killed.elapsed().as_millis());
    }

    // A swim node stops without leaving: dead at every Go node.
    sw3.shutdown().await;
    let stopped = tokio::time::Instant::now();
    for go in [&mut go1, &mut go2] {
        let ev = go.wait_for(|ev| ev["ev"] == "leave" && ev["name"] == "sw3", LIMIT).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ev["state"], "dead", "{ev}");
        eprintln!("sw3 stopped: dead at {} after {} ms", go.name(), stopped.elapsed().as_millis());
    }

    // Leaves, both ways.
    sw2.leave().await.expect("sw2 leaves");
    for go in [&mut go1, &mut go2] {
        let ev = go.wait_for(|ev| ev["ev"] == "leave" && ev["name"] == "sw2", LIMIT).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ev["state"], "left", "sw2's leave at {}: {ev}", go.name());
    }
    go2.send_command("leave").unwrap_or_else(|e| panic!("{e}"));
    go2.wait_for(|ev| ev["ev"] == "left", LIMIT).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        wait_state(&sw1, "go2", LIMIT, |s| s == Some(MemberState::Left)).await,
        "go2's leave at sw1: {:?}",
        state_of(&sw1, "go2").await
    );
    let _ = go1.quit(Duration::from_secs(5));
    sw1.shutdown().await;
    sw2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_shared_key_they_form_a_cluster_and_a_wrong_key_is_kept_out() {
    let Some(binary) = MemberlistPeer::for_test() else { return };
    let key = [7u8; 32];
    let mut go1 = spawn(&binary, PeerOptions::new("go1").key(&key));
    let sw1 = start_swim("sw1", Some(Key::new(key)));
    sw1.join(&[go1.addr()]).await.expect("sw1 joins go1 with the key");
    let mut go2 = spawn(&binary, PeerOptions::new("go2").key(&key).join(sw1.addr()));
    let all = ["go1", "go2", "sw1"];
    wait_swim_members(&sw1, &all).await;
    wait_go_members(&mut go1, &all);
    wait_go_members(&mut go2, &all);

    let stranger = start_swim("sw9", Some(Key::new([8; 32])));
    assert!(stranger.join(&[go1.addr()]).await.is_err(), "a join under another key fails");
    tokio::time::sleep(Duration::from_secs(3)).await;
    for go in [&mut go1, &mut go2] {
        let members = go.members(Duration::from_secs(5)).unwrap_or_else(|e| panic!("{e}"));
        assert!(members.iter().all(|m| m.name != "sw9"), "{} let the stranger in: {members:?}", go.name());
    }
    assert!(state_of(&sw1, "sw9").await.is_none());
    assert!(state_of(&stranger, "go1").await.is_none());
    let _ = go1.quit(Duration::from_secs(5));
    let _ = go2.quit(Duration::from_secs(5));
    stranger.shutdown().await;
    sw1.shutdown().await;
}
