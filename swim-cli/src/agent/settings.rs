//! The agent's settings: flags, a TOML config file holding the same
//! settings, and the tags file, merged into one [`Settings`].
//!
//! A flag given on the command line wins over the file; lists (`join`,
//! `retry-join`, `event-handler`, `tag`) add to the file's, as serf's
//! agent does.

use core::net::SocketAddr;
use core::time::Duration;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use serde::Deserialize;

use super::handlers::{HandlerSettings, HandlerSpec};
use crate::Preset;
use crate::output::parse_meta;

/// The API address when none is given: serf's RPC port.
pub(crate) const DEFAULT_API: &str = "127.0.0.1:7373";

/// The port a `--retry-join` host without one is joined at.
pub(crate) const DEFAULT_PORT: u16 = 7946;

/// `swim agent` flags.
#[derive(Args, Debug, Default)]
pub(crate) struct AgentArgs {
    /// Read settings from this TOML file: keys are the long flag names
    /// (`bind = "10.0.0.5:7946"`, `join = ["10.0.0.1:7946"]`, `tags = { role
    /// = "web" }`); flags given here win over it.
    #[arg(long, value_name = "FILE")]
    config_file: Option<PathBuf>,
    /// UDP and TCP address to bind (port 0: the OS picks one, printed at
    /// start).
    #[arg(long)]
    bind: Option<SocketAddr>,
    /// The address others reach this member at, when it is not the bound
    /// one (NAT, containers).
    #[arg(long, value_name = "ADDR")]
    advertise: Option<SocketAddr>,
    /// This member's unique name.
    #[arg(long)]
    name: Option<String>,
    /// A member of the cluster to join through at start (repeat for
    /// several); the agent stops if none answers.
    #[arg(long = "join", value_name = "ADDR")]
    join: Vec<SocketAddr>,
    /// A member to join through, HOST:PORT or HOST (port 7946),
    /// looked up in DNS on every attempt and retried until one answers
    /// (repeat for several; a headless service's name works).
    #[arg(long = "retry-join", value_name = "HOST[:PORT]")]
    retry_join: Vec<String>,
    /// Time between --retry-join attempts [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    retry_interval: Option<Duration>,
    /// --retry-join attempts before the agent gives up and stops (0: never
    /// gives up) [default: 0].
    #[arg(long, value_name = "N")]
    retry_max: Option<u32>,
    /// A tag gossiped with this member (repeat for several).
    #[arg(long = "tag", visible_alias = "meta", value_name = "K=V", value_parser = parse_meta)]
    tags: Vec<(String, String)>,
    /// Tags from this JSON file (`{"role": "web"}`); `swim tags` changes
    /// are written back to it.
    #[arg(long, value_name = "FILE")]
    tags_file: Option<PathBuf>,
    /// Run SCRIPT (with `sh -c`) on events FILTER selects: a comma list of
    /// member-join, member-leave, member-failed, member-update,
    /// member-reap, user, user:NAME, query, query:NAME, or `*` (the
    /// default). serf's handler contract: SERF_EVENT and the other
    /// variables, members or the payload on stdin, a query answered with
    /// the script's output. Repeat for several.
    #[arg(long = "event-handler", value_name = "[FILTER=]SCRIPT")]
    event_handlers: Vec<String>,
    /// A handler running longer is killed [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    handler_timeout: Option<Duration>,
    /// Member events, and user events sent with coalescing, are gathered
    /// for at most this long before handlers run (0: not gathered)
    /// [default: 3s].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    coalesce_period: Option<Duration>,
    /// ...and handlers run earlier once no event came for this long
    /// [default: 1s].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    quiescent_period: Option<Duration>,
    /// Keep the members and Lamport clocks in FILE, to rejoin them after a
    /// restart without --join.
    #[arg(long, value_name = "FILE")]
    snapshot: Option<PathBuf>,
    /// After a graceful leave, still rejoin the snapshot's members at the
    /// next start.
    #[arg(long)]
    rejoin: bool,
    /// Serve the control API and status page here [default: 127.0.0.1:7373].
    #[arg(long, value_name = "ADDR", conflicts_with = "no_api")]
    api: Option<SocketAddr>,
    /// Serve no control API.
    #[arg(long)]
    no_api: bool,
    /// Require this token (`Authorization: Bearer TOKEN`) on every API
    /// request.
    #[arg(long, value_name = "TOKEN", env = "SWIM_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    /// Configuration preset [default: lan].
    #[arg(long, value_enum)]
    config: Option<Preset>,
    /// Print JSON lines instead of readable ones.
    #[arg(long)]
    json: bool,
    /// Log (stderr) as JSON lines.
    #[arg(long)]
    log_json: bool,
    /// Send every line read from stdin to the cluster as the user event
    /// `line` (each member prints it once); a line `@NAME TEXT` is sent to
    /// NAME alone, over a stream. Lines that are not UTF-8 or longer than
    /// 64 KiB are reported and skipped.
    #[arg(long)]
    broadcast: bool,
    /// Seal all traffic with this AES-256 key (32 bytes, base64; `swim
    /// keygen` makes one).
    #[arg(long, value_name = "BASE64", conflicts_with = "keyring")]
    key: Option<String>,
    /// Seal all traffic with the keys in FILE (one base64 key per line, the
    /// first the primary, at most 8; a regular file of at most 64 KiB). The
    /// file is watched: replace it (write a copy, then rename it over) to
    /// install, switch to and remove keys while running; a change is
    /// applied whole or not at all (docs/security.md).
    #[arg(long, value_name = "FILE")]
    keyring: Option<PathBuf>,
    /// Cluster label: members with another label are ignored.
    #[arg(long, value_name = "NAME")]
    label: Option<String>,
    /// Record this member's trace to FILE, for `swim replay`
    /// (docs/trace.md).
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Wire format [default: native]: `memberlist` joins HashiCorp
    /// memberlist 0.2.2 nodes, `serf` joins serf 0.9.4 agents
    /// (docs/interop.md).
    #[arg(long, value_enum)]
    dialect: Option<Dialect>,
}

