"""Planning asks: which messages one person gets for one action, rendered and timed.

Pure: the person, the action, what the person was recently asked and ``now`` in; ask
commands out. Credit goes to the person's first-touch recruiter (``agents.people``). Each ask
carries its own signed RSVP link (``streams.links``), which names the ask (so the RSVP page
credits the ask's partner) and the person's language, and works until ``rsvp_open`` after the
action starts; an email also carries a signed unsubscribe link, in its footer and for the
``List-Unsubscribe`` header, that does not expire. Every message names the sponsor it is sent
on behalf of (the partner credited, whose consent covers the person): ``{sponsor}`` in the
template, else the text starts with "<sponsor>: " and the email's footer says "Sent on behalf of".
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import TypeVar

from contracts.asks import AskCommand, RecentAsks, ask_id, parse_ask_id, unreceived_of
from contracts.events import ActionEvent, past_its_grace
from contracts.facts import PersonRecord
from streams import links

from .eligibility import Eligibility, decide, partner_credit, referral_code
from .quiet_hours import QuietHours, next_allowed, recipient_zone
from .templates import SMS_FOOTER, SMS_FOOTER_ES, email_body, local_time, names_sponsor, render, segments, sms_body

T = TypeVar("T")


#: How long asks to a person wait after an event naming both their phone and email: the link it
#: sent to the email's record (``agents.identity``, two or three hops on the identity topic) settles
#: meanwhile, so that two records of one person are not both asked (they merge, and the asks
#: waiting under the merged one move or are dropped as asked already).
LINK_SETTLE = timedelta(seconds=5)


@dataclass(frozen=True)
class OutreachPolicy:
    """The coalition's outreach settings, as the pure functions need them."""

    cap: int = 3
    window: timedelta = timedelta(days=7)
    quiet: QuietHours = QuietHours(time(21), time(9))
    #: The last line of every text: how to RSVP and how to stop (``footer_es``: to a Spanish speaker).
    footer: str = SMS_FOOTER
    footer_es: str = SMS_FOOTER_ES
    rsvp_base_url: str = "http://127.0.0.1:8000/r"
    unsubscribe_base_url: str = "http://127.0.0.1:8000/unsubscribe"
    referral_secret: bytes = b""
    #: Signs the RSVP and unsubscribe links (``streams.links``).
    link_key: bytes = b""
    #: How long after the action starts its RSVP links still work.
    rsvp_open: timedelta = timedelta(hours=3)
    #: How long after it was first posted a rapid-response action may still be sent, even when its
    #: ``starts_at`` has passed ("call your senator now").
    grace: timedelta = timedelta(hours=2)
    #: Partner id → the name messages are sent on behalf of (the coalition file's ``name``).
    sponsor_names: Mapping[str, str] = field(default_factory=dict)
    #: How long asks wait for a link between two records of their person (``wait_for_link``);
    #: ``None`` under a file clock.
    link_settle: timedelta | None = LINK_SETTLE

    def sms_footer(self, language: str | None) -> str:
        """The footer of a text to someone speaking ``language``: like an email's closing lines,
        in their language whatever the template's (English unless Spanish)."""
        return self.footer_es if (language or "").split("-")[0].lower() == "es" else self.footer


def send_until(action: ActionEvent, grace_from: datetime, grace: timedelta) -> datetime:
    """No ask for ``action`` is handed over from this instant on: when it starts or, for a
    rapid-response action not ``past_its_grace``, ``grace`` after it was first posted
    (``TargetAction.grace_from``: by the workers' clock when it is behind) if that is later."""
    if not action.rapid_response or past_its_grace(action.starts_at, grace_from, grace):
        return action.starts_at
    return max(action.starts_at, grace_from + grace)


def wait_for_link(asks: list[AskCommand], person: PersonRecord, now: datetime, settle: timedelta | None) -> list[AskCommand]:
    """``asks`` to ``person``, each not sent before ``settle`` after their last link was sent
    (``PersonRecord.link_sent_at``, by the web app's clock); as they are when it has passed, when
    ``now`` is more than ``settle`` before it (another clock's), or ``settle`` is ``None`` (the
    workers run on a file clock, which may stand still)."""
    sent = person.link_sent_at
    if settle is None or sent is None or not sent - settle <= now < sent + settle:
        return asks
    return [a.model_copy(update={"send_after": max(a.send_after or sent + settle, sent + settle)}) for a in asks]


def recent_count(recent: RecentAsks | None, now: datetime, window: timedelta, exclude_action: str | None = None,
                 unreceived: Collection[str] = ()) -> int:
    """Asks within the window, not counting ``exclude_action``'s own nor the ``unreceived`` (``unreceived_of``)."""
    if recent is None:
        return 0
    return sum(1 for aid, at in recent.asks if now - at < window and parse_ask_id(aid)[0] != exclude_action and aid not in unreceived)


def verdict(person: PersonRecord, action: ActionEvent, recent: RecentAsks | None, now: datetime, policy: OutreachPolicy,
            sponsors: Collection[str] | None = None, unreceived: Collection[str] = ()) -> Eligibility:
    """``decide`` for ``action`` under the frequency cap: the other actions' asks in the window
    count, and the channels this action asked on already keep their room (so planning again is
    stable, and an action posted again adds no ask beyond the cap)."""
    window = policy.window
    asked = {parse_ask_id(aid)[2] for aid, at in (recent.asks if recent else ())
             if now - at < window and parse_ask_id(aid)[0] == action.action_id and aid not in unreceived}
    others = recent_count(recent, now, window, exclude_action=action.action_id, unreceived=unreceived)
    return decide(person, action, recent_asks=others, cap=policy.cap, sponsors=sponsors, asked=asked)


