"""Run the whole system on this machine with sample traffic, then print a summary from the dispatch log.

Starts a private Kafka broker (unless SMSDISPATCH_BROKER names one), the simulator with a live and a test
Twilio account and the platform's MSG91 account, and a worker with MSG91 as the platform default; registers
tenants the way `tenants set` and `tenants add` do; sends a mixed batch (successes through both providers,
Twilio's and MSG91's refusals, an unknown tenant, a malformed record, a duplicate request_id); waits for the
outcomes and the delivery receipts (Twilio's callbacks, MSG91's reports); prints counts by status and error code
and one row per request with its provider. Everything it started is stopped at the end, also on Ctrl-C. Needs
Java 17+ (and Maven once) when it starts its own broker. Exit code 0 when every request ended as expected.

With SMSDISPATCH_BROKER, no other smsdispatch worker may run on that broker: it would join the demo worker's
consumer group and take part of the demo's traffic, which it cannot decrypt.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from pydantic import SecretStr

from smsdispatch.adapters.crypto import Keyring, generate_key
from smsdispatch.adapters.storage import DispatchLog, StorageError
from smsdispatch.cli._common import CliError, load_keyring, load_settings
from smsdispatch.cli.tenants import platform_record, verified_record
from smsdispatch.client import SmsClient, publish_suppression, publish_tenant
from smsdispatch.contract import PlatformConfig
from smsdispatch.contract.settings import Settings
from smsdispatch.runtime.topics import ensure_topics
from smsdispatch.tools.demo import (
    DemoAccounts,
    DemoError,
    DemoStack,
    ProgressLine,
    build_batch,
    collect_outcomes,
    find_problems,
    publish_batch,
    render_summary,
    sms_at_simulator,
    wait_for_log,
)
from smsdispatch.tools.demo.traffic import OPTED_OUT
from smsdispatch.tools.demo.webhooks import WebhookInbox, check_webhooks

OUTCOMES_TIMEOUT = 60.0
LOG_TIMEOUT = 20.0
WEBHOOK_TIMEOUT = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir",
        type=Path,
        help="where the logs (and the SQLite dispatch log) go (default: a new directory under the temp dir)",
    )


def run(args: argparse.Namespace) -> int:
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # progress shows as it happens, also through a pipe
    settings = load_settings()
    # Set explicitly (the environment), the demo uses that broker; otherwise it starts its own.
    env_broker = settings.broker.strip() if "broker" in settings.model_fields_set else ""
    if settings.encryption_keys is None:
        settings = settings.model_copy(update={"encryption_keys": SecretStr(generate_key())})
    keyring = load_keyring(settings)
    workdir = _workdir(args.dir)
    if "database_url" not in settings.model_fields_set or not settings.database_url.strip():
        settings = settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{workdir / 'dispatch.db'}"})
    started = time.monotonic()
    stack = DemoStack(workdir, say=_say)
    try:
        with _sigterm_as_interrupt():
            code = _run(stack, settings, keyring, broker=env_broker or None)
    except DemoError as exc:
        raise CliError(str(exc)) from None
    finally:
        _stop(stack)
    print(f"finished in {time.monotonic() - started:.1f} s; everything the demo started has been stopped.")
    return code


def _run(stack: DemoStack, settings: Settings, keyring: Keyring, broker: str | None) -> int:
    accounts = DemoAccounts.fresh()
    external = broker is not None
    print("smsdispatch demo: the whole system on this machine, with sample traffic")
    print(f"  run directory  {stack.workdir}")
    if broker is None:
        broker = stack.start_broker()
    else:
        print(f"  broker         {broker} (from SMSDISPATCH_BROKER)")
    _check_broker(broker, settings.partitions)
    stack.start_simulator(accounts.simulator_args(stack.worker_url))
    settings = settings.model_copy(update={"broker": broker, "twilio_base_url": stack.simulator_url})
    inbox = WebhookInbox()  # a daemon thread: it goes with the process whatever happens
    _run_step(_register, accounts, settings, keyring, inbox.url)
    _say("starting the worker (a few seconds)...")
    stack.start_worker({**_worker_env(settings), **accounts.worker_env(stack.simulator_url)})
    pids = stack.pids()
    for name, url in (("broker", broker), ("simulator", stack.simulator_url), ("worker", stack.worker_url)):
        if name in pids:
            print(f"  {name:<14} {url} (pid {pids[name]})")
    for tenant in accounts.tenants().values():
        print(f"  tenant         {tenant.tenant_id:<16} {tenant.role}")
    try:
        problems = _run_step(_exercise, stack, settings, accounts)
        problems += _webhooks(inbox, accounts)
        inbox.close()
        if external:
            _run_step(_unregister, accounts, settings)
    except OSError as exc:
        raise CliError(f"lost Kafka at {broker} ({type(exc).__name__}).") from None
    print(f"\nlogs: {', '.join(str(path) for path in stack.log_paths)}")
    if not problems:
        return 0
    for problem in problems:
        print(f"problem: {problem}.")
    if external:
        print(
            "(another smsdispatch worker on this broker would share the demo worker's consumer group and take "
            "part of its traffic: stop it, or unset SMSDISPATCH_BROKER.)"
        )
    raise CliError(f"{problems[0]}; see the worker log {stack.workdir / 'worker.log'}.")


T = TypeVar("T")


def _run_step(step: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
    """``asyncio.run(step(*args))``; a stop signal arriving between the coroutine's creation and its start (the
    demo is stopped with SIGTERM or Ctrl-C at any moment) closes it, so Python prints no "never awaited" warning
    after the demo's last sentence."""
    coroutine = None
    try:
        coroutine = step(*args)
        return asyncio.run(coroutine)
    except BaseException:
        if coroutine is not None:
            coroutine.close()
        raise


