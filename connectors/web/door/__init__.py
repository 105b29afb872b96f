"""The door check-in page, for a partner's staff signed in to the dashboard.

- ``GET /dashboard/checkin/{action}``: the action, the partner's people for it (whom it RSVP'd
  yes or maybe, and its walk-ins) with a search by name or the last 4 digits of a phone, a
  check-in button per person, a walk-in form, and a QR code of the page's own address for a
  second volunteer's phone. Plain forms: it works without JavaScript (``?q=`` searches on the
  server); with it, ``checkin.js`` searches as you type and queues taps while offline.
- ``GET /dashboard/checkin/{action}/roster``: the same people as JSON (name, last 4 digits of a
  phone, RSVP, checked in, walk-in; a reference, never a person key, phone or email).
- ``POST /dashboard/checkin/{action}``: a check-in (``ref``) or a walk-in (name, phone or email,
  consent), with the ``event_id`` the page made when the button was tapped. Written as the
  partner's ``checkin`` event through the signed partner API (``ingress_client``).

Organizers have no partner to check people in for: the page is for partner staff (403).
"""

from __future__ import annotations

import secrets
import unicodedata
from collections import defaultdict
from datetime import datetime, timezone
from typing import Callable
from urllib.parse import quote, urlsplit

import segno
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from contracts.facts import Attendance
from contracts.tallies import TallyBook
from streams.coalition import Coalition
from streams.keys import fact_key

from ..dashboard.access import Access
from ..errors import FieldError, error, wants_json
from ..pages import small_form
from ..pages.words import when
from ..templating import environment
from .checkin import Refusal, checkin_event, event_id, tapped_at, walk_in
from .directory import Directory, Entry
from .ingress_client import Ingress

#: The page runs one script of ours and loads nothing from elsewhere; it may call only us.
POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
          "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": POLICY, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex, nofollow"}
#: A search on the server (no JavaScript) shows at most this many people.
MOST_SHOWN = 50


#: The session's note of whom the page without JavaScript just checked in, shown once.
DONE = "door_done"


def router(access: Access, book: TallyBook, directory: Directory, coalition: Callable[[], Coalition], ingress: Ingress,
           public_url: str) -> APIRouter:
    """``public_url``: the web app's address as phones reach it, for the QR code (unless it is
    a loopback address, a local ``turnout up``: then the address the page was opened at)."""
    r = APIRouter(include_in_schema=False)
    env = environment(__name__)

    def staff(request: Request) -> str:
        viewer = access.require(request)
        if viewer.partner is None:
            raise HTTPException(403, "the door check-in page is for partner staff: it checks people in as their partner")
        return viewer.partner

    def action_or_404(action_id: str):
        record = book.action_record(action_id)
        if record is None:
            raise HTTPException(404, f"no action {action_id!r} (not posted, or this web app has not read it yet)")
        return record.action

    def attendance(action_id: str) -> Callable[[str], Attendance | None]:
        def attended(key: str) -> Attendance | None:
            fact = book.fact("attendance", fact_key(action_id, key))
            return fact if isinstance(fact, Attendance) else None
        return attended

    def roster(partner: str, action_id: str) -> list[Entry]:
        known = coalition().get(partner)
        return directory.roster(partner, action_id, attendance(action_id), book.person_of, backbone=known is not None and known.role == "backbone")

    def render(request: Request, partner: str, action_id: str, q: str = "", done: str = "", problem: str = "", status: int = 200,
               typed: dict[str, str] | None = None, undone: bool = False) -> HTMLResponse:
        """The page; ``done``: whom the last tap checked in, as this server wrote it in the signed
        session (``undone``: whose check-in it withdrew); ``typed``: a refused walk-in's form,
        given back as it was typed."""
        action = action_or_404(action_id)
        people = roster(partner, action_id)
        shown = [e for e in people if matches(e, q)][:MOST_SHOWN] if q else people[:MOST_SHOWN]
        address = page_address(request, public_url)
        body = env.get_template("checkin.html").render(
            action=action, when=when(action.starts_at, action.time_zone, "en"), partner=coalition().names().get(partner, partner),
            people=shown, total=len(people), checked_in=sum(e.checked_in for e in people), q=q, done=done, undone=undone, problem=problem,
            new_id=new_event_id, typed=defaultdict(str, typed or {}), qr=segno.make(address, error="m").svg_inline(scale=5, dark="#111", light="#fff"), address=address)
        return HTMLResponse(body, status_code=status, headers=HEADERS)

    def refusal(request: Request, no: HTTPException) -> Response:
        """A refusal as a page that says it, unless a script asked for JSON (then the error body)."""
        if wants_json(request):
            raise no
        body = env.get_template("refused.html").render(detail=no.detail)
        return HTMLResponse(body, status_code=no.status_code, headers={**HEADERS, **(no.headers or {})})

    @r.get("/dashboard/checkin/{action_id}")
    async def page(request: Request, action_id: str, q: str = "", done: str = "") -> Response:
        if access.viewer(request) is None:
            return RedirectResponse("/dashboard/login?next=" + quote(f"/dashboard/checkin/{action_id}", safe="/"), status_code=303)
        name, undone = request.session.pop(DONE, ["", False]) if done else ["", False]  # said once, from the signed session
        try:
            return render(request, staff(request), action_id, q[:100], str(name)[:200], undone=undone is True)
        except HTTPException as no:
            return refusal(request, no)

    @r.get("/dashboard/checkin/{action_id}/roster")
    async def roster_json(request: Request, action_id: str) -> JSONResponse:
        partner = staff(request)
        action_or_404(action_id)
        people = roster(partner, action_id)
        return JSONResponse({"action_id": action_id, "checked_in": sum(e.checked_in for e in people),
                             "people": [e.__dict__ for e in people]}, headers={"Cache-Control": "no-store"})

    @r.post("/dashboard/checkin/{action_id}")
    async def check_in(request: Request, action_id: str) -> Response:
        try:
            return await checking_in(request, action_id)
        except HTTPException as no:
            return refusal(request, no)

    async def checking_in(request: Request, action_id: str) -> Response:
        partner = staff(request)
        action_or_404(action_id)
        form = await small_form(request, strict=True)
        try:
            answer, name = await write(partner, action_id, form)
        except Refusal as no:
            if wants_json(request):
                return error(422, no.message, [FieldError(field=no.field, message=no.message, type="value_error")])  # said to a volunteer: no field name
            return render(request, partner, action_id, problem=f"{not_done(form)}: {no.message}.", status=422, typed=walk_in_typed(form))
        if answer.status == 202:
            if wants_json(request):
                return JSONResponse({"status": "accepted", "name": name, "warnings": answer.body.get("warnings", [])}, status_code=202)
            # Not in the address: a door phone's history and a proxy's log would keep it.
            request.session[DONE] = [name, undo(form)]
            search = f"&q={quote(form['q'][:100])}" if form.get("q") else ""  # the search it was made from, in the address already
            return RedirectResponse(f"/dashboard/checkin/{quote(action_id)}?done=1{search}", status_code=303, headers={"Cache-Control": "no-store"})
        detail = api_detail(answer.body)
        if wants_json(request):
            extra = {"Retry-After": answer.retry_after} if answer.retry_after else {}
            return error(answer.status, detail, [FieldError.model_validate(e) for e in answer.body.get("errors", [])], extra)
        return render(request, partner, action_id, problem=f"{not_done(form)} ({answer.status}): {detail}", status=answer.status,
                      typed=walk_in_typed(form))

    async def write(partner: str, action_id: str, form: dict[str, str]):
        eid = event_id(form)
        at = tapped_at(form, datetime.now(timezone.utc))
        sms = email = False
        if form.get("ref"):
            contact = directory.find(partner, action_id, form["ref"], attendance(action_id), book.person_of)
            if contact is None:
                raise Refusal("ref", "that person is not on this partner's list for this action")
            entry = next((e for e in roster(partner, action_id) if e.ref == form["ref"]), None) if undo(form) else None
            if undo(form) and not (entry is not None and entry.can_undo):
                # The API would take it and change nothing (another partner's check-in, or none):
                # the volunteer hears why instead of "done".
                if entry is None or not entry.checked_in:
                    raise Refusal("ref", f"{contact.name} is not checked in (undone already, perhaps on another phone): nothing to withdraw")
                raise Refusal("ref", f"{contact.name} has no check-in of this partner's to withdraw (another partner's is theirs to take back)")
        elif undo(form):
            raise Refusal("ref", "an undo names the person on the list whose check-in to withdraw")
        else:
            contact, sms, email = walk_in(form)
        known = coalition().get(partner)
        if known is None:
            raise HTTPException(403, "this partner is disabled or no longer in the coalition")
        answer = await ingress.post(partner, known.secret.get_secret_value(), [checkin_event(eid, action_id, at, contact, sms, email, undo(form))])
        if answer.status == 202:
            directory.checked_in(partner, action_id, contact, undo(form))
        return answer, contact.name

    return r


