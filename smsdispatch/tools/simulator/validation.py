"""Checking a create request's form fields the way Twilio does, for live and for test credentials.

Live accounts: To (21604 missing, 21211 not E.164) -> sender (21603 missing; an MG… SID in ``From`` or in
``MessagingServiceSid`` is a Messaging Service: 21705 malformed, 21701 not this account's; a number: 21212
malformed, 21606 not owned) -> Body (21602 missing, 21617 over 1600 characters) -> StatusCallback (21609) ->
ValidityPeriod (21624 unless a whole number of seconds from 1 to 36000; absent or empty means 36000).

Test credentials: Twilio's magic tables (magic.py), From first, then To. Test credentials own no numbers and no
Messaging Services, so a service (in ``From`` or ``MessagingServiceSid``, which Twilio does not support with
test credentials) gets 21606 like any other sender that is not +15005550006.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from smsdispatch.contract import MAX_BODY_CHARS, check_e164, check_sender
from smsdispatch.tools.simulator.config import SimAccount
from smsdispatch.tools.simulator.errors import TwilioError
from smsdispatch.tools.simulator.magic import magic_from_error, magic_to_error

_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
_MAX_CALLBACK_URL = 4000
# Twilio takes whole seconds only; digits alone keep "1.5", "+5", " 5" and "1_0" (which int() would take) out.
_WHOLE_SECONDS = re.compile(r"^[0-9]{1,6}$")
DEFAULT_VALIDITY_S = 36_000
MIN_VALIDITY_S = 1


@dataclass(frozen=True, slots=True)
class Draft:
    """A create that passed validation."""

    to: str
    requested_sender: str
    from_number: str | None
    service_sid: str | None
    body: str
    status_callback: str | None
    validity_period: int = DEFAULT_VALIDITY_S


_NANP = re.compile(r"^\+1[0-9]{10}$")


@functools.lru_cache(maxsize=65_536)
def is_e164(value: str) -> bool:
    # Hot path: a +1 number with ten digits is always a possible NANP number, which is all check_e164 asks;
    # skipping phonenumbers' parse for it roughly halves the CPU a create costs.
    if _NANP.match(value):
        return True
    try:
        check_e164(value)
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=1024)
def _is_sender(value: str) -> bool:
    try:
        check_sender(value)
    except ValueError:
        return False
    return True


def _field(form: Mapping[str, str], name: str) -> str | None:
    value = form.get(name)
    return value if value else None


def _check_to(form: Mapping[str, str]) -> str:
    to = _field(form, "To")
    if to is None:
        raise TwilioError(21604)
    if not is_e164(to):
        raise TwilioError(21211, to=to)
    return to


def _check_body(form: Mapping[str, str]) -> str:
    body = _field(form, "Body")
    if body is None:
        raise TwilioError(21602)
    if len(body) > MAX_BODY_CHARS:
        raise TwilioError(21617)
    return body


def _check_status_callback(form: Mapping[str, str]) -> str | None:
    url = _field(form, "StatusCallback")
    if url is None:
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise TwilioError(21609, url=url) from None
    if parts.scheme not in ("http", "https") or not host or "_" in host or len(url) > _MAX_CALLBACK_URL:
        raise TwilioError(21609, url=url)
    return url


def _check_validity_period(form: Mapping[str, str]) -> int:
    raw = _field(form, "ValidityPeriod")
    if raw is None:
        return DEFAULT_VALIDITY_S
    if not _WHOLE_SECONDS.match(raw) or not MIN_VALIDITY_S <= int(raw) <= DEFAULT_VALIDITY_S:
        raise TwilioError(21624)
    return int(raw)


def validate_live(form: Mapping[str, str], account: SimAccount, pool_number: str | None) -> Draft:
    """The create as a live account's request; ``pool_number`` is what a service sends from once queued."""
    to = _check_to(form)
    sender = _field(form, "From")
    service = _field(form, "MessagingServiceSid")
    if service is None and sender is not None and sender.startswith("MG"):
        service = sender  # Twilio accepts a service SID in From as well
        sender = None
    if service is not None:
        if not _SERVICE_SID.match(service):
            raise TwilioError(21705, sender=service)
        if service not in account.senders:
            raise TwilioError(21701, sender=service)
    if sender is not None:
        if not _is_sender(sender):
            raise TwilioError(21212, sender=sender)
        if sender not in account.senders:
            raise TwilioError(21606, sender=sender)
    elif service is None:
        raise TwilioError(21603)
    body = _check_body(form)
    return Draft(
        to=to,
        requested_sender=sender or service or "",
        from_number=sender or pool_number,
        service_sid=service,
        body=body,
        status_callback=_check_status_callback(form),
        validity_period=_check_validity_period(form),
    )


def validate_test(form: Mapping[str, str]) -> Draft:
    """The create as a test-credential request: magic From, then magic To, then the usual field rules."""
    service = _field(form, "MessagingServiceSid")
    if service is not None:
        raise TwilioError(21606, sender=service)
    sender = _field(form, "From")
    if sender is None:
        raise TwilioError(21603)
    from_error = magic_from_error(sender)
    if from_error is not None:
        raise TwilioError(from_error, sender=sender)
    to = _field(form, "To")
    if to is None:
        raise TwilioError(21604)
    to_error = magic_to_error(to)
    if to_error is not None:
        raise TwilioError(to_error, to=to, sender=sender)
    if not is_e164(to):
        raise TwilioError(21211, to=to)
    body = _check_body(form)
    return Draft(
        to=to,
        requested_sender=sender,
        from_number=sender,
        service_sid=None,
        body=body,
        status_callback=_check_status_callback(form),
        validity_period=_check_validity_period(form),
    )
