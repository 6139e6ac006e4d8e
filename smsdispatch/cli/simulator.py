"""Run the simulator on 127.0.0.1: Twilio's REST API v2010 for messages, and MSG91's Flow API with --msg91.

Live accounts own the senders listed after their token and follow the message lifecycle with signed status
callbacks; test accounts follow Twilio's test-credential rules (magic numbers, 403 for everything but sending).
GET /_sim/messages lists every accepted message; POST /_sim/faults {"mode": ..., "count": N} makes the next N
creates fail (modes: rate_limit, error_500_before_accept, error_500_after_accept, drop_after_accept).
Creates take Twilio's ValidityPeriod (1-36000 s): with --sender-mps N each sender sends at most N segments/s, and
a message still queued when its validity runs out ends failed with 30001. POST /_sim/inbound {"account_sid",
"from", "to", "body", "url"} plays a recipient replying: STOP opts them out (creates get 400/21610), START opts
back in, and Twilio's signed incoming-message webhook is POSTed to url.

With --msg91 AUTHKEY:TEMPLATE_ID,... it also speaks MSG91's Flow API: POST /api/v5/flow/ with the header authkey
and a JSON body {"template_id", "sender", "CRQID", "recipients": [{"mobiles": "919876543210", "body": ...}]}.
Errors come on HTTP 200 as {"type": "error", "message", "code"} (207 authkey, 101 parameter, 102 template, 202
mobile); mobiles ending 0301, 0418, 0429, 0500 and 0408 answer 301, 418, HTTP 429, HTTP 500 after storing, and a
30 s hang after storing; endings 0002, 0009, 0016, 0017 and 0025 are reported with that status, others delivered
(1). Each message's delivery report is POSTed as JSON to --msg91-report-url; GET /_sim/msg91/messages lists them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import TYPE_CHECKING, Any

from smsdispatch.cli._common import CliError

if TYPE_CHECKING:  # the simulator (and aiohttp) is imported only when the verb runs
    from smsdispatch.tools.simulator import SimulatorConfig

_ACCOUNT_FLAGS = {"trial": "Trial", "full": "Full", "active": "active", "suspended": "suspended", "closed": "closed"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", default="8099", metavar="N", help="port to listen on (default: %(default)s)")
    parser.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="SID:TOKEN[:FROM,...[:STATE]]",
        help="a live account owning the listed senders (E.164 numbers, short codes, alphanumeric IDs, MG… "
        "service SIDs); STATE is a comma list of trial|full and active|suspended|closed (default full,active). "
        "Repeatable.",
    )
    parser.add_argument(
        "--test-account",
        action="append",
        default=[],
        metavar="SID:TOKEN",
        help="test credentials following Twilio's magic-number rules. Repeatable.",
    )
    parser.add_argument(
        "--api-key",
        action="append",
        default=[],
        metavar="ACCOUNT_SID:SK…:SECRET[:standard]",
        help="an API key of a live account; a Main key unless marked standard (standard keys cannot fetch the "
        "account, as on Twilio). Repeatable.",
    )
    parser.add_argument("--latency-ms", default="0", metavar="N", help="delay added to every API response")
    parser.add_argument(
        "--concurrency-limit", metavar="N", help="requests in flight per account beyond N get 429/20429"
    )
    parser.add_argument("--fail-rate", default="0", metavar="F", help="share of creates that fail with 500 or a cut")
    parser.add_argument(
        "--undelivered-rate", default="0", metavar="F", help="share of live messages ending undelivered (30xxx)"
    )
    parser.add_argument(
        "--status-delay-ms", default="200", metavar="N", help="time between status steps (default: %(default)s)"
    )
    parser.add_argument(
        "--sender-mps",
        metavar="N",
        help="each sender releases queued messages at most N segments per second, as Twilio does; a message still "
        "queued when its ValidityPeriod runs out ends failed/30001 (default: unlimited)",
    )
    parser.add_argument("--seed", metavar="N", help="seed for SIDs, failures and outcomes, for reproducible runs")
    parser.add_argument(
        "--msg91",
        action="append",
        default=[],
        metavar="AUTHKEY:TEMPLATE_ID[,TEMPLATE_ID...]",
        help="an MSG91 account: its auth key and the Flow template ids it owns. Repeatable.",
    )
    parser.add_argument(
        "--msg91-report-url",
        metavar="URL",
        help="where MSG91 delivery reports are POSTed, one per message (default: none are sent)",
    )
    parser.add_argument(
        "--msg91-report-shape",
        default="v3",
        metavar="v3|new",
        help='the reports\' JSON: flat "v3" or "new" (MSG91\'s "Webhook (New)") (default: %(default)s)',
    )
    parser.add_argument(
        "--msg91-report-delay-ms",
        metavar="N",
        help="time from an MSG91 send to its delivery report (default: --status-delay-ms)",
    )
    parser.add_argument(
        "--msg91-undelivered-rate",
        default="0",
        metavar="F",
        help="share of otherwise delivered MSG91 messages reported failed (status 2)",
    )
    parser.add_argument(
        "--msg91-body-var",
        default="body",
        metavar="NAME",
        help="the recipient variable whose value MSG91 messages are counted and priced by (default: %(default)s)",
    )


def _number(raw: str | None, flag: str, kind: type[int] | type[float]) -> Any:
    if raw is None:
        return None
    try:
        return kind(raw)
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise CliError(f"{flag} must be {noun}, not {raw!r}.", 2) from None


def _parse_account(spec: str) -> dict[str, Any]:
    parts = spec.split(":")
    if len(parts) < 2 or len(parts) > 4 or not parts[0] or not parts[1]:
        raise CliError("--account must look like SID:TOKEN[:FROM,...[:STATE]].", 2)
    account: dict[str, Any] = {"sid": parts[0], "token": parts[1]}
    if len(parts) > 2:
        account["senders"] = [sender for sender in parts[2].split(",") if sender]
    for flag in parts[3].split(",") if len(parts) > 3 else []:
        value = _ACCOUNT_FLAGS.get(flag.strip().lower())
        if value is None:
            raise CliError(f"--account state {flag!r} is not one of {', '.join(_ACCOUNT_FLAGS)}.", 2)
        account["account_type" if value in ("Trial", "Full") else "status"] = value
    return account


def _attach_api_keys(accounts: dict[str, dict[str, Any]], specs: list[str]) -> None:
    for spec in specs:
        parts = spec.split(":")
        standard = len(parts) == 4 and parts[3].lower() == "standard"
        if len(parts) not in (3, 4) or (len(parts) == 4 and not standard) or not all(parts[:3]):
            raise CliError("--api-key must look like ACCOUNT_SID:SK…:SECRET[:standard].", 2)
        account = accounts.get(parts[0])
        if account is None:
            raise CliError(f"--api-key names account {parts[0]}, which no --account defines.", 2)
        account.setdefault("api_keys", {})[parts[1]] = parts[2]
        if standard:
            account["standard_api_keys"] = {*account.get("standard_api_keys", set()), parts[1]}


def _parse_msg91(spec: str) -> dict[str, Any]:
    # Template ids cannot hold ":", so the last one separates them from the key.
    authkey, separator, templates = spec.rpartition(":")
    template_ids = [template for template in templates.split(",") if template]
    if not separator or not authkey or not template_ids:
        raise CliError("--msg91 must look like AUTHKEY:TEMPLATE_ID[,TEMPLATE_ID...].", 2)
    return {"authkey": authkey, "template_ids": frozenset(template_ids)}


def _msg91_settings(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "msg91_accounts": [_parse_msg91(spec) for spec in args.msg91],
        "msg91_report_url": args.msg91_report_url,
        "msg91_report_shape": args.msg91_report_shape,
        "msg91_report_delay_ms": _number(args.msg91_report_delay_ms, "--msg91-report-delay-ms", float),
        "msg91_undelivered_rate": _number(args.msg91_undelivered_rate, "--msg91-undelivered-rate", float),
        "msg91_body_var": args.msg91_body_var,
    }


def build_config(args: argparse.Namespace) -> SimulatorConfig:
    """The SimulatorConfig the flags describe; any bad value is a one-sentence CliError (exit 2)."""
    from pydantic import ValidationError

    from smsdispatch.tools.simulator import SimulatorConfig as Config

    if not args.account and not args.test_account and not args.msg91:
        raise CliError("Give at least one --account, --test-account or --msg91.", 2)
    accounts = {spec["sid"]: spec for spec in map(_parse_account, args.account)}
    if len(accounts) != len(args.account):
        raise CliError("The same account SID is given twice to --account.", 2)
    _attach_api_keys(accounts, args.api_key)
    test_accounts = []
    for spec in args.test_account:
        sid, separator, token = spec.partition(":")
        if not separator or not sid or not token or ":" in token:
            raise CliError("--test-account must look like SID:TOKEN.", 2)
        test_accounts.append({"sid": sid, "token": token})
    try:
        return Config.model_validate(
            {
                "accounts": list(accounts.values()),
                "test_accounts": test_accounts,
                "latency_ms": _number(args.latency_ms, "--latency-ms", float),
                "concurrency_limit": _number(args.concurrency_limit, "--concurrency-limit", int),
                "fail_rate": _number(args.fail_rate, "--fail-rate", float),
                "undelivered_rate": _number(args.undelivered_rate, "--undelivered-rate", float),
                "status_delay_ms": _number(args.status_delay_ms, "--status-delay-ms", float),
                "sender_mps": _number(args.sender_mps, "--sender-mps", float),
                "seed": _number(args.seed, "--seed", int),
                **_msg91_settings(args),
            }
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        # pydantic's message never contains the input value here, so no secret can leak through it
        raise CliError(f"Invalid simulator setting {where}: {error['msg']}.", 2) from None


def banner(config: SimulatorConfig, base_url: str) -> list[str]:
    """What the verb prints once it listens: accounts by SID or label, never a key, token or report URL."""
    live = ", ".join(a.sid for a in config.accounts) or "none"
    test = ", ".join(a.sid for a in config.test_accounts) or "none"
    lines = [f"Twilio simulator listening on {base_url}", f"  live accounts: {live}; test accounts: {test}"]
    if config.msg91_accounts:
        accounts = ", ".join(f"{a.label} ({_templates(len(a.template_ids))})" for a in config.msg91_accounts)
        reports = f"{config.msg91_report_shape} reports" if config.msg91_report_url is not None else "no reports"
        lines.append(f"  MSG91 Flow API at {base_url}/api/v5/flow/: {accounts}; {reports}")
    return lines


def _templates(count: int) -> str:
    return "1 template" if count == 1 else f"{count} templates"


def run(args: argparse.Namespace) -> int:
    from smsdispatch.tools.simulator import RunningSimulator, serve_forever

    config = build_config(args)
    port = _number(args.port, "--port", int)
    if not 0 <= port <= 65535:
        raise CliError("--port must be between 0 and 65535.", 2)

    def announce(simulator: RunningSimulator) -> None:
        for line in banner(config, simulator.base_url):
            print(line, flush=True)

    async def main() -> None:
        server = asyncio.ensure_future(serve_forever(config, args.host, port, announce))
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, server.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await server

    try:
        asyncio.run(main())
    except OSError as exc:
        raise CliError(f"Cannot listen on {args.host}:{port}: {exc.strerror or exc}.", 1) from None
    print("Twilio simulator stopped.", file=sys.stderr)
    return 0
