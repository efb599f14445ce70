//! The scenarios run on foca through the same code as on swim: the lines
//! name the implementation and its configuration, carry the same fields,
//! and leave `null` what foca does not report (suspicions, and whether a
//! failure was declared or heard of).

use clap::Parser;
use swim_lab::run;
use swim_lab::runner::SimArgs;

#[global_allocator]
static HEAP: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

/// The heap is the process's: one run at a time, so that another test's
/// allocations do not count in a heap figure.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn lines(args: &[&str]) -> Result<Vec<serde_json::Value>, String> {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: SimArgs,
    }
    let cli = Cli::parse_from(core::iter::once("swim-sim").chain(args.iter().copied()));
    run(&cli.args).map(|ls| ls.iter().map(|l| serde_json::from_str(l).expect("JSON line")).collect())
}

#[test]
fn foca_bootstraps_and_detects_a_crash_in_the_same_scenarios() {
    let s1 = &lines(&["s1", "--nodes", "30", "--impl", "foca"]).unwrap()[0];
    assert_eq!(s1["impl"], "foca");
    assert_eq!(s1["outcome"], "converged", "{s1}");
    assert_eq!(s1["config"]["probe_period_ms"], 1000, "foca's LAN configuration: {s1}");
    assert!(s1["msgs_per_node"].as_f64().unwrap() > 0.0);

    let s2 = &lines(&["s2", "--nodes", "30", "--runs", "2", "--impl", "foca"]).unwrap()[0];
    assert_eq!(s2["outcome"], "detected", "{s2}");
    assert!(s2["all_live_down_ms"]["median"].as_f64().unwrap() > 0.0, "{s2}");
    assert_eq!(s2["first_suspect_ms"]["median"], serde_json::Value::Null, "foca reports no suspicions");
    assert_eq!(s2["last_chance_checks_per_crash"], serde_json::Value::Null);

    let swim = &lines(&["s2", "--nodes", "30", "--runs", "2"]).unwrap()[0];
    assert_eq!(swim["impl"], "swim");
    assert_ne!(swim["digest"], s2["digest"], "a different implementation ran");
}

#[test]
fn foca_lines_leave_null_what_foca_cannot_tell() {
    let s3 = &lines(&["s3", "--nodes", "10", "--loss", "0.05", "--impl", "foca"]).unwrap()[0];
    assert_eq!(s3["outcome"], "completed", "{s3}");
    assert!(s3["false_down_observations"].is_u64(), "{s3}");
    assert_eq!(s3["false_positive_declarations"], serde_json::Value::Null);
    assert_eq!(s3["suspicions_raised"], serde_json::Value::Null);
}

#[test]
fn swim_only_options_and_scenarios_are_refused_for_foca() {
    for args in [
        &["s1", "--impl", "foca", "--preset", "fast"][..],
        &["s2", "--impl", "foca", "--suspicion-mult", "3"],
        &["s1", "--impl", "foca", "--plot", "x.svg"],
        &["memory", "--impl", "foca"],
    ] {
        assert!(lines(args).is_err(), "{args:?} was accepted");
    }
}

#[test]
fn s1_reports_the_heap_per_member_entry_of_either_implementation_when_asked() {
    lapswim_sim::heap::set_meter(|| swim_lab::heap::held_by(HEAP.stats()));
    for imp in ["swim", "foca"] {
        let plain = &lines(&["s1", "--nodes", "20", "--impl", imp]).unwrap()[0];
        assert!(plain.get("heap_bytes_per_member_entry").is_none(), "only when asked: {plain}");
        let v = &lines(&["s1", "--nodes", "20", "--impl", imp, "--heap"]).unwrap()[0];
        assert_eq!(v["digest"], plain["digest"], "{imp}: measuring changes nothing of the run it reports");
        for field in ["heap_bytes_per_member_entry", "settled_heap_bytes_per_member_entry"] {
            let b = v[field].as_f64().unwrap_or(0.0);
            assert!(b > 8.0 && b < 100_000.0, "{imp}: {field} = {b}");
        }
    }
}

#[test]
fn a_metadata_change_spreads_through_foca_as_a_custom_broadcast() {
    let v = &lines(&["spread", "--nodes", "30", "--runs", "3", "--impl", "foca"]).unwrap()[0];
    assert_eq!(v["impl"], "foca");
    assert_eq!(v["gossip_interval_ms"], 200, "foca's periodic gossip: {v}");
    // Every run reaches most of the cluster within a few gossip rounds.
    assert!(v["rounds_50"]["max"].as_u64().is_some_and(|r| (1..=10).contains(&r)), "{v}");
    assert!(v["rounds_99"]["median"].as_f64().is_some_and(|r| r <= 10.0), "{v}");
}
