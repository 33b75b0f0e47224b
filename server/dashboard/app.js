// stunfault's dashboard: a live timeline of what the server saw, and the
// rules, scenarios and webhooks with their switches. It speaks the control
// protocol only (docs/control.md): POST /api/{op} for the ops, the /control
// WebSocket for events (subscribe with since_seq, resumed after a
// reconnect), and GET /trace?since=SEQ for the messages. The same file runs
// an exported copy (Export), which has its data inline and no server.

const PREFIX = "/dashboard/";
const PLACEHOLDER = '<script type="application/json" id="stunfault-data">null</script>';

// What the page keeps, and so its memory: older data goes first.
const MAX_MESSAGES = 20000; // trace records
const MAX_JOURNAL = 5000; // journal entries (firings the trace lacks, steps)
const MAX_SPANS = 2000; // webhook requests
const MAX_MARKS = 4000; // marks drawn at once: the newest in the window
const FIRST = 2000; // messages and journal entries loaded at start
const TRACE_PAGE = 2000; // messages per GET /trace
const TRACE_POLL_MS = 500;
const STATS_POLL_MS = 1000;

// Layout of the timeline, in pixels.
const GUTTER = 190;
const AXIS_H = 22;
const LANE_H = 28;
const SPAN_ROW = 16;

const $ = (id) => document.getElementById(id);

const state = {
  token: "",
  exported: null, // {at, from, to, url} in an exported copy
  hello: null,
  stats: null,
  rules: [], // rules.list statuses
  scenarios: null, // scenarios.list result
  revision: null,
  messages: [], // trace records, oldest first
  lastTraceSeq: 0,
  traceSize: 0,
  journal: new Map(), // seq -> entry
  traced: new Set(), // journal seqs a trace record carries
  lastJournalSeq: 0,
  spans: new Map(), // id -> span
  clients: new Map(), // client -> order of first appearance
  clockOffset: 0, // server clock minus this browser's, in ms
  newest: 0, // the newest message's or entry's time
  view: { span: 60000, end: 0, follow: true, paused: false },
  items: new Map(), // key -> what a drawn mark or bar shows
  pinned: null,
  live: false,
  peerLegs: [], // GET /trace's peer_legs: each open relay's peer-leg counts
  peerSample: null, // {t, legs}: the counts the rates are worked out from
  peerRates: new Map(), // relay -> {in, out} datagrams per second
};

// ms parses an RFC 3339 time (Go writes up to nanoseconds) as milliseconds.
function ms(s) {
  if (!s) return null;
  return Date.parse(s.replace(/(\.\d{3})\d+/, "$1"));
}

function iso(t) {
  return t == null ? "" : new Date(t).toISOString();
}

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function now() {
  if (state.exported) return state.exported.to;
  return Date.now() + state.clockOffset;
}

// ---- talking to the server ----

class APIError extends Error {
  constructor(e, status) {
    super(e.message);
    Object.assign(this, e);
    this.status = status;
  }
}

function authHeaders() {
  return state.token ? { Authorization: "Bearer " + state.token } : {};
}

// api runs one control op over POST /api/{op} and returns its result.
async function api(op, params = {}) {
  const res = await fetch("/api/" + op, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...authHeaders() },
    body: JSON.stringify(params),
  });
  let rep;
  try {
    rep = await res.json();
  } catch {
    rep = { ok: false, error: { code: "internal", message: `${res.status} ${res.statusText}` } };
  }
  if (res.status === 401) askToken("missing or wrong token");
  if (!rep.ok) throw new APIError(rep.error, res.status);
  if (rep.revision !== undefined) state.revision = rep.revision;
  return rep.result;
}

// getTrace reads GET /trace?since=SEQ; follow says SEQ is the last seq
// this page saw, so the server counts what its ring dropped before this
// read as lost (stunfault_subscriber_events_lost_total).
async function getTrace(since, limit, follow) {
  const res = await fetch(`/trace?since=${since}&limit=${limit}${follow ? "&follow=1" : ""}`, { headers: authHeaders() });
  if (res.status === 401) {
    askToken("missing or wrong token");
    throw new APIError({ code: "unauthorized", message: "missing or wrong token" }, 401);
  }
  if (!res.ok) throw new APIError({ code: "internal", message: `GET /trace: ${res.status}` }, res.status);
  // The Date header has whole seconds: trust it only for a clock that is
  // clearly off (another machine's); the window's right edge also follows
  // the newest message, see windowRange.
  const date = res.headers.get("Date");
  const off = date ? Date.parse(date) - Date.now() : 0;
  if (!state.clockOffsetSet && Math.abs(off) > 2000) state.clockOffset = off;
  return res.json();
}

// snapshot loads what the server inlines into the page at GET /.
async function snapshot() {
  const [hello, stats, rules, scenarios, head] = await Promise.all([
    api("hello"), api("stats.get"), api("rules.list"), api("scenarios.list"), getTrace(0, 1),
  ]);
  const jsince = Math.max(0, stats.journal.last_seq - FIRST);
  const [journal, trace] = await Promise.all([
    api("journal.query", { query: { since_seq: jsince } }),
    getTrace(Math.max(0, head.last_seq - FIRST), FIRST),
  ]);
  return { hello, stats, rules, scenarios, journal, trace };
}

// ---- the data ----

function seeClient(c) {
  if (c && !state.clients.has(c)) state.clients.set(c, state.clients.size);
}

