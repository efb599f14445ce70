//! A real `serf agent` (serf 0.9.4) for interop tests: the `serf` command
//! built from Debian's `golang-github-hashicorp-serf-dev`, started on
//! loopback and driven with its own commands (`serf members`, `serf
//! event`, `serf leave`) over its RPC address.
//!
//! [`SerfAgent::build`] builds the command once per process;
//! [`SerfAgent::spawn`] starts an agent on free loopback ports (asked of
//! the OS, then handed to the agent) and waits until its RPC answers. Its
//! user events are appended to a file by an event handler, read with
//! [`SerfAgent::events`]; it answers every query with `<name> from
//! <agent>`. The agent is killed when the value is dropped.
//!
//! It needs only [`go`](crate::go) of this crate, so that `swim-cli`'s
//! tests include the two by path to run `swim agent` beside serf agents.

use core::net::SocketAddr;
use core::time::Duration;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use lapswim_node::Clock;
use serde_json::Value;

/// serf's source under Debian's `GOPATH`.
const SERF_SRC: &str = "src/github.com/hashicorp/serf/cmd/serf";
/// What to install when something is missing.
const INSTALL: &str = "apt-get install golang-go golang-github-hashicorp-serf-dev";

/// A running `serf agent`, killed when dropped.
#[derive(Debug)]
pub struct SerfAgent {
    binary: PathBuf,
    name: String,
    child: Child,
    addr: SocketAddr,
    rpc: SocketAddr,
    events: PathBuf,
}

/// A member as `serf members -format=json` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SerfMember {
    /// Its name.
    pub name: String,
    /// `alive`, `failed`, `left` or `leaving`.
    pub status: String,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
}

/// Two free loopback ports, one for the agent (UDP and TCP) and one for
/// its RPC: bound by the OS, noted, then released for the agent.
fn free_ports() -> Result<(u16, u16), String> {
    for _ in 0..20 {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = tcp.local_addr().map_err(|e| e.to_string())?.port();
        let Ok(udp) = std::net::UdpSocket::bind(("127.0.0.1", port)) else { continue };
        let rpc = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let rpc_port = rpc.local_addr().map_err(|e| e.to_string())?.port();
        drop((tcp, udp, rpc));
        return Ok((port, rpc_port));
    }
    Err("no free port pair on loopback".into())
}

impl SerfAgent {
    /// Whether serf can be built here: `Err` names what is missing.
    pub fn toolchain() -> Result<(), String> {
        crate::go::toolchain(SERF_SRC, INSTALL)
    }

    /// Builds `serf` (once per process) into the target directory.
    pub fn build() -> Result<PathBuf, String> {
        BUILT.get_or_init(build_once).clone()
    }

    /// The built command for a test: `None` (with a note) when Go or serf
    /// is missing, a failure instead under `CI`, which installs them.
    pub fn for_test() -> Option<PathBuf> {
        crate::go::for_test("serf agent", Self::toolchain(), &BUILT, build_once)
    }