/// The wire format the agent speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum Dialect {
    /// swim's own.
    #[default]
    Native,
    /// HashiCorp memberlist 0.2.2's.
    Memberlist,
    /// serf 0.9.4's, on memberlist's.
    Serf,
}

impl Dialect {
    /// `config` speaking this dialect.
    pub(crate) fn apply(self, config: lapswim_core::Config) -> lapswim_core::Config {
        match self {
            Dialect::Native => config,
            Dialect::Memberlist => config.with_memberlist_wire(true),
            Dialect::Serf => config.with_memberlist_wire(true).with_serf_wire(true),
        }
    }
}

/// The config file: the flags' settings under their long names.
#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FileConfig {
    bind: Option<SocketAddr>,
    advertise: Option<SocketAddr>,
    name: Option<String>,
    #[serde(default)]
    join: Vec<SocketAddr>,
    #[serde(default)]
    retry_join: Vec<String>,
    retry_interval: Option<String>,
    retry_max: Option<u32>,
    #[serde(default, alias = "tag")]
    tags: BTreeMap<String, String>,
    tags_file: Option<PathBuf>,
    #[serde(default, alias = "event-handlers")]
    event_handler: Vec<String>,
    handler_timeout: Option<String>,
    coalesce_period: Option<String>,
    quiescent_period: Option<String>,
    snapshot: Option<PathBuf>,
    #[serde(default)]
    rejoin: bool,
    api: Option<SocketAddr>,
    #[serde(default)]
    no_api: bool,
    api_token: Option<String>,
    config: Option<String>,
    #[serde(default)]
    json: bool,
    #[serde(default)]
    log_json: bool,
    #[serde(default)]
    broadcast: bool,
    key: Option<String>,
    keyring: Option<PathBuf>,
    label: Option<String>,
    record: Option<PathBuf>,
    dialect: Option<String>,
}

