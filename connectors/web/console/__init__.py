"""The organizer console: create or edit an action, check it, confirm, post.

- ``GET /dashboard/console[?action=ID]``: the action form (everything the ``action`` event can
  say), filled in from a posted action to edit it. With JavaScript, each SMS template shows its
  length and SMS segments with sample values as you type, and the form is checked as you type.
- ``POST /dashboard/console/check``: the form checked as the ingress would check it, nothing
  written: ``{"errors": [{"field", "message"}]}``.
- ``POST /dashboard/console``: checked; then a confirmation page that repeats what will happen.
  For a rapid-response alert it previews the audience (``.audience``: the workers plan it without
  writing anything, and the page shows how many people would be asked by channel, how many are
  left out and why, how many texts quiet hours would hold and until when) and offers a test send
  to the organizer's own phone or email (``test_send=yes``; rate-limited per organizer). Its
  launch button (``confirmed=yes``) repeats the count and posts the event through the signed
  partner API, as the coalition's backbone partner (``..door.ingress_client``): a client of
  the API, not a back door.

Who: organizers (posting as the backbone partner of the coalition file) and the admins of a
partner whose role is ``backbone`` (posting as it). Plain forms: it all works without JavaScript.
"""

from __future__ import annotations

import re
import secrets
import time
from datetime import datetime, timedelta, timezone
from typing import Callable, Mapping

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from contracts.events import PLACEHOLDERS, ActionEvent, grace_start
from contracts.facts import ActionRecord, Pledge
from contracts.partners import Partner
from contracts.people import normalize_email, normalize_phone
from contracts.preview import ALREADY, PreviewAudience, SendTest
from contracts.tallies import TallyBook
from contracts.zones import local_time
from streams.clock import from_setting
from streams.coalition import Coalition
from streams.keys import fact_key
from streams.settings import Settings

from ...csv_files import zip_problem
from ..dashboard.access import Access
from ..errors import wants_json
from ..door.ingress_client import Ingress
from ..ingress import Authority, stale_alert, unknown_partners, validate_events
from ..publisher import BrokerUnavailable
from ..pages.words import when
from ..templating import environment
from .audience import Audience, TestLimit, Totals, launch_question, total
from .form import KINDS, LANGUAGES, ZONES, from_action, input_of, skipped_problem, to_event, version_problem

POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
          "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": POLICY, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def router(s: Settings, access: Access, book: TallyBook, coalition: Callable[[], Coalition], ingress: Ingress,
           audience: Audience, wait: float = 10.0, limit: TestLimit | None = None) -> APIRouter:
    """``audience``: the workers, for the preview and the test send (``wait``: how long for their answers)."""
    r = APIRouter(include_in_schema=False)
    limit = limit or TestLimit()
    env = environment(__name__)
    owner_of = lambda action_id: (rec.partner if (rec := book.action_record(action_id)) else None)  # noqa: E731
    clock = from_setting(s.clock)
    footers = {"en": s.sms_footer, "es": s.sms_footer_es}  # what each SMS template's length is counted with

    def poster(request: Request) -> Partner:
        """The partner the signed-in person posts as; 403 for anyone else, 409 without a backbone."""
        viewer = access.require(request)
        every = coalition()
        if viewer.role == "organizer":
            backbone = [p for _, p in sorted(every.partners.items()) if p.role == "backbone" and p.enabled]
            if not backbone:
                raise HTTPException(409, "the coalition file has no enabled backbone partner to post as: add one with "
                                    "`turnout partners add coalition-hub --name \"Our Coalition\" --kind backbone --role backbone`")
            return backbone[0]
        partner = every.get(viewer.partner or "")
        if not viewer.admin or partner is None or partner.role != "backbone":
            raise HTTPException(403, "the console is for organizers and the backbone partner's admins")
        return partner

    def page(status: int = 200, **context: object) -> HTMLResponse:
        body = env.get_template("console.html").render(kinds=KINDS, zones=ZONES, languages=LANGUAGES, footers=footers,
                                                       placeholders=sorted(PLACEHOLDERS), **context)
        return HTMLResponse(body, status_code=status, headers=HEADERS)

    def checked(form: dict[str, str], partner: Partner):
        event = to_event(form, form.get("event_id") or "console-" + secrets.token_hex(10), datetime.now(timezone.utc))
        result = validate_events([event], s.default_region, Authority(partner.id, partner.role, datetime.now(timezone.utc), owner_of,
                                                                     frozenset(coalition().partners)))
        errors = [{"field": e.field, "message": e.message} for rej in result.rejected for e in rej.errors]
        action = result.accepted[0][1] if result.accepted else None
        if action is None and isinstance(event["pledges"], list):  # its other problems kept the coalition's rule from being asked
            said = {e["field"] for e in errors}
            errors += [{"field": e.field, "message": e.message} for e in unknown_partners([p["partner"] for p in event["pledges"]], coalition().partners)
                       if e.field not in said]
        posted = book.action_record(str(event.get("action_id")))
        if problem := version_problem(form, posted):
            errors.insert(0, {"field": "action_id", "message": problem})
        if problem := skipped_problem(form.get("local_start", "").strip(), form.get("time_zone", "").strip()):
            errors.append({"field": "local_start", "message": problem})
        # Said with the form's other problems, whether or not the rest of the action is valid.
        if (starts := aware(event.get("starts_at"))) is not None and (problem := start_problem(
                starts, posted, clock(), timedelta(minutes=s.rapid_response_grace_minutes),
                alert=event.get("rapid_response") is True)):
            errors.append({"field": "local_start", "message": problem})
        if s.default_region == "US":  # a target ZIP that is none reaches nobody, without a word
            errors += [{"field": "target.postal_codes", "message": f"{code!r} {problem}"}
                       for code in event["target"]["postal_codes"] if (problem := zip_problem(code))]
        if any(e["field"] == "time_zone" for e in errors):  # no start can be read in an unknown zone: said once
            errors = [e for e in errors if e["field"] != "starts_at"]
        errors = [{**e, "message": f"{e['message']} (line {int(line[1]) + 1} of the pledges)"} if (line := PLEDGE_LINE.match(e["field"])) else e
                  for e in errors]  # the field's index counts from 0, a reader from 1
        if not form.get("local_start", "").strip() and any(e["field"] == "starts_at" for e in errors):  # the picker left empty
            errors = [e if e["field"] != "starts_at" else {"field": "local_start", "message": "give the day and time the action starts"}
                      for e in errors]
        return event, [{**e, "input": input_of(e["field"], e["message"])} for e in errors], action  # "input": the id of the box to fix

    def pledges(action_id: str, inline: bool) -> dict[str, int]:
        """The action's pledges in force as the web app has read them, by partner: those listed
        inside it (``inline``) or the partners' own."""
        return {pid: pledge.count for pid in coalition().partners
                if isinstance(pledge := book.fact("pledge", fact_key(action_id, pid)), Pledge) and pledge.inline == inline}

    def sponsors(action: ActionEvent, partner: Partner) -> tuple[str, tuple[str, ...]]:
        """The owner the alert would be posted under, and its co-sponsors as the workers will find
        them when it fans out: the partners with a pledge of their own for it (0 included; not
        one listed inside an action), posted before it or not."""
        return owner_of(action.action_id) or partner.id, tuple(sorted(pledges(action.action_id, inline=False)))

    def listed(action_id: str) -> dict[str, int]:
        """The pledges listed inside the action that count now (by partner): what an edit that
        leaves a line out takes back (the console posts as the backbone, which may list any)."""
        return pledges(action_id, inline=True)

    async def preview(action: ActionEvent, partner: Partner):
        owner, co = sponsors(action, partner)
        req = PreviewAudience(request_id=secrets.token_hex(12), action=action, owner=owner, sponsors=co, requested_at=datetime.now(timezone.utc))
        try:
            counts, partitions = await audience.preview(req, wait)
        except BrokerUnavailable:  # nobody could be asked: every part of the table is uncounted
            counts, partitions = [], s.partitions
        return total(counts, partitions)

    async def test_send(request: Request, form: dict[str, str], action: ActionEvent, partner: Partner) -> dict:
        """Send the rendered messages to the organizer's own phone and email; what happened, in words."""
        phone, email = (form.get("test_phone") or "").strip(), (form.get("test_email") or "").strip()
        out: dict = {"phone": phone, "email": email}
        for name, normalize in (("phone", lambda v: normalize_phone(v, s.default_region)), ("email", normalize_email)):
            try:
                out[name] = normalize(out[name]) if out[name] else ""
            except ValueError as exc:
                return {**out, "error": f"your {name}: {str(exc).rstrip('.')}"}  # the page ends it with its own period
        phone, email = out["phone"], out["email"]
        if not phone and not email:
            return {**out, "error": "type your own phone or email to send the test to"}
        viewer = access.require(request)
        if (again := limit.allow(viewer.email or viewer.role, time.monotonic())) is not None:
            return {**out, "error": f"too many test sends: try again in {max(1, round(again / 60))} min"}
        owner, _ = sponsors(action, partner)
        languages = template_languages(action)
        default = languages[0] if len(languages) == 1 else "en"  # an alert in one language only is tested in it
        language = form.get("test_language") if form.get("test_language") in languages else default
        cmd = SendTest(request_id=secrets.token_hex(12), action=action, sponsor=owner, language=language, phone=phone or None,
                       email=email or None, requested_at=datetime.now(timezone.utc))
        try:
            answer = await audience.test(cmd, wait)
        except BrokerUnavailable:
            return {**out, "error": "the broker did not take the request: try again in a moment"}
        if answer is None:
            return {**out, "error": "no worker answered in time: is a worker running? (nothing may have been sent)"}
        return {**out, "results": [r.model_dump() for r in answer.results]}

    async def confirmation(request: Request, form: dict[str, str], event: dict, action: ActionEvent | None, partner: Partner) -> HTMLResponse:
        """The page before posting: what it will do, a test send if asked for and, for an alert, the audience."""
        values = {k: v for k, v in {**form, "event_id": event["event_id"]}.items() if k not in ("test_send", "test_phone", "test_email", "test_language")}
        owner = owner_of(event["action_id"])
        confirm = summary(event, owner, listed(event["action_id"]) if owner else {})
        tested = await test_send(request, form, action, partner) if form.get("test_send") == "yes" and action is not None else None
        totals = await preview(action, partner) if event["rapid_response"] and action is not None else None
        extra = {}
        if totals is not None:
            moments = (("first", totals.deferred_first), ("last", totals.deferred_last), ("drains", totals.queue_drains))
            owner, co = sponsors(action, partner)
            extra = {"launch_question": launch_question(totals, confirm["channels"]),
                     # An edit reaches only people not asked yet: those asked keep the message they had.
                     "asked_before": {c: n for c in ("sms", "email") if confirm["owner"] and (n := totals.excluded.get(c, {}).get(ALREADY, 0))},
                     "deferred": {k: when(v, event["time_zone"], "en") for k, v in moments if v},
                     # People left out for want of a sponsor, and partners listed with a pledge in the form that are
                     # none: their own pledge (0 will do) makes them one.
                     "not_sponsors": sorted({p.partner for p in action.pledges} - {owner, *co})
                     if any("consent covers no sponsor" in by for by in totals.excluded.values()) else []}
        languages = template_languages(action) if action is not None else []
        return page(values=values, confirm=confirm, partner=partner, audience=totals, tested=tested, launch_label=launch_label(confirm, totals),
                    test_languages=languages if len(languages) > 1 else [], test_language=form.get("test_language") or "en", **extra)

    def refused(no: HTTPException, signed_out: bool = False) -> HTMLResponse:
        """A refusal as a page a browser shows (the page's own script gets the JSON error)."""
        title = "Your sign-in has ended" if signed_out else "The organizer console is not available here"
        body = env.get_template("refused.html").render(title=title, detail=no.detail, signed_out=signed_out)
        return HTMLResponse(body, status_code=no.status_code, headers=HEADERS)

    def poster_or_page(request: Request) -> Partner | Response:
        """``poster``, or its refusal as a page for a browser (the page's script gets the JSON error)."""
        try:
            return poster(request)
        except HTTPException as no:
            if wants_json(request):
                raise
            return refused(no)

    @r.get("/dashboard/console")
    async def editor(request: Request, action: str | None = None) -> Response:
        if access.viewer(request) is None:
            return RedirectResponse("/dashboard/login?next=/dashboard/console", status_code=303)
        if isinstance(partner := poster_or_page(request), Response):
            return partner
        record = book.action_record(action) if action else None
        values = from_action(record.action, listed(record.action.action_id)) if record else {"kind": "rally", "time_zone": "America/Los_Angeles", "based_on": ""}
        return page(values=values, editing=record is not None, partner=partner)

    @r.post("/dashboard/console/check")
    async def check(request: Request) -> JSONResponse:
        """The form's errors, and the start as each language's texts will write it (``{local_time}``:
        "sáb 5 dic" makes a Spanish text UCS-2), for the page's SMS counts."""
        partner = poster(request)
        form = await form_of(request)
        event, errors, _ = checked(form, partner)
        start, zone = event["starts_at"], event["time_zone"]  # as the form is read for posting
        times = {}
        if start and not any(e["field"] == "starts_at" for e in errors):  # a start at the calendar's edge has no local time to write
            times = {lang: local_time(datetime.fromisoformat(start), zone, lang, sms=True) for lang in LANGUAGES}
        return JSONResponse({"errors": errors, "local_times": times})

    @r.post("/dashboard/console")
    async def post(request: Request) -> Response:
        if access.viewer(request) is None and not wants_json(request):
            # A session that ended while the form was being written: a page that says what to do, not JSON.
            return refused(HTTPException(401, "not signed in"), signed_out=True)
        if isinstance(partner := poster_or_page(request), Response):
            return partner
        form = await form_of(request)
        event, errors, action = checked(form, partner)
        # An edit's form says so (``based_on``, the version it was opened at): a new action's form
        # whose id is taken stays a new one, its id box open to change.
        editing = bool(form["based_on"]) if "based_on" in form else owner_of(event["action_id"]) is not None
        if form.get("edit") == "yes":  # back from the confirmation to the form, as it was
            return page(values=form, partner=partner, editing=editing)
        if errors:
            return page(422, values=form, errors=errors, partner=partner, editing=editing)
        if form.get("confirmed") != "yes":
            return await confirmation(request, form, event, action, partner)
        done = "changes" if owner_of(event["action_id"]) is not None else "alert" if event["rapid_response"] else "action"
        answer = await ingress.post(partner.id, partner.secret.get_secret_value(), [event])
        if answer.status != 202:
            errors = [{"field": e.get("field"), "message": e.get("message")} for rej in answer.body.get("rejected", []) for e in rej.get("errors", [])]
            errors = errors or [{"field": "(request)", "message": str(answer.body.get("detail", answer.status))}]
            return page(answer.status, values=form, errors=errors, partner=partner, editing=False)
        # On to its figures; the dashboard says what was done (``posted``: an alert, an action, changes).
        return RedirectResponse(f"/dashboard?action={event['action_id']}&posted={done}", status_code=303)

    return r


