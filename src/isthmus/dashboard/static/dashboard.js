// The Isthmus dashboard (docs/dashboard.md): plain JavaScript, no build step, no library.
//
// Everything shown comes from the ordinary API, with the credentials the user
// entered (sessionStorage, sent as headers; never in a URL):
//   - routers, VPN services and site connections, listed at start and every 30 s;
//   - the event stream (GET /v2.0/vpn/events?stream=true), read with fetch() because
//     EventSource cannot send headers; each event re-fetches the objects it names, so
//     a status change shows as soon as it is recorded;
//   - the connections again every few seconds (?refresh=N, default 5), for the
//     traffic counters drawn as sparklines;
//   - a connection's peer configurations, downloaded on demand.
// The DOM is built with textContent only: nothing the API says is parsed as HTML.
"use strict";

const API = new URL("../", location.href);   // the page is at <api>/dashboard/
const STORE = "isthmus.dashboard.credentials";
const EVENTS_SHOWN = 50;
const SAMPLES_KEPT = 60;
const REFRESH_S = clampedRefresh(new URLSearchParams(location.search).get("refresh"));
const FULL_RELOAD_EVERY = Math.max(1, Math.round(30 / REFRESH_S));
const RETRY_MS = 2000;          // what the stream's "retry:" says too
const POLL_AFTER_503_MS = 30000;

const state = {
  routers: new Map(), services: new Map(), connections: new Map(),
  traffic: new Map(),           // connection id -> [{t, bytes_in, bytes_out}]
  events: [],                   // newest first
  lastEventId: null,
  open: new Set(),              // connection ids whose detail row is open
  peer: new Map(),              // connection id -> {state, formats?, message?}
  session: null,                // AbortController of the current credentials' work
  refused: false,               // the API refused these credentials: stop asking
};

function clampedRefresh(raw) {
  const value = Number(raw);
  return Number.isFinite(value) && value >= 1 && value <= 300 ? value : 5;
}

// ---------------------------------------------------------------- the API

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function credentials() {
  try {
    return JSON.parse(sessionStorage.getItem(STORE)) || {};
  } catch (err) {
    return {};
  }
}

function authHeaders() {
  const c = credentials();
  if (c.mode === "token") return c.token ? {"X-Auth-Token": c.token} : {};
  const headers = {};
  if (c.project) headers["X-Project-Id"] = c.project;
  if (c.roles) headers["X-Roles"] = c.roles;
  if (c.user) headers["X-User-Id"] = c.user;
  return headers;
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    return (body.NeutronError && body.NeutronError.message)
      || (body.error && body.error.message) || response.statusText;
  } catch (err) {
    return response.statusText;
  }
}

async function request(path, {accept = "application/json", headers = {}} = {}) {
  const signal = state.session && state.session.signal;
  const url = new URL(path, API);
  let response;
  try {
    response = await fetch(url, {headers: {Accept: accept, ...authHeaders(), ...headers},
                                 cache: "no-store", signal});
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, `the API at ${API.origin} is unreachable (${err.message})`);
  }
  if (!response.ok) throw new ApiError(response.status, await errorMessage(response));
  return response;
}

async function getJSON(path) {
  return (await request(path)).json();
}

// Every page of a list (the server may cap pages: pagination_max_limit).
async function listAll(path, plural) {
  const items = [];
  let next = path;
  while (next) {
    const body = await getJSON(next);
    items.push(...body[plural]);
    const link = (body[`${plural}_links`] || []).find((l) => l.rel === "next");
    next = link ? link.href : null;
  }
  return items;
}

// ---------------------------------------------------------------- loading

function keep(map, items) {
  map.clear();
  for (const item of items) map.set(item.id, item);
}

function sample(conn) {
  const traffic = conn["isthmus:traffic"];
  if (!traffic) return;
  const samples = state.traffic.get(conn.id) || [];
  const now = Date.now();
  const point = {t: now, bytes_in: traffic.bytes_in || 0, bytes_out: traffic.bytes_out || 0};
  if (samples.length && now - samples[samples.length - 1].t < 1000) samples.pop();
  samples.push(point);
  if (samples.length > SAMPLES_KEPT) samples.shift();
  state.traffic.set(conn.id, samples);
}

async function loadAll() {
  const [routers, services, connections] = await Promise.all([
    listAll("v2.0/routers", "routers"),
    listAll("v2.0/vpn/vpnservices", "vpnservices"),
    listAll("v2.0/vpn/ipsec-site-connections", "ipsec_site_connections"),
  ]);
  keep(state.routers, routers);
  keep(state.services, services);
  keep(state.connections, connections);
  connections.forEach(sample);
  showError(null);
  render();
}

