//! Queries: asked of the cluster by gossip, answered straight to the
//! origin (and through relays), collected until a deadline.
//!
//! Invariants:
//! - a query is raised at most once per member: `(ltime, origin)` on the
//!   query clock's window (see [`Lamport`]);
//! - the origin reports each responder's ack and answer at most once, and
//!   every query it asked ends with exactly one `QueryDone`, at its
//!   deadline;
//! - a member answers a query at most once, before its deadline;
//! - at most `max_open_queries` are open (asked and answering together),
//!   and each open query holds at most `max_members` responders, so memory
//!   is bounded whatever arrives.

pub(crate) mod filter;
pub(crate) mod rate;

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use core::net::SocketAddr;

use crate::api::config::Config;
use crate::api::{QueryId, QueryReport};
use crate::protocol::lamport::Lamport;
use crate::util::name::MemberName;
use crate::util::time::{Duration, Instant};
use crate::util::timers::Timers;

/// The longest a query may stay open, in milliseconds (an hour): longer
/// deadlines from a peer are cut to it.
pub(crate) const MAX_TIMEOUT_MS: u32 = 3_600_000;

/// The most relays an answer may travel through.
pub(crate) const MAX_RELAY_FACTOR: u8 = 5;

/// The prefix of the names of the queries the protocol answers itself.
pub(crate) const INTERNAL_PREFIX: &str = "_swim_";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// Our query of this Lamport time is done.
    Done(u64),
    /// Halfway through our query of this Lamport time: ask again, directly,
    /// the members expected to answer that have not.
    Reask(u64),
    /// The query we were asked under this id can no longer be answered.
    Expire(QueryId),
}

/// What an internal query asks; its answers are collected into a
/// [`QueryReport`] rather than reported one by one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Internal {
    /// Keyring changes and listings.
    Keys,
    /// Reachability: the acks are the answer.
    Ping,
    /// Forgetting a member forced out: the acks say who did.
    Prune,
}

/// A query we asked.
#[derive(Debug)]
pub(crate) struct Asked {
    pub(crate) id: QueryId,
    acks: BTreeSet<MemberName>,
    responses: BTreeSet<MemberName>,
    pub(crate) internal: Option<Internal>,
    /// The members it asks as far as our table knows, when that tells who
    /// will be heard from: an internal query's (all alive when it was
    /// asked), and a query asking for acks (those its filter selects).
    pub(crate) expected: Vec<MemberName>,
    /// For internal queries: what the members answered.
    pub(crate) answers: Vec<(MemberName, Vec<u8>)>,
    /// The question as gossiped, to ask again those not heard from.
    pub(crate) question: Question,
}

/// A question of ours, kept to be asked again (see [`Timer::Reask`]).
#[derive(Debug, Default)]
pub(crate) struct Question {
    pub(crate) name: alloc::string::String,
    pub(crate) payload: Vec<u8>,
    pub(crate) filter: Vec<u8>,
    pub(crate) ack: bool,
    pub(crate) relay_factor: u8,
    pub(crate) timeout_ms: u32,
}

/// The most members a query of ours asks again: a bound on the burst of
/// datagrams at its halfway point.
pub(crate) const MAX_REASKED: usize = 64;

impl Asked {
    /// The members that acknowledged it.
    pub(crate) fn acked(&self) -> impl Iterator<Item = &MemberName> {
        self.acks.iter()
    }

    /// Members it expects to hear from that neither acked nor answered.
    pub(crate) fn silent(&self) -> Vec<MemberName> {
        let heard = |m: &MemberName| self.acks.contains(m) || self.responses.contains(m);
        self.expected.iter().filter(|m| !heard(m)).cloned().collect()
    }
}

/// A query timer that came due.
#[derive(Debug)]
pub(crate) enum Due {
    /// Our query ended.
    Done(Asked),
    /// Our query of this time is halfway: ask the silent again.
    Reask(u64),
    /// Nothing to report.
    Nothing,
}

/// A query we were asked and may still answer.
#[derive(Debug, Clone)]
pub(crate) struct Answering {
    pub(crate) origin: MemberName,
    pub(crate) addr: SocketAddr,
    pub(crate) ltime: u64,
    pub(crate) deadline: Instant,
    pub(crate) relay_factor: u8,
}