function addTrace(page) {
  state.traceSize = page.size;
  if (page.last_seq < state.lastTraceSeq) state.lastTraceSeq = 0; // the server restarted
  for (const m of page.messages || []) {
    if (m.seq <= state.lastTraceSeq) continue;
    m.t = ms(m.time);
    state.newest = Math.max(state.newest, m.t);
    state.messages.push(m);
    state.lastTraceSeq = m.seq;
    if (m.decision && m.decision.journal_seq) state.traced.add(m.decision.journal_seq);
    seeClient(m.client);
  }
  const extra = state.messages.length - MAX_MESSAGES;
  if (extra > 0) {
    for (const m of state.messages.splice(0, extra)) {
      if (m.decision && m.decision.journal_seq) state.traced.delete(m.decision.journal_seq);
    }
  }
  for (const s of page.webhooks || []) {
    s.t0 = ms(s.start);
    s.t1 = s.end ? ms(s.end) : null;
    // A page names the rules a request made fire among its own messages
    // only: keep those an earlier page named.
    const old = state.spans.get(s.id);
    if (old && old.rules) s.rules = [...new Set([...old.rules, ...(s.rules || [])])];
    state.spans.set(s.id, s);
  }
  if (state.spans.size > MAX_SPANS) {
    const ids = [...state.spans.keys()].sort((a, b) => a - b);
    for (const id of ids.slice(0, state.spans.size - MAX_SPANS)) state.spans.delete(id);
  }
  addPeerLegs(page);
}

// addPeerLegs keeps a page's peer-leg counts, and every quarter second or
// more of server time the rates since the last sample.
function addPeerLegs(page) {
  if (!page.peer_legs) return; // an older server, or an export without them
  state.peerLegs = page.peer_legs;
  const t = ms(page.time);
  const last = state.peerSample;
  if (t == null || (last && t - last.t < 250)) return;
  state.peerRates = new Map();
  if (last) {
    const dt = (t - last.t) / 1000;
    const before = new Map(last.legs.map((l) => [l.relay, l]));
    for (const l of page.peer_legs) {
      const b = before.get(l.relay);
      if (b) state.peerRates.set(l.relay, { in: (l.in.datagrams - b.in.datagrams) / dt, out: (l.out.datagrams - b.out.datagrams) / dt });
    }
  }
  state.peerSample = { t, legs: page.peer_legs };
}

function addJournal(e) {
  if (!e.seq || state.journal.has(e.seq)) return;
  const entry = { ...e };
  delete entry.event;
  delete entry.subscription;
  entry.t = ms(entry.time);
  state.newest = Math.max(state.newest, entry.t);
  state.journal.set(entry.seq, entry);
  state.lastJournalSeq = Math.max(state.lastJournalSeq, entry.seq);
  seeClient(entry.src);
  while (state.journal.size > MAX_JOURNAL) state.journal.delete(state.journal.keys().next().value);
}

function ingest(d) {
  if (d.hello) state.hello = d.hello;
  if (d.stats) {
    state.stats = d.stats;
    state.revision = d.stats.revision;
  }
  if (d.rules) state.rules = d.rules.rules || [];
  if (d.scenarios) state.scenarios = d.scenarios;
  if (d.now && !state.exported) {
    state.clockOffset = ms(d.now) - Date.now();
    state.clockOffsetSet = true;
  }
  if (d.journal) {
    for (const e of d.journal.entries || []) addJournal(e);
    state.lastJournalSeq = Math.max(state.lastJournalSeq, d.journal.last_seq || 0);
  }
  if (d.trace) addTrace(d.trace);
}

// fitWindow picks a window that shows what was loaded.
function fitWindow() {
  let first = Infinity;
  let last = -Infinity;
  const see = (t) => {
    if (t == null || isNaN(t)) return;
    first = Math.min(first, t);
    last = Math.max(last, t);
  };
  for (const m of state.messages) see(m.t);
  for (const e of state.journal.values()) see(e.t);
  for (const s of state.spans.values()) see(s.t0);
  const v = state.view;
  if (state.exported) {
    v.follow = false;
    v.span = state.exported.to - state.exported.from;
    v.end = state.exported.to;
    return;
  }
  if (first === Infinity) return;
  // At least a minute, so what was just loaded does not leave a followed
  // window at once.
  const presets = [60000, 300000, 900000, 3600000];
  const need = (now() - first) * 1.15;
  v.span = presets.find((p) => p >= need) || 3600000;
  if (need > 3600000) {
    v.follow = false;
    v.end = last + 0.05 * v.span;
  }
}

// ---- the timeline ----

const DECISIONS = [
  ["pass", "passed"], ["error", "error"], ["drop", "drop"], ["delay", "delay"],
  ["duplicate", "duplicate"], ["truncate", "truncate / corrupt"], ["mapped_address", "mapped address"],
  ["close", "close"],
];

function decisionClass(action) {
  switch (action) {
    case "corrupt":
      return "d-truncate";
    case "delay_overflow":
      return "d-delay";
    case "pass": case "error": case "drop": case "delay": case "duplicate": case "truncate":
    case "mapped_address": case "close":
      return "d-" + action;
  }
  return "d-other";
}

function windowRange() {
  const v = state.view;
  // Following, the right edge is now, or the newest message when the
  // server's clock runs ahead of this estimate of it.
  const t1 = v.follow ? Math.max(now(), state.newest + 50) : v.end;
  return { t0: t1 - v.span, t1 };
}

function tickStep(span, px) {
  const steps = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 15000, 30000,
    60000, 120000, 300000, 600000, 900000, 1800000, 3600000, 7200000, 21600000];
  const want = (span / px) * 90;
  return steps.find((s) => s >= want) || steps[steps.length - 1];
}

