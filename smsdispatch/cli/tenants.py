"""Register, verify, list, remove and re-encrypt tenants (the compacted sms.tenants topic).

`add` registers a tenant with no provider of its own: it sends through the platform's default provider
(SMSDISPATCH_DEFAULT_PROVIDER); only its webhook secret, if any, is sealed. `set` encrypts the tenant's Twilio
configuration with the first key of SMSDISPATCH_ENCRYPTION_KEYS, verifies the credentials against Twilio (unless
--no-verify) and publishes the record; credentials that fail verification are not published. `update` changes
the rate and webhook settings alone (:mod:`smsdispatch.cli.tenant_settings`). Secrets are never printed, except
a new webhook signing secret, once: `list` shows ids, provider, state, settings and the key id only.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime

from aiokafka.errors import KafkaConnectionError, KafkaError
from pydantic import SecretStr, TypeAdapter, ValidationError

from smsdispatch.adapters.crypto import CryptoError, Keyring
from smsdispatch.adapters.twilio import AuthenticationError, ProviderError, TwilioHttp, TwilioProvider
from smsdispatch.cli._common import CliError, bad_usage, load_keyring, load_settings, twilio_base_url, unreachable_kafka
from smsdispatch.cli.tenant_settings import Changed, add_rate_and_webhook, apply_settings, print_secret_once
from smsdispatch.client import latest_tenant_records, publish_tenant, publish_tenants
from smsdispatch.contract import PlatformConfig, TenantConfig, TenantRecord, describe_tenant
from smsdispatch.contract._fields import TenantId
from smsdispatch.contract.settings import Settings
from smsdispatch.runtime.topics import ensure_topics

TENANT_ID: TypeAdapter[str] = TypeAdapter(TenantId)
_FLAGS = {"from_number": "--from", "tenant_id": "TENANT"}


class VerificationRefused(CliError):
    """Twilio answered, and the answer is no: bad credentials, or an account that cannot send."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    set_ = actions.add_parser("set", help="encrypt, verify and publish a tenant's Twilio configuration")
    set_.add_argument("tenant")
    set_.add_argument("--account-sid", required=True, help="the tenant's Account SID (AC...)")
    set_.add_argument("--auth-token", help="the account's auth token (also checks status-callback signatures)")
    set_.add_argument("--from", dest="from_number", required=True, help="E.164 number, sender ID or MG... SID")
    set_.add_argument("--api-key-sid", help="an API key SID (SK...) to authenticate REST calls with")
    set_.add_argument("--api-key-secret", help="that API key's secret")
    set_.add_argument("--no-verify", action="store_true", help="publish without verifying (marked unverified)")
    add_rate_and_webhook(set_, update=False)
    add = actions.add_parser("add", help="register a tenant that sends through the platform's default provider")
    add.add_argument("tenant")
    add_rate_and_webhook(add, update=False)
    update = actions.add_parser(
        "update", help="change a tenant's sending rate or webhook, without re-entering its credentials"
    )
    update.add_argument("tenant")
    add_rate_and_webhook(update, update=True)
    verify = actions.add_parser("verify", help="re-check a tenant's credentials and republish the result")
    verify.add_argument("tenant")
    actions.add_parser("list", help="list tenants (never their secrets)")
    remove = actions.add_parser("remove", help="remove a tenant")
    remove.add_argument("tenant")
    actions.add_parser("rotate", help="re-encrypt every tenant under the first key of SMSDISPATCH_ENCRYPTION_KEYS")


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    keyring = load_keyring(settings)
    actions = {
        "add": _add,
        "set": _set,
        "update": _update,
        "verify": _verify,
        "list": _list,
        "remove": _remove,
        "rotate": _rotate,
    }
    action = actions[args.action]
    try:
        return asyncio.run(action(args, settings, keyring))
    except (OSError, TimeoutError, KafkaConnectionError):
        raise unreachable_kafka(settings.broker) from None
    except KafkaError as exc:
        raise CliError(f"Kafka at {settings.broker} failed: {type(exc).__name__}.") from None


