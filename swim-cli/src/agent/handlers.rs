//! Event handler scripts for `swim agent` (`--event-handler`), run the way
//! serf's agent runs them so that a script written for serf works
//! unchanged.
//!
//! The contract, as serf's agent keeps it:
//!
//! - A script runs as `/bin/sh -c SCRIPT`, so a handler may be a pipeline.
//! - Its environment is the agent's, plus `SERF_EVENT`, `SERF_SELF_NAME`,
//!   `SERF_SELF_ROLE`, `SERF_TAG_<KEY>` for each of our tags, and
//!   `SERF_USER_EVENT`/`SERF_USER_LTIME` or `SERF_QUERY_NAME`/
//!   `SERF_QUERY_LTIME`. Each is also set under a `SWIM_` prefix, for
//!   scripts written for swim.
//! - Its stdin holds, for a member event, one line per member,
//!   `NAME\tIP\tROLE\tTAGS` (`TAGS` is `k=v,k2=v2`; tabs and newlines in the
//!   name, role and tags are written as `\t` and `\n`); for a user event or
//!   a query, the payload with a newline added when it lacks one (so that
//!   `read` sees its last line).
//! - A query's answer is the script's stdout, sent when the script exits 0
//!   and printed something.
//! - Member events, and user events sent with coalescing, are coalesced over
//!   a window; queries and other user events are handled at once.
//!
//! Beyond serf: each run is killed with its whole process group at a
//! timeout, and only a bounded prefix of its output is kept, so a hung or
//! chatty script can neither stall the agent for good nor fill its memory.

use core::fmt;
use core::future::Future;
use core::net::SocketAddr;
use core::pin::Pin;
use core::str::FromStr;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;
use std::collections::BTreeMap;
use std::io;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;

use lapswim_core::QueryId;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Events waiting for the handlers' task; beyond this, `dispatch` drops
/// them rather than block the agent's event loop (serf's coalescer buffers
/// as many).
const QUEUE: usize = 1024;

/// How long a script's output is still read after its shell has exited: a
/// background process that kept the pipes open would otherwise hold up
/// every later event until the timeout.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// How long to wait for a killed shell to be reaped before leaving it to
/// tokio's orphan reaper.
const REAP_WAIT: Duration = Duration::from_secs(5);

/// The shell serf runs scripts with on Unix.
const SHELL: &str = "/bin/sh";

/// The event types a filter may name, for error messages.
const EXPECTED: &str =
    "member-join, member-leave, member-failed, member-update, member-reap, user, user:NAME, query, query:NAME or *";

/// One event type of a handler's filter.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Filter {
    /// `*`: every event.
    Any,
    /// One kind of member event.
    Member(MemberEvent),
    /// User events: all of them, or those of one name.
    User(Option<String>),
    /// Queries: all of them, or those of one name.
    Query(Option<String>),
}

impl Filter {
    /// Parses one comma-separated item of a filter, as serf does, except
    /// that an empty name after `user:` or `query:` (which serf reads as
    /// "every name") is refused as the likely typo it is.
    fn parse(item: &str) -> Result<Filter, String> {
        let item = item.trim();
        if item.is_empty() {
            return Err(format!("empty event type in handler filter (expected {EXPECTED})"));
        }
        if item == "*" {
            return Ok(Filter::Any);
        }
        if let Some(kind) = MemberEvent::from_serf(item) {
            return Ok(Filter::Member(kind));
        }
        match item {
            "user" => return Ok(Filter::User(None)),
            "query" => return Ok(Filter::Query(None)),
            _ => {}
        }
        if let Some(name) = item.strip_prefix("user:") {
            return Ok(Filter::User(Some(Filter::name(name, "user")?)));
        }
        if let Some(name) = item.strip_prefix("query:") {
            return Ok(Filter::Query(Some(Filter::name(name, "query")?)));
        }
        Err(format!("unknown event type {item:?} (expected {EXPECTED})"))
    }

    /// The name after `user:` or `query:`.
    fn name(name: &str, kind: &str) -> Result<String, String> {
        let name = name.trim();
        if name.is_empty() {
            return Err(format!("`{kind}:` needs an event name (write `{kind}` for all of them)"));
        }
        Ok(name.to_owned())
    }

    /// Whether this filter selects `target`.
    fn selects(&self, target: Target<'_>) -> bool {
        match (self, target) {
            (Filter::Any, _) => true,
            (Filter::Member(want), Target::Member(kind)) => *want == kind,
            (Filter::User(want), Target::User(name)) | (Filter::Query(want), Target::Query(name)) => {
                want.as_deref().is_none_or(|want| want == name)
            }
            _ => false,
        }
    }
}

/// What a filter is matched against.
#[derive(Clone, Copy, Debug)]
enum Target<'a> {
    /// A member event of this kind.
    Member(MemberEvent),
    /// A user event of this name.
    User(&'a str),
    /// A query of this name.
    Query(&'a str),
}

/// `--event-handler [FILTER=]SCRIPT`, parsed. FILTER is a comma list of
/// `member-join`, `member-leave`, `member-failed`, `member-update`,
/// `member-reap`, `user`, `user:NAME`, `query`, `query:NAME`, `*` (the
/// default when absent).
///
/// As in serf, the first `=` ends the filter: a script that itself holds a
/// `=` needs one in front (`*=FOO=1 ./run.sh`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HandlerSpec {
    /// Any of these selects an event for the script.
    filters: Vec<Filter>,
    /// Run with `/bin/sh -c`.
    script: String,
}

impl FromStr for HandlerSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (filter, script) = s.split_once('=').unwrap_or(("", s));
        if script.trim().is_empty() {
            return Err("empty handler script".to_owned());
        }
        let filters = if filter.trim().is_empty() {
            vec![Filter::Any]
        } else {
            filter.split(',').map(Filter::parse).collect::<Result<_, _>>()?
        };
        Ok(HandlerSpec { filters, script: script.to_owned() })
    }
}

impl HandlerSpec {
    /// The script, as given (for logs).
    pub(crate) fn script(&self) -> &str {
        &self.script
    }

    /// Whether the script runs for `target`.
    fn selects(&self, target: Target<'_>) -> bool {
        self.filters.iter().any(|f| f.selects(target))
    }

