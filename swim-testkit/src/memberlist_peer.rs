//! A real HashiCorp memberlist 0.2.2 node for interop tests: the Go
//! program `interop/memberlist-peer` (see its README.md), built from
//! Debian's packages and driven over its stdin and stdout.
//!
//! [`MemberlistPeer::build`] builds it once per process; [`MemberlistPeer::spawn`]
//! starts one node on an OS-chosen loopback port and waits until it is up.
//! Every line the node prints is a JSON event, read on a background thread;
//! [`MemberlistPeer::wait_for`] takes the first event that matches,
//! whether it came before the call or during it, and leaves the others for
//! later calls. The child is killed when the value is dropped, and stops
//! by itself after [`PeerOptions::lifetime`] in any case.
//!
//! ```no_run
//! use core::time::Duration;
//! use swim_testkit::memberlist_peer::{MemberlistPeer, PeerOptions};
//!
//! let binary = MemberlistPeer::build().expect("go and memberlist installed");
//! let a = MemberlistPeer::spawn(&binary, &PeerOptions::new("a")).expect("a starts");
//! let mut b = MemberlistPeer::spawn(&binary, &PeerOptions::new("b").join(a.addr())).expect("b starts");
//! b.wait_for(|ev| ev["ev"] == "join" && ev["name"] == "a", Duration::from_secs(10)).expect("b sees a");
//! ```

use core::net::SocketAddr;
use core::time::Duration;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lapswim_node::Clock;
use serde_json::Value;

pub use crate::go::GOPATH;
/// The library's source under [`GOPATH`].
const MEMBERLIST_SRC: &str = "src/github.com/hashicorp/memberlist";
/// What to install when something is missing.
const INSTALL: &str = "apt-get install golang-go golang-github-hashicorp-memberlist-dev";
/// How many lines of the node's log are kept for error messages.
const LOG_LINES: usize = 60;
/// How long a command's acknowledgement may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// How to start a peer: its flags.
#[derive(Clone, Debug)]
pub struct PeerOptions {
    /// The node's name (`-name`).
    pub name: String,
    /// Addresses to join once started (`-join`); the result arrives as a
    /// `joined` or an `error` event.
    pub join: Vec<String>,
    /// The encryption key (`-key`): 16, 24 or 32 bytes.
    pub key: Option<Vec<u8>>,
    /// The node's metadata (`-meta`), at most 512 bytes.
    pub meta: Option<String>,
    /// The local state it sends in push-pulls (`-state`).
    pub state: Option<String>,
    /// The protocol version (`-protocol`); the library's default when `None`.
    pub protocol: Option<u8>,
    /// Compression (`-compress`); the library's default (on) when `None`.
    pub compress: Option<bool>,
    /// Short timers (`-fast`): 200 ms probes, a suspicion of 0.8 to 4.8 s
    /// at small sizes, push-pulls every 2 s.
    pub fast: bool,
    /// The payload of its acks (`-ack-payload`).
    pub ack_payload: Option<String>,
    /// After how long the process shuts down by itself (`-lifetime`).
    pub lifetime: Duration,
    /// How long [`MemberlistPeer::spawn`] waits for the node to be up.
    pub ready_timeout: Duration,
}

impl PeerOptions {
    /// A node named `name` with short timers, nothing else set, and a
    /// lifetime of 120 s.
    pub fn new(name: impl Into<String>) -> Self {
        PeerOptions {
            name: name.into(),
            join: Vec::new(),
            key: None,
            meta: None,
            state: None,
            protocol: None,
            compress: None,
            fast: true,
            ack_payload: None,
            lifetime: Duration::from_secs(120),
            ready_timeout: Duration::from_secs(20),
        }
    }

    /// Adds an address to join once started.
    pub fn join(mut self, addr: impl ToString) -> Self {
        self.join.push(addr.to_string());
        self
    }

    /// Sets the encryption key.
    pub fn key(mut self, key: &[u8]) -> Self {
        self.key = Some(key.to_vec());
        self
    }

    /// Sets the node's metadata.
    pub fn meta(mut self, meta: impl Into<String>) -> Self {
        self.meta = Some(meta.into());
        self
    }

