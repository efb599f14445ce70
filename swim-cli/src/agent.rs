//! `swim agent`: one member on tokio, printing events until Ctrl-C or
//! SIGTERM, then leaving gracefully.

use core::net::SocketAddr;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use clap::Args;
use lapswim_node::{Key, Node, NodeBuilder, NodeError, NodeEvent};

use crate::Preset;
use crate::keys::{KeyringText, Settled};
use crate::output::{describe, meta_bytes, parse_meta, to_json};

/// `swim agent` flags.
#[derive(Args, Debug)]
pub(crate) struct AgentArgs {
    /// UDP address to bind (port 0: the OS picks one, printed at start).
    #[arg(long)]
    bind: SocketAddr,
    /// This member's unique name.
    #[arg(long)]
    name: String,
    /// A member of the cluster to join through (repeat for several).
    #[arg(long = "join", value_name = "ADDR")]
    join: Vec<SocketAddr>,
    /// Metadata gossiped with this member (repeat for several).
    #[arg(long = "meta", value_name = "K=V", value_parser = parse_meta)]
    meta: Vec<(String, String)>,
    /// Configuration preset.
    #[arg(long, value_enum, default_value_t)]
    config: Preset,
    /// Print JSON lines instead of readable ones.
    #[arg(long)]
    json: bool,
    /// Broadcast every line read from stdin to the cluster (each member
    /// prints it once); a line `@NAME TEXT` is sent to NAME alone, over a
    /// stream. Lines that are not UTF-8 or longer than 64 KiB are reported
    /// and skipped.
    #[arg(long)]
    broadcast: bool,
    /// Seal all traffic with this AES-256 key (32 bytes, base64; `swim
    /// keygen` makes one).
    #[arg(long, value_name = "BASE64", conflicts_with = "keyring")]
    key: Option<String>,
    /// Seal all traffic with the keys in FILE (one base64 key per line, the
    /// first the primary, at most 8; a regular file of at most 64 KiB). The
    /// file is watched: replace it (write a copy, then rename it over) to
    /// install, switch to and remove keys while running; a change is
    /// applied whole or not at all (docs/security.md).
    #[arg(long, value_name = "FILE")]
    keyring: Option<PathBuf>,
    /// Cluster label: members with another label are ignored.
    #[arg(long, value_name = "NAME")]
    label: Option<String>,
    /// Record this member's trace to FILE, for `swim replay`
    /// (docs/trace.md).
    #[arg(long, value_name = "FILE")]
    record: Option<std::path::PathBuf>,
}

/// Runs the agent until a signal; `Err` is a one-line reason (with
/// `--json`, also printed as an `error` line).
pub(crate) fn run(args: AgentArgs) -> Result<(), String> {
    init_logging();
    let printer = Printer { json: args.json, name: args.name.clone() };
    let result = match crate::tokio_runtime() {
        Ok(rt) => rt.block_on(agent(args, &printer)),
        Err(e) => Err(Failure { kind: "runtime", message: e }),
    };
    result.map_err(|f| {
        // A program reading the JSON lines learns of the failure there,
        // not only from stderr.
        if printer.json {
            printer.line("error", &f.message, serde_json::json!({ "kind": f.kind, "message": f.message }));
        }
        f.message
    })
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
  environment variable (tracing's EnvFilter syntax), `warn` when unset:
    RUST_LOG=warn          packets refused for a wrong or missing key or
                           another cluster label (one line per reason and
                           10 s, with a count of the others), socket errors
    RUST_LOG=info          also the node's start and stop
    RUST_LOG=debug         also every membership event and refused datagram
    RUST_LOG=trace         also every read of the --keyring file
    RUST_LOG=lapswim_node=debug,warn   debug for one crate, warn elsewhere
  Colour codes only when stderr is a terminal.";

fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Escape codes would end up verbatim in log files and pipes.
    let ansi = std::io::stderr().is_terminal();
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).try_init();
}

struct Printer {
    json: bool,
    name: String,
}

impl Printer {
    fn line(&self, kind: &str, text: &str, mut json: serde_json::Value) {
        let time = now();
        if self.json {
            if let Some(obj) = json.as_object_mut() {
                obj.insert("time".into(), time.into());
                obj.insert("node".into(), self.name.clone().into());
                obj.entry("event").or_insert_with(|| kind.into());
            }
            say!("{json}");
        } else {
            say!("{time} {}: {text}", self.name);
        }
    }

