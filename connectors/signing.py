"""Partner webhook signatures.

``X-Turnout-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`` with
``X-Turnout-Timestamp: <unix seconds>``. The timestamp binds the signature to a moment so a
captured request cannot be replayed outside the tolerance window.
"""

from __future__ import annotations

import hashlib
import hmac
import re

#: Unix seconds as written: ASCII digits only (``int()`` would also take "1_700000000", " 17",
#: "١٧" and a number of 400 digits that no float can be compared with).
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v1=[0-9a-f]{64}")


class SignatureError(Exception):
    """The request is not signed by the partner it claims to come from; ``reason`` says how."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def signature(secret: str, timestamp: int | str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def headers(partner: str, secret: str, body: bytes, now: float) -> dict[str, str]:
    ts = int(now)
    return {
        "X-Turnout-Partner": partner,
        "X-Turnout-Timestamp": str(ts),
        "X-Turnout-Signature": signature(secret, ts, body),
        "Content-Type": "application/json",
    }


def unix_seconds(text: str) -> int | None:
    """A signed timestamp header as unix seconds, or ``None`` unless it is 1 to 12 ASCII digits."""
    return int(text) if _UNIX_SECONDS.fullmatch(text) else None


def check_timestamp(timestamp: str | None, sig: str | None, now: float, tolerance: int) -> int:
    """The signed timestamp, if both headers are there and it is near ``now``; else ``SignatureError``.
    Needs no body: the ingress calls it before reading one."""
    if not timestamp or not sig:
        raise SignatureError("missing X-Turnout-Timestamp or X-Turnout-Signature")
    ts = unix_seconds(timestamp)
    if ts is None:
        raise SignatureError("X-Turnout-Timestamp is not unix seconds")
    if abs(now - ts) > tolerance:
        raise SignatureError(f"timestamp is more than {tolerance}s from now")
    return ts


def verify(secret: str, timestamp: str | None, sig: str | None, body: bytes, now: float, tolerance: int) -> None:
    """Raise ``SignatureError`` unless ``sig`` signs ``body`` at a ``timestamp`` near ``now``."""
    check_timestamp(timestamp, sig, now, tolerance)
    expected = signature(secret, str(timestamp), body)  # the header as written: "0170…" is signed as it came
    if not hmac.compare_digest(expected.encode(), sig.strip().encode()):
        if not _SIGNATURE.fullmatch(sig.strip()):
            raise SignatureError("X-Turnout-Signature is not v1= and 64 lowercase hex digits")
        raise SignatureError(f"signature does not match: HMAC-SHA256, keyed with the partner's secret as given, of the timestamp, "
                             f"a dot and the {len(body)} bytes of the body received")
