//! The protocol's messages, as they appear on the wire.

use core::net::SocketAddr;
use serde::{Deserialize, Serialize};

/// One protocol message. A datagram carries one or more of them (a
/// *compound* packet): usually a probe message first and then piggybacked
/// membership updates.
///
/// The variant order is the wire's message kind (postcard writes the
/// variant index as a varint), so new kinds are only ever appended.
/// Strings and byte strings borrow from the received datagram.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message<'a> {
    /// Kind 0. "Are you alive?" from the prober to `target`, answered with
    /// [`Message::Ack`] carrying the same `seq`. Naming the target lets a
    /// member that took over a reused address ignore probes meant for the
    /// old one.
    Ping {
        /// Probe sequence number chosen by the sender.
        seq: u32,
        /// The name of the member being probed.
        target: &'a str,
    },
    /// Kind 1. "Probe `target` at `addr` for me" (an indirect probe). The
    /// receiver pings the target and forwards its ack as
    /// [`Message::Ack`] with the requester's `seq`, or answers
    /// [`Message::Nack`] when the target stays silent (Lifeguard).
    PingReq {
        /// The requester's probe sequence number, echoed in the answer.
        seq: u32,
        /// The member to probe.
        target: &'a str,
        /// Where to probe it.
        addr: SocketAddr,
    },
    /// Kind 2. The answer to a ping, or a relayed answer to a ping-req.
    Ack {
        /// The sequence number of the probe answered.
        seq: u32,
    },
    /// Kind 3. An intermediary's report that the target of a ping-req did
    /// not answer it in time: the requester's own network is fine.
    Nack {
        /// The requester's probe sequence number.
        seq: u32,
    },
    /// Kind 4. `name` is alive at `incarnation`, reachable at `addr`.
    Alive {
        /// The member's incarnation; only the member itself raises it.
        incarnation: u32,
        /// The member's name.
        name: &'a str,
        /// The member's address.
        addr: SocketAddr,
        /// The member's application metadata.
        meta: &'a [u8],
    },
    /// Kind 5. `from` suspects that `name` at `incarnation` has failed.
    Suspect {
        /// The incarnation suspected.
        incarnation: u32,
        /// The suspected member.
        name: &'a str,
        /// The accuser, counted once as an independent confirmation.
        from: &'a str,
    },
    /// Kind 6. `from` declares `name` at `incarnation` dead. When `from` is
    /// `name` itself the member is leaving gracefully.
    Dead {
        /// The incarnation declared dead.
        incarnation: u32,
        /// The dead member.
        name: &'a str,
        /// Who declared it.
        from: &'a str,
    },
    /// Kind 7. Heads each frame of the initiator's half of a full-state
    /// sync (stream only): its own alive, its application state and its
    /// member records follow. Over a datagram it is ignored.
    SyncRequest {
        /// Whether the initiator is joining.
        join: bool,
    },
    /// Kind 8. Heads each frame of the answer to a sync (stream only).
    SyncReply,
    /// Kind 9. "What do you know about `name`?" Sent by a member whose
    /// suspicion of `name` is about to expire, in case it missed a
    /// refutation; answered with the receiver's record of `name` as an
    /// alive, suspect or dead message (nothing if it does not know `name`).
    Query {
        /// The member asked about.
        name: &'a str,
    },
    /// Kind 10. Ends one side of a full-state sync (stream only): every
    /// record has been sent.
    SyncEnd,
    /// Kind 11. The sender's application state, in a full-state sync
    /// (stream only).
    AppState {
        /// Opaque to the protocol.
        state: &'a [u8],
    },
    /// Kind 12. A named user event (gossiped, piggybacked like a
    /// membership update, and repaired by full-state syncs): `from` sent
    /// `name` with `payload` at event Lamport time `ltime`.
    User {
        /// The event's Lamport time, on the event clock.
        ltime: u64,
        /// Who sent it.
        from: &'a str,
        /// The event's name.
        name: &'a str,
        /// Opaque to the protocol.
        payload: &'a [u8],
        /// Whether a consumer may coalesce events of this name.
        coalesce: bool,
    },
    /// Kind 13. A message for the receiver alone, in a datagram or on a
    /// stream.
    Direct {
        /// Who sent it.
        from: &'a str,
        /// Opaque to the protocol.
        payload: &'a [u8],
    },
    /// Kind 14. Room for the answer: bytes the receiver ignores. A member
    /// answers a datagram with at most as many bytes as it holds (the
    /// bound that keeps it from amplifying traffic), so a request whose
    /// answer is larger than the request itself (a query answered with a
    /// record and its metadata, a ping to a suspect answered with its
    /// refutation) carries padding to make room for it.
    Padding {
        /// Any bytes (zeros when we send them).
        bytes: &'a [u8],
    },
    /// Kind 15. A user query (gossiped like an event, never repaired by
    /// syncs): `origin`, reachable at `addr`, asks `name` with `payload`
    /// of every member its filter selects; they answer with
    /// [`Message::Response`] within `timeout_ms`.
    Question {
        /// The query's Lamport time, on the query clock: with `origin`, it
        /// names the query.
        ltime: u64,
        /// Who asks.
        origin: &'a str,
        /// Where the answers go.
        addr: SocketAddr,
        /// The query's name.
        name: &'a str,
        /// Opaque to the protocol.
        payload: &'a [u8],
        /// The encoded filter (empty: every member).
        filter: &'a [u8],
        /// Whether members acknowledge receipt at once.
        ack: bool,
        /// How many other members each answer also travels through.
        relay_factor: u8,
        /// How long the origin waits for answers, in milliseconds.
        timeout_ms: u32,
    },
    /// Kind 16. An answer to a [`Message::Question`] (or its
    /// acknowledgement), from `from` to the query's origin. With `relay`
    /// set, the receiver is a relay: it forwards the answer to that
    /// address (with `relay` cleared) if a live member is there.
    Response {
        /// The query's Lamport time (the origin's own stamp, so it names
        /// the query there).
        ltime: u64,
        /// Who answers.
        from: &'a str,
        /// An acknowledgement (no payload) rather than an answer.
        ack: bool,
        /// The answer.
        payload: &'a [u8],
        /// The origin's address, when this copy goes through a relay.
        relay: Option<SocketAddr>,
    },
    /// Kind 17. The sender's Lamport clocks, in a full-state sync (stream
    /// only), before the recent events that follow: the receiver moves its
    /// own past them, so that what it sends next (after a restart, say) is
    /// not taken for something already seen; and a member that joins
    /// skips the events older than the cluster's past unless it asked for
    /// a replay. Left out while both are zero.
    Clocks {
        /// The sender's event clock.
        events: u64,
        /// The sender's query clock.
        queries: u64,
    },
    /// Kind 18. The sender's network coordinate (§6.13), beside a ping
    /// (which asks for the target's in return) or an ack. Every distance
    /// is in units of 25 µs.
    Coordinate {
        /// The Euclidean part: one little-endian `i16` per dimension.
        vec: &'a [u8],
        /// The height.
        height: u32,
        /// The sender's error estimate, in hundredths.
        error: u8,
        /// The adjustment term.
        adjustment: i32,
    },
    /// Kind 19. A summary of the sender's table (§6.5), in the first half
    /// of a periodic sync by difference (stream only): the receiver sums
    /// its own table in as many buckets and answers with
    /// [`Message::SyncDiff`] and its records in the buckets that differ.
    SyncDigest {
        /// Each bucket's hash, four bytes little-endian; a power of two of
        /// buckets, at most 256.
        buckets: &'a [u8],
        /// The hash of the events the sender keeps for repair.
        events: u32,
    },
    /// Kind 20. In the answer to a [`Message::SyncDigest`] (stream only):
    /// the buckets whose records both sides send, as a bitmap (bucket `i`
    /// is bit `i % 8` of byte `i / 8`).
    SyncDiff {
        /// The bitmap, one bit per bucket of the summary.
        buckets: &'a [u8],
        /// Whether the kept events differ too: both sides send theirs.
        events: bool,
        /// Whether so much differs that both sides send whole tables.
        whole: bool,
    },
}

