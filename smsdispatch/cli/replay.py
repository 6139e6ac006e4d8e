"""Re-publish failed (sms.failed) or requested (sms.requested) messages as new requests.

Each match is published again as a new SmsRequested with the same tenant, recipient, body and metadata, a new
request_id derived from the replay id and the original (rp-<replay id>-<hash>), and resend_of = the original
request_id. The replay id is printed first; running again with --replay-id and the same filters resends
nothing twice. Failures carry no body: each one's request is looked up on sms.requested (from a day before
it was requested); failures without a request_id or whose request is gone are counted as not replayable.

TS is an RFC 3339 time (2024-05-01T12:00:00Z, 2024-05-01) or a time ago: 90s, 15m, 2h, 3d, 1w.
Without --since the window starts at the oldest record the topic still holds; without --until it ends now.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import TextIO

from aiokafka.errors import KafkaError

from smsdispatch.cli._common import CliError, load_settings
from smsdispatch.client import (
    REPLAYABLE_TOPICS,
    ReplayProgress,
    ReplayReport,
    ReplaySelection,
    check_replay_id,
    new_replay_id,
    replay,
)
from smsdispatch.contract import ErrorCode, SmsRequested

_AGO = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([smhdw])\Z")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
BAR_WIDTH = 30
PLAIN_PROGRESS_EVERY = 10_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--topic", required=True, help=" or ".join(REPLAYABLE_TOPICS))
    parser.add_argument("--since", metavar="TS", help="records written at or after TS")
    parser.add_argument("--until", metavar="TS", help="records written at or before TS")
    parser.add_argument("--from-offset", type=int, metavar="N", help="first offset, in every partition read")
    parser.add_argument("--to-offset", type=int, metavar="N", help="last offset (inclusive), in every partition read")
    parser.add_argument("--partition", type=int, action="append", metavar="P", help="only partition P (repeatable)")
    parser.add_argument("--tenant", help="only this tenant's records")
    parser.add_argument(
        "--error-code",
        action="append",
        metavar="CODE",
        help=f"only failures with this error.code (repeatable; sms.failed only): {', '.join(ErrorCode)}",
    )
    parser.add_argument("--replay-id", help="reuse the id an earlier run printed (default: a new random id)")
    parser.add_argument("--dry-run", action="store_true", help="print what would be resent; publish nothing")
    parser.add_argument("--show", type=int, default=20, metavar="N", help="list at most N resends (20)")


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    now = datetime.now(UTC)
    try:
        selection = ReplaySelection(
            topic=args.topic,
            since_ms=parse_time(args.since, now, "--since"),
            until_ms=parse_time(args.until, now, "--until"),
            from_offset=args.from_offset,
            to_offset=args.to_offset,
            partitions=frozenset(args.partition) if args.partition else None,
            tenant=args.tenant,
            error_codes=parse_error_codes(args.error_code or []),
        )
        replay_id = check_replay_id(args.replay_id) if args.replay_id is not None else new_replay_id()
    except ValueError as exc:
        raise CliError(f"{exc}.", exit_code=2) from None
    if args.show < 0:
        raise CliError("--show cannot be negative.", exit_code=2)
    # Printed before anything is read, so an interrupted replay can be run again under the same id.
    print(f"replay id: {replay_id}", flush=True)
    started = time.monotonic()
    try:
        report = asyncio.run(
            replay(settings.broker, selection, replay_id=replay_id, dry_run=args.dry_run, progress=ProgressLine())
        )
    except (OSError, KafkaError) as exc:
        raise CliError(f"cannot reach Kafka at {settings.broker} ({type(exc).__name__}).") from None
    print_report(report, show=args.show, seconds=time.monotonic() - started)
    return 0


def parse_time(text: str | None, now: datetime, option: str) -> int | None:
    """Unix milliseconds of an RFC 3339 time or of a time ago ("2h"); a naive time is read as UTC."""
    if text is None:
        return None
    ago = _AGO.match(text.strip())
    if ago:
        moment = now - timedelta(seconds=float(ago.group(1)) * _UNIT_SECONDS[ago.group(2)])
    else:
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            raise ValueError(
                f"{option} {text!r} is neither an RFC 3339 time such as 2024-05-01T12:00:00Z nor a time ago such as 2h"
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def parse_error_codes(values: list[str]) -> frozenset[ErrorCode]:
    codes: set[ErrorCode] = set()
    for value in values:
        for code in filter(None, (part.strip() for part in value.split(","))):
            if code not in ErrorCode.__members__.values():
                raise ValueError(f"--error-code {code!r} is not one of {', '.join(ErrorCode)}")
            codes.add(ErrorCode(code))
    return frozenset(codes)


def print_report(report: ReplayReport, *, show: int, seconds: float) -> None:
    verb = "would resend" if report.dry_run else "resent"
    for request in report.resends[:show]:
        print(describe_resend(request, verb))
    if len(report.resends) > show:
        print(f"… and {len(report.resends) - show} more")
    reasons = ", ".join(f"{reason.value}: {count}" for reason, count in sorted(report.not_replayable.items()))
    print(
        f"matched {report.matched} on {report.topic}: {verb} {len(report.resends)}, "
        f"already replayed {report.already_replayed}, not replayable {sum(report.not_replayable.values())}"
        + (f" ({reasons})" if reasons else "")
        + f" in {seconds:.1f}s"
    )
    if report.own_resends_skipped:
        print(f"skipped {report.own_resends_skipped} record(s) that replay {report.replay_id} itself published")
    if report.dry_run:
        print(f"dry run: nothing was published; run without --dry-run and --replay-id {report.replay_id} to send")
    elif report.resends or report.already_replayed:
        print(f"run again with --replay-id {report.replay_id}: what it resent is never resent twice")


def describe_resend(request: SmsRequested, verb: str) -> str:
    body = request.body if len(request.body) <= 40 else request.body[:39] + "…"
    return f"{verb} {request.tenant_id}/{request.resend_of} as {request.request_id} to {request.to}: {body!r}"


class ProgressLine:
    """Progress on stderr: a bar redrawn in place on a terminal, else a plain line every 10,000 records."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.interactive = self.stream.isatty()
        self._drawn: set[str] = set()

    def __call__(self, progress: ReplayProgress) -> None:
        if self.interactive:
            if progress.finished and progress.stage not in self._drawn:
                return  # a short stage finished before its first update: no bar to complete
            self._drawn.add(progress.stage)
            share = progress.done / progress.total if progress.total else 1.0
            filled = int(share * BAR_WIDTH)
            self.stream.write(
                f"\r{progress.stage} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {share:4.0%} "
                f"{progress.done:,}/{progress.total:,}" + ("\n" if progress.finished else "")
            )
            self.stream.flush()
        elif progress.done and (
            progress.done % PLAIN_PROGRESS_EVERY == 0 or (progress.finished and progress.done >= PLAIN_PROGRESS_EVERY)
        ):
            print(f"{progress.stage}: {progress.done:,} of {progress.total:,}", file=self.stream, flush=True)