function clock(t, step) {
  const d = new Date(t);
  const p = (n, w = 2) => String(n).padStart(w, "0");
  let s = `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  if (step < 1000) s += "." + p(d.getMilliseconds(), 3);
  return s;
}

function fmtSpan(v) {
  if (v < 1000) return `${Math.round(v)} ms`;
  if (v < 120000) return `${+(v / 1000).toFixed(1)} s`;
  if (v < 7200000) return `${+(v / 60000).toFixed(1)} min`;
  return `${+(v / 3600000).toFixed(1)} h`;
}

function messageLabel(m) {
  if (m.kind === "relay_summary") {
    const what = m.channel ? `ChannelData 0x${m.channel.toString(16)}` : `${m.method} ${m.class}`;
    return `relay data: ${m.count} × ${what}, ${m.size} bytes in all, within a second`;
  }
  if (m.kind === "channeldata") return `ChannelData 0x${(m.channel || 0).toString(16)}`;
  if (m.kind === "other") return "not STUN";
  return `${m.method} ${m.class}`;
}

// fields are the lines a mark or bar shows on hover.
function messageFields(m) {
  const d = m.decision || {};
  const lines = [
    `${messageLabel(m)}  ${m.direction === "in" ? "from" : "to"} ${m.client}`,
    `time       ${m.time}`,
    `trace seq  ${m.seq}`,
    `listener   ${m.listener || m.local}  (${m.transport}, ${m.direction})`,
  ];
  if (m.txid) lines.push(`txid       ${m.txid}`);
  if (m.kind !== "relay_summary") lines.push(`size       ${m.size} bytes`);
  if (m.username) lines.push(`username   ${m.username}`);
  if (d.rule) lines.push(`decision   ${d.action}${d.code ? " " + d.code : ""} by rule ${d.rule} (journal #${d.journal_seq})`);
  else if (d.guard) lines.push(`decision   ${d.action}${d.code ? " " + d.code : ""} by the relay guard`);
  else lines.push(`decision   ${d.action || "pass"}`);
  return lines.join("\n");
}

function journalFields(e) {
  if (e.action === "step") {
    const s = e.step || {};
    return [`scenario ${s.scenario}: step ${s.index} of ${s.steps}`, `time       ${e.time}`, `journal #${e.seq}`].join("\n");
  }
  return [
    `${e.method} ${e.class || ""}  ${e.direction === "in" ? "from" : "to"} ${e.src}`,
    `time       ${e.time}`,
    `journal #${e.seq} (not in the trace)`,
    `transport  ${e.transport}, ${e.direction}`,
    `size       ${e.size} bytes`,
    `decision   ${e.action}${e.code ? " " + e.code : ""} by rule ${e.rule}`,
  ].join("\n");
}

function spanFields(s) {
  const lines = [
    `webhook ${s.webhook} request #${s.id} (${s.mode})`,
    `start      ${s.start}`,
    `end        ${s.end || (s.held ? "held open now" : s.pending ? "pending now" : "")}`,
  ];
  if (s.t1 != null) lines.push(`duration   ${fmtSpan(s.t1 - s.t0)}`);
  if (s.status) lines.push(`status     ${s.status}`);
  lines.push(`body       ${s.body_bytes} bytes, header ${s.header_bytes} bytes`);
  if (s.rules && s.rules.length) lines.push(`made fire  ${s.rules.join(", ")}`);
  return lines.join("\n");
}

let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    renderTimeline();
  });
}

