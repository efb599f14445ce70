//! Joining through seeds, the member-table sync that answers a join,
//! the gossip timer, and graceful leave.

use alloc::vec::Vec;
use core::net::SocketAddr;

use rand_core::Rng;

use super::{Joining, Phase, Swim};
use crate::broadcast::QueueKey;
use crate::io::{Action, Error, Event};
use crate::members::MemberId;
use crate::rng::Random;
use crate::time::Instant;
use crate::timers::Timer;
use crate::wire::{Message, PacketWriter, encode_message};

/// The most datagrams one sync reply may take. A reply is bounded so a
/// request cannot draw unbounded traffic; members beyond it are learnt
/// by gossip.
pub const MAX_SYNC_PACKETS: usize = 64;

/// The most seeds a join contacts.
pub const MAX_SEEDS: usize = 64;

/// memberlist's push-pull scaling: the interval as configured up to 32
/// members, then one more multiple per doubling beyond 32, so the sync
/// traffic of a large cluster grows as `n log n` rather than `n^2`.
pub fn push_pull_scale(interval: crate::Duration, n: usize) -> crate::Duration {
    const THRESHOLD: usize = 32;
    if n <= THRESHOLD {
        return interval;
    }
    let ratio = libm::log2(n as f64) - libm::log2(THRESHOLD as f64);
    let mult = libm::ceil(ratio) as u64 + 1;
    interval.saturating_mul(mult)
}

impl<R: Rng> Swim<R> {
    pub(super) fn on_join(&mut self, now: Instant, seeds: &[SocketAddr], out: &mut Vec<Action>) -> Result<(), Error> {
        if self.phase != Phase::Running {
            return Err(Error::Leaving);
        }
        let me = self.local.addr;
        let seeds: Vec<SocketAddr> = seeds.iter().copied().filter(|s| *s != me).take(MAX_SEEDS).collect();
        if seeds.is_empty() {
            return Err(Error::NoSeeds);
        }
        self.ensure_started(now);
        if let Some(old) = self.joining.take() {
            self.timers.remove(old.retry_at, Timer::JoinRetry);
        }
        // Announce ourselves: the alive update rides on our first packets.
        self.queue_self_alive();
        self.joining = Some(Joining { seeds, attempts: 0, retry_at: now });
        self.send_join_requests(now, out);
        Ok(())
    }

    fn send_join_requests(&mut self, now: Instant, out: &mut Vec<Action>) {
        let Some(mut j) = self.joining.take() else { return };
        j.attempts += 1;
        let alive = encode_message(&self.self_alive());
        for &seed in &j.seeds {
            let mut w = self.writer();
            // The receiver applies our alive before it answers, so its
            // reply already includes us.
            if w.push(&Message::SyncRequest).is_ok() && w.push_encoded(&alive).is_ok() {
                self.emit(seed, w, out);
            }
        }
        j.retry_at = now + self.config.join_retry_interval;
        self.timers.insert(j.retry_at, Timer::JoinRetry);
        self.joining = Some(j);
    }

    pub(super) fn on_join_retry(&mut self, now: Instant, out: &mut Vec<Action>) {
        let Some(j) = self.joining.as_ref() else { return };
        if j.attempts >= self.config.join_attempts.get() {
            self.joining = None;
            self.event(Event::JoinFailed, out);
            return;
        }
        self.send_join_requests(now, out);
    }

    pub(super) fn on_sync_reply(&mut self, from: SocketAddr, out: &mut Vec<Action>) {
        let Some(j) = self.joining.take() else { return };
        self.timers.remove(j.retry_at, Timer::JoinRetry);
        self.event(Event::JoinCompleted { seed: from }, out);
    }

    /// Sends our whole table to `to` (ourselves first), bounded by
    /// [`MAX_SYNC_PACKETS`] datagrams. A request carries
    /// [`Message::SyncRequest`] in its first datagram only, so it draws one
    /// reply; every reply datagram carries [`Message::SyncReply`].
    pub(super) fn send_table(&mut self, to: SocketAddr, request: bool, out: &mut Vec<Action>) {
        let budget = self.config.packet_budget;
        let me = self.local.name.clone();
        let head = if request { Message::SyncRequest } else { Message::SyncReply };
        let mut w = PacketWriter::new(budget);
        let _ = w.push(&head);
        let _ = w.push(&self.self_alive());
        let mut full = Vec::new();
        for (_, m) in self.members.iter() {
            // Our table speaks for us: suspicions and deaths in it are ours.
            let msg = m.record(me.as_str(), me.as_str());
            if w.push(&msg).is_ok() {
                continue;
            }
            full.push(core::mem::replace(&mut w, PacketWriter::new(budget)));
            if full.len() >= MAX_SYNC_PACKETS {
                break;
            }
            if !request {
                let _ = w.push(&head);
            }
            let _ = w.push(&msg);
        }
        if full.len() < MAX_SYNC_PACKETS {
            full.push(w);
        }
        for w in full {
            self.emit(to, w, out);
        }
    }

