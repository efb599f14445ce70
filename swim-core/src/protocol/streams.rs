//! Reliable streams: which are open, what each is for, and when each must
//! be given up.
//!
//! The state machine opens streams for full-state syncs, fallback pings
//! and reliable messages, and accepts the peers' streams for the same. The
//! bytes are the runtime's business; this part only keeps the book.
//!
//! Invariants:
//! - at most `max_streams` streams are open, both ways together;
//! - every open stream has exactly one deadline timer, at most
//!   `stream_timeout` after it opened (a fallback ping's is shorter);
//! - a stream leaves the book exactly once: closed by us (we tell the
//!   runtime), closed by the runtime (it told us), or timed out (we tell
//!   the runtime).

use alloc::collections::{BTreeMap, BTreeSet};
use core::net::SocketAddr;

use crate::api::StreamId;
use crate::api::config::Config;
use crate::util::name::MemberName;
use crate::util::time::Instant;
use crate::util::timers::Timers;

/// What a stream is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// Accepted; its first frame tells what the peer wants.
    Accepted,
    /// Our full-state sync: we push our table, then read the peer's.
    SyncOut {
        /// Whether it is part of our join.
        join: bool,
        /// Whether it is the periodic anti-entropy sync (one that fails is
        /// soon tried again with another member).
        periodic: bool,
    },
    /// A peer's full-state sync: we read its table, then send ours.
    SyncIn {
        /// Whether the peer is joining.
        join: bool,
    },
    /// A fallback ping for the probe with this sequence number.
    Ping {
        /// The probe's sequence number.
        seq: u32,
    },
    /// A last-chance check of a member we suspect: the suspect is told of
    /// the suspicion and answers with its own record (refuting it if
    /// alive), or a peer answers with its record of the suspect.
    Check {
        /// The suspect.
        name: MemberName,
    },
    /// A reliable message to this member: delivered once the peer closes.
    Message {
        /// The member it is for.
        to: MemberName,
    },
}

/// One open stream.
#[derive(Clone, Debug)]
pub(crate) struct Stream {
    pub(crate) peer: SocketAddr,
    pub(crate) purpose: Purpose,
    pub(crate) deadline: Instant,
    /// Bytes received on it so far.
    pub(crate) received: usize,
    /// The peer's name, once its own alive record has arrived.
    pub(crate) peer_name: Option<MemberName>,
    /// The sender named in the first sealed frame received: every later
    /// sealed frame must name it too.
    pub(crate) sealed_by: Option<MemberName>,
    /// Where a sync by difference on it stands; `None` for any other
    /// stream, a whole-table sync included.
    pub(crate) delta: Option<alloc::boxed::Box<Delta>>,
}

/// A sync by difference under way (see [`crate::protocol::summary`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Delta {
    /// Ours: we sent our summary in `count` buckets and read the answer.
    Offered {
        /// The buckets of our summary.
        count: usize,
        /// What the answer's [`Message::SyncDiff`](crate::wire::Message::SyncDiff)
        /// asked for, once it arrived.
        asked: Option<Asked>,
        /// The hashes of the records the answer carried: ours that match
        /// one are not sent back.
        seen: BTreeSet<u64>,
    },
    /// A peer's: its summary, kept until its half ends.
    Summarised {
        /// The peer's buckets, as they came.
        buckets: alloc::vec::Vec<u8>,
        /// The hash of the events the peer keeps.
        events: u32,
    },
    /// A peer's, answered: its records in the differing buckets come next.
    Answered,
}

/// What the answer to our summary asked us to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Asked {
    /// The buckets that differ.
    pub(crate) diff: crate::protocol::summary::Diff,
    /// Whether our kept events are wanted.
    pub(crate) events: bool,
    /// Whether our whole table is wanted.
    pub(crate) whole: bool,
}

impl Asked {
    /// Whether the answering member waits for a third half from us.
    pub(crate) fn any(&self) -> bool {
        self.whole || self.events || self.diff.differing() > 0
    }

    /// Whether the record of member `name` is wanted.
    pub(crate) fn wants(&self, name: &str) -> bool {
        self.whole || self.diff.covers(crate::protocol::summary::name_hash(name))
    }
}

/// Counters of the stream part.
#[derive(Clone, Debug, Default)]
pub(crate) struct Counters {
    pub(crate) opened: u64,
    pub(crate) accepted: u64,
    pub(crate) refused: u64,
    pub(crate) failed: u64,
    pub(crate) timed_out: u64,
    pub(crate) frames_received: u64,
    pub(crate) frame_bytes_received: u64,
    pub(crate) syncs_completed: u64,
}

