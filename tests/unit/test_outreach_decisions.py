"""The decisions around sending: the last gate, planning, callbacks and replies (no broker)."""

from datetime import datetime, time, timedelta, timezone

from agents.outreach.agents import due_at
from agents.outreach.planning import OutreachPolicy, plan, recent_count, remember
from agents.outreach.quiet_hours import QuietHours
from agents.outreach.receipts import STOP_CONFIRMATION, answer_text, on_email_event, on_send_result, on_sms_status, opt_in, opt_out, reply_kind
from agents.outreach.sending import Cancel, Defer, Orphaned, Send, Skip, gate
from agents.outreach.templates import segments
from contracts.asks import AskCommand, AskFact, RecentAsks, SendResult, ask_id
from contracts.events import ActionEvent
from contracts.facts import PersonRecord
from contracts.people import ConsentRecord
from contracts.providers import EmailEvent, SmsStatus
from tests.factories import action as action_event

NOON = datetime(2026, 11, 24, 20, 0, tzinfo=timezone.utc)   # 12:00 in Oakland
NIGHT = datetime(2026, 11, 25, 6, 30, tzinfo=timezone.utc)  # 22:30 in Oakland
QUIET = QuietHours(time(21), time(9))
PK = "p0123456789abcdef0123456789abcdef"


def person(consent=("sms", "email"), opted_out=()) -> PersonRecord:
    return PersonRecord(person_key=PK, given_name="Ana", phone="+15105550123", email="ana@example.org", postal_code="94607",
                        consent={c: ConsentRecord(granted=True, partner="union-a", at=NOON) for c in consent},
                        opted_out={c: NOON for c in opted_out}, partners=("faith-b", "union-a"),
                        recruited_by="union-a", recruited_at=NOON, updated_at=NOON)


def action(**extra) -> ActionEvent:
    item = action_event("rally-1")
    item["templates"] = {"sms": {"en": "{given_name}: {action_title} {rsvp_link}"},
                         "email": {"en": {"subject": "{action_title}", "body": "Hi {given_name}"}}}
    return ActionEvent.model_validate({**item, **extra})


def sms_ask(**kw) -> AskCommand:
    return AskCommand(ask_id=ask_id("rally-1", PK, "sms"), action_id="rally-1", person_key=PK, channel="sms", partner="union-a",
                      referral="r", to="+15105550123", body="hi", time_zone="America/Los_Angeles", planned_at=NOON, **kw)


def state(status: str) -> AskFact:
    return AskFact(ask_id=ask_id("rally-1", PK, "sms"), action_id="rally-1", person_key=PK, channel="sms",
                   partner="union-a", status=status, updated_at=NOON)


# --- the last gate before a provider -------------------------------------------------

def test_an_ask_already_sending_or_done_is_never_sent_again():
    for status in ("sent", "delivered", "failed", "cancelled", "in_doubt", "expired"):
        assert isinstance(gate(sms_ask(), state(status), person(), NOON, QUIET), Skip)
    assert isinstance(gate(sms_ask(), state("sending"), person(), NOON, QUIET), Orphaned)  # looked up, never blindly resent
    assert isinstance(gate(sms_ask(), state("planned"), person(), NOON, QUIET), Send)


def test_an_opt_out_or_lost_consent_after_planning_cancels_the_ask():
    assert gate(sms_ask(), None, person(opted_out=("sms",)), NOON, QUIET) == Cancel("opted out")
    assert gate(sms_ask(), None, person(consent=("email",)), NOON, QUIET) == Cancel("no consent")
    assert gate(sms_ask(), None, None, NOON, QUIET) == Cancel("person no longer known")


def test_texts_in_quiet_hours_are_deferred_to_the_window_end_and_clip_validity_otherwise():
    decision = gate(sms_ask(), None, person(), NIGHT, QUIET)
    assert decision == Defer(datetime(2026, 11, 25, 17, 0, tzinfo=timezone.utc))  # 09:00 in Oakland
    sent = gate(sms_ask(), None, person(), NOON, QUIET)
    assert sent == Send(validity_period=9 * 3600)  # until 21:00 local
    assert gate(sms_ask(quiet_hours_apply=False), None, person(), NIGHT, QUIET) == Send(validity_period=36000)  # Twilio's maximum


