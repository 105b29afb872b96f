"""Who may do what with dashboard accounts, and when a session still holds. Pure: no clock,
no I/O; the state and ``now`` come in as arguments."""

from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta
from typing import Callable

from pydantic import BaseModel, ValidationError

from contracts.accounts import Account

from .book import AccountBook

MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # argon2 takes any length; a megabyte "password" is only a way to burn CPU


class AccountRefused(Exception):
    """A request the rules refuse. ``str(exc)`` says why; ``status`` is the HTTP answer;
    ``field`` names the request's field at fault, when one is."""

    def __init__(self, message: str, status: int = 403, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


def describe(account: Account) -> str:
    return "an organizer" if account.partner is None else f"{account.partner}'s {account.role}"


def check_manager(manager: str | None, role: str, partner: str | None) -> None:
    """May someone who manages ``manager``'s accounts (None: an organizer, who manages every
    account) give ``role`` at ``partner``? Admins invite their own partner's staff only."""
    if (role == "organizer") != (partner is None):
        raise AccountRefused("an organizer has no partner; an admin or viewer needs one", 422, "partner")
    if manager is not None and (partner != manager or role == "organizer"):
        raise AccountRefused(f"a partner admin invites only {manager}'s staff, as viewer or admin")


def invitation(existing: Account | None, email: str, role: str, partner: str | None, by: str, now: datetime,
               hours: float, digest: str, new_id: str, manager: str | None = None) -> Account:
    """The account record an invitation writes: a new account, or for an existing one of the
    same role and partner, a fresh link (its password, if any, works until the link is used)."""
    expires = now + timedelta(hours=hours)
    if existing is not None:
        if manager is not None and existing.partner != manager:  # an admin is not told whose it is
            raise AccountRefused(f"{email} cannot be invited by {manager}: ask a coalition organizer", 409)
        if (existing.role, existing.partner) != (role, partner):
            raise AccountRefused(f"{email} is already {describe(existing)}: remove that account first to change it", 409)
        return existing.model_copy(update={"invite_sha256": digest, "invite_expires_at": expires, "spent_invite_sha256": None})
    try:
        return Account(email=email, id=new_id, role=role, partner=partner, invite_sha256=digest, invite_expires_at=expires,
                       sessions_since=now, invited_by=by, created_at=now)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(x) for x in err["loc"])
        raise AccountRefused(f"{field or 'account'}: {err['msg']}", 422, field or None) from None


def removable(manager: str | None, account: Account | None, email: str) -> Account:
    """The account ``manager`` (None: an organizer) may remove. Another partner's account is
    answered as missing: an admin learns nothing about who else has one."""
    if account is None or (manager is not None and account.partner != manager):
        raise AccountRefused(f"no account {email}" + (f" at {manager}" if manager else ""), 404)
    return account


def invite_link(base: str, token: str) -> str:
    """The one-time sign-in link. The token rides in the fragment, which a browser never sends
    to a server (nor to a proxy's access log); the page moves it into its form."""
    return f"{base.rstrip('/')}/dashboard/welcome#{token}"


def password_problem(password: str) -> str | None:
    """Counted as compared (``passwords``: NFKC): "é" typed as an e and its accent is one character."""
    compared = unicodedata.normalize("NFKC", password)
    if len(compared) < MIN_PASSWORD:
        return f"choose a password of at least {MIN_PASSWORD} characters"
    if len(compared) > MAX_PASSWORD:
        return f"choose a password of at most {MAX_PASSWORD} characters"
    if not compared.strip():
        return "choose a password that is not only spaces"
    return None


def with_password(account: Account, password_hash: str, now: datetime) -> Account:
    """The account once its link is used: the new password, the link spent, older sessions void."""
    return account.model_copy(update={"password_hash": password_hash, "invite_sha256": None, "invite_expires_at": None,
                                     "spent_invite_sha256": account.invite_sha256, "sessions_since": now})


class Session(BaseModel, frozen=True):
    """What the signed session cookie holds: names an account and a session, never a secret."""

    email: str
    account_id: str
    sid: str  # random; logout revokes its digest
    issued_at: float
    expires_at: float
    partner_fp: str | None = None  # a keyed fingerprint of the partner's webhook secret at sign-in

    @classmethod
    def read(cls, raw: object) -> "Session | None":
        try:
            return cls.model_validate(raw)
        except ValidationError:
            return None


def session_account(session: Session, book: AccountBook, now: float, digest: str, partner_fp: Callable[[str], str | None]) -> Account | None:
    """The account a session signs in, or None once it has ended: expired, signed out
    (``digest`` is its sid's), account removed or re-created, password set anew since, partner
    disabled or removed, or the partner's webhook secret rotated (a leaked secret is a breach:
    its staff sign in again)."""
    if now >= session.expires_at or book.revoked(digest):
        return None
    account = book.account(session.email)
    if account is None or account.id != session.account_id or account.password_hash is None:
        return None
    if session.issued_at < account.sessions_since.timestamp():
        return None
    if account.partner is not None and (session.partner_fp is None or partner_fp(account.partner) != session.partner_fp):
        return None
    return account
