//! `swim agent --dialect serf` beside real `serf agent`s (serf 0.9.4, built
//! from Debian's packages), on loopback: two serf agents and two swim
//! agents, each swim agent joining a different serf agent. `serf members`
//! lists the swim agents alive with their tags; `serf event` runs the swim
//! agents' event handlers once each; a swim agent stopped with SIGTERM
//! (it leaves) is `left` at the serf agents, one killed with SIGKILL is
//! `failed`. `serf query` is answered by the swim agents' handlers and
//! `swim query` by the serf agents'. In a cluster sealed with a shared
//! key, `serf rtt` estimates the round trip to each swim agent, and `serf
//! keys -install/-use/-remove` rotates the key on both kinds: `serf keys
//! -list` finds only the new key, on all four, and events still cross.
//!
//! Needs `go` and Debian's `golang-github-hashicorp-serf-dev` (which
//! `.ci/run` installs): without them the test is skipped, or fails when
//! `CI` is set.

use core::net::SocketAddr;
use core::sync::atomic::{AtomicUsize, Ordering};
use core::time::Duration;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::channel;

use lapswim_node::Clock;
use serde_json::Value;

#[path = "../../swim-testkit/src/go.rs"]
#[allow(dead_code, unreachable_pub, reason = "a library module of swim-testkit, included here whole")]
mod go;
#[path = "../../swim-testkit/src/serf_agent.rs"]
#[allow(dead_code, unreachable_pub, reason = "a library module of swim-testkit, included here whole")]
mod serf_agent;

use serf_agent::SerfAgent;

const LIMIT: Duration = Duration::from_secs(30);

/// A `swim agent --dialect serf` process, killed when dropped.
struct SwimAgent {
    child: Child,
    events: PathBuf,
    /// Its control API's address.
    api: String,
}

impl SwimAgent {
    /// Starts `name` joining `join` (with the base64 key `key`, if given),
    /// its user events appended to a file by its event handler, its
    /// queries answered by a handler with `<query name> from <name>`;
    /// returns once it printed that it started.
    fn start(name: &str, join: SocketAddr, key: Option<&str>) -> SwimAgent {
        // The tests of this file run at once in one process and name their
        // agents alike: a count keeps each agent's file its own, so that one
        // test's agents starting or dropped never remove another's.
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let nth = STARTED.fetch_add(1, Ordering::Relaxed);
        let events = std::env::temp_dir().join(format!("swim-agent-{name}-{}-{nth}.events", std::process::id()));
        let _ = std::fs::remove_file(&events);
        let handler = format!("user=printf '%s %s\\n' \"$SERF_USER_EVENT\" \"$(cat)\" >> {}", events.display());
        let answer = "query=cat >/dev/null; printf '%s from %s' \"$SERF_QUERY_NAME\" \"$SERF_SELF_NAME\"";
        // With SWIM_SERF_LOG set, its log too (filtered by RUST_LOG).
        let echo = std::env::var_os("SWIM_SERF_LOG").is_some();
        let mut command = Command::new(env!("CARGO_BIN_EXE_swim"));
        if !echo {
            command.env_remove("RUST_LOG");
        }
        let mut child = command
            .args([
                "agent",
                "--bind",
                "127.0.0.1:0",
                "--api",
                "127.0.0.1:0",
                "--name",
                name,
                "--config",
                "local",
                "--json",
            ])
            .args(["--dialect", "serf", "--tag", "role=swim", "--tag", &format!("node={name}")])
            .args(["--join", &join.to_string(), "--event-handler", &handler, "--event-handler", answer])
            .args(key.map(|k| ["--key", k]).into_iter().flatten())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(if echo { Stdio::inherit() } else { Stdio::null() })
            .spawn()
            .expect("swim agent starts");
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Clock::read() + LIMIT;
        let api = loop {
            let left = deadline.checked_duration_since(Clock::read()).expect("the agent starts within the limit");
            let line = lines.recv_timeout(left).expect("the agent prints that it started");
            let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if v["event"] == "started" {
                break v["api"].as_str().expect("the API's address").to_owned();
            }
        };
        // The rest of its output is drained: echoed with SWIM_SERF_LOG set
        // (as the serf agents' logs are), dropped otherwise.
        let who = name.to_owned();
        std::thread::spawn(move || {
            while let Ok(line) = lines.recv() {
                if echo {
                    eprintln!("{who}: {line}");
                }
            }
        });
        SwimAgent { child, events, api }
    }

