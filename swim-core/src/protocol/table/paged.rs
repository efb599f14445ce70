//! A growable array in fixed-size pages: a vector doubles its capacity as
//! it grows, so a large one can hold nearly twice what it uses; pages keep
//! the unused tail under one page, and growing never moves what is stored.

use alloc::vec::Vec;

/// Entries per page.
const PAGE: usize = 256;

/// A vector of `T` stored in pages of [`PAGE`] entries.
#[derive(Clone, Debug)]
pub(crate) struct Paged<T> {
    pages: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Paged<T> {
    fn default() -> Self {
        Paged { pages: Vec::new(), len: 0 }
    }
}

impl<T> Paged<T> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Appends `value` at index `len()`.
    pub(crate) fn push(&mut self, value: T) {
        match self.pages.last_mut() {
            // A page's own growth (4, 8, ... entries) stops at PAGE, a
            // power of two, so small tables stay small.
            Some(page) if page.len() < PAGE => page.push(value),
            _ => {
                let mut page = Vec::new();
                if !self.pages.is_empty() {
                    page.reserve_exact(PAGE);
                }
                page.push(value);
                self.pages.push(page);
            }
        }
        self.len += 1;
    }

    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        self.pages.get(i / PAGE)?.get(i % PAGE)
    }

    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        self.pages.get_mut(i / PAGE)?.get_mut(i % PAGE)
    }

    /// Every entry, in index order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.pages.iter().flatten()
    }

    /// Bytes reserved for entries, used or not.
    #[cfg(test)]
    pub(crate) fn reserved(&self) -> usize {
        self.pages.iter().map(|p| p.capacity() * core::mem::size_of::<T>()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_across_pages_and_wastes_less_than_a_page() {
        let mut p = Paged::default();
        for i in 0..10_000u64 {
            p.push(i);
        }
        assert_eq!(p.len(), 10_000);
        assert_eq!(p.get(0), Some(&0));
        assert_eq!(p.get(255), Some(&255));
        assert_eq!(p.get(256), Some(&256));
        assert_eq!(p.get(9_999), Some(&9_999));
        assert_eq!(p.get(10_000), None);
        *p.get_mut(300).unwrap() = 7;
        assert_eq!(p.get(300), Some(&7));
        assert_eq!(p.iter().count(), 10_000);
        assert!(p.iter().enumerate().all(|(i, &v)| v == i as u64 || (i == 300 && v == 7)));
        assert!(p.reserved() < (10_000 + PAGE) * 8);
        let mut small = Paged::default();
        for i in 0..5u64 {
            small.push(i);
        }
        assert!(small.reserved() <= 8 * 8, "a small table stays small");
    }
}