/// Where keys come from.
#[derive(Debug)]
pub(crate) enum KeySource {
    /// No encryption.
    None,
    /// One key, base64.
    Key(String),
    /// A watched keyring file.
    Keyring(PathBuf),
}

/// Everything the agent runs with, resolved.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) bind: SocketAddr,
    pub(crate) advertise: Option<SocketAddr>,
    pub(crate) name: String,
    pub(crate) join: Vec<SocketAddr>,
    pub(crate) retry_join: Vec<String>,
    pub(crate) retry_interval: Duration,
    pub(crate) retry_max: u32,
    pub(crate) tags: BTreeMap<String, String>,
    pub(crate) tags_file: Option<PathBuf>,
    pub(crate) handlers: Vec<HandlerSpec>,
    pub(crate) handler_settings: HandlerSettings,
    pub(crate) snapshot: Option<PathBuf>,
    pub(crate) rejoin: bool,
    pub(crate) api: Option<SocketAddr>,
    pub(crate) api_token: Option<String>,
    pub(crate) preset: Preset,
    pub(crate) json: bool,
    pub(crate) log_json: bool,
    pub(crate) broadcast: bool,
    pub(crate) keys: KeySource,
    pub(crate) label: Option<String>,
    pub(crate) record: Option<PathBuf>,
    pub(crate) dialect: Dialect,
}

