//! The [`Swim`] state machine: one door in, actions out.

mod lifecycle;
pub use lifecycle::{MAX_SEEDS, MAX_SYNC_PACKETS, push_pull_scale};
mod merge;
mod probe;
#[cfg(test)]
mod tests;

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::net::SocketAddr;

use rand_core::Rng;

use crate::awareness::Awareness;
use crate::broadcast::{BroadcastQueue, retransmit_limit};
use crate::config::Config;
use crate::io::{Action, Error, Event, Input};
use crate::member::{MemberState, MemberView};
use crate::members::{MemberId, Members, ProbeSelector};
use crate::name::MemberName;
use crate::rng::Random;
use crate::stats::Stats;
use crate::time::Instant;
use crate::timers::Timers;
use crate::wire::{self, Message, Messages, PacketWriter};

/// Who we are: the local member's name, address and metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Our unique name, kept across restarts.
    pub name: MemberName,
    /// The address others reach us at.
    pub addr: SocketAddr,
    /// Application metadata, at most `max_meta_len` bytes.
    pub meta: Vec<u8>,
}

impl Identity {
    /// An identity with no metadata.
    pub fn new(name: MemberName, addr: SocketAddr) -> Self {
        Identity { name, addr, meta: Vec::new() }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Running,
    Leaving,
    Left,
}

/// One of our probes in flight.
#[derive(Clone, Debug)]
struct Probe {
    seq: u32,
    target: MemberId,
    timeout_at: Instant,
    acked: bool,
    expected_nacks: u32,
    nacks: u32,
}

/// A ping-req we relay for another member.
#[derive(Clone, Copy, Debug)]
struct Relay {
    requester: SocketAddr,
    seq: u32,
    deadline: Instant,
}

#[derive(Clone, Debug)]
struct Joining {
    seeds: Vec<SocketAddr>,
    attempts: u32,
    retry_at: Instant,
}

/// A SWIM + Lifeguard member, as a pure state machine.
///
/// Feed it inputs with [`Swim::handle`] (or the `Vec`-returning wrappers)
/// and carry out the [`Action`]s it emits. It never reads a clock, never
/// does I/O, draws randomness only from the injected `R`, and never panics:
/// the same configuration, seed and inputs give the same actions, byte for
/// byte.
pub struct Swim<R> {
    config: Config,
    rng: R,
    local: Identity,
    incarnation: u32,
    phase: Phase,
    members: Members,
    queue: BroadcastQueue,
    timers: Timers,
    awareness: Awareness,
    stats: Stats,
    probes: Vec<Probe>,
    relays: BTreeMap<u32, Relay>,
    joining: Option<Joining>,
    /// Dead members still within `gossip_to_the_dead_time`, for gossip.
    dead_recent: Vec<MemberId>,
    next_seq: u32,
    /// The datagram being handled accuses us (suspect or dead): our answer
    /// to its sender carries our alive, whatever the queue holds.
    accused_by_sender: bool,
    started: bool,
    now: Instant,
    reported: Option<Instant>,
    scratch: Vec<MemberId>,
    /// Recycled datagram buffers.
    spare: Vec<Vec<u8>>,
}

/// The most recycled buffers kept.
const MAX_SPARE_BUFFERS: usize = 8;

impl<R> core::fmt::Debug for Swim<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Swim")
            .field("name", &self.local.name)
            .field("incarnation", &self.incarnation)
            .field("phase", &self.phase)
            .field("members", &self.members)
            .finish_non_exhaustive()
    }
}

impl<R: Rng> Swim<R> {
    /// A member that knows only itself. `rng` is its only source of
    /// randomness: seed it to make runs reproducible.
    pub fn new(config: Config, local: Identity, mut rng: R) -> Result<Self, Error> {
        config.validate()?;
        if local.meta.len() > config.max_meta_len {
            return Err(Error::MetaTooLong);
        }
        let hash_seed = Random::next_u64(&mut rng);
        Ok(Swim {
            awareness: Awareness::new(config.awareness_max_multiplier.get()),
            config,
            rng,
            local,
            incarnation: 0,
            phase: Phase::Running,
            members: Members::new(hash_seed),
            queue: BroadcastQueue::default(),
            timers: Timers::default(),
            stats: Stats::default(),
            probes: Vec::new(),
            relays: BTreeMap::new(),
            joining: None,
            dead_recent: Vec::new(),
            next_seq: 0,
            accused_by_sender: false,
            started: false,
            now: Instant::ZERO,
            reported: None,
            scratch: Vec::new(),
            spare: Vec::new(),
        })
    }

    /// The one door: applies `input` at `now` and appends what to do to
    /// `out` (which is not cleared, so a runtime can reuse one buffer).
    ///
    /// `now` must not go backwards; an earlier `now` is taken as the latest
    /// one seen. Refused inputs (`Err`) change no protocol state; only the
    /// latest time seen and the counters advance.
    pub fn handle(&mut self, now: Instant, input: Input<'_>, out: &mut Vec<Action>) -> Result<(), Error> {
        let now = now.max(self.now);
        self.now = now;
        let result = match input {
            Input::Packet { from, bytes } => self.on_packet(now, from, bytes, out),
            Input::Timeout => {
                self.on_timeout(now, out);
                Ok(())
            }
            Input::Join { seeds } => self.on_join(now, seeds, out),
            Input::Leave => self.on_leave(now, out),
        };
        // A leave is announced once its update has had all its transmissions.
        if self.phase == Phase::Leaving && !self.queue.contains(crate::broadcast::QueueKey::Local) {
            self.complete_leave(out);
        }
        self.report_deadline(out);
        result
    }

