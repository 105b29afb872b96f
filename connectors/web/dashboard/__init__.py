"""The live dashboard: sign-in, the page, its JSON view and its Server-Sent Events stream.

Organizers sign in with the organizer token, partners with their partner id and webhook
secret. The session is a signed cookie (Starlette's SessionMiddleware) naming the viewer and
a fingerprint of the credential, so rotating a secret ends that partner's sessions, open event
streams included (each is checked again before every message it sends). Scripts
may send ``Authorization: Bearer <organizer token>`` instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from contextlib import aclosing
from datetime import datetime, timezone
from importlib.resources import files
from typing import AsyncIterator, Callable

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sse_starlette import EventSourceResponse

from contracts.tallies import TallyBook
from streams.coalition import Coalition
from streams.settings import Settings

from ..tally_reader import Changes
from .view import DashboardView, Viewer, build_view

STATIC = files(__package__) / "static"
#: Seconds between heartbeats when nothing changes; the page calls itself stale after missing two.
HEARTBEAT = 5.0
#: At most this many views a second per open page, however fast the tallies move.
MIN_INTERVAL = 0.2


def fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


class Access:
    """Who is asking: an organizer, a partner, or nobody."""

    def __init__(self, s: Settings, coalition: Callable[[], Coalition]) -> None:
        self._token = s.organizer_token.get_secret_value() if s.organizer_token else None
        self._coalition = coalition

    def sign_in(self, token: str = "", partner_id: str = "", secret: str = "") -> dict[str, str] | None:
        """The session to store for these credentials, or None."""
        if token:
            if self._token and hmac.compare_digest(token.encode(), self._token.encode()):
                return {"role": "organizer", "fp": fingerprint(self._token)}
            return None
        partner = self._coalition().get(partner_id)
        if partner and secret and hmac.compare_digest(secret.encode(), partner.secret.get_secret_value().encode()):
            return {"role": "partner", "partner": partner.id, "fp": fingerprint(secret)}
        return None

    def viewer(self, request: Request) -> Viewer | None:
        auth = request.headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            session = self.sign_in(token=auth[7:].strip())
        else:
            session = request.session.get("viewer")
        if not session:
            return None
        if session["role"] == "organizer":
            ok = self._token is not None and hmac.compare_digest(session["fp"], fingerprint(self._token))
            return Viewer(role="organizer") if ok else None
        partner = self._coalition().get(session.get("partner", ""))  # disabled or removed: signed out
        if partner and hmac.compare_digest(session["fp"], fingerprint(partner.secret.get_secret_value())):
            return Viewer(role="partner", partner=partner.id)
        return None

    def require(self, request: Request) -> Viewer:
        viewer = self.viewer(request)
        if viewer is None:
            raise HTTPException(401, "sign in at /dashboard/login (or send Authorization: Bearer <organizer token>)", headers={"WWW-Authenticate": "Bearer"})
        return viewer

    def organizer(self, request: Request) -> Viewer:
        viewer = self.require(request)
        if viewer.role != "organizer":
            raise HTTPException(403, "organizers only")
        return viewer


def router(s: Settings, access: Access, coalition: Callable[[], Coalition], book: TallyBook, changes: Changes, lag: Callable[[], int | None]) -> APIRouter:
    r = APIRouter(tags=["dashboard"])

    def view(viewer: Viewer, action: str | None) -> DashboardView:
        return build_view(book, coalition().names(), viewer, action, datetime.now(timezone.utc), s.active_days)

    @r.get("/dashboard", include_in_schema=False)
    async def page(request: Request) -> Response:
        if access.viewer(request) is None:
            return RedirectResponse("/dashboard/login", status_code=303)
        return HTMLResponse(_static("index.html"), headers={"Cache-Control": "no-store"})

    @r.get("/dashboard/login", include_in_schema=False)
    async def login_page() -> HTMLResponse:
        return HTMLResponse(_static("login.html"))

    @r.post("/dashboard/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = await request.form()
        session = access.sign_in(str(form.get("token", "")).strip(), str(form.get("partner", "")).strip(), str(form.get("secret", "")).strip())
        if session is None:
            page = _static("login.html").replace("<!--error-->", '<p class="error" role="alert">Those credentials were not accepted.</p>')
            return HTMLResponse(page, status_code=401)
        request.session["viewer"] = session
        return RedirectResponse("/dashboard", status_code=303)

    @r.post("/dashboard/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        request.session.clear()
        return RedirectResponse("/dashboard/login", status_code=303)

    @r.get("/dashboard/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        kinds = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
        if name not in kinds:
            raise HTTPException(404, "no such file")
        return Response(_static(name), media_type=kinds[name], headers={"Cache-Control": "no-cache"})

    @r.get("/dashboard/view", response_model=DashboardView, summary="What the signed-in viewer may see of the tallies (counts only)")
    async def current(request: Request, action: str | None = None) -> DashboardView:
        return view(access.require(request), action)

    @r.get("/dashboard/events", summary="The same view as Server-Sent Events: `view` on every change, `heartbeat` every 5 s otherwise")
    async def events(request: Request, action: str | None = None) -> EventSourceResponse:
        viewer = access.require(request)

        async def messages() -> AsyncIterator[dict[str, object]]:
            shown = -1
            while True:
                if book.records != shown:
                    current = view(viewer, action)
                    shown = current.version
                    yield {"event": "view", "id": str(shown), "data": current.model_dump_json(), "retry": 1000}
                    await asyncio.sleep(MIN_INTERVAL)  # pacing: a burst of changes becomes one view
                elif not await changes.wait(HEARTBEAT):
                    yield {"event": "heartbeat", "data": json.dumps({"version": shown, "lag": lag()})}

        async def stream() -> AsyncIterator[dict[str, object]]:
            async with aclosing(messages()) as each:
                async for message in each:
                    # The session is checked again before every message, not only when the stream opened:
                    # a partner disabled or rotated since then is signed out, and the page goes to sign-in.
                    if access.viewer(request) != viewer:
                        return
                    yield message

        return EventSourceResponse(stream(), headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    return r


def _static(name: str) -> str:
    return (STATIC / name).read_text()
