// The agent's status page: who this agent is, the member table and a live
// event feed, read from the control API (docs/api.md) of the agent that
// served the page. Plain JS, no build step, nothing fetched from elsewhere.
//
// Names, tags and payloads are chosen by peers: everything from the server
// goes into the DOM as text (append of strings, textContent, dataset),
// never through innerHTML.
"use strict";

const FEED_MAX = 200; // feed entries kept
const POLL_MS = 2000; // the table is refetched this often anyway: the feed may drop events
const DEBOUNCE_MS = 200; // a burst of member events costs one refetch
const RECONNECT_MIN_MS = 1000;
const RECONNECT_MAX_MS = 10000;

const STATES = ["alive", "suspect", "failed", "left"];
const MEMBER_EVENTS = new Set(["joined", "failed", "left", "suspected", "alive", "updated"]);
// Fields every feed entry shows in its own place rather than as k=v.
const FEED_FIXED = new Set(["event", "time", "node", "member"]);

// The API token, when the page was opened as /?token=T.
const token = new URLSearchParams(location.search).get("token");

const $ = (id) => document.getElementById(id);

// An element with a class and children; strings become text nodes.
function el(tag, className, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  node.append(...children.map((c) => (c instanceof Node ? c : String(c))));
  return node;
}

// --- the API ---------------------------------------------------------------

// GET a JSON resource of the API; throws an Error whose message is fit to
// show on the page.
async function api(path) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, { headers, cache: "no-store" });
  } catch (e) {
    throw new Error(`Cannot reach the agent (${e.message}). Is it still running?`);
  }
  if (response.status === 401) {
    throw new Error(
      token
        ? "401 Unauthorized: the agent refused the token in this page's address (?token=…)."
        : "401 Unauthorized: this agent requires an API token. Open this page as /?token=YOUR_TOKEN."
    );
  }
  if (!response.ok) {
    let detail = await response.text().catch(() => "");
    try {
      detail = JSON.parse(detail).error ?? detail;
    } catch {
      // Not JSON: the text as it is.
    }
    throw new Error(`GET /${path}: ${response.status} ${response.statusText} ${String(detail).slice(0, 300)}`);
  }
  return response.json();
}

function showError(message) {
  const box = $("error");
  box.hidden = !message;
  box.textContent = message || "";
}

// --- header ----------------------------------------------------------------

