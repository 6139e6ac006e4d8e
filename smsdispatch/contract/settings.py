"""Runtime settings, read from the ``SMSDISPATCH_*`` environment variables of docs/contract.md.

This module sits at the bottom of the layer stack, in the contract: everything may import it, it imports
nothing of ours, and only the CLI builds :class:`Settings`. Secrets (the encryption keys) are held as
``SecretStr`` so that a settings object that ends up in a log line or a traceback prints ``**********``
instead of the key.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_BROKER = "kafka://127.0.0.1:9092"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///smsdispatch.db"
DEFAULT_TWILIO_BASE_URL = "https://api.twilio.com"
DEFAULT_MSG91_BASE_URL = "https://control.msg91.com"


class Settings(BaseSettings):
    """The docs/contract.md environment, with its defaults."""

    model_config = SettingsConfigDict(env_prefix="SMSDISPATCH_", extra="ignore")

    broker: str = DEFAULT_BROKER
    database_url: str = DEFAULT_DATABASE_URL
    encryption_keys: SecretStr | None = None
    twilio_base_url: str = DEFAULT_TWILIO_BASE_URL
    partitions: int = Field(default=8, ge=1, le=1024)
    public_url: str | None = None

    #: Names the consumer group and the worker's internal topics, so two deployments can share a broker.
    app_id: str = Field(default="smsdispatch", min_length=1, pattern=r"^[A-Za-z0-9._-]+$")
    #: A dispatched message with no final status this long after dispatch is fetched from Twilio.
    status_poll_seconds: float = Field(default=600.0, gt=0)
    #: How long a tenant's webhook is retried before it is given up (logged and counted).
    webhook_retry_hours: float = Field(default=24.0, gt=0)
    #: The first wait before a failed webhook is retried; later waits grow from it (x6, x24, x60, ...) to an hour.
    webhook_retry_base_seconds: float = Field(default=5.0, gt=0)

    # Extensions beyond docs/contract.md (all optional, with defaults a single worker needs no tuning for).
    web_port: int = Field(default=6066, ge=0, le=65535)
    data_dir: str | None = None
    tenant_concurrency: int = Field(default=100, ge=1)
    # 1 suits a single local broker; production clusters want 3, or the ledger changelog dies with a broker.
    replication_factor: int = Field(default=1, ge=1)
    batch_size: int = Field(default=500, ge=1)
    batch_within_seconds: float = Field(default=0.05, gt=0)
    ledger_retention_days: float = Field(default=7.0, gt=0)
    #: Where the idempotency ledger lives: RocksDB files under the data dir (memory stays flat as it grows), or
    #: memory (restored whole from the changelog at every start; for tests and demos).
    ledger_store: Literal["rocksdb", "memory"] = "rocksdb"
    #: Records a worker holds at once (being sent, or waiting for their tenant's turn); reading pauses beyond.
    max_in_flight: int = Field(default=5000, ge=1)
    #: A send (its retries and reconciliation included) is given up as outcome_unknown after this long; another
    #: worker taking over a request marked "sending" waits this long from the mark before looking it up.
    send_deadline_seconds: float = Field(default=60.0, gt=0)
    #: On a rebalance or shutdown, how long sends in flight may take to finish; must stay well under the
    #: group's rebalance timeout (60 s). Unfinished records are given back unacked.
    drain_seconds: float = Field(default=20.0, gt=0)
    #: A worker told to stop (SIGTERM, Ctrl-C) exits within this long, whatever is stuck (a broker away, say);
    #: what it could not finish is left uncommitted for the next owner. At least drain_seconds + 5 is used.
    stop_seconds: float = Field(default=30.0, gt=0)
    #: The platform's default provider: tenants without a verified Twilio account of their own send through it.
    default_provider: Literal["msg91"] | None = None
    #: The platform's MSG91 account (a secret), the Flow template a request naming none is sent with, its sender
    #: id, the template variable that carries the body, and MSG91's API (the simulator's URL offline).
    msg91_authkey: SecretStr | None = None
    msg91_template_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    msg91_sender: str | None = Field(default=None, min_length=1, max_length=11)
    msg91_body_var: str = Field(default="body", min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_]+$")
    msg91_base_url: str = DEFAULT_MSG91_BASE_URL
    #: The secret path token of ``POST /msg91/report/{token}``, where MSG91's delivery reports are accepted.
    msg91_report_token: SecretStr | None = None
    #: Records held this long without one finishing, or a Kafka write unacknowledged this long, make /health say
    #: "degraded" and /live answer 503. Unset: twice the send deadline, at least 120 s (a send may take that long).
    stall_seconds: float | None = Field(default=None, gt=0)
    #: The worker's log lines: ``text`` for people, ``json`` (one object per line) for log collectors.
    log_format: Literal["text", "json"] = "text"

    @property
    def stall_after(self) -> float:
        """``stall_seconds``, or its default: twice the send deadline, at least 120 s."""
        return self.stall_seconds or max(120.0, 2 * self.send_deadline_seconds)


def bootstrap_servers(broker_url: str) -> str:
    """Turn ``kafka://h1:9092;h2:9092`` (Faust's form) into ``h1:9092,h2:9092`` (aiokafka's form)."""
    hosts = []
    for part in broker_url.replace(";", ",").split(","):
        part = part.strip()
        if "://" in part:
            part = part.split("://", 1)[1]
        if part:
            hosts.append(part)
    return ",".join(hosts)
