"""Twilio's error answers: the code, its HTTP status, and the message Twilio words it with.

Every refusal in the simulator is a :class:`TwilioError`; the app turns it into Twilio's error body
``{code, message, more_info, status}``. Codes and statuses follow docs/reference/twilio.md; the few codes it does not
list (21604, 21609, 21624, 21701, 21705, 20001) are Twilio's documented ones for those cases (21624: "Invalid
validity period value", twilio.com/docs/api/errors/21624 — integers 1 to 36,000 seconds).
"""

from __future__ import annotations

import json

_TEMPLATES: dict[int, tuple[int, str]] = {
    20001: (400, "Invalid value for parameter {parameter}"),
    20003: (401, "Authenticate"),
    20008: (403, "Resource not accessible with Test Account Credentials"),
    20403: (403, "Account {account} is {state}: this resource is not available"),
    20404: (404, "The requested resource {path} was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "An internal server error has occurred"),
    21211: (400, "The 'To' number {to} is not a valid phone number."),
    21212: (400, "The 'From' number {sender} is not a valid phone number, shortcode, or alphanumeric sender ID."),
    21408: (400, "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {to}."),
    21602: (400, "Message body is required."),
    21603: (400, "A 'From' phone number or a 'MessagingServiceSid' is required."),
    21604: (400, "A 'To' phone number is required."),
    21606: (
        400,
        "The From phone number {sender} is not a valid, SMS-capable inbound phone number or short code "
        "for your account.",
    ),
    21609: (400, "The StatusCallback URL {url} is not a valid URL."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21611: (400, "This 'From' number has exceeded the maximum number of queued messages"),
    21612: (400, "The 'To' phone number: {to}, is not currently reachable using the 'From' phone number: {sender}."),
    21614: (400, "'To' number {to} is not a valid mobile number"),
    21617: (400, "The concatenated message body exceeds the 1600 character limit."),
    21624: (400, "Invalid validity period value: ValidityPeriod must be an integer between 1 and 36000 seconds."),
    21701: (400, "The Messaging Service {sender} does not exist or does not belong to this account."),
    21705: (400, "The Messaging Service Sid {sender} is invalid."),
}

# Asynchronous delivery failures: these only ever appear on a message (error_code) and in status callbacks.
DELIVERY_ERRORS: dict[int, str] = {
    30003: "Unreachable destination handset",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
}

# A message still in the sender's queue when its ValidityPeriod runs out is dropped with 30001: Twilio's page for
# 30001 (twilio.com/docs/api/errors/30001) describes the queue limit "reduced by setting a lower Validity Period".
# Kept apart from DELIVERY_ERRORS, which is the pool random undelivered outcomes are drawn from.
QUEUE_EXPIRED_CODE = 30001
ERROR_MESSAGES: dict[int, str] = {**DELIVERY_ERRORS, QUEUE_EXPIRED_CODE: "Queue overflow"}


class TwilioError(Exception):
    """A request Twilio would refuse, with Twilio's code; ``str()`` is Twilio's message."""

    def __init__(self, code: int, **details: str) -> None:
        self.code = code
        self.status, template = _TEMPLATES[code]
        self.message = template.format(**details)
        super().__init__(self.message)

    def body(self) -> bytes:
        return error_body(self.code, self.status, self.message)


def error_body(code: int, status: int, message: str) -> bytes:
    return json.dumps(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        }
    ).encode()
