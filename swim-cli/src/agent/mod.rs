//! `swim agent`: one member on tokio, run the way serf's agent is: events
//! printed and handed to handler scripts, a control API and status page,
//! a snapshot to rejoin from, joins retried through DNS, metrics and
//! logs; until Ctrl-C, SIGTERM or `swim leave`, then a graceful leave.

use core::net::SocketAddr;
use core::time::Duration;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use lapswim_core::{Event, QueryId, Tags};
use lapswim_node::{Key, Node, NodeBuilder, NodeError, NodeEvent};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::keys::{KeyringText, Settled};
use crate::output::{describe, to_json};

mod api;
pub(crate) mod handlers;
mod logs;
mod metrics;
mod settings;
mod shared;
mod snapshot;

use handlers::{HandlerEvent, HandlerRun, Handlers, MemberEvent, MemberLine, RunOutcome, SelfInfo};
pub(crate) use settings::AgentArgs;
pub(crate) use settings::DEFAULT_API;
use settings::{KeySource, Settings};
use shared::{Control, Counters, Shared};
use snapshot::{Found, Snapshot};

/// Runs the agent until a signal or `swim leave`; `Err` is a one-line
/// reason (with `--json`, also printed as an `error` line).
pub(crate) fn run(args: AgentArgs) -> Result<(), String> {
    let settings = Settings::resolve(args)?;
    let feed = Shared::feed_channel(None);
    logs::init(settings.log_json, feed.clone());
    let printer = Printer::new(settings.json, settings.name.clone(), feed);
    let result = match crate::tokio_runtime() {
        Ok(rt) => rt.block_on(agent(settings, &printer)),
        Err(e) => Err(Failure { kind: "runtime", message: e }),
    };
    let result = result.map_err(|f| {
        // A program reading the JSON lines learns of the failure there,
        // not only from stderr.
        if printer.json {
            printer.line("error", &f.message, json!({ "kind": f.kind, "message": f.message }));
        }
        f.message
    });
    printer.close();
    result
}

/// Why the agent stopped short: a kind for `--json` (`join_failed`,
/// `start_failed`, ...) and a line for people.
struct Failure {
    kind: &'static str,
    message: String,
}

/// Tags a reason with its kind, for `map_err`.
fn failure(kind: &'static str) -> impl FnOnce(String) -> Failure {
    move |message| Failure { kind, message }
}

/// A join that failed, with what to check.
fn join_failed(e: &NodeError, seeds: &[SocketAddr]) -> Failure {
    let seeds: Vec<String> = seeds.iter().map(ToString::to_string).collect();
    let message = match e {
        NodeError::JoinFailed => format!(
            "join failed: no seed answered (tried {}); check that a member runs there and is reachable over UDP \
             and TCP, and that --key/--keyring and --label match the cluster's (a member refusing our packets \
             says why in its log)",
            seeds.join(", ")
        ),
        e => format!("join failed: {e}"),
    };
    Failure { kind: "join_failed", message }
}

