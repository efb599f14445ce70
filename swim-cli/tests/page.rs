//! The agent's status page in a real browser: three agents on loopback,
//! headless Chromium driven through chromedriver (WebDriver: HTTP and
//! JSON). The page shows all three alive; one agent is SIGKILLed, and its
//! row turns failed on the same open page, without a reload.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian's
//! `chromium` and `chromium-driver`, which `.ci/run` installs): without
//! them the test is skipped, or fails when `CI` is set. Set
//! `SWIM_PAGE_SCREENSHOT=FILE.png` to keep a screenshot of the page.

use core::time::Duration;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};

use lapswim_node::Clock;
use serde_json::{Value, json};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// How long three agents may take to show up alive on the page.
const ALL_ALIVE: Duration = Duration::from_secs(20);
/// How long a killed agent may take to show up failed (the `local` preset
/// detects a crash in a few seconds).
const SHOWN_FAILED: Duration = Duration::from_secs(30);

#[test]
fn the_page_shows_a_killed_agent_failed_without_a_reload() {
    if !browser_installed() {
        return;
    }
    let mut a = Agent::start("a", None);
    let _b = Agent::start("b", Some(&a.addr));
    let mut c = Agent::start("c", Some(&a.addr));
    let browser = Browser::start();

    browser.navigate(&format!("http://{}/", a.api));
    // Lost on a reload: still there at the end, it proves the page updated
    // itself.
    browser.execute("window.swimPageTest = 'same page'; return null;");
    let state = browser.wait_for(
        "three rows with data-status=\"alive\"",
        ALL_ALIVE,
        |s| s["rows"].as_array().is_some_and(|rows| rows.iter().filter(|r| r[1] == "alive").count() == 3),
        &mut a,
    );
    let mut names: Vec<&str> = state["rows"].as_array().into_iter().flatten().filter_map(|r| r[0].as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["a", "b", "c"], "{state:#}");

    c.child.kill().expect("SIGKILL c");
    c.child.wait().expect("c reaped");
    let state = browser.wait_for(
        "c's row with data-status=\"failed\"",
        SHOWN_FAILED,
        |s| s["rows"].as_array().into_iter().flatten().any(|r| r[0] == "c" && r[1] == "failed"),
        &mut a,
    );
    assert_eq!(state["marker"], "same page", "the page was reloaded: {state:#}");
    assert!(state["error"].is_null(), "the page shows an error: {state:#}");
    // The feed told the page (the table could also have come from polling).
    browser.wait_for(
        "a `failed` event about c in the feed",
        Duration::from_secs(10),
        |s| s["failed_events"].as_array().is_some_and(|m| m.iter().any(|n| n == "c")),
        &mut a,
    );

    let png = base64_decode(browser.call(Get, "/screenshot").as_str().expect("a base64 screenshot"));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "the screenshot is a PNG");
    if let Some(path) = std::env::var_os("SWIM_PAGE_SCREENSHOT") {
        std::fs::write(&path, &png).unwrap_or_else(|e| panic!("writing {}: {e}", Path::new(&path).display()));
        eprintln!("screenshot written to {}", Path::new(&path).display());
    }
}

/// Whether the browser and its driver are there; without them, the test
/// fails in CI and is skipped elsewhere.
fn browser_installed() -> bool {
    let missing: Vec<&str> = [CHROMEDRIVER, CHROMIUM].into_iter().filter(|p| !Path::new(p).exists()).collect();
    if missing.is_empty() {
        return true;
    }
    let missing = missing.join(" and ");
    assert!(
        std::env::var_os("CI").is_none(),
        "{missing} missing: .ci/run should have installed them (apt-get install chromium chromium-driver)"
    );
    eprintln!("note: page test skipped: {missing} missing (apt-get install chromium chromium-driver to run it)");
    false
}

/// One `swim agent` with its API on a port of its own; killed when
/// dropped.
struct Agent {
    child: Child,
    /// Its gossip address, to join through.
    addr: String,
    /// Its API and page address.
    api: String,
    /// Its JSON lines after the first.
    lines: Receiver<Value>,
    seen: Vec<Value>,
}

