//! Applying membership updates: the precedence rule, suspicion and
//! refutation. Every accepted update is queued for dissemination.

use alloc::vec::Vec;
use core::net::SocketAddr;

use rand_core::Rng;

use super::{Phase, Swim};
use crate::broadcast::QueueKey;
use crate::io::{Action, Event};
use crate::member::{Claim, Member, MemberState, precedes};
use crate::members::MemberId;
use crate::name::MemberName;
use crate::suspicion::{Suspicion, suspicion_min};
use crate::time::Instant;
use crate::timers::Timer;
use crate::wire::{Message, encode_message};

impl<R: Rng> Swim<R> {
    pub(super) fn merge_alive(
        &mut self,
        now: Instant,
        incarnation: u32,
        name: &str,
        addr: SocketAddr,
        meta: &[u8],
        out: &mut Vec<Action>,
    ) {
        if name == self.local.name.as_str() {
            // Someone holds a newer or different picture of us: typically
            // our own state from before a restart. Outbid it.
            let stale = incarnation == self.incarnation && (addr != self.local.addr || meta != self.local.meta);
            if self.phase == Phase::Running && (incarnation > self.incarnation || stale) {
                self.refute(incarnation);
            }
            return;
        }
        if meta.len() > self.config.max_meta_len {
            return;
        }
        let Some(id) = self.members.id_of(name) else {
            self.add_member(now, incarnation, name, addr, meta, out);
            return;
        };
        let Some(m) = self.members.get(id) else { return };
        if m.addr.get() != addr {
            let reclaimable =
                !m.state.is_live() && self.config.dead_node_reclaim_time.is_some_and(|t| now - m.since >= t);
            if !reclaimable {
                self.stats.address_conflicts += 1;
                return;
            }
        } else if !precedes(Claim::new(MemberState::Alive, incarnation), m.claim()) {
            return;
        }
        let old_state = m.state;
        let changed = m.addr.get() != addr || *m.meta != *meta;
        let name = m.name.clone();
        self.clear_suspicion(id);
        if let Some(m) = self.members.get_mut(id) {
            m.incarnation = incarnation;
            m.addr = addr.into();
            if *m.meta != *meta {
                m.meta = meta.into();
            }
            if old_state != MemberState::Alive {
                m.since = now;
            }
        }
        self.members.set_state(id, MemberState::Alive, &mut self.rng);
        let e = match old_state {
            MemberState::Suspect => Some(Event::Alive { name: name.clone(), incarnation }),
            MemberState::Dead | MemberState::Left => Some(Event::Joined { name: name.clone(), addr }),
            MemberState::Alive => changed.then(|| Event::Updated { name: name.clone(), addr }),
        };
        if let Some(e) = e {
            self.event(e, out);
        }
        self.queue_update(id.queue_key(), &Message::Alive { incarnation, name: name.as_str(), addr, meta });
    }

    fn add_member(
        &mut self,
        now: Instant,
        incarnation: u32,
        name: &str,
        addr: SocketAddr,
        meta: &[u8],
        out: &mut Vec<Action>,
    ) {
        if self.members.len() >= self.config.max_members.get() as usize {
            self.stats.table_full += 1;
            return;
        }
        let Ok(name) = MemberName::new(name) else { return };
        let member = Member {
            name: name.clone(),
            addr: addr.into(),
            incarnation,
            state: MemberState::Alive,
            since: now,
            meta: meta.into(),
            live_pos: None,
            suspicion: None,
        };
        let id = self.members.insert(member, &mut self.rng);
        self.event(Event::Joined { name: name.clone(), addr }, out);
        self.queue_update(id.queue_key(), &Message::Alive { incarnation, name: name.as_str(), addr, meta });
    }