/// How the agent logs, for `swim agent --help`.
pub(crate) const LOGGING_HELP: &str = "\
Logging:
  Events go to stdout; the log goes to stderr, filtered by the RUST_LOG
  environment variable (tracing's EnvFilter syntax), `warn` when unset;
  --log-json writes it as JSON lines. `swim monitor` streams both.
    RUST_LOG=warn          packets refused for a wrong or missing key or
                           another cluster label (one line per reason and
                           10 s, with a count of the others), socket errors,
                           handler failures
    RUST_LOG=info          also the node's start and stop, API and joins
    RUST_LOG=debug         also every membership event and refused datagram
    RUST_LOG=trace         also every read of the --keyring file
    RUST_LOG=lapswim_node=debug,warn   debug for one crate, warn elsewhere
  Colour codes only when stderr is a terminal.

Control API (docs/api.md):
  Served at --api (127.0.0.1:7373) with the status page at its root; the
  client commands (swim members, event, query, tags, keys, join, leave,
  force-leave, info, reachability, rtt, monitor) use it.";

/// Prints the agent's lines (readable or JSON) and copies each, as JSON,
/// to the live feed.
///
/// Lines are written by a thread of their own through a bounded queue: a
/// reader that stops reading (a full pipe) must not stop the agent, whose
/// loop would otherwise block in the write, and a reader that goes away
/// (a closed pipe) must not end it, only its output. Lines that find the
/// queue full are dropped and counted.
struct Printer {
    json: bool,
    name: String,
    feed: broadcast::Sender<Value>,
    out: std::sync::mpsc::SyncSender<String>,
    written: std::sync::Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    dropped: core::sync::atomic::AtomicU64,
}

/// Lines waiting for stdout before more are dropped.
const OUTPUT_QUEUE: usize = 4096;

impl Printer {
    fn new(json: bool, name: String, feed: broadcast::Sender<Value>) -> Printer {
        let (out, lines) = std::sync::mpsc::sync_channel::<String>(OUTPUT_QUEUE);
        let (done, written) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut stdout = std::io::stdout();
            for line in lines {
                if writeln!(stdout, "{line}").and_then(|()| stdout.flush()).is_err() {
                    // Nobody reads any more: the agent goes on without.
                    break;
                }
            }
            drop(done);
        });
        let dropped = core::sync::atomic::AtomicU64::new(0);
        Printer { json, name, feed, out, written: std::sync::Mutex::new(Some(written)), dropped }
    }

    /// Queues one line for stdout.
    fn print(&self, line: String) {
        use std::sync::mpsc::TrySendError;
        if let Err(TrySendError::Full(_)) = self.out.try_send(line) {
            let n = self.dropped.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
            if n.is_multiple_of(1000) {
                tracing::warn!(dropped = n + 1, "stdout is not being read: output lines dropped");
            }
        }
    }

    /// Lets the queued lines out (for at most two seconds: a reader that
    /// stopped reading does not hold the agent's exit).
    fn close(self) {
        let Printer { out, written, .. } = self;
        drop(out);
        if let Some(written) = written.lock().ok().and_then(|mut w| w.take()) {
            let _ = written.recv_timeout(Duration::from_secs(2));
        }
    }

    fn line(&self, kind: &str, text: &str, mut json: Value) {
        let time = now();
        if let Some(obj) = json.as_object_mut() {
            obj.insert("time".into(), time.clone().into());
            obj.insert("node".into(), self.name.clone().into());
            obj.entry("event").or_insert_with(|| kind.into());
        }
        if self.json {
            self.print(json.to_string());
        } else {
            self.print(format!("{time} {}: {text}", self.name));
        }
        // Nobody reading is no error.
        let _ = self.feed.send(json);
    }

    fn event(&self, event: &NodeEvent) {
        match event {
            NodeEvent::Protocol { event, .. } => self.line("", &describe(event), to_json(event)),
            NodeEvent::Lagged { missed } => {
                self.line("lagged", &format!("{missed} events lost: output too slow"), json!({ "missed": missed }));
            }
            other => self.line("other", &format!("{other:?}"), json!({})),
        }
    }
}

#[expect(clippy::disallowed_methods, reason = "a timestamp for people to read, never a protocol input")]
fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

#[expect(clippy::disallowed_methods, reason = "when a member changed, for people to read")]
fn wall_clock() -> SystemTime {
    SystemTime::now()
}

/// Answers queries with what the handler printed.
struct NodeResponder(Node);

impl handlers::Responder for NodeResponder {
    fn respond(
        &self,
        id: QueryId,
        payload: Vec<u8>,
    ) -> core::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(async move { self.0.respond(id, payload).await.map_err(|e| e.to_string()) })
    }
}

/// Addresses as given (`IP:PORT`, `HOST:PORT`, or `HOST` for port 7946),
/// looked up in DNS now: every address each name has.
pub(crate) async fn resolve(hosts: &[String]) -> Result<Vec<SocketAddr>, String> {
    let mut seeds = Vec::new();
    let mut errors = Vec::new();
    for host in hosts {
        if let Ok(addr) = host.parse::<SocketAddr>() {
            seeds.push(addr);
            continue;
        }
        // An address without a port (`10.0.0.1`, `::1`, `[::1]`).
        if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse::<core::net::IpAddr>() {
            seeds.push(SocketAddr::new(ip, settings::DEFAULT_PORT));
            continue;
        }
        let has_port = host.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok());
        let found = if has_port {
            tokio::net::lookup_host(host.as_str()).await.map(Iterator::collect::<Vec<_>>)
        } else {
            tokio::net::lookup_host((host.as_str(), settings::DEFAULT_PORT)).await.map(Iterator::collect::<Vec<_>>)
        };
        match found {
            Ok(addrs) if !addrs.is_empty() => seeds.extend(addrs),
            Ok(_) => errors.push(format!("{host}: no address")),
            Err(e) => errors.push(format!("{host}: {e}")),
        }
    }
    if seeds.is_empty() {
        return Err(format!("no address to join: {}", errors.join("; ")));
    }
    if !errors.is_empty() {
        tracing::warn!("some join addresses did not resolve: {}", errors.join("; "));
    }
    Ok(seeds)
}

/// Joins through `hosts`, looked up again at every attempt, until one
/// answers or `max` attempts (0: no limit) have failed.
async fn retry_join(
    shared: Arc<Shared>,
    hosts: Vec<String>,
    interval: Duration,
    max: u32,
) -> Result<SocketAddr, String> {
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        Counters::bump(&shared.counters.join_attempts);
        let error = match resolve(&hosts).await {
            Ok(seeds) => match shared.node.join(&seeds).await {
                Ok(seed) => return Ok(seed),
                Err(e) => {
                    format!("{e} (tried {})", seeds.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))
                }
            },
            Err(e) => e,
        };
        tracing::warn!(attempt, "retry-join: {error}");
        if max != 0 && attempt >= max {
            return Err(format!("retry-join gave up after {attempt} attempts: {error}"));
        }
        tokio::time::sleep(interval).await;
    }
}

