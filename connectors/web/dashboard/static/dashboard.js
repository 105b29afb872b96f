// The live dashboard: one EventSource, a full view on every change, rendered with DOM APIs
// (textContent only: titles and names come from partners and are never parsed as HTML).
// Times of an action are written in the action's own zone (the server formats its start as
// the texts do; chart ticks use Intl with the action's zone); the viewer's zone appears only
// where it is labelled "your time".
"use strict";

const STALE_AFTER_MS = 12000; // two missed heartbeats
const RECONNECT_STALE_EVERY_MS = 10000; // while stale, try a fresh connection this often

const params = new URLSearchParams(location.search);
let actionId = params.get("action");
let source = null;
let lastMessage = 0; // when the server was last heard from: only ever set by a message
let lastAttempt = 0; // when a stale page last tried a new connection
let retryMs = 1000;
let current = null; // the last view, to redraw the chart when the width changes

const $ = (id) => document.getElementById(id);
// null: a figure of fewer than 3 other partners, withheld by the server (it would give one away).
const NOT_SHOWN = "not shown";
const fmt = (n) => (n === null || n === undefined ? NOT_SHOWN : Number(n).toLocaleString());
const pct = (r) => (r === null || r === undefined ? "—" : Math.round(r * 100) + "%");
const yourTime = (iso) => new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) + " your time";

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

// --- Connection -------------------------------------------------------------------------

function connect() {
  if (source) source.close();
  const url = "/dashboard/events" + (actionId ? "?action=" + encodeURIComponent(actionId) : "");
  source = new EventSource(url);
  source.addEventListener("open", () => { retryMs = 1000; });
  source.addEventListener("view", (e) => { heard(); render(JSON.parse(e.data)); });
  source.addEventListener("heartbeat", () => heard());
  source.addEventListener("error", () => {
    setStatus("reconnecting");
    if (source.readyState === EventSource.CLOSED) reconnectLater();
  });
}

function reconnectLater() {
  // A closed stream is either a signed-out session (go to sign-in) or a server away (retry).
  fetch("/dashboard/view", { credentials: "same-origin" })
    .then((r) => { if (r.status === 401) location.assign("/dashboard/login"); else setTimeout(connect, retryMs); })
    .catch(() => setTimeout(connect, retryMs));
  retryMs = Math.min(retryMs * 2, 15000);
}

function heard() {
  lastMessage = Date.now();
  setStatus("live");
}

function setStatus(state) {
  const status = $("status");
  // "Last update" is when the server was last heard from, and stays so while it is away.
  const since = lastMessage ? " Last update " + new Date(lastMessage).toLocaleTimeString() + " (your time)." : "";
  const text = {
    live: "Live.",
    reconnecting: "Connection lost, reconnecting… Figures may be out of date." + since,
    stale: "Stale: no news from the server." + since + " Reconnecting…",
  }[state];
  if (status.dataset.state !== state || state !== "live") status.textContent = text;
  status.dataset.state = state;
  document.body.classList.toggle("stale", state !== "live");
}

setInterval(() => {
  const now = Date.now();
  if (!lastMessage || now - lastMessage <= STALE_AFTER_MS) return;
  setStatus("stale");
  if (now - lastAttempt > RECONNECT_STALE_EVERY_MS) { // a stream that went quiet without an error
    lastAttempt = now;
    connect();
  }
}, 2000);

// --- The view -----------------------------------------------------------------------------

function render(view) {
  current = view;
  const v = view.viewer;
  $("who").textContent = (v.role === "organizer" ? "· organizer" : "· partner " + v.partner) + (v.email ? " (" + v.email + ")" : "");
  renderAccounts(v);
  $("exports").hidden = view.viewer.role !== "organizer";
  $("active-actions").textContent = fmt(view.header.active_actions);
  $("active-actions-noun").textContent = view.header.active_actions === 1 ? "active action" : "active actions";
  for (const dd of $("header").querySelectorAll("dd")) dd.textContent = fmt(view.header[dd.dataset.metric]);
  $("header-note").textContent = view.header.note ? "These figures " + view.header.note + "." : "";
  $("header-note").hidden = !view.header.note;
  $("people").hidden = !view.people; // organizers only
  if (view.people) for (const dd of $("people-figures").querySelectorAll("dd")) dd.textContent = fmt(view.people[dd.dataset.metric]);
  renderPicker(view);
  renderAction(view.action);
  renderCapacity(view.capacity);
  markScrollers();
}

