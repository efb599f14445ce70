//! Running the datagrams and wake-ups due at one instant on two threads,
//! with the same result as running them one by one.
//!
//! A node's step reads nothing of the network that another node's step at
//! the same instant can change: what a node sends waits in the queue, and
//! its clock, its slowness, its crash and its pending wake-up change only
//! by commands or by the node itself. So the steps due at one instant can
//! run side by side, each node's in order, as long as what they ask of the
//! network (sends, timers, events, streams) is carried out afterwards, step
//! by step, in the order [`Sim::run_until`] takes them. The queue, the
//! generator, every counter and the observer then see exactly what they
//! would have one step at a time, and so does the digest.

use core::net::SocketAddr;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread::ScopedJoinHandle;

use lapswim_core::{Datagram, Event, Input, Instant, Machine, StreamId, Transport};

use super::nodes::{PARTS, place};
use super::{Clock, Flow, Item, Port, Sim, Slot};
use crate::addr::node_index;

/// Fewer steps at one instant than this run on this thread alone: sharing
/// them costs more than it saves.
const MIN_SHARE: usize = 8;

/// How many of the items due next [`Network::touch_due`] reads ahead.
const TOUCH_AHEAD: usize = 256;

/// Busy-wait rounds before a waiting thread starts to sleep or yield:
/// the next instant's steps usually come within microseconds.
const SPINS: u32 = 1 << 14;

/// What a node asked of the network during one step, carried out later.
enum Act {
    Send { to: SocketAddr, packet: Datagram },
    Timer(Instant),
    Event(Event),
    Open { id: StreamId, to: SocketAddr },
    Frame { id: StreamId, frame: Datagram },
    Close(StreamId),
}

/// A transport that only writes down what it is asked.
struct Deferred<'a>(&'a mut Vec<Act>);

impl Transport for Deferred<'_> {
    fn send(&mut self, to: SocketAddr, packet: Datagram) -> Option<Datagram> {
        self.0.push(Act::Send { to, packet });
        None
    }

    fn set_timer(&mut self, at: Instant) {
        self.0.push(Act::Timer(at));
    }

    fn event(&mut self, event: Event) {
        self.0.push(Act::Event(event));
    }

    fn open_stream(&mut self, id: StreamId, to: SocketAddr) {
        self.0.push(Act::Open { id, to });
    }

    fn send_frame(&mut self, id: StreamId, frame: Datagram) -> Option<Datagram> {
        self.0.push(Act::Frame { id, frame });
        None
    }

    fn close_stream(&mut self, id: StreamId) {
        self.0.push(Act::Close(id));
    }
}

enum Work {
    Packet {
        from: SocketAddr,
        packet: Datagram,
    },
    /// A wake-up queued for this network time: taken only if still the
    /// node's latest.
    Wake {
        at: u64,
    },
}

/// One node's step at this instant, with what it reads of the network.
struct Step {
    node: usize,
    work: Option<Work>,
    wake: bool,
    /// The node's clock reading now.
    local_now: Instant,
    clock: Clock,
    slow_ms: u64,
    /// The network time of the node's wake-up pending before this instant.
    pending: Option<u64>,
    /// Whether the node took the step (a wake-up no longer wanted is not).
    ran: bool,
    /// How many acts it left.
    acts: usize,
}

impl super::Network {
    /// Reads, ahead of handing them over, the records of the nodes the
    /// datagrams and wake-ups still due now are for. Each is a cache miss
    /// at 10,000 nodes; read in a loop that does nothing else, the
    /// processor has many in flight at once, where handing the items over
    /// one by one waits for each in turn. Nothing is changed.
    fn touch_due(&self) {
        let mut sum = 0u64;
        // An instant cut short (a command, a paused node) reads its rest
        // again: a bound keeps that linear.
        for item in self.queue.due_with_last().take(TOUCH_AHEAD) {
            if let Item::Deliver { to: node, .. } | Item::Wake { node, .. } = item
                && let Some(host) = self.hosts.get(*node)
            {
                sum = sum.wrapping_add(host.paused_until).wrapping_add(u64::from(host.deaf));
            }
        }
        core::hint::black_box(sum);
    }

