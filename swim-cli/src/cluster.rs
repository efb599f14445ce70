//! A local cluster in one process: start nodes, follow every node's view
//! from its events, and wait for the cluster to reach a state. The demo,
//! the loopback measurement and the real-socket tests are built on it.
//!
//! It is runtime-neutral: nodes come from a caller's start function (so
//! one cluster can mix runtimes), waiting uses a [`Runtime`]'s timer, and
//! the async functions run on whatever executor the caller blocks on.
//!
//! It is a private module of `swim` (for `swim demo`); the unpublished
//! `swim-testkit` crate includes the same file as `swim_testkit::cluster`
//! for the real-socket tests and the lab's loopback measurement.

use core::time::Duration;
use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use async_channel::{Receiver, Sender};
use lapswim_core::{Event, MemberName, MemberState};

use lapswim_node::{Clock, Node, NodeError, NodeEvent, Runtime, StartError, Timer};

/// An event seen by node `observer`, as the cluster records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// Index of the node that reported it.
    pub observer: usize,
    /// When it happened.
    pub at: Instant,
    /// What happened.
    pub event: Event,
}

/// The most events of one node forwarded together.
const FORWARD_BATCH: usize = 1024;

/// What reaches the cluster's consumer.
#[derive(Debug)]
enum Item {
    /// Events of node `.0`, as many as it had queued (at most
    /// [`FORWARD_BATCH`]).
    Events(usize, Vec<NodeEvent>),
    /// [`LocalCluster::join_all`]'s joins were all answered, or one failed.
    Joined(Result<(), NodeError>),
}

/// What the harness did to a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Running,
    Killed,
    Left,
}

/// Nodes started together and what each of them has reported.
#[derive(Debug)]
pub struct LocalCluster<R> {
    runtime: R,
    nodes: Vec<Node>,
    status: Vec<Status>,
    /// `Failed` events about a node that was not killed: alive, or left.
    false_failures: Vec<Seen>,
    /// What each node believes of the others, from its events.
    views: Views,
    /// Every node's events, in batches of what each had queued: a thousand
    /// nodes joining report a million events in seconds, one by one too
    /// many for one consumer to keep up with.
    merged: Receiver<Item>,
    merged_tx: Sender<Item>,
    /// How [`LocalCluster::join_all`]'s joins ended, once they have.
    joined: Option<Result<(), NodeError>>,
    /// The rest of the batch being applied.
    batch: VecDeque<(usize, NodeEvent)>,
    /// When the latest event applied happened.
    last_event: Option<Instant>,
    lagged: u64,
    started: Instant,
}

impl<R: Runtime> LocalCluster<R> {
    /// An empty cluster whose waiting uses `runtime`'s timers and tasks.
    pub fn new(runtime: R) -> Self {
        let (merged_tx, merged) = async_channel::unbounded();
        LocalCluster {
            runtime,
            nodes: Vec::new(),
            status: Vec::new(),
            false_failures: Vec::new(),
            views: Views::default(),
            merged,
            merged_tx,
            joined: None,
            batch: VecDeque::new(),
            last_event: None,
            lagged: 0,
            started: Clock::read(),
        }
    }

    /// Starts one more node with `start` and follows its events; returns its
    /// index.
    pub fn add(&mut self, start: impl FnOnce() -> Result<Node, StartError>) -> Result<usize, StartError> {
        let node = start()?;
        let index = self.nodes.len();
        let events = node.events();
        let tx = self.merged_tx.clone();
        self.runtime.spawn(async move {
            while let Some(first) = events.next().await {
                let mut batch = vec![first];
                batch.extend(core::iter::from_fn(|| events.try_next()).take(FORWARD_BATCH - 1));
                if tx.send(Item::Events(index, batch)).await.is_err() {
                    break;
                }
            }
        });
        self.views.add(node.name());
        self.nodes.push(node);
        self.status.push(Status::Running);
        Ok(index)
    }

    /// The nodes, in the order they were added.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    /// When the cluster was created: the zero of [`Seen::at`] offsets.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// When the latest event [`LocalCluster::wait_until`] took happened at
    /// its node: once a wait returned `true`, when the state it waited for
    /// was reached, however long the events then took to come here.
    pub fn last_event(&self) -> Option<Instant> {
        self.last_event
    }

