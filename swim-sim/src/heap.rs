//! Heap figures from a counting allocator, for memory measurements that do
//! not depend on the page cache or the allocator's free lists.
//!
//! A library cannot choose the program's allocator, so the program that
//! reports memory (`swim-sim`, from the `swim-lab` crate) installs a
//! counting one and hands this module a way to read it with [`set_meter`];
//! without one, memory figures are not available and the scenarios that
//! need them say so.

use std::sync::OnceLock;

static METER: OnceLock<fn() -> usize> = OnceLock::new();

/// Registers `held`, which returns the bytes the program's allocator has
/// handed out and not yet taken back. The first registration stands.
pub fn set_meter(held: fn() -> usize) {
    let _ = METER.set(held);
}

/// Bytes held on the heap now, if a meter is registered.
pub fn held() -> Option<usize> {
    METER.get().map(|f| f())
}
