//! The handle applications hold, and how a node is started.

use core::net::SocketAddr;
use core::time::Duration;
use std::fmt;
use std::io;
use std::net::{TcpListener, UdpSocket};
use std::time::Instant as StdInstant;

use async_channel::{Receiver, Sender};
#[cfg(feature = "trace")]
use lapswim_core::trace::{TraceHeader, TraceWriter};
use lapswim_core::{
    Config, Coordinate, Driver, Event, Identity, MemberName, MemberState, MemberView, NameError, OwnedInput, QueryId,
    QueryOptions, Stats, Swim, Tags,
};
#[cfg(feature = "encryption")]
use lapswim_core::{Key, KeyringOp};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::clock::Clock;
use crate::runtime::Runtime;
use crate::streams::{PeerFilter, StreamLimits, StreamStats, Streams};
use crate::task::{Command, Parts, Task, Wiring};

/// How many events wait for a slow consumer before newer ones are counted
/// as lost (see [`NodeEvent::Lagged`]).
pub const DEFAULT_EVENT_CAPACITY: usize = 1024;

/// The default timer slack as a share of the shortest protocol interval
/// (`gossip_interval` or `probe_timeout`): 1/10, so 20 ms with the LAN
/// preset, 10 ms local, 50 ms WAN (see [`NodeBuilder::timer_slack`]).
pub const DEFAULT_TIMER_SLACK_DIVISOR: u64 = 10;

/// Commands queued from handles to the node's task before senders wait.
/// Every node preallocates the queue: 16 slots take 768 bytes (64 took
/// 3 KiB; a thousand nodes in one process hold a thousand queues).
pub(crate) const COMMAND_CAPACITY: usize = 16;

/// Tries at binding UDP on the port TCP got, when the OS picks the port.
const BIND_ATTEMPTS: usize = 10;

/// A [`PeerFilter`] a builder can print.
#[derive(Clone)]
struct Filter(PeerFilter);

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PeerFilter")
    }
}

/// Everything needed to start a node; finish with a runtime crate's
/// `start` (`lapswim_tokio::start`, `lapswim_smol::start`).
#[derive(Clone, Debug)]
pub struct NodeBuilder {
    name: String,
    bind: SocketAddr,
    advertise: Option<SocketAddr>,
    config: Config,
    meta: Vec<u8>,
    seed: Option<u64>,
    event_capacity: usize,
    timer_slack: Option<Duration>,
    streams: StreamLimits,
    peer_filter: Option<Filter>,
    #[cfg(feature = "encryption")]
    keys: Vec<Key>,
    #[cfg(feature = "encryption")]
    mode: Option<(bool, bool)>,
    #[cfg(feature = "trace")]
    record: Option<std::path::PathBuf>,
}

impl NodeBuilder {
    /// A node called `name` that binds UDP and TCP `bind` (port 0 lets the
    /// OS pick one port for both), with [`Config::lan`], no metadata, a
    /// generator seeded by the OS and the default [`StreamLimits`].
    pub fn new(name: impl Into<String>, bind: SocketAddr) -> Self {
        NodeBuilder {
            name: name.into(),
            bind,
            advertise: None,
            config: Config::lan(),
            meta: Vec::new(),
            seed: None,
            event_capacity: DEFAULT_EVENT_CAPACITY,
            timer_slack: None,
            streams: StreamLimits::default(),
            peer_filter: None,
            #[cfg(feature = "encryption")]
            keys: Vec::new(),
            #[cfg(feature = "encryption")]
            mode: None,
            #[cfg(feature = "trace")]
            record: None,
        }
    }

    /// Records the node's trace to `path` (docs/trace.md): every input
    /// with its time and the digest of what the node emitted, for `swim
    /// replay`. Written in 64 KiB chunks from the node's task; a crash
    /// loses at most the last chunk. The file is created readable by its
    /// owner only (0600 on unix). It holds no key: a keyring change is
    /// recorded by key fingerprint, and `swim replay` is given the keys
    /// (`--key`, `--keyring`).
    #[cfg(feature = "trace")]
    pub fn record(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.record = Some(path.into());
        self
    }