/// The address to advertise: the one given; else, when every interface
/// is bound (`0.0.0.0`, `::`), the address of the interface the default
/// route leaves by (found by connecting a UDP socket, which sends nothing),
/// as a member on a host with one network wants.
fn advertise_for(bind: SocketAddr, given: Option<SocketAddr>) -> Result<Option<SocketAddr>, String> {
    if given.is_some() || !bind.ip().is_unspecified() {
        return Ok(given);
    }
    let why = |e: String| {
        format!(
            "--bind {bind} binds every interface, so others need to be told where to reach this member: {e}; give \
             --advertise IP:PORT"
        )
    };
    if bind.port() == 0 {
        return Err(why("with port 0 the port is not known in advance".into()));
    }
    // Documentation addresses (RFC 5737, RFC 3849): never sent to.
    let target: SocketAddr =
        if bind.is_ipv4() { "192.0.2.1:9" } else { "[2001:db8::1]:9" }.parse().map_err(|_| why("".into()))?;
    let probe = std::net::UdpSocket::bind(SocketAddr::new(bind.ip(), 0)).map_err(|e| why(e.to_string()))?;
    probe.connect(target).map_err(|e| why(format!("no route to pick an interface by ({e})")))?;
    let ip = probe.local_addr().map_err(|e| why(e.to_string()))?.ip();
    if ip.is_unspecified() {
        return Err(why("no interface has a route".into()));
    }
    tracing::info!(%ip, "advertising the default route's interface address");
    Ok(Some(SocketAddr::new(ip, bind.port())))
}

