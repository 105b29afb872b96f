"""Who is asking: an organizer, a partner's account, or nobody.

A browser holds a signed session cookie (Starlette's SessionMiddleware) that names an account
and a session (``connectors.accounts.rules.Session``), never a secret. It is checked against
the accounts topic on every request and before every message of an event stream, so it ends
at its expiry, at logout, when the account is removed or its password set anew, when its
partner is disabled, and when its partner's webhook secret is rotated. Scripts may send
``Authorization: Bearer <organizer token>`` instead.
"""

from __future__ import annotations

import hmac
import time
from typing import Callable

from fastapi import HTTPException, Request

from connectors.accounts.passwords import digest, new_token
from connectors.accounts.rules import Session, session_account
from connectors.accounts.store import AccountStore
from contracts.accounts import Account
from streams.coalition import Coalition
from streams.settings import Settings

from .view import Viewer

SIGN_IN = "sign in at /dashboard/login (or send Authorization: Bearer <organizer token>)"


class Access:
    def __init__(self, s: Settings, coalition: Callable[[], Coalition], accounts: AccountStore, key: bytes, clock: Callable[[], float] = time.time) -> None:
        self._token = s.organizer_token.get_secret_value() if s.organizer_token else None
        self._hours = s.session_hours
        self._coalition = coalition
        self._accounts = accounts
        self._key = key
        self.clock = clock

    def fingerprint(self, partner_id: str) -> str | None:
        """A keyed fingerprint of the partner's webhook secret (None: disabled or removed). Keyed,
        so the cookie that carries it says nothing about the secret."""
        partner = self._coalition().get(partner_id)
        if partner is None:
            return None
        return hmac.new(self._key, partner.secret.get_secret_value().encode(), "sha256").hexdigest()[:32]

    def partner_refusal(self, account: Account) -> str | None:
        """Why ``account`` may not sign in now: its partner is disabled or gone (None: it may)."""
        if account.partner is None or self.fingerprint(account.partner) is not None:
            return None
        partner = self._coalition().partners.get(account.partner)
        return f"{partner.name if partner else account.partner} is not enabled in this coalition: ask the coalition's organizers."

    def new_session(self, account: Account, now: float) -> dict[str, object]:
        """What the cookie of a fresh sign-in holds."""
        fp = None if account.partner is None else self.fingerprint(account.partner)
        return Session(email=account.email, account_id=account.id, sid=new_token(), issued_at=now, expires_at=now + self._hours * 3600, partner_fp=fp).model_dump()

    def session(self, request: Request) -> Session | None:
        return Session.read(request.session.get("session"))

    def viewer(self, request: Request) -> Viewer | None:
        auth = request.headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            ok = self._token is not None and hmac.compare_digest(auth[7:].strip().encode(), self._token.encode())
            return Viewer(role="organizer", admin=True) if ok else None
        session = self.session(request)
        if session is None:
            return None
        account = session_account(session, self._accounts.book, self.clock(), digest(session.sid), self.fingerprint)
        if account is None:
            return None
        role = "organizer" if account.partner is None else "partner"
        return Viewer(role=role, partner=account.partner, email=account.email, admin=account.role != "viewer")

    def require(self, request: Request) -> Viewer:
        viewer = self.viewer(request)
        if viewer is None:
            raise HTTPException(401, SIGN_IN, headers={"WWW-Authenticate": "Bearer"})
        return viewer

    def organizer(self, request: Request) -> Viewer:
        viewer = self.require(request)
        if viewer.role != "organizer":
            raise HTTPException(403, "organizers only")
        return viewer

    def admin(self, request: Request) -> Viewer:
        viewer = self.require(request)
        if not viewer.admin:
            raise HTTPException(403, "admins and organizers only")
        return viewer
