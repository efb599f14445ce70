//! Life cycle: joining through seeds, the full-state sync over a stream
//! that answers a join and runs as anti-entropy (push-pull), reconnect
//! attempts to failed members, and graceful leave.
//!
//! Invariants:
//! - the phase only moves forward: running → leaving → left;
//! - while joining, exactly one join-retry timer is set;
//! - every frame of a sync is headed by what it is ([`Message::SyncRequest`]
//!   for the side that opened the stream, [`Message::SyncReply`] for the
//!   other), and each side ends with [`Message::SyncEnd`]; records in a
//!   sync are merged as records, never as confirmations;
//! - a table is sent over a stream only, never in datagrams, so no datagram
//!   draws an answer larger than itself.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::SocketAddr;

use crate::api::StreamId;
use crate::api::config::Config;
use crate::api::{Error, Event};
use crate::protocol::delta;
use crate::protocol::dissemination::Dissemination;
use crate::protocol::membership::Membership;
use crate::protocol::outbox::Outbox;
use crate::protocol::streams::{Delta, Purpose, Streams};
use crate::protocol::user::UserData;
use crate::util::rng::Random;
use crate::util::time::{Duration, Instant};
use crate::util::timers::Timers;
use crate::wire::Message;

/// A new member's first push-pulls come this many protocol periods (up to
/// twice as many) apart, starting when its join completes.
pub const EARLY_SYNC_PERIODS: u64 = 2;

/// How many early push-pulls a new member makes before the regular
/// interval.
pub const EARLY_SYNCS: u32 = 2;

/// Early push-pulls a new member makes beyond [`EARLY_SYNCS`], at most,
/// while its table still grows: one more each time it grew since the
/// last early one.
pub(crate) const MORE_EARLY_SYNCS: u32 = 6;

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

/// Whether a reconnect tick makes an attempt: with probability `failed`
/// over `live` (ourselves included), at most 1.
pub(crate) fn reconnect_drawn(failed: usize, live: usize, rng: &mut dyn Random) -> bool {
    failed >= live || (rng.below(live.max(1)) < failed)
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
    /// Retry one member we declared failed.
    Reconnect,
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
    config: Arc<Config>,
    phase: Phase,
    joining: Option<Joining>,
    timers: Timers<Timer>,
    scratch: Vec<crate::protocol::table::MemberId>,
    /// Reconnect attempts made.
    pub(crate) reconnects: u64,
    /// When the next push-pull is due.
    push_pull_at: Option<Instant>,
    /// Early push-pulls still to come after a join.
    early_syncs: u32,
    /// The table's size at the last early push-pull (or the join), while
    /// early ones may still come.
    early_len: Option<usize>,
    /// Early push-pulls made beyond [`EARLY_SYNCS`] because the table
    /// still grew.
    more_early: u32,
    /// Whether we joined, or answered a join: a member that answers one
    /// before then is a new cluster's seed.
    formed: bool,
    /// Whether the push-pull due next is a retry of one that failed.
    retry_due: bool,
    /// Retries made since the last regular push-pull.
    retries: u32,
}

impl Lifecycle {
    pub(crate) fn new(config: &Arc<Config>) -> Self {
        Lifecycle {
            config: config.clone(),
            phase: Phase::Running,
            joining: None,
            timers: Timers::default(),
            scratch: Vec::new(),
            reconnects: 0,
            push_pull_at: None,
            early_syncs: 0,
            early_len: None,
            more_early: 0,
            formed: false,
            retry_due: false,
            retries: 0,
        }
    }

