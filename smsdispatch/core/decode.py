"""Turning the bytes of an ``sms.requested`` record into a request, or into the ``invalid_request`` failure.

Anything a producer can put on the topic ends here as one of the two: bytes that are not UTF-8, not JSON,
JSON that is not an object, or an object that breaks a docs/contract.md rule. Nothing raises out of
:func:`decode_request`.
"""

from __future__ import annotations

import codecs
import json
from datetime import datetime
from typing import TypeGuard

from pydantic import ValidationError

from smsdispatch.contract import RAW_EXCERPT_BYTES, ErrorCode, ErrorInfo, SmsFailed, SmsRequested


def decode_request(value: bytes | None, record_time: datetime) -> SmsRequested | SmsFailed:
    """Parse one record value; ``requested_at`` defaults to the record's own timestamp."""
    if value is not None:
        # The common case first, in one parse; the step-by-step diagnosis below runs only for a bad record.
        try:
            request = SmsRequested.model_validate_json(value)
        except ValidationError:
            pass
        else:
            if request.requested_at is None:
                request = request.model_copy(update={"requested_at": record_time})
            return request
    if value is None:
        return _invalid("the record has no value (a tombstone); expected an SmsRequested JSON object", None)
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _invalid(f"the record is not UTF-8 (bad byte at position {exc.start})", value)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        return _invalid(f"the record is not JSON: {exc.msg} at position {exc.pos}", value)
    except ValueError:
        # Not a JSONDecodeError: an integer literal over Python's 4300-digit conversion limit.
        return _invalid("the record is JSON with a number too long to read", value)
    except RecursionError:
        return _invalid("the record is JSON nested too deeply to read", value)
    if not isinstance(document, dict):
        return _invalid(f"the record is JSON {type(document).__name__}, expected an object", value)
    try:
        request = SmsRequested.model_validate_json(value)
    except ValidationError as exc:
        return _invalid(_describe(exc), value, _partial_identity(document))
    if request.requested_at is None:
        request = request.model_copy(update={"requested_at": record_time})
    return request


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error["loc"]) or "record"
        problems.append(f"{where}: {error['msg']}")
    return "the record breaks the SmsRequested schema: " + "; ".join(problems)


def _partial_identity(document: dict[str, object]) -> dict[str, object]:
    """Keep what identifies the request, when it is well-formed, so the failure can be correlated."""
    identity: dict[str, object] = {}
    for field, limit in (("request_id", 128), ("tenant_id", 64)):
        candidate = document.get(field)
        if _is_text(candidate) and 0 < len(candidate) <= limit:
            identity[field] = candidate
    to = document.get("to")
    if _is_text(to) and len(to) <= 32:
        identity["to"] = to
    metadata = document.get("metadata")
    if isinstance(metadata, dict) and all(_is_text(k) and _is_text(v) for k, v in metadata.items()):
        identity["metadata"] = metadata
    resend_of = document.get("resend_of")
    if _is_text(resend_of) and len(resend_of) <= 128:
        identity["resend_of"] = resend_of
    return identity


def _is_text(candidate: object) -> TypeGuard[str]:
    """A string that can be written back as UTF-8. JSON may escape a lone surrogate (``"\\ud800"``), which
    json.loads accepts but no UTF-8 encoder does: copied into the failure, it would make it unpublishable."""
    if not isinstance(candidate, str):
        return False
    try:
        candidate.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _invalid(message: str, value: bytes | None, identity: dict[str, object] | None = None) -> SmsFailed:
    """The ``invalid_request`` failure of a record; always valid itself, whatever the record held.

    What it echoes comes from the record, so it may break the very rules the failure must keep (a NUL or too
    much in the metadata, say). It is tried whole, then without the metadata; ``raw`` alone, which has no rule
    to break, is the last answer. The message says what was left out.
    """
    # ``raw`` is the original value cut to 4 KiB, so a producer can see exactly what it sent. The incremental
    # decoder (final=False) leaves out a character the cut splits, instead of ending on a U+FFFD it never sent.
    raw = _utf8_decoder().decode(value[:RAW_EXCERPT_BYTES], final=False) if value is not None else None
    identity = identity or {}
    without_metadata = {key: item for key, item in identity.items() if key != "metadata"}
    for echoed, note in ((identity, ""), (without_metadata, " (its metadata is not echoed: it breaks the rules)")):
        try:
            error = ErrorInfo(code=ErrorCode.INVALID_REQUEST, message=message + note)
            return SmsFailed.model_validate({**echoed, "error": error, "raw": raw})
        except ValidationError:
            continue
    error = ErrorInfo(code=ErrorCode.INVALID_REQUEST, message=message + " (nothing of it is echoed but raw)")
    return SmsFailed(error=error, raw=raw)


def _utf8_decoder() -> codecs.IncrementalDecoder:
    return codecs.getincrementaldecoder("utf-8")(errors="replace")
