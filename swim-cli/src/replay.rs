//! `swim replay PATH`: re-runs recorded traces (one file, or every
//! `*.trace` under a directory) and checks every output digest.

use std::path::{Path, PathBuf};

use clap::Args;
use lapswim_core::trace::{Replayed, TraceError, replay};
use rand_core::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// `swim replay` flags.
#[derive(Args, Debug)]
pub(crate) struct ReplayArgs {
    /// A trace file, or a directory of them (a simulator run recorded with
    /// `--record`: every node's file is replayed).
    path: PathBuf,
    /// Stop after N inputs and print the member table and queues.
    #[arg(long, value_name = "N")]
    until: Option<usize>,
    /// List every input and what the replay emitted for it.
    #[arg(long)]
    print: bool,
    /// A key the recorded member used (base64, as for `swim agent`): a
    /// trace names keys by fingerprint only. May be repeated.
    #[arg(long, value_name = "BASE64")]
    key: Vec<String>,
    /// A keyring file (as for `swim agent`) holding keys the recorded
    /// member used; combines with --key.
    #[arg(long, value_name = "FILE")]
    keyring: Option<PathBuf>,
}

/// The keys given with --key and --keyring.
fn keys(args: &ReplayArgs) -> Result<Vec<lapswim_core::Key>, String> {
    let mut keys = args.key.iter().map(|k| crate::keys::parse_key(k)).collect::<Result<Vec<_>, _>>()?;
    if let Some(path) = &args.keyring {
        let text = crate::keys::read_file(path)?.text;
        keys.extend(crate::keys::parse_keyring(&text).map_err(|e| format!("{}: {e}", path.display()))?);
    }
    Ok(keys)
}

/// Replays; `Err` when a trace cannot be read or a replay diverged.
pub(crate) fn run(args: ReplayArgs) -> Result<(), String> {
    let files = traces(&args.path)?;
    if files.is_empty() {
        return Err(format!("no .trace file under {}", args.path.display()));
    }
    let keys = keys(&args)?;
    let mut diverged = 0;
    let mut inputs = 0;
    for file in &files {
        let bytes = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let r =
            replay(&bytes, &keys, Xoshiro256PlusPlus::seed_from_u64, args.until, args.print).map_err(|e| match e {
                TraceError::MissingKey { .. } => {
                    format!("{}: {e}; give the key with --key BASE64 or --keyring FILE", file.display())
                }
                e => format!("{}: {e}", file.display()),
            })?;
        inputs += r.inputs;
        if args.print {
            for (record, actions) in &r.listing {
                say!("{:>9} ms  {:?}", record.at.as_millis(), record.input);
                for a in actions {
                    say!("              -> {a:?}");
                }
            }
        }
        match &r.divergence {
            None => say!("{}: {} inputs replayed, every digest identical", file.display(), r.inputs),
            Some(d) => {
                diverged += 1;
                say!(
                    "{}: diverged at input {} (t = {} ms): {:?}\n  expected digest {:016x}, got {:016x}\n  the recording emitted:",
                    file.display(),
                    d.index,
                    d.at.as_millis(),
                    d.input,
                    d.expected,
                    d.actual
                );
                for a in &d.expected_actions {
                    say!("    {a:?}");
                }
                say!("  the replay emitted:");
                for a in &d.actions {
                    say!("    {a:?}");
                }
            }
        }
        if args.until.is_some() {
            print_state(&r);
        }
    }
    if files.len() > 1 {
        say!("{} traces, {inputs} inputs, {diverged} diverged", files.len());
    }
    if diverged > 0 { Err(format!("{diverged} of {} traces diverged", files.len())) } else { Ok(()) }
}

/// The member as the replay left it: table, queues, clock, counters.
fn print_state(r: &Replayed<Xoshiro256PlusPlus>) {
    let s = &r.swim;
    say!(
        "  at {} ms after {} inputs: incarnation {}, {} live, {} queued updates, {} queued broadcasts, {} open streams, next deadline {:?}",
        r.last_at.map_or(0, |t| t.as_millis()),
        r.inputs,
        s.incarnation(),
        s.num_live(),
        s.queued_updates(),
        s.queued_broadcasts(),
        s.open_streams(),
        s.deadline().map(|t| t.as_millis()),
    );
    for m in s.members() {
        say!("    {:<16} {:<21} {:?} inc {}", m.name.as_str(), m.addr.to_string(), m.state, m.incarnation);
    }
}

/// `path` itself, or every `*.trace` under it, sorted.
fn traces(path: &Path) -> Result<Vec<PathBuf>, String> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    let mut dirs = vec![path.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "trace") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}
