"""Person merge: one record per person key, whoever signed them up.

Rules (pure, order-independent, so replays and late duplicates give the same record):

- *Recruiter (first touch)*: the partner whose sign-up the coalition received first (ties:
  the smaller partner id); ``occurred_at`` is only displayed, so backdating takes nothing. It
  does not change when others sign the person up later.
- *Memberships*: every partner that signed the person up (a set).
- *Profile fields*: the newest sign-up's non-empty values win; an older sign-up only
  fills fields that are still empty.
- *Consent*: a sign-up can grant consent for a channel; it never revokes consent another
  partner recorded (revocation is an opt-out, not a missing tick-box). The earliest grant
  is kept as the record; every partner that recorded one is in ``covers``, and one grant of
  ``coalition`` scope makes it cover every partner.
"""

from __future__ import annotations

from datetime import datetime

from contracts.events import SignupEvent
from contracts.facts import Membership, PersonRecord
from contracts.people import ConsentRecord

PROFILE = ("given_name", "family_name", "phone", "email", "postal_code", "language")


def merge_person(old: PersonRecord | None, event: SignupEvent, partner: str, person_key: str, received: datetime | None = None) -> PersonRecord:
    """The person record after ``partner``'s sign-up ``event``, received at ``received``."""
    at = event.occurred_at
    first_at = received or at
    incoming = {f: getattr(event.person, f) for f in PROFILE}
    if old is None:
        return PersonRecord(
            person_key=person_key,
            **incoming,
            consent=_grants(event, partner),
            partners=(partner,),
            recruited_by=partner,
            recruited_at=first_at,
            updated_at=at,
        )
    newer = at >= old.updated_at
    profile = {
        f: (incoming[f] if incoming[f] is not None and (newer or getattr(old, f) is None) else getattr(old, f))
        for f in PROFILE
    }
    consent = dict(old.consent)
    for channel, grant in _grants(event, partner).items():
        consent[channel] = _merge_grant(consent.get(channel), grant)
    # A record with no partner yet only remembers an opt-out: the first sign-up recruits.
    first = min((old.recruited_at, old.recruited_by), (first_at, partner)) if old.partners else (first_at, partner)
    return PersonRecord(
        person_key=person_key,
        **profile,
        consent=consent,
        opted_out=old.opted_out,
        partners=tuple(sorted(set(old.partners) | {partner})),
        recruited_by=first[1],
        recruited_at=first[0],
        updated_at=max(old.updated_at, at),
    )


def _grants(event: SignupEvent, partner: str) -> dict[str, ConsentRecord]:
    grants = {}
    for channel in ("sms", "email"):
        c = getattr(event.consent, channel)
        if c.granted:
            grants[channel] = ConsentRecord(granted=True, partner=partner, at=c.given_at or event.occurred_at, method=c.method,
                                            scope=c.scope, covers=(partner,))
    return grants


def _merge_grant(old: ConsentRecord | None, grant: ConsentRecord) -> ConsentRecord:
    if old is None or not old.granted:
        return grant
    first = grant if grant.at < old.at else old
    covers = tuple(sorted(set(old.covers or (old.partner,)) | set(grant.covers)))
    scope = "coalition" if "coalition" in (old.scope, grant.scope) else "partner"
    return first.model_copy(update={"covers": covers, "scope": scope})


def membership(old: Membership | None, partner: str, person_key: str, at: datetime) -> Membership:
    """Partner ``partner`` signed up the person; the membership dates from the first sign-up."""
    joined = at if old is None else min(old.joined_at, at)
    return Membership(partner=partner, person_key=person_key, joined_at=joined)