/// The node's tags from the settings.
fn tags_of(map: &BTreeMap<String, String>) -> Tags {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

async fn agent(settings: Settings, printer: &Printer) -> Result<(), Failure> {
    let mut config = settings.dialect.apply(settings.preset.config());
    if let Some(label) = &settings.label {
        config = config.with_label(
            lapswim_core::Label::new(label)
                .ok_or_else(|| failure("invalid_argument")("a cluster label is at most 255 bytes".to_owned()))?,
        );
    }
    let meta = tags_of(&settings.tags).encode();
    if meta.len() > config.max_meta_len {
        return Err(failure("invalid_argument")(format!(
            "the tags (--tag, --tags-file) encode to {} bytes, more than the {} bytes a member may carry (max_meta_len)",
            meta.len(),
            config.max_meta_len
        )));
    }
    // A stdin line travels as the user event `line`: name and text share
    // the event limit (a line to one member is a direct message).
    let max_payload = config.max_event_len.saturating_sub(LINE_EVENT.len()).min(config.max_user_payload);
    let mut watch = None;
    let keys = match &settings.keys {
        KeySource::Key(k) => vec![crate::keys::parse_key(k).map_err(failure("invalid_argument"))?],
        KeySource::Keyring(path) => {
            let (w, keys) = KeyringWatch::open(path, printer).map_err(failure("keyring"))?;
            watch = Some(w);
            keys
        }
        KeySource::None => Vec::new(),
    };
    let snapshot = match &settings.snapshot {
        Some(path) => match snapshot::read(path, &settings.name) {
            Found::Snapshot(s) => Some(s),
            Found::Nothing => None,
            Found::Unusable(why) => {
                let text = format!("snapshot {} ignored, starting fresh: {why}", path.display());
                tracing::warn!("{text}");
                printer.line("snapshot_error", &text, json!({ "error": why }));
                None
            }
        },
        None => None,
    };
    let mut builder = NodeBuilder::new(&settings.name, settings.bind).config(config).meta(meta).keys(keys);
    if let Some(addr) = advertise_for(settings.bind, settings.advertise).map_err(failure("invalid_argument"))? {
        builder = builder.advertise(addr);
    }
    if let Some(path) = &settings.record {
        builder = builder.record(path);
    }
    let node = lapswim_tokio::start(builder).map_err(|e| failure("start_failed")(e.to_string()))?;
    if let Some(s) = &snapshot {
        node.restore(s.event_time, s.query_time).await.map_err(|e| failure("start_failed")(e.to_string()))?;
    }
    let events = node.events();
    for h in &settings.handlers {
        tracing::info!(script = h.script(), "event handler");
    }
    let (runs_tx, mut runs) = mpsc::unbounded_channel();
    let me = SelfInfo { name: settings.name.clone(), tags: settings.tags.clone().into_iter().collect() };
    let responder = Arc::new(NodeResponder(node.clone()));
    let handlers = Handlers::start(settings.handlers, me, settings.handler_settings, responder, runs_tx);
    let (control_tx, mut control) = mpsc::channel(4);
    let shared = Shared::new(
        node.clone(),
        settings.api_token.clone(),
        printer.feed.clone(),
        settings.tags_file.clone(),
        handlers,
        control_tx,
        wall_clock(),
    );
    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = match settings.api {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                failure("api_failed")(format!(
                    "cannot serve the API at {addr}: {e} (--api ADDR chooses another address, --no-api serves none)"
                ))
            })?;
            let bound = listener.local_addr().map_err(|e| failure("api_failed")(e.to_string()))?;
            if let Ok(mut a) = shared.api.lock() {
                *a = Some(bound);
            }
            tracing::info!(%bound, "control API and status page served");
            let stopped = async {
                let _ = api_stopped.await;
            };
            Some(tokio::spawn(api::serve(listener, shared.clone(), stopped)))
        }
        None => None,
    };
    let api_addr = shared.api.lock().ok().and_then(|a| *a);
    // Watched before "started" is printed, so a signal sent by whoever saw
    // that line always finds the agent ready to leave.
    let mut signals = Signals::new().map_err(failure("signals"))?;
    let api_text = api_addr.map(|a| format!(", API and status page at http://{a}/")).unwrap_or_default();
    printer.line(
        "started",
        &format!("listening on {}{api_text}", node.addr()),
        json!({ "addr": node.addr(), "api": api_addr }),
    );
    let mut stop = Stop { server, stop_api: Some(stop_api), snapshot: settings.snapshot.clone() };
    if !settings.join.is_empty() {
        Counters::bump(&shared.counters.join_attempts);
        let join = node.join(&settings.join);
        tokio::select! {
            r = join => { r.map_err(|e| join_failed(&e, &settings.join))?; }
            () = signals.recv() => return stop.leave(&shared, &events, printer, &mut signals).await,
        }
    } else if let Some(s) = &snapshot {
        let seeds = s.seeds();
        if s.left && !settings.rejoin {
            printer.line(
                "snapshot_not_rejoined",
                "left gracefully last time: not rejoining the snapshot's members (--rejoin would)",
                json!({}),
            );
        } else if !seeds.is_empty() {
            Counters::bump(&shared.counters.join_attempts);
            tokio::select! {
                r = node.join(&seeds) => match r {
                    Ok(seed) => printer.line("rejoined", &format!("rejoined from the snapshot through {seed}"), json!({ "seed": seed })),
                    Err(e) => {
                        let text = format!("could not rejoin the snapshot's members ({e}); running alone until a member joins us");
                        tracing::warn!("{text}");
                        printer.line("rejoin_failed", &text, json!({ "error": e.to_string() }));
                    }
                },
                () = signals.recv() => return stop.leave(&shared, &events, printer, &mut signals).await,
            }
        }
    }
    let mut retry = (!settings.retry_join.is_empty()).then(|| {
        tokio::spawn(retry_join(
            shared.clone(),
            settings.retry_join.clone(),
            settings.retry_interval,
            settings.retry_max,
        ))
    });
    let mut lines = settings.broadcast.then(stdin_lines);
    let mut poll = tokio::time::interval(KEYRING_POLL);
    let mut snapshots = tokio::time::interval(SNAPSHOT_EVERY);
    let mut tidy = tokio::time::interval(TIDY_EVERY);
    let mut written: Option<Snapshot> = None;
    loop {
        let line = async {
            match lines.as_mut() {
                Some(l) => l.recv().await,
                None => core::future::pending().await,
            }
        };
        let retried = async {
            match retry.as_mut() {
                Some(task) => task.await,
                None => core::future::pending().await,
            }
        };
        tokio::select! {
            e = events.next() => match e {
                Some(e) => on_event(&shared, printer, e).await,
                None => return Err(failure("node_stopped")("the node stopped".into())),
            },
            Some(run) = runs.recv() => on_run(&shared, printer, &run),
            Some(c) = control.recv() => match c {
                Control::Leave(reply) => {
                    let result = stop.leave(&shared, &events, printer, &mut signals).await;
                    let _ = reply.send(result.as_ref().map(|_| ()).map_err(|f| f.message.clone()));
                    stop.close_api().await;
                    return result;
                }
            },
            l = line => match l {
                Some(Line::Text(text)) => send_line(&node, printer, &text, max_payload).await,
                Some(Line::TooLong) => {
                    not_sent(printer, format!("a stdin line longer than {MAX_LINE} bytes (skipped to its end)"));
                }
                Some(Line::NotUtf8) => not_sent(printer, "a stdin line that is not UTF-8 (skipped)".into()),
                // End of input (or unreadable): stop reading, keep running.
                None => lines = None,
            },
            r = retried => {
                retry = None;
                match r {
                    Ok(Ok(seed)) => printer.line("retry_join", &format!("joined through {seed} (--retry-join)"), json!({ "seed": seed })),
                    Ok(Err(e)) => {
                        // Never joined: nothing to leave, and the snapshot
                        // keeps its members for the next start.
                        node.shutdown().await;
                        stop.close_api().await;
                        return Err(failure("join_failed")(e));
                    }
                    Err(e) => tracing::error!("retry-join task failed: {e}"),
                }
            }
            _ = poll.tick(), if watch.is_some() => {
                if let Some(w) = watch.as_mut() {
                    w.reload(&node, printer).await;
                }
            }
            _ = snapshots.tick(), if stop.snapshot.is_some() => {
                stop.save(&shared, &mut written, false).await;
            }
            _ = tidy.tick() => {
                if let Ok(members) = node.members().await {
                    shared.retain_changes(&members);
                }
            }
            () = signals.recv() => break,
        }
    }
    let result = stop.leave(&shared, &events, printer, &mut signals).await;
    stop.close_api().await;
    result
}

