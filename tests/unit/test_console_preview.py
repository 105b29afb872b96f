"""The console's dry runs without a broker: the audience preview counted by the planning rules
themselves, the test send through the real ``ProviderOutbox`` over in-memory senders, the sums
the console shows, the rate limit, and the confirmation page over a fake audience."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, time, timedelta, timezone
from html import unescape
from types import SimpleNamespace

from agents.outreach.agents import Outreach, PeopleIndex, close
from agents.outreach.dry_run import _send_test, preview_partition, start_test
from agents.outreach.planning import OutreachPolicy, plan
from agents.outreach.preview import count, outcome, test_messages as rendered_test
from agents.outreach.quiet_hours import QuietHours
from connectors.providers.email import FakeEmail
from connectors.providers.outbox import ProviderOutbox
from connectors.providers.sms import FakeSms
from connectors.web.console.audience import FakeAudience, TestLimit as Limit, launch_question, total
from connectors.web.publisher import BrokerUnavailable
from agents.outreach.sending import SenderQueue
from contracts.asks import AskFact, RecentAsks, ask_id
from contracts.events import ActionEvent
from contracts.facts import PersonRecord
from contracts.people import ConsentRecord
from contracts.preview import ALREADY, TEST_MARK, AudienceCount, PreviewAudience, SendTest, TestResult as Result, TestSent as Sent
from streams.keys import partition_of
from tests.factories import action as action_event
from tests.fakes import memory_pipeline
from tests.unit.test_console import FORM, ORGANIZER, console
from tests.accounts import sign_in

NOON = datetime(2026, 11, 24, 20, 0, tzinfo=timezone.utc)   # 12:00 in Oakland, 15:00 in New York
NIGHT = datetime(2026, 11, 25, 6, 30, tzinfo=timezone.utc)  # 22:30 in Oakland, 01:30 in New York
POLICY = OutreachPolicy(cap=3, quiet=QuietHours(time(21), time(9)))


def key(i: int) -> str:
    return f"p{i:032x}"


def person(i: int, consent=("sms", "email"), opted_out=(), zip_="94607", phone=True, email=True, scope="union-a") -> PersonRecord:
    return PersonRecord(person_key=key(i), given_name="Ana", phone=f"+1510555{i:04d}" if phone else None,
                        email=f"p{i}@example.org" if email else None, postal_code=zip_,
                        consent={c: ConsentRecord(granted=True, partner=scope, at=NOON) for c in consent},
                        opted_out={c: NOON for c in opted_out}, partners=(scope,), recruited_by=scope, recruited_at=NOON, updated_at=NOON)


def action(**extra) -> ActionEvent:
    item = {**action_event("rally-1"), "starts_at": "2026-11-26T18:00:00-08:00", "rapid_response": True,
            "target": {"postal_codes": ["94607", "10001"]}}
    item["templates"] = {"sms": {"en": "{given_name}: {action_title} {rsvp_link}"},
                         "email": {"en": {"subject": "{action_title}", "body": "Hi {given_name}"}}}
    return ActionEvent.model_validate({**item, **extra})


def recent(n: int) -> RecentAsks:
    return RecentAsks(asks=tuple((ask_id(f"other-{j}", key(0), "sms"), NOON - timedelta(days=1)) for j in range(n)))


PEOPLE = [  # (person, recent asks, already asked for this action)
    (person(1), None, set()),                                   # both channels
    (person(2, opted_out=("sms",)), None, set()),               # email only
    (person(3, consent=("sms",)), None, set()),                 # text only: no email consent
    (person(4, zip_="60601"), None, set()),                     # out of area on both
    (person(5, phone=False), None, set()),                      # no phone
    (person(6), recent(2), set()),                              # room for one: the text
    (person(7, scope="faith-b"), None, set()),                  # consent covers no sponsor
    (person(8), None, {ask_id("rally-1", key(8), "sms")}),      # texted for this action already
]


def outcomes(now=NOON, act=None):
    act = act or action()
    return [outcome(p, act, r, done, now, POLICY, now, frozenset({"union-a"})) for p, r, done in PEOPLE]


def test_the_preview_counts_each_channel_and_each_reason_as_the_launch_would_plan():
    got = count("r1", 0, outcomes(), NOON)
    launched = [a for p, r, done in PEOPLE for a in plan(p, action(), r, done, NOON, POLICY, NOON, frozenset({"union-a"}))]
    assert got.asked == {"sms": sum(a.channel == "sms" for a in launched), "email": sum(a.channel == "email" for a in launched)}
    assert got.asked == {"sms": 3, "email": 4}  # people 1, 3, 6 by text; 1, 2, 5, 8 by email
    assert got.excluded == {
        "sms": {"opted out": 1, "out of area": 1, "no phone": 1, "consent covers no sponsor": 1, ALREADY: 1},
        "email": {"no consent": 1, "out of area": 1, "frequency cap": 1, "consent covers no sponsor": 1},
    }
    assert (got.people, got.reached, got.deferred) == (8, 6, 0)


def test_texts_held_by_quiet_hours_are_counted_with_when_the_first_and_last_go():
    night = [outcome(person(1), action(), None, set(), NIGHT, POLICY, NIGHT),
             outcome(person(2, zip_="10001"), action(), None, set(), NIGHT, POLICY, NIGHT)]
    got = count("r1", 0, night, NIGHT)
    assert got.deferred == 2 and got.asked == {"sms": 2, "email": 2}
    assert got.deferred_first == datetime(2026, 11, 25, 14, 0, tzinfo=timezone.utc)  # 09:00 in New York
    assert got.deferred_last == datetime(2026, 11, 25, 17, 0, tzinfo=timezone.utc)   # 09:00 in Oakland
    overridden = [outcome(person(1), action(override_quiet_hours=True), None, set(), NIGHT, POLICY, NIGHT)]
    assert count("r2", 0, overridden, NIGHT).deferred == 0


def test_a_text_whose_quiet_hours_last_until_the_action_has_started_is_counted_as_the_launch_records_it():
    # An outside probe: at 22:00 in Oakland, an alert for midnight was previewed as "18 texts,
    # the first go at 9:00 AM"; the launch recorded every one expired, and the organizer had
    # confirmed a launch that reached nobody by text.
    midnight = action(starts_at="2026-11-26T00:00:00-08:00")
    at_ten = datetime(2026, 11, 26, 6, 0, tzinfo=timezone.utc)  # 22:00 in Oakland, the night before
    got = count("r1", 0, [outcome(person(1), midnight, None, set(), at_ten, POLICY, at_ten)], at_ten)
    assert got.asked == {"email": 1} and got.deferred == 0
    assert got.excluded == {"sms": {"no allowed hour left before the action": 1}}
    assert got.reached == 1


def test_the_preview_counts_the_senders_queue_as_the_launch_does():
    """An outside probe at the default rate (one text a second), with 19 minutes of texts queued
    at 20:51 in New York: the preview said "No text is held by quiet hours: they all go at once";
    the launch held all 600 until 9:00 the next morning (their window closed before the queue's
    turn). The preview now waits its turn in (a copy of) the worker's queue prediction."""
    evening = datetime(2026, 11, 25, 1, 51, tzinfo=timezone.utc)  # 20:51 in New York, 17:51 in Oakland
    queue = SenderQueue(1)
    queue.add(evening, 19 * 60)  # 19 minutes of texts ahead
    got = count("r1", 0, [outcome(person(1, zip_="10001"), action(), None, set(), evening, POLICY, evening, queue=queue),
                          outcome(person(2), action(), None, set(), evening, POLICY, evening, queue=queue)], evening, queue)
    assert (got.deferred, got.deferred_by_queue) == (1, 1)  # New York's window closes at 21:00; Oakland's at 21:00 there
    assert got.deferred_first == datetime(2026, 11, 25, 14, 0, tzinfo=timezone.utc)  # 09:00 in New York
    assert got.queue_drains == evening + timedelta(minutes=19, seconds=1)  # Oakland's text, last out of the queue
    assert count("r2", 0, outcomes(), NOON).queue_drains is None  # no rate: no queue predicted


