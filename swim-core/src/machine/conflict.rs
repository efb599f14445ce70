//! Name conflicts: two live processes claiming one name at different
//! addresses.
//!
//! An alive for our name at another address is a stale record of ours (we
//! restarted elsewhere) or another process. We refute it as always, and
//! ping that address naming ourselves: silence means stale. An answer
//! means a conflict, reported at once (`won: None`); both sides then stop
//! refuting each other (no flapping) for a grace period, check again, and
//! the rule settles it: the lower address (IP, then port) keeps the name.
//! Both sides apply the same rule to the same two addresses, so exactly
//! one keeps it. The winner refutes, so every table comes back to it; the
//! loser reports `won: Some(false)` and stops, as after a leave but
//! announcing nothing (a leave would name the winner's name). If the
//! other side has gone silent by the second check, we keep the name.
//! docs/protocol.md, "Name conflicts".

use core::net::SocketAddr;

use rand_core::Rng;

use super::Swim;
use crate::api::Event;
use crate::protocol::outbox::Piggyback;
use crate::util::rng::Random;
use crate::util::time::{Duration, Instant};
use crate::wire::Message;

/// How many probe intervals both sides wait between seeing the conflict
/// and settling it: time for the other side to notice it too.
const GRACE_PERIODS: u64 = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Does anyone answer at the other address under our name?
    Check,
    /// Someone does: wait before settling.
    Grace,
    /// Does it still?
    Recheck,
}

/// A claim on our name from another address, being looked into.
#[derive(Clone, Copy, Debug)]
pub(super) struct NameClaim {
    other: SocketAddr,
    incarnation: u32,
    seq: u32,
    stage: Stage,
    deadline: Instant,
}

impl NameClaim {
    pub(super) fn deadline(&self) -> Instant {
        self.deadline
    }
}

/// The lower address keeps a contested name.
fn keeps(ours: SocketAddr, theirs: SocketAddr) -> bool {
    (ours.ip(), ours.port()) < (theirs.ip(), theirs.port())
}

impl<R: Rng> Swim<R> {
    /// An alive for our name at `other`: check it, unless we already are.
    pub(super) fn on_name_claimed(&mut self, now: Instant, other: SocketAddr, incarnation: u32) {
        match &mut self.claim {
            // While one is looked into, claims from there are not refuted
            // (that would flap), and claims from elsewhere wait their turn.
            Some(c) => {
                if c.other == other && crate::protocol::table::record::newer(incarnation, c.incarnation) {
                    c.incarnation = incarnation;
                }
            }
            None => {
                // Refuted at once, as any rumour: it is most often our own
                // record from before a restart elsewhere, and waiting would
                // let it be failed meanwhile. A live namesake answers the
                // check, and from then on neither side refutes the other.
                self.membership.refute_claim(incarnation, &mut self.dissemination);
                let seq = self.ping_claimant(other);
                let deadline = now + self.config.probe_interval;
                self.claim = Some(NameClaim { other, incarnation, seq, stage: Stage::Check, deadline });
            }
        }
    }

    fn ping_claimant(&mut self, other: SocketAddr) -> u32 {
        let seq = Random::next_u64(&mut self.rng) as u32;
        let me = self.membership.local().name.clone();
        self.outbox.send_free(other, &[Message::Ping { seq, target: me.as_str() }], Piggyback::None);
        seq
    }

    /// An ack: whether it answered our check of a claim (and was taken).
    pub(super) fn on_claim_ack(&mut self, now: Instant, from: SocketAddr, seq: u32) -> bool {
        let Some(c) = self.claim.as_mut() else { return false };
        if c.seq != seq || c.other != from {
            return false;
        }
        match c.stage {
            Stage::Check => {
                c.stage = Stage::Grace;
                c.deadline = now + Duration::from_millis(self.config.probe_interval.as_millis() * GRACE_PERIODS);
                let other = c.other;
                self.outbox.event(Event::NameConflict { other, won: None });
            }
            Stage::Recheck => {
                let (other, incarnation) = (c.other, c.incarnation);
                self.claim = None;
                self.settle(other, incarnation, keeps(self.membership.local().addr, other));
            }
            Stage::Grace => {}
        }
        true
    }

    /// The check's deadline passed.
    pub(super) fn on_claim_timer(&mut self, now: Instant) {
        let Some(c) = self.claim.filter(|c| c.deadline <= now) else { return };
        match c.stage {
            Stage::Check => {
                // Nobody there: a stale record of ours, refuted already
                // (and again, if it came back meanwhile).
                self.claim = None;
                if !crate::protocol::table::record::newer(self.membership.incarnation(), c.incarnation) {
                    self.membership.refute_claim(c.incarnation, &mut self.dissemination);
                }
            }
            Stage::Grace => {
                let seq = self.ping_claimant(c.other);
                let deadline = now + self.config.probe_interval;
                self.claim = Some(NameClaim { seq, stage: Stage::Recheck, deadline, ..c });
            }
            Stage::Recheck => {
                // The other has gone (or yielded): the name is ours.
                self.claim = None;
                self.settle(c.other, c.incarnation, true);
            }
        }
    }

    fn settle(&mut self, other: SocketAddr, incarnation: u32, won: bool) {
        self.outbox.event(Event::NameConflict { other, won: Some(won) });
        if won {
            self.membership.refute_claim(incarnation, &mut self.dissemination);
        } else {
            self.membership.stop_refuting();
            self.complete_leave();
        }
    }
}
