"""Who a partner's staff may find at the door: the partner's own people for one action.

Pure: events in, a roster out; no I/O, no clock. The web app otherwise holds no personal data
(tallies are keyed by hashes), so this is the one place it keeps names and contact details, and
only what a partner itself posted: a partner's roster is built from the sign-ups, RSVPs and
check-ins that partner sent (``Envelope.partner``), never from another partner's. An erasure
request (``ForgetPerson``) removes the person's details at once.

A roster entry names a person by ``ref``, a keyed hash of partner and person key, so the page
never carries a person key; the contact details (phone, email) stay here: the page shows a name
and the last four digits of a phone, and a check-in is written with what the partner posted.

Names and contact details arrive sealed with the person's data key (``streams.sealing``) and are
kept sealed: ``open`` (the web app's key ring) opens them when a page needs them, so once an
erasure deletes the person's keys nothing of them can be shown here either.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Callable, Literal

Open = Callable[[str, str | None], str | None]

from contracts.erasure import ForgetPerson
from contracts.facts import Attendance, said
from contracts.people import DEFAULT_REGION, normalize_email, normalize_phone
from streams.keys import person_key
from streams.sealing import open_fields

Status = Literal["yes", "maybe", "no"]
#: The events that name a person (``contracts.events``: their ``type``).
PERSON_EVENTS = frozenset({"signup", "rsvp", "checkin", "supporter_rsvp"})


@dataclass(frozen=True)
class Contact:
    """What one partner told us about one person: per field the latest non-empty value of its
    sign-ups; an RSVP or a check-in only fills a field still empty (as in the people table)."""

    given_name: str | None = None
    family_name: str | None = None
    phone: str | None = None
    email: str | None = None

    def merged(self, newer: Contact) -> Contact:
        return Contact(*(n if n is not None else o for o, n in zip(
            (self.given_name, self.family_name, self.phone, self.email), (newer.given_name, newer.family_name, newer.phone, newer.email))))

    def filled(self, other: Contact) -> Contact:
        """This contact, its empty fields filled from ``other`` (what an RSVP or check-in may do)."""
        return other.merged(self)

    @property
    def name(self) -> str:
        return " ".join(x for x in (self.given_name, self.family_name) if x) or "(no name given)"


@dataclass(frozen=True)
class Entry:
    """One line of the door list."""

    ref: str
    name: str
    phone_last4: str | None
    has_email: bool
    rsvp: Status | None
    checked_in: bool
    walk_in: bool
    #: The partner may withdraw the check-in (a wrong tap): its own check-in of the person counts (a backbone: anyone's).
    can_undo: bool = False


@dataclass
class Directory:
    """Per partner, its people (by the ingress's person key) and, per action, whom it RSVP'd
    and checked in. ``secret`` is the person-key secret (to match an erasure's contact keys and
    attendance facts keyed by phone or email); ``ref_key`` keys the page's references;
    ``region`` reads phones without a country code, as the ingress does."""

    secret: bytes
    ref_key: bytes
    #: Opens a sealed field by its name (``KeyRing.open``); ``None``: its key is gone (erased).
    open: Open = lambda name, value: value
    people: dict[str, dict[str, Contact]] = field(default_factory=dict)
    rsvps: dict[tuple[str, str], dict[str, Status]] = field(default_factory=dict)
    #: Per (action, partner), whose check-ins were written (read from the events topic, or by this web
    #: app's door), when the latest was received and how the tallies remember it (``said``; ``None``
    #: until the events topic is read to it): in until the tallies have read it, then as they say.
    checkins: dict[tuple[str, str], dict[str, tuple[datetime, str | None]]] = field(default_factory=dict)
    #: Per (action, partner), whose check-in this web app's door has just withdrawn, and when: out
    #: at once, until the tallies have read it (their check-ins received since count again).
    withdrawals: dict[tuple[str, str], dict[str, datetime]] = field(default_factory=dict)
    #: Per partner, the email key of a person it posted with a phone too → that person's key
    #: (``Envelope.email_key``): an event naming only the email is that person's.
    aliases: dict[str, dict[str, str]] = field(default_factory=dict)
    records: int = 0
    region: str = DEFAULT_REGION
    #: Erasure requests carried out, and per person key erased, when it was requested. A request
    #: is written to every partition of the events topic, and a replay reads the partitions in
    #: no particular order: a copy read after the person signed up again must not remove them,
    #: and their events from before the erasure, read after its first copy, are not taken again.
    erasures: set[str] = field(default_factory=set)
    erased: dict[str, datetime] = field(default_factory=dict)

    def apply(self, envelope: dict) -> None:
        """Take one accepted event from the events topic, as JSON (others are ignored). The
        ingress validated it when it wrote it: this reads the few fields it needs, no more (a
        full model validation per record would cost the web app's event loop several times as
        much, and it reads every event partners post)."""
        self.records += 1
        event, partner, key = envelope["event"], envelope["partner"], envelope.get("person_key")
        kind = event.get("type")
        if key is None or kind not in PERSON_EVENTS:
            return
        key = self.aliases.get(partner, {}).get(key, key)
        # Posted before the person was erased: their details are not taken again; what the partner
        # said of them (an RSVP, a check-in: a person key only, as the tallies keep it) is theirs
        # again once they are signed up again.
        before_erasure = key in self.erased and datetime.fromisoformat(envelope["received_at"]) <= self.erased[key]
        if kind != "supporter_rsvp" and not before_erasure:
            p = event["person"]
            contact = Contact(p.get("given_name"), p.get("family_name"), p.get("phone"), p.get("email"))
            own = self.people.setdefault(partner, {})
            if key not in own:
                own[key] = contact
            else:
                own[key] = own[key].merged(contact) if kind == "signup" else own[key].filled(contact)
        if kind in ("rsvp", "supporter_rsvp"):
            self.rsvps.setdefault((event["action_id"], partner), {})[key] = event["status"]
        elif kind == "checkin" and not event.get("withdrawn"):  # a withdrawal: the tallies say whom it takes back
            self._checked(event["action_id"], partner, key, (datetime.fromisoformat(envelope["received_at"]),
                                                            said(partner, event["event_id"], "checkin", datetime.fromisoformat(event["occurred_at"]))))
        if (email_key := envelope.get("email_key")) and email_key != key and not before_erasure:
            self._alias(partner, email_key, key)

    def knows(self, partner: str, key: str) -> bool:
        """Whether ``partner`` has posted the person known by ``key`` itself (by that key, or an email it linked to them)."""
        return self.aliases.get(partner, {}).get(key, key) in self.people.get(partner, {})

    def links(self) -> dict[str, str]:
        """Each email key an event named with a phone → that person's key, whichever partner
        posted it: what the web app knows of who is one person before any worker has linked them."""
        return {alias: key for aliases in self.aliases.values() for alias, key in aliases.items()}

    def _alias(self, partner: str, alias: str, key: str) -> None:
        """From now on ``alias`` is ``key`` for ``partner``; what it holds under ``alias`` moves there."""
        aliases = self.aliases.setdefault(partner, {})
        if aliases.get(alias) == key:
            return  # known: every event since was filed under ``key`` (a re-import of a sign-up sheet)
        aliases[alias] = key
        own = self.people.get(partner, {})
        if alias in own:
            old = own.pop(alias)
            own[key] = old.merged(own[key]) if key in own else old
        for (_, who), said in self.rsvps.items():
            if who == partner and alias in said:
                status = said.pop(alias)
                said.setdefault(key, status)
        for (action_id, who), keys in list(self.checkins.items()):
            if who == partner and alias in keys:
                self._checked(action_id, partner, key, keys.pop(alias))

    def forget(self, request: ForgetPerson) -> None:
        """An erasure request (its first copy): drop the details of every person known by one of
        its contact keys. Their RSVPs and check-ins stay (person keys and answers, as the tallies
        keep them): without details nobody is shown, and signed up again they are on the list
        with what was said of them before."""
        if request.request_id in self.erasures:
            return
        self.erasures.add(request.request_id)
        gone = set(request.contact_keys)
        for own in self.people.values():
            for key, contact in list(own.items()):
                if key in gone or gone & self.keys(key, contact):
                    del own[key]
                    gone.add(key)
        for undone in self.withdrawals.values():
            for key in gone & undone.keys():
                del undone[key]
        for aliases in self.aliases.values():
            for alias, key in list(aliases.items()):
                if alias in gone or key in gone:
                    del aliases[alias]
        for key in gone:
            self.erased[key] = max(request.requested_at, self.erased.get(key, request.requested_at))

    def opened(self, contact: Contact | None) -> Contact | None:
        """``contact`` readable, or ``None`` when a field it holds cannot be opened (erased)."""
        if contact is None:
            return None
        opened = open_fields({f: getattr(contact, f) for f in ("given_name", "family_name", "phone", "email")}, self.open)
        return None if opened is None else Contact(**opened)

    def keys(self, key: str, contact: Contact | None) -> set[str]:
        """Every key the person may be known by: the event's, the phone's and the email's."""
        out = {key}
        contact = self.opened(contact)
        if contact is not None:
            out |= {person_key(self.secret, contact.phone, None)} if contact.phone else set()
            out |= {person_key(self.secret, None, contact.email)} if contact.email else set()
        return out

    def ref(self, partner: str, key: str) -> str:
        return hmac.new(self.ref_key, f"{partner}|{key}".encode(), hashlib.sha256).hexdigest()[:20]

    def roster(self, partner: str, action_id: str, attended: Callable[[str], Attendance | None],
               person_of: Callable[[str], str] = lambda key: key, backbone: bool = False) -> list[Entry]:
        """The partner's people for the action: whom it RSVP'd yes or maybe (as it posted, or as
        the tallies say: a YES texted back to its ask), and whom it checked in (walk-ins), by
        name, one line per person. ``attended(key)``: the tallies' attendance
        fact of the person under that key; ``person_of(key)``: the person a key is now (the
        tallies' identity facts), so that someone the partner posted by phone and by email,
        linked by anyone, is one line. In: someone whose check-in counts (anyone's), or whom
        the partner has just checked in and the tallies have not read yet; a check-in the
        partner has just withdrawn is out at once. It may undo its own check-in that counts (a
        ``backbone`` partner: anyone's)."""
        said = self._said(partner, action_id, attended, person_of)
        checked = self.checkins.get((action_id, partner), {})
        undone = self.withdrawals.get((action_id, partner), {})
        out = []
        for ref, keys, contact in self._lines(partner, said.keys() | checked, person_of):
            statuses = {said[k] for k in keys if k in said}
            facts = [f for k in keys | {person_of(k) for k in keys} if (f := attended(k)) is not None]
            counting = {p: received for f in facts for p, (received, _) in f.counting().items()}
            withdrawn = max((undone[k] for k in keys if k in undone), default=None)
            if withdrawn is not None and partner in counting and counting[partner] < withdrawn:
                del counting[partner]  # withdrawn here, not read by the tallies yet
            # Checked in, and neither read by the tallies yet (they count it or not: a repeat of a
            # check-in withdrawn since counts nowhere) nor withdrawn since by them.
            seen, remembered = max((checked[k] for k in keys if k in checked), default=(None, None), key=lambda c: c[0])
            read = remembered is not None and any(remembered in f.checkin_events for f in facts)
            taken = max((w for f in facts for w in (f.withdrawn_received, f.checkins[partner].withdrawn_received if partner in f.checkins else None)
                         if w is not None), default=None)
            pending = seen is not None and withdrawn is None and not read and (taken is None or taken < seen)
            out.append(Entry(ref, contact.name, contact.phone[-4:] if contact.phone else None, contact.email is not None,
                             "yes" if "yes" in statuses else "maybe" if statuses else None, bool(counting) or pending, not statuses,
                             partner in counting or pending or (backbone and bool(counting))))
        return sorted(out, key=lambda e: (reading_order(e.name), e.ref))

    def find(self, partner: str, action_id: str, ref: str, attended: Callable[[str], Attendance | None] = lambda key: None,
             person_of: Callable[[str], str] = lambda key: key) -> Contact | None:
        """The contact behind a roster reference (only among the partner's people for the action)."""
        keys = self._said(partner, action_id, attended, person_of).keys() | self.checkins.get((action_id, partner), {}).keys()
        return next((contact for line, _, contact in self._lines(partner, keys, person_of) if hmac.compare_digest(line.encode(), ref.encode())), None)

    def _said(self, partner: str, action_id: str, attended: Callable[[str], Attendance | None],
              person_of: Callable[[str], str]) -> dict[str, Status]:
        """Whom the partner RSVP'd yes or maybe, by key: as the tallies say (its posts, and a YES
        texted back to its ask), else as it posted (the tallies not read yet)."""
        said = dict(self.rsvps.get((action_id, partner), {}))
        for key in self.people.get(partner, {}).keys() | said.keys():
            fact = attended(key) or attended(person_of(key))
            if fact is not None and (answer := fact.answer_of(partner)) is not None:
                said[key] = answer
        return {k: s for k, s in said.items() if s in ("yes", "maybe")}

    def _lines(self, partner: str, keys: set[str], person_of: Callable[[str], str]) -> list[tuple[str, set[str], Contact]]:
        """``keys`` (the partner's people for an action) one per person: the line's reference,
        every key the partner holds the person under, and what it told of them under those keys,
        opened (one key's fields, in key order, the gaps filled from the others). A person with no phone or email here
        (an RSVP by link from someone the partner never posted), or erased, has no line."""
        own = self.people.get(partner, {})
        persons = {person_of(k) for k in keys}
        held: dict[str, set[str]] = {}
        for k in own.keys() | keys:
            if (person := person_of(k)) in persons:
                held.setdefault(person, set()).add(k)
        out = []
        for person, group in held.items():
            contacts = [c for k in sorted(group) if (c := self.opened(own.get(k))) is not None]
            contact = contacts[0] if contacts else None
            for other in contacts[1:]:
                contact = contact.filled(other)
            if contact is None or (contact.phone is None and contact.email is None):
                continue
            out.append((self.ref(partner, min(group & keys)), group | self.keys(min(group), contact), contact))
        return out

    def checked_in(self, partner: str, action_id: str, contact: Contact, withdrawn: bool = False) -> None:
        """Note a check-in (or its withdrawal) this web app has just written (the events topic
        will say so too), its phone and email as the ingress wrote them ("(510) 555-0303" is
        +15105550303): the same person key, so one line, and the one an erasure names."""
        contact = replace(contact, phone=contact.phone and normalize_phone(contact.phone, self.region),
                          email=contact.email and normalize_email(contact.email))
        key = person_key(self.secret, contact.phone, contact.email)
        own = self.people.setdefault(partner, {})
        own[key] = own[key].filled(contact) if key in own else contact  # as the check-in's event will
        if withdrawn:
            self.withdrawals.setdefault((action_id, partner), {})[key] = datetime.now(timezone.utc)  # after the ingress stamped it
        else:
            self._checked(action_id, partner, key, (datetime.now(timezone.utc), None))  # after the ingress stamped it
            self.withdrawals.get((action_id, partner), {}).pop(key, None)

    def _checked(self, action_id: str, partner: str, key: str, latest: tuple[datetime, str | None]) -> None:
        checked = self.checkins.setdefault((action_id, partner), {})
        checked[key] = max(latest, checked.get(key, latest), key=lambda c: c[0])


def reading_order(name: str) -> tuple[str | int, ...]:
    """How a list of names is ordered for a person: regardless of case, numbers by their value
    (Supporter2 before Supporter11)."""
    return tuple(int(part) if i % 2 else part for i, part in enumerate(re.split(r"(\d+)", name.casefold())))