def test_a_channel_without_a_template_is_not_counted():
    texts_only = action(templates={"sms": {"en": "{action_title}"}, "email": {}})
    got = count("r1", 0, [outcome(person(1), texts_only, None, set(), NOON, POLICY, NOON)], NOON)
    assert got.asked == {"sms": 1} and got.excluded == {}


def test_a_partition_preview_reads_its_own_people_and_writes_nothing():
    p = memory_pipeline()
    for i, (someone, recently, _) in enumerate(PEOPLE, start=1):
        p.people.put(partition_of(key(i), 4), key(i), someone)
        if recently is not None:
            p.recent_asks.put(partition_of(key(i), 4), key(i), recently)
    p.asks.put(0, ask_id("rally-1", key(8), "sms"), AskFact(ask_id=ask_id("rally-1", key(8), "sms"), action_id="rally-1",
                                                            person_key=key(8), channel="sms", partner="union-a", status="sent", updated_at=NOON))
    # Person 1's text was cancelled (an edit took them out, an opt-out since taken back): never
    # sent, it is planned again, not "already asked" (an outside probe: the preview said so).
    p.asks.put(0, ask_id("rally-1", key(1), "sms"), AskFact(ask_id=ask_id("rally-1", key(1), "sms"), action_id="rally-1",
                                                            person_key=key(1), channel="sms", partner="union-a", status="cancelled", updated_at=NOON))
    before = ({**p.people.table.data}, {**p.asks.table.data}, {**p.recent_asks.table.data}, len(p.asks_topic.sent))
    o = Outreach(outbox=None, policy=POLICY, clock=lambda: NOON, partitions=4)
    req = PreviewAudience(request_id="r1", action=action(), owner="union-a", requested_at=NOON)
    counts = [asyncio.run(preview_partition(p, o, req, n, PeopleIndex(4))) for n in range(4)]
    assert ({**p.people.table.data}, {**p.asks.table.data}, {**p.recent_asks.table.data}, len(p.asks_topic.sent)) == before
    assert sum(c.people for c in counts) == 8 and [c.partition for c in counts] == [0, 1, 2, 3]
    whole = total(counts, 4)
    assert whole.complete and whole.asked == {"sms": 3, "email": 4} and whole.excluded["sms"][ALREADY] == 1