    /// Seals every datagram and stream frame with AES-256-GCM: the first
    /// key is the primary (it seals), every key may open. Change them
    /// while running with [`Node::keyring`]; docs/security.md has the
    /// rotation procedure.
    #[cfg(feature = "encryption")]
    pub fn keys(mut self, keys: impl IntoIterator<Item = Key>) -> Self {
        self.keys = keys.into_iter().collect();
        self
    }

    /// The migration mode with keys installed (see
    /// [`KeyringOp::Mode`]): by default sealed out, plaintext refused.
    #[cfg(feature = "encryption")]
    pub fn encryption_mode(mut self, seal_outgoing: bool, accept_plaintext: bool) -> Self {
        self.mode = Some((seal_outgoing, accept_plaintext));
        self
    }

    /// The protocol configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Application metadata gossiped with our record (at most
    /// `config.max_meta_len` bytes).
    pub fn meta(mut self, meta: impl Into<Vec<u8>>) -> Self {
        self.meta = meta.into();
        self
    }

    /// The address others reach us at, when it is not the bound one (a
    /// wildcard bind, or a NAT).
    pub fn advertise(mut self, addr: SocketAddr) -> Self {
        self.advertise = Some(addr);
        self
    }

    /// Seeds the protocol's generator, making the node's choices repeatable
    /// (given the same inputs at the same times). The nonces of sealed
    /// packets do not come from it: their prefix is drawn from the
    /// operating system at every start, so nodes given one seed still
    /// never share a nonce.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// How many undelivered events to hold for the consumer (at least 2;
    /// memory is taken only as the backlog grows).
    pub fn event_capacity(mut self, capacity: usize) -> Self {
        self.event_capacity = capacity.max(2);
        self
    }

    /// How late the node may be woken for a deadline: deadlines are rounded
    /// up onto a process-wide grid of this step, so the many nodes of one
    /// process wake together instead of one by one (`swim loopback` with
    /// 64 nodes on tokio used 0.18 ms of CPU per node-second without slack,
    /// 0.12 ms with the LAN default of 20 ms). By default a tenth of the shortest protocol interval (see
    /// [`DEFAULT_TIMER_SLACK_DIVISOR`]); zero turns it off.
    pub fn timer_slack(mut self, slack: Duration) -> Self {
        self.timer_slack = Some(slack);
        self
    }

    /// How long connecting a stream may take before it ends with
    /// [`StreamEnd::TimedOut`](lapswim_core::StreamEnd::TimedOut); default
    /// [`DEFAULT_CONNECT_TIMEOUT`](crate::streams::DEFAULT_CONNECT_TIMEOUT), 5 s.
    pub fn stream_connect_timeout(mut self, timeout: Duration) -> Self {
        self.streams.connect_timeout = timeout;
        self
    }

    /// How long a stream may go without a whole frame read before it ends
    /// with [`StreamEnd::TimedOut`](lapswim_core::StreamEnd::TimedOut); default
    /// [`DEFAULT_IDLE_TIMEOUT`](crate::streams::DEFAULT_IDLE_TIMEOUT), 10 s.
    pub fn stream_idle_timeout(mut self, timeout: Duration) -> Self {
        self.streams.idle_timeout = timeout;
        self
    }