#: A field of one line of the pledges box (``pledges.1.partner``).
PLEDGE_LINE = re.compile(r"pledges\.(\d+)\.")


def template_languages(action: ActionEvent) -> list[str]:
    """The languages the action has a template in: what a test send may be rendered in."""
    return sorted({*action.templates.sms, *action.templates.email})


#: A start further ahead than this is taken for a typo in the year.
FAR_AHEAD = timedelta(days=366)


def aware(text: object) -> datetime | None:
    """The form's start as the contract will read it, if it is one."""
    try:
        when = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None
    return when if when is not None and when.tzinfo is not None else None


def start_problem(starts_at: datetime, posted: ActionRecord | None, now: datetime, grace: timedelta, alert: bool = True) -> str | None:
    """What the console says of the action's start, beyond the contract (the API takes any
    plausible start: a partner may record a past action to check people in): for an ``alert``, a
    start past by more than the rapid-response ``grace`` before it was first posted
    (``stale_alert``: nobody would be asked; within it, an alert is texted for the grace after it
    is posted, so "now" may be a few minutes ago), unless an edit keeps the one posted; for any
    action, one more than a year ahead."""
    first = grace_start(posted.first_received or now, now) if posted is not None else now  # an edit: its grace counts from then
    if alert and (stale := stale_alert(starts_at, first, grace)) is not None and (posted is None or posted.action.starts_at != starts_at):
        return f"the start is {stale}"
    if starts_at > now + FAR_AHEAD:
        return "the start is more than a year ahead: is the year right?"
    return None


