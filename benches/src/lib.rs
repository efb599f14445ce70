//! Benchmarks live in `benches/`; run them with `cargo bench -p swim-benches`.
//! This library holds what several of them share.

/// The identity foca runs with here, as in the simulator's comparison
/// scenarios (`swim-sim s1 --impl foca`).
pub use swim_lab::foca_node::FocaId;