    fn event(&self, event: &NodeEvent) {
        match event {
            NodeEvent::Protocol { event, .. } => self.line("", &describe(event), to_json(event)),
            NodeEvent::Lagged { missed } => self.line(
                "lagged",
                &format!("{missed} events lost: output too slow"),
                serde_json::json!({ "missed": missed }),
            ),
            other => self.line("other", &format!("{other:?}"), serde_json::json!({})),
        }
    }
}

#[expect(clippy::disallowed_methods, reason = "a timestamp for people to read, never a protocol input")]
fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

async fn agent(args: AgentArgs, printer: &Printer) -> Result<(), Failure> {
    let mut config = args.config.config();
    if let Some(label) = &args.label {
        config = config.with_label(
            lapswim_core::Label::new(label)
                .ok_or_else(|| failure("invalid_argument")("a cluster label is at most 255 bytes".to_owned()))?,
        );
    }
    let meta = meta_bytes(&args.meta);
    if meta.len() > config.max_meta_len {
        return Err(failure("invalid_argument")(format!(
            "--meta is {} bytes (KEY=VALUE pairs, one per line), more than the {} bytes a member may carry (max_meta_len)",
            meta.len(),
            config.max_meta_len
        )));
    }
    // A stdin line travels as the user event `line`: name and text share
    // the event limit (a line to one member is a direct message).
    let max_payload = config.max_event_len.saturating_sub(LINE_EVENT.len()).min(config.max_user_payload);
    let mut watch = None;
    let keys = match (&args.key, &args.keyring) {
        (Some(k), _) => vec![crate::keys::parse_key(k).map_err(failure("invalid_argument"))?],
        (None, Some(path)) => {
            let (w, keys) = KeyringWatch::open(path, printer).map_err(failure("keyring"))?;
            watch = Some(w);
            keys
        }
        (None, None) => Vec::new(),
    };
    let mut builder = NodeBuilder::new(&args.name, args.bind).config(config).meta(meta).keys(keys);
    if let Some(path) = &args.record {
        builder = builder.record(path);
    }
    let node = lapswim_tokio::start(builder).map_err(|e| failure("start_failed")(e.to_string()))?;
    let events = node.events();
    // Watched before "started" is printed, so a signal sent by whoever saw
    // that line always finds the agent ready to leave.
    let mut signals = Signals::new().map_err(failure("signals"))?;
    printer.line("started", &format!("listening on {}", node.addr()), serde_json::json!({ "addr": node.addr() }));
    if !args.join.is_empty() {
        let join = node.join(&args.join);
        tokio::select! {
            r = join => { r.map_err(|e| join_failed(&e, &args.join))?; }
            () = signals.recv() => return leave(&node, &events, printer, &mut signals).await,
        }
    }
    let mut lines = args.broadcast.then(stdin_lines);
    let mut poll = tokio::time::interval(KEYRING_POLL);
    loop {
        let line = async {
            match lines.as_mut() {
                Some(l) => l.recv().await,
                None => core::future::pending().await,
            }
        };
        tokio::select! {
            e = events.next() => match e {
                Some(e) => printer.event(&e),
                None => return Err(failure("node_stopped")("the node stopped".into())),
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
            _ = poll.tick(), if watch.is_some() => {
                if let Some(w) = watch.as_mut() {
                    w.reload(&node, printer).await;
                }
            }
            () = signals.recv() => break,
        }
    }
    leave(&node, &events, printer, &mut signals).await
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

/// Leaves gracefully; a second signal while the leave spreads cuts it short.
async fn leave(
    node: &Node,
    events: &lapswim_node::Events,
    printer: &Printer,
    signals: &mut Signals,
) -> Result<(), Failure> {
    printer.line("leaving", "leaving", serde_json::json!({}));
    let result = tokio::select! {
        r = node.leave() => r,
        () = signals.recv() => {
            let text = "second signal: stopping without waiting for the leave to spread";
            printer.line("leave_cut_short", text, serde_json::json!({}));
            Ok(())
        }
    };
    while let Some(e) = events.try_next() {
        printer.event(&e);
    }
    node.shutdown().await;
    result.map_err(|e| failure("leave_failed")(format!("leave failed: {e}")))?;
    printer.line("stopped", "stopped", serde_json::json!({}));
    Ok(())
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
