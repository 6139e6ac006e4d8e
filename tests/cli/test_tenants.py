"""`smsdispatch tenants` against the real broker and the simulator (a child process): set, verify, list,
remove, rotate — and no secret ever printed or published in plaintext."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from smsdispatch.adapters.crypto import Keyring, generate_key
from smsdispatch.cli import main
from smsdispatch.client import latest_tenant_records, publish_tenant, read_topic
from smsdispatch.contract import TenantConfig, TenantRecord, topics
from smsdispatch.tools.simulator import random_account_sid
from smsdispatch.tools.testing.kafka import free_ports
from smsdispatch.tools.testing.processes import ManagedProcess, simulator_process

LIVE_SID, TEST_SID, SUSPENDED_SID = random_account_sid(), random_account_sid(), random_account_sid()
LIVE_TOKEN, TEST_TOKEN = f"live{uuid.uuid4().hex}", f"test{uuid.uuid4().hex}"
SENDER = "+14155550100"
LIVE_ARGS = ["--account-sid", LIVE_SID, "--auth-token", LIVE_TOKEN, "--from", SENDER]


@pytest.fixture(scope="module")
def simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    (port,) = free_ports(1)
    process = simulator_process(
        port=port,
        args=[
            *("--account", f"{LIVE_SID}:{LIVE_TOKEN}:{SENDER}"),
            *("--account", f"{SUSPENDED_SID}:{LIVE_TOKEN}:{SENDER}:suspended"),
            *("--test-account", f"{TEST_SID}:{TEST_TOKEN}"),
        ],
        log_path=Path(tmp_path_factory.mktemp("sim")) / "simulator.log",
    ).start()
    yield process
    process.stop()


@pytest.fixture
def env(kafka_broker_url: str, simulator: ManagedProcess, monkeypatch: pytest.MonkeyPatch) -> Keyring:
    key = generate_key()
    monkeypatch.setenv("SMSDISPATCH_BROKER", kafka_broker_url)
    monkeypatch.setenv("SMSDISPATCH_ENCRYPTION_KEYS", key)
    monkeypatch.setenv("SMSDISPATCH_TWILIO_BASE_URL", simulator.ready_url.removesuffix("/_sim/messages"))
    return Keyring.from_value(key)


def tenant_id() -> str:
    return f"t-{uuid.uuid4().hex[:10]}"


def records(broker: str) -> dict[str, object]:
    return dict(asyncio.run(latest_tenant_records(broker)))


def topic_bytes(broker: str) -> bytes:
    async def collect() -> bytes:
        seen = bytearray()
        async for record in read_topic(broker, [topics.TENANTS]):
            seen += (record.key or b"") + (record.value or b"")
        return bytes(seen)

    return asyncio.run(collect())


def test_set_verifies_a_live_account_and_publishes_it_encrypted(
    env: Keyring, kafka_broker_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = tenant_id()
    assert (
        main(["tenants", "set", tenant, "--account-sid", LIVE_SID, "--auth-token", LIVE_TOKEN, "--from", SENDER]) == 0
    )
    record = asyncio.run(latest_tenant_records(kafka_broker_url))[tenant]
    assert (record.verified, record.test_credentials, record.account_type) == (True, False, "Full")
    assert env.unseal(record.config).auth_token.get_secret_value() == LIVE_TOKEN  # type: ignore[union-attr]
    assert LIVE_TOKEN.encode() not in topic_bytes(kafka_broker_url)
    assert LIVE_TOKEN not in capsys.readouterr().out


def test_set_accepts_test_credentials_and_flags_them(env: Keyring, kafka_broker_url: str) -> None:
    tenant = tenant_id()
    args = ["--account-sid", TEST_SID, "--auth-token", TEST_TOKEN, "--from", "+15005550006"]
    assert main(["tenants", "set", tenant, *args]) == 0
    record = asyncio.run(latest_tenant_records(kafka_broker_url))[tenant]
    assert (record.verified, record.test_credentials) == (True, True)


@pytest.mark.parametrize(
    ("sid", "token", "reason"),
    [(LIVE_SID, "wrong-token", "refused the credentials"), (SUSPENDED_SID, LIVE_TOKEN, "cannot send")],
    ids=["wrong-token", "suspended-account"],
)
def test_credentials_that_fail_verification_are_not_published(
    env: Keyring, kafka_broker_url: str, capsys: pytest.CaptureFixture[str], sid: str, token: str, reason: str
) -> None:
    tenant = tenant_id()
    assert main(["tenants", "set", tenant, "--account-sid", sid, "--auth-token", token, "--from", SENDER]) == 1
    err = capsys.readouterr().err
    assert reason in err
    assert len(err.strip().splitlines()) == 1
    assert token not in err
    assert tenant not in records(kafka_broker_url)


def test_no_verify_publishes_the_tenant_unverified(env: Keyring, kafka_broker_url: str) -> None:
    tenant = tenant_id()
    args = ["--account-sid", LIVE_SID, "--auth-token", "not-checked", "--from", SENDER, "--no-verify"]
    assert main(["tenants", "set", tenant, *args]) == 0
    assert asyncio.run(latest_tenant_records(kafka_broker_url))[tenant].verified is False


def test_verify_rechecks_and_republishes_an_unverified_tenant(env: Keyring, kafka_broker_url: str) -> None:
    tenant = tenant_id()
    args = ["--account-sid", LIVE_SID, "--auth-token", LIVE_TOKEN, "--from", SENDER, "--no-verify"]
    assert main(["tenants", "set", tenant, *args]) == 0
    assert main(["tenants", "verify", tenant]) == 0
    assert asyncio.run(latest_tenant_records(kafka_broker_url))[tenant].verified is True


def test_list_shows_tenants_without_secrets_and_remove_deletes_them(
    env: Keyring, kafka_broker_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = tenant_id()
    assert (
        main(["tenants", "set", tenant, "--account-sid", LIVE_SID, "--auth-token", LIVE_TOKEN, "--from", SENDER]) == 0
    )
    capsys.readouterr()
    assert main(["tenants", "list"]) == 0
    listing = capsys.readouterr().out
    assert f"{tenant}: verified" in listing
    assert LIVE_TOKEN not in listing
    assert main(["tenants", "remove", tenant]) == 0
    assert tenant not in records(kafka_broker_url)
    assert main(["tenants", "remove", tenant]) == 1


def test_rotate_moves_every_tenant_to_the_new_key(
    env: Keyring, kafka_broker_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = tenant_id()
    assert (
        main(["tenants", "set", tenant, "--account-sid", LIVE_SID, "--auth-token", LIVE_TOKEN, "--from", SENDER]) == 0
    )
    new_key = generate_key()
    monkeypatch.setenv("SMSDISPATCH_ENCRYPTION_KEYS", f"{new_key},{os.environ['SMSDISPATCH_ENCRYPTION_KEYS']}")
    # Other tests' tenants on the shared topic are sealed under keys this test does not have: rotate moves
    # every tenant it can read and names the rest (exit 1), without stopping at the first one.
    assert main(["tenants", "rotate"]) in (0, 1)
    assert "re-encrypted" in capsys.readouterr().out
    new_kid = Keyring.from_value(new_key).current_kid
    assert asyncio.run(latest_tenant_records(kafka_broker_url))[tenant].config.kid == new_kid


def test_a_missing_key_list_is_one_sentence_and_bad_usage(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SMSDISPATCH_ENCRYPTION_KEYS", raising=False)
    assert main(["tenants", "list"]) == 2
    err = capsys.readouterr().err
    assert "SMSDISPATCH_ENCRYPTION_KEYS" in err
    assert len(err.strip().splitlines()) == 1


def test_an_invalid_sender_is_bad_usage(env: Keyring, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tenants", "set", tenant_id(), "--account-sid", LIVE_SID, "--auth-token", "x", "--from", "12"]) == 2
    assert capsys.readouterr().err.startswith("smsdispatch tenants: --from")


def test_a_twilio_base_url_with_a_password_is_bad_usage_in_one_sentence_that_does_not_repeat_it(
    env: Keyring, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SMSDISPATCH_TWILIO_BASE_URL", "https://user:pr0xy-s3cret@twilio-proxy.example.com")

    assert main(["tenants", "set", tenant_id(), *LIVE_ARGS]) == 2

    err = capsys.readouterr().err
    assert err.strip() == (
        "smsdispatch tenants: The Twilio base URL must not carry a user name or password (SMSDISPATCH_TWILIO_BASE_URL)."
    )
    assert "pr0xy-s3cret" not in err


def test_verify_of_credentials_twilio_now_refuses_republishes_the_tenant_unverified(
    env: Keyring, kafka_broker_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = tenant_id()
    revoked = TenantConfig(account_sid=LIVE_SID, auth_token=SecretStr("rotated-away"), from_number=SENDER)
    record = TenantRecord(tenant_id=tenant, config=env.seal(revoked), verified=True)
    asyncio.run(publish_tenant(kafka_broker_url, tenant, record))

    assert main(["tenants", "verify", tenant]) == 1

    assert "refused the credentials" in capsys.readouterr().err
    assert asyncio.run(latest_tenant_records(kafka_broker_url))[tenant].verified is False


# --- the sending rate and the webhook (tenants set … --mps/--webhook-url, tenants update) ----------------------


def printed_secret(out: str) -> str:
    (line,) = [line for line in out.splitlines() if "webhook signing secret" in line]
    return line.rsplit(" ", 1)[-1]


def sealed_secret(env: Keyring, record: TenantRecord) -> str | None:
    secret = env.unseal(record.config).webhook_secret
    return secret.get_secret_value() if secret is not None else None


def test_set_with_a_rate_and_a_webhook_prints_the_signing_secret_once_and_seals_it(
    env: Keyring, kafka_broker_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = tenant_id()
    args = [*LIVE_ARGS, "--mps", "5", "--webhook-url", "https://hooks.example/sms"]
    assert main(["tenants", "set", tenant, *args]) == 0
    secret = printed_secret(capsys.readouterr().out)

    record = asyncio.run(latest_tenant_records(kafka_broker_url))[tenant]
    assert (record.mps, record.webhook_url) == (5, "https://hooks.example/sms")
    assert secret.startswith("whsec_")
    assert sealed_secret(env, record) == secret
    assert secret.encode() not in topic_bytes(kafka_broker_url)
    assert main(["tenants", "list"]) == 0
    listing = capsys.readouterr().out
    assert f"{tenant}: verified" in listing
    assert "5 segments/s" in listing
    assert "https://hooks.example/sms" in listing
    assert secret not in listing


def test_update_changes_the_rate_without_credentials_and_keeps_the_webhook_secret(
    env: Keyring, kafka_broker_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = tenant_id()
    assert main(["tenants", "set", tenant, *LIVE_ARGS, "--webhook-url", "https://hooks.example/a"]) == 0
    secret = printed_secret(capsys.readouterr().out)

    assert main(["tenants", "update", tenant, "--mps", "2"]) == 0
    assert "webhook signing secret" not in capsys.readouterr().out
    record = asyncio.run(latest_tenant_records(kafka_broker_url))[tenant]
    assert (record.mps, record.verified, sealed_secret(env, record)) == (2, True, secret)

    assert main(["tenants", "update", tenant, "--no-mps"]) == 0
    assert asyncio.run(latest_tenant_records(kafka_broker_url))[tenant].mps is None


def test_set_again_with_new_credentials_keeps_the_rate_webhook_and_secret(
    env: Keyring, kafka_broker_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = tenant_id()
    assert main(["tenants", "set", tenant, *LIVE_ARGS, "--mps", "3", "--webhook-url", "https://hooks.example/b"]) == 0
    secret = printed_secret(capsys.readouterr().out)

    assert main(["tenants", "set", tenant, *LIVE_ARGS]) == 0

    assert "webhook signing secret" not in capsys.readouterr().out
    record = asyncio.run(latest_tenant_records(kafka_broker_url))[tenant]
    assert (record.mps, record.webhook_url, sealed_secret(env, record)) == (3, "https://hooks.example/b", secret)


def test_rotating_the_webhook_secret_prints_a_new_one_and_removing_the_webhook_stops_it(
    env: Keyring, kafka_broker_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = tenant_id()
    assert main(["tenants", "set", tenant, *LIVE_ARGS, "--webhook-url", "https://hooks.example/c"]) == 0
    first = printed_secret(capsys.readouterr().out)

    assert main(["tenants", "update", tenant, "--rotate-webhook-secret"]) == 0
    second = printed_secret(capsys.readouterr().out)
    assert second != first
    assert sealed_secret(env, asyncio.run(latest_tenant_records(kafka_broker_url))[tenant]) == second

    assert main(["tenants", "update", tenant, "--no-webhook"]) == 0
    assert asyncio.run(latest_tenant_records(kafka_broker_url))[tenant].webhook_url is None
    assert main(["tenants", "update", tenant, "--rotate-webhook-secret"]) == 2
    assert "no webhook URL" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "complaint"),
    [
        (["--mps", "0"], "between 1 and 10000"),
        (["--mps", "fast"], "not a whole number"),
        (["--webhook-url", "ftp://x"], "http(s) URL"),
        (["--webhook-url", "https://user:pw@hooks.example/sms"], "must not carry a user name or password"),
    ],
)
def test_a_bad_rate_or_webhook_url_is_bad_usage(
    env: Keyring, capsys: pytest.CaptureFixture[str], option: list[str], complaint: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["tenants", "update", tenant_id(), *option])
    assert exited.value.code == 2
    assert complaint in capsys.readouterr().err


def test_update_of_an_unknown_tenant_is_one_sentence(env: Keyring, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tenants", "update", tenant_id(), "--mps", "1"]) == 1
    assert "no tenant" in capsys.readouterr().err


def test_add_registers_a_tenant_on_the_platform_default_and_list_shows_its_provider(
    env: Keyring, kafka_broker_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = tenant_id()
    assert main(["tenants", "add", tenant, "--mps", "4", "--webhook-url", "https://hooks.example/p"]) == 0
    secret = printed_secret(capsys.readouterr().out)

    record = asyncio.run(latest_tenant_records(kafka_broker_url))[tenant]
    assert (record.provider, record.verified, record.mps) == ("platform", False, 4)
    opened = env.unseal_platform(record.config).webhook_secret
    assert opened is not None
    assert opened.get_secret_value() == secret
    monkeypatch.setenv("SMSDISPATCH_DEFAULT_PROVIDER", "msg91")
    assert main(["tenants", "list"]) == 0
    listing = capsys.readouterr().out
    assert f"{tenant}: platform default (msg91), 4 segments/s" in listing
    assert secret not in listing


def test_update_and_rotate_work_on_a_platform_tenant_and_verify_says_there_is_nothing_to_verify(
    env: Keyring, kafka_broker_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = tenant_id()
    assert main(["tenants", "add", tenant, "--webhook-url", "https://hooks.example/q"]) == 0
    secret = printed_secret(capsys.readouterr().out)

    assert main(["tenants", "update", tenant, "--mps", "9"]) == 0
    assert main(["tenants", "verify", tenant]) == 1
    assert "no Twilio account of its own to verify" in capsys.readouterr().err
    new_key = generate_key()
    monkeypatch.setenv("SMSDISPATCH_ENCRYPTION_KEYS", f"{new_key},{os.environ['SMSDISPATCH_ENCRYPTION_KEYS']}")
    assert main(["tenants", "rotate"]) in (0, 1)  # other tests' tenants are sealed under keys this one lacks

    record = asyncio.run(latest_tenant_records(kafka_broker_url))[tenant]
    assert (record.provider, record.mps, record.config.kid) == ("platform", 9, Keyring.from_value(new_key).current_kid)
    opened = Keyring.from_value(os.environ["SMSDISPATCH_ENCRYPTION_KEYS"]).unseal_platform(record.config)
    assert opened.webhook_secret is not None
    assert opened.webhook_secret.get_secret_value() == secret


def test_set_turns_a_platform_tenant_into_a_twilio_one_keeping_its_webhook_secret(
    env: Keyring, kafka_broker_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = tenant_id()
    assert main(["tenants", "add", tenant, "--webhook-url", "https://hooks.example/r"]) == 0
    secret = printed_secret(capsys.readouterr().out)

    assert main(["tenants", "set", tenant, *LIVE_ARGS]) == 0

    record = asyncio.run(latest_tenant_records(kafka_broker_url))[tenant]
    assert (record.provider, record.verified, sealed_secret(env, record)) == ("twilio", True, secret)
