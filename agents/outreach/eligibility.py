"""Who may be asked for an action, and on which channels.

Rules, checked per channel in this order; the first that fails is the reason recorded:

1. *out of area*: the person's postal code is not in the action's target area (see
   ``in_target``). An action with an empty target area reaches nobody: it must name its area.
   *no template*: the action has no message for that channel (in any language), so it takes
   no room under the cap (rule 5) from a channel it has one for.
2. *opted out*: any entry in ``person.opted_out`` for the channel blocks it. Only START
   (which removes the entry) restores it; a later sign-up that ticks consent again does not.
3. *no consent*: consent for that channel is absent or not granted, or *not a sponsor's*: it
   covers none of the action's sponsors (its owner and the partners that co-sponsor it by
   posting their own pledge). Consent covers the partner that collected it, or every partner
   when it was given with ``scope: coalition``.
4. *no phone* / *no email*: there is no address for the channel. *undeliverable*: the provider
   said this very address can never take a message (a landline, a number or mailbox that does
   not exist: ``person.undeliverable``); a different address given since is asked again.
5. *frequency cap*: ``recent_asks`` (asks inside the cap window, across every partner and
   action, that reached the person or still may: not cancelled, expired or failed) plus the
   asks planned here may not exceed ``cap``. When
   the cap leaves room for fewer asks than there are channels, a channel this action already
   asked on keeps its room (it was spent), then SMS is kept over email: it is the channel
   people answer (reply YES), and the one quiet hours already protect.
"""

from __future__ import annotations

import base64
import hmac
import re
from dataclasses import dataclass, field
from collections.abc import Collection, Iterable
from functools import lru_cache

import zipcodes

from contracts.events import ActionEvent, TargetArea
from contracts.facts import ADDRESS_FIELD, Channel, PersonRecord

#: Preference order: when the cap allows fewer asks than channels, the first ones win.
CHANNELS: tuple[Channel, ...] = ("sms", "email")
REFERRAL_LENGTH = 10

_ZIP = re.compile(r"^(\d{5})(?:[- ]?\d{4})?$")


@dataclass(frozen=True)
class Eligibility:
    """The channels to ask on (preferred first), and why every other channel was left out."""

    channels: tuple[Channel, ...] = ()
    reasons: dict[Channel, str] = field(default_factory=dict)


@lru_cache(maxsize=1 << 16)  # planning asks it of every person's code for every action
def zip5(postal_code: str | None) -> str | None:
    """The 5-digit ZIP of a US ZIP or ZIP+4 (``94607``, ``94607-1234``, ``94607 1234``), else ``None``."""
    match = _ZIP.match((postal_code or "").strip())
    return match.group(1) if match else None


def region_of(postal_code: str | None) -> str | None:
    """The US state (or territory) code of a US ZIP, from the bundled ``zipcodes`` data; else ``None``."""
    code = zip5(postal_code)
    return zip_facts(code)[0] if code else None


@lru_cache(maxsize=None)  # bounded by the ~42k US ZIPs; each look-up scans the whole table
def zip_facts(code: str) -> tuple[str | None, str | None]:
    """The state code and the time zone name the bundled ``zipcodes`` data gives a 5-digit
    ZIP (either may be ``None``). One look-up serves targeting and quiet hours alike."""
    found = zipcodes.matching(code)
    if not found:
        return None, None
    return found[0].get("state") or None, found[0].get("timezone") or None


def load_zip_data() -> None:
    """Load the bundled ZIP data now: the first look-up reads the whole of it (0.3-0.6 s here),
    which would otherwise stall the first fan-out (its first alert) that far."""
    zip_facts("00501")


def _postal_key(code: str) -> str:
    # US codes compare on the 5-digit ZIP; others (e.g. UK "SW1A 1AA") on the code without spaces.
    return zip5(code) or code.upper().replace(" ", "")


def in_target(person: PersonRecord, target: TargetArea) -> bool:
    """Whether the person's postal code is in ``target``.

    In if the code is one of ``target.postal_codes`` (US codes compare on the 5-digit ZIP),
    or its US state code is one of ``target.regions`` (state codes such as ``CA``, any case;
    full state names are not recognized). A person without a postal code is never in; an
    empty target contains nobody.
    """
    return in_area(person.postal_code, target)


def in_area(postal_code: str | None, target: TargetArea) -> bool:
    """``in_target`` of a postal code."""
    if not postal_code:
        return False
    codes, regions = _area(tuple(target.postal_codes), tuple(target.regions))
    if _postal_key(postal_code) in codes:
        return True
    region = region_of(postal_code)
    return region is not None and region in regions


@lru_cache(maxsize=64)  # one target area, asked of every person of a fan-out
def _area(postal_codes: tuple[str, ...], regions: tuple[str, ...]) -> tuple[frozenset[str], frozenset[str]]:
    return frozenset(_postal_key(c) for c in postal_codes), frozenset(r.strip().upper() for r in regions)


