//! Process figures for the cost scenario: CPU time and peak memory.

use std::time::Instant as WallClock;

/// CPU time this thread has used, in seconds (0 where unknown).
pub fn cpu_seconds() -> f64 {
    // schedstat's first field is the time on CPU in ns; the simulator is
    // single-threaded, so the main thread's figure is the process's.
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0.0, |ns| ns as f64 / 1e9)
}

/// Peak resident memory of the process, in MiB (0 where unknown).
pub fn peak_rss_mib() -> f64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return 0.0 };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0.0, |kb| kb as f64 / 1024.0)
}

/// Resets the peak-memory mark, so each scenario reports its own (best
/// effort: not every kernel allows it).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
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
