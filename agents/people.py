"""Person merge: one record per person, whoever signed them up, however partners know them.

Rules (pure, order-independent, so replays and late duplicates give the same record):

- *Recruiter (first touch)*: the partner whose sign-up the coalition received first (ties:
  the smaller partner id); ``occurred_at`` is only displayed, so backdating takes nothing. It
  does not change when others sign the person up later.
- *Memberships*: every partner that signed the person up (a set).
- *Profile fields*: the newest sign-up's non-empty values win; an older sign-up only
  fills fields that are still empty (each field remembers when it was set, ``profile_at``, so
  this holds whatever order sign-ups and merges arrive in).
- *Consent*: a sign-up can grant consent for a channel; it never revokes consent another
  partner recorded (revocation is an opt-out, not a missing tick-box). The earliest grant
  is kept as the record; every partner that recorded one is in ``covers``, and one grant of
  ``coalition`` scope makes it cover every partner.
- *Introduced by an RSVP or check-in* (``introduce``): a person nobody signed up yet is created,
  recruited by the partner that posted it; an existing person only gets empty fields filled
  and consent added. Its fields never win over a sign-up's, whichever arrives first.
- *Two records of one person* (``join_people``, when identity resolution merges two people):
  the same rules across both records; an opt-out on either wins over consent on the other.
"""

from __future__ import annotations

from datetime import datetime, timezone

from contracts.events import PersonEvent
from contracts.facts import ADDRESS_FIELD, Channel, Membership, PersonRecord, Undeliverable
from contracts.people import ConsentRecord

PROFILE = ("given_name", "family_name", "phone", "email", "postal_code", "language")
#: ``updated_at`` of a record only an RSVP or check-in introduced: older than any sign-up, so a
#: sign-up's fields win over it whichever is processed first.
INTRODUCED = datetime(1970, 1, 1, tzinfo=timezone.utc)


def merge_person(old: PersonRecord | None, event: PersonEvent, partner: str, person_key: str, received: datetime | None = None,
                 *, fills_only: bool = False) -> PersonRecord:
    """The person record after ``partner``'s sign-up ``event``, received at ``received``.
    ``fills_only``: the event only introduces the person (an RSVP or check-in): it fills empty
    fields and never overwrites what a sign-up said."""
    at = event.occurred_at
    first_at = received or at
    stamp = INTRODUCED if fills_only else at
    incoming = {f: (v, stamp) for f in PROFILE if (v := getattr(event.person, f)) is not None}
    linking = received if received is not None and event.person.phone and event.person.email else None
    if old is None:
        return PersonRecord(
            person_key=person_key,
            **_profile([incoming]),
            consent=_grants(event, partner),
            partners=(partner,),
            recruited_by=partner,
            recruited_at=first_at,
            updated_at=stamp,
            link_sent_at=linking,
        )
    consent = dict(old.consent)
    for channel, grant in _grants(event, partner).items():
        consent[channel] = _merge_grant(consent.get(channel), grant)
    # A record with no partner yet only remembers an opt-out: the first sign-up recruits.
    first = min((old.recruited_at, old.recruited_by), (first_at, partner)) if old.partners else (first_at, partner)
    return PersonRecord(
        person_key=person_key,
        **_profile([_stamped(old), incoming]),
        consent=consent,
        opted_out=old.opted_out,
        undeliverable=old.undeliverable,
        partners=tuple(sorted(set(old.partners) | {partner})),
        recruited_by=first[1],
        recruited_at=first[0],
        updated_at=max(old.updated_at, stamp),
        link_sent_at=_latest(old.link_sent_at, linking),
        replies=old.replies,
    )


def introduce(old: PersonRecord | None, event: PersonEvent, partner: str, person_key: str, received: datetime) -> PersonRecord:
    """The person record after an RSVP or check-in that carries sign-up fields or consent."""
    return merge_person(old, event, partner, person_key, received, fills_only=True)


