"""Accepted messages and their timelines, kept in memory.

A message's whole life is decided when it is accepted: a timeline of (monotonic time, status) steps. Its status
is read off that timeline whenever it is asked for, so the request path schedules nothing for messages without a
StatusCallback — this is what keeps creates cheap. Wall-clock dates are derived from the same offsets.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

Step = tuple[float, str]  # (monotonic time the status is reached, status)

FINAL_STATUSES = frozenset({"delivered", "undelivered", "failed", "canceled"})


@dataclass(slots=True)
class Message:
    sid: str
    account_sid: str
    requested_sender: str  # From or MessagingServiceSid as the client sent it
    from_number: str | None  # what Twilio shows as "from" once the message left the service's queue
    to: str
    body: str
    service_sid: str | None
    segments: int
    created_mono: float
    created_wall: float
    steps: Sequence[Step]
    error_code: int | None = None  # reported on the final step only (undelivered, or failed 30001)
    status_callback: str | None = None
    is_test: bool = False
    validity_period: int = 36_000  # seconds, as the create's ValidityPeriod gave it (Twilio's default otherwise)

    def current_step(self, now_mono: float) -> int:
        index = 0
        for position, (at, _status) in enumerate(self.steps):
            if at <= now_mono:
                index = position
            else:
                break
        return index

    def status_at(self, now_mono: float) -> str:
        return self.steps[self.current_step(now_mono)][1]

    def wall_time(self, mono: float) -> float:
        return self.created_wall + (mono - self.created_mono)

    def sent_wall(self, now_mono: float) -> float | None:
        """When the message reached ``sent`` (wall clock), or None if it has not yet."""
        for at, status in self.steps:
            if status == "sent":
                return self.wall_time(at) if at <= now_mono else None
        return None


@dataclass(slots=True)
class DateFilter:
    """One ``DateSent`` condition: ``op`` is "=", "<=" or ">="; a date compares days, a datetime seconds."""

    op: str
    bound: date | datetime

    def accepts(self, moment: float) -> bool:
        when = datetime.fromtimestamp(int(moment), UTC)
        if isinstance(self.bound, datetime):
            return _compare(self.op, when.timestamp(), self.bound.timestamp())
        return _compare(self.op, when.date().toordinal(), self.bound.toordinal())


def _compare(op: str, left: float, right: float) -> bool:
    if op == "<=":
        return left <= right
    if op == ">=":
        return left >= right
    return left == right


def parse_date_filter(op: str, raw: str) -> DateFilter | None:
    """Read a DateSent value as Twilio does: ``YYYY-MM-DD`` or ``YYYY-MM-DDThh:mm:ssZ``; None if malformed.

    The value may itself carry the operator (``<=2023-08-24``), which the SDK's docstring suggests.
    """
    for prefix, embedded_op in (("<=", "<="), (">=", ">="), ("<", "<="), (">", ">=")):
        if raw.startswith(prefix):
            op, raw = embedded_op, raw[len(prefix) :]
            break
    raw = raw.strip()
    try:
        if len(raw) == 10:
            return DateFilter(op, date.fromisoformat(raw))
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return DateFilter(op, moment.astimezone(UTC).replace(microsecond=0))


@dataclass(slots=True)
class MessageQuery:
    to: str | None = None
    sender: str | None = None
    date_filters: list[DateFilter] = field(default_factory=list)


class MessageStore:
    """Every accepted message, by SID and per account in creation order."""

    def __init__(self) -> None:
        self._by_sid: dict[str, Message] = {}
        self._by_account: dict[str, list[Message]] = {}
        self._all: list[Message] = []

    def add(self, message: Message) -> None:
        self._by_sid[message.sid] = message
        self._by_account.setdefault(message.account_sid, []).append(message)
        self._all.append(message)

    def get(self, account_sid: str, sid: str) -> Message | None:
        message = self._by_sid.get(sid)
        return message if message is not None and message.account_sid == account_sid else None

    def __iter__(self) -> Iterator[Message]:
        return iter(list(self._all))

    def __len__(self) -> int:
        return len(self._all)

    def query(self, account_sid: str, query: MessageQuery, now_mono: float) -> list[Message]:
        """Matching messages, newest first (Twilio's order).

        DateSent filters compare ``date_sent``; a message not sent yet is compared by ``date_created`` so a
        reconciliation right after a create can still find it (Twilio's docs do not say; this is the useful
        reading).
        """
        found: list[Message] = []
        for message in reversed(self._by_account.get(account_sid, [])):
            if query.to is not None and message.to != query.to:
                continue
            if query.sender is not None and query.sender not in (message.from_number, message.requested_sender):
                continue
            if query.date_filters:
                moment = message.sent_wall(now_mono) or message.created_wall
                if not all(condition.accepts(moment) for condition in query.date_filters):
                    continue
            found.append(message)
        return found


def monotonic_and_wall() -> tuple[float, float]:
    return time.monotonic(), time.time()