    /// A datagram arrived: [`Swim::handle`] with [`Input::Packet`].
    pub fn handle_packet(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) -> Result<Vec<Action>, Error> {
        let mut out = Vec::new();
        self.handle(now, Input::Packet { from, bytes }, &mut out).map(|()| out)
    }

    /// The deadline passed: [`Swim::handle`] with [`Input::Timeout`].
    pub fn handle_timeout(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        // A timeout is never refused.
        let _ = self.handle(now, Input::Timeout, &mut out);
        out
    }

    /// Joins through `seeds`: [`Swim::handle`] with [`Input::Join`].
    pub fn join(&mut self, now: Instant, seeds: &[SocketAddr]) -> Result<Vec<Action>, Error> {
        let mut out = Vec::new();
        self.handle(now, Input::Join { seeds }, &mut out).map(|()| out)
    }

    /// Leaves gracefully: [`Swim::handle`] with [`Input::Leave`].
    pub fn leave(&mut self, now: Instant) -> Result<Vec<Action>, Error> {
        let mut out = Vec::new();
        self.handle(now, Input::Leave, &mut out).map(|()| out)
    }

    /// Takes back the buffer of a sent [`Action::Send`] datagram for reuse
    /// (up to a small bound), so a runtime that always recycles sends
    /// without allocating.
    pub fn recycle(&mut self, packet: crate::wire::Datagram) {
        let buf = packet.into_vec();
        if self.spare.len() < MAX_SPARE_BUFFERS && buf.capacity() >= self.config.packet_budget {
            self.spare.push(buf);
        }
    }

    /// Replaces the randomized round-robin probe order.
    pub fn set_probe_selector(&mut self, selector: Box<dyn ProbeSelector + Send>) {
        self.members.set_selector(selector, &mut self.rng);
    }
}

impl<R> Swim<R> {
    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Our identity.
    pub fn local(&self) -> &Identity {
        &self.local
    }

    /// Our current incarnation number.
    pub fn incarnation(&self) -> u32 {
        self.incarnation
    }

    /// Counters since start.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Lifeguard's local health score, `0..awareness_max_multiplier`
    /// (0 is healthy).
    pub fn local_health(&self) -> u32 {
        self.awareness.score()
    }

    /// Updates waiting in the piggyback queue (memberlist's `NumQueued`).
    pub fn queued_updates(&self) -> usize {
        self.queue.len()
    }

    /// The earliest time the state machine wants to be woken.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Members alive or suspect, ourselves included: the `n` of the
    /// protocol's formulas.
    pub fn num_live(&self) -> usize {
        self.members.live_len() + 1
    }

    /// Whether a graceful leave has completed (the member ignores input).
    pub fn has_left(&self) -> bool {
        self.phase == Phase::Left
    }

    /// Every member we know, ourselves first, then in table order
    /// (tombstones of dead and departed members included until reaped).
    /// The order is deterministic but not sorted.
    pub fn members(&self) -> impl Iterator<Item = MemberView<'_>> + '_ {
        let me = MemberView {
            name: &self.local.name,
            addr: self.local.addr,
            state: match self.phase {
                Phase::Running => MemberState::Alive,
                Phase::Leaving | Phase::Left => MemberState::Left,
            },
            incarnation: self.incarnation,
            meta: &self.local.meta,
            is_local: true,
        };
        core::iter::once(me).chain(self.members.iter().map(|(_, m)| m.view()))
    }

    /// One member by name (ourselves included).
    pub fn member(&self, name: &str) -> Option<MemberView<'_>> {
        if name == self.local.name.as_str() {
            return self.members().next();
        }
        self.members.get(self.members.id_of(name)?).map(|m| m.view())
    }

    fn report_deadline(&mut self, out: &mut Vec<Action>) {
        let next = self.timers.next();
        if next != self.reported {
            if let Some(at) = next {
                out.push(Action::SetTimer(at));
            }
            self.reported = next;
        }
    }
}

impl<R: Rng> Swim<R> {
    fn ensure_started(&mut self, now: Instant) {
        if self.started {
            return;
        }
        self.started = true;
        // A random stagger keeps members started together from probing
        // and gossiping in lockstep.
        let probe = self.rng.below(self.config.probe_interval.as_millis() as usize) as u64;
        let gossip = self.rng.below(self.config.gossip_interval.as_millis() as usize) as u64;
        self.timers.insert(now + crate::time::Duration::from_millis(probe), crate::timers::Timer::ProbeTick);
        self.timers.insert(now + crate::time::Duration::from_millis(gossip), crate::timers::Timer::Gossip);
        if let Some(pp) = self.config.push_pull_interval {
            let at = self.rng.below(pp.as_millis() as usize) as u64;
            self.timers.insert(now + crate::time::Duration::from_millis(at), crate::timers::Timer::PushPull);
        }
    }