def join_people(a: PersonRecord | None, b: PersonRecord | None, person_key: str) -> PersonRecord | None:
    """One record of the person ``a`` and ``b`` describe (a merge), under ``person_key``.

    Commutative, associative and idempotent: per profile field the newest value wins; consent
    per channel as for sign-ups (it keeps the partner that recorded it first, the partners it
    covers and its scope); an opt-out on either record wins; an address found undeliverable
    stays so if it is the one kept; partners are the union; the recruiter is the first touch of both."""
    if a is None or b is None:
        one = a or b
        return None if one is None else one.model_copy(update={"person_key": person_key})
    consent = dict(a.consent)
    for channel, grant in b.consent.items():
        consent[channel] = _merge_grant(consent.get(channel), grant)
    opted_out = {c: min(t for t in (a.opted_out.get(c), b.opted_out.get(c)) if t is not None)
                 for c in sorted(set(a.opted_out) | set(b.opted_out))}
    touches = [(r.recruited_at, r.recruited_by) for r in (a, b) if r.partners] or [(min(a.recruited_at, b.recruited_at), "")]
    first = min(touches)
    profile = _profile([_stamped(a), _stamped(b)])
    return PersonRecord(
        person_key=person_key,
        **profile,
        consent=dict(sorted(consent.items())),
        opted_out=opted_out,
        undeliverable=_undeliverable(a, b, profile),
        partners=tuple(sorted(set(a.partners) | set(b.partners))),
        recruited_by=first[1],
        recruited_at=first[0],
        updated_at=max(a.updated_at, b.updated_at),
        link_sent_at=_latest(a.link_sent_at, b.link_sent_at),
        replies=tuple(sorted(set(a.replies) | set(b.replies))),  # in no order the merge could depend on
    )


def _latest(*times: datetime | None) -> datetime | None:
    return max((t for t in times if t is not None), default=None)


def _undeliverable(a: PersonRecord, b: PersonRecord, profile: dict) -> dict[Channel, Undeliverable]:
    """Per channel, what either record found undeliverable about the address the merged record
    keeps (the earliest finding, so the order never matters); findings about the other address go."""
    kept = {}
    for channel, field in ADDRESS_FIELD.items():
        found = [u for r in (a, b) if (u := r.undeliverable.get(channel)) is not None and u.given_at == profile["profile_at"].get(field)]
        if found:
            kept[channel] = min(found, key=lambda u: (u.at, u.code))
    return kept


def _stamped(record: PersonRecord) -> dict[str, tuple[str, datetime]]:
    return {f: (v, record.given_at(f)) for f in PROFILE if (v := getattr(record, f)) is not None}


def _profile(sources: list[dict[str, tuple[str, datetime]]]) -> dict:
    """Per field, the newest value (ties: the larger value, so the order never matters), and
    when it was set."""
    chosen = {f: max((s[f] for s in sources if f in s), key=lambda vt: (vt[1], vt[0])) for f in PROFILE if any(f in s for s in sources)}
    return {**{f: v for f, (v, _) in chosen.items()}, "profile_at": {f: t for f, (_, t) in sorted(chosen.items())}}


def _grants(event: PersonEvent, partner: str) -> dict[str, ConsentRecord]:
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
    # The earliest grant is the record (ties: the smaller partner, then method), whatever the order.
    first = min((grant, old), key=lambda g: (g.at, g.partner, g.method or ""))
    covers = tuple(sorted(set(old.covers or (old.partner,)) | set(grant.covers or (grant.partner,))))
    scope = "coalition" if "coalition" in (old.scope, grant.scope) else "partner"
    return first.model_copy(update={"covers": covers, "scope": scope})


def membership(old: Membership | None, partner: str, person_key: str, at: datetime) -> Membership:
    """Partner ``partner`` signed up the person; the membership dates from the first sign-up."""
    joined = at if old is None else min(old.joined_at, at)
    return Membership(partner=partner, person_key=person_key, joined_at=joined)