async function refreshConnections() {
  const connections = await listAll("v2.0/vpn/ipsec-site-connections", "ipsec_site_connections");
  keep(state.connections, connections);
  connections.forEach(sample);
  render();
}

// One object again, or gone (404); the others keep what they have.
async function refetch(map, path, singular, id) {
  try {
    const item = (await getJSON(`${path}/${encodeURIComponent(id)}`))[singular];
    map.set(id, item);
    return item;
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      map.delete(id);
      return null;
    }
    throw err;
  }
}

// Events name what changed; what they name is fetched again, together.
const pending = {full: false, routers: new Set(), services: new Set(), connections: new Set()};
let flushing = null;

function queueRefresh(event) {
  const id = event.resource_id;
  const created = event.action === "create" || event.action === "delete";
  if (event.resource_type === "ipsec_site_connection") {
    const conn = state.connections.get(id);
    if (!conn || created) pending.full = true;
    else {
      pending.connections.add(id);
      pending.services.add(conn.vpnservice_id);   // its roll-up changed too
    }
  } else if (event.resource_type === "vpnservice") {
    if (!state.services.has(id) || created) pending.full = true;
    else pending.services.add(id);
  } else if (event.resource_type === "router") {
    if (created) pending.full = true;
    else if (state.routers.has(id)) pending.routers.add(id);
  }
  if (!flushing) flushing = Promise.resolve().then(flush);
}

async function flush() {
  try {
    while (pending.full || pending.routers.size || pending.services.size
           || pending.connections.size) {
      const full = pending.full;
      const routers = [...pending.routers], services = [...pending.services];
      const connections = [...pending.connections];
      pending.full = false;
      pending.routers.clear(); pending.services.clear(); pending.connections.clear();
      if (full) {
        await loadAll();
        continue;
      }
      await Promise.all([
        ...routers.map((id) => refetch(state.routers, "v2.0/routers", "router", id)),
        ...services.map((id) => refetch(state.services, "v2.0/vpn/vpnservices", "vpnservice", id)),
        ...connections.map((id) => refetch(state.connections, "v2.0/vpn/ipsec-site-connections",
                                           "ipsec_site_connection", id)
          .then((conn) => conn && sample(conn))),
      ]);
      render();
    }
  } catch (err) {
    failed(err);
  } finally {
    flushing = null;
  }
}

// ---------------------------------------------------------------- the event stream

function parseFrame(frame) {
  const data = [];
  for (const line of frame.split("\n")) {
    if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  return data.length ? JSON.parse(data.join("\n")) : null;
}

function onEvent(event) {
  if (state.lastEventId !== null && event.id <= state.lastEventId) return;
  state.lastEventId = event.id;
  state.events.unshift(event);
  state.events.length = Math.min(state.events.length, EVENTS_SHOWN);
  renderEvents();
  queueRefresh(event);
}

async function readStream() {
  const headers = {};
  if (state.lastEventId !== null) headers["Last-Event-ID"] = String(state.lastEventId);
  const response = await request("v2.0/vpn/events?stream=true",
                                 {accept: "text/event-stream", headers});
  setStreamState("live");
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return;
    buffer = (buffer + value).replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = parseFrame(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (event) onEvent(event);
    }
  }
}

// The newest events by list, for when the server has no stream to spare (503).
async function pollEvents() {
  const body = await getJSON("v2.0/vpn/events?sort_key=id&sort_dir=desc&limit=" + EVENTS_SHOWN);
  const fresh = body.events.filter((e) => state.lastEventId === null || e.id > state.lastEventId);
  if (fresh.length === EVENTS_SHOWN) pending.full = true;   // some may be missing: reload
  fresh.reverse().forEach(onEvent);
}

async function followEvents(signal) {
  while (!signal.aborted && !state.refused) {
    setStreamState("connecting");
    try {
      await readStream();
      setStreamState("reconnecting");
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof ApiError && err.status === 503) {
        setStreamState("polling");
        const until = Date.now() + POLL_AFTER_503_MS;
        while (Date.now() < until && !signal.aborted) {
          await pollEvents().catch(failed);
          await sleep(RETRY_MS, signal);
        }
        continue;
      }
      if (!failed(err)) return;   // refused: the user must change credentials
      setStreamState("reconnecting");
    }
    await sleep(RETRY_MS, signal);
  }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, {once: true});
  });
}

