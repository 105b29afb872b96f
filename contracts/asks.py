"""Asks: one outreach message (SMS or email) to one person for one action.

``AskCommand`` travels on the internal asks topic (it carries the rendered message and the
address, like the people table does); ``AskFact`` is the ask's state as the tallies read it
and carries no contact details.

Ask ids are ``<action_id>:<person_key>:<channel>``: one ask per (action, person, channel) by
construction, and routable to the person's partition from any provider callback.
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable, Collection, Literal

from pydantic import Field

from .events import ActionEvent
from .facts import Channel
from .people import Internal

AskStatus = Literal["planned", "deferred", "sending", "sent", "delivered", "failed", "cancelled", "in_doubt", "expired"]
#: Terminal and in-flight states: an ask in one of these is never handed to a provider again
#: (``sending`` found by a later reader means its sender is gone: see ``agents.outreach.sending``).
NEVER_RESEND: frozenset[str] = frozenset({"sending", "sent", "delivered", "failed", "cancelled", "in_doubt", "expired"})
#: An ask that ended so never reached the person: it takes no room under the frequency cap, and
#: does not count as the person asked for its action on its channel.
NOT_RECEIVED: frozenset[str] = frozenset({"cancelled", "expired", "failed"})
#: Not handed over, for a reason of its moment (an opt-out since taken back, a target or template
#: an edit has changed, a start since moved later): planned again, the ask is decided afresh.
REPLANNED: frozenset[str] = frozenset({"cancelled", "expired"})
#: The person counts as asked for the ask's action on its channel: planning again skips them.
ASKED_ALREADY: frozenset[str] = NEVER_RESEND - REPLANNED


def ask_id(action_id: str, person_key: str, channel: Channel) -> str:
    return f"{action_id}:{person_key}:{channel}"


def parse_ask_id(value: str) -> tuple[str, str, Channel]:
    """(action_id, person_key, channel); ``ValueError`` if it is not an ask id."""
    action_id, person_key, channel = value.rsplit(":", 2)
    if channel not in ("sms", "email") or not person_key.startswith("p") or not action_id:
        raise ValueError(f"not an ask id: {value!r}")
    return action_id, person_key, channel  # type: ignore[return-value]


class Ask(Internal):
    """Which ask: the fields a command and a fact share."""

    ask_id: str
    action_id: str
    person_key: str
    channel: Channel
    partner: str

    def fact(self, status: AskStatus, now: datetime, **details: object) -> AskFact:
        """This ask's state as the tallies read it."""
        return AskFact(**{f: getattr(self, f) for f in Ask.model_fields}, status=status, updated_at=now, **details)


class AskCommand(Ask):
    """Send this message (internal asks topic, keyed by person key)."""

    version: int = Field(default=1, description="The writer's contract version (internal topics).")
    referral: str
    to: str
    body: str
    subject: str | None = None
    segments: int | None = None
    time_zone: str | None = Field(default=None, description="The recipient's zone, for quiet hours (SMS only).")
    quiet_hours_apply: bool = True
    send_after: datetime | None = None
    send_until: datetime | None = Field(default=None, description="Not handed over from then on: the action has started (or its rapid-response grace is over).")
    planned_at: datetime
    unsubscribe_url: str | None = Field(default=None, description="Email only: the signed one-click unsubscribe link (List-Unsubscribe, and the body's footer).")


class AskFact(Ask):
    """The state of one ask (table ``asks_by_id``). No contact details."""

    status: AskStatus
    updated_at: datetime
    provider_id: str | None = None
    error_code: str | None = None
    error: str | None = None
    deferred_until: datetime | None = None
    send_until: datetime | None = Field(default=None, description="The command's: not handed over from then on.")
    replied_yes: bool = False
    opted_out: bool = False
    marked_at: datetime | None = Field(default=None, description="When it was last marked sending, by the system clock (the provider's "
                                       "time frame, whatever clock the workers decide with): where the look-up after a worker died starts.")
    dropped: tuple[str, ...] = Field(default=(), description="The MessageSids of its texts Twilio dropped unsent (30036, 30001): it was "
                                     "deferred, and callbacks about those texts, however late, are not about the one it stands for now.")


class TargetAction(Internal):
    """Fan this action out to the people of one partition (one copy per partition)."""

    version: int = Field(default=1, description="The writer's contract version (internal topics).")
    partner: str
    action: ActionEvent
    posted_at: datetime | None = Field(default=None, description="When the ingress first accepted the action (by the web app's clock).")
    grace_from: datetime | None = Field(default=None, description="When its rapid-response grace counts from: ``posted_at``, or the workers' "
                                        "time then when their clock is behind (a rehearsal's file clock); ``None`` (an older command): ``posted_at``.")
    sponsors: tuple[str, ...] = Field(default=(), description="The owner and its co-sponsors: only people whose consent covers one are asked.")
    @property
    def grace_start(self) -> datetime | None:
        """``grace_from``, or for an older command ``posted_at``."""
        return self.grace_from or self.posted_at

    person: str | None = Field(default=None, description="Plan this person only: the survivor of a merge whose fold arrived after their "
                                                        "partition was planned (``agents.outreach.agents.plan_again``).")


class RecentAsks(Internal):
    """When a person was last asked (for the frequency cap and for matching replies)."""

    asks: tuple[tuple[str, datetime], ...] = ()

    def without(self, ids: Collection[str]) -> RecentAsks:
        return RecentAsks(asks=tuple((aid, at) for aid, at in self.asks if aid not in ids))


def unreceived_of(recent: RecentAsks | None, fact: Callable[[str], AskFact | None]) -> frozenset[str]:
    """The asks of ``recent`` that never reached the person (``fact``: an ask's fact by id)."""
    return frozenset(aid for aid, _ in (recent.asks if recent else ()) if (f := fact(aid)) is not None and f.status in NOT_RECEIVED)


class SendResult(Internal):
    """What happened when an ask was handed to a provider (after any retries)."""

    ask_id: str
    provider_id: str | None = None
    error_code: str | None = None
    error: str | None = None
    opted_out: bool = False
    in_doubt: bool = Field(default=False, description="The provider may have it (a timeout after sending): never resend.")

    @property
    def ok(self) -> bool:
        return self.provider_id is not None
