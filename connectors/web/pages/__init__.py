"""Supporters' pages, opened from the signed links in every text and email (no login):

- ``GET /r/{action}/{token}``: the action, when (in its own zone) and where, the partner that
  invites; Yes / Maybe / No as one plain form (no JavaScript). ``POST`` it: an RSVP credited to
  the ask's partner, then ``303`` back to the page, which thanks them (``?answered=yes&at=…&r=…``:
  ``r`` signs the answer and when it was taken, so only an answer this server took is thanked,
  and only while no later answer is in force).
- ``GET /unsubscribe/{action}/{token}``: confirm, with "stop text messages too". ``POST`` it, or
  the RFC 8058 one-click ``POST`` a mail client sends to the ``List-Unsubscribe`` URL (body
  ``List-Unsubscribe=One-Click``): opted out of email at once, coalition-wide.

A GET never changes anything (mail scanners open links). Pages speak the person's language
(English or Spanish), carry security headers (a CSP without scripts, no referrer: the token is
in the URL, no framing, no caching, noindex) and one small stylesheet. What a link opens and
what an answer writes is decided in ``opening``; this module only reads and answers HTTP.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from datetime import datetime, timedelta, timezone
from importlib.resources import files
from typing import AsyncIterator, Callable
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.formparsers import MultiPartException, MultiPartParser

from contracts.tallies import TallyBook
from streams.clock import Clock, from_setting
from streams.coalition import Coalition
from streams.data_keys import DataKeys
from streams.links import Purpose
from streams.settings import Settings
from streams.topology import provider_topic

from ..publisher import BrokerUnavailable, Publisher
from ..templating import environment
from .opening import Opened, Refused, open_link, rsvp_record, unsubscribe_records
from .words import WORDS, language, place, when

STATIC = files(__package__) / "static"
ANSWERS = ("yes", "maybe", "no")
#: Forms here hold a word or two; anything bigger is not from our page or a mail client.
MAX_FORM_BYTES = 4096
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
}


def router(s: Settings, publisher: Publisher, book: TallyBook, coalition: Callable[[], Coalition], data_keys: DataKeys,
           clock: Clock | None = None) -> APIRouter:
    """``clock`` decides whether a link has expired (default ``TURNOUT_CLOCK``, the clock the
    workers signed the links by); answers are stamped received with the system clock, as the
    ingress stamps partners' events. ``data_keys`` tells whose links no longer work: erased
    people's (the worker writes nothing of an answer from one either, ``agents.intake``)."""
    r = APIRouter(include_in_schema=False)
    key, now, rsvp_open = s.link_key_bytes(), clock or from_setting(s.clock), timedelta(hours=s.rsvp_open_hours)
    provider = provider_topic(s)
    css = (STATIC / "pages.css").read_bytes()
    css_url = "/pages/static/pages.css?v=" + hashlib.sha256(css).hexdigest()[:12]
    env = environment(__name__)
    env.globals["words"] = WORDS

    def page(name: str, lang: str = "en", status: int = 200, headers: dict[str, str] | None = None, **context: object) -> HTMLResponse:
        body = env.get_template(name).render(t=WORDS[lang], lang=lang, css=css_url, **context)
        return HTMLResponse(body, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})

    def refused(no: Refused) -> HTMLResponse:
        lang = language(no.link.language if no.link else None)
        details = {"title": no.action.title, "when": when(no.action.starts_at, no.action.time_zone, lang)} if no.action else {}
        retry = {"Retry-After": "30"} if no.status == 503 else {}
        return page("problem.html", lang, no.status, retry, kind=no.kind, **details)

    async def read_form(request: Request, opened: Opened) -> dict[str, str] | HTMLResponse:
        """The page's form, or the page that says it could not be read (too large, not UTF-8)."""
        try:
            return await small_form(request)
        except HTTPException as exc:
            return page("problem.html", language(opened.link.language), exc.status_code, kind="bad_form")

    tried = False

    async def opening(purpose: Purpose, action_id: str, token: str) -> Opened | Refused:
        nonlocal tried
        if not tried:  # the first link opened: learn the erasures made before this web app started (tried
            tried = True  # once, briefly: the worker does not write an answer from a forgotten person's link either)
            with contextlib.suppress(Exception):  # no broker: the ring stays as it is
                await data_keys.caught_up(2.0)
        return open_link(book, key, purpose, action_id, token, now(), rsvp_open, data_keys.ring.forgotten)

    def receipt(*parts: str) -> str:
        """What only this server writes into a page's address after taking an answer."""
        return hmac.new(key, "\0".join(("page-receipt", *parts)).encode(), hashlib.sha256).hexdigest()[:20]

    def taken(r: str | None, *parts: str) -> bool:
        return r is not None and hmac.compare_digest(r.encode(), receipt(*parts).encode())

    def rsvp_page(opened: Opened, status: int = 200, answered: str | None = None, notice: str | None = None,
                  headers: dict[str, str] | None = None) -> HTMLResponse:
        action, lang = opened.action, language(opened.link.language)
        return page("rsvp.html", lang, status, headers, action=action, when=when(action.starts_at, action.time_zone, lang),
                    place=place(action.location), partner=coalition().names().get(opened.partner), answered=answered,
                    answer=answered or opened.answer, notice=notice)

    @r.get("/r/{action_id}/{token}")
    async def rsvp(action_id: str, token: str, answered: str | None = None, at: str | None = None, r: str | None = None) -> Response:
        opened = await opening("rsvp", action_id, token)
        if isinstance(opened, Refused):
            return refused(opened)
        thanked = answered if answered in ANSWERS and at and taken(r, action_id, token, answered, at) else None
        if thanked and opened.answered_at is not None and opened.answered_at.timestamp() > int(at) + 1 and opened.answer != thanked:
            thanked = None  # answered again since (the email's link, another partner): the answer in force
        return rsvp_page(opened, answered=thanked)

    @r.post("/r/{action_id}/{token}")
    async def answer(request: Request, action_id: str, token: str) -> Response:
        opened = await opening("rsvp", action_id, token)
        if isinstance(opened, Refused):
            return refused(opened)
        if isinstance(form := await read_form(request, opened), HTMLResponse):
            return form
        status = form.get("status")
        if status not in ANSWERS:
            return rsvp_page(opened, 400, notice="bad_answer")
        received = datetime.now(timezone.utc)
        try:
            await publisher.publish([rsvp_record(opened, status, received)])
        except BrokerUnavailable as exc:
            return rsvp_page(opened, 503, notice="unsaved_body", headers={"Retry-After": str(exc.retry_after)})
        # Post/redirect/get: a reload shows the answer instead of posting it again.
        at = str(int(received.timestamp()))
        return RedirectResponse(f"?answered={status}&at={at}&r={receipt(action_id, token, status, at)}", status_code=303, headers=SECURITY_HEADERS)

    def unsubscribe_page(opened: Opened, status: int = 200, done: str | None = None, notice: str | None = None,
                         headers: dict[str, str] | None = None) -> HTMLResponse:
        return page("unsubscribe.html", language(opened.link.language), status, headers, action=opened.action, done=done,
                    already=opened.unsubscribed, notice=notice)

    @r.get("/unsubscribe/{action_id}/{token}")
    async def unsubscribe_form(action_id: str, token: str, done: str | None = None, r: str | None = None) -> Response:
        opened = await opening("unsubscribe", action_id, token)
        if isinstance(opened, Refused):
            return refused(opened)
        return unsubscribe_page(opened, done=done if done in ("email", "both") and taken(r, action_id, token, done) else None)

    @r.post("/unsubscribe/{action_id}/{token}")
    async def unsubscribe(request: Request, action_id: str, token: str) -> Response:
        opened = await opening("unsubscribe", action_id, token)
        if isinstance(opened, Refused):
            return refused(opened)
        if isinstance(form := await read_form(request, opened), HTMLResponse):
            return form
        from_page = form.get("source") == "page"
        if not from_page and form.get("List-Unsubscribe") != "One-Click":  # RFC 8058's one-click, from a mail client
            return page("problem.html", language(opened.link.language), 400, kind="bad_form")
        stop_texts = from_page and form.get("sms") == "stop"
        try:
            await publisher.publish(unsubscribe_records(opened, stop_texts, datetime.now(timezone.utc)), provider)
        except BrokerUnavailable as exc:
            return unsubscribe_page(opened, 503, notice="unsaved_unsub", headers={"Retry-After": str(exc.retry_after)})
        done = "both" if stop_texts else "email"
        if from_page:
            return RedirectResponse(f"?done={done}&r={receipt(action_id, token, done)}", status_code=303, headers=SECURITY_HEADERS)
        return unsubscribe_page(opened, done=done)  # a mail client wants a 2xx, not a redirect

    @r.api_route("/r/{action_id}", methods=["GET", "POST"])
    @r.api_route("/r/{action_id}/", methods=["GET", "POST"])
    @r.api_route("/unsubscribe/{action_id}", methods=["GET", "POST"])
    @r.api_route("/unsubscribe/{action_id}/", methods=["GET", "POST"])
    async def cut_short(action_id: str) -> Response:
        # A link cut short at a slash (a mail client wrapping a long URL) has no token: the same
        # page as any link we cannot read, not the API's JSON 404 a supporter could not read.
        return page("problem.html", status=404, kind="invalid")

    @r.get("/pages/static/pages.css")
    async def stylesheet() -> Response:
        # A versioned URL (?v=hash): cached for good; a new stylesheet gets a new URL.
        return Response(css, media_type="text/css", headers={"Cache-Control": "public, max-age=31536000, immutable", "X-Content-Type-Options": "nosniff"})

    return r


