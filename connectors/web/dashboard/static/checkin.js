// The door check-in page, on a volunteer's phone with a bad connection. Without this script the
// page is plain forms; with it: search as you type, and every tap goes into a queue kept in
// localStorage and sent in order, retried with backoff until the server answers. Each tap gets
// its event id when it is made, so a tap sent three times (an answer lost on the way back) is
// one check-in. Names are set with textContent only.
"use strict";

const main = document.querySelector("main");
const actionId = main.dataset.action;
const endpoint = "/dashboard/checkin/" + encodeURIComponent(actionId);
const QUEUE_KEY = "turnout-door-queue:" + actionId;
const $ = (id) => document.getElementById(id);

let people = []; // the roster: {ref, name, phone_last4, has_email, rsvp, checked_in, walk_in, can_undo}
let queue = load();
let flushing = false;
let retryMs = 1000;
let retryTimer = 0;

function load() {
  try { return JSON.parse(localStorage.getItem(QUEUE_KEY) || "[]"); } catch { return []; }
}
function save() {
  localStorage.setItem(QUEUE_KEY, JSON.stringify(queue));
  renderCount();
}

function newId() {
  // crypto.randomUUID needs a secure context; getRandomValues works on plain http too.
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : v);
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

// As the server folds a name (connectors.web.door.fold): case and accents ignored, apostrophes
// dropped ("oneil" finds O'Neil), dashes as a phone keyboard or a sheet from Excel types them one.
const fold = (s) => s.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
  .replace(/['\u2018\u2019\u02bc\u2032]/g, "").replace(/[\u2010\u2011\u2013\u2014]/g, "-");
function matches(p, q) {
  q = q.trim();
  if (!q) return true;
  if (/^\d+$/.test(q)) return !!p.phone_last4 && p.phone_last4.endsWith(q.slice(-4));
  return fold(p.name).includes(fold(q));
}

// A second tap of a double tap lands where "Undo" appears once the check-in is answered: an undo
// of the same person this soon after their check-in is taken for that, and ignored.
const UNDO_GUARD_MS = 1500;
const checkedAt = new Map(); // ref → when this phone last tapped "Check in" for them

// The last tap queued for each person on the list: a check-in, or an undo ({undo: "1"}).
const pendingRefs = () => new Map(queue.filter((t) => t.fields.ref).map((t) => [t.fields.ref, t.fields]));

function renderList() {
  const q = $("q").value;
  const pending = pendingRefs();
  const shown = people.filter((p) => matches(p, q));
  const items = shown.map((p) => {
    const detail = (p.phone_last4 ? "phone …" + p.phone_last4 : p.has_email ? "email only" : "") + (p.walk_in ? " · walk-in" : p.rsvp ? " · RSVP " + p.rsvp : "");
    const waiting = pending.get(p.ref);
    const li = el("li", { "data-ref": p.ref, tabindex: "-1", class: waiting ? "in waiting" : p.checked_in ? "in" : null },
      el("span", { class: "person" }, el("span", { class: "name" }, p.name), el("span", { class: "detail" }, detail)));
    // Named with how to tell two people apart: two "(no name given)" are otherwise one label to a screen reader.
    const how = p.phone_last4 ? ", phone …" + p.phone_last4 : p.has_email ? ", email only" : "";
    if (waiting) li.append(el("span", { class: "state" }, waiting.undo ? "Withdrawing the check-in (sending…)" : "✓ Checked in (sending…)"));
    else if (p.checked_in) {
      li.append(el("span", { class: "state" }, "✓ Checked in"));
      if (p.can_undo) {
        const undo = el("button", { type: "button", class: "undo" }, "Undo ", el("span", { class: "visually-hidden" }, "the check-in of " + p.name + how));
        undo.addEventListener("click", () => {
          if (Date.now() - (checkedAt.get(p.ref) || -Infinity) >= UNDO_GUARD_MS) tap({ ref: p.ref, undo: "1" }, p.name);
        });
        li.append(undo);
      }
    } else {
      const button = el("button", { type: "button", class: "go" }, "Check in ", el("span", { class: "visually-hidden" }, p.name + how));
      button.addEventListener("click", () => { checkedAt.set(p.ref, Date.now()); tap({ ref: p.ref }, p.name); });
      li.append(button);
    }
    return li;
  });
  for (const t of queue.filter((t) => !t.fields.ref)) { // walk-ins on their way
    if (matches({ name: t.name, phone_last4: (t.fields.phone || "").replace(/\D/g, "").slice(-4) || null }, q)) {
      items.push(el("li", { class: "in waiting" }, el("span", { class: "person" }, el("span", { class: "name" }, t.name),
        el("span", { class: "detail" }, "walk-in")), el("span", { class: "state" }, "✓ Checked in (sending…)")));
    }
  }
  if (!items.length) items.push(el("li", { class: "empty" }, q ? "Nobody on your list matches “" + q + "”. Add them as a walk-in below." : "Nobody on your list yet."));
  // The list is drawn anew (a tap, an answer, the refresh every 10 s): focus stays on the person it was on.
  const focused = document.activeElement && document.activeElement.closest ? document.activeElement.closest("#people li[data-ref]") : null;
  $("people").replaceChildren(...items);
  const again = focused && [...$("people").children].find((li) => li.dataset.ref === focused.dataset.ref);
  if (again) (again.querySelector("button") || again).focus({ preventScroll: true });
  renderCount();
}

function renderCount() {
  const waiting = queue.length;
  const walkIns = queue.filter((t) => !t.fields.ref).length; // not on the server's list yet
  const pending = pendingRefs();
  const isIn = (p) => (pending.has(p.ref) ? !pending.get(p.ref).undo : p.checked_in);
  const inCount = people.filter(isIn).length + walkIns + [...pending.keys()].filter((ref) => !pending.get(ref).undo && !people.some((p) => p.ref === ref)).length;
  $("checked-in").textContent = String(inCount);
  $("total").textContent = String(people.length + walkIns);
  $("queued").hidden = waiting === 0;
  $("queued").textContent = waiting ? " (" + waiting + " waiting to be sent)" : "";
  const net = $("net");
  if (waiting && net.dataset.state !== "online") {
    net.textContent = "Offline: " + waiting + " check-in" + (waiting === 1 ? "" : "s") + " saved on this phone, retrying…";
  }
}

const OFFLINE = "Offline: check-ins are saved on this phone and sent when the connection is back.";

function showNet(state, text) {
  $("net").dataset.state = state;
  $("net").textContent = text;
  $("net").hidden = false;
}

function setNet(state, text) {
  showNet(state, text);
  renderCount();
}

function flash(text, kind) {
  $("flash").replaceChildren(el("p", { class: "notice " + kind }, text));
}

function tap(fields, name) {
  queue.push({ event_id: newId(), at: new Date().toISOString(), fields, name });
  save();
  renderList();
  const what = fields.undo ? "withdrawn" : "checked in";
  flash(navigator.onLine ? (fields.undo ? "Withdrawing the check-in of " : "Checking in ") + name + "…"
    : "Saved on this phone: " + name + " is " + what + " as soon as the connection is back.", "done");
  flush();
}

async function flush() {
  if (flushing) return;
  flushing = true;
  clearTimeout(retryTimer);
  try {
    while (queue.length) {
      const t = queue[0];
      let r;
      try {
        r = await fetch(endpoint, {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
          body: new URLSearchParams({ ...t.fields, event_id: t.event_id, at: t.at }),
        });
      } catch {
        r = null; // no network, or the answer was lost: the same event id goes again
      }
      if (r && r.status === 401) { location.assign("/dashboard/login?next=" + encodeURIComponent(location.pathname)); return; }
      if (!r || r.status >= 500 || r.status === 429 || r.status === 408) {
        const after = r && Number(r.headers.get("Retry-After"));
        setNet("offline", "");
        retryTimer = setTimeout(flush, after ? after * 1000 : retryMs);
        retryMs = Math.min(retryMs * 2, 30000);
        return;
      }
      queue.shift();
      if (r.ok) {
        flash((t.fields.undo ? "Check-in withdrawn: " : "Checked in: ") + t.name + ".", "done");
        const person = people.find((p) => p.ref === t.fields.ref);
        if (person) Object.assign(person, { checked_in: !t.fields.undo, can_undo: !t.fields.undo });
        else people.push({ ref: "walk-in:" + t.event_id, name: t.name, phone_last4: null, has_email: false, rsvp: null, checked_in: true, walk_in: true });
      } else {
        const body = await r.json().catch(() => ({}));
        flash((t.fields.undo ? "Not withdrawn: " : "Not checked in: ") + t.name + ": " + (body.detail || r.status), "problem");
        if (!t.fields.ref) refused(t.fields, String(body.detail || r.status));
      }
      save();
      renderList();
    }
    retryMs = 1000;
    setNet("online", "Online. Every check-in is sent.");
    refresh();
  } finally {
    flushing = false;
  }
}

async function refresh() {
  // The list and who is in, including other volunteers' check-ins.
  try {
    const r = await fetch(endpoint + "/roster", { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (r.status === 401) { location.assign("/dashboard/login?next=" + encodeURIComponent(location.pathname)); return; }
    if (!r.ok) return;
    people = (await r.json()).people;
    renderList();
  } catch { /* offline: keep what we have */ }
}

document.querySelector("form.search").addEventListener("submit", (e) => { e.preventDefault(); renderList(); });
$("q").addEventListener("input", renderList);
const WALK_IN = ["given_name", "family_name", "phone", "email"];

// A walk-in the server refused comes back into its form (unless another is being typed there),
// with the reason beside it and the field at fault marked: nothing the volunteer typed is lost.
function refused(fields, detail) {
  const form = $("walk-in");
  if (WALK_IN.some((n) => form.elements[n].value)) return;
  for (const n of WALK_IN) form.elements[n].value = fields[n] || "";
  for (const n of ["consent_sms", "consent_email"]) form.elements[n].checked = fields[n] === "yes";
  const at = form.elements[(detail.match(/person\.(given_name|family_name|phone|email)\b/) || [])[1] || "given_name"];
  at.setAttribute("aria-invalid", "true");
  at.setAttribute("aria-describedby", "walk-in-problem");
  $("walk-in-problem").textContent = "Not checked in: " + detail;
  $("walk-in-problem").hidden = false;
  at.focus();
}

$("walk-in").addEventListener("submit", (e) => {
  e.preventDefault();
  $("walk-in-problem").hidden = true;
  for (const n of WALK_IN) { e.target.elements[n].removeAttribute("aria-invalid"); e.target.elements[n].removeAttribute("aria-describedby"); }
  const form = new FormData(e.target);
  const fields = {};
  for (const name of ["given_name", "family_name", "phone", "email", "consent_sms", "consent_email"]) {
    const v = form.get(name);
    if (v) fields[name] = String(v).trim();
  }
  if (!fields.phone && !fields.email) { flash("A phone or an email is needed.", "problem"); $("phone").focus(); return; }
  e.target.reset();
  tap(fields, [fields.given_name, fields.family_name].filter(Boolean).join(" "));
});
window.addEventListener("online", () => { retryMs = 1000; flush(); });
window.addEventListener("offline", () => setNet("offline", OFFLINE));
setInterval(() => { if (!queue.length && navigator.onLine) refresh(); }, 10000);

// The page as served says nothing of the connection (without this script it does not matter).
showNet(navigator.onLine ? "online" : "offline", navigator.onLine ? "Online." : OFFLINE);
refresh().then(() => { if (queue.length) flush(); });
