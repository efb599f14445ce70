//! Protocol configuration: every knob, its trade-off and its valid range.

use core::num::NonZeroU32;

use crate::util::time::Duration;
use crate::wire::Label;

/// Every tunable of the protocol.
///
/// The defaults ([`Config::default`] = [`Config::lan`]) are those of
/// memberlist's `DefaultLANConfig`, so figures compare one to one. A `Config`
/// is checked by [`Config::validate`] when a [`Swim`](crate::Swim) is built;
/// an invalid one is refused there with a [`ConfigError`].
///
/// Start from a preset and change what you need, field by field or with
/// the `with_*` setters:
///
/// ```
/// use lapswim_core::{Config, Duration};
/// let c = Config::lan().with_probe_interval(Duration::from_millis(500)).with_probe_timeout(Duration::from_millis(200));
/// assert_eq!(c.validate(), Ok(()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Config {
    /// The protocol period `T`: how often a member probes `probe_targets`
    /// others. Shorter detects failures sooner at the cost of more traffic
    /// (two packets per probe). Scaled up by the local health multiplier.
    /// Range: at least 1 ms and more than `probe_timeout`.
    pub probe_interval: Duration,
    /// How long to wait for a direct ack before asking `indirect_checks`
    /// members to probe on our behalf. Should exceed the network's 99th
    /// percentile round trip; too short causes needless indirect probes.
    /// Scaled up by the local health multiplier. Range: 1 ms .. `probe_interval`.
    pub probe_timeout: Duration,
    /// Probe timeouts from measured round trips (the SWIM paper's rule):
    /// when set, each probe waits for its target's smoothed round-trip
    /// time plus four deviations (TCP's retransmission timer, from the
    /// direct acks of earlier probes), never less than this floor and never
    /// more than `probe_timeout`, which stays the ceiling and the timeout
    /// before any measurement. `None` (every preset): `probe_timeout` for
    /// every probe. Range: 1 ms ..= `probe_timeout`.
    pub rtt_probe_timeout: Option<Duration>,
    /// `p`: members probed per protocol period. More finds failures sooner
    /// at `p` times the probe traffic. Range: 1 ..= 16.
    pub probe_targets: NonZeroU32,
    /// `k`: members asked to probe a target that missed its direct ack.
    /// More tolerates more packet loss on single paths; 0 disables indirect
    /// probing (and with it Lifeguard's nack signal). Range: 0 ..= 16.
    pub indirect_checks: u32,
    /// Lifeguard's local health bound: the score runs from 0 to this minus
    /// one and probe interval and timeout scale by `score + 1`. Higher lets
    /// an overloaded member back off further before it falsely accuses
    /// others. Range: 1 ..= 64 (1 disables the multiplier).
    pub awareness_max_multiplier: NonZeroU32,
    /// Suspicion timeout scale: the minimum suspicion time is
    /// `suspicion_mult * max(1, log10(n)) * probe_interval`. Higher gives a
    /// falsely suspected member longer to refute and delays true failure
    /// detection alike. Also sets the confirmations Lifeguard expects,
    /// `suspicion_mult - 2`. Range: 1 ..= 64.
    pub suspicion_mult: NonZeroU32,
    /// The suspicion timeout starts at this multiple of the minimum and
    /// shrinks to the minimum as independent confirmations arrive. Higher
    /// protects better against false positives on a lone accuser.
    /// Range: 1 ..= 64.
    pub suspicion_max_timeout_mult: NonZeroU32,
    /// Each update is retransmitted `retransmit_mult * ceil(log10(n + 1))`
    /// times. Higher spreads updates more reliably under loss for more bytes
    /// per packet. Range: 1 ..= 64.
    pub retransmit_mult: NonZeroU32,
    /// How often queued updates are sent to `gossip_nodes` random members,
    /// besides riding on probes. Shorter spreads faster for more packets;
    /// nothing is sent when the queue is empty. Range: at least 1 ms.
    pub gossip_interval: Duration,
    /// Members gossiped to per `gossip_interval`. Range: 0 ..= 64 (0 leaves
    /// dissemination to piggybacking on probes only).
    pub gossip_nodes: u32,
    /// Dead members keep receiving gossip this long, so a member wrongly
    /// declared dead hears of it and refutes. Range: any.
    pub gossip_to_the_dead_time: Duration,
    /// How long a dead or departed member stays in the table (as a
    /// tombstone that stale rumours cannot override) before it is removed.
    /// Range: at least `gossip_to_the_dead_time`.
    pub dead_member_retention: Duration,
    /// A dead member's name may be taken by a new address after this long.
    /// `None` never lets an address change while the old member is known.
    pub dead_node_reclaim_time: Option<Duration>,
    /// The largest datagram we send, in bytes, piggybacked updates included.
    /// Keep it under the path MTU to avoid IP fragmentation.
    /// Range: 512 ..= 1500.
    pub packet_budget: usize,
    /// The most members the table holds; further strangers are ignored (and
    /// counted). Bounds memory against a peer inventing members: an entry
    /// costs at most 192 bytes while its news is queued and about 120 once
    /// it has spread (16-byte name, no metadata;
    /// `swim-core/tests/member_memory.rs` and `swim sim memory` measure
    /// it), plus its metadata, so the default 100 000 bounds the table near
    /// 18 MiB.
    /// Range: 1 ..= 1 000 000.
    pub max_members: NonZeroU32,
    /// The largest metadata a member may carry, in bytes. Range: 0 ..= 512.
    pub max_meta_len: usize,
    /// The most ping-req relays we run for others at once; requests beyond
    /// it are dropped (and counted), so ping-reqs cannot amplify traffic.
    /// Range: 1 ..= 65 536.
    pub max_relays: NonZeroU32,
    /// The most updates waiting for retransmission; the oldest, most-sent
    /// ones are dropped first. Range: 1 ..= 1 000 000.
    pub max_queued_updates: NonZeroU32,
    /// Anti-entropy: how often to exchange whole member tables with one
    /// random member (scaled up beyond 32 members: one more multiple of the
    /// interval per doubling, as memberlist does). Repairs what gossip
    /// missed and merges partitions; costs a table's worth of datagrams
    /// each way per period. `None` disables it. Range: at least 1 s.
    pub push_pull_interval: Option<Duration>,
    /// Anti-entropy by difference: the periodic sync first sends a summary
    /// of our table (hashes of buckets of records), and then both sides
    /// send only the records of the buckets that differ, or whole tables
    /// when most differ (docs/protocol.md §6.5). A steady cluster's syncs
    /// then cost a few hundred bytes whatever its size. `false` sends
    /// whole tables every time, as memberlist does. Joins and reconnects
    /// always send whole tables.
    pub delta_sync: bool,
    /// HashiCorp memberlist 0.2.2's wire format instead of swim's own,
    /// on datagrams and streams, so that a swim node joins memberlist
    /// nodes and they join it (docs/interop.md). Datagrams: ping, indirect
    /// ping, ack, nack, alive, suspect, dead and best-effort user messages
    /// (whose sender is the member at the source address), compound, CRC
    /// and compressed datagrams in. Streams: whole-table syncs as
    /// memberlist's push-pull (never by difference), the fallback ping and
    /// reliable user messages, compressed streams in; a runtime cuts them
    /// with [`Config::memberlist_frame_len`], memberlist's streams having
    /// no length prefix. With a key, AES-GCM as memberlist seals (version
    /// 1 out, both versions in). What memberlist has no word for
    /// (coordinates, queries, user events, last-chance checks over
    /// streams) is not sent. Default `false`.
    pub memberlist_wire: bool,
    /// serf 0.9.4's layer on memberlist's format (which it implies,
    /// whatever `memberlist_wire` says), so that a swim node joins serf
    /// agents (docs/interop.md): the version range serf announces, tags
    /// ([`Tags`](crate::Tags)) in serf's encoding, user events as serf's
    /// (serf names no sender: an event's `from` is its name), queries
    /// without filters and their answers as serf's, and our leaves
    /// preceded by serf's leave intent. Messages for one member
    /// and our application state are not sent (serf would read them as
    /// its own). Default `false`.
    pub serf_wire: bool,
    /// Pause between join attempts while no seed has answered.
    /// Range: at least 1 ms.
    pub join_retry_interval: Duration,
    /// Join attempts before [`Event::JoinFailed`](crate::Event::JoinFailed).
    /// Range: 1 ..= 1000.
    pub join_attempts: NonZeroU32,
    /// The longest a graceful leave waits for its announcement to be
    /// retransmitted before it completes anyway. Range: any.
    pub leave_timeout: Duration,
    /// Last-chance checks before a suspicion expires, one `probe_timeout`
    /// apart. A member that raised or confirmed the suspicion itself pings
    /// the suspect with the suspicion attached (a live suspect refutes on
    /// the ack); any other member asks one random peer for its record (it
    /// likely heard a refutation this member missed). Each check costs one
    /// or two small datagrams per member holding the suspicion; 0 disables
    /// them, at the risk of declaring a member whose refutation was lost.
    /// Range: 0 ..= 8.
    pub last_chance_checks: u32,
    /// The longest a stream may stay open (a full-state sync, a fallback
    /// ping, a reliable message) before it is closed as failed. Bounds the
    /// state a silent or slow peer can hold. Range: at least 1 ms.
    pub stream_timeout: Duration,
    /// The most streams open at once, both ways. Streams beyond it are
    /// refused (an accepted one is closed at once), so peers cannot make a
    /// member hold unbounded sync state. Range: 1 ..= 4096.
    pub max_streams: NonZeroU32,
    /// The most bytes one peer may send in one full-state sync; a larger
    /// sync is cut off (what was merged stays). Must hold a table of
    /// `max_members` records. Range: at least `MAX_FRAME`.
    pub max_sync_bytes: usize,
    /// When a probe misses its direct ack, also ping the target over a
    /// stream (memberlist's TCP fallback), so a member whose datagrams are
    /// blocked but whose streams work is not declared failed. Costs one
    /// short connection per missed probe.
    pub fallback_ping: bool,
    /// How often to retry one member we declared failed by opening a
    /// full-state sync to its address: two sides of a healed partition
    /// merge again without an operator. `None` disables it.
    /// Range: at least 1 s.
    pub reconnect_interval: Option<Duration>,
    /// How long a failed member is remembered for reconnect attempts
    /// (after it has left the table). Range: any.
    pub reconnect_timeout: Duration,
    /// The most failed members remembered for reconnect attempts; the
    /// oldest is forgotten first. Range: 1 ..= 65 536.
    pub max_reconnect: NonZeroU32,
    /// Percent of every gossip datagram's budget kept for application
    /// broadcasts before membership updates fill it, so membership churn
    /// cannot starve them (both use any room the other leaves).
    /// Range: 0 ..= 90.
    pub user_share_percent: u32,
    /// The largest broadcast or direct message payload, in bytes.
    /// Range: 0 ..= 1024, and it must fit a datagram beside its header.
    pub max_user_payload: usize,
    /// The most application broadcasts waiting for retransmission; the
    /// most-sent, oldest go first. Range: 1 ..= 1 000 000.
    pub max_queued_broadcasts: NonZeroU32,
    /// Lamport times of broadcasts remembered for deduplication: a
    /// broadcast older than our clock minus this is dropped as too old
    /// (and counted) rather than risk delivering it twice.
    /// Range: 16 ..= 1 000 000.
    pub broadcast_window: u32,
    /// The largest application state sent in a full-state sync, in bytes.
    /// Range: 0 ..= `MAX_APP_STATE`.
    pub max_app_state_len: usize,
    /// The cluster label every packet carries: packets with another label
    /// are rejected (and counted), so two clusters sharing a network never
    /// merge, encrypted or not. Empty (none) by default.
    pub label: Label,
    /// New members admitted per second from gossip and from syncs others
    /// open to us, with a burst of one second's worth, or as many a second
    /// as the live members we hold when those are more: a cluster that
    /// forms all at once brings about one new name per member, which every
    /// member then takes in within about a second whatever the cluster's
    /// size. A sender flooding alive messages for fresh names cannot grow
    /// the table faster (and each name must still answer its admission
    /// check at its address). Syncs we open ourselves (joins, push-pulls,
    /// reconnects) are not limited: we chose whom to ask. Names refused
    /// here come back by gossip or the next push-pull.
    /// Range: 1 ..= 1 000 000.
    pub member_admission_rate: NonZeroU32,
    /// Whether every rejected datagram or frame is also reported as an
    /// [`Event::Rejected`](crate::Event::Rejected) (it is always counted
    /// in [`Stats::rejected`](crate::Stats::rejected)). Off by default:
    /// junk from anyone then costs the application nothing.
    pub report_rejections: bool,
    /// The largest named event, name and payload together, in bytes;
    /// a larger one is refused with [`Error::TooLarge`](crate::Error::TooLarge).
    /// serf's default. Range: 0 ..= 1024; cut to what fits one datagram
    /// beside the longest name, the label and a seal.
    pub max_event_len: usize,
    /// How long an event is kept to repair, through full-state syncs, the
    /// members that missed it; zero keeps none. Range: any.
    pub event_repair_time: Duration,
    /// The most events kept for repair (the oldest go first); zero keeps
    /// none. Range: 0 ..= 65 536.
    pub max_repair_events: u32,
    /// Whether a member that joins is delivered the events the cluster
    /// still holds for repair (serf's `-replay`). Off: it sees only events
    /// sent after it joined.
    pub replay_events_on_join: bool,
    /// The largest query, name, payload and encoded filter together, in
    /// bytes. serf's default. Range: 0 ..= 1024; cut to what fits one
    /// datagram beside the longest names, the label and a seal.
    pub max_query_len: usize,
    /// The largest answer to a query, in bytes. serf's default.
    /// Range: 0 ..= 1024; cut like `max_query_len`.
    pub max_response_len: usize,
    /// A query's default timeout is `gossip_interval` × this ×
    /// ceil(log10(n + 1)), as serf computes it. Range: 1 ..= 1000.
    pub query_timeout_mult: NonZeroU32,
    /// The most queries this member holds open at once: its own awaiting
    /// answers and others' awaiting ours. Beyond it a query is dropped
    /// (and counted). Range: 1 ..= 65 536.
    pub max_open_queries: NonZeroU32,
    /// Queries per second any one member may start, with a burst of one
    /// second's worth: beyond it others drop its queries (and count them),
    /// and our own are refused with [`Error::Busy`](crate::Error::Busy).
    /// Range: 1 ..= 1 000 000.
    pub query_rate: NonZeroU32,
    /// Whether members keep network coordinates (docs/protocol.md §6.13):
    /// probes that ask carry the prober's coordinate and their acks the
    /// target's, and every direct round trip refines ours. Off: no
    /// coordinate is sent, and those received are ignored.
    pub coordinates: bool,
    /// How long a peer's coordinate is used before the next probe of it
    /// asks for it again; shorter, by the square of 0.2 over the error,
    /// while the peer's error estimate is above 0.2 (it is still placing
    /// itself). Range: 1 s ..= 1 day.
    pub coordinate_refresh: Duration,
    /// Vivaldi: the error estimate of a member that has learnt nothing, in
    /// percent (serf: 150). Range: 10 ..= 1 000.
    pub vivaldi_error_max_percent: u32,
    /// Vivaldi: the most one round trip moves the error estimate, in
    /// percent (serf: 25). Range: 1 ..= 100.
    pub vivaldi_ce_percent: u32,
    /// Vivaldi: the most one round trip moves the coordinate, in percent
    /// (serf: 25). Range: 1 ..= 100.
    pub vivaldi_cc_percent: u32,
    /// Vivaldi: residuals averaged into the adjustment term (serf: 20; 0
    /// turns it off). Range: 0 ..= 256.
    pub vivaldi_adjustment_window: u32,
    /// Vivaldi: the least height, in microseconds (serf: 10). Range:
    /// 0 ..= 1 000 000.
    pub vivaldi_height_min_us: u32,
    /// Vivaldi: round trips per peer whose median is used (serf: 3; 1
    /// uses each as it comes). Range: 1 ..= 4.
    pub vivaldi_latency_filter: u32,
    /// Vivaldi: gravity's length scale (serf: 150 s): the pull toward the
    /// origin that keeps coordinates from drifting grows with the square
    /// of the distance from it over this. Range: 1 s ..= 1 day.
    pub vivaldi_gravity_rho: Duration,
}