def consent_problem(person: PersonRecord, channel: Channel) -> str | None:
    """Why ``person`` may not be messaged on ``channel`` at all: "opted out" or "no consent"
    (rules 2 and 3), else ``None``. Checked when planning and again just before sending."""
    if channel in person.opted_out:
        return "opted out"
    consent = person.consent.get(channel)
    if consent is None or not consent.granted:
        return "no consent"
    return None


def _channel_problem(person: PersonRecord, channel: Channel, sponsors: Collection[str] | None) -> str | None:
    problem = consent_problem(person, channel)
    if problem:
        return problem
    if sponsors is not None and not covering(person, channel, sponsors):
        return "consent covers no sponsor"
    if not getattr(person, ADDRESS_FIELD[channel]):
        return f"no {ADDRESS_FIELD[channel]}"
    return undeliverable_problem(person, channel)


def undeliverable_problem(person: PersonRecord, channel: Channel) -> str | None:
    """"undeliverable" when the provider said the person's address on ``channel``, the one the
    record holds now, can never take a message (rule 4)."""
    marked = person.undeliverable.get(channel)
    return "undeliverable" if marked is not None and marked.given_at == person.given_at(ADDRESS_FIELD[channel]) else None


def covering(person: PersonRecord, channel: Channel, sponsors: Collection[str]) -> list[str]:
    """The sponsors whose messages the person's consent on ``channel`` allows, in the order of
    ``sponsors`` (``sponsor_order``: the owner first)."""
    consent = person.consent.get(channel)
    return [s for s in sponsors if consent is not None and consent.covers_partner(s)]


def sponsor_order(owner: str, co_sponsors: Iterable[str]) -> tuple[str, ...]:
    """An action's sponsors in the order credit goes to them: its owner, then its co-sponsors by id."""
    return (owner, *sorted(set(co_sponsors) - {owner}))


def decide(person: PersonRecord, action: ActionEvent, *, recent_asks: int, cap: int, sponsors: Collection[str] | None = None,
           asked: Collection[Channel] = ()) -> Eligibility:
    """The channels on which ``person`` may be asked for ``action`` (rules in the module docstring).
    ``recent_asks`` counts the other actions' asks; ``asked``: the channels this action asked
    the person on already, which took their room under the cap first."""
    if not in_target(person, action.target):
        return Eligibility(reasons={c: "out of area" for c in CHANNELS})
    reasons: dict[Channel, str] = {}
    allowed: list[Channel] = []
    for channel in CHANNELS:
        problem = "no template" if not getattr(action.templates, channel) else _channel_problem(person, channel, sponsors)
        if problem:
            reasons[channel] = problem
        else:
            allowed.append(channel)
    room = max(cap - recent_asks, 0)
    allowed = [c for c in allowed if c in asked] + [c for c in allowed if c not in asked]
    for channel in allowed[room:]:
        reasons[channel] = "frequency cap"
    return Eligibility(channels=tuple(allowed[:room]), reasons=reasons)


def may_be_asked(person: PersonRecord, action: ActionEvent, postal_code: str | None) -> bool:
    """Whether ``decide`` could leave ``person`` any channel: consent on one, and inside the
    action's area. Needs only their ``postal_code`` (opened), so planning opens nothing else
    of people it passes over."""
    return any(consent_problem(person, c) is None for c in CHANNELS) and in_area(postal_code, action.target)


def partner_credit(person: PersonRecord, sponsors: Collection[str] | None = None, channel: Channel = "sms") -> str:
    """The partner credited with asks to ``person``: the first-touch recruiter when it is a
    sponsor whose consent covers the person (or no sponsors are given), else the first such
    sponsor in ``sponsors``' order (``sponsor_order``: the action's owner, then its co-sponsors by id). Stable whoever signs the person up later (see ``agents.people``), so a replay or
    a late duplicate sign-up never moves credit between partners."""
    if sponsors is None:
        return person.recruited_by
    allowed = covering(person, channel, sponsors) or covering(person, "email", sponsors)
    return person.recruited_by if person.recruited_by in allowed or not allowed else allowed[0]


@lru_cache(maxsize=1024)  # the same for every person a partner is credited with in an action
def referral_code(partner: str, action_id: str, secret: bytes) -> str:
    """A 10-character URL-safe code naming ``partner`` for ``action_id``, kept on each ask
    (``AskCommand.referral``). RSVP links no longer carry it: they carry a signed token naming the
    ask (``streams.links``), and the ask names its partner.

    HMAC-SHA256 of ``action_id:partner`` under the coalition ``secret``, base64url, first 10
    characters (60 bits). It is not reversible: whoever receives it recomputes the code of
    each partner of that action and picks the match, so it exposes no partner id and
    cannot be forged for another partner without the secret.
    """
    digest = hmac.digest(secret, f"{action_id}:{partner}".encode(), "sha256")
    return base64.urlsafe_b64encode(digest).decode("ascii")[:REFERRAL_LENGTH]