def test_a_test_send_goes_only_to_the_typed_addresses_rendered_and_marked_as_a_test():
    p, sms, mail = memory_pipeline(), FakeSms(), FakeEmail()
    o = Outreach(outbox=ProviderOutbox(sms, mail, "http://web"), policy=POLICY, clock=lambda: NOON, partitions=4)
    p.people.put(0, key(1), person(1))
    cmd = SendTest(request_id="t1", action=action(), sponsor="union-a", phone="+15105550999", email="me@example.org", requested_at=NOON)
    asyncio.run(_send_test(p, o, cmd))
    assert [m["to"] for m in sms.sent] == ["+15105550999"] and [m.to for m in mail.sent] == ["me@example.org"]
    assert sms.sent[0]["body"].startswith(TEST_MARK + "union-a: Alexandra: Rally for fair funding") and sms.sent[0]["status_callback"] is None
    assert mail.sent[0].subject == TEST_MARK + "Rally for fair funding" and mail.sent[0].ask_id == "test:t1"
    assert p.asks.table.data == {} and p.recent_asks.table.data == {} and p.asks_topic.sent == []  # not an ask
    (key_, value, _), = p.previews.sent
    answer = Sent.model_validate_json(value)
    assert key_ == "t1" and answer.results == (Result(channel="sms", sent=True), Result(channel="email", sent=True))


def test_a_test_text_says_how_long_it_waits_in_the_senders_queue_and_joins_it():
    """An outside probe at the default rate: "Test text sent" while it waited 22 minutes behind
    the fan-out in the sender's queue, and the organizer waited for it in vain."""
    p, sms = memory_pipeline(), FakeSms()
    o = Outreach(outbox=ProviderOutbox(sms, FakeEmail(), "http://web"), policy=POLICY, clock=lambda: NOON, partitions=4, queue=SenderQueue(1))
    o.queue.add(NOON, 22 * 60)
    cmd = SendTest(request_id="t1", action=action(), sponsor="union-a", phone="+15105550999", requested_at=NOON)
    asyncio.run(_send_test(p, o, cmd))
    (_, value, _), = p.previews.sent
    assert Sent.model_validate_json(value).results == (Result(channel="sms", sent=True, queue_wait=22 * 60),)
    assert o.queue.wait(NOON) == 22 * 60 + 1  # a text like any other at the sender


class SlowSms(FakeSms):
    """A provider that answers a few turns of the event loop later."""

    async def send(self, to, body, **kwargs):
        for _ in range(3):
            await asyncio.sleep(0)
        return await super().send(to, body, **kwargs)


