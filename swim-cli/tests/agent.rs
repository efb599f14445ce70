//! `swim agent` as a process: three agents on loopback, one SIGKILLed
//! (the others print it failed), one SIGTERMed (it leaves; the last prints
//! it left), and the one-line errors.

use core::time::Duration;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};

use lapswim_node::Clock;

use serde_json::Value;

struct Agent {
    child: Child,
    lines: Receiver<Value>,
    seen: Vec<Value>,
    /// Everything the agent wrote to stderr so far (its log).
    log: Arc<Mutex<String>>,
}

impl Agent {
    fn start(name: &str, join: Option<&str>) -> Agent {
        Self::start_with(name, join, &[])
    }

    fn start_with(name: &str, join: Option<&str>, extra: &[&str]) -> Agent {
        Self::start_env(name, join, extra, &[])
    }

    fn start_env(name: &str, join: Option<&str>, extra: &[&str], env: &[(&str, &str)]) -> Agent {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_swim"));
        cmd.args([
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
        ]);
        cmd.args(extra);
        if extra.contains(&"--broadcast") {
            cmd.stdin(Stdio::piped());
        }
        cmd.args(["--meta", "role=test"]);
        if let Some(seed) = join {
            cmd.args(["--join", seed]);
        }
        cmd.env_remove("RUST_LOG").envs(env.iter().copied());
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("agent starts");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("piped");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("{line}");
                let mut log = sink.lock().expect("log lock");
                log.push_str(&line);
                log.push('\n');
            }
        });
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Agent { child, lines, seen: Vec::new(), log }
    }

    /// Waits for a line with `event` about `member` (or any line with
    /// `event` when `member` is empty); returns it.
    fn wait_for(&mut self, event: &str, member: &str, timeout: Duration) -> Value {
        let matches = |v: &Value| v["event"] == event && (member.is_empty() || v["member"] == member);
        self.wait_for_line(&format!("{event} {member}"), timeout, matches)
    }

    /// Waits for a line that `matches` (described as `what` should none
    /// come within `timeout`); returns it.
    fn wait_for_line(&mut self, what: &str, timeout: Duration, matches: impl Fn(&Value) -> bool) -> Value {
        let found = self.try_wait_for_line(timeout, matches);
        found.unwrap_or_else(|| panic!("no {what} within {timeout:?}; saw {:?}", self.seen))
    }

    /// A line that `matches`, if one comes within `timeout`.
    fn try_wait_for_line(&mut self, timeout: Duration, matches: impl Fn(&Value) -> bool) -> Option<Value> {
        if let Some(v) = self.seen.iter().find(|v| matches(v)) {
            return Some(v.clone());
        }
        let deadline = Clock::read() + timeout;
        while let Some(left) = deadline.checked_duration_since(Clock::read()) {
            let Ok(v) = self.lines.recv_timeout(left) else { break };
            self.seen.push(v.clone());
            if matches(&v) {
                return Some(v);
            }
        }
        None
    }

    /// Whether the last line about `member`'s liveness says it is suspected.
    fn suspects(&self, member: &str) -> bool {
        let liveness =
            |v: &&Value| v["member"] == member && ["suspected", "alive", "failed"].iter().any(|e| v["event"] == *e);
        self.seen.iter().rev().find(liveness).is_some_and(|v| v["event"] == "suspected")
    }

    /// Takes the lines printed so far into `seen`.
    fn drain(&mut self) {
        while let Ok(v) = self.lines.try_recv() {
            self.seen.push(v);
        }
    }

    /// How many log lines contain `text`.
    fn log_count(&self, text: &str) -> usize {
        self.log.lock().expect("log lock").lines().filter(|l| l.contains(text)).count()
    }

    /// Waits until the agent has read its keyring file `n` more times
    /// (it logs each read at trace level); fails after `timeout`.
    fn wait_for_polls(&self, n: usize, timeout: Duration) {
        const POLLED: &str = "keyring file polled";
        let wanted = self.log_count(POLLED) + n;
        let deadline = Clock::read() + timeout;
        while self.log_count(POLLED) < wanted {
            let log = self.log.lock().expect("log lock").clone();
            assert!(Clock::read() < deadline, "not {n} reads of the keyring file within {timeout:?}; log:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the agent's log has a line containing `text`; returns
    /// that line.
    fn wait_for_log(&self, text: &str, timeout: Duration) -> String {
        let deadline = Clock::read() + timeout;
        loop {
            if let Some(line) = self.log.lock().expect("log lock").lines().find(|l| l.contains(text)) {
                return line.to_owned();
            }
            let log = self.log.lock().expect("log lock").clone();
            assert!(Clock::read() < deadline, "no log line with {text:?} within {timeout:?}; log:\n{log}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill").args([sig, &self.child.id().to_string()]).status().expect("kill runs").success();
        assert!(ok, "kill {sig} failed");
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn agents_see_a_kill_as_failed_and_a_sigterm_as_left() {
    let limit = Duration::from_secs(30);
    let mut a = Agent::start("a", None);
    let started = a.wait_for("started", "", limit);
    let seed = started["addr"].as_str().expect("address").to_owned();
    let mut b = Agent::start("b", Some(&seed));
    let mut c = Agent::start("c", Some(&seed));
    for (agent, others) in [(&mut a, ["b", "c"]), (&mut b, ["a", "c"]), (&mut c, ["a", "b"])] {
        for other in others {
            agent.wait_for("joined", other, limit);
        }
    }

    c.child.kill().expect("SIGKILL");
    c.child.wait().expect("reaped");
    let failed = a.wait_for("failed", "c", limit);
    assert_eq!(failed["node"], "a");
    b.wait_for("failed", "c", limit);

    b.signal("-TERM");
    let status = b.child.wait().expect("b exits");
    assert!(status.success(), "b exits 0 after SIGTERM: {status}");
    b.wait_for("stopped", "", limit);
    a.wait_for("left", "b", limit);
    assert!(!a.seen.iter().any(|v| v["event"] == "failed" && v["member"] == "b"), "a left member is never failed");

    a.signal("-INT");
    let status = a.child.wait().expect("a exits");
    assert!(status.success(), "a exits 0 after Ctrl-C: {status}");
}

#[test]
fn an_agent_broadcasts_its_stdin_lines_and_sends_direct_messages() {
    use std::io::Write;
    let limit = Duration::from_secs(30);
    let mut a = Agent::start("a", None);
    let seed = a.wait_for("started", "", limit)["addr"].as_str().expect("address").to_owned();
    let mut b = Agent::start_with("b", Some(&seed), &["--broadcast"]);
    b.wait_for("joined", "a", limit);
    a.wait_for("joined", "b", limit);
    let mut stdin = b.child.stdin.take().expect("piped");
    writeln!(stdin, "hello cluster").expect("write");
    writeln!(stdin, "@a just for you").expect("write");
    stdin.flush().expect("flush");
    let got = a.wait_for("broadcast", "b", limit);
    assert_eq!(got["payload"], "hello cluster");
    b.wait_for("broadcast", "b", limit);
    let got = a.wait_for("message", "b", limit);
    assert_eq!((got["payload"].as_str(), got["reliable"].as_bool()), (Some("just for you"), Some(true)));
    // Over the limit: refused, saying by how much.
    writeln!(stdin, "{}", "x".repeat(2000)).expect("write");
    stdin.flush().expect("flush");
    let refused = b.wait_for("refused", "", limit);
    let error = refused["error"].as_str().unwrap_or_default();
    assert!(error.contains("2000") && error.contains("508"), "{refused}");
    drop(stdin);
}

/// Waits for `child` to end by itself, failing the test after `limit`.
fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Clock::read() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(Clock::read() < deadline, "still running {limit:?} after the signal");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// With `--broadcast` the agent reads stdin; an open stdin must not keep it
/// alive after SIGTERM or Ctrl-C.
#[test]
fn a_signal_stops_an_agent_whose_stdin_stays_open() {
    let limit = Duration::from_secs(30);
    for sig in ["-TERM", "-INT"] {
        let mut a = Agent::start_with("a", None, &["--broadcast"]);
        a.wait_for("started", "", limit);
        let stdin = a.child.stdin.take().expect("piped");
        a.signal(sig);
        let status = wait_exit(&mut a.child, limit);
        assert!(status.success(), "exit after {sig}: {status}");
        a.wait_for("stopped", "", limit);
        drop(stdin);
    }
}

fn swim(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_swim")).args(args).output().expect("runs");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_bad_flag_shows_usage_and_a_taken_address_is_a_one_line_error() {
    let (code, err) = swim(&["agent", "--bind", "127.0.0.1:0", "--api", "127.0.0.1:0", "--name", "x", "--frobnicate"]);
    assert_eq!(code, 2);
    assert!(err.contains("--frobnicate") && err.contains("Usage:"), "{err}");

    let (code, err) = swim(&["agent", "--bind", "not-an-address", "--name", "x"]);
    assert_eq!(code, 2);
    assert!(err.contains("not-an-address") && err.contains("--bind"), "{err}");

    let taken = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let (code, err) = swim(&["agent", "--bind", &addr, "--no-api", "--name", "x"]);
    assert_ne!(code, 0);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cannot bind"), "{err}");
}

#[test]
fn the_demo_runs_to_completion() {
    let out = Command::new(env!("CARGO_BIN_EXE_swim")).args(["demo", "--nodes", "4"]).output().expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("node-3 failed at all 3 survivors"), "{text}");
    assert!(text.contains("node-2 left, seen as left"), "{text}");
}

/// A keyring file for one agent, in a fresh directory.
struct KeyringFile(std::path::PathBuf);

impl KeyringFile {
    fn new(name: &str, keys: &[&str]) -> KeyringFile {
        let dir = std::env::temp_dir().join(format!("swim-agent-test-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let f = KeyringFile(dir.join("keyring"));
        f.write(keys);
        f
    }

    fn write(&self, keys: &[&str]) {
        self.write_text(&(keys.join("\n") + "\n"), 0o600);
    }

    /// Replaces the file with one holding `text`, with permissions `mode`.
    fn write_text(&self, text: &str, mode: u32) {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        // Written whole then renamed, so the agent never reads half a file.
        let tmp = self.0.with_extension("tmp");
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp).expect("create");
        // Exactly `mode`, whatever the umask.
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode)).expect("chmod");
        f.write_all(text.as_bytes()).expect("write keyring");
        std::fs::rename(&tmp, &self.0).expect("rename keyring");
    }

    /// Replaces the file with a FIFO.
    fn make_fifo(&self) {
        let tmp = self.0.with_extension("fifo");
        assert!(Command::new("mkfifo").arg(&tmp).status().expect("mkfifo runs").success());
        std::fs::rename(&tmp, &self.0).expect("rename FIFO");
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("UTF-8 path")
    }
}

impl Drop for KeyringFile {
    fn drop(&mut self) {
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn keygen() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_swim")).arg("keygen").output().expect("runs");
    assert!(out.status.success());
    String::from_utf8(out.stdout).expect("UTF-8").trim().to_owned()
}

/// Five agents sealed with one key: agents without it, or with another,
/// cannot join; the keyring files are then edited by hand in the three
/// documented steps and no member is lost.
#[test]
fn a_keyed_cluster_keeps_keyless_agents_out_and_rotates_by_hand() {
    let limit = Duration::from_secs(30);
    let (old, new) = (keygen(), keygen());
    let (old, new) = (old.as_str(), new.as_str());
    assert_ne!(old, new);
    let names = ["a", "b", "c", "d", "e"];
    let files: Vec<_> = names.iter().map(|n| KeyringFile::new(n, &[old])).collect();
    // Each reads broadcasts to send from stdin: they show the cluster at
    // work after each step of the rotation.
    let mut agents = vec![Agent::start_with("a", None, &["--keyring", files[0].path(), "--broadcast"])];
    let seed = agents[0].wait_for("started", "", limit)["addr"].as_str().expect("address").to_owned();
    for (i, name) in names.iter().enumerate().skip(1) {
        agents.push(Agent::start_with(name, Some(&seed), &["--keyring", files[i].path(), "--broadcast"]));
    }
    for (i, agent) in agents.iter_mut().enumerate() {
        for (j, other) in names.iter().enumerate() {
            if i != j {
                agent.wait_for("joined", other, limit);
            }
        }
    }

    // Without the key, with another one, or with the key under another
    // cluster label, a join gets nowhere.
    for extra in [&[][..], &["--key", new][..], &["--key", old, "--label", "elsewhere"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_swim"))
            .args([
                "agent",
                "--bind",
                "127.0.0.1:0",
                "--api",
                "127.0.0.1:0",
                "--name",
                "intruder",
                "--config",
                "local",
                "--json",
            ])
            .args(["--join", &seed])
            .args(extra)
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "an agent joined without the key: {err}");
        assert!(err.contains("join failed"), "{err}");
    }

    // Rotation by hand: add the new key, make it the primary, drop the old.
    for (k, step) in [&[old, new][..], &[new, old][..], &[new][..]].into_iter().enumerate() {
        for f in &files {
            f.write(step);
        }
        for agent in &mut agents {
            let fingerprints = agent.seen.iter().filter(|v| v["event"] == "keyring").count();
            let deadline = Clock::read() + limit;
            while agent.seen.iter().filter(|v| v["event"] == "keyring").count() == fingerprints {
                let left = deadline.checked_duration_since(Clock::read()).expect("keyring reloaded in time");
                let v = agent.lines.recv_timeout(left).expect("a line");
                agent.seen.push(v);
            }
        }
        // The cluster works on the new keyring: every agent broadcasts, and
        // every agent hears every broadcast.
        all_broadcast(&mut agents, &names, &format!("step {k}"), limit);
    }
    // A failure comes at the end of a suspicion: once every suspicion an
    // agent printed has ended (alive again, or failed), none is under way.
    for agent in &mut agents {
        agent.drain();
        let deadline = Clock::read() + limit;
        while let Some(name) = names.iter().find(|name| agent.suspects(name)) {
            let left = deadline.checked_duration_since(Clock::read());
            let v = left.and_then(|left| agent.lines.recv_timeout(left).ok());
            let v = v.unwrap_or_else(|| panic!("the suspicion of {name} not over within {limit:?}: {:?}", agent.seen));
            agent.seen.push(v);
        }
        let failed: Vec<_> = agent.seen.iter().filter(|v| v["event"] == "failed").collect();
        assert!(failed.is_empty(), "members were lost during the rotation: {failed:?}");
        let last = agent.seen.iter().rev().find(|v| v["event"] == "keyring").expect("a keyring line");
        assert_eq!(last["keys"].as_array().map(Vec::len), Some(1), "{last}");
    }
    // The old key no longer gets in; the new one does.
    let out = Command::new(env!("CARGO_BIN_EXE_swim"))
        .args([
            "agent",
            "--bind",
            "127.0.0.1:0",
            "--api",
            "127.0.0.1:0",
            "--name",
            "stale",
            "--config",
            "local",
            "--json",
        ])
        .args(["--join", &seed, "--key", old])
        .output()
        .expect("runs");
    assert!(!out.status.success(), "an agent with the retired key joined");
    let mut f = Agent::start_with("f", Some(&seed), &["--key", new]);
    f.wait_for("joined", "a", limit);
    agents[0].wait_for("joined", "f", limit);
}

/// Every agent (started with `--broadcast`, named in `names`) broadcasts
/// `text from NAME` in turn; returns once every agent has printed every
/// one of them. Gossip is best effort: a broadcast one agent has not
/// heard within a few seconds is sent again (`text from NAME, again`),
/// until `limit`.
fn all_broadcast(agents: &mut [Agent], names: &[&str], text: &str, limit: Duration) {
    use std::io::Write;
    let say = |agent: &mut Agent, line: &str| {
        let stdin = agent.child.stdin.as_mut().expect("started with --broadcast");
        writeln!(stdin, "{line}").expect("write");
        stdin.flush().expect("flush");
    };
    // One at a time, so that each broadcast is gossiped alone.
    let deadline = Clock::read() + limit;
    for (j, name) in names.iter().enumerate() {
        let payload = format!("{text} from {name}");
        say(&mut agents[j], &payload);
        for i in 0..agents.len() {
            let heard =
                |v: &Value| v["event"] == "broadcast" && v["payload"].as_str().is_some_and(|p| p.starts_with(&payload));
            while agents[i].try_wait_for_line(Duration::from_secs(2), heard).is_none() {
                let seen = &agents[i].seen;
                assert!(Clock::read() < deadline, "{} never heard {payload:?} within {limit:?}: {seen:?}", names[i]);
                say(&mut agents[j], &format!("{payload}, again"));
            }
        }
    }
}

/// `swim agent --record FILE`: the trace of an agent's life (a join, a
/// peer's leave, its own leave) replays identically with `swim replay`.
#[test]
fn an_agents_recorded_trace_replays_identically() {
    let limit = Duration::from_secs(30);
    let dir = std::env::temp_dir().join(format!("swim-agent-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let trace = dir.join("a.trace");
    let mut a = Agent::start_with("a", None, &["--record", trace.to_str().expect("UTF-8")]);
    let seed = a.wait_for("started", "", limit)["addr"].as_str().expect("address").to_owned();
    let mut b = Agent::start("b", Some(&seed));
    a.wait_for("joined", "b", limit);
    b.wait_for("joined", "a", limit);
    b.signal("-TERM");
    assert!(b.child.wait().expect("b exits").success());
    a.wait_for("left", "b", limit);
    a.signal("-TERM");
    assert!(a.child.wait().expect("a exits").success());
    let out = Command::new(env!("CARGO_BIN_EXE_swim")).args(["replay", trace.to_str().expect("UTF-8")]).output();
    let out = out.expect("runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("every digest identical"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A sealed agent's trace holds no key: it is created 0600, no stretch of
/// the key is in it, and `swim replay` needs the key (`--key` or
/// `--keyring`), naming its fingerprint when it is missing.
#[test]
fn a_sealed_agents_trace_holds_no_key_and_replays_with_it() {
    use base64::Engine;
    let limit = Duration::from_secs(30);
    let key = keygen();
    let bytes = base64::engine::general_purpose::STANDARD.decode(&key).expect("base64");
    let fingerprint = format!("{:08x}", lapswim_core::Key::from_slice(&bytes).expect("32 bytes").fingerprint());
    let dir = std::env::temp_dir().join(format!("swim-agent-sealed-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let trace = dir.join("a.trace");
    let path = trace.to_str().expect("UTF-8");
    let mut a = Agent::start_with("a", None, &["--record", path, "--key", &key]);
    let seed = a.wait_for("started", "", limit)["addr"].as_str().expect("address").to_owned();
    let mut b = Agent::start_with("b", Some(&seed), &["--key", &key]);
    a.wait_for("joined", "b", limit);
    b.signal("-TERM");
    assert!(b.child.wait().expect("b exits").success());
    a.wait_for("left", "b", limit);
    a.signal("-TERM");
    assert!(a.child.wait().expect("a exits").success());

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&trace).expect("trace").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
    }
    let recorded = std::fs::read(&trace).expect("trace");
    for w in bytes.windows(8) {
        assert!(!recorded.windows(8).any(|r| r == w), "a stretch of the key is in the trace");
    }
    let replay = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_swim")).arg("replay").arg(path).args(extra).output().expect("runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    let (ok, text) = replay(&[]);
    assert!(!ok, "replayed without the key: {text}");
    assert!(text.contains(&fingerprint) && text.contains("--key"), "{text}");
    let (ok, text) = replay(&["--key", &key]);
    assert!(ok && text.contains("every digest identical"), "{text}");
    let file = KeyringFile::new("replay", &[&keygen(), &key]);
    let (ok, text) = replay(&["--keyring", file.path()]);
    assert!(ok && text.contains("every digest identical"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Logs go to stderr; in a file or a pipe they carry no terminal colour
/// codes.
#[test]
fn logs_written_to_a_pipe_have_no_colour_codes() {
    let limit = Duration::from_secs(30);
    let mut a = Agent::start_env("a", None, &[], &[("RUST_LOG", "info")]);
    a.wait_for("started", "", limit);
    a.wait_for_log("node started", limit);
    a.signal("-TERM");
    assert!(wait_exit(&mut a.child, limit).success());
    a.wait_for("stopped", "", limit);
    let log = a.log.lock().expect("log lock").clone();
    assert!(!log.contains('\u{1b}'), "colour codes in a piped log: {log:?}");
}

/// A keyring file that stops parsing is reported once per change of its
/// content, not at every poll, and its repair is reported too.
#[test]
fn a_broken_keyring_is_reported_once_per_change_and_its_repair_too() {
    let limit = Duration::from_secs(30);
    let key = keygen();
    let file = KeyringFile::new("broken", &[&key]);
    // Each read of the keyring file is logged at trace level.
    let mut a = Agent::start_env("a", None, &["--keyring", file.path()], &[("RUST_LOG", "warn,swim::agent=trace")]);
    a.wait_for("started", "", limit);
    let errors = |a: &Agent| a.seen.iter().filter(|v| v["event"] == "keyring_error").count();

    file.write(&["not base64!"]);
    a.wait_for("keyring_error", "", limit);
    // Several polls of the same broken content.
    a.wait_for_polls(4, limit);
    a.drain();
    assert_eq!(errors(&a), 1, "one report per broken content: {:?}", a.seen);

    // Broken differently: reported again, once.
    file.write(&["still not base64!"]);
    let deadline = Clock::read() + limit;
    while errors(&a) < 2 {
        let left = deadline.checked_duration_since(Clock::read()).expect("second error reported in time");
        let v = a.lines.recv_timeout(left).expect("a line");
        a.seen.push(v);
    }

    // Repaired with the same key: said so, though the keyring is unchanged.
    file.write(&[&key]);
    let repaired = a.wait_for("keyring", "", limit);
    assert_eq!(repaired["recovered"], true, "{repaired}");
    assert_eq!(repaired["keys"].as_array().map(Vec::len), Some(1), "{repaired}");
    // Several polls of the repaired file.
    a.wait_for_polls(4, limit);
    a.drain();
    assert_eq!(errors(&a), 2, "{:?}", a.seen);
    assert_eq!(a.seen.iter().filter(|v| v["event"] == "keyring").count(), 1, "{:?}", a.seen);
}

/// A join nobody answers fails with what to check; with `--json` the
/// failure is a JSON line on stdout too.
#[test]
fn a_failed_join_says_what_to_check_and_is_a_json_line() {
    // A UDP port with no member behind it (and no TCP listener).
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let seed = silent.local_addr().expect("addr").to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_swim"))
        .args([
            "agent",
            "--bind",
            "127.0.0.1:0",
            "--api",
            "127.0.0.1:0",
            "--name",
            "lonely",
            "--config",
            "local",
            "--json",
        ])
        .args(["--join", &seed])
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    for hint in ["join failed", &seed, "--key", "--label"] {
        assert!(err.contains(hint), "no {hint:?} in {err}");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Value> =
        stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    let error = lines.iter().find(|v| v["event"] == "error").unwrap_or_else(|| panic!("no error line: {stdout}"));
    assert_eq!(error["kind"], "join_failed", "{error}");
    assert_eq!(error["node"], "lonely", "{error}");
    assert!(error["time"].is_string(), "{error}");
    assert!(error["message"].as_str().is_some_and(|m| m.contains("--key")), "{error}");
}

/// A member that drops packets for a key or label mismatch says so in its
/// log at the default level.
#[test]
fn a_member_logs_packets_it_rejects_for_key_or_label() {
    let limit = Duration::from_secs(30);
    let (key, other) = (keygen(), keygen());
    let mut a = Agent::start_with("a", None, &["--key", &key]);
    let seed = a.wait_for("started", "", limit)["addr"].as_str().expect("address").to_owned();
    let tries: [(&[&str], &str); 3] = [
        (&["--key", &other], "wrong key"),
        (&[], "unsealed"),
        (&["--key", &key, "--label", "elsewhere"], "cluster label"),
    ];
    for (extra, said) in tries {
        let out = Command::new(env!("CARGO_BIN_EXE_swim"))
            .args(["agent", "--bind", "127.0.0.1:0", "--api", "127.0.0.1:0", "--name", "intruder", "--config", "local"])
            .args(["--join", &seed])
            .args(extra)
            .env_remove("RUST_LOG")
            .output()
            .expect("runs");
        assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let line = a.wait_for_log(said, limit);
        assert!(line.contains("WARN") && line.contains("127.0.0.1"), "{line}");
    }
}

impl Agent {
    /// Waits for the next line with `event` not seen yet; returns it.
    fn wait_for_new(&mut self, event: &str, limit: Duration) -> Value {
        let before = self.seen.iter().filter(|v| v["event"] == event).count();
        let deadline = Clock::read() + limit;
        while let Some(left) = deadline.checked_duration_since(Clock::read()) {
            let Ok(v) = self.lines.recv_timeout(left) else { break };
            self.seen.push(v);
            if self.seen.iter().filter(|v| v["event"] == event).count() > before {
                return self.seen.last().expect("just pushed").clone();
            }
        }
        panic!("no new {event} within {limit:?}; saw {:?}", self.seen);
    }

    /// The peak of the agent's resident memory so far, in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("proc status");
        let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).expect("VmHWM");
        line.trim().trim_end_matches("kB").trim().parse().expect("a number")
    }
}

/// Test key `i` (32 bytes of `i`), base64.
fn test_key(i: u8) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode([i; 32])
}

/// Checks that a `keyring` line lists exactly `keys`, the first as the
/// primary (the others in any order).
fn assert_keyring(line: &Value, keys: &[&str]) {
    use base64::Engine;
    let print = |k: &&str| {
        let bytes = base64::engine::general_purpose::STANDARD.decode(k).expect("base64");
        format!("{:08x}", lapswim_node::Key::from_slice(&bytes).expect("32 bytes").fingerprint())
    };
    let wanted: Vec<String> = keys.iter().map(print).collect();
    let listed: Vec<String> =
        line["keys"].as_array().expect("keys").iter().map(|v| v.as_str().expect("a fingerprint").to_owned()).collect();
    assert_eq!(listed.first(), wanted.first(), "primary: {line}");
    let (mut listed_all, mut wanted_all) = (listed.clone(), wanted.clone());
    listed_all.sort();
    wanted_all.sort();
    assert_eq!(listed_all, wanted_all, "keys: {line}");
}

/// Whether an agent sealing with `key` joins through `seed`.
fn joins_with_key(seed: &str, key: &str) -> bool {
    Command::new(env!("CARGO_BIN_EXE_swim"))
        .args([
            "agent",
            "--bind",
            "127.0.0.1:0",
            "--api",
            "127.0.0.1:0",
            "--name",
            "probe",
            "--config",
            "local",
            "--json",
        ])
        .args(["--join", seed, "--key", key])
        .output()
        .expect("runs")
        .status
        .success()
}

/// A file of nine keys (one more than a keyring holds) is refused whole:
/// none of its keys is installed, so the next valid file leaves exactly
/// its own keys, and a key of the refused file opens nothing. Reverting
/// leaves exactly the reverted file's keys.
#[test]
fn a_keyring_file_is_applied_whole_or_not_at_all() {
    let limit = Duration::from_secs(30);
    let keys: Vec<String> = (1..=10).map(test_key).collect();
    let k: Vec<&str> = keys.iter().map(String::as_str).collect();
    let file = KeyringFile::new("whole", &[k[0]]);
    let mut a = Agent::start_with("a", None, &["--keyring", file.path()]);
    let seed = a.wait_for("started", "", limit)["addr"].as_str().expect("address").to_owned();

    file.write(&k[..9]);
    let refused = a.wait_for_new("keyring_error", limit);
    assert!(refused["error"].as_str().is_some_and(|e| e.contains("9 keys, more than the 8")), "{refused}");

    file.write(&[k[0], k[9]]);
    assert_keyring(&a.wait_for_new("keyring", limit), &[k[0], k[9]]);
    assert!(!joins_with_key(&seed, k[1]), "a key of the refused file opens packets");

    file.write(&[k[0]]);
    assert_keyring(&a.wait_for_new("keyring", limit), &[k[0]]);
    assert!(!joins_with_key(&seed, k[9]), "a key no longer listed opens packets");
    assert!(!a.seen.iter().any(|v| v["event"] == "keyring_error" && v != &refused), "{:?}", a.seen);
}

/// A FIFO at the keyring path is refused at start (the agent exits with a
/// one-line reason rather than waiting for a writer) and at a reload (the
/// agent reports it, keeps running and still stops on SIGTERM).
#[test]
fn a_keyring_path_that_is_not_a_regular_file_is_refused_without_blocking() {
    let limit = Duration::from_secs(30);
    let key = test_key(1);
    let file = KeyringFile::new("fifo", &[&key]);
    file.make_fifo();
    let mut a = Agent::start_with("a", None, &["--keyring", file.path()]);
    let status = wait_exit(&mut a.child, limit);
    assert!(!status.success(), "{status}");
    let error = a.wait_for("error", "", limit);
    assert_eq!(error["kind"], "keyring", "{error}");
    assert!(error["message"].as_str().is_some_and(|m| m.contains("is a FIFO, not a regular file")), "{error}");

    file.write(&[&key]);
    let mut b = Agent::start_with("b", None, &["--keyring", file.path()]);
    b.wait_for("started", "", limit);
    file.make_fifo();
    let refused = b.wait_for_new("keyring_error", limit);
    assert!(refused["error"].as_str().is_some_and(|e| e.contains("is a FIFO")), "{refused}");
    // Still polling: a regular file again is applied, a FIFO again refused.
    file.write(&[&key]);
    assert_eq!(b.wait_for_new("keyring", limit)["recovered"], true);
    file.make_fifo();
    b.wait_for_new("keyring_error", limit);
    b.signal("-TERM");
    assert!(wait_exit(&mut b.child, limit).success());
    b.wait_for("stopped", "", limit);
}

/// A keyring file larger than 64 KiB is refused whole, at start and at a
/// reload, however valid its keys.
#[test]
fn a_keyring_file_over_64_kib_is_refused() {
    let limit = Duration::from_secs(30);
    let (k1, k2) = (test_key(1), test_key(2));
    let padding = format!("# {}\n", "x".repeat(70 * 1024));
    let file = KeyringFile::new("large", &[&k1]);
    file.write_text(&format!("{k1}\n{padding}"), 0o600);
    let mut a = Agent::start_with("a", None, &["--keyring", file.path()]);
    assert!(!wait_exit(&mut a.child, limit).success());
    let error = a.wait_for("error", "", limit);
    assert!(error["message"].as_str().is_some_and(|m| m.contains("larger than 64 KiB")), "{error}");

    file.write(&[&k1]);
    let mut b = Agent::start_with("b", None, &["--keyring", file.path()]);
    b.wait_for("started", "", limit);
    file.write_text(&format!("{k1}\n{k2}\n{padding}"), 0o600);
    let refused = b.wait_for_new("keyring_error", limit);
    assert!(refused["error"].as_str().is_some_and(|e| e.contains("larger than 64 KiB")), "{refused}");
    file.write(&[&k1, &k2]);
    assert_keyring(&b.wait_for_new("keyring", limit), &[&k1, &k2]);
}

/// A keyring file that others than its owner may read is used, with a
/// warning for each change that leaves it so.
#[test]
fn a_keyring_file_others_may_read_is_used_with_a_warning() {
    let limit = Duration::from_secs(30);
    let (k1, k2, k3) = (test_key(1), test_key(2), test_key(3));
    let file = KeyringFile::new("exposed", &[&k1]);
    file.write_text(&format!("{k1}\n"), 0o644);
    let mut a = Agent::start_with("a", None, &["--keyring", file.path()]);
    let warning = a.wait_for("keyring_warning", "", limit);
    assert_eq!(warning["mode"], "0644", "{warning}");
    assert!(warning["warning"].as_str().is_some_and(|w| w.contains("chmod 600")), "{warning}");
    a.wait_for("started", "", limit);

    file.write(&[&k1, &k2]);
    assert_keyring(&a.wait_for_new("keyring", limit), &[&k1, &k2]);
    file.write_text(&format!("{k1}\n{k3}\n"), 0o640);
    assert_eq!(a.wait_for_new("keyring_warning", limit)["mode"], "0640");
    assert_keyring(&a.wait_for_new("keyring", limit), &[&k1, &k3]);
    let warnings = a.seen.iter().filter(|v| v["event"] == "keyring_warning").count();
    assert_eq!(warnings, 2, "one warning per exposed change: {:?}", a.seen);
}

/// Two agents, `b` broadcasting its stdin.
fn broadcasting_pair(limit: Duration) -> (Agent, Agent) {
    let mut a = Agent::start("a", None);
    let seed = a.wait_for("started", "", limit)["addr"].as_str().expect("address").to_owned();
    let mut b = Agent::start_with("b", Some(&seed), &["--broadcast"]);
    b.wait_for("joined", "a", limit);
    a.wait_for("joined", "b", limit);
    (a, b)
}

/// A stdin line of 10 MB is reported and skipped without being held in
/// memory; the next line is broadcast.
#[test]
fn a_stdin_line_too_long_is_skipped_without_growing_memory() {
    use std::io::Write;
    let limit = Duration::from_secs(30);
    let (mut a, mut b) = broadcasting_pair(limit);
    let peak = b.peak_rss_kib();
    let mut stdin = b.child.stdin.take().expect("piped");
    let chunk = vec![b'x'; 1024 * 1024];
    for _ in 0..10 {
        stdin.write_all(&chunk).expect("write");
    }
    stdin.write_all(b"\nafter\n").expect("write");
    stdin.flush().expect("flush");
    let refused = b.wait_for("refused", "", limit);
    assert!(refused["error"].as_str().is_some_and(|e| e.contains("longer than 65536 bytes")), "{refused}");
    assert_eq!(a.wait_for("broadcast", "b", limit)["payload"], "after");
    let grown = b.peak_rss_kib().saturating_sub(peak);
    assert!(grown < 4 * 1024, "the agent grew by {grown} KiB for a line it skips");
    assert!(b.child.try_wait().expect("try_wait").is_none(), "the agent stopped");
    drop(stdin);
}

/// A stdin line that is not UTF-8 is reported and skipped; the next line
/// is broadcast.
#[test]
fn a_stdin_line_not_utf8_is_skipped_and_the_next_broadcast() {
    use std::io::Write;
    let limit = Duration::from_secs(30);
    let (mut a, mut b) = broadcasting_pair(limit);
    let mut stdin = b.child.stdin.take().expect("piped");
    stdin.write_all(b"caf\xe9\nafter\n").expect("write");
    stdin.flush().expect("flush");
    let refused = b.wait_for("refused", "", limit);
    assert!(refused["error"].as_str().is_some_and(|e| e.contains("not UTF-8")), "{refused}");
    assert_eq!(a.wait_for("broadcast", "b", limit)["payload"], "after");
    drop(stdin);
}