def undo(form: dict[str, str]) -> bool:
    """Whether the form withdraws a check-in (the "Undo" of a wrong tap) instead of making one."""
    if form.get("undo", "") not in ("", "1"):
        raise Refusal("undo", "must be 1 (withdraw the check-in) or left out")
    return form.get("undo") == "1"


def not_done(form: dict[str, str]) -> str:
    """How a refusal of the form begins."""
    return "Not withdrawn" if form.get("undo") == "1" else "Not checked in"


def walk_in_typed(form: dict[str, str]) -> dict[str, str] | None:
    """What a volunteer typed for a walk-in (not for a tap on the list), to give back after a
    refusal: its event id too, so that sending it again after a 503 is the same check-in."""
    if form.get("ref"):
        return None
    return {k: form[k] for k in ("event_id", "given_name", "family_name", "phone", "email", "consent_sms", "consent_email") if k in form}


def matches(entry: Entry, q: str) -> bool:
    """A search by name (any part, ignoring case and accents) or by the last digits of a phone."""
    q = q.strip()
    if q.isdigit():
        return entry.phone_last4 is not None and entry.phone_last4.endswith(q[-4:])
    return fold(q) in fold(entry.name)


#: Apostrophes and dashes as a phone keyboard types them (a sheet from Excel holds the curly ones).
#: Apostrophes, curly or straight, are dropped ("oneil" finds O'Neil); dashes are one hyphen.
_PLAIN = str.maketrans({"\u2018": None, "\u2019": None, "\u02bc": None, "\u2032": None, "'": None,
                        "\u2010": "-", "\u2011": "-", "\u2013": "-", "\u2014": "-"})


def fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c)).translate(_PLAIN)


def new_event_id() -> str:
    return secrets.token_hex(12)


def api_detail(body: dict) -> str:
    """The API's refusal in one line: its detail, and the first field error of a rejected event."""
    rejected = body.get("rejected") or []
    if rejected and rejected[0].get("errors"):
        e = rejected[0]["errors"][0]
        return f"{e.get('field')}: {e.get('message')}"
    return str(body.get("detail", "refused"))


def page_address(request: Request, public_url: str) -> str:
    """Where a phone opens this page: behind a proxy, ``public_url`` (the request's own URL has
    the proxy's internal host and scheme); with a loopback ``public_url``, the request's URL."""
    if urlsplit(public_url).hostname in ("127.0.0.1", "localhost", "::1"):
        return str(request.url.replace(query=""))
    return public_url.rstrip("/") + request.url.path
