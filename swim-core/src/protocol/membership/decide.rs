//! Suspicions from raising to verdict: confirmations, last-chance checks,
//! deaths, and reaping the dead.

use super::*;

impl Membership {
    /// Counts `from` as a confirmation of the running suspicion of `id` at
    /// `incarnation`; a new one moves the deadline and is passed on, so
    /// others can count it too.
    pub(super) fn confirm(
        &mut self,
        now: Instant,
        id: MemberId,
        incarnation: u32,
        from: &str,
        dissem: &mut Dissemination,
    ) {
        let spacing = self.config.probe_timeout;
        let Some(m) = self.table.get(id) else { return };
        let Some(s) = self.suspicions.get_mut(&id) else { return };
        if s.incarnation != incarnation || !s.confirm(from, now, spacing) {
            return;
        }
        rewake(&mut self.timers, id, s, now, spacing);
        let name = m.name.clone();
        dissem.queue_member(id, &Message::Suspect { incarnation, name: name.as_str(), from });
    }

    /// Starts (or restarts) a suspicion of `id` at `incarnation`.
    pub(super) fn start_suspicion(
        &mut self,
        now: Instant,
        id: MemberId,
        incarnation: u32,
        accuser: MemberName,
        rng: &mut dyn Random,
    ) {
        self.clear_suspicion(id);
        let n = self.num_live();
        let c = &self.config;
        let min = suspicion_min(c.suspicion_mult.get(), n, c.probe_interval);
        let max = min.saturating_mul(u64::from(c.suspicion_max_timeout_mult.get()));
        // Confirmations can only come from members other than the suspect
        // and the accuser; expect none when there are too few of them.
        let mut k = c.suspicion_mult.get().saturating_sub(2);
        if n.saturating_sub(2) < k as usize {
            k = 0;
        }
        let mut s = Suspicion::new(incarnation, accuser, now, min, max, k, c.last_chance_checks);
        s.timer_at = s.wake_at(c.probe_timeout);
        self.timers.insert(s.timer_at, Timer::Suspicion(id));
        self.table.set_state(id, MemberState::Suspect, rng);
        if let Some(mut m) = self.table.get_mut(id) {
            m.incarnation = incarnation;
            m.since = now;
            self.suspicions.insert(id, s);
        }
    }

    /// A peer's table lists `id` dead at `incarnation`, which we suspect:
    /// its accusers have given their verdict.
    pub(super) fn declared_elsewhere(&mut self, id: MemberId, incarnation: u32) {
        if let Some(s) = self.suspicions.get_mut(&id)
            && s.incarnation == incarnation
        {
            s.declared_elsewhere = true;
        }
    }

    pub(super) fn clear_suspicion(&mut self, id: MemberId) {
        if let Some(s) = self.suspicions.remove(&id) {
            self.timers.remove(s.timer_at, Timer::Suspicion(id));
        }
    }

    /// A member just died or left: gossip to it for a while, reap it later.
    ///
    /// A failed member is also remembered for reconnect attempts (they
    /// outlive its reaping); a departed one is not retried.
    pub(super) fn bury(&mut self, now: Instant, id: MemberId, dissem: &mut Dissemination) {
        dissem.bury(id);
        self.timers.insert(now + self.config.dead_member_retention, Timer::Reap(id));
        let Some(m) = self.table.get(id) else { return };
        if m.state == MemberState::Dead {
            let (name, addr) = (m.name.clone(), m.addr.get());
            self.remember_failed(now, &name, addr);
        } else {
            let name = m.name.clone();
            self.forget_failed(name.as_str());
        }
    }

    /// Handles a due timer; a suspicion's first last-chance check may also
    /// ask for a check over a stream. `doubt`: whether our own datagram
    /// path is in doubt (local health degraded, or our last probe answered
    /// over a stream only).
    pub(crate) fn on_timer(
        &mut self,
        now: Instant,
        timer: Timer,
        doubt: bool,
        dissem: &mut Dissemination,
        outbox: &mut Outbox,
        rng: &mut dyn Random,
    ) -> Option<StreamCheck> {
        match timer {
            Timer::Suspicion(id) => self.on_suspicion_timer(now, id, doubt, dissem, outbox, rng),
            Timer::Reap(id) => {
                self.on_reap(now, id, dissem);
                None
            }
            Timer::Verify(id) => {
                self.on_verify_timer(now, id, dissem, outbox, rng);
                None
            }
            Timer::Admit(addr) => {
                self.on_admit_timer(now, addr);
                None
            }
        }
    }

