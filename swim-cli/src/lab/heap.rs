//! The heap meter the simulator's memory figures read (`s1 --heap`,
//! `memory`): a `stats_alloc` counting allocator, installed by the
//! program, read through [`lapswim_sim::heap::set_meter`].

/// Bytes held by a `stats_alloc` allocator: what it allocated less what it
/// freed (its byte counts already include what reallocations grew and
/// shrank; `bytes_reallocated` is the same change counted again).
pub fn held_by(stats: stats_alloc::Stats) -> usize {
    stats.bytes_allocated.saturating_sub(stats.bytes_deallocated)
}
