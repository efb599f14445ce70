//! The client commands: `swim members`, `event`, `query`, `tags`,
//! `keys`, `join`, `leave`, `force-leave`, `info`, `reachability`, `rtt`
//! and `monitor`, each one request to a running agent's control API
//! (docs/api.md). Every failure is one line and a non-zero exit.

use std::collections::BTreeMap;
use std::io::BufRead;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

/// Where the agent's API is, and its token: the same for every command.
#[derive(Args, Debug, Clone)]
pub(crate) struct ApiArgs {
    /// The agent's API address.
    #[arg(long, value_name = "ADDR", env = "SWIM_API", default_value = crate::agent::DEFAULT_API)]
    api: String,
    /// The agent's API token, if it requires one.
    #[arg(long, value_name = "TOKEN", env = "SWIM_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
}

/// The client commands.
#[derive(Subcommand, Debug)]
pub(crate) enum ClientCommand {
    /// List the members a running agent knows.
    Members(MembersArgs),
    /// Send a named user event to every member.
    Event(EventArgs),
    /// Ask members a question; print acks and answers as they arrive.
    Query(QueryArgs),
    /// Set or delete this agent's tags (spread to the cluster).
    Tags(TagsArgs),
    /// Change every member's keyring, or list the keys in use.
    Keys(KeysArgs),
    /// Join the cluster through these members.
    Join(JoinArgs),
    /// Have the agent leave the cluster gracefully and stop.
    Leave(LeaveArgs),
    /// Declare a failed member departed (it stops being retried).
    ForceLeave(ForceLeaveArgs),
    /// Show the agent's name, address, tags and counts.
    Info(JsonFlag),
    /// Check which members answer an internal ping.
    Reachability(JsonFlag),
    /// Estimate the round trip between two members from their network
    /// coordinates.
    Rtt(RttArgs),
    /// Stream the agent's events and log lines.
    Monitor(MonitorArgs),
}

/// `swim leave` flags.
#[derive(Args, Debug)]
pub(crate) struct LeaveArgs {
    #[command(flatten)]
    api: ApiArgs,
}

/// `--json`.
#[derive(Args, Debug)]
pub(crate) struct JsonFlag {
    #[command(flatten)]
    api: ApiArgs,
    /// Print the answer as JSON.
    #[arg(long)]
    json: bool,
}

/// `swim members` flags.
#[derive(Args, Debug)]
pub(crate) struct MembersArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// Only members in this status: alive, suspect, failed or left
    /// (repeat, or comma-separate, for several).
    #[arg(long, value_name = "STATUS", value_delimiter = ',')]
    status: Vec<String>,
    /// Only members whose name this regular expression matches.
    #[arg(long, value_name = "REGEX")]
    name: Option<String>,
    /// Only members with tag K whose value this regular expression matches
    /// whole (repeat for several).
    #[arg(long = "tag", value_name = "K=REGEX")]
    tags: Vec<String>,
    /// Print a JSON array of objects with name, addr, status, tags,
    /// coordinate and rtt_ms, among others.
    #[arg(long)]
    json: bool,
}

/// `swim rtt` arguments.
#[derive(Args, Debug)]
pub(crate) struct RttArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// A member.
    a: String,
    /// The other member [default: the agent itself].
    b: Option<String>,
    /// Print the agent's answer as JSON.
    #[arg(long)]
    json: bool,
}

/// `swim event` arguments.
#[derive(Args, Debug)]
pub(crate) struct EventArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// The event's name.
    name: String,
    /// Its payload.
    #[arg(default_value = "")]
    payload: String,
    /// Let handlers coalesce events of this name (only the latest runs).
    #[arg(long)]
    coalesce: bool,
}

/// `swim query` arguments.
#[derive(Args, Debug)]
pub(crate) struct QueryArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// The query's name.
    name: String,
    /// Its payload.
    #[arg(default_value = "")]
    payload: String,
    /// Ask only this member (repeat for several).
    #[arg(long = "node", value_name = "NAME")]
    nodes: Vec<String>,
    /// Ask only members with tag K matching this regular expression (repeat
    /// for several).
    #[arg(long = "tag", value_name = "K=REGEX")]
    tags: Vec<String>,
    /// How long to wait for answers [default: from the cluster's size].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    timeout: Option<core::time::Duration>,
    /// Ask for no acknowledgements.
    #[arg(long)]
    no_ack: bool,
    /// Send each answer through this many other members too (0–5).
    #[arg(long, value_name = "K", default_value_t = 0)]
    relay_factor: u8,
    /// Print JSON lines.
    #[arg(long)]
    json: bool,
}

