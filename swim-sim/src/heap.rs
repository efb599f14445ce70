//! Heap figures from a counting allocator, for memory measurements that do
//! not depend on the page cache or the allocator's free lists.
//!
//! A library cannot choose the program's allocator, so the binaries that
//! report memory (`swim-sim`, `swim`) install a counting one and hand this
//! module a way to read it with [`set_meter`]; without one, memory figures
//! are not available and the scenarios that need them say so.

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

/// Bytes held by a `stats_alloc` allocator: what it allocated less what it
/// freed (its byte counts already include what reallocations grew and
/// shrank; `bytes_reallocated` is the same change counted again).
pub fn held_by(stats: stats_alloc::Stats) -> usize {
    stats.bytes_allocated.saturating_sub(stats.bytes_deallocated)
}
