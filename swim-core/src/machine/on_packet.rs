//! Datagrams: opened, bounded by what they may draw, and each message
//! routed to the part that owns it.

use super::*;

impl<R: Rng> Swim<R> {
    pub(super) fn on_packet(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) -> Result<(), Error> {
        self.ingress.packets += 1;
        self.ingress.bytes += bytes.len() as u64;
        if self.lifecycle.phase() == Phase::Left {
            return Ok(());
        }
        let mut scratch = core::mem::take(&mut self.scratch);
        let result = self.open_packet(now, from, bytes, &mut scratch);
        scratch.clear();
        self.scratch = scratch;
        result
    }

    pub(super) fn open_packet(
        &mut self,
        now: Instant,
        from: SocketAddr,
        bytes: &[u8],
        scratch: &mut Vec<u8>,
    ) -> Result<(), Error> {
        let mut msgs = Messages::new();
        let (sender, sealed) =
            match self.envelope.decode(bytes, wire::MAX_DATAGRAM, Channel::Datagram, scratch, &mut msgs) {
                Ok(origin) => (origin.sender, origin.sealed),
                Err(e) => {
                    self.reject(from, None, e);
                    return Ok(());
                }
            };
        self.ensure_started(now);
        let me = self.membership.local().name.as_str();
        // Whatever this datagram makes us send, it pays for: a forged
        // source draws no more bytes than it sent. A sealed one (only a
        // holder of the key can make it) named its sender inside the seal
        // where our answers name us: a longer name of ours is not counted.
        let names = sender.map_or(0, |s| me.len().saturating_sub(s.len()));
        self.outbox.begin_reply(bytes.len() + names);
        // The sender accuses us: our answer to it carries our alive.
        let accused = msgs.iter().any(|m| m.accuses(me));
        // The sender's coordinate, beside its ping or its ack.
        let coordinate = msgs.iter().find_map(|m| match *m {
            Message::Coordinate { vec, height, error, adjustment } => Some((vec, height, error, adjustment)),
            _ => None,
        });
        let coordinate = coordinate.and_then(|(v, h, e, a)| self.coords.accept(v, h, e, a));
        let source = Source::Gossip;
        // Membership updates first, probe traffic second: a suspicion that
        // rides on a ping (the buddy system) is refuted before the ack is
        // built, so the refutation travels back on the ack itself.
        for msg in msgs.iter().filter(|m| m.is_update()) {
            let merged =
                self.membership.merge(now, msg, source, &mut self.dissemination, &mut self.outbox, &mut self.rng);
            match merged {
                Merged::Refuted => self.detector.on_refuted(),
                Merged::Claimed { addr, incarnation } => self.on_name_claimed(now, addr, incarnation),
                Merged::Done => {}
            }
        }
        // A suspect that is heard from but has not refuted by now is told.
        self.membership.heard_from(now, from, &mut self.outbox);
        // One request answered per datagram: our own datagrams never hold
        // two, and a datagram of many would draw many answers.
        let mut answered = false;
        for msg in msgs.iter().filter(|m| !m.is_update()) {
            if matches!(msg, Message::Ping { .. } | Message::PingReq { .. } | Message::Query { .. }) {
                if answered {
                    self.detector.counters.surplus_requests += 1;
                    continue;
                }
                answered = true;
            }
            self.on_message(now, from, (sender, sealed), msg, accused, coordinate);
        }
        Ok(())
    }

