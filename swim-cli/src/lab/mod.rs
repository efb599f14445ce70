//! The simulator's command line and the measurements on real sockets:
//! `swim sim` (one JSON line per scenario report, `--plot` charts) and
//! `swim loopback` (N nodes in one process). The unpublished `swim-lab`
//! includes this module as it is and adds the foca comparison
//! (`--impl foca`), so that the `swim` binary never links foca.

// Public for swim-lab, which includes this module in its library; in the
// binary nothing outside reaches it.
#![allow(unreachable_pub, reason = "public for the library that includes it")]

pub mod heap;
pub mod hugepages;
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