    /// Whether the script might run for `event`. A member event is kept if
    /// the script takes any member event: coalescing may turn it into
    /// another kind before it runs.
    fn may_select(&self, event: &HandlerEvent) -> bool {
        match event {
            HandlerEvent::Member { .. } => self.filters.iter().any(|f| matches!(f, Filter::Any | Filter::Member(_))),
            HandlerEvent::User { name, .. } => self.selects(Target::User(name)),
            HandlerEvent::Query { name, .. } => self.selects(Target::Query(name)),
        }
    }
}

/// What the agent knows of itself, for `SERF_SELF_NAME`, `SERF_SELF_ROLE`
/// and `SERF_TAG_*`.
#[derive(Clone, Debug, Default)]
pub(crate) struct SelfInfo {
    /// Our member name.
    pub(crate) name: String,
    /// Our tags; `role` is also `SERF_SELF_ROLE`.
    pub(crate) tags: Vec<(String, String)>,
}

/// One member line for member events.
#[derive(Clone, Debug)]
pub(crate) struct MemberLine {
    /// The member's name.
    pub(crate) name: String,
    /// Its address; serf's line holds the IP alone.
    pub(crate) addr: SocketAddr,
    /// Its tags; `role` is also the line's third field.
    pub(crate) tags: Vec<(String, String)>,
}

/// The kinds of member event, each run as serf names it (`member-join`…).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum MemberEvent {
    /// A member joined (or came back).
    Join,
    /// A member left gracefully.
    Leave,
    /// A member was declared dead.
    Failed,
    /// A member's address or tags changed.
    Update,
    /// A dead or departed member was forgotten.
    Reap,
}

impl MemberEvent {
    /// Every kind, in the order a coalesced window runs them.
    const ALL: [MemberEvent; 5] =
        [MemberEvent::Join, MemberEvent::Leave, MemberEvent::Failed, MemberEvent::Update, MemberEvent::Reap];

    /// serf's name, the value of `SERF_EVENT`.
    fn serf_name(self) -> &'static str {
        match self {
            MemberEvent::Join => "member-join",
            MemberEvent::Leave => "member-leave",
            MemberEvent::Failed => "member-failed",
            MemberEvent::Update => "member-update",
            MemberEvent::Reap => "member-reap",
        }
    }

    /// The kind serf names `name`.
    fn from_serf(name: &str) -> Option<MemberEvent> {
        MemberEvent::ALL.into_iter().find(|kind| kind.serf_name() == name)
    }
}

/// An event for the handlers.
#[derive(Clone, Debug)]
pub(crate) enum HandlerEvent {
    /// Something happened to a member.
    Member {
        /// What happened.
        kind: MemberEvent,
        /// To whom.
        member: MemberLine,
    },
    /// A user event.
    User {
        /// Its name (`SERF_USER_EVENT`).
        name: String,
        /// Its payload (stdin).
        payload: Vec<u8>,
        /// Its Lamport time (`SERF_USER_LTIME`); coalescing keeps the
        /// highest.
        ltime: u64,
        /// Whether events of this name may be coalesced.
        coalesce: bool,
    },
    /// A query for us: a script that exits 0 answers it with its stdout.
    Query {
        /// Where the answer goes.
        id: QueryId,
        /// Its name (`SERF_QUERY_NAME`).
        name: String,
        /// Its payload (stdin).
        payload: Vec<u8>,
        /// Its Lamport time (`SERF_QUERY_LTIME`).
        ltime: u64,
    },
}

/// How scripts are run.
#[derive(Clone, Debug)]
pub(crate) struct HandlerSettings {
    /// A run still going after this is killed, with its process group
    /// (serf has no limit; a hung script would stall every later event).
    pub(crate) timeout: Duration,
    /// How much of stdout, and of stderr, is kept; the rest is read and
    /// thrown away.
    pub(crate) max_output: usize,
    /// A coalescing window closes this long after its first event at the
    /// latest (serf's agent: 3 s); zero turns coalescing off.
    pub(crate) coalesce_period: Duration,
    /// A coalescing window closes once no event came for this long (serf's
    /// agent: 1 s).
    pub(crate) quiescent_period: Duration,
}

impl Default for HandlerSettings {
    fn default() -> Self {
        HandlerSettings {
            timeout: Duration::from_secs(30),
            max_output: 64 * 1024,
            coalesce_period: Duration::from_secs(3),
            quiescent_period: Duration::from_secs(1),
        }
    }
}

/// What a finished run reports (for the agent's log, metrics and output).
#[derive(Clone, Debug)]
pub(crate) struct HandlerRun {
    /// The script, as given.
    pub(crate) script: String,
    /// `SERF_EVENT`: `member-join`…, `user` or `query`.
    pub(crate) event: String,
    /// How it ended.
    pub(crate) outcome: RunOutcome,
    /// The first `max_output` bytes of its stdout.
    pub(crate) stdout: Vec<u8>,
    /// The first `max_output` bytes of its stderr.
    pub(crate) stderr: Vec<u8>,
    /// Whether either stream printed more than was kept.
    pub(crate) truncated: bool,
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RunOutcome {
    /// The shell exited with this code (127: the script was not found).
    Exited(i32),
    /// The shell was killed by a signal, not by us.
    Signalled,
    /// It outlived the timeout and was killed with its process group.
    TimedOut,
    /// The shell could not be started, or (rarely) its end could not be
    /// observed: the OS error.
    NotStarted(String),
}

impl fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunOutcome::Exited(code) => write!(f, "exited with {code}"),
            RunOutcome::Signalled => f.write_str("killed by a signal"),
            RunOutcome::TimedOut => f.write_str("timed out and killed"),
            RunOutcome::NotStarted(error) => write!(f, "not started: {error}"),
        }
    }
}

/// Where a query's answer goes: implemented by the agent for the Node
/// (`node.respond`), by tests with a channel.
pub(crate) trait Responder: Send + Sync + 'static {
    /// Sends `payload` as our answer to query `id`.
    fn respond(&self, id: QueryId, payload: Vec<u8>) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>>;
}

/// The handlers' task handle. [`Handlers::start`] spawns (on the current
/// tokio runtime) one task that takes events in order and runs matching
/// scripts one at a time, in order, as serf does; [`Handlers::dispatch`]
/// never blocks the caller. Dropping the handle lets the task finish: it
/// runs what is queued and what is waiting in a coalescing window, then
/// ends.
pub(crate) struct Handlers {
    /// The task's queue; `None` when no handler is configured.
    queue: Option<mpsc::Sender<HandlerEvent>>,
    /// The handlers, to drop at once the events none of them wants.
    specs: Arc<[HandlerSpec]>,
    /// Our name and tags, read by the task at each event.
    me: watch::Sender<SelfInfo>,
    /// Events dropped for a full (or gone) queue.
    dropped: AtomicU64,
}

