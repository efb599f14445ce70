//! The committed table of S1–S4 figures at n = 16 and 100, with the digest
//! of every action each run emitted (`docs/snapshots.md`). Any change of
//! behaviour shows as a diff of that file: review it, then bless it with
//! `SWIM_BLESS=1 cargo test -p lapswim-sim --test snapshot_table`.

use lapswim_core::Config;
use lapswim_sim::scenario::{self, Params};
use serde_json::Value;

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/snapshots.md");

/// A figure of a line, as printed in the table.
fn fig(line: &Value, path: &[&str]) -> String {
    let mut v = line;
    for k in path {
        v = &v[*k];
    }
    match v {
        Value::Null => "—".into(),
        Value::String(s) => format!("`{s}`"),
        other => other.to_string(),
    }
}

fn table() -> String {
    let mut out = String::from(
        "# Snapshot of the benchmark scenarios\n\n\
         Written by `SWIM_BLESS=1 cargo test -p lapswim-sim --test snapshot_table`\n\
         and checked by the same test without the variable: any change of\n\
         behaviour changes a digest here (the digest of every action of every\n\
         node, with its time), so it shows up as a reviewed diff. Seed 1, 1 ms\n\
         latency, `Config::lan()`; scenarios as docs/scenarios.md defines them\n\
         (S2 over 10 runs, medians).\n\n",
    );
    for n in [16, 100] {
        let p = Params {
            n,
            seed: 1,
            latency_ms: 1,
            jitter_ms: 0,
            config: Config::lan(),
            regions: None,
            latency_model: lapswim_sim::geo::LatencyModel::Flat,
        };
        let s1 = scenario::s1(&p).unwrap().line;
        let s2 = scenario::s2(&p, 10).unwrap().line;
        let s3a = scenario::s3(&p, 0.1).unwrap().line;
        let s3b = scenario::s3(&p, 0.2).unwrap().line;
        let s4 = scenario::s4(&p).unwrap();
        out += &format!("## n = {n}\n\n| scenario | figures | digest |\n|---|---|---|\n");
        out += &format!(
            "| S1 | convergence {} ms, t99 {} ms, {} msgs/node | {} |\n",
            fig(&s1, &["convergence_ms"]),
            fig(&s1, &["t99_pairs_ms"]),
            fig(&s1, &["msgs_per_node"]),
            fig(&s1, &["digest"])
        );
        out += &format!(
            "| S2 | first suspicion {} ms, all live failed {} ms (max {}), false failures {} | {} |\n",
            fig(&s2, &["first_suspect_ms", "median"]),
            fig(&s2, &["all_live_down_ms", "median"]),
            fig(&s2, &["all_live_down_ms", "max"]),
            fig(&s2, &["false_failures"]),
            fig(&s2, &["digest"])
        );
        for s3 in [&s3a, &s3b] {
            out += &format!(
                "| S3 {} loss | false declarations {}, suspicions {}, whole at end {} | {} |\n",
                fig(s3, &["loss"]),
                fig(s3, &["false_positive_declarations"]),
                fig(s3, &["suspicions_raised"]),
                fig(s3, &["whole_at_end"]),
                fig(s3, &["digest"])
            );
        }
        out += &format!(
            "| S4 | {} msgs/node/s, {} B/node/s datagrams, {} B/node/s streams | {} |\n\n",
            fig(&s4, &["msgs_per_node_per_s"]),
            fig(&s4, &["bytes_per_node_per_s"]),
            fig(&s4, &["stream_bytes_per_node_per_s"]),
            fig(&s4, &["digest"])
        );
    }
    out
}

#[test]
fn scenario_figures_and_digests_match_the_committed_table() {
    let now = table();
    if std::env::var_os("SWIM_BLESS").is_some() {
        std::fs::write(FILE, &now).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(FILE).unwrap_or_default();
    assert!(
        committed == now,
        "behaviour changed; review, then bless with SWIM_BLESS=1:\n--- committed\n{committed}\n--- now\n{now}"
    );
}
