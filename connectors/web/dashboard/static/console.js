// The organizer console: each SMS template's length and SMS segments as you type (rendered with
// sample values, the start as that language's texts write it (the server's check says so: a
// Spanish "sab" for Saturday), the sponsor's name before a text that does not say {sponsor} itself (the posting
// partner's, as a sample) and the opt-out footer (the configured one of the template's language,
// the textarea's data-footer), as agents/outreach/planning.py and
// templates.py make and count them: GSM-7 160 /
// 153 per segment, an extension character 2 septets; UCS-2 70 / 67 in UTF-16 units, a pair never
// split), and the form checked by the server as you type (nothing is written until you confirm).
"use strict";

const BASIC = new Set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà");
const EXTENSION = new Set("\f^{}\\[~]|€");

function segments(body) {
  const chars = Array.from(body);
  const gsm = chars.every((c) => BASIC.has(c) || EXTENSION.has(c));
  const units = chars.map((c) => (gsm ? (EXTENSION.has(c) ? 2 : 1) : c.length));
  const [single, per] = gsm ? [160, 153] : [70, 67];
  const total = units.reduce((a, b) => a + b, 0);
  const encoding = gsm ? "GSM-7" : "UCS-2";
  if (total <= single) return { encoding, count: total ? 1 : 0, chars: chars.length };
  let count = 1, used = 0;
  for (const n of units) { if (used + n > per) { count += 1; used = 0; } used += n; }
  return { encoding, count, chars: chars.length };
}

const form = document.getElementById("action-form");
const value = (name) => (form.elements[name] ? form.elements[name].value.trim() : "");

// The start as each language's texts write it, from the server's last check; until then, a sample.
let localTimes = {};
const SAMPLE_TIMES = { en: "Wed Dec 2, 3:47 PM PST", es: "mié 2 dic, 3:47 p. m. PST" };

function sample(text, footer, lang) {
  const action = value("action_id") || "action";
  const values = {
    given_name: "Alexandra", action_title: value("title") || "Title",
    local_time: localTimes[lang] || SAMPLE_TIMES[lang] || SAMPLE_TIMES.en, place: [value("venue"), value("locality")].filter(Boolean).join(", "),
    rsvp_link: location.origin + "/r/" + action + "/" + "x".repeat(48), sponsor: form.dataset.sponsor || "",
  };
  // As the server renders it: {{ and }} are literal braces.
  let rendered = text.replace(/\{\{|\}\}|\{(\w+)\}/g, (m, name) => (m === "{{" ? "{" : m === "}}" ? "}" : name in values ? values[name] : m)).trimEnd();
  if (!/\{sponsor\}/.test(text)) rendered = values.sponsor + ": " + rendered;
  return !footer || rendered.toLowerCase().includes(footer.toLowerCase()) ? rendered : rendered + "\n" + footer;
}

function count(area) {
  const out = document.getElementById(area.id + "-count");
  if (!area.value.trim()) { out.textContent = ""; return; }
  const s = segments(sample(area.value, area.dataset.footer, area.id.replace(/^sms_/, "")));
  out.textContent = s.chars + " characters with sample values, the sponsor's name and the opt-out footer: " + s.count + " SMS segment" + (s.count === 1 ? "" : "s") + " (" + s.encoding + ")";
  out.dataset.segments = String(s.count);
  out.classList.toggle("long", s.count > 2);
}

// An error's link names the box to fix by its label ("Starts (local time)"), not the API's field
// ("starts_at"), which stays in the link's title.
function labelled(link, input) {
  const label = document.querySelector('label[for="' + CSS.escape(input) + '"]');
  const code = link.querySelector("code");
  if (!label || !code) return;
  link.title = code.textContent;
  link.replaceChildren(label.textContent.trim());
}

let timer = 0;
// showErrors false: only the start's wording (a page that opens filled in already shows its errors).
async function check(showErrors = true) {
  const r = await fetch("/dashboard/console/check", { method: "POST", credentials: "same-origin", body: new URLSearchParams(new FormData(form)) });
  if (!r.ok) return;
  const { errors, local_times } = await r.json();
  localTimes = local_times || {};
  form.querySelectorAll("textarea.sms").forEach((a) => count(a));
  if (!showErrors) return;
  const server = document.getElementById("server-errors"); // the last post's refusal: what is left is said here now
  if (server) server.hidden = true;
  const box = document.getElementById("live-errors");
  if (!errors.length) { box.replaceChildren(); box.className = ""; return; }
  const list = document.createElement("ul");
  for (const e of errors) {
    const li = document.createElement("li");
    const code = document.createElement("code");
    code.textContent = e.field;
    let name = code;
    if (e.input) { // a link to the box to fix, named as the form names it
      name = document.createElement("a");
      name.href = "#" + e.input;
      name.append(code);
      labelled(name, e.input);
    }
    li.append(name, ": " + e.message);
    list.append(li);
  }
  const p = document.createElement("p");
  p.textContent = "Still to fix before it can be posted:";
  box.className = "errors";
  box.replaceChildren(p, list);
}

if (form) {
  const areas = form.querySelectorAll("textarea.sms");
  areas.forEach((a) => count(a));
  form.addEventListener("input", () => {
    areas.forEach((a) => count(a));
    clearTimeout(timer);
    timer = setTimeout(check, 500);
  });
  document.querySelectorAll("#server-errors a[href^='#']").forEach((a) => labelled(a, a.getAttribute("href").slice(1)));
  if (value("local_start")) check(false); // filled in (an edit, a form sent back): count with its start
}
