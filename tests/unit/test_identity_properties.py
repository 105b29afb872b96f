"""Properties of identity resolution (hypothesis), with a worker per partition (tests.cluster).

The same sign-ups, RSVPs and check-ins, delivered with the partitions interleaved in any order
and any message delivered twice (at-least-once), must give the same people: the identifiers an
exact phone or email links are one person, and no others are; every fact of a person lives
under one key; and the people's records, memberships, attendance and every tally are those of
the events processed one by one, in order. Which key a person ends up under may depend on the
order links were first recorded in (and so may the merges diagnostic); nothing a tally or an
ask reads does.
"""

import asyncio
import random
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.facts import Attendance, Membership, PersonRecord
from streams.keys import person_key
from tests.cluster import SECRET, Cluster
from tests.factories import checkin, phone, rsvp, signup

T = datetime(2026, 11, 22, 15, tzinfo=timezone.utc)
PHONES = [phone(i) for i in range(4)]
EMAILS = [f"p{i}@example.org" for i in range(4)]
PARTNERS = ("union-a", "faith-b", "seniors-c")
ACTIONS = ("rally-1", "rally-2")

contact = st.tuples(st.sampled_from(PHONES) | st.none(), st.sampled_from(EMAILS) | st.none()).filter(lambda c: c != (None, None))


@st.composite
def events(draw):
    """(partner, event, received minute): sign-ups, some introducing RSVPs, bare RSVPs and check-ins."""
    out = []
    for n in range(draw(st.integers(1, 10))):
        ph, em = draw(contact)
        partner, minute = draw(st.sampled_from(PARTNERS)), draw(st.integers(0, 30))
        occurred = (T + timedelta(minutes=draw(st.integers(0, 30)))).isoformat()
        kind = draw(st.sampled_from(["signup", "rsvp", "checkin"]))
        if kind == "signup":
            item = signup(f"s{n}", phone=ph, email=em, at=occurred, given_name=draw(st.sampled_from(["Ana", "Ben", None])) or None)
            item["person"] = {k: v for k, v in item["person"].items() if v is not None}
            item["consent"] = {"sms": ph is not None and draw(st.booleans()), "email": em is not None and draw(st.booleans())}
        elif kind == "rsvp":
            item = rsvp(f"r{n}", draw(st.sampled_from(ACTIONS)), draw(st.sampled_from(["yes", "no", "maybe"])), phone=ph, email=em, at=occurred)
            if draw(st.booleans()):
                item["person"]["postal_code"] = "94607"  # introduces the person
        else:
            item = checkin(f"c{n}", draw(st.sampled_from(ACTIONS)), phone=ph, email=em, at=occurred)
        out.append((partner, item, minute))
    return out


def components(posted) -> dict[str, frozenset[str]]:
    """Identifier key → the identifiers it is one person with: union-find over exact identifiers
    named together by one event (independent of the code under test)."""
    parent: dict[str, str] = {}

    def find(k):
        while parent.setdefault(k, k) != k:
            k = parent[k]
        return k

    for _, item, _ in posted:
        keys = [person_key(SECRET, item["person"]["phone"], None)] if "phone" in item["person"] else []
        keys += [person_key(SECRET, None, item["person"]["email"])] if "email" in item["person"] else []
        for k in keys[1:]:
            parent[find(k)] = find(keys[0])
        find(keys[0])
    groups: dict[str, set[str]] = {}
    for k in parent:
        groups.setdefault(find(k), set()).add(k)
    return {k: frozenset(groups[find(k)]) for k in parent}


def state(cluster: Cluster, people: dict[str, frozenset[str]]):
    """The coalition's people and facts with each person key replaced by the person's
    identifiers (so it does not matter which key a person ended up under), and its tallies."""
    group = {cluster.person_of(k): g for k, g in people.items()}
    records = {group[k]: PersonRecord.model_validate(v).model_dump(exclude={"person_key"}) for k, v in cluster.table("people").items()}
    memberships = {(m.partner, group[m.person_key]): m.joined_at for m in map(Membership.model_validate, cluster.table("memberships").values())}
    attendance = {(a.action_id, group[a.person_key]): a.model_dump(exclude={"person_key"}) for a in map(Attendance.model_validate, cluster.table("attendance").values())}
    book = cluster.tallies()
    # Every tally, and the overlap; not the merges count, a diagnostic of how records met
    # (contracts.identity.Merge): which were folded depends on what was processed first.
    tallies = (book.coalition().model_dump(exclude={"identity": {"merges"}}), [book.action(a) for a in ACTIONS])
    return records, memberships, attendance, tallies


async def delivered(posted, rng: random.Random | None, duplicates: float) -> Cluster:
    cluster = Cluster()
    for partner, item, minute in posted:
        cluster.post(partner, item, T + timedelta(minutes=minute))
        if rng is None:
            await cluster.run()  # the reference: each event settled before the next arrives
    await cluster.run(rng, duplicates)
    return cluster


@settings(max_examples=120, deadline=None)
@given(events(), st.randoms(use_true_random=False), st.floats(0, 0.4))
def test_any_order_and_duplication_gives_the_same_people_and_tallies(posted, rng, duplicates):
    people = components(posted)
    reference = asyncio.run(delivered(posted, None, 0))
    shuffled = asyncio.run(delivered(posted, rng, duplicates))
    for cluster in (reference, shuffled):
        # Exactly the identifiers an event named together are one person.
        persons = {k: cluster.person_of(k) for k in people}
        assert all((persons[a] == persons[b]) == (people[a] == people[b]) for a in people for b in people)
        # Every fact lives under a person's own key, one per person and action or partner.
        roots = set(persons.values())
        assert set(cluster.table("people")) <= roots
        assert {a["person_key"] for a in cluster.table("attendance").values()} <= roots
        assert {m["person_key"] for m in cluster.table("memberships").values()} <= roots
    assert state(shuffled, people) == state(reference, people)