async def _exercise(stack: DemoStack, settings: Settings, accounts: DemoAccounts) -> list[str]:
    """Send the batch, follow it to its outcomes and its dispatch-log rows, print the summary; return what
    went wrong, one sentence each."""
    tenants = accounts.tenants()
    if not await stack.wait_for_tenants(len(tenants), timeout=30.0):
        _say("the worker has not shown every tenant yet; sending anyway")
    batch = build_batch(accounts)
    progress = ProgressLine()
    since_ms = int(time.time() * 1000) - 1000
    async with SmsClient(settings.broker) as client:
        await publish_batch(client, batch)
        collected = await collect_outcomes(
            client,
            batch,
            since_ms=since_ms,
            timeout=OUTCOMES_TIMEOUT,
            on_progress=lambda got, wanted: progress.update(f"outcomes {got}/{wanted}"),
        )
    progress.done()
    duplicate = next(item for item in batch if item.times > 1 and item.request is not None)
    assert duplicate.request is not None  # narrowed by the filter above, for mypy
    duplicate_sms = await sms_at_simulator(stack.simulator_url, duplicate.request.body)
    try:
        log = await DispatchLog.open(settings.database_url)
    except StorageError as exc:
        raise CliError(f"cannot read the dispatch log: {exc}") from None
    try:
        logged = await wait_for_log(
            log,
            collected,
            timeout=LOG_TIMEOUT,
            on_progress=lambda rows, want, final, receipts: progress.update(
                f"dispatch log {rows}/{want} rows, delivery receipts {final}/{receipts} final"
            ),
        )
        progress.done()
        print(f"dispatch log: {log.url}")
    finally:
        await log.close()
    for line in render_summary(collected, logged, duplicate_sms):
        print(line)
    return find_problems(collected, logged, duplicate_sms, waited=LOG_TIMEOUT)