function renderTimeline() {
  if (state.view.paused) return;
  const svg = $("timeline");
  const width = Math.max(480, $("timeline-wrap").clientWidth);
  const { t0, t1 } = windowRange();
  const plotW = width - GUTTER - 12;
  const x = (t) => GUTTER + ((t - t0) / (t1 - t0)) * plotW;
  const tnow = now();
  const items = new Map();

  // What is in the window.
  let marks = [];
  for (const m of state.messages) {
    if (m.t >= t0 && m.t <= t1) marks.push({ key: "m" + m.seq, t: m.t, client: m.client, m });
  }
  for (const e of state.journal.values()) {
    if (e.action !== "step" && !state.traced.has(e.seq) && e.t >= t0 && e.t <= t1) {
      marks.push({ key: "j" + e.seq, t: e.t, client: e.src, e });
    }
  }
  const total = marks.length;
  if (marks.length > MAX_MARKS) {
    marks.sort((a, b) => a.t - b.t);
    marks = marks.slice(marks.length - MAX_MARKS);
  }
  const steps = [...state.journal.values()].filter((e) => e.action === "step" && e.t >= t0 && e.t <= t1);
  const spans = [...state.spans.values()]
    .filter((s) => s.t0 <= t1 && (s.t1 == null ? tnow : s.t1) >= t0)
    .sort((a, b) => a.t0 - b.t0 || a.id - b.id);

  // Lanes: one per webhook (a row per overlapping request), then one per client.
  const hooks = new Map();
  for (const s of spans) {
    let h = hooks.get(s.webhook);
    if (!h) hooks.set(s.webhook, (h = { rows: [] }));
    const end = s.t1 == null ? tnow : s.t1;
    let row = h.rows.findIndex((r) => r <= s.t0);
    if (row < 0) row = h.rows.push(end) - 1;
    else h.rows[row] = end;
    s.row = row;
  }
  const clients = [...new Set(marks.map((k) => k.client))].sort(
    (a, b) => (state.clients.get(a) ?? 1e9) - (state.clients.get(b) ?? 1e9) || String(a).localeCompare(String(b)));

  const out = [];
  let y = AXIS_H;
  const laneBg = (y0, h, label, cls) => {
    out.push(`<rect class="lane-bg ${cls}" x="0" y="${y0}" width="${width}" height="${h - 2}"/>`);
    out.push(`<text class="lane-label" x="6" y="${y0 + 16}">${esc(label)}</text>`);
  };
  const hookY = new Map();
  for (const [name, h] of hooks) {
    const hgt = Math.max(1, h.rows.length) * SPAN_ROW + 10;
    laneBg(y, hgt, "webhook " + name, "webhook-lane");
    hookY.set(name, y + 5);
    y += hgt;
  }
  const laneY = new Map();
  for (const c of clients) {
    laneBg(y, LANE_H, c, "client-lane");
    laneY.set(c, y + LANE_H / 2);
    y += LANE_H;
  }
  const height = Math.max(y + 8, 140);

  // The axis.
  const step = tickStep(t1 - t0, plotW);
  const axis = [`<g class="axis">`];
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
    const xt = x(t).toFixed(1);
    axis.push(`<line x1="${xt}" y1="${AXIS_H - 4}" x2="${xt}" y2="${height}"/>`);
    axis.push(`<text x="${xt}" y="${AXIS_H - 8}" text-anchor="middle">${clock(t, step)}</text>`);
  }
  axis.push(`</g>`);

  // Webhook requests as bars from start to end (to now while held or pending).
  for (const s of spans) {
    const end = s.t1 == null ? tnow : s.t1;
    const xa = Math.max(GUTTER, x(s.t0));
    const xb = Math.min(width, x(end));
    const yy = hookY.get(s.webhook) + s.row * SPAN_ROW;
    const cls = `span ${s.mode === "async" ? "async" : "sync"}${s.t1 == null ? " open" : " ended"}`;
    const key = "s" + s.id;
    items.set(key, { text: spanFields(s), obj: s });
    out.push(`<rect class="${cls}" data-key="${key}" data-id="${s.id}" data-webhook="${esc(s.webhook)}" data-mode="${esc(s.mode)}"` +
      ` data-start="${s.t0}" data-end="${s.t1 ?? ""}" x="${xa.toFixed(1)}" y="${yy}" width="${Math.max(2, xb - xa).toFixed(1)}" height="${SPAN_ROW - 3}" rx="2"/>`);
    const what = s.t1 == null ? (s.held ? "held" : "pending") : s.status ? String(s.status) : "client gone";
    const label = `#${s.id} ${s.mode} ${what}${s.rules && s.rules.length ? " · " + s.rules.join(", ") : ""}`;
    out.push(`<text class="span-label" x="${(xa + 4).toFixed(1)}" y="${yy + SPAN_ROW - 6}">${esc(label)}</text>`);
  }

  // Scenario steps as vertical lines.
  for (const e of steps) {
    const xt = x(e.t).toFixed(1);
    const key = "j" + e.seq;
    items.set(key, { text: journalFields(e), obj: e });
    out.push(`<g class="step" data-key="${key}"><line x1="${xt}" y1="${AXIS_H}" x2="${xt}" y2="${height}"/>` +
      `<text x="${(+xt + 3).toFixed(1)}" y="${AXIS_H + 10}">${esc(`${e.step?.scenario} step ${e.step?.index}`)}</text></g>`);
  }

  // Messages as marks in their client's lane, coloured by decision.
  marks.sort((a, b) => a.t - b.t);
  for (const k of marks) {
    const cx = x(k.t);
    const cy = laneY.get(k.client);
    let d;
    let dir;
    let attrs;
    if (k.m) {
      const m = k.m;
      d = m.decision || { action: "pass" };
      dir = m.direction;
      attrs = `data-seq="${m.seq}" data-method="${esc(m.method || m.kind)}" data-class="${esc(m.class || "")}"`;
      items.set(k.key, { text: messageFields(m), obj: m });
    } else {
      const e = k.e;
      d = { action: e.action, rule: e.rule, code: e.code, journal_seq: e.seq };
      dir = e.direction;
      attrs = `data-journal-seq="${e.seq}" data-method="${esc(e.method)}" data-class="${esc(e.class || "")}"`;
      items.set(k.key, { text: journalFields(e), obj: e });
    }
    const cls = `mark ${decisionClass(d.action)}${k.e ? " journal-only" : ""}${state.pinned === k.key ? " pinned" : ""}`;
    const summary = k.m && k.m.kind === "relay_summary";
    const shape = summary
      ? `<rect class="summary" x="${cx.toFixed(1)}" y="${(dir === "out" ? cy + 3 : cy - 5).toFixed(1)}" width="${Math.max(3, x(k.t + 1000) - cx).toFixed(1)}" height="3"/>`
      : dir === "out"
      ? `<rect x="${(cx - 3.5).toFixed(1)}" y="${(cy + 1).toFixed(1)}" width="7" height="7"/>`
      : `<circle cx="${cx.toFixed(1)}" cy="${(cy - 3).toFixed(1)}" r="4.5"/>`;
    const label = d.rule ? `<text class="fired-label" x="${(cx + 6).toFixed(1)}" y="${(cy - 5).toFixed(1)}">${esc(d.rule)} ${esc(d.code || d.action)}</text>` : "";
    out.push(`<g class="${cls}" data-key="${k.key}" data-t="${k.t}" data-x="${cx.toFixed(1)}" data-client="${esc(k.client)}" data-dir="${esc(dir)}"` +
      ` data-action="${esc(d.action)}" data-rule="${esc(d.rule || "")}" data-code="${d.code || ""}" ${attrs}>${shape}${label}</g>`);
  }

  if (state.view.follow && !state.exported) {
    const xn = x(tnow).toFixed(1);
    out.push(`<g class="now"><line x1="${xn}" y1="${AXIS_H - 4}" x2="${xn}" y2="${height}"/></g>`);
  }
  if (marks.length === 0 && spans.length === 0) {
    out.push(`<text class="empty" x="${GUTTER + 10}" y="${AXIS_H + 40}">Nothing in this window: send a STUN message, or zoom out.</text>`);
  }

  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("height", height);
  svg.innerHTML = axis.join("") + out.join("");
  state.items = items;
  const shown = total > marks.length ? ` · showing the newest ${marks.length} of ${total}` : "";
  $("window-label").textContent = `${fmtSpan(t1 - t0)}: ${clock(t0, 1000)} to ${clock(t1, 1000)} · ${total} message(s)${shown}`;
}

// ---- the panels ----

