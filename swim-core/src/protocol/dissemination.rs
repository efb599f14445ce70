//! Dissemination: the piggyback queue, the gossip timer, and the recently
//! dead that gossip still reaches.
//!
//! Invariants:
//! - at most one queued update per member (a newer one replaces it), and
//!   at most `max_queued_updates` in all besides our own;
//! - our own update (alive, refutation or leave) is never evicted by the
//!   bound: it leaves the queue only once it has had all its
//!   transmissions, or is replaced by a newer one of ours;
//! - `recent_dead` holds only members of the table that are dead or gone;
//! - while gossip runs, the gossip timer is armed exactly when the queue
//!   holds something: an idle member is not woken every `gossip_interval`
//!   to find nothing to send. Ticks stay on the grid they started on
//!   (`last_tick + k × gossip_interval`), as if they had never paused.

use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::api::config::Config;
use crate::protocol::outbox::{Outbox, Piggyback, Piggybacks};
use crate::protocol::retransmit::{Payload, QueueKey, Records, RetransmitQueue};
use crate::protocol::table::{MemberId, Members};
use crate::util::rng::Random;
use crate::util::time::{Duration, Instant};
use crate::util::timers::Timers;
use crate::wire::{Message, encode_message};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// Send queued updates to a few random members.
    Gossip,
}

/// Updates waiting to spread, and where gossip sends them.
#[derive(Debug)]
pub(crate) struct Dissemination {
    config: Arc<Config>,
    pub(crate) queue: RetransmitQueue,
    /// Application broadcasts, apart so they have their own share of
    /// every datagram.
    pub(crate) user: RetransmitQueue,
    next_user: u64,
    /// Dead members still within `gossip_to_the_dead_time`, for gossip.
    recent_dead: Vec<MemberId>,
    /// Whether gossip still goes to the recently dead (not once leaving).
    to_the_dead: bool,
    timers: Timers<Timer>,
    /// When the last gossip tick fired (or the first is due); `None` until
    /// gossip starts and after it stops.
    last_tick: Option<Instant>,
    scratch: Vec<MemberId>,
}

impl Dissemination {
    pub(crate) fn new(config: &Arc<Config>) -> Self {
        Dissemination {
            config: config.clone(),
            queue: RetransmitQueue::default(),
            user: RetransmitQueue::default(),
            next_user: 0,
            recent_dead: Vec::new(),
            to_the_dead: true,
            timers: Timers::default(),
            last_tick: None,
            scratch: Vec::new(),
        }
    }

    /// Starts gossiping at a random offset within one interval.
    pub(crate) fn start(&mut self, now: Instant, rng: &mut dyn Random) {
        let stagger = rng.below(self.config.gossip_interval.as_millis() as usize) as u64;
        let first = now + Duration::from_millis(stagger);
        self.last_tick = Some(first);
        self.timers.insert(first, Timer::Gossip);
    }

