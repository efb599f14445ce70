//! What a simulation is told: its network parameters, the commands that
//! can be scheduled, and why one may be refused.

use core::fmt;

use lapswim_core::OwnedInput;

/// Network parameters.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// The base seed: node `i` draws from `mix(seed, i + 1)`, the network
    /// from `mix(seed, 0)`.
    pub seed: u64,
    /// One-way latency of every packet, in ms (unless a link says
    /// otherwise).
    pub latency_ms: u64,
    /// Probability that a packet is lost (unless a link says otherwise):
    /// a datagram, or one segment of a stream (handshake, data, close).
    pub loss: f64,
    /// How long a stream connection may take before the opener gives up
    /// with `TimedOut`, in ms: the runtime's connect timeout (the adapters'
    /// default, 5 s). A connection nobody answers (a host that is gone, a
    /// partition) or whose handshake keeps being lost ends here.
    pub connect_timeout_ms: u64,
    /// The retransmission timeout of a lost handshake segment, in ms,
    /// doubled at every retry (Linux's initial RTO: 1 s, so a connection
    /// whose first SYN is lost waits 1 s, then 2 s more, and so on).
    pub syn_rto_ms: u64,
    /// The retransmission timeout of a lost data segment on an established
    /// stream, in ms, doubled at every retry of the same segment (Linux's
    /// floor of 200 ms, which a sub-millisecond round trip never raises).
    pub rto_ms: u64,
    /// How long a segment may go unacknowledged before both ends of its
    /// stream give up with `TimedOut`, in ms: the runtime's idle timeout
    /// (the adapters' default, 10 s). A stream across a partition stalls,
    /// then fails here.
    pub stream_give_up_ms: u64,
    /// Extra latency of every datagram and stream segment, uniform in
    /// `0..=jitter_ms` (as [`Command::SetJitter`] from the start).
    pub jitter_ms: u64,
    /// How one-way latencies are chosen: `latency_ms` everywhere, or the
    /// members placed on the globe ([`crate::geo`]).
    pub latency_model: crate::geo::LatencyModel,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            seed: 1,
            latency_ms: 1,
            loss: 0.0,
            connect_timeout_ms: 5_000,
            syn_rto_ms: 1_000,
            rto_ms: 200,
            stream_give_up_ms: 10_000,
            jitter_ms: 0,
            latency_model: crate::geo::LatencyModel::Flat,
        }
    }
}

/// What the simulator was asked to do that it cannot.
#[derive(Clone, Debug, PartialEq)]
pub enum SimError {
    /// There is no node with this index.
    NoSuchNode(usize),
    /// A loss probability outside `0..=1`.
    BadLoss(f64),
    /// A clock drift that would stop or reverse the clock (below
    /// -999,999 ppm).
    BadDrift(i32),
    /// The node factory refused to build a node.
    Node(lapswim_core::Error),
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::NoSuchNode(i) => write!(f, "no node {i}"),
            SimError::BadLoss(p) => write!(f, "loss probability {p} is outside 0..=1"),
            SimError::BadDrift(ppm) => write!(f, "clock drift {ppm} ppm would stop the clock"),
            SimError::Node(e) => write!(f, "node could not be built: {e}"),
        }
    }
}

impl core::error::Error for SimError {}

/// A partition's handle, chosen by whoever schedules it.
pub type PartitionId = u32;

