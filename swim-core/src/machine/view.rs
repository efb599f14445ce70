//! What the state machine shows of itself: its configuration, counters,
//! members, deadline and a digest of its state.

use super::*;

impl<R> Swim<R> {
    /// Takes back the buffer of a sent [`Action::Send`] datagram for reuse
    /// (up to a small bound), so a runtime that always recycles sends
    /// without allocating.
    pub fn recycle(&mut self, packet: crate::wire::Datagram) {
        self.outbox.recycle(packet.into_vec());
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Installed keys, the primary first.
    #[cfg(feature = "encryption")]
    pub fn keys(&self) -> Vec<crate::wire::keyring::Key> {
        self.envelope.keys().collect()
    }

    /// The prefix of the nonces this member seals with (see
    /// [`Swim::set_nonce_prefix`]). Not secret: it is the nonce of the
    /// first packet sealed.
    #[cfg(feature = "trace")]
    pub(crate) fn nonce_prefix(&self) -> [u8; 12] {
        self.envelope.nonce_prefix()
    }

    /// Whether what we send now is sealed.
    pub fn sealing(&self) -> bool {
        self.envelope.sealing()
    }

    /// Our identity.
    pub fn local(&self) -> &Identity {
        self.membership.local()
    }

    /// Our current incarnation number.
    pub fn incarnation(&self) -> u32 {
        self.membership.incarnation()
    }

    /// Counters since start.
    pub fn stats(&self) -> Stats {
        let (d, m, q) = (&self.detector.counters, &self.membership.counters, &self.queries.counters);
        Stats {
            probes_sent: d.probes_sent,
            probes_acked: d.probes_acked,
            probes_failed: d.probes_failed,
            ping_reqs_sent: d.ping_reqs_sent,
            acks_received: d.acks_received,
            nacks_received: d.nacks_received,
            unexpected_answers: d.unexpected_answers,
            relays: d.relays,
            relays_dropped: d.relays_dropped,
            suspicions_raised: m.suspicions_raised,
            failures_declared: m.failures_declared,
            refutations: m.refutations,
            last_chance_checks: m.last_chance_checks,
            deaths_checked: m.deaths_checked,
            refused_connections: m.refused_connections,
            packets_sent: self.outbox.packets_sent,
            bytes_sent: self.outbox.bytes_sent,
            packets_received: self.ingress.packets,
            bytes_received: self.ingress.bytes,
            rejections: self.ingress.rejected.clone(),
            misdirected: d.misdirected,
            strangers_refused: d.strangers_refused,
            surplus_requests: d.surplus_requests,
            replies_dropped: self.outbox.replies_dropped,
            admission_checks: m.admission_checks,
            table_full: m.table_full,
            admissions_refused: m.admissions_refused,
            address_conflicts: m.address_conflicts,
            incarnation_leaps: m.incarnation_leaps,
            streams_opened: self.streams.counters.opened,
            streams_accepted: self.streams.counters.accepted,
            streams_refused: self.streams.counters.refused,
            streams_failed: self.streams.counters.failed + self.streams.counters.timed_out,
            frames_sent: self.outbox.frames_sent,
            frame_bytes_sent: self.outbox.frame_bytes_sent,
            frames_received: self.streams.counters.frames_received,
            frame_bytes_received: self.streams.counters.frame_bytes_received,
            syncs_completed: self.streams.counters.syncs_completed,
            fallback_pings: d.fallback_pings,
            fallback_acks: d.fallback_acks,
            reconnects: self.lifecycle.reconnects,
            events_delivered: self.user.events.counters.delivered,
            events_duplicate: self.user.events.counters.duplicates,
            events_too_old: self.user.events.counters.too_old,
            lamport_too_far: self.user.events.counters.too_far + self.queries.clock.counters.too_far,
            events_kept: self.user.kept() as u64,
            events_skipped: self.user.skipped,
            queries_asked: q.asked,
            queries_raised: q.raised,
            queries_duplicate: self.queries.clock.counters.duplicates,
            queries_filtered: q.filtered,
            queries_rate_limited: q.rate_limited,
            queries_unknown_origin: q.unknown_origin,
            queries_dropped: q.dropped_full,
            responses_sent: q.responses_sent,
            responses_received: q.responses_received,
            responses_duplicate: q.responses_duplicate,
            responses_unknown: q.responses_unknown,
            responses_relayed: q.relayed,
            queries_reasked: q.reasked,
            coordinate_updates: self.coords.counters.updates,
            coordinates_sent: self.coords.counters.sent,
            coordinates_rejected: self.coords.counters.rejected,
        }
    }

    /// Our network coordinate (`None` with `Config::coordinates` off). It
    /// starts at the origin with the largest error, and settles as our
    /// probes measure round trips (docs/protocol.md §6.13).
    pub fn coordinate(&self) -> Option<Coordinate> {
        self.coords.own()
    }

    /// The coordinate we hold for member `name` (ours for our own name):
    /// learnt from our probes of it and its probes of us, so it may be
    /// missing for a member we have not exchanged a probe with yet.
    pub fn coordinate_of(&self, name: &str) -> Option<Coordinate> {
        if name == self.membership.local().name.as_str() {
            return self.coordinate();
        }
        self.coords.own()?;
        self.membership.table.id_of(name).and_then(|id| self.coords.of(id))
    }

    /// The round trip between members `a` and `b` (either may be us) that
    /// their coordinates predict, if we hold both.
    pub fn estimate_rtt(&self, a: &str, b: &str) -> Option<core::time::Duration> {
        Some(self.coordinate_of(a)?.estimate_rtt(&self.coordinate_of(b)?))
    }

    /// Lifeguard's local health score, `0..awareness_max_multiplier`
    /// (0 is healthy).
    pub fn local_health(&self) -> u32 {
        self.detector.local_health()
    }

    /// Streams open now, both ways.
    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }

    /// The Lamport time our next event will carry.
    pub fn lamport_time(&self) -> u64 {
        self.user.events.clock()
    }

    /// The Lamport time our next query will carry.
    pub fn query_time(&self) -> u64 {
        self.queries.clock.clock()
    }

    /// Queries open here: ours awaiting answers, and others' we may still
    /// answer.
    pub fn open_queries(&self) -> (usize, usize) {
        self.queries.open()
    }

    /// Events and queries waiting for retransmission.
    pub fn queued_broadcasts(&self) -> usize {
        self.dissemination.user.len()
    }

    /// Updates waiting in the piggyback queue (memberlist's `NumQueued`).
    pub fn queued_updates(&self) -> usize {
        self.dissemination.queue.len()
    }

    /// A digest of the protocol state: every member's record (ourselves
    /// included), the update and broadcast queues, the Lamport clock, the
    /// members remembered for reconnects and the open streams. Input that
    /// is rejected leaves it unchanged.
    pub fn state_digest(&self) -> crate::Digest {
        let mut d = crate::Digest::new();
        for m in self.members() {
            d.write_bytes(m.name.as_str().as_bytes());
            d.write_addr(m.addr);
            d.write_u64(u64::from(m.incarnation) << 8 | m.state as u64);
            d.write_bytes(m.meta);
        }
        self.dissemination.queue.digest(&mut d);
        self.dissemination.user.digest(&mut d);
        d.write_u64(self.user.events.clock());
        d.write_u64(self.queries.clock.clock());
        let (asked, answering) = self.queries.open();
        d.write_u64((asked as u64) << 32 | answering as u64);
        d.write_u64(self.membership.remembered.len() as u64);
        d.write_u64(self.membership.pending_admissions() as u64);
        d.write_u64(self.streams.len() as u64);
        d
    }

    /// When the state machine wants [`Input::Timeout`]: the deadline it
    /// last reported with [`Action::SetTimer`], the one copy of it (a
    /// runtime arms its timer from the action; [`Driver`](crate::Driver)
    /// keeps none). `None` before the first input and after a leave.
    pub fn deadline(&self) -> Option<Instant> {
        self.reported
    }

    /// The earliest of the parts' deadlines.
    pub(super) fn earliest_deadline(&self) -> Option<Instant> {
        // Folded pairwise from the parts' deadlines taken apart: every
        // input asks, and the pairs stay in registers where iterating the
        // array went through memory.
        let earlier = |a: Option<Instant>, b: Option<Instant>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, None) => a,
            (None, b) => b,
        };
        let [a, b, c, d, e, f, g] = self.part_deadlines();
        earlier(earlier(earlier(earlier(earlier(earlier(a, b), c), d), e), f), g)
    }

    /// Each part's earliest deadline, in the order that breaks ties
    /// (detector, membership, dissemination, life cycle, streams, queries,
    /// name claims).
    pub(super) fn part_deadlines(&self) -> [Option<Instant>; 7] {
        [
            self.detector.next_deadline(),
            self.membership.next_deadline(),
            self.dissemination.next_deadline(),
            self.lifecycle.next_deadline(),
            self.streams.next_deadline(),
            self.queries.next_deadline(),
            self.claim.map(|c| c.deadline()),
        ]
    }

    /// Members alive or suspect, ourselves included: the `n` of the
    /// protocol's formulas.
    pub fn num_live(&self) -> usize {
        self.membership.num_live()
    }

    /// Whether a graceful leave has completed (the member ignores input).
    pub fn has_left(&self) -> bool {
        self.lifecycle.phase() == Phase::Left
    }

    /// Every member we know, ourselves first, then in table order
    /// (tombstones of dead and departed members included until reaped).
    /// The order is deterministic but not sorted.
    pub fn members(&self) -> impl Iterator<Item = MemberView<'_>> + '_ {
        let mut me = self.membership.self_view(self.lifecycle.phase() != Phase::Running);
        me.coordinate = self.coords.own();
        core::iter::once(me).chain(self.membership.table.iter().map(|(id, m)| self.view_of(id, m)))
    }

    /// A member's view with what our coordinates say of it.
    fn view_of<'a>(&self, id: crate::protocol::table::MemberId, m: &'a Member) -> MemberView<'a> {
        let mut v = m.view();
        v.coordinate = self.coords.of(id);
        v.rtt = self.coords.round_trip(id);
        v
    }

    /// One member by name (ourselves included).
    pub fn member(&self, name: &str) -> Option<MemberView<'_>> {
        if name == self.membership.local().name.as_str() {
            return self.members().next();
        }
        let table = &self.membership.table;
        let id = table.id_of(name)?;
        table.get(id).map(|m| self.view_of(id, m))
    }

    pub(super) fn complete_leave(&mut self) {
        for id in self.streams.drain() {
            self.outbox.close(id);
        }
        self.lifecycle.complete_leave(&mut self.outbox);
        // Our queries end now (each with its one QueryDone), and no claim
        // on our name matters any more.
        for asked in self.queries.close_all() {
            if let Some(kind) = asked.internal {
                let report = self.report(kind, &asked);
                self.outbox.event(crate::api::Event::Report { id: asked.id, report });
            }
            self.outbox.event(crate::api::Event::QueryDone { id: asked.id });
        }
        self.claim = None;
        self.detector.clear();
        self.membership.clear_timers();
        self.dissemination.clear_timers();
    }
}