// ---------------------------------------------------------------- errors

// Show what went wrong; false when the API refused the credentials (no point retrying).
function failed(err) {
  if (err && err.name === "AbortError") return false;
  if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
    state.refused = true;
    const what = err.status === 401
      ? "The API asks for authentication (401)"
      : "The API does not allow this (403)";
    showError(`${what}: ${err.message} Enter other credentials.`);
    setStreamState("refused");
    document.getElementById("credentials").hidden = false;
    renderRefused();
    return false;
  }
  const status = err instanceof ApiError && err.status ? ` (${err.status})` : "";
  showError(`The API failed${status}: ${err.message}`);
  return true;
}

function showError(text) {
  const box = document.getElementById("error");
  box.textContent = text || "";
  box.hidden = !text;
}

function setStreamState(name) {
  const labels = {idle: "events: idle", connecting: "events: connecting…", live: "events: live",
                  reconnecting: "events: reconnecting…", refused: "events: refused",
                  polling: "events: polling (no stream free)"};
  const badge = document.getElementById("stream-state");
  badge.dataset.state = name;
  badge.textContent = labels[name];
}

// ---------------------------------------------------------------- drawing

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

function svg(tag, attrs = {}) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, value);
  return el;
}

function statusBadge(status) {
  const kind = status === "ACTIVE" ? "ok" : status === "DOWN" ? "down"
    : status === "ERROR" ? "error" : String(status).startsWith("PENDING") ? "pending" : "other";
  return h("span", {class: `status ${kind}`, "data-status": status}, status);
}

function label(item, fallback) {
  return item && item.name ? item.name : fallback;
}

function shortId(id) {
  return String(id).slice(0, 8);
}

