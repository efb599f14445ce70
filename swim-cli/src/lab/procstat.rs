//! The process's own figures, from /proc: CPU time (of the calling thread
//! for the simulator, of every thread for `swim loopback`), resident memory
//! now and at its peak. Each is 0 where unknown (no /proc).

/// CPU time the calling thread has used, in seconds (0 where unknown).
pub fn cpu_seconds() -> f64 {
    // schedstat's first field is the time on CPU in ns; the simulator is
    // single-threaded, so the main thread's figure is the process's.
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0.0, |ns| ns as f64 / 1e9)
}

/// CPU time used by the whole process so far, in ms (sum over its threads'
/// scheduler statistics; 0 where unknown).
pub fn process_cpu_ms() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0.0 };
    let ns: u64 = tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    ns as f64 / 1e6
}

/// A `kB` figure of /proc/self/status (`VmRSS`, `VmHWM`).
fn status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Resident memory now, in KiB (0 where unknown).
pub fn rss_kb() -> u64 {
    status_kb("VmRSS").unwrap_or(0)
}

/// Peak resident memory of the process, in MiB (0 where unknown).
pub fn peak_rss_mib() -> f64 {
    status_kb("VmHWM").map_or(0.0, |kb| kb as f64 / 1024.0)
}

/// Resets the peak-memory mark, so each scenario reports its own (best
/// effort: not every kernel allows it).
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Hands the simulator's scenarios these readers, for their `cpu_s` and
/// `peak_rss_mib` figures ([`lapswim_sim::process::set_reader`]).
pub fn install() {
    lapswim_sim::process::set_reader(lapswim_sim::process::ProcessReader { cpu_seconds, peak_rss_mib, reset_peak_rss });
}