impl Agent {
    fn start(name: &str, join: Option<&str>) -> Agent {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_swim"));
        cmd.args(["agent", "--bind", "127.0.0.1:0", "--name", name, "--config", "local", "--json"]);
        cmd.args(["--api", "127.0.0.1:0", "--tag", "role=page-test"]);
        if let Some(seed) = join {
            cmd.args(["--join", seed]);
        }
        cmd.env_remove("RUST_LOG").env_remove("SWIM_API_TOKEN");
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("swim agent starts");
        echo(child.stderr.take().expect("piped"), format!("agent {name}"));
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let v =
                    serde_json::from_str(&line).unwrap_or_else(|e| json!({ "unparsed": line, "error": e.to_string() }));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        // Killed by its drop should anything below fail.
        let mut agent = Agent { child, addr: String::new(), api: String::new(), lines, seen: Vec::new() };
        let started = match agent.lines.recv_timeout(Duration::from_secs(30)) {
            Ok(v) => v,
            Err(e) => panic!("agent {name}: no first line ({e}); exit status {:?}", agent.child.try_wait()),
        };
        assert_eq!(started["event"], "started", "agent {name}'s first line: {started}");
        let field = |key: &str| {
            started[key]
                .as_str()
                .unwrap_or_else(|| panic!("agent {name}'s started line has no {key:?}: {started}"))
                .to_owned()
        };
        agent.addr = field("addr");
        agent.api = field("api");
        agent
    }

    /// The agent's lines so far, for a failure's message.
    fn lines(&mut self) -> &[Value] {
        while let Ok(v) = self.lines.try_recv() {
            self.seen.push(v);
        }
        &self.seen
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Prints what `from` writes, line by line, prefixed with `who` (the test
/// harness shows it when the test fails).
fn echo(from: impl Read + Send + 'static, who: String) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            eprintln!("[{who}] {line}");
        }
    });
}

/// A WebDriver request.
enum Method {
    Get,
    Post(Value),
    Delete,
}
use Method::{Delete, Get, Post};

/// chromedriver with one headless Chromium session. Dropped, it ends the
/// session (which quits the browser), then kills chromedriver's process
/// group (anything left of the browser with it), then removes the
/// browser's profile.
struct Browser {
    driver: Child,
    /// `http://127.0.0.1:PORT`.
    base: String,
    http: ureq::Agent,
    session: Option<String>,
    profile: PathBuf,
}

impl Browser {
    fn start() -> Browser {
        let mut last = String::new();
        // The port is free when read, but another process may take it
        // before chromedriver does: a few tries.
        for _ in 0..3 {
            match Browser::try_start() {
                Ok(b) => return b,
                Err(e) => last = e,
            }
        }
        panic!("chromedriver did not start: {last}");
    }