    /// The longest frame payload read from a stream, in bytes; a peer
    /// announcing a longer one fails the stream
    /// ([`StreamEnd::Failed`](lapswim_core::StreamEnd::Failed)). Default
    /// [`Datagram::MAX_FRAME_LEN`](lapswim_core::Datagram::MAX_FRAME_LEN), the longest the core
    /// sends: lower only if every peer's frames stay within it.
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.streams.max_frame = bytes;
        self
    }

    /// How many streams may be open at once, accepted and opened together;
    /// default [`DEFAULT_MAX_STREAMS`](crate::streams::DEFAULT_MAX_STREAMS), 64.
    /// A connection accepted beyond it is closed at once, an open beyond it
    /// ends with [`StreamEnd::Refused`](lapswim_core::StreamEnd::Refused); both
    /// are counted in [`StreamStats::over_cap`].
    pub fn max_streams(mut self, streams: usize) -> Self {
        self.streams.max_streams = streams;
        self
    }

    /// How many bytes may wait to be written on one stream before the next
    /// frame fails it; default
    /// [`DEFAULT_STREAM_BUFFER`](crate::streams::DEFAULT_STREAM_BUFFER), 1 MiB.
    pub fn stream_buffer(mut self, bytes: usize) -> Self {
        self.streams.buffer = bytes;
        self
    }

    /// Every stream limit at once (see [`StreamLimits`]).
    pub fn stream_limits(mut self, limits: StreamLimits) -> Self {
        self.streams = limits;
        self
    }

    /// Lets the node talk only to the peers `allow` returns `true` for: a
    /// way to simulate network partitions between nodes of one host.
    /// Datagrams to or from a refused address are dropped (counted in
    /// [`IoStats::datagrams_filtered`]); streams to it end with
    /// [`StreamEnd::Refused`](lapswim_core::StreamEnd::Refused) and
    /// connections from it are closed on accept (both counted in
    /// [`StreamStats::filtered`]).
    ///
    /// A datagram's address is its sender's node address, but an accepted
    /// connection's is the peer's ephemeral TCP port: to cut two nodes
    /// apart, give both a filter refusing the other (a partition is
    /// symmetric), so each refuses its own connects.
    pub fn peer_filter(mut self, allow: PeerFilter) -> Self {
        self.peer_filter = Some(Filter(allow));
        self
    }

    /// Binds the sockets, builds the state machine and spawns the node's
    /// tasks on `runtime`. Runtime crates wrap this as their `start`.
    pub fn start<R: Runtime>(self, runtime: &R) -> Result<Node, StartError> {
        let name = MemberName::new(&self.name).map_err(StartError::Name)?;
        let (socket, listener) = bind(self.bind).map_err(|e| StartError::Bind(self.bind, e))?;
        let bound = socket.local_addr().map_err(|e| StartError::Bind(self.bind, e))?;
        let addr = self.advertise.unwrap_or(bound);
        if addr.ip().is_unspecified() {
            return Err(StartError::NoAdvertiseAddress(addr));
        }
        let seed = match self.seed {
            Some(s) => s,
            None => getrandom::u64().map_err(|e| StartError::Random(e.to_string()))?,
        };
        let identity = Identity { name: name.clone(), addr, meta: self.meta };
        // The node logs rejected packets (rate-limited), so its machine
        // reports them always; the application sees them if it asked.
        let forward_rejections = self.config.report_rejections;
        let memberlist = self.config.speaks_memberlist();
        let config = self.config.with_report_rejections(true);
        #[cfg_attr(not(feature = "encryption"), expect(unused_mut, reason = "only the keyring set-up changes it"))]
        let mut swim =
            Swim::new(config, identity, Xoshiro256PlusPlus::seed_from_u64(seed)).map_err(StartError::Protocol)?;
        // Nonces from the OS, whatever the seed: two nodes given one seed
        // must still never seal with one nonce.
        #[cfg(feature = "encryption")]
        {
            let mut nonce_prefix = [0u8; 12];
            getrandom::fill(&mut nonce_prefix).map_err(|e| StartError::Random(e.to_string()))?;
            swim.set_nonce_prefix(nonce_prefix);
        }
        #[cfg_attr(
            not(any(feature = "encryption", feature = "trace")),
            expect(unused_mut, reason = "only recording and the keyring set-up change it")
        )]
        let mut driver = Driver::new();
        #[cfg(feature = "trace")]
        if let Some(path) = &self.record {
            let header = TraceHeader::of(seed, &swim);
            let mut file = create_trace_file(path).map_err(|e| StartError::Record(path.clone(), e))?;
            let sink = move |b: &[u8]| {
                if let Err(e) = io::Write::write_all(&mut file, b) {
                    tracing::warn!(error = %e, "trace write failed");
                }
            };
            driver.record(TraceWriter::new(&header, Box::new(sink)));
        }
        // Through the driver, so a trace holds the keyring changes too (by
        // key fingerprint: a replay is given the keys).
        #[cfg(feature = "encryption")]
        {
            let mut ops: Vec<KeyringOp> = self.keys.iter().map(|&k| KeyringOp::Install(k)).collect();
            ops.extend(self.keys.first().map(|&k| KeyringOp::Use(k)));
            ops.extend(
                self.mode.map(|(seal_outgoing, accept_plaintext)| KeyringOp::Mode { seal_outgoing, accept_plaintext }),
            );
            for op in ops {
                driver
                    .handle(&mut swim, lapswim_core::Instant::ZERO, lapswim_core::Input::Keyring(op), &mut Setup)
                    .map_err(StartError::Protocol)?;
            }
        }
        let socket = runtime.udp(socket).map_err(|e| StartError::Bind(self.bind, e))?;
        let listener = runtime.tcp_listener(listener).map_err(|e| StartError::Bind(self.bind, e))?;
        let filter = self.peer_filter.map(|f| f.0);
        let mut streams = Streams::new(runtime.clone(), self.streams, filter);
        if memberlist {
            streams.set_framing(crate::streams::Framing::Memberlist);
        }
        let clock = Clock::process();
        let (commands, command_rx) = async_channel::bounded(COMMAND_CAPACITY);
        let (events_tx, events) = async_channel::unbounded();
        let (done_tx, done) = async_channel::bounded(1);
        // The listener's task holds a `done` too: `shutdown` returns once
        // the port is free again.
        streams.listen_with(listener, done_tx.clone());
        let timer = runtime.timer(clock.std(lapswim_core::Instant::ZERO));
        let slack = match self.timer_slack {
            Some(s) => u64::try_from(s.as_millis()).unwrap_or(u64::MAX),
            None => {
                let c = swim.config();
                c.gossip_interval.as_millis().min(c.probe_timeout.as_millis()) / DEFAULT_TIMER_SLACK_DIVISOR
            }
        };
        let task = Task::new(
            swim,
            driver,
            clock,
            slack,
            Parts { socket, timer, streams, forward_rejections },
            Wiring { commands: command_rx, events: events_tx, event_capacity: self.event_capacity, done: done_tx },
        );
        tracing::info!(node = %name, %addr, bound = %bound, "node started");
        runtime.spawn(task);
        Ok(Node { name, addr, commands, events, done })
    }
}