function renderPicker(view) {
  const select = $("action-select");
  $("no-actions").hidden = view.actions.length > 0;
  $("action-picker").hidden = view.actions.length === 0;
  const options = view.actions.map((a) => {
    const when = a.starts_local ? " · " + a.starts_local : "";
    return el("option", { value: a.action_id, selected: view.action && a.action_id === view.action.action_id }, (a.title || a.action_id) + when);
  });
  select.replaceChildren(...options);
}

// Back from the organizer console: what was done (the server wrote it), said once (a reload does not say it again).
if (params.has("posted")) {
  const url = new URL(location.href);
  url.searchParams.delete("posted");
  history.replaceState(null, "", url);
}

$("action-select").addEventListener("change", (e) => {
  actionId = e.target.value;
  $("posted").hidden = true; // it was about the action shown before
  const url = new URL(location.href);
  url.searchParams.set("action", actionId);
  history.replaceState(null, "", url);
  connect();
});

function startsIn(action) {
  const ms = Date.parse(action.starts_at) - Date.now();
  if (ms <= 0) return "starting now";
  const hours = ms / 3600000;
  if (hours < 1) return "starts in " + Math.max(1, Math.round(ms / 60000)) + " min";
  if (hours < 48) return "starts in " + Math.round(hours) + " h";
  return "starts in " + Math.round(hours / 24) + " days";
}

function productionCell(row, started) {
  // A bar against the pledge line at 100%; the scale runs to 150%. The text says the same.
  const r = row.production_ratio;
  if (r === null && (row.pledged === null || row.attended === null)) {
    return el("td", { "data-metric": "production_ratio", class: "withheld" }, NOT_SHOWN);
  }
  if (r === null) return el("td", { "data-metric": "production_ratio", class: "muted" }, "no pledge");
  const soFar = started ? "" : " so far";
  const width = Math.min(r, 1.5) / 1.5 * 100;
  const bar = el("span", { class: "bar", "aria-hidden": "true" },
    el("span", { class: "fill" + (r >= 1 ? " met" : ""), style: "width:" + width.toFixed(1) + "%" }),
    el("span", { class: "pledge-line", style: "left:" + (100 / 1.5).toFixed(1) + "%" }));
  return el("td", { "data-metric": "production_ratio" }, bar, el("span", { class: "pct" }, pct(r) + " of pledge" + soFar));
}

const FIGURES = ["pledged", "rsvp_yes", "attended", "sent", "delivered", "failed", "sending", "in_doubt", "deferred", "expired", "cancelled", "opted_out"];

// A row whose every figure is withheld says so once, across the figure columns.
const allWithheld = (row, figures) => figures.every((f) => row[f] === null);
const withheldCell = (row, span) => el("td", { colspan: span, class: "withheld", "data-metric": "all" }, row.note);

function partnerCell(row, noted = true) {
  const th = el("th", { scope: "row" }, row.name);
  if (row.partner === null && row.partners > 1) th.append(el("span", { class: "sub" }, " (" + row.partners + " partners)"));
  if (row.note && noted) th.append(el("span", { class: "sub note" }, " (" + row.note + ")"));
  if (row.own) th.append(" ", el("span", { class: "badge own" }, "you"));
  if (row.no_show) th.append(" ", el("span", { class: "badge warn" }, "⚠ pledged, none turned out"));
  return th;
}

function actionRow(row, action) {
  const attrs = { "data-partner": row.partner ?? "rest", class: row.no_show ? "no-show" : row.own ? "own" : null };
  const columns = 2 + FIGURES.length + (action.has_pledges ? 1 : 0); // the partner, show rate and production besides the figures
  if (allWithheld(row, FIGURES)) return el("tr", attrs, partnerCell(row, false), withheldCell(row, columns - 1));
  const num = (metric) => el("td", { class: row[metric] === null ? "num withheld" : "num", "data-metric": metric }, fmt(row[metric]));
  const production = action.has_pledges ? [productionCell(row, action.started)] : [];
  return el("tr", attrs, partnerCell(row), num("pledged"), num("rsvp_yes"), num("attended"), ...production,
    el("td", { class: "num", "data-metric": "show_rate" }, pct(row.show_rate) + (action.started || row.show_rate == null ? "" : " so far")),
    num("sent"), num("delivered"), num("failed"), num("sending"), num("in_doubt"), num("deferred"), num("expired"), num("cancelled"), num("opted_out"));
}

