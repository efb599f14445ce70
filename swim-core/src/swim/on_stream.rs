//! Stream inputs: what an accepted stream asks for, the two halves of a
//! full-state sync, fallback pings and reliable messages.
//!
//! A frame is decoded whole before any of it is applied: a malformed one
//! closes its stream, is counted, and changes nothing else.

use core::net::SocketAddr;

use rand_core::Rng;

use super::Swim;
use crate::io::{Error, Event, StreamEnd, StreamId};
use crate::lifecycle::{Phase, send_table};
use crate::membership::{Merged, Source};
use crate::name::MemberName;
use crate::streams::Purpose;
use crate::time::{Duration, Instant};
use alloc::vec::Vec;

use crate::wire::{self, Message, Messages};

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
            self.fail_stream(id);
            return Ok(());
        }
        let mut scratch = core::mem::take(&mut self.scratch);
        let result = self.open_frame(now, id, frame, &mut scratch);
        scratch.clear();
        self.scratch = scratch;
        result
    }

    fn open_frame(&mut self, now: Instant, id: StreamId, frame: &[u8], scratch: &mut Vec<u8>) -> Result<(), Error> {
        let mut msgs = Messages::new();
        if let Err(e) = self.envelope.decode(frame, wire::MAX_FRAME, scratch, &mut msgs) {
            self.ingress.rejected[e.index()] += 1;
            self.fail_stream(id);
            return Err(Error::Rejected(e));
        }
        let Some(s) = self.streams.get(id) else { return Ok(()) };
        let purpose = s.purpose.clone();
        let head = msgs.first().cloned();
        match (purpose, head) {
            (Purpose::Accepted, Some(Message::SyncRequest { join })) => {
                if let Some(s) = self.streams.get_mut(id) {
                    s.purpose = Purpose::SyncIn { join };
                }
                self.sync_frame(now, id, &msgs, join);
            }
            (Purpose::SyncIn { join }, Some(Message::SyncRequest { .. }))
            | (Purpose::SyncOut { join }, Some(Message::SyncReply)) => self.sync_frame(now, id, &msgs, join),
            (Purpose::Accepted, Some(Message::Ping { seq, target })) => {
                if target == self.membership.local().name.as_str() {
                    self.outbox.send_frame(id, &[Message::Ack { seq }]);
                } else {
                    self.detector.counters.misdirected += 1;
                }
                self.close_stream(id);
            }
            (Purpose::Accepted, Some(Message::Direct { from, payload })) => {
                self.on_direct_arrived(from, payload, true);
                self.close_stream(id);
            }
            (Purpose::Ping { seq }, _) => {
                if msgs.contains(&Message::Ack { seq }) {
                    self.detector.on_stream_ack(seq);
                }
                self.close_stream(id);
            }
            // Anything else is not what this stream is for.
            _ => self.fail_stream(id),
        }
        Ok(())
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
                    if let (Some(s), Message::Alive { .. }) = (self.streams.get_mut(id), msg)
                        && s.peer_name.is_none()
                    {
                        s.peer_name = MemberName::new(name).ok();
                    }
                    self.merge_record(now, msg, asked);
                }
                Message::AppState { state } => {
                    let from = self.streams.get(id).and_then(|s| s.peer_name.clone());
                    if let Some(from) = from {
                        self.outbox.event(Event::AppState { from, join, state: state.to_vec() });
                    }
                }
                Message::SyncEnd => ended = true,
                _ => {}
            }
        }
        if !ended {
            return;
        }
        let Some(s) = self.streams.remove(id) else { return };
        self.streams.counters.syncs_completed += 1;
        match s.purpose {
            Purpose::SyncIn { .. } => {
                // The peer's table is merged: our answer already reflects it
                // (a refutation of a rumour it carried included).
                send_table(id, None, &self.membership, &self.user.app_state, &mut self.outbox);
            }
            Purpose::SyncOut { join: true } => {
                self.lifecycle.on_join_synced(now, s.peer, &mut self.outbox, &mut self.rng);
            }
            _ => {}
        }
        self.outbox.close(id);
    }

    /// A record from a peer's table. A death it reports is taken as a
    /// suspicion: the member gets its chance to refute here, rather than
    /// a whole healed partition being declared dead at once.
    fn merge_record(&mut self, now: Instant, msg: &Message<'_>, asked: bool) {
        let msg = match *msg {
            Message::Dead { incarnation, name, from } if from != name => Message::Suspect { incarnation, name, from },
            ref m => m.clone(),
        };
        let (d, o, r) = (&mut self.dissemination, &mut self.outbox, &mut self.rng);
        if self.membership.merge(now, &msg, Source::Record { asked }, d, o, r) == Merged::Refuted {
            self.detector.on_refuted();
        }
    }

    pub(super) fn on_stream_closed(&mut self, id: StreamId, end: StreamEnd) {
        let Some(s) = self.streams.remove(id) else { return };
        if end != StreamEnd::Closed {
            self.streams.counters.failed += 1;
        }
        // A reliable message counts as delivered when its peer closes.
        if end != StreamEnd::Closed {
            self.undelivered(s.purpose);
        }
    }

    /// A stream given up before its peer closed it: a reliable message on
    /// it is reported undelivered.
    fn undelivered(&mut self, purpose: Purpose) {
        if let Purpose::Message { to } = purpose {
            self.outbox.event(Event::MessageFailed { to });
        }
    }

    /// A stream's deadline passed: give it up.
    pub(super) fn on_stream_expired(&mut self, now: Instant) {
        let Some((id, s)) = self.streams.pop_expired(now) else { return };
        self.outbox.close(id);
        self.undelivered(s.purpose);
    }

    /// Closes a stream we are done with.
    pub(super) fn close_stream(&mut self, id: StreamId) {
        if self.streams.remove(id).is_some() {
            self.outbox.close(id);
        }
    }

    /// Closes a stream that broke its protocol.
    fn fail_stream(&mut self, id: StreamId) {
        if let Some(s) = self.streams.remove(id) {
            self.streams.counters.failed += 1;
            self.outbox.close(id);
            self.undelivered(s.purpose);
        }
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