    /// Our suspicion of `id` may have run out: declare it dead, unless it
    /// refuted in the meantime (then the suspicion is gone or newer).
    /// Before the deadline, the wake-ups are last-chance checks.
    ///
    /// Gossip spreads a refutation with a bounded number of transmissions,
    /// so now and then a member that holds a suspicion misses it. Before it
    /// declares the suspect dead, a member with its own evidence (one of
    /// the suspicion's accusers) pings the suspect with the suspicion
    /// attached on its odd checks, and asks one random peer for its record
    /// on its even ones (the suspect may be paused just then); any other
    /// member always asks a peer. Only accusers ping, so a possibly
    /// overloaded suspect receives a handful of checks rather than one
    /// from every member.
    ///
    /// With `fallback_ping` on, the first ping and the first query also go
    /// over a stream (returned for the caller to open): the ping always,
    /// the query while our datagram path is in doubt. A member whose own
    /// datagrams fail to come back — it cannot hear acks, so it cannot
    /// hear a refutation either — would otherwise declare every suspect it
    /// holds, however alive. A healthy member's query answer comes back
    /// by datagram, so it spends no stream.
    pub(super) fn on_suspicion_timer(
        &mut self,
        now: Instant,
        id: MemberId,
        doubt: bool,
        dissem: &mut Dissemination,
        outbox: &mut Outbox,
        rng: &mut dyn Random,
    ) -> Option<StreamCheck> {
        let spacing = self.config.probe_timeout;
        let me = self.local.name.clone();
        let m = self.table.get(id)?;
        let (state, incarnation, addr, name) = (m.state, m.incarnation, m.addr.get(), m.name.clone());
        let s = self.suspicions.get_mut(&id)?;
        if state != MemberState::Suspect || s.incarnation != incarnation {
            return None;
        }
        if now.as_millis().saturating_sub(s.timer_at.as_millis()) > spacing.as_millis() {
            // The timer fired late: we were stalled (a pause of the whole
            // process, an overloaded host). Whatever arrived meanwhile — a
            // refutation, say — is still to be read: hear it first, and
            // come back a moment later.
            s.timer_at = now + crate::util::time::Duration::from_millis(1);
            self.timers.insert(s.timer_at, Timer::Suspicion(id));
            return None;
        }
        if s.deadline <= now && s.checks < s.planned {
            // We were stalled past the checks (a pause of the whole
            // process): make them now, and leave them their time, rather
            // than declare before hearing the backlog.
            s.deadline = now + spacing.saturating_mul(u64::from(s.planned - s.checks));
        }
        if s.deadline <= now && s.awaiting > 0 {
            // A check over a stream is still out: its answer may be the
            // refutation we missed. It ends by its own deadline.
            s.timer_at = now + spacing;
            self.timers.insert(s.timer_at, Timer::Suspicion(id));
            return None;
        }
        let awaiting_verdict = !s.declared_elsewhere && !s.accusers.contains(&me);
        if s.deadline <= now && !s.deferred && self.config.fallback_ping && awaiting_verdict {
            // We have only heard of the suspicion: the accusers, who check
            // the suspect over a stream and wait for a stalled one, have
            // the evidence. Give them that long to declare it (their Dead
            // then reaches us by gossip) or to hear it refute. When a
            // peer's table already listed it dead, that verdict is in:
            // the accusers' Dead may be long gone from gossip, and the
            // member reaped where it was declared.
            s.deferred = true;
            s.deadline = now + crate::protocol::membership::suspicion::check_wait(self.config.probe_interval);
            s.timer_at = s.deadline;
            self.timers.insert(s.timer_at, Timer::Suspicion(id));
            return None;
        }
        if s.deadline <= now && s.deferred && !s.final_query {
            // The wait is over: ask a peer once more, now that a stalled
            // suspect has had time to wake and refute (over a stream too
            // if our datagrams are in doubt), and decide a probe timeout
            // later.
            s.final_query = true;
            s.timer_at = now + spacing;
            self.timers.insert(s.timer_at, Timer::Suspicion(id));
            let mut vias = heapless::Vec::new();
            for _ in 0..FINAL_QUERIES {
                let via = self.query_a_peer(id, &name, &vias, outbox, rng);
                if let Some(via) = via.filter(|v| !vias.contains(v)) {
                    let _ = vias.push(via);
                }
            }
            return (doubt && !vias.is_empty()).then_some(StreamCheck::Queries { vias, name });
        }
        if s.deadline > now {
            s.checks += 1;
            s.timer_at = s.wake_at(spacing);
            self.timers.insert(s.timer_at, Timer::Suspicion(id));
            self.counters.last_chance_checks += 1;
            let streams = self.config.fallback_ping;
            let checks = s.checks;
            // An accuser alternates: the suspect itself first, then a peer
            // (the suspect may be paused right then, and a peer may hold
            // the refutation we missed).
            if s.accusers.contains(&me) && s.checks % 2 == 1 {
                let seq = rng.next_u64() as u32;
                let check = [
                    Message::Ping { seq, target: name.as_str() },
                    Message::Suspect { incarnation, name: name.as_str(), from: me.as_str() },
                ];
                let meta = self.table.get(id).map(|m| m.meta.clone()).unwrap_or_default();
                let refutation = Message::Alive { incarnation: u32::MAX, name: name.as_str(), addr, meta: &meta };
                let room = outbox.answer_room(&[Message::Ack { seq }, refutation]);
                outbox.send_padded(addr, &check, room, Piggyback::Fill);
                return (streams && checks == 1).then_some(StreamCheck::Suspect { addr, name, incarnation });
            }
            // If we missed a refutation, a peer likely has it.
            let via = self.query_a_peer(id, &name, &[], outbox, rng)?;
            // The first query (an accuser's second check) may need a stream.
            return (streams && doubt && checks <= 2).then_some(StreamCheck::Query { via, name });
        }
        if !s.settled {
            // Once, right before declaring: let whatever arrived at this
            // same instant (a refutation queued behind this wake-up) be
            // read first.
            s.settled = true;
            s.timer_at = now + crate::util::time::Duration::from_millis(1);
            self.timers.insert(s.timer_at, Timer::Suspicion(id));
            return None;
        }
        self.clear_suspicion(id);
        self.table.set_state(id, MemberState::Dead, rng);
        if let Some(mut m) = self.table.get_mut(id) {
            m.since = now;
        }
        self.bury(now, id, dissem);
        self.counters.failures_declared += 1;
        outbox.event(Event::Failed { name: name.clone(), incarnation, local: true });
        dissem.queue_member(id, &Message::Dead { incarnation, name: name.as_str(), from: me.as_str() });
        None
    }

