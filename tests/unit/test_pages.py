"""Supporters' pages over HTTP, with an in-memory tally book and publisher (no broker): the RSVP
page and the unsubscribe page, what they write, and that the workers' own code counts it."""

import asyncio
import re
from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError

from agents.intake import handle
from agents.outreach.callbacks import apply
from agents.outreach.agents import Outreach
from agents.outreach.planning import OutreachPolicy, plan
from connectors.web.app import create_app
from connectors.web.ingress import envelopes
from connectors.web.publisher import ListPublisher
from contracts.asks import AskFact, ask_id
from contracts.events import ActionEvent, Envelope, SupporterRsvpEvent
from contracts.facts import ActionRecord, PersonRecord
from contracts.people import ConsentRecord
from contracts.providers import EmailEvent, ProviderEnvelope, SmsReply
from contracts.tallies import TallyBook
from streams import links
from streams.coalition import add_partner
from streams.data_keys import MemoryDataKeys
from streams.keys import fact_key
from streams.settings import Settings
from streams.topology import provider_topic
from tests.factories import action
from tests.fakes import memory_pipeline

PK = "p0123456789abcdef0123456789abcdef"
STARTS = datetime(2026, 12, 2, 2, 0, tzinfo=timezone.utc)  # Tue Dec 1, 6:00 PM in Oakland
BEFORE = STARTS - timedelta(days=1)
SMS_ASK, EMAIL_ASK = ask_id("rally-1", PK, "sms"), ask_id("rally-1", PK, "email")


def rally(**extra) -> ActionEvent:
    location = {"venue": "City Hall", "address_lines": ["1 Frank H. Ogawa Plaza"], "locality": "Oakland", "region": "CA", "postal_code": "94612"}
    return ActionEvent.model_validate({**action("rally-1"), "title": "Rally for fair funding", "location": location, **extra})


def ask_fact(aid: str, channel: str, partner: str = "faith-b") -> AskFact:
    # faith-b: the ask's partner, not the action's owner (union-a): the RSVP is credited to it.
    return AskFact(ask_id=aid, action_id="rally-1", person_key=PK, channel=channel, partner=partner, status="delivered", updated_at=BEFORE)


class Env:
    def __init__(self, tmp_path):
        path = tmp_path / "coalition.toml"
        add_partner(path, "union-a", "Union Local A", "union")
        add_partner(path, "faith-b", "Grace Congregation", "faith")
        self.clock = tmp_path / "clock.txt"
        self.at(BEFORE)
        self.settings = Settings(coalition=path, organizer_token=SecretStr("t"), person_key_secret=SecretStr("k"),
                                 kafka_bootstrap_servers="unused:9092", clock=f"file:{self.clock}")
        self.book = TallyBook()
        self.book.apply("action", "rally-1", ActionRecord(partner="union-a", action=rally()))
        for aid, channel in ((SMS_ASK, "sms"), (EMAIL_ASK, "email")):
            self.book.apply("ask", aid, ask_fact(aid, channel))
        self.publisher, self.keys = ListPublisher(), MemoryDataKeys()
        asyncio.run(self.keys.keys_for([PK]))  # every person asked has a data key
        self.client = TestClient(create_app(self.settings, publisher=self.publisher, book=self.book, data_keys=self.keys))

    def at(self, when: datetime) -> None:
        self.clock.write_text(when.isoformat())

    def token(self, purpose="rsvp", channel="sms", language=None, expires_at=STARTS + timedelta(hours=3)) -> str:
        link = links.Link("rally-1", PK, channel, language, expires_at if purpose == "rsvp" else None)
        return links.sign(self.settings.link_key_bytes(), purpose, link)

    def rsvp_url(self, **kw) -> str:
        return f"/r/rally-1/{self.token(**kw)}"

    def unsubscribe_url(self, **kw) -> str:
        return f"/unsubscribe/rally-1/{self.token('unsubscribe', channel='email', **kw)}"

    def written(self, topic=None) -> list[tuple[bytes, bytes]]:
        return self.publisher.by_topic.get(topic, [])