    /// Starts anti-entropy at a random offset within one interval, scaled
    /// to the `live` members (ourselves included) we start with. A member
    /// that starts alone (the usual start, before a join) draws within the
    /// configured interval; one that starts with a whole table (seeded)
    /// draws within the interval it will keep, so that the members of a
    /// cluster started converged sync as rarely as they would after
    /// growing to that size, rather than all within the first interval.
    pub(crate) fn start(&mut self, now: Instant, live: usize, rng: &mut dyn Random) {
        if let Some(pp) = self.config.push_pull_interval {
            let at = rng.below(push_pull_scale(pp, live).as_millis() as usize) as u64;
            self.set_push_pull(now + Duration::from_millis(at));
        }
        if let Some(every) = self.config.reconnect_interval {
            let at = rng.below(every.as_millis() as usize) as u64;
            self.timers.insert(now + Duration::from_millis(at), Timer::Reconnect);
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

    /// Starts joining through `seeds` (ourselves excluded): a full-state
    /// sync with each, until one completes.
    pub(crate) fn join(
        &mut self,
        now: Instant,
        seeds: &[SocketAddr],
        sync: Sync<'_>,
        dissem: &mut Dissemination,
        rng: &mut dyn Random,
    ) -> Result<(), Error> {
        if self.phase != Phase::Running {
            return Err(Error::Leaving);
        }
        let me = sync.membership.local().addr;
        let seeds: Vec<SocketAddr> = seeds.iter().copied().filter(|s| *s != me).take(MAX_SEEDS).collect();
        if seeds.is_empty() {
            return Err(Error::NoSeeds);
        }
        if let Some(old) = self.joining.take() {
            self.timers.remove(old.retry_at, Timer::JoinRetry);
        }
        // Announce ourselves: the alive update rides on our first packets.
        sync.membership.queue_self_alive(dissem);
        self.joining = Some(Joining { seeds, attempts: 0, retry_at: now });
        self.send_join_syncs(now, sync, rng);
        Ok(())
    }

    /// A sync with every seed not already syncing, and the next retry
    /// between a half and one and a half retry intervals from now: a seed
    /// whose stream slots were all taken by a crowd of joiners sees their
    /// retries spread out rather than all again at once.
    fn send_join_syncs(&mut self, now: Instant, mut sync: Sync<'_>, rng: &mut dyn Random) {
        let Some(j) = self.joining.as_mut() else { return };
        j.attempts += 1;
        for &seed in &j.seeds {
            if !sync.streams.syncing_with(seed) {
                start_sync(now, seed, SyncKind::Join, sync.reborrow());
            }
        }
        let every = self.config.join_retry_interval.as_millis();
        let wait = every / 2 + rng.below(every.max(1) as usize) as u64;
        j.retry_at = now + Duration::from_millis(wait.max(1));
        self.timers.insert(j.retry_at, Timer::JoinRetry);
    }

    pub(crate) fn on_join_retry(&mut self, now: Instant, sync: Sync<'_>, rng: &mut dyn Random) {
        let Some(j) = self.joining.as_ref() else { return };
        if j.attempts >= self.config.join_attempts.get() {
            self.joining = None;
            sync.outbox.event(Event::JoinFailed);
            return;
        }
        self.send_join_syncs(now, sync, rng);
    }

    fn set_push_pull(&mut self, at: Instant) {
        if let Some(old) = self.push_pull_at.replace(at) {
            self.timers.remove(old, Timer::PushPull);
        }
        self.timers.insert(at, Timer::PushPull);
    }

    /// A seed's table arrived in full: it completes a join in progress.
    ///
    /// The seed's table holds who had joined by then; members joining at
    /// the same time reach us by gossip, which a crowd of joiners slows
    /// down. So a new member's first [`EARLY_SYNCS`] push-pulls come
    /// early, each [`EARLY_SYNC_PERIODS`] to twice that many protocol
    /// periods after the last, rather than a whole (scaled) push-pull
    /// interval later. While a cluster is still forming (all its members
    /// joined at once), each of those syncs teaches us members the last
    /// did not: up to [`MORE_EARLY_SYNCS`] more follow as long as the
    /// table grew since the last.
    pub(crate) fn on_join_synced(
        &mut self,
        now: Instant,
        seed: SocketAddr,
        table_len: usize,
        outbox: &mut Outbox,
        rng: &mut dyn Random,
    ) {
        let Some(j) = self.joining.take() else { return };
        self.timers.remove(j.retry_at, Timer::JoinRetry);
        outbox.event(Event::JoinCompleted { seed });
        self.sync_early(now, table_len, rng);
    }

    /// A join sync opened to us completed. The first one a member answers
    /// before it ever joined makes it the seed of a cluster forming around
    /// it: it syncs early too (see [`Lifecycle::on_join_synced`]), since
    /// the joiners that came in a crowd reached it faster than it could
    /// check them, and their news has died down by its first regular
    /// push-pull.
    pub(crate) fn on_joined_by(&mut self, now: Instant, table_len: usize, rng: &mut dyn Random) {
        if !self.formed && self.joining.is_none() {
            self.sync_early(now, table_len, rng);
        }
    }

    /// Starts the early push-pulls of a member that just became part of a
    /// cluster.
    fn sync_early(&mut self, now: Instant, table_len: usize, rng: &mut dyn Random) {
        self.formed = true;
        if self.config.push_pull_interval.is_some() {
            // A push-pull already due sooner counts as the first of them.
            self.early_syncs = EARLY_SYNCS;
            self.early_len = Some(table_len);
            self.more_early = 0;
            let at = now + self.early_wait(rng);
            if self.push_pull_at.is_none_or(|old| at < old) {
                self.early_syncs -= 1;
                self.set_push_pull(at);
            }
        }
    }

    fn early_wait(&self, rng: &mut dyn Random) -> Duration {
        let span = self.config.probe_interval.as_millis() * EARLY_SYNC_PERIODS;
        Duration::from_millis(span + rng.below(span.max(1) as usize) as u64)
    }

    /// Anti-entropy: every push-pull interval, a full-state sync with one
    /// random member, so members that gossip missed are still learnt.
    ///
    /// While our probes are answered only over streams (`deaf`: datagrams
    /// do not reach us), gossip does not reach us either: syncs are all the
    /// news we get, so they come every [`DEAF_SYNC_PERIODS`] protocol
    /// periods instead.
    pub(crate) fn on_push_pull_tick(&mut self, now: Instant, deaf: bool, sync: Sync<'_>, rng: &mut dyn Random) {
        let Some(interval) = self.config.push_pull_interval else { return };
        let membership = &*sync.membership;
        if !core::mem::take(&mut self.retry_due) {
            self.retries = 0;
        }
        let len = membership.table.len();
        let growing = self.more_early < MORE_EARLY_SYNCS && self.early_len.is_some_and(|before| len > before);
        if self.early_syncs > 0 || growing {
            if self.early_syncs > 0 {
                self.early_syncs -= 1;
            } else {
                self.more_early += 1;
            }
            self.early_len = Some(len);
            let at = now + self.early_wait(rng);
            self.set_push_pull(at);
        } else {
            self.early_len = None;
            let regular = push_pull_scale(interval, membership.num_live());
            let when_deaf = self.config.probe_interval.saturating_mul(DEAF_SYNC_PERIODS);
            self.set_push_pull(now + if deaf { regular.min(when_deaf) } else { regular });
        }
        membership.table.random_live(1, &[], rng, &mut self.scratch);
        let peer = self.scratch.first().and_then(|&id| membership.table.get(id)).map(|m| m.addr.get());
        if let Some(addr) = peer {
            // memberlist's push-pull has no summary to offer: whole tables.
            let by_difference = self.config.delta_sync && !self.config.speaks_memberlist();
            let why = if by_difference { SyncKind::Difference } else { SyncKind::Periodic };
            start_sync(now, addr, why, sync);
        }
    }

    /// Our periodic sync failed (its peer was cut off or gone, or the
    /// stream was lost): try another member one protocol period from now
    /// rather than a whole push-pull interval later. A member whose
    /// datagrams fail hears no gossip, so its syncs are all the news it
    /// gets; one lost to a partition would leave it a whole interval
    /// behind the cluster's verdicts.
    /// At most [`SYNC_RETRIES`] retries follow one regular push-pull, so a
    /// member cut off from everyone does not sync every period.
    pub(crate) fn periodic_sync_failed(&mut self, now: Instant) {
        if self.config.push_pull_interval.is_none() || self.retries >= SYNC_RETRIES {
            return;
        }
        self.retries += 1;
        self.retry_due = true;
        let at = now + self.config.probe_interval;
        if self.push_pull_at.is_none_or(|old| at < old) {
            self.set_push_pull(at);
        }
    }

    /// Partition healing: every reconnect interval, with probability
    /// failed / live (as serf does), a full-state sync with one member we
    /// declared failed, at its last address. If it is back (or was only
    /// cut off), both sides learn each other's tables. The cluster as a
    /// whole makes about one attempt per failed member per interval,
    /// however large it is: a crashed member of 10,000 is not sent 10,000
    /// tables every interval for hours. Across a partition into halves
    /// every member still tries at every interval.
    pub(crate) fn on_reconnect_tick(&mut self, now: Instant, sync: Sync<'_>, rng: &mut dyn Random) {
        let Some(interval) = self.config.reconnect_interval else { return };
        self.timers.insert(now + interval, Timer::Reconnect);
        if let Some(addr) = sync.membership.reconnect_candidate(now, rng)
            && reconnect_drawn(sync.membership.remembered_len(), sync.membership.num_live(), rng)
            && !sync.streams.syncing_with(addr)
        {
            self.reconnects += 1;
            start_sync(now, addr, SyncKind::Reconnect, sync);
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
        dissem.stop_gossip_to_the_dead();
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

/// What a full-state sync reads and writes.
pub(crate) struct Sync<'a> {
    pub(crate) membership: &'a mut Membership,
    pub(crate) streams: &'a mut Streams,
    /// The application state, event clock and recent events we send.
    pub(crate) user: &'a UserData,
    /// Our query clock, which we send too.
    pub(crate) query_clock: u64,
    pub(crate) outbox: &'a mut Outbox,
}

impl Sync<'_> {
    pub(crate) fn reborrow(&mut self) -> Sync<'_> {
        Sync {
            membership: self.membership,
            streams: self.streams,
            user: self.user,
            query_clock: self.query_clock,
            outbox: self.outbox,
        }
    }
}

/// How many times a failed periodic sync is tried again (with another
/// random member, a protocol period later) before the next regular one.
pub(crate) const SYNC_RETRIES: u32 = 2;

/// How often, in protocol periods, a member whose probes are answered only
/// over streams syncs with a random member.
pub(crate) const DEAF_SYNC_PERIODS: u64 = 5;

/// Why we start a full-state sync.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SyncKind {
    /// With a seed, to join.
    Join,
    /// Anti-entropy with a random live member, whole tables.
    Periodic,
    /// Anti-entropy with a random live member, by difference.
    Difference,
    /// Partition healing, with a member we declared failed.
    Reconnect,
}

/// Opens a sync stream to `to` and pushes our table on it (nothing when
/// every stream slot is taken: the next tick or retry tries again).
pub(crate) fn start_sync(now: Instant, to: SocketAddr, why: SyncKind, sync: Sync<'_>) {
    let join = why == SyncKind::Join;
    let periodic = matches!(why, SyncKind::Periodic | SyncKind::Difference);
    let Some(id) = sync.streams.open(now, to, Purpose::SyncOut { join, periodic }, None) else {
        return;
    };
    sync.outbox.open(id, to);
    if why == SyncKind::Difference {
        let count = delta::send_summary(id, sync.membership, (sync.user, sync.query_clock), sync.outbox);
        if let Some(s) = sync.streams.get_mut(id) {
            s.delta = Some(alloc::boxed::Box::new(Delta::Offered { count, asked: None, seen: Default::default() }));
        }
    } else {
        send_table(id, Some(join), sync.membership, (sync.user, sync.query_clock), sync.outbox);
    }
}

/// Sends our whole table on stream `id`: our alive first, then our
/// application state, our event clock and recent events, then every
/// member's record, in frames of at most
/// [`MAX_FRAME`](crate::wire::MAX_FRAME) bytes, each headed by a
/// [`Message::SyncRequest`] (`request` is `Some(join)`) or a
/// [`Message::SyncReply`], the last one ending with [`Message::SyncEnd`].
pub(crate) fn send_table(
    id: StreamId,
    request: Option<bool>,
    membership: &Membership,
    (user, query_clock): (&UserData, u64),
    outbox: &mut Outbox,
) {
    let app_state = &user.app_state;
    let app = (!app_state.is_empty()).then_some(Message::AppState { state: app_state });
    let records = membership.table.iter().map(|(id, m)| membership.record(id, m));
    let all =
        core::iter::once(membership.self_alive()).chain(app).chain(user.sync_messages(query_clock)).chain(records);
    send_frames(id, head(request), all, outbox);
}

/// The head of each frame of a sync: [`Message::SyncRequest`] on the side
/// that opened it (`request` is `Some(join)`), [`Message::SyncReply`] on
/// the other.
pub(crate) fn head(request: Option<bool>) -> Message<'static> {
    match request {
        Some(join) => Message::SyncRequest { join },
        None => Message::SyncReply,
    }
}