    /// Asks one random live member other than `id` for its record of
    /// `name` (the member `id`); returns whom it asked.
    pub(super) fn query_a_peer(
        &mut self,
        id: MemberId,
        name: &MemberName,
        asked: &[SocketAddr],
        outbox: &mut Outbox,
        rng: &mut dyn Random,
    ) -> Option<SocketAddr> {
        // One more than asked already, so one not asked yet is among them.
        self.table.random_live(asked.len() + 1, &[id], rng, &mut self.scratch);
        let via = self
            .scratch
            .iter()
            .filter_map(|&p| self.table.get(p))
            .map(|m| m.addr.get())
            .find(|a| !asked.contains(a))?;
        // The answer is the peer's record of the member, metadata and all.
        let addr = self.table.get(id).map_or(via, |m| m.addr.get());
        let meta = alloc::vec![0; self.config.max_meta_len];
        let record = Message::Alive { incarnation: u32::MAX, name: name.as_str(), addr, meta: &meta };
        let room = outbox.answer_room(&[record]);
        outbox.send_padded(via, &[Message::Query { name: name.as_str() }], room, Piggyback::Fill);
        Some(via)
    }

    pub(super) fn on_reap(&mut self, now: Instant, id: MemberId, dissem: &mut Dissemination) {
        let Some(m) = self.table.get(id) else { return };
        if m.state.is_live() || now - m.since < self.config.dead_member_retention {
            return;
        }
        self.clear_suspicion(id);
        self.forget_verification(id);
        self.table.remove(id);
        // The slot may be reused: its update must not outlive the member.
        dissem.forget(id);
    }
}