@pytest.fixture
def env(tmp_path):
    return Env(tmp_path)


def text(html: str) -> str:
    """The page's words, tags and extra spaces gone."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#39;", "'")


# --- the RSVP page ------------------------------------------------------------------------------


def test_the_rsvp_page_shows_the_action_in_its_own_zone_where_and_who_invites(env):
    page = env.client.get(env.rsvp_url())
    assert page.status_code == 200
    words = text(page.text)
    assert "Grace Congregation invites you" in words and "Rally for fair funding" in words
    assert "Tuesday, December 1, 2026, 6:00 PM PST" in words
    assert "City Hall 1 Frank H. Ogawa Plaza Oakland, CA 94612" in words
    assert [b for b in re.findall(r'name="status" value="(\w+)"', page.text)] == ["yes", "maybe", "no"]
    assert '<html lang="en">' in page.text and 'method="post"' in page.text
    assert env.written() == []  # opening the link (a scanner, a preview) answers nothing


def test_the_rsvp_page_speaks_spanish_to_a_spanish_speaker(env):
    words = text(env.client.get(env.rsvp_url(language="es")).text)
    assert "Grace Congregation te invita" in words and "¿Vas a ir?" in words
    assert "martes, 1 de diciembre de 2026, 6:00 p. m. PST" in words
    assert "Sí" in words and "Tal vez" in words


def test_pages_carry_security_headers_and_no_script(env):
    for url in (env.rsvp_url(), env.unsubscribe_url(), "/r/rally-1/nonsense"):
        page = env.client.get(url)
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp and "frame-ancestors 'none'" in csp
        assert page.headers["referrer-policy"] == "no-referrer"  # the token is in the URL
        assert page.headers["cache-control"] == "no-store" and page.headers["x-content-type-options"] == "nosniff"
        assert "<script" not in page.text and "style=" not in page.text
    css = env.client.get(re.search(r'href="(/pages/static/pages\.css\?v=\w+)"', page.text).group(1))
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def answer(env, status, url=None):
    return env.client.post(url or env.rsvp_url(), data={"status": status}, follow_redirects=False)


def intake(records, p=None):
    """Run the records through the intake agent's own code, as a worker would."""
    if p is None:  # the person the ask went to, as the worker knows them
        p = memory_pipeline()
        p.people.put(0, PK, PersonRecord(person_key=PK, recruited_by="faith-b", recruited_at=STARTS, updated_at=STARTS))
    for key, value in records:
        handle(p, 0, key.decode(), value, b"k")
    return p


def test_an_answer_is_an_rsvp_credited_to_the_asks_partner_and_counted_like_any_other(env):
    done = answer(env, "yes")
    assert done.status_code == 303 and done.headers["location"].startswith("?answered=yes&")
    [(key, value)] = env.written()
    envelope = Envelope.model_validate_json(value)
    assert key == PK.encode() and envelope.person_key == PK and envelope.partner == "faith-b"
    assert isinstance(envelope.event, SupporterRsvpEvent) and (envelope.event.status, envelope.event.ask_id) == ("yes", SMS_ASK)

    p = intake(env.written())
    fact = p.attendance.get(fact_key("rally-1", PK))
    assert (fact.rsvp, fact.rsvp_by) == ("yes", "faith-b")
    env.book.apply("attendance", fact_key("rally-1", PK), fact)
    assert {r.partner: r.rsvp_yes for r in env.book.action("rally-1").partners} == {"faith-b": 1}
    assert "see you there" in text(env.client.get(env.rsvp_url() + done.headers["location"]).text)