    /// The same for carrying out a batch's acts: the records and send
    /// counters of the nodes that stepped and of those they send to.
    fn touch_acts(&self, batch: &Batch) {
        let mut sum = 0u64;
        for step in batch.steps.iter().flatten() {
            if let (Some(host), Some(sent)) = (self.hosts.get(step.node), self.stats.sent_by_node.get(step.node)) {
                sum = sum.wrapping_add(host.moves.into()).wrapping_add(*sent);
            }
        }
        for act in batch.acts.iter().flatten() {
            if let Act::Send { to, .. } = act
                && let Some(j) = node_index(*to)
                && let (Some(host), Some(sent)) = (self.hosts.get(j), self.stats.sent_to_node.get(j))
            {
                sum = sum.wrapping_add(host.slow_ms).wrapping_add(host.moves.into()).wrapping_add(*sent);
            }
        }
        core::hint::black_box(sum);
    }
}

/// Waits on this thread until `ready`: spinning at first, as the helper
/// is usually about to finish, then yielding, so that a helper held up
/// on a busy machine gets the processor back.
fn wait_for(helper: &ScopedJoinHandle<'_, ()>, ready: impl Fn() -> bool) {
    let mut spins = 0u32;
    while !ready() {
        // The helper died holding a part (it panicked): the scope passes
        // its panic on.
        assert!(!helper.is_finished(), "the simulator's helper thread stopped");
        spins = spins.saturating_add(1);
        if spins < SPINS { core::hint::spin_loop() } else { std::thread::yield_now() }
    }
}

/// Runs `steps` (of nodes in `nodes`, one part) in order at network time
/// `now`, writing down their acts in order.
fn run<N: Machine>(nodes: &mut [Slot<N>], steps: &mut [Step], acts: &mut Vec<Act>, now: u64) {
    // Wake-ups set by this instant's earlier steps, the latest last.
    let mut wakes: Vec<(usize, Option<u64>)> = Vec::new();
    for step in steps.iter_mut() {
        let start = acts.len();
        if let Some(slot) = nodes.get_mut(place(step.node).1) {
            match step.work.take() {
                Some(Work::Wake { at }) => {
                    let pending = wakes.iter().rev().find(|w| w.0 == step.node).map_or(step.pending, |w| w.1);
                    if pending == Some(at) {
                        wakes.push((step.node, None));
                        step.ran = true;
                        let input = Input::Timeout;
                        let _ = slot.driver.handle(&mut slot.machine, step.local_now, input, &mut Deferred(acts));
                    }
                }
                Some(Work::Packet { from, packet }) => {
                    step.ran = true;
                    let input = Input::Packet { from, bytes: &packet };
                    // Refusals (a bad packet) change nothing.
                    let _ = slot.driver.handle(&mut slot.machine, step.local_now, input, &mut Deferred(acts));
                    slot.machine.recycle(packet);
                }
                None => {}
            }
        }
        for act in acts.get(start..).unwrap_or_default() {
            if let Act::Timer(at) = act {
                let wake = super::wake_time(&step.clock, step.slow_ms, now, *at);
                wakes.push((step.node, Some(wake)));
            }
        }
        step.acts = acts.len() - start;
    }
}

/// The steps of one part of the nodes, with the part itself: what either
/// thread takes to run.
struct Part<N> {
    nodes: Vec<Slot<N>>,
    steps: Vec<Step>,
    acts: Vec<Act>,
}

/// This instant's steps, by part, in their order.
#[derive(Default)]
struct Batch {
    steps: [Vec<Step>; PARTS],
    acts: [Vec<Act>; PARTS],
    /// The part of each step, in queue order.
    order: Vec<u8>,
}

/// Where the parts of an instant wait to be taken, by either thread.
struct Board<N> {
    parts: [Mutex<Option<Part<N>>>; PARTS],
    /// The parts in the order they are taken: the longest first, so that
    /// the last taken are short and neither thread waits long for the
    /// other at the end of an instant.
    order: [AtomicU8; PARTS],
    /// How far into `order` the next part to take is; [`PARTS`] or more
    /// when all are taken.
    next: AtomicUsize,
    /// Parts run since the board was set.
    done: AtomicUsize,
    /// Whether the helper is taking parts. The board is set again only
    /// once it is not: a helper that took a place in `order` and was held
    /// up before taking the part would otherwise take the next instant's
    /// part there, and run it at this instant's time.
    active: AtomicBool,
    /// Network time of the instant on the board.
    now: AtomicU64,
    /// Bumped each time the board is set, which wakes the helper.
    round: AtomicU64,
    quit: AtomicBool,
}

impl<N: Machine> Board<N> {
    fn new() -> Self {
        Board {
            parts: core::array::from_fn(|_| Mutex::new(None)),
            order: core::array::from_fn(|i| AtomicU8::new(i as u8)),
            next: AtomicUsize::new(PARTS),
            done: AtomicUsize::new(0),
            active: AtomicBool::new(false),
            now: AtomicU64::new(0),
            round: AtomicU64::new(0),
            quit: AtomicBool::new(false),
        }
    }