function actionSummary(a) {
  if (!a) return "";
  switch (a.type) {
    case "error":
      return `error ${a.code}${a.reason ? " " + a.reason : ""}`;
    case "delay":
      return `delay ${a.delay || ""}`;
    case "ratelimit":
      return `ratelimit ${a.rate}/s${a.then ? " then " + actionSummary(a.then) : ""}`;
  }
  return a.type;
}

function matchSummary(m) {
  if (!m) return "any";
  const parts = [];
  const add = (name, vs) => vs && vs.length && parts.push(`${name}=${vs.join(",")}`);
  add("methods", m.methods);
  add("classes", m.classes);
  add("transports", m.transports);
  add("sources", m.sources);
  if (m.direction) parts.push("direction=" + m.direction);
  if (m.webhook) {
    const w = m.webhook;
    let s = "webhook=" + (w.name || "*");
    if (w.min_inflight) s += ` inflight≥${w.min_inflight}`;
    if (w.min_pending) s += ` pending≥${w.min_pending}`;
    if (w.body) s += ` body~${w.body}`;
    if (w.min_header_bytes) s += ` header≥${w.min_header_bytes}B`;
    parts.push(s);
  }
  return parts.length ? parts.join(" ") : "any";
}

let rulesShape = "";
function renderRules() {
  const counters = new Map((state.stats?.rules || []).map((r) => [r.id, r]));
  const rows = state.rules.map((st) => {
    const r = st.rule;
    const c = counters.get(r.id) || st;
    const enabled = counters.has(r.id) ? c.enabled : r.enabled !== false;
    return { id: r.id, enabled, what: `${actionSummary(r.action)} on ${matchSummary(r.match)}`, desc: r.description || "", c };
  });
  const shape = JSON.stringify(rows.map((r) => [r.id, r.enabled, r.what, r.desc]));
  const tbody = $("rules").tBodies[0];
  if (shape !== rulesShape) {
    rulesShape = shape;
    const dis = state.exported ? " disabled" : "";
    tbody.innerHTML = rows.length === 0
      ? `<tr><td colspan="6" class="muted">No rules: every message passes.</td></tr>`
      : rows.map((r) => `<tr data-rule="${esc(r.id)}"${r.enabled ? "" : ' class="disabled"'}>` +
        `<td><label class="switch"><input type="checkbox" class="rule-switch" data-rule="${esc(r.id)}"${r.enabled ? " checked" : ""}${dis} aria-label="rule ${esc(r.id)} on"></label></td>` +
        `<td class="id">${esc(r.id)}</td><td title="${esc(r.desc)}">${esc(r.what)}</td>` +
        `<td class="num matched"></td><td class="num fired"></td><td class="num let-through"></td></tr>`).join("");
  }
  for (const r of rows) {
    const tr = tbody.querySelector(`tr[data-rule="${CSS.escape(r.id)}"]`);
    if (!tr) continue;
    tr.querySelector(".matched").textContent = r.c.matched ?? 0;
    tr.querySelector(".fired").textContent = r.c.fired ?? 0;
    tr.querySelector(".let-through").textContent = r.c.let_through ?? 0;
  }
  $("revision").textContent = state.revision != null ? `revision ${state.revision}` : "";
}

function renderScenarios() {
  const sc = state.scenarios || { scenarios: [] };
  const names = sc.scenarios || [];
  const dis = state.exported ? " disabled" : "";
  $("scenarios").innerHTML = names.length === 0
    ? `<li class="muted">No scenarios in the config.</li>`
    : names.map((n) => {
      const on = sc.active === n;
      const step = on && sc.step ? ` <span class="muted">step ${sc.step.index + 1} of ${sc.step.steps}${sc.step.next_in ? ", next in " + sc.step.next_in : ""}</span>` : "";
      return `<li data-scenario="${esc(n)}"><label class="switch"><input type="checkbox" class="scenario-switch" data-scenario="${esc(n)}"${on ? " checked" : ""}${dis}` +
        ` aria-label="scenario ${esc(n)} active"></label> <span>${esc(n)}</span>${step}</li>`;
    }).join("");
}

function renderWebhooks() {
  const hooks = state.stats?.webhooks || {};
  const names = Object.keys(hooks).sort();
  const dis = state.exported ? " disabled" : "";
  $("webhooks").tBodies[0].innerHTML = names.length === 0
    ? `<tr><td colspan="4" class="muted">No webhooks.</td></tr>`
    : names.map((n) => {
      const h = hooks[n];
      const seg = ["sync", "async"].map((m) => `<button type="button" class="webhook-mode" data-webhook="${esc(n)}" data-mode="${m}"` +
        ` aria-pressed="${h.mode === m}"${dis}>${m}</button>`).join("");
      return `<tr data-webhook="${esc(n)}"><td class="id">${esc(n)}</td><td><span class="seg">${seg}</span></td>` +
        `<td class="num inflight">${h.inflight}</td><td class="num pending">${h.pending}</td></tr>`;
    }).join("");
}

function renderPeerLegs() {
  const legs = state.peerLegs || [];
  const cell = (dir, c, rate) => `<td class="num ${dir}" title="${c.bytes} bytes">${c.datagrams}` +
    (rate == null ? "" : ` <span class="muted">${Math.round(rate)}/s</span>`) + `</td>`;
  $("peer-legs").tBodies[0].innerHTML = legs.length === 0
    ? `<tr><td colspan="4" class="muted">No relays open.</td></tr>`
    : legs.map((l) => {
      const r = state.peerRates.get(l.relay);
      const fired = [["in", l.in], ["out", l.out]].flatMap(([dir, c]) =>
        Object.entries(c.decisions || {}).filter(([k]) => k !== "pass").map(([k, n]) => `${k} ${n} ${dir}`));
      return `<tr data-relay="${esc(l.relay)}"><td class="id">${esc(l.relay)}</td>${cell("in", l.in, r?.in)}${cell("out", l.out, r?.out)}` +
        `<td class="fired">${esc(fired.join(", "))}</td></tr>`;
    }).join("");
}