impl Settings {
    /// The flags merged over the config file and the tags file.
    pub(crate) fn resolve(args: AgentArgs) -> Result<Settings, String> {
        let file = match &args.config_file {
            Some(path) => read_config(path)?,
            None => FileConfig::default(),
        };
        let duration = |flag: Option<Duration>, text: &Option<String>, key: &str, default: Duration| {
            let d = match (flag, text) {
                (Some(d), _) => d,
                (None, Some(t)) => {
                    humantime::parse_duration(t).map_err(|e| format!("config file: {key} = {t:?}: {e}"))?
                }
                (None, None) => default,
            };
            // Far above any sensible setting, and far below where adding
            // it to a clock reading would overflow.
            if d > MAX_DURATION {
                return Err(format!(
                    "--{key} {}: at most {}",
                    humantime::format_duration(d),
                    humantime::format_duration(MAX_DURATION)
                ));
            }
            Ok(d)
        };
        let preset = match (args.config, &file.config) {
            (Some(p), _) => p,
            (None, Some(name)) => Preset::from_str(name, true).map_err(|_| {
                let names: Vec<String> = Preset::value_variants()
                    .iter()
                    .filter_map(|p| p.to_possible_value())
                    .map(|v| v.get_name().to_owned())
                    .collect();
                format!("config file: config = {name:?} is not a preset (one of {})", names.join(", "))
            })?,
            (None, None) => Preset::default(),
        };
        let dialect = match (args.dialect, &file.dialect) {
            (Some(d), _) => d,
            (None, Some(name)) => Dialect::from_str(name, true)
                .map_err(|_| format!("config file: dialect = {name:?} is not one of native, memberlist, serf"))?,
            (None, None) => Dialect::default(),
        };
        let bind =
            args.bind.or(file.bind).ok_or("no address to bind: give --bind ADDR (or `bind` in the config file)")?;
        let name = args.name.or(file.name).ok_or("no member name: give --name NAME (or `name` in the config file)")?;
        let tags_file = args.tags_file.or(file.tags_file);
        let mut tags = match &tags_file {
            Some(path) if path.exists() => read_tags_file(path)?,
            _ => BTreeMap::new(),
        };
        tags.extend(file.tags);
        tags.extend(args.tags);
        let handlers = file
            .event_handler
            .iter()
            .chain(&args.event_handlers)
            .map(|h| h.parse::<HandlerSpec>().map_err(|e| format!("--event-handler {h:?}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let defaults = HandlerSettings::default();
        let handler_settings = HandlerSettings {
            timeout: duration(args.handler_timeout, &file.handler_timeout, "handler-timeout", defaults.timeout)?,
            coalesce_period: duration(
                args.coalesce_period,
                &file.coalesce_period,
                "coalesce-period",
                defaults.coalesce_period,
            )?,
            quiescent_period: duration(
                args.quiescent_period,
                &file.quiescent_period,
                "quiescent-period",
                defaults.quiescent_period,
            )?,
            ..defaults
        };
        let keys = match (args.key.or(file.key), args.keyring.or(file.keyring)) {
            (Some(_), Some(_)) => return Err("give --key or --keyring, not both".into()),
            (Some(k), None) => KeySource::Key(k),
            (None, Some(path)) => KeySource::Keyring(path),
            (None, None) => KeySource::None,
        };
        let no_api = args.no_api || file.no_api;
        let default_api = || DEFAULT_API.parse().expect("a valid address");
        Ok(Settings {
            bind,
            advertise: args.advertise.or(file.advertise),
            name,
            join: file.join.into_iter().chain(args.join).collect(),
            retry_join: file.retry_join.into_iter().chain(args.retry_join).collect(),
            retry_interval: duration(args.retry_interval, &file.retry_interval, "retry-interval", RETRY_INTERVAL)?,
            retry_max: args.retry_max.or(file.retry_max).unwrap_or(0),
            tags,
            tags_file,
            handlers,
            handler_settings,
            snapshot: args.snapshot.or(file.snapshot),
            rejoin: args.rejoin || file.rejoin,
            api: (!no_api).then(|| args.api.or(file.api).unwrap_or_else(default_api)),
            api_token: args.api_token.or(file.api_token).filter(|t| !t.is_empty()),
            preset,
            json: args.json || file.json,
            log_json: args.log_json || file.log_json,
            broadcast: args.broadcast || file.broadcast,
            keys,
            label: args.label.or(file.label),
            record: args.record.or(file.record),
            dialect,
        })
    }
}

/// The longest duration a setting takes: a week.
const MAX_DURATION: Duration = Duration::from_secs(7 * 24 * 3600);

/// serf's default time between retry-join attempts.
const RETRY_INTERVAL: Duration = Duration::from_secs(30);

/// The largest config or tags file read: far above any real one, and a
/// bound on what a wrong path (a device, a log) makes us hold.
const MAX_FILE: u64 = 1 << 20;

fn read_small(path: &Path, what: &str) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("{what} {}: {e}", path.display()))?;
    let mut text = String::new();
    file.take(MAX_FILE + 1).read_to_string(&mut text).map_err(|e| format!("{what} {}: {e}", path.display()))?;
    if text.len() as u64 > MAX_FILE {
        return Err(format!("{what} {}: larger than {MAX_FILE} bytes", path.display()));
    }
    Ok(text)
}

fn read_config(path: &Path) -> Result<FileConfig, String> {
    let text = read_small(path, "config file")?;
    // toml's message names the line, the column and what was expected.
    toml::from_str(&text).map_err(|e| format!("config file {}: {}", path.display(), e.to_string().trim_end()))
}

/// A tags file: one JSON object of strings, as serf's.
pub(crate) fn read_tags_file(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let text = read_small(path, "tags file")?;
    serde_json::from_str(&text)
        .map_err(|e| format!("tags file {}: expected a JSON object of strings: {e}", path.display()))
}

/// Writes a tags file whole: a copy, then renamed over, so a crash
/// leaves the old file or the new one.
pub(crate) fn write_tags_file(path: &Path, tags: &BTreeMap<String, String>) -> Result<(), String> {
    let text = serde_json::to_string_pretty(tags).map_err(|e| e.to_string())?;
    super::snapshot::write_atomically(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: AgentArgs,
    }

    fn args(flags: &[&str]) -> AgentArgs {
        Cli::try_parse_from([&["swim"], flags].concat()).expect("flags parse").args
    }

    fn temp(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("swim-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn the_config_file_holds_every_setting_and_flags_win() {
        let path = temp(
            "full.toml",
            r#"
bind = "127.0.0.1:7946"
name = "from-file"
join = ["127.0.0.1:7000"]
retry-join = ["seeds.example:7946"]
retry-interval = "5s"
retry-max = 3
tags = { role = "web", dc = "eu" }
event-handler = ["user:deploy=./deploy.sh"]
coalesce-period = "0s"
snapshot = "/var/lib/swim/snapshot"
api = "127.0.0.1:8000"
config = "wan"
label = "prod"
"#,
        );
        let file = path.to_str().unwrap();
        let s = Settings::resolve(args(&[
            "--config-file",
            file,
            "--name",
            "flag",
            "--tag",
            "role=db",
            "--join",
            "127.0.0.1:7001",
        ]))
        .unwrap();
        assert_eq!(s.name, "flag");
        assert_eq!(s.bind, "127.0.0.1:7946".parse().unwrap());
        assert_eq!(s.join.len(), 2, "lists add up");
        assert_eq!(s.retry_join, ["seeds.example:7946"]);
        assert_eq!((s.retry_interval, s.retry_max), (Duration::from_secs(5), 3));
        assert_eq!(s.tags["role"], "db", "a flag wins");
        assert_eq!(s.tags["dc"], "eu");
        assert_eq!(s.handlers.len(), 1);
        assert_eq!(s.handler_settings.coalesce_period, Duration::ZERO);
        assert_eq!(s.api, Some("127.0.0.1:8000".parse().unwrap()));
        assert_eq!(s.preset, Preset::Wan);
        assert_eq!(s.label.as_deref(), Some("prod"));
    }

    #[test]
    fn a_malformed_config_file_is_one_clear_error() {
        for (text, expect) in [
            ("bind = ", "config file"),
            ("bnid = \"127.0.0.1:1\"", "bnid"),
            ("bind = \"not an address\"", "bind"),
            ("retry-interval = \"soon\"\nbind = \"127.0.0.1:1\"\nname = \"x\"", "retry-interval"),
            ("config = \"moon\"\nbind = \"127.0.0.1:1\"\nname = \"x\"", "not a preset"),
            ("event-handler = [\"member-jion=x\"]\nbind = \"127.0.0.1:1\"\nname = \"x\"", "member-jion"),
        ] {
            let path = temp("bad.toml", text);
            let e = Settings::resolve(args(&["--config-file", path.to_str().unwrap()])).unwrap_err();
            assert!(e.contains(expect), "{text:?}: {e}");
            assert!(!e.contains('\n') || e.lines().count() < 8, "short: {e}");
        }
        let e = Settings::resolve(args(&["--config-file", "/nonexistent/agent.toml"])).unwrap_err();
        assert!(e.contains("/nonexistent/agent.toml"), "{e}");
    }

    #[test]
    fn durations_past_a_week_are_refused() {
        for flag in ["--handler-timeout", "--coalesce-period", "--quiescent-period", "--retry-interval"] {
            let e =
                Settings::resolve(args(&["--bind", "127.0.0.1:0", "--name", "x", flag, "500000000000y"])).unwrap_err();
            assert!(e.contains("at most 7days"), "{flag}: {e}");
        }
    }

    #[test]
    fn tags_come_from_the_tags_file_then_the_flags() {
        let path = temp("tags.json", r#"{"role": "web", "zone": "a"}"#);
        let s = Settings::resolve(args(&[
            "--bind",
            "127.0.0.1:0",
            "--name",
            "x",
            "--tags-file",
            path.to_str().unwrap(),
            "--tag",
            "zone=b",
        ]))
        .unwrap();
        assert_eq!(s.tags.get("role").map(String::as_str), Some("web"));
        assert_eq!(s.tags.get("zone").map(String::as_str), Some("b"));
        write_tags_file(&path, &s.tags).unwrap();
        assert_eq!(read_tags_file(&path).unwrap(), s.tags);
        let bad = temp("bad-tags.json", "[1, 2]");
        let e =
            Settings::resolve(args(&["--bind", "127.0.0.1:0", "--name", "x", "--tags-file", bad.to_str().unwrap()]))
                .unwrap_err();
        assert!(e.contains("JSON object"), "{e}");
    }
}
