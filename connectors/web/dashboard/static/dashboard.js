// The live dashboard: one EventSource, a full view on every change, rendered with DOM APIs
// (textContent only: titles and names come from partners and are never parsed as HTML).
"use strict";

const STALE_AFTER_MS = 12000; // two missed heartbeats
const PATTERNS = ["", "6 3", "2 3", "10 3 2 3", "1 5", "12 6"]; // lines differ by dash, not only colour

let actionId = new URLSearchParams(location.search).get("action");
let source = null;
let lastMessage = 0;
let retryMs = 1000;

const $ = (id) => document.getElementById(id);
// null: a figure of fewer than 3 other partners, withheld by the server (it would give one away).
const NOT_SHOWN = "not shown";
const fmt = (n) => (n === null || n === undefined ? NOT_SHOWN : Number(n).toLocaleString());
const pct = (r) => (r === null || r === undefined ? "—" : Math.round(r * 100) + "%");

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

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
  const since = lastMessage ? " Last update " + new Date(lastMessage).toLocaleTimeString() + "." : "";
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
  if (lastMessage && Date.now() - lastMessage > STALE_AFTER_MS) {
    setStatus("stale");
    // Dashboard accounts: admins invite and remove their partner's staff, organizers anyone's.
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
    const status = a.status === "active" ? "active" : "invited, link valid until " + new Date(a.link_expires_at).toLocaleString();
    const remove = el("button", { type: "button" }, "Remove");
    remove.addEventListener("click", () => removeAccount(a.email));
    return el("tr", { "data-email": a.email }, el("th", { scope: "row" }, a.email), el("td", {}, a.partner || "—"),
      el("td", {}, a.role), el("td", {}, status), el("td", {}, remove));
  }));
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
    new Date(invited.link_expires_at).toLocaleString() + "; they choose their password with it."), link);
  link.select();
  $("invite-form").reset();
  loadAccounts();
});

connect();
    lastMessage = Date.now() - STALE_AFTER_MS / 2; // give the new connection a moment
  }
}, 2000);

function render(view) {
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
}

function renderPicker(view) {
  const select = $("action-select");
  $("no-actions").hidden = view.actions.length > 0;
  $("action-picker").hidden = view.actions.length === 0;
  const options = view.actions.map((a) => {
    const when = a.starts_at ? " · " + new Date(a.starts_at).toLocaleString() : "";
    return el("option", { value: a.action_id, selected: view.action && a.action_id === view.action.action_id }, (a.title || a.action_id) + when);
  });
  select.replaceChildren(...options);
}

$("action-select").addEventListener("change", (e) => {
  actionId = e.target.value;
  const url = new URL(location.href);
  url.searchParams.set("action", actionId);
  history.replaceState(null, "", url);
  // Dashboard accounts: admins invite and remove their partner's staff, organizers anyone's.
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
    const status = a.status === "active" ? "active" : "invited, link valid until " + new Date(a.link_expires_at).toLocaleString();
    const remove = el("button", { type: "button" }, "Remove");
    remove.addEventListener("click", () => removeAccount(a.email));
    return el("tr", { "data-email": a.email }, el("th", { scope: "row" }, a.email), el("td", {}, a.partner || "—"),
      el("td", {}, a.role), el("td", {}, status), el("td", {}, remove));
  }));
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
    new Date(invited.link_expires_at).toLocaleString() + "; they choose their password with it."), link);
  link.select();
  $("invite-form").reset();
  loadAccounts();
});

connect();
});

function productionCell(row) {
  // A bar against the pledge line at 100%; the scale runs to 150%. The text says the same.
  const r = row.production_ratio;
  if (r === null && (row.pledged === null || row.attended === null)) {
    return el("td", { "data-metric": "production_ratio", class: "withheld" }, NOT_SHOWN);
  }
  const width = r === null ? 0 : Math.min(r, 1.5) / 1.5 * 100;
  const label = r === null ? "no pledge" : pct(r) + " of pledge";
  const bar = el("span", { class: "bar", "aria-hidden": "true" },
    el("span", { class: "fill" + (r !== null && r >= 1 ? " met" : ""), style: "width:" + width.toFixed(1) + "%" }),
    el("span", { class: "pledge-line", style: "left:" + (100 / 1.5).toFixed(1) + "%" }));
  return el("td", { "data-metric": "production_ratio" }, bar, el("span", { class: "pct" }, label));
}