function renderHeader() {
  const h = state.hello;
  const parts = [];
  if (h) parts.push(`${h.version || ""} · seed ${h.seed}`);
  parts.push(state.traceSize ? `trace keeps ${state.traceSize}` : "trace off: firings only");
  if (state.scenarios?.active) parts.push(`scenario ${state.scenarios.active}`);
  $("server-info").textContent = parts.join(" · ");
  if (state.exported) {
    setConn("exported", `exported ${state.exported.at} from ${state.exported.url}`);
  }
}

function renderPanels() {
  renderRules();
  renderScenarios();
  renderWebhooks();
  renderPeerLegs();
  renderHeader();
}

function renderLegend() {
  $("legend").innerHTML = DECISIONS.map(([a, label]) => `<span><i class="${decisionClass(a)}"></i>${esc(label)}</span>`).join("") +
    `<span>● in ■ out</span><span><i class="sw-sync"></i>held</span><span><i class="sw-async"></i>async pending</span>`;
}

function setConn(cls, text) {
  const c = $("conn");
  c.className = "conn " + cls;
  c.textContent = text || cls;
}

let noticeTimer = null;
function notice(text) {
  const n = $("notice");
  n.textContent = text;
  n.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (n.hidden = true), 8000);
}

// ---- the controls ----

async function refreshRules() {
  const [rules, scenarios] = await Promise.all([api("rules.list"), api("scenarios.list")]);
  state.rules = rules.rules || [];
  state.scenarios = scenarios;
  renderPanels();
}

async function refreshStats() {
  const before = state.revision;
  state.stats = await api("stats.get");
  // A restarted server may be at the same revision with other rules.
  const ids = (state.stats.rules || []).map((r) => r.id).join("\n");
  const changed = state.stats.revision !== before || ids !== state.rules.map((r) => r.rule.id).join("\n") ||
    (state.stats.scenario || "") !== (state.scenarios?.active || "");
  state.revision = state.stats.revision;
  if (changed) await refreshRules();
  else renderPanels();
}

function wireControls() {
  $("rules").addEventListener("change", async (ev) => {
    const input = ev.target.closest(".rule-switch");
    if (!input) return;
    const id = input.dataset.rule;
    const on = input.checked;
    input.disabled = true;
    try {
      const st = await api(on ? "rules.enable" : "rules.disable", { rule_id: id });
      const i = state.rules.findIndex((r) => r.rule.id === id);
      if (i >= 0) state.rules[i] = st;
      const c = state.stats?.rules?.find((r) => r.id === id);
      if (c) c.enabled = on;
    } catch (e) {
      input.checked = !on;
      notice(`rules.${on ? "enable" : "disable"} ${id}: ${e.message}`);
    } finally {
      input.disabled = false;
      renderRules();
    }
  });
  $("scenarios").addEventListener("change", async (ev) => {
    const input = ev.target.closest(".scenario-switch");
    if (!input) return;
    const name = input.dataset.scenario;
    if (!input.checked) {
      // Scenarios have no "off": another scenario, or a rule change, ends one.
      input.checked = true;
      notice("activate another scenario, or change the rules, to leave " + name);
      return;
    }
    try {
      state.scenarios = await api("scenarios.activate", { name });
      await refreshRules();
    } catch (e) {
      notice(`scenarios.activate ${name}: ${e.message}`);
      renderScenarios();
    }
  });
  $("webhooks").addEventListener("click", async (ev) => {
    const b = ev.target.closest(".webhook-mode");
    if (!b) return;
    const name = b.dataset.webhook;
    const mode = b.dataset.mode;
    try {
      await api("webhook.set", { name, mode });
      if (state.stats?.webhooks?.[name]) state.stats.webhooks[name].mode = mode;
      renderWebhooks();
      await refreshStats();
    } catch (e) {
      notice(`webhook.set ${name}: ${e.message}`);
    }
  });
  $("add-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    addRules();
  });
  $("add-errors").addEventListener("click", (ev) => {
    const li = ev.target.closest("li[data-line]");
    if (li) selectLine($("rule-input"), +li.dataset.line);
  });
}

function selectLine(ta, line) {
  const lines = ta.value.split("\n");
  let start = 0;
  for (let i = 0; i < line - 1 && i < lines.length; i++) start += lines[i].length + 1;
  ta.focus();
  ta.setSelectionRange(start, start + (lines[line - 1] || "").length);
}

function showAddErrors(items) {
  const ul = $("add-errors");
  ul.innerHTML = items.map(([msg, line]) => `<li${line ? ` data-line="${line}"` : ""}>${esc(msg)}</li>`).join("");
  $("rule-input").setAttribute("aria-invalid", items.length ? "true" : "false");
}

// addRules reads the box with the CLI's reader on the server (rules.parse),
// then adds what it holds as one change (rules.add), and shows each error as
// `stunfault rules add` prints it.
async function addRules() {
  const ta = $("rule-input");
  $("add-result").textContent = "";
  showAddErrors([]);
  let rules;
  try {
    rules = (await api("rules.parse", { text: ta.value })).rules;
  } catch (e) {
    const ds = e.details && e.details.length ? e.details : [{ message: e.message, line: e.line }];
    showAddErrors(ds.map((d) => [d.message, d.line]));
    return;
  }
  try {
    const res = await api("rules.add", { rules });
    const did = [];
    if (res.added?.length) did.push("added " + res.added.join(", "));
    if (res.replaced?.length) did.push("replaced " + res.replaced.join(", "));
    $("add-result").textContent = `${did.join("; ")} (revision ${state.revision})`;
    ta.value = "";
    await refreshRules();
  } catch (e) {
    // As the CLI prints a refused request: CODE: MESSAGE, then the other
    // problems one per line.
    let msg = `${e.code}: ${e.message}`;
    for (const d of (e.details || []).slice(1)) msg += `\n  ${d.field}: ${d.message}`;
    showAddErrors([[msg, 0]]);
  }
}

