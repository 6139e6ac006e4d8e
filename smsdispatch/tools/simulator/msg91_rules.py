"""MSG91's Flow API rules as the simulator applies them: request checks, error answers, magic numbers, statuses.

Source: /work/shared/reference/msg91.md. A send is checked in this order, and the first failure is the answer, on
HTTP 200 as ``{"type": "error", "message": ..., "code": ...}`` (MSG91 answers errors with 200; a client must read
``type``):

1. the ``authkey`` header names a configured account, else 207;
2. the body is a JSON object (sent as ``application/json``) with a string ``template_id`` (or the legacy
   ``flow_id``) and a non-empty ``recipients`` list of objects that each carry ``mobiles``, else 101;
3. the template belongs to that authkey's account, else 102 (MSG91's real code for this is unconfirmed: 102 is
   the simulator's choice, from the legacy 101-107 "missing or invalid parameter" range);
4. every ``mobiles`` is a string of 8-15 digits, international format without ``+`` (``919876543210``), else 202;
5. ``CRQID`` (optional) is 1-80 letters, digits, ``_ . -``, and ``sender`` (optional) a string, else 101.

Magic numbers, by a mobile's last four digits, let tests provoke what MSG91 can answer: see ``MAGIC_ERRORS``
(refused, nothing stored), ``MAGIC_AFTER_ACCEPT`` (stored, then a 500 or a 30 s hang) and ``MAGIC_FINAL_STATUS``
(the delivery report's status). Pure functions, no I/O.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

INVALID_AUTHKEY = "207"
MISSING_PARAMETER = "101"
INVALID_TEMPLATE = "102"
INVALID_MOBILE = "202"
TOO_MANY_REQUESTS = "429"

_MOBILE = re.compile(r"^[0-9]{8,15}$")
_CRQID = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")

# Endings refused after every check passed; nothing is stored. 429 is answered with HTTP 429, the others with 200.
MAGIC_ERRORS: dict[str, tuple[str, str]] = {
    "0202": (INVALID_MOBILE, "invalid mobile number"),  # checked with the mobile itself (step 4)
    "0301": ("301", "insufficient balance"),
    "0418": ("418", "IP not whitelisted"),
    "0429": (TOO_MANY_REQUESTS, "too many requests"),
}

AfterAccept = Literal["error_500", "hang"]
# Endings whose message is stored (and reported) before the answer goes wrong: a 500, or a 30 s wait.
MAGIC_AFTER_ACCEPT: dict[str, AfterAccept] = {"0500": "error_500", "0408": "hang"}

DELIVERED = 1
FAILED = 2
STATUS_DESCRIPTIONS: dict[int, str] = {
    1: "Delivered",
    2: "Failed",
    9: "NDNC",
    16: "Rejected",
    17: "Blocked",
    25: "Rejected",
}
# Endings whose delivery report carries a failure; every other message is delivered (1).
MAGIC_FINAL_STATUS: dict[str, int] = {"0002": 2, "0009": 9, "0016": 16, "0017": 17, "0025": 25}


class Msg91Error(Exception):
    """A send MSG91 would refuse: its ``code`` (a string, as MSG91 sends it), message and HTTP status."""

    def __init__(self, code: str, message: str, status: int = 200) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> dict[str, str]:
        return {"type": "error", "message": self.message, "code": self.code}


@dataclass(frozen=True, slots=True)
class Recipient:
    mobile: str
    variables: dict[str, Any]  # the recipient object without ``mobiles``: the template's variables


@dataclass(frozen=True, slots=True)
class FlowSend:
    """A send that passed the structural checks (step 2); its template and mobiles are checked next."""

    template_id: str
    sender: Any
    crqid: Any
    recipients: tuple[Recipient, ...]


def parse_flow(raw: bytes, content_type: str) -> FlowSend:
    """Step 2: the body's structure, or Msg91Error 101 naming what is missing."""
    if content_type != "application/json":
        raise Msg91Error(MISSING_PARAMETER, "the body must be sent as application/json")
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Msg91Error(MISSING_PARAMETER, "the body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise Msg91Error(MISSING_PARAMETER, "the body must be a JSON object")
    template_id = payload.get("template_id", payload.get("flow_id"))
    if not isinstance(template_id, str) or not template_id:
        raise Msg91Error(MISSING_PARAMETER, "missing parameter: template_id")
    recipients = payload.get("recipients")
    if not isinstance(recipients, list) or not recipients:
        raise Msg91Error(MISSING_PARAMETER, "missing parameter: recipients")
    parsed = []
    for entry in recipients:
        if not isinstance(entry, dict) or "mobiles" not in entry:
            raise Msg91Error(MISSING_PARAMETER, "missing parameter: mobiles (every recipient needs one)")
        variables = {name: value for name, value in entry.items() if name != "mobiles"}
        parsed.append(Recipient(entry["mobiles"], variables))
    return FlowSend(template_id, payload.get("sender"), payload.get("CRQID"), tuple(parsed))


def check_mobiles(send: FlowSend) -> None:
    """Step 4: every mobile is 8-15 digits without ``+`` and does not end with the magic 0202."""
    for recipient in send.recipients:
        mobile = recipient.mobile
        if not isinstance(mobile, str) or not _MOBILE.match(mobile) or mobile.endswith("0202"):
            shown = mobile if isinstance(mobile, str) else type(mobile).__name__
            raise Msg91Error(INVALID_MOBILE, f"invalid mobile number: {shown} (digits only, no +)")


def check_options(send: FlowSend) -> tuple[str | None, str | None]:
    """Step 5: ``(sender, CRQID)``, each None when absent or empty."""
    crqid, sender = send.crqid, send.sender
    if crqid is not None and crqid != "" and (not isinstance(crqid, str) or not _CRQID.match(crqid)):
        raise Msg91Error(MISSING_PARAMETER, "CRQID must be at most 80 letters, digits, _ . or -")
    if sender is not None and not isinstance(sender, str):
        raise Msg91Error(MISSING_PARAMETER, "sender must be a string")
    return sender or None, crqid or None


def magic_of(send: FlowSend) -> str | None:
    """The first magic ending among the send's mobiles that changes its answer (refusal or after-accept)."""
    for recipient in send.recipients:
        ending = recipient.mobile[-4:]
        if ending in MAGIC_ERRORS or ending in MAGIC_AFTER_ACCEPT:
            return ending
    return None


def magic_refusal(ending: str | None) -> Msg91Error | None:
    """The refusal a magic ending forces (429 on HTTP 429, the others on 200), or None."""
    if ending is None or ending not in MAGIC_ERRORS:
        return None
    code, message = MAGIC_ERRORS[ending]
    return Msg91Error(code, message, status=429 if code == TOO_MANY_REQUESTS else 200)


def final_status(mobile: str, undelivered: bool) -> int:
    """The status a message's report carries: the magic ending's, else 2 when ``undelivered`` was drawn, else 1."""
    magic = MAGIC_FINAL_STATUS.get(mobile[-4:])
    if magic is not None:
        return magic
    return FAILED if undelivered else DELIVERED
