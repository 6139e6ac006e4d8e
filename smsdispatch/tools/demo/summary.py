"""The end of a demo run: wait for the dispatch log to hold every request (and the delivery receipts to
land), then render what it says: counts by status and by error code, and one row per request."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from smsdispatch.adapters.storage import FINAL_STATUSES, DispatchLog, DispatchLogRow, unreadable_request_id
from smsdispatch.contract import SmsDispatched, SmsFailed
from smsdispatch.tools.demo.traffic import Collected, Planned

_POLL_SECONDS = 0.25


@dataclass(frozen=True)
class LoggedItem:
    """A planned item with the key of its dispatch-log row and the row, once the log sink has written it."""

    item: Planned
    key: str | None  # None: no outcome arrived, so the row's key is unknown
    row: DispatchLogRow | None

    @property
    def final(self) -> bool:
        return self.row is not None and self.row.status in FINAL_STATUSES


def row_keys(collected: Collected) -> list[tuple[Planned, str | None]]:
    """Each item with its row key: the request_id, or the key the log gives an unreadable record."""
    keyed: list[tuple[Planned, str | None]] = []
    for index, item in enumerate(collected.plan):
        if item.request is not None:
            keyed.append((item, item.request.request_id))
            continue
        failures = [o for o in collected.outcomes.get(index, []) if isinstance(o, SmsFailed)]
        keyed.append((item, unreadable_request_id(failures[0]) if failures else None))
    return keyed


async def wait_for_log(
    log: DispatchLog,
    collected: Collected,
    *,
    timeout: float,  # noqa: ASYNC109 - one deadline for rows and receipts together
    on_progress: Callable[[int, int, int, int], None],
) -> list[LoggedItem]:
    """Poll the log until every row is there and every live message reached a final status, or ``timeout``.

    ``on_progress(rows, expected_rows, final_receipts, expected_receipts)`` is called after each poll.
    """
    keyed = row_keys(collected)
    deadline = time.monotonic() + timeout
    while True:
        logged = [LoggedItem(item, key, await log.get(key) if key else None) for item, key in keyed]
        rows = sum(1 for entry in logged if entry.row is not None)
        final, awaiting = receipt_counts(logged)
        on_progress(rows, len(logged), final, awaiting)
        if (rows == len(logged) and final == awaiting) or time.monotonic() >= deadline:
            return logged
        await asyncio.sleep(_POLL_SECONDS)


def receipt_counts(logged: list[LoggedItem]) -> tuple[int, int]:
    """(rows in a final status, rows that should get there): live messages that were sent, and their receipts."""
    awaiting = [
        entry for entry in logged if entry.item.receipts and (entry.row is None or entry.row.status != "failed")
    ]
    return sum(1 for entry in awaiting if entry.final), len(awaiting)


def render_summary(collected: Collected, logged: list[LoggedItem], duplicate_sms: int | None) -> list[str]:
    """The lines of the summary: outcomes on the topics, the idempotency check, the log's counts and rows."""
    lines = ["", "Summary", "======="]
    every = [outcome for found in collected.outcomes.values() for outcome in found]
    dispatched = sum(1 for outcome in every if isinstance(outcome, SmsDispatched))
    lines.append(
        f"outcomes on the topics: dispatched {dispatched}, failed {len(every) - dispatched} "
        f"({len(every)} of {collected.expected_count} expected)"
    )
    lines += _idempotency(collected, duplicate_sms)
    rows = [entry.row for entry in logged if entry.row is not None]
    lines.append(f"dispatch log: {len(rows)} rows for {len(logged)} requests")
    lines.append("  by provider:      " + _counts(Counter(row.provider for row in rows if row.provider)))
    lines.append("  by status:        " + _counts(Counter(row.status for row in rows)))
    lines.append("  by error code:    " + _counts(Counter(row.error_code for row in rows if row.error_code)))
    lines.append("  by provider code: " + _counts(Counter(str(row.provider_code) for row in rows if row.provider_code)))
    lines += ["", *_table(logged, collected)]
    return lines


def _idempotency(collected: Collected, duplicate_sms: int | None) -> list[str]:
    lines = []
    for index, item in enumerate(collected.plan):
        if item.times < 2 or item.request is None:
            continue
        found = collected.outcomes.get(index, [])
        sids = {o.provider_message_id for o in found if isinstance(o, SmsDispatched)}
        same = len(found) == item.times and len(sids) == 1
        sms = "?" if duplicate_sms is None else str(duplicate_sms)
        lines.append(
            f"idempotency: {item.request.request_id} published {item.times}x -> {len(found)} outcomes, "
            f"{'the same' if same else 'NOT the same'} ({', '.join(sorted(sids)) or '-'}), "
            f"{sms} SMS at the simulator"
        )
    return lines


def _counts(counter: Mapping[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in sorted(counter.items())) or "-"


_COLUMNS = (
    ("request id", 22),
    ("tenant", 16),
    ("provider", 8),
    ("status", 11),
    ("error code", 20),
    ("code", 6),
    ("seg", 3),
)


def _table(logged: list[LoggedItem], collected: Collected) -> list[str]:
    header = "  ".join(name.ljust(width) for name, width in _COLUMNS) + "  what"
    lines = [header, "-" * len(header)]
    wrong = set(map(id, collected.unexpected()))
    for entry in logged:
        row = entry.row
        mark = "  (!) not as expected" if id(entry.item) in wrong else ""
        if row is None:
            cells = [entry.key or "-", _tenant(entry.item), "", "(no row)", "", "", ""]
        else:
            cells = [
                row.request_id,
                row.tenant_id or "-",
                row.provider or "",
                row.status,
                row.error_code or "",
                str(row.provider_code or ""),
                str(row.segments) if row.segments is not None else "",
            ]
        lines.append(
            "  ".join(_fit(cell, width) for cell, (_, width) in zip(cells, _COLUMNS, strict=True))
            + "  "
            + entry.item.label
            + mark
        )
    return lines


def _tenant(item: Planned) -> str:
    return item.request.tenant_id if item.request is not None else "-"


def _fit(text: str, width: int) -> str:
    return text.ljust(width) if len(text) <= width else text[: width - 1] + "\N{HORIZONTAL ELLIPSIS}"


def find_problems(
    collected: Collected, logged: list[LoggedItem], duplicate_sms: int | None, *, waited: float
) -> list[str]:
    """What went wrong in the run, one sentence each (empty when everything ended as the demo expects)."""
    problems = []
    wrong = collected.unexpected()
    if wrong:
        problems.append(
            f"{len(wrong)} of {len(collected.plan)} requests did not end as expected (marked (!) in the summary)"
        )
    missing = sum(1 for entry in logged if entry.row is None)
    if missing:
        problems.append(f"{missing} requests have no dispatch-log row after {waited:g} s")
    final, awaiting = receipt_counts(logged)
    # Some receipts may still be on their way when the wait ends; none at all means they cannot arrive.
    if awaiting and not final:
        problems.append(f"no delivery receipt reached the dispatch log within {waited:g} s")
    if not any(entry.row.provider == "msg91" and entry.row.status == "delivered" for entry in logged if entry.row):
        problems.append(f"no MSG91 message reached delivered through its delivery report within {waited:g} s")
    if duplicate_sms is not None and duplicate_sms != 1:
        problems.append(f"the request published twice was sent {duplicate_sms} times")
    return problems