def test_the_thanks_is_for_an_answer_this_server_took_and_none_given_since(env):
    # An outside probe: "?answered=yes" typed onto the link thanked someone who had never
    # answered, and a tab reloaded after the answer was changed elsewhere thanked the old one.
    page = text(env.client.get(env.rsvp_url() + "?answered=yes").text)
    assert "see you there" not in page and "Your answer" not in page
    yes = answer(env, "yes").headers["location"]
    assert "see you there" in text(env.client.get(env.rsvp_url() + yes).text)
    assert "see you there" not in text(env.client.get(env.rsvp_url() + yes.replace("answered=yes", "answered=no")).text)
    assert env.client.get(env.rsvp_url() + "?answered=yes&at=x&r=y").status_code == 200  # a page, never a 422
    # A "no" from the email's link, received later, is the answer in force when the tab reloads.
    p = intake(env.written())
    later = p.attendance.get(fact_key("rally-1", PK)).model_copy(update={"rsvp": "no", "rsvp_received": datetime.now(timezone.utc) + timedelta(seconds=5)})
    env.book.apply("attendance", fact_key("rally-1", PK), later)
    page = text(env.client.get(env.rsvp_url() + yes).text)
    assert "see you there" not in page and "Your answer: No." in page


def test_an_answer_can_be_changed_and_the_page_shows_the_one_in_force(env):
    answer(env, "yes")
    answer(env, "no")
    p = intake(env.written())
    fact = p.attendance.get(fact_key("rally-1", PK))
    assert fact.rsvp == "no"
    env.book.apply("attendance", fact_key("rally-1", PK), fact)
    assert env.book.action("rally-1").totals.rsvp_yes == 0
    page = env.client.get(env.rsvp_url())
    assert "Your answer: No" in text(page.text) and 'value="no" class="choice no chosen" aria-pressed="true"' in page.text
    assert 'value="yes" class="choice yes" aria-pressed="false"' in page.text  # the answer is the one pressed, to a screen reader too


def test_an_expired_link_says_so_and_writes_nothing(env):
    env.at(STARTS + timedelta(hours=3))
    page = env.client.get(env.rsvp_url())
    assert page.status_code == 410
    assert "This RSVP link has expired" in text(page.text) and "started on Tuesday, December 1, 2026, 6:00 PM PST" in text(page.text)
    assert answer(env, "yes").status_code == 410 and env.written() == []
    env.at(STARTS + timedelta(hours=2, minutes=59))
    assert answer(env, "yes").status_code == 303


def test_the_links_of_a_forgotten_person_say_so_and_write_nothing(env):
    # Erased on request: texts and emails sent before still carry their links. Opened, they showed
    # the person's answer and took a new one about them; now they say the details are gone.
    asyncio.run(env.keys.forget([PK]))
    for url in (env.rsvp_url(), env.rsvp_url(language="es"), env.unsubscribe_url()):
        page = env.client.get(url)
        assert page.status_code == 410, url
        assert "Your answer" not in text(page.text) and 'method="post"' not in page.text
    assert "We no longer hold your details" in text(env.client.get(env.rsvp_url()).text)
    assert "Ya no guardamos tus datos" in text(env.client.get(env.rsvp_url(language="es")).text)
    assert answer(env, "yes").status_code == 410
    assert env.client.post(env.unsubscribe_url(), data={"List-Unsubscribe": "One-Click"}).status_code == 410
    assert env.written() == [] and env.written(provider_topic(env.settings)) == []
    # Named by an event that introduces nobody (an RSVP with their email alone: an outside probe),
    # they get a data key to seal it with, and are still forgotten: no record holds them.
    asyncio.run(env.keys.keys_for([PK], introducing=()))
    assert env.client.get(env.rsvp_url()).status_code == 410 and answer(env, "yes").status_code == 410 and env.written() == []
    asyncio.run(env.keys.keys_for([PK], introducing=[PK]))  # signed up again by a partner: the links work
    assert env.client.get(env.rsvp_url()).status_code == 200