/// Generates a chainable setter per field.
macro_rules! setters {
    ($($setter:ident => $field:ident: $ty:ty),* $(,)?) => {
        impl Config {
            $(
                #[doc = concat!("This configuration with `", stringify!($field), "` set to `v` (see the field).")]
                #[must_use]
                pub const fn $setter(mut self, v: $ty) -> Self {
                    self.$field = v;
                    self
                }
            )*
        }
    };
}

setters! {
    with_probe_interval => probe_interval: Duration,
    with_probe_timeout => probe_timeout: Duration,
    with_probe_targets => probe_targets: NonZeroU32,
    with_indirect_checks => indirect_checks: u32,
    with_awareness_max_multiplier => awareness_max_multiplier: NonZeroU32,
    with_suspicion_mult => suspicion_mult: NonZeroU32,
    with_suspicion_max_timeout_mult => suspicion_max_timeout_mult: NonZeroU32,
    with_retransmit_mult => retransmit_mult: NonZeroU32,
    with_gossip_interval => gossip_interval: Duration,
    with_gossip_nodes => gossip_nodes: u32,
    with_gossip_to_the_dead_time => gossip_to_the_dead_time: Duration,
    with_dead_member_retention => dead_member_retention: Duration,
    with_dead_node_reclaim_time => dead_node_reclaim_time: Option<Duration>,
    with_packet_budget => packet_budget: usize,
    with_max_members => max_members: NonZeroU32,
    with_max_meta_len => max_meta_len: usize,
    with_max_relays => max_relays: NonZeroU32,
    with_max_queued_updates => max_queued_updates: NonZeroU32,
    with_push_pull_interval => push_pull_interval: Option<Duration>,
    with_delta_sync => delta_sync: bool,
    with_memberlist_wire => memberlist_wire: bool,
    with_serf_wire => serf_wire: bool,
    with_join_retry_interval => join_retry_interval: Duration,
    with_join_attempts => join_attempts: NonZeroU32,
    with_leave_timeout => leave_timeout: Duration,
    with_last_chance_checks => last_chance_checks: u32,
    with_stream_timeout => stream_timeout: Duration,
    with_max_streams => max_streams: NonZeroU32,
    with_max_sync_bytes => max_sync_bytes: usize,
    with_fallback_ping => fallback_ping: bool,
    with_rtt_probe_timeout => rtt_probe_timeout: Option<Duration>,
    with_reconnect_interval => reconnect_interval: Option<Duration>,
    with_reconnect_timeout => reconnect_timeout: Duration,
    with_max_reconnect => max_reconnect: NonZeroU32,
    with_user_share_percent => user_share_percent: u32,
    with_max_user_payload => max_user_payload: usize,
    with_max_queued_broadcasts => max_queued_broadcasts: NonZeroU32,
    with_broadcast_window => broadcast_window: u32,
    with_max_app_state_len => max_app_state_len: usize,
    with_member_admission_rate => member_admission_rate: NonZeroU32,
    with_report_rejections => report_rejections: bool,
    with_max_event_len => max_event_len: usize,
    with_event_repair_time => event_repair_time: Duration,
    with_max_repair_events => max_repair_events: u32,
    with_replay_events_on_join => replay_events_on_join: bool,
    with_max_query_len => max_query_len: usize,
    with_max_response_len => max_response_len: usize,
    with_query_timeout_mult => query_timeout_mult: NonZeroU32,
    with_max_open_queries => max_open_queries: NonZeroU32,
    with_query_rate => query_rate: NonZeroU32,
    with_coordinates => coordinates: bool,
    with_coordinate_refresh => coordinate_refresh: Duration,
    with_vivaldi_error_max_percent => vivaldi_error_max_percent: u32,
    with_vivaldi_ce_percent => vivaldi_ce_percent: u32,
    with_vivaldi_cc_percent => vivaldi_cc_percent: u32,
    with_vivaldi_adjustment_window => vivaldi_adjustment_window: u32,
    with_vivaldi_height_min_us => vivaldi_height_min_us: u32,
    with_vivaldi_latency_filter => vivaldi_latency_filter: u32,
    with_vivaldi_gravity_rho => vivaldi_gravity_rho: Duration,
}