/// Something scheduled to happen to the cluster.
#[derive(Clone, Debug)]
pub enum Command {
    /// Node joins through the seed nodes.
    Join {
        /// The joining node.
        node: usize,
        /// Nodes whose addresses it is given as seeds.
        seeds: Vec<usize>,
    },
    /// Node leaves gracefully.
    Leave(usize),
    /// Any input, as is, at a node: a raw datagram from any address, a
    /// wake-up, a join with any seeds.
    Input {
        /// The node.
        node: usize,
        /// The input.
        input: OwnedInput,
    },
    /// Node's process crashes: it handles nothing more and every packet to
    /// or from it (also those in flight) is lost, but its host is still
    /// up, so a stream connection to it is refused at once and its open
    /// streams are reset (the peers learn within a latency).
    Crash(usize),
    /// Node's host is lost (powered off, cut from the network): as
    /// [`Command::Crash`], but nothing answers for it, so a connection to
    /// it waits out its retransmissions and times out, and its open
    /// streams stall until their peers give up.
    CrashHost(usize),
    /// A crashed node comes back with a fresh state machine (same name)
    /// and joins through `seeds`. Its streams are gone.
    Restart {
        /// The node.
        node: usize,
        /// Nodes to join through.
        seeds: Vec<usize>,
        /// Whether it comes back at a new address (the next port of its
        /// host); packets still addressed to the old one are lost.
        new_addr: bool,
    },
    /// Sets the loss probability of every link without its own.
    SetLoss(f64),
    /// Sets the latency and loss of the one-way link `from` → `to`
    /// (`None` keeps the network's).
    SetLink {
        /// Sender.
        from: usize,
        /// Receiver.
        to: usize,
        /// One-way latency in ms.
        latency_ms: Option<u64>,
        /// Loss probability.
        loss: Option<f64>,
    },
    /// Packets from any node in `from` to any node in `to` are lost; with
    /// `both`, also the other way. Replaces an earlier partition `id`.
    Partition {
        /// The handle [`Command::HealPartition`] takes.
        id: PartitionId,
        /// Senders cut off.
        from: Vec<usize>,
        /// Receivers cut off.
        to: Vec<usize>,
        /// Whether the cut is symmetric.
        both: bool,
    },
    /// Removes partition `id`, leaving the others.
    HealPartition(PartitionId),
    /// Removes every partition.
    Heal,
    /// Node handles every input `ms` late from now on (0: on time): an
    /// overloaded member.
    SetSlow {
        /// The node.
        node: usize,
        /// Extra delay in ms.
        ms: u64,
    },
    /// Node handles nothing for `ms` (a stop-the-world pause), then its
    /// whole backlog at once, in arrival order.
    Pause {
        /// The node.
        node: usize,
        /// How long, in ms.
        ms: u64,
    },
    /// Node receives no datagram while `deaf` (it still sends, and its
    /// streams still work): a UDP receive path that fails on its own (a
    /// full socket buffer, a firewall rule), which TCP does not share.
    SetDeaf {
        /// The node.
        node: usize,
        /// Deaf or not.
        deaf: bool,
    },
    /// Node's datagrams are all lost while `mute` (it still receives, and
    /// its streams still work): a UDP send path that fails on its own (an
    /// egress firewall rule), which TCP does not share.
    SetMute {
        /// The node.
        node: usize,
        /// Mute or not.
        mute: bool,
    },
    /// Loss of everything node sends and of everything it receives
    /// (datagrams and stream segments alike), on top of the links' loss.
    SetNodeLoss {
        /// The node.
        node: usize,
        /// Probability each packet it sends is lost.
        send: f64,
        /// Probability each packet it receives is lost.
        recv: f64,
    },
    /// Every datagram is delivered twice with probability `p` (TCP drops
    /// its duplicate segments, so streams see none).
    SetDuplication(f64),
    /// Every datagram and stream segment gets a uniform extra latency of
    /// `0..=ms`, so that datagrams on one link overtake each other (a
    /// stream still delivers in order).
    SetJitter(u64),
    /// Burst loss (a Gilbert–Elliott channel on every one-way link): each
    /// packet (datagram or stream segment) first moves its link from good
    /// to bad with probability `enter`, or from bad to good with
    /// probability `leave`; in the bad state it is lost with probability
    /// `loss` (in the good state only the link's usual loss applies). Mean
    /// burst length is `1 / leave` packets. `enter = 0` turns it off and every link is good again.
    SetBurstLoss {
        /// Probability a good link turns bad, per packet.
        enter: f64,
        /// Probability a bad link turns good, per packet.
        leave: f64,
        /// Loss probability in the bad state.
        loss: f64,
    },
    /// The node's clock jumps `step_ms` forward and from now on runs
    /// `drift_ppm` parts per million fast (negative: slow). Every node's
    /// clock starts equal to network time; clocks never go back.
    SetClock {
        /// The node.
        node: usize,
        /// Forward jump, in ms.
        step_ms: u64,
        /// Rate error in parts per million (at least -999,999).
        drift_ppm: i32,
    },
}

impl Command {
    pub(crate) fn nodes(&self) -> Vec<usize> {
        match self {
            Command::Join { node, seeds } | Command::Restart { node, seeds, .. } => {
                seeds.iter().copied().chain([*node]).collect()
            }
            Command::Leave(n) | Command::Crash(n) | Command::CrashHost(n) => vec![*n],
            Command::Input { node, .. }
            | Command::SetSlow { node, .. }
            | Command::Pause { node, .. }
            | Command::SetDeaf { node, .. }
            | Command::SetMute { node, .. }
            | Command::SetNodeLoss { node, .. }
            | Command::SetClock { node, .. } => vec![*node],
            Command::SetLink { from, to, .. } => vec![*from, *to],
            Command::Partition { from, to, .. } => from.iter().chain(to).copied().collect(),
            Command::SetLoss(_)
            | Command::HealPartition(_)
            | Command::Heal
            | Command::SetDuplication(_)
            | Command::SetJitter(_)
            | Command::SetBurstLoss { .. } => Vec::new(),
        }
    }

    /// Every probability the command carries, to be checked.
    pub(crate) fn probabilities(&self) -> Vec<f64> {
        match self {
            Command::SetLoss(p) | Command::SetLink { loss: Some(p), .. } | Command::SetDuplication(p) => vec![*p],
            Command::SetNodeLoss { send, recv, .. } => vec![*send, *recv],
            Command::SetBurstLoss { enter, leave, loss } => vec![*enter, *leave, *loss],
            _ => Vec::new(),
        }
    }
}