def test_a_link_of_an_action_moved_later_keeps_working(env):
    env.book.apply("action", "rally-1", ActionRecord(partner="union-a", action=rally(starts_at=(STARTS + timedelta(days=1)).isoformat())))
    env.at(STARTS + timedelta(hours=5))  # past the link's own expiry, before the new start
    assert env.client.get(env.rsvp_url()).status_code == 200


def test_a_link_of_an_action_moved_earlier_ends_with_the_new_start(env):
    # Moved five hours earlier: its links took answers until the old start + 3 h (an outside probe).
    env.book.apply("action", "rally-1", ActionRecord(partner="union-a", action=rally(starts_at=(STARTS - timedelta(hours=5)).isoformat())))
    env.at(STARTS - timedelta(hours=1))  # the new start + 4 h, before the link's own expiry
    assert env.client.get(env.rsvp_url()).status_code == 410 and answer(env, "yes").status_code == 410 and env.written() == []


def test_the_start_is_a_valid_html_datetime_even_with_fractions_of_a_second(env):
    """HTML's ``datetime`` allows at most three digits of a second; ``isoformat()`` writes six."""
    env.book.apply("action", "rally-1", ActionRecord(partner="union-a", action=rally(starts_at="2026-12-02T02:00:00.123456+00:00")))
    assert re.findall(r'<time datetime="([^"]+)"', env.client.get(env.rsvp_url()).text) == ["2026-12-02T02:00:00+00:00"]


@pytest.mark.parametrize("url", [
    "/r/rally-1/nonsense",
    "/r/rally-2/{token}",  # a real token on another action's URL
    "/r/rally-1/{unsubscribe}",  # an unsubscribe token is no RSVP link
    # Cut short at a slash (a mail client wrapping a long URL): the page, not the API's JSON 404.
    "/r/rally-1/", "/r/rally-1", "/unsubscribe/rally-1/", "/unsubscribe/rally-1",
])
def test_a_link_we_did_not_sign_for_this_says_it_does_not_work_in_both_languages(env, url):
    url = url.format(token=env.token(), unsubscribe=env.token("unsubscribe", channel="email"))
    page = env.client.get(url)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert page.headers["referrer-policy"] == "no-referrer"
    assert '<html lang="en">' in page.text and '<p lang="es">' in page.text
    assert "This link does not work" in page.text and "Este enlace no funciona" in page.text
    assert answer(env, "yes", url).status_code == 404 and env.written() == []


def test_a_link_this_web_app_has_not_read_yet_asks_to_try_again(env):
    env.book.apply("ask", SMS_ASK, None)  # e.g. just restarted, still reading the fact topics
    page = env.client.get(env.rsvp_url())
    assert page.status_code == 503 and page.headers["retry-after"] == "30"
    assert answer(env, "yes").status_code == 503 and env.written() == []


def test_an_answer_the_broker_did_not_take_is_not_claimed(env):
    env.publisher.down = True
    page = answer(env, "yes")
    assert page.status_code == 503 and "not saved" in page.text and "retry-after" in page.headers
    assert "see you there" not in page.text


def test_only_yes_maybe_or_no_is_an_answer(env):
    for form in ({"status": "definitely"}, {}):
        assert env.client.post(env.rsvp_url(), data=form).status_code == 400
    assert env.written() == []
    # A form too large gets a page, as every refusal on these pages does, not JSON (an outside probe).
    big = env.client.post(env.rsvp_url(), content=b"x" * 5000, headers={"content-type": "application/x-www-form-urlencoded"})
    assert big.status_code == 413 and big.headers["content-type"].startswith("text/html") and "could not read what you sent" in big.text