    /// The user events its handler ran for, as `name payload` lines.
    fn events(&self) -> Vec<String> {
        std::fs::read_to_string(&self.events).unwrap_or_default().lines().map(str::to_owned).collect()
    }

    /// Waits until its handler ran for the event `line` (`name payload`).
    fn wait_event(&self, line: &str) {
        let deadline = Clock::read() + LIMIT;
        while !self.events().iter().any(|l| l == line) {
            assert!(Clock::read() < deadline, "the handler saw {:?}, not {line}", self.events());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `swim query --json NAME` through its API: the answers, by member.
    fn query(&self, name: &str) -> std::collections::BTreeMap<String, String> {
        let out = Command::new(env!("CARGO_BIN_EXE_swim"))
            .args(["query", "--api", &self.api, "--json", "--timeout", "3s", name, "?"])
            .output()
            .expect("swim query runs");
        assert!(out.status.success(), "swim query: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["type"] == "response")
            .map(|v| (v["from"].as_str().unwrap_or("?").to_owned(), v["payload"].as_str().unwrap_or("").to_owned()))
            .collect()
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill").args([sig, &self.child.id().to_string()]).status().expect("kill runs").success();
        assert!(ok, "kill {sig} failed");
    }
}

impl Drop for SwimAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.events);
    }
}

