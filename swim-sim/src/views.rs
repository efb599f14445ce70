//! What every node believes about every other node, rebuilt from the
//! events they emit: the ground the scenario figures stand on.

use lapswim_core::Event;

use crate::net::name_index;

/// A node's belief about another, as last reported by its events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Belief {
    /// Never heard of.
    Unknown = 0,
    /// Alive.
    Alive = 1,
    /// Suspected.
    Suspect = 2,
    /// Failed.
    Dead = 3,
    /// Left.
    Left = 4,
}

/// An `n x n` matrix of beliefs with running totals.
pub struct Views {
    n: usize,
    cells: Vec<Belief>,
    alive_pairs: u64,
    up_pairs: u64,
    down_count: Vec<u32>,
}

impl Views {
    /// Nobody knows anybody.
    pub fn new(n: usize) -> Self {
        Views { n, cells: vec![Belief::Unknown; n * n], alive_pairs: 0, up_pairs: 0, down_count: vec![0; n] }
    }

    /// Applies `event` emitted by `observer`. Events about names outside
    /// the simulation are ignored.
    pub fn apply(&mut self, observer: usize, event: &Event) {
        let (name, belief) = match event {
            Event::Joined { name, .. } | Event::Alive { name, .. } => (name, Belief::Alive),
            Event::Suspected { name, .. } => (name, Belief::Suspect),
            Event::Failed { name, .. } => (name, Belief::Dead),
            Event::Left { name } => (name, Belief::Left),
            _ => return,
        };
        let Some(target) = name_index(name.as_str()).filter(|&t| t < self.n && t != observer) else {
            return;
        };
        self.set(observer, target, belief);
    }

    /// Forgets what `observer` knew (it restarted with an empty table).
    pub fn reset_observer(&mut self, observer: usize) {
        for t in 0..self.n {
            self.set(observer, t, Belief::Unknown);
        }
    }

    fn set(&mut self, o: usize, t: usize, b: Belief) {
        let cell = &mut self.cells[o * self.n + t];
        let old = *cell;
        *cell = b;
        let up = |b: Belief| matches!(b, Belief::Alive | Belief::Suspect);
        let down = |b: Belief| matches!(b, Belief::Dead | Belief::Left);
        self.alive_pairs = self.alive_pairs + u64::from(b == Belief::Alive) - u64::from(old == Belief::Alive);
        self.up_pairs = self.up_pairs + u64::from(up(b)) - u64::from(up(old));
        self.down_count[t] = self.down_count[t] + u32::from(down(b)) - u32::from(down(old));
    }

    /// What `observer` believes about `target`.
    pub fn get(&self, observer: usize, target: usize) -> Belief {
        self.cells[observer * self.n + target]
    }

    /// Observer/target pairs (distinct nodes) believed alive.
    pub fn alive_pairs(&self) -> u64 {
        self.alive_pairs
    }

    /// Pairs believed alive or suspect: not failed, not gone.
    pub fn up_pairs(&self) -> u64 {
        self.up_pairs
    }

    /// Observers that believe `target` failed or left.
    pub fn down_count(&self, target: usize) -> u32 {
        self.down_count[target]
    }

    /// `n * (n - 1)`: every pair.
    pub fn all_pairs(&self) -> u64 {
        (self.n as u64) * (self.n as u64).saturating_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::SocketAddr;
    use lapswim_core::MemberName;

    fn name(s: &str) -> MemberName {
        MemberName::new(s).unwrap()
    }

    #[test]
    fn counts_follow_events() {
        let mut v = Views::new(3);
        let a: SocketAddr = "10.0.0.1:7946".parse().unwrap();
        v.apply(0, &Event::Joined { name: name("n1"), addr: a });
        v.apply(0, &Event::Joined { name: name("n2"), addr: a });
        v.apply(1, &Event::Joined { name: name("n0"), addr: a });
        assert_eq!(v.alive_pairs(), 3);
        v.apply(0, &Event::Suspected { name: name("n1"), incarnation: 0, local: true });
        assert_eq!((v.alive_pairs(), v.up_pairs()), (2, 3));
        v.apply(0, &Event::Failed { name: name("n1"), incarnation: 0, local: true });
        assert_eq!((v.up_pairs(), v.down_count(1)), (2, 1));
        v.apply(0, &Event::Joined { name: name("n0"), addr: a });
        assert_eq!(v.alive_pairs(), 2, "a node's view of itself is not a pair");
        v.reset_observer(0);
        assert_eq!((v.alive_pairs(), v.down_count(1)), (1, 0));
    }
}