def test_partners_cannot_post_the_pages_internal_rsvp():
    item = {"type": "supporter_rsvp", "event_id": "x", "occurred_at": "2026-11-22T15:00:00Z", "action_id": "rally-1", "status": "yes", "ask_id": SMS_ASK}
    records, result = asyncio.run(envelopes([item], "union-a", BEFORE, b"k", "US", MemoryDataKeys()))
    assert records == [] and result.rejected[0].errors[0].field == "type"
    with pytest.raises(ValidationError, match="person_key"):
        Envelope(partner="union-a", received_at=BEFORE, event=SupporterRsvpEvent(event_id="x", occurred_at=BEFORE, action_id="rally-1", status="yes", ask_id=SMS_ASK))


# --- unsubscribe ---------------------------------------------------------------------------------


def ana(**kw) -> PersonRecord:
    consent = {c: ConsentRecord(granted=True, partner="faith-b", at=BEFORE, scope="coalition") for c in ("sms", "email")}
    return PersonRecord(person_key=PK, given_name="Ana", phone="+15105550123", email="ana@example.org", postal_code="94607", consent=consent,
                        recruited_by="faith-b", recruited_at=BEFORE, updated_at=BEFORE, **kw)


def receipts(env, records):
    """Apply the provider-topic records with the receipts agent's own code; return the pipeline."""
    from contracts.asks import RecentAsks

    p = memory_pipeline()
    p.people.put(0, PK, ana())
    p.asks.put(0, EMAIL_ASK, ask_fact(EMAIL_ASK, "email"))
    p.asks.put(0, SMS_ASK, ask_fact(SMS_ASK, "sms"))
    p.recent_asks.put(0, PK, RecentAsks(asks=((SMS_ASK, BEFORE), (EMAIL_ASK, BEFORE))))
    o = Outreach(outbox=None, policy=OutreachPolicy(), clock=lambda: BEFORE, partitions=4)
    for _, value in records:
        apply(p, o, 0, ProviderEnvelope.model_validate_json(value))
    return p


def channels_asked_next_time(p) -> list[str]:
    later = ActionEvent.model_validate({**action("rally-2"), "templates": {"sms": {"en": "{action_title} {rsvp_link}"},
                                                                           "email": {"en": {"subject": "s", "body": "b"}}}})
    return [a.channel for a in plan(p.people.get(PK), later, None, set(), BEFORE, OutreachPolicy())]


def test_the_unsubscribe_page_asks_first_and_offers_to_stop_texts_too(env):
    page = env.client.get(env.unsubscribe_url(language="es"))
    assert page.status_code == 200 and '<html lang="es">' in page.text
    assert re.search(r'<input type="checkbox" id="sms" name="sms" value="stop">\s*<label for="sms">Dejar de recibir mensajes de texto también</label>', page.text)
    assert env.written(provider_topic(env.settings)) == []  # a mail scanner opening the link unsubscribes nobody


@pytest.mark.parametrize("kind", ["application/x-www-form-urlencoded",
                                  "Application/X-WWW-Form-Urlencoded; Charset=UTF-8"])  # case-insensitive (RFC 9110 8.3.1; an outside probe: 400)
def test_one_click_unsubscribe_opts_the_person_out_of_email_at_once(env, kind):
    done = env.client.post(env.unsubscribe_url(), content=b"List-Unsubscribe=One-Click",
                           headers={"content-type": kind}, follow_redirects=False)
    assert done.status_code == 200 and "no more emails" in done.text  # a mail client wants a 2xx
    records = env.written(provider_topic(env.settings))
    assert [ProviderEnvelope.model_validate_json(v).event for _, v in records] == [
        EmailEvent(ask_id=EMAIL_ASK, sg_event_id=f"unsubscribe-link:{EMAIL_ASK}", event="unsubscribe")]
    assert {k for k, _ in records} == {PK.encode()}

    p = receipts(env, records)
    assert "email" in p.people.get(PK).opted_out and "sms" not in p.people.get(PK).opted_out
    assert p.asks.get(EMAIL_ASK).opted_out  # counted as an opt-out for the ask's partner
    assert channels_asked_next_time(p) == ["sms"]