impl Config {
    /// This configuration with the cluster label `label` (see the field).
    #[must_use]
    pub fn with_label(mut self, label: Label) -> Self {
        self.label = label;
        self
    }

    /// Whether this node speaks memberlist's format
    /// ([`Config::memberlist_wire`], or [`Config::serf_wire`] on it).
    pub fn speaks_memberlist(&self) -> bool {
        self.memberlist_wire || self.serf_wire
    }

    /// With [`Config::memberlist_wire`], how a runtime finds frames in a
    /// stream: memberlist writes one message after another with no length
    /// prefix. Given the bytes read so far and not yet passed on,
    /// `Ok(Some(n))` says the first `n` of them are one whole frame, to be
    /// passed as [`Input::StreamFrame`](crate::Input::StreamFrame) as they
    /// are; `Ok(None)` that more must be read first. An error means the
    /// stream is not memberlist's (or announces more than its 20 MiB
    /// bound): close it. Without `memberlist_wire`, frames have a 4-byte
    /// big-endian length prefix instead, which a runtime reads itself.
    pub fn memberlist_frame_len(received: &[u8]) -> Result<Option<usize>, crate::DecodeError> {
        use crate::wire::memberlist::{Limits, dialect::decode_error, stream::message_len};
        message_len(received, &Limits::STREAM).map_err(decode_error)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::lan()
    }
}