/// Creates (or truncates) a trace file, readable and writable by its
/// owner only on unix (0600): a trace holds no key, but it does hold what
/// the application gave the node (broadcasts, direct messages, metadata)
/// in the clear, and every address it heard from.
#[cfg(feature = "trace")]
pub(crate) fn create_trace_file(path: &std::path::Path) -> io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path)?;
    // An existing file keeps its mode through `open`: set it anyway.
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(file)
}

/// The transport of the inputs applied before the node runs (keyring
/// set-up): they emit nothing.
#[cfg(feature = "encryption")]
struct Setup;

#[cfg(feature = "encryption")]
impl lapswim_core::Transport for Setup {
    fn send(&mut self, _: SocketAddr, packet: lapswim_core::Datagram) -> Option<lapswim_core::Datagram> {
        Some(packet)
    }
    fn set_timer(&mut self, _: lapswim_core::Instant) {}
    fn event(&mut self, _: Event) {}
    fn open_stream(&mut self, _: lapswim_core::StreamId, _: SocketAddr) {}
    fn send_frame(
        &mut self,
        _: lapswim_core::StreamId,
        frame: lapswim_core::Datagram,
    ) -> Option<lapswim_core::Datagram> {
        Some(frame)
    }
    fn close_stream(&mut self, _: lapswim_core::StreamId) {}
}