    /// Events the cluster's own consumer lost (0 unless it fell behind).
    pub fn lagged(&self) -> u64 {
        self.lagged
    }

    /// Whether node `i` was stopped with [`LocalCluster::kill`] or
    /// [`LocalCluster::leave`].
    pub fn is_stopped(&self, i: usize) -> bool {
        self.status[i] != Status::Running
    }

    /// Indices of nodes still running.
    pub fn running(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|&i| !self.is_stopped(i))
    }

    /// Every `Failed` reported so far about a node the harness did not
    /// kill (a running node, or one that left gracefully).
    pub fn false_failures(&self) -> &[Seen] {
        &self.false_failures
    }

    /// What node `i` believes of `name`, from the events it reported
    /// (`None` if it never heard of it).
    pub fn view(&self, i: usize, name: &MemberName) -> Option<MemberState> {
        self.views.get(i, name)
    }

    /// Every node's view of every member, for a final table.
    pub fn views(&self) -> Vec<BTreeMap<MemberName, MemberState>> {
        (0..self.nodes.len()).map(|i| self.views.of(i)).collect()
    }

    /// Joins every node but the first through the first, one after the
    /// other; returns when each join has been answered (or one failed).
    /// Meanwhile it follows the events, passing each to `on_event` as
    /// [`LocalCluster::wait_until`] does: a thousand nodes report a million
    /// while they join, which would otherwise wait in memory.
    pub async fn join_all(&mut self, mut on_event: impl FnMut(&Self, &Seen)) -> Result<(), NodeError> {
        let seed = [self.nodes[0].addr()];
        let joiners = self.nodes[1..].to_vec();
        let tx = self.merged_tx.clone();
        self.joined = None;
        self.runtime.spawn(async move {
            let mut result = Ok(());
            for node in &joiners {
                if let Err(e) = node.join(&seed).await {
                    result = Err(e);
                    break;
                }
            }
            let _ = tx.send(Item::Joined(result)).await;
        });
        // Each join ends, answered or not, within its attempts.
        while self.joined.is_none() {
            self.wait_until(Duration::from_secs(60), |c| c.joined.is_some(), &mut on_event).await;
        }
        self.joined.take().unwrap_or(Ok(()))
    }

    /// Whether every running node sees every other running node alive.
    /// Constant time: the views keep the count (it is asked after every
    /// event, and a thousand nodes report a million joins).
    pub fn converged(&self) -> bool {
        self.views.short == 0
    }

    /// Whether every running node has `name` in `state`.
    pub fn all_see(&self, name: &MemberName, state: MemberState) -> bool {
        self.running().all(|i| self.view(i, name) == Some(state))
    }

    /// Stops node `i` abruptly (no leave): to the others it has crashed.
    pub async fn kill(&mut self, i: usize) {
        self.nodes[i].shutdown().await;
        self.status[i] = Status::Killed;
        self.views.stop(i);
    }

    /// Node `i` leaves gracefully, then stops.
    pub async fn leave(&mut self, i: usize) -> Result<(), NodeError> {
        let r = self.nodes[i].leave().await;
        self.nodes[i].shutdown().await;
        self.status[i] = Status::Left;
        self.views.stop(i);
        r
    }

    /// Takes events until `done` holds or `timeout` passes, passing each to
    /// `on_event` after it is applied to the views; whether `done` held.
    pub async fn wait_until(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&Self) -> bool,
        mut on_event: impl FnMut(&Self, &Seen),
    ) -> bool {
        let deadline = Clock::read() + timeout;
        let mut timer = self.runtime.timer(deadline);
        loop {
            if done(self) {
                return true;
            }
            let Some((observer, event)) = self.batch.pop_front() else {
                let recv = async { self.merged.recv().await.ok() };
                let expire = futures_lite::future::poll_fn(|cx| timer.poll_expired(cx).map(|()| None));
                let next = futures_lite::future::or(recv, expire);
                match next.await {
                    Some(Item::Events(observer, batch)) => self.batch.extend(batch.into_iter().map(|e| (observer, e))),
                    Some(Item::Joined(result)) => self.joined = Some(result),
                    None => return done(self),
                }
                continue;
            };
            match event {
                NodeEvent::Protocol { at, event } => {
                    self.last_event = Some(at);
                    let seen = Seen { observer, at, event };
                    self.apply(&seen);
                    on_event(self, &seen);
                }
                NodeEvent::Lagged { missed } => self.lagged += missed,
                // Nothing else is reported today.
                _ => {}
            }
        }
    }

    /// Waits `d` while following events.
    pub async fn sleep(&mut self, d: Duration, on_event: impl FnMut(&Self, &Seen)) {
        self.wait_until(d, |_| false, on_event).await;
    }

    fn apply(&mut self, seen: &Seen) {
        if let Event::Failed { name, .. } = &seen.event {
            let killed = self.nodes.iter().zip(&self.status).any(|(n, s)| n.name() == name && *s == Status::Killed);
            if !killed {
                self.false_failures.push(seen.clone());
            }
        }
        let (observer, event) = (seen.observer, &seen.event);
        let (name, state) = match event {
            Event::Joined { name, .. } | Event::Alive { name, .. } | Event::Updated { name, .. } => {
                (name, MemberState::Alive)
            }
            Event::Suspected { name, .. } => (name, MemberState::Suspect),
            Event::Failed { name, .. } => (name, MemberState::Dead),
            Event::Left { name } => (name, MemberState::Left),
            _ => return,
        };
        // An update about a suspect is not a refutation.
        if matches!(event, Event::Updated { .. }) && self.views.get(observer, name).is_some() {
            return;
        }
        self.views.set(observer, name, state);
    }
}