def test_a_deferred_ask_as_stored_is_due_from_its_send_after_on():
    nine = datetime(2026, 11, 25, 17, 0, tzinfo=timezone.utc)
    stored = sms_ask(send_after=nine).model_dump(mode="json")
    assert due_at(stored, nine - timedelta(seconds=1)) is None
    assert due_at(stored, nine) == nine and due_at(stored, nine + timedelta(hours=1)) == nine
    assert due_at(sms_ask().model_dump(mode="json"), nine) is None and due_at(None, nine) is None


# --- planning ----------------------------------------------------------------------

def test_planning_gives_one_ask_per_channel_credited_to_the_recruiter_and_skips_what_was_sent():
    asks = plan(person(), action(), None, set(), NOON, OutreachPolicy())
    assert [(a.channel, a.partner) for a in asks] == [("sms", "union-a"), ("email", "union-a")]
    # Sent on behalf of the credited sponsor: its id, when the worker has no name for it.
    assert asks[0].body.startswith("union-a: Ana: Rally for fair funding") and asks[0].body.endswith("Reply YES to RSVP, STOP to opt out")
    assert plan(person(), action(), None, {asks[0].ask_id}, NOON, OutreachPolicy())[0].channel == "email"


def test_every_message_names_the_sponsor_it_is_sent_on_behalf_of():
    named = OutreachPolicy(sponsor_names={"union-a": "Union Local 1"})
    text, email = plan(person(), action(), None, set(), NOON, named)
    assert text.body.startswith("Union Local 1: Ana: Rally for fair funding")
    assert "\n-- \nSent on behalf of Union Local 1.\n" in email.body
    # A template that names the sponsor itself gets no second mention.
    own = action(templates={"sms": {"en": "{sponsor} asks: {action_title}"},
                            "email": {"en": {"subject": "{action_title}", "body": "From {sponsor}: {action_title}"}}})
    text, email = plan(person(), own, None, set(), NOON, named)
    assert text.body.startswith("Union Local 1 asks: Rally") and text.body.count("Union Local 1") == 1
    assert email.body.startswith("From Union Local 1: Rally") and "Sent on behalf of" not in email.body


def test_the_time_is_written_in_the_language_of_the_template_a_person_gets():
    both = action(templates={"sms": {"en": "{local_time}", "es": "{local_time}"},
                             "email": {"es": {"subject": "{local_time}", "body": "{local_time}"}}})
    spanish = person().model_copy(update={"language": "es-MX"})  # the "es" templates are theirs
    text, email = plan(spanish, both, None, set(), NOON, OutreachPolicy())
    when = "mar 1 dic, 6:00 p. m. PST"
    assert text.body.startswith(f"union-a: {when}\n") and email.subject == when and email.body.startswith(when)
    english_only = action(templates={"sms": {"en": "{local_time}"}})
    (text,) = plan(spanish, english_only, None, set(), NOON, OutreachPolicy())  # no Spanish template: English, date too
    assert text.body.startswith("union-a: Tue Dec 1, 6:00 PM PST\n")


