//! Queries: asking, raising, answering, relaying and collecting.

use alloc::vec::Vec;
use core::net::SocketAddr;

use rand_core::Rng;

use super::Swim;
use crate::api::{Error, Event, QueryId, QueryOptions};
use crate::protocol::lamport::Arrival;
use crate::protocol::lifecycle::Phase;
use crate::protocol::outbox::Piggyback;
use crate::protocol::queries::filter::{self, Filter};
use crate::protocol::queries::{
    Answering, Due, Heard, INTERNAL_PREFIX, Internal, MAX_REASKED, MAX_RELAY_FACTOR, MAX_TIMEOUT_MS, Queries, Question,
};
use crate::util::name::MemberName;
use crate::util::time::{Duration, Instant};
use crate::wire::Message;
use crate::wire::memberlist::serf_keys::{INTERNAL_PREFIX as SERF_INTERNAL_PREFIX, KeyQuery};

/// A query as it reaches the members it asks (ours included).
#[derive(Clone, Copy)]
pub(super) struct Asking<'a> {
    pub(super) ltime: u64,
    pub(super) origin: &'a str,
    pub(super) addr: SocketAddr,
    pub(super) name: &'a str,
    pub(super) payload: &'a [u8],
    pub(super) filter: &'a [u8],
    pub(super) ack: bool,
    pub(super) relay_factor: u8,
    pub(super) timeout_ms: u32,
}

impl<R: Rng> Swim<R> {
    /// [`Input::Query`](crate::Input::Query) from the application.
    pub(super) fn on_query(
        &mut self,
        now: Instant,
        name: &str,
        payload: &[u8],
        options: &QueryOptions,
    ) -> Result<QueryId, Error> {
        if self.lifecycle.phase() != Phase::Running {
            return Err(Error::Leaving);
        }
        // serf's own names too, in its dialect: serf agents would take
        // such a query for one of theirs.
        let serfs = self.config.serf_wire && name.starts_with(SERF_INTERNAL_PREFIX);
        if name.starts_with(INTERNAL_PREFIX) || serfs || !filter::check(&options.filter) {
            return Err(Error::InvalidQuery);
        }
        let filter = filter::encode(&options.filter);
        if name.len() + payload.len() + filter.len() > self.config.user_limits().1 {
            return Err(Error::TooLarge);
        }
        let timeout = options.timeout.unwrap_or_else(|| Queries::default_timeout(&self.config, self.num_live()));
        if timeout.as_millis() == 0
            || timeout.as_millis() > u64::from(MAX_TIMEOUT_MS)
            || options.relay_factor > MAX_RELAY_FACTOR
        {
            return Err(Error::InvalidQuery);
        }
        let ask = (name, payload, &filter[..], options.request_ack, options.relay_factor);
        self.start_query(now, ask, timeout, None)
    }

    /// Opens a query of ours, gossips it, and asks ourselves.
    pub(super) fn start_query(
        &mut self,
        now: Instant,
        (name, payload, filter, ack, relay_factor): (&str, &[u8], &[u8], bool, u8),
        timeout: Duration,
        internal: Option<Internal>,
    ) -> Result<QueryId, Error> {
        let me = self.membership.local().name.clone();
        if !self.queries.has_room() || !self.queries.rate.allow(now, &me) {
            return Err(Error::Busy);
        }
        self.ensure_started(now);
        let ltime = self.queries.clock.stamp(&me);
        let expected = match internal {
            Some(_) => self.live_names(),
            None if ack => self.selected_names(filter),
            None => Vec::new(),
        };
        let question = Question {
            name: name.into(),
            payload: payload.to_vec(),
            filter: filter.to_vec(),
            ack,
            relay_factor,
            timeout_ms: timeout.as_millis().min(u64::from(MAX_TIMEOUT_MS)) as u32,
        };
        let id = self.queries.ask((ltime, now, now + timeout), internal, expected, question);
        let timeout_ms = timeout.as_millis().min(u64::from(MAX_TIMEOUT_MS)) as u32;
        let addr = self.membership.local().addr;
        let asking = Asking { ltime, origin: me.as_str(), addr, name, payload, filter, ack, relay_factor, timeout_ms };
        self.dissemination.queue_user(&asking.message());
        self.last_query = Some(id);
        // We are asked too: our own answer is kept like anyone's.
        self.raise(now, true, asking);
        Ok(id)
    }

    /// The live members a query's filter selects, ourselves included, as
    /// our table knows their names and tags.
    fn selected_names(&self, filter: &[u8]) -> Vec<MemberName> {
        let Some(f) = Filter::decode(filter) else { return Vec::new() };
        let local = self.membership.local();
        let mut names: Vec<MemberName> = self
            .membership
            .table
            .iter()
            .filter(|(_, m)| m.state.is_live() && f.selects(m.name.as_str(), &m.meta))
            .map(|(_, m)| m.name.clone())
            .collect();
        if f.selects(local.name.as_str(), &local.meta) {
            names.push(local.name.clone());
        }
        names
    }