    /// Starts `serf agent -node=name` on free loopback ports, with `tags`,
    /// joining `join` if given, with the base64 key `key` if given (serf's
    /// `-encrypt`), and waits up to 20 s for its RPC to answer.
    pub fn spawn(
        binary: &Path,
        name: &str,
        tags: &[(&str, &str)],
        join: Option<SocketAddr>,
        key: Option<&str>,
    ) -> Result<SerfAgent, String> {
        let (port, rpc_port) = free_ports()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let rpc = SocketAddr::from(([127, 0, 0, 1], rpc_port));
        let events = std::env::temp_dir().join(format!("swim-serf-{name}-{}-{port}.events", std::process::id()));
        let _ = std::fs::remove_file(&events);
        let mut cmd = Command::new(binary);
        cmd.arg("agent")
            .arg(format!("-node={name}"))
            .arg(format!("-bind={addr}"))
            .arg(format!("-rpc-addr={rpc}"))
            .arg("-profile=local")
            .arg("-log-level=debug")
            .arg(format!(
                "-event-handler=user=printf '%s %s\\n' \"$SERF_USER_EVENT\" \"$(cat)\" >> {}",
                events.display()
            ))
            // Its queries' answer: `<query name> from <agent>`.
            .arg("-event-handler=query=cat >/dev/null; printf '%s from %s' \"$SERF_QUERY_NAME\" \"$SERF_SELF_NAME\"");
        for (k, v) in tags {
            cmd.arg("-tag").arg(format!("{k}={v}"));
        }
        if let Some(join) = join {
            cmd.arg(format!("-join={join}"));
        }
        if let Some(key) = key {
            cmd.arg(format!("-encrypt={key}"));
        }
        let echo = std::env::var_os("SWIM_SERF_LOG").is_some();
        let out = if echo { Stdio::inherit() } else { Stdio::null() };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting {}: {e}", binary.display()))?;
        let agent = SerfAgent { binary: binary.to_owned(), name: name.to_owned(), child, addr, rpc, events };
        let deadline = Clock::read() + Duration::from_secs(20);
        while Clock::read() < deadline {
            if agent.members().is_ok() {
                return Ok(agent);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("serf agent {name} did not answer on {rpc} within 20 s"))
    }

    /// The agent's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where its members reach it (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Runs `serf <command> -rpc-addr=... <arguments>` (`args` is the
    /// command, then its arguments) and returns its standard output.
    pub fn command(&self, args: &[&str]) -> Result<String, String> {
        // Flags go before the command's own arguments.
        let (sub, rest) = args.split_first().ok_or("no serf command")?;
        let out = Command::new(&self.binary)
            .arg(sub)
            .arg(format!("-rpc-addr={}", self.rpc))
            .args(rest)
            .output()
            .map_err(|e| format!("running serf {args:?}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "serf {args:?} at {}: {}{}",
                self.name,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `serf members -format=json`.
    pub fn members(&self) -> Result<Vec<SerfMember>, String> {
        let out = self.command(&["members", "-format=json"])?;
        let json: Value = serde_json::from_str(&out).map_err(|e| format!("{e}: {out}"))?;
        let members = json["members"].as_array().cloned().unwrap_or_default();
        Ok(members
            .iter()
            .map(|m| SerfMember {
                name: m["name"].as_str().unwrap_or_default().to_owned(),
                status: m["status"].as_str().unwrap_or_default().to_owned(),
                tags: m["tags"]
                    .as_object()
                    .map(|t| t.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
                    .unwrap_or_default(),
            })
            .collect())
    }

    /// `serf event name payload`: a user event from this agent.
    pub fn event(&self, name: &str, payload: &str) -> Result<(), String> {
        self.command(&["event", name, payload]).map(drop)
    }

    /// `serf query -format=json <flags> name payload` (`flags`: filters
    /// such as `-node=sw1` or `-tag=role=web`): the answers, by member.
    pub fn query(&self, flags: &[&str], name: &str, payload: &str) -> Result<BTreeMap<String, String>, String> {
        let mut args = vec!["query", "-format=json", "-timeout=3s"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&[name, payload]);
        let out = self.command(&args)?;
        let json: Value = serde_json::from_str(&out).map_err(|e| format!("{e}: {out}"))?;
        let responses = json["Responses"].as_object().cloned().unwrap_or_default();
        Ok(responses.into_iter().map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned())).collect())
    }

    /// The user events its handler has seen, as `name payload` lines.
    pub fn events(&self) -> Vec<String> {
        std::fs::read_to_string(&self.events).unwrap_or_default().lines().map(str::to_owned).collect()
    }

    /// `serf leave`: a graceful leave; the agent then exits.
    pub fn leave(&mut self) -> Result<(), String> {
        self.command(&["leave"]).map(drop)
    }

    /// SIGKILL, and waits for the process to go.
    pub fn kill(&mut self) -> Result<(), String> {
        self.child.kill().map_err(|e| e.to_string())?;
        self.child.wait().map(drop).map_err(|e| e.to_string())
    }
}

impl Drop for SerfAgent {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.events);
    }
}

/// The build, once per process.
static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();

fn build_once() -> Result<PathBuf, String> {
    SerfAgent::toolchain()?;
    crate::go::build("serf", crate::go::Source::Package("github.com/hashicorp/serf/cmd/serf"))
}
