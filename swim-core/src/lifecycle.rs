//! Life cycle: joining through seeds, the member-table sync that answers a
//! join and runs as anti-entropy (push-pull), and graceful leave.
//!
//! Invariants:
//! - the phase only moves forward: running → leaving → left;
//! - while joining, exactly one join-retry timer is set;
//! - every datagram of a table sync is marked as one (a request's first
//!   datagram with [`Message::SyncRequest`], every other one with
//!   [`Message::SyncReply`]), so its records are merged as records, never
//!   as confirmations, and a request draws exactly one reply.

use alloc::vec::Vec;
use core::net::SocketAddr;

use crate::config::Config;
use crate::dissemination::Dissemination;
use crate::io::{Error, Event};
use crate::membership::Membership;
use crate::outbox::{Outbox, Piggyback};
use crate::rng::Random;
use crate::time::{Duration, Instant};
use crate::timers::Timers;
use crate::wire::Message;

/// The most datagrams one table sync may take. A reply is bounded so a
/// request cannot draw unbounded traffic; members beyond it are learnt
/// by gossip.
pub const MAX_SYNC_PACKETS: usize = 64;

/// The most seeds a join contacts.
pub const MAX_SEEDS: usize = 64;

/// memberlist's push-pull scaling: the interval as configured up to 32
/// members, then one more multiple per doubling beyond 32, so the sync
/// traffic of a large cluster grows as `n log n` rather than `n^2`.
pub fn push_pull_scale(interval: Duration, n: usize) -> Duration {
    const THRESHOLD: usize = 32;
    if n <= THRESHOLD {
        return interval;
    }
    let ratio = libm::log2(n as f64) - libm::log2(THRESHOLD as f64);
    let mult = libm::ceil(ratio) as u64 + 1;
    interval.saturating_mul(mult)
}

/// Where the member is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Running,
    Leaving,
    Left,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timer {
    /// Exchange whole tables with a random member.
    PushPull,
    /// Contact the seeds again.
    JoinRetry,
    /// A graceful leave completes at the latest now.
    LeaveDeadline,
}

#[derive(Clone, Debug)]
struct Joining {
    seeds: Vec<SocketAddr>,
    attempts: u32,
    retry_at: Instant,
}

/// Join, sync and leave.
#[derive(Debug)]
pub(crate) struct Lifecycle {
    config: Config,
    phase: Phase,
    joining: Option<Joining>,
    timers: Timers<Timer>,
    scratch: Vec<crate::members::MemberId>,
}

impl Lifecycle {
    pub(crate) fn new(config: &Config) -> Self {
        Lifecycle {
            config: config.clone(),
            phase: Phase::Running,
            joining: None,
            timers: Timers::default(),
            scratch: Vec::new(),
        }
    }