const FIGURES = ["pledged", "rsvp_yes", "attended", "sent", "delivered", "failed", "opted_out"];

// A row whose every figure is withheld says so once, across the figure columns.
const allWithheld = (row, figures) => figures.every((f) => row[f] === null);
const withheldCell = (row, span) => el("td", { colspan: span, class: "withheld", "data-metric": "all" }, row.note);

function partnerCell(row, noted = true) {
  const th = el("th", { scope: "row" }, row.name);
  if (row.partner === null && row.partners > 1) th.append(el("span", { class: "sub" }, " (" + row.partners + " partners)"));
  if (row.note && noted) th.append(el("span", { class: "sub note" }, " (" + row.note + ")"));
  if (row.own) th.append(el("span", { class: "badge own" }, "you"));
  if (row.no_show) th.append(el("span", { class: "badge warn" }, "⚠ pledged, none turned out"));
  return th;
}

function actionRow(row, tag = "tr") {
  const attrs = { "data-partner": row.partner ?? "rest", class: row.no_show ? "no-show" : row.own ? "own" : null };
  if (allWithheld(row, FIGURES)) return el(tag, attrs, partnerCell(row, false), withheldCell(row, 9));
  const num = (metric) => el("td", { class: row[metric] === null ? "num withheld" : "num", "data-metric": metric }, fmt(row[metric]));
  return el(tag, attrs, partnerCell(row), num("pledged"), num("rsvp_yes"), num("attended"), productionCell(row),
    el("td", { class: "num", "data-metric": "show_rate" }, pct(row.show_rate)),
    num("sent"), num("delivered"), num("failed"), num("opted_out"));
}

function renderAction(action) {
  const table = $("action-table");
  $("chart-figure").hidden = !action;
  if (!action) {
    table.tBodies[0].replaceChildren();
    table.tFoot.replaceChildren();
    return;
  }
  $("action-heading").textContent = "Action: " + (action.title || action.action_id);
  const when = action.starts_at ? new Date(action.starts_at).toLocaleString() + (action.time_zone ? " (" + action.time_zone + ")" : "") : "time not posted yet";
  $("action-meta").textContent = action.action_id + " · " + when;
  table.tBodies[0].replaceChildren(...action.rows.map((r) => actionRow(r)));
  const total = actionRow(action.totals);
  total.dataset.partner = "total";
  table.tFoot.replaceChildren(total);
  renderChart(action.checkins);
}

function renderCapacity(rows) {
  const body = $("capacity-table").tBodies[0];
  body.replaceChildren(...rows.map((row) => {
    const trendText = row.trend === null ? "—" : row.trend + (row.recent.length ? " (" + row.recent.map(pct).join(" → ") + ")" : "");
    const attrs = { "data-partner": row.partner ?? "rest", class: row.own ? "own" : null };
    if (allWithheld(row, ["pledged", "attended"])) return el("tr", attrs, partnerCell(row, false), withheldCell(row, 5));
    return el("tr", attrs,
      partnerCell(row),
      el("td", { class: "num", "data-metric": "actions" }, fmt(row.actions)),
      el("td", { class: row.pledged === null ? "num withheld" : "num", "data-metric": "pledged" }, fmt(row.pledged)),
      el("td", { class: row.attended === null ? "num withheld" : "num", "data-metric": "attended" }, fmt(row.attended)),
      productionCell(row),
      el("td", { "data-metric": "trend" }, trendText));
  }));
}