    pub(super) fn merge_suspect(
        &mut self,
        now: Instant,
        incarnation: u32,
        name: &str,
        from: &str,
        out: &mut Vec<Action>,
    ) {
        if name == self.local.name.as_str() {
            self.rumour_about_us(incarnation);
            return;
        }
        let Some(id) = self.members.id_of(name) else { return };
        let Some(m) = self.members.get(id) else { return };
        let name = m.name.clone();
        match m.state {
            MemberState::Dead | MemberState::Left => {}
            MemberState::Alive => {
                if incarnation < m.incarnation {
                    return;
                }
                let Ok(accuser) = MemberName::new(from) else { return };
                self.start_suspicion(now, id, incarnation, accuser);
                self.event(Event::Suspected { name: name.clone(), incarnation, local: false }, out);
                self.queue_suspect(id, &name, incarnation, from);
            }
            MemberState::Suspect => {
                if incarnation > m.incarnation {
                    // A suspicion of a newer incarnation: a fresh suspicion.
                    let Ok(accuser) = MemberName::new(from) else { return };
                    self.start_suspicion(now, id, incarnation, accuser);
                    self.queue_suspect(id, &name, incarnation, from);
                    return;
                }
                if incarnation < m.incarnation {
                    return;
                }
                self.confirm_suspicion(id, &name, incarnation, from);
            }
        }
    }

    /// Counts `from` as a confirmation of the running suspicion of `id`;
    /// a new one moves the deadline and is passed on, so others can count
    /// it too.
    pub(super) fn confirm_suspicion(&mut self, id: MemberId, name: &MemberName, incarnation: u32, from: &str) {
        let (now, spacing) = (self.now, self.config.probe_timeout);
        let Some(m) = self.members.get_mut(id) else { return };
        let Some(s) = m.suspicion.as_mut() else { return };
        if s.incarnation != incarnation {
            return;
        }
        if s.confirm(from, now, spacing) {
            let old = s.timer_at;
            s.timer_at = s.wake_at(self.config.probe_timeout);
            self.timers.reschedule(Some(old), s.timer_at, Timer::Suspicion(id));
            self.queue_suspect(id, name, incarnation, from);
        }
    }

    pub(super) fn merge_dead(&mut self, now: Instant, incarnation: u32, name: &str, from: &str, out: &mut Vec<Action>) {
        if name == self.local.name.as_str() {
            self.rumour_about_us(incarnation);
            return;
        }
        let Some(id) = self.members.id_of(name) else { return };
        let Some(m) = self.members.get(id) else { return };
        let left = from == name;
        let state = if left { MemberState::Left } else { MemberState::Dead };
        if !precedes(Claim::new(state, incarnation), m.claim()) {
            return;
        }
        let was = m.state;
        let name = m.name.clone();
        self.clear_suspicion(id);
        self.members.set_state(id, state, &mut self.rng);
        if let Some(m) = self.members.get_mut(id) {
            m.incarnation = incarnation;
            m.since = now;
        }
        self.bury(now, id);
        if left {
            self.event(Event::Left { name: name.clone() }, out);
        } else if was.is_live() {
            self.event(Event::Failed { name: name.clone(), incarnation, local: false }, out);
        }
        self.queue_update(id.queue_key(), &Message::Dead { incarnation, name: name.as_str(), from });
    }

    /// Our suspicion of `id` may have run out: declare it dead, unless it
    /// refuted in the meantime (then the suspicion is gone or newer). Before
    /// the deadline, the wake-ups are last-chance checks of the suspect.
    pub(super) fn on_suspicion_timeout(&mut self, now: Instant, id: MemberId, out: &mut Vec<Action>) {
        let spacing = self.config.probe_timeout;
        let Some(m) = self.members.get_mut(id) else { return };
        let (state, incarnation, addr, name) = (m.state, m.incarnation, m.addr.get(), m.name.clone());
        let Some(s) = m.suspicion.as_mut() else { return };
        if state != MemberState::Suspect || s.incarnation != incarnation {
            return;
        }
        if s.deadline > now {
            s.checks += 1;
            s.timer_at = s.wake_at(spacing);
            self.timers.insert(s.timer_at, Timer::Suspicion(id));
            let seq = self.next_seq();
            let me = self.local.name.clone();
            let check = [
                Message::Ping { seq, target: name.as_str() },
                Message::Suspect { incarnation, name: name.as_str(), from: me.as_str() },
            ];
            self.send_with_gossip(addr, &check, out);
            // And ask a peer: if we missed a refutation, it likely has it.
            let mut peer = core::mem::take(&mut self.scratch);
            self.members.random_live(1, &[id], &mut self.rng, &mut peer);
            if let Some(via) = peer.first().and_then(|&p| self.members.get(p)).map(|m| m.addr.get()) {
                self.send_with_gossip(via, &[Message::Query { name: name.as_str() }], out);
            }
            self.scratch = peer;
            return;
        }
        self.clear_suspicion(id);
        self.members.set_state(id, MemberState::Dead, &mut self.rng);
        if let Some(m) = self.members.get_mut(id) {
            m.since = now;
        }
        self.bury(now, id);
        self.stats.failures_declared += 1;
        self.event(Event::Failed { name: name.clone(), incarnation, local: true }, out);
        let me = self.local.name.clone();
        self.queue_update(id.queue_key(), &Message::Dead { incarnation, name: name.as_str(), from: me.as_str() });
    }