def test_the_pages_form_can_stop_texts_too(env):
    done = env.client.post(env.unsubscribe_url(), data={"source": "page", "sms": "stop"}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].startswith("?done=both&")
    events = [ProviderEnvelope.model_validate_json(v).event for _, v in env.written(provider_topic(env.settings))]
    assert [type(e) for e in events] == [EmailEvent, SmsReply] and events[1].keyword == "STOP"
    p = receipts(env, env.written(provider_topic(env.settings)))
    assert set(p.people.get(PK).opted_out) == {"sms", "email"}
    assert channels_asked_next_time(p) == []
    assert "no more emails or text messages" in text(env.client.get(env.unsubscribe_url() + done.headers["location"]).text)
    assert "no more emails or text messages" not in text(env.client.get(env.unsubscribe_url() + "?done=both").text)  # typed, not done


def test_without_the_box_ticked_texts_go_on(env):
    env.client.post(env.unsubscribe_url(), data={"source": "page"})
    events = [ProviderEnvelope.model_validate_json(v).event for _, v in env.written(provider_topic(env.settings))]
    assert [e.event for e in events] == ["unsubscribe"]


def test_unsubscribe_needs_its_own_signed_link(env):
    for url in (f"/unsubscribe/rally-1/{env.token()}", "/unsubscribe/rally-1/AAAA"):
        assert env.client.post(url, content=b"List-Unsubscribe=One-Click", headers={"content-type": "application/x-www-form-urlencoded"}).status_code == 404
    assert env.written(provider_topic(env.settings)) == []


def test_an_unsubscribe_the_broker_did_not_take_is_not_claimed(env):
    env.publisher.down = True
    page = env.client.post(env.unsubscribe_url(), data={"source": "page"})
    assert page.status_code == 503 and "not unsubscribed yet" in page.text


def test_an_unsubscribe_link_does_not_expire(env):
    env.at(STARTS + timedelta(days=400))
    assert env.client.get(env.unsubscribe_url()).status_code == 200


# --- the links every ask carries --------------------------------------------------------------


def planned(language=None):
    person = ana(language=language) if language else ana()
    act = rally(templates={"sms": {"en": "{action_title}: {rsvp_link}"}, "email": {"en": {"subject": "{action_title}", "body": "Join us: {rsvp_link}"}}})
    policy = OutreachPolicy(rsvp_base_url="https://t.example.org/r", unsubscribe_base_url="https://t.example.org/unsubscribe", link_key=b"lk")
    return {a.channel: a for a in plan(person, act, None, set(), BEFORE, policy)}


def test_every_ask_links_to_its_own_rsvp_page_until_hours_after_the_start():
    for channel, ask in planned(language="es").items():
        token = re.search(r"https://t\.example\.org/r/rally-1/([\w-]+)", ask.body).group(1)
        link = links.read(b"lk", "rsvp", "rally-1", token)
        assert (link.ask_id, link.language, link.expires_at) == (ask.ask_id, "es", STARTS + timedelta(hours=3))


def test_every_email_has_a_signed_unsubscribe_link_in_its_footer_and_header():
    email = planned()["email"]
    token = email.unsubscribe_url.removeprefix("https://t.example.org/unsubscribe/rally-1/")
    assert links.read(b"lk", "unsubscribe", "rally-1", token).ask_id == email.ask_id
    assert email.body.endswith(f"Unsubscribe: {email.unsubscribe_url}")
    assert planned(language="es")["email"].body.endswith(f"Cancelar la suscripción: {planned(language='es')['email'].unsubscribe_url}")
    assert planned()["sms"].unsubscribe_url is None