/// What every node believes of every member: a byte per pair of nodes
/// (a thousand nodes hold a million views, which as maps of names took 40
/// bytes each), a map only for names of no node of the cluster, and the
/// counts that answer [`LocalCluster::converged`] at once.
#[derive(Debug, Default)]
struct Views {
    /// Each node's index by name (the latest added, if names repeat: names
    /// are taken to be unique among the running nodes).
    index: BTreeMap<MemberName, usize>,
    names: Vec<MemberName>,
    running: Vec<bool>,
    /// How many are running.
    live: usize,
    /// `states[i][j]`: what node `i` believes of node `j` (rows grow as
    /// nodes are heard of).
    states: Vec<Vec<Option<MemberState>>>,
    /// What node `i` believes of members that are none of the nodes.
    strangers: Vec<BTreeMap<MemberName, MemberState>>,
    /// How many other running nodes node `i` sees alive.
    alive: Vec<usize>,
    /// Running nodes that do not see every other running node alive.
    short: usize,
}

impl Views {
    /// Whether running node `i` sees every other running node alive.
    fn complete(&self, i: usize) -> bool {
        self.alive[i] + 1 >= self.live
    }

    fn recount_short(&mut self) {
        self.short = (0..self.names.len()).filter(|&i| self.running[i] && !self.complete(i)).count();
    }

    /// One more node, running, called `name`.
    fn add(&mut self, name: &MemberName) {
        let j = self.names.len();
        // Views of the name so far, as a stranger or as an earlier node's,
        // are views of the new node.
        let earlier = self.index.insert(name.clone(), j);
        for i in 0..j {
            let state = match earlier {
                Some(e) => self.states[i].get(e).copied().flatten(),
                None => self.strangers[i].remove(name),
            };
            if let Some(state) = state {
                put(&mut self.states[i], j, state);
                if self.running[i] && state == MemberState::Alive {
                    self.alive[i] += 1;
                }
            }
            // The earlier node no longer counts: the name is the new one's.
            if let (Some(e), Some(MemberState::Alive)) = (earlier, state)
                && self.running[e]
                && self.running[i]
            {
                self.alive[i] -= 1;
            }
        }
        self.names.push(name.clone());
        self.running.push(true);
        self.live += 1;
        self.states.push(Vec::new());
        self.strangers.push(BTreeMap::new());
        self.alive.push(0);
        self.recount_short();
    }

    /// Node `j` stopped: it no longer needs to be seen, nor to see.
    fn stop(&mut self, j: usize) {
        if !self.running[j] {
            return;
        }
        self.running[j] = false;
        self.live -= 1;
        if self.index.get(&self.names[j]) == Some(&j) {
            for i in 0..self.names.len() {
                if self.running[i] && self.states[i].get(j).copied().flatten() == Some(MemberState::Alive) {
                    self.alive[i] -= 1;
                }
            }
        }
        self.recount_short();
    }

