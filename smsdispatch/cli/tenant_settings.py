"""A tenant's settings beside its credentials: the sending rate (``--mps``) and the webhook (``--webhook-url``).

``tenants set`` takes them with the credentials, ``tenants add`` (a tenant on the platform's default provider)
alone; ``tenants update`` changes them alone, without re-entering
credentials or re-verifying. A webhook's signing secret (Standard Webhooks: ``whsec_`` and the base64 of 24
random bytes) is made when a URL is set for the first time or with ``--rotate-webhook-secret``, printed once,
and sealed inside the tenant's encrypted config: it never appears in the record, a log or ``tenants list``.
"""

from __future__ import annotations

import argparse
import base64
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from pydantic import SecretStr

from smsdispatch.cli._common import CliError
from smsdispatch.contract import EncryptedConfig, PlatformConfig, TenantConfig, TenantRecord

WEBHOOK_SECRET_PREFIX = "whsec_"  # noqa: S105  (the format's prefix, not a secret)
SealConfig = Callable[[TenantConfig | PlatformConfig], EncryptedConfig]


def add_rate_and_webhook(parser: argparse.ArgumentParser, *, update: bool) -> None:
    rate = parser.add_mutually_exclusive_group()
    rate.add_argument(
        "--mps", type=_positive_int, metavar="N", help="sending rate in segments per second (requests beyond it wait)"
    )
    webhook = parser.add_mutually_exclusive_group()
    webhook.add_argument(
        "--webhook-url", type=_webhook_url, metavar="URL", help="POST every outcome and status of the tenant here"
    )
    if update:
        rate.add_argument("--no-mps", action="store_true", help="remove the sending rate")
        webhook.add_argument("--no-webhook", action="store_true", help="stop posting webhooks")
        parser.add_argument(
            "--rotate-webhook-secret", action="store_true", help="make a new webhook signing secret and print it"
        )


@dataclass(frozen=True)
class Changed:
    """A tenant's new record, and the webhook secret to print once (None when it did not change)."""

    record: TenantRecord
    new_secret: str | None


def apply_settings(
    args: argparse.Namespace, record: TenantRecord, config: TenantConfig | PlatformConfig, seal: SealConfig
) -> Changed:
    """``record`` (whose decrypted config is ``config``) with the rate and webhook options of ``args`` applied.

    Options left out keep what the record had. A secret is made when the tenant gets a webhook URL and has no
    secret yet, or when asked to rotate it."""
    update: dict[str, object] = {"updated_at": datetime.now(UTC)}
    if args.mps is not None:
        update["mps"] = args.mps
    if getattr(args, "no_mps", False):
        update["mps"] = None
    webhook_url = record.webhook_url
    if args.webhook_url is not None:
        webhook_url = update["webhook_url"] = args.webhook_url
    if getattr(args, "no_webhook", False):
        webhook_url = update["webhook_url"] = None
    rotate = getattr(args, "rotate_webhook_secret", False)
    if rotate and webhook_url is None:
        raise CliError(f"tenant {record.tenant_id} has no webhook URL, so there is no secret to rotate.", 2)
    new_secret = None
    if webhook_url is not None and (rotate or config.webhook_secret is None):
        new_secret = new_webhook_secret()
        config = config.model_copy(update={"webhook_secret": SecretStr(new_secret)})
        update["config"] = seal(config)
    return Changed(record.model_copy(update=update), new_secret)


def new_webhook_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` and the base64 of 24 random bytes (192 bits)."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def print_secret_once(tenant_id: str, secret: str | None) -> None:
    if secret is not None:
        print(f"{tenant_id}: webhook signing secret (shown once, keep it with the receiver): {secret}")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError("must be between 1 and 10000 segments per second")
    return value


def _webhook_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError("is not an http(s) URL with a host")
    if parts.username is not None or parts.password is not None:
        # The URL is stored in plaintext on sms.tenants: credentials in it would be a secret in a topic. The
        # signature is what proves a webhook comes from smsdispatch.
        raise argparse.ArgumentTypeError("must not carry a user name or password (the signature authenticates)")
    if len(text) > 2048:
        raise argparse.ArgumentTypeError("is longer than 2048 characters")
    return text
