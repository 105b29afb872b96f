"""Waiting in tests: poll a condition until it holds, with a deadline (never a bare sleep)."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

import httpx

T = TypeVar("T")
#: What a check may raise while the system is still getting there: an assertion that does not
#: hold yet, a row or key not there yet, a server not answering yet.
NOT_YET = (AssertionError, LookupError, httpx.HTTPError)


def eventually(check: Callable[[], T], timeout: float = 30.0, interval: float = 0.1) -> T:
    """Call ``check`` until it returns a truthy value without raising one of ``NOT_YET``;
    return that value.

    Any falsy result (``False``, ``None``, ``0``, an empty collection) means "not yet", so a
    check that forgot to return something fails instead of passing at once; a check made of
    assertions ends with ``return True``. After ``timeout`` seconds the last error is raised
    (for a falsy result, an ``AssertionError`` naming it).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
            raise AssertionError(f"{getattr(check, '__qualname__', check)} returned {result!r}")
        except NOT_YET:
            if time.monotonic() > deadline:
                raise
        time.sleep(interval)