function renderChart(series) {
  const chart = $("chart");
  const legend = $("chart-legend");
  if (!series.length) {
    chart.replaceChildren(el("p", { class: "empty" }, "No check-ins yet."));
    legend.replaceChildren();
    $("chart-table").tHead.replaceChildren();
    $("chart-table").tBodies[0].replaceChildren();
    return;
  }
  const W = 560, H = 220, P = 40;
  const times = series.flatMap((s) => s.points.map((p) => Date.parse(p[0])));
  const t0 = Math.min(...times), t1 = Math.max(...times, t0 + 60000);
  const max = Math.max(...series.map((s) => s.points[s.points.length - 1][1]), 1);
  const x = (t) => P + (t - t0) / (t1 - t0) * (W - 2 * P);
  const y = (n) => H - P + 8 - n / max * (H - 2 * P);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "Cumulative check-ins per partner: " + series.map((s) => s.name + " " + s.points[s.points.length - 1][1]).join(", "));
  const line = (x1, y1, x2, y2, cls) => {
    const l = document.createElementNS(ns, "line");
    Object.entries({ x1, y1, x2, y2, class: cls }).forEach(([k, v]) => l.setAttribute(k, v));
    return l;
  };
  const text = (tx, ty, s, anchor) => {
    const t = document.createElementNS(ns, "text");
    Object.entries({ x: tx, y: ty, "text-anchor": anchor }).forEach(([k, v]) => t.setAttribute(k, v));
    t.textContent = s;
    return t;
  };
  svg.append(line(P, y(0), W - P, y(0), "axis"), line(P, y(0), P, y(max), "axis"));
  svg.append(text(P - 4, y(max) + 4, fmt(max), "end"), text(P - 4, y(0) + 4, "0", "end"));
  svg.append(text(P, H - 4, new Date(t0).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }), "start"));
  svg.append(text(W - P, H - 4, new Date(t1).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }), "end"));
  legend.replaceChildren();
  series.forEach((s, i) => {
    let d = `M ${x(t0)} ${y(0)}`, prev = 0;
    for (const [at, n] of s.points) {
      const px = x(Date.parse(at));
      d += ` L ${px} ${y(prev)} L ${px} ${y(n)}`;
      prev = n;
    }
    d += ` L ${x(t1)} ${y(prev)}`;
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", d);
    path.setAttribute("class", "series s" + (i % 6));
    if (PATTERNS[i % 6]) path.setAttribute("stroke-dasharray", PATTERNS[i % 6]);
    svg.append(path);
    const sample = document.createElementNS(ns, "svg");
    sample.setAttribute("viewBox", "0 0 30 10");
    sample.setAttribute("aria-hidden", "true");
    sample.setAttribute("class", "sample");
    const l = line(0, 5, 30, 5, "series s" + (i % 6));
    if (PATTERNS[i % 6]) l.setAttribute("stroke-dasharray", PATTERNS[i % 6]);
    sample.append(l);
    legend.append(el("li", {}, sample, s.name + ": " + fmt(prev)));
  });
  chart.replaceChildren(svg);
  renderChartTable(series);
}

function renderChartTable(series) {
  const table = $("chart-table");
  const minutes = [...new Set(series.flatMap((s) => s.points.map((p) => p[0])))].sort();
  table.tHead.replaceChildren(el("tr", {}, el("th", { scope: "col" }, "Minute"), ...series.map((s) => el("th", { scope: "col", class: "num" }, s.name))));
  const running = series.map(() => 0);
  table.tBodies[0].replaceChildren(...minutes.map((m) => el("tr", {},
    el("th", { scope: "row" }, new Date(m).toLocaleTimeString()),
    ...series.map((s, i) => {
      const hit = s.points.find((p) => p[0] === m);
      if (hit) running[i] = hit[1];
      return el("td", { class: "num" }, fmt(running[i]));
    }))));
}

// Dashboard accounts: admins invite and remove their partner's staff, organizers anyone's.
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
    const status = a.status === "active" ? "active" : "invited, link valid until " + new Date(a.link_expires_at).toLocaleString();
    const remove = el("button", { type: "button" }, "Remove");
    remove.addEventListener("click", () => removeAccount(a.email));
    return el("tr", { "data-email": a.email }, el("th", { scope: "row" }, a.email), el("td", {}, a.partner || "—"),
      el("td", {}, a.role), el("td", {}, status), el("td", {}, remove));
  }));
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
    new Date(invited.link_expires_at).toLocaleString() + "; they choose their password with it."), link);
  link.select();
  $("invite-form").reset();
  loadAccounts();
});

connect();
