//! What the agent's loop and its API share: the node, the live feed, the
//! routing of our queries' answers to whoever asked, the time of each
//! member's last change, and the agent's own counters.

use core::net::SocketAddr;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;
use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use lapswim_core::{Coordinate, Event, MemberState, QueryId};
use lapswim_node::{Member, Node};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::handlers::{Handlers, MemberLine, SelfInfo};

/// Feed items kept for slow readers before they miss some: a reader
/// that falls further behind skips ahead (the page refetches the table).
const FEED_CAPACITY: usize = 1024;

/// Answers to our queries held until whoever asked claims them: a fast
/// answer can arrive before the asking request has its id back.
const MAX_EARLY: usize = 4096;

/// A request from the API that only the agent's loop may carry out.
pub(crate) enum Control {
    /// Leave gracefully, answer, then stop.
    Leave(oneshot::Sender<Result<(), String>>),
}

/// The agent's counters beside the node's.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) suspicions_refuted: AtomicU64,
    pub(crate) handler_runs: AtomicU64,
    pub(crate) handler_failures: AtomicU64,
    pub(crate) handler_timeouts: AtomicU64,
    pub(crate) api_requests: AtomicU64,
    pub(crate) api_refused: AtomicU64,
    pub(crate) snapshot_writes: AtomicU64,
    pub(crate) snapshot_failures: AtomicU64,
    pub(crate) join_attempts: AtomicU64,
}

impl Counters {
    /// Adds one to `counter`.
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Everything the API reads or asks of the agent.
pub(crate) struct Shared {
    pub(crate) node: Node,
    pub(crate) name: String,
    /// The API's bound address, once it is bound.
    pub(crate) api: Mutex<Option<SocketAddr>>,
    pub(crate) token: Option<String>,
    pub(crate) feed: broadcast::Sender<Value>,
    router: Mutex<Router>,
    changes: Mutex<BTreeMap<String, SystemTime>>,
    /// Each member's address and tags as last seen: a member forgotten
    /// at once (pruned) is still handed to handlers as it was.
    known: Mutex<BTreeMap<String, MemberLine>>,
    started: SystemTime,
    pub(crate) tags_file: Option<PathBuf>,
    /// Tag changes one at a time: each reads, changes and writes back the
    /// whole set.
    pub(crate) tags_lock: tokio::sync::Mutex<()>,
    pub(crate) handlers: Handlers,
    pub(crate) control: mpsc::Sender<Control>,
    pub(crate) counters: Counters,
}

impl Shared {
    pub(crate) fn new(
        node: Node,
        token: Option<String>,
        feed: broadcast::Sender<Value>,
        tags_file: Option<PathBuf>,
        handlers: Handlers,
        control: mpsc::Sender<Control>,
        started: SystemTime,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            name: node.name().as_str().to_owned(),
            node,
            api: Mutex::new(None),
            token,
            feed,
            router: Mutex::new(Router::default()),
            changes: Mutex::new(BTreeMap::new()),
            known: Mutex::new(BTreeMap::new()),
            started,
            tags_file,
            tags_lock: tokio::sync::Mutex::new(()),
            handlers,
            control,
            counters: Counters::default(),
        })
    }

    /// A feed for one more reader.
    pub(crate) fn feed_channel(capacity: Option<usize>) -> broadcast::Sender<Value> {
        broadcast::channel(capacity.unwrap_or(FEED_CAPACITY)).0
    }

    /// Notes a member's change at `at`.
    pub(crate) fn changed(&self, member: &str, at: SystemTime) {
        if let Ok(mut c) = self.changes.lock() {
            c.insert(member.to_owned(), at);
        }
    }

    /// When `member` last changed as far as this agent saw (its start, for
    /// members it has known since).
    pub(crate) fn since(&self, member: &str) -> SystemTime {
        self.changes.lock().ok().and_then(|c| c.get(member).copied()).unwrap_or(self.started)
    }

    /// Forgets what was noted of members no longer in the table, so the
    /// maps stay the table's size.
    pub(crate) fn retain_changes(&self, members: &[Member]) {
        let keep = |name: &String| members.iter().any(|m| m.name.as_str() == name);
        if let Ok(mut c) = self.changes.lock()
            && c.len() > members.len()
        {
            c.retain(|name, _| keep(name));
        }
        if let Ok(mut k) = self.known.lock()
            && k.len() > members.len()
        {
            k.retain(|name, _| keep(name));
        }
    }

    /// `name` as a handler sees it: from the table, else as last seen.
    pub(crate) fn member_line(&self, name: &str, found: Option<&Member>) -> Option<MemberLine> {
        let mut known = self.known.lock().ok()?;
        match found {
            Some(m) => {
                let tags = m.tags.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
                let line = MemberLine { name: name.to_owned(), addr: m.addr, tags };
                known.insert(name.to_owned(), line.clone());
                Some(line)
            }
            None => known.get(name).cloned(),
        }
    }

    /// Hands a query's event to whoever asked it.
    pub(crate) fn route(&self, id: QueryId, event: Event) {
        if let Ok(mut r) = self.router.lock() {
            r.route(id, event);
        }
    }

    /// Ends every claim: events were lost (the agent fell behind), so a
    /// query's end may never come; its reader sees the stream end instead.
    pub(crate) fn close_routes(&self) {
        if let Ok(mut r) = self.router.lock() {
            r.waiting.clear();
        }
    }

    /// Claims the events of our query `id`, those already arrived first.
    pub(crate) fn claim(&self, id: QueryId) -> mpsc::UnboundedReceiver<Event> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut r) = self.router.lock() {
            r.claim(id, tx);
        }
        rx
    }

    /// Our own tags, as the node holds them.
    pub(crate) async fn own_tags(&self) -> BTreeMap<String, String> {
        let members = self.node.members().await.unwrap_or_default();
        members.iter().find(|m| m.is_local).map(tags_map).unwrap_or_default()
    }

    /// Tells the handlers what we are now.
    pub(crate) fn set_self(&self, tags: &BTreeMap<String, String>) {
        let tags = tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        self.handlers.set_self(SelfInfo { name: self.name.clone(), tags });
    }
}