    fn lock(&self, part: usize) -> Option<MutexGuard<'_, Option<Part<N>>>> {
        Some(self.parts.get(part)?.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Takes parts off the board and runs them until none is left.
    fn work(&self) {
        loop {
            // Sequentially consistent with `active`: see `run_batch`.
            let Some(part) = self.order.get(self.next.fetch_add(1, Ordering::SeqCst)) else { return };
            #[cfg(test)]
            tests::lag();
            let part = usize::from(part.load(Ordering::Relaxed));
            let taken = self.lock(part).and_then(|mut p| p.take());
            let Some(mut p) = taken else { continue };
            run(&mut p.nodes, &mut p.steps, &mut p.acts, self.now.load(Ordering::Acquire));
            if let Some(mut slot) = self.lock(part) {
                *slot = Some(p);
            }
            self.done.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The helper thread: works each round until told to quit.
    fn serve(&self) {
        let mut seen = 0;
        loop {
            let mut spins = 0u32;
            loop {
                if self.quit.load(Ordering::Acquire) {
                    return;
                }
                let round = self.round.load(Ordering::Acquire);
                if round != seen {
                    seen = round;
                    break;
                }
                if spins < SPINS {
                    spins += 1;
                    core::hint::spin_loop();
                } else {
                    // Long idle (streams, commands, a quiet stretch):
                    // sleep, but not past a new round, which unparks us.
                    std::thread::park_timeout(core::time::Duration::from_micros(500));
                }
            }
            self.active.store(true, Ordering::SeqCst);
            self.work();
            self.active.store(false, Ordering::SeqCst);
        }
    }
}

impl<N: Machine + Send + 'static> Sim<N> {
    /// Runs until virtual time `until` (items at `until` included), as
    /// [`Sim::run_until`] does with an observer that never stops, but with
    /// the datagrams and wake-ups due at each instant shared between this
    /// thread and a helper. The run is the same, digest for digest, counter
    /// for counter, event for event and in the same order; only the wall
    /// time differs. With a tap or an invariant hook installed it runs one
    /// step at a time, as [`Sim::run_until`] does.
    pub fn run_parallel_until(&mut self, until: u64, obs: &mut impl FnMut(u64, usize, &Event)) {
        self.run_shared(until, MIN_SHARE, obs);
    }

    /// [`Sim::run_parallel_until`], sharing instants of at least
    /// `min_share` steps.
    fn run_shared(&mut self, until: u64, min_share: usize, obs: &mut impl FnMut(u64, usize, &Event)) {
        if self.tap.is_some() || self.invariant.is_some() {
            self.run_until(until, &mut |t, i, e: &Event| {
                obs(t, i, e);
                Flow::Continue
            });
            return;
        }
        let board = Board::new();
        std::thread::scope(|s| {
            let helper = s.spawn(|| board.serve());
            let mut batch = Batch::default();
            while let Some((at, first)) = self.network.pop_due(until) {
                self.network.now = at;
                let tail = self.gather(first, &mut batch);
                if !batch.order.is_empty() {
                    self.run_batch(&mut batch, min_share, &board, &helper);
                    self.replay(&mut batch, obs);
                }
                if let Some(item) = tail {
                    self.process(item);
                    self.report(obs);
                }
            }
            board.quit.store(true, Ordering::Release);
            helper.thread().unpark();
        });
        self.network.now = self.network.now.max(until);
    }

    /// Takes `first` and the datagrams and wake-ups due with it into
    /// `batch`, up to the first other item (or one for a paused node),
    /// which is returned. Deliveries the network drops are counted and
    /// dropped here ([`Network::hands_over`], as [`Sim::process`] does).
    fn gather(&mut self, first: Item, batch: &mut Batch) -> Option<Item> {
        for (steps, acts) in batch.steps.iter_mut().zip(&mut batch.acts) {
            steps.clear();
            acts.clear();
        }
        batch.order.clear();
        let now = self.network.now;
        self.network.touch_due();
        let mut first = Some(first);
        while let Some(item) = first.take().or_else(|| self.network.pop_due(now).map(|(_, item)| item)) {
            let net = &mut self.network;
            let (node, work) = match item {
                Item::Deliver { to, .. } | Item::Wake { node: to, .. } if net.hosts[to].paused_until > now => {
                    return Some(item);
                }
                Item::Deliver { to, to_addr, from, packet } => {
                    if !net.hands_over(to, to_addr, from) {
                        continue;
                    }
                    (to, Work::Packet { from, packet })
                }
                Item::Wake { node, at } => (node, Work::Wake { at }),
                other => return Some(other),
            };
            let (part, _) = place(node);
            batch.steps[part].push(Step {
                node,
                wake: matches!(work, Work::Wake { .. }),
                work: Some(work),
                local_now: Instant::from_millis(net.hosts[node].clock.local(now)),
                clock: net.hosts[node].clock,
                slow_ms: net.hosts[node].slow_ms,
                pending: net.hosts[node].wake_at.map(|w| w.0),
                ran: false,
                acts: 0,
            });
            batch.order.push(part as u8);
        }
        None
    }

    /// Runs the batch's steps, part by part: on this thread alone when
    /// there are few, else shared with the helper, each thread taking the
    /// next part left until none is.
    fn run_batch(&mut self, batch: &mut Batch, min_share: usize, board: &Board<N>, helper: &ScopedJoinHandle<'_, ()>) {
        let now = self.network.now;
        let parts = &mut self.nodes.parts;
        if batch.order.len() < min_share || helper.is_finished() {
            for ((nodes, steps), acts) in parts.iter_mut().zip(&mut batch.steps).zip(&mut batch.acts) {
                run(nodes, steps, acts, now);
            }
            return;
        }
        let mut order: [u8; PARTS] = core::array::from_fn(|i| i as u8);
        order.sort_by_key(|&i| core::cmp::Reverse(batch.steps.get(usize::from(i)).map_or(0, Vec::len)));
        for (slot, i) in board.order.iter().zip(order) {
            slot.store(i, Ordering::Relaxed);
        }
        let mut posted = 0;
        for (i, ((nodes, steps), acts)) in parts.iter_mut().zip(&mut batch.steps).zip(&mut batch.acts).enumerate() {
            if steps.is_empty() {
                continue;
            }
            let part =
                Part { nodes: core::mem::take(nodes), steps: core::mem::take(steps), acts: core::mem::take(acts) };
            if let Some(mut slot) = board.lock(i) {
                *slot = Some(part);
                posted += 1;
            }
        }
        board.now.store(now, Ordering::Release);
        board.done.store(0, Ordering::Release);
        board.next.store(0, Ordering::Release);
        board.round.fetch_add(1, Ordering::AcqRel);
        helper.thread().unpark();
        board.work();
        // Every place in `order` is taken (this thread's last ticket came
        // after the others), so a helper that took one has said it is
        // active before: wait for its parts, then until it is out.
        wait_for(helper, || board.done.load(Ordering::Acquire) >= posted && !board.active.load(Ordering::SeqCst));
        for (i, ((nodes, steps), acts)) in parts.iter_mut().zip(&mut batch.steps).zip(&mut batch.acts).enumerate() {
            if let Some(part) = board.lock(i).and_then(|mut p| p.take()) {
                *nodes = part.nodes;
                *steps = part.steps;
                *acts = part.acts;
            }
        }
    }

    /// Carries out the batch's acts step by step in queue order, reporting
    /// each step's events as it goes.
    fn replay(&mut self, batch: &mut Batch, obs: &mut impl FnMut(u64, usize, &Event)) {
        self.network.touch_acts(batch);
        let mut steps = batch.steps.each_ref().map(|s| s.iter());
        let mut acts = batch.acts.each_mut().map(|a| a.drain(..));
        for &part in &batch.order {
            let part = usize::from(part);
            let (Some(steps), Some(acts)) = (steps.get_mut(part), acts.get_mut(part)) else { continue };
            let Some(step) = steps.next() else { continue };
            if step.wake && step.ran {
                self.network.hosts[step.node].wake_at = None;
            }
            let mut port = Port { net: &mut self.network, node: step.node };
            for act in acts.by_ref().take(step.acts) {
                match act {
                    Act::Send { to, packet } => {
                        let _ = port.send(to, packet);
                    }
                    Act::Timer(at) => port.set_timer(at),
                    Act::Event(event) => port.event(event),
                    Act::Open { id, to } => port.open_stream(id, to),
                    Act::Frame { id, frame } => {
                        let _ = port.send_frame(id, frame);
                    }
                    Act::Close(id) => port.close_stream(id),
                }
            }
            self.report(obs);
        }
    }

    /// Hands the events emitted so far to the observer.
    fn report(&mut self, obs: &mut impl FnMut(u64, usize, &Event)) {
        let now = self.network.now;
        for (node, event) in self.network.events.drain(..) {
            obs(now, node, &event);
        }
    }
}

#[cfg(test)]
mod tests {
    use lapswim_core::{Config, OwnedInput};

    use super::*;
    use crate::net::{Command, NetConfig, seed_from_env};

    /// Whether the helper is held up now and then between taking a place
    /// in the board's order and taking the part there.
    static LAG: AtomicBool = AtomicBool::new(false);
    static TICKETS: AtomicU64 = AtomicU64::new(0);

    /// Holds the helper (the one unnamed thread) up on every 16th place
    /// it takes, while [`LAG`] is set: long enough for the main thread to
    /// finish the instant and set the board for the next.
    pub(super) fn lag() {
        if LAG.load(Ordering::Relaxed)
            && std::thread::current().name().is_none()
            && TICKETS.fetch_add(1, Ordering::Relaxed).is_multiple_of(16)
        {
            std::thread::sleep(core::time::Duration::from_micros(100));
        }
    }

    /// A run with every kind of item: joins and their streams, loss,
    /// jitter and duplication (the network's generator), a pause, a slow
    /// node, a crash, a partition and its healing, a restart, a deaf node,
    /// a leave and an application event.
    fn scripted(seed: u64) -> Sim {
        let n = 120;
        let net = NetConfig { seed, loss: 0.05, jitter_ms: 2, ..NetConfig::default() };
        let mut sim = Sim::new(n, Config::lan(), net).unwrap();
        for i in 1..n {
            sim.schedule(0, Command::Join { node: i, seeds: vec![0] }).unwrap();
        }
        let payload = b"news".to_vec();
        let script = [
            (4_000, Command::SetDuplication(0.02)),
            (
                6_000,
                Command::Input { node: 8, input: OwnedInput::UserEvent { name: "e".into(), payload, coalesce: false } },
            ),
            (8_000, Command::Pause { node: 3, ms: 1_500 }),
            (9_000, Command::SetSlow { node: 4, ms: 30 }),
            (10_000, Command::Crash(5)),
            (12_000, Command::Partition { id: 1, from: (0..20).collect(), to: (20..n).collect(), both: true }),
            (20_000, Command::Heal),
            (22_000, Command::Restart { node: 5, seeds: vec![0], new_addr: false }),
            (25_000, Command::SetDeaf { node: 6, deaf: true }),
            (27_000, Command::SetDeaf { node: 6, deaf: false }),
            (28_000, Command::Leave(7)),
        ];
        for (at, cmd) in script {
            sim.schedule(at, cmd).unwrap();
        }
        sim
    }

    /// A helper held up after taking its place in the order (as a
    /// descheduled thread is) still runs only that instant's part.
    #[test]
    fn a_helper_held_up_changes_nothing() {
        let seed = seed_from_env(7);
        let until = 12_000;
        let mut one = scripted(seed);
        one.run_until(until, &mut |_, _, _: &Event| Flow::Continue);
        let mut two = scripted(seed);
        LAG.store(true, Ordering::Relaxed);
        two.run_shared(until, 2, &mut |_, _, _: &Event| {});
        LAG.store(false, Ordering::Relaxed);
        assert_eq!(one.digest(), two.digest(), "seed {seed}");
        assert_eq!(format!("{:?}", one.stats()), format!("{:?}", two.stats()), "seed {seed}");
    }

    #[test]
    fn sharing_instants_changes_nothing() {
        let seed = seed_from_env(7);
        let until = 40_000;
        let mut one = scripted(seed);
        let mut alone = Vec::new();
        one.run_until(until, &mut |t, i, e: &Event| {
            alone.push(format!("{t} {i} {e:?}"));
            Flow::Continue
        });
        let mut two = scripted(seed);
        let mut shared = Vec::new();
        // Every instant with two steps or more is shared.
        two.run_shared(until, 2, &mut |t, i, e: &Event| shared.push(format!("{t} {i} {e:?}")));
        assert_eq!(one.now(), two.now(), "seed {seed}");
        assert_eq!(alone.len(), shared.len(), "seed {seed}: as many events");
        for (k, (a, b)) in alone.iter().zip(&shared).enumerate() {
            assert_eq!(a, b, "seed {seed}: event {k} differs");
        }
        assert_eq!(one.digest(), two.digest(), "seed {seed}");
        assert_eq!(format!("{:?}", one.stats()), format!("{:?}", two.stats()), "seed {seed}");
        assert!(one.stats().streams > 0 && one.stats().lost > 0, "seed {seed}: the run had streams and losses");
        // And it goes on the same from there.
        one.run_until(until + 5_000, &mut |_, _, _: &Event| Flow::Continue);
        two.run_parallel_until(until + 5_000, &mut |_, _, _: &Event| {});
        assert_eq!(one.digest(), two.digest(), "seed {seed}");
    }
}
