"""`smsdispatch suppressions list|add|remove`: usage checked before Kafka, one sentence when Kafka is away,
and add -> list -> remove -> list against the real broker."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from smsdispatch.cli import main
from smsdispatch.client import read_topic
from smsdispatch.contract import topics
from smsdispatch.tools.testing.kafka import free_ports

NUMBER = "+14155552671"


@pytest.fixture
def no_kafka(monkeypatch: pytest.MonkeyPatch) -> str:
    """A broker address nothing listens on: a verb that reaches for Kafka fails there."""
    (closed_port,) = free_ports(1)
    broker = f"kafka://127.0.0.1:{closed_port}"
    monkeypatch.setenv("SMSDISPATCH_BROKER", broker)
    return broker


def one_sentence(err: str) -> str:
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    return err.strip()


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["suppressions", "add", "acme/eu", NUMBER], "TENANT 'acme/eu'"),
        (["suppressions", "add", "acme", "14155552671"], "NUMBER '14155552671' must be an E.164 phone number"),
        (["suppressions", "remove", "acme", "+1415"], "NUMBER '+1415' is not a possible phone number"),
        (["suppressions", "remove", "", NUMBER], "TENANT ''"),
        (["suppressions", "list", "--tenant", "a b"], "TENANT 'a b'"),
    ],
    ids=["add-bad-tenant", "add-not-e164", "remove-impossible-number", "remove-empty-tenant", "list-bad-tenant"],
)
def test_bad_usage_is_one_sentence_and_exit_2_without_contacting_kafka(
    argv: list[str], named: str, no_kafka: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2

    err = one_sentence(capsys.readouterr().err)
    assert err.startswith(f"smsdispatch suppressions: {named}")
    assert "Kafka" not in err


@pytest.mark.parametrize(
    "argv",
    [["suppressions"], ["suppressions", "add", "acme"], ["suppressions", "purge"], ["suppressions", "list", "x"]],
)
def test_missing_or_unknown_arguments_exit_2_with_the_usage(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)

    assert caught.value.code == 2
    assert capsys.readouterr().err.startswith("usage: smsdispatch")


@pytest.mark.parametrize("action", [[], ["list"], ["add"], ["remove"]], ids=lambda a: " ".join(a) or "verb")
def test_every_action_has_help(action: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["suppressions", *action, "--help"])

    assert caught.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: smsdispatch suppressions {' '.join(action)}".rstrip())


@pytest.mark.parametrize(
    "argv", [["list"], ["add", "acme", NUMBER], ["remove", "acme", NUMBER]], ids=lambda argv: argv[0]
)
def test_an_unreachable_broker_is_one_sentence_and_exit_1(
    argv: list[str], no_kafka: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["suppressions", *argv]) == 1

    err = one_sentence(capsys.readouterr().err)
    assert f"cannot reach Kafka at {no_kafka}" in err


def last_record_of(broker: str, key: bytes) -> tuple[bytes | None, ...]:
    async def collect() -> tuple[bytes | None, ...]:
        found: tuple[bytes | None, ...] = ()
        async for record in read_topic(broker, [topics.SUPPRESSIONS]):
            if record.key == key:
                found = (record.value,)
        return found

    return asyncio.run(collect())


def test_add_list_remove_list_round_trip(
    kafka_broker_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SMSDISPATCH_BROKER", kafka_broker_url)
    tenant = f"t-{uuid.uuid4().hex[:10]}"

    assert main(["suppressions", "add", tenant, NUMBER]) == 0
    added = capsys.readouterr().out
    assert main(["suppressions", "list", "--tenant", tenant]) == 0
    listed = capsys.readouterr().out
    assert main(["suppressions", "list"]) == 0
    listed_with_others = capsys.readouterr().out
    assert main(["suppressions", "remove", tenant, NUMBER]) == 0
    removed = capsys.readouterr().out
    assert main(["suppressions", "list", "--tenant", tenant]) == 0
    listed_after = capsys.readouterr().out

    assert added == f"{tenant} {NUMBER}: opted out\n"
    (line,) = listed.splitlines()
    assert line.startswith(f"{tenant} {NUMBER} operator since 20")
    assert line in listed_with_others.splitlines()
    assert removed == f"{tenant} {NUMBER}: opted back in\n"
    assert listed_after == f"no opted-out numbers for {tenant}\n"
    assert last_record_of(kafka_broker_url, f"{tenant}/{NUMBER}".encode()) == (None,)  # a tombstone


def test_remove_of_a_number_not_on_the_list_succeeds_and_lists_nothing(
    kafka_broker_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SMSDISPATCH_BROKER", kafka_broker_url)
    tenant = f"t-{uuid.uuid4().hex[:10]}"

    assert main(["suppressions", "remove", tenant, NUMBER]) == 0
    capsys.readouterr()
    assert main(["suppressions", "list", "--tenant", tenant]) == 0

    assert capsys.readouterr().out == f"no opted-out numbers for {tenant}\n"
