//! The agent's control API (docs/api.md): HTTP with JSON bodies on a
//! local address, an optional bearer token, streams as JSON lines or
//! server-sent events, and the status page.
//!
//! Every refusal is a JSON object `{"error": "..."}` with a 4xx or 5xx
//! status, so a client can show one clear line. Bodies are bounded
//! ([`MAX_BODY`]); nothing a request carries is held beyond it.

use core::convert::Infallible;
use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use lapswim_core::{Event, MemberName, QueryFilter, QueryId, QueryOptions, QueryReport, Tags};
use lapswim_node::{KeyringOp, NodeError};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tracing::level_filters::LevelFilter;

use super::shared::{Control, Counters, Shared, coordinate_json, member_json, millis, status};

/// The largest request body taken: far above any command (an event or a
/// query is at most a few KiB), far below what would hurt.
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// The page, served as it is.
const INDEX_HTML: &str = include_str!("page/index.html");
const APP_JS: &str = include_str!("page/app.js");
const STYLE_CSS: &str = include_str!("page/style.css");

/// Serves the API on `listener` until `shutdown` completes.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let api = Router::new()
        .route("/v1/info", get(info))
        .route("/v1/members", get(members))
        .route("/v1/rtt", get(rtt))
        .route("/v1/event", post(event))
        .route("/v1/query", post(query))
        .route("/v1/tags", post(tags))
        .route("/v1/keys", post(keys))
        .route("/v1/join", post(join))
        .route("/v1/leave", post(leave))
        .route("/v1/force-leave", post(force_leave))
        .route("/v1/reachability", post(reachability))
        .route("/v1/monitor", get(monitor))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(shared.clone(), authorize));
    let app = Router::new()
        .route("/", get(|| async { page("text/html; charset=utf-8", INDEX_HTML) }))
        .route("/app.js", get(|| async { page("text/javascript; charset=utf-8", APP_JS) }))
        .route("/style.css", get(|| async { page("text/css; charset=utf-8", STYLE_CSS) }))
        .merge(api)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such endpoint (docs/api.md lists them)") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "wrong method for this endpoint (docs/api.md)")
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(shared);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

fn page(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// A refusal: a status and one line.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into() }
    }

    fn bad(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(json!({ "error": self.message }))).into_response()
    }
}