    /// Answers a [`Message::Query`] with our record of `name`, alone in
    /// its datagram.
    pub(super) fn on_query(&mut self, from: SocketAddr, name: &str, out: &mut Vec<Action>) {
        let me = self.local.name.clone();
        let mut w = self.writer();
        let written = if name == me.as_str() {
            w.push(&self.self_alive())
        } else {
            let Some(m) = self.members.id_of(name).and_then(|id| self.members.get(id)) else { return };
            // A suspicion is passed on with its accuser, not as our own
            // confirmation.
            let accuser = m.suspicion.as_ref().and_then(|s| s.accusers.first()).unwrap_or(&me);
            w.push(&m.record(accuser.as_str(), me.as_str()))
        };
        if written.is_ok() {
            self.emit(from, w, out);
        }
    }

    /// Starts (or restarts) a suspicion of `id` at `incarnation`.
    pub(super) fn start_suspicion(&mut self, now: Instant, id: MemberId, incarnation: u32, accuser: MemberName) {
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
        let mut s = Suspicion::new(incarnation, accuser, now, min, max, k);
        s.timer_at = s.wake_at(c.probe_timeout);
        self.timers.insert(s.timer_at, Timer::Suspicion(id));
        self.members.set_state(id, MemberState::Suspect, &mut self.rng);
        if let Some(m) = self.members.get_mut(id) {
            m.incarnation = incarnation;
            m.since = now;
            m.suspicion = Some(alloc::boxed::Box::new(s));
        }
    }

    fn clear_suspicion(&mut self, id: MemberId) {
        if let Some(s) = self.members.get_mut(id).and_then(|m| m.suspicion.take()) {
            self.timers.remove(s.timer_at, Timer::Suspicion(id));
        }
    }

    /// A member just died or left: gossip to it for a while, reap it later.
    fn bury(&mut self, now: Instant, id: MemberId) {
        if !self.dead_recent.contains(&id) {
            self.dead_recent.push(id);
        }
        self.timers.insert(now + self.config.dead_member_retention, Timer::Reap(id));
    }

    pub(super) fn on_reap(&mut self, now: Instant, id: MemberId) {
        let Some(m) = self.members.get(id) else { return };
        if m.state.is_live() || now - m.since < self.config.dead_member_retention {
            return;
        }
        self.members.remove(id);
        // The slot may be reused: its update must not outlive the member.
        self.queue.remove(id.queue_key());
        self.dead_recent.retain(|&d| d != id);
    }

    /// A suspect or dead rumour about ourselves: outbid it, or, when it is
    /// stale but still going round (our refutation may have been lost),
    /// send our current alive again.
    fn rumour_about_us(&mut self, incarnation: u32) {
        if self.phase != Phase::Running {
            return;
        }
        if incarnation >= self.incarnation {
            self.refute(incarnation);
        } else if !self.queue.contains(QueueKey::Local) {
            self.queue_self_alive();
        }
    }

    /// Outbids a rumour about ourselves with a higher incarnation.
    pub(super) fn refute(&mut self, rumour: u32) {
        self.incarnation = self.incarnation.max(rumour).saturating_add(1);
        self.stats.refutations += 1;
        self.awareness.apply(1);
        self.queue_self_alive();
    }

    pub(super) fn queue_self_alive(&mut self) {
        let bytes = encode_message(&self.self_alive());
        self.queue.push(QueueKey::Local, bytes, self.config.max_queued_updates.get() as usize);
    }

    pub(super) fn queue_suspect(&mut self, id: MemberId, name: &MemberName, incarnation: u32, from: &str) {
        self.queue_update(id.queue_key(), &Message::Suspect { incarnation, name: name.as_str(), from });
    }

    pub(super) fn queue_update(&mut self, key: QueueKey, msg: &Message<'_>) {
        let max = self.config.max_queued_updates.get() as usize;
        self.queue.push(key, encode_message(msg), max);
    }
}