def test_a_test_send_under_way_when_the_worker_stops_is_sent_and_answered():
    """The organizer's test send was acknowledged when it started: a worker stopping meanwhile
    lets it finish (and answer) before it closes its providers, instead of dropping it."""
    p, sms = memory_pipeline(), SlowSms()
    o = Outreach(outbox=ProviderOutbox(sms, FakeEmail(), "http://web"), policy=POLICY, clock=lambda: NOON, partitions=4)

    async def stop_while_sending():
        start_test(p, o, SendTest(request_id="t3", action=action(), sponsor="union-a", phone="+15105550999", requested_at=NOON))
        await close(o, SimpleNamespace(stop=lambda: asyncio.sleep(0)))

    asyncio.run(stop_while_sending())
    assert [m["to"] for m in sms.sent] == ["+15105550999"]
    (key_, value, _), = p.previews.sent
    assert key_ == "t3" and Sent.model_validate_json(value).results == (Result(channel="sms", sent=True),)


def test_without_provider_credentials_a_test_send_says_so():
    p = memory_pipeline()
    o = Outreach(outbox=None, policy=POLICY, clock=lambda: NOON, partitions=4)
    asyncio.run(_send_test(p, o, SendTest(request_id="t2", action=action(), sponsor="union-a", phone="+15105550999", requested_at=NOON)))
    (_, value, _), = p.previews.sent
    (result,) = Sent.model_validate_json(value).results
    assert not result.sent and "no provider configured" in result.error


def test_test_messages_carry_the_sponsor_footer_and_unsubscribe_line_as_an_ask_would():
    policy = OutreachPolicy(sponsor_names={"union-a": "Union Local 1"})
    msgs = rendered_test(action(), "union-a", "en", policy)
    assert msgs["sms"][1].startswith("[TEST] Union Local 1: ") and msgs["sms"][1].endswith("\nReply YES to RSVP, STOP to opt out")
    assert "Sent on behalf of Union Local 1" in msgs["email"][1] and msgs["email"][1].startswith("[TEST]")
    msgs = rendered_test(action(), "union-a", "es", policy)  # English templates, a Spanish speaker's closing lines
    assert msgs["sms"][1].endswith("\nResponde SI para confirmar, STOP para no recibir mensajes")
    assert "Enviado en nombre de Union Local 1" in msgs["email"][1]


def answer(partition: int, sms: int, email: int, **extra) -> AudienceCount:
    return AudienceCount(request_id="r", partition=partition, people=sms + email, reached=max(sms, email),
                         asked={"sms": sms, "email": email}, at=NOON, **extra)


def test_the_console_adds_the_partitions_up_once_each_and_says_when_some_did_not_answer():
    first = NOON + timedelta(hours=1)
    counts = [answer(0, 1000, 900, excluded={"sms": {"opted out": 2}}, deferred=3, deferred_first=first, deferred_last=first),
              answer(1, 234, 87, excluded={"sms": {"opted out": 1}, "email": {"no consent": 4}}, deferred=1,
                     deferred_first=first + timedelta(hours=3), deferred_last=first + timedelta(hours=3)),
              ]
    counts.append(counts[1])  # partition 1 answered twice (its request read again after a rebalance)
    t = total(counts, 2)
    assert t.complete and t.asked == {"sms": 1234, "email": 987} and t.deferred == 4
    assert (t.deferred_first, t.deferred_last) == (first, first + timedelta(hours=3))
    assert t.rows() == [("opted out", 3, 0), ("no consent on this channel", 0, 4)]
    assert launch_question(t, ["sms", "email"]) == "Send to 1,234 people by text and 987 by email?"
    partial = total(counts[:1], 3)
    assert not partial.complete and "2 uncounted parts" in launch_question(partial, ["sms", "email"])


def test_test_sends_are_limited_per_organizer():
    limit = Limit(limit=2, window=600)
    assert limit.allow("a", 0) is None and limit.allow("a", 1) is None
    assert limit.allow("a", 2) == 598 and limit.allow("b", 2) is None
    assert limit.allow("a", 600) is None


def test_the_confirmation_previews_the_audience_and_the_launch_repeats_the_count(tmp_path):
    fake = FakeAudience(counts=[answer(0, 1234, 987, excluded={"email": {"frequency cap": 5}}, deferred=2,
                                       deferred_first=NIGHT + timedelta(hours=8), deferred_last=NIGHT + timedelta(hours=10, minutes=30))],
                        partitions=2)
    client, publisher, _ = console(tmp_path, audience=fake)
    sign_in(client, ORGANIZER)
    text = unescape(client.post("/dashboard/console", data=FORM).text)
    assert "Send to 1,234 people by text and 987 by email, and to whoever is in the 1 uncounted part of the people table?" in text
    assert "1 of 2 parts of the people table answered in time" in text and "Left out: frequency cap" in text
    assert "2 texts are held by the recipients' quiet hours" in text and "6:30 AM PST" in text
    (req,) = fake.asked
    assert req.owner == "hub" and req.action.action_id == "vigil-1202" and publisher.records == []