impl Message<'_> {
    /// How many kinds this version knows: kinds are `0..KINDS`.
    pub const KINDS: u8 = 21;

    /// Whether this is a membership update (alive, suspect, dead) rather
    /// than probe or sync traffic.
    pub fn is_update(&self) -> bool {
        matches!(self, Message::Alive { .. } | Message::Suspect { .. } | Message::Dead { .. })
    }

    /// Whether this is a rumour that member `me` is suspect or dead, from
    /// someone else: one `me` refutes.
    pub fn accuses(&self, me: &str) -> bool {
        match self {
            Message::Suspect { name, .. } => *name == me,
            Message::Dead { name, from, .. } => *name == me && *from != me,
            _ => false,
        }
    }

    #[cfg(any(test, fuzzing, feature = "internals"))]
    /// The wire kind: the variant index.
    pub fn kind(&self) -> u8 {
        match self {
            Message::Ping { .. } => 0,
            Message::PingReq { .. } => 1,
            Message::Ack { .. } => 2,
            Message::Nack { .. } => 3,
            Message::Alive { .. } => 4,
            Message::Suspect { .. } => 5,
            Message::Dead { .. } => 6,
            Message::SyncRequest { .. } => 7,
            Message::SyncReply => 8,
            Message::Query { .. } => 9,
            Message::SyncEnd => 10,
            Message::AppState { .. } => 11,
            Message::User { .. } => 12,
            Message::Direct { .. } => 13,
            Message::Padding { .. } => 14,
            Message::Question { .. } => 15,
            Message::Response { .. } => 16,
            Message::Clocks { .. } => 17,
            Message::Coordinate { .. } => 18,
            Message::SyncDigest { .. } => 19,
            Message::SyncDiff { .. } => 20,
        }
    }
}