impl Handlers {
    /// Starts the handlers' task (none if `specs` is empty). Must be called
    /// within a tokio runtime. Every run is reported on `runs`.
    pub(crate) fn start(
        specs: Vec<HandlerSpec>,
        me: SelfInfo,
        settings: HandlerSettings,
        responder: Arc<dyn Responder>,
        runs: mpsc::UnboundedSender<HandlerRun>,
    ) -> Handlers {
        let specs: Arc<[HandlerSpec]> = specs.into();
        let (me, me_rx) = watch::channel(me);
        let queue = if specs.is_empty() {
            None
        } else {
            let (tx, rx) = mpsc::channel(QUEUE);
            let worker = Worker {
                specs: Arc::clone(&specs),
                me: me_rx,
                settings,
                responder,
                runs,
                members: MemberWindow::default(),
                users: UserWindow::default(),
            };
            tokio::spawn(worker.run(rx));
            Some(tx)
        };
        Handlers { queue, specs, me, dropped: AtomicU64::new(0) }
    }

    /// Queues `event` for the handlers that want it, without waiting: when
    /// the queue is full the event is dropped and counted.
    pub(crate) fn dispatch(&self, event: HandlerEvent) {
        let Some(queue) = &self.queue else { return };
        if !self.specs.iter().any(|spec| spec.may_select(&event)) {
            return;
        }
        if queue.try_send(event).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Replaces our name and tags, for the events handled from now on.
    pub(crate) fn set_self(&self, me: SelfInfo) {
        self.me.send_replace(me);
    }

    /// How many events were dropped for a full queue.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Whether no handler is configured (then `dispatch` does nothing).
    pub(crate) fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }
}

/// One unit of work for the scripts: what a run's environment and stdin are
/// made from.
#[derive(Debug)]
enum Job {
    /// Members that share an event kind (several when coalesced).
    Members {
        /// What happened to them.
        kind: MemberEvent,
        /// To whom.
        members: Vec<MemberLine>,
    },
    /// A user event.
    User {
        /// Its name.
        name: String,
        /// Its payload.
        payload: Vec<u8>,
        /// Its Lamport time.
        ltime: u64,
    },
    /// A query.
    Query {
        /// Where the answer goes.
        id: QueryId,
        /// Its name.
        name: String,
        /// Its payload.
        payload: Vec<u8>,
        /// Its Lamport time.
        ltime: u64,
    },
}

impl Job {
    /// What filters match.
    fn target(&self) -> Target<'_> {
        match self {
            Job::Members { kind, .. } => Target::Member(*kind),
            Job::User { name, .. } => Target::User(name),
            Job::Query { name, .. } => Target::Query(name),
        }
    }

    /// `SERF_EVENT`.
    fn event_name(&self) -> &'static str {
        match self {
            Job::Members { kind, .. } => kind.serf_name(),
            Job::User { .. } => "user",
            Job::Query { .. } => "query",
        }
    }

    /// The script's stdin, in serf's format.
    fn stdin(&self) -> Vec<u8> {
        match self {
            Job::Members { members, .. } => {
                let mut out = String::new();
                for m in members {
                    let tags = m.tags.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
                    out.push_str(&format!(
                        "{}\t{}\t{}\t{}\n",
                        clean(&m.name),
                        m.addr.ip(),
                        clean(role(&m.tags)),
                        clean(&tags)
                    ));
                }
                out.into_bytes()
            }
            Job::User { payload, .. } | Job::Query { payload, .. } => {
                let mut out = payload.clone();
                if out.last().is_some_and(|&b| b != b'\n') {
                    out.push(b'\n');
                }
                out
            }
        }
    }

    /// The variables serf sets for this event, each also under `SWIM_`,
    /// and the event-specific names left unset: an agent started from a
    /// handler must not pass on its parent's `SERF_USER_EVENT` to a member
    /// event.
    fn environment(&self, me: &SelfInfo) -> (Vec<(String, String)>, Vec<String>) {
        let mut env = Vec::new();
        let mut set = |key: &str, value: &str| {
            for prefix in ["SERF_", "SWIM_"] {
                env.push((format!("{prefix}{key}"), value.to_owned()));
            }
        };
        set("EVENT", self.event_name());
        set("SELF_NAME", &me.name);
        set("SELF_ROLE", role(&me.tags));
        for (key, value) in &me.tags {
            set(&format!("TAG_{}", env_key(key)), value);
        }
        let specific: &[&str] = match self {
            Job::Members { .. } => &[],
            Job::User { name, ltime, .. } => {
                set("USER_EVENT", name);
                set("USER_LTIME", &ltime.to_string());
                &["USER_EVENT", "USER_LTIME"]
            }
            Job::Query { name, ltime, .. } => {
                set("QUERY_NAME", name);
                set("QUERY_LTIME", &ltime.to_string());
                &["QUERY_NAME", "QUERY_LTIME"]
            }
        };
        let unset = ["USER_EVENT", "USER_LTIME", "QUERY_NAME", "QUERY_LTIME"]
            .into_iter()
            .filter(|key| !specific.contains(key))
            .flat_map(|key| ["SERF_", "SWIM_"].map(|prefix| format!("{prefix}{key}")))
            .collect();
        (env, unset)
    }
}

/// The `role` tag, empty when there is none.
fn role(tags: &[(String, String)]) -> &str {
    tags.iter().find(|(k, _)| k == "role").map_or("", |(_, v)| v)
}

/// A field of a member line, with tabs and newlines escaped so that the
/// line keeps its four fields.
fn clean(field: &str) -> String {
    field.replace('\t', "\\t").replace('\n', "\\n")
}

/// A tag key as serf names its variable: upper-cased, with every character
/// outside `[A-Z0-9_]` turned into `_` (one per character, as serf's
/// per-rune replacement does).
fn env_key(key: &str) -> String {
    key.chars()
        .map(|c| {
            let mut upper = c.to_uppercase();
            match (upper.next(), upper.next()) {
                (Some(u), None) if u.is_ascii_uppercase() || u.is_ascii_digit() || u == '_' => u,
                _ => '_',
            }
        })
        .collect()
}

/// A coalescing window: open from its first event until the coalescing
/// period has passed since it, or the quiescent period since its last.
#[derive(Clone, Copy, Debug)]
struct Window {
    /// When its first event came.
    first: Instant,
    /// When its latest event came.
    last: Instant,
}