// ---- the timeline's controls ----

function wireTimeline() {
  const v = state.view;
  const svg = $("timeline");
  const follow = $("follow");
  const setFollow = (on) => {
    if (!on && v.follow) v.end = windowRange().t1;
    v.follow = on;
    follow.checked = on;
  };
  follow.addEventListener("change", () => {
    setFollow(follow.checked);
    scheduleRender();
  });
  $("pause").addEventListener("click", () => {
    v.paused = !v.paused;
    $("pause").setAttribute("aria-pressed", String(v.paused));
    $("pause").textContent = v.paused ? "Resume" : "Pause";
    if (!v.paused) scheduleRender();
  });
  const zoom = (f, tc) => {
    const { t1 } = windowRange();
    const span = Math.min(Math.max(v.span * f, 200), 86400000);
    if (!v.follow) {
      const c = tc ?? t1 - v.span / 2;
      v.end = c + (t1 - c) * (span / v.span);
    }
    v.span = span;
    const sel = $("span-select");
    sel.value = [...sel.options].some((o) => +o.value === span) ? String(span) : "";
    const wasPaused = v.paused;
    v.paused = false;
    renderTimeline();
    v.paused = wasPaused;
  };
  $("zoom-in").addEventListener("click", () => zoom(0.5));
  $("zoom-out").addEventListener("click", () => zoom(2));
  $("span-select").addEventListener("change", (ev) => {
    if (ev.target.value) zoom(+ev.target.value / v.span);
  });
  const timeAt = (clientX) => {
    const r = svg.getBoundingClientRect();
    const width = r.width;
    const { t0, t1 } = windowRange();
    return t0 + ((clientX - r.left - GUTTER) / (width - GUTTER - 12)) * (t1 - t0);
  };
  svg.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    zoom(ev.deltaY > 0 ? 1.25 : 0.8, timeAt(ev.clientX));
  }, { passive: false });
  let drag = null;
  svg.addEventListener("pointerdown", (ev) => {
    if (ev.target.closest("[data-key]")) return;
    drag = { x: ev.clientX, end: windowRange().t1 };
    svg.setPointerCapture(ev.pointerId);
    svg.classList.add("dragging");
  });
  svg.addEventListener("pointermove", (ev) => {
    if (drag) {
      const r = svg.getBoundingClientRect();
      const perPx = v.span / (r.width - GUTTER - 12);
      const dx = ev.clientX - drag.x;
      if (Math.abs(dx) > 2) {
        setFollow(false);
        v.end = drag.end - dx * perPx;
        const wasPaused = v.paused;
        v.paused = false;
        renderTimeline();
        v.paused = wasPaused;
      }
      return;
    }
    const el = ev.target.closest("[data-key]");
    const tip = $("tooltip");
    const item = el && state.items.get(el.dataset.key);
    if (!item) {
      tip.hidden = true;
      return;
    }
    tip.textContent = item.text;
    tip.hidden = false;
    tip.style.left = Math.min(ev.clientX + 14, window.innerWidth - tip.offsetWidth - 8) + "px";
    tip.style.top = Math.min(ev.clientY + 14, window.innerHeight - tip.offsetHeight - 8) + "px";
  });
  const endDrag = () => {
    drag = null;
    svg.classList.remove("dragging");
  };
  svg.addEventListener("pointerup", endDrag);
  svg.addEventListener("pointercancel", endDrag);
  svg.addEventListener("pointerleave", () => ($("tooltip").hidden = true));
  svg.addEventListener("click", (ev) => {
    const el = ev.target.closest("[data-key]");
    const item = el && state.items.get(el.dataset.key);
    if (!item) return;
    state.pinned = el.dataset.key;
    $("detail").textContent = item.text;
    svg.querySelectorAll(".selected").forEach((n) => n.classList.remove("selected"));
    el.classList.add("selected");
  });
  $("export").addEventListener("click", async () => {
    try {
      const html = await exportHTML();
      const a = document.createElement("a");
      a.href = URL.createObjectURL(new Blob([html], { type: "text/html" }));
      a.download = `stunfault-timeline-${new Date().toISOString().replace(/[:.]/g, "-")}.html`;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    } catch (e) {
      notice("export: " + e.message);
    }
  });
  window.addEventListener("resize", scheduleRender);
}

// exportHTML returns the timeline window as one self-contained HTML file:
// this page with its style, its script and the window's data inline.
async function exportHTML() {
  const get = (f) => fetch(PREFIX + f).then((r) => {
    if (!r.ok) throw new Error(`${PREFIX}${f}: ${r.status}`);
    return r.text();
  });
  const [html, css, js] = await Promise.all([get("index.html"), get("style.css"), get("app.js")]);
  const { t0, t1 } = windowRange();
  const strip = (o) => {
    const c = { ...o };
    delete c.t;
    delete c.t0;
    delete c.t1;
    delete c.row;
    return c;
  };
  const data = {
    hello: state.hello,
    stats: state.stats,
    rules: { rules: state.rules },
    scenarios: state.scenarios,
    journal: {
      entries: [...state.journal.values()].filter((e) => e.t >= t0 && e.t <= t1).map(strip),
      last_seq: state.lastJournalSeq,
    },
    trace: {
      messages: state.messages.filter((m) => m.t >= t0 && m.t <= t1).map(strip),
      webhooks: [...state.spans.values()].filter((s) => s.t0 <= t1 && (s.t1 == null || s.t1 >= t0)).map(strip),
      last_seq: state.lastTraceSeq,
      size: state.traceSize,
      time: state.peerSample ? new Date(state.peerSample.t).toISOString() : undefined,
      peer_legs: state.peerLegs,
    },
  };
  const boot = { auth: "ok", exported: { at: new Date().toISOString(), from: t0, to: t1, url: location.origin }, data };
  const json = JSON.stringify(boot).replace(/</g, "\\u003c");
  const swap = (s, from, to) => {
    if (!s.includes(from)) throw new Error("export: the page has no " + from);
    return s.replace(from, () => to);
  };
  let out = swap(html, `<link rel="stylesheet" href="${PREFIX}style.css">`, `<style>\n${css}</style>`);
  out = swap(out, `<script type="module" src="${PREFIX}app.js"></script>`,
    `<script type="module">\n${js.replace(/<\/(script)/gi, "<\\/$1")}</script>`);
  out = swap(out, PLACEHOLDER, `<script type="application/json" id="stunfault-data">${json}</script>`);
  out = swap(out, "<title>stunfault</title>", `<title>stunfault timeline ${esc(iso(t0))} to ${esc(iso(t1))}</title>`);
  return out;
}