def remember(recent: RecentAsks | None, ask: str, now: datetime, window: timedelta) -> RecentAsks:
    """Add an ask to the person's recent asks, forgetting those older than the window."""
    kept = tuple((a, at) for a, at in (recent.asks if recent else ()) if now - at < window and a != ask)
    return RecentAsks(asks=(*kept, (ask, now)))


def asked_as_another(recent: RecentAsks | None, action_id: str, person_key: str) -> set[str]:
    """The channels on which this person was asked for ``action_id`` under another person key:
    before two records of them were merged (``agents.identity``); those asks came with the merge."""
    return {channel for aid, _ in (recent.asks if recent else ())
            for action, key, channel in [parse_ask_id(aid)] if action == action_id and key != person_key}


def plan(
    person: PersonRecord, action: ActionEvent, recent: RecentAsks | None, already: set[str], now: datetime, policy: OutreachPolicy,
    grace_from: datetime | None = None, sponsors: Collection[str] | None = None, unreceived: Collection[str] = (),
) -> list[AskCommand]:
    """The asks to send: one per eligible channel the person has not been asked on for this
    action (``grace_from``: when its grace counts from, ``TargetAction.grace_from``, ``now`` if unknown; ``sponsors``:
    the partners whose consent may be used, every partner if ``None``; ``unreceived``: recent
    asks that never reached the person, ``unreceived_of``)."""
    eligible = verdict(person, action, recent, now, policy, sponsors, unreceived)
    values = {
        "given_name": person.given_name or "",
        "action_title": action.title,
        "place": ", ".join(x for x in (action.location.venue, action.location.locality) if x),
    }
    asks = []
    aliased = asked_as_another(recent, action.action_id, person.person_key)
    for channel in eligible.channels:
        aid = ask_id(action.action_id, person.person_key, channel)
        if aid in already or channel in aliased:
            continue
        # Each channel on behalf of a sponsor whose consent on that channel covers the person.
        partner = partner_credit(person, sponsors, channel)
        common = dict(ask_id=aid, action_id=action.action_id, person_key=person.person_key, channel=channel,
                      partner=partner, referral=referral_code(partner, action.action_id, policy.referral_secret), planned_at=now,
                      send_until=send_until(action, grace_from or now, policy.grace))
        link = links.Link(action.action_id, person.person_key, channel, person.language, action.starts_at + policy.rsvp_open)
        mine = {**values, "sponsor": policy.sponsor_names.get(partner, partner), "rsvp_link": links.url(policy.rsvp_base_url, action.action_id, links.sign(policy.link_key, "rsvp", link))}
        if channel == "sms":
            asks.append(_sms(person, action, mine, now, policy, common))
        else:
            unsubscribe = links.sign(policy.link_key, "unsubscribe", links.Link(action.action_id, person.person_key, channel, person.language))
            asks.append(_email(person, action, mine, common, links.url(policy.unsubscribe_base_url, action.action_id, unsubscribe)))
    return [a for a in asks if a is not None]


def pick(templates: Mapping[str, T], language: str | None) -> tuple[str, T] | None:
    """The template for a person speaking ``language``, with its language tag: theirs (``es-MX``),
    else their language's (``es``), else English, else the first there is; ``None`` if none."""
    for tag in (language or "en", (language or "").split("-")[0], "en", next(iter(templates), None)):
        if tag in templates:
            return tag, templates[tag]
    return None


#: What a message calls someone who gave no name, by the template's language (else English).
NAME_FALLBACKS = {"en": "friend", "es": "amigo/a"}


def in_language(values: dict[str, str], action: ActionEvent, tag: str, sms: bool = False) -> dict[str, str]:
    """``values`` with the action's time written in the template's language (``sms``: in GSM-7),
    and a blank name as that language calls someone who gave none ("Hola amigo/a", not "Hola friend")."""
    named = {} if (values.get("given_name") or "").strip() else {"given_name": NAME_FALLBACKS.get(tag.split("-")[0].lower(), NAME_FALLBACKS["en"])}
    return {**values, **named, "local_time": local_time(action.starts_at, action.time_zone, tag, sms)}


def _sms(person, action, values, now, policy, common) -> AskCommand | None:
    picked = pick(action.templates.sms, person.language)
    if picked is None:
        return None
    tag, template = picked
    text = render(template, in_language(values, action, tag, sms=True))
    body = sms_body(text if names_sponsor(template) else f"{values['sponsor']}: {text}", policy.sms_footer(person.language))
    zone = recipient_zone(person.postal_code, person.phone, action.time_zone)
    quiet = not action.override_quiet_hours
    after = next_allowed(now, zone, policy.quiet) if quiet else None
    return AskCommand(**common, to=person.phone, body=body, segments=segments(body)[1], time_zone=zone,
                      quiet_hours_apply=quiet, send_after=after)


def _email(person, action, values, common, unsubscribe: str) -> AskCommand | None:
    picked = pick(action.templates.email, person.language)
    if picked is None:
        return None
    tag, template = picked
    values = in_language(values, action, tag)
    on_behalf_of = None if names_sponsor(template.body) else values["sponsor"]
    body = email_body(render(template.body, values), unsubscribe, person.language, on_behalf_of)
    return AskCommand(**common, to=person.email, subject=render(template.subject, values), body=body, unsubscribe_url=unsubscribe)