/// Binds UDP and TCP on one port: `addr`'s, or when it is 0 the port the
/// OS gives TCP (tried again if UDP cannot have it).
fn bind(addr: SocketAddr) -> io::Result<(UdpSocket, TcpListener)> {
    let (udp, tcp) = if addr.port() != 0 {
        (UdpSocket::bind(addr)?, TcpListener::bind(addr)?)
    } else {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let tcp = TcpListener::bind(addr)?;
            match UdpSocket::bind(tcp.local_addr()?) {
                Ok(udp) => break (udp, tcp),
                Err(e) if attempt >= BIND_ATTEMPTS => return Err(e),
                Err(e) => {
                    tracing::debug!(port = tcp.local_addr()?.port(), error = %e, "UDP port taken; trying another")
                }
            }
        }
    };
    udp.set_nonblocking(true)?;
    tcp.set_nonblocking(true)?;
    Ok((udp, tcp))
}

/// Why a node could not start.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// The name is not a valid member name.
    Name(NameError),
    /// The UDP socket or the TCP listener could not be bound or
    /// registered.
    Bind(SocketAddr, io::Error),
    /// The bound address is a wildcard and no advertise address was given.
    NoAdvertiseAddress(SocketAddr),
    /// The OS generator failed.
    Random(String),
    /// The configuration or metadata was refused.
    Protocol(lapswim_core::Error),
    /// The trace file could not be created.
    #[cfg(feature = "trace")]
    Record(std::path::PathBuf, io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Name(e) => write!(f, "invalid name: {e}"),
            StartError::Bind(addr, e) => write!(f, "cannot bind {addr}: {e}"),
            StartError::NoAdvertiseAddress(addr) => {
                write!(f, "bound to wildcard {addr}: give an address others can reach (advertise)")
            }
            StartError::Random(e) => write!(f, "OS random generator failed: {e}"),
            StartError::Protocol(e) => write!(f, "{e}"),
            #[cfg(feature = "trace")]
            StartError::Record(path, e) => write!(f, "cannot record to {}: {e}", path.display()),
        }
    }
}

impl core::error::Error for StartError {}

/// Why a request to a running node failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeError {
    /// The node has shut down.
    Stopped,
    /// No seed answered within the join attempts.
    JoinFailed,
    /// The state machine refused the request.
    Protocol(lapswim_core::Error),
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeError::Stopped => f.write_str("the node has shut down"),
            NodeError::JoinFailed => f.write_str("no seed answered"),
            NodeError::Protocol(e) => write!(f, "{e}"),
        }
    }
}

impl core::error::Error for NodeError {}

/// A member as one node sees it, at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its unique name.
    pub name: MemberName,
    /// Where it is reached.
    pub addr: SocketAddr,
    /// What this node believes of it.
    pub state: MemberState,
    /// Its incarnation number.
    pub incarnation: u32,
    /// Its metadata.
    pub meta: Vec<u8>,
    /// Its tags (empty when its metadata is not a tag encoding).
    pub tags: Tags,
    /// Whether this is the node itself.
    pub is_local: bool,
    /// Its network coordinate, if this node holds one (docs/protocol.md
    /// §6.13): for the node itself its own, for a peer the one learnt from
    /// the probes exchanged with it, so missing until the first; always
    /// missing with coordinates off.
    pub coordinate: Option<Coordinate>,
    /// This node's round trip to it: the median of its own last probes of
    /// it, else what the coordinates estimate once both are settled;
    /// `None` until then, and for the node itself.
    pub rtt: Option<Duration>,
}

impl From<MemberView<'_>> for Member {
    fn from(v: MemberView<'_>) -> Self {
        Member {
            name: v.name.clone(),
            addr: v.addr,
            state: v.state,
            incarnation: v.incarnation,
            meta: v.meta.to_vec(),
            tags: v.tags(),
            is_local: v.is_local,
            coordinate: v.coordinate,
            rtt: v.rtt,
        }
    }
}

