//! Failure detection: the protocol period, direct and indirect probes,
//! relaying for others, and Lifeguard's local health.

use alloc::vec::Vec;
use core::net::SocketAddr;

use rand_core::Rng;

use super::{Phase, Probe, Relay, Swim};
use crate::io::{Action, Event};
use crate::member::MemberState;
use crate::members::MemberId;
use crate::timers::Timer;
use crate::wire::Message;

impl<R: Rng> Swim<R> {
    /// The start of a protocol period: judge the last period's probes,
    /// then probe the next `probe_targets` members.
    pub(super) fn on_probe_tick(&mut self, now: crate::Instant, out: &mut Vec<Action>) {
        self.finish_probes(now, out);
        if self.phase != Phase::Left {
            self.start_probes(now, out);
        }
        let period = self.awareness.scale(self.config.probe_interval);
        self.timers.insert(now + period, Timer::ProbeTick);
    }

    fn finish_probes(&mut self, now: crate::Instant, out: &mut Vec<Action>) {
        let probes = core::mem::take(&mut self.probes);
        for p in &probes {
            self.judge(now, p, out);
        }
        self.probes = probes;
        self.probes.clear();
    }

    /// Settles one probe: an ack lowers our health score; silence raises
    /// it (unless peers' nacks show our own network works) and makes the
    /// target suspect.
    fn judge(&mut self, now: crate::Instant, p: &Probe, out: &mut Vec<Action>) {
        self.timers.remove(p.timeout_at, Timer::ProbeTimeout(p.seq));
        if p.acked {
            self.stats.probes_acked += 1;
            self.awareness.apply(-1);
            return;
        }
        self.stats.probes_failed += 1;
        let delta = if p.expected_nacks > 0 { p.expected_nacks - p.nacks.min(p.expected_nacks) } else { 1 };
        self.awareness.apply(i64::from(delta));
        self.suspect_after_probe(now, p.target, out);
    }

    fn suspect_after_probe(&mut self, now: crate::Instant, id: MemberId, out: &mut Vec<Action>) {
        let Some(m) = self.members.get(id) else { return };
        let (name, incarnation, state) = (m.name.clone(), m.incarnation, m.state);
        let me = self.local.name.clone();
        if state == MemberState::Suspect {
            // Already suspected by someone else: our own failed probe is an
            // independent confirmation, which shortens the suspicion here
            // and, passed on, everywhere else.
            self.confirm_suspicion(id, &name, incarnation, me.as_str());
            return;
        }
        if state != MemberState::Alive {
            return;
        }
        self.stats.suspicions_raised += 1;
        self.start_suspicion(now, id, incarnation, me.clone());
        self.event(Event::Suspected { name: name.clone(), incarnation, local: true }, out);
        self.queue_suspect(id, &name, incarnation, me.as_str());
    }

    fn start_probes(&mut self, now: crate::Instant, out: &mut Vec<Action>) {
        let wanted = self.config.probe_targets.get() as usize;
        let mut chosen: Vec<MemberId> = core::mem::take(&mut self.scratch);
        chosen.clear();
        // A few extra draws let p > 1 skip a target already chosen this
        // period when a round ends mid-way.
        for _ in 0..wanted * 2 {
            if chosen.len() == wanted.min(self.members.live_len()) {
                break;
            }
            let Some(id) = self.members.next_probe_target(&mut self.rng) else { break };
            if !chosen.contains(&id) {
                chosen.push(id);
            }
        }
        let timeout = self.awareness.scale(self.config.probe_timeout);
        for &id in &chosen {
            let Some(m) = self.members.get(id) else { continue };
            let (name, addr, state, incarnation) = (m.name.clone(), m.addr.get(), m.state, m.incarnation);
            let seq = self.next_seq();
            let ping = Message::Ping { seq, target: name.as_str() };
            // The buddy system: a suspect learns of the suspicion from the
            // probe itself and can refute at once.
            if state == MemberState::Suspect {
                let me = self.local.name.clone();
                let suspect = Message::Suspect { incarnation, name: name.as_str(), from: me.as_str() };
                self.send_with_gossip(addr, &[ping, suspect], out);
            } else {
                self.send_with_gossip(addr, &[ping], out);
            }
            self.stats.probes_sent += 1;
            let timeout_at = now + timeout;
            self.timers.insert(timeout_at, Timer::ProbeTimeout(seq));
            self.probes.push(Probe { seq, target: id, timeout_at, acked: false, expected_nacks: 0, nacks: 0 });
        }
        self.scratch = chosen;
    }

