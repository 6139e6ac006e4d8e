"""``GET …/Messages.json``: filters and paging as the twilio SDK sends them.

The SDK sends ``To``, ``From``, ``DateSent``, ``DateSent<`` (on or before) and ``DateSent>`` (on or after),
which is what Twilio's documented ``DateSent<=2023-08-24`` looks like once the query string is parsed: the key
is ``DateSent<`` and the value ``2023-08-24``. Keys written with the ``=`` (percent-encoded) are accepted too.
Paging: ``PageSize`` (default 50, at most 1000), ``Page`` and ``PageToken``; ``next_page_uri`` carries a
``PageToken`` naming the last message of the page, so paging stays stable while new messages arrive.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smsdispatch.tools.simulator.errors import TwilioError
from smsdispatch.tools.simulator.formats import message_resource, page_envelope
from smsdispatch.tools.simulator.store import (
    DateFilter,
    MessageQuery,
    MessageStore,
    monotonic_and_wall,
    parse_date_filter,
)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

_DATE_KEYS = {
    "DateSent": "=",
    "DateSent<": "<=",
    "DateSent<=": "<=",
    "DateSent>": ">=",
    "DateSent>=": ">=",
}


def _int_param(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise TwilioError(20001, parameter=name) from None
    if not low <= value <= high:
        raise TwilioError(20001, parameter=name)
    return value


def parse_query(query: Mapping[str, str]) -> MessageQuery:
    date_filters: list[DateFilter] = []
    for key, op in _DATE_KEYS.items():
        raw = query.get(key)
        if raw:
            condition = parse_date_filter(op, raw)
            if condition is None:
                raise TwilioError(20001, parameter=key)
            date_filters.append(condition)
    return MessageQuery(to=query.get("To") or None, sender=query.get("From") or None, date_filters=date_filters)


def list_messages(store: MessageStore, account_sid: str, path: str, query: Mapping[str, str]) -> dict[str, Any]:
    """One page of the account's messages matching ``query``, in Twilio's list envelope."""
    message_query = parse_query(query)
    page_size = _int_param(query, "PageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    page = _int_param(query, "Page", 0, 0, 1_000_000)
    now_mono = monotonic_and_wall()[0]
    matching = store.query(account_sid, message_query, now_mono)
    start = page * page_size
    token = query.get("PageToken") or ""
    if token.startswith("PA"):
        after = token[2:]
        position = next((i for i, m in enumerate(matching) if m.sid == after), None)
        if position is not None:
            start = position + 1
    chunk = matching[start : start + page_size]
    has_more = start + page_size < len(matching)
    filters = [(key, query[key]) for key in ("To", "From", *_DATE_KEYS) if query.get(key)]
    return page_envelope(
        path=path,
        filters=filters,
        records=[message_resource(m, now_mono) for m in chunk],
        page=page,
        page_size=page_size,
        start=start,
        next_page_token=f"PA{chunk[-1].sid}" if has_more and chunk else None,
    )