function bytes(n) {
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i += 1; }
  return `${n >= 100 || i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}

// Bytes per second in and out between samples, drawn over the last SAMPLES_KEPT refreshes.
function sparkline(samples) {
  const width = 120, height = 28, pad = 2;
  const box = svg("svg", {class: "spark", width, height, viewBox: `0 0 ${width} ${height}`,
                          role: "img"});
  const rates = [];
  for (let i = 1; i < samples.length; i++) {
    const dt = (samples[i].t - samples[i - 1].t) / 1000;
    if (dt <= 0) continue;
    rates.push({t: samples[i].t,
                in: Math.max(0, samples[i].bytes_in - samples[i - 1].bytes_in) / dt,
                out: Math.max(0, samples[i].bytes_out - samples[i - 1].bytes_out) / dt});
  }
  // From the oldest sample kept to now: a young line fills the box, an old one scrolls.
  const end = Date.now();
  const span = Math.max(end - (samples.length ? samples[0].t : end), 10 * REFRESH_S * 1000);
  const peak = Math.max(1, ...rates.map((r) => Math.max(r.in, r.out)));
  const x = (t) => pad + (width - 2 * pad) * Math.max(0, 1 - (end - t) / span);
  const y = (v) => height - pad - (height - 2 * pad) * (v / peak);
  box.append(svg("line", {class: "base", x1: pad, x2: width - pad, y1: height - pad,
                          y2: height - pad}));
  for (const direction of ["in", "out"]) {
    if (rates.length < 2) continue;
    const points = rates.map((r) => `${x(r.t).toFixed(1)},${y(r[direction]).toFixed(1)}`);
    box.append(svg("polyline", {class: direction, points: points.join(" ")}));
  }
  const last = rates[rates.length - 1];
  const title = svg("title");
  title.textContent = last ? `in ${bytes(last.in)}/s, out ${bytes(last.out)}/s (peak ${bytes(peak)}/s)`
    : "no rate yet: two samples are needed";
  box.append(title);
  return box;
}

function trafficCell(conn) {
  const traffic = conn["isthmus:traffic"] || {};
  return h("td", {class: "traffic"},
    sparkline(state.traffic.get(conn.id) || []),
    h("span", {class: "totals"},
      h("span", {class: "in", title: "bytes in"}, "↓ " + bytes(traffic.bytes_in || 0)),
      h("span", {class: "out", title: "bytes out"}, "↑ " + bytes(traffic.bytes_out || 0))));
}

function reasonCell(detail) {
  if (!detail) return h("td", {class: "reason"}, h("span", {class: "muted"}, "—"));
  const warnings = (detail.warnings || []).map((w) => h("span", {class: "chip warn"}, w.reason));
  return h("td", {class: "reason"},
    detail.reason ? h("span", {class: `chip ${detail.simulated ? "sim" : ""}`}, detail.reason) : null,
    warnings,
    h("span", {class: "message"}, detail.message || ""));
}

// docs/diagnosis.md's order; fields a driver adds later follow, as they come.
const SA_FIELDS = ["state", "version", "encryption", "integrity", "prf", "dh_group", "protocol",
                   "mode", "local_spi", "remote_spi", "established_at", "rekey_at"];

function saList(title, sa) {
  if (!sa) return h("div", {class: "sa"}, h("h4", {}, title), h("span", {class: "muted"}, "none"));
  const keys = [...SA_FIELDS.filter((k) => k in sa),
                ...Object.keys(sa).filter((k) => !SA_FIELDS.includes(k))];
  const rows = keys.map((key) =>
    h("div", {class: "kv"}, h("dt", {}, key.replace(/_/g, " ")), h("dd", {}, String(sa[key]))));
  return h("div", {class: "sa"}, h("h4", {}, title), h("dl", {}, rows));
}

function detailRow(conn, columns) {
  const detail = conn["isthmus:status_detail"] || {};
  const failure = detail.last_failure;
  return h("tr", {class: "detail-row", "data-detail-of": conn.id},
    h("td", {colspan: columns},
      h("div", {class: "detail-grid"},
        saList("IKE SA", detail.ike), saList("CHILD SA", detail.child),
        h("div", {class: "stack"},
        h("div", {class: "sa"}, h("h4", {}, "Connection"),
          h("dl", {},
            h("div", {class: "kv"}, h("dt", {}, "id"), h("dd", {}, h("code", {}, conn.id))),
            h("div", {class: "kv"}, h("dt", {}, "peer id"), h("dd", {}, conn.peer_id || "")),
            h("div", {class: "kv"}, h("dt", {}, "peer cidrs"),
              h("dd", {}, (conn.peer_cidrs || []).join(", ") || "endpoint groups")),
            h("div", {class: "kv"}, h("dt", {}, "admin state"),
              h("dd", {}, conn.admin_state_up ? "up" : "down")))),
        h("div", {class: "sa"}, h("h4", {}, "Last failure"),
          failure ? h("p", {}, h("span", {class: "chip"}, failure.reason), " ",
                      failure.message || "", " ", h("small", {class: "muted"}, failure.at || ""))
            : h("span", {class: "muted"}, "none")),
        peerConfigPanel(conn)))));
}

// ---------------------------------------------------------------- peer configurations

function peerConfigPanel(conn) {
  const info = state.peer.get(conn.id) || {state: "loading"};
  const panel = h("div", {class: "sa peer-config", "data-peer-config": info.state},
                  h("h4", {}, "Peer configuration"));
  if (info.state === "loading") panel.append(h("span", {class: "muted"}, "asking…"));
  else if (info.state === "unavailable") {
    panel.append(h("span", {class: "muted"}, "peer configurations unavailable"));
  } else if (info.state === "error") panel.append(h("span", {class: "bad"}, info.message));
  else {
    panel.append(h("ul", {}, info.formats.map((format) => h("li", {},
      h("button", {type: "button", class: "download", "data-format": format.name,
                   onclick: () => downloadPeerConfig(conn, format)}, format.name),
      " ", h("small", {}, format.description || "")))));
  }
  return panel;
}

async function loadPeerFormats(conn) {
  const path = `v2.0/vpn/ipsec-site-connections/${encodeURIComponent(conn.id)}/peer-config`;
  try {
    const body = await getJSON(path);
    state.peer.set(conn.id, {state: "ready", formats: body.peer_config_formats || []});
  } catch (err) {
    if (err.name === "AbortError") return;
    if (err instanceof ApiError && err.status === 404) {
      state.peer.set(conn.id, {state: "unavailable"});
    } else {
      state.peer.set(conn.id, {state: "error", message: err.message});
    }
  }
  render();
}

function attachmentName(response, fallback) {
  const header = response.headers.get("Content-Disposition") || "";
  const match = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(header);
  let name = fallback;
  try {
    if (match) name = decodeURIComponent(match[1]);
  } catch (err) {
    // a malformed escape: keep the format's own file name
  }
  return name.replace(/[\/\\]/g, "_");
}

async function downloadPeerConfig(conn, format) {
  const path = `v2.0/vpn/ipsec-site-connections/${encodeURIComponent(conn.id)}/peer-config`
    + `?format=${encodeURIComponent(format.name)}`;
  try {
    const response = await request(path, {accept: "text/plain, */*"});
    const blob = await response.blob();
    const link = h("a", {href: URL.createObjectURL(blob),
                         download: attachmentName(response, format.filename || format.name)});
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 60000);
  } catch (err) {
    failed(err);
  }
}

// ---------------------------------------------------------------- the page

function toggleDetail(conn) {
  if (state.open.has(conn.id)) state.open.delete(conn.id);
  else {
    state.open.add(conn.id);
    if (!state.peer.has(conn.id)) loadPeerFormats(conn);
  }
  render();
}

const CONNECTION_COLUMNS = ["", "Connection", "Peer", "Status", "Why", "Traffic"];

// The status each connection had when last drawn: a row whose status changed flashes once.
const drawnStatus = new Map();

function connectionRows(conn) {
  const open = state.open.has(conn.id);
  const changed = drawnStatus.has(conn.id) && drawnStatus.get(conn.id) !== conn.status;
  drawnStatus.set(conn.id, conn.status);
  const row = h("tr", {class: changed ? "connection changed" : "connection",
                       "data-connection-id": conn.id},
    h("td", {}, h("button", {type: "button", class: "toggle", "aria-expanded": String(open),
                             title: "Status detail and peer configuration",
                             onclick: () => toggleDetail(conn)}, open ? "▾" : "▸")),
    h("td", {class: "name"}, label(conn, shortId(conn.id)),
      conn.admin_state_up ? null : h("span", {class: "chip muted"}, "admin down")),
    h("td", {}, h("code", {}, conn.peer_address)),
    h("td", {}, statusBadge(conn.status)),
    reasonCell(conn["isthmus:status_detail"]),
    trafficCell(conn));
  return open ? [row, detailRow(conn, CONNECTION_COLUMNS.length)] : [row];
}

function serviceBlock(service, connections) {
  const detail = service["isthmus:status_detail"] || {};
  return h("section", {class: "service", "data-service-id": service.id},
    h("header", {},
      h("h3", {}, label(service, `service ${shortId(service.id)}`)),
      statusBadge(service.status),
      service.admin_state_up ? null : h("span", {class: "chip muted"}, "admin down"),
      h("span", {class: "rollup"}, detail.message || ""),
      h("span", {class: "where"}, service.external_v4_ip || service.external_v6_ip || "")),
    connections.length
      ? h("table", {class: "connections"},
          h("thead", {}, h("tr", {}, CONNECTION_COLUMNS.map((c) => h("th", {}, c)))),
          h("tbody", {}, connections.map(connectionRows)))
      : h("p", {class: "muted"}, "No site connections."));
}

function render() {
  const byService = new Map();
  for (const conn of state.connections.values()) {
    if (!byService.has(conn.vpnservice_id)) byService.set(conn.vpnservice_id, []);
    byService.get(conn.vpnservice_id).push(conn);
  }
  const byRouter = new Map();
  for (const service of state.services.values()) {
    if (!byRouter.has(service.router_id)) byRouter.set(service.router_id, []);
    byRouter.get(service.router_id).push(service);
  }
  const byName = (a, b) => String(a.name || a.id).localeCompare(String(b.name || b.id));
  const cards = [...byRouter.entries()].map(([routerId, services]) => {
    const router = state.routers.get(routerId);
    return h("article", {class: "router", "data-router-id": routerId},
      h("header", {},
        h("h2", {}, router ? label(router, `router ${shortId(routerId)}`)
          : `router ${shortId(routerId)}`),
        router ? statusBadge(router.status) : h("span", {class: "muted"}, "(not visible)"),
        router && router["isthmus:status_detail"]
          ? h("span", {class: "rollup"}, router["isthmus:status_detail"]) : null,
        h("code", {class: "id"}, routerId)),
      services.sort(byName).map((s) => serviceBlock(s, (byService.get(s.id) || []).sort(byName))));
  });
  const others = [...state.routers.keys()].filter((id) => !byRouter.has(id)).length;
  const section = document.getElementById("routers");
  section.replaceChildren(...cards);
  if (!cards.length) section.append(h("p", {class: "empty"}, "No VPN services to show."));
  if (others) {
    section.append(h("p", {class: "muted"},
      `${others} other router${others === 1 ? "" : "s"} without VPN services.`));
  }
  renderEvents();
}

function renderRefused() {
  document.getElementById("routers").replaceChildren(
    h("p", {class: "empty"}, "Nothing to show: the API refused these credentials."));
}

function eventSubject(event) {
  const maps = {ipsec_site_connection: state.connections, vpnservice: state.services,
                router: state.routers};
  const item = maps[event.resource_type] && maps[event.resource_type].get(event.resource_id);
  const kind = event.resource_type.replace(/_/g, " ").replace("ipsec site ", "");
  return `${kind} ${label(item, shortId(event.resource_id))}`;
}

function eventTime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleTimeString([], {hour12: false});
}

function renderEvents() {
  const list = document.getElementById("events");
  list.replaceChildren(...state.events.map((event) => {
    const what = event.kind === "status"
      ? [statusBadge(event.old_status || "—"), " → ", statusBadge(event.status)]
      : [h("span", {class: "action"}, event.action),
         event.changed && event.changed.length ? ` (${event.changed.join(", ")})` : ""];
    return h("li", {class: `event kind-${event.kind}`, "data-event-id": event.id,
                    "data-resource-id": event.resource_id},
      h("time", {datetime: event.created_at, title: event.created_at}, eventTime(event.created_at)),
      h("span", {class: "subject"}, eventSubject(event)),
      h("span", {class: "what"}, what),
      event.reason ? h("span", {class: "why"}, event.reason) : null);
  }));
  document.getElementById("events-note").textContent =
    state.events.length ? `the last ${state.events.length}` : "none yet";
}

// ---------------------------------------------------------------- credentials

function describeIdentity() {
  const c = credentials();
  if (c.mode === "token") return c.token ? "Keystone token" : "no token";
  if (!c.project) return "no project header (noauth: admin)";
  return `project ${c.project}${c.roles ? ` (${c.roles})` : ""}`;
}

function setupCredentialsForm() {
  const form = document.getElementById("credentials");
  const showMode = () => {
    const mode = form.elements.mode.value;
    for (const fields of form.querySelectorAll(".fields")) fields.hidden = fields.dataset.mode !== mode;
  };
  const c = credentials();
  form.elements.mode.value = c.mode === "token" ? "token" : "headers";
  for (const name of ["project", "roles", "user", "token"]) form.elements[name].value = c[name] || "";
  showMode();
  form.addEventListener("change", showMode);
  form.addEventListener("submit", (submit) => {
    submit.preventDefault();
    const mode = form.elements.mode.value;
    const value = (name) => form.elements[name].value.trim();
    const chosen = mode === "token" ? {mode, token: value("token")}
      : {mode, project: value("project"), roles: value("roles"), user: value("user")};
    sessionStorage.setItem(STORE, JSON.stringify(chosen));
    form.hidden = true;
    start();
  });
  document.getElementById("credentials-clear").addEventListener("click", () => {
    sessionStorage.removeItem(STORE);
    form.reset();
    showMode();
    start();
  });
  document.getElementById("credentials-toggle").addEventListener("click", () => {
    form.hidden = !form.hidden;
  });
}

// ---------------------------------------------------------------- start

// (Re)start everything with the current credentials: the newest events first (where the
// stream starts), then the stream, then the objects, so that no change falls between.
async function start() {
  if (state.session) state.session.abort();
  const session = state.session = new AbortController();
  Object.assign(state, {refused: false, lastEventId: null, events: []});
  for (const map of [state.routers, state.services, state.connections, state.traffic, state.peer]) {
    map.clear();
  }
  document.getElementById("identity").textContent = describeIdentity();
  showError(null);
  render();
  try {
    const body = await getJSON("v2.0/vpn/events?sort_key=id&sort_dir=desc&limit=" + EVENTS_SHOWN);
    state.events = body.events;
    state.lastEventId = body.events.length ? body.events[0].id : 0;
    followEvents(session.signal);
    await loadAll();
  } catch (err) {
    // Unreachable or failing: try again while these credentials stand; refused: stop.
    if (failed(err)) {
      await sleep(RETRY_MS, session.signal);
      if (!session.signal.aborted) start();
    }
  }
}

function tick(count) {
  if (!state.session || state.refused || document.hidden) return;
  const work = count % FULL_RELOAD_EVERY === 0 ? loadAll() : refreshConnections();
  work.catch(failed);
}

document.addEventListener("DOMContentLoaded", () => {
  setupCredentialsForm();
  setStreamState("idle");
  start();
  let count = 0;
  setInterval(() => tick(++count), REFRESH_S * 1000);
});
