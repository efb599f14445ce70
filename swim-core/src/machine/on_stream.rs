//! Stream inputs: what an accepted stream asks for, the two halves of a
//! full-state sync, fallback pings and reliable messages.
//!
//! A frame is decoded whole before any of it is applied: a malformed one
//! closes its stream, is counted, and changes nothing else. So does a
//! sealed frame that names another sender than the stream's first sealed
//! frame did: one stream speaks for one member.

use core::net::SocketAddr;

use rand_core::Rng;

use super::Swim;
use crate::api::{Error, Event, StreamEnd, StreamId};
use crate::protocol::delta;
use crate::protocol::lifecycle::{Phase, send_table};
use crate::protocol::membership::{Merged, Source, StreamCheck};
use crate::protocol::streams::{Asked, Delta, Purpose};
use crate::protocol::summary::{Diff, claim_of, name_hash, record_hash};
use crate::util::name::MemberName;
use crate::util::time::{Duration, Instant};
use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::wire::seal::Channel;
use crate::wire::{self, DecodeError, Message, Messages};

use crate::protocol::membership::suspicion::check_wait;

impl<R: Rng> Swim<R> {
    pub(super) fn on_stream_accepted(&mut self, now: Instant, id: StreamId, from: SocketAddr) {
        if self.lifecycle.phase() != Phase::Running || !self.streams.accept(now, id, from) {
            // Refused: nothing booked; the runtime only has to hang up.
            self.outbox.close(id);
            return;
        }
        // A lone member answers joiners.
        self.ensure_started(now);
    }

    pub(super) fn on_stream_frame(&mut self, now: Instant, id: StreamId, frame: &[u8]) -> Result<(), Error> {
        let limit = self.config.max_sync_bytes;
        let Some(s) = self.streams.get_mut(id) else { return Ok(()) };
        s.received = s.received.saturating_add(frame.len());
        let over = s.received > limit;
        self.streams.counters.frames_received += 1;
        self.streams.counters.frame_bytes_received += frame.len() as u64;
        if over {
            self.fail_stream(now, id);
            return Ok(());
        }
        let mut scratch = core::mem::take(&mut self.scratch);
        let result = if self.envelope.is_memberlist() {
            self.open_memberlist_frame(now, id, frame, &mut scratch);
            // A push-pull can be megabytes: not kept for every datagram.
            scratch.shrink_to(wire::MAX_FRAME);
            Ok(())
        } else {
            self.open_frame(now, id, frame, &mut scratch)
        };
        scratch.clear();
        self.scratch = scratch;
        result
    }