def test_a_text_to_a_spanish_speaker_says_how_to_rsvp_and_stop_in_spanish():
    """Like an email's closing lines, the SMS footer is in the person's language, whichever
    template they get (an English one when the action has no Spanish text)."""
    both = action(templates={"sms": {"en": "Rally", "es": "Marcha"}, "email": {"en": {"subject": "Rally", "body": "Rally"}}})
    spanish = person().model_copy(update={"language": "es-MX"})
    text, email = plan(spanish, both, None, set(), NOON, OutreachPolicy())
    assert text.body == "union-a: Marcha\nResponde SI para confirmar, STOP para no recibir mensajes"
    assert segments(text.body)[0] == "GSM-7"  # the footer alone never makes a text UCS-2
    assert "Enviado en nombre de union-a." in email.body and "Cancelar la suscripción:" in email.body
    (english_template,) = plan(spanish, action(templates={"sms": {"en": "Rally"}}), None, set(), NOON, OutreachPolicy())
    assert english_template.body == "union-a: Rally\nResponde SI para confirmar, STOP para no recibir mensajes"
    own = OutreachPolicy(footer="Text STOP to quit", footer_es="Manda STOP para salir")
    (english,) = plan(person(), action(templates={"sms": {"en": "Rally", "es": "Marcha"}}), None, set(), NOON, own)
    (theirs,) = plan(spanish, action(templates={"sms": {"en": "Rally", "es": "Marcha"}}), None, set(), NOON, own)
    assert english.body.endswith("\nText STOP to quit") and theirs.body.endswith("\nManda STOP para salir")


def test_someone_who_gave_no_name_is_greeted_in_the_language_of_their_template():
    hello = action(templates={"sms": {"en": "Hi {given_name}", "es": "Hola {given_name}"},
                              "email": {"es": {"subject": "Hola {given_name}", "body": "Hola {given_name}"}}})
    nameless = person().model_copy(update={"given_name": " ", "language": "es-MX"})
    text, email = plan(nameless, hello, None, set(), NOON, OutreachPolicy())
    assert text.body.startswith("union-a: Hola amigo/a\n") and email.subject == "Hola amigo/a"  # not "Hola friend"
    english = plan(nameless.model_copy(update={"language": "en"}), hello, None, set(), NOON, OutreachPolicy())[0]
    assert english.body.startswith("union-a: Hi friend\n")


def test_an_action_in_spanish_only_reaches_english_speakers_in_spanish_rather_than_no_one():
    (text,) = plan(person(), action(templates={"sms": {"es": "Marcha {local_time}"}}), None, set(), NOON, OutreachPolicy())
    assert text.body == "union-a: Marcha mar 1 dic, 6:00 p. m. PST\nReply YES to RSVP, STOP to opt out"


def test_planning_again_for_the_same_action_does_not_count_against_the_cap():
    recent = None
    for a in plan(person(), action(), None, set(), NOON, OutreachPolicy(cap=2)):
        recent = remember(recent, a.ask_id, NOON, timedelta(days=7))
    assert recent_count(recent, NOON, timedelta(days=7)) == 2
    assert recent_count(recent, NOON, timedelta(days=7), exclude_action="rally-1") == 0
    assert len(plan(person(), action(), recent, set(), NOON, OutreachPolicy(cap=2))) == 2
    other = action(action_id="rally-2")
    assert plan(person(), other, recent, set(), NOON, OutreachPolicy(cap=2)) == []


def test_an_action_posted_again_adds_no_ask_beyond_the_cap():
    """An outside probe: asked by SMS and email for rally-0 and by email only for rally-1 (opted
    out of texts then), Rae texted YES, and the organizer posted rally-1 again: a fourth ask in
    a week, against a cap of 3. This action's own email had taken no room."""
    window = timedelta(days=7)
    recent = None
    for aid in (ask_id("rally-0", PK, "sms"), ask_id("rally-0", PK, "email"), ask_id("rally-1", PK, "email")):
        recent = remember(recent, aid, NOON, window)
    assert plan(person(), action(), recent, {ask_id("rally-1", PK, "email")}, NOON, OutreachPolicy(cap=3)) == []
    # Under the cap, the channel it has not asked on yet is asked.
    assert [a.channel for a in plan(person(), action(), recent, {ask_id("rally-1", PK, "email")}, NOON, OutreachPolicy(cap=4))] == ["sms"]
    # Planning again what was planned and not yet handed over keeps it (a worker that stopped).
    assert [a.channel for a in plan(person(), action(), recent, set(), NOON, OutreachPolicy(cap=3))] == ["email"]