const fn nz(v: u32) -> NonZeroU32 {
    match NonZeroU32::new(v) {
        Some(v) => v,
        None => NonZeroU32::MIN,
    }
}

impl Config {
    /// memberlist's `DefaultLANConfig`: 1 s probes, 500 ms probe timeout,
    /// 3 indirect checks, suspicion multiplier 4 (max 6x), retransmit
    /// multiplier 4, gossip every 200 ms to 3 members.
    pub const fn lan() -> Self {
        Config {
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
            rtt_probe_timeout: None,
            probe_targets: nz(1),
            indirect_checks: 3,
            awareness_max_multiplier: nz(8),
            suspicion_mult: nz(4),
            suspicion_max_timeout_mult: nz(6),
            retransmit_mult: nz(4),
            gossip_interval: Duration::from_millis(200),
            gossip_nodes: 3,
            gossip_to_the_dead_time: Duration::from_secs(30),
            dead_member_retention: Duration::from_secs(30),
            dead_node_reclaim_time: None,
            packet_budget: 1400,
            max_members: nz(100_000),
            max_meta_len: 512,
            max_relays: nz(256),
            max_queued_updates: nz(100_000),
            push_pull_interval: Some(Duration::from_secs(30)),
            delta_sync: true,
            memberlist_wire: false,
            serf_wire: false,
            join_retry_interval: Duration::from_secs(1),
            join_attempts: nz(5),
            leave_timeout: Duration::from_secs(5),
            last_chance_checks: 2,
            stream_timeout: Duration::from_secs(10),
            max_streams: nz(64),
            max_sync_bytes: 64 * 1024 * 1024,
            fallback_ping: true,
            reconnect_interval: Some(Duration::from_secs(30)),
            reconnect_timeout: Duration::from_secs(6 * 3600),
            max_reconnect: nz(1024),
            user_share_percent: 25,
            max_user_payload: 1024,
            max_queued_broadcasts: nz(4096),
            broadcast_window: 16_384,
            max_app_state_len: 32 * 1024,
            label: Label::EMPTY,
            member_admission_rate: nz(1000),
            report_rejections: false,
            max_event_len: 512,
            event_repair_time: Duration::from_secs(180),
            max_repair_events: 2048,
            replay_events_on_join: false,
            max_query_len: 1024,
            max_response_len: 1024,
            query_timeout_mult: nz(16),
            max_open_queries: nz(256),
            query_rate: nz(10),
            coordinates: true,
            coordinate_refresh: Duration::from_secs(3600),
            vivaldi_error_max_percent: 150,
            vivaldi_ce_percent: 25,
            vivaldi_cc_percent: 25,
            vivaldi_adjustment_window: 20,
            vivaldi_height_min_us: 10,
            vivaldi_latency_filter: 3,
            vivaldi_gravity_rho: Duration::from_secs(150),
        }
    }