async def small_form(request: Request, strict: bool = False) -> dict[str, str]:
    """The fields of a small URL-encoded or multipart form (RFC 8058's one-click may be either);
    ``{}`` for another body; 400 for a field given twice. 413 past ``MAX_FORM_BYTES``. ``strict``:
    a form that is not UTF-8 is refused (400) instead of read with replacement characters (a
    name typed at the door must not be stored garbled)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise HTTPException(413, "form too large")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise HTTPException(413, "form too large")
    kind = request.headers.get("content-type", "").lower()  # media types are case-insensitive (RFC 9110 8.3.1)
    if kind.startswith("multipart/form-data"):
        async def whole() -> AsyncIterator[bytes]:
            yield body
        try:
            fields = [(k, v) for k, v in (await MultiPartParser(request.headers, whole()).parse()).multi_items() if isinstance(v, str)]
        except MultiPartException:
            raise HTTPException(400, "the form cannot be read") from None
    elif kind.startswith("application/x-www-form-urlencoded"):
        errors = "strict" if strict else "replace"
        try:
            fields = parse_qsl(body.decode("utf-8", errors), keep_blank_values=True, errors=errors)
        except UnicodeDecodeError:
            raise HTTPException(400, "the form is not UTF-8") from None
    else:
        return {}
    form = dict(fields)
    if len(form) < len(fields):  # which one counts would be a guess
        raise HTTPException(400, "a field is given more than once")
    return form
