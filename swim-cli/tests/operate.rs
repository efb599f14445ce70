//! Operating a cluster of real agents through the `swim` command only, as
//! an operator would: members, events run by handler scripts, queries
//! answered by them, tags, a key rotation, force-leave, a restart from a
//! snapshot without `--join`, and `/metrics`; then bad input of every
//! kind, each refused with one clear line while the agent keeps serving.

use core::time::Duration;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};

use lapswim_node::Clock;
use serde_json::Value;

const SWIM: &str = env!("CARGO_BIN_EXE_swim");

/// A scratch directory for one test, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("swim-operate-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn script(&self, name: &str, text: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.to_str().unwrap().to_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An agent process, its JSON lines, and its addresses.
struct Agent {
    name: String,
    child: Child,
    lines: Receiver<Value>,
    seen: Vec<Value>,
    addr: String,
    api: String,
}

impl Agent {
    fn start(name: &str, extra: &[&str], env: &[(&str, &str)]) -> Agent {
        let mut cmd = Command::new(SWIM);
        cmd.args(["agent", "--bind", "127.0.0.1:0", "--api", "127.0.0.1:0", "--name", name, "--config", "local"]);
        cmd.args(["--json", "--coalesce-period", "0s"]).args(extra);
        cmd.env_remove("RUST_LOG").env_remove("SWIM_API").env_remove("SWIM_API_TOKEN").envs(env.iter().copied());
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("agent starts");
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
        let mut agent =
            Agent { name: name.into(), child, lines, seen: Vec::new(), addr: String::new(), api: String::new() };
        let started = agent.wait_for(|v| v["event"] == "started" || v["event"] == "error", 20);
        assert_eq!(started["event"], "started", "{name} did not start: {started}");
        agent.addr = started["addr"].as_str().unwrap().to_owned();
        agent.api = started["api"].as_str().unwrap().to_owned();
        agent
    }

    /// Waits up to `secs` for a line that `matches`.
    fn wait_for(&mut self, matches: impl Fn(&Value) -> bool, secs: u64) -> Value {
        if let Some(v) = self.seen.iter().find(|v| matches(v)) {
            return v.clone();
        }
        let deadline = Clock::read() + Duration::from_secs(secs);
        while let Some(left) = deadline.checked_duration_since(Clock::read()) {
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if matches(&v) {
                        return v;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("{}: no such line within {secs} s; saw {:?}", self.name, self.seen);
    }

    /// Runs `swim ARGS --api <this agent's API>`: (exit code, stdout, stderr).
    fn swim(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let out = Command::new(SWIM)
            .args(args)
            .args(["--api", &self.api])
            .env_remove("SWIM_API")
            .env_remove("SWIM_API_TOKEN")
            .output()
            .expect("swim runs");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
    }

    /// `swim ARGS` that must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.swim(args);
        assert_eq!(code, Some(0), "swim {args:?} failed: {err}{out}");
        out
    }

    /// `swim members --json`: name -> (status, tags).
    fn members(&self) -> Vec<(String, String, Value)> {
        let out = self.ok(&["members", "--json"]);
        let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("members --json: {e}: {out}"));
        v.as_array()
            .expect("an array")
            .iter()
            .map(|m| {
                assert!(m["addr"].is_string(), "{m}");
                (m["name"].as_str().unwrap().to_owned(), m["status"].as_str().unwrap().to_owned(), m["tags"].clone())
            })
            .collect()
    }