/// The book of open streams.
#[derive(Debug)]
pub(crate) struct Streams {
    open: BTreeMap<StreamId, Stream>,
    next_id: u64,
    timers: Timers<StreamId>,
    max: usize,
    timeout: crate::util::time::Duration,
    pub(crate) counters: Counters,
}

impl Streams {
    pub(crate) fn new(config: &Config) -> Self {
        Streams {
            open: BTreeMap::new(),
            next_id: 0,
            timers: Timers::default(),
            max: config.max_streams.get() as usize,
            timeout: config.stream_timeout,
            counters: Counters::default(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether another stream may open.
    fn has_room(&self) -> bool {
        self.open.len() < self.max
    }

    /// Books a stream we open to `peer`, due to be given up by `deadline`
    /// (at most the stream timeout from now); `None` when every slot is
    /// taken.
    pub(crate) fn open(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        purpose: Purpose,
        deadline: Option<Instant>,
    ) -> Option<StreamId> {
        if !self.has_room() {
            self.counters.refused += 1;
            return None;
        }
        self.next_id += 1;
        let id = StreamId::Outbound(self.next_id);
        let limit = now + self.timeout;
        let deadline = deadline.map_or(limit, |d| d.min(limit));
        self.insert(id, peer, purpose, deadline);
        self.counters.opened += 1;
        Some(id)
    }

    /// Books a stream the runtime accepted; `false` (and nothing booked)
    /// when every slot is taken or the id is not the runtime's to give or
    /// already in use.
    pub(crate) fn accept(&mut self, now: Instant, id: StreamId, peer: SocketAddr) -> bool {
        if !matches!(id, StreamId::Inbound(_)) || self.open.contains_key(&id) || !self.has_room() {
            self.counters.refused += 1;
            return false;
        }
        self.insert(id, peer, Purpose::Accepted, now + self.timeout);
        self.counters.accepted += 1;
        true
    }

    fn insert(&mut self, id: StreamId, peer: SocketAddr, purpose: Purpose, deadline: Instant) {
        self.timers.insert(deadline, id);
        self.open
            .insert(id, Stream { peer, purpose, deadline, received: 0, peer_name: None, sealed_by: None, delta: None });
        debug_assert!(self.open.len() <= self.max, "{} streams open, at most {}", self.open.len(), self.max);
        debug_assert_eq!(self.open.len(), self.timers.len(), "one deadline timer per open stream");
    }

    /// Whether a sealed frame from `sender` may arrive on stream `id`: the
    /// first one names whom the stream's sealed frames come from, and
    /// every later one must name the same. `true` for an unknown stream.
    pub(crate) fn sealed_by(&mut self, id: StreamId, sender: &str) -> bool {
        let Some(s) = self.open.get_mut(&id) else { return true };
        match &s.sealed_by {
            Some(first) => first.as_str() == sender,
            None => {
                // A sealed sender is 1..=128 bytes: always a valid name.
                s.sealed_by = MemberName::new(sender).ok();
                true
            }
        }
    }

    pub(crate) fn get(&self, id: StreamId) -> Option<&Stream> {
        self.open.get(&id)
    }

    pub(crate) fn get_mut(&mut self, id: StreamId) -> Option<&mut Stream> {
        self.open.get_mut(&id)
    }

    /// Takes a stream out of the book.
    pub(crate) fn remove(&mut self, id: StreamId) -> Option<Stream> {
        let s = self.open.remove(&id)?;
        self.timers.remove(s.deadline, id);
        Some(s)
    }

    /// Whether a sync of ours to `peer` is under way.
    pub(crate) fn syncing_with(&self, peer: SocketAddr) -> bool {
        self.open.values().any(|s| s.peer == peer && matches!(s.purpose, Purpose::SyncOut { .. }))
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// A stream whose deadline has come, taken out of the book.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<(StreamId, Stream)> {
        let id = self.timers.pop_due(now)?;
        let s = self.open.remove(&id)?;
        self.counters.timed_out += 1;
        Some((id, s))
    }

    /// Forgets every stream (the member has left); the caller closes them.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = StreamId> + '_ {
        self.timers.clear();
        core::mem::take(&mut self.open).into_keys()
    }
}
