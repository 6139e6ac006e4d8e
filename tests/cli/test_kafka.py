"""``smsdispatch kafka`` without a JVM: argument checks, status/stop of a broker that is not running, and
the one-sentence error for a missing Java. The real lifecycle is in tests/tools/localkafka/test_broker.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from smsdispatch.cli import main
from smsdispatch.tools.testing.kafka import free_ports


def test_status_of_a_broker_that_never_started_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (port,) = free_ports(1)

    assert main(["kafka", "status", "--port", str(port), "--data-dir", str(tmp_path)]) == 1
    assert f"Kafka is not running on 127.0.0.1:{port}" in capsys.readouterr().out


def test_stop_of_a_broker_that_is_not_running_is_harmless(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (port,) = free_ports(1)

    assert main(["kafka", "stop", "--port", str(port), "--data-dir", str(tmp_path)]) == 0
    assert "nothing to stop" in capsys.readouterr().out


def test_start_without_java_exits_1_with_one_sentence_naming_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    port = free_ports(1)[0]

    code = main(["kafka", "start", "--port", str(port), "--data-dir", str(tmp_path / "kafka")])

    err = capsys.readouterr().err.strip()
    assert code == 1
    assert err.startswith("smsdispatch kafka: Java was not found")
    assert "install Java 17 or newer" in err
    assert len(err.splitlines()) == 1
    assert "Traceback" not in err


@pytest.mark.parametrize("port", ["0", "65535", "http", "-1"])
def test_port_outside_1_to_65534_is_a_usage_error(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["kafka", "status", "--port", port])

    assert exited.value.code == 2
    assert "--port" in capsys.readouterr().err


def test_unknown_action_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["kafka", "restart"])

    assert exited.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