impl Window {
    /// Opens `window`, or extends it, for an event at `now`.
    fn touch(window: &mut Option<Window>, now: Instant) {
        match window {
            Some(w) => w.last = now,
            None => *window = Some(Window { first: now, last: now }),
        }
    }

    /// When it closes.
    fn closes(&self, settings: &HandlerSettings) -> Instant {
        (self.first + settings.coalesce_period).min(self.last + settings.quiescent_period)
    }
}

/// Member events waiting for their window to close.
#[derive(Debug, Default)]
struct MemberWindow {
    /// Open while events wait.
    window: Option<Window>,
    /// The latest event of each member, in the order members first came.
    pending: Vec<(MemberEvent, MemberLine)>,
    /// Where each member is in `pending`.
    index: BTreeMap<String, usize>,
    /// The last event delivered for each member: as serf's coalescer does,
    /// a member whose window ends where the last one did (the same kind;
    /// for an update, the same address and tags too) is not reported again.
    delivered: BTreeMap<String, (MemberEvent, MemberLine)>,
}

impl MemberWindow {
    /// Takes `member`'s event, replacing any it had in this window.
    fn add(&mut self, kind: MemberEvent, member: MemberLine, now: Instant) {
        Window::touch(&mut self.window, now);
        match self.index.get(&member.name) {
            Some(&at) => self.pending[at] = (kind, member),
            None => {
                self.index.insert(member.name.clone(), self.pending.len());
                self.pending.push((kind, member));
            }
        }
    }

    /// Closes the window: one job per kind, with all its members.
    fn close(&mut self) -> Vec<Job> {
        self.window = None;
        self.index.clear();
        let mut by_kind: [Vec<MemberLine>; 5] = Default::default();
        for (kind, member) in core::mem::take(&mut self.pending) {
            let repeated = self.delivered.get(&member.name).is_some_and(|(last, was)| {
                *last == kind && (kind != MemberEvent::Update || (was.addr == member.addr && was.tags == member.tags))
            });
            if repeated {
                continue;
            }
            // A reaped member is gone for good: forgetting it keeps this map
            // from growing with every name the cluster ever had.
            if kind == MemberEvent::Reap {
                self.delivered.remove(&member.name);
            } else {
                self.delivered.insert(member.name.clone(), (kind, member.clone()));
            }
            if let Some(at) = MemberEvent::ALL.iter().position(|&k| k == kind) {
                by_kind[at].push(member);
            }
        }
        MemberEvent::ALL
            .into_iter()
            .zip(by_kind)
            .filter(|(_, members)| !members.is_empty())
            .map(|(kind, members)| Job::Members { kind, members })
            .collect()
    }
}

/// Coalescible user events waiting for their window to close.
#[derive(Debug, Default)]
struct UserWindow {
    /// Open while events wait.
    window: Option<Window>,
    /// Per name, in the order names first came: the highest Lamport time
    /// seen and the payloads of every event with it (serf keeps them all,
    /// as events of one time from different senders are distinct).
    pending: Vec<(String, u64, Vec<Vec<u8>>)>,
    /// Where each name is in `pending`.
    index: BTreeMap<String, usize>,
}

impl UserWindow {
    /// Takes a user event, keeping only the latest of its name.
    fn add(&mut self, name: String, payload: Vec<u8>, ltime: u64, now: Instant) {
        Window::touch(&mut self.window, now);
        match self.index.get(&name) {
            Some(&at) => {
                let (_, latest, payloads) = &mut self.pending[at];
                if ltime > *latest {
                    *latest = ltime;
                    *payloads = vec![payload];
                } else if ltime == *latest {
                    payloads.push(payload);
                }
            }
            None => {
                self.index.insert(name.clone(), self.pending.len());
                self.pending.push((name, ltime, vec![payload]));
            }
        }
    }

    /// Closes the window: the surviving events, in order of name.
    fn close(&mut self) -> Vec<Job> {
        self.window = None;
        self.index.clear();
        core::mem::take(&mut self.pending)
            .into_iter()
            .flat_map(|(name, ltime, payloads)| {
                payloads.into_iter().map(move |payload| Job::User { name: name.clone(), payload, ltime })
            })
            .collect()
    }
}

/// The handlers' task.
struct Worker {
    /// The handlers, in the order they run for an event.
    specs: Arc<[HandlerSpec]>,
    /// Our name and tags.
    me: watch::Receiver<SelfInfo>,
    /// How scripts are run.
    settings: HandlerSettings,
    /// Where query answers go.
    responder: Arc<dyn Responder>,
    /// Where each run is reported.
    runs: mpsc::UnboundedSender<HandlerRun>,
    /// Member events being coalesced.
    members: MemberWindow,
    /// User events being coalesced.
    users: UserWindow,
}

impl Worker {
    /// Takes events until the handle is dropped, then runs what is left.
    async fn run(mut self, mut queue: mpsc::Receiver<HandlerEvent>) {
        loop {
            // A window that closed while a script ran is run before more
            // events are taken, so a steady stream of events cannot hold it
            // open.
            let now = Instant::now();
            let members_close = self.members.window.map(|w| w.closes(&self.settings));
            let users_close = self.users.window.map(|w| w.closes(&self.settings));
            if members_close.is_some_and(|at| at <= now) {
                let jobs = self.members.close();
                self.handle_all(jobs).await;
                continue;
            }
            if users_close.is_some_and(|at| at <= now) {
                let jobs = self.users.close();
                self.handle_all(jobs).await;
                continue;
            }
            let next = match (members_close, users_close) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let event = match next {
                Some(at) => tokio::select! {
                    event = queue.recv() => event,
                    () = tokio::time::sleep_until(at) => continue,
                },
                None => queue.recv().await,
            };
            let Some(event) = event else { break };
            self.accept(event).await;
        }
        let jobs = self.members.close();
        self.handle_all(jobs).await;
        let jobs = self.users.close();
        self.handle_all(jobs).await;
    }

    /// Runs `event` now, or puts it in its window.
    async fn accept(&mut self, event: HandlerEvent) {
        let coalescing = !self.settings.coalesce_period.is_zero();
        let now = Instant::now();
        match event {
            HandlerEvent::Member { kind, member } if coalescing => self.members.add(kind, member, now),
            HandlerEvent::Member { kind, member } => self.handle(Job::Members { kind, members: vec![member] }).await,
            HandlerEvent::User { name, payload, ltime, coalesce: true } if coalescing => {
                self.users.add(name, payload, ltime, now);
            }
            HandlerEvent::User { name, payload, ltime, coalesce: _ } => {
                self.handle(Job::User { name, payload, ltime }).await;
            }
            HandlerEvent::Query { id, name, payload, ltime } => {
                self.handle(Job::Query { id, name, payload, ltime }).await;
            }
        }
    }