    /// The direct ping went unanswered: ask `indirect_checks` others.
    pub(super) fn on_probe_timeout(&mut self, _now: crate::Instant, seq: u32, out: &mut Vec<Action>) {
        let Some(i) = self.probes.iter().position(|p| p.seq == seq) else { return };
        if self.probes[i].acked {
            return;
        }
        let target = self.probes[i].target;
        let Some(m) = self.members.get(target) else { return };
        let (name, addr) = (m.name.clone(), m.addr.get());
        let mut helpers = core::mem::take(&mut self.scratch);
        self.members.random_live(self.config.indirect_checks as usize, &[target], &mut self.rng, &mut helpers);
        for &h in &helpers {
            let Some(via) = self.members.get(h).map(|m| m.addr.get()) else { continue };
            let req = Message::PingReq { seq, target: name.as_str(), addr };
            self.send_with_gossip(via, &[req], out);
            self.stats.ping_reqs_sent += 1;
        }
        self.probes[i].expected_nacks = helpers.len() as u32;
        self.scratch = helpers;
    }

    pub(super) fn on_ping(&mut self, from: SocketAddr, seq: u32, target: &str, out: &mut Vec<Action>) {
        if target != self.local.name.as_str() {
            // Meant for a member that used to have our address.
            self.stats.misdirected += 1;
            return;
        }
        if self.accused_by_sender && self.phase == Phase::Running {
            // The buddy system: the prober suspects us. Answer it with our
            // refutation on the ack itself, not only when the queue's order
            // happens to pick it.
            let (name, meta) = (self.local.name.clone(), self.local.meta.clone());
            let alive = Message::Alive {
                incarnation: self.incarnation,
                name: name.as_str(),
                addr: self.local.addr,
                meta: &meta,
            };
            self.send_with_gossip(from, &[Message::Ack { seq }, alive], out);
            return;
        }
        self.send_with_gossip(from, &[Message::Ack { seq }], out);
    }

    pub(super) fn on_ping_req(
        &mut self,
        now: crate::Instant,
        from: SocketAddr,
        seq: u32,
        target: &str,
        addr: SocketAddr,
        out: &mut Vec<Action>,
    ) {
        if target == self.local.name.as_str() {
            self.send_with_gossip(from, &[Message::Ack { seq }], out);
            return;
        }
        // One ping per request and a bound on requests in flight: a
        // ping-req cannot be used to amplify traffic.
        if self.relays.len() >= self.config.max_relays.get() as usize {
            self.stats.relays_dropped += 1;
            return;
        }
        let ours = self.next_seq();
        self.send_with_gossip(addr, &[Message::Ping { seq: ours, target }], out);
        // Lifeguard: nack at 80% of the probe timeout, so the nack reaches
        // the requester before its own probe period ends.
        let wait = crate::Duration::from_millis(self.config.probe_timeout.as_millis() * 4 / 5);
        let deadline = now + wait;
        self.relays.insert(ours, Relay { requester: from, seq, deadline });
        self.timers.insert(deadline, Timer::Relay(ours));
        self.stats.relays += 1;
    }

    pub(super) fn on_ack(&mut self, seq: u32, out: &mut Vec<Action>) {
        self.stats.acks_received += 1;
        if let Some(p) = self.probes.iter_mut().find(|p| p.seq == seq) {
            p.acked = true;
            return;
        }
        if let Some(r) = self.relays.remove(&seq) {
            self.timers.remove(r.deadline, Timer::Relay(seq));
            self.send_with_gossip(r.requester, &[Message::Ack { seq: r.seq }], out);
        }
    }

    pub(super) fn on_nack(&mut self, now: crate::Instant, seq: u32, out: &mut Vec<Action>) {
        let Some(i) = self.probes.iter().position(|p| p.seq == seq) else { return };
        self.stats.nacks_received += 1;
        let p = &mut self.probes[i];
        p.nacks = p.nacks.saturating_add(1);
        // Every helper has reported the target silent and the direct ping
        // timed out long ago: nothing is left to wait for.
        if !p.acked && p.nacks >= p.expected_nacks {
            let p = self.probes.swap_remove(i);
            self.judge(now, &p, out);
        }
    }

    pub(super) fn on_relay_timeout(&mut self, seq: u32, out: &mut Vec<Action>) {
        if let Some(r) = self.relays.remove(&seq) {
            self.send_with_gossip(r.requester, &[Message::Nack { seq: r.seq }], out);
        }
    }
}