    /// Anti-entropy: every push-pull interval, exchange whole tables with
    /// one random member, so members that gossip missed are still learnt.
    pub(super) fn on_push_pull_tick(&mut self, now: Instant, out: &mut Vec<Action>) {
        let Some(interval) = self.config.push_pull_interval else { return };
        let period = push_pull_scale(interval, self.num_live());
        self.timers.insert(now + period, Timer::PushPull);
        let mut peer = core::mem::take(&mut self.scratch);
        self.members.random_live(1, &[], &mut self.rng, &mut peer);
        if let Some(addr) = peer.first().and_then(|&id| self.members.get(id)).map(|m| m.addr.get()) {
            self.send_table(addr, true, out);
        }
        self.scratch = peer;
    }

    /// Every `gossip_interval`: send queued updates to a few random
    /// members, recently dead ones included so they can refute.
    pub(super) fn on_gossip_tick(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.timers.insert(now + self.config.gossip_interval, Timer::Gossip);
        self.gossip(now, out);
    }

    pub(super) fn gossip(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.queue.is_empty() {
            return;
        }
        let window = self.config.gossip_to_the_dead_time;
        let members = &self.members;
        self.dead_recent.retain(|&id| members.get(id).is_some_and(|m| !m.state.is_live() && now - m.since < window));
        let mut targets = core::mem::take(&mut self.scratch);
        self.gossip_targets(self.config.gossip_nodes as usize, &mut targets);
        for &id in &targets {
            let Some(addr) = self.members.get(id).map(|m| m.addr.get()) else { continue };
            self.send_with_gossip(addr, &[], out);
            if self.queue.is_empty() {
                break;
            }
        }
        self.scratch = targets;
    }

    /// Up to `k` distinct members drawn uniformly from the live ones and
    /// the recently dead ones.
    fn gossip_targets(&mut self, k: usize, out: &mut Vec<MemberId>) {
        if self.dead_recent.is_empty() {
            self.members.random_live(k, &[], &mut self.rng, out);
            return;
        }
        let live = self.members.live_len();
        let total = live + self.dead_recent.len();
        let mut from_live = 0;
        let mut dead = Vec::new();
        for _ in 0..k.min(total) {
            let i = Random::below(&mut self.rng, total);
            if i < live {
                from_live += 1;
            } else {
                let id = self.dead_recent[i - live];
                if !dead.contains(&id) {
                    dead.push(id);
                }
            }
        }
        self.members.random_live(from_live, &[], &mut self.rng, out);
        out.extend(dead);
    }

    pub(super) fn on_leave(&mut self, now: Instant, out: &mut Vec<Action>) -> Result<(), Error> {
        if self.phase != Phase::Running {
            return Err(Error::Leaving);
        }
        self.ensure_started(now);
        self.phase = Phase::Leaving;
        if let Some(j) = self.joining.take() {
            self.timers.remove(j.retry_at, Timer::JoinRetry);
        }
        let name = self.local.name.clone();
        self.queue_update(
            QueueKey::Local,
            &Message::Dead { incarnation: self.incarnation, name: name.as_str(), from: name.as_str() },
        );
        self.timers.insert(now + self.config.leave_timeout, Timer::LeaveDeadline);
        if self.members.live_len() == 0 {
            // No one to tell.
            self.queue.remove(QueueKey::Local);
        } else {
            self.gossip(now, out);
        }
        Ok(())
    }

    pub(super) fn complete_leave(&mut self, out: &mut Vec<Action>) {
        if self.phase == Phase::Left {
            return;
        }
        self.phase = Phase::Left;
        self.timers = Default::default();
        self.probes.clear();
        self.relays.clear();
        self.event(Event::LeaveCompleted, out);
    }
}
