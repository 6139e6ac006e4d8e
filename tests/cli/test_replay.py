"""`smsdispatch replay` through ``smsdispatch.cli.main`` against the real broker (no worker needed).

Each test seeds its own tenant's requests and failures, replays them, and reads back sms.requested.
"""

from __future__ import annotations

import asyncio
import io
import re
from datetime import UTC, datetime

import pytest

from smsdispatch.cli import main
from smsdispatch.cli.replay import ProgressLine, parse_time
from smsdispatch.client import ReplayProgress, derive_request_id
from smsdispatch.contract import ErrorCode, topics
from tests.client.records import create_contract_topics, failed, new_tenant, now_ms, produce, requested, requests_of

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def broker(kafka_broker_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    create_contract_topics(kafka_broker_url)
    monkeypatch.setenv("SMSDISPATCH_BROKER", kafka_broker_url)
    return kafka_broker_url


def seed(kafka_bootstrap: str, tenant: str) -> None:
    """r1, r2 failed as rate_limited, r3 as provider_rejected."""
    codes = {"r1": ErrorCode.RATE_LIMITED, "r2": ErrorCode.RATE_LIMITED, "r3": ErrorCode.PROVIDER_REJECTED}
    asyncio.run(
        produce(
            kafka_bootstrap,
            [(topics.REQUESTED, tenant, requested(tenant, rid, f"body of {rid}"), None) for rid in codes]
            + [(topics.FAILED, tenant, failed(tenant, rid, code), None) for rid, code in codes.items()],
        )
    )


def resent_ids(broker: str, tenant: str, since_ms: int) -> list[str]:
    documents = asyncio.run(requests_of(broker, tenant, since_ms))
    return [str(doc["request_id"]) for _, doc in documents if doc.get("resend_of")]


def test_replay_resends_matching_failures_then_the_same_replay_id_resends_nothing(
    broker: str, kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant, started = new_tenant(), now_ms() - 1000
    seed(kafka_bootstrap, tenant)
    argv = ["replay", "--topic", "sms.failed", "--since", "5m", "--tenant", tenant, "--error-code", "rate_limited"]

    assert main(argv) == 0
    out = capsys.readouterr().out
    replay_id = re.search(r"^replay id: (\S+)$", out, re.MULTILINE).group(1)  # type: ignore[union-attr]
    assert "matched 2 on sms.failed: resent 2, already replayed 0, not replayable 0" in out
    assert f"resent {tenant}/r1 as {derive_request_id(replay_id, tenant, 'r1')} to +14155552671" in out
    expected = [derive_request_id(replay_id, tenant, rid) for rid in ("r1", "r2")]
    assert resent_ids(broker, tenant, started) == expected

    assert main([*argv, "--replay-id", replay_id]) == 0
    assert "matched 2 on sms.failed: resent 0, already replayed 2, not replayable 0" in capsys.readouterr().out
    assert resent_ids(broker, tenant, started) == expected


def test_dry_run_lists_what_would_be_resent_and_publishes_nothing(
    broker: str, kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant, started = new_tenant(), now_ms() - 1000
    seed(kafka_bootstrap, tenant)

    argv = ["replay", "--topic", "sms.failed", "--tenant", tenant, "--since", "5m", "--dry-run", "--show", "1"]
    assert main(argv) == 0

    out = capsys.readouterr().out
    assert sum(line.startswith(f"would resend {tenant}/r") for line in out.splitlines()) == 1
    assert "… and 2 more" in out
    assert "would resend 3" in out
    assert "dry run: nothing was published" in out
    assert resent_ids(broker, tenant, started) == []


def test_replay_of_requests_by_time_window_with_rfc3339_bounds(
    broker: str, kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant, now = new_tenant(), now_ms()
    hour = 3600 * 1000
    asyncio.run(
        produce(
            kafka_bootstrap,
            [
                (topics.REQUESTED, tenant, requested(tenant, "old"), now - 3 * hour),
                (topics.REQUESTED, tenant, requested(tenant, "inside"), now - 2 * hour),
                (topics.REQUESTED, tenant, requested(tenant, "recent"), now - hour),
            ],
        )
    )
    since = datetime.fromtimestamp((now - 150 * 60_000) / 1000, UTC).isoformat().replace("+00:00", "Z")

    assert main(["replay", "--topic", "sms.requested", "--tenant", tenant, "--since", since, "--until", "90m"]) == 0

    assert "matched 1 on sms.requested: resent 1" in capsys.readouterr().out
    documents = asyncio.run(requests_of(broker, tenant, now - 4 * hour))
    assert [doc["resend_of"] for _, doc in documents if doc.get("resend_of")] == ["inside"]


def test_not_replayable_failures_are_counted_by_reason(
    broker: str, kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = new_tenant()
    asyncio.run(produce(kafka_bootstrap, [(topics.FAILED, tenant, failed(tenant, "lost"), None)]))

    assert main(["replay", "--topic", "sms.failed", "--tenant", tenant, "--since", "5m"]) == 0

    out = capsys.readouterr().out
    assert "not replayable 1 (original request not found on sms.requested: 1)" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--topic", "sms.dispatched"], "the topic to replay must be sms.failed or sms.requested"),
        (["--topic", "sms.failed", "--since", "yesterday"], "--since 'yesterday' is neither an RFC 3339 time"),
        (["--topic", "sms.failed", "--error-code", "boom"], "--error-code 'boom' is not one of invalid_request"),
        (["--topic", "sms.requested", "--error-code", "rate_limited"], "error codes only filter sms.failed"),
        (["--topic", "sms.failed", "--replay-id", "a b"], "replay id 'a b' must be"),
        (["--topic", "sms.failed", "--since", "2h", "--from-offset", "3"], "not both"),
        (["--topic", "sms.failed", "--since", "1h", "--until", "2h"], "starts after it ends"),
    ],
)
def test_bad_usage_is_one_sentence_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", *argv]) == 2
    out, err = capsys.readouterr()
    assert message in err
    assert err.count("\n") == 1
    assert out == ""


def test_an_unreachable_broker_is_one_sentence_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SMSDISPATCH_BROKER", "kafka://127.0.0.1:9")
    assert main(["replay", "--topic", "sms.failed", "--replay-id", "down"]) == 1
    out, err = capsys.readouterr()
    assert out == "replay id: down\n"
    assert err == "smsdispatch replay: cannot reach Kafka at kafka://127.0.0.1:9 (KafkaConnectionError).\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", datetime(2024, 5, 1, 10, 0, tzinfo=UTC)),
        ("90s", datetime(2024, 5, 1, 11, 58, 30, tzinfo=UTC)),
        ("1.5d", datetime(2024, 4, 30, 0, 0, tzinfo=UTC)),
        ("1w", datetime(2024, 4, 24, 12, 0, tzinfo=UTC)),
        ("2024-04-30T08:15:00Z", datetime(2024, 4, 30, 8, 15, tzinfo=UTC)),
        ("2024-04-30T10:15:00+02:00", datetime(2024, 4, 30, 8, 15, tzinfo=UTC)),
        ("2024-04-30T08:15:00", datetime(2024, 4, 30, 8, 15, tzinfo=UTC)),
        ("2024-04-30", datetime(2024, 4, 30, tzinfo=UTC)),
    ],
)
def test_times_are_rfc3339_or_a_time_ago(text: str, expected: datetime) -> None:
    assert parse_time(text, NOW, "--since") == int(expected.timestamp() * 1000)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_is_a_bar_redrawn_in_place() -> None:
    terminal = Terminal()
    show = ProgressLine(terminal)
    show(ReplayProgress("reading sms.failed", 500, 2000))
    show(ReplayProgress("reading sms.failed", 1800, 1800, finished=True))
    show(ReplayProgress("publishing", 12, 12, finished=True))  # too short to have drawn a bar: stays silent

    assert terminal.getvalue() == (
        "\rreading sms.failed [#######.......................]  25% 500/2,000"
        "\rreading sms.failed [##############################] 100% 1,800/1,800\n"
    )


def test_progress_in_a_log_is_an_occasional_plain_line() -> None:
    log = io.StringIO()
    show = ProgressLine(log)
    for done in range(500, 25_001, 500):
        show(ReplayProgress("reading sms.requested", done, 30_000))
    show(ReplayProgress("reading sms.requested", 25_100, 25_100, finished=True))
    show(ReplayProgress("publishing", 40, 40, finished=True))

    assert log.getvalue().splitlines() == [
        "reading sms.requested: 10,000 of 30,000",
        "reading sms.requested: 20,000 of 30,000",
        "reading sms.requested: 25,100 of 25,100",
    ]