    /// Re-arms a paused gossip timer once the queue holds something again,
    /// at the next instant of the tick grid after `now`.
    pub(crate) fn resume(&mut self, now: Instant) {
        let Some(last) = self.last_tick else { return };
        if self.is_idle() || self.timers.next().is_some() {
            return;
        }
        let interval = self.config.gossip_interval.as_millis().max(1);
        let since = now.saturating_duration_since(last).as_millis();
        let next = last + Duration::from_millis((since / interval + 1) * interval);
        self.timers.insert(next, Timer::Gossip);
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.timers.next()
    }

    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        self.timers.pop_due(now)
    }

    pub(crate) fn clear_timers(&mut self) {
        self.timers.clear();
        self.last_tick = None;
    }

    /// Queues an update about the member `id`. An alive or a departure
    /// is the member's own record, encoded from the table when sent; a
    /// suspicion or a death keeps the accuser or declarer it names.
    pub(crate) fn queue_member(&mut self, id: MemberId, msg: &Message<'_>) {
        let payload = match msg {
            Message::Alive { .. } => Payload::Record,
            Message::Dead { name, from, .. } if name == from => Payload::Record,
            _ => Payload::Bytes(encode_message(msg).into_boxed_slice()),
        };
        self.queue.push(id.queue_key(), payload, self.max_queued());
    }

    /// Whether nothing waits to be gossiped.
    pub(crate) fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.user.is_empty()
    }

    /// Queues an application broadcast (encoded) for retransmission.
    pub(crate) fn queue_user(&mut self, msg: &Message<'_>) {
        self.next_user += 1;
        let max = self.config.max_queued_broadcasts.get() as usize;
        self.user.push(QueueKey::User(self.next_user), Payload::Bytes(encode_message(msg).into_boxed_slice()), max);
    }

    /// The piggyback queues, for the outbox to fill datagrams from.
    pub(crate) fn piggybacks<'a>(&'a mut self, limit: u32, records: &'a dyn Records) -> Piggybacks<'a> {
        let user_reserve = self.config.packet_budget * self.config.user_share_percent as usize / 100;
        Piggybacks { members: &mut self.queue, user: &mut self.user, limit, user_reserve, records }
    }

    /// Queues an update about ourselves (replacing our previous one).
    pub(crate) fn queue_local(&mut self, msg: &Message<'_>) {
        self.queue.push(QueueKey::Local, Payload::Bytes(encode_message(msg).into_boxed_slice()), self.max_queued());
    }

    /// Whether an update about ourselves is still being spread.
    pub(crate) fn has_local(&self) -> bool {
        self.queue.contains(QueueKey::Local)
    }

    /// We are leaving: the dead have no use for our leave, and every
    /// transmission it spends on them is one a live member does not get
    /// (with one live peer and one recently dead, all of them could go to
    /// the dead). Gossip goes to live members only from now on.
    pub(crate) fn stop_gossip_to_the_dead(&mut self) {
        self.recent_dead.clear();
        self.to_the_dead = false;
    }

    /// Drops our own pending update (there is no one to tell).
    pub(crate) fn drop_local(&mut self) {
        self.queue.remove(QueueKey::Local);
    }

    fn max_queued(&self) -> usize {
        self.config.max_queued_updates.get() as usize
    }

    /// `id` died or left: keep gossiping to it for a while.
    pub(crate) fn bury(&mut self, id: MemberId) {
        if self.to_the_dead && !self.recent_dead.contains(&id) {
            self.recent_dead.push(id);
        }
    }

    /// `id` left the table: its slot may be reused, so nothing about it
    /// may stay queued.
    pub(crate) fn forget(&mut self, id: MemberId) {
        self.queue.remove(id.queue_key());
        self.recent_dead.retain(|&d| d != id);
    }

    /// Every `gossip_interval`: send queued updates to a few members.
    pub(crate) fn on_gossip_tick(
        &mut self,
        now: Instant,
        members: &Members,
        outbox: &mut Outbox,
        rng: &mut dyn Random,
    ) {
        self.last_tick = Some(now);
        if !self.is_idle() {
            self.timers.insert(now + self.config.gossip_interval, Timer::Gossip);
        }
        self.gossip(now, members, outbox, rng);
    }

    /// Sends queued updates to `gossip_nodes` random members, recently dead
    /// ones included so they can refute. The datagrams are filled when the
    /// outbox is flushed; those left with nothing to carry are not sent.
    pub(crate) fn gossip(&mut self, now: Instant, members: &Members, outbox: &mut Outbox, rng: &mut dyn Random) {
        if self.is_idle() {
            return;
        }
        let window = self.config.gossip_to_the_dead_time;
        self.recent_dead.retain(|&id| members.get(id).is_some_and(|m| !m.state.is_live() && now - m.since < window));
        let mut targets = core::mem::take(&mut self.scratch);
        self.targets(self.config.gossip_nodes as usize, members, rng, &mut targets);
        for &id in &targets {
            if let Some(addr) = members.get(id).map(|m| m.addr.get()) {
                let w = outbox.writer();
                outbox.push(addr, w, Piggyback::Fill);
            }
        }
        self.scratch = targets;
    }

    /// Up to `k` distinct members drawn uniformly from the live ones and
    /// the recently dead ones.
    fn targets(&self, k: usize, members: &Members, rng: &mut dyn Random, out: &mut Vec<MemberId>) {
        if self.recent_dead.is_empty() {
            members.random_live(k, &[], rng, out);
            return;
        }
        let live = members.live_len();
        let total = live + self.recent_dead.len();
        let mut from_live = 0;
        let mut dead = Vec::new();
        for _ in 0..k.min(total) {
            let i = rng.below(total);
            if i < live {
                from_live += 1;
            } else {
                let Some(&id) = self.recent_dead.get(i - live) else { continue };
                if !dead.contains(&id) {
                    dead.push(id);
                }
            }
        }
        members.random_live(from_live, &[], rng, out);
        out.extend(dead);
    }
}
