"""What Twilio and SendGrid tell us, as the ingress writes it to the provider topic.

Verified at the ingress (signatures), keyed by person key, with no raw phone or email:
the ingress turns a sender's number or address into a person key before writing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, Union

from pydantic import Field, StringConstraints

from .people import Internal

#: Twilio's error code for a number that replied STOP to the sender (Advanced Opt-Out).
TWILIO_OPTED_OUT = 21610
#: Twilio's error code for a text that waited in its queue past its ValidityPeriod (never sent).
TWILIO_VALIDITY_EXPIRED = 30036
#: The From number's queue already holds ten hours of texts: the request is refused, nothing queued.
TWILIO_QUEUE_FULL = 21611
#: A Messaging Service's queue was full: the text was taken, then failed by callback unsent.
TWILIO_QUEUE_OVERFLOW = 30001

TwilioStatusName = Literal["accepted", "scheduled", "queued", "sending", "sent", "delivered", "undelivered", "failed", "read", "partially_delivered", "canceled",
                          "receiving", "received"]


#: Twilio's error codes: numbers (30005, 21610).
ERROR_CODE = r"^[0-9]{1,6}$"


class SmsStatus(Internal):
    """A Twilio status callback for one of our messages."""

    kind: Literal["sms_status"] = "sms_status"
    ask_id: str
    message_sid: Annotated[str, StringConstraints(max_length=64)]  # Twilio's are 34 characters
    status: TwilioStatusName
    error_code: Annotated[str, StringConstraints(pattern=ERROR_CODE)] | None = None


#: The words a reply may say (``SmsReply.keyword``): Twilio's opt-out and opt-in words, HELP,
#: and an RSVP "yes" in English or Spanish ("SI" as it is typed without the accent).
OPT_OUT_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})
YES_WORDS = frozenset({"YES", "SI", "SÍ"})
KEYWORDS = OPT_OUT_WORDS | OPT_IN_WORDS | HELP_WORDS | YES_WORDS
#: What Twilio's own opt-out handling answers: a text that is one of these words and nothing
#: else (case and surrounding spaces aside); "Stop please" is not.
TWILIO_KEYWORDS = OPT_OUT_WORDS | OPT_IN_WORDS | HELP_WORDS | {"YES"}


class SmsReply(Internal):
    """An inbound SMS from a supporter. Only a keyword is kept: replies are not stored."""

    kind: Literal["sms_reply"] = "sms_reply"
    message_sid: str
    keyword: str = Field(description="The reply's first word, upper-cased, when it is one of the keywords (STOP, YES, SÍ, HELP…); '' for any other text.")
    opt_out_handled_by_twilio: bool = Field(default=True, description="Twilio's Advanced Opt-Out answered it: it is on, and the whole "
                                            "text was one of Twilio's keywords (``TWILIO_KEYWORDS``).")
    sender: str | None = Field(default=None, description="The person key of the number that sent it (a keyed hash): an answer goes "
                               "to that number only, never to another phone of the same person.")
    opt_in_counts: bool = Field(default=True, description="Whether an opt-in word in it (START, UNSTOP, YES) opts the person back in: "
                                "not when the text is more than the keyword (\"Start please\"), which Twilio's opt-out handling "
                                "does not take: it keeps refusing texts to the number.")


#: The SendGrid events turnout reads: those that move an email ask on (to its status), and those
#: that opt its person out. The rest (open, click, …) are skipped where they arrive.
SENDGRID_STATUS = {"processed": "sent", "deferred": "sent", "delivered": "delivered", "bounce": "failed", "dropped": "failed"}
EMAIL_OPT_OUT = frozenset({"unsubscribe", "group_unsubscribe", "spamreport"})


#: The reasons SendGrid gives for the emails it drops itself: its own words, naming nobody.
SENDGRID_DROP_REASONS = frozenset({"Bounced Address", "Invalid", "Unsubscribed Address", "Spam Reporting Address", "Invalid SMTPAPI header",
                                   "Spam Content (if spam checker app enabled)", "Recipient List over Package Quota"})


class EmailEvent(Internal):
    """One SendGrid event webhook event about one of our emails."""

    kind: Literal["email_event"] = "email_event"
    ask_id: str
    sg_event_id: str
    event: str
    sg_message_id: str | None = None
    reason: str | None = Field(default=None, description="SendGrid's reason for a drop, in its own words; for a bounce or a block only "
                                                          "the receiving server's SMTP codes (``550 5.1.1``), never its text (``kept_reason``).")
    bounce_type: str | None = Field(default=None, description="A bounce's ``type``: ``bounce`` (hard: the address does not exist) or ``blocked`` (refused this time).")


class PersonOptOut(Internal):
    """A provider said an identity merged into this person opted out of ``channel`` (an
    unsubscribe, a 21610): forwarded by the receipts agent to the person it was merged into."""

    kind: Literal["person_opt_out"] = "person_opt_out"
    channel: Literal["sms", "email"]


class AskReply(Internal):
    """A YES or STOP that answers a text sent to a record since merged into another (the asks of
    a merged record stay on its own partition): handed back by the survivor to the text's own
    record, whose partition marks the ask and takes a YES as an RSVP for it."""

    kind: Literal["ask_reply"] = "ask_reply"
    ask_id: str
    message_sid: str
    yes: bool = False
    stop: bool = False
    phone: str | None = Field(default=None, description="The person's phone as the people table holds it (sealed): what the RSVP names.")


ProviderEvent = Annotated[Union[SmsStatus, SmsReply, EmailEvent, PersonOptOut, AskReply], Field(discriminator="kind")]


class ProviderEnvelope(Internal):
    version: int = Field(default=1, description="The writer's contract version (internal topics).")
    person_key: str
    received_at: datetime
    event: ProviderEvent