/// `swim tags` flags.
#[derive(Args, Debug)]
pub(crate) struct TagsArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// Set tag K to V (repeat for several).
    #[arg(long, value_name = "K=V", value_parser = crate::output::parse_meta)]
    set: Vec<(String, String)>,
    /// Delete tag K (repeat for several).
    #[arg(long, value_name = "K")]
    delete: Vec<String>,
}

/// `swim keys` flags.
#[derive(Args, Debug)]
pub(crate) struct KeysArgs {
    #[command(flatten)]
    api: ApiArgs,
    #[command(flatten)]
    op: KeyOp,
}

/// `swim keys`' operation: exactly one.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub(crate) struct KeyOp {
    /// Install KEY (base64) on every member.
    #[arg(long, value_name = "KEY")]
    install: Option<String>,
    /// Make KEY every member's primary.
    #[arg(long = "use", value_name = "KEY")]
    use_key: Option<String>,
    /// Remove KEY from every member.
    #[arg(long, value_name = "KEY")]
    remove: Option<String>,
    /// List the keys in use and how many members hold each.
    #[arg(long)]
    list: bool,
}

/// `swim join` arguments.
#[derive(Args, Debug)]
pub(crate) struct JoinArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// Members to join through: IP:PORT, HOST:PORT or HOST (port 7946).
    #[arg(required = true, value_name = "ADDR")]
    addrs: Vec<String>,
}

/// `swim force-leave` arguments.
#[derive(Args, Debug)]
pub(crate) struct ForceLeaveArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// The failed member.
    name: String,
    /// Also have every member forget it now.
    #[arg(long)]
    prune: bool,
}

/// `swim monitor` flags.
#[derive(Args, Debug)]
pub(crate) struct MonitorArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// Log lines at this level and above: error, warn, info, debug.
    #[arg(long, default_value = "info")]
    log_level: String,
    /// Print JSON lines.
    #[arg(long)]
    json: bool,
}

/// Runs one client command.
pub(crate) fn run(command: ClientCommand) -> Result<(), String> {
    let api = match &command {
        ClientCommand::Members(a) => &a.api,
        ClientCommand::Event(a) => &a.api,
        ClientCommand::Query(a) => &a.api,
        ClientCommand::Tags(a) => &a.api,
        ClientCommand::Keys(a) => &a.api,
        ClientCommand::Join(a) => &a.api,
        ClientCommand::Leave(a) => &a.api,
        ClientCommand::ForceLeave(a) => &a.api,
        ClientCommand::Info(a) | ClientCommand::Reachability(a) => &a.api,
        ClientCommand::Rtt(a) => &a.api,
        ClientCommand::Monitor(a) => &a.api,
    };
    let c = Client::new(api);
    match command {
        ClientCommand::Members(a) => members(&c, &a),
        ClientCommand::Event(a) => {
            c.post("/v1/event", &json!({ "name": a.name, "payload": a.payload, "coalesce": a.coalesce }))?;
            say!("event {} sent", a.name);
            Ok(())
        }
        ClientCommand::Query(a) => query(&c, a),
        ClientCommand::Tags(a) => {
            if a.set.is_empty() && a.delete.is_empty() {
                return Err("give --set K=V or --delete K".into());
            }
            let set: BTreeMap<String, String> = a.set.into_iter().collect();
            let v = c.post("/v1/tags", &json!({ "set": set, "delete": a.delete }))?;
            say!("tags now: {}", tag_text(&v["tags"]));
            Ok(())
        }
        ClientCommand::Keys(a) => keys(&c, a),
        ClientCommand::Join(a) => {
            let v = c.post("/v1/join", &json!({ "addrs": a.addrs }))?;
            say!("joined through {}", v["seed"].as_str().unwrap_or("?"));
            Ok(())
        }
        ClientCommand::Leave(_) => {
            c.post("/v1/leave", &json!({}))?;
            say!("left the cluster; the agent has stopped");
            Ok(())
        }
        ClientCommand::ForceLeave(a) => {
            let v = c.post("/v1/force-leave", &json!({ "name": a.name, "prune": a.prune }))?;
            if v["pruned"] == true {
                let acked = v["acked"].as_array().map_or(0, Vec::len);
                say!("{} forced to leave and pruned by {acked} members; silent: {}", a.name, list(&v["silent"]));
            } else {
                say!("{} forced to leave", a.name);
            }
            Ok(())
        }
        ClientCommand::Info(f) => {
            let v = c.get("/v1/info")?;
            if f.json {
                say!("{v}");
            } else {
                say!("name:    {}", v["name"].as_str().unwrap_or("?"));
                say!("address: {}", v["addr"].as_str().unwrap_or("?"));
                say!("tags:    {}", tag_text(&v["tags"]));
                let m = &v["members"];
                say!(
                    "members: {} alive, {} suspect, {} failed, {} left",
                    m["alive"],
                    m["suspect"],
                    m["failed"],
                    m["left"]
                );
                say!("clocks:  events {}, queries {}", v["event_time"], v["query_time"]);
            }
            Ok(())
        }
        ClientCommand::Reachability(f) => {
            let v = c.post("/v1/reachability", &json!({}))?;
            if f.json {
                say!("{v}");
            } else {
                let acked = v["acked"].as_array().map_or(0, Vec::len);
                say!("{acked} members acknowledged; silent: {}", list(&v["silent"]));
            }
            Ok(())
        }
        ClientCommand::Rtt(a) => rtt(&c, &a),
        ClientCommand::Monitor(a) => {
            let path = format!("/v1/monitor?level={}", a.log_level);
            c.stream_get(&path, |v| {
                if a.json {
                    say!("{v}");
                } else {
                    say!("{}", monitor_line(&v));
                }
            })
        }
    }
}

