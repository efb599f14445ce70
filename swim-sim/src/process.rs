//! Process figures the scenarios report: wall time, CPU time and peak
//! memory.
//!
//! Wall time is measured here. CPU time and peak memory come from the
//! operating system, which a library should not read behind its caller's
//! back: the program that runs the scenarios (`swim-sim`, from the
//! `swim-lab` crate) registers a [`ProcessReader`] with [`set_reader`];
//! without one those figures are 0.

use std::sync::OnceLock;
use std::time::Instant as WallClock;

/// How the running program reads its own figures.
#[derive(Clone, Copy, Debug)]
pub struct ProcessReader {
    /// CPU time the calling thread has used, in seconds (the simulator is
    /// single-threaded, so it is the process's).
    pub cpu_seconds: fn() -> f64,
    /// Peak resident memory of the process, in MiB.
    pub peak_rss_mib: fn() -> f64,
    /// Resets the peak-memory mark, so that each scenario reports its own
    /// (best effort).
    pub reset_peak_rss: fn(),
}

static READER: OnceLock<ProcessReader> = OnceLock::new();

/// Registers how the program reads its figures. The first registration
/// stands.
pub fn set_reader(reader: ProcessReader) {
    let _ = READER.set(reader);
}

/// CPU time this thread has used, in seconds (0 without a reader).
pub fn cpu_seconds() -> f64 {
    READER.get().map_or(0.0, |r| (r.cpu_seconds)())
}

/// Peak resident memory of the process, in MiB (0 without a reader).
pub fn peak_rss_mib() -> f64 {
    READER.get().map_or(0.0, |r| (r.peak_rss_mib)())
}

/// Resets the peak-memory mark (nothing without a reader).
pub fn reset_peak_rss() {
    if let Some(r) = READER.get() {
        (r.reset_peak_rss)();
    }
}

/// Wall and CPU time since it was started.
pub struct Meter {
    wall: WallClock,
    cpu: f64,
}

impl Meter {
    /// Starts measuring now.
    #[expect(clippy::disallowed_methods, reason = "wall time is a reported figure, never an input to the simulation")]
    pub fn start() -> Self {
        reset_peak_rss();
        Meter { wall: WallClock::now(), cpu: cpu_seconds() }
    }

    /// Seconds of wall time so far.
    pub fn wall_s(&self) -> f64 {
        self.wall.elapsed().as_secs_f64()
    }

    /// Seconds of CPU time so far.
    pub fn cpu_s(&self) -> f64 {
        (cpu_seconds() - self.cpu).max(0.0)
    }
}