    fn open_frame(&mut self, now: Instant, id: StreamId, frame: &[u8], scratch: &mut Vec<u8>) -> Result<(), Error> {
        let mut msgs = Messages::new();
        let opened = match self.envelope.decode(frame, wire::MAX_FRAME, Channel::Frame, scratch, &mut msgs) {
            Ok(crate::wire::seal::Origin { sender: Some(sender), .. }) if !self.streams.sealed_by(id, sender) => {
                Err(DecodeError::Sender)
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = opened {
            if let Some(peer) = self.streams.get(id).map(|s| s.peer) {
                self.reject(peer, Some(id), e);
            }
            self.fail_stream(now, id);
            return Ok(());
        }
        self.on_frame(now, id, &msgs);
        Ok(())
    }

    /// The messages of one frame on stream `id`, decoded whole: what its
    /// first one asks for, given what the stream is for.
    pub(super) fn on_frame(&mut self, now: Instant, id: StreamId, msgs: &Messages<'_>) {
        let Some(s) = self.streams.get(id) else { return };
        let purpose = s.purpose.clone();
        let head = msgs.first().cloned();
        match (purpose, head) {
            (Purpose::Accepted, Some(Message::SyncRequest { join })) => {
                if let Some(s) = self.streams.get_mut(id) {
                    s.purpose = Purpose::SyncIn { join };
                }
                self.sync_frame(now, id, msgs, join);
            }
            (Purpose::SyncIn { join }, Some(Message::SyncRequest { .. }))
            | (Purpose::SyncOut { join, .. }, Some(Message::SyncReply)) => self.sync_frame(now, id, msgs, join),
            (Purpose::Accepted, Some(Message::Ping { seq, target })) => {
                if target == self.membership.local().name.as_str() {
                    // A last-chance check carries the suspicion: refute it
                    // and answer with the record that proves it.
                    let me = self.membership.local().name.clone();
                    let mut accused = false;
                    for m in msgs.iter().skip(1).filter(|m| m.accuses(me.as_str())) {
                        accused = true;
                        self.merge_record(now, m, false);
                    }
                    if accused {
                        let alive = self.membership.self_alive();
                        self.outbox.send_frame(id, &[Message::Ack { seq }, alive]);
                    } else {
                        self.outbox.send_frame(id, &[Message::Ack { seq }]);
                    }
                } else {
                    self.detector.counters.misdirected += 1;
                }
                self.close_stream(now, id);
            }
            (Purpose::Accepted, Some(Message::Query { name })) => {
                if let Some(answer) = self.membership.query_answer(name) {
                    self.outbox.send_frame(id, &[answer]);
                }
                self.close_stream(now, id);
            }
            (Purpose::Check { .. }, _) => {
                // The suspect's record, or a peer's: a newer incarnation
                // (alive, or suspected anew) ends our suspicion.
                for m in msgs.iter().filter(|m| m.is_update()) {
                    self.merge_record(now, m, true);
                }
                self.close_stream(now, id);
            }
            (Purpose::Accepted, Some(Message::Direct { from, payload })) => {
                self.on_direct_arrived(from, payload, true);
                self.close_stream(now, id);
            }
            (Purpose::Ping { seq }, _) => {
                if msgs.contains(&Message::Ack { seq }) {
                    self.detector.on_stream_ack(seq);
                }
                self.close_stream(now, id);
            }
            // Anything else is not what this stream is for.
            _ => self.fail_stream(now, id),
        }
    }

    /// One frame of a sync, either half: merge its records, note the
    /// peer's application state, and on its end answer or finish.
    fn sync_frame(&mut self, now: Instant, id: StreamId, msgs: &Messages<'_>, join: bool) {
        let mut ended = false;
        // A sync we opened answers a peer we chose; one opened to us may
        // come from anyone, and its new names are rate-limited.
        let asked = matches!(id, StreamId::Outbound(_));
        for msg in msgs.iter().skip(1) {
            match *msg {
                Message::Alive { name, .. } | Message::Suspect { name, .. } | Message::Dead { name, .. } => {
                    // memberlist lists its table in no particular order:
                    // its peer's name is found by address instead.
                    if let (Some(s), Message::Alive { .. }) = (self.streams.get_mut(id), msg)
                        && s.peer_name.is_none()
                        && !self.envelope.is_memberlist()
                    {
                        s.peer_name = MemberName::new(name).ok();
                    }
                    self.note_seen(id, msg);
                    self.merge_record(now, msg, asked);
                }
                Message::SyncDigest { buckets, events } => self.on_summary(id, buckets, events),
                Message::SyncDiff { buckets, events, whole } => self.on_sync_diff(id, buckets, events, whole),
                Message::AppState { state } => {
                    let from = self.streams.get(id).and_then(|s| s.peer_name.clone());
                    if let Some(from) = from {
                        self.outbox.event(Event::AppState { from, join, state: state.to_vec() });
                    }
                }
                Message::Clocks { events: ltime, queries } => {
                    self.queries.clock.witness(queries);
                    let our_join =
                        matches!(self.streams.get(id).map(|s| &s.purpose), Some(Purpose::SyncOut { join: true, .. }));
                    self.user.on_peer_clock(id, ltime, our_join);
                }
                // The past a joiner skips: remembered, not delivered.
                Message::User { .. } if self.user.skips(id) => self.user.skip(now, msg),
                // Repair: delivered if missed, not gossiped again (the
                // next syncs carry it on).
                Message::User { .. } => self.deliver_event(now, msg, false),
                Message::SyncEnd => ended = true,
                _ => {}
            }
        }
        if !ended {
            return;
        }
        let delta = self.streams.get_mut(id).and_then(|s| s.delta.take());
        if let Some(delta) = delta {
            self.delta_half_ended(now, id, *delta);
            return;
        }
        let Some(s) = self.streams.remove(id) else { return };
        self.count_sync();
        match s.purpose {
            Purpose::SyncIn { join } => {
                // The peer's table is merged: our answer already reflects it
                // (a refutation of a rumour it carried included).
                let clocks = (&self.user, self.queries.clock.clock());
                send_table(id, None, &self.membership, clocks, &mut self.outbox);
                if join {
                    let len = self.membership.table.len();
                    self.lifecycle.on_joined_by(now, len, &mut self.rng);
                }
            }
            Purpose::SyncOut { join: true, .. } => {
                let len = self.membership.table.len();
                self.lifecycle.on_join_synced(now, s.peer, len, &mut self.outbox, &mut self.rng);
            }
            _ => {}
        }
        self.outbox.close(id);
    }

    /// A half of a sync by difference ended on stream `id`: answer a
    /// summary, send the rest an answer asked for, or finish.
    fn delta_half_ended(&mut self, now: Instant, id: StreamId, delta: Delta) {
        match delta {
            Delta::Summarised { buckets, events } => {
                let clocks = (&self.user, self.queries.clock.clock());
                match delta::send_answer(id, (&buckets, events), &self.membership, clocks, &mut self.outbox) {
                    Some(asked) if asked.any() => {
                        if let Some(s) = self.streams.get_mut(id) {
                            s.delta = Some(Box::new(Delta::Answered));
                        }
                    }
                    Some(_) => self.sync_completed(now, id),
                    None => self.fail_stream(now, id),
                }
            }
            Delta::Offered { asked: Some(asked), seen, .. } => {
                if asked.any() {
                    delta::send_rest(id, &asked, &seen, &self.membership, &self.user, &mut self.outbox);
                }
                self.sync_completed(now, id);
            }
            // An answer that named no buckets is not one.
            Delta::Offered { asked: None, .. } => self.fail_stream(now, id),
            Delta::Answered => self.sync_completed(now, id),
        }
    }

    /// A sync by difference is over on our side: both tables agree where
    /// they differed.
    fn sync_completed(&mut self, now: Instant, id: StreamId) {
        self.count_sync();
        self.close_stream(now, id);
    }

    /// A sync completed on our side, whole or by difference.
    fn count_sync(&mut self) {
        self.streams.counters.syncs_completed += 1;
        self.user.synced();
    }

    /// A peer's summary, in the first half of its sync by difference: kept
    /// until that half ends. Only one, and only on a sync opened to us.
    fn on_summary(&mut self, id: StreamId, buckets: &[u8], events: u32) {
        if let Some(s) = self.streams.get_mut(id)
            && matches!(s.purpose, Purpose::SyncIn { .. })
            && s.delta.is_none()
        {
            s.delta = Some(Box::new(Delta::Summarised { buckets: buckets.to_vec(), events }));
        }
    }

    /// The answer to our summary names the buckets that differ: noted (a
    /// bitmap for other than our bucket count is ignored, and the sync
    /// then fails at its end).
    fn on_sync_diff(&mut self, id: StreamId, buckets: &[u8], events: bool, whole: bool) {
        let Some(s) = self.streams.get_mut(id) else { return };
        let Some(Delta::Offered { count, asked: asked @ None, .. }) = s.delta.as_deref_mut() else {
            return;
        };
        if let Some(diff) = Diff::from_bytes(*count, buckets) {
            *asked = Some(Asked { diff, events, whole });
        }
    }

    /// A record in the answer to our summary: noted, so that ours is not
    /// sent back when it says the same.
    fn note_seen(&mut self, id: StreamId, msg: &Message<'_>) {
        let Some(s) = self.streams.get_mut(id) else { return };
        let Some(Delta::Offered { seen, .. }) = s.delta.as_deref_mut() else { return };
        if let Some((name, claim)) = claim_of(msg) {
            seen.insert(record_hash(name_hash(name), claim));
        }
    }

    /// A record from a peer's table (a death in it is taken as a
    /// suspicion, as `Membership::merge` explains).
    fn merge_record(&mut self, now: Instant, msg: &Message<'_>, asked: bool) {
        let (d, o, r) = (&mut self.dissemination, &mut self.outbox, &mut self.rng);
        match self.membership.merge(now, msg, Source::Record { asked }, d, o, r) {
            Merged::Refuted => self.detector.on_refuted(),
            Merged::Claimed { addr, incarnation } => self.on_name_claimed(now, addr, incarnation),
            Merged::Done => {}
        }
    }

    pub(super) fn on_stream_closed(&mut self, now: Instant, id: StreamId, end: StreamEnd) {
        let Some(s) = self.streams.remove(id) else { return };
        if end != StreamEnd::Closed {
            self.streams.counters.failed += 1;
        }
        if end == StreamEnd::NotListening
            && let Some(member) = self.membership.table.live_at(&s.peer)
        {
            let (d, o, r) = (&mut self.dissemination, &mut self.outbox, &mut self.rng);
            self.membership.not_listening(now, member, d, o, r);
        }
        // A reliable message counts as delivered when its peer closes.
        self.ended(now, s.purpose, end == StreamEnd::Closed);
    }

    /// A stream is gone, `clean`ly (its peer or we closed it after its
    /// work) or not: a reliable message on an unclean one is reported
    /// undelivered, a suspicion no longer waits for its check, and a
    /// periodic sync that failed is tried again soon with another member.
    fn ended(&mut self, now: Instant, purpose: Purpose, clean: bool) {
        match purpose {
            Purpose::Message { to } if !clean => self.outbox.event(Event::MessageFailed { to }),
            Purpose::Check { name } => self.membership.check_ended(name.as_str()),
            Purpose::SyncOut { periodic: true, .. } if !clean => self.lifecycle.periodic_sync_failed(now),
            _ => {}
        }
    }

    /// A stream's deadline passed: give it up.
    pub(super) fn on_stream_expired(&mut self, now: Instant) {
        let Some((id, s)) = self.streams.pop_expired(now) else { return };
        self.outbox.close(id);
        self.ended(now, s.purpose, false);
    }

    /// Closes a stream we are done with.
    pub(super) fn close_stream(&mut self, now: Instant, id: StreamId) {
        if let Some(s) = self.streams.remove(id) {
            self.outbox.close(id);
            self.ended(now, s.purpose, true);
        }
    }

    /// Closes a stream that broke its protocol.
    pub(super) fn fail_stream(&mut self, now: Instant, id: StreamId) {
        if let Some(s) = self.streams.remove(id) {
            self.streams.counters.failed += 1;
            self.outbox.close(id);
            self.ended(now, s.purpose, false);
        }
    }

    /// A last-chance check over a stream: the suspicion and a ping to the
    /// suspect, or a query to a peer, so that a refutation reaches us even
    /// when datagrams cannot.
    ///
    /// The suspicion's deadline waits for the answer, at most
    /// [`check_wait`]: time for a suspect that
    /// was paused (a collector, a stalled VM) to wake and answer. A dead
    /// suspect's connection is refused at once and costs no wait.
    pub(super) fn check_over_stream(&mut self, now: Instant, check: StreamCheck) {
        if self.envelope.is_memberlist() {
            // memberlist's streams carry no suspicion and no query: the
            // suspicion runs its course as memberlist's would.
            return;
        }
        match check {
            StreamCheck::Queries { vias, name } => {
                for via in vias {
                    self.check_over_stream(now, StreamCheck::Query { via, name: name.clone() });
                }
            }
            StreamCheck::Suspect { addr, name, incarnation } => {
                let me = self.membership.local().name.clone();
                let seq = self.rng.next_u64() as u32;
                let check = [
                    Message::Ping { seq, target: name.as_str() },
                    Message::Suspect { incarnation, name: name.as_str(), from: me.as_str() },
                ];
                self.open_check(now, addr, &name, &check);
            }
            StreamCheck::Query { via, name } => {
                self.open_check(now, via, &name, &[Message::Query { name: name.as_str() }])
            }
        }
    }

    /// Opens a last-chance check of our suspicion of `suspect` to `to`,
    /// with `msgs` as its frame.
    fn open_check(&mut self, now: Instant, to: SocketAddr, suspect: &MemberName, msgs: &[Message<'_>]) {
        let wait = check_wait(self.config.probe_interval);
        let purpose = Purpose::Check { name: suspect.clone() };
        let Some(id) = self.streams.open(now, to, purpose, Some(now + wait)) else { return };
        self.membership.check_opened(suspect.as_str());
        self.outbox.open(id, to);
        self.outbox.send_frame(id, msgs);
    }

    /// The probe `seq` missed its direct ack: ping the target over a
    /// stream too, answered within the probe's period.
    pub(super) fn fallback_ping(&mut self, now: Instant, seq: u32) {
        let Some((addr, target)) = self.detector.fallback_target(seq) else { return };
        let Some(name) = self.membership.table.get(target).map(|m| m.name.clone()) else { return };
        let deadline = now + Duration::from_millis(self.config.probe_interval.as_millis());
        let Some(id) = self.streams.open(now, addr, Purpose::Ping { seq }, Some(deadline)) else { return };
        self.outbox.open(id, addr);
        self.outbox.send_frame(id, &[Message::Ping { seq, target: name.as_str() }]);
    }
}
