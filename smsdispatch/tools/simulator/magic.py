"""Twilio's test-credential rules: the magic ``From`` and ``To`` numbers and what each one answers.

Source: docs/reference/twilio.md ("Test credentials and magic numbers"), which matches twilio.com/docs/iam/
test-credentials. Test credentials own no numbers and no Messaging Services, so any other ``From`` is 21606.
"""

from __future__ import annotations

PASSING_FROM = "+15005550006"

# From numbers: anything not listed here and not PASSING_FROM is "not owned by your account" (21606).
MAGIC_FROM_ERRORS: dict[str, int] = {
    "+15005550001": 21212,  # invalid From
    "+15005550007": 21606,  # not owned / not SMS-capable
    "+15005550008": 21611,  # sender queue full
}

# To numbers, checked once the From passed: any other valid number succeeds.
MAGIC_TO_ERRORS: dict[str, int] = {
    "+15005550001": 21211,  # invalid To
    "+15005550002": 21612,  # cannot route
    "+15005550003": 21408,  # no geographic permission
    "+15005550004": 21610,  # recipient unsubscribed (STOP)
    "+15005550009": 21614,  # not a mobile number
}


def magic_from_error(sender: str) -> int | None:
    """The error code a test-credential create gets for this ``From``, or None when it passes."""
    if sender == PASSING_FROM:
        return None
    return MAGIC_FROM_ERRORS.get(sender, 21606)


def magic_to_error(recipient: str) -> int | None:
    """The error code a magic ``To`` forces, or None: other numbers are validated as usual."""
    return MAGIC_TO_ERRORS.get(recipient)