function renderAction(action) {
  const table = $("action-table");
  $("chart-figure").hidden = !action;
  const organizer = current && current.viewer.role === "organizer";
  $("checkin-link").hidden = !action || organizer; // partner staff check people in as their partner
  $("console-link").hidden = !action || !organizer;
  $("new-action-link").hidden = !organizer;
  if (!action) {
    table.tBodies[0].replaceChildren();
    table.tFoot.replaceChildren();
    return;
  }
  $("action-heading").textContent = "Action: " + (action.title || action.action_id);
  $("checkin-link").href = "/dashboard/checkin/" + encodeURIComponent(action.action_id);
  $("console-link").href = "/dashboard/console?action=" + encodeURIComponent(action.action_id);
  const when = action.starts_local ? action.starts_local : "time not posted yet";
  const meta = [action.action_id, when];
  if (action.starts_at && action.time_zone && Intl.DateTimeFormat().resolvedOptions().timeZone !== action.time_zone) {
    meta.push(yourTime(action.starts_at));
  }
  if (action.starts_at && !action.started) meta.push(startsIn(action) + ": figures so far");
  $("action-meta").textContent = meta.join(" · ");
  table.classList.toggle("no-pledges", !action.has_pledges);
  $("attended-heading").textContent = action.started ? "Turned out" : "Turned out so far";
  table.tBodies[0].replaceChildren(...action.rows.map((r) => actionRow(r, action)));
  const total = actionRow(action.totals, action);
  total.dataset.partner = "total";
  table.tFoot.replaceChildren(total);
  renderChart(action);
}

function renderCapacity(rows) {
  const body = $("capacity-table").tBodies[0];
  body.replaceChildren(...rows.map((row) => {
    const trendText = row.trend === null ? "—" : row.trend + (row.recent.length ? " (" + row.recent.map(pct).join(" → ") + ")" : "");
    const attrs = { "data-partner": row.partner ?? "rest", class: row.own ? "own" : null };
    if (allWithheld(row, ["pledged", "attended"])) return el("tr", attrs, partnerCell(row, false), withheldCell(row, 6));
    const num = (metric) => el("td", { class: row[metric] === null ? "num withheld" : "num", "data-metric": metric }, fmt(row[metric]));
    return el("tr", attrs, partnerCell(row), num("actions"), num("pledged"), num("attended"), productionCell(row, true),
      el("td", { class: "num", "data-metric": "show_rate" }, pct(row.show_rate)),
      el("td", { "data-metric": "trend" }, trendText));
  }));
}

// --- The chart ----------------------------------------------------------------------------
// A style per partner (from the server: its place in the coalition, so it never changes):
// 10 colours × 3 dash patterns give 30 distinct lines, and a marker shape on top.
const COLOURS = ["#0b5cad", "#b3261e", "#1a6b2f", "#6a3d9a", "#8a4b00", "#006d75", "#c2185b", "#4e5b00", "#3949ab", "#5d4037"];
const DASHES = ["", "8 4", "2 3"];
const MARKERS = ["circle", "square", "triangle", "diamond", "cross"];
const REST_STYLE = { colour: "#666", dash: "1 4", marker: "none" };

function lineStyle(i) {
  if (i < 0) return REST_STYLE;
  return { colour: COLOURS[i % 10], dash: DASHES[Math.floor(i / 10) % 3], marker: MARKERS[i % 5] };
}

const NS = "http://www.w3.org/2000/svg";
function svgEl(tag, attrs) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== "" && v !== undefined) node.setAttribute(k, v);
  return node;
}

