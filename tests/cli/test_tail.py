"""`smsdispatch tail`: one line per outcome as it arrives, filtered by tenant, raw JSON with --json.

Broker tests run the verb through ``smsdispatch.cli.main`` against the session's real broker, always with
--idle-timeout so a missing record fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine
from typing import Any

import pytest

from smsdispatch.cli import main
from smsdispatch.cli import tail as tail_verb
from smsdispatch.client import TopicRecord
from smsdispatch.contract import topics
from tests.client.records import create_contract_topics, dispatched, failed, new_tenant, produce, status

SAFETY_IDLE = "30"  # seconds without a matching record before the verb gives up (a failing test, not a hang)


@pytest.fixture
def broker(kafka_broker_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    create_contract_topics(kafka_broker_url)
    monkeypatch.setenv("SMSDISPATCH_BROKER", kafka_broker_url)
    return kafka_broker_url


def tail(*argv: str) -> int:
    return main(["tail", "--idle-timeout", SAFETY_IDLE, *argv])


def test_tail_prints_one_line_per_outcome_of_the_tenant_only(
    broker: str, kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = new_tenant()
    sent, failure = dispatched(tenant, "ok-1"), failed(tenant, "bad-1")
    asyncio.run(
        produce(
            kafka_bootstrap,
            [
                (topics.DISPATCHED, "someone-else", dispatched("someone-else", "theirs"), None),
                (topics.DISPATCHED, tenant, sent, None),
                (topics.FAILED, tenant, failure, None),
            ],
        )
    )

    assert tail("--tenant", tenant, "--from-beginning", "--max", "2") == 0

    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    dispatched_line = next(line for line in lines if " dispatched " in line)
    failed_line = next(line for line in lines if " failed " in line)
    assert f"{tenant}/ok-1 to +14155552671: queued {sent.provider_message_id}" in dispatched_line
    assert f"{tenant}/bad-1" in failed_line
    assert "provider_unavailable" in failed_line


def test_tail_json_prints_each_value_as_published(
    broker: str, kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = new_tenant()
    sent = dispatched(tenant, "ok-1")
    asyncio.run(produce(kafka_bootstrap, [(topics.DISPATCHED, tenant, sent, None)]))

    assert tail("--tenant", tenant, "--from-beginning", "--max", "1", "--json") == 0

    assert json.loads(capsys.readouterr().out) == json.loads(sent.model_dump_json())


def test_tail_gives_an_unreadable_record_a_line_and_goes_on(
    broker: str, kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = new_tenant()
    asyncio.run(
        produce(
            kafka_bootstrap,
            [
                (topics.FAILED, tenant, b"\xff not json", None),
                (topics.FAILED, tenant, b'{"tenant_id": "%s", "error": 3}' % tenant.encode(), None),
                (topics.FAILED, tenant, failed(tenant, "after"), None),
            ],
        )
    )

    assert tail("--topic", topics.FAILED, "--tenant", tenant, "--from-beginning", "--max", "3") == 0

    lines = capsys.readouterr().out.splitlines()
    assert [" unreadable sms.failed[" in line for line in lines] == [True, True, False]
    assert "not json" in lines[0]
    assert f"{tenant}/after" in lines[2]


def test_tail_reads_delivery_receipts_from_sms_status_when_asked(
    broker: str, kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = new_tenant()
    receipt = status(tenant, "r1", "undelivered")
    asyncio.run(produce(kafka_bootstrap, [(topics.STATUS, tenant, receipt, None)]))

    assert tail("--topic", topics.STATUS, "--tenant", tenant, "--from-beginning", "--max", "1") == 0

    assert f"status {tenant}/r1 {receipt.provider_message_id}: undelivered" in capsys.readouterr().out


def test_tail_prints_outcomes_published_after_it_started(
    broker: str, kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = new_tenant()
    stop = threading.Event()

    def keep_publishing() -> None:
        # tail starts at the end of the topics; publishing until it has printed proves it sees new records
        # without guessing how long it takes to start.
        async def loop() -> None:
            n = 0
            while not stop.is_set():
                await produce(kafka_bootstrap, [(topics.DISPATCHED, tenant, dispatched(tenant, f"live-{n}"), None)])
                n += 1
                await asyncio.sleep(0.3)

        asyncio.run(loop())

    publisher = threading.Thread(target=keep_publishing)
    publisher.start()
    try:
        assert tail("--tenant", tenant, "--max", "1") == 0
    finally:
        stop.set()
        publisher.join()

    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert f" dispatched {tenant}/live-" in out


def test_tail_stops_quietly_after_the_idle_timeout(broker: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tail", "--tenant", new_tenant(), "--idle-timeout", "1"]) == 0
    assert capsys.readouterr() == ("", "")


def test_ctrl_c_ends_tail_quietly_with_exit_0(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(coroutine: Coroutine[Any, Any, Any]) -> None:
        coroutine.close()
        raise KeyboardInterrupt

    monkeypatch.setattr(tail_verb.asyncio, "run", interrupted)
    assert main(["tail"]) == 0
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--topic", "sms.requested"], "--topic 'sms.requested' is not one of"),
        (["--max", "0"], "--max must be at least 1"),
        (["--idle-timeout", "-1"], "--idle-timeout must be a positive"),
    ],
)
def test_bad_usage_is_one_sentence_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tail", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def record(topic: str, value: bytes | None, key: bytes | None = b"acme") -> TopicRecord:
    return TopicRecord(topic=topic, partition=3, offset=17, timestamp_ms=0, key=key, value=value)


def test_records_of_other_tenants_are_left_out_by_value_or_by_key() -> None:
    value = dispatched("acme", "r1").to_bytes()
    assert tail_verb.format_record(record(topics.DISPATCHED, value, key=None), tenant="acme") is not None
    assert tail_verb.format_record(record(topics.DISPATCHED, value, key=b"globex"), tenant="globex") is None
    assert tail_verb.format_record(record(topics.FAILED, b"junk", key=b"globex"), tenant="acme") is None
    assert tail_verb.format_record(record(topics.FAILED, b"junk", key=b"acme"), tenant="acme") is not None


def test_json_mode_sends_records_that_are_not_json_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert tail_verb.format_record(record(topics.FAILED, b"junk"), as_json=True) is None
    assert "skipped sms.failed[3]@17: 'junk'" in capsys.readouterr().err


def test_an_empty_value_is_described_not_crashed_on() -> None:
    assert tail_verb.describe_record(record(topics.FAILED, None)).endswith("unreadable sms.failed[3]@17: (no value)")
