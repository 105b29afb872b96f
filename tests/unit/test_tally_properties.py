"""Properties of the tally arithmetic (hypothesis).

A fact topic is compacted and keyed: per key, versions arrive in order, but Faust's
at-least-once delivery repeats them, partitions interleave keys arbitrarily, and compaction may
leave only the latest version of each key. Whatever a reader sees of the same facts, the
tallies must be the same: those of the latest version of every key. And a reader that stops
and reads on, or that replays from offset 0 onto what it had already read, ends exactly there.
"""

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.asks import AskFact
from contracts.events import ActionEvent
from contracts.facts import ActionRecord, Attendance, Membership, Pledge
from contracts.identity import Merge
from contracts.tallies import TallyBook
from tests.factories import action as action_event

T = datetime(2026, 11, 22, 15, tzinfo=timezone.utc)
ACTIONS, PARTNERS, PEOPLE = ("a1", "a2"), ("p1", "p2", "p3"), tuple(f"pk{i}" for i in range(6))
partner = st.sampled_from(PARTNERS)
maybe_partner = st.none() | partner
minute = st.integers(0, 90).map(lambda m: T + timedelta(minutes=m))


def pledge_versions(action: str, p: str):
    return st.builds(lambda c, i: Pledge(action_id=action, partner=p, count=c, occurred_at=T, event_id=f"e{i}"), st.integers(0, 50), st.integers(0, 9))


def attendance_versions(action: str, person: str):
    return st.builds(
        lambda rsvp, rsvp_by, at, by: Attendance(action_id=action, person_key=person, rsvp=rsvp, rsvp_at=T if rsvp else None, rsvp_by=rsvp_by if rsvp else None, attended_at=at if by else None, attended_by=by),
        st.none() | st.sampled_from(["yes", "no", "maybe"]), maybe_partner, minute, maybe_partner,
    )


def ask_versions(action: str, person: str, channel: str, p: str):
    return st.builds(
        lambda status, yes, out: AskFact(ask_id=f"{action}:{person}:{channel}", action_id=action, person_key=person, channel=channel, partner=p, status=status, updated_at=T, replied_yes=yes, opted_out=out),
        st.sampled_from(["planned", "deferred", "sending", "sent", "delivered", "failed", "cancelled", "in_doubt"]), st.booleans(), st.booleans(),
    )


@st.composite
def histories(draw):
    """Per key: its kind and the versions written to it, oldest first (None: a tombstone)."""
    keys: dict[tuple[str, str], list] = {}
    for action in ACTIONS:
        for p in draw(st.sets(partner)):
            keys[("pledge", f"{action}|{p}")] = draw(st.lists(pledge_versions(action, p) | st.none(), min_size=1, max_size=4))
        for person in draw(st.sets(st.sampled_from(PEOPLE), max_size=4)):
            keys[("attendance", f"{action}|{person}")] = draw(st.lists(attendance_versions(action, person) | st.none(), min_size=1, max_size=4))
            channel, p = draw(st.sampled_from(["sms", "email"])), draw(partner)
            keys[("ask", f"{action}:{person}:{channel}")] = draw(st.lists(ask_versions(action, person, channel, p), min_size=1, max_size=4))
    for p, person in draw(st.sets(st.tuples(partner, st.sampled_from(PEOPLE)), max_size=5)):
        keys[("membership", f"{p}|{person}")] = draw(st.lists(st.just(Membership(partner=p, person_key=person, joined_at=T)) | st.none(), min_size=1, max_size=3))
    for action in draw(st.sets(st.sampled_from(ACTIONS))):  # posted (or posted, then gone): counted coalition-wide from then on
        keys[("action", action)] = draw(st.lists(st.just(ActionRecord(partner="p1", action=ActionEvent.model_validate(action_event(action)))) | st.none(),
                                                 min_size=1, max_size=2))
    for person in draw(st.sets(st.sampled_from(PEOPLE), max_size=2)):
        keys[("merge", person)] = draw(st.lists(st.just(Merge(person=person, into="pk-survivor", at=T)) | st.none(), min_size=1, max_size=2))
    return keys


@st.composite
def deliveries(draw, history):
    """One reader's view: every key's versions in order, each possibly repeated (at-least-once),
    keys interleaved in any order (partitions), as a list of (kind, key, fact)."""
    queues = {key: [v for v in versions for _ in range(draw(st.integers(1, 3)))] for key, versions in history.items()}
    out = []
    while queues:
        key = draw(st.sampled_from(sorted(queues)))
        out.append((*key, queues[key].pop(0)))
        if not queues[key]:
            del queues[key]
    return out


def book_of(records) -> TallyBook:
    book = TallyBook()
    for kind, key, fact in records:
        book.apply(kind, key, fact)
    return book


def snapshot(book: TallyBook):
    return (
        book.coalition(),
        [book.action(a) for a in ACTIONS],
        [book.checkins(a) for a in ACTIONS],
    )


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_interleaving_and_duplication_gives_the_tallies_of_the_latest_facts(data):
    history = data.draw(histories())
    latest = book_of((*key, versions[-1]) for key, versions in history.items())
    seen = book_of(data.draw(deliveries(history)))
    assert snapshot(seen) == snapshot(latest)


def latest_of(records) -> TallyBook:
    """The tallies of the latest version of every key among ``records``."""
    latest = {(kind, key): fact for kind, key, fact in records}
    return book_of((kind, key, fact) for (kind, key), fact in latest.items())


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_replaying_from_offset_zero_rebuilds_the_tallies_exactly(data):
    log = data.draw(deliveries(data.draw(histories())))  # what a topic holds, in offset order
    full = snapshot(book_of(log))
    stop = data.draw(st.integers(0, len(log)))
    # A reader that stopped at ``stop``, served its tallies there, then read on.
    resumed = book_of(log[:stop])
    assert snapshot(resumed) == snapshot(latest_of(log[:stop]))
    for record in log[stop:]:
        resumed.apply(*record)
    assert snapshot(resumed) == full
    # A reader that had read up to ``stop`` and restarted from offset 0 on the same book, as
    # after a restart or rebalance before its position was committed (at-least-once).
    replayed = book_of(log[:stop])
    for record in log:
        replayed.apply(*record)
    assert snapshot(replayed) == full