    fn status_of(&self, name: &str) -> Option<String> {
        self.members().into_iter().find(|(n, _, _)| n == name).map(|(_, s, _)| s)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` every 200 ms for up to `secs`.
fn eventually(what: &str, secs: u64, mut check: impl FnMut() -> bool) {
    let deadline = Clock::read() + Duration::from_secs(secs);
    while Clock::read() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("not within {secs} s: {what}");
}

/// One plain HTTP/1.1 request: (status line, body).
fn http(addr: &str, request: &[u8]) -> (String, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("connects");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(request);
    let mut text = Vec::new();
    let _ = s.read_to_end(&mut text);
    let text = String::from_utf8_lossy(&text).into_owned();
    let status = text.lines().next().unwrap_or("").to_owned();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_owned).collect()
}

fn keygen() -> String {
    let out = Command::new(SWIM).arg("keygen").output().expect("keygen");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A handler written the way serf's documentation writes one: the event
/// in SERF_EVENT, our name in SERF_SELF_NAME, members or the payload on
/// stdin, a query's answer on stdout.
const SERF_HANDLER: &str = r#"#!/bin/sh
case "$SERF_EVENT" in
  user)
    read payload
    echo "$SERF_SELF_NAME user $SERF_USER_EVENT $payload" >> "$HANDLER_LOG" ;;
  query)
    cat > /dev/null
    echo "load of $SERF_SELF_NAME" ;;
  *)
    while read line; do
      echo "$SERF_SELF_NAME $SERF_EVENT $line" >> "$HANDLER_LOG"
    done ;;
esac
"#;

#[test]
fn a_cluster_is_operated_through_the_cli_alone() {
    let dir = Scratch::new("cli");
    let handler = dir.script("handler.sh", SERF_HANDLER);
    let key1 = keygen();
    let key2 = keygen();
    let log = |n: &str| dir.path(&format!("{n}.log"));
    let snap = dir.path("c.snapshot");
    let start = |name: &str, join: Option<&str>, key: &str, extra: &[&str]| {
        let log = log(name);
        let mut args = vec!["--event-handler", &handler, "--key", key, "--tag", "role=test"];
        args.extend_from_slice(extra);
        if let Some(j) = join {
            args.extend(["--join", j]);
        }
        Agent::start(name, &args, &[("HANDLER_LOG", log.to_str().unwrap())])
    };
    let a = start("a", None, &key1, &[]);
    let b = start("b", Some(&a.addr), &key1, &[]);
    let c = start("c", Some(&a.addr), &key1, &["--snapshot", snap.to_str().unwrap()]);
    let mut d = start("d", Some(&a.addr), &key1, &[]);
    eventually("four alive members", 20, || a.members().iter().filter(|(_, s, _)| s == "alive").count() == 4);
    let members = a.members();
    assert!(members.iter().all(|(_, _, tags)| tags["role"] == "test"), "{members:?}");

    // Member events reach the handlers as serf writes them: name, IP,
    // role, tags.
    eventually("a's handler saw b join", 20, || {
        lines_of(&log("a")).iter().any(|l| l == "a member-join b\t127.0.0.1\ttest\trole=test")
    });

    // An event runs the handler on every agent exactly once.
    a.ok(&["event", "deploy", "v1"]);
    let ran = |n: &str| lines_of(&log(n)).iter().filter(|l| l.contains("user deploy v1")).count();
    eventually("every handler ran the event", 20, || ["a", "b", "c", "d"].iter().all(|n| ran(n) >= 1));
    std::thread::sleep(Duration::from_secs(2));
    for n in ["a", "b", "c", "d"] {
        assert_eq!(ran(n), 1, "{n}'s handler ran the event once: {:?}", lines_of(&log(n)));
        assert!(lines_of(&log(n)).contains(&format!("{n} user deploy v1")), "SERF_SELF_NAME");
    }

    // A query is answered by every agent's handler.
    let out = b.ok(&["query", "load", "--json", "--timeout", "5s"]);
    let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let mut answers: Vec<&str> =
        lines.iter().filter(|v| v["type"] == "response").map(|v| v["payload"].as_str().unwrap().trim()).collect();
    answers.sort_unstable();
    assert_eq!(answers, ["load of a", "load of b", "load of c", "load of d"], "{out}");
    assert_eq!(lines.last().unwrap()["type"], "done", "{out}");

    // Tags set on one agent are seen by another.
    b.ok(&["tags", "--set", "zone=eu", "--delete", "role"]);
    eventually("b's new tags at a", 20, || {
        a.members().iter().any(|(n, _, t)| n == "b" && t["zone"] == "eu" && t.get("role").is_none())
    });
    let filtered = a.ok(&["members", "--tag", "zone=e.", "--json"]);
    assert_eq!(serde_json::from_str::<Value>(&filtered).unwrap().as_array().unwrap().len(), 1, "{filtered}");

    // A key rotation, with every member's result, losing no member.
    for op in [["--install", &key2], ["--use", &key2], ["--remove", &key1]] {
        let out = a.ok(&["keys", op[0], op[1]]);
        assert!(out.contains("4 members done, 0 failed, silent: none"), "keys {}: {out}", op[0]);
    }
    let listed = c.ok(&["keys", "--list"]);
    assert!(listed.contains("held by 4 members") && listed.matches("  key ").count() == 1, "{listed}");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(a.members().iter().filter(|(_, s, _)| s == "alive").count(), 4, "no member lost to the rotation");

    // force-leave: a crashed member becomes left.
    let (code, _, err) = a.swim(&["force-leave", "d"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("not failed") && err.lines().count() == 1, "{err}");
    d.kill();
    eventually("d failed at a", 30, || a.status_of("d").as_deref() == Some("failed"));
    a.ok(&["force-leave", "d"]);
    eventually("d left at b", 20, || b.status_of("d").as_deref() == Some("left"));

    // A restart from the snapshot rejoins without --join, and the old
    // event is not run again.
    let mut c = c;
    std::thread::sleep(Duration::from_secs(2));
    c.kill();
    let c = start("c", None, &key2, &["--snapshot", snap.to_str().unwrap()]);
    let mut c = c;
    c.wait_for(|v| v["event"] == "rejoined", 20);
    eventually("c back among a and b", 20, || {
        let m = c.members();
        ["a", "b"].iter().all(|n| m.iter().any(|(name, s, _)| name == n && s == "alive"))
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(ran("c"), 1, "the restart did not replay the event: {:?}", lines_of(&log("c")));

    // /metrics, scraped and parsed.
    let (status, body) = http(&a.api, b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    assert!(status.contains("200"), "{status}");
    let mut alive = None;
    for line in body.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        if line.chars().all(|c| c.is_ascii_hexdigit()) {
            continue; // chunked transfer framing
        }
        let (name, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number: {line}"));
        if name == "swim_members{state=\"alive\"}" {
            alive = Some(value);
        }
    }
    assert_eq!(alive, Some(3.0), "{body}");
    assert!(body.contains("swim_probes_sent_total") && body.contains("swim_handler_runs_total"), "{body}");
}

#[test]
fn bad_input_gets_one_clear_line_and_the_agent_keeps_serving() {
    let dir = Scratch::new("bad");
    let hang = dir.script("hang.sh", "#!/bin/sh\nsleep 100\n");
    let loud = dir.script("loud.sh", "#!/bin/sh\nhead -c 5000000 /dev/zero\n");
    let good = dir.script("good.sh", "#!/bin/sh\ncat >> \"$HANDLER_LOG\"\necho >> \"$HANDLER_LOG\"\n");
    let log = dir.path("good.log");
    let missing = dir.path("missing.sh");
    let snap = dir.path("a.snapshot");
    std::fs::write(&snap, b"{\"version\": 1, \"name\": \"a\", \"memb").unwrap();
    let handlers =
        [format!("user={hang}"), format!("user={loud}"), format!("user={}", missing.display()), format!("user={good}")];
    let mut args = vec!["--handler-timeout", "500ms", "--snapshot", snap.to_str().unwrap(), "--api-token", "s3cret"];
    for h in &handlers {
        args.extend(["--event-handler", h]);
    }
    let mut a = Agent::start("a", &args, &[("HANDLER_LOG", log.to_str().unwrap())]);
    // The torn snapshot is reported; the agent started all the same.
    let e = a.wait_for(|v| v["event"] == "snapshot_error", 5);
    assert!(e["error"].as_str().unwrap().contains("not a snapshot"), "{e}");

    // A wrong or missing token.
    let (code, _, err) = a.swim(&["members", "--api-token", "wrong"]);
    assert_ne!(code, Some(0));
    assert!(err.contains("wrong or missing API token") && err.lines().count() == 1, "{err}");
    let (code, _, err) = a.swim(&["members"]);
    assert_ne!(code, Some(0), "{err}");

    // A body far over the limit.
    let huge = "x".repeat(1 << 20);
    let request = format!(
        "POST /v1/event HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer s3cret\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        huge.len() + 20,
        format_args!("{{\"name\":\"x\",\"payload\":\"{huge}\"}}")
    );
    let (status, body) = http(&a.api, request.as_bytes());
    assert!(status.contains("413"), "{status} {body}");
    assert!(body.contains("larger than 65536 bytes"), "{body}");

    // A query streamed as server-sent events.
    let ask = "{\"name\":\"q\",\"timeout_ms\":500}";
    let request = format!(
        "POST /v1/query HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\nAuthorization: Bearer s3cret\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{ask}",
        ask.len()
    );
    let (status, body) = http(&a.api, request.as_bytes());
    assert!(status.contains("200"), "{status}");
    assert!(body.contains("data: {") && body.contains("\"type\":\"done\""), "{body}");

    // What another site's page could make a browser send is refused.
    let event = "{\"name\":\"x\"}";
    for (headers, code) in [
        ("Host: 127.0.0.1\r\nContent-Type: text/plain\r\n", "415"),
        ("Host: 127.0.0.1\r\nContent-Type: application/json\r\nOrigin: http://evil.example\r\n", "403"),
        ("Host: evil.example\r\nContent-Type: application/json\r\n", "403"),
    ] {
        let request = format!(
            "POST /v1/event HTTP/1.1\r\n{headers}Authorization: Bearer s3cret\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{event}",
            event.len()
        );
        let (status, body) = http(&a.api, request.as_bytes());
        assert!(status.contains(code), "{headers:?}: {status} {body}");
        assert!(body.contains("\"error\""), "{body}");
    }

    // Handlers that hang, flood and are missing: each reported, and the
    // good one still runs, every time.
    for i in 0..2 {
        let (code, out, err) = a.swim(&["event", "go", &format!("round{i}"), "--api-token", "s3cret"]);
        assert_eq!(code, Some(0), "{err}{out}");
    }
    for script in [&hang, &loud] {
        let s = script.clone();
        a.wait_for(move |v| v["event"] == "handler" && v["script"] == s.as_str(), 10);
    }
    let timed_out = a.wait_for(|v| v["event"] == "handler" && v["outcome"] == "timed out", 10);
    assert_eq!(timed_out["failed"], true);
    let flood = a.wait_for(|v| v["event"] == "handler" && v["truncated"] == true, 10);
    assert!(flood["stdout_bytes"].as_u64().unwrap() <= 64 * 1024, "{flood}");
    let m = missing.display().to_string();
    let gone = a.wait_for(move |v| v["event"] == "handler" && v["script"] == m.as_str(), 10);
    assert_eq!(gone["outcome"], "exit 127", "{gone}");
    eventually("the good handler ran for both events", 20, || {
        lines_of(&log).iter().filter(|l| l.starts_with("round")).count() == 2
    });

    // Still serving, nothing lost.
    let out = a.ok(&["info", "--json", "--api-token", "s3cret"]);
    let info: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(info["name"], "a");
    assert_eq!(info["event_time"], 2, "{info}");

    // A malformed config file: one clear line, no agent.
    let bad = dir.path("bad.toml");
    std::fs::write(&bad, "bind = \"127.0.0.1:0\"\nname = \"z\"\nretry-max = \"many\"\n").unwrap();
    let out = Command::new(SWIM).args(["agent", "--config-file", bad.to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(err.contains("bad.toml") && err.contains("retry-max"), "{err}");
    a.kill();
}

#[test]
fn a_client_without_an_agent_says_so_in_one_line() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap().to_string();
    drop(free);
    let out = Command::new(SWIM).args(["members", "--api", &addr]).env_remove("SWIM_API").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(err.contains("cannot reach the agent's API") && err.lines().count() == 1, "{err}");
    let out = Command::new(SWIM).args(["query", "q", "--tag", "role", "--api", &addr]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("K=REGEX") && err.lines().count() == 1, "{err}");
}

#[test]
fn retry_join_looks_the_name_up_again_until_a_member_answers_or_gives_up() {
    // A port nothing listens on yet: the seed comes up there later.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let seed = format!("localhost:{port}");
    let mut b = Agent::start("b", &["--retry-join", &seed, "--retry-interval", "500ms", "--log-json"], &[]);
    std::thread::sleep(Duration::from_secs(1));
    let bind = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(SWIM);
    cmd.args(["agent", "--bind", &bind, "--no-api", "--name", "a", "--config", "local"]);
    let mut a = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("seed starts");
    let joined = b.wait_for(|v| v["event"] == "retry_join", 20);
    assert_eq!(joined["seed"], bind.as_str(), "{joined}");
    eventually("a alive at b", 20, || b.status_of("a").as_deref() == Some("alive"));
    let _ = a.kill();
    let _ = a.wait();
    b.kill();

    // Nobody there: it gives up after --retry-max attempts, saying why.
    let out = Command::new(SWIM)
        .args(["agent", "--bind", "127.0.0.1:0", "--no-api", "--name", "c", "--config", "local"])
        .args(["--retry-join", &seed, "--retry-interval", "200ms", "--retry-max", "2"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(err.contains("retry-join gave up after 2 attempts"), "{err}");
}

#[test]
fn log_json_writes_the_log_as_json_lines() {
    let mut cmd = Command::new(SWIM);
    cmd.args(["agent", "--bind", "127.0.0.1:0", "--api", "127.0.0.1:0", "--name", "j", "--json", "--log-json"]);
    let mut child = cmd.env("RUST_LOG", "info").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let first = BufReader::new(stdout).lines().next().unwrap().unwrap();
    assert!(first.contains("\"started\""), "{first}");
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "info lines were logged");
    for line in lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{v}");
    }
}

#[test]
fn a_running_handler_does_not_outlive_the_agent() {
    let marker = format!("sleep 97.{}", std::process::id());
    let handler = format!("user={marker}; echo done");
    let mut a = Agent::start("h", &["--event-handler", &handler], &[]);
    a.ok(&["event", "go"]);
    // Anchored: the agent's own command line holds the marker too.
    let pattern = format!("^{marker}$");
    let running = || Command::new("pgrep").args(["-f", &pattern]).output().is_ok_and(|o| o.status.success());
    eventually("the handler's child runs", 10, running);
    let _ = Command::new("kill").args(["-TERM", &a.child.id().to_string()]).status();
    let _ = a.child.wait();
    eventually("the handler's child is gone with the agent", 10, || !running());
}

/// `GET PATH` on an agent's API: (status line, body as JSON).
fn get_json(api: &str, path: &str) -> (String, Value) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    let (status, body) = http(api, request.as_bytes());
    let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {status} {body}"));
    (status, v)
}

/// A round trip in milliseconds as the API gives it: a finite number,
/// never negative (on loopback it is about 0 at the core's 1 ms clock).
fn assert_round_trip(v: &Value) {
    let ms = v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    assert!(ms.is_finite() && ms >= 0.0, "{ms}");
}

#[test]
fn round_trips_are_estimated_from_the_members_coordinates() {
    let a = Agent::start("a", &[], &[]);
    let b = Agent::start("b", &["--join", &a.addr], &[]);
    let _c = Agent::start("c", &["--join", &a.addr], &[]);
    // Coordinates ride on probes: a holds b's and c's once it has
    // exchanged one with each.
    let has_coordinate = |m: &Value| m["coordinate"]["vec"].as_array().is_some_and(|v| v.len() == 8);
    eventually("a holds b's and c's coordinates", 30, || {
        let (_, members) = get_json(&a.api, "/v1/members");
        let members = members.as_array().expect("an array").clone();
        ["b", "c"].iter().all(|n| members.iter().any(|m| m["name"] == *n && has_coordinate(m)))
    });
    let (_, members) = get_json(&a.api, "/v1/members");
    for m in members.as_array().unwrap() {
        let c = &m["coordinate"];
        assert!(has_coordinate(m), "{m}");
        assert!(c["height"].as_f64().is_some_and(|h| h >= 0.0) && c["error"].is_number(), "{m}");
        assert!(c["adjustment"].is_number(), "{m}");
        if m["local"] == true {
            assert!(m["rtt_ms"].is_null(), "no round trip to ourselves: {m}");
        } else if !m["rtt_ms"].is_null() {
            assert_round_trip(&m["rtt_ms"]);
        }
    }
    let (_, info) = get_json(&a.api, "/v1/info");
    assert!(info["coordinate"]["vec"].is_array(), "{info}");

    // Between b and the agent itself, and between two others.
    let (status, v) = get_json(&a.api, "/v1/rtt?a=b");
    assert!(status.contains("200"), "{status} {v}");
    assert_eq!((&v["a"], &v["b"]), (&Value::from("b"), &Value::from("a")), "{v}");
    assert_round_trip(&v["rtt_ms"]);
    assert!(v["a_error"].is_number() && v["b_error"].is_number(), "{v}");
    let (status, v) = get_json(&a.api, "/v1/rtt?a=b&b=c");
    assert!(status.contains("200") && v["b"] == "c", "{status} {v}");
    assert_round_trip(&v["rtt_ms"]);

    // Refusals: an unknown member, an unknown parameter, no member asked.
    let (status, v) = get_json(&a.api, "/v1/rtt?a=nosuch");
    assert!(status.contains("404") && v["error"] == "no member nosuch", "{status} {v}");
    let (status, v) = get_json(&a.api, "/v1/rtt?a=b&c=d");
    assert!(status.contains("400") && v["error"].as_str().unwrap().contains("unknown parameter"), "{status} {v}");
    let (status, v) = get_json(&a.api, "/v1/rtt");
    assert!(status.contains("400"), "{status} {v}");

    // The command, for people and as JSON.
    let out = b.ok(&["rtt", "a"]);
    assert!(out.starts_with("Estimated a <-> b rtt: ") && out.trim_end().ends_with(" ms (using coordinates)"), "{out}");
    let out = a.ok(&["rtt", "b", "c", "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("rtt --json: {e}: {out}"));
    assert_round_trip(&v["rtt_ms"]);
    let (code, out, err) = a.swim(&["rtt", "nosuch"]);
    assert_ne!(code, Some(0), "{out}");
    assert!(err.contains("no member nosuch") && err.lines().count() == 1, "{err}");
}
