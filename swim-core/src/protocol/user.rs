//! User data: named events on their own Lamport clock, delivered once and
//! repaired by full-state syncs, and the application state those syncs
//! carry.
//!
//! Invariants:
//! - every event we deliver or send is remembered by the clock's window,
//!   so none is delivered twice (see [`Lamport`]);
//! - `recent` holds at most `max_repair_events` events, none older than
//!   `event_repair_time` once pruned: a sync carries only events still in
//!   flight, so a quiet cluster's syncs carry none;
//! - a member that joins skips the events the cluster had before it, once,
//!   unless configured to replay them.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

use crate::api::StreamId;
use crate::api::config::Config;
use crate::protocol::lamport::{Arrival, Lamport};
use crate::util::name::MemberName;
use crate::util::time::{Duration, Instant};
use crate::wire::Message;

/// An event kept to repair members that missed it.
#[derive(Debug)]
struct Recent {
    ltime: u64,
    from: MemberName,
    name: String,
    payload: Vec<u8>,
    coalesce: bool,
    at: Instant,
}

/// The event clock, recent events, and the application state.
#[derive(Debug)]
pub(crate) struct UserData {
    pub(crate) events: Lamport,
    recent: VecDeque<Recent>,
    repair_time: Duration,
    max_recent: usize,
    replay: bool,
    /// Until our first sync or event: whether a join may still skip the
    /// cluster's past.
    fresh: bool,
    /// The join sync whose events are skipped.
    skipping: Option<StreamId>,
    /// Events of the cluster's past skipped at our join.
    pub(crate) skipped: u64,
    pub(crate) app_state: Vec<u8>,
}

impl UserData {
    pub(crate) fn new(config: &Config) -> Self {
        UserData {
            events: Lamport::new(config.broadcast_window),
            recent: VecDeque::new(),
            repair_time: config.event_repair_time,
            max_recent: config.max_repair_events as usize,
            replay: config.replay_events_on_join,
            fresh: true,
            skipping: None,
            skipped: 0,
            app_state: Vec::new(),
        }
    }

    /// Our previous run's event clock, from a snapshot: everything before
    /// it was delivered then.
    pub(crate) fn restore(&mut self, ltime: u64) {
        self.events.skip_before(ltime);
    }

    /// Stamps an event of ours and keeps it for repair.
    pub(crate) fn stamp(&mut self, now: Instant, me: &MemberName, name: &str, payload: &[u8], coalesce: bool) -> u64 {
        self.fresh = false;
        let ltime = self.events.stamp(me);
        self.events.counters.delivered += 1;
        self.keep(now, ltime, me.clone(), name, payload, coalesce);
        ltime
    }

    /// An event arrived (by gossip or in a sync): whether it is new, in
    /// which case it is kept for repair.
    pub(crate) fn arrive(&mut self, now: Instant, msg: &Message<'_>) -> Option<MemberName> {
        let Message::User { ltime, from, name, payload, coalesce } = *msg else { return None };
        let from = MemberName::new(from).ok()?;
        if self.events.arrive(ltime, &from) != Arrival::New {
            return None;
        }
        // An event gossiped to us while our join is under way leaves us
        // fresh: the join's answer still decides what is the past.
        self.keep(now, ltime, from.clone(), name, payload, coalesce);
        Some(from)
    }

    /// An event of the cluster's past, in our join's answer: remembered
    /// (and kept for repair), not delivered.
    pub(crate) fn skip(&mut self, now: Instant, msg: &Message<'_>) {
        if self.arrive(now, msg).is_some() {
            self.events.counters.delivered -= 1;
            self.skipped += 1;
        }
    }

    fn keep(&mut self, now: Instant, ltime: u64, from: MemberName, name: &str, payload: &[u8], coalesce: bool) {
        if self.max_recent == 0 || self.repair_time == Duration::ZERO {
            return;
        }
        if self.recent.len() >= self.max_recent {
            self.recent.pop_front();
        }
        self.recent.push_back(Recent { ltime, from, name: name.into(), payload: payload.to_vec(), coalesce, at: now });
        debug_assert!(self.recent.len() <= self.max_recent, "the repair buffer stays within its bound");
    }

    /// Drops events kept longer than the repair time.
    pub(crate) fn prune(&mut self, now: Instant) {
        while self.recent.front().is_some_and(|r| now.saturating_duration_since(r.at) >= self.repair_time) {
            self.recent.pop_front();
        }
    }