    /// Halfway through a query of ours: the members expected to answer
    /// that have not are asked again, each with a datagram of its own. A
    /// gossiped question reaches each member with high probability, not
    /// certainty (each member passes it on a bounded number of times, to
    /// random peers); this closes the gap for the members we know to
    /// expect. A member that had it already takes the repeat as a
    /// duplicate.
    fn reask(&mut self, ltime: u64) {
        let me = self.membership.local().name.clone();
        let addr = self.membership.local().addr;
        let Some(q) = self.queries.asked(ltime) else { return };
        let table = &self.membership.table;
        let targets: Vec<SocketAddr> = q
            .silent()
            .iter()
            .filter(|m| **m != me)
            .filter_map(|m| table.id_of(m.as_str()).and_then(|id| table.get(id)))
            .filter(|m| m.state.is_live())
            .map(|m| m.addr.get())
            .take(MAX_REASKED)
            .collect();
        let question = &q.question;
        let asking = Asking {
            ltime,
            origin: me.as_str(),
            addr,
            name: &question.name,
            payload: &question.payload,
            filter: &question.filter,
            ack: question.ack,
            relay_factor: question.relay_factor,
            timeout_ms: question.timeout_ms,
        };
        let msg = asking.message();
        for &to in &targets {
            self.outbox.send_free(to, core::slice::from_ref(&msg), Piggyback::Fill);
        }
        self.queries.counters.reasked += targets.len() as u64;
    }

    /// Every member alive or suspect, ourselves included, by name.
    pub(super) fn live_names(&self) -> Vec<MemberName> {
        let mut names: Vec<MemberName> =
            self.membership.table.iter().filter(|(_, m)| m.state.is_live()).map(|(_, m)| m.name.clone()).collect();
        names.push(self.membership.local().name.clone());
        names
    }

    /// A query arrived by gossip: pass it on and raise it, the first
    /// time, if it comes from a member we know at the address it gives and
    /// within that member's rate.
    pub(super) fn on_question(&mut self, now: Instant, sealed: bool, msg: &Message<'_>) {
        let Some(asking) = Asking::from_message(msg) else { return };
        let Ok(origin) = MemberName::new(asking.origin) else { return };
        if !self.queries.clock.is_new(asking.ltime, &origin) {
            // Our own coming back, or one we raised: the clock notes it.
            let _ = self.queries.clock.arrive(asking.ltime, &origin);
            return;
        }
        // Answers go to the address the query gives: only a member we know
        // there may send us work for it, or anyone could aim the cluster's
        // answers at a victim.
        if !self.membership.table.is_live_member_at(asking.origin, asking.addr) {
            self.queries.counters.unknown_origin += 1;
            return;
        }
        if !self.queries.rate.allow(now, &origin) {
            self.queries.counters.rate_limited += 1;
            return;
        }
        if self.queries.clock.arrive(asking.ltime, &origin) != Arrival::New {
            return;
        }
        // A key travels only sealed: a member that does not seal (a
        // cluster switching encryption on) does not pass it on.
        let carries_key = asking.name == super::internal::KEYS
            || (self.config.serf_wire && KeyQuery::from_name(asking.name).is_some());
        if !carries_key || self.envelope.sealing() {
            self.dissemination.queue_user(msg);
        }
        self.raise(now, sealed, asking);
    }

    /// Raises a query we are asked, if its filter selects us: acknowledge
    /// it when asked to, answer an internal one at once, and report any
    /// other to the application.
    fn raise(&mut self, now: Instant, sealed: bool, q: Asking<'_>) {
        let local = self.membership.local();
        match Filter::decode(q.filter) {
            Some(f) if f.selects(local.name.as_str(), &local.meta) => {}
            _ => {
                self.queries.counters.filtered += 1;
                return;
            }
        }
        if !self.queries.has_room() {
            self.queries.counters.dropped_full += 1;
            return;
        }
        let Ok(origin) = MemberName::new(q.origin) else { return };
        let timeout = Duration::from_millis(u64::from(q.timeout_ms.min(MAX_TIMEOUT_MS)));
        let a = Answering {
            origin,
            addr: q.addr,
            ltime: q.ltime,
            deadline: now + timeout,
            relay_factor: q.relay_factor.min(MAX_RELAY_FACTOR),
        };
        if q.ack {
            self.send_answer(&a, true, &[]);
        }
        if q.name.starts_with(INTERNAL_PREFIX) {
            self.answer_internal(now, sealed, &a, q.name, q.payload);
            return;
        }
        if self.config.serf_wire && q.name.starts_with(SERF_INTERNAL_PREFIX) {
            self.answer_serf_internal(sealed, &a, q.name, q.payload);
            return;
        }
        let from = a.origin.clone();
        let id = self.queries.answer_later(a);
        let (ltime, name, payload) = (q.ltime, q.name.into(), q.payload.to_vec());
        self.outbox.event(Event::Query { id, from, ltime, name, payload });
    }

