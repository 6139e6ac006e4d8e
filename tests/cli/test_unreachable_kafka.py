"""Every verb that talks to Kafka says so in one sentence when Kafka is not there: no traceback, exit 1."""

from __future__ import annotations

import pytest

from smsdispatch.adapters.crypto import generate_key
from smsdispatch.cli import main
from smsdispatch.tools.testing.kafka import free_ports


@pytest.mark.parametrize(
    "argv",
    [
        ["send", "--tenant", "acme", "--to", "+14155552671", "--body", "hi"],
        ["tenants", "list"],
        ["tail", "--max", "1"],
        ["replay", "--topic", "sms.failed"],
    ],
    ids=lambda argv: " ".join(argv[:2]),
)
def test_an_unreachable_broker_is_one_sentence_and_exit_1(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (closed_port,) = free_ports(1)
    monkeypatch.setenv("SMSDISPATCH_BROKER", f"kafka://127.0.0.1:{closed_port}")
    monkeypatch.setenv("SMSDISPATCH_ENCRYPTION_KEYS", generate_key())

    assert main(argv) == 1

    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert f"127.0.0.1:{closed_port}" in err
    assert "Traceback" not in err
