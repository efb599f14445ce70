//! Two real `serf agent`s (serf 0.9.4, built from Debian's packages) and two
//! swim nodes speaking serf's layer on memberlist's format
//! (`Config::serf_wire`), on loopback: a swim node joins a serf agent, the
//! other joins through it, and then each side lists the other alive with
//! its tags; `serf event` reaches both swim nodes once; a swim node's event
//! reaches both agents' event handlers once; a swim node's leave is `left`
//! at the agents; a killed agent is failed at the swim nodes; `serf rtt`
//! estimates the round trip to a swim node from the coordinate in its
//! acks, and the swim nodes hold the agents' coordinates. Queries cross
//! both ways, with and without filters on names and tags, each answered by
//! exactly the members its filters select.
//!
//! Needs `go` and Debian's `golang-github-hashicorp-serf-dev` (which
//! `.ci/run` installs): without them the test is skipped, or fails when
//! `CI` is set.

use core::time::Duration;
use std::collections::BTreeMap;

use lapswim_core::{Config, Event, MemberName, MemberState, QueryFilter, QueryOptions, Tags};
use lapswim_node::{Node, NodeBuilder, NodeEvent};
use swim_testkit::serf_agent::{SerfAgent, SerfMember};

const LIMIT: Duration = Duration::from_secs(30);

async fn start_swim(name: &str) -> Node {
    let config = Config::fast().with_serf_wire(true);
    let builder = NodeBuilder::new(name, "127.0.0.1:0".parse().expect("an address")).config(config);
    let node = lapswim_tokio::start(builder).expect("the swim node starts");
    let mut tags = Tags::new();
    tags.insert("role", "swim");
    tags.insert("node", name);
    node.set_tags(tags).await.expect("tags");
    node
}