function tagList(tags) {
  const entries = Object.entries(tags || {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return entries.map(([k, v]) => el("span", "tag", `${k}=${v}`));
}

function renderInfo(info) {
  $("name").textContent = info.name;
  $("addr").textContent = info.addr;
  $("version").textContent = info.version ? `swim ${info.version}` : "";
  $("own-tags").replaceChildren(...tagList(info.tags));
  document.title = `${info.name} · swim`;
  for (const state of STATES) {
    $(`count-${state}`).textContent = info.members?.[state] ?? 0;
  }
}

// --- the member table --------------------------------------------------------

// "12 s ago", "5 min ago", ...: coarse, for people.
function ago(date) {
  const s = Math.max(0, Math.round((Date.now() - date.getTime()) / 1000));
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.floor(s / 60)} min ago`;
  if (s < 172800) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

function sinceCell(since) {
  const date = new Date(since);
  if (Number.isNaN(date.getTime())) return el("td", "since", since ?? "");
  const agoText = el("span", "ago", ago(date));
  agoText.dataset.since = since;
  // The date only when it is not today.
  const today = date.toDateString() === new Date().toDateString();
  const local = today ? date.toLocaleTimeString() : date.toLocaleString();
  const cell = el("td", "since", el("time", null, local), " ", agoText);
  cell.title = since;
  return cell;
}

function memberRow(m) {
  const status = STATES.includes(m.status) ? m.status : "other";
  const row = el(
    "tr",
    m.local ? "local" : "",
    el("td", "name", m.name, ...(m.local ? [" ", el("span", "muted", "(this agent)")] : [])),
    el("td", null, el("span", `status status-${status}`, m.status)),
    el("td", "addr", m.addr),
    el("td", null, el("span", "tags", ...tagList(m.tags))),
    sinceCell(m.since)
  );
  // dataset values are attribute text, never markup.
  row.dataset.name = m.name;
  row.dataset.status = m.status;
  return row;
}

function renderMembers(members) {
  members.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const rows = members.map(memberRow);
  if (rows.length === 0) {
    rows.push(el("tr", "empty", el("td", "muted", "no members")));
    rows[0].firstChild.colSpan = 5;
  }
  $("members").tBodies[0].replaceChildren(...rows);
}

// Keeps the "N s ago" texts current between refetches.
function tickAgo() {
  for (const span of document.querySelectorAll(".ago[data-since]")) {
    span.textContent = ago(new Date(span.dataset.since));
  }
}

// --- refreshing ----------------------------------------------------------------

// One refresh at a time; one asked for meanwhile runs right after, so the
// last render always reflects a fetch started after the last request.
let refreshing = false;
let refreshAgain = false;

async function refresh() {
  if (refreshing) {
    refreshAgain = true;
    return;
  }
  refreshing = true;
  try {
    do {
      refreshAgain = false;
      try {
        const [info, members] = await Promise.all([api("v1/info"), api("v1/members")]);
        renderInfo(info);
        renderMembers(members);
        showError(null);
      } catch (e) {
        showError(e.message);
      }
    } while (refreshAgain);
  } finally {
    refreshing = false;
  }
}

// A refetch at most DEBOUNCE_MS after the first of a burst of events (a
// timer left running rather than restarted, so a steady stream of events
// cannot postpone it forever).
let refreshTimer = 0;
function refreshSoon() {
  if (!refreshTimer) {
    refreshTimer = setTimeout(() => {
      refreshTimer = 0;
      refresh();
    }, DEBOUNCE_MS);
  }
}

// --- the event feed ------------------------------------------------------------

function formatValue(v) {
  return typeof v === "string" ? v : JSON.stringify(v);
}

function addEvent(ev) {
  const kind = String(ev.event ?? "?");
  const time = ev.time ? new Date(ev.time) : new Date();
  const when = Number.isNaN(time.getTime()) ? String(ev.time) : time.toLocaleTimeString();
  const entry = el("li", "entry", el("time", null, when), " ", el("span", "kind", kind));
  entry.dataset.event = kind;
  if (ev.level) entry.dataset.level = String(ev.level).toLowerCase();
  if (ev.member !== undefined) entry.append(" ", el("span", "member", ev.member));
  for (const [k, v] of Object.entries(ev)) {
    if (!FEED_FIXED.has(k)) entry.append(" ", el("span", "field", el("span", "key", `${k}=`), formatValue(v)));
  }
  const feed = $("feed");
  feed.prepend(entry);
  while (feed.childElementCount > FEED_MAX) feed.lastElementChild.remove();
}

function setConn(text, live) {
  const conn = $("conn");
  conn.textContent = text;
  conn.dataset.live = String(live);
}

let reconnectMs = RECONNECT_MIN_MS;

function connect() {
  // EventSource cannot send headers: the token goes in the query.
  const url = new URL("v1/monitor", location.href);
  url.search = "";
  if (token) url.searchParams.set("token", token);
  const source = new EventSource(url);
  source.onopen = () => {
    reconnectMs = RECONNECT_MIN_MS;
    setConn("live", true);
    // Changes made while the feed was down came with no event.
    refreshSoon();
  };
  source.onmessage = (message) => {
    let ev;
    try {
      ev = JSON.parse(message.data);
    } catch {
      return; // not one of ours
    }
    if (ev === null || typeof ev !== "object") return;
    addEvent(ev);
    // "lagged": the agent skipped events this feed was too slow for.
    if (MEMBER_EVENTS.has(ev.event) || ev.event === "lagged") refreshSoon();
  };
  source.onerror = () => {
    // The browser retries a dropped connection by itself but gives up for
    // good on others (an HTTP error such as 401): one path for both, close
    // and reopen after a delay that grows up to RECONNECT_MAX_MS.
    source.close();
    setConn(`feed lost; reconnecting in ${Math.round(reconnectMs / 1000)} s`, false);
    setTimeout(connect, reconnectMs);
    reconnectMs = Math.min(reconnectMs * 2, RECONNECT_MAX_MS);
  };
}

// --- start -------------------------------------------------------------------------

refresh();
connect();
setInterval(refresh, POLL_MS);
setInterval(tickAgo, 1000);
