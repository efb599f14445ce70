//! Counters for monitoring and for the simulator's figures.

use crate::wire::DecodeError;

/// Monotonic counters since the member started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Stats {
    /// Direct probes (pings) started.
    pub probes_sent: u64,
    /// Probes answered by an ack (directly or relayed).
    pub probes_acked: u64,
    /// Probes that got no ack by the end of their period.
    pub probes_failed: u64,
    /// Ping-reqs sent for our own probes.
    pub ping_reqs_sent: u64,
    /// Acks received (for our probes and relays).
    pub acks_received: u64,
    /// Nacks received for our probes (from a helper we asked, once each).
    pub nacks_received: u64,
    /// Acks and nacks that matched no open probe or relay, or came from
    /// a member not involved in it; ignored.
    pub unexpected_answers: u64,
    /// Ping-reqs we relayed for others.
    pub relays: u64,
    /// Ping-reqs dropped because `max_relays` were in flight.
    pub relays_dropped: u64,
    /// Suspicions raised by our own failed probes.
    pub suspicions_raised: u64,
    /// Members declared dead by our own suspicion timeouts.
    pub failures_declared: u64,
    /// Times we refuted a suspicion or death of ourselves.
    pub refutations: u64,
    /// Last-chance checks made before a suspicion expired (a buddy ping
    /// to the suspect, or a query to a peer).
    pub last_chance_checks: u64,
    /// Deaths declared by others that were checked (the member pinged with
    /// the accusation) before being believed.
    pub deaths_checked: u64,
    /// Connections to a live member that its host refused (nothing
    /// listens there): each made it suspect, to be declared a protocol
    /// period later unless it refuted.
    pub refused_connections: u64,
    /// Datagrams sent.
    pub packets_sent: u64,
    /// Bytes sent in datagrams.
    pub bytes_sent: u64,
    /// Datagrams received (valid or not).
    pub packets_received: u64,
    /// Bytes received in datagrams.
    pub bytes_received: u64,
    /// Rejected datagrams and frames, by reason: read them with
    /// [`Stats::rejected`] and [`Stats::rejected_total`].
    #[cfg_attr(feature = "serde", serde(rename = "rejected"))]
    pub(crate) rejections: Rejections,
    /// Pings addressed to another member name (a reused address).
    pub misdirected: u64,
    /// Ping-reqs and queries from senders that are not live members at
    /// their address, and ping-reqs naming a target that is not a live
    /// member at the given address, dropped: serving them would let a
    /// forged source aim our traffic at a victim.
    pub strangers_refused: u64,
    /// Requests (pings, ping-reqs, queries) after the first in one
    /// datagram: one is answered, the rest are dropped.
    pub surplus_requests: u64,
    /// Datagrams not sent because the datagram that caused them had no
    /// bytes left for them (answers take at most the bytes they answer).
    pub replies_dropped: u64,
    /// Pings sent to check a claimed member at its address before it is
    /// admitted (a new name, or a member's new address).
    pub admission_checks: u64,
    /// New member names refused by `member_admission_rate`.
    pub admissions_refused: u64,
    /// Updates ignored because the member table was full.
    pub table_full: u64,
    /// Alive updates ignored because they claimed a known member's name
    /// from another address (without a newer incarnation).
    pub address_conflicts: u64,
    /// Updates ignored because they claimed an incarnation further ahead
    /// of the one we hold for the member than it can get by itself
    /// ([`Claim::leaps`](crate::protocol::table::record::Claim::leaps)): forgeries aimed
    /// at taking a live member down.
    pub incarnation_leaps: u64,
    /// Streams we opened.
    pub streams_opened: u64,
    /// Streams the runtime accepted that we took on.
    pub streams_accepted: u64,
    /// Streams refused or not opened because every slot was taken.
    pub streams_refused: u64,
    /// Streams that ended other than cleanly (refused, timed out, broken,
    /// malformed, over a limit).
    pub streams_failed: u64,
    /// Stream frames sent.
    pub frames_sent: u64,
    /// Bytes sent in stream frames.
    pub frame_bytes_sent: u64,
    /// Stream frames received.
    pub frames_received: u64,
    /// Bytes received in stream frames.
    pub frame_bytes_received: u64,
    /// Full-state syncs completed (both halves exchanged), either side.
    pub syncs_completed: u64,
    /// Probes that missed their direct ack and were also tried over a stream.
    pub fallback_pings: u64,
    /// Probes that a stream ping saved.
    pub fallback_acks: u64,
    /// Syncs opened to members we declared failed (partition healing).
    pub reconnects: u64,
    /// Named events delivered (ours included).
    pub events_delivered: u64,
    /// Events received again and dropped.
    pub events_duplicate: u64,
    /// Events dropped as older than the deduplication window (or than our
    /// join, when we skipped the cluster's past).
    pub events_too_old: u64,
    /// Events or queries dropped because their Lamport time was
    /// implausibly far ahead of ours (more than 2^32): forgeries aimed at
    /// the clock.
    pub lamport_too_far: u64,
    /// Events kept to repair members that missed them.
    pub events_kept: u64,
    /// Events of the cluster's past that our join skipped (not delivered,
    /// as `replay_events_on_join` is off).
    pub events_skipped: u64,
    /// Queries we asked (internal ones included).
    pub queries_asked: u64,
    /// Queries raised here (reported, or answered by the protocol).
    pub queries_raised: u64,
    /// Queries received again and dropped.
    pub queries_duplicate: u64,
    /// Queries whose filter did not select us (passed on all the same).
    pub queries_filtered: u64,
    /// Queries dropped because their origin went past `query_rate`.
    pub queries_rate_limited: u64,
    /// Queries dropped because we know no member of that name at the
    /// address they give for answers.
    pub queries_unknown_origin: u64,
    /// Queries dropped because `max_open_queries` were open.
    pub queries_dropped: u64,
    /// Answers and acks we sent.
    pub responses_sent: u64,
    /// Answers and acks to our queries, first from each member.
    pub responses_received: u64,
    /// Answers and acks heard again (through another relay) and dropped.
    pub responses_duplicate: u64,
    /// Answers to no open query of ours (forged, misdirected, or late),
    /// dropped.
    pub responses_unknown: u64,
    /// Answers we relayed to their origin.
    pub responses_relayed: u64,
    /// Questions of ours asked again, directly, of a member expected to
    /// answer that had not by the query's halfway point.
    pub queries_reasked: u64,
    /// Times our network coordinate moved (a direct round trip to a peer
    /// whose coordinate we held).
    pub coordinate_updates: u64,
    /// Our coordinate sent, on a probe (asking for the target's) or on an
    /// ack (answering one).
    pub coordinates_sent: u64,
    /// Peers' coordinates refused: the wrong number of dimensions, or a
    /// height or adjustment no network has. Never applied.
    pub coordinates_rejected: u64,
}

impl Stats {
    /// Rejected datagrams and frames, whatever the reason.
    pub fn rejected_total(&self) -> u64 {
        self.rejections.counts.iter().sum()
    }

    /// Rejected datagrams and frames for one reason.
    pub fn rejected(&self, reason: DecodeError) -> u64 {
        self.rejections.counts.get(reason.index()).copied().unwrap_or(0)
    }
}

/// Rejections by reason, indexed by [`DecodeError::index`]: private, so a
/// new reason changes no public type.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Rejections {
    counts: [u64; DecodeError::ALL.len()],
}

impl Rejections {
    pub(crate) fn count(&mut self, reason: DecodeError) {
        if let Some(c) = self.counts.get_mut(reason.index()) {
            *c += 1;
        }
    }
}

/// Serialized as a map from each reason with a count to that count.
#[cfg(feature = "serde")]
impl serde::Serialize for Rejections {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let seen = DecodeError::ALL.iter().zip(self.counts).filter(|&(_, n)| n > 0);
        let mut map = s.serialize_map(Some(seen.clone().count()))?;
        for (reason, n) in seen {
            map.serialize_entry(reason, &n)?;
        }
        map.end()
    }
}