/// What became of an arriving answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Heard {
    /// A first ack from this responder: report it.
    Ack(QueryId),
    /// A first answer from this responder: report it.
    Response(QueryId),
    /// Part of an internal query's report, kept.
    Internal,
    /// Heard before (through another path).
    Duplicate,
    /// No query of ours by that time is open: forged, or late.
    Unknown,
}

/// Counters of the query part.
#[derive(Clone, Debug, Default)]
pub(crate) struct Counters {
    pub(crate) asked: u64,
    pub(crate) raised: u64,
    pub(crate) filtered: u64,
    pub(crate) rate_limited: u64,
    pub(crate) unknown_origin: u64,
    pub(crate) dropped_full: u64,
    pub(crate) responses_sent: u64,
    pub(crate) responses_received: u64,
    pub(crate) responses_duplicate: u64,
    pub(crate) responses_unknown: u64,
    pub(crate) relayed: u64,
    pub(crate) reasked: u64,
}

/// Our queries, the queries we may answer, and the query clock.
#[derive(Debug)]
pub(crate) struct Queries {
    pub(crate) clock: Lamport,
    next_id: u64,
    asked: BTreeMap<u64, Asked>,
    answering: BTreeMap<QueryId, Answering>,
    timers: Timers<Timer>,
    pub(crate) rate: rate::RateLimits,
    max_open: usize,
    max_responders: usize,
    pub(crate) counters: Counters,
}

impl Queries {
    pub(crate) fn new(config: &Config) -> Self {
        Queries {
            clock: Lamport::new(config.broadcast_window),
            next_id: 0,
            asked: BTreeMap::new(),
            answering: BTreeMap::new(),
            timers: Timers::default(),
            rate: rate::RateLimits::new(config.query_rate.get()),
            max_open: config.max_open_queries.get() as usize,
            max_responders: config.max_members.get() as usize,
            counters: Counters::default(),
        }
    }

    /// serf's default timeout for a cluster of `n` members.
    pub(crate) fn default_timeout(config: &Config, n: usize) -> Duration {
        let digits = libm::ceil(libm::log10(n as f64 + 1.0)).max(1.0) as u64;
        let ms = config.gossip_interval.as_millis() * u64::from(config.query_timeout_mult.get()) * digits;
        Duration::from_millis(ms.min(u64::from(MAX_TIMEOUT_MS)))
    }

    /// Whether another query may be opened.
    pub(crate) fn has_room(&self) -> bool {
        self.asked.len() + self.answering.len() < self.max_open
    }

    fn fresh_id(&mut self) -> QueryId {
        self.next_id += 1;
        QueryId(self.next_id)
    }

    /// Opens a query of ours stamped `ltime`, done at `deadline`.
    /// Members in `expected` not heard from halfway are asked again.
    pub(crate) fn ask(
        &mut self,
        (ltime, now, deadline): (u64, Instant, Instant),
        internal: Option<Internal>,
        expected: Vec<MemberName>,
        question: Question,
    ) -> QueryId {
        let id = self.fresh_id();
        self.counters.asked += 1;
        let reask = !expected.is_empty();
        let asked = Asked {
            id,
            acks: BTreeSet::new(),
            responses: BTreeSet::new(),
            internal,
            expected,
            answers: Vec::new(),
            question,
        };
        self.asked.insert(ltime, asked);
        self.timers.insert(deadline, Timer::Done(ltime));
        if reask {
            self.timers.insert(now + Duration::from_millis((deadline - now).as_millis() / 2), Timer::Reask(ltime));
        }
        id
    }

    /// Our open query of time `ltime`.
    pub(crate) fn asked(&self, ltime: u64) -> Option<&Asked> {
        self.asked.get(&ltime)
    }

    /// Opens a query we were asked, to answer until its deadline.
    pub(crate) fn answer_later(&mut self, a: Answering) -> QueryId {
        let id = self.fresh_id();
        self.counters.raised += 1;
        self.timers.insert(a.deadline, Timer::Expire(id));
        self.answering.insert(id, a);
        id
    }

    /// Takes the query `id` to answer it now: `None` when it is unknown,
    /// answered already, or past its deadline.
    pub(crate) fn take_answering(&mut self, now: Instant, id: QueryId) -> Option<Answering> {
        let a = self.answering.remove(&id)?;
        self.timers.remove(a.deadline, Timer::Expire(id));
        (now < a.deadline).then_some(a)
    }

