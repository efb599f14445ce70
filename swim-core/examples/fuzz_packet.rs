//! A fuzz harness for the datagram decoder, as you would write it for your
//! own embedding of `lapswim-core`: arbitrary bytes go to
//! `Swim::handle(now, Input::Packet { .. }, ..)` of a member that knows
//! another, and the harness checks that the state machine survives them.
//!
//! `fuzz_one` is what a cargo-fuzz target calls. With `fuzz_one` in your
//! crate, `fuzz/fuzz_targets/packet.rs` is three lines:
//!
//! ```text
//! #![no_main]
//! libfuzzer_sys::fuzz_target!(|data: &[u8]| { my_embedding::fuzz_one(data); });
//! // cargo +nightly fuzz run packet
//! ```
//!
//! `fuzz_messages` is a second target of the same shape: it wraps the
//! bytes in a valid envelope first, so that mutations reach the message
//! decoder rather than stopping at the checksum.
//!
//! Examples build on stable Rust, without libFuzzer, so `main` stands in
//! for the fuzzer: it records real datagrams from two members talking to
//! each other (the seed corpus a fuzzer starts from), then runs
//! `fuzz_one` over random bytes and mutations of them (bit flips,
//! overwritten bytes, cuts, splices), and `fuzz_messages` over mutations
//! of their messages, a few thousand inputs in all, and prints how they
//! fared.
//!
//! ```text
//! cargo run -p lapswim-core --example fuzz_packet           # 4000 inputs
//! cargo run --release -p lapswim-core --example fuzz_packet -- 100000
//! ```
//!
//! The repository's own targets (`fuzz/`) go further: streams, sealed
//! traffic, whole simulated scenarios.

use core::net::SocketAddr;
use std::collections::{BTreeMap, VecDeque};

use lapswim_core::{
    Action, Config, DecodeError, Duration, Identity, Input, Instant, MemberName, MemberState, StreamEnd, StreamId, Swim,
};
use rand_core::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// A number below `n` (0 for `n` = 0), for choosing mutations.
trait Below {
    fn below(&mut self, n: usize) -> usize;
}

impl<R: Rng> Below for R {
    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next_u64() % n as u64) as usize }
    }
}

/// The member under test, and the one that talks to it.
const TARGET: usize = 0;
const PEER: usize = 1;

/// How long the two members talk before the fuzzed datagram arrives.
const WARM_UP: Duration = Duration::from_secs(10);

/// The addresses the two members go by (nothing is bound: datagrams and
/// streams are carried in memory).
fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7946 + i as u16))
}

/// Feeds `data` to a member that knows one other, as a datagram from that
/// other, and checks that the state machine survives it: no panic; a
/// refused datagram changes no member and is counted; and afterwards the
/// member keeps running its protocol, itself alive in its own table, its
/// table within its bound.
pub fn fuzz_one(data: &[u8]) -> Outcome {
    let mut pair = Pair::new();
    pair.run_until(Instant::ZERO.saturating_add(WARM_UP), &mut |_| {});
    let now = pair.now;
    let swim = &mut pair.machines[TARGET];
    let before = table(swim);
    let stats_before = swim.stats();

    let mut out = Vec::new();
    let result = swim.handle(now, Input::Packet { from: addr(PEER), bytes: data }, &mut out);
    // Bytes from the network are never an error, whatever they hold.
    assert_eq!(result, Ok(()), "a datagram was refused as if the API had been misused");
    let stats = swim.stats();
    let reason = DecodeError::ALL.into_iter().find(|&r| stats.rejected(r) > stats_before.rejected(r));
    let outcome = match reason {
        None => Outcome::Accepted,
        Some(reason) => {
            assert_eq!(table(swim), before, "a rejected datagram ({reason:?}) changed the table");
            assert_eq!(
                stats.rejected_total(),
                stats_before.rejected_total() + 1,
                "a rejected datagram is counted once"
            );
            Outcome::Rejected(format!("{reason:?}"))
        }
    };

    // The member goes on: a minute of timeouts (its peer is silent now).
    let config = Config::lan();
    let mut at = now;
    for _ in 0..60 {
        at = at.saturating_add(Duration::from_secs(1));
        out.extend(swim.handle_timeout(at));
        for action in out.drain(..) {
            if let Action::Send { packet, .. } = action {
                assert!(packet.len() <= 65_507, "a datagram of {} bytes", packet.len());
                swim.recycle(packet);
            }
        }
    }
    let me = swim.local().name.clone();
    let state = swim.member(me.as_str()).map(|m| m.state);
    assert_eq!(state, Some(MemberState::Alive), "the member is alive in its own table");
    assert!(swim.members().count() <= config.max_members.get() as usize, "the table keeps its bound");
    outcome
}

/// Like [`fuzz_one`], with `data` taken as the messages of a datagram and
/// wrapped in a valid envelope first: most changes a fuzzer makes to a
/// whole datagram only break its checksum, so this target reaches the
/// message decoder far more often. A second cargo-fuzz target calls it.
pub fn fuzz_messages(data: &[u8]) -> Outcome {
    fuzz_one(&plain_datagram(data))
}