impl From<NodeError> for ApiError {
    fn from(e: NodeError) -> Self {
        let status = match e {
            NodeError::Stopped => StatusCode::SERVICE_UNAVAILABLE,
            NodeError::JoinFailed => StatusCode::BAD_GATEWAY,
            NodeError::Protocol(lapswim_core::Error::Busy) => StatusCode::TOO_MANY_REQUESTS,
            NodeError::Protocol(lapswim_core::Error::Leaving) => StatusCode::CONFLICT,
            NodeError::Protocol(_) => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

type ApiResult = Result<Response, ApiError>;

fn ok(v: Value) -> ApiResult {
    Ok(axum::Json(v).into_response())
}

/// Compares in a time that depends on the guess's length only, never on
/// how much of it was right or on the token's length.
fn same(guess: &str, token: &str) -> bool {
    let (g, t) = (guess.as_bytes(), token.as_bytes());
    if t.is_empty() {
        return g.is_empty();
    }
    let differ = g.iter().enumerate().fold(0u8, |d, (i, &x)| d | (x ^ t[i % t.len()]));
    differ == 0 && g.len() == t.len()
}

/// Counts every request and refuses those without the token (when one is
/// set): `Authorization: Bearer TOKEN`, or `?token=TOKEN` for browsers'
/// event streams, which cannot send headers.
async fn authorize(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    Counters::bump(&shared.counters.api_requests);
    if let Err(e) = same_site(&req) {
        Counters::bump(&shared.counters.api_refused);
        return e.into_response();
    }
    if let Some(token) = &shared.token {
        let bearer = req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let bearer = bearer.and_then(|v| v.strip_prefix("Bearer ")).map(str::to_owned);
        let given =
            bearer.or_else(|| query_pairs(req.uri().query()).into_iter().find(|(k, _)| k == "token").map(|(_, v)| v));
        if !given.is_some_and(|g| same(&g, token)) {
            Counters::bump(&shared.counters.api_refused);
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "wrong or missing API token (give --api-token or SWIM_API_TOKEN)",
            )
            .into_response();
        }
    }
    let response = next.run(req).await;
    if response.status().is_client_error() {
        Counters::bump(&shared.counters.api_refused);
    }
    response
}

/// Refuses what a web page elsewhere could make a browser send: a page may
/// aim a form or a `text/plain` request at a local address without asking
/// (no preflight), and a name it controls may be rebound to 127.0.0.1. So
/// the `Host` must be an address or `localhost` (not a name someone else
/// resolves), an `Origin`, when sent, must be this very host, and a POST
/// must say `Content-Type: application/json`, which a browser sends
/// across sites only after a preflight this API never grants.
fn same_site(req: &Request) -> Result<(), ApiError> {
    let forbidden = |why: &str| Err(ApiError::new(StatusCode::FORBIDDEN, why));
    let header = |name| req.headers().get(name).and_then(|v: &axum::http::HeaderValue| v.to_str().ok());
    let host = header(header::HOST).unwrap_or("");
    let bare = host.rsplit_once(':').filter(|(_, port)| port.parse::<u16>().is_ok()).map_or(host, |(h, _)| h);
    let bare = bare.trim_start_matches('[').trim_end_matches(']');
    if !(bare.is_empty() || bare.eq_ignore_ascii_case("localhost") || bare.parse::<core::net::IpAddr>().is_ok()) {
        return forbidden("the Host header must be an address or localhost (a name could be rebound to this agent)");
    }
    if let Some(origin) = header(header::ORIGIN)
        && origin != "null"
        && origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) != Some(host)
    {
        return forbidden("requests from another site's pages are refused");
    }
    if req.method() == axum::http::Method::POST {
        let json = header(header::CONTENT_TYPE)
            .is_some_and(|c| c.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")));
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "a POST must send Content-Type: application/json",
            ));
        }
    }
    Ok(())
}

/// A query string's pairs, decoded; a malformed one is no pairs.
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query.and_then(|q| serde_urlencoded::from_str(q).ok()).unwrap_or_default()
}

/// A JSON body of type `T`, or the reason it is not one.
fn body<T: DeserializeOwned>(bytes: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let bytes = bytes.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("request body larger than {MAX_BODY} bytes"))
        }
        status => ApiError::new(status, e.body_text()),
    })?;
    let bytes = if bytes.is_empty() { Bytes::from_static(b"{}") } else { bytes };
    serde_json::from_slice(&bytes).map_err(|e| ApiError::bad(format!("request body: {e}")))
}

async fn info(State(shared): State<Arc<Shared>>) -> ApiResult {
    let members = shared.node.members().await?;
    let stats = shared.node.stats().await?;
    let mut counts: BTreeMap<&str, usize> =
        ["alive", "suspect", "failed", "left"].into_iter().map(|s| (s, 0)).collect();
    for m in &members {
        *counts.entry(status(m.state)).or_default() += 1;
    }
    let me = members.iter().find(|m| m.is_local);
    ok(json!({
        "name": shared.name,
        "addr": shared.node.addr(),
        "api": shared.api.lock().ok().and_then(|a| *a),
        "version": env!("CARGO_PKG_VERSION"),
        "tags": me.map(super::shared::tags_map).unwrap_or_default(),
        "incarnation": me.map(|m| m.incarnation),
        "coordinate": coordinate_json(me.and_then(|m| m.coordinate)),
        "members": counts,
        "event_time": stats.event_time,
        "query_time": stats.query_time,
        "handlers_dropped": shared.handlers.dropped(),
    }))
}