    /// What a sync carries besides the table: our clocks (when either has
    /// moved) and the events still kept for repair.
    pub(crate) fn sync_messages(&self, query_clock: u64) -> impl Iterator<Item = Message<'_>> {
        self.clocks(query_clock).into_iter().chain(self.recent_messages())
    }

    /// Our clocks, for a sync: `None` while both are zero.
    pub(crate) fn clocks(&self, query_clock: u64) -> Option<Message<'static>> {
        let clock = self.events.clock();
        (clock > 0 || query_clock > 0).then_some(Message::Clocks { events: clock, queries: query_clock })
    }

    /// The events kept for repair, as messages.
    pub(crate) fn recent_messages(&self) -> impl Iterator<Item = Message<'_>> {
        self.recent.iter().map(|r| Message::User {
            ltime: r.ltime,
            from: r.from.as_str(),
            name: &r.name,
            payload: &r.payload,
            coalesce: r.coalesce,
        })
    }

    /// A hash of which events are kept for repair (their authors and
    /// Lamport times, in any order): a sync by difference sends them only
    /// when two members' hashes differ. 0 when none are kept.
    pub(crate) fn recent_hash(&self) -> u32 {
        self.recent.iter().fold(0, |acc, r| {
            let h = crate::protocol::summary::name_hash(r.from.as_str());
            acc ^ crate::protocol::summary::event_hash(h, r.ltime)
        })
    }

    /// A peer's event clock arrived in a sync on stream `id`. On the
    /// answer to our first join the cluster's past is skipped (unless we
    /// replay it): the events that answer carries are taken as seen, not
    /// delivered, and anything more than a repair buffer behind the seed's
    /// clock is too old. Events sent while we joined, which the seed had
    /// not seen yet, are above that floor and not in its answer: they
    /// arrive by gossip and are delivered.
    pub(crate) fn on_peer_clock(&mut self, id: StreamId, ltime: u64, our_join: bool) {
        self.events.witness(ltime);
        if our_join && self.fresh && !self.replay {
            self.events.skip_before(ltime.saturating_sub(self.max_recent as u64));
            self.skipping = Some(id);
        }
    }

    /// Whether events arriving on sync stream `id` are the cluster's past,
    /// to take as seen without delivering.
    pub(crate) fn skips(&self, id: StreamId) -> bool {
        self.skipping == Some(id)
    }

    /// A sync completed: from now on a join is a rejoin, which skips
    /// nothing.
    pub(crate) fn synced(&mut self) {
        self.fresh = false;
        self.skipping = None;
    }

    /// How many events are kept for repair.
    pub(crate) fn kept(&self) -> usize {
        self.recent.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(ltime: u64, from: &'static str) -> Message<'static> {
        Message::User { ltime, from, name: "deploy", payload: b"v2", coalesce: true }
    }

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn recent_events_ride_syncs_until_they_age_out() {
        let mut u = UserData::new(&Config::lan());
        assert_eq!(u.sync_messages(0).count(), 0, "a quiet member's sync carries nothing");
        assert!(u.arrive(at(0), &user(5, "a")).is_some());
        assert!(u.arrive(at(0), &user(5, "a")).is_none(), "delivered once");
        let msgs: Vec<_> = u.sync_messages(3).collect();
        assert_eq!(msgs, [Message::Clocks { events: 6, queries: 3 }, user(5, "a")]);
        u.prune(at(Config::lan().event_repair_time.as_millis()));
        assert_eq!(u.sync_messages(0).count(), 1, "only the clocks are left");
    }

    #[test]
    fn a_join_skips_the_past_once_unless_it_replays() {
        let join = StreamId::Outbound(1);
        let mut u = UserData::new(&Config::lan().with_max_repair_events(4));
        u.on_peer_clock(join, 10, true);
        assert!(u.skips(join) && !u.skips(StreamId::Outbound(2)));
        assert!(u.arrive(at(0), &user(5, "a")).is_none(), "more than a buffer behind the seed");
        assert!(u.arrive(at(0), &user(6, "a")).is_some(), "within a buffer: the caller decides");
        u.synced();
        assert!(!u.skips(join));
        u.on_peer_clock(join, 50, true);
        assert!(!u.skips(join), "a rejoin skips nothing");
        assert!(u.arrive(at(0), &user(20, "a")).is_some());

        let mut u = UserData::new(&Config::lan().with_replay_events_on_join(true));
        u.on_peer_clock(join, 1000, true);
        assert!(!u.skips(join));
        assert!(u.arrive(at(0), &user(9, "a")).is_some(), "replayed");
    }

    #[test]
    fn the_repair_buffer_is_bounded() {
        let mut u = UserData::new(&Config::lan().with_max_repair_events(4));
        for t in 0..10 {
            u.arrive(at(t), &user(t, "a"));
        }
        assert_eq!(u.kept(), 4);
    }
}