def test_quiet_hours_are_skipped_only_when_the_action_overrides_them():
    assert plan(person(), action(), None, set(), NIGHT, OutreachPolicy())[0].send_after is not None
    assert plan(person(), action(override_quiet_hours=True), None, set(), NIGHT, OutreachPolicy())[0].send_after is None


# --- callbacks and replies ---------------------------------------------------------

def test_ask_states_only_move_forward_whatever_order_callbacks_arrive_in():
    delivered = on_sms_status(state("sending"), SmsStatus(ask_id="x", message_sid="SM1", status="delivered"), NOON)
    assert delivered.status == "delivered"
    assert on_sms_status(delivered, SmsStatus(ask_id="x", message_sid="SM1", status="sent"), NOON) == delivered
    assert on_send_result(delivered, SendResult(ask_id="x", provider_id="SM1"), NOON) == delivered
    failed = on_sms_status(state("sent"), SmsStatus(ask_id="x", message_sid="SM1", status="undelivered", error_code="30006"), NOON)
    assert (failed.status, failed.error_code) == ("failed", "30006")
    assert on_sms_status(state("sent"), SmsStatus(ask_id="x", message_sid="SM1", status="partially_delivered"), NOON).status == "delivered"


def test_send_results_become_sent_in_doubt_or_failed():
    sending = state("sending")
    assert on_send_result(sending, SendResult(ask_id="x", provider_id="SM1"), NOON).status == "sent"
    assert on_send_result(sending, SendResult(ask_id="x", in_doubt=True), NOON).status == "in_doubt"
    failed = on_send_result(sending, SendResult(ask_id="x", error_code="21211"), NOON)
    assert (failed.status, failed.error_code) == ("failed", "21211")


def test_email_unsubscribes_flag_the_ask_and_bounces_fail_it():
    ev = dict(ask_id="x", sg_event_id="e1")
    assert on_email_event(state("sent"), EmailEvent(**ev, event="unsubscribe"), NOON).opted_out
    assert on_email_event(state("sent"), EmailEvent(**ev, event="bounce", reason="550"), NOON).status == "failed"
    assert on_email_event(state("sent"), EmailEvent(**ev, event="open"), NOON) == state("sent")


def test_a_bounce_after_delivered_fails_the_email_once():
    # An asynchronous bounce: the receiving server accepted the email (delivered), then returned it.
    # The ask stayed "delivered" and the tallies counted an email nobody got.
    ev = dict(ask_id="x", sg_event_id="e2")
    bounced = on_email_event(state("delivered"), EmailEvent(**ev, event="bounce", reason="550 <ana@example.org> no such user"), NOON)
    assert (bounced.status, bounced.updated_at) == ("failed", NOON) and "ana@example.org" not in bounced.error
    assert on_email_event(bounced, EmailEvent(**ev, event="bounce", reason="550"), NOON) is bounced  # again: nothing
    assert on_email_event(bounced, EmailEvent(ask_id="x", sg_event_id="e3", event="delivered"), NOON) is bounced
    assert on_email_event(state("delivered"), EmailEvent(**ev, event="dropped"), NOON) == state("delivered")


def test_which_callbacks_opt_a_person_out():
    from agents.outreach.receipts import opts_out

    assert opts_out(EmailEvent(ask_id="x", sg_event_id="e1", event="spamreport")) == "email"
    assert opts_out(EmailEvent(ask_id="x", sg_event_id="e1", event="bounce")) is None
    assert opts_out(SmsStatus(ask_id="x", message_sid="SM1", status="failed", error_code="21610")) == "sms"
    assert opts_out(SmsStatus(ask_id="x", message_sid="SM1", status="undelivered", error_code="30006")) is None
    assert opts_out(SmsStatus(ask_id="x", message_sid="SM1", status="delivered")) is None


