"""Whether to hand an ask to a provider now: the last check before a message leaves.

Run on the person's partition just before sending, so an opt-out or a consent change that
arrived after planning still stops the message, and an ask delayed into quiet hours waits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from contracts.asks import NEVER_RESEND, AskCommand, AskFact
from contracts.facts import PersonRecord

from .eligibility import consent_problem
from .quiet_hours import QuietHours, next_allowed, validity_period


@dataclass(frozen=True)
class Skip:
    """Already handled (a replay or a duplicate): do nothing, record nothing."""

    reason: str


@dataclass(frozen=True)
class Cancel:
    """Never send this ask (opted out, consent gone, person erased)."""

    reason: str


@dataclass(frozen=True)
class Defer:
    until: datetime


@dataclass(frozen=True)
class Send:
    validity_period: int | None = None


Decision = Skip | Cancel | Defer | Send


def gate(ask: AskCommand, state: AskFact | None, person: PersonRecord | None, now: datetime, quiet: QuietHours) -> Decision:
    if state is not None and state.status in NEVER_RESEND:
        return Skip(f"already {state.status}")
    if person is None:
        return Cancel("person no longer known")
    problem = consent_problem(person, ask.channel)
    if problem:
        return Cancel(problem)
    if ask.channel != "sms" or not ask.quiet_hours_apply or ask.time_zone is None:
        return Send()
    until = next_allowed(now, ask.time_zone, quiet)
    if until is not None:
        return Defer(until)
    return Send(validity_period=validity_period(now, ask.time_zone, quiet))