async def verified_record(
    tenant_id: str, config: TenantConfig, keyring: Keyring, settings: Settings, verify: bool = True
) -> TenantRecord:
    """The record to publish for ``config``: verified against Twilio, or marked unverified when not asked to."""
    now = datetime.now(UTC)
    if not verify:
        return TenantRecord(tenant_id=tenant_id, config=keyring.seal(config), verified=False, updated_at=now)
    async with TwilioHttp(twilio_base_url(settings), max_connections=4) as http:
        try:
            info = await TwilioProvider(config, http).verify()
        except AuthenticationError as exc:
            raise VerificationRefused(f"Twilio refused the credentials of {tenant_id}: {exc.message}") from None
        except ProviderError as exc:
            raise CliError(f"could not verify {tenant_id} with Twilio: {exc.message}") from None
    if not info.verified:
        reason = (info.reason or f"its status is {info.status}").rstrip(".")
        raise VerificationRefused(f"the Twilio account of {tenant_id} cannot send: {reason}.")
    return TenantRecord(
        tenant_id=tenant_id,
        config=keyring.seal(config),
        verified=True,
        verified_at=now,
        test_credentials=info.test_credentials,
        account_type=info.account_type,
        updated_at=now,
    )


async def _set(args: argparse.Namespace, settings: Settings, keyring: Keyring) -> int:
    _check_tenant_id(args.tenant)  # before Kafka is asked anything: bad usage is told as such
    await ensure_topics(settings.broker, settings.partitions, replication_factor=settings.replication_factor)
    current = (await latest_tenant_records(settings.broker)).get(args.tenant)
    changed = await record_for_set(args, settings, keyring, current)
    await publish_tenant(settings.broker, args.tenant, changed.record)
    print(describe_tenant(changed.record))
    print_secret_once(args.tenant, changed.new_secret)
    return 0


async def _add(args: argparse.Namespace, settings: Settings, keyring: Keyring) -> int:
    _check_tenant_id(args.tenant)
    await ensure_topics(settings.broker, settings.partitions, replication_factor=settings.replication_factor)
    current = (await latest_tenant_records(settings.broker)).get(args.tenant)
    changed = record_for_add(args, keyring, current)
    await publish_tenant(settings.broker, args.tenant, changed.record)
    print(describe_tenant(changed.record, settings.default_provider))
    print_secret_once(args.tenant, changed.new_secret)
    return 0


def record_for_add(args: argparse.Namespace, keyring: Keyring, current: TenantRecord | None) -> Changed:
    """The record ``tenants add`` publishes: a tenant on the platform's default provider, keeping the rate, the
    webhook and its secret of a ``current`` record unless given anew (a Twilio account it had is dropped)."""
    _check_tenant_id(args.tenant)
    config = PlatformConfig(webhook_secret=_current_secret(keyring, current) if current is not None else None)
    record = platform_record(args.tenant, config, keyring)
    if current is not None:
        record = record.model_copy(update={"mps": current.mps, "webhook_url": current.webhook_url})
    return apply_settings(args, record, config, keyring.seal)


def platform_record(tenant_id: str, config: PlatformConfig, keyring: Keyring) -> TenantRecord:
    """A record for a tenant with no provider of its own (it sends through the platform's default)."""
    now = datetime.now(UTC)
    return TenantRecord(
        tenant_id=tenant_id, provider="platform", config=keyring.seal(config), verified=False, updated_at=now
    )


async def record_for_set(
    args: argparse.Namespace, settings: Settings, keyring: Keyring, current: TenantRecord | None
) -> Changed:
    """The record ``tenants set`` publishes for ``args`` (verified against Twilio unless --no-verify), over the
    tenant's ``current`` record if it has one: new credentials, the rate, the webhook and its secret kept unless
    given anew. Raises CliError (VerificationRefused when Twilio says no)."""
    _check_tenant_id(args.tenant)
    try:
        config = TenantConfig(
            account_sid=args.account_sid,
            auth_token=args.auth_token,
            api_key_sid=args.api_key_sid,
            api_key_secret=args.api_key_secret,
            from_number=args.from_number,
        )
    except ValidationError as exc:
        raise bad_usage(exc, _FLAGS, whole="--auth-token / --api-key-sid / --api-key-secret") from None
    if current is not None:
        config = config.model_copy(update={"webhook_secret": _current_secret(keyring, current)})
    try:
        record = await verified_record(args.tenant, config, keyring, settings, verify=not args.no_verify)
    except ValidationError as exc:
        raise bad_usage(exc, _FLAGS, whole="TENANT") from None
    if current is not None:
        record = record.model_copy(update={"mps": current.mps, "webhook_url": current.webhook_url})
    return apply_settings(args, record, config, keyring.seal)


