//! Replaying a recorded trace to find out why a member did what it did.
//!
//! 1. A short simulated run is recorded, one trace per node, to a
//!    temporary directory: five nodes join, 5% of messages are lost, node 4
//!    crashes at 10 s, the run ends at 40 s.
//! 2. Every trace is replayed: each input is handed again to a member
//!    built from the trace's header, and the digest of what it emitted is
//!    compared after every input. They all match.
//! 3. The question: when and why did node 0 declare node 4 failed? The
//!    replay lists every input with the actions it caused; the example
//!    finds the input whose actions hold that `Failed` event, prints the
//!    inputs that led there, and replays up to it to show node 0's table
//!    at that moment (what a debugger session on the trace starts from).
//! 4. A replay on a build that behaves differently (here: the same trace
//!    with another `suspicion_mult` in its configuration) diverges; the
//!    replay reports the first input whose output differs, what the
//!    recording emitted for it and what the replay emitted instead.
//!
//! ```text
//! cargo run --release -p lapswim-sim --example replay_trace
//! ```
//!
//! The same with the command line: `swim sim ... --record DIR` and
//! `swim replay DIR` (`--until N` for the table after N inputs, `--print`
//! for every input and its actions); docs/trace.md has the format.

use lapswim_core::trace::{ActionNote, TraceReader, TraceRecord, TraceWriter, replay};
use lapswim_core::{Action, Config, Event};
use lapswim_sim::net::{Command, Flow, NetConfig, Sim, recording};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// The generator every runtime here builds a member with, from the seed
/// its trace records.
fn rng(seed: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

fn main() -> Result<(), Box<dyn core::error::Error>> {
    let dir = std::env::temp_dir().join(format!("swim-replay-example-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let result = run(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run(dir: &std::path::Path) -> Result<(), Box<dyn core::error::Error>> {
    // 1. Record: traces are on for simulators built while `record_to` is
    // set, and written out when the simulator is dropped.
    recording::record_to(Some(dir));
    let mut sim = Sim::new(5, Config::lan(), NetConfig { seed: 7, loss: 0.05, ..NetConfig::default() })?;
    recording::record_to(None);
    for i in 1..5 {
        sim.schedule(0, Command::Join { node: i, seeds: vec![0] })?;
    }
    sim.schedule(10_000, Command::Crash(4))?;
    sim.run_until(40_000, &mut |_, _, _: &Event| Flow::Continue);
    drop(sim);
    let run = dir.join("run0");
    let mut files: Vec<_> = std::fs::read_dir(&run)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
    files.sort();
    println!("recorded {} traces in {}", files.len(), run.display());

    // 2. Replay each: the same inputs give the same outputs.
    for f in &files {
        let bytes = std::fs::read(f)?;
        let r = replay(&bytes, &[], rng, None, false)?;
        let name = f.file_name().unwrap_or_default().to_string_lossy();
        match r.divergence {
            None => println!("  {name}: {} inputs replayed, every digest identical", r.inputs),
            Some(d) => return Err(format!("{name} diverged at input {}", d.index).into()),
        }
    }

    // 3. Why did node 0 declare node 4 failed? List node 0's replay and
    // find the input whose actions carry the event.
    let bytes = std::fs::read(run.join("n0.trace"))?;
    let listed = replay(&bytes, &[], rng, None, true)?;
    let is_failed_n4 = |a: &Action| matches!(a, Action::Event(Event::Failed { name, .. }) if name.as_str() == "n4");
    let at = listed.listing.iter().position(|(_, actions)| actions.iter().any(is_failed_n4));
    let at = at.ok_or("node 0 never declared node 4 failed")?;
    println!("\nnode 0 declared n4 failed at input {at}; the inputs that led there and what they caused:");
    // From the input that raised the suspicion (or the last few inputs).
    let is_suspected_n4 =
        |a: &Action| matches!(a, Action::Event(Event::Suspected { name, .. }) if name.as_str() == "n4");
    let from = listed.listing[..at].iter().rposition(|(_, actions)| actions.iter().any(is_suspected_n4));
    let from = from.unwrap_or(at.saturating_sub(5)).max(at.saturating_sub(12));
    for (i, (record, actions)) in listed.listing.iter().enumerate().take(at + 1).skip(from) {
        println!("  #{i:<5} {:>6} ms  {}", record.at.as_millis(), short(&format!("{:?}", record.input)));
        for a in actions.iter().filter(|a| !matches!(a, Action::SetTimer(_))) {
            println!("                  -> {}", short(&format!("{:?}", ActionNote::of(a))));
        }
    }
    // Replay up to and including that input: the member as it was then.
    let then = replay(&bytes, &[], rng, Some(at + 1), false)?;
    println!("node 0's table after input {at}:");
    for m in then.swim.members() {
        println!("    {:<4} {:<16} {:?} (incarnation {})", m.name.as_str(), m.addr, m.state, m.incarnation);
    }

    // 4. A build that behaves differently: the same inputs with another
    // suspicion multiplier. The replay stops at the first input whose
    // output differs.
    let reader = TraceReader::new(&bytes)?;
    let mut header = reader.header.clone();
    let records: Vec<TraceRecord> = reader.collect::<Result<_, _>>()?;
    header.config.suspicion_mult = header.config.suspicion_mult.saturating_add(2);
    let changed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = changed.clone();
    let mut writer = TraceWriter::new(&header, Box::new(move |b: &[u8]| sink.lock().unwrap().extend_from_slice(b)));
    for r in &records {
        writer.push(r);
    }
    drop(writer); // flushes the rest into `changed`
    let changed = changed.lock().unwrap().clone();
    let r = replay(&changed, &[], rng, None, false)?;
    let d = r.divergence.ok_or("a changed suspicion multiplier replayed identically")?;
    println!(
        "\nwith suspicion_mult {}: diverged at input {} (t = {} ms): {}",
        header.config.suspicion_mult,
        d.index,
        d.at.as_millis(),
        short(&format!("{:?}", d.input))
    );
    println!("  expected digest {:016x}, got {:016x}", d.expected, d.actual);
    println!("  the recording emitted:");
    for a in &d.expected_actions {
        println!("    {}", short(&format!("{a:?}")));
    }
    println!("  the replay emitted:");
    for a in &d.actions {
        println!("    {}", short(&format!("{:?}", ActionNote::of(a))));
    }
    Ok(())
}

/// `text` cut to one readable line (datagrams print as long byte lists).
fn short(text: &str) -> String {
    const MAX: usize = 110;
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_owned(),
    }
}