// ---- live updates ----

let ws = null;
let wsRetry = 500;

// connect opens the /control WebSocket and subscribes to every event since
// the last journal seq seen, so a reconnect misses nothing the journal
// still holds.
function connect() {
  const u = new URL("/control", location.href);
  u.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  if (state.token) u.searchParams.set("token", state.token);
  ws = new WebSocket(u);
  setConn("connecting");
  let since = 0;
  ws.onopen = () => {
    wsRetry = 500;
    setConn("open", "live");
    since = state.lastJournalSeq;
    ws.send(JSON.stringify({ id: 1, op: "subscribe", since_seq: since, buffer: 4096 }));
  };
  ws.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    if (m.event === "decision" || m.event === "step") {
      addJournal(m);
      scheduleRender();
    } else if (m.event === "lost") {
      notice(`the server dropped ${m.count} event(s) this page was too slow for`);
    } else if (m.id === 1 && !m.ok) {
      notice("subscribe: " + m.error.message);
    } else if (m.id === 1 && m.result.last_seq < since) {
      // A new server (restarted): its journal starts again from 1.
      // Forget the old seqs and subscribe again from the start.
      state.journal.clear();
      state.traced.clear();
      state.lastJournalSeq = 0;
      ws.close();
    }
  };
  ws.onclose = () => {
    setConn("closed", "reconnecting");
    setTimeout(connect, wsRetry);
    wsRetry = Math.min(wsRetry * 2, 5000);
  };
}

async function pollTrace() {
  try {
    let more = true;
    while (more) {
      const page = await getTrace(state.lastTraceSeq, TRACE_PAGE, true);
      const n = (page.messages || []).length;
      addTrace(page);
      more = n === TRACE_PAGE;
      if (n > 0 || (page.webhooks || []).length) scheduleRender();
    }
  } catch (e) {
    if (e.status !== 401) setConn("closed", "no trace: " + e.message);
  }
  setTimeout(pollTrace, TRACE_POLL_MS);
}

async function pollStats() {
  try {
    await refreshStats();
  } catch (e) {
    if (e.status !== 401) setConn("closed", "offline");
  }
  setTimeout(pollStats, STATS_POLL_MS);
}

function tick() {
  if (state.view.follow && !state.view.paused) scheduleRender();
  setTimeout(tick, 250);
}

function goLive() {
  if (state.live) return;
  state.live = true;
  connect();
  setTimeout(pollTrace, TRACE_POLL_MS);
  setTimeout(pollStats, STATS_POLL_MS);
  tick();
}

// ---- start ----

function showMain() {
  $("follow").checked = state.view.follow;
  const sel = $("span-select");
  sel.value = [...sel.options].some((o) => +o.value === state.view.span) ? String(state.view.span) : "";
  $("auth").hidden = true;
  $("main").hidden = false;
  renderLegend();
  renderPanels();
  renderTimeline();
}

let tokenWired = false;
function askToken(why) {
  if (state.exported) return;
  $("main").hidden = true;
  $("auth").hidden = false;
  $("token-form").hidden = false;
  $("token-error").textContent = why || "";
  if (tokenWired) return;
  tokenWired = true;
  $("token-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    state.token = $("token-input").value.trim();
    sessionStorage.setItem("stunfault-token", state.token);
    $("token-error").textContent = "";
    try {
      ingest(await snapshot());
      fitWindow();
      showMain();
      goLive();
    } catch (e) {
      $("token-error").textContent = e.message;
    }
  });
}

async function start() {
  const boot = JSON.parse($("stunfault-data").textContent || "null") || { auth: "ok" };
  wireTimeline();
  wireControls();
  if (boot.exported) {
    state.exported = boot.exported;
    document.body.classList.add("exported");
    ingest(boot.data || {});
    fitWindow();
    showMain();
    return;
  }
  const url = new URL(location.href);
  if (url.searchParams.has("token")) {
    state.token = url.searchParams.get("token");
    sessionStorage.setItem("stunfault-token", state.token);
    url.searchParams.delete("token");
    history.replaceState(null, "", url);
  } else {
    state.token = sessionStorage.getItem("stunfault-token") || "";
  }
  if (boot.auth === "origin") {
    $("auth").hidden = false;
    $("token-form").hidden = true;
    $("origin-refused").hidden = false;
    return;
  }
  if (boot.auth === "ok" && boot.data) {
    ingest(boot.data);
  } else if (boot.auth === "token" && !state.token) {
    askToken("");
    return;
  } else {
    try {
      ingest(await snapshot());
    } catch (e) {
      if (e.status === 401) return; // askToken is showing
      notice("loading: " + e.message);
    }
  }
  fitWindow();
  showMain();
  goLive();
}

// For tests and the curious: the page's state and its export.
window.stunfault = { state, exportHTML, renderTimeline };

start();
