//! Transparent huge pages for large simulations.
//!
//! A simulated cluster of N members holds N² table entries in one process:
//! at 10,000 members, ten gigabytes touched in no useful order, so nearly
//! every table lookup misses the TLB as well as the cache. Backing the heap
//! with 2 MiB pages cuts those misses (`swim sim steady --nodes 10000` runs
//! about a third faster). glibc does so only when asked at start-up, by the
//! `glibc.malloc.hugetlb` tunable, and only where the kernel leaves huge
//! pages to `madvise`; so the process restarts itself once with the tunable
//! set. Nothing the simulation computes depends on it: only wall time and
//! resident memory change.

/// The tunable that makes glibc's malloc advise huge pages for its heap.
const TUNABLE: &str = "glibc.malloc.hugetlb=1";

/// Set (to anything) to keep the heap in ordinary pages.
pub const OPT_OUT: &str = "SWIM_NO_HUGE_PAGES";

/// Restarts this process with `glibc.malloc.hugetlb=1` when that would change anything:
/// on Linux with glibc, where the kernel's THP mode is `madvise`, unless the
/// tunable is already set or [`OPT_OUT`] is. Returns only when it did not
/// restart (or the restart failed, which is said on stderr: the run goes on
/// in ordinary pages).
pub fn restart_with_huge_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;

        if std::env::var_os(OPT_OUT).is_some() {
            return;
        }
        let current = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
        if current.contains("glibc.malloc.hugetlb") {
            return;
        }
        // `always` gives huge pages without asking; `never` refuses them.
        let mode = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
        if !mode.contains("[madvise]") {
            return;
        }
        let Ok(exe) = std::env::current_exe() else { return };
        let value = if current.is_empty() { TUNABLE.to_owned() } else { format!("{current}:{TUNABLE}") };
        let err = std::process::Command::new(exe).args(std::env::args_os().skip(1)).env("GLIBC_TUNABLES", value).exec();
        eprintln!("swim: running without huge pages: cannot restart with {TUNABLE}: {err}");
    }
}