/// Waits until `agent` lists `name` as `status`; returns its tags.
fn wait_serf(agent: &SerfAgent, name: &str, status: &str) -> std::collections::BTreeMap<String, String> {
    let deadline = Clock::read() + LIMIT;
    loop {
        let members = agent.members().unwrap_or_else(|e| panic!("{e}"));
        if let Some(m) = members.iter().find(|m| m.name == name && m.status == status) {
            return m.tags.clone();
        }
        assert!(Clock::read() < deadline, "{} lists {members:?}, not {name} {status}", agent.name());
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn swim_agents_speaking_serf_join_serf_agents_run_their_events_and_leave() {
    let Some(binary) = SerfAgent::for_test() else { return };
    let serf1 = SerfAgent::spawn(&binary, "serf1", &[("role", "web")], None, None).unwrap_or_else(|e| panic!("{e}"));
    let serf2 = SerfAgent::spawn(&binary, "serf2", &[("role", "db")], Some(serf1.addr()), None)
        .unwrap_or_else(|e| panic!("{e}"));
    let a1 = SwimAgent::start("swim1", serf1.addr(), None);
    let a2 = SwimAgent::start("swim2", serf2.addr(), None);

    for agent in [&serf1, &serf2] {
        for name in ["swim1", "swim2"] {
            let tags = wait_serf(agent, name, "alive");
            assert_eq!(tags.get("role").map(String::as_str), Some("swim"), "{name} at {}", agent.name());
            assert_eq!(tags.get("node").map(String::as_str), Some(name), "{name} at {}", agent.name());
        }
    }

    // A serf event runs each swim agent's handler once.
    serf1.event("deploy", "v1").unwrap_or_else(|e| panic!("{e}"));
    for agent in [&a1, &a2] {
        agent.wait_event("deploy v1");
    }
    std::thread::sleep(Duration::from_secs(2));
    for agent in [&a1, &a2] {
        assert_eq!(agent.events(), ["deploy v1"], "each handler runs once");
    }

    // `serf query` is answered by the swim agents' handlers (and the serf
    // agents'), `swim query` by the serf agents' handlers (and the swim
    // agents'). Asked until all four answered, at most four times, as in
    // the key steps below.
    let all = ["serf1", "serf2", "swim1", "swim2"];
    for attempt in 1..=4 {
        let got = serf1.query(&[], "uptime", "?").unwrap_or_else(|e| panic!("{e}"));
        for (from, answer) in &got {
            assert_eq!(answer, &format!("uptime from {from}"), "{got:?}");
        }
        if got.keys().eq(all.iter()) {
            break;
        }
        assert!(attempt < 4, "serf query: {got:?}");
    }
    for attempt in 1..=4 {
        let got = a1.query("whoami");
        for (from, answer) in &got {
            assert_eq!(answer, &format!("whoami from {from}"), "{got:?}");
        }
        if got.keys().eq(all.iter()) {
            break;
        }
        assert!(attempt < 4, "swim query: {got:?}");
    }

    // SIGTERM: the swim agent leaves, and is left at the serf agents.
    a2.signal("-TERM");
    for agent in [&serf1, &serf2] {
        wait_serf(agent, "swim2", "left");
    }
    // SIGKILL: failed.
    a1.signal("-KILL");
    for agent in [&serf1, &serf2] {
        wait_serf(agent, "swim1", "failed");
    }
}

/// Runs `serf keys <args>` at `agent` until every member answered that it
/// did (at most five times); its output, or a panic with the last one.
///
/// Each step is idempotent, and an operator runs it again the same way:
/// with serf's `local` profile every member passes a query on to two
/// others only, so in a cluster of four one member now and then hears it
/// from nobody before serf's 1.6 s deadline, whichever kind it is.
fn serf_keys(agent: &SerfAgent, args: &[&str]) -> String {
    let mut all = vec!["keys"];
    all.extend_from_slice(args);
    let mut last = String::new();
    for attempt in 1..=5 {
        match agent.command(&all) {
            Ok(out) => return out,
            Err(e) => {
                // A failure (not silence) is not retried: it is the answer.
                assert!(e.contains("nodes reported success"), "{e}");
                eprintln!("serf {args:?}, attempt {attempt}: {}", e.trim());
                last = e;
            }
        }
    }
    panic!("{last}")
}

#[test]
fn serf_rtt_and_serf_keys_reach_swim_agents_in_a_sealed_cluster() {
    let Some(binary) = SerfAgent::for_test() else { return };
    // Two AES-256 keys, as `serf keygen` makes them.
    let (old, new) = ("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=");
    let serf1 = SerfAgent::spawn(&binary, "serf1", &[], None, Some(old)).unwrap_or_else(|e| panic!("{e}"));
    let serf2 =
        SerfAgent::spawn(&binary, "serf2", &[], Some(serf1.addr()), Some(old)).unwrap_or_else(|e| panic!("{e}"));
    let a1 = SwimAgent::start("swim1", serf1.addr(), Some(old));
    let a2 = SwimAgent::start("swim2", serf2.addr(), Some(old));
    for agent in [&serf1, &serf2] {
        for name in ["swim1", "swim2"] {
            wait_serf(agent, name, "alive");
        }
    }

    // serf's coordinates for the swim agents come from their acks.
    for name in ["swim1", "swim2"] {
        let deadline = Clock::read() + LIMIT;
        let line = loop {
            match serf2.command(&["rtt", name]) {
                Ok(out) if out.contains("Estimated") => break out,
                other => assert!(Clock::read() < deadline, "serf rtt {name}: {other:?}"),
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        assert!(line.starts_with(&format!("Estimated {name} <-> serf2 rtt: ")), "{line}");
        eprintln!("{}", line.trim());
    }

    // A rotation, every step answered by all four (serf fails the command
    // on any failure or silence).
    assert!(serf_keys(&serf1, &["-install", new]).contains("Successfully installed key"));
    assert!(serf_keys(&serf1, &["-use", new]).contains("Successfully changed primary key"));
    assert!(serf_keys(&serf2, &["-remove", old]).contains("Successfully removed key"));
    let listed = serf_keys(&serf2, &["-list"]);
    let keys: Vec<&str> = listed.lines().filter(|l| l.contains("[")).collect();
    assert_eq!(keys.len(), 1, "{listed}");
    assert!(keys[0].starts_with(new) && keys[0].trim_end().ends_with("[4/4]"), "{listed}");

    // The cluster still talks, under the new key alone.
    serf1.event("rotated", "yes").unwrap_or_else(|e| panic!("{e}"));
    for agent in [&a1, &a2] {
        agent.wait_event("rotated yes");
    }
    for agent in [&serf1, &serf2] {
        for name in ["swim1", "swim2"] {
            wait_serf(agent, name, "alive");
        }
    }
}
