// The sign-in link carries its token after "#", which the browser never sends to a server:
// move it into the form, then drop it from the address bar and the history.
"use strict";

const token = document.getElementById("token");
if (location.hash.length > 1) {
  token.value = decodeURIComponent(location.hash.slice(1));
  history.replaceState(null, "", location.pathname);
}
document.getElementById("no-token").hidden = token.value !== "";