def test_reply_keywords():
    assert [reply_kind(w, person()) for w in ("stop", "STOPALL", "start", "HELP", "yes", "maybe")] == ["opt_out", "opt_out", "opt_in", "help", "rsvp", "other"]
    assert reply_kind("YES", person(opted_out=("sms",))) == "opt_in"  # as at Twilio
    assert [reply_kind(w, person()) for w in ("SÍ", "si")] == ["rsvp", "rsvp"]  # Spanish yes; opting in stays Twilio's words
    assert reply_kind("SI", person(opted_out=("sms",))) == "rsvp"
    assert opt_in(opt_out(person(), "sms", NOON), "sms").opted_out == {}


def test_an_opt_in_twilio_does_not_take_opts_nobody_back_in():
    """An outside probe: "Start please" opted the person back in here while Twilio's Advanced
    Opt-Out, which takes a keyword only as the whole text, kept blocking the number; the next
    alert failed 21610. An opt-in word Twilio did not take (``SmsReply.opt_in_counts``) changes nothing."""
    out = person(opted_out=("sms",))
    assert [reply_kind(w, out, opt_in_counts=False) for w in ("START", "UNSTOP", "YES")] == ["other"] * 3
    assert [reply_kind(w, person(), opt_in_counts=False) for w in ("YES", "STOP", "HELP")] == ["rsvp", "opt_out", "help"]


def test_help_is_answered_and_stop_only_when_twilio_does_not_confirm_it():
    helps = {"en": "Fair Care alerts", "es": "Alertas de Fair Care"}
    # Twilio's Advanced Opt-Out answers HELP alone as it answers STOP alone: a second help text was
    # one too many (an outside probe). "Info?" or "help please" is no keyword to Twilio: ours.
    assert answer_text("help", helps, twilio_answered=True) is None
    assert answer_text("help", helps, twilio_answered=False) == "Fair Care alerts"
    assert answer_text("stop", helps, twilio_answered=True) is None
    assert answer_text("stop", helps, twilio_answered=False) == STOP_CONFIRMATION["en"]
    assert answer_text(None, helps, twilio_answered=False) is None
    # In the person's language, as their texts' footer and their pages are (an outside probe: a
    # Spanish speaker's STOP was confirmed in English).
    assert answer_text("stop", helps, twilio_answered=False, language="es-MX") == STOP_CONFIRMATION["es"]
    assert answer_text("help", helps, twilio_answered=False, language="es") == "Alertas de Fair Care"
    assert answer_text("help", helps, twilio_answered=False, language="fr") == "Fair Care alerts"


def test_a_stop_from_someone_unknown_survives_their_later_signup():
    from agents.people import merge_person
    from agents.outreach.receipts import known_or_new
    from contracts.events import SignupEvent
    from tests.factories import signup

    remembered = opt_out(known_or_new(None, PK, NOON), "sms", NOON)
    later = SignupEvent.model_validate(signup("s1", phone="+15105550123", at="2026-11-25T10:00:00Z"))
    person_ = merge_person(remembered, later, "faith-b", PK)
    assert person_.recruited_by == "faith-b" and "sms" in person_.opted_out


def pipeline_with(*facts):
    """The real tables in memory (tests/fakes.py), holding Ana and ``facts`` (table, key, fact)."""
    from tests.fakes import memory_pipeline

    p = memory_pipeline()
    p.people.put(0, PK, person())
    for table, key, fact in facts:
        getattr(p, table).put(0, key, fact)
    return p


def outreach():
    from agents.outreach.agents import Outreach

    return Outreach(outbox=None, policy=OutreachPolicy(), clock=lambda: NOON, partitions=4)


def writes(table) -> int:
    return len(table.table.changelog)


def test_a_text_failed_by_the_carrier_as_opted_out_is_dead_lettered_once_and_opts_the_person_out():
    from agents.outreach.callbacks import apply
    from contracts.providers import ProviderEnvelope
    from tests.fakes import dead_letters

    aid = ask_id("rally-1", PK, "sms")
    p = pipeline_with(("asks", aid, state("sent")))
    before = writes(p.asks), writes(p.people)
    callback = ProviderEnvelope(person_key=PK, received_at=NOON, event=SmsStatus(ask_id=aid, message_sid="SM1", status="failed", error_code="21610"))
    apply(p, outreach(), 0, callback)
    apply(p, outreach(), 0, callback)  # a replay
    assert (p.asks.get(aid).status, p.asks.get(aid).error_code) == ("failed", "21610")
    assert "sms" in p.people.get(PK).opted_out
    assert [(d["key"], d["reason"], d.get("code")) for d in dead_letters(p)] == [(aid, "provider reported the text failed", "21610")]
    assert (writes(p.asks) - before[0], writes(p.people) - before[1]) == (1, 1)  # the replay wrote nothing


