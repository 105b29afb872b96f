"""Settings, read once at start-up from the environment (``TURNOUT_*``, ``KAFKA_BOOTSTRAP_SERVERS``).

Nothing reads the environment at import: commands build ``Settings()`` and hand it on.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    # Empty values (a .env copied from .env.example and only partly filled in) count as unset.
    model_config = SettingsConfigDict(env_prefix="TURNOUT_", frozen=True, extra="ignore", env_ignore_empty=True)

    kafka_bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "TURNOUT_KAFKA_BOOTSTRAP_SERVERS"),
        description="host:port[,host:port]. Unset: `turnout up` starts the embedded broker.",
    )
    broker_flavor: Literal["kafka", "tansu"] = Field(
        default="kafka", description="`tansu` when talking to the embedded broker (enables its workarounds)."
    )
    coalition: Path = Field(default=Path("coalition.toml"), description="The coalition file: partners and secrets.")
    organizer_token: SecretStr | None = None
    person_key_secret: SecretStr | None = Field(default=None, description="Keys the person-key HMAC. Keep it stable.")
    default_region: str = Field(default="US", description="Region for phone numbers without a country code.")

    app_id: str = Field(default="turnout", description="Faust app id: consumer group and changelog topic prefix.")
    topic_prefix: str = Field(default="turnout.", description="Prefix of every topic turnout declares.")
    partitions: int = Field(default=8, ge=1, le=1024)
    replication_factor: int = Field(default=1, ge=1)
    standby_replicas: int = Field(default=1, ge=0, description="Warm copies of each table partition kept by other workers, for fast takeover.")

    events_retention_days: float = Field(default=14, gt=0, description="How long the events topic keeps accepted events (personal data included); facts live on in the compacted fact topics.")
    outreach_retention_days: float = Field(default=7, gt=0, description="How long the targeting, asks and provider-callback topics keep records.")
    dead_letter_retention_days: float = Field(default=30, gt=0, description="How long dead letters are kept for someone to look at them.")

    ack_timeout: float = Field(default=5.0, gt=0, description="Seconds the ingress waits for the broker before 503.")
    max_body_bytes: int = 1024 * 1024
    max_batch: int = 500
    signature_tolerance: int = Field(default=300, description="Seconds a signed timestamp may be off from now.")

    session_timeout: float = 6.0
    heartbeat_interval: float = 1.0
    rebalance_timeout: float = 6.0
    commit_interval: float = 0.5

    web_host: str = "127.0.0.1"
    web_port: int = 8000
    public_url: str = Field(default="http://127.0.0.1:8000", description="Where providers reach the web app (callbacks, signature checks).")
    log_format: Literal["json", "text"] = Field(default="json", description="Logs: one JSON object per line, or text.")
    metrics_port: int = Field(default=0, ge=0, le=65535, description="Workers serve Prometheus /metrics on this port (0: off). The web app serves GET /metrics.")
    session_hours: float = Field(default=12.0, gt=0, description="How long a dashboard sign-in lasts.")
    active_days: int = Field(default=14, ge=0, description="The dashboard header counts actions that started at most this many days ago, or later.")

    # Outreach. No provider credentials: `turnout up` starts the sandbox and points both here.
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from: str | None = Field(default=None, description="Sending number (E.164), unless a Messaging Service is set.")
    twilio_messaging_service_sid: str | None = None
    twilio_base_url: str | None = Field(default=None, description="Only for the sandbox: where the Twilio SDK sends requests.")
    twilio_advanced_opt_out: bool = Field(default=True, description="Twilio answers STOP/START/HELP itself; we do not reply to STOP.")
    sendgrid_api_key: SecretStr | None = None
    sendgrid_from: str = "turnout@example.org"
    sendgrid_base_url: str | None = Field(default=None, description="Only for the sandbox: where the SendGrid SDK sends requests.")
    sendgrid_public_key: str | None = Field(default=None, description="Event Webhook verification key (base64), from SendGrid's settings.")
    sandbox_url: str | None = Field(default=None, description="Set by `turnout up` when it runs the sandbox providers.")
    sandbox_signing_key: SecretStr | None = Field(default=None, description="PEM the sandbox signs SendGrid events with (set by `turnout up`).")
    sandbox_sms_mps: float = Field(default=0.0, ge=0, description="The sandbox's Twilio queue: texts per second each sender lets out (0: no queue, texts leave when accepted).")
    sms_rate: float = Field(default=1.0, ge=0, description="The sender's MPS: texts per second Twilio sends from its queue (a US long code about 1, a short code 100+; 0: no queue). Used to predict queue waits, never to pace.")
    email_rate: float = Field(default=100.0, ge=0, description="Emails per second (0: unlimited).")
    send_concurrency: int = Field(default=16, ge=1, description="SMS requests in flight per worker; asks are marked sending in chunks of this size.")
    provider_timeout: float | None = Field(default=None, gt=0, description="Seconds to wait for Twilio or SendGrid to answer a send (unset: 10 and 15). No answer leaves the ask in doubt.")
    rapid_response_grace_minutes: int = Field(default=120, ge=0, description="A rapid-response action may still be texted this long after it was posted, even once it has started.")
    frequency_cap: int = Field(default=3, ge=0, description="At most this many asks per person …")
    frequency_window_days: int = Field(default=7, ge=1, description="… in this many days, across all partners.")
    quiet_start: str = "21:00"
    quiet_end: str = "09:00"
    sms_footer: str = "Reply YES to RSVP, STOP to opt out"
    help_text: str = "Fair Care Coalition alerts. Reply STOP to opt out, START to opt back in."
    rsvp_base_url: str | None = Field(default=None, description="RSVP links are <this>/<action>/<token> (unset: <public_url>/r, the web app's RSVP page).")
    unsubscribe_url: str | None = Field(default=None, description="Unsubscribe links (List-Unsubscribe and the email footer) are <this>/<action>/<token> (unset: <public_url>/unsubscribe).")
    link_secret: SecretStr | None = Field(default=None, description="Signs supporters' RSVP and unsubscribe links (unset: derived from the person-key secret). Changing it breaks every link sent.")
    rsvp_open_hours: float = Field(default=3.0, ge=0, description="RSVP links keep working this many hours after their action starts.")
    mobilize_base_url: str = Field(default="https://api.mobilize.us", description="Mobilize's API (a fake in tests).")
    mobilize_interval: float = Field(default=60.0, gt=0, description="Seconds between polls of each partner's Mobilize organization.")
    mobilize_rate: float = Field(default=15.0, gt=0, description="Mobilize reads per second (Mobilize allows 15).")
    clock: str = Field(default="system", description="`system`, or `file:PATH` (an ISO time in a file: rehearsals and tests).")

    @property
    def bootstrap(self) -> str:
        if not self.kafka_bootstrap_servers:
            raise RuntimeError("KAFKA_BOOTSTRAP_SERVERS is not set (run `turnout up` to get the embedded broker)")
        return self.kafka_bootstrap_servers

    @property
    def idempotent_producer(self) -> bool:
        # The embedded broker has no InitProducerId; Apache Kafka does.
        return self.broker_flavor == "kafka"

    def person_key_bytes(self) -> bytes:
        if self.person_key_secret is None:
            raise RuntimeError("TURNOUT_PERSON_KEY_SECRET is not set")
        return self.person_key_secret.get_secret_value().encode()

    @property
    def rsvp_links(self) -> str:
        """Where RSVP links point (``<this>/<action>/<token>``)."""
        return (self.rsvp_base_url or self.public_url.rstrip("/") + "/r").rstrip("/")

    @property
    def unsubscribe_links(self) -> str:
        """Where unsubscribe links point (``<this>/<action>/<token>``)."""
        return (self.unsubscribe_url or self.public_url.rstrip("/") + "/unsubscribe").rstrip("/")

    def link_key_bytes(self) -> bytes:
        """The key supporters' links are signed with: its own setting, else derived from the
        person-key secret (so a deployment needs no new secret, and the two never coincide)."""
        if self.link_secret is not None:
            return self.link_secret.get_secret_value().encode()
        return hmac.new(self.person_key_bytes(), b"turnout supporter links", hashlib.sha256).digest()

    @property
    def providers_configured(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token and self.sendgrid_api_key)
