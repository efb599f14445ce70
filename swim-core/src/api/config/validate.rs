//! The documented range of every field, checked.

use core::fmt;

use super::Config;
use crate::wire::{MAX_DATAGRAM, MIN_PACKET_BUDGET};

impl Config {
    /// Checks every field against its documented range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        use ConfigError as E;
        let in_range = |v: u32, lo: u32, hi: u32| (lo..=hi).contains(&v);
        if self.probe_interval.as_millis() == 0 {
            return Err(E::ProbeInterval);
        }
        if self.probe_timeout.as_millis() == 0 || self.probe_timeout >= self.probe_interval {
            return Err(E::ProbeTimeout);
        }
        if self.rtt_probe_timeout.is_some_and(|f| f.as_millis() == 0 || f > self.probe_timeout) {
            return Err(E::RttProbeTimeout);
        }
        if !in_range(self.probe_targets.get(), 1, 16) {
            return Err(E::ProbeTargets);
        }
        if !in_range(self.indirect_checks, 0, 16) {
            return Err(E::IndirectChecks);
        }
        if !in_range(self.awareness_max_multiplier.get(), 1, 64) {
            return Err(E::AwarenessMaxMultiplier);
        }
        if !in_range(self.suspicion_mult.get(), 1, 64) || !in_range(self.suspicion_max_timeout_mult.get(), 1, 64) {
            return Err(E::Suspicion);
        }
        if !in_range(self.retransmit_mult.get(), 1, 64) {
            return Err(E::RetransmitMult);
        }
        if self.gossip_interval.as_millis() == 0 || self.gossip_nodes > 64 {
            return Err(E::Gossip);
        }
        if self.dead_member_retention < self.gossip_to_the_dead_time {
            return Err(E::DeadMemberRetention);
        }
        if self.max_members.get() > 1_000_000
            || self.max_meta_len > 512
            || self.max_relays.get() > 65_536
            || self.max_queued_updates.get() > 1_000_000
        {
            return Err(E::Limits);
        }
        if !(MIN_PACKET_BUDGET..=MAX_DATAGRAM).contains(&self.packet_budget) {
            return Err(E::PacketBudget);
        }
        // The largest alive update (name, address, metadata) must fit one
        // datagram in the largest envelope (label and seal), or a member
        // could never announce itself.
        let envelope = crate::wire::frame::max_overhead(&self.label);
        if self.packet_budget < crate::wire::max_alive_len(self.max_meta_len) + envelope {
            return Err(E::MetaTooLongForBudget);
        }
        if self.push_pull_interval.is_some_and(|d| d.as_millis() < 1000) {
            return Err(E::PushPull);
        }
        if self.join_retry_interval.as_millis() == 0 || self.join_attempts.get() > 1000 {
            return Err(E::Join);
        }
        if self.member_admission_rate.get() > 1_000_000 {
            return Err(E::Admission);
        }
        if self.last_chance_checks > 8 {
            return Err(E::LastChanceChecks);
        }
        if self.stream_timeout.as_millis() == 0
            || self.max_streams.get() > 4096
            || self.max_sync_bytes < crate::wire::MAX_FRAME
        {
            return Err(E::Streams);
        }
        if self.reconnect_interval.is_some_and(|d| d.as_millis() < 1000) || self.max_reconnect.get() > 65_536 {
            return Err(E::Reconnect);
        }
        // A broadcast with the longest name and payload must fit a datagram.
        let user_len = 1 + 10 + 2 + crate::util::name::MAX_NAME_LEN + 2 + self.max_user_payload;
        if self.user_share_percent > 90
            || self.max_user_payload > crate::wire::MAX_PAYLOAD
            || user_len + envelope > self.packet_budget
            || self.max_queued_broadcasts.get() > 1_000_000
            || !(16..=1_000_000).contains(&self.broadcast_window)
            || self.max_app_state_len > crate::wire::MAX_APP_STATE
        {
            return Err(E::UserData);
        }
        if self.max_event_len > crate::wire::MAX_PAYLOAD
            || self.max_repair_events > 65_536
            || self.max_query_len > crate::wire::MAX_PAYLOAD
            || self.max_response_len > crate::wire::MAX_PAYLOAD
            || self.query_timeout_mult.get() > 1000
            || self.max_open_queries.get() > 65_536
            || self.query_rate.get() > 1_000_000
        {
            return Err(E::Queries);
        }
        let day = 86_400_000;
        let within_day = |d: crate::util::time::Duration| (1000..=day).contains(&d.as_millis());
        if !within_day(self.coordinate_refresh)
            || !within_day(self.vivaldi_gravity_rho)
            || !in_range(self.vivaldi_error_max_percent, 10, 1000)
            || !in_range(self.vivaldi_ce_percent, 1, 100)
            || !in_range(self.vivaldi_cc_percent, 1, 100)
            || self.vivaldi_adjustment_window > 256
            || self.vivaldi_height_min_us > 1_000_000
            || !in_range(self.vivaldi_latency_filter, 1, crate::protocol::coordinates::MAX_FILTER as u32)
        {
            return Err(E::Coordinates);
        }
        Ok(())
    }

    /// The largest event, query and answer this configuration sends:
    /// the configured limits, cut to what fits one datagram beside the
    /// longest names, the label and a seal.
    pub(crate) fn user_limits(&self) -> (usize, usize, usize) {
        let room = self.packet_budget.saturating_sub(crate::wire::frame::max_overhead(&self.label));
        let name = 2 + crate::util::name::MAX_NAME_LEN;
        let event = room.saturating_sub(1 + 10 + name + 4 + 1);
        let query = room.saturating_sub(1 + 10 + name + 20 + 6 + 1 + 1 + 5);
        let response = room.saturating_sub(1 + 10 + name + 1 + 2 + 21);
        (self.max_event_len.min(event), self.max_query_len.min(query), self.max_response_len.min(response))
    }
}

