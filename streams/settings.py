"""Settings, read once at start-up from the environment (``TURNOUT_*``, ``KAFKA_BOOTSTRAP_SERVERS``).

Nothing reads the environment at import: commands build ``Settings()`` and hand it on.
"""

from __future__ import annotations

import difflib
import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import time
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, AliasChoices, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.zones import known_zone

from .clock import from_setting


def doc(default: str) -> dict[str, str]:
    """What the README's configuration table says for a default the field alone cannot show."""
    return {"doc_default": default}


def _zone(name: str | None) -> str | None:
    if name is not None and not known_zone(name):
        raise ValueError(f"{name[:64]!r} is not an IANA time zone (e.g. America/Los_Angeles)")
    return name


def _clock_time(value: str) -> str:
    # Read as the outreach agents read it (time.fromisoformat), so a bad value stops the command
    # that reads the settings, naming the variable, instead of crashing a worker later.
    try:
        at = time.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value[:64]!r} is not a time of day (HH:MM, 00:00 to 23:59)") from None
    if at.tzinfo is not None:
        raise ValueError(f"{value[:64]!r} is not a time of day (HH:MM, 00:00 to 23:59): quiet hours are each recipient's own local time, with no offset")
    return value


def _sender(value: str | None) -> str | None:
    # Twilio's From for texts people can answer (STOP, YES): a number in E.164 or a short code.
    if value is not None and not re.fullmatch(r"\+[1-9]\d{6,14}|\d{5,6}", value):
        raise ValueError(f"{value[:64]!r} is not a sending number: E.164 (+15105550123) or a short code (5 or 6 digits)")
    return value


def _verification_key(value: str | None) -> str | None:
    # Checked here: a key the webhook cannot load refuses every SendGrid event, 403 after 403.
    if value is not None:
        from sendgrid.helpers.eventwebhook import EventWebhook

        try:
            EventWebhook(value)
        except (ValueError, TypeError):
            raise ValueError(f"{value[:64]!r} is not a SendGrid Event Webhook verification key "
                             "(the base64 public key SendGrid's Event Webhook settings show)") from None
    return value


#: Fewer characters guard people's data too little (README: Erasure on request).
MASTER_KEY_LENGTH = 16


def _master_key(value: SecretStr | None) -> SecretStr | None:
    if value is not None and (n := len(value.get_secret_value().strip())) < MASTER_KEY_LENGTH:
        raise ValueError(f"{n} characters, fewer than {MASTER_KEY_LENGTH}: use a long random string "
                         "(python -c 'import secrets; print(secrets.token_urlsafe(32))'); a key in use already stays "
                         "readable as one of TURNOUT_PREVIOUS_MASTER_KEYS until `turnout keys rewrap` (README: rotating the master key)")
    return value


def _region(code: str) -> str:
    # Checked here, not at each phone number: an unknown region would refuse every national number.
    import phonenumbers

    if code.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{code[:64]!r} is not a region code (two letters, as in US, CA or GB)")
    return code.upper()


