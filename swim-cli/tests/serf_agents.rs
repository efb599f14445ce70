//! `swim agent --dialect serf` beside real `serf agent`s (serf 0.9.4, built
//! from Debian's packages), on loopback: two serf agents and two swim
//! agents, each swim agent joining a different serf agent. `serf members`
//! lists the swim agents alive with their tags; `serf event` runs the swim
//! agents' event handlers once each; a swim agent stopped with SIGTERM
//! (it leaves) is `left` at the serf agents, one killed with SIGKILL is
//! `failed`.
//!
//! Needs `go` and Debian's `golang-github-hashicorp-serf-dev` (which
//! `.ci/run` installs): without them the test is skipped, or fails when
//! `CI` is set.

use core::net::SocketAddr;
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
}

impl SwimAgent {
    /// Starts `name` joining `join`, its user events appended to a file by
    /// its event handler; returns once it printed that it started.
    fn start(name: &str, join: SocketAddr) -> SwimAgent {
        let events = std::env::temp_dir().join(format!("swim-agent-{name}-{}.events", std::process::id()));
        let _ = std::fs::remove_file(&events);
        let handler = format!("user=printf '%s %s\\n' \"$SERF_USER_EVENT\" \"$(cat)\" >> {}", events.display());
        let mut child = Command::new(env!("CARGO_BIN_EXE_swim"))
            .args(["agent", "--bind", "127.0.0.1:0", "--no-api", "--name", name, "--config", "local", "--json"])
            .args(["--dialect", "serf", "--tag", "role=swim", "--tag", &format!("node={name}")])
            .args(["--join", &join.to_string(), "--event-handler", &handler])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
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
        loop {
            let left = deadline.checked_duration_since(Clock::read()).expect("the agent starts within the limit");
            let line = lines.recv_timeout(left).expect("the agent prints that it started");
            let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if v["event"] == "started" {
                break;
            }
        }
        // The rest of its output is drained and dropped.
        std::thread::spawn(move || while lines.recv().is_ok() {});
        SwimAgent { child, events }
    }

    /// The user events its handler ran for, as `name payload` lines.
    fn events(&self) -> Vec<String> {
        std::fs::read_to_string(&self.events).unwrap_or_default().lines().map(str::to_owned).collect()
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
    let a1 = SwimAgent::start("swim1", serf1.addr());
    let a2 = SwimAgent::start("swim2", serf2.addr());

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
        let deadline = Clock::read() + LIMIT;
        while !agent.events().iter().any(|l| l == "deploy v1") {
            assert!(Clock::read() < deadline, "the handler saw {:?}", agent.events());
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    for agent in [&a1, &a2] {
        assert_eq!(agent.events(), ["deploy v1"], "each handler runs once");
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