def test_stop_asks_for_a_confirmation_once_not_again_when_replayed():
    from agents.outreach.callbacks import apply
    from contracts.providers import ProviderEnvelope, SmsReply

    p = with_a_sent_text()
    before = writes(p.asks), writes(p.people)
    stop = ProviderEnvelope(person_key=PK, received_at=NOON, event=SmsReply(message_sid="SM9", keyword="STOP"))
    assert [apply(p, outreach(), 0, stop), apply(p, outreach(), 0, stop)] == ["stop", None]
    assert "sms" in p.people.get(PK).opted_out
    assert p.asks.get(ask_id("rally-1", PK, "sms")).opted_out  # the text it answered is flagged
    assert (writes(p.asks) - before[0], writes(p.people) - before[1]) == (1, 1)  # the replay wrote nothing


def test_a_stop_from_someone_opted_out_another_way_is_confirmed_all_the_same():
    # Opted out by a partner's opt_out or the unsubscribe page, they had no confirmation; their
    # "Stop please" (no keyword to Twilio) got none either (an outside probe).
    from datetime import timedelta

    from agents.outreach.callbacks import apply
    from agents.outreach.receipts import opt_out
    from contracts.providers import ProviderEnvelope, SmsReply

    p = with_a_sent_text()
    p.people.put(0, PK, opt_out(p.people.get(PK), "sms", NOON - timedelta(hours=1)))
    stop = ProviderEnvelope(person_key=PK, received_at=NOON, event=SmsReply(message_sid="SM9", keyword="STOP"))
    assert apply(p, outreach(), 0, stop) == "stop"


def test_yes_flags_the_text_it_answers_and_rsvps_for_its_action_once():
    from agents.outreach.callbacks import apply
    from contracts.providers import ProviderEnvelope, SmsReply

    p = with_a_sent_text()
    before = writes(p.asks)
    yes = ProviderEnvelope(person_key=PK, received_at=NOON, event=SmsReply(message_sid="SM9", keyword="YES"))
    apply(p, outreach(), 0, yes)
    apply(p, outreach(), 0, yes)  # a replay
    assert p.asks.get(ask_id("rally-1", PK, "sms")).replied_yes
    [(_, _, attendance)] = p.attendance.table.changelog
    assert (attendance["action_id"], attendance["rsvp"], attendance["rsvp_by"]) == ("rally-1", "yes", "union-a")
    assert writes(p.asks) - before == 1


def with_a_sent_text():
    """Ana, texted for rally-1 (her most recent ask)."""
    aid = ask_id("rally-1", PK, "sms")
    return pipeline_with(("asks", aid, state("sent")), ("recent_asks", PK, RecentAsks(asks=((aid, NOON),))))


def test_a_text_a_full_messaging_service_queue_dropped_30001_is_tried_again_later_not_failed():
    """Behind a Messaging Service, Twilio takes a text and fails it by callback with 30001 when
    the queue is full: nothing was sent and the number is fine, as with a From number's 21611."""
    from agents.outreach.callbacks import apply
    from contracts.facts import ActionRecord
    from contracts.providers import ProviderEnvelope

    aid = ask_id("rally-1", PK, "sms")
    p = pipeline_with(("asks", aid, state("sent").model_copy(update={"provider_id": "SM1"})),
                      ("actions", "rally-1", ActionRecord(partner="union-a", action=action())))
    overflow = SmsStatus(ask_id=aid, message_sid="SM1", status="failed", error_code="30001")
    apply(p, outreach(), 0, ProviderEnvelope(person_key=PK, received_at=NOON, event=overflow))
    fact = p.asks.get(aid)
    assert (fact.status, fact.deferred_until) == ("deferred", NOON + timedelta(minutes=15))
    assert p.deferred.get(aid) is not None