    /// Starts anti-entropy at a random offset within one interval.
    pub(crate) fn start(&mut self, now: Instant, rng: &mut dyn Random) {
        if let Some(pp) = self.config.push_pull_interval {
            let at = rng.below(pp.as_millis() as usize) as u64;
            self.timers.insert(now + Duration::from_millis(at), Timer::PushPull);
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        self.phase
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.timers.next()
    }

    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Timer> {
        self.timers.pop_due(now)
    }

    /// Starts joining through `seeds` (ourselves excluded): each is sent a
    /// sync request carrying our alive, until one answers.
    pub(crate) fn join(
        &mut self,
        now: Instant,
        seeds: &[SocketAddr],
        membership: &Membership,
        dissem: &mut Dissemination,
        outbox: &mut Outbox,
    ) -> Result<(), Error> {
        if self.phase != Phase::Running {
            return Err(Error::Leaving);
        }
        let me = membership.local().addr;
        let seeds: Vec<SocketAddr> = seeds.iter().copied().filter(|s| *s != me).take(MAX_SEEDS).collect();
        if seeds.is_empty() {
            return Err(Error::NoSeeds);
        }
        if let Some(old) = self.joining.take() {
            self.timers.remove(old.retry_at, Timer::JoinRetry);
        }
        // Announce ourselves: the alive update rides on our first packets.
        membership.queue_self_alive(dissem);
        self.joining = Some(Joining { seeds, attempts: 0, retry_at: now });
        self.send_join_requests(now, membership, outbox);
        Ok(())
    }

    fn send_join_requests(&mut self, now: Instant, membership: &Membership, outbox: &mut Outbox) {
        let Some(j) = self.joining.as_mut() else { return };
        j.attempts += 1;
        for &seed in &j.seeds {
            // The seed applies our alive before it answers, so its reply
            // already includes us.
            outbox.send(seed, &[Message::SyncRequest, membership.self_alive()], Piggyback::None);
        }
        j.retry_at = now + self.config.join_retry_interval;
        self.timers.insert(j.retry_at, Timer::JoinRetry);
    }

    pub(crate) fn on_join_retry(&mut self, now: Instant, membership: &Membership, outbox: &mut Outbox) {
        let Some(j) = self.joining.as_ref() else { return };
        if j.attempts >= self.config.join_attempts.get() {
            self.joining = None;
            outbox.event(Event::JoinFailed);
            return;
        }
        self.send_join_requests(now, membership, outbox);
    }

    /// A table arrived: it completes a join in progress.
    pub(crate) fn on_sync_reply(&mut self, from: SocketAddr, outbox: &mut Outbox) {
        let Some(j) = self.joining.take() else { return };
        self.timers.remove(j.retry_at, Timer::JoinRetry);
        outbox.event(Event::JoinCompleted { seed: from });
    }

    /// Sends our whole table to `to` (ourselves first), bounded by
    /// [`MAX_SYNC_PACKETS`] datagrams, as a request (which draws the
    /// receiver's table) or as a reply.
    pub(crate) fn send_table(&self, to: SocketAddr, request: bool, membership: &Membership, outbox: &mut Outbox) {
        let mut sent = 0;
        let mut head = if request { Message::SyncRequest } else { Message::SyncReply };
        let mut w = outbox.writer();
        let _ = w.push(&head);
        let _ = w.push(&membership.self_alive());
        for (_, m) in membership.table.iter() {
            let record = membership.record(m);
            if w.push(&record).is_ok() {
                continue;
            }
            outbox.push(to, w, Piggyback::None);
            sent += 1;
            if sent >= MAX_SYNC_PACKETS {
                return;
            }
            head = Message::SyncReply;
            w = outbox.writer();
            let _ = w.push(&head);
            let _ = w.push(&record);
        }
        outbox.push(to, w, Piggyback::None);
    }

    /// Anti-entropy: every push-pull interval, exchange whole tables with
    /// one random member, so members that gossip missed are still learnt.
    pub(crate) fn on_push_pull_tick(
        &mut self,
        now: Instant,
        membership: &Membership,
        outbox: &mut Outbox,
        rng: &mut dyn Random,
    ) {
        let Some(interval) = self.config.push_pull_interval else { return };
        self.timers.insert(now + push_pull_scale(interval, membership.num_live()), Timer::PushPull);
        membership.table.random_live(1, &[], rng, &mut self.scratch);
        if let Some(addr) = self.scratch.first().and_then(|&id| membership.table.get(id)).map(|m| m.addr.get()) {
            self.send_table(addr, true, membership, outbox);
        }
    }

    /// Starts a graceful leave: announce it and wait (at most
    /// `leave_timeout`) for the announcement to have all its transmissions.
    pub(crate) fn leave(
        &mut self,
        now: Instant,
        membership: &mut Membership,
        dissem: &mut Dissemination,
        outbox: &mut Outbox,
        rng: &mut dyn Random,
    ) -> Result<(), Error> {
        if self.phase != Phase::Running {
            return Err(Error::Leaving);
        }
        self.phase = Phase::Leaving;
        membership.stop_refuting();
        if let Some(j) = self.joining.take() {
            self.timers.remove(j.retry_at, Timer::JoinRetry);
        }
        let (name, incarnation) = (membership.local().name.clone(), membership.incarnation());
        dissem.queue_local(&Message::Dead { incarnation, name: name.as_str(), from: name.as_str() });
        self.timers.insert(now + self.config.leave_timeout, Timer::LeaveDeadline);
        if membership.table.live_len() == 0 {
            // No one to tell.
            dissem.drop_local();
        } else {
            dissem.gossip(now, &membership.table, outbox, rng);
        }
        Ok(())
    }

    /// The leave is over: the member handles nothing more.
    pub(crate) fn complete_leave(&mut self, outbox: &mut Outbox) {
        if self.phase == Phase::Left {
            return;
        }
        self.phase = Phase::Left;
        self.timers.clear();
        self.joining = None;
        outbox.event(Event::LeaveCompleted);
    }
}