/// Socket-level counters of one node: errors met and survived.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IoStats {
    /// Datagrams handed to the socket.
    pub datagrams_sent: u64,
    /// Datagrams taken from the socket.
    pub datagrams_received: u64,
    /// Sends dropped because the socket's buffer was full.
    pub send_buffer_full: u64,
    /// Sends refused as too large for the path.
    pub send_oversized: u64,
    /// ICMP unreachable reports (a peer's port closed), on send or receive.
    pub unreachable: u64,
    /// Any other send error.
    pub send_errors: u64,
    /// Any other receive error.
    pub recv_errors: u64,
    /// Events dropped because the consumer was behind.
    pub events_dropped: u64,
    /// Datagrams to or from a peer the peer filter refuses, dropped (see
    /// [`NodeBuilder::peer_filter`]).
    pub datagrams_filtered: u64,
    /// The reliable streams' counters.
    pub streams: StreamStats,
}

/// What a node has counted since start.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct NodeStats {
    /// The state machine's counters (probes, suspicions, rejected datagrams
    /// by reason, bytes).
    pub protocol: Stats,
    /// The sockets'.
    pub io: IoStats,
    /// The event Lamport clock: the time our next event will carry; a
    /// snapshot keeps it for [`Node::restore`].
    pub event_time: u64,
    /// The query Lamport clock, likewise.
    pub query_time: u64,
    /// Membership updates waiting to be piggybacked.
    pub queued_updates: usize,
    /// Events and queries waiting for retransmission.
    pub queued_broadcasts: usize,
    /// Queries of ours still open, and queries we may still answer.
    pub open_queries: (usize, usize),
}

/// An item of a node's event stream.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeEvent {
    /// The protocol reported `event` while handling an input at `at`.
    Protocol {
        /// When the input that caused it was handled.
        at: StdInstant,
        /// What happened.
        event: Event,
    },
    /// The consumer fell behind and `missed` events were dropped here;
    /// [`IoStats::events_dropped`] counts them too.
    Lagged {
        /// How many.
        missed: u64,
    },
}

/// A running node: cheap to clone, every clone drives the same node. The
/// node stops at [`Node::shutdown`] or when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct Node {
    name: MemberName,
    addr: SocketAddr,
    commands: Sender<Command>,
    events: Receiver<NodeEvent>,
    done: Receiver<()>,
}

impl Node {
    /// Our member name.
    pub fn name(&self) -> &MemberName {
        &self.name
    }

    /// The address others reach us at.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Joins a cluster through `seeds`; returns the seed that answered, once
    /// our table is synced with it, or [`NodeError::JoinFailed`] after the
    /// configured attempts.
    pub async fn join(&self, seeds: &[SocketAddr]) -> Result<SocketAddr, NodeError> {
        let (reply, rx) = async_channel::bounded(1);
        self.request(Command::Join { seeds: seeds.to_vec(), reply }, rx).await?
    }

    /// Leaves gracefully: returns once the announcement has had all its
    /// transmissions, or after `leave_timeout`. The node then ignores the
    /// cluster until it is shut down.
    pub async fn leave(&self) -> Result<(), NodeError> {
        let (reply, rx) = async_channel::bounded(1);
        self.request(Command::Leave { reply }, rx).await?
    }

    /// Every member this node knows, itself first.
    pub async fn members(&self) -> Result<Vec<Member>, NodeError> {
        let (reply, rx) = async_channel::bounded(1);
        self.request(Command::Members { reply }, rx).await
    }

    /// The member named `name`, as this node sees it (itself included),
    /// if it is in the table.
    pub async fn member(&self, name: &str) -> Result<Option<Member>, NodeError> {
        let (reply, rx) = async_channel::bounded(1);
        self.request(Command::Member { name: name.into(), reply }, rx).await
    }

