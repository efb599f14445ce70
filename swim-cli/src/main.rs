//! `swim`: run a cluster member or a local demo cluster, the simulator's
//! scenarios, a loopback measurement; make a key, replay recorded traces.
//! (The foca comparison is the unpublished `swim-lab` crate's `swim-sim`
//! binary, so this one never links foca.)

/// `println!` that ends the process quietly when stdout is closed.
macro_rules! say {
    () => { $crate::output::emit("") };
    ($($t:tt)*) => { $crate::output::emit(format_args!($($t)*)) };
}

/// Runs `$task(runtime, args...)` to completion on the runtime `$kind`
/// names: tokio's multi-threaded one, or a smol executor driven by the
/// calling thread.
macro_rules! block_on_runtime {
    ($kind:expr, $task:ident($($arg:expr),*)) => {
        match $kind {
            $crate::RuntimeKind::Tokio => $crate::tokio_runtime()?.block_on($task(lapswim_tokio::Tokio, $($arg),*)),
            $crate::RuntimeKind::Smol => {
                let ex = std::sync::Arc::new(smol::Executor::new());
                smol::block_on(ex.run($task(lapswim_smol::Smol::on(ex.clone()), $($arg),*)))
            }
        }
    };
}

mod agent;
mod client;
#[allow(
    unreachable_pub,
    dead_code,
    reason = "the same file is swim-testkit's public `cluster` module, whose users need all of it"
)]
mod cluster;
mod demo;
mod keys;
mod lab;
mod output;
mod presets;
mod replay;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// SWIM cluster membership with Lifeguard: agent, demo, simulator, measurements, keys, trace replay.
#[derive(Parser, Debug)]
#[command(name = "swim", version, about, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one cluster member and print membership events as they happen.
    #[command(after_help = agent::LOGGING_HELP)]
    Agent(Box<agent::AgentArgs>),
    /// Start a local cluster over real sockets; show join, crash detection
    /// and a graceful leave live.
    Demo(demo::DemoArgs),
    /// Run the simulator's benchmark scenarios (one JSON line each).
    Sim(lab::runner::SimArgs),
    /// Measure N nodes in this process on loopback: convergence,
    /// detection, CPU, memory and traffic (one JSON line).
    Loopback(lab::loopback::LoopbackArgs),
    /// Print a new random AES-256 key, base64, for `agent --key` or a
    /// keyring file.
    Keygen,
    /// Re-run recorded traces (a file, or a directory from `swim sim --record`)
    /// and check every output digest; report the first divergence.
    Replay(replay::ReplayArgs),
    #[command(flatten)]
    Client(client::ClientCommand),
}

pub use presets::{Preset, RuntimeKind};

/// A tokio runtime with one worker per core (two at most on small machines
/// is plenty for thousands of nodes).
pub fn tokio_runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| format!("cannot start tokio: {e}"))
}

/// Counts the heap, for the simulator's memory figures (`sim s1 --heap`,
/// `sim memory`) and loopback's.
#[global_allocator]
static HEAP: &stats_alloc::StatsAlloc<std::alloc::System> = &stats_alloc::INSTRUMENTED_SYSTEM;

/// Simulations of this many members or more ask for huge pages
/// ([`lab::hugepages`]): from here on the tables outgrow the TLB's reach.
const HUGE_PAGE_NODES: usize = 1000;

fn main() -> ExitCode {
    lapswim_sim::heap::set_meter(|| lab::heap::held_by(HEAP.stats()));
    // clap's whole message: what is wrong, a close flag if there is one,
    // and the usage; help (plain `swim` too) lists the commands.
    let cli = Cli::try_parse().unwrap_or_else(|e| e.exit());
    let result = match cli.command {
        Command::Agent(args) => agent::run(*args),
        Command::Demo(args) => demo::run(args),
        Command::Sim(args) => {
            if args.nodes >= HUGE_PAGE_NODES {
                lab::hugepages::restart_with_huge_pages();
            }
            lab::runner::run(&args, None).map(|lines| lab::print_lines(&lines))
        }
        Command::Loopback(args) => lab::loopback::run(args),
        Command::Keygen => keys::generate().map(|k| say!("{k}")),
        Command::Replay(args) => replay::run(args),
        Command::Client(command) => client::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::complain(format_args!("swim: {e}"));
            ExitCode::FAILURE
        }
    }
}