/// How often what the agent notes of members is cut to the table.
const TIDY_EVERY: Duration = Duration::from_secs(60);

/// How often the snapshot is brought up to date (when it changed).
const SNAPSHOT_EVERY: Duration = Duration::from_secs(1);

/// What stopping involves beyond the node: the snapshot's last write and
/// the API server.
struct Stop {
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    stop_api: Option<tokio::sync::oneshot::Sender<()>>,
    snapshot: Option<PathBuf>,
}

impl Stop {
    /// Leaves gracefully (a second signal cuts it short), keeps the
    /// snapshot's last word (that we left), and stops the node.
    async fn leave(
        &mut self,
        shared: &Shared,
        events: &lapswim_node::Events,
        printer: &Printer,
        signals: &mut Signals,
    ) -> Result<(), Failure> {
        let node = &shared.node;
        printer.line("leaving", "leaving", json!({}));
        let result = tokio::select! {
            r = node.leave() => r,
            () = signals.recv() => {
                let text = "second signal: stopping without waiting for the leave to spread";
                printer.line("leave_cut_short", text, json!({}));
                Ok(())
            }
        };
        while let Some(e) = events.try_next() {
            printer.event(&e);
        }
        self.save(shared, &mut None, true).await;
        node.shutdown().await;
        result.map_err(|e| failure("leave_failed")(format!("leave failed: {e}")))?;
        printer.line("stopped", "stopped", json!({}));
        Ok(())
    }

    /// Stops the API, letting requests in flight (the leave's own answer)
    /// finish for a moment; streams still open are cut.
    async fn close_api(&mut self) {
        if let Some(tx) = self.stop_api.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
        }
    }

    /// Writes the snapshot if it changed since `written`.
    async fn save(&self, shared: &Shared, written: &mut Option<Snapshot>, left: bool) {
        let Some(path) = &self.snapshot else { return };
        let (Ok(members), Ok(stats)) = (shared.node.members().await, shared.node.stats().await) else {
            return;
        };
        shared.retain_changes(&members);
        let mut s = Snapshot::new(&shared.name);
        s.members = members
            .iter()
            .map(|m| snapshot::Kept {
                name: m.name.as_str().into(),
                addr: m.addr,
                status: shared::status(m.state).into(),
            })
            .collect();
        s.event_time = stats.event_time;
        s.query_time = stats.query_time;
        s.left = left;
        if written.as_ref() == Some(&s) {
            return;
        }
        // Synced to disk: off the runtime's workers, which run the node.
        let (file, kept) = (path.clone(), s.clone());
        let written_now = tokio::task::spawn_blocking(move || snapshot::write(&file, &kept)).await;
        match written_now.unwrap_or_else(|e| Err(e.to_string())) {
            Ok(()) => {
                Counters::bump(&shared.counters.snapshot_writes);
                *written = Some(s);
            }
            Err(e) => {
                // Said once a minute, not at every attempt (each second).
                let failures = shared.counters.snapshot_failures.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
                if failures.is_multiple_of(60) {
                    tracing::warn!(failures = failures + 1, "cannot write the snapshot: {e}");
                }
            }
        }
    }
}