    fn get(&self, i: usize, name: &MemberName) -> Option<MemberState> {
        match self.index.get(name) {
            Some(&j) => self.states[i].get(j).copied().flatten(),
            None => self.strangers[i].get(name).copied(),
        }
    }

    fn set(&mut self, i: usize, name: &MemberName, state: MemberState) {
        let Some(&j) = self.index.get(name) else {
            self.strangers[i].insert(name.clone(), state);
            return;
        };
        let old = put(&mut self.states[i], j, state);
        if i == j || !self.running[i] || !self.running[j] {
            return;
        }
        let was = old == Some(MemberState::Alive);
        let is = state == MemberState::Alive;
        if was == is {
            return;
        }
        let before = self.complete(i);
        if is {
            self.alive[i] += 1;
        } else {
            self.alive[i] -= 1;
        }
        match (before, self.complete(i)) {
            (false, true) => self.short -= 1,
            (true, false) => self.short += 1,
            _ => {}
        }
    }

    /// Node `i`'s view of every member, by name.
    fn of(&self, i: usize) -> BTreeMap<MemberName, MemberState> {
        let mut view = self.strangers[i].clone();
        for (j, state) in self.states[i].iter().enumerate() {
            if let Some(state) = state
                && self.index.get(&self.names[j]) == Some(&j)
            {
                view.insert(self.names[j].clone(), *state);
            }
        }
        view
    }
}

/// Sets `row[j]`, growing the row as needed; the state it replaces.
fn put(row: &mut Vec<Option<MemberState>>, j: usize, state: MemberState) -> Option<MemberState> {
    if row.len() <= j {
        row.resize(j + 1, None);
    }
    row[j].replace(state)
}

#[cfg(test)]
mod tests {
    use super::{MemberName, MemberState, Views};

    fn name(i: usize) -> MemberName {
        MemberName::new(&format!("node-{i}")).expect("a valid name")
    }

    /// Convergence as defined, pair by pair.
    fn converged(v: &Views) -> bool {
        let running = |i: &usize| v.running[*i];
        (0..v.names.len()).filter(running).all(|i| {
            (0..v.names.len())
                .filter(running)
                .filter(|&j| j != i)
                .all(|j| v.get(i, &v.names[j]) == Some(MemberState::Alive))
        })
    }

    #[test]
    fn the_views_know_at_once_whether_every_node_sees_every_other_alive() {
        const STATES: [MemberState; 4] =
            [MemberState::Alive, MemberState::Suspect, MemberState::Dead, MemberState::Left];
        let mut v = Views::default();
        let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |below: usize| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            usize::try_from(rng % below as u64).expect("small")
        };
        let mut was_converged = false;
        for step in 0..20_000 {
            let n = v.names.len();
            match next(100) {
                // A node joins the cluster: sometimes one already heard of.
                0 if n < 12 => v.add(&name(n)),
                1 if n > 2 => v.stop(next(n)),
                // Everyone sees everyone alive, so convergence happens.
                2 => {
                    for i in 0..n {
                        for j in 0..n + 1 {
                            v.set(i, &name(j), MemberState::Alive);
                        }
                    }
                }
                _ if n > 0 => {
                    let (i, j) = (next(n), next(n + 2));
                    let state = if next(3) == 0 { STATES[next(4)] } else { MemberState::Alive };
                    v.set(i, &name(j), state);
                }
                _ => v.add(&name(n)),
            }
            assert_eq!(v.short == 0, converged(&v), "step {step}: {v:?}");
            was_converged |= v.short == 0 && v.live > 2;
        }
        assert!(was_converged, "the walk never converged");
    }

    #[test]
    fn the_views_of_a_name_heard_before_its_node_started_are_its_nodes() {
        let mut v = Views::default();
        v.add(&name(0));
        v.set(0, &name(1), MemberState::Suspect);
        assert_eq!(v.get(0, &name(1)), Some(MemberState::Suspect));
        v.add(&name(1));
        assert_eq!(v.get(0, &name(1)), Some(MemberState::Suspect));
        assert!(v.strangers[0].is_empty());
        v.set(0, &name(1), MemberState::Alive);
        v.set(1, &name(0), MemberState::Alive);
        assert_eq!(v.short, 0);
        assert_eq!(v.of(0).get(&name(1)), Some(&MemberState::Alive));
    }
}
