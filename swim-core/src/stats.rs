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
    /// Datagrams sent.
    pub packets_sent: u64,
    /// Bytes sent in datagrams.
    pub bytes_sent: u64,
    /// Datagrams received (valid or not).
    pub packets_received: u64,
    /// Bytes received in datagrams.
    pub bytes_received: u64,
    /// Rejected datagrams, by [`DecodeError::index`].
    pub rejected: [u64; DecodeError::ALL.len()],
    /// Pings addressed to another member name (a reused address).
    pub misdirected: u64,
    /// Updates ignored because the member table was full.
    pub table_full: u64,
    /// Alive updates ignored because they claimed a known member's name
    /// from another address.
    pub address_conflicts: u64,
}

impl Stats {
    /// All rejected datagrams, whatever the reason.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().sum()
    }

    /// Rejected datagrams for one reason.
    pub fn rejected_for(&self, reason: DecodeError) -> u64 {
        self.rejected[reason.index()]
    }
}
