//! The nodes of a run, kept in [`PARTS`] parts (by index modulo
//! [`PARTS`]), so parts can be lent to a helper thread while this one
//! works on others (see `parallel`).

use core::ops::{Index, IndexMut};

use super::Slot;

/// How many parts the nodes are kept in: enough that the last parts taken
/// in an instant are short, so neither thread waits long for the other.
pub(super) const PARTS: usize = 16;

/// Every node's slot, node `i` at place `i / PARTS` of part `i % PARTS`.
pub(super) struct Nodes<N> {
    pub(super) parts: [Vec<Slot<N>>; PARTS],
}

/// The part of node `i`, and its place there.
pub(super) fn place(i: usize) -> (usize, usize) {
    (i % PARTS, i / PARTS)
}

impl<N> Nodes<N> {
    pub(super) fn with_capacity(n: usize) -> Self {
        Nodes { parts: core::array::from_fn(|_| Vec::with_capacity(n.div_ceil(PARTS))) }
    }

    /// Adds the next node (node `len()`).
    pub(super) fn push(&mut self, slot: Slot<N>) {
        let (part, _) = place(self.len());
        self.parts[part].push(slot);
    }

    pub(super) fn len(&self) -> usize {
        self.parts.iter().map(Vec::len).sum()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(super) fn get(&self, i: usize) -> Option<&Slot<N>> {
        let (part, at) = place(i);
        self.parts[part].get(at)
    }

    pub(super) fn get_mut(&mut self, i: usize) -> Option<&mut Slot<N>> {
        let (part, at) = place(i);
        self.parts[part].get_mut(at)
    }

    /// Every slot, in node order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Slot<N>> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

impl<N> Index<usize> for Nodes<N> {
    type Output = Slot<N>;
    fn index(&self, i: usize) -> &Slot<N> {
        let (part, at) = place(i);
        &self.parts[part][at]
    }
}

impl<N> IndexMut<usize> for Nodes<N> {
    fn index_mut(&mut self, i: usize) -> &mut Slot<N> {
        let (part, at) = place(i);
        &mut self.parts[part][at]
    }
}
