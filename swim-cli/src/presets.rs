//! The runtime and configuration presets the commands take as flags
//! (shared with the loopback measurement, which includes this file).

use clap::ValueEnum;
use lapswim_core::Config;

/// Which async runtime runs the nodes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum RuntimeKind {
    /// tokio, multi-threaded.
    #[default]
    Tokio,
    /// smol's global executor.
    Smol,
}

impl RuntimeKind {
    /// The flag's spelling.
    pub fn name(self) -> &'static str {
        match self {
            RuntimeKind::Tokio => "tokio",
            RuntimeKind::Smol => "smol",
        }
    }
}

/// A named configuration preset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    /// memberlist's LAN defaults.
    #[default]
    Lan,
    /// memberlist's WAN defaults.
    Wan,
    /// memberlist's local defaults (one host or a fast LAN).
    Local,
}

impl Preset {
    /// The configuration.
    pub fn config(self) -> Config {
        match self {
            Preset::Lan => Config::lan(),
            Preset::Wan => Config::wan(),
            Preset::Local => Config::local(),
        }
    }
}