/// A [`Config`] field outside its documented range. [`Config::validate`]
/// only reads; [`Swim::new`](crate::Swim::new) refused with it builds no
/// member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `probe_interval` is zero.
    ProbeInterval,
    /// `probe_timeout` is zero or not shorter than `probe_interval`.
    ProbeTimeout,
    /// `rtt_probe_timeout` is zero or above `probe_timeout`.
    RttProbeTimeout,
    /// `probe_targets` is above 16.
    ProbeTargets,
    /// `indirect_checks` is above 16.
    IndirectChecks,
    /// `awareness_max_multiplier` is above 64.
    AwarenessMaxMultiplier,
    /// `suspicion_mult` or `suspicion_max_timeout_mult` is above 64.
    Suspicion,
    /// `retransmit_mult` is above 64.
    RetransmitMult,
    /// `gossip_interval` is zero or `gossip_nodes` above 64.
    Gossip,
    /// `dead_member_retention` is shorter than `gossip_to_the_dead_time`.
    DeadMemberRetention,
    /// `packet_budget` is outside 512 ..= 1500.
    PacketBudget,
    /// `packet_budget` cannot hold an alive update with a name of
    /// `MAX_NAME_LEN` bytes and `max_meta_len` bytes of metadata.
    MetaTooLongForBudget,
    /// One of `max_members`, `max_meta_len`, `max_relays`,
    /// `max_queued_updates` is above its bound.
    Limits,
    /// `push_pull_interval` is under 1 s.
    PushPull,
    /// `join_retry_interval` is zero or `join_attempts` above 1000.
    Join,
    /// `last_chance_checks` is above 8.
    LastChanceChecks,
    /// `stream_timeout` is zero, `max_streams` above 4096 or
    /// `max_sync_bytes` below one frame.
    Streams,
    /// `reconnect_interval` is under 1 s or `max_reconnect` above 65 536.
    Reconnect,
    /// A user-data limit is out of range, or a broadcast of
    /// `max_user_payload` bytes would not fit `packet_budget`.
    UserData,
    /// `member_admission_rate` above 1 000 000.
    Admission,
    /// An event, query or answer limit is above 1024, or another query
    /// or event limit above its bound.
    Queries,
    /// `coordinate_refresh` or `vivaldi_gravity_rho` outside 1 s ..= 1 day,
    /// or a Vivaldi parameter outside its range.
    Coordinates,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            ConfigError::ProbeInterval => "probe_interval must be at least 1 ms",
            ConfigError::ProbeTimeout => "probe_timeout must be at least 1 ms and below probe_interval",
            ConfigError::RttProbeTimeout => "rtt_probe_timeout must be at least 1 ms and at most probe_timeout",
            ConfigError::ProbeTargets => "probe_targets must be 1..=16",
            ConfigError::IndirectChecks => "indirect_checks must be 0..=16",
            ConfigError::AwarenessMaxMultiplier => "awareness_max_multiplier must be 1..=64",
            ConfigError::Suspicion => "suspicion multipliers must be 1..=64",
            ConfigError::RetransmitMult => "retransmit_mult must be 1..=64",
            ConfigError::Gossip => "gossip_interval must be at least 1 ms and gossip_nodes 0..=64",
            ConfigError::DeadMemberRetention => "dead_member_retention must be at least gossip_to_the_dead_time",
            ConfigError::PacketBudget => "packet_budget must be 512..=1500 bytes",
            ConfigError::Limits => "a size limit is above its bound",
            ConfigError::MetaTooLongForBudget => {
                "packet_budget must hold an alive update with the longest name and max_meta_len bytes of metadata"
            }
            ConfigError::PushPull => "push_pull_interval must be at least 1 s",
            ConfigError::Join => "join_retry_interval must be at least 1 ms and join_attempts 1..=1000",
            ConfigError::LastChanceChecks => "last_chance_checks must be 0..=8",
            ConfigError::Streams => {
                "stream_timeout must be at least 1 ms, max_streams 1..=4096 and max_sync_bytes at least one frame"
            }
            ConfigError::Reconnect => "reconnect_interval must be at least 1 s and max_reconnect 1..=65536",
            ConfigError::UserData => "a user-data limit is out of range or a broadcast would not fit packet_budget",
            ConfigError::Admission => "member_admission_rate must be 1..=1000000",
            ConfigError::Queries => {
                "an event, query or answer limit is above 1024, or a query or event limit above its bound"
            }
            ConfigError::Coordinates => "a coordinate or Vivaldi parameter is out of range",
        };
        f.write_str(what)
    }
}

impl core::error::Error for ConfigError {}