def web_address(url: str | None) -> str | None:
    # Links sent to partners and supporters start with it: "notaurl/v1/…" would reach nobody.
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url[:64]!r} is not a web address (http:// or https://, then a host)")
    return url


WebAddress = Annotated[str, AfterValidator(web_address)]


def _clock(value: str) -> str:
    try:
        from_setting(value)  # the setting's one reader decides what it can read (the file is read at use)
    except ValueError:
        raise ValueError(f"{value[:64]!r} is neither 'system' nor 'file:PATH'") from None
    return value


class Settings(BaseSettings):
    # Empty values (a .env copied from .env.example and only partly filled in) count as unset.
    # No infinite or NaN number: a timeout of "inf" would never come.
    model_config = SettingsConfigDict(env_prefix="TURNOUT_", frozen=True, extra="ignore", env_ignore_empty=True, allow_inf_nan=False)

    kafka_bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "TURNOUT_KAFKA_BOOTSTRAP_SERVERS"),
        description="`host:port[,host:port]` of the Kafka cluster.",
        json_schema_extra=doc("unset: `turnout up` starts the embedded broker; other commands use the running `turnout up`'s"),
    )
    broker_flavor: Literal["kafka", "tansu"] = Field(
        default="kafka", description="`tansu` for the embedded broker (set by `turnout up`): no idempotent producer, end-offset workaround."
    )
    coalition: Path = Field(default=Path("coalition.toml"), description="The coalition file: partners and their secrets (relative to where a command runs; `turnout up --demo` uses its own).")
    organizer_token: SecretStr | None = Field(default=None, description="Bearer token for the tally API, the exports and the CLI (not a dashboard sign-in: see Dashboard accounts).", json_schema_extra=doc("generated by `turnout up`"))
    person_key_secret: SecretStr | None = Field(default=None, description="Keys person hashes (HMAC); must stay stable for a real deployment.",
                                                json_schema_extra=doc("generated by `turnout up` with the embedded broker only"))
    master_key: Annotated[SecretStr | None, AfterValidator(_master_key)] = Field(default=None, description="The coalition's master key (any long random string, 16 characters or more): wraps every person's data key, which seals their name, phone, email and postal code in every topic and table. Without it nothing sealed can be read: keep it like a database password (README: Erasure, rotating the master key).",
                                         json_schema_extra=doc("generated by `turnout up` with the embedded broker only"))
    previous_master_keys: SecretStr | None = Field(default=None, description="Comma-separated master keys a rotation replaced: data keys they wrapped are still read, until `turnout keys rewrap` has wrapped them all with `TURNOUT_MASTER_KEY`.")
    default_region: Annotated[str, AfterValidator(_region)] = Field(default="US", description="Region for phone numbers without a country code.")

    app_id: str = Field(default="turnout", description="Faust app id: consumer group and changelog topic prefix.")
    topic_prefix: str = Field(default="turnout.", description="Prefix of every topic turnout declares.")
    partitions: int = Field(default=8, ge=1, le=1024, description="Partitions of the events topic and tables: the ceiling on worker parallelism (choose before the first start).")
    replication_factor: int = Field(default=1, ge=1, description="Replication of every topic turnout creates (3 or more: with `min.insync.replicas=2`).")
    standby_replicas: int = Field(default=0, ge=0, description="Copies of each table partition kept by other workers (Faust standbys). 0: tables live in memory, and a worker taking over a partition replays its changelog from the start with or without one (README: scaling out).")

    events_retention_days: float = Field(default=14, gt=0, description="How long the events topic keeps accepted events (personal data included); facts live on in the compacted fact topics.")
    outreach_retention_days: float = Field(default=7, gt=0, description="How long the targeting, asks and provider-callback topics keep records.")
    dead_letter_retention_days: float = Field(default=30, gt=0, description="How long dead letters are kept for someone to look at them.")

    ack_timeout: float = Field(default=5.0, gt=0, description="Seconds the ingress waits for the broker before 503.")
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, description="The largest request body any route reads (413 beyond, and the connection is closed).")
    max_batch: int = Field(default=500, ge=1, description="The most events in one `POST /v1/events` (400 beyond).")
    signature_tolerance: int = Field(default=300, ge=1, description="Seconds a signed timestamp may be off from now.")

    session_timeout: float = Field(default=6.0, gt=0, description="Faust consumer session timeout, seconds (short joins on the embedded broker).")
    heartbeat_interval: float = Field(default=1.0, gt=0, description="Faust consumer heartbeat, seconds (less than the session timeout).")
    rebalance_timeout: float = Field(default=6.0, gt=0, description="Faust rebalance timeout, seconds.")
    commit_interval: float = Field(default=0.5, gt=0, description="Seconds between offset commits (small replays after a rebalance).")

    @field_validator("heartbeat_interval")
    @classmethod
    def _heartbeat_within_session(cls, value: float, info: ValidationInfo) -> float:
        session = info.data.get("session_timeout")
        if session is not None and value >= session:
            raise ValueError(f"{value:g} s is not less than the session timeout ({session:g} s): the broker would drop the worker between heartbeats")
        return value

    web_host: str = Field(default="127.0.0.1", description="Where `turnout web` listens (`turnout up` binds 127.0.0.1).")
    web_port: int = Field(default=8000, ge=1, le=65535, description="The port `turnout web` listens on (`turnout up --port` sets it).")
    web_head_timeout: float = Field(default=10.0, gt=0, description="Seconds a connection may take to send a request's head (from connecting, or from its first byte on a keep-alive connection): then 408, or a plain close when it sent nothing.")
    web_body_timeout: float = Field(default=30.0, gt=0, description="Seconds a request's body may take to arrive after its head; then the connection is closed.")
    web_keep_alive: float = Field(default=20.0, gt=0, description="Seconds an idle keep-alive connection stays open after a response (longer than client pools keep one: httpx 5 s, aiohttp 15 s).")
    web_max_head_bytes: int = Field(default=64 * 1024, ge=4096, description="Largest request head (request line and headers) read (431 beyond).")
    web_max_connections: int = Field(default=1000, ge=1, description="Connections the web app serves at once (503 beyond).")
    url: WebAddress | None = Field(default=None, description="The web app's base URL for CLI commands that call it (`tallies`, `import`, `people forget`, `sign`); set by `turnout up` for its own processes.",
                            json_schema_extra=doc("the running `turnout up`'s"))
    find_stack: bool = Field(default=True, description="Commands take every setting they were not given from the `turnout up` running from the current directory or a parent (its `.turnout/stack.json`); `false` turns that off. Processes started with a whole environment (`turnout up`'s own, tests') run with it off.")
    time_zone: Annotated[str | None, AfterValidator(_zone)] = Field(default=None, description="The coalition's IANA time zone (e.g. `America/Los_Angeles`): `turnout import` reads CSV dates without a UTC offset in it (`--tz` overrides).",
                                  json_schema_extra=doc("unset: such dates need `--tz`"))
    public_url: WebAddress = Field(default="http://127.0.0.1:8000", description="The web app's URL as Twilio and SendGrid see it (callbacks and their signature checks; proxies rewrite hosts).",
                            json_schema_extra=doc("`http://127.0.0.1:<--port>` under `turnout up`"))
    log_format: Literal["json", "text"] = Field(default="json", description="`json`: one object per line (`time`, `level`, `logger`, `pid`, `message`); `text` for reading by eye. Anything shaped like an email or an E.164 number is redacted.")
    metrics_port: int = Field(default=0, ge=0, le=65535, description="Workers serve Prometheus /metrics on this port (0: off).")
    metrics_token: SecretStr | None = Field(default=None, description="Bearer token a scraper sends for the web app's `GET /metrics`.", json_schema_extra=doc("unset: the web app's `/metrics` answers 404"))
    metrics_partner_labels: bool = Field(default=False, description="Metrics name partners (turnout_events_accepted_total{partner}); off: summed over partners.")
    session_hours: float = Field(default=12.0, gt=0, description="How long a dashboard sign-in lasts.")
    invite_hours: float = Field(default=72.0, gt=0, description="How long a dashboard account's one-time sign-in link works.")
    signin_failures_per_account: int = Field(default=5, ge=1, description="Failed dashboard sign-ins per account within the window before 429.")
    signin_failures_per_address: int = Field(default=20, ge=1, description="Failed dashboard sign-ins (and sign-in links) per client address within the window before 429.")
    signin_window_minutes: float = Field(default=15.0, gt=0, description="The sign-in throttle's sliding window.")
    active_days: int = Field(default=14, ge=0, description="The dashboard header counts actions that started at most this many days ago, or later.")

    # Outreach. No provider credentials: `turnout up` starts the sandbox and points both here.
    twilio_account_sid: str | None = Field(default=None, description="Twilio account SID. Provider credentials are all or none: none runs the sandbox providers (`turnout up`, `make run`); a `turnout worker` started alone with none plans asks and records them `cancelled`, never sent, and says so at start.", json_schema_extra=doc("unset: sandbox"))
    twilio_auth_token: SecretStr | None = Field(default=None, description="Twilio auth token: signs requests and verifies Twilio's callbacks.", json_schema_extra=doc("unset: sandbox"))
    twilio_from: Annotated[str | None, AfterValidator(_sender)] = Field(default=None, description="Sending number (E.164) or short code, unless a Messaging Service is set.", json_schema_extra=doc("unset: sandbox"))
    twilio_messaging_service_sid: str | None = Field(default=None, description="Twilio Messaging Service that sends, instead of `TURNOUT_TWILIO_FROM`.")
    twilio_base_url: str | None = Field(default=None, description="Only for the sandbox: where the Twilio SDK sends requests.")
    twilio_advanced_opt_out: bool = Field(default=True, description="Twilio answers STOP/START/HELP itself; we do not reply to a STOP or HELP that is the keyword alone.")
    sendgrid_api_key: SecretStr | None = Field(default=None, description="SendGrid API key.", json_schema_extra=doc("unset: sandbox"))
    sendgrid_from: str = Field(default="turnout@example.org", description="The sender address of emails: one SendGrid has verified for you, required with the other provider credentials (the default is only the sandbox's).")
    sendgrid_base_url: str | None = Field(default=None, description="Only for the sandbox: where the SendGrid SDK sends requests.")
    sendgrid_public_key: Annotated[str | None, AfterValidator(_verification_key)] = Field(default=None, description="Event Webhook verification key (base64), from SendGrid's settings.", json_schema_extra=doc("unset: sandbox"))
    sendgrid_signature_window: int = Field(default=25 * 3600, ge=60, description="Oldest signed SendGrid event batch taken, in seconds (25 h): SendGrid retries for up to 24 h and does not say that a retry is signed anew.")
    sandbox_url: str | None = Field(default=None, description="Where the sandbox providers listen.", json_schema_extra=doc("set by `turnout up` when it runs them"))
    sandbox_signing_key: SecretStr | None = Field(default=None, description="PEM (EC P-256) the sandbox signs SendGrid events with.", json_schema_extra=doc("generated by `turnout up`"))
    sandbox_sms_mps: float = Field(default=0.0, ge=0, description="The sandbox's Twilio queue: message segments per second each sender lets out, as Twilio's MPS (a one-segment text per slot; 0: no queue, texts leave when accepted).")
    sms_rate: float = Field(default=1.0, ge=0, description="The sender's MPS: message segments per second Twilio sends from its queue (a US long code about 1, a short code 100+; 0: no queue). Used to predict queue waits, never to pace.")
    email_rate: float = Field(default=100.0, ge=0, description="Emails per second (0: unlimited).")
    send_concurrency: int = Field(default=16, ge=1, description="SMS requests in flight per worker; asks are decided and marked sending in chunks of 8 times this.")
    provider_timeout: float | None = Field(default=None, gt=0, description="Seconds to wait for Twilio or SendGrid to answer a send (unset: 10 and 15). No answer leaves the ask in doubt.")
    rapid_response_grace_minutes: int = Field(default=120, ge=0, description="A rapid-response action may still be texted this long after it was first posted, even once it has started, if it started no longer than this before.")
    frequency_cap: int = Field(default=3, ge=0, description="At most this many asks per person …")
    frequency_window_days: int = Field(default=7, ge=1, description="… in this many days, across all partners.")
    quiet_start: Annotated[str, AfterValidator(_clock_time)] = Field(default="21:00", description="Recipients' local quiet hours start: no SMS from then …")
    quiet_end: Annotated[str, AfterValidator(_clock_time)] = Field(default="09:00", description="… until then (texts are deferred, not dropped).")

    @field_validator("quiet_end")
    @classmethod
    def _quiet_hours_end(cls, value: str, info: ValidationInfo) -> str:
        start = info.data.get("quiet_start")
        if start is not None and time.fromisoformat(start) == time.fromisoformat(value):
            raise ValueError(f"{value!r} is also when quiet hours start (TURNOUT_QUIET_START): they would have no length")
        return value
    sms_footer: str = Field(default="Reply YES to RSVP, STOP to opt out", description="The line under every SMS (but those to Spanish speakers).")
    sms_footer_es: str = Field(default="Responde SI para confirmar, STOP para no recibir mensajes", description="The line under every SMS to a Spanish speaker (their language: es, es-MX, ...).")
    help_text: str | None = Field(default=None, description="The answer to HELP and INFO (but from Spanish speakers); unset: \"<the backbone partner's name> alerts. Reply STOP to opt out, START to opt back in.\", named as the coalition file names it now.")
    help_text_es: str | None = Field(default=None, description="The answer to HELP and INFO from a Spanish speaker (their language: es, es-MX, ...); unset: \"Alertas de <the backbone partner's name>. Responde STOP para no recibir mensajes, START para volver a recibirlos.\"")
    rsvp_base_url: WebAddress | None = Field(default=None, description="RSVP links are <this>/<action>/<token> (unset: <public_url>/r, the web app's RSVP page).")
    unsubscribe_url: WebAddress | None = Field(default=None, description="Unsubscribe links (List-Unsubscribe and the email footer) are <this>/<action>/<token> (unset: <public_url>/unsubscribe).")
    link_secret: SecretStr | None = Field(default=None, description="Signs supporters' RSVP and unsubscribe links (unset: derived from the person-key secret). Changing it breaks every link sent.")
    rsvp_open_hours: float = Field(default=3.0, ge=0, description="RSVP links keep working this many hours after their action starts.")
    mobilize_base_url: WebAddress = Field(default="https://api.mobilize.us", description="Mobilize's API (a fake in tests).")
    mobilize_interval: float = Field(default=60.0, gt=0, description="Seconds between polls of each partner's Mobilize organization.")
    mobilize_rate: float = Field(default=15.0, gt=0, description="Mobilize reads per second (Mobilize allows 15).")
    clock: Annotated[str, AfterValidator(_clock)] = Field(default="system", description="`system`, or `file:PATH`: \"now\" is the ISO 8601 time with an offset in that file (e.g. `2026-11-24T19:00:00+00:00`), re-read at every use, so rewriting the file moves every worker's clock (rehearsals and tests).")

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

    def master_key_bytes(self) -> list[bytes]:
        """The current master key, then those a rotation replaced."""
        if self.master_key is None:
            raise RuntimeError("TURNOUT_MASTER_KEY is not set")
        previous = self.previous_master_keys.get_secret_value().split(",") if self.previous_master_keys else []
        return [k.strip().encode() for k in (self.master_key.get_secret_value(), *previous) if k.strip()]

    @property
    def https(self) -> bool:
        """Whether the web app is reached over HTTPS (secure cookies, HSTS)."""
        return self.public_url.startswith("https://")

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

    def sending_warnings(self) -> list[str]:
        """What a worker sending through the real providers should say at start."""
        if not self.providers_configured or self.sendgrid_base_url is not None or self.unsubscribe_links.startswith("https://"):
            return []
        return [f"unsubscribe links start {self.unsubscribe_links[:64]}, not https://: mail clients offer no one-click unsubscribe for "
                "them (RFC 8058), and Gmail and Yahoo expect one from bulk senders; set TURNOUT_PUBLIC_URL (or TURNOUT_UNSUBSCRIBE_URL) "
                "to the web app's HTTPS address"]

    @property
    def providers_configured(self) -> bool:
        return bool(self.twilio_account_sid and self.twilio_auth_token and self.sendgrid_api_key)

    def provider_settings_missing(self) -> list[str]:
        """The provider credentials still missing when some are set (sending for real needs
        them all); empty when all or none are set."""
        given = {name: bool(getattr(self, field)) for name, field in PROVIDER_CREDENTIALS.items()}
        given[TWILIO_SENDER] = bool(self.twilio_from or self.twilio_messaging_service_sid)
        if not any(given.values()):
            return []
        if self.sendgrid_base_url is None:  # SendGrid's own, not the sandbox: the example default address is nobody's
            given["TURNOUT_SENDGRID_FROM"] = "sendgrid_from" in self.model_fields_set
        return [name for name, ok in given.items() if not ok]

    @property
    def sandbox_providers(self) -> bool:
        """No provider credential at all: `turnout up` runs the sandbox providers."""
        return not any(getattr(self, f) for f in (*PROVIDER_CREDENTIALS.values(), "twilio_from", "twilio_messaging_service_sid"))


#: What sending for real needs (environment variable → setting); one Twilio sender as well.
PROVIDER_CREDENTIALS = {
    "TURNOUT_TWILIO_ACCOUNT_SID": "twilio_account_sid",
    "TURNOUT_TWILIO_AUTH_TOKEN": "twilio_auth_token",
    "TURNOUT_SENDGRID_API_KEY": "sendgrid_api_key",
    "TURNOUT_SENDGRID_PUBLIC_KEY": "sendgrid_public_key",
}
TWILIO_SENDER = "TURNOUT_TWILIO_FROM (or TURNOUT_TWILIO_MESSAGING_SERVICE_SID)"


def unknown_settings(environ: Mapping[str, str]) -> list[str]:
    """What to say of each ``TURNOUT_*`` variable in ``environ`` that is no setting (a typo is
    otherwise ignored without a word), with the setting it most looks like."""
    names = {f"TURNOUT_{field.upper()}" for field in Settings.model_fields}
    out = []
    for name in sorted(k for k in environ if k.startswith("TURNOUT_") and k not in names):
        like = difflib.get_close_matches(name, names, n=1, cutoff=0.8)
        out.append(f"{name} is no setting" + (f" (did you mean {like[0]}?)" if like else "") + ": it is ignored")
    return out

