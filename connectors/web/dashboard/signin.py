"""Signing in and out of the dashboard, and choosing a password with a one-time sign-in link.

Failed attempts are throttled per account (the email tried, known or not) and per client
address: past the limit within the window, 429 with Retry-After, before any password is
checked. An attempt counts as failed from the moment it is checked (the check is slow on
purpose) until it succeeds, so attempts sent at once are throttled as if sent one after
another. Every refusal says why, and a refused request writes nothing.
"""

from __future__ import annotations

import math
import re
import time
from datetime import datetime, timezone
from typing import Callable, ClassVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from connectors.accounts.passwords import verify
from connectors.accounts.rules import AccountRefused
from connectors.accounts.store import AccountStore, AccountsUnavailable
from connectors.accounts.throttle import Throttle
from streams.settings import Settings

from ..body import load_json, read_limited
from ..errors import error, model_body
from .access import Access
from .pages import PRIVATE, form_page


class WhoseLink(BaseModel):
    """``POST /dashboard/welcome/account``'s body: the part of a sign-in link after ``#``."""

    MAX_BYTES: ClassVar[int] = 4096
    token: str = Field(min_length=1, max_length=200)

NOT_ACCEPTED = "That email and password were not accepted."


def router(s: Settings, access: Access, accounts: AccountStore, monotonic: Callable[[], float] = time.monotonic) -> APIRouter:
    r = APIRouter(include_in_schema=False)
    window = s.signin_window_minutes * 60
    per_account = Throttle(s.signin_failures_per_account, window)
    per_address = Throttle(s.signin_failures_per_address, window)

    def throttled(page: str | None, address: str, email: str | None = None) -> Response | None:
        """The 429 for an address (and an email) past its limit, as the page ``page`` or, for
        ``None``, as JSON; ``None`` while attempts are allowed."""
        now = monotonic()
        waits = [w for w in (per_address.retry_after(address, now), email and per_account.retry_after(email, now)) if w]
        if not waits:
            return None
        wait = math.ceil(max(waits))
        said, headers = f"Too many failed attempts: try again in {wait} seconds.", {"Retry-After": str(wait)}
        return form_page(page, 429, said, headers=headers) if page is not None else error(429, said, headers=headers)

    @r.get("/dashboard/login")
    async def login_page(next: str = "") -> Response:
        return form_page("login.html", next=next if safe_next(next) else "")

    @r.post("/dashboard/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        email, password = str(form.get("email", "")).strip().lower(), str(form.get("password", ""))
        after = str(form.get("next", ""))
        after = after if safe_next(after) else "/dashboard"
        address = _address(request)
        if (refusal := throttled("login.html", address, email)) is not None:
            return refusal
        account, at = accounts.book.account(email), monotonic()
        per_account.failed(email, at)
        per_address.failed(address, at)
        if not await verify(account.password_hash if account else None, password):
            return form_page("login.html", 401, NOT_ACCEPTED, email=email, next=after)
        per_account.succeeded(email)
        per_address.forgive(address, at)
        if (why := access.partner_refusal(account)) is not None:
            return form_page("login.html", 403, why, email=email, next=after)
        return _signed_in(request, access.new_session(account, access.clock()), after)

    @r.post("/dashboard/logout")
    async def logout(request: Request) -> Response:
        session = access.session(request)
        request.session.clear()
        if session is not None:
            try:  # revoked everywhere, not only forgotten by this browser
                await accounts.sign_out(session.sid, datetime.fromtimestamp(session.expires_at, timezone.utc), datetime.now(timezone.utc))
            except AccountsUnavailable as exc:
                return form_page("login.html", 503, "Signing out could not be recorded (the broker is not answering): try again.", headers={"Retry-After": str(exc.retry_after)})
        return RedirectResponse("/dashboard/login", status_code=303)

    @r.get("/dashboard/welcome")
    async def welcome_page() -> Response:
        return form_page("welcome.html")

    @r.post("/dashboard/welcome/account")
    async def invited(request: Request) -> Response:
        """Whose sign-in link this is (``{"token": ...}``): the welcome page names the account,
        and gives password managers its username, before a password is chosen. An attempt
        counts as failed for the address until the link is known good, as choosing a password
        with it does (a burst is throttled as if sent one after another)."""
        address, now = _address(request), monotonic()
        if (refusal := throttled(None, address)) is not None:
            return refusal
        per_address.failed(address, now)
        body = model_body(WhoseLink, load_json(await read_limited(request, WhoseLink.MAX_BYTES)))
        if isinstance(body, JSONResponse):
            return body
        try:
            account = await accounts.invited(body.token.strip(), datetime.fromtimestamp(access.clock(), timezone.utc))
        except AccountRefused as exc:
            return error(exc.status, str(exc)[0].upper() + str(exc)[1:] + ".")
        except AccountsUnavailable as exc:
            per_address.forgive(address, now)
            return error(503, "The broker is not answering: try again.", headers={"Retry-After": str(exc.retry_after)})
        per_address.forgive(address, now)
        return JSONResponse({"email": account.email, "role": account.role, "partner": account.partner}, headers=PRIVATE)

    @r.post("/dashboard/welcome")
    async def welcome(request: Request) -> Response:
        form = await request.form()
        token, password = str(form.get("token", "")).strip(), str(form.get("password", ""))
        address = _address(request)
        if (refusal := throttled("welcome.html", address)) is not None:
            return refusal
        if password != str(form.get("confirm", "")):
            return form_page("welcome.html", 422, "The two passwords differ.", token=token)
        at, wrong_token = monotonic(), False
        per_address.failed(address, at)  # until the token is known good
        try:
            account = await accounts.set_password(token, password, datetime.fromtimestamp(access.clock(), timezone.utc))
        except AccountRefused as exc:
            wrong_token = exc.status == 400  # not a weak password
            return form_page("welcome.html", exc.status, str(exc)[0].upper() + str(exc)[1:] + ".", token=token)
        except AccountsUnavailable as exc:
            return form_page("welcome.html", 503, "Your password could not be saved (the broker is not answering): try again.", headers={"Retry-After": str(exc.retry_after)}, token=token)
        finally:
            if not wrong_token:
                per_address.forgive(address, at)
        if (why := access.partner_refusal(account)) is not None:  # the password is saved: sign in once it is enabled
            return form_page("login.html", 403, f"Your password is saved. {why}")
        return _signed_in(request, access.new_session(account, account.sessions_since.timestamp()))

    return r


def _signed_in(request: Request, session: dict[str, object], after: str = "/dashboard") -> Response:
    request.session.clear()
    request.session["session"] = session
    return RedirectResponse(after, status_code=303)


#: Where a sign-in may lead on to: a page of the dashboard (the door check-in page's QR code
#: opens it on a phone not signed in yet), never another site.
NEXT = re.compile(r"^/dashboard(/(?!\.+(/|$))[A-Za-z0-9._~-]+)*/?$")  # no "." or ".." segment


def safe_next(path: str) -> bool:
    return bool(NEXT.fullmatch(path))  # not match: its "$" also matches before a final newline


def _address(request: Request) -> str:
    # uvicorn puts the proxy's X-Forwarded-For here when it trusts the proxy (see README).
    return request.client.host if request.client else "unknown"
