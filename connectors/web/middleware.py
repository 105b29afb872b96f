"""Four small ASGI middlewares every request goes through.

``BodyLimit``: no route reads more than ``limit`` bytes of body. A declared length over it is
answered 413 before a byte is read; a longer body raises ``BodyTooLarge`` (413) from
``receive``. Any answer given before the whole body was read closes the connection
(``Connection: close``), so the server stops reading what the client still sends.

``SecurityHeaders``: ``X-Content-Type-Options: nosniff`` and ``X-Frame-Options: DENY`` on every
response; a Content-Security-Policy on every one that lacks its own (HTML pages may set a wider
one, as the API docs do: see ``docs``); ``Cache-Control: no-store`` on JSON and CSV answers
that do not say otherwise; behind an ``https://`` public URL, HSTS (a year: browsers
then never ask for the app over plain HTTP, where a session cookie or a token could be read).

``SameOrigin``: a request that changes something under ``/dashboard/``, or anywhere with the
dashboard's session cookie (``/v1/people/forget`` takes an organizer's session too), is
refused (403) when the browser says it comes from another site
(``Sec-Fetch-Site: same-site`` or ``cross-site``: SameSite=Lax lets a same-site page, another
port or subdomain, post with the cookie), or its ``Origin`` names another host, or is ``null``
without ``Sec-Fetch-Site: same-origin`` (an opaque origin: a sandboxed frame), or its body is
``text/plain`` (what another site's form sends to pass JSON off), or, on a route that takes
JSON (``JSON_ONLY``), a form's (URL-encoded or multipart: a form's other bodies, sent unasked
too). Turnout's own pages send
``same-origin`` (and ``Origin: null``: they set ``no-referrer``); scripts send neither.

``HeadAsGet``: HEAD is answered as GET would be, headers only (RFC 9110 9.3.2: a general-purpose
server supports it; FastAPI's routes answer only the methods they name, so a monitor's
``HEAD /healthz`` got a 405). A streamed answer (the live dashboard's) ends after its headers.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from streams import metrics

from .body import BodyTooLarge
from .errors import ErrorBody

#: Pages: scripts and styles from this origin only (the dashboard sets style attributes from
#: its script, hence 'unsafe-inline' for styles); nothing may frame them.
HTML_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
               "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
#: Everything else is data: it may load nothing.
DATA_POLICY = "default-src 'none'; frame-ancestors 'none'"


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            return await _too_large(send, self.limit)
        expects_body = (declared.isdigit() and int(declared) > 0) or b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        read, complete = 0, not expects_body

        async def limited() -> Message:
            nonlocal read, complete
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if read > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def closing(message: Message) -> None:
            if message["type"] == "http.response.start" and not complete:
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        await self.app(scope, limited, closing)


#: Answers that are data, live and often a signed-in reader's own (tallies, accounts, exports):
#: kept by no cache unless the route says otherwise.
LIVE_DATA = (b"application/json", b"text/csv")
#: One year, the app's host only (other hosts of the coalition's domain may not serve HTTPS).
HSTS = (b"strict-transport-security", b"max-age=31536000")


def security_headers(https: bool) -> list[tuple[bytes, bytes]]:
    """The headers every answer carries (``connectors.web.server``'s refusals too)."""
    return [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"), *([HSTS] if https else [])]


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, https: bool = False) -> None:
        self.app = app
        self.always = security_headers(https)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                kind = next((v for n, v in headers if n.lower() == b"content-type"), b"")
                extra = list(self.always)
                if b"content-security-policy" not in names:
                    extra.append((b"content-security-policy", (HTML_POLICY if kind.startswith(b"text/html") else DATA_POLICY).encode()))
                if kind.startswith(LIVE_DATA):
                    extra.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers + [h for h in extra if h[0] not in names]}
            await send(message)

        await self.app(scope, receive, with_headers)


#: Methods that change nothing: never refused by ``SameOrigin``.
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
#: The routes a browser's session signs that take a JSON body (never a form).
JSON_ONLY = frozenset({"/dashboard/accounts", "/v1/people/forget"})
FORMS = (b"application/x-www-form-urlencoded", b"multipart/form-data")
OTHER_SITE = "refused: this request came from another site's page, not turnout's own"


OTHER_SITE_PAGE = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Refused: sent from another site</title></head>
<body><main><h1>Refused: sent from another site</h1>
<p>This request came from another site's page, not turnout's own, so nothing was done.
Open <a href="/dashboard/login">turnout's own sign-in page</a> and try again from there.</p></main></body></html>
"""


class SameOrigin:
    def __init__(self, app: ASGIApp, *, public_url: str, cookie: str) -> None:
        self.app = app
        self.public = public_url.encode().partition(b"://")[2].partition(b"/")[0]  # behind a proxy, not the Host it passes on
        self.cookie = cookie.encode() + b"="

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE and self._signed_in_by_browser(scope) and self._other_site(scope):
            if _wants_page(scope):  # a browser's form or address bar: a page that says it
                return await _answer(send, 403, b"text/html; charset=utf-8", OTHER_SITE_PAGE)
            return await _refuse(send, 403, OTHER_SITE)
        await self.app(scope, receive, send)

    def _signed_in_by_browser(self, scope: Scope) -> bool:
        """Whether a browser's cookie may sign this request in: the dashboard's paths, or a
        request that carries the session cookie (a partner's or provider's post carries none)."""
        return scope["path"].startswith("/dashboard/") or any(k == b"cookie" and self.cookie in v for k, v in scope["headers"])

    def _other_site(self, scope: Scope) -> bool:
        headers = dict(scope["headers"])
        fetch_site = headers.get(b"sec-fetch-site")
        if fetch_site not in (None, b"same-origin", b"none"):
            return True
        kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if kind == b"text/plain" or (kind in FORMS and scope["path"] in JSON_ONLY):
            return True  # what a form of another site sends to pass JSON off (turnout's pages never do)
        origin = headers.get(b"origin")
        if origin == b"null":  # an opaque origin (a sandboxed frame, a data: page) unless the browser says it is ours
            return fetch_site != b"same-origin"
        return origin is not None and origin.partition(b"://")[2] not in (headers.get(b"host", b""), self.public)


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            return await self.app(scope, receive, send)
        done = False

        async def headers_only(message: Message) -> None:
            nonlocal done
            if done:
                return
            if message["type"] == "http.response.body":
                message, done = {"type": "http.response.body", "body": b"", "more_body": False}, True
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


async def _too_large(send: Send, limit: int) -> None:
    metrics.EVENTS_REJECTED.labels("too_large").inc()  # as a longer body's (``errors``'s handler)
    await _refuse(send, 413, f"body over {limit} bytes", (b"connection", b"close"))


def _wants_page(scope: Scope) -> bool:
    """A browser's navigation asks for HTML; a script asks for JSON, or for anything."""
    accept = dict(scope["headers"]).get(b"accept", b"")
    return b"text/html" in accept and b"application/json" not in accept


async def _refuse(send: Send, status: int, detail: str, *headers: tuple[bytes, bytes]) -> None:
    await _answer(send, status, b"application/json", ErrorBody(detail=detail).model_dump_json().encode(), *headers)


async def _answer(send: Send, status: int, kind: bytes, body: bytes, *headers: tuple[bytes, bytes]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", kind), (b"content-length", str(len(body)).encode()), *headers]})
    await send({"type": "http.response.body", "body": body})