/// Waits until `agent` lists `name` with `status`; returns the member.
async fn wait_serf(agent: &SerfAgent, name: &str, status: &str) -> SerfMember {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let members = agent.members().unwrap_or_else(|e| panic!("{e}"));
        if let Some(m) = members.iter().find(|m| m.name == name && m.status == status) {
            return m.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "{} lists {members:?}, not {name} {status}", agent.name());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `node` holds `name` in a state `ok` accepts.
async fn wait_swim(node: &Node, name: &str, ok: impl Fn(Option<MemberState>) -> bool) {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let state = node.member(name).await.ok().flatten().map(|m| m.state);
        if ok(state) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{} holds {name} as {state:?}", node.name());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The user events `events` delivers within `within`.
async fn user_events(events: &lapswim_node::Events, within: Duration) -> Vec<(String, Vec<u8>)> {
    let deadline = tokio::time::Instant::now() + within;
    let mut got = Vec::new();
    while tokio::time::Instant::now() < deadline {
        if let Ok(Some(NodeEvent::Protocol { event: Event::User { name, payload, .. }, .. })) =
            tokio::time::timeout(Duration::from_millis(100), events.next()).await
        {
            got.push((name, payload));
        }
    }
    got
}

/// The user events that arrive until one matching `wanted` has (within
/// [`LIMIT`]), and for two seconds after: long enough on a loaded machine
/// for the first, and for a duplicate to show.
async fn user_events_until(
    events: &lapswim_node::Events,
    wanted: impl Fn(&(String, Vec<u8>)) -> bool,
) -> Vec<(String, Vec<u8>)> {
    let mut deadline = tokio::time::Instant::now() + LIMIT;
    let mut settling = false;
    let mut got = Vec::new();
    while tokio::time::Instant::now() < deadline {
        if let Ok(Some(NodeEvent::Protocol { event: Event::User { name, payload, .. }, .. })) =
            tokio::time::timeout(Duration::from_millis(100), events.next()).await
        {
            got.push((name, payload));
        }
        if !settling && got.iter().any(&wanted) {
            settling = true;
            deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serf_agents_and_swim_nodes_form_one_cluster_with_tags_events_and_leaves() {
    let Some(binary) = SerfAgent::for_test() else { return };
    let serf1 = SerfAgent::spawn(&binary, "serf1", &[("role", "web")], None, None).unwrap_or_else(|e| panic!("{e}"));
    let mut serf2 = SerfAgent::spawn(&binary, "serf2", &[("role", "db")], Some(serf1.addr()), None)
        .unwrap_or_else(|e| panic!("{e}"));
    let sw1 = start_swim("sw1").await;
    let sw2 = start_swim("sw2").await;
    let (events1, events2) = (sw1.events(), sw2.events());
    sw1.join(&[serf1.addr()]).await.expect("sw1 joins serf1");
    sw2.join(&[sw1.addr()]).await.expect("sw2 joins sw1");

    // Each side lists the other alive, with its tags.
    for agent in [&serf1, &serf2] {
        for name in ["sw1", "sw2"] {
            let m = wait_serf(agent, name, "alive").await;
            let want: BTreeMap<String, String> =
                [("role", "swim"), ("node", name)].iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
            assert_eq!(m.tags, want, "{name}'s tags at {}", agent.name());
        }
    }
    for node in [&sw1, &sw2] {
        for (name, role) in [("serf1", "web"), ("serf2", "db")] {
            wait_swim(node, name, |s| s == Some(MemberState::Alive)).await;
            let m = node.member(name).await.expect("member").expect("listed");
            assert_eq!(m.tags.get("role"), Some(role), "{name}'s tags at {}", node.name());
        }
    }

    // Coordinates cross in the acks: `serf rtt` estimates the round trip
    // to a swim node, and the swim node holds the agents' coordinates.
    for agent in [&serf1, &serf2] {
        for name in ["sw1", "sw2"] {
            let deadline = tokio::time::Instant::now() + LIMIT;
            let line = loop {
                match agent.command(&["rtt", name]) {
                    Ok(out) if out.contains("Estimated") => break out,
                    other => assert!(
                        tokio::time::Instant::now() < deadline,
                        "serf rtt {name} at {}: {other:?}",
                        agent.name()
                    ),
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            let want = format!("Estimated {name} <-> {} rtt:", agent.name());
            assert!(line.starts_with(&want), "{line}");
            eprintln!("{}", line.trim());
        }
    }
    for node in [&sw1, &sw2] {
        for name in ["serf1", "serf2"] {
            let deadline = tokio::time::Instant::now() + LIMIT;
            while node.member(name).await.ok().flatten().and_then(|m| m.coordinate).is_none() {
                assert!(tokio::time::Instant::now() < deadline, "{} holds no coordinate for {name}", node.name());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    // A serf event reaches both swim nodes, once each.
    serf2.event("deploy", "v1").unwrap_or_else(|e| panic!("{e}"));
    for (node, events) in [(&sw1, &events1), (&sw2, &events2)] {
        let got = user_events_until(events, |(n, p)| n == "deploy" && p == b"v1").await;
        let deploys = got.iter().filter(|(n, p)| n == "deploy" && p == b"v1").count();
        assert_eq!(deploys, 1, "{}: {got:?}", node.name());
    }

    // A swim node's event reaches both agents' handlers, once each.
    sw2.event("restart", b"now".to_vec(), false).await.expect("event");
    for agent in [&serf1, &serf2] {
        let deadline = tokio::time::Instant::now() + LIMIT;
        while !agent.events().iter().any(|l| l == "restart now") {
            assert!(tokio::time::Instant::now() < deadline, "{}'s handler saw {:?}", agent.name(), agent.events());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for agent in [&serf1, &serf2] {
        let seen = agent.events().iter().filter(|l| *l == "restart now").count();
        assert_eq!(seen, 1, "{}'s handler: {:?}", agent.name(), agent.events());
    }
    // ...and the origin delivered it to itself once (the echoes through
    // the agents not again), as did the other swim node.
    for (node, events) in [(&sw1, &events1), (&sw2, &events2)] {
        let got = user_events(events, Duration::from_secs(1)).await;
        let restarts = got.iter().filter(|(n, p)| n == "restart" && p == b"now").count();
        assert_eq!(restarts, 1, "{}: {got:?}", node.name());
    }

    // A swim node joining now learns the cluster's past events from
    // serf's push-pull state and skips them: none is delivered.
    let sw3 = start_swim("sw3").await;
    let events3 = sw3.events();
    sw3.join(&[serf1.addr()]).await.expect("sw3 joins serf1");
    let got = user_events(&events3, Duration::from_secs(2)).await;
    assert!(got.is_empty(), "sw3 delivered the past: {got:?}");
    // Its own event reaches both agents' handlers.
    sw3.event("hello", b"sw3".to_vec(), false).await.expect("event");
    for agent in [&serf1, &serf2] {
        let deadline = tokio::time::Instant::now() + LIMIT;
        while !agent.events().iter().any(|l| l == "hello sw3") {
            assert!(tokio::time::Instant::now() < deadline, "{}'s handler saw {:?}", agent.name(), agent.events());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    sw3.shutdown().await;

    // A swim node's leave is a leave at the agents.
    sw2.leave().await.expect("sw2 leaves");
    for agent in [&serf1, &serf2] {
        wait_serf(agent, "sw2", "left").await;
    }

    // A killed agent is failed at the swim node.
    serf2.kill().unwrap_or_else(|e| panic!("{e}"));
    let killed = tokio::time::Instant::now();
    wait_swim(&sw1, "serf2", |s| matches!(s, Some(MemberState::Dead) | None)).await;
    eprintln!("serf2 killed: failed at sw1 after {} ms", killed.elapsed().as_millis());
    let failed = wait_serf(&serf1, "serf2", "failed").await;
    assert_eq!(failed.name, "serf2");
    sw1.shutdown().await;
    sw2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serf_queries_are_answered_by_swim_nodes_and_swim_queries_by_serf_agents() {
    let Some(binary) = SerfAgent::for_test() else { return };
    let serf1 = SerfAgent::spawn(&binary, "serf1", &[("role", "web")], None, None).unwrap_or_else(|e| panic!("{e}"));
    let serf2 = SerfAgent::spawn(&binary, "serf2", &[("role", "db")], Some(serf1.addr()), None)
        .unwrap_or_else(|e| panic!("{e}"));
    let sw1 = start_swim("sw1").await;
    let sw2 = start_swim("sw2").await;
    sw1.join(&[serf1.addr()]).await.expect("sw1 joins serf1");
    sw2.join(&[serf2.addr()]).await.expect("sw2 joins serf2");
    for agent in [&serf1, &serf2] {
        for name in ["sw1", "sw2"] {
            wait_serf(agent, name, "alive").await;
        }
    }
    for node in [&sw1, &sw2] {
        for name in ["serf1", "serf2", "sw1", "sw2"] {
            wait_swim(node, name, |s| s == Some(MemberState::Alive)).await;
        }
    }

    // Each swim node answers every query it is asked; its other events
    // are passed on (a node's events go to one reader each).
    let mut others = Vec::new();
    for node in [&sw1, &sw2] {
        let (node, events) = (node.clone(), node.events());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        others.push(rx);
        tokio::spawn(async move {
            while let Some(ev) = events.next().await {
                match ev {
                    NodeEvent::Protocol { event: Event::Query { id, name, .. }, .. } => {
                        let answer = format!("{name} from {}", node.name());
                        let _ = node.respond(id, answer.into_bytes()).await;
                    }
                    other => {
                        let _ = tx.send(other);
                    }
                }
            }
        });
    }
    let mut events = others.pop().expect("sw2's events");

    // `serf query`: answered by both agents and both swim nodes; with
    // filters, by the members they select only.
    let serf1 = std::sync::Arc::new(serf1);
    let ask = |flags: &'static [&'static str]| {
        let serf1 = serf1.clone();
        async move {
            tokio::task::spawn_blocking(move || serf1.query(flags, "uptime", "?"))
                .await
                .expect("the query runs")
                .unwrap_or_else(|e| panic!("{e}"))
        }
    };
    let answered = |answers: &BTreeMap<String, String>| {
        for (name, answer) in answers {
            assert_eq!(answer, &format!("uptime from {name}"), "{answers:?}");
        }
        answers.keys().cloned().collect::<Vec<_>>()
    };
    // Asked until the members `want` answered, at most four times: with
    // serf's `local` profile every member passes a query on to two others
    // only, so in a cluster of four a member now and then hears it from
    // nobody before its deadline. A member answering that should not is
    // a failure at once.
    let expect = async |flags: &'static [&'static str], want: &[&str]| {
        for attempt in 1..=4 {
            let got = answered(&ask(flags).await);
            assert!(got.iter().all(|n| want.contains(&n.as_str())), "{flags:?}: {got:?}, not only {want:?}");
            if got.len() == want.len() {
                return;
            }
            eprintln!("serf query {flags:?}, attempt {attempt}: {got:?} of {want:?}");
        }
        panic!("serf query {flags:?}: not every one of {want:?} answered");
    };
    expect(&[], &["serf1", "serf2", "sw1", "sw2"]).await;
    expect(&["-node=sw1", "-node=serf2"], &["serf2", "sw1"]).await;
    expect(&["-tag=role=sw.m"], &["sw1", "sw2"]).await;
    expect(&["-tag=role=swim", "-tag=node=2$"], &["sw2"]).await;
    // Each member that answers also sends its answer through two others,
    // chosen at random: asked a few times, the swim nodes pass some on.
    let mut relayed = 0;
    for _ in 0..5 {
        expect(&["-relay-factor=2"], &["serf1", "serf2", "sw1", "sw2"]).await;
        for node in [&sw1, &sw2] {
            relayed += node.stats().await.expect("stats").protocol.responses_relayed;
        }
        if relayed > 0 {
            break;
        }
    }
    assert!(relayed > 0, "no swim node relayed an answer");

    // A swim node's query: answered by both agents' handlers and both swim
    // nodes (its origin too); with a filter, by those it selects.
    let mut whoami = async |filter: QueryFilter, relays: u8| {
        let options = QueryOptions::default().with_filter(filter).with_relay_factor(relays);
        let id = sw2.query("whoami", b"?".to_vec(), options).await.expect("the query goes out");
        let mut got = BTreeMap::new();
        let deadline = tokio::time::Instant::now() + LIMIT;
        while tokio::time::Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_millis(200), events.recv()).await {
                Ok(Some(NodeEvent::Protocol { event: Event::QueryResponse { id: i, from, payload }, .. }))
                    if i == id =>
                {
                    let (from, payload) = (from.as_str().to_owned(), String::from_utf8_lossy(&payload));
                    assert_eq!(payload, format!("whoami from {from}"));
                    *got.entry(from).or_insert(0) += 1;
                }
                Ok(Some(NodeEvent::Protocol { event: Event::QueryDone { id: i }, .. })) if i == id => break,
                _ => {}
            }
        }
        assert!(got.values().all(|&n| n == 1), "each answer reported once: {got:?}");
        got.into_keys().collect::<Vec<_>>()
    };
    // Asked until the members `want` answered, as above.
    for (filter, relays, want) in [
        (QueryFilter::all(), 0, &["serf1", "serf2", "sw1", "sw2"][..]),
        (QueryFilter::all(), 2, &["serf1", "serf2", "sw1", "sw2"][..]),
        (QueryFilter::all().tag("role", "^db$"), 0, &["serf2"][..]),
        (
            QueryFilter::all().node(MemberName::new("serf1").unwrap()).node(MemberName::new("sw1").unwrap()),
            0,
            &["serf1", "sw1"][..],
        ),
    ] {
        let mut done = false;
        for attempt in 1..=4 {
            let got = whoami(filter.clone(), relays).await;
            assert!(got.iter().all(|n| want.contains(&n.as_str())), "{filter:?}: {got:?}, not only {want:?}");
            if got.len() == want.len() {
                done = true;
                break;
            }
            eprintln!("swim query {filter:?}, attempt {attempt}: {got:?} of {want:?}");
        }
        assert!(done, "swim query {filter:?}: not every one of {want:?} answered");
    }
    sw1.shutdown().await;
    sw2.shutdown().await;
}