    /// [`Input::Respond`](crate::Input::Respond) from the application.
    pub(super) fn on_respond(&mut self, now: Instant, id: QueryId, payload: &[u8]) -> Result<(), Error> {
        if payload.len() > self.config.user_limits().2 {
            return Err(Error::TooLarge);
        }
        let a = self.queries.take_answering(now, id).ok_or(Error::UnknownQuery)?;
        self.send_answer(&a, false, payload);
        Ok(())
    }

    /// Sends an answer (or ack) to the origin, and through the relays it
    /// asked for. Our own query is answered in place.
    pub(super) fn send_answer(&mut self, a: &Answering, ack: bool, payload: &[u8]) {
        // Sent while the query's datagram is handled (an ack, the
        // protocol's own answer): bare, so that what a datagram draws stays
        // small. The application's answer comes later and carries gossip
        // like any datagram.
        let piggyback = if self.outbox.in_reply() { Piggyback::None } else { Piggyback::Fill };
        let me = self.membership.local().name.clone();
        if a.origin == me {
            self.heard(a.ltime, &me, ack, payload);
            return;
        }
        self.queries.counters.responses_sent += 1;
        let from = me.as_str();
        let direct = Message::Response { ltime: a.ltime, from, ack, payload, relay: None };
        self.outbox.send_free(a.addr, &[direct], piggyback);
        if a.relay_factor == 0 {
            return;
        }
        let table = &self.membership.table;
        let exclude: Vec<_> = table.id_of(a.origin.as_str()).into_iter().collect();
        let mut relays = Vec::new();
        table.random_live(usize::from(a.relay_factor), &exclude, &mut self.rng, &mut relays);
        let relayed = Message::Response { ltime: a.ltime, from, ack, payload, relay: Some(a.addr) };
        for addr in relays.iter().filter_map(|&id| table.get(id)).map(|m| m.addr.get()).collect::<Vec<_>>() {
            self.outbox.send_free(addr, core::slice::from_ref(&relayed), piggyback);
        }
    }

    /// An answer arrived: forward it if we are its relay, collect it if
    /// the query is ours.
    pub(super) fn on_response(&mut self, msg: &Message<'_>) {
        let Message::Response { ltime, from, ack, payload, relay } = *msg else { return };
        if let Some(to) = relay {
            // A relay forwards only to where a member lives: one datagram
            // for one, never to an address a stranger picked.
            // It goes as an aside of the datagram that brought it, bare:
            // never more bytes out than came in.
            let direct = Message::Response { ltime, from, ack, payload, relay: None };
            if self.membership.table.is_live_at(&to) && self.outbox.send_aside_if_room(to, &[direct]) {
                self.queries.counters.relayed += 1;
            }
            return;
        }
        if let Ok(from) = MemberName::new(from) {
            self.heard(ltime, &from, ack, payload);
        }
    }

    fn heard(&mut self, ltime: u64, from: &MemberName, ack: bool, payload: &[u8]) {
        match self.queries.hear(ltime, from, ack, payload) {
            Heard::Ack(id) => self.outbox.event(Event::QueryAck { id, from: from.clone() }),
            Heard::Response(id) => {
                self.outbox.event(Event::QueryResponse { id, from: from.clone(), payload: payload.to_vec() })
            }
            Heard::Internal | Heard::Duplicate | Heard::Unknown => {}
        }
    }

    /// A query's deadline: ours is done (reported, with the report of an
    /// internal one), or one we were asked can no longer be answered.
    pub(super) fn on_query_timer(&mut self, now: Instant) {
        let asked = match self.queries.pop_due(now) {
            Some(Due::Done(asked)) => asked,
            Some(Due::Reask(ltime)) => return self.reask(ltime),
            _ => return,
        };
        if let Some(kind) = asked.internal {
            let report = self.report(kind, &asked);
            self.outbox.event(Event::Report { id: asked.id, report });
        }
        self.outbox.event(Event::QueryDone { id: asked.id });
    }
}

impl<'a> Asking<'a> {
    fn from_message(msg: &Message<'a>) -> Option<Self> {
        let Message::Question { ltime, origin, addr, name, payload, filter, ack, relay_factor, timeout_ms } = *msg
        else {
            return None;
        };
        Some(Asking { ltime, origin, addr, name, payload, filter, ack, relay_factor, timeout_ms })
    }

    fn message(&self) -> Message<'a> {
        Message::Question {
            ltime: self.ltime,
            origin: self.origin,
            addr: self.addr,
            name: self.name,
            payload: self.payload,
            filter: self.filter,
            ack: self.ack,
            relay_factor: self.relay_factor,
            timeout_ms: self.timeout_ms,
        }
    }
}