function marker(kind, cx, cy, colour) {
  const r = 4;
  const common = { fill: colour, stroke: colour, class: "marker" };
  if (kind === "circle") return svgEl("circle", { cx, cy, r, ...common });
  if (kind === "square") return svgEl("rect", { x: cx - r, y: cy - r, width: 2 * r, height: 2 * r, ...common });
  if (kind === "triangle") return svgEl("path", { d: `M ${cx} ${cy - r - 1} L ${cx + r + 1} ${cy + r} L ${cx - r - 1} ${cy + r} Z`, ...common });
  if (kind === "diamond") return svgEl("path", { d: `M ${cx} ${cy - r - 1} L ${cx + r + 1} ${cy} L ${cx} ${cy + r + 1} L ${cx - r - 1} ${cy} Z`, ...common });
  if (kind === "cross") return svgEl("path", { d: `M ${cx - r} ${cy - r} L ${cx + r} ${cy + r} M ${cx - r} ${cy + r} L ${cx + r} ${cy - r}`, stroke: colour, "stroke-width": 2.5, fill: "none", class: "marker" });
  return null;
}

// Tick spacing: the first of these (minutes) that gives at most `most` ticks, else whole days.
const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080];
// Ticks fall on round times of the action's zone (midnight for days), not of UTC: the zone's
// offset at the start is added before rounding (a change of clocks later shifts them an hour).
function timeTicks(t0, t1, most, zone) {
  const span = (t1 - t0) / 60000;
  const step = (STEPS.find((m) => span / m <= most) || Math.ceil(span / most / 1440) * 1440) * 60000;
  const offset = zoneOffset(t0, zone);
  const ticks = [];
  for (let t = Math.ceil((t0 + offset) / step) * step - offset; t <= t1; t += step) ticks.push(t);
  return { ticks, step };
}

// How far ahead of UTC the zone's clocks are at t (milliseconds).
function zoneOffset(t, zone) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-US", { timeZone: zone, hourCycle: "h23", year: "numeric", month: "numeric",
    day: "numeric", hour: "numeric", minute: "numeric" }).formatToParts(new Date(t)).map((p) => [p.type, Number(p.value)]));
  return Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute) - Math.floor(t / 60000) * 60000;
}