/// Our queries' events, by query.
#[derive(Default)]
struct Router {
    waiting: BTreeMap<QueryId, mpsc::UnboundedSender<Event>>,
    early: VecDeque<(QueryId, Event)>,
}

impl Router {
    fn route(&mut self, id: QueryId, event: Event) {
        let done = matches!(event, Event::QueryDone { .. });
        match self.waiting.get(&id) {
            Some(tx) => {
                // A reader gone (its client hung up) ends its claim.
                if tx.send(event).is_err() || done {
                    self.waiting.remove(&id);
                }
            }
            None => {
                if self.early.len() == MAX_EARLY {
                    self.early.pop_front();
                }
                self.early.push_back((id, event));
            }
        }
    }

    fn claim(&mut self, id: QueryId, tx: mpsc::UnboundedSender<Event>) {
        let mut done = false;
        self.early.retain(|(q, e)| {
            if *q != id {
                return true;
            }
            done |= matches!(e, Event::QueryDone { .. });
            let _ = tx.send(e.clone());
            false
        });
        if !done {
            self.waiting.insert(id, tx);
        }
    }
}

/// A member state as the API and the page name it.
pub(crate) fn status(state: MemberState) -> &'static str {
    crate::output::state_word(Some(state))
}

/// A member's tags as a map.
pub(crate) fn tags_map(m: &Member) -> BTreeMap<String, String> {
    m.tags.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

/// A member as the API shows it.
pub(crate) fn member_json(m: &Member, since: SystemTime) -> Value {
    json!({
        "name": m.name.as_str(),
        "addr": m.addr,
        "status": status(m.state),
        "tags": tags_map(m),
        "incarnation": m.incarnation,
        "since": humantime::format_rfc3339_millis(since).to_string(),
        "local": m.is_local,
        "coordinate": coordinate_json(m.coordinate),
        "rtt_ms": m.rtt.map(millis),
    })
}

/// A coordinate as serf's JSON has it (`vec`, `height`, `error`,
/// `adjustment`; distances in seconds), or `null` while none is held.
pub(crate) fn coordinate_json(c: Option<Coordinate>) -> Value {
    // Fixed-point underneath, so always finite: serialising cannot fail.
    serde_json::to_value(c).unwrap_or(Value::Null)
}

/// A round trip in milliseconds, to the microsecond: the core's clock
/// ticks in milliseconds, but an estimate from coordinates is finer.
pub(crate) fn millis(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(id: u64) -> Event {
        Event::QueryDone { id: QueryId::from_raw(id) }
    }

    #[test]
    fn answers_that_arrive_before_the_claim_are_handed_over_in_order() {
        let mut r = Router::default();
        let ack =
            |id: u64| Event::QueryAck { id: QueryId::from_raw(id), from: lapswim_core::MemberName::new("b").unwrap() };
        r.route(QueryId::from_raw(1), ack(1));
        r.route(QueryId::from_raw(2), ack(2));
        let (tx, mut rx) = mpsc::unbounded_channel();
        r.claim(QueryId::from_raw(1), tx);
        r.route(QueryId::from_raw(1), done(1));
        assert_eq!(rx.try_recv().ok(), Some(ack(1)));
        assert_eq!(rx.try_recv().ok(), Some(done(1)));
        assert!(!r.waiting.contains_key(&QueryId::from_raw(1)), "a finished query is forgotten");
        assert_eq!(r.early.len(), 1, "the other query's answer waits for its own claim");
        for i in 0..MAX_EARLY as u64 + 10 {
            r.route(QueryId::from_raw(100 + i), done(100 + i));
        }
        assert_eq!(r.early.len(), MAX_EARLY, "unclaimed answers are bounded");
    }
}
