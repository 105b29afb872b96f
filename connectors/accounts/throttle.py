"""Failed sign-ins, counted per key (an account's email, a client address) over a sliding
window. Pure: the caller passes ``now`` (monotonic seconds). Memory is bounded: keys whose
failures are all older than the window are dropped as new failures arrive, and beyond
``max_keys`` the least recently failing key goes first."""

from __future__ import annotations

from collections import OrderedDict, deque


class Throttle:
    def __init__(self, limit: int, window: float, max_keys: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()  # least recently failed first

    def retry_after(self, key: str, now: float) -> float | None:
        """Seconds until ``key`` may try again, or None if it may now."""
        failures = self._failures.get(key)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if len(failures) < self.limit:
            return None
        return failures[0] + self.window - now

    def failed(self, key: str, now: float) -> None:
        failures = self._failures.setdefault(key, deque(maxlen=self.limit))
        failures.append(now)
        self._failures.move_to_end(key)
        self._forget_old(now)

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)

    def forgive(self, key: str, at: float) -> None:
        """Take back the failure counted for ``key`` at ``at`` (an attempt counted before it was
        checked, that did not fail after all)."""
        failures = self._failures.get(key)
        if failures is not None and at in failures:
            failures.remove(at)
            if not failures:  # no entry without a failure: ``_forget_old`` reads each one's last
                del self._failures[key]

    def _forget_old(self, now: float) -> None:
        while self._failures:
            key, failures = next(iter(self._failures.items()))
            if failures[-1] > now - self.window and len(self._failures) <= self.max_keys:
                return
            del self._failures[key]