    fn on_packet(&mut self, now: Instant, from: SocketAddr, bytes: &[u8], out: &mut Vec<Action>) -> Result<(), Error> {
        self.stats.packets_received += 1;
        self.stats.bytes_received += bytes.len() as u64;
        if self.phase == Phase::Left {
            return Ok(());
        }
        let mut msgs = Messages::new();
        if let Err(e) = wire::decode(bytes, &mut msgs) {
            self.stats.rejected[e.index()] += 1;
            return Err(Error::Rejected(e));
        }
        self.ensure_started(now);
        // Membership updates first, probe traffic second: a suspicion that
        // rides on a ping (the buddy system) is refuted before the ack is
        // built, so the refutation travels back on the ack itself.
        let me = self.local.name.as_str();
        self.accused_by_sender = msgs.iter().any(|m| match m {
            Message::Suspect { name, .. } => *name == me,
            Message::Dead { name, from, .. } => *name == me && *from != me,
            _ => false,
        });
        let updates = msgs.iter().filter(|m| m.is_update());
        let rest = msgs.iter().filter(|m| !m.is_update());
        for msg in updates.chain(rest) {
            self.apply(now, from, msg.clone(), out);
        }
        self.accused_by_sender = false;
        Ok(())
    }

    fn apply(&mut self, now: Instant, from: SocketAddr, msg: Message<'_>, out: &mut Vec<Action>) {
        match msg {
            Message::Ping { seq, target } => self.on_ping(from, seq, target, out),
            Message::PingReq { seq, target, addr } => self.on_ping_req(now, from, seq, target, addr, out),
            Message::Ack { seq } => self.on_ack(seq, out),
            Message::Nack { seq } => self.on_nack(now, seq, out),
            Message::Alive { incarnation, name, addr, meta } => {
                self.merge_alive(now, incarnation, name, addr, meta, out)
            }
            Message::Suspect { incarnation, name, from } => self.merge_suspect(now, incarnation, name, from, out),
            Message::Dead { incarnation, name, from } => self.merge_dead(now, incarnation, name, from, out),
            Message::SyncRequest => self.send_table(from, false, out),
            Message::SyncReply => self.on_sync_reply(from, out),
            Message::Query { name } => self.on_query(from, name, out),
        }
    }

    fn on_timeout(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.phase == Phase::Left {
            return;
        }
        self.ensure_started(now);
        while let Some((_, timer)) = self.timers.pop_due(now) {
            use crate::timers::Timer as T;
            match timer {
                T::ProbeTick => self.on_probe_tick(now, out),
                T::ProbeTimeout(seq) => self.on_probe_timeout(now, seq, out),
                T::Relay(seq) => self.on_relay_timeout(seq, out),
                T::Suspicion(id) => self.on_suspicion_timeout(now, id, out),
                T::Reap(id) => self.on_reap(now, id),
                T::Gossip => self.on_gossip_tick(now, out),
                T::PushPull => self.on_push_pull_tick(now, out),
                T::JoinRetry => self.on_join_retry(now, out),
                T::LeaveDeadline => self.complete_leave(out),
            }
            if self.phase == Phase::Left {
                return;
            }
        }
    }

    fn next_seq(&mut self) -> u32 {
        let s = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        s
    }

    /// How many times an update is sent in the cluster as we see it now.
    fn retransmit_limit(&self) -> u32 {
        retransmit_limit(self.config.retransmit_mult.get(), self.num_live())
    }

    /// Sends `head` to `to`, filling the rest of the budget with queued updates.
    /// Our own alive update, as we announce and refute with it.
    fn self_alive(&self) -> Message<'_> {
        Message::Alive {
            incarnation: self.incarnation,
            name: self.local.name.as_str(),
            addr: self.local.addr,
            meta: &self.local.meta,
        }
    }

    /// A writer over a recycled buffer when there is one.
    fn writer(&mut self) -> PacketWriter {
        PacketWriter::with_buffer(self.config.packet_budget, self.spare.pop().unwrap_or_default())
    }

    fn send_with_gossip(&mut self, to: SocketAddr, head: &[Message<'_>], out: &mut Vec<Action>) {
        let mut w = self.writer();
        for m in head {
            // Probe messages are a few dozen bytes: they always fit.
            let _ = w.push(m);
        }
        let limit = self.retransmit_limit();
        self.queue.fill(&mut w, limit);
        if w.is_empty() {
            self.recycle(w.finish());
            return;
        }
        self.emit(to, w, out);
    }

    fn emit(&mut self, to: SocketAddr, w: PacketWriter, out: &mut Vec<Action>) {
        let packet = w.finish();
        self.stats.packets_sent += 1;
        self.stats.bytes_sent += packet.len() as u64;
        out.push(Action::Send { to, packet });
    }

    fn event(&mut self, e: Event, out: &mut Vec<Action>) {
        out.push(Action::Event(e));
    }
}
