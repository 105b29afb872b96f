"""What provider callbacks and replies do to asks and people.

Ask states only move forward (sending < sent < delivered | failed), so a duplicate or
late callback changes nothing: dedupe by (MessageSid, status) and by ``sg_event_id`` falls
out of the transition itself. One exception: an email bounce after ``delivered`` (the
receiving server took it, then returned it) fails the ask.

Reply keywords: Twilio's opt-out words opt the person out of SMS coalition-wide; START and
UNSTOP opt them back in; HELP and INFO get the help text. YES is both Twilio's opt-in word
and our RSVP word: from someone opted out it opts them back in (as Twilio does); otherwise it
is an RSVP for their most recent SMS ask, credited to that ask's partner; so is a Spanish
SÍ (or SI), which opts nobody in (Twilio does not take it as an opt-in word).
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable, Iterable, Literal, Mapping

from contracts.asks import AskFact, RecentAsks, SendResult, parse_ask_id
from contracts.facts import ADDRESS_FIELD, Channel, PersonRecord, Undeliverable
from contracts.providers import (EMAIL_OPT_OUT, HELP_WORDS, OPT_IN_WORDS, OPT_OUT_WORDS, SENDGRID_STATUS, TWILIO_OPTED_OUT, YES_WORDS, EmailEvent,
                                 SmsStatus)
from streams.logs import redact

#: The confirmation of a STOP, in the person's language (English unless Spanish, as the texts' footer).
STOP_CONFIRMATION = {"en": "You are unsubscribed. Reply START to opt back in.",
                     "es": "Ya no recibirás mensajes. Responde START para volver a recibirlos."}
Reply = Literal["opt_out", "opt_in", "help", "rsvp", "other"]

#: In doubt is below sent: a queued/sent callback for an ask in doubt proves the provider has it.
_RANK = {"planned": 0, "deferred": 0, "sending": 1, "in_doubt": 1.5, "sent": 2, "delivered": 3, "failed": 3, "cancelled": 3, "expired": 3}
#: What a reply can answer: an ask the provider accepted.
RECEIVED = frozenset({"sent", "delivered"})
_TWILIO = {"accepted": "sent", "scheduled": "sent", "queued": "sent", "sending": "sent", "sent": "sent",
           "delivered": "delivered", "read": "delivered", "partially_delivered": "delivered", "undelivered": "failed", "failed": "failed",
           "canceled": "failed"}
#: SendGrid drops a message to an address on one of its suppression lists: these say the person
#: unsubscribed or reported spam there (an opt-out), or the address bounced before (undeliverable).
DROPPED_OPTED_OUT = frozenset({"Unsubscribed Address", "Spam Reporting Address"})
DROPPED_UNDELIVERABLE = frozenset({"Bounced Address", "Invalid"})
#: Twilio's codes that say the number itself can never take a text: invalid (21211), not a mobile
#: number (21614), unknown (30005), a landline or unreachable carrier (30006). Not 30003 (a
#: handset off or out of range: it comes back), nor the sender's own set-up errors.
NUMBER_UNDELIVERABLE = frozenset({"21211", "21614", "30005", "30006"})


def advance(fact: AskFact, status: str, now: datetime, **details: object) -> AskFact:
    """Move the ask to ``status`` unless it is already as far or further."""
    if _RANK[status] <= _RANK[fact.status]:
        return fact
    if isinstance(details.get("error"), str):
        # A provider's error text may quote the address ("550 <ana@…> rejected"): the fact keeps the rest.
        details["error"] = redact(details["error"])
    return fact.model_copy(update={"status": status, "updated_at": now, **{k: v for k, v in details.items() if v is not None}})


def on_send_result(fact: AskFact, result: SendResult, now: datetime) -> AskFact:
    """The ask after its provider call came back. Callbacks may already have moved it on
    (delivered before the rest of the chunk returned), so this too only moves forward."""
    if result.ok:
        return advance(fact, "sent", now, provider_id=result.provider_id)
    if result.in_doubt:
        return advance(fact, "in_doubt", now, error=result.error)
    return advance(fact, "failed", now, error_code=result.error_code, error=result.error)


def about_its_text(fact: AskFact, message_sid: str) -> bool:
    """Whether a status callback about the text ``message_sid`` is about the text the ask stands
    for now: none while it is deferred (no text of it is out), nor one Twilio dropped
    (``AskFact.dropped``: callbacks come in any order) or another than the one it was handed
    over as (``provider_id``; unknown while it is sending or in doubt)."""
    return fact.status != "deferred" and message_sid not in fact.dropped and fact.provider_id in (None, message_sid)


def on_sms_status(fact: AskFact, cb: SmsStatus, now: datetime) -> AskFact:
    status = _TWILIO.get(cb.status)
    if status is None:
        return fact
    return advance(fact, status, now, provider_id=cb.message_sid, error_code=cb.error_code)


def on_email_event(fact: AskFact, ev: EmailEvent, now: datetime) -> AskFact:
    if ev.event in EMAIL_OPT_OUT:
        return fact if fact.opted_out else fact.model_copy(update={"opted_out": True, "updated_at": now})
    status = SENDGRID_STATUS.get(ev.event)
    if status is None:
        return fact
    if ev.event == "bounce" and fact.status == "delivered":
        fact = fact.model_copy(update={"status": "sent"})  # an asynchronous bounce (module docstring)
    return advance(fact, status, now, error=ev.reason if status == "failed" else None)


def opts_out(ev: SmsStatus | EmailEvent) -> Channel | None:
    """The channel a callback opts its person out of: email for an unsubscribe or spam report,
    SMS for a text Twilio failed because the number replied STOP to the sender (21610)."""
    if isinstance(ev, EmailEvent):
        return "email" if ev.event in EMAIL_OPT_OUT or (ev.event == "dropped" and ev.reason in DROPPED_OPTED_OUT) else None
    return "sms" if _TWILIO.get(ev.status) == "failed" and ev.error_code == str(TWILIO_OPTED_OUT) else None


def undeliverable_code(ev: SmsStatus | EmailEvent) -> str | None:
    """What a callback says can never take a message at its address (Twilio's error code, or
    "bounce" / "dropped"), else ``None``. A bounce of type "blocked" is the receiving server
    refusing this time, not a missing mailbox."""
    if isinstance(ev, SmsStatus):
        return ev.error_code if _TWILIO.get(ev.status) == "failed" and ev.error_code in NUMBER_UNDELIVERABLE else None
    if ev.event == "bounce" and ev.bounce_type in (None, "bounce"):
        return "bounce"
    return "dropped" if ev.event == "dropped" and ev.reason in DROPPED_UNDELIVERABLE else None


def mark_undeliverable(person: PersonRecord, channel: Channel, code: str, at: datetime, sent_at: datetime) -> PersonRecord:
    """``person`` with their address on ``channel`` recorded as undeliverable (``code``), if it is
    the address a message handed over at ``sent_at`` went to: one given after that (a newer
    sign-up) is not condemned by the old one's failure."""
    field = ADDRESS_FIELD[channel]
    given, marked = person.given_at(field), person.undeliverable.get(channel)
    if getattr(person, field) is None or given > sent_at or (marked is not None and marked.given_at == given):
        return person
    return person.model_copy(update={"undeliverable": {**person.undeliverable, channel: Undeliverable(given_at=given, code=code, at=at)}})


