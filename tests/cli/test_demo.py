"""``smsdispatch demo`` end to end: against the session's broker it runs to completion, its summary shows every
path a request can take, and nothing it started outlives it, also when it is stopped mid-run. Without a broker
and without Java it says what to install."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from smsdispatch.cli import main
from smsdispatch.tools.testing.kafka import free_ports

CHILD_LINE = re.compile(r"^\s+(broker|simulator|worker)\s+\S+ \(pid (\d+)\)$", re.MULTILINE)


def demo_env(broker_url: str) -> dict[str, str]:
    """This environment with the session's broker, and none of the variables the demo should choose itself."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SMSDISPATCH_")}
    return {**env, "SMSDISPATCH_BROKER": broker_url, "PYTHONUNBUFFERED": "1"}


def started_children(output: str) -> dict[str, int]:
    return {name: int(pid) for name, pid in CHILD_LINE.findall(output)}


def alive(pid: int) -> bool:
    """Whether ``pid`` is still one of our processes (a reused pid running something else does not count)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return b"smsdispatch" in cmdline and state != "Z"


def summary_line(output: str, label: str) -> str:
    match = re.search(rf"^\s*{re.escape(label)}\s*(.*)$", output, re.MULTILINE)
    assert match is not None, f"no {label!r} line in:\n{output}"
    return match.group(1)


def counts(line: str) -> dict[str, int]:
    """``delivered 6, failed 8`` -> {"delivered": 6, "failed": 8}"""
    return {name: int(count) for name, count in re.findall(r"([\w.-]+) (\d+)", line)}


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "demo"


@pytest.mark.slow
@pytest.mark.kafka
def test_demo_runs_to_completion_and_summarises_every_path(kafka_broker_url: str, run_dir: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "smsdispatch", "demo", "--dir", str(run_dir)],
        env=demo_env(kafka_broker_url),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    output = completed.stdout

    assert completed.returncode == 0, f"{output}\n{completed.stderr}"
    outcomes = counts(summary_line(output, "outcomes on the topics:"))
    assert outcomes["dispatched"] == 10
    assert outcomes["failed"] == 10
    # The platform default sends for the tenant added without a provider and the one not verified on Twilio.
    assert counts(summary_line(output, "by provider:")) == {"twilio": 12, "msg91": 3}
    by_status = counts(summary_line(output, "by status:"))
    # Every live Twilio message through its signed status callback, both MSG91 ones through their reports.
    assert by_status["delivered"] == 8
    assert by_status["queued"] == 1  # test credentials: accepted, never delivered
    assert by_status["failed"] == 10
    assert re.search(r"-platform\s+\S+\s+msg91\s+delivered", output), output
    assert counts(summary_line(output, "by error code:")) == {
        "expired": 1,
        "invalid_request": 1,
        "provider_rejected": 6,
        "recipient_opted_out": 1,
        "unknown_tenant": 1,
    }
    assert counts(summary_line(output, "by provider code:")) == {
        **dict.fromkeys(["21211", "21408", "21612", "21614"], 1),
        "21610": 2,  # Twilio's refusal of the magic number, and the opted-out recipient refused without a send
        "202": 1,  # MSG91's invalid number
    }
    webhooks = summary_line(output, "webhooks:")
    assert "verified with standardwebhooks" in webhooks
    received, verified = (int(word) for word in re.findall(r"(\d+) (?:received|verified)", webhooks))
    assert received == verified > 0
    idempotency = summary_line(output, "idempotency:")
    assert "2 outcomes, the same" in idempotency
    assert "1 SMS at the simulator" in idempotency
    assert "(!)" not in output
    children = started_children(output)
    assert set(children) == {"simulator", "worker"}  # the broker was given, so the demo started none
    assert not [name for name, pid in children.items() if alive(pid)]
    assert (run_dir / "worker.log").stat().st_size > 0


@pytest.mark.slow
@pytest.mark.kafka
def test_sigterm_mid_run_stops_every_child_and_exits_130(kafka_broker_url: str, run_dir: Path) -> None:
    demo = subprocess.Popen(
        [sys.executable, "-m", "smsdispatch", "demo", "--dir", str(run_dir)],
        env=demo_env(kafka_broker_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen = ""
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            seen += line
            if "worker" in started_children(seen):
                break
        demo.send_signal(signal.SIGTERM)
        rest, err = demo.communicate(timeout=120)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    output = seen + rest

    assert demo.returncode == 130, f"{output}\n{err}"
    assert err.strip().endswith("smsdispatch demo: interrupted.")
    children = started_children(output)
    assert set(children) == {"simulator", "worker"}
    assert not [name for name, pid in children.items() if alive(pid)]


def test_without_a_broker_or_java_it_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SMSDISPATCH_BROKER", raising=False)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))

    code = main(["demo", "--dir", str(tmp_path / "demo")])

    err = capsys.readouterr().err.strip()
    assert code == 1
    assert err.startswith("smsdispatch demo: Java was not found")
    assert "install Java 17 or newer" in err
    assert len(err.splitlines()) == 1


def test_an_unreachable_broker_is_one_sentence_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (port,) = free_ports(1)
    monkeypatch.setenv("SMSDISPATCH_BROKER", f"kafka://127.0.0.1:{port}")

    code = main(["demo", "--dir", str(tmp_path / "demo")])

    err = capsys.readouterr().err.strip()
    assert code == 1
    assert err.startswith(f"smsdispatch demo: cannot reach Kafka at kafka://127.0.0.1:{port}")
    assert "unset SMSDISPATCH_BROKER" in err
    assert len(err.splitlines()) == 1
