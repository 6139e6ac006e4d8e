"""MSG91 settings of the simulator: the ``--msg91*`` flags, what the config refuses, and that neither the config, the
CLI's errors and banner nor ``--help`` show an authkey or the report URL's token."""

from __future__ import annotations

import argparse
from typing import Any

import pytest
from pydantic import ValidationError

from smsdispatch.cli import main
from smsdispatch.cli.simulator import add_arguments, banner, build_config
from smsdispatch.tools.simulator import Msg91Account

from .conftest import LIVE_SID, LIVE_TOKEN, make_config

AUTHKEY = "msg91-authkey-0123456789abcdef"
REPORT_URL = "http://127.0.0.1:8001/msg91/report/report-token-5ecret"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_msg91_flags_build_the_config() -> None:
    config = build_config(
        parse(
            *("--msg91", f"{AUTHKEY}:tpl-1,tpl_2", "--msg91", "second-key-000:tpl-3"),
            *("--msg91-report-url", REPORT_URL, "--msg91-report-shape", "new"),
            *("--msg91-report-delay-ms", "50", "--msg91-undelivered-rate", "0.1", "--msg91-body-var", "text"),
        )
    )

    first, second = config.msg91_accounts
    assert (first.authkey.get_secret_value(), first.template_ids) == (AUTHKEY, frozenset({"tpl-1", "tpl_2"}))
    assert (second.authkey.get_secret_value(), second.template_ids) == ("second-key-000", frozenset({"tpl-3"}))
    assert config.msg91_report_url is not None
    assert config.msg91_report_url.get_secret_value() == REPORT_URL
    assert (config.msg91_report_shape, config.msg91_report_delay_s) == ("new", 0.05)
    assert (config.msg91_undelivered_rate, config.msg91_body_var) == (0.1, "text")
    assert config.accounts == []


def test_msg91_defaults_report_v3_after_the_status_delay() -> None:
    config = build_config(parse("--msg91", f"{AUTHKEY}:tpl-1", "--status-delay-ms", "70"))

    assert (config.msg91_report_url, config.msg91_report_shape, config.msg91_report_delay_s) == (None, "v3", 0.07)
    assert (config.msg91_undelivered_rate, config.msg91_body_var) == (0, "body")


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--msg91", AUTHKEY], "--msg91 must look like AUTHKEY:TEMPLATE_ID"),
        (["--msg91", f"{AUTHKEY}:"], "--msg91 must look like AUTHKEY:TEMPLATE_ID"),
        (["--msg91", f"{AUTHKEY}:tpl 1"], "msg91_accounts.0.template_ids"),
        (["--msg91", f"{AUTHKEY}:t", "--msg91", f"{AUTHKEY}:u"], "configured twice"),
        (["--msg91", f"{AUTHKEY}:t", "--msg91-report-url", "ftp://h/msg91/report/report-token-5ecret"], "report URL"),
        (["--msg91", f"{AUTHKEY}:t", "--msg91-report-shape", "v2"], "msg91_report_shape"),
        (["--msg91", f"{AUTHKEY}:t", "--msg91-report-delay-ms", "soon"], "--msg91-report-delay-ms must be a number"),
        (["--msg91", f"{AUTHKEY}:t", "--msg91-undelivered-rate", "2"], "msg91_undelivered_rate"),
        (["--msg91", f"{AUTHKEY}:t", "--msg91-body-var", ""], "msg91_body_var"),
    ],
)
def test_bad_msg91_flags_exit_2_with_one_sentence_and_no_secret(
    capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    code = main(["simulator", *argv])

    err = capsys.readouterr().err
    assert code == 2
    assert fragment in err
    assert err.count("\n") == 1
    assert AUTHKEY not in err
    assert "report-token-5ecret" not in err


def test_no_account_of_any_kind_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulator"]) == 2
    assert "--msg91" in capsys.readouterr().err


def test_the_banner_names_msg91_accounts_by_label_only() -> None:
    config = build_config(
        parse(
            *("--account", f"{LIVE_SID}:{LIVE_TOKEN}", "--msg91", f"{AUTHKEY}:tpl-1,tpl-2"),
            *("--msg91-report-url", REPORT_URL),
        )
    )

    shown = "\n".join(banner(config, "http://127.0.0.1:8099"))

    assert shown.splitlines()[0] == "Twilio simulator listening on http://127.0.0.1:8099"
    assert "MSG91 Flow API at http://127.0.0.1:8099/api/v5/flow/: msg91-… (2 templates); v3 reports" in shown
    assert AUTHKEY not in shown
    assert REPORT_URL not in shown
    assert LIVE_TOKEN not in shown


def test_help_lists_the_msg91_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["simulator", "--help"])

    shown = capsys.readouterr().out
    for option in ("--msg91 AUTHKEY:TEMPLATE_ID[,TEMPLATE_ID...]", "--msg91-report-url URL", "--msg91-report-shape"):
        assert option in shown
    assert "/api/v5/flow/" in shown
    assert "/_sim/msg91/messages" in shown


def test_repr_of_the_config_hides_authkeys_and_the_report_url() -> None:
    config = make_config(
        msg91_accounts=[Msg91Account(authkey=AUTHKEY, template_ids={"t"})], msg91_report_url=REPORT_URL
    )

    shown = repr(config) + str(config) + repr(config.msg91_accounts[0])

    assert AUTHKEY not in shown
    assert "report-token-5ecret" not in shown


@pytest.mark.parametrize(
    ("key", "label"),
    [(AUTHKEY, "msg91-…"), ("abcd", "ab…"), ("k", "…")],
)
def test_an_accounts_label_never_holds_its_whole_key(key: str, label: str) -> None:
    assert Msg91Account(authkey=key, template_ids={"t"}).label == label


@pytest.mark.parametrize(
    "fields",
    [
        {"authkey": ""},
        {"authkey": " padded "},
        {"template_ids": frozenset()},
        {"template_ids": {"has:colon"}},
        {"template_ids": {""}},
    ],
)
def test_invalid_msg91_accounts_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Msg91Account(**{"authkey": AUTHKEY, "template_ids": {"t"}, **fields})