def test_the_confirmation_says_what_the_senders_queue_holds_back_and_when_it_drains(tmp_path):
    fake = FakeAudience(counts=[answer(0, 600, 0, deferred=600, deferred_by_queue=600, deferred_first=NIGHT + timedelta(hours=8),
                                       deferred_last=NIGHT + timedelta(hours=8), queue_drains=NIGHT - timedelta(minutes=40))], partitions=1)
    client, _, _ = console(tmp_path, audience=fake)
    sign_in(client, ORGANIZER)
    text = unescape(client.post("/dashboard/console", data=FORM).text)
    assert "600 texts are held by the recipients' quiet hours: the first go Wednesday, November 25, 2026, 6:30 AM PST" in text
    assert "600 of them only because the texts queued at the sender before them would not leave in time" in text
    # Said of the texts handed over now, not of the held ones above (an outside probe read it so).
    assert "they all go at once" not in text and ("The texts handed over at launch leave the sender at its own rate (<code>TURNOUT_SMS_RATE</code>): "
                                                  "the last of them about Tuesday, November 24, 2026, 9:50 PM PST") in text


def test_a_test_send_from_the_confirmation_names_bad_input_and_is_rate_limited(tmp_path):
    fake = FakeAudience(sent=Sent(request_id="x", results=(Result(channel="sms", sent=True),), at=NOON))
    client, publisher, _ = console(tmp_path, audience=fake)
    sign_in(client, ORGANIZER)
    form = {**FORM, "test_send": "yes"}
    assert "your phone:" in unescape(client.post("/dashboard/console", data={**form, "test_phone": "12"}).text)
    bad_email = unescape(client.post("/dashboard/console", data={**form, "test_email": "me.example.org"}).text)
    assert "your email: An email address must have an @-sign." in bad_email and ".." not in bad_email  # the validator's own period
    for _ in range(4):
        ok = unescape(client.post("/dashboard/console", data={**form, "test_phone": "(510) 555-0999"}).text)
        assert "Test text sent to +15105550999." in ok and "sender's queue" not in ok
    fake.sent = Sent(request_id="x", results=(Result(channel="sms", sent=True, queue_wait=22 * 60 + 10),), at=NOON)
    waits = unescape(client.post("/dashboard/console", data={**form, "test_phone": "+15105550999"}).text)
    assert "Test text sent to +15105550999. It waits about 22 min in the sender's queue, behind the texts handed over before it" in waits
    assert "too many test sends" in unescape(client.post("/dashboard/console", data={**form, "test_phone": "+15105550999"}).text)
    sends = [a for a in fake.asked if isinstance(a, SendTest)]
    assert len(sends) == 5 and {a.phone for a in sends} == {"+15105550999"} and publisher.records == []
    # The launch form carries the action, not the test's fields.
    launch = ok.split('id="launch-form"')[1].split("</form>")[0]
    assert "test_phone" not in launch and "test_send" not in launch and re.search(r'name="confirmed" value="yes"', launch)


def test_a_bilingual_alert_can_be_tested_in_each_of_its_languages(tmp_path):
    # Only the English version could be tried before launch (an outside probe).
    fake = FakeAudience(sent=Sent(request_id="x", results=(Result(channel="sms", sent=True),), at=NOON))
    client, _, _ = console(tmp_path, audience=fake)
    sign_in(client, ORGANIZER)
    bilingual = {**FORM, "sms_es": "{given_name}: vigilia {local_time} {rsvp_link}"}
    page = client.post("/dashboard/console", data=bilingual).text
    assert re.search(r'<select id="test_language" name="test_language">', page) and '<option value="es">' in page
    for language in ("es", "en", "fr"):  # one the alert has no template for is English's
        client.post("/dashboard/console", data={**bilingual, "test_send": "yes", "test_phone": "+15105550999", "test_language": language})
    assert [a.language for a in fake.asked if isinstance(a, SendTest)] == ["es", "en", "en"]
    assert '<select id="test_language"' not in client.post("/dashboard/console", data={**FORM}).text  # English only: nothing to choose


def test_no_worker_answering_a_test_send_is_said(tmp_path):
    client, _, _ = console(tmp_path, audience=FakeAudience())
    sign_in(client, ORGANIZER)
    text = unescape(client.post("/dashboard/console", data={**FORM, "test_send": "yes", "test_email": "me@example.org"}).text)
    assert "Test not sent: no worker answered in time" in text