fn members(c: &Client, a: &MembersArgs) -> Result<(), String> {
    let mut q: Vec<(&str, String)> = Vec::new();
    if !a.status.is_empty() {
        q.push(("status", a.status.join(",")));
    }
    if let Some(n) = &a.name {
        q.push(("name", n.clone()));
    }
    for t in &a.tags {
        q.push(("tag", t.clone()));
    }
    let query = serde_urlencoded::to_string(&q).map_err(|e| e.to_string())?;
    let v = c.get(&format!("/v1/members?{query}"))?;
    let members = v.as_array().ok_or("the agent's answer is not a list")?;
    if a.json {
        say!("{v}");
        return Ok(());
    }
    for m in members {
        let text = |k: &str| crate::output::escape_controls(m[k].as_str().unwrap_or("?"));
        say!("{:<20} {:<22} {:<8} {}", text("name"), text("addr"), text("status"), tag_text(&m["tags"]));
    }
    Ok(())
}

/// Serf's `rtt` line: the estimate, to the microsecond, and where it
/// came from (coordinates only, never a measurement).
fn rtt(c: &Client, a: &RttArgs) -> Result<(), String> {
    let mut q = vec![("a", a.a.as_str())];
    q.extend(a.b.as_deref().map(|b| ("b", b)));
    let query = serde_urlencoded::to_string(&q).map_err(|e| e.to_string())?;
    let v = c.get(&format!("/v1/rtt?{query}"))?;
    if a.json {
        say!("{v}");
        return Ok(());
    }
    let ms = v["rtt_ms"].as_f64().ok_or("the agent's answer has no rtt_ms")?;
    let name = |k: &str| crate::output::escape_controls(v[k].as_str().unwrap_or("?"));
    say!("Estimated {} <-> {} rtt: {ms:.3} ms (using coordinates)", name("a"), name("b"));
    Ok(())
}

fn query(c: &Client, a: QueryArgs) -> Result<(), String> {
    let mut tags = BTreeMap::new();
    for t in &a.tags {
        let (k, re) = t.split_once('=').ok_or_else(|| format!("--tag {t:?}: expected K=REGEX"))?;
        tags.insert(k.to_owned(), re.to_owned());
    }
    let body = json!({
        "name": a.name, "payload": a.payload, "nodes": a.nodes, "tags": tags,
        "timeout_ms": a.timeout.map(|t| t.as_millis() as u64), "ack": !a.no_ack, "relay_factor": a.relay_factor,
    });
    c.stream_post("/v1/query", &body, |v| {
        if a.json {
            say!("{v}");
            return;
        }
        match v["type"].as_str() {
            Some("ack") => say!("ack from {}", v["from"].as_str().unwrap_or("?")),
            Some("response") => say!(
                "response from {}: {}",
                v["from"].as_str().unwrap_or("?"),
                crate::output::escape_controls(v["payload"].as_str().unwrap_or("").trim_end_matches('\n'))
            ),
            Some("done") => say!("done: {} acks, {} responses", v["acks"], v["responses"]),
            _ => {}
        }
    })
}

