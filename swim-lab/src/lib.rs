//! The simulator's laboratory: what runs and measures `swim-sim`'s
//! scenarios and the real-socket nodes, and compares them with foca. Not
//! published; nothing in the shipped crates depends on it.
//!
//! - [`runner`]: the `swim-sim` binary's command line, one JSON line per
//!   scenario report;
//! - [`plot`]: a scenario's chart as SVG (`--plot`);
//! - [`foca_node`]: foca as a simulator node (`--impl foca`), and for the
//!   benchmarks;
//! - [`procstat`] and [`heap`]: the process's CPU time and memory, and the
//!   counting allocator's heap figure;
//! - [`loopback`]: the `swim-loopback` binary, N nodes in one process on
//!   loopback sockets.
//!
//! ```text
//! cargo run --release -p swim-lab --bin swim-sim -- s1 --nodes 100
//! cargo run --release -p swim-lab --bin swim-loopback -- --nodes 64
//! ```

pub mod foca_node;
pub mod heap;
pub mod loopback;
pub mod plot;
pub mod procstat;
pub mod runner;

/// Writes `lines` to stdout, one a line; a closed stdout (`... | head`)
/// ends the process quietly (exit code 0): nobody is left to read it.
pub fn print_lines(lines: &[String]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if lines.iter().try_for_each(|l| writeln!(out, "{l}")).is_err() {
        std::process::exit(0);
    }
}