    /// The node's counters.
    pub async fn stats(&self) -> Result<NodeStats, NodeError> {
        let (reply, rx) = async_channel::bounded(1);
        self.request(Command::Stats { reply }, rx).await
    }

    /// Replaces our metadata (at most `config.max_meta_len` bytes): the
    /// change spreads to the cluster as an update of our record.
    pub async fn set_meta(&self, meta: Vec<u8>) -> Result<(), NodeError> {
        self.user(OwnedInput::SetMeta { meta }).await
    }

    /// Replaces the application state sent to a peer in every full-state
    /// sync, reported there as [`Event::AppState`].
    pub async fn set_app_state(&self, state: Vec<u8>) -> Result<(), NodeError> {
        self.user(OwnedInput::SetAppState { state }).await
    }

    /// Replaces our tags (encoded in our metadata): the change spreads to
    /// the cluster as an update of our record.
    pub async fn set_tags(&self, tags: Tags) -> Result<(), NodeError> {
        self.user(OwnedInput::SetTags { tags }).await
    }

    /// Sends the named event `name` with `payload` to every member, each
    /// of which reports it once as [`Event::User`].
    pub async fn event(&self, name: &str, payload: Vec<u8>, coalesce: bool) -> Result<(), NodeError> {
        self.user(OwnedInput::UserEvent { name: name.into(), payload, coalesce }).await
    }

    /// Asks the members `options` selects `name` with `payload`; acks,
    /// answers and the end arrive as [`Event::QueryAck`],
    /// [`Event::QueryResponse`] and [`Event::QueryDone`] with the id
    /// returned here.
    pub async fn query(&self, name: &str, payload: Vec<u8>, options: QueryOptions) -> Result<QueryId, NodeError> {
        self.ask(OwnedInput::Query { name: name.into(), payload, options }).await
    }

    /// Answers the query `id` raised here as [`Event::Query`].
    pub async fn respond(&self, id: QueryId, payload: Vec<u8>) -> Result<(), NodeError> {
        self.user(OwnedInput::Respond { id, payload }).await
    }

    /// Asks every member to acknowledge (serf's reachability check): the
    /// [`Event::Report`] with the returned id lists who did and who did
    /// not.
    pub async fn reachability(&self) -> Result<QueryId, NodeError> {
        self.ask(OwnedInput::Reachability).await
    }

    /// Changes every member's keyring (`None`: lists them) through an
    /// internal query; the [`Event::Report`] with the returned id says who
    /// did, who could not and why, and who was silent.
    #[cfg(feature = "encryption")]
    pub async fn cluster_keys(&self, op: Option<KeyringOp>) -> Result<QueryId, NodeError> {
        self.ask(OwnedInput::ClusterKeys { op }).await
    }

    /// Declares the failed member `name` departed (serf's force-leave), and
    /// with `prune` has every member forget it now: the id is then that
    /// of the internal query whose [`Event::Report`] lists who did. A live
    /// member is refused ([`lapswim_core::Error::NotFailed`]).
    pub async fn force_leave(&self, name: &str, prune: bool) -> Result<Option<QueryId>, NodeError> {
        self.maybe_ask(OwnedInput::ForceLeave { name: name.into(), prune }).await
    }

    /// Takes the Lamport clocks a snapshot kept from this member's
    /// previous run (see [`NodeStats::event_time`]), before joining: its
    /// old events and queries are then never reported again.
    pub async fn restore(&self, event_time: u64, query_time: u64) -> Result<(), NodeError> {
        self.user(OwnedInput::Restore { events: event_time, queries: query_time }).await
    }

    async fn ask(&self, input: OwnedInput) -> Result<QueryId, NodeError> {
        // Accepted, so a query was opened and numbered.
        self.maybe_ask(input).await?.ok_or(NodeError::Stopped)
    }