class DownAudience(FakeAudience):
    async def preview(self, req, timeout):
        raise BrokerUnavailable(5, "down")

    async def test(self, cmd, timeout):
        raise BrokerUnavailable(5, "down")


def test_with_no_answer_or_no_broker_the_preview_says_nothing_was_counted(tmp_path):
    for n, audience in enumerate((FakeAudience(partitions=8), DownAudience())):
        (tmp_path / str(n)).mkdir()
        client, publisher, _ = console(tmp_path / str(n), audience=audience)
        sign_in(client, ORGANIZER)
        text = unescape(client.post("/dashboard/console", data={**FORM, "test_send": "yes", "test_phone": "+15105550999"}).text)
        assert "0 of 8 parts of the people table answered in time" in text and "8 uncounted parts" in text
        assert "Test not sent:" in text and publisher.records == []


def test_an_alert_that_would_reach_nobody_is_not_launched_with_a_send_button(tmp_path):
    # An outside probe: editing an alert everyone was asked for already still offered
    # "Send the alert to 94607 now", for 0 people.
    from contracts.facts import ActionRecord
    from connectors.web.console.form import to_event
    from tests.unit.test_console import NOW

    nobody = FakeAudience(counts=[answer(0, 0, 0, excluded={"sms": {"already asked": 3}})])
    client, _, book = console(tmp_path, audience=nobody)
    sign_in(client, ORGANIZER)
    launch = lambda: unescape(client.post("/dashboard/console", data=FORM).text).split('id="launch-form"')[1]  # noqa: E731
    assert "Send the alert" not in launch() and "Post the alert: it asks nobody now" in launch()
    book.apply("action", "vigil-1202", ActionRecord(partner="hub", action=ActionEvent.model_validate(to_event(FORM, "a-1", NOW))))
    assert "Save the changes to the alert: it asks nobody new" in launch()
    nobody.counts = [answer(0, 2, 0)]
    assert "Send the alert to 94607, 94612, 94601 now" in launch()


def test_an_alert_in_spanish_only_is_tested_as_its_spanish_speakers_get_it(tmp_path):
    # An outside probe: the test text of a Spanish-only alert carried the English footer, as no
    # Spanish speaker receives it (there is only one language, so no choice is offered).
    fake = FakeAudience(sent=Sent(request_id="x", results=(Result(channel="sms", sent=True),), at=NOON))
    client, _, _ = console(tmp_path, audience=fake)
    sign_in(client, ORGANIZER)
    spanish = {**FORM, "sms_en": "", "sms_es": "{given_name}: vigilia {local_time} {rsvp_link}", "email_subject_en": "", "email_body_en": ""}
    page = client.post("/dashboard/console", data={**spanish, "test_send": "yes", "test_phone": "+15105550999"}).text
    assert "Test text sent to +15105550999." in unescape(page) and '<select id="test_language"' not in page
    (sent,) = [a for a in fake.asked if isinstance(a, SendTest)]
    assert sent.language == "es"
    assert rendered_test(sent.action, "hub", sent.language, POLICY_WITH_FOOTERS)["sms"][1].endswith("Responde SI para confirmar, STOP para no recibir mensajes")


POLICY_WITH_FOOTERS = OutreachPolicy(footer="Reply YES to RSVP, STOP to opt out", footer_es="Responde SI para confirmar, STOP para no recibir mensajes")


def test_an_edit_says_that_people_asked_already_are_not_told_of_it(tmp_path):
    # An outside probe: an alert's time moved from 6:00 to 7:30 PM; the confirmation counted the
    # people asked already as "left out" and nothing said they keep the 6:00 PM text.
    from contracts.facts import ActionRecord
    from connectors.web.console.form import to_event
    from tests.unit.test_console import NOW

    fake = FakeAudience(counts=[answer(0, 1, 0, excluded={"sms": {"already asked": 3}, "email": {"already asked": 2}})])
    client, _, book = console(tmp_path, audience=fake)
    sign_in(client, ORGANIZER)
    note = "people asked for this action already (3 by text, 2 by email) are not told of this change"
    assert note not in unescape(client.post("/dashboard/console", data=FORM).text)  # a new alert: nobody to tell
    book.apply("action", "vigil-1202", ActionRecord(partner="hub", action=ActionEvent.model_validate(to_event(FORM, "a-1", NOW))))
    assert note in unescape(client.post("/dashboard/console", data={**FORM, "local_start": "2026-12-02T16:30"}).text)