    /// memberlist's `DefaultWANConfig`: slower probes (5 s, 3 s timeout),
    /// suspicion multiplier 6, gossip every 500 ms to 4 members, dead
    /// members gossiped to for 60 s.
    pub const fn wan() -> Self {
        let mut c = Config::lan();
        c.probe_interval = Duration::from_secs(5);
        c.probe_timeout = Duration::from_secs(3);
        c.suspicion_mult = nz(6);
        c.gossip_interval = Duration::from_millis(500);
        c.gossip_nodes = 4;
        c.gossip_to_the_dead_time = Duration::from_secs(60);
        c.dead_member_retention = Duration::from_secs(60);
        c.push_pull_interval = Some(Duration::from_secs(60));
        c.join_retry_interval = Duration::from_secs(5);
        c
    }

    /// Faster failure detection on a LAN, at twice the probe traffic of
    /// [`Config::lan`]: a probe every 500 ms with a 250 ms timeout and a
    /// suspicion multiplier of 3 (at n = 100 a suspicion lasts 3 s with
    /// one confirmation, 18 s with none, against 8 and 48). It relies on
    /// Lifeguard's confirmations and the last-chance checks to keep live
    /// members alive under loss; docs/tuning.md has the trade-off.
    pub const fn fast() -> Self {
        let mut c = Config::lan();
        c.probe_interval = Duration::from_millis(500);
        c.probe_timeout = Duration::from_millis(250);
        c.suspicion_mult = nz(3);
        c
    }

    /// memberlist's `DefaultLocalConfig`, for a single host or a fast LAN:
    /// 200 ms probe timeout, 1 indirect check, suspicion multiplier 3,
    /// retransmit multiplier 2, gossip every 100 ms, 15 s to the dead.
    pub const fn local() -> Self {
        let mut c = Config::lan();
        c.probe_timeout = Duration::from_millis(200);
        c.indirect_checks = 1;
        c.suspicion_mult = nz(3);
        c.retransmit_mult = nz(2);
        c.gossip_interval = Duration::from_millis(100);
        c.gossip_to_the_dead_time = Duration::from_secs(15);
        c.dead_member_retention = Duration::from_secs(15);
        c.push_pull_interval = Some(Duration::from_secs(15));
        c.join_retry_interval = Duration::from_millis(500);
        c
    }
}

#[cfg(test)]
mod tests;
mod validate;

pub use validate::ConfigError;
