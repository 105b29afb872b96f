"""What became of each ask in a provider storm, read from the sandbox's attempt log (pure).

Every send request is logged with its recipients and its answer: ``ok``, a transient fault
(``429``, ``5xx``, ``timeout``) or a refusal code (``21211``, ``21610``, ``400``…). Per
(channel, recipient), in arrival order, the answers say:

=============  ======================================================================
accepted       exactly one ``ok``, and nothing after it
refused        one refusal code, last: a permanent failure, never sent again
in_doubt       last answer ``timeout``, no ``ok``: the client gave up, the provider may
               have it, so it is not retried (at most once)
exhausted      ``attempts`` transient answers: the outbox gave up (recorded failed)
pending        none of the above yet (retrying, or not attempted at all)
double         a second ``ok``: sent twice (must never happen)
resent         anything after a refusal or an ``ok`` other than a second ``ok``
=============  ======================================================================
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

TRANSIENT = frozenset({"429", "5xx", "timeout"})


def verdict(outcomes: list[str], attempts: int) -> str:
    """The verdict on one ask's answers, in arrival order (see the module docstring)."""
    oks = outcomes.count("ok")
    refusals = [o for o in outcomes if o != "ok" and o not in TRANSIENT]
    final = outcomes[-1] if outcomes else None
    if oks > 1:
        return "double"
    if oks:
        return "accepted" if final == "ok" and not refusals else "resent"
    if refusals:
        return "refused" if len(refusals) == 1 and final == refusals[0] else "resent"
    if final == "timeout":
        return "in_doubt"
    return "exhausted" if len(outcomes) >= attempts else "pending"


def storm_verdicts(log: Iterable[dict], asks: Iterable[tuple[str, str]], attempts: int) -> dict[tuple[str, str], str]:
    """A verdict per ask (channel, recipient) of ``asks``, from the sandbox's attempt ``log``."""
    answers: dict[tuple[str, str], list[str]] = {ask: [] for ask in asks}
    for entry in log:
        for to in entry["to"]:
            answers.setdefault((entry["channel"], to), []).append(entry["outcome"])
    return {ask: verdict(outcomes, attempts) for ask, outcomes in answers.items()}


def expected_tallies(verdicts: dict[tuple[str, str], str], fail_after_accept: set[tuple[str, str]]) -> Counter[str]:
    """The action's totals these verdicts imply. ``fail_after_accept``: asks the provider takes
    and then reports undelivered (landlines, bouncing addresses)."""
    t: Counter[str] = Counter()
    for ask, v in verdicts.items():
        t[f"asked_{ask[0]}"] += 1
        if v == "accepted":
            t["failed" if ask in fail_after_accept else "delivered"] += 1
        elif v in ("refused", "exhausted"):
            t["failed"] += 1
        elif v == "in_doubt":
            t["in_doubt"] += 1
    return t