def test_a_validity_expiry_of_an_earlier_text_of_the_ask_changes_nothing():
    """A 30036 re-defers the ask it expired; a duplicate of it that comes after the ask was
    texted again (another MessageSid) must not take the new text for expired, nor send a third."""
    from agents.outreach.callbacks import apply
    from contracts.providers import ProviderEnvelope

    aid = ask_id("rally-1", PK, "sms")
    p = pipeline_with(("asks", aid, state("sent").model_copy(update={"provider_id": "SM2"})))
    expired = lambda sid: ProviderEnvelope(person_key=PK, received_at=NOON, event=SmsStatus(ask_id=aid, message_sid=sid, status="failed", error_code="30036"))  # noqa: E731
    apply(p, outreach(), 0, expired("SM1"))
    assert (p.asks.get(aid).status, p.asks.get(aid).provider_id, p.deferred.get(aid)) == ("sent", "SM2", None)
    apply(p, outreach(), 0, expired("SM2"))  # its own text's expiry still counts (no action left here: expired)
    assert (p.asks.get(aid).status, p.asks.get(aid).error_code) == ("expired", "30036")


def test_a_reply_delivered_again_is_applied_and_answered_once():
    """Twilio retries a webhook it had no answer to, and a captured signed request can be posted
    again: the same MessageSid, received later. It is the same reply (an outside probe: a replayed
    "Stop please" was confirmed three times, a "Help?" answered twice)."""
    from agents.outreach.callbacks import apply
    from contracts.providers import ProviderEnvelope, SmsReply

    p = with_a_sent_text()
    reply = lambda sid, keyword, minutes: ProviderEnvelope(person_key=PK, received_at=NOON + timedelta(minutes=minutes),  # noqa: E731
                                                           event=SmsReply(message_sid=sid, keyword=keyword))
    assert [apply(p, outreach(), 0, reply("SM7", "HELP", 0)), apply(p, outreach(), 0, reply("SM7", "HELP", 1))] == ["help", None]
    assert apply(p, outreach(), 0, reply("SM8", "HELP", 2)) == "help"  # another HELP is answered
    assert [apply(p, outreach(), 0, reply("SM9", "STOP", 3)), apply(p, outreach(), 0, reply("SM9", "STOP", 4))] == ["stop", None]
    assert p.people.get(PK).opted_out["sms"] == NOON + timedelta(minutes=3)
    assert apply(p, outreach(), 0, reply("SM9", "START", 5)) is None and "sms" in p.people.get(PK).opted_out  # the sid is STOP's


def test_a_status_callback_about_a_text_twilio_dropped_does_not_move_the_ask_texted_again():
    """Callbacks may come in any order: a "queued" of a text after its 30036 re-deferred the ask,
    or of the first text after the ask was texted again, is not about the text the ask stands
    for (an outside probe: the deferred ask became "sent", and was never texted again)."""
    from agents.outreach.callbacks import apply
    from contracts.facts import ActionRecord
    from contracts.providers import ProviderEnvelope

    aid = ask_id("rally-1", PK, "sms")
    p = pipeline_with(("asks", aid, state("sent").model_copy(update={"provider_id": "SM1"})),
                      ("actions", "rally-1", ActionRecord(partner="union-a", action=action())))
    status = lambda sid, name, code=None: ProviderEnvelope(person_key=PK, received_at=NOON,  # noqa: E731
                                                           event=SmsStatus(ask_id=aid, message_sid=sid, status=name, error_code=code))
    apply(p, outreach(), 0, status("SM1", "failed", "30036"))
    assert p.asks.get(aid).status == "deferred"
    for late in (status("SM1", "queued"), status("SM1", "delivered"), status("SM5", "sent")):  # none of them is out now
        apply(p, outreach(), 0, late)
        assert (p.asks.get(aid).status, p.deferred.get(aid) is not None) == ("deferred", True)
    # Texted again: SM2. The first text's callbacks, however late, are not about it.
    p.asks.put(0, aid, p.asks.get(aid).model_copy(update={"status": "sent", "provider_id": "SM2"}))
    apply(p, outreach(), 0, status("SM1", "delivered"))
    apply(p, outreach(), 0, status("SM9", "undelivered", "30003"))  # no text of this ask's
    fact = p.asks.get(aid)
    assert (fact.status, fact.provider_id) == ("sent", "SM2") and "sms" not in p.people.get(PK).undeliverable
    apply(p, outreach(), 0, status("SM2", "delivered"))
    assert p.asks.get(aid).status == "delivered"


