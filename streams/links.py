"""Supporters' links: ``<base>/<action id>/<token>``, signed, so no login is needed and nobody
can answer or unsubscribe for someone else.

A token names one ask (the action is in the path; the person and the channel are in the token),
the person's language (so the page speaks it) and when the link stops working. It is signed
with the coalition's link key for one *purpose* ("rsvp" or "unsubscribe"): an RSVP link does not
open the unsubscribe page. Layout (version 1), base64url without padding::

    byte 0       version (1)
    byte 1       flags: bit 0 the ask is an email (else a text); bit 1 the person key is packed
    bytes 2-5    expiry in unix minutes, big-endian; 0 = never
    then         person key: 16 bytes when packed (``p`` + 32 hex digits), else 1 length byte + UTF-8
    then         the language's primary subtag, ASCII, 0-3 bytes
    last 12      HMAC-SHA256(link key, purpose NUL action id NUL all of the above), first 12 bytes

About 48 characters: an SMS link stays short enough to leave room for the message. Pure: no
clock; whoever reads a token decides whether it has expired (the RSVP page: by the action's
current start, ``connectors.web.pages.opening``; the expiry signed in is what it was when sent).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

from contracts.asks import ask_id
from contracts.facts import Channel

Purpose = Literal["rsvp", "unsubscribe"]
VERSION = 1
MAC_BYTES = 12
_EMAIL, _PACKED = 1, 2
_PACKABLE = re.compile(r"^p[0-9a-f]{32}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")


class BadLink(Exception):
    """The token is malformed or not signed by us for this purpose and action (``reason`` says which)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Link:
    """What a supporter's link says: which ask, in which language, until when."""

    action_id: str
    person_key: str
    channel: Channel
    language: str | None = None
    expires_at: datetime | None = None

    @property
    def ask_id(self) -> str:
        return ask_id(self.action_id, self.person_key, self.channel)


def primary_language(tag: str | None) -> str | None:
    """``es`` for ``es-MX``; ``None`` for no tag or one we cannot carry."""
    primary = (tag or "").split("-")[0].lower()
    return primary if _LANGUAGE.match(primary) else None


def sign(key: bytes, purpose: Purpose, link: Link) -> str:
    """The token for ``link``. The expiry is kept to the minute (rounded up)."""
    flags = _EMAIL if link.channel == "email" else 0
    if _PACKABLE.match(link.person_key):
        flags |= _PACKED
        person = bytes.fromhex(link.person_key[1:])
    else:
        raw = link.person_key.encode()
        if not 0 < len(raw) < 256:
            raise ValueError("a person key must be 1 to 255 bytes")
        person = bytes([len(raw)]) + raw
    minutes = 0 if link.expires_at is None else -(-int(link.expires_at.timestamp()) // 60)
    body = bytes([VERSION, flags]) + minutes.to_bytes(4, "big") + person + (primary_language(link.language) or "").encode()
    return _b64(body + _mac(key, purpose, link.action_id, body))


def read(key: bytes, purpose: Purpose, action_id: str, token: str) -> Link:
    """The link ``token`` stands for under ``action_id``; ``BadLink`` unless we signed exactly
    that for ``purpose``. Expiry is not checked here (see ``Link.expired``)."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise BadLink("not a link token") from None
    if _b64(raw) != token:  # padding or whitespace the decoder would drop: not the token we signed
        raise BadLink("not a link token")
    if len(raw) < 6 + 1 + MAC_BYTES or raw[0] != VERSION:
        raise BadLink("not a link token")
    body, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
    if not hmac.compare_digest(mac, _mac(key, purpose, action_id, body)):
        raise BadLink("signature does not match")
    return _parse(action_id, body)


def url(base: str, action_id: str, token: str) -> str:
    return f"{base.rstrip('/')}/{action_id}/{token}"


def _parse(action_id: str, body: bytes) -> Link:
    flags, minutes, rest = body[1], int.from_bytes(body[2:6], "big"), body[6:]
    if flags & _PACKED:
        person, rest = "p" + rest[:16].hex(), rest[16:]
    else:
        person, rest = rest[1 : 1 + rest[0]].decode(), rest[1 + rest[0] :]
    expires = datetime.fromtimestamp(minutes * 60, timezone.utc) if minutes else None
    return Link(action_id=action_id, person_key=person, channel="email" if flags & _EMAIL else "sms",
                language=rest.decode("ascii") or None, expires_at=expires)


def _mac(key: bytes, purpose: str, action_id: str, body: bytes) -> bytes:
    mac = _keyed(key, purpose, action_id).copy()  # the key and the prefix hashed once per action, not per link
    mac.update(body)
    return mac.digest()[:MAC_BYTES]


@functools.lru_cache(maxsize=256)
def _keyed(key: bytes, purpose: str, action_id: str) -> hmac.HMAC:
    return hmac.new(key, purpose.encode() + b"\0" + action_id.encode() + b"\0", hashlib.sha256)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")
