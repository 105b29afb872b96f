// The sign-in link carries its token after "#", which the browser never sends to a server:
// move it into the form, then drop it from the address bar and the history. Then ask whose
// account the link is for: the page names it (a password manager saves it as the username),
// or says at once that the link is no longer good.
"use strict";

const token = document.getElementById("token");
if (location.hash.length > 1) {
  token.value = decodeURIComponent(location.hash.slice(1));
  history.replaceState(null, "", location.pathname);
}
document.getElementById("no-token").hidden = token.value !== "";

async function whose() {
  const problem = document.getElementById("link-problem");
  const answer = await fetch("/dashboard/welcome/account", {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({token: token.value}),
  }).catch(() => null);
  const body = answer ? await answer.json().catch(() => ({})) : {};
  if (answer && answer.ok) {
    document.getElementById("email").value = body.email;
    return;
  }
  problem.textContent = body.detail || "Could not check the link (no answer from the server): you may still choose a password.";
  problem.hidden = false;
  if (answer && answer.status === 400) {  // the link is not good: no password can be chosen with it
    for (const box of document.querySelectorAll("#password, #confirm, button[type=submit]")) box.disabled = true;
  }
}
if (token.value !== "") {
  whose();
}