/// One event from the node: printed, noted, handed to the handlers, or
/// routed to the request that asked.
async fn on_event(shared: &Shared, printer: &Printer, e: NodeEvent) {
    printer.event(&e);
    if let NodeEvent::Lagged { .. } = e {
        shared.close_routes();
    }
    let NodeEvent::Protocol { event, .. } = e else { return };
    match &event {
        Event::Joined { name, addr } => on_member(shared, MemberEvent::Join, name, Some(*addr)).await,
        Event::Failed { name, .. } => on_member(shared, MemberEvent::Failed, name, None).await,
        Event::Left { name } => on_member(shared, MemberEvent::Leave, name, None).await,
        Event::Updated { name, addr } => on_member(shared, MemberEvent::Update, name, Some(*addr)).await,
        Event::Suspected { name, .. } => shared.changed(name.as_str(), wall_clock()),
        Event::Alive { name, .. } => {
            Counters::bump(&shared.counters.suspicions_refuted);
            shared.changed(name.as_str(), wall_clock());
        }
        Event::User { name, payload, ltime, coalesce, .. } => shared.handlers.dispatch(HandlerEvent::User {
            name: name.clone(),
            payload: payload.clone(),
            ltime: *ltime,
            coalesce: *coalesce,
        }),
        Event::Query { id, name, payload, ltime, .. } => {
            shared.handlers.dispatch(HandlerEvent::Query {
                id: *id,
                name: name.clone(),
                payload: payload.clone(),
                ltime: *ltime,
            });
        }
        Event::QueryAck { id, .. }
        | Event::QueryResponse { id, .. }
        | Event::QueryDone { id }
        | Event::Report { id, .. } => {
            shared.route(*id, event.clone());
        }
        _ => {}
    }
}

/// A member changed: noted, and handed to the handlers with its address
/// and tags.
async fn on_member(shared: &Shared, kind: MemberEvent, name: &lapswim_core::MemberName, addr: Option<SocketAddr>) {
    shared.changed(name.as_str(), wall_clock());
    if shared.handlers.is_empty() {
        return;
    }
    // One member, not the table: a mass join brings as many events as
    // members. What is noted of departed members is trimmed every minute.
    let found = shared.node.member(name.as_str()).await.ok().flatten();
    let line = shared.member_line(name.as_str(), found.as_ref());
    let Some(member) =
        line.or_else(|| addr.map(|addr| MemberLine { name: name.as_str().into(), addr, tags: Vec::new() }))
    else {
        return;
    };
    shared.handlers.dispatch(HandlerEvent::Member { kind, member });
}

/// A handler run finished: counted, printed, and logged when it failed.
fn on_run(shared: &Shared, printer: &Printer, run: &HandlerRun) {
    Counters::bump(&shared.counters.handler_runs);
    let (outcome, failed) = match &run.outcome {
        RunOutcome::Exited(0) => ("exit 0".to_owned(), false),
        RunOutcome::Exited(code) => (format!("exit {code}"), true),
        RunOutcome::Signalled => ("killed by a signal".to_owned(), true),
        RunOutcome::TimedOut => ("timed out".to_owned(), true),
        RunOutcome::NotStarted(e) => (format!("not started: {e}"), true),
    };
    if failed {
        Counters::bump(&shared.counters.handler_failures);
        let stderr = String::from_utf8_lossy(&run.stderr);
        tracing::warn!(script = %run.script, event = %run.event, "handler {outcome}: {}", stderr.trim_end());
    }
    if run.outcome == RunOutcome::TimedOut {
        Counters::bump(&shared.counters.handler_timeouts);
    }
    printer.line(
        "handler",
        &format!(
            "handler {} for {}: {outcome}{}",
            run.script,
            run.event,
            if run.truncated { " (output cut)" } else { "" }
        ),
        json!({
            "script": run.script, "for": run.event, "outcome": outcome, "failed": failed,
            "truncated": run.truncated, "stdout_bytes": run.stdout.len(),
        }),
    );
}

/// SIGTERM and SIGINT (Ctrl-C), the two ways to stop the agent.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Signals, String> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate()).map_err(|e| format!("cannot watch SIGTERM: {e}"))?,
            int: signal(SignalKind::interrupt()).map_err(|e| format!("cannot watch SIGINT: {e}"))?,
        })
    }

    /// Returns at the next of either signal.
    async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// The name of the user event a stdin line is sent as.
const LINE_EVENT: &str = "line";

/// The longest stdin line read, in bytes; an event carries far less
/// (max_event_len), and a longer line is skipped without being held.
const MAX_LINE: usize = 64 * 1024;