    async fn maybe_ask(&self, input: OwnedInput) -> Result<Option<QueryId>, NodeError> {
        let (reply, rx) = async_channel::bounded(1);
        self.request(Command::Ask { input: Box::new(input), reply }, rx).await?
    }

    /// Sends `payload` to the member named `to`, reported there as
    /// [`Event::Message`]: in one datagram (best effort), or over a stream
    /// when `reliable`, in which case a failed delivery is reported here
    /// as [`Event::MessageFailed`]. `Ok` means the node took the message.
    pub async fn send(&self, to: &str, payload: Vec<u8>, reliable: bool) -> Result<(), NodeError> {
        self.user(OwnedInput::Message { to: to.into(), payload, reliable }).await
    }

    /// Changes the keyring or the migration mode: install a key, make one
    /// the primary, remove one (not the primary). See docs/security.md for
    /// the rotation procedure.
    #[cfg(feature = "encryption")]
    pub async fn keyring(&self, op: KeyringOp) -> Result<(), NodeError> {
        self.user(OwnedInput::Keyring(op)).await
    }

    /// The installed keys, the primary first: the keyring as it is, after
    /// every change [`Node::keyring`] made or refused.
    #[cfg(feature = "encryption")]
    pub async fn keys(&self) -> Result<Vec<Key>, NodeError> {
        let (reply, rx) = async_channel::bounded(1);
        self.request(Command::Keys { reply }, rx).await
    }

    async fn user(&self, input: OwnedInput) -> Result<(), NodeError> {
        let (reply, rx) = async_channel::bounded(1);
        self.request(Command::User { input: Box::new(input), reply }, rx).await?
    }

    /// The node's events. Clones share one queue: each event goes to one
    /// receiver. Nothing is lost silently: when the queue is full, events
    /// are counted and a [`NodeEvent::Lagged`] comes before the next one.
    pub fn events(&self) -> Events {
        Events { rx: Box::pin(self.events.clone()) }
    }

    /// Stops the node at once, without leaving (to others it has crashed),
    /// and returns when its UDP socket and TCP listener are closed (its
    /// stream connections are dropped at once).
    pub async fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown).await;
        // Fails once the task has dropped its end: it has stopped.
        let _ = self.done.recv().await;
    }

    async fn request<T>(&self, command: Command, rx: Receiver<T>) -> Result<T, NodeError> {
        self.commands.send(command).await.map_err(|_| NodeError::Stopped)?;
        rx.recv().await.map_err(|_| NodeError::Stopped)
    }
}

/// A node's event stream (see [`Node::events`]).
#[derive(Debug)]
pub struct Events {
    rx: core::pin::Pin<Box<Receiver<NodeEvent>>>,
}

impl Clone for Events {
    fn clone(&self) -> Self {
        Events { rx: Box::pin((*self.rx).clone()) }
    }
}

impl Events {
    /// The next event; `None` once the node has stopped and every event
    /// was taken.
    pub async fn next(&self) -> Option<NodeEvent> {
        self.rx.recv().await.ok()
    }

    /// The next event if one is waiting.
    pub fn try_next(&self) -> Option<NodeEvent> {
        self.rx.try_recv().ok()
    }
}

impl futures_lite::Stream for Events {
    type Item = NodeEvent;

    fn poll_next(
        mut self: core::pin::Pin<&mut Self>,
        cx: &mut core::task::Context<'_>,
    ) -> core::task::Poll<Option<NodeEvent>> {
        self.rx.as_mut().poll_next(cx)
    }
}

#[cfg(all(test, unix, feature = "trace"))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::create_trace_file;

    #[test]
    fn a_trace_file_is_readable_by_its_owner_only() {
        let dir = std::env::temp_dir().join(format!("swim-node-trace-mode-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.trace");
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        drop(create_trace_file(&path).unwrap());
        assert_eq!(mode(&path), 0o600);
        // An existing file, readable by all, is narrowed too.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(create_trace_file(&path).unwrap());
        assert_eq!(mode(&path), 0o600);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