/// `?status=alive,failed&name=RE&tag=K=RE`: a member is listed when it
/// passes every filter given (a name regex matches anywhere in the name;
/// a tag regex must match the whole value, as serf's).
async fn members(State(shared): State<Arc<Shared>>, RawQuery(q): RawQuery) -> ApiResult {
    let mut statuses: Vec<String> = Vec::new();
    let mut name = None;
    let mut tags = Vec::new();
    for (k, v) in query_pairs(q.as_deref()) {
        match k.as_str() {
            "status" => statuses.extend(v.split(',').map(str::to_owned)),
            "name" => name = Some(regex::Regex::new(&v).map_err(|e| ApiError::bad(format!("name filter: {e}")))?),
            "tag" => {
                let (key, re) =
                    v.split_once('=').ok_or_else(|| ApiError::bad(format!("tag filter {v:?}: expected K=REGEX")))?;
                let re = regex::Regex::new(&format!("^(?:{re})$"))
                    .map_err(|e| ApiError::bad(format!("tag filter {key}: {e}")))?;
                tags.push((key.to_owned(), re));
            }
            "token" => {}
            other => return Err(ApiError::bad(format!("unknown filter {other:?} (status, name, tag)"))),
        }
    }
    for s in &statuses {
        if !["alive", "suspect", "failed", "left"].contains(&s.as_str()) {
            return Err(ApiError::bad(format!("unknown status {s:?} (alive, suspect, failed, left)")));
        }
    }
    let all = shared.node.members().await?;
    let listed: Vec<Value> = all
        .iter()
        .filter(|m| statuses.is_empty() || statuses.iter().any(|s| s == status(m.state)))
        .filter(|m| name.as_ref().is_none_or(|re| re.is_match(m.name.as_str())))
        .filter(|m| tags.iter().all(|(k, re)| m.tags.get(k).is_some_and(|v| re.is_match(v))))
        .map(|m| member_json(m, shared.since(m.name.as_str())))
        .collect();
    ok(Value::Array(listed))
}

/// `?a=NAME&b=NAME`: the round trip between two members that their
/// coordinates predict (serf's `rtt`); `b` is this agent when absent.
/// Either may be any member this agent holds a coordinate for: one it has
/// exchanged probes with, or itself.
async fn rtt(State(shared): State<Arc<Shared>>, RawQuery(q): RawQuery) -> ApiResult {
    let (mut a, mut b) = (None, None);
    for (k, v) in query_pairs(q.as_deref()) {
        match k.as_str() {
            "a" => a = Some(v),
            "b" => b = Some(v),
            "token" => {}
            other => return Err(ApiError::bad(format!("unknown parameter {other:?} (a, b)"))),
        }
    }
    let a = a.ok_or_else(|| ApiError::bad("give the member to estimate for: ?a=NAME"))?;
    let b = b.unwrap_or_else(|| shared.name.clone());
    let (ca, cb) = (coordinate_of(&shared, &a).await?, coordinate_of(&shared, &b).await?);
    ok(json!({
        "a": a,
        "b": b,
        "rtt_ms": millis(ca.estimate_rtt(&cb)),
        "a_error": ca.error(),
        "b_error": cb.error(),
    }))
}

/// The coordinate this agent holds for member `name`; a 404 when the
/// name is not in the table, or no probe with it has brought one yet.
async fn coordinate_of(shared: &Shared, name: &str) -> Result<lapswim_core::Coordinate, ApiError> {
    let m = shared.node.member(name).await?;
    let m = m.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no member {name}")))?;
    m.coordinate.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no coordinate for {name} yet")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventBody {
    name: String,
    #[serde(default)]
    payload: String,
    #[serde(default)]
    coalesce: bool,
}