/// The version byte every datagram starts with (docs/protocol.md, §2).
const VERSION: u8 = 2;

/// A plain, unlabelled datagram around `messages`, as docs/protocol.md
/// (§2) lays it out: the version, a flags byte of 0, the messages, then a
/// big-endian CRC-32 of everything before it.
fn plain_datagram(messages: &[u8]) -> Vec<u8> {
    let mut datagram = Vec::with_capacity(messages.len() + 6);
    datagram.extend_from_slice(&[VERSION, 0]);
    datagram.extend_from_slice(messages);
    let sum = crc32fast::hash(&datagram);
    datagram.extend_from_slice(&sum.to_be_bytes());
    datagram
}

/// The messages of a plain, unlabelled datagram: what lies between its
/// 2-byte header and its 4-byte checksum.
fn messages(datagram: &[u8]) -> Option<&[u8]> {
    match datagram {
        [VERSION, 0, ..] => datagram.get(2..datagram.len().checked_sub(4)?),
        _ => None,
    }
}

/// What became of one fuzzed datagram.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Decoded and handled.
    Accepted,
    /// Rejected by the decoder, for this reason (counted, nothing changed).
    Rejected(String),
}

/// Every member the machine knows: name, address, state and incarnation.
fn table(swim: &Swim<Xoshiro256PlusPlus>) -> Vec<(String, SocketAddr, MemberState, u32)> {
    swim.members().map(|m| (m.name.as_str().to_owned(), m.addr, m.state, m.incarnation)).collect()
}

/// Two members carried in memory: the peer joins the target at time 0,
/// datagrams arrive at once, streams are paired queues. Deterministic: the
/// same run every time.
struct Pair {
    machines: [Swim<Xoshiro256PlusPlus>; 2],
    deadlines: [Option<Instant>; 2],
    now: Instant,
    /// Inputs on their way, by the index of the member they go to.
    queue: VecDeque<(usize, Delivery)>,
    /// Each stream end and the end at the other side.
    streams: BTreeMap<(usize, StreamId), (usize, StreamId)>,
    next_inbound: u64,
}

/// An input for a member, owned while it waits in the queue.
enum Delivery {
    Packet { from: SocketAddr, bytes: Vec<u8> },
    Accepted { id: StreamId, from: SocketAddr },
    Frame { id: StreamId, bytes: Vec<u8> },
    Closed { id: StreamId, end: StreamEnd },
}

impl Pair {
    fn new() -> Pair {
        let machine = |i: usize| {
            let me = Identity::new(MemberName::new(&format!("member-{i}")).expect("a valid name"), addr(i));
            Swim::new(Config::lan(), me, Xoshiro256PlusPlus::seed_from_u64(i as u64)).expect("a valid config")
        };
        let mut pair = Pair {
            machines: [machine(0), machine(1)],
            deadlines: [None; 2],
            now: Instant::ZERO,
            queue: VecDeque::new(),
            streams: BTreeMap::new(),
            next_inbound: 0,
        };
        let mut out = Vec::new();
        pair.machines[PEER].handle(Instant::ZERO, Input::Join { seeds: &[addr(TARGET)] }, &mut out).expect("a join");
        pair.carry_out(PEER, out);
        pair
    }

    /// Delivers everything, firing timers in order, until `until`; hands
    /// every datagram delivered to `seen`.
    fn run_until(&mut self, until: Instant, seen: &mut impl FnMut(&[u8])) {
        loop {
            while let Some((to, delivery)) = self.queue.pop_front() {
                let mut out = Vec::new();
                let now = self.now;
                let m = &mut self.machines[to];
                // Refused inputs are part of a protocol's life (a stale
                // frame, an answer too late); the run goes on.
                let _ = match &delivery {
                    Delivery::Packet { from, bytes } => {
                        seen(bytes);
                        m.handle(now, Input::Packet { from: *from, bytes }, &mut out)
                    }
                    Delivery::Accepted { id, from } => {
                        m.handle(now, Input::StreamAccepted { id: *id, from: *from }, &mut out)
                    }
                    Delivery::Frame { id, bytes } => {
                        m.handle(now, Input::StreamFrame { id: *id, frame: bytes }, &mut out)
                    }
                    Delivery::Closed { id, end } => m.handle(now, Input::StreamClosed { id: *id, end: *end }, &mut out),
                };
                self.carry_out(to, out);
            }
            let next = self.deadlines.iter().flatten().min().copied();
            let Some(at) = next.filter(|&at| at <= until) else { break };
            self.now = self.now.max(at);
            for i in 0..2 {
                if self.deadlines[i].is_some_and(|d| d <= self.now) {
                    self.deadlines[i] = None;
                    let out = self.machines[i].handle_timeout(self.now);
                    self.carry_out(i, out);
                }
            }
        }
        self.now = until;
    }