def _check_tenant_id(tenant_id: str) -> None:
    try:
        TENANT_ID.validate_python(tenant_id)
    except ValidationError as exc:
        raise bad_usage(exc, _FLAGS, whole="TENANT") from None


async def _update(args: argparse.Namespace, settings: Settings, keyring: Keyring) -> int:
    current = (await latest_tenant_records(settings.broker)).get(args.tenant)
    if current is None:
        raise CliError(f"no tenant {args.tenant!r} is registered.")
    changed = apply_settings(args, current, _unseal(keyring, current), keyring.seal)
    await publish_tenant(settings.broker, args.tenant, changed.record)
    print(describe_tenant(changed.record, settings.default_provider))
    print_secret_once(args.tenant, changed.new_secret)
    return 0


async def _verify(args: argparse.Namespace, settings: Settings, keyring: Keyring) -> int:
    current = (await latest_tenant_records(settings.broker)).get(args.tenant)
    if current is None:
        raise CliError(f"no tenant {args.tenant!r} is registered.")
    if current.provider == "platform":
        raise CliError(f"tenant {args.tenant!r} has no Twilio account of its own to verify (see `tenants set`).")
    config = _unseal_twilio(keyring, current)
    try:
        record = await verified_record(args.tenant, config, keyring, settings)
        record = record.model_copy(update={"mps": current.mps, "webhook_url": current.webhook_url})
    except VerificationRefused:
        # "Re-checks and republishes": credentials that stopped working must stop being used.
        revoked = current.model_copy(update={"verified": False, "verified_at": None, "updated_at": datetime.now(UTC)})
        await publish_tenant(settings.broker, args.tenant, revoked)
        raise
    await publish_tenant(settings.broker, args.tenant, record)
    print(describe_tenant(record))
    return 0


async def _list(args: argparse.Namespace, settings: Settings, keyring: Keyring) -> int:
    records = await latest_tenant_records(settings.broker)
    for record in records.values():
        print(describe_tenant(record, settings.default_provider))
    if not records:
        print("no tenants registered")
    return 0


async def _remove(args: argparse.Namespace, settings: Settings, keyring: Keyring) -> int:
    if args.tenant not in await latest_tenant_records(settings.broker):
        raise CliError(f"no tenant {args.tenant!r} is registered.")
    await publish_tenant(settings.broker, args.tenant, None)
    print(f"{args.tenant}: removed")
    return 0


async def _rotate(args: argparse.Namespace, settings: Settings, keyring: Keyring) -> int:
    resealed: dict[str, TenantRecord | None] = {}
    stuck = []
    records = await latest_tenant_records(settings.broker)
    for tenant_id, record in records.items():
        try:
            envelope = keyring.reseal(record.config)
        except CryptoError:
            stuck.append(tenant_id)  # keep going: one unreadable record must not block the others
            continue
        if envelope != record.config:
            resealed[tenant_id] = record.model_copy(update={"config": envelope, "updated_at": datetime.now(UTC)})
    await publish_tenants(settings.broker, resealed)
    print(f"re-encrypted {len(resealed)} of {len(records)} tenants under key {keyring.current_kid}")
    if stuck:
        names = ", ".join(stuck[:5]) + (f" and {len(stuck) - 5} more" if len(stuck) > 5 else "")
        raise CliError(f"{len(stuck)} tenants are sealed under keys not in SMSDISPATCH_ENCRYPTION_KEYS: {names}.")
    return 0


def _current_secret(keyring: Keyring, record: TenantRecord) -> SecretStr | None:
    """The webhook secret sealed in the tenant's current config (None when it has none or it cannot be read)."""
    try:
        return _open(keyring, record).webhook_secret
    except CryptoError:
        return None


def _open(keyring: Keyring, record: TenantRecord) -> TenantConfig | PlatformConfig:
    if record.provider == "platform":
        return keyring.unseal_platform(record.config)
    return keyring.unseal(record.config)


def _unseal(keyring: Keyring, record: TenantRecord) -> TenantConfig | PlatformConfig:
    try:
        return _open(keyring, record)
    except CryptoError as exc:
        raise CliError(f"tenant {record.tenant_id}: {exc}") from None


def _unseal_twilio(keyring: Keyring, record: TenantRecord) -> TenantConfig:
    try:
        return keyring.unseal(record.config)
    except CryptoError as exc:
        raise CliError(f"tenant {record.tenant_id}: {exc}") from None
