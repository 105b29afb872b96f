"""Errors as one line in a person's words, for the CLI and the coalition file.

``one_line(exc)`` turns whatever stopped a command into a sentence that says what is wrong
and, where it can, what to do; the CLI prints it instead of a traceback (``--debug`` shows
the traceback). ``explain(exc)`` does the same for a pydantic ``ValidationError``: no URLs, no
"String should match pattern '^[a-z0-9]…'". ``plural`` counts things the way people do.
"""

from __future__ import annotations

import os
import re
from typing import Any, Callable

from pydantic import ValidationError

SLUG_RULE = "lower-case letters, digits and dashes, starting with a letter or digit, at most 63 characters, e.g. union-local-1"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``plural(1, "bad row")`` → "1 bad row"; ``plural(2, "bad row")`` → "2 bad rows"."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def explain(exc: ValidationError, where: Callable[[tuple[Any, ...]], str] | None = None) -> str:
    """Every error of ``exc`` as "field: what is wrong", joined by "; ". ``where`` names a
    location (default: the dotted path)."""
    name = where or (lambda loc: ".".join(str(x) for x in loc))
    return "; ".join(f"{name(tuple(e['loc'])) or 'value'}: {_message(e)}" for e in exc.errors(include_url=False))


def _message(e: dict[str, Any]) -> str:
    kind, given = e["type"], e.get("input")
    if kind == "missing":
        return "missing"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "string_pattern_mismatch" and "a-z0-9][a-z0-9-]{0,62}" in str(e.get("ctx", {}).get("pattern", "")):
        return f"{given!r} is not a valid id (use {SLUG_RULE})"
    if kind == "literal_error":
        return f"{given!r} is not one of {e['ctx']['expected']}"
    message = re.sub(r"^(Input|Value) should", "should", e["msg"])
    return re.sub(r"^Value error, ", "", message)


def one_line(exc: BaseException) -> tuple[str, bool]:
    """What to tell a person about ``exc``, and whether it is a known condition (``False``:
    probably a bug, worth ``--debug``)."""
    for kinds, say in _KNOWN:
        if isinstance(exc, kinds()):
            return say(exc), True
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__, False


def _httpx() -> tuple[type, ...]:
    import httpx

    return (httpx.TransportError,)


def _kafka() -> tuple[type, ...]:
    import kafka.errors
    from aiokafka.errors import KafkaConnectionError

    # kafka-python (the admin client) names it NoBrokersAvailable in some versions only.
    names = ("NoBrokersAvailable", "KafkaConnectionError", "KafkaTimeoutError")
    return (KafkaConnectionError, *(getattr(kafka.errors, n) for n in names if hasattr(kafka.errors, n)))


def _unreachable_web(exc: Any) -> str:
    try:
        url = exc.request.url.copy_with(path="/", query=None)
    except RuntimeError:  # no request attached
        url = "the web app"
    return f"cannot reach {url} ({type(exc).__name__}): is `turnout up` running there? (--url or TURNOUT_URL picks another)"


def _unreachable_broker(exc: Any) -> str:
    # The clients say "Unable to bootstrap from [('127.0.0.1', 1, <AddressFamily…>)]" or "…['127.0.0.1:1']".
    text = str(exc)
    hosts = [f"{h}:{p}" for h, p in re.findall(r"\('([^']+)', (\d+)", text)] or re.findall(r"'([^']+:\d+)'", text)
    # An address the client could not even parse ("not a url") is named as it was given.
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    where = f" at {', '.join(hosts)}" if hosts else f" at {configured!r}" if configured else ""
    return f"cannot reach the Kafka broker{where}: is `turnout up` still running, or is KAFKA_BOOTSTRAP_SERVERS right?"


def _validation(exc: Any) -> str:
    return explain(exc)


def _os(exc: Any) -> str:
    return f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)


def _topics() -> tuple[type, ...]:
    from .admin import PartitionsDiffer

    return (PartitionsDiffer,)


_KNOWN: list[tuple[Callable[[], tuple[type, ...]], Callable[[Any], str]]] = [
    (_httpx, _unreachable_web),
    (_kafka, _unreachable_broker),
    (_topics, str),  # topics made with another TURNOUT_PARTITIONS: the message says what to do
    (lambda: (ValidationError,), _validation),
    (lambda: (OSError,), _os),
]
