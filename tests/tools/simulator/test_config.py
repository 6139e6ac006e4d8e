"""Simulator configuration: what it accepts, what it refuses, and that it never shows a secret."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from smsdispatch.tools.simulator import SimAccount, SimulatorConfig, random_account_sid, random_api_key_sid

from .conftest import LIVE_SID, LIVE_TOKEN, MAIN_KEY, MAIN_KEY_SECRET, make_config


def test_repr_of_accounts_and_config_hides_tokens_and_key_secrets() -> None:
    config = make_config()

    shown = repr(config) + str(config) + repr(config.accounts[0])

    assert LIVE_TOKEN not in shown
    assert MAIN_KEY_SECRET not in shown
    assert LIVE_SID in shown


@pytest.mark.parametrize(
    "fields",
    [
        {"sid": "AC123"},
        {"sid": "SK" + "1" * 32},
        {"token": ""},
        {"senders": ["not a sender!"]},
        {"api_keys": {"AC" + "1" * 32: "secret"}},
        {"api_keys": {MAIN_KEY: "s"}, "standard_api_keys": frozenset({"SK" + "f" * 32})},
        {"status": "frozen"},
        {"account_type": "Gold"},
    ],
)
def test_invalid_account_settings_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SimAccount(**{"sid": LIVE_SID, "token": LIVE_TOKEN, **fields})


@pytest.mark.parametrize(
    "fields",
    [
        {"fail_rate": 1.5},
        {"undelivered_rate": -0.1},
        {"concurrency_limit": 0},
        {"latency_ms": -1},
        {"test_accounts": [SimAccount(sid=LIVE_SID, token="t")]},  # the same SID twice
        {"test_accounts": [SimAccount(sid="AC" + "e" * 32, token="t", api_keys={MAIN_KEY: "s"})]},
    ],
)
def test_invalid_simulator_settings_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        make_config(**fields)


def test_one_api_key_cannot_belong_to_two_accounts() -> None:
    shared = {MAIN_KEY: "s"}
    accounts = [
        SimAccount(sid=random_account_sid(), token="a", api_keys=shared),
        SimAccount(sid=random_account_sid(), token="b", api_keys=shared),
    ]

    with pytest.raises(ValidationError, match="two accounts"):
        SimulatorConfig(accounts=accounts)


def test_random_sids_have_twilios_shape() -> None:
    account, key = random_account_sid(), random_api_key_sid()

    assert account.startswith("AC")
    assert key.startswith("SK")
    assert len(account) == len(key) == 34
    SimAccount(sid=account, token="t", api_keys={key: "s"})  # accepted by the validators