    /// Sets the local state sent in push-pulls.
    pub fn state(mut self, state: impl Into<String>) -> Self {
        self.state = Some(state.into());
        self
    }

    /// Sets the payload of the node's acks.
    pub fn ack_payload(mut self, payload: impl Into<String>) -> Self {
        self.ack_payload = Some(payload.into());
        self
    }

    fn args(&self) -> Vec<String> {
        let mut args = vec!["-name".to_owned(), self.name.clone(), "-bind".to_owned(), "127.0.0.1".to_owned()];
        let mut flag = |name: &str, value: String| {
            args.push(format!("-{name}"));
            args.push(value);
        };
        if !self.join.is_empty() {
            flag("join", self.join.join(","));
        }
        if let Some(key) = &self.key {
            flag("key", b64(key));
        }
        if let Some(meta) = &self.meta {
            flag("meta", meta.clone());
        }
        if let Some(state) = &self.state {
            flag("state", state.clone());
        }
        if let Some(protocol) = self.protocol {
            flag("protocol", protocol.to_string());
        }
        if let Some(payload) = &self.ack_payload {
            flag("ack-payload", payload.clone());
        }
        flag("lifetime", format!("{:.3}", self.lifetime.as_secs_f64()));
        if let Some(compress) = self.compress {
            args.push(format!("-compress={compress}"));
        }
        if self.fast {
            args.push("-fast".to_owned());
        }
        args
    }
}

/// A member as a `members` reply lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its name.
    pub name: String,
    /// Its address, `ip:port`.
    pub addr: String,
    /// `alive`, `suspect`, `dead` or `left`.
    pub state: String,
    /// Its metadata, as text.
    pub meta: String,
}

/// A running memberlist node (a child process), killed when dropped.
#[derive(Debug)]
pub struct MemberlistPeer {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    events: Receiver<Value>,
    /// Events received and not yet taken by [`MemberlistPeer::wait_for`].
    pending: VecDeque<Value>,
    log: Arc<Mutex<VecDeque<String>>>,
    addr: SocketAddr,
}

/// Base64 (standard, padded), as the peer's commands and events carry bytes.
pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// The bytes of a base64 field of an event, if it is one.
pub fn unb64(value: &Value) -> Option<Vec<u8>> {
    STANDARD.decode(value.as_str()?).ok()
}

impl MemberlistPeer {
    /// Whether the peer can be built here: `Err` names what is missing (a
    /// `go` on `PATH`, Debian's memberlist source under [`GOPATH`]).
    pub fn toolchain() -> Result<(), String> {
        crate::go::toolchain(MEMBERLIST_SRC, INSTALL)
    }

    /// Builds the peer (once per process) into the target directory, and
    /// returns the binary's path; `Err` says what is missing or what `go
    /// build` printed.
    pub fn build() -> Result<PathBuf, String> {
        BUILT.get_or_init(build_once).clone()
    }

    /// The built peer for a test: `None` (with a note on stderr) when Go
    /// or memberlist is missing, so the test can skip; with `CI` set that
    /// is a failure instead (CI installs them). A failed build panics.
    pub fn for_test() -> Option<PathBuf> {
        crate::go::for_test("memberlist peer", Self::toolchain(), &BUILT, build_once)
    }

