"""A scripted Twilio for ``httpx.MockTransport``: unit-test code that talks to Twilio without a server.

::

    fake = FakeTwilio()
    fake.then(twilio_error(429, 20429, "Too Many Requests"))    # the first request gets a 429 ...
    http = TwilioHttp("https://api.twilio.com", transport=fake.transport)
    ...                                                          # ... later ones answer like Twilio
    assert fake.creates()[0]["To"] == "+14155552671"

Unscripted requests are answered as Twilio answers: a create gets 201 with the message JSON (string
``num_segments``, RFC 2822 dates) and is kept in :attr:`FakeTwilio.messages`; a fetch of the account gets the
account JSON; a list of messages gets :attr:`FakeTwilio.messages` filtered by To and From. Credentials are not
checked: script a :func:`twilio_error` for that.
"""

from __future__ import annotations

import re
import secrets
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx

Handler = Callable[[httpx.Request], httpx.Response]
Scripted = httpx.Response | Exception | Handler

_CREATE = re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-fA-F]{32})/Messages\.json$")
_ACCOUNT = re.compile(r"^/2010-04-01/Accounts/(AC[0-9a-fA-F]{32})\.json$")


def new_sid(prefix: str = "SM") -> str:
    """A fresh SID of Twilio's shape: two letters and 32 hex digits."""
    return prefix + secrets.token_hex(16)


def rfc2822(moment: datetime) -> str:
    """A date as Twilio writes it: ``Thu, 24 Aug 2023 05:01:45 +0000``."""
    return format_datetime(moment.astimezone(UTC)).replace("-0000", "+0000")


def message_json(
    *,
    account_sid: str,
    to: str,
    body: str,
    from_: str | None = None,
    messaging_service_sid: str | None = None,
    sid: str | None = None,
    status: str | None = None,
    num_segments: str = "1",
    date_created: datetime | None = None,
) -> dict[str, Any]:
    """A message resource shaped as Twilio returns it (201 on create, and in lists)."""
    sid = sid or new_sid()
    created = rfc2822(date_created or datetime.now(UTC))
    return {
        "sid": sid,
        "account_sid": account_sid,
        "from": from_,
        "to": to,
        "body": body,
        "status": status or ("accepted" if messaging_service_sid else "queued"),
        "num_segments": "0" if messaging_service_sid else num_segments,
        "num_media": "0",
        "direction": "outbound-api",
        "api_version": "2010-04-01",
        "price": None,
        "price_unit": "USD",
        "error_code": None,
        "error_message": None,
        "messaging_service_sid": messaging_service_sid,
        "date_created": created,
        "date_updated": created,
        "date_sent": None,
        "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
        "subresource_uris": {"media": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}/Media.json"},
    }


def account_json(account_sid: str, *, status: str = "active", type_: str = "Full") -> dict[str, Any]:
    """An account resource as ``GET /2010-04-01/Accounts/{Sid}.json`` returns it."""
    return {
        "sid": account_sid,
        "friendly_name": "My first Twilio account",
        "status": status,
        "type": type_,
        "owner_account_sid": account_sid,
        "uri": f"/2010-04-01/Accounts/{account_sid}.json",
    }


def error_json(status: int, code: int, message: str) -> dict[str, Any]:
    """Twilio's error body."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def twilio_error(
    status: int, code: int, message: str = "Error", headers: dict[str, str] | None = None
) -> httpx.Response:
    """An error response as Twilio sends it, e.g. ``twilio_error(400, 21211, "Invalid 'To' Phone Number")``."""
    return httpx.Response(status, json=error_json(status, code, message), headers=headers)


def page_json(path: str, messages: list[dict[str, Any]], next_page_uri: str | None = None) -> dict[str, Any]:
    """A list page: Twilio's envelope around ``messages``."""
    return {
        "messages": messages,
        "uri": path,
        "first_page_uri": path,
        "next_page_uri": next_page_uri,
        "previous_page_uri": None,
        "page": 0,
        "page_size": 50,
        "start": 0,
        "end": max(len(messages) - 1, 0),
    }


class FakeTwilio:
    """A callable for ``httpx.MockTransport`` answering like Twilio, with an optional script in front.

    Every request is kept in :attr:`requests`. :meth:`then` queues answers (responses, exceptions to raise,
    or handlers ``request -> response``) that are used, in order, before the default behaviour resumes.
    """

    def __init__(self, *, account_status: str = "active", account_type: str = "Full") -> None:
        self.requests: list[httpx.Request] = []
        self.messages: list[dict[str, Any]] = []
        self.account_status = account_status
        self.account_type = account_type
        self._script: deque[Scripted] = deque()

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def then(self, *answers: Scripted) -> FakeTwilio:
        self._script.extend(answers)
        return self

    def accepted_then(self, answer: httpx.Response | Exception) -> Handler:
        """A scripted answer that stores the message as Twilio would, then returns ``answer`` (or raises it):
        the unknown outcome of a create that Twilio accepted but whose answer was lost."""

        def handler(request: httpx.Request) -> httpx.Response:
            self.answer(request)
            if isinstance(answer, Exception):
                raise answer
            return answer

        return handler

    def creates(self) -> list[dict[str, str]]:
        """The form fields of every create (POST) received, in order."""
        return [form_of(request) for request in self.requests if request.method == "POST"]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self._script:
            answer = self._script.popleft()
            if isinstance(answer, Exception):
                raise answer
            return answer if isinstance(answer, httpx.Response) else answer(request)
        return self.answer(request)

    def answer(self, request: httpx.Request) -> httpx.Response:
        """What Twilio would say to ``request``; scripted handlers may call this to "accept, then fail"."""
        path = request.url.path
        if request.method == "POST" and (match := _CREATE.match(path)):
            return httpx.Response(201, json=self.accept(match.group(1), form_of(request)))
        if request.method == "GET" and (match := _ACCOUNT.match(path)):
            document = account_json(match.group(1), status=self.account_status, type_=self.account_type)
            return httpx.Response(200, json=document)
        if request.method == "GET" and _CREATE.match(path):
            wanted = {key: request.url.params[key] for key in ("To", "From") if key in request.url.params}
            chosen = [m for m in self.messages if all(m[k.lower()] == v for k, v in wanted.items())]
            return httpx.Response(200, json=page_json(path, chosen))
        return twilio_error(404, 20404, f"The requested resource {path} was not found")

    def accept(self, account_sid: str, form: dict[str, str]) -> dict[str, Any]:
        """Store a message as a create with ``form`` would, and return its JSON."""
        document = message_json(
            account_sid=account_sid,
            to=form.get("To", ""),
            body=form.get("Body", ""),
            from_=form.get("From"),
            messaging_service_sid=form.get("MessagingServiceSid"),
        )
        self.messages.append(document)
        return document


def form_of(request: httpx.Request) -> dict[str, str]:
    """The form-encoded body of ``request`` as a dict."""
    return dict(parse_qsl(request.content.decode(), keep_blank_values=True))
