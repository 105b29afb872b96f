"""The live dashboard: the page, its JSON view and its Server-Sent Events stream, and the
accounts people sign in with (``access``, ``signin``, ``team``).

People sign in as themselves with a dashboard account (never a partner's webhook secret):
organizers see every partner; a partner's admins and viewers see their partner's figures and
the rest of the coalition only as aggregates (``view``, ``disclosure``). An open event stream
checks its session again at every wake-up and before every message, and wakes at least every
``HEARTBEAT`` seconds, when any account changes, and when the session expires: it ends within
that time of logout, account removal, partner disable, secret rotation or expiry.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone
from html import escape
from typing import AsyncIterator, Callable
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sse_starlette import EventSourceResponse

from connectors.accounts.store import AccountStore
from contracts.tallies import TallyBook
from streams.coalition import Coalition
from streams.settings import Settings

from ..tally_reader import Changes
from . import signin, team
from .access import Access
from .pages import static
from .view import DashboardView, Viewer, build_view, newest_first, shown_action

#: Seconds between heartbeats when nothing changes; the page calls itself stale after missing two.
HEARTBEAT = 5.0
#: At most this many views a second per open page, however fast the tallies move.
MIN_INTERVAL = 0.2

__all__ = ["Access", "router", "HEARTBEAT", "MIN_INTERVAL"]

#: The live stream in the OpenAPI document (FastAPI would say JSON). Before OpenAPI 3.2's
#: ``itemSchema``, the ``schema`` of ``text/event-stream`` describes each event.
EVENT_STREAM = {"description": "Server-Sent Events: `view` (a DashboardView as JSON) on every change, `heartbeat` otherwise",
                "content": {"text/event-stream": {"schema": {
                    "type": "object", "required": ["event", "data"],
                    "properties": {"event": {"enum": ["view", "heartbeat"]}, "data": {"type": "string", "contentMediaType": "application/json"},
                                   "id": {"type": "string"}, "retry": {"type": "integer", "minimum": 0}}}}}}

STATIC_KINDS = {"dashboard.js": "text/javascript", "welcome.js": "text/javascript", "dashboard.css": "text/css",
                "checkin.js": "text/javascript", "door.css": "text/css", "console.js": "text/javascript", "console.css": "text/css", "favicon.svg": "image/svg+xml"}


#: Where the page says what the console just posted, and without JavaScript where to go on.
POSTED_MARK = "<!--what was posted, and without JavaScript where to go on-->"
#: What the console did, by its redirect's ``posted``.
POSTED = {"alert": "Alert posted. Its asks appear below as they go out.", "action": "Action posted.", "changes": "Changes saved."}


def posted_and_links(viewer: Viewer, action_id: str | None, posted: str | None) -> str:
    """What the console just did (said by the server, so also without JavaScript, which hides
    every figure), and, without JavaScript, the links the action's section would show: the
    console for organizers, the door check-in page for partner staff."""
    said = f'<p id="posted" class="notice" role="status">{POSTED[posted]}</p>' if posted in POSTED else '<p id="posted" class="notice" role="status" hidden></p>'
    organizer = viewer.role == "organizer"
    links = [("/dashboard/console?action=" + quote(action_id), "Edit in the organizer console")] if action_id and organizer else []
    links += [("/dashboard/console", "New action or alert")] if organizer else []
    links += [("/dashboard/checkin/" + quote(action_id), "Door check-in for this action")] if action_id and not organizer else []
    if not links:
        return said
    anchors = " ".join(f'<a class="button-link" href="{escape(href)}">{text}</a>' for href, text in links)
    return f'{said}\n<noscript><p class="action-links">{anchors}</p></noscript>'


def router(s: Settings, access: Access, accounts: AccountStore, coalition: Callable[[], Coalition], book: TallyBook, changes: Changes, lag: Callable[[], int | None]) -> APIRouter:
    r = APIRouter(tags=["dashboard"])
    r.include_router(signin.router(s, access, accounts))
    r.include_router(team.router(s, access, accounts, coalition))

    def view(viewer: Viewer, action: str | None) -> DashboardView:
        return build_view(book, coalition().names(), viewer, action, datetime.now(timezone.utc), s.active_days)

    @r.get("/dashboard", include_in_schema=False)
    async def page(request: Request) -> Response:
        if (viewer := access.viewer(request)) is None:
            return RedirectResponse("/dashboard/login", status_code=303)
        # Only which action the page shows, not the whole view (the page fetches /dashboard/view itself).
        shown = shown_action(newest_first(book), request.query_params.get("action"))
        said = posted_and_links(viewer, shown, request.query_params.get("posted"))
        return HTMLResponse(static("index.html").replace(POSTED_MARK, said), headers={"Cache-Control": "no-store"})

    @r.get("/dashboard/static/{name}", include_in_schema=False)
    async def static_file(name: str) -> Response:
        if name not in STATIC_KINDS:
            raise HTTPException(404, "no such file")
        return Response(static(name), media_type=STATIC_KINDS[name], headers={"Cache-Control": "no-cache"})

    @r.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        # Browsers ask for it whatever the page says; every modern one draws an SVG icon.
        return Response(static("favicon.svg"), media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})

    @r.get("/dashboard/view", response_model=DashboardView, summary="What the signed-in viewer may see of the tallies (counts only)")
    async def current(request: Request, action: str | None = None) -> DashboardView:
        return view(access.require(request), action)

    @r.get("/dashboard/events", response_class=EventSourceResponse, responses={200: EVENT_STREAM},
           summary="The same view as Server-Sent Events: `view` on every change, `heartbeat` every 5 s otherwise; ends when the session does")
    async def events(request: Request, action: str | None = None) -> EventSourceResponse:
        viewer = access.require(request)
        session = access.session(request)
        ends = session.expires_at if session is not None else None

        def signed_in() -> bool:
            # Checked at every wake-up, right before anything is sent: a session that ended since
            # the stream opened gets nothing more, and the page goes to sign-in.
            return access.viewer(request) == viewer

        def patience() -> float:
            return HEARTBEAT if ends is None else max(0.0, min(HEARTBEAT, ends - access.clock()))

        async def messages() -> AsyncIterator[dict[str, object]]:
            shown = -1
            while True:
                seen = changes.count  # read before the checks: a change made after them still wakes the wait
                if not signed_in():
                    return
                if book.records != shown:
                    current = view(viewer, action)
                    if not signed_in():  # again: the session may end while the view is built
                        return
                    shown = current.version
                    yield {"event": "view", "id": str(shown), "data": current.model_dump_json(), "retry": 1000}
                    await asyncio.sleep(MIN_INTERVAL)  # pacing: a burst of changes becomes one view
                elif not await changes.wait(patience(), since=seen) and signed_in():
                    yield {"event": "heartbeat", "data": json.dumps({"version": shown, "lag": lag()})}

        return EventSourceResponse(messages(), headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    return r