async fn event(State(shared): State<Arc<Shared>>, bytes: Result<Bytes, BytesRejection>) -> ApiResult {
    let b: EventBody = body(bytes)?;
    if b.name.is_empty() {
        return Err(ApiError::bad("an event needs a name"));
    }
    shared.node.event(&b.name, b.payload.into_bytes(), b.coalesce).await?;
    ok(json!({}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryBody {
    name: String,
    #[serde(default)]
    payload: String,
    #[serde(default)]
    nodes: Vec<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    /// Milliseconds; the cluster-size default when absent.
    timeout_ms: Option<u64>,
    #[serde(default = "yes")]
    ack: bool,
    #[serde(default)]
    relay_factor: u8,
}

fn yes() -> bool {
    true
}

/// Asks, then streams the acks and answers as JSON lines as they arrive:
/// `{"type":"query","id":..}`, then `{"type":"ack","from":..}` and
/// `{"type":"response","from":..,"payload":..}`, then
/// `{"type":"done","acks":N,"responses":N}`.
async fn query(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    bytes: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let b: QueryBody = body(bytes)?;
    let mut filter = QueryFilter::all();
    for n in &b.nodes {
        filter = filter.node(MemberName::new(n).map_err(|_| ApiError::bad(format!("{n:?} is not a member name")))?);
    }
    for (k, re) in &b.tags {
        // Checked here for a clear message; the node checks it again.
        regex::Regex::new(re).map_err(|e| ApiError::bad(format!("tag filter {k}: {e}")))?;
        filter = filter.tag(k.clone(), re.clone());
    }
    let mut options = QueryOptions::default().with_filter(filter).with_ack(b.ack).with_relay_factor(b.relay_factor);
    if let Some(ms) = b.timeout_ms {
        options = options.with_timeout(lapswim_core::Duration::from_millis(ms));
    }
    let id = shared.node.query(&b.name, b.payload.into_bytes(), options).await?;
    let rx = shared.claim(id);
    let first = json!({ "type": "query", "id": id.get() });
    let lines =
        futures_lite::stream::unfold((Some(first), rx, 0u64, 0u64), |(first, mut rx, acks, answers)| async move {
            if let Some(line) = first {
                return Some((line, (None, rx, acks, answers)));
            }
            loop {
                match rx.recv().await? {
                    Event::QueryAck { from, .. } => {
                        let line = json!({ "type": "ack", "from": from.as_str() });
                        return Some((line, (None, rx, acks + 1, answers)));
                    }
                    Event::QueryResponse { from, payload, .. } => {
                        let line = json!({
                            "type": "response", "from": from.as_str(), "payload": String::from_utf8_lossy(&payload),
                        });
                        return Some((line, (None, rx, acks, answers + 1)));
                    }
                    Event::QueryDone { .. } => {
                        let line = json!({ "type": "done", "acks": acks, "responses": answers });
                        // Closed: the next turn ends the stream.
                        rx.close();
                        return Some((line, (None, rx, acks, answers)));
                    }
                    _ => {}
                }
            }
        });
    Ok(stream(&headers, lines))
}

/// Whether the client asked for server-sent events.
fn wants_sse(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/event-stream"))
}

/// A stream of JSON values as server-sent events when the client asked
/// for them, else as JSON lines.
fn stream(headers: &HeaderMap, values: impl futures_lite::Stream<Item = Value> + Send + 'static) -> Response {
    if wants_sse(headers) {
        use futures_lite::StreamExt;
        let events = values.map(|v| Ok::<_, Infallible>(SseEvent::default().data(v.to_string())));
        return Sse::new(events).keep_alive(KeepAlive::default()).into_response();
    }
    json_lines(values)
}

/// A stream of JSON values as a JSON-lines body.
fn json_lines(values: impl futures_lite::Stream<Item = Value> + Send + 'static) -> Response {
    use futures_lite::StreamExt;
    let body = Body::from_stream(values.map(|v| Ok::<_, Infallible>(format!("{v}\n"))));
    ([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response()
}

/// Waits for the report of our internal query `id`.
async fn report(shared: &Shared, id: QueryId) -> Result<QueryReport, ApiError> {
    let mut rx = shared.claim(id);
    while let Some(e) = rx.recv().await {
        match e {
            Event::Report { report, .. } => return Ok(report),
            Event::QueryDone { .. } => break,
            _ => {}
        }
    }
    Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "the query ended without a report"))
}

fn names(list: &[MemberName]) -> Vec<&str> {
    list.iter().map(MemberName::as_str).collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TagsBody {
    #[serde(default)]
    set: BTreeMap<String, String>,
    #[serde(default)]
    delete: Vec<String>,
}

async fn tags(State(shared): State<Arc<Shared>>, bytes: Result<Bytes, BytesRejection>) -> ApiResult {
    let b: TagsBody = body(bytes)?;
    let _one_at_a_time = shared.tags_lock.lock().await;
    let mut tags = shared.own_tags().await;
    for k in &b.delete {
        tags.remove(k);
    }
    for (k, v) in b.set {
        if k.is_empty() {
            return Err(ApiError::bad("a tag needs a key"));
        }
        tags.insert(k, v);
    }
    let encoded: Tags = tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    shared.node.set_tags(encoded).await?;
    shared.set_self(&tags);
    if let Some(path) = &shared.tags_file {
        super::settings::write_tags_file(path, &tags)
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("tags changed, but {e}")))?;
    }
    ok(json!({ "tags": tags }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysBody {
    /// `install`, `use`, `remove` or `list`.
    op: String,
    key: Option<String>,
}

/// A cluster-wide keyring change (or listing), with every member's
/// result.
async fn keys(State(shared): State<Arc<Shared>>, bytes: Result<Bytes, BytesRejection>) -> ApiResult {
    let b: KeysBody = body(bytes)?;
    let key = || -> Result<lapswim_node::Key, ApiError> {
        let text = b.key.as_deref().ok_or_else(|| ApiError::bad(format!("{} needs a key", b.op)))?;
        crate::keys::parse_key(text).map_err(ApiError::bad)
    };
    let op = match b.op.as_str() {
        "install" => Some(KeyringOp::Install(key()?)),
        "use" => Some(KeyringOp::Use(key()?)),
        "remove" => Some(KeyringOp::Remove(key()?)),
        "list" => None,
        other => return Err(ApiError::bad(format!("unknown key operation {other:?} (install, use, remove, list)"))),
    };
    let id = shared.node.cluster_keys(op).await.map_err(|e| match e {
        NodeError::Protocol(lapswim_core::Error::NotSealing) => ApiError::new(
            StatusCode::CONFLICT,
            "this agent does not seal its traffic (start it with --key or --keyring): a key never crosses the network in plaintext",
        ),
        e => e.into(),
    })?;
    let r = report(&shared, id).await?;
    let failed: Vec<Value> = r.failed.iter().map(|(m, why)| json!({ "member": m.as_str(), "error": why })).collect();
    let keys: Vec<Value> =
        r.keys.iter().map(|(k, n)| json!({ "fingerprint": format!("{k:08x}"), "members": n })).collect();
    let primary: BTreeMap<&str, String> = r.primary.iter().map(|(m, k)| (m.as_str(), format!("{k:08x}"))).collect();
    ok(json!({
        "op": b.op,
        "acked": names(&r.acked),
        "failed": failed,
        "silent": names(&r.silent),
        "keys": keys,
        "primary": primary,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinBody {
    addrs: Vec<String>,
}

async fn join(State(shared): State<Arc<Shared>>, bytes: Result<Bytes, BytesRejection>) -> ApiResult {
    let b: JoinBody = body(bytes)?;
    if b.addrs.is_empty() {
        return Err(ApiError::bad("give at least one address"));
    }
    let seeds = super::resolve(&b.addrs).await.map_err(ApiError::bad)?;
    Counters::bump(&shared.counters.join_attempts);
    let seed = shared.node.join(&seeds).await?;
    ok(json!({ "seed": seed }))
}

async fn leave(State(shared): State<Arc<Shared>>) -> ApiResult {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let stopped = || ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the agent is stopping");
    shared.control.send(Control::Leave(tx)).await.map_err(|_| stopped())?;
    rx.await.map_err(|_| stopped())?.map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    ok(json!({}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ForceLeaveBody {
    name: String,
    #[serde(default)]
    prune: bool,
}

async fn force_leave(State(shared): State<Arc<Shared>>, bytes: Result<Bytes, BytesRejection>) -> ApiResult {
    let b: ForceLeaveBody = body(bytes)?;
    let asked = shared.node.force_leave(&b.name, b.prune).await.map_err(|e| match e {
        NodeError::Protocol(lapswim_core::Error::UnknownMember) => {
            ApiError::new(StatusCode::NOT_FOUND, format!("no member named {:?} here", b.name))
        }
        NodeError::Protocol(lapswim_core::Error::NotFailed) => ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "{:?} is not failed: only a failed member can be forced to leave (a running one would refute)",
                b.name
            ),
        ),
        e => e.into(),
    })?;
    match asked {
        Some(id) => {
            let r = report(&shared, id).await?;
            ok(json!({ "member": b.name, "pruned": true, "acked": names(&r.acked), "silent": names(&r.silent) }))
        }
        None => ok(json!({ "member": b.name, "pruned": false })),
    }
}

async fn reachability(State(shared): State<Arc<Shared>>) -> ApiResult {
    let id = shared.node.reachability().await?;
    let r = report(&shared, id).await?;
    ok(json!({ "acked": names(&r.acked), "silent": names(&r.silent) }))
}

/// The live feed: every event the agent prints, and log lines at
/// `?level=` (`error`, `warn`, `info` (the default), `debug`): server-sent
/// events for `Accept: text/event-stream`, else JSON lines.
async fn monitor(State(shared): State<Arc<Shared>>, headers: HeaderMap, RawQuery(q): RawQuery) -> ApiResult {
    let mut level = LevelFilter::INFO;
    for (k, v) in query_pairs(q.as_deref()) {
        match k.as_str() {
            "level" => {
                level = match v.to_ascii_lowercase().as_str() {
                    "error" => LevelFilter::ERROR,
                    "warn" => LevelFilter::WARN,
                    "info" => LevelFilter::INFO,
                    "debug" => LevelFilter::DEBUG,
                    _ => return Err(ApiError::bad(format!("unknown log level {v:?} (error, warn, info, debug)"))),
                }
            }
            "token" => {}
            other => return Err(ApiError::bad(format!("unknown parameter {other:?} (level)"))),
        }
    }
    let rx = shared.feed.subscribe();
    let items = futures_lite::stream::unfold(rx, move |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(v) => {
                    let is_log = v["event"] == "log";
                    if !is_log || v["level"].as_str().is_some_and(|l| super::logs::passes(l, level)) {
                        return Some((v, rx));
                    }
                }
                // Fell behind: say so, and go on from the newest.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    return Some((json!({ "event": "lagged", "missed": n }), rx));
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Ok(stream(&headers, items))
}

async fn metrics(State(shared): State<Arc<Shared>>) -> ApiResult {
    let stats = shared.node.stats().await?;
    let members = shared.node.members().await?;
    let text = super::metrics::render(&stats, &members, &shared.counters)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    Ok(([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response())
}

#[cfg(test)]
mod tests {
    use super::same;

    #[test]
    fn only_the_exact_token_passes() {
        assert!(same("s3cret", "s3cret"));
        for guess in ["", "s3cre", "s3cret!", "s3creT", "s3crets3cret", "x"] {
            assert!(!same(guess, "s3cret"), "{guess:?}");
        }
        assert!(!same("a", ""));
        assert!(same("", ""));
    }
}