/// Lines typed on stdin, read by a thread of their own: a read blocked on
/// an open terminal or pipe can be neither cancelled nor waited for, so it
/// must not belong to the runtime (whose shutdown would wait for it and
/// keep the agent alive after a signal until stdin closes). The thread
/// ends with the input, or with the process.
fn stdin_lines() -> tokio::sync::mpsc::Receiver<Line> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    std::thread::spawn(move || {
        let mut lines = Lines::new(std::io::stdin().lock(), MAX_LINE);
        while let Ok(Some(line)) = lines.next() {
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// One line of input.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// A line of text, without its `\n` or `\r\n`.
    Text(String),
    /// A line longer than the bound, reported as soon as it is known to be;
    /// the rest of it is skipped.
    TooLong,
    /// A line that is not UTF-8.
    NotUtf8,
}

/// Splits input into lines of at most `max` bytes while holding no more
/// than that, however long a line is.
struct Lines<R> {
    input: R,
    max: usize,
    /// The line read so far.
    line: Vec<u8>,
    /// Whether the rest of a line too long is being skipped.
    skipping: bool,
}

impl<R: BufRead> Lines<R> {
    fn new(input: R, max: usize) -> Self {
        Lines { input, max, line: Vec::new(), skipping: false }
    }

    /// The next line; `None` at the end of the input.
    fn next(&mut self) -> std::io::Result<Option<Line>> {
        loop {
            let chunk = match self.input.fill_buf() {
                Ok(chunk) => chunk,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if chunk.is_empty() {
                // A last line without a newline.
                self.skipping = false;
                return Ok((!self.line.is_empty()).then(|| self.take(false)));
            }
            let newline = chunk.iter().position(|&b| b == b'\n');
            let part = &chunk[..newline.unwrap_or(chunk.len())];
            let used = newline.map_or(chunk.len(), |i| i + 1);
            let mut found = None;
            if !self.skipping {
                if self.line.len() + part.len() > self.max {
                    self.line.clear();
                    self.skipping = true;
                    found = Some(Line::TooLong);
                } else {
                    self.line.extend_from_slice(part);
                }
            }
            self.input.consume(used);
            if newline.is_some() {
                if found.is_none() && !self.skipping {
                    found = Some(self.take(true));
                }
                self.skipping = false;
            }
            if found.is_some() {
                return Ok(found);
            }
        }
    }

    /// The line read, decoded; the buffer is kept for the next.
    fn take(&mut self, ended: bool) -> Line {
        let mut bytes = &self.line[..];
        if ended && let Some(rest) = bytes.strip_suffix(b"\r") {
            bytes = rest;
        }
        let line = core::str::from_utf8(bytes).map_or(Line::NotUtf8, |t| Line::Text(t.to_owned()));
        self.line.clear();
        line
    }
}

/// How often the keyring file is read for changes.
const KEYRING_POLL: core::time::Duration = core::time::Duration::from_millis(500);

/// The keyring file and what became of it: a change is acted upon once
/// two polls in a row read it alike (so a file caught half-written is not
/// applied), and reported once however often it is polled.
struct KeyringWatch {
    path: PathBuf,
    /// The reading last acted upon (the file, or why it could not be
    /// read), and a newer one awaiting confirmation.
    reading: Settled<Result<KeyringText, String>>,
    /// Whether the last change was refused, so its repair is reported.
    broken: bool,
}

impl KeyringWatch {
    /// Reads the file for the node's first keys; a file that cannot be
    /// read or is refused stops the agent before it starts.
    fn open(path: &Path, printer: &Printer) -> Result<(KeyringWatch, Vec<Key>), String> {
        let file = crate::keys::read_file(path)?;
        let keys = crate::keys::parse_keyring(&file.text).map_err(|e| format!("{}: {e}", path.display()))?;
        warn_if_exposed(printer, path, &file);
        let watch = KeyringWatch { path: path.to_path_buf(), reading: Settled::new(Ok(file)), broken: false };
        Ok((watch, keys))
    }

    /// Brings the node's keyring to what the file lists now, if the file
    /// changed, whole or not at all: a file refused, or a change the
    /// keyring refuses (after which the keys installed before are put
    /// back), is reported and ignored until the file changes again.
    async fn reload(&mut self, node: &Node, printer: &Printer) {
        tracing::trace!(path = %self.path.display(), "keyring file polled");
        let Some(reading) = self.reading.observe(crate::keys::read_file(&self.path)) else { return };
        let wanted = reading.clone().and_then(|file| {
            warn_if_exposed(printer, &self.path, &file);
            crate::keys::parse_keyring(&file.text).map_err(|e| format!("{}: {e}", self.path.display()))
        });
        let wanted = match wanted {
            Ok(k) => k,
            Err(e) => return self.refused(printer, e, true),
        };
        let before = match node.keys().await {
            Ok(k) => k,
            Err(e) => return self.refused(printer, format!("cannot list the installed keys: {e}"), true),
        };
        let after = match carry_out(node, &wanted).await {
            Ok(after) => after,
            Err(e) => {
                return match carry_out(node, &before).await {
                    Ok(_) => self.refused(printer, e, true),
                    Err(undo) => {
                        self.refused(
                            printer,
                            format!("{e}; putting back the keys installed before failed too: {undo}"),
                            false,
                        );
                    }
                };
            }
        };
        let recovered = core::mem::take(&mut self.broken);
        if after == before && !recovered {
            return;
        }
        let prints = fingerprints(&after);
        let text = format!(
            "{}keyring now {} (primary first)",
            if recovered { "keyring file valid again; " } else { "" },
            prints.join(", ")
        );
        printer.line("keyring", &text, serde_json::json!({ "keys": prints, "recovered": recovered }));
    }

    fn refused(&mut self, printer: &Printer, e: String, unchanged: bool) {
        self.broken = true;
        let state = if unchanged { "keyring unchanged" } else { "keyring left as it is" };
        printer.line(
            "keyring_error",
            &format!("{e} ({state} until the file changes)"),
            serde_json::json!({ "error": e }),
        );
    }
}

/// Brings the node's keyring to `wanted` from the keys it actually holds;
/// returns them, listed by the node once more.
async fn carry_out(node: &Node, wanted: &[Key]) -> Result<Vec<Key>, String> {
    let listing = |e: NodeError| format!("cannot list the installed keys: {e}");
    let installed = node.keys().await.map_err(listing)?;
    for op in crate::keys::plan(&installed, wanted) {
        node.keyring(op).await.map_err(|e| format!("keyring change refused ({op:?}): {e}"))?;
    }
    let now = node.keys().await.map_err(listing)?;
    if !crate::keys::same_keyring(&now, wanted) {
        let (now, wanted) = (fingerprints(&now).join(", "), fingerprints(wanted).join(", "));
        return Err(format!("the keyring holds {now} rather than {wanted}"));
    }
    Ok(now)
}

fn fingerprints(keys: &[Key]) -> Vec<String> {
    keys.iter().map(|k| format!("{:08x}", k.fingerprint())).collect()
}

/// Warns (a `keyring_warning` line) when others than the file's owner may
/// read or change the keyring file: the file is used all the same.
fn warn_if_exposed(printer: &Printer, path: &Path, file: &KeyringText) {
    if !file.exposed() {
        return;
    }
    let mode = format!("{:04o}", file.mode);
    let text = format!(
        "{} has mode {mode}: users other than its owner may read or change the keys (chmod 600 it)",
        path.display()
    );
    printer.line("keyring_warning", &format!("warning: {text}"), serde_json::json!({ "warning": text, "mode": mode }));
}

/// One stdin line: a broadcast, or `@NAME TEXT` to one member, of at most
/// `max_payload` bytes.
async fn send_line(node: &Node, printer: &Printer, text: &str, max_payload: usize) {
    let (to, body) = match text.strip_prefix('@').and_then(|t| t.split_once(' ')) {
        Some((to, body)) => (Some(to), body),
        None => (None, text),
    };
    let result = match to {
        Some(to) => node.send(to, body.as_bytes().to_vec(), true).await,
        None => node.event(LINE_EVENT, body.as_bytes().to_vec(), false).await,
    };
    if let Err(e) = result {
        let e = match e {
            NodeError::Protocol(lapswim_core::Error::TooLarge) => format!(
                "{} bytes, more than the {max_payload} a line may carry (max_event_len, max_user_payload)",
                body.len()
            ),
            e => e.to_string(),
        };
        not_sent(printer, e);
    }
}

/// Reports a stdin line that was not sent, and why.
fn not_sent(printer: &Printer, e: String) {
    printer.line("refused", &format!("not sent: {e}"), serde_json::json!({ "error": e }));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line of `input` read through a buffer of `chunk` bytes, with
    /// lines of at most `max` bytes, and the most the line buffer held.
    fn lines(input: &[u8], chunk: usize, max: usize) -> (Vec<Line>, usize) {
        let mut lines = Lines::new(std::io::BufReader::with_capacity(chunk, input), max);
        let mut out = Vec::new();
        let mut held = 0;
        while let Some(line) = lines.next().expect("read") {
            out.push(line);
            held = held.max(lines.line.capacity());
        }
        (out, held.max(lines.line.capacity()))
    }

    fn text(t: &str) -> Line {
        Line::Text(t.into())
    }

    #[test]
    fn lines_end_at_a_newline_a_crlf_or_the_end_of_input() {
        for chunk in [1, 3, 8192] {
            let (got, _) = lines(b"one\ntwo\r\n\nlast", chunk, 8);
            assert_eq!(got, [text("one"), text("two"), text(""), text("last")], "chunk {chunk}");
            assert_eq!(lines(b"", chunk, 8).0, []);
            assert_eq!(lines(b"12345678\n", chunk, 8).0, [text("12345678")], "a line of exactly the bound");
        }
    }

    #[test]
    fn a_line_too_long_is_reported_once_and_skipped_without_being_held() {
        let long = [b'x'; 100_000];
        for chunk in [1, 7, 8192] {
            let input = [&b"before\n"[..], &long, b"\nafter\n"].concat();
            let (got, held) = lines(&input, chunk, 16);
            assert_eq!(got, [text("before"), Line::TooLong, text("after")], "chunk {chunk}");
            assert!(held <= 64, "held {held} bytes for a bound of 16");
            // Never ended: reported all the same.
            assert_eq!(lines(&long, chunk, 16).0, [Line::TooLong]);
        }
    }

    #[test]
    fn a_line_not_utf8_is_reported_and_the_next_read() {
        for chunk in [1, 8192] {
            let (got, _) = lines(b"\xff\xfe\nnext\n", chunk, 16);
            assert_eq!(got, [Line::NotUtf8, text("next")], "chunk {chunk}");
        }
    }
}