    /// An answer (or ack) from `from` to our query of time `ltime`.
    pub(crate) fn hear(&mut self, ltime: u64, from: &MemberName, ack: bool, payload: &[u8]) -> Heard {
        let Some(q) = self.asked.get_mut(&ltime) else {
            self.counters.responses_unknown += 1;
            return Heard::Unknown;
        };
        let set = if ack { &mut q.acks } else { &mut q.responses };
        if set.contains(from) || set.len() >= self.max_responders {
            self.counters.responses_duplicate += 1;
            return Heard::Duplicate;
        }
        set.insert(from.clone());
        self.counters.responses_received += 1;
        if q.internal.is_some() {
            if !ack {
                q.answers.push((from.clone(), payload.to_vec()));
            }
            return Heard::Internal;
        }
        if ack { Heard::Ack(q.id) } else { Heard::Response(q.id) }
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// The next timer due at `now`: a query of ours that is done (removed
    /// and returned), one to ask again, or one we were asked that expired
    /// (forgotten).
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Due> {
        Some(match self.timers.pop_due(now)? {
            Timer::Done(ltime) => self.asked.remove(&ltime).map_or(Due::Nothing, Due::Done),
            Timer::Reask(ltime) => Due::Reask(ltime),
            Timer::Expire(id) => {
                self.answering.remove(&id);
                Due::Nothing
            }
        })
    }

    /// Closes every open query (we are leaving): ours are returned, to be
    /// reported done; the ones we were asked are forgotten.
    pub(crate) fn close_all(&mut self) -> Vec<Asked> {
        self.timers.clear();
        self.answering.clear();
        core::mem::take(&mut self.asked).into_values().collect()
    }

    /// How many queries are open, asked and answering.
    pub(crate) fn open(&self) -> (usize, usize) {
        (self.asked.len(), self.answering.len())
    }
}

/// Starts an internal report from an ended internal query.
pub(crate) fn base_report(q: &Asked) -> QueryReport {
    QueryReport { acked: q.acked().cloned().collect(), silent: q.silent(), ..QueryReport::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> MemberName {
        MemberName::new(s).unwrap()
    }

    #[test]
    fn the_default_timeout_is_serfs() {
        let c = Config::lan();
        assert_eq!(Queries::default_timeout(&c, 1).as_millis(), 200 * 16);
        assert_eq!(Queries::default_timeout(&c, 9).as_millis(), 200 * 16);
        assert_eq!(Queries::default_timeout(&c, 10).as_millis(), 200 * 16 * 2);
        assert_eq!(Queries::default_timeout(&c, 1000).as_millis(), 200 * 16 * 4);
    }

    #[test]
    fn each_responder_is_heard_once_and_unknown_times_are_counted() {
        let mut q = Queries::new(&Config::lan());
        let times = (7, Instant::from_millis(0), Instant::from_millis(100));
        let id = q.ask(times, None, Vec::new(), Question::default());
        assert_eq!(q.hear(7, &name("a"), true, b""), Heard::Ack(id));
        assert_eq!(q.hear(7, &name("a"), true, b""), Heard::Duplicate);
        assert_eq!(q.hear(7, &name("a"), false, b"x"), Heard::Response(id));
        assert_eq!(q.hear(7, &name("a"), false, b"x"), Heard::Duplicate);
        assert_eq!(q.hear(8, &name("a"), false, b"x"), Heard::Unknown);
        assert!(q.pop_due(Instant::from_millis(99)).is_none());
        let Some(Due::Done(done)) = q.pop_due(Instant::from_millis(100)) else { panic!("done") };
        assert_eq!(done.id, id);
        assert_eq!(q.hear(7, &name("b"), false, b"x"), Heard::Unknown, "late");
        assert_eq!(q.counters.responses_unknown, 2);
    }

    #[test]
    fn a_query_is_answered_once_and_only_before_its_deadline() {
        let mut q = Queries::new(&Config::lan());
        let a = Answering {
            origin: name("o"),
            addr: "127.0.0.1:1".parse().unwrap(),
            ltime: 1,
            deadline: Instant::from_millis(50),
            relay_factor: 0,
        };
        let id = q.answer_later(a.clone());
        assert!(q.take_answering(Instant::from_millis(10), id).is_some());
        assert!(q.take_answering(Instant::from_millis(10), id).is_none(), "answered already");
        let id = q.answer_later(a);
        assert!(q.take_answering(Instant::from_millis(50), id).is_none(), "past its deadline");
        assert_eq!(q.open(), (0, 0));
    }
}