/// Sends `msgs` and then [`Message::SyncEnd`] on stream `id`, in frames of
/// at most [`MAX_FRAME`](crate::wire::MAX_FRAME) bytes, each headed by
/// `head`.
pub(crate) fn send_frames<'a>(
    id: StreamId,
    head: Message<'_>,
    msgs: impl Iterator<Item = Message<'a>>,
    outbox: &mut Outbox,
) {
    let mut w = outbox.frame_writer();
    let _ = w.push(&head);
    for msg in msgs.chain([Message::SyncEnd]) {
        if w.push(&msg).is_ok() {
            continue;
        }
        outbox.frame(id, w);
        w = outbox.frame_writer();
        let _ = w.push(&head);
        let _ = w.push(&msg);
    }
    outbox.frame(id, w);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::rng::tests::rng;

    #[test]
    fn reconnects_are_drawn_with_probability_failed_over_live() {
        let mut r = rng(9);
        let tries = 100_000;
        let hits = (0..tries).filter(|_| reconnect_drawn(1, 100, &mut r)).count();
        // 1 %: about one attempt per interval across a cluster of 100.
        assert!((800..1200).contains(&hits), "{hits}");
        let hits = (0..tries).filter(|_| reconnect_drawn(30, 60, &mut r)).count();
        assert!((48_000..52_000).contains(&hits), "{hits}");
        // Half the cluster or more failed (a partition): always.
        assert!((0..1000).all(|_| reconnect_drawn(50, 50, &mut r)));
        assert!((0..1000).all(|_| reconnect_drawn(70, 30, &mut r)));
        assert!(!reconnect_drawn(0, 100, &mut r));
    }
}
