"""Re-publishing failed or requested messages under new request ids: what ``smsdispatch replay`` does.

Every replay has an id. An original request (tenant_id, request_id) is re-sent as request_id
``rp-<replay id>-<hash of the original>`` with ``resend_of`` = the original request_id, so running the same replay
again derives the same ids: those already on ``sms.requested`` are skipped here, and the dispatcher's idempotency
ledger drops any that slip through (two runs at once). Records a replay published are never replayed again by a
run with the same id, so an open-ended window ("until now") stays idempotent too.

``sms.failed`` carries no body, so a replay of failures looks each one's request up on ``sms.requested``, reading
from :data:`LOOKUP_MARGIN_MS` before the earliest matching failure's ``requested_at``. Failures without a
request_id, whose request is gone (retention, or older than the margin) or was never a valid request, are
counted as not replayable.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field, replace
from enum import StrEnum

from pydantic import ValidationError

from smsdispatch.client._client import SmsClient
from smsdispatch.client._reading import TopicRecord, json_object, read_topic
from smsdispatch.contract import ErrorCode, SmsFailed, SmsRequested, topics

__all__ = [
    "LOOKUP_MARGIN_MS",
    "REPLAYABLE_TOPICS",
    "NotReplayable",
    "ReplayProgress",
    "ReplayReport",
    "ReplaySelection",
    "check_replay_id",
    "derive_request_id",
    "new_replay_id",
    "replay",
]

REPLAYABLE_TOPICS = (topics.FAILED, topics.REQUESTED)
LOOKUP_MARGIN_MS = 24 * 3600 * 1000
PROGRESS_EVERY = 500
_REPLAY_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}\Z")

OriginalKey = tuple[str, str]  # (tenant_id, request_id)


class NotReplayable(StrEnum):
    """Why a matching record could not be re-sent."""

    UNREADABLE = "unreadable record"
    NO_REQUEST_ID = "failure names no tenant_id or request_id"
    ORIGINAL_NOT_FOUND = "original request not found on sms.requested"
    ORIGINAL_INVALID = "original request breaks the contract"


def new_replay_id() -> str:
    """A short random replay id (48 bits): printed, so the operator can run the same replay again."""
    return secrets.token_hex(6)


def check_replay_id(replay_id: str) -> str:
    if not _REPLAY_ID.match(replay_id):
        raise ValueError(f"replay id {replay_id!r} must be 1-40 letters, digits, '-' or '_'")
    return replay_id


def derive_request_id(replay_id: str, tenant_id: str, request_id: str) -> str:
    """The request_id a replay gives its re-send of (tenant_id, request_id): at most 60 characters."""
    digest = hashlib.sha256(f"{tenant_id}\x1f{request_id}".encode()).hexdigest()[:16]
    return _resend_prefix(replay_id) + digest


def _resend_prefix(replay_id: str) -> str:
    return f"rp-{replay_id}-"


@dataclass(frozen=True)
class ReplaySelection:
    """Which records to replay. Times are Unix milliseconds (record timestamps), offsets are per partition and
    inclusive; a time window and an offset range are not combined."""

    topic: str
    since_ms: int | None = None
    until_ms: int | None = None
    from_offset: int | None = None
    to_offset: int | None = None
    partitions: Collection[int] | None = None
    tenant: str | None = None
    error_codes: frozenset[ErrorCode] = frozenset()

    def __post_init__(self) -> None:
        if self.topic not in REPLAYABLE_TOPICS:
            raise ValueError(f"the topic to replay must be {' or '.join(REPLAYABLE_TOPICS)}, not {self.topic!r}")
        if self.error_codes and self.topic != topics.FAILED:
            raise ValueError(f"error codes only filter {topics.FAILED}")
        if (self.since_ms is not None or self.until_ms is not None) and (
            self.from_offset is not None or self.to_offset is not None
        ):
            raise ValueError("give either a time window or an offset range, not both")
        if self.since_ms is not None and self.until_ms is not None and self.since_ms > self.until_ms:
            raise ValueError("the window starts after it ends")
        if any(offset is not None and offset < 0 for offset in (self.from_offset, self.to_offset)):
            raise ValueError("offsets cannot be negative")
        if self.from_offset is not None and self.to_offset is not None and self.from_offset > self.to_offset:
            raise ValueError("the offset range starts after it ends")

    @property
    def by_offset(self) -> bool:
        return self.from_offset is not None or self.to_offset is not None


@dataclass(frozen=True)
class ReplayProgress:
    """Where a long replay is: ``done`` of ``total`` (an upper bound while reading) in ``stage``."""

    stage: str
    done: int
    total: int
    finished: bool = False


ProgressCallback = Callable[[ReplayProgress], None]


@dataclass
class ReplayReport:
    """What a replay matched and did. ``resends`` were published, or would have been with ``dry_run``."""

    replay_id: str
    topic: str
    dry_run: bool
    resends: list[SmsRequested] = field(default_factory=list)
    already_replayed: int = 0
    not_replayable: Counter[NotReplayable] = field(default_factory=Counter)
    own_resends_skipped: int = 0  # records this replay id published earlier, seen again in the window

    @property
    def matched(self) -> int:
        return len(self.resends) + self.already_replayed + sum(self.not_replayable.values())


@dataclass(frozen=True)
class _Failure:
    key: OriginalKey
    timestamp_ms: int
    requested_at_ms: int | None


async def replay(
    broker_url: str,
    selection: ReplaySelection,
    *,
    replay_id: str | None = None,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
) -> ReplayReport:
    """Re-publish every record ``selection`` matches as a new SmsRequested (nothing is published with ``dry_run``)."""
    replay_id = check_replay_id(replay_id) if replay_id is not None else new_replay_id()
    report = ReplayReport(replay_id=replay_id, topic=selection.topic, dry_run=dry_run)
    reader = _Reader(broker_url, replay_id, progress)
    if selection.topic == topics.FAILED:
        originals = await _originals_of_failures(reader, selection, report)
    else:
        originals = await _matching_requests(reader, selection, report)
    for original in originals:
        new_id = derive_request_id(replay_id, original.tenant_id, original.request_id)
        if (original.tenant_id, new_id) in reader.replayed:
            report.already_replayed += 1
            continue
        report.resends.append(
            SmsRequested(
                request_id=new_id,
                tenant_id=original.tenant_id,
                to=original.to,
                body=original.body,
                metadata=original.metadata,
                resend_of=original.request_id,
            )
        )
    if report.resends and not dry_run:
        await _publish(broker_url, report.resends, progress)
    return report


async def _originals_of_failures(
    reader: _Reader, selection: ReplaySelection, report: ReplayReport
) -> list[SmsRequested]:
    failures: dict[OriginalKey, _Failure] = {}
    async for record in reader.read(topics.FAILED, selection):
        try:
            failure = SmsFailed.model_validate_json(record.value or b"")
        except ValidationError:
            if selection.tenant is None or _key_text(record) == selection.tenant:
                report.not_replayable[NotReplayable.UNREADABLE] += 1
            continue
        tenant_id = failure.tenant_id if failure.tenant_id is not None else _key_text(record)
        if selection.tenant is not None and tenant_id != selection.tenant:
            continue
        if selection.error_codes and failure.error.code not in selection.error_codes:
            continue
        if not tenant_id or failure.request_id is None:
            report.not_replayable[NotReplayable.NO_REQUEST_ID] += 1
            continue
        if reader.is_own_resend(tenant_id, failure.request_id, failure.resend_of):
            report.own_resends_skipped += 1
            continue
        key = (tenant_id, failure.request_id)
        if key not in failures:  # the worker may report one failure twice (at-least-once)
            requested_at = failure.requested_at
            failures[key] = _Failure(
                key, record.timestamp_ms, int(requested_at.timestamp() * 1000) if requested_at else None
            )
    if not failures:
        return []
    earliest = min(min(f.timestamp_ms, f.requested_at_ms or f.timestamp_ms) for f in failures.values())
    found = await reader.scan_requested(max(0, earliest - LOOKUP_MARGIN_MS), wanted=set(failures))
    originals: list[SmsRequested] = []
    for pending in sorted(failures.values(), key=lambda f: f.timestamp_ms):
        original = found.get(pending.key)
        if original is None:
            report.not_replayable[NotReplayable.ORIGINAL_NOT_FOUND] += 1
        elif isinstance(original, NotReplayable):
            report.not_replayable[original] += 1
        else:
            originals.append(original)
    return originals


async def _matching_requests(reader: _Reader, selection: ReplaySelection, report: ReplayReport) -> list[SmsRequested]:
    matches: dict[OriginalKey, tuple[int, SmsRequested]] = {}
    # A time window over every partition reads on to the end of the topic (not just to until_ms), so the same
    # pass sees the earlier re-sends of this replay id; an offset range or a few partitions need a second pass.
    one_pass = not selection.by_offset and selection.partitions is None
    async for record in reader.read(topics.REQUESTED, replace(selection, until_ms=None) if one_pass else selection):
        document = reader.note_requested(record)
        if selection.until_ms is not None and record.timestamp_ms > selection.until_ms:
            continue
        tenant_id = _text_field(document, "tenant_id") or _key_text(record)
        if selection.tenant is not None and tenant_id != selection.tenant:
            continue
        try:
            request = SmsRequested.model_validate_json(record.value or b"")
        except ValidationError:
            reason = NotReplayable.UNREADABLE if document is None else NotReplayable.ORIGINAL_INVALID
            report.not_replayable[reason] += 1
            continue
        if reader.is_own_resend(request.tenant_id, request.request_id, request.resend_of):
            report.own_resends_skipped += 1
            continue
        matches.setdefault((request.tenant_id, request.request_id), (record.timestamp_ms, request))
    if matches and not one_pass:
        await reader.scan_requested(min(stamp for stamp, _ in matches.values()), wanted=set())
    return [request for _, request in sorted(matches.values(), key=lambda match: match[0])]


class _Reader:
    """Reads topics with progress, and remembers which re-sends of this replay id are on sms.requested."""

    def __init__(self, broker_url: str, replay_id: str, progress: ProgressCallback | None) -> None:
        self.broker_url = broker_url
        self.replay_id = replay_id
        self.progress = progress
        self.replayed: set[OriginalKey] = set()
        self._prefix = _resend_prefix(replay_id)

    def is_own_resend(self, tenant_id: str, request_id: str, resend_of: str | None) -> bool:
        return resend_of is not None and request_id == derive_request_id(self.replay_id, tenant_id, resend_of)

    def note_requested(self, record: TopicRecord) -> dict[str, object] | None:
        """The record's JSON object (None if it is not one), remembering it if it is a re-send of this replay."""
        document = json_object(record.value)
        request_id = _text_field(document, "request_id")
        if request_id is not None and request_id.startswith(self._prefix):
            tenant_id = _text_field(document, "tenant_id") or _key_text(record)
            if tenant_id:
                self.replayed.add((tenant_id, request_id))
        return document

    async def scan_requested(
        self, start_ms: int, wanted: set[OriginalKey]
    ) -> dict[OriginalKey, SmsRequested | NotReplayable]:
        """The ``wanted`` requests found on sms.requested from ``start_ms`` (or why each cannot be replayed)."""
        found: dict[OriginalKey, SmsRequested | NotReplayable] = {}
        async for record in self.read(topics.REQUESTED, ReplaySelection(topics.REQUESTED, since_ms=start_ms)):
            document = self.note_requested(record)
            request_id = _text_field(document, "request_id")
            tenant_id = _text_field(document, "tenant_id") or _key_text(record)
            key = (tenant_id or "", request_id or "")
            if key not in wanted or isinstance(found.get(key), SmsRequested):
                continue
            try:
                found[key] = SmsRequested.model_validate_json(record.value or b"")
            except ValidationError:
                found[key] = NotReplayable.ORIGINAL_INVALID  # a later, valid copy of it would replace this
        return found

    async def read(self, topic: str, selection: ReplaySelection) -> AsyncIterator[TopicRecord]:
        """The records of ``topic`` in the selection's time window or offset range, with progress reports."""
        stage = f"reading {topic}"
        sizes: list[int] = []
        done = 0
        async for record in read_topic(
            self.broker_url,
            [topic],
            start_ms=selection.since_ms,
            from_offset=selection.from_offset,
            to_offset=selection.to_offset,
            partitions=selection.partitions,
            on_size=sizes.append,
        ):
            done += 1
            if self.progress is not None and done % PROGRESS_EVERY == 0:
                self.progress(ReplayProgress(stage, done, max(done, sum(sizes))))
            # The seek found the first record at or after since_ms, but producers set the timestamps: later
            # records may still be older, so both ends of the window are checked on every record.
            if (selection.since_ms is None or record.timestamp_ms >= selection.since_ms) and (
                selection.until_ms is None or record.timestamp_ms <= selection.until_ms
            ):
                yield record
        if self.progress is not None:
            self.progress(ReplayProgress(stage, done, done, finished=True))


async def _publish(broker_url: str, resends: list[SmsRequested], progress: ProgressCallback | None) -> None:
    total = len(resends)

    def published(done: int) -> None:
        if progress is not None:
            progress(ReplayProgress("publishing", done, total, finished=done >= total))

    async with SmsClient(broker_url) as client:
        await client.publish_many(resends, on_published=published)


def _text_field(document: dict[str, object] | None, name: str) -> str | None:
    value = document.get(name) if document is not None else None
    return value if isinstance(value, str) else None


def _key_text(record: TopicRecord) -> str:
    return record.key.decode(errors="replace") if record.key else ""
