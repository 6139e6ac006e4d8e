"""`smsdispatch keygen`: prints one new key and nothing else."""

from __future__ import annotations

import base64

import pytest

from smsdispatch.adapters.crypto import Keyring
from smsdispatch.cli import main


def test_keygen_prints_one_valid_key_and_nothing_else(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keygen"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.endswith("\n")
    assert out.count("\n") == 1
    key = out.strip()
    assert len(base64.urlsafe_b64decode(key)) == 32
    assert len(Keyring.from_value(key).kids) == 1


def test_keygen_prints_a_new_key_every_time(capsys: pytest.CaptureFixture[str]) -> None:
    main(["keygen"])
    first = capsys.readouterr().out
    main(["keygen"])
    assert capsys.readouterr().out != first


def test_keygen_with_an_argument_is_bad_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["keygen", "--length", "64"])
    assert caught.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err