fn keys(c: &Client, a: KeysArgs) -> Result<(), String> {
    let (op, key) = match (a.op.install, a.op.use_key, a.op.remove) {
        (Some(k), _, _) => ("install", Some(k)),
        (_, Some(k), _) => ("use", Some(k)),
        (_, _, Some(k)) => ("remove", Some(k)),
        _ => ("list", None),
    };
    let v = c.post("/v1/keys", &json!({ "op": op, "key": key }))?;
    let acked = v["acked"].as_array().map_or(0, Vec::len);
    let failed = v["failed"].as_array().cloned().unwrap_or_default();
    say!("{op}: {acked} members done, {} failed, silent: {}", failed.len(), list(&v["silent"]));
    for f in &failed {
        say!("  {} failed: {}", f["member"].as_str().unwrap_or("?"), f["error"].as_str().unwrap_or("?"));
    }
    for k in v["keys"].as_array().into_iter().flatten() {
        say!("  key {} held by {} members", k["fingerprint"].as_str().unwrap_or("?"), k["members"]);
    }
    if !failed.is_empty() {
        return Err(format!("{} members could not {op} the key", failed.len()));
    }
    Ok(())
}

fn tag_text(tags: &Value) -> String {
    let pairs: Vec<String> =
        tags.as_object().into_iter().flatten().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect();
    crate::output::escape_controls(&pairs.join(","))
}

fn list(names: &Value) -> String {
    let names: Vec<&str> = names.as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    if names.is_empty() { "none".into() } else { names.join(", ") }
}

fn monitor_line(v: &Value) -> String {
    let time = v["time"].as_str().unwrap_or("");
    let text = if v["event"] == "log" {
        format!("[{}] {}", v["level"].as_str().unwrap_or("?"), v["message"].as_str().unwrap_or(""))
    } else {
        let mut fields = v.as_object().cloned().unwrap_or_default();
        let event = fields.remove("event").and_then(|e| e.as_str().map(str::to_owned)).unwrap_or_default();
        fields.remove("time");
        fields.remove("node");
        format!("{event} {}", Value::Object(fields))
    };
    crate::output::escape_controls(&format!("{time} {text}"))
}

/// A connection to the agent's API.
struct Client {
    base: String,
    api: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Client {
    fn new(api: &ApiArgs) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(core::time::Duration::from_secs(5)))
            .build()
            .into();
        let base = if api.api.starts_with("http://") { api.api.clone() } else { format!("http://{}", api.api) };
        Client { base, api: api.api.clone(), token: api.api_token.clone(), agent }
    }

    fn unreachable(&self, e: &ureq::Error) -> String {
        format!(
            "cannot reach the agent's API at {} ({e}): is `swim agent` running there? (--api or SWIM_API choose \
             another address)",
            self.api
        )
    }

    fn get(&self, path: &str) -> Result<Value, String> {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let resp = req.call().map_err(|e| self.unreachable(&e))?;
        self.json(resp)
    }

    fn post(&self, path: &str, body: &Value) -> Result<Value, String> {
        let resp = self.send(path, body)?;
        self.json(resp)
    }

    fn send(&self, path: &str, body: &Value) -> Result<ureq::http::Response<ureq::Body>, String> {
        let mut req = self.agent.post(format!("{}{path}", self.base)).header("Content-Type", "application/json");
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        req.send(body.to_string()).map_err(|e| self.unreachable(&e))
    }

    /// The JSON answer, or the agent's error line.
    fn json(&self, mut resp: ureq::http::Response<ureq::Body>) -> Result<Value, String> {
        let status = resp.status();
        let text = resp.body_mut().read_to_string().map_err(|e| format!("reading the agent's answer: {e}"))?;
        let v: Value = serde_json::from_str(&text).map_err(|_| format!("the agent answered {status}: {text}"))?;
        if !status.is_success() {
            return Err(v["error"].as_str().map_or_else(|| format!("the agent answered {status}"), str::to_owned));
        }
        Ok(v)
    }

    fn stream_get(&self, path: &str, each: impl FnMut(Value)) -> Result<(), String> {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let resp = req.call().map_err(|e| self.unreachable(&e))?;
        self.lines(resp, each)
    }

    fn stream_post(&self, path: &str, body: &Value, each: impl FnMut(Value)) -> Result<(), String> {
        let resp = self.send(path, body)?;
        self.lines(resp, each)
    }

    /// Calls `each` with every JSON line of a streamed answer.
    fn lines(&self, resp: ureq::http::Response<ureq::Body>, mut each: impl FnMut(Value)) -> Result<(), String> {
        if !resp.status().is_success() {
            return self.json(resp).map(drop);
        }
        let reader = std::io::BufReader::new(resp.into_body().into_reader());
        for line in reader.lines() {
            let line = line.map_err(|e| format!("the agent's stream broke: {e}"))?;
            if line.is_empty() {
                continue;
            }
            let v = serde_json::from_str(&line).map_err(|e| format!("the agent sent a line that is not JSON ({e})"))?;
            each(v);
        }
        Ok(())
    }
}