async def _register(accounts: DemoAccounts, settings: Settings, keyring: Keyring, webhook_url: str) -> None:
    """Register every tenant through the code path of `smsdispatch tenants set` (verify, seal, publish), or of
    `tenants add` for the one without a provider of its own. The live tenant gets the demo's webhook endpoint."""
    for name, tenant in accounts.tenants().items():
        if tenant.config is None:
            record = platform_record(tenant.tenant_id, PlatformConfig(), keyring)
        else:
            record = await verified_record(tenant.tenant_id, tenant.config, keyring, settings, verify=tenant.verify)
        if name == "live":
            record = record.model_copy(update={"webhook_url": webhook_url})
            # A recipient who replied STOP earlier: in the list before the worker starts, so it loads it.
            await publish_suppression(settings.broker, tenant.tenant_id, OPTED_OUT, opted_out=True)
        await publish_tenant(settings.broker, tenant.tenant_id, record)


def _webhooks(inbox: WebhookInbox, accounts: DemoAccounts) -> list[str]:
    """Wait (briefly) for the live tenant's webhooks, print what arrived and whether it verified."""
    tenant_id = accounts.tenants()["live"].tenant_id
    lines, problems = check_webhooks(
        inbox.wait(count=1, timeout=WEBHOOK_TIMEOUT), accounts.webhook_secret.get_secret_value(), tenant_id
    )
    for line in lines:
        print(line)
    return problems


async def _unregister(accounts: DemoAccounts, settings: Settings) -> None:
    """On a broker that outlives the run, remove the run's tenants: their simulator is gone."""
    for tenant in accounts.tenants().values():
        await publish_tenant(settings.broker, tenant.tenant_id, None)
    await publish_suppression(settings.broker, accounts.tenants()["live"].tenant_id, OPTED_OUT, opted_out=False)


def _check_broker(broker: str, partitions: int) -> None:
    try:
        asyncio.run(asyncio.wait_for(ensure_topics(broker, partitions), timeout=30))
    except Exception as exc:
        raise CliError(
            f"cannot reach Kafka at {broker} ({type(exc).__name__}): start it, "
            "or unset SMSDISPATCH_BROKER to let the demo start its own."
        ) from None


def _worker_env(settings: Settings) -> dict[str, str]:
    keys = settings.encryption_keys
    assert keys is not None  # run() always sets one
    return {
        "SMSDISPATCH_BROKER": settings.broker,
        "SMSDISPATCH_ENCRYPTION_KEYS": keys.get_secret_value(),
        "SMSDISPATCH_TWILIO_BASE_URL": settings.twilio_base_url,
        "SMSDISPATCH_DATABASE_URL": settings.database_url,
    }


def _workdir(requested: Path | None) -> Path:
    if requested is None:
        return Path(tempfile.mkdtemp(prefix="smsdispatch-demo-"))
    try:
        requested.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot create --dir {requested}: {exc.strerror}.", exit_code=2) from None
    return requested.absolute()


def _stop(stack: DemoStack) -> None:
    """Stop everything the demo started; a second Ctrl-C must not cut this short and leave processes behind,
    and neither may a closed stdout (``smsdispatch demo | head``)."""
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        running = stack.pids()
        if running:
            names = [name for name in ("worker", "simulator", "broker") if name in running]
            _quietly(_say, f"stopping what the demo started: {', '.join(names)}...")
        for problem in stack.close():
            _quietly(lambda line: print(line, file=sys.stderr), f"smsdispatch demo: {problem}")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _quietly(write: Callable[[str], None], line: str) -> None:
    with suppress(OSError):
        write(line)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM does what Ctrl-C does (asyncio's SIGINT handling included), so cleanup runs either way."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        handler: Callable[[int, FrameType | None], object] | int | None = signal.getsignal(signal.SIGINT)
        if not callable(handler):
            raise KeyboardInterrupt
        handler(signal.SIGINT, frame)  # asyncio's cancels the running task; Python's raises KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _say(line: str) -> None:
    print(line, flush=True)