async def form_of(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: str(v) for k, v in form.items()}


def launch_label(confirm: dict, totals: Totals | None) -> str:
    """The launch button: an alert counted whole that reaches nobody (everyone asked already, an
    edit) is posted or saved, not "sent"."""
    if not confirm["rapid_response"]:
        return f"{confirm['verb']} the action"
    if totals is not None and totals.complete and totals.reached == 0:
        return f"{confirm['verb']} the alert: it asks nobody {'new' if confirm['owner'] else 'now'}"
    return f"Send the alert to {confirm['area']} now"


def summary(event: dict, owner: str | None, listed: Mapping[str, int]) -> dict:
    """What the confirmation page repeats before anything is posted (``owner``: the action's, if
    it is posted already: an edit keeps it; ``listed``: the pledges listed in it that count now,
    of which those the form leaves out are taken back)."""
    action = event  # valid by now: every field is there
    start = datetime.fromisoformat(action["starts_at"])
    area = ", ".join(action["target"]["postal_codes"] + action["target"]["regions"]) or "no target area (nobody is asked)"
    channels = [c for c in ("sms", "email") if action["templates"][c]]
    kept = {p["partner"] for p in action["pledges"]}
    return {
        "verb": "Save the changes to" if owner else "Post", "owner": owner,
        "title": action["title"], "action_id": action["action_id"], "when": when(start, action["time_zone"], "en"),
        "area": area, "channels": channels, "rapid_response": action["rapid_response"],
        "override_quiet_hours": action["override_quiet_hours"],
        "pledges": [f"{p['partner']}: {p['count']}" for p in action["pledges"]],
        "taken_back": [f"{pid} ({n})" for pid, n in listed.items() if pid not in kept],
    }