// The time labels of a chart from t0 to t1: the clock alone when every point is on one day of
// the zone, else with the date (a rally's 6:05 PM and the next day's are not one minute), and
// with the year when the points are not all of one year (a sheet's mistyped year shows as such).
function timeLabels(t0, t1, zone) {
  const day = new Intl.DateTimeFormat("en-CA", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit" });
  const [first, last] = [day.format(new Date(t0)), day.format(new Date(t1))];
  const date = { month: "short", day: "numeric", ...(first.slice(0, 4) === last.slice(0, 4) ? {} : { year: "numeric" }) };
  return {
    clock: new Intl.DateTimeFormat([], { ...(first === last ? {} : date), hour: "numeric", minute: "2-digit", timeZone: zone }),
    date: new Intl.DateTimeFormat([], { ...date, timeZone: zone }),
  };
}

function renderChart(action) {
  // A line withheld (the rest of the coalition, made up of fewer than 3 partners) has no points: named, not drawn.
  const series = action.checkins.filter((s) => s.points);
  const withheld = action.checkins.filter((s) => !s.points).map((s) => el("li", { "data-partner": "rest" }, s.name + ": " + s.note));
  const chart = $("chart");
  const legend = $("chart-legend");
  if (!series.length) {
    chart.replaceChildren(el("p", { class: "empty" }, withheld.length ? "No check-ins of yours yet." : "No check-ins yet."));
    legend.replaceChildren(...withheld);
    $("chart-table").tHead.replaceChildren();
    $("chart-table").tBodies[0].replaceChildren();
    return;
  }
  const zone = action.time_zone || undefined;
  const W = Math.max(320, Math.round(chart.clientWidth || 640));
  const H = Math.round(Math.min(360, Math.max(200, W * 0.35)));
  const L = 48, R = 40, T = 12, B = 40; // room for the last tick label
  const times = series.flatMap((s) => s.points.map((p) => Date.parse(p[0])));
  const t0 = Math.min(...times), t1 = Math.max(...times, t0 + 60000);
  const max = Math.max(...series.map((s) => s.points[s.points.length - 1][1]), 1);
  const labels = timeLabels(t0, t1, zone);
  const x = (t) => L + (t - t0) / (t1 - t0) * (W - L - R);
  const y = (n) => H - B - n / max * (H - B - T);
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img",
    "aria-label": "Cumulative check-ins per partner: " + series.map((s) => s.name + " " + s.points[s.points.length - 1][1]).join(", ") });
  const text = (tx, ty, s, anchor, cls) => { const t = svgEl("text", { x: tx, y: ty, "text-anchor": anchor, class: cls }); t.textContent = s; return t; };
  svg.append(svgEl("line", { x1: L, y1: y(0), x2: W - R, y2: y(0), class: "axis" }), svgEl("line", { x1: L, y1: y(0), x2: L, y2: y(max), class: "axis" }));
  svg.append(text(L - 6, y(max) + 5, fmt(max), "end"), text(L - 6, y(0) + 5, "0", "end"));
  const { ticks, step } = timeTicks(t0, t1, Math.max(2, Math.floor((W - L - R) / 110)), zone);
  const tickLabel = step >= 1440 * 60000 ? labels.date : labels.clock;
  for (const t of ticks) {
    svg.append(svgEl("line", { x1: x(t), y1: y(0), x2: x(t), y2: y(0) + 5, class: "axis tick" }));
    svg.append(svgEl("line", { x1: x(t), y1: y(0), x2: x(t), y2: y(max), class: "grid" }));
    svg.append(text(x(t), H - B + 20, tickLabel.format(new Date(t)), "middle", "tick-label"));
  }
  $("chart-zone").textContent = zone ? "Times in the action's zone (" + zone + ")." : "";
  legend.replaceChildren();
  for (const s of series) {
    const style = lineStyle(s.style);
    let d = `M ${x(t0)} ${y(0)}`, prev = 0;
    const dots = [];
    for (const [at, n] of s.points) {
      const px = x(Date.parse(at));
      d += ` L ${px} ${y(prev)} L ${px} ${y(n)}`;
      prev = n;
      dots.push([px, y(n)]);
    }
    d += ` L ${x(t1)} ${y(prev)}`;
    svg.append(svgEl("path", { d, class: "series", stroke: style.colour, "stroke-dasharray": style.dash, "data-partner": s.partner ?? "rest" }));
    for (const [px, py] of dots.slice(-12)) { const m = marker(style.marker, px, py, style.colour); if (m) svg.append(m); }
    const sample = svgEl("svg", { viewBox: "0 0 36 12", "aria-hidden": "true", class: "sample" });
    sample.append(svgEl("line", { x1: 0, y1: 6, x2: 36, y2: 6, class: "series", stroke: style.colour, "stroke-dasharray": style.dash }));
    const m = marker(style.marker, 18, 6, style.colour);
    if (m) sample.append(m);
    legend.append(el("li", { "data-partner": s.partner ?? "rest" }, sample, s.name + ": " + fmt(prev)));
  }
  legend.append(...withheld);
  chart.replaceChildren(svg);
  renderChartTable(series, labels.clock);
}

function renderChartTable(series, clock) {
  const table = $("chart-table");
  const minutes = [...new Set(series.flatMap((s) => s.points.map((p) => p[0])))].sort();
  table.tHead.replaceChildren(el("tr", {}, el("th", { scope: "col" }, "Minute"), ...series.map((s) => el("th", { scope: "col", class: "num" }, s.name))));
  const running = series.map(() => 0);
  table.tBodies[0].replaceChildren(...minutes.map((m) => el("tr", {},
    el("th", { scope: "row" }, clock.format(new Date(m))),
    ...series.map((s, i) => {
      const hit = s.points.find((p) => p[0] === m);
      if (hit) running[i] = hit[1];
      return el("td", { class: "num" }, fmt(running[i]));
    }))));
}

let resizeTimer = 0;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => { if (current && current.action) renderChart(current.action); markScrollers(); }, 150);
});

// --- Wide tables on a phone: the partner column stays put, and a cue says there is more ---------