def test_a_reply_to_a_text_sent_to_a_record_merged_since_is_credited_to_that_text():
    """An outside probe: Sol was texted as a phone-only record; a sign-up then showed the phone
    is Sol's, known by email, and the phone's record was merged into the email's. Sol's YES (read
    on the survivor, where the replies of the merged record go) found no ask of the survivor's own
    and was dropped: no RSVP, and a STOP left the text unflagged. The text's ask stays on the
    merged record's partition, so the survivor hands the answer back there."""
    import json

    from agents.outreach.callbacks import apply
    from contracts.facts import ActionRecord
    from contracts.providers import ProviderEnvelope, SmsReply

    survivor, aid = "p" + "1" * 32, ask_id("rally-1", PK, "sms")
    for keyword, flag in (("YES", "replied_yes"), ("STOP", "opted_out")):
        p = pipeline_with(("asks", aid, state("delivered")), ("actions", "rally-1", ActionRecord(partner="union-a", action=action())),
                          ("people", survivor, person().model_copy(update={"person_key": survivor})),
                          ("recent_asks", survivor, RecentAsks(asks=((aid, NOON),))))  # came with the merge's fold
        reply = ProviderEnvelope(person_key=survivor, received_at=NOON, event=SmsReply(message_sid="SM5", keyword=keyword))
        apply(p, outreach(), 1, reply)
        [(key, value, _)] = p.provider.sent  # handed back to the text's own record
        assert key == PK and not getattr(p.asks.get(aid), flag)
        apply(p, outreach(), 0, ProviderEnvelope.model_validate_json(value))
        assert getattr(p.asks.get(aid), flag)
        rsvps = [v for _, k, v in p.attendance.table.changelog if v and v["action_id"] == "rally-1"]
        assert [(r["person_key"], r["rsvp"], r["rsvp_by"]) for r in rsvps] == ([(PK, "yes", "union-a")] if keyword == "YES" else [])
        assert json.loads(value)["event"]["kind"] == "ask_reply"


def test_the_help_text_names_the_coalition_as_its_file_does_unless_one_is_configured(tmp_path):
    """A coalition that set no TURNOUT_HELP_TEXT answered HELP with the demo's name, "Fair Care
    Coalition alerts": carriers expect the program's own."""
    from agents.outreach.receipts import help_texts
    from streams.coalition import CoalitionFile, add_partner, backbone_name

    file = CoalitionFile(tmp_path / "coalition.toml")
    assert backbone_name(file) is None and help_texts(None, None, None)["en"] == "Coalition alerts. Reply STOP to opt out, START to opt back in."
    add_partner(tmp_path / "coalition.toml", "tenants", "Tenants Union", "community", "member")
    add_partner(tmp_path / "coalition.toml", "hub", "Bay Area Renters Coalition", "community", "backbone")
    assert help_texts(None, None, backbone_name(file)) == {
        "en": "Bay Area Renters Coalition alerts. Reply STOP to opt out, START to opt back in.",
        "es": "Alertas de Bay Area Renters Coalition. Responde STOP para no recibir mensajes, START para volver a recibirlos."}
    assert help_texts("Ours. Call 510-555-0100.", None, "X")["en"] == "Ours. Call 510-555-0100."