def after_refusal(person: PersonRecord, channel: Channel, result: SendResult, planned_at: datetime, now: datetime) -> PersonRecord:
    """``person`` after the provider refused their ask outright (``result``, at ``now``): opted out
    of ``channel`` if the carrier says they said STOP, their number marked undeliverable if it can
    never take a text (its address was read from the record at ``planned_at``), else as they were."""
    if result.opted_out:
        return opt_out(person, channel, now)
    if channel == "sms" and result.error_code in NUMBER_UNDELIVERABLE:
        return mark_undeliverable(person, channel, result.error_code, now, planned_at)
    return person


def reply_kind(keyword: str, person: PersonRecord | None, opt_in_counts: bool = True) -> Reply:
    """What a reply whose first word is ``keyword`` means; an opt-in only when Twilio takes it
    too (``SmsReply.opt_in_counts``), else nothing: Twilio would go on refusing the number."""
    word = keyword.strip().upper()
    if word in OPT_OUT_WORDS:
        return "opt_out"
    if word in OPT_IN_WORDS or (word == "YES" and person is not None and "sms" in person.opted_out):
        return "opt_in" if opt_in_counts else "other"
    if word in HELP_WORDS:
        return "help"
    return "rsvp" if word in YES_WORDS else "other"


def help_texts(en: str | None, es: str | None, coalition: str | None) -> dict[str, str]:
    """The answers to HELP by language: as configured (``TURNOUT_HELP_TEXT``, ``_ES``), else
    naming ``coalition`` (the backbone partner's name): carriers expect the program's own name,
    and a coalition that set none was answered with the demo's."""
    name = coalition or "Coalition"
    return {"en": en or f"{name} alerts. Reply STOP to opt out, START to opt back in.",
            "es": es or f"Alertas de {name}. Responde STOP para no recibir mensajes, START para volver a recibirlos."}