function markScrollers() {
  for (const box of document.querySelectorAll(".scroll")) {
    const more = box.scrollWidth > box.clientWidth + 1;
    box.classList.toggle("overflowing", more);
    if (more) { // keyboard users can scroll it too: a region named by its table's caption, not an unnamed stop
      box.tabIndex = 0;
      box.setAttribute("role", "region");
      const caption = box.querySelector("caption");
      if (caption) box.setAttribute("aria-label", caption.textContent + " (scrolls sideways)");
    } else {
      for (const name of ["tabindex", "role", "aria-label"]) box.removeAttribute(name);
    }
    box.classList.toggle("at-end", box.scrollLeft + box.clientWidth >= box.scrollWidth - 1);
    const cue = box.previousElementSibling;
    if (cue && cue.classList.contains("scroll-cue")) cue.hidden = !more;
  }
}
for (const box of document.querySelectorAll(".scroll")) {
  box.addEventListener("scroll", () => box.classList.toggle("at-end", box.scrollLeft + box.clientWidth >= box.scrollWidth - 1), { passive: true });
}

// --- Projector mode: larger type, the chart beside the table, nothing else (kept in the URL) ----

function setProjector(on) {
  document.body.classList.toggle("projector", on);
  $("projector-toggle").setAttribute("aria-pressed", String(on));
  $("projector-toggle").textContent = on ? "Leave projector mode" : "Projector mode";
  const url = new URL(location.href);
  if (on) url.searchParams.set("projector", "1"); else url.searchParams.delete("projector");
  history.replaceState(null, "", url);
  if (current && current.action) requestAnimationFrame(() => { renderChart(current.action); markScrollers(); });
}
$("projector-toggle").addEventListener("click", () => setProjector(!document.body.classList.contains("projector")));
if (params.get("projector") === "1") setProjector(true);

// --- Dashboard accounts: admins invite and remove their partner's staff, organizers anyone's ---
let accountsShown = false;

function renderAccounts(viewer) {
  $("accounts").hidden = !viewer.admin;
  if (!viewer.admin || accountsShown) return;
  accountsShown = true;
  if (viewer.role === "organizer") {
    $("invite-partner-field").hidden = false;
    $("invite-role").append(el("option", { value: "organizer" }, "organizer: sees every partner"));
  }
  loadAccounts();
}

async function loadAccounts() {
  const r = await fetch("/dashboard/accounts", { credentials: "same-origin" });
  if (!r.ok) return;
  const accounts = await r.json();
  $("accounts-table").tBodies[0].replaceChildren(...accounts.map((a) => {
    const status = a.status === "active" ? "active" : "invited, link valid until " + yourTime(a.link_expires_at);
    const remove = el("button", { type: "button" }, "Remove");
    remove.addEventListener("click", () => removeAccount(a.email));
    return el("tr", { "data-email": a.email }, el("th", { scope: "row" }, a.email), el("td", {}, a.partner || "—"),
      el("td", {}, a.role), el("td", {}, status), el("td", {}, remove));
  }));
  markScrollers();
}

async function removeAccount(email) {
  if (!confirm("Remove " + email + "? They are signed out at once.")) return;
  const r = await fetch("/dashboard/accounts/" + encodeURIComponent(email), { method: "DELETE", credentials: "same-origin" });
  $("invite-result").replaceChildren(r.ok ? "Removed " + email + "." : await problem(r));
  loadAccounts();
}

async function problem(r) {
  const body = await r.json().catch(() => ({}));
  return "Not done: " + (typeof body.detail === "string" ? body.detail : r.status + " " + r.statusText);
}

$("invite-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const body = { email: $("invite-email").value, role: $("invite-role").value };
  if (!$("invite-partner-field").hidden) body.partner = $("invite-partner").value.trim() || null;
  const r = await fetch("/dashboard/accounts", {
    method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const result = $("invite-result");
  if (!r.ok) {
    result.replaceChildren(await problem(r));
    return;
  }
  const invited = await r.json();
  const link = el("input", { type: "text", readonly: true, value: invited.link, "aria-label": "Sign-in link for " + invited.email, class: "link" });
  result.replaceChildren(el("p", {}, "Send this sign-in link to " + invited.email + " yourself. It works once, until " +
    yourTime(invited.link_expires_at) + "; they choose their password with it."), link);
  link.select();
  $("invite-form").reset();
  loadAccounts();
});

connect();