def test_sendgrid_gets_each_emails_one_click_unsubscribe_headers():
    from connectors.providers.email import EmailMessage, SendGridEmail

    sender = SendGridEmail(SecretStr("SG.x"), from_email="t@example.org", unsubscribe_mailto="u@example.org")
    try:
        messages = [EmailMessage(to=f"{n}@example.org", subject="s", text="t", ask_id=f"a:p{n}:email", partner="faith-b",
                                 unsubscribe_url=f"https://t.example.org/unsubscribe/a/tok{n}") for n in range(2)]
        mail = sender.build_mail(messages).get()
    finally:
        sender.close()
    headers = [p["headers"] for p in mail["personalizations"]]
    assert [h["List-Unsubscribe"].split(", ")[1] for h in headers] == [f"<https://t.example.org/unsubscribe/a/tok{n}>" for n in range(2)]
    assert all(h["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click" for h in headers)


def test_a_subject_or_text_that_spells_a_substitution_tag_reaches_each_recipient_as_written():
    # SendGrid substitutes in the subject too: a title "Save 100%text% of care" got the whole email
    # body in its subject, in a request of several messages only (an outside probe).
    from connectors.providers.email import EmailMessage, SendGridEmail
    from connectors.sandbox.sendgrid_api import render

    sender = SendGridEmail(SecretStr("SG.x"), from_email="t@example.org")
    try:
        messages = [EmailMessage(to=f"{n}@example.org", subject=f"Save 100%text% of care / %html% {n}", text=f"Hi %text% {n}",
                                 ask_id=f"a:p{n}:email", partner="faith-b") for n in range(2)]
        mail = sender.build_mail(messages).get()
    finally:
        sender.close()
    [content] = [c["value"] for c in mail["content"] if c["type"] == "text/plain"]
    got = [(render(p["subject"], p["substitutions"]), render(content, p["substitutions"])) for p in mail["personalizations"]]
    assert got == [(f"Save 100%text% of care / %html% {n}", f"Hi %text% {n}") for n in range(2)]


def test_times_are_written_in_the_actions_zone_and_places_as_people_read_them():
    from contracts.events import Location
    from connectors.web.pages.words import language, place, when

    assert when(STARTS, "America/Sao_Paulo", "en") == "Tuesday, December 1, 2026, 11:00 PM UTC-03"
    assert when(STARTS, "Europe/Madrid", "es") == "miércoles, 2 de diciembre de 2026, 3:00 a. m. CET"
    assert place(Location()) == [] and place(Location(locality="Oakland", postal_code="94612")) == ["Oakland, 94612"]
    assert (language("es-MX"), language("fr"), language(None)) == ("es", "en", "en")


def test_a_call_in_day_without_a_place_shows_no_where(env):
    env.book.apply("action", "rally-1", ActionRecord(partner="union-a", action=rally(location={})))
    assert "Where" not in text(env.client.get(env.rsvp_url()).text)


def test_a_post_without_the_one_click_field_unsubscribes_nobody_and_a_multipart_one_click_does(env):
    # RFC 8058: a mail client's one-click POST carries List-Unsubscribe=One-Click. An outside
    # probe unsubscribed someone with an empty POST (anything that posts to a link would).
    for body, kind in ((b"", "application/x-www-form-urlencoded"), (b"anything=else", "application/x-www-form-urlencoded"), (b"{}", "application/json")):
        refused = env.client.post(env.unsubscribe_url(), content=body, headers={"content-type": kind})
        assert refused.status_code == 400 and refused.headers["content-type"].startswith("text/html"), (body, refused.status_code)
    assert env.written(provider_topic(env.settings)) == []
    multipart = env.client.post(env.unsubscribe_url(), files={"List-Unsubscribe": (None, "One-Click")})
    assert multipart.status_code == 200 and "no more emails" in multipart.text
    assert len(env.written(provider_topic(env.settings))) == 1


def test_a_field_given_twice_is_no_answer(env):
    # An outside probe: status=no&status=yes was taken as "yes" (the last one).
    r = env.client.post(env.rsvp_url(), content=b"status=no&status=yes", headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and env.written() == []