    /// Carries out member `from`'s actions: what a runtime does, in memory.
    fn carry_out(&mut self, from: usize, out: Vec<Action>) {
        let other = 1 - from;
        for action in out {
            match action {
                Action::Send { to, packet } => {
                    if to == addr(other) {
                        self.queue.push_back((other, Delivery::Packet { from: addr(from), bytes: packet.to_vec() }));
                    }
                    self.machines[from].recycle(packet);
                }
                Action::SetTimer(at) => self.deadlines[from] = Some(at),
                Action::OpenStream { id, to } => {
                    if to == addr(other) {
                        let theirs = StreamId::Inbound(self.next_inbound);
                        self.next_inbound += 1;
                        self.streams.insert((from, id), (other, theirs));
                        self.streams.insert((other, theirs), (from, id));
                        self.queue.push_back((other, Delivery::Accepted { id: theirs, from: addr(from) }));
                    } else {
                        self.queue.push_back((from, Delivery::Closed { id, end: StreamEnd::NotListening }));
                    }
                }
                Action::SendFrame { id, frame } => {
                    if let Some(&(to, theirs)) = self.streams.get(&(from, id)) {
                        self.queue.push_back((to, Delivery::Frame { id: theirs, bytes: frame.to_vec() }));
                    }
                    self.machines[from].recycle(frame);
                }
                Action::CloseStream { id } => {
                    if let Some((to, theirs)) = self.streams.remove(&(from, id)) {
                        self.streams.remove(&(to, theirs));
                        self.queue.push_back((to, Delivery::Closed { id: theirs, end: StreamEnd::Closed }));
                    }
                }
                // Events, and action kinds a later version may add.
                _ => {}
            }
        }
    }
}

/// `data` changed the way a fuzzer changes its inputs, one to four times.
fn mutate(data: &[u8], corpus: &[Vec<u8>], rng: &mut Xoshiro256PlusPlus) -> Vec<u8> {
    let mut v = data.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(v.len().max(1));
        match rng.below(6) {
            // Flip one bit.
            0 if !v.is_empty() => v[at] ^= 1 << rng.below(8),
            // Overwrite a byte with an interesting value.
            1 if !v.is_empty() => v[at] = [0, 1, 0x7f, 0x80, 0xff][rng.below(5)],
            // Cut the datagram short.
            2 => v.truncate(at),
            // Insert random bytes.
            3 => {
                let extra: Vec<u8> = (0..=rng.below(16)).map(|_| rng.next_u64() as u8).collect();
                v.splice(at.min(v.len())..at.min(v.len()), extra);
            }
            // Splice: our head, another datagram's tail.
            4 => {
                let other = &corpus[rng.below(corpus.len())];
                v.truncate(at);
                v.extend_from_slice(&other[rng.below(other.len().max(1)).min(other.len())..]);
            }
            // Repeat a stretch.
            _ => {
                let end = (at + 1 + rng.below(8)).min(v.len());
                let stretch = v[at.min(end)..end].to_vec();
                v.splice(end..end, stretch);
            }
        }
    }
    v
}

fn main() -> Result<(), String> {
    let total: usize = match std::env::args().nth(1) {
        Some(n) => n.parse().map_err(|_| format!("not a number of inputs: {n:?}"))?,
        None => 4000,
    };
    // The seed corpus: every datagram the two members exchanged.
    let mut corpus = Vec::new();
    Pair::new().run_until(Instant::ZERO.saturating_add(WARM_UP), &mut |d| corpus.push(d.to_vec()));
    corpus.sort();
    corpus.dedup();
    println!("seed corpus: {} distinct datagrams from a 10 s conversation", corpus.len());

    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    let mut outcomes: BTreeMap<Outcome, usize> = BTreeMap::new();
    for i in 0..total {
        let base = &corpus[rng.below(corpus.len())];
        let (input, outcome) = match i % 4 {
            // A real datagram, unchanged: these must be accepted.
            _ if i < corpus.len() => (corpus[i].clone(), fuzz_one(&corpus[i])),
            // Random bytes, up to a datagram's length.
            0 => {
                let input: Vec<u8> = (0..rng.below(1500)).map(|_| rng.next_u64() as u8).collect();
                let outcome = fuzz_one(&input);
                (input, outcome)
            }
            // A mutated real datagram.
            1 => {
                let input = mutate(base, &corpus, &mut rng);
                let outcome = fuzz_one(&input);
                (input, outcome)
            }
            // Mutated messages of a real datagram, in a valid envelope.
            _ => {
                let input = mutate(messages(base).unwrap_or(base), &corpus, &mut rng);
                let outcome = fuzz_messages(&input);
                (input, outcome)
            }
        };
        if i < corpus.len() && outcome != Outcome::Accepted {
            return Err(format!("a real datagram was not accepted: {outcome:?}: {input:02x?}"));
        }
        *outcomes.entry(outcome).or_default() += 1;
    }
    println!("{total} inputs, the state machine survived every one:");
    for (outcome, count) in &outcomes {
        println!("  {count:>6}  {outcome:?}");
    }
    Ok(())
}
