"""Settings, read once at start-up from the environment (``TURNOUT_*``, ``KAFKA_BOOTSTRAP_SERVERS``).

Nothing reads the environment at import: commands build ``Settings()`` and hand it on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TURNOUT_", frozen=True, extra="ignore")

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