    /// Runs `jobs` in order.
    async fn handle_all(&mut self, jobs: Vec<Job>) {
        for job in jobs {
            self.handle(job).await;
        }
    }

    /// Runs every matching script for `job`, one after the other.
    async fn handle(&mut self, job: Job) {
        let me = self.me.borrow().clone();
        let (env, unset) = job.environment(&me);
        let input = job.stdin();
        let specs = Arc::clone(&self.specs);
        for spec in specs.iter().filter(|spec| spec.selects(job.target())) {
            let mut command = shell_command(&spec.script);
            command.envs(env.iter().map(|(k, v)| (k, v)));
            for key in &unset {
                command.env_remove(key);
            }
            let run = execute(command, input.clone(), &self.settings).await;
            if let Job::Query { id, name, .. } = &job
                && run.outcome == RunOutcome::Exited(0)
                && !run.stdout.is_empty()
                && let Err(error) = self.responder.respond(*id, run.stdout.clone()).await
            {
                tracing::warn!(query = %name, script = %spec.script, %error, "could not send the handler's answer");
            }
            let _ = self.runs.send(HandlerRun {
                script: spec.script.clone(),
                event: job.event_name().to_owned(),
                outcome: run.outcome,
                stdout: run.stdout,
                stderr: run.stderr,
                truncated: run.truncated,
            });
        }
    }
}

/// `/bin/sh -c SCRIPT`, as serf runs it.
fn shell_command(script: &str) -> Command {
    let mut command = Command::new(SHELL);
    command.arg("-c").arg(script);
    command
}

/// How one run went.
#[derive(Debug)]
struct Execution {
    /// How it ended.
    outcome: RunOutcome,
    /// Its stdout, capped.
    stdout: Vec<u8>,
    /// Its stderr, capped.
    stderr: Vec<u8>,
    /// Whether either was capped.
    truncated: bool,
}

/// A stream's output, keeping at most `cap` bytes.
#[derive(Debug)]
struct Capped {
    /// What was kept.
    kept: Vec<u8>,
    /// How much may be kept.
    cap: usize,
    /// Whether anything was thrown away.
    truncated: bool,
}

impl Capped {
    /// Nothing yet.
    fn new(cap: usize) -> Self {
        Capped { kept: Vec::new(), cap, truncated: false }
    }

    /// Keeps what fits of `chunk`.
    fn take(&mut self, chunk: &[u8]) {
        let fits = self.cap.saturating_sub(self.kept.len()).min(chunk.len());
        self.kept.extend_from_slice(&chunk[..fits]);
        self.truncated |= fits < chunk.len();
    }
}

/// Reads from `pipe`, or waits forever when it is closed (a disabled
/// `select!` branch still builds its future).
async fn read_from<R: AsyncRead + Unpin>(pipe: Option<&mut R>, buf: &mut [u8]) -> io::Result<usize> {
    match pipe {
        Some(pipe) => pipe.read(buf).await,
        None => core::future::pending().await,
    }
}

/// The outcome an exit status stands for.
fn outcome_of(status: io::Result<ExitStatus>) -> RunOutcome {
    match status {
        Ok(status) => status.code().map_or(RunOutcome::Signalled, RunOutcome::Exited),
        Err(error) => RunOutcome::NotStarted(format!("lost track of the script: {error}")),
    }
}

/// Runs `command` with `input` on stdin, reading its output as it comes
/// (a script blocked on a full pipe would never exit) and killing its
/// process group at the timeout.
async fn execute(mut command: Command, input: Vec<u8>, settings: &HandlerSettings) -> Execution {
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    // Its own group, so that a timeout reaches whatever the script started.
    #[cfg(unix)]
    command.process_group(0);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            return Execution {
                outcome: RunOutcome::NotStarted(error.to_string()),
                stdout: Vec::new(),
                stderr: Vec::new(),
                truncated: false,
            };
        }
    };
    let mut group = Group(child.id());
    let deadline = Instant::now() + settings.timeout;
    let stdin = child.stdin.take();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    // A script need not read its stdin: a write that fails because it
    // exited is no error.
    let feed = async move {
        if let Some(mut stdin) = stdin {
            let _ = stdin.write_all(&input).await;
            let _ = stdin.shutdown().await;
        }
    };
    let mut feed = core::pin::pin!(feed);
    let mut fed = false;
    let (mut out, mut err) = (Capped::new(settings.max_output), Capped::new(settings.max_output));
    let (mut out_buf, mut err_buf) = (vec![0; 16 * 1024], vec![0; 16 * 1024]);
    let mut status: Option<io::Result<ExitStatus>> = None;
    let mut drain_until = deadline;
    loop {
        if status.is_some() && stdout.is_none() && stderr.is_none() {
            break;
        }
        tokio::select! {
            read = read_from(stdout.as_mut(), &mut out_buf), if stdout.is_some() => match read {
                Ok(n) if n > 0 => out.take(&out_buf[..n]),
                _ => stdout = None,
            },
            read = read_from(stderr.as_mut(), &mut err_buf), if stderr.is_some() => match read {
                Ok(n) if n > 0 => err.take(&err_buf[..n]),
                _ => stderr = None,
            },
            () = &mut feed, if !fed => fed = true,
            exit = child.wait(), if status.is_none() => {
                status = Some(exit);
                drain_until = deadline.min(Instant::now() + DRAIN_GRACE);
            }
            () = tokio::time::sleep_until(drain_until) => break,
        }
    }
    let outcome = match status {
        Some(status) => outcome_of(status),
        None => {
            kill_group(&mut child).await;
            RunOutcome::TimedOut
        }
    };
    group.0 = None;
    let truncated = out.truncated || err.truncated;
    Execution { outcome, stdout: out.kept, stderr: err.kept, truncated }
}

/// A running script's process group, killed if the run is abandoned (the
/// agent stopping drops the handlers' task mid-run): whatever the script
/// started must not outlive the agent. A run that ends normally clears it.
struct Group(Option<u32>);

