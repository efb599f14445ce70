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
use std::collections::BTreeMap;
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
    /// What node `i` believes of each other member, from its events.
    views: Vec<BTreeMap<MemberName, MemberState>>,
    merged: Receiver<(usize, NodeEvent)>,
    merged_tx: Sender<(usize, NodeEvent)>,
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
            views: Vec::new(),
            merged,
            merged_tx,
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
            while let Some(e) = events.next().await {
                if tx.send((index, e)).await.is_err() {
                    break;
                }
            }
        });
        self.nodes.push(node);
        self.status.push(Status::Running);
        self.views.push(BTreeMap::new());
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
        self.views[i].get(name).copied()
    }

    /// Every running node's view of every member, for a final table.
    pub fn views(&self) -> &[BTreeMap<MemberName, MemberState>] {
        &self.views
    }

    /// Joins every node but the first through the first; returns when each
    /// join has been answered.
    pub async fn join_all(&self) -> Result<(), NodeError> {
        let seed = [self.nodes[0].addr()];
        for node in &self.nodes[1..] {
            node.join(&seed).await?;
        }
        Ok(())
    }

    /// Whether every running node sees every other running node alive.
    pub fn converged(&self) -> bool {
        self.running().all(|i| {
            self.running().filter(|&j| j != i).all(|j| self.view(i, self.nodes[j].name()) == Some(MemberState::Alive))
        })
    }

    /// Whether every running node has `name` in `state`.
    pub fn all_see(&self, name: &MemberName, state: MemberState) -> bool {
        self.running().all(|i| self.view(i, name) == Some(state))
    }

    /// Stops node `i` abruptly (no leave): to the others it has crashed.
    pub async fn kill(&mut self, i: usize) {
        self.nodes[i].shutdown().await;
        self.status[i] = Status::Killed;
    }

    /// Node `i` leaves gracefully, then stops.
    pub async fn leave(&mut self, i: usize) -> Result<(), NodeError> {
        let r = self.nodes[i].leave().await;
        self.nodes[i].shutdown().await;
        self.status[i] = Status::Left;
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
            let recv = async { self.merged.recv().await.ok() };
            let expire = futures_lite::future::poll_fn(|cx| timer.poll_expired(cx).map(|()| None));
            let next = futures_lite::future::or(recv, expire);
            let Some((observer, event)) = next.await else { return done(self) };
            match event {
                NodeEvent::Protocol { at, event } => {
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
        let view = &mut self.views[observer];
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
        if matches!(event, Event::Updated { .. }) && view.contains_key(name) {
            return;
        }
        view.insert(name.clone(), state);
    }
}