    /// Starts a node with `options` and waits until it is up (its `ready`
    /// event). Events before it (the node's own `join`) stay pending.
    pub fn spawn(binary: &Path, options: &PeerOptions) -> Result<MemberlistPeer, String> {
        let mut child = Command::new(binary)
            .args(options.args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary.display()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (send, events) = channel();
        let name = options.name.clone();
        std::thread::Builder::new()
            .name(format!("memberlist-peer {name} stdout"))
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let event = serde_json::from_str(&line)
                        .unwrap_or_else(|_| serde_json::json!({ "ev": "unparsed", "line": line }));
                    if send.send(event).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| format!("starting a reader thread: {e}"))?;
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let kept = Arc::clone(&log);
        let echo = std::env::var_os("SWIM_MEMBERLIST_PEER_LOG").is_some();
        std::thread::Builder::new()
            .name(format!("memberlist-peer {name} stderr"))
            .spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if echo {
                        eprintln!("{line}");
                    }
                    let mut kept = kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    if kept.len() == LOG_LINES {
                        kept.pop_front();
                    }
                    kept.push_back(line);
                }
            })
            .map_err(|e| format!("starting a reader thread: {e}"))?;
        let mut peer = MemberlistPeer {
            name,
            stdin: child.stdin.take(),
            child,
            events,
            pending: VecDeque::new(),
            log,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let ready = peer.wait_for(|ev| ev["ev"] == "ready", options.ready_timeout)?;
        let port = ready["port"].as_u64().and_then(|p| u16::try_from(p).ok()).filter(|&p| p != 0);
        let Some(port) = port else {
            return Err(peer.failure(&format!("a ready event without a port: {ready}")));
        };
        peer.addr.set_port(port);
        Ok(peer)
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node's port (UDP and TCP).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The node's address, `127.0.0.1:port`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends one command line (`members`, `join ADDR`, `send-best NAME B64`,
    /// `send-reliable NAME B64`, `broadcast B64`, `leave`, `quit`).
    pub fn send_command(&mut self, line: &str) -> Result<(), String> {
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(self.failure("its stdin is closed"));
        };
        let sent = stdin.write_all(format!("{line}\n").as_bytes()).and_then(|()| stdin.flush());
        sent.map_err(|e| self.failure(&format!("writing `{line}`: {e}")))
    }

    /// The first event that `matches`, from those received and not yet
    /// taken, or from those arriving within `timeout`. The others stay for
    /// later calls. `Err` when none comes in time or the node's output
    /// ended, with the events left and the node's log.
    pub fn wait_for(&mut self, mut matches: impl FnMut(&Value) -> bool, timeout: Duration) -> Result<Value, String> {
        if let Some(i) = self.pending.iter().position(&mut matches) {
            return Ok(self.pending.remove(i).expect("a position found"));
        }
        let deadline = Clock::read() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Clock::read());
            match self.events.recv_timeout(left) {
                Ok(event) if matches(&event) => return Ok(event),
                Ok(event) => self.pending.push_back(event),
                Err(RecvTimeoutError::Timeout) => {
                    return Err(self.failure(&format!("no such event within {timeout:?}")));
                }
                Err(RecvTimeoutError::Disconnected) => return Err(self.failure("its output ended")),
            }
        }
    }

    /// Whether an event that `matches` has arrived (and not been taken),
    /// without waiting or taking it.
    pub fn has_seen(&mut self, mut matches: impl FnMut(&Value) -> bool) -> bool {
        self.pending.extend(self.events.try_iter());
        self.pending.iter().any(&mut matches)
    }

    /// The live members (alive or suspect) the node lists, itself
    /// included (`members`).
    pub fn members(&mut self, timeout: Duration) -> Result<Vec<Member>, String> {
        self.member_list("members", timeout)
    }

    /// Every member the node has had an event about, dead and left ones
    /// too, with its state as of its last event (`members all`).
    pub fn members_all(&mut self, timeout: Duration) -> Result<Vec<Member>, String> {
        self.member_list("members all", timeout)
    }

    fn member_list(&mut self, command: &str, timeout: Duration) -> Result<Vec<Member>, String> {
        self.send_command(command)?;
        let reply = self.wait_for(|ev| ev["ev"] == "members", timeout)?;
        let field = |m: &Value, key: &str| m[key].as_str().unwrap_or_default().to_owned();
        let members = reply["members"].as_array().into_iter().flatten();
        Ok(members
            .map(|m| Member {
                name: field(m, "name"),
                addr: field(m, "addr"),
                state: field(m, "state"),
                meta: field(m, "meta"),
            })
            .collect())
    }

    /// Joins `addr` (`join`): the number of nodes contacted, or the error
    /// memberlist returned.
    pub fn join(&mut self, addr: impl ToString) -> Result<u64, String> {
        self.send_command(&format!("join {}", addr.to_string()))?;
        let reply = self.command_reply("join ")?;
        Ok(reply["n"].as_u64().unwrap_or_default())
    }

    /// Sends a user message to the member `to` (a name, or an `ip:port`)
    /// over a stream (`send-reliable`), and waits until it is sent.
    pub fn send_reliable(&mut self, to: &str, msg: &[u8]) -> Result<(), String> {
        self.send_command(&format!("send-reliable {to} {}", b64(msg)))?;
        self.command_reply("send-reliable").map(drop)
    }

    /// Sends a user message to the member `to` (a name, or an `ip:port`)
    /// in a datagram (`send-best`).
    pub fn send_best_effort(&mut self, to: &str, msg: &[u8]) -> Result<(), String> {
        self.send_command(&format!("send-best {to} {}", b64(msg)))?;
        self.command_reply("send-best").map(drop)
    }

    /// Queues a user message for gossip (`broadcast`); it may arrive more
    /// than once.
    pub fn broadcast(&mut self, msg: &[u8]) -> Result<(), String> {
        self.send_command(&format!("broadcast {}", b64(msg)))?;
        self.command_reply("broadcast").map(drop)
    }

    /// The acknowledgement of a command (`joined`, `sent`, `queued`), or
    /// the error whose message starts with `prefix`.
    fn command_reply(&mut self, prefix: &str) -> Result<Value, String> {
        let reply = self.wait_for(
            |ev| {
                matches!(ev["ev"].as_str(), Some("joined" | "sent" | "queued"))
                    || ev["ev"] == "error" && ev["msg"].as_str().is_some_and(|m| m.starts_with(prefix))
            },
            COMMAND_TIMEOUT,
        )?;
        if reply["ev"] == "error" {
            return Err(reply["msg"].as_str().unwrap_or_default().to_owned());
        }
        Ok(reply)
    }

    /// Leaves the cluster gracefully (`leave`: memberlist's `Leave` with a
    /// 2 s limit, then `Shutdown`) and waits until the process exits.
    pub fn leave(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        self.send_command("leave")?;
        self.wait_for(|ev| ev["ev"] == "left", timeout)?;
        self.wait_exit(timeout)
    }

    /// Stops the node without leaving (`quit`: `Shutdown` only), so that
    /// the others find it dead, and waits until the process exits.
    pub fn quit(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        self.send_command("quit")?;
        self.wait_exit(timeout)
    }

    /// Kills the process (SIGKILL) and reaps it.
    pub fn kill(&mut self) -> Result<(), String> {
        self.child.kill().map_err(|e| format!("killing {}: {e}", self.name))?;
        self.child.wait().map(drop).map_err(|e| format!("reaping {}: {e}", self.name))
    }

    /// Waits until the process exits by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        let deadline = Clock::read() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if Clock::read() < deadline => std::thread::sleep(Duration::from_millis(20)),
                Ok(None) => return Err(self.failure(&format!("still running after {timeout:?}"))),
                Err(e) => return Err(format!("waiting for {}: {e}", self.name)),
            }
        }
    }

    /// An error message: what went wrong, with the events not taken and
    /// the end of the node's log.
    fn failure(&mut self, what: &str) -> String {
        self.pending.extend(self.events.try_iter());
        let status = match self.child.try_wait() {
            Ok(Some(status)) => format!("exited with {status}"),
            Ok(None) => "running".to_owned(),
            Err(e) => format!("status unknown: {e}"),
        };
        let events: Vec<String> = self.pending.iter().map(Value::to_string).collect();
        let log = self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let log: Vec<&str> = log.iter().map(String::as_str).collect();
        format!(
            "memberlist peer {} ({}, {status}): {what}\nevents not taken:\n  {}\nits log's end:\n  {}",
            self.name,
            self.addr,
            events.join("\n  "),
            log.join("\n  ")
        )
    }
}

impl Drop for MemberlistPeer {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The build, once per process.
static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();

fn build_once() -> Result<PathBuf, String> {
    MemberlistPeer::toolchain()?;
    crate::go::build("memberlist-peer", crate::go::Source::Dir(&source_dir()))
}

/// The peer's source directory in this repository.
fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../interop/memberlist-peer")
}