    fn try_start() -> Result<Browser, String> {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            listener.local_addr().map_err(|e| e.to_string())?.port()
        };
        let mut driver = Command::new(CHROMEDRIVER);
        driver.arg(format!("--port={port}")).stdout(Stdio::piped()).stderr(Stdio::piped());
        // Its own process group, so that the browser it starts can be
        // killed with it even when the session could not be ended.
        driver.process_group(0);
        let mut driver = driver.spawn().map_err(|e| format!("{CHROMEDRIVER}: {e}"))?;
        echo(driver.stdout.take().expect("piped"), "chromedriver".into());
        echo(driver.stderr.take().expect("piped"), "chromedriver".into());
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(60)))
            .build();
        let profile = std::env::temp_dir().join(format!("swim-page-test-{}-{port}", std::process::id()));
        let mut browser = Browser {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            http: ureq::Agent::new_with_config(config),
            session: None,
            profile,
        };
        let deadline = Clock::read() + Duration::from_secs(20);
        loop {
            if let Ok(status) = browser.request(Get, "/status")
                && status["ready"] == true
            {
                break;
            }
            if let Ok(Some(exit)) = browser.driver.try_wait() {
                return Err(format!("chromedriver exited: {exit}"));
            }
            if Clock::read() > deadline {
                return Err("chromedriver not ready within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        std::fs::create_dir_all(&browser.profile).map_err(|e| format!("{}: {e}", browser.profile.display()))?;
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1200,800",
            &format!("--user-data-dir={}", browser.profile.display()),
        ];
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
        } } });
        let session = browser.request(Post(capabilities), "/session").map_err(|e| format!("new session: {e}"))?;
        let id = session["sessionId"].as_str().ok_or_else(|| format!("no session id in {session}"))?;
        browser.session = Some(id.to_owned());
        Ok(browser)
    }

    /// A WebDriver request at `path` (from the root); its `value`.
    fn request(&self, method: Method, path: &str) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        let (name, response) = match method {
            Get => ("GET", self.http.get(&url).call()),
            Post(body) => {
                ("POST", self.http.post(&url).header("Content-Type", "application/json").send(body.to_string()))
            }
            Delete => ("DELETE", self.http.delete(&url).call()),
        };
        let mut response = response.map_err(|e| format!("{name} {path}: {e}"))?;
        let status = response.status();
        // A screenshot is a few hundred KiB of base64.
        let text = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|e| format!("{name} {path}: reading the answer: {e}"))?;
        let mut v: Value = serde_json::from_str(&text).map_err(|e| format!("{name} {path}: {e}: {text}"))?;
        if !status.is_success() {
            return Err(format!("{name} {path}: {status}: {}", v["value"]));
        }
        Ok(v["value"].take())
    }

    /// A request in the session, at `path` under `/session/{id}`; panics
    /// on an error.
    fn call(&self, method: Method, path: &str) -> Value {
        let id = self.session.as_deref().expect("a session");
        self.request(method, &format!("/session/{id}{path}")).unwrap_or_else(|e| panic!("{e}"))
    }

    fn navigate(&self, url: &str) {
        self.call(Post(json!({ "url": url })), "/url");
    }

    /// Runs `script` (a function body) in the page; what it returns.
    fn execute(&self, script: &str) -> Value {
        self.call(Post(json!({ "script": script, "args": [] })), "/execute/sync")
    }

    /// What the test reads of the page.
    fn state(&self) -> Value {
        self.execute(
            "const q = (s) => [...document.querySelectorAll(s)];
             const error = document.getElementById('error');
             return {
               rows: q('#members tbody tr[data-name]').map((r) => [r.dataset.name, r.dataset.status]),
               failed_events: q('#feed li[data-event=\"failed\"] .member').map((m) => m.textContent),
               error: error && !error.hidden ? error.textContent : null,
               conn: document.getElementById('conn')?.textContent ?? null,
               feed: q('#feed li').slice(0, 20).map((li) => li.textContent),
               marker: window.swimPageTest ?? null,
               text: document.body ? document.body.innerText.slice(0, 2000) : null,
             };",
        )
    }

    /// Polls the page until its state is `done`; returns that state. After
    /// `limit`, fails showing the page's state and the lines of `agent`
    /// (the page's).
    fn wait_for(&self, what: &str, limit: Duration, done: impl Fn(&Value) -> bool, agent: &mut Agent) -> Value {
        let deadline = Clock::read() + limit;
        loop {
            let state = self.state();
            if done(&state) {
                return state;
            }
            if Clock::read() > deadline {
                let lines: Vec<String> = agent.lines().iter().map(ToString::to_string).collect();
                panic!(
                    "no {what} on the page within {limit:?}; the page: {state:#}\nthe agent's lines:\n{}",
                    lines.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(id) = self.session.take() {
            // Quits the browser; bounded by the client's timeout.
            if let Err(e) = self.request(Delete, &format!("/session/{id}")) {
                eprintln!("ending the WebDriver session: {e}");
            }
        }
        // The group is chromedriver's own (process_group(0)): its id is
        // chromedriver's.
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).stderr(Stdio::null()).status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Standard base64 (WebDriver's screenshots), padding and line breaks
/// ignored.
fn base64_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\r' | b'\n' => continue,
            _ => panic!("not base64: byte {c:#04x}"),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

#[test]
fn base64_decodes_what_it_should() {
    assert_eq!(base64_decode("aGVsbG8gd29ybGQ="), b"hello world");
    assert_eq!(base64_decode("iVBORw0KGgo="), b"\x89PNG\r\n\x1a\n");
    assert_eq!(base64_decode("YW55IGNhcm5hbCBwbGVhc3Vy\r\nZS4="), b"any carnal pleasure.");
    assert_eq!(base64_decode(""), b"");
}
