"""Run the Twilio-compatible simulator: Twilio's REST API v2010 for messages, on 127.0.0.1.

Live accounts own the senders listed after their token and follow the message lifecycle with signed status
callbacks; test accounts follow Twilio's test-credential rules (magic numbers, 403 for everything but sending).
GET /_sim/messages lists every accepted message; POST /_sim/faults {"mode": ..., "count": N} makes the next N
creates fail (modes: rate_limit, error_500_before_accept, error_500_after_accept, drop_after_accept).
Creates take Twilio's ValidityPeriod (1-36000 s): with --sender-mps N each sender sends at most N segments/s, and
a message still queued when its validity runs out ends failed with 30001. POST /_sim/inbound {"account_sid",
"from", "to", "body", "url"} plays a recipient replying: STOP opts them out (creates get 400/21610), START opts
back in, and Twilio's signed incoming-message webhook is POSTed to url.
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


def build_config(args: argparse.Namespace) -> SimulatorConfig:
    """The SimulatorConfig the flags describe; any bad value is a one-sentence CliError (exit 2)."""
    from pydantic import ValidationError

    from smsdispatch.tools.simulator import SimulatorConfig as Config

    if not args.account and not args.test_account:
        raise CliError("Give at least one --account or --test-account.", 2)
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
            }
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        # pydantic's message never contains the input value here, so no secret can leak through it
        raise CliError(f"Invalid simulator setting {where}: {error['msg']}.", 2) from None


def run(args: argparse.Namespace) -> int:
    from smsdispatch.tools.simulator import RunningSimulator, serve_forever

    config = build_config(args)
    port = _number(args.port, "--port", int)
    if not 0 <= port <= 65535:
        raise CliError("--port must be between 0 and 65535.", 2)

    def announce(simulator: RunningSimulator) -> None:
        live = ", ".join(a.sid for a in config.accounts) or "none"
        test = ", ".join(a.sid for a in config.test_accounts) or "none"
        print(f"Twilio simulator listening on {simulator.base_url}", flush=True)
        print(f"  live accounts: {live}; test accounts: {test}", flush=True)

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
