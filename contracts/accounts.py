"""Dashboard accounts: the people who read the dashboard (never a partner's webhook secret).

They live on one compacted topic (``streams.topology.accounts_topic``), latest value per key,
read from the beginning by every web app instance and by ``turnout accounts``:

- ``account:<email>`` → ``Account``; a tombstone removes the account (and so its sessions).
- ``revoked:<SHA-256 of a session id>`` → ``Revocation``: a session signed out before it expired.

No raw secret is ever written here: passwords as argon2id hashes, the one-time sign-in link's
token and session ids as SHA-256 digests (both are 256 random bits, which a plain hash keeps
out of reach).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Union

from pydantic import Field, StringConstraints, TypeAdapter, model_validator

from .events import Slug
from .people import Frozen

AccountRole = Literal["organizer", "admin", "viewer"]
#: Lower-cased; checked only for shape: turnout sends no email, the address names a person. No
#: control character, bidi override or angle bracket: it is printed in organizers' terminals.
_PART = r"[^@\s<>\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]+"
Email = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, max_length=254, pattern=rf"^{_PART}@{_PART}\.{_PART}$")]
Digest = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class Account(Frozen):
    """One person's dashboard account: an organizer (every partner), or a partner's admin (may
    invite and remove its partner's accounts) or viewer."""

    kind: Literal["account"] = "account"
    email: Email
    id: str = Field(description="New for every (re)created account: sessions name it, so a removed and re-invited account does not revive old sessions.")
    role: AccountRole
    partner: Slug | None = Field(default=None, description="The partner whose figures it sees; None for organizers.")
    password_hash: str | None = Field(default=None, description="argon2id; None until the sign-in link is used.")
    invite_sha256: Digest | None = Field(default=None, description="SHA-256 of the one-time sign-in link's token; None once used.")
    invite_expires_at: datetime | None = None
    spent_invite_sha256: Digest | None = Field(default=None, description="On the record a sign-in link's use wrote: that link's digest. Taken only while it is still the account's link, so of two uses at once the first in the topic wins.")
    sessions_since: datetime = Field(description="Sessions signed in earlier are void (a new password ends them).")
    invited_by: str
    created_at: datetime

    @model_validator(mode="after")
    def _partner_matches_role(self) -> "Account":
        if (self.role == "organizer") != (self.partner is None):
            raise ValueError("organizers have no partner; admins and viewers have one")
        return self


class Revocation(Frozen):
    """A session signed out (logout) before it would have expired."""

    kind: Literal["revocation"] = "revocation"
    expires_at: datetime = Field(description="When the session would have ended anyway: after that the record may go.")


AccountRecord = Annotated[Union[Account, Revocation], Field(discriminator="kind")]
RECORD = TypeAdapter(AccountRecord)


def account_key(email: str) -> str:
    return f"account:{email}"


def revocation_key(session_digest: str) -> str:
    return f"revoked:{session_digest}"
