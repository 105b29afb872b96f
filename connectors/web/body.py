"""Request bodies: read within a size limit, and parsed as strict JSON within limits.

``read_limited`` stops at the limit (the declared length is refused before any byte is read).
``load_json`` refuses, before anything recurses, nesting deeper than ``MAX_DEPTH`` (counted on
the bytes first), and also NaN, Infinity and anything but UTF-8 (``BadBody``, a 400). What is
wrong inside one value belongs to the event that holds it, so it is marked instead, for
``problems`` to report by path and the caller to refuse that event alone: a number longer than
``MAX_NUMBER_CHARS`` (kept as text, never handed to ``int``) or out of range (``Unreadable``),
an object that names a key twice (``Duplicated``), a string that is not valid Unicode.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any, Iterator

from fastapi import Request

MAX_DEPTH = 32
#: Longer than any count, offset or coordinate a partner has reason to send (int64 has 19 digits).
MAX_NUMBER_CHARS = 24

_ESCAPE = re.compile(rb"\\.", re.S)
_STRING = re.compile(rb'"[^"]*"')
_NOT_BRACKET = re.compile(rb"[^\[\]{}]")
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


class BadBody(Exception):
    """The body is not JSON turnout can read (400); the message says why."""


class BodyTooLarge(Exception):
    """The body is over ``limit`` bytes (413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"body over {limit} bytes")
        self.limit = limit


class Unreadable:
    """A number turnout does not read (too long, or out of a float's range), kept as its text."""

    def __init__(self, text: str, why: str) -> None:
        self.text, self.why = text, why

    def __repr__(self) -> str:
        return self.text if len(self.text) <= MAX_NUMBER_CHARS else self.text[:MAX_NUMBER_CHARS] + "…"


class Duplicated(dict):
    """A JSON object that named some keys more than once (``duplicates``); the last value is kept."""

    duplicates: list[str]


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, refused with ``BodyTooLarge`` as soon as it exceeds ``limit`` (never read whole first)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def depth(body: bytes) -> int:
    """How deeply arrays and objects nest in ``body`` (escapes and strings skipped; no recursion)."""
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", _ESCAPE.sub(b"", body)))
    return max(accumulate(_DEPTH_STEP[b] for b in brackets), default=0)


def load_json(body: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """``body`` parsed as strict JSON, or ``BadBody`` saying what is wrong with it."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadBody(f"body is not UTF-8 (byte {exc.start})") from None
    if depth(body) > max_depth:
        raise BadBody(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(text, object_pairs_hook=_object, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise BadBody(f"body is not valid JSON: {exc}") from None
    except RecursionError:  # not reached after the depth check; kept so no input can be a 500
        raise BadBody(f"JSON nested deeper than {max_depth} levels") from None


def problems(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str, str]]:
    """(field path, message) for each duplicate key, number turnout does not read, and string
    that is not valid Unicode (a lone surrogate such as ``"\\ud800"``) in ``value``. Depth is
    bounded by ``load_json``."""
    if isinstance(value, dict):
        for key in getattr(value, "duplicates", ()):
            yield _dotted(path + (key,)), "key appears more than once in the object"
        for key, item in value.items():
            if not _unicode(key):
                yield _dotted(path) or "(event)", "an object key is not valid Unicode (lone surrogate)"
            yield from problems(item, path + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from problems(item, path + (index,))
    elif isinstance(value, str) and not _unicode(value):
        yield _dotted(path) or "(event)", "not valid Unicode (lone surrogate)"
    elif isinstance(value, Unreadable):
        yield _dotted(path) or "(event)", value.why


def _dotted(path: tuple[str | int, ...]) -> str:
    return ".".join(str(p) if _unicode(str(p)) else repr(p) for p in path)


def _unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    marked = Duplicated(obj)
    seen: set[str] = set()
    marked.duplicates = sorted({k for k, _ in pairs if k in seen or seen.add(k)})
    return marked


def _int(text: str) -> int | Unreadable:
    if len(text) > MAX_NUMBER_CHARS:
        return Unreadable(text, f"a number {len(text)} characters long (at most {MAX_NUMBER_CHARS})")
    return int(text)


def _float(text: str) -> float | Unreadable:
    if len(text) > MAX_NUMBER_CHARS:
        return Unreadable(text, f"a number {len(text)} characters long (at most {MAX_NUMBER_CHARS})")
    value = float(text)
    return value if math.isfinite(value) else Unreadable(text, "a number out of range")


def _constant(name: str) -> Any:
    raise BadBody(f"{name} is not JSON")