def answer_text(answer: str | None, help_texts: Mapping[str, str], twilio_answered: bool, language: str | None = None) -> str | None:
    """What to text back after a reply was applied (``answer``: "help", "stop" or ``None``):
    to HELP the help text, to STOP a confirmation, each only when Twilio did not send its own
    (``twilio_answered``: ``SmsReply.opt_out_handled_by_twilio``); to anything else nothing.
    In the person's ``language`` when it is Spanish, else in English (``help_texts`` by language)."""
    lang = "es" if (language or "").split("-")[0].lower() == "es" else "en"
    if twilio_answered:
        return None
    if answer == "help":
        return help_texts.get(lang) or help_texts["en"]
    return STOP_CONFIRMATION[lang] if answer == "stop" else None


def opt_out(person: PersonRecord, channel: Channel, at: datetime) -> PersonRecord:
    if channel in person.opted_out:
        return person
    return person.model_copy(update={"opted_out": {**person.opted_out, channel: at}})


def stop_confirmed(before: PersonRecord | None, at: datetime) -> bool:
    """Whether a STOP received ``at`` gets turnout's confirmation (``before``: the person as
    they were when it arrived). Each STOP does, also from someone another way opted out (a
    partner, the unsubscribe page: nobody confirmed those); not one replayed, which opted them
    out itself (at that very time)."""
    return before is None or before.opted_out.get("sms") != at


def stopped(person: PersonRecord | None, person_key: str, channels: Iterable[Channel], at: datetime) -> PersonRecord:
    """The person (or a record that only remembers it: ``known_or_new``) opted out of ``channels``."""
    record = known_or_new(person, person_key, at)
    for channel in channels:
        record = opt_out(record, channel, at)
    return record


def known_or_new(person: PersonRecord | None, person_key: str, at: datetime) -> PersonRecord:
    """The person, or a record with no partner that only remembers what they said: someone
    unknown who says STOP must not be texted when a partner signs them up later."""
    return person or PersonRecord(person_key=person_key, recruited_by="", recruited_at=at, updated_at=at)


def opt_in(person: PersonRecord, channel: Channel) -> PersonRecord:
    return person.model_copy(update={"opted_out": {c: t for c, t in person.opted_out.items() if c != channel}})


def reply_target(recent: RecentAsks | None, person_key: str, fact_of: Callable[[str], AskFact | None], channel: Channel = "sms") -> str | None:
    """What a YES or STOP reply of ``person_key`` answers: of the person's asks on ``channel``
    that the provider accepted (``fact_of(ask_id)`` sent or delivered), the one handed over last
    (its ``marked_at``): a text held for the morning left after an alert planned later but sent
    at night. Planned, deferred, cancelled or failed asks never reached the person. An ask of
    another record of theirs, merged in (its key in the ask id), is taken as received, handed
    over when it was planned, without looking it up: a merge's fold carries only the asks that
    reached the person (``identity.resolve.reaching``), and its fact is on another partition."""
    newest: tuple[datetime, str] | None = None
    for aid, planned in recent.asks if recent else ():
        _, owner, on = parse_ask_id(aid)
        if on != channel:
            continue
        handed = planned
        if owner == person_key:
            if (fact := fact_of(aid)) is None or fact.status not in RECEIVED:
                continue
            handed = fact.marked_at or planned
        if newest is None or handed >= newest[0]:
            newest = (handed, aid)
    return newest[1] if newest else None