    /// Probe, sync and query traffic. A sender that is not a live member
    /// at its address may be anyone, its address forged: it gets answers
    /// no larger than what it sent (a bare ack) and no work done for it
    /// (no relayed probe, no query answer), so the node cannot be used to
    /// amplify traffic at a victim. A sealed packet in our format names
    /// its `sender`: that member must be the live one at the address
    /// (`sealed`: whether a key opened it, in either format). A relayed
    /// probe goes only to a live member at the address we know for it.
    pub(super) fn on_message(
        &mut self,
        now: Instant,
        from: SocketAddr,
        (sender, sealed): (Option<&str>, bool),
        msg: &Message<'_>,
        accused: bool,
        coordinate: Option<Coordinate>,
    ) {
        let me = self.membership.local().name.as_str();
        let known = || match sender {
            Some(name) => self.membership.table.is_live_member_at(name, from),
            None => self.membership.table.is_live_at(&from),
        };
        match *msg {
            Message::Ping { seq, target } => {
                let running = self.lifecycle.phase() == Phase::Running;
                // One lookup serves both questions: pings are most of what
                // arrives.
                let live = self.membership.table.live_at(&from);
                let known = match sender {
                    Some(_) => known(),
                    None => live.is_some(),
                };
                let refutation = (accused && running && known).then(|| self.membership.self_alive());
                let piggyback = if known { Piggyback::Fill } else { Piggyback::None };
                // A member's ping that carries its coordinate asks for ours;
                // serf's pings never carry one, and serf's acks always do.
                let prober = coordinate.and_then(|c| live.map(|id| (id, c)));
                let asks = prober.is_some() || (self.config.serf_wire && live.is_some());
                let ours = self.coords.own().filter(|_| asks);
                let o = &mut self.outbox;
                if self.detector.on_ping(from, seq, target, me, refutation, ours, piggyback, o) {
                    if let Some((id, c)) = prober {
                        self.coords.learn(now, id, c);
                    }
                    if ours.is_some() {
                        self.coords.sent();
                    }
                }
            }
            Message::PingReq { .. } | Message::Query { .. } if !known() => {
                self.detector.counters.strangers_refused += 1
            }
            // Even a member (or a forged source that looks like one) only
            // gets probes sent to where we know the target lives.
            Message::PingReq { seq, target, addr }
                if target != me && !self.membership.table.is_live_member_at(target, addr) =>
            {
                self.detector.counters.strangers_refused += 1;
                // A member asking about one we hold failed (or elsewhere)
                // gets a nack at once: its own network is fine, and it must
                // not take our silence for its own trouble (Lifeguard).
                self.outbox.send(from, &[Message::Nack { seq }], Piggyback::Fill);
            }
            Message::PingReq { seq, target, addr } => {
                // The ack or nack we send the requester later is part of
                // the answer.
                let later = self.outbox.size_of(&[Message::Nack { seq }]);
                self.outbox.reserve(later);
                self.detector.on_ping_req(
                    now,
                    from,
                    seq,
                    target,
                    addr,
                    me,
                    &self.config,
                    &mut self.outbox,
                    &mut self.rng,
                )
            }
            Message::Ack { seq } if self.on_claim_ack(now, from, seq) => {}
            Message::Ack { seq } => {
                let (d, o, r) = (&mut self.dissemination, &mut self.outbox, &mut self.rng);
                if !self.membership.on_ack(now, from, seq, d, o, r)
                    && let Some((target, ms)) = self.detector.on_ack(now, from, seq, &mut self.outbox)
                {
                    if let Some(c) = coordinate {
                        self.coords.learn(now, target, c);
                    }
                    self.coords.observe(target, ms, &mut self.rng);
                }
            }
            Message::Nack { seq } => self.detector.on_nack(from, seq),
            Message::Query { name } => self.membership.answer_query(from, name, &mut self.outbox),
            Message::User { .. } => self.on_user(now, msg),
            Message::Question { .. } => self.on_question(now, sealed, msg),
            Message::Response { .. } => self.on_response(msg),
            // A memberlist user message names no sender: the live member
            // at the source address is its author, or nobody is.
            Message::Direct { from: "", payload } if self.config.speaks_memberlist() => {
                if let Some(author) = self.membership.table.live_at(&from).and_then(|id| self.membership.table.get(id))
                {
                    let author = author.name.clone();
                    self.on_direct_arrived(author.as_str(), payload, false);
                }
            }
            Message::Direct { from: author, payload } => self.on_direct_arrived(author, payload, false),
            // Tables travel over streams only: a datagram never draws one.
            Message::SyncRequest { .. }
            | Message::SyncReply
            | Message::SyncEnd
            | Message::AppState { .. }
            | Message::Clocks { .. }
            | Message::Alive { .. }
            | Message::Suspect { .. }
            | Message::Dead { .. }
            | Message::Coordinate { .. }
            | Message::SyncDigest { .. }
            | Message::SyncDiff { .. }
            | Message::Padding { .. } => {}
        }
    }
}
