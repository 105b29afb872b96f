"""The organizer console: create or edit an action, check it, confirm, post.

- ``GET /dashboard/console[?action=ID]``: the action form (everything the ``action`` event can
  say), filled in from a posted action to edit it. With JavaScript, each SMS template shows its
  length and SMS segments with sample values as you type, and the form is checked as you type.
- ``POST /dashboard/console/check``: the form checked as the ingress would check it, nothing
  written: ``{"errors": [{"field", "message"}]}``.
- ``POST /dashboard/console``: checked; then a confirmation page that repeats what will happen
  (for a rapid-response alert: that it goes to everyone eligible in the target area at once);
  its "Post" button (``confirmed=yes``) posts the event through the signed partner API, as the
  coalition's backbone partner (``..door.ingress_client``): a client of the API, not a back door.

Who: organizers (posting as the backbone partner of the coalition file) and the admins of a
partner whose role is ``backbone`` (posting as it). Plain forms: it all works without JavaScript.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from typing import Callable

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from contracts.tallies import TallyBook
from contracts.partners import Partner
from streams.coalition import Coalition
from streams.settings import Settings

from ..dashboard.access import Access
from ..door.ingress_client import Ingress
from ..ingress import Authority, validate_events
from ..pages.words import when
from .form import KINDS, LANGUAGES, ZONES, from_action, to_event

POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
          "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": POLICY, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def router(s: Settings, access: Access, book: TallyBook, coalition: Callable[[], Coalition], ingress: Ingress) -> APIRouter:
    r = APIRouter(include_in_schema=False)
    env = Environment(loader=PackageLoader(__name__, "templates"), autoescape=select_autoescape(default=True), trim_blocks=True, lstrip_blocks=True)
    owner_of = lambda action_id: (rec.partner if (rec := book.action_record(action_id)) else None)  # noqa: E731

    def poster(request: Request) -> Partner:
        """The partner the signed-in person posts as; 403 for anyone else, 409 without a backbone."""
        viewer = access.require(request)
        every = coalition()
        if viewer.role == "organizer":
            backbone = [p for _, p in sorted(every.partners.items()) if p.role == "backbone" and p.enabled]
            if not backbone:
                raise HTTPException(409, "the coalition file has no enabled backbone partner to post as (turnout partners add … --role backbone)")
            return backbone[0]
        partner = every.get(viewer.partner or "")
        if not viewer.admin or partner is None or partner.role != "backbone":
            raise HTTPException(403, "the console is for organizers and the backbone partner's admins")
        return partner

    def page(status: int = 200, **context: object) -> HTMLResponse:
        body = env.get_template("console.html").render(kinds=KINDS, zones=ZONES, languages=LANGUAGES, **context)
        return HTMLResponse(body, status_code=status, headers=HEADERS)

    def checked(form: dict[str, str], partner: Partner):
        event = to_event(form, form.get("event_id") or "console-" + secrets.token_hex(10), datetime.now(timezone.utc))
        result = validate_events([event], s.default_region, Authority(partner.id, partner.role, datetime.now(timezone.utc), owner_of))
        errors = [{"field": e.field, "message": e.message} for rej in result.rejected for e in rej.errors]
        return event, errors

    @r.get("/dashboard/console")
    async def editor(request: Request, action: str | None = None) -> Response:
        if access.viewer(request) is None:
            return RedirectResponse("/dashboard/login?next=/dashboard/console", status_code=303)
        partner = poster(request)
        record = book.action_record(action) if action else None
        values = from_action(record.action) if record else {"kind": "rally", "time_zone": "America/Los_Angeles"}
        return page(values=values, editing=record is not None, partner=partner)

    @r.post("/dashboard/console/check")
    async def check(request: Request) -> JSONResponse:
        partner = poster(request)
        _, errors = checked(await form_of(request), partner)
        return JSONResponse({"errors": errors})

    @r.post("/dashboard/console")
    async def post(request: Request) -> Response:
        partner = poster(request)
        form = await form_of(request)
        event, errors = checked(form, partner)
        if form.get("edit") == "yes":  # back from the confirmation to the form, as it was
            return page(values=form, partner=partner, editing=owner_of(event["action_id"]) is not None)
        if errors:
            return page(422, values=form, errors=errors, partner=partner, editing=owner_of(event["action_id"]) is not None)
        if form.get("confirmed") != "yes":
            return page(values={**form, "event_id": event["event_id"]}, confirm=summary(event, owner_of(event["action_id"]) is not None), partner=partner)
        answer = await ingress.post(partner.id, partner.secret.get_secret_value(), [event])
        if answer.status != 202:
            errors = [{"field": e.get("field"), "message": e.get("message")} for rej in answer.body.get("rejected", []) for e in rej.get("errors", [])]
            errors = errors or [{"field": "(request)", "message": str(answer.body.get("detail", answer.status))}]
            return page(answer.status, values=form, errors=errors, partner=partner, editing=False)
        return RedirectResponse(f"/dashboard?action={event['action_id']}", status_code=303)

    return r


async def form_of(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: str(v) for k, v in form.items()}


def summary(event: dict, editing: bool) -> dict:
    """What the confirmation page repeats before anything is posted."""
    action = event  # valid by now: every field is there
    start = datetime.fromisoformat(action["starts_at"])
    area = ", ".join(action["target"]["postal_codes"] + action["target"]["regions"]) or "everywhere (no target area)"
    channels = [c for c in ("sms", "email") if action["templates"][c]]
    return {
        "verb": "Save the changes to" if editing else "Post",
        "title": action["title"], "action_id": action["action_id"], "when": when(start, action["time_zone"], "en"),
        "area": area, "channels": channels, "rapid_response": action["rapid_response"],
        "override_quiet_hours": action["override_quiet_hours"],
        "pledges": [f"{p['partner']}: {p['count']}" for p in action["pledges"]],
    }
