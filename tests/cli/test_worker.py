"""A data dir has one worker, and a worker refuses URLs it cannot use safely before it starts. (A worker told to
stop exits within its bound: tests/runtime/test_launch.py.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from smsdispatch.adapters.crypto import generate_key
from smsdispatch.cli import main as cli
from smsdispatch.cli._common import CliError
from smsdispatch.cli.worker import lock_data_dir


def test_a_second_worker_on_the_same_data_dir_is_refused_with_one_sentence_naming_the_first(tmp_path: Path) -> None:
    first = lock_data_dir(tmp_path)
    try:
        with pytest.raises(CliError) as refused:
            lock_data_dir(tmp_path)
    finally:
        first.close()

    message = str(refused.value)
    assert message.startswith(f"--data-dir {tmp_path} is in use by another worker (pid {os.getpid()})")
    assert message.endswith("give each worker its own --data-dir.")


def test_the_data_dir_is_free_again_once_its_worker_is_gone(tmp_path: Path) -> None:
    lock_data_dir(tmp_path).close()

    lock_data_dir(tmp_path).close()


def test_a_twilio_base_url_with_a_password_is_refused_in_one_sentence_that_does_not_repeat_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("SMSDISPATCH_ENCRYPTION_KEYS", generate_key())
    monkeypatch.setenv("SMSDISPATCH_TWILIO_BASE_URL", "https://proxy-user:pr0xy-s3cret@twilio-proxy.example.com")

    code = cli(["worker", "--data-dir", str(tmp_path)])

    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == (
        "smsdispatch worker: The Twilio base URL must not carry a user name or password (SMSDISPATCH_TWILIO_BASE_URL)."
    )
    assert "pr0xy-s3cret" not in err


@pytest.mark.parametrize(
    ("settings", "complaint"),
    [
        ({}, "SMSDISPATCH_DEFAULT_PROVIDER=msg91 needs SMSDISPATCH_MSG91_AUTHKEY and SMSDISPATCH_MSG91_TEMPLATE_ID."),
        (
            {"SMSDISPATCH_MSG91_AUTHKEY": "k3y-s3cret"},
            "SMSDISPATCH_DEFAULT_PROVIDER=msg91 needs SMSDISPATCH_MSG91_TEMPLATE_ID.",
        ),
        (
            {
                "SMSDISPATCH_MSG91_AUTHKEY": "k3y-s3cret",
                "SMSDISPATCH_MSG91_TEMPLATE_ID": "tpl",
                "SMSDISPATCH_MSG91_BASE_URL": "https://u:k3y-s3cret@msg91.example",
            },
            "SMSDISPATCH_MSG91_BASE_URL must be an http(s) URL with a host and no user name or password.",
        ),
    ],
    ids=["nothing", "no-template", "password-in-url"],
)
def test_an_incomplete_msg91_default_is_refused_in_one_sentence(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    settings: dict[str, str],
    complaint: str,
) -> None:
    monkeypatch.setenv("SMSDISPATCH_ENCRYPTION_KEYS", generate_key())
    monkeypatch.setenv("SMSDISPATCH_DEFAULT_PROVIDER", "msg91")
    for name, value in settings.items():
        monkeypatch.setenv(name, value)

    code = cli(["worker", "--data-dir", str(tmp_path)])

    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == f"smsdispatch worker: {complaint}"
    assert "k3y-s3cret" not in err