impl Drop for Group {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(pid) = self.0.take() {
            let _ = std::process::Command::new(SHELL)
                .arg("-c")
                .arg(format!("kill -KILL -{pid}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Kills the shell and everything in its process group, then reaps it.
async fn kill_group(child: &mut Child) {
    // The shell leads its own group, so minus its pid names the group. std
    // has no safe way to signal a group and the workspace forbids `unsafe`,
    // so the shell's `kill` builtin does it. The shell is not reaped yet,
    // so the group id cannot have been reused.
    #[cfg(unix)]
    if let Some(pid) = child.id() {
        let _ = Command::new(SHELL)
            .arg("-c")
            .arg(format!("kill -KILL -{pid}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
    }
    let _ = child.start_kill();
    let _ = tokio::time::timeout(REAP_WAIT, child.wait()).await;
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};

    use super::*;

    /// A scratch directory, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("swim-handlers-{}-{tag}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        /// Writes an executable script `name`.
        fn script(&self, name: &str, text: &str) -> PathBuf {
            let path = self.0.join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            path
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Answers sent, on a channel.
    struct Answers(mpsc::UnboundedSender<(QueryId, Vec<u8>)>);

    impl Responder for Answers {
        fn respond(
            &self,
            id: QueryId,
            payload: Vec<u8>,
        ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
            let sent = self.0.send((id, payload)).map_err(|e| e.to_string());
            Box::pin(core::future::ready(sent))
        }
    }

    /// Handlers under test, with their runs and answers.
    struct Rig {
        handlers: Handlers,
        runs: mpsc::UnboundedReceiver<HandlerRun>,
        answers: mpsc::UnboundedReceiver<(QueryId, Vec<u8>)>,
    }

    impl Rig {
        fn start(specs: &[String], me: SelfInfo, settings: HandlerSettings) -> Rig {
            let specs = specs.iter().map(|s| s.parse().unwrap()).collect();
            let (runs_tx, runs) = mpsc::unbounded_channel();
            let (answers_tx, answers) = mpsc::unbounded_channel();
            let handlers = Handlers::start(specs, me, settings, Arc::new(Answers(answers_tx)), runs_tx);
            Rig { handlers, runs, answers }
        }

        async fn next(&mut self) -> HandlerRun {
            tokio::time::timeout(Duration::from_secs(10), self.runs.recv())
                .await
                .expect("a run within 10 s")
                .expect("the handlers' task is running")
        }

        /// Asserts that no run comes within `wait`.
        async fn none_within(&mut self, wait: Duration) {
            if let Ok(run) = tokio::time::timeout(wait, self.runs.recv()).await {
                panic!("unexpected run: {run:?}");
            }
        }
    }

    /// Settings without coalescing and a timeout no test script reaches.
    fn immediate() -> HandlerSettings {
        HandlerSettings { timeout: Duration::from_secs(5), coalesce_period: Duration::ZERO, ..Default::default() }
    }

    fn me() -> SelfInfo {
        SelfInfo { name: "me".into(), tags: vec![("role".into(), "web".into()), ("dc".into(), "east".into())] }
    }

    fn member(kind: MemberEvent, name: &str) -> HandlerEvent {
        HandlerEvent::Member {
            kind,
            member: MemberLine {
                name: name.into(),
                addr: "10.0.0.1:7946".parse().unwrap(),
                tags: vec![("role".into(), "db".into()), ("dc".into(), "west".into())],
            },
        }
    }

    fn user(name: &str, payload: &str, ltime: u64, coalesce: bool) -> HandlerEvent {
        HandlerEvent::User { name: name.into(), payload: payload.into(), ltime, coalesce }
    }

    fn query(id: u64, name: &str, payload: &str) -> HandlerEvent {
        HandlerEvent::Query { id: QueryId::from_raw(id), name: name.into(), payload: payload.into(), ltime: id + 100 }
    }

    fn text(bytes: &[u8]) -> &str {
        core::str::from_utf8(bytes).unwrap()
    }

    #[test]
    fn filters_parse_like_serf() {
        let spec: HandlerSpec = "member-join,member-failed=./a.sh".parse().unwrap();
        assert_eq!(spec.filters, [Filter::Member(MemberEvent::Join), Filter::Member(MemberEvent::Failed)]);
        assert_eq!(spec.script(), "./a.sh");
        assert!(spec.selects(Target::Member(MemberEvent::Failed)));
        assert!(!spec.selects(Target::Member(MemberEvent::Leave)));
        assert!(!spec.selects(Target::User("deploy")));

        let spec: HandlerSpec = "user:deploy=x".parse().unwrap();
        assert_eq!(spec.filters, [Filter::User(Some("deploy".into()))]);
        assert!(spec.selects(Target::User("deploy")));
        assert!(!spec.selects(Target::User("restart")));
        assert!(!spec.selects(Target::Query("deploy")));

        let spec: HandlerSpec = "query:load=x".parse().unwrap();
        assert_eq!(spec.filters, [Filter::Query(Some("load".into()))]);
        assert!(spec.selects(Target::Query("load")) && !spec.selects(Target::Query("other")));

        let spec: HandlerSpec = "user,query=x".parse().unwrap();
        assert!(spec.selects(Target::User("any")) && spec.selects(Target::Query("any")));
        assert!(!spec.selects(Target::Member(MemberEvent::Join)));

        for all in ["*=x", "x", "=x"] {
            let spec: HandlerSpec = all.parse().unwrap();
            assert_eq!(spec.filters, [Filter::Any], "{all}");
            assert_eq!(spec.script(), "x");
            assert!(spec.selects(Target::Member(MemberEvent::Reap)) && spec.selects(Target::Query("q")));
        }
        // The first `=` ends the filter.
        let spec: HandlerSpec = "*=FOO=1 ./run.sh".parse().unwrap();
        assert_eq!(spec.script(), "FOO=1 ./run.sh");

        let err = "member-jion=./a.sh".parse::<HandlerSpec>().unwrap_err();
        assert!(err.starts_with("unknown event type \"member-jion\""), "{err}");
        assert!(!err.contains('\n'));
        for bad in ["member-join=", "user=  ", ""] {
            assert_eq!(bad.parse::<HandlerSpec>().unwrap_err(), "empty handler script", "{bad:?}");
        }
        let err = "user:=x".parse::<HandlerSpec>().unwrap_err();
        assert!(err.contains("`user:` needs an event name"), "{err}");
        let err = "query:=x".parse::<HandlerSpec>().unwrap_err();
        assert!(err.contains("`query:` needs an event name"), "{err}");
        let err = "member-join,,user=x".parse::<HandlerSpec>().unwrap_err();
        assert!(err.starts_with("empty event type"), "{err}");
    }

    #[test]
    fn tag_keys_become_serf_variable_names() {
        assert_eq!(env_key("role"), "ROLE");
        assert_eq!(env_key("my-key.v2"), "MY_KEY_V2");
        assert_eq!(env_key("été"), "_T_");
    }

    /// A handler written as serf's documentation writes one.
    const SERF_SCRIPT: &str = r#"#!/bin/sh
echo "event=${SERF_EVENT} self=${SERF_SELF_NAME} role=${SERF_SELF_ROLE} dc=${SERF_TAG_DC} ops=${SERF_TAG_ON_CALL}"
echo "swim=${SWIM_EVENT} user=${SERF_USER_EVENT} ltime=${SERF_USER_LTIME}"
while read line; do
    printf 'line: %s\n' "$line"
done
"#;

    #[tokio::test]
    async fn a_serf_handler_runs_unchanged() {
        let dir = Scratch::new("serf");
        let script = dir.script("handler.sh", SERF_SCRIPT);
        let spec = format!("member-join,user={}", script.display());
        let mut rig = Rig::start(&[spec], me(), immediate());

        rig.handlers.dispatch(member(MemberEvent::Join, "alpha"));
        let run = rig.next().await;
        assert_eq!(run.outcome, RunOutcome::Exited(0), "{run:?}");
        assert_eq!(run.event, "member-join");
        assert_eq!(
            text(&run.stdout),
            "event=member-join self=me role=web dc=east ops=\n\
             swim=member-join user= ltime=\n\
             line: alpha\t10.0.0.1\tdb\trole=db,dc=west\n"
        );

        // Not selected: neither a run nor an error.
        rig.handlers.dispatch(member(MemberEvent::Leave, "alpha"));
        let mut tags = me().tags;
        tags.push(("on-call".into(), "ana".into()));
        rig.handlers.set_self(SelfInfo { name: "me".into(), tags });
        rig.handlers.dispatch(user("deploy", "v1.2", 7, false));
        let run = rig.next().await;
        assert_eq!(run.event, "user");
        assert_eq!(
            text(&run.stdout),
            "event=user self=me role=web dc=east ops=ana\n\
             swim=user user=deploy ltime=7\n\
             line: v1.2\n"
        );
        assert!(run.stderr.is_empty() && !run.truncated);
        assert_eq!(rig.handlers.dropped(), 0);
    }

    #[tokio::test]
    async fn a_query_is_answered_only_by_a_script_that_succeeds() {
        let spec =
            r#"query:load=read code; echo "answer $code from $SERF_QUERY_NAME at $SERF_QUERY_LTIME"; exit "$code""#;
        let specs = [spec.to_owned(), "query:silent=true".to_owned()];
        let mut rig = Rig::start(&specs, me(), immediate());
        // Not selected, so the first run is query 1's.
        rig.handlers.dispatch(query(9, "other", "0"));
        rig.handlers.dispatch(query(1, "load", "0"));
        rig.handlers.dispatch(query(2, "load", "1"));
        rig.handlers.dispatch(query(3, "silent", ""));

        let run = rig.next().await;
        assert_eq!((run.event.as_str(), &run.outcome), ("query", &RunOutcome::Exited(0)));
        let (id, answer) = rig.answers.recv().await.unwrap();
        assert_eq!(id, QueryId::from_raw(1));
        assert_eq!(text(&answer), "answer 0 from load at 101\n");

        let run = rig.next().await;
        assert_eq!(run.outcome, RunOutcome::Exited(1));
        assert_eq!(text(&run.stdout), "answer 1 from load at 102\n");
        assert!(rig.answers.try_recv().is_err(), "a failed script must not answer");

        // As in serf, a script that succeeds without output sends no answer.
        let run = rig.next().await;
        assert_eq!((run.outcome, run.stdout.len()), (RunOutcome::Exited(0), 0));
        assert!(rig.answers.try_recv().is_err(), "an empty answer was sent");
    }

    #[tokio::test]
    async fn a_hung_script_is_killed_with_its_group_and_the_next_event_runs() {
        let dir = Scratch::new("hang");
        let pid_file = dir.path().join("sleep.pid");
        let spec = format!(
            r#"*=if [ "$SERF_USER_EVENT" = hang ]; then sleep 100 & echo $! > {}; wait; fi; echo ok"#,
            pid_file.display()
        );
        let settings = HandlerSettings { timeout: Duration::from_millis(300), ..immediate() };
        let mut rig = Rig::start(&[spec], me(), settings);
        let started = Instant::now();
        rig.handlers.dispatch(user("hang", "", 1, false));
        rig.handlers.dispatch(user("next", "", 2, false));

        let run = rig.next().await;
        assert_eq!(run.outcome, RunOutcome::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
        let run = rig.next().await;
        assert_eq!((text(&run.stdout), &run.outcome), ("ok\n", &RunOutcome::Exited(0)));

        // The backgrounded sleep was in the group: it is gone (or a zombie
        // left for whoever reaps orphans here).
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let stat = format!("/proc/{}/stat", pid.trim());
        let alive = || std::fs::read_to_string(&stat).is_ok_and(|s| !s.contains(") Z "));
        let until = Instant::now() + Duration::from_secs(2);
        while alive() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!alive(), "the script's child survived the timeout");
    }

    #[tokio::test]
    async fn megabytes_of_output_are_read_and_dropped() {
        let spec = "head -c 8000000 /dev/zero; echo done >&2".to_owned();
        let mut rig = Rig::start(&[spec], me(), immediate());
        rig.handlers.dispatch(user("flood", "", 1, false));
        let run = rig.next().await;
        assert_eq!(run.outcome, RunOutcome::Exited(0));
        assert_eq!(run.stdout.len(), HandlerSettings::default().max_output);
        assert_eq!(text(&run.stderr), "done\n");
        assert!(run.truncated);
    }

    #[tokio::test]
    async fn a_missing_script_fails_and_the_next_event_still_runs() {
        let dir = Scratch::new("missing");
        let missing = dir.path().join("no-such-handler.sh");
        let specs = [format!("user:first={}", missing.display()), "user:second=echo ok".to_owned()];
        let mut rig = Rig::start(&specs, me(), immediate());
        rig.handlers.dispatch(user("first", "", 1, false));
        rig.handlers.dispatch(user("second", "", 2, false));

        let run = rig.next().await;
        assert_eq!(run.outcome, RunOutcome::Exited(127), "{run:?}");
        assert_eq!(run.script, missing.display().to_string());
        assert!(!run.stderr.is_empty());
        let run = rig.next().await;
        assert_eq!((text(&run.stdout), &run.outcome), ("ok\n", &RunOutcome::Exited(0)));
    }

    #[tokio::test]
    async fn a_shell_that_cannot_start_is_reported() {
        let run = execute(Command::new("/nonexistent/shell"), Vec::new(), &immediate()).await;
        assert!(matches!(run.outcome, RunOutcome::NotStarted(ref e) if !e.is_empty()), "{run:?}");
    }

    #[tokio::test]
    async fn member_events_coalesce_per_member() {
        let settings = HandlerSettings {
            coalesce_period: Duration::from_millis(600),
            quiescent_period: Duration::from_millis(200),
            ..immediate()
        };
        let spec = r#"echo "$SERF_EVENT"; cut -f1"#.to_owned();
        let mut rig = Rig::start(&[spec], me(), settings);
        let started = Instant::now();
        rig.handlers.dispatch(member(MemberEvent::Join, "alpha"));
        rig.handlers.dispatch(member(MemberEvent::Join, "beta"));
        rig.handlers.dispatch(member(MemberEvent::Failed, "alpha"));
        rig.handlers.dispatch(member(MemberEvent::Join, "gamma"));
        rig.handlers.dispatch(member(MemberEvent::Leave, "alpha"));

        let run = rig.next().await;
        assert!(started.elapsed() >= Duration::from_millis(200), "the window closed early");
        assert_eq!(text(&run.stdout), "member-join\nbeta\ngamma\n");
        let run = rig.next().await;
        assert_eq!(text(&run.stdout), "member-leave\nalpha\n");
        rig.none_within(Duration::from_millis(400)).await;

        // As in serf, a member whose event is what was last run for it is
        // not run again.
        rig.handlers.dispatch(member(MemberEvent::Leave, "alpha"));
        rig.handlers.dispatch(member(MemberEvent::Failed, "beta"));
        let run = rig.next().await;
        assert_eq!(text(&run.stdout), "member-failed\nbeta\n");
        rig.none_within(Duration::from_millis(400)).await;
    }

    #[tokio::test]
    async fn coalesced_user_events_keep_the_latest_and_others_go_first() {
        let settings = HandlerSettings {
            coalesce_period: Duration::from_millis(600),
            quiescent_period: Duration::from_millis(300),
            ..immediate()
        };
        let spec = r#"echo "$SERF_EVENT $SERF_USER_EVENT$SERF_QUERY_NAME $SERF_USER_LTIME$SERF_QUERY_LTIME $(cat)""#;
        let mut rig = Rig::start(&[spec.to_owned()], me(), settings);
        rig.handlers.dispatch(user("deploy", "a", 5, true));
        rig.handlers.dispatch(user("deploy", "b", 9, true));
        rig.handlers.dispatch(user("deploy", "c", 7, true));
        rig.handlers.dispatch(user("now", "d", 3, false));
        rig.handlers.dispatch(query(1, "ask", "e"));

        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(String::from_utf8(rig.next().await.stdout).unwrap());
        }
        assert_eq!(seen, ["user now 3 d\n", "query ask 101 e\n", "user deploy 9 b\n"]);
        rig.none_within(Duration::from_millis(400)).await;
    }

    #[tokio::test]
    async fn a_zero_period_turns_coalescing_off() {
        let spec = r#"echo "$SERF_EVENT $SERF_USER_LTIME""#.to_owned();
        let mut rig = Rig::start(&[spec], me(), immediate());
        rig.handlers.dispatch(member(MemberEvent::Join, "alpha"));
        rig.handlers.dispatch(member(MemberEvent::Failed, "alpha"));
        rig.handlers.dispatch(member(MemberEvent::Join, "alpha"));
        rig.handlers.dispatch(user("deploy", "", 2, true));
        rig.handlers.dispatch(user("deploy", "", 1, true));
        let mut seen = Vec::new();
        for _ in 0..5 {
            seen.push(String::from_utf8(rig.next().await.stdout).unwrap());
        }
        assert_eq!(seen, ["member-join \n", "member-failed \n", "member-join \n", "user 2\n", "user 1\n"]);
    }

    #[tokio::test]
    async fn events_are_handled_in_order() {
        let specs = [
            r#"echo "a $SERF_EVENT $SERF_USER_LTIME$SERF_QUERY_LTIME""#.to_owned(),
            r#"user=echo "b $SERF_USER_LTIME""#.to_owned(),
        ];
        let mut rig = Rig::start(&specs, me(), immediate());
        let mut expected = Vec::new();
        for i in 0..6 {
            if i % 2 == 0 {
                rig.handlers.dispatch(user("e", "", i, false));
                expected.push(format!("a user {i}\n"));
                expected.push(format!("b {i}\n"));
            } else {
                rig.handlers.dispatch(query(i, "q", ""));
                expected.push(format!("a query {}\n", i + 100));
            }
        }
        let mut seen = Vec::new();
        for _ in 0..expected.len() {
            seen.push(String::from_utf8(rig.next().await.stdout).unwrap());
        }
        assert_eq!(seen, expected);
    }

    #[tokio::test]
    async fn a_full_queue_drops_and_counts() {
        let mut rig = Rig::start(&["user:go=true".to_owned()], me(), immediate());
        // The task cannot run before this test yields (one thread), so the
        // queue fills: nothing here waits.
        for i in 0..(QUEUE as u64 + 10) {
            rig.handlers.dispatch(user("go", "", i, false));
        }
        // Events no handler wants are not queued, so not dropped either.
        rig.handlers.dispatch(user("other", "", 1, false));
        rig.handlers.dispatch(member(MemberEvent::Join, "alpha"));
        assert_eq!(rig.handlers.dropped(), 10);
        assert!(!rig.handlers.is_empty());
        let first = rig.next().await;
        assert_eq!(first.outcome, RunOutcome::Exited(0));
    }

    #[tokio::test]
    async fn no_handlers_means_nothing_runs() {
        let mut rig = Rig::start(&[], me(), immediate());
        assert!(rig.handlers.is_empty());
        rig.handlers.dispatch(user("go", "", 1, false));
        assert_eq!(rig.handlers.dropped(), 0);
        assert!(rig.runs.recv().await.is_none(), "no task, so the runs channel closes");
    }
}
