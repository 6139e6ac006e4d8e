"""How many SMS segments a body costs, and in which encoding: GSM 03.38 and UCS-2, as Twilio computes them and as
every SMS provider bills them (the ``segments`` and ``encoding`` of an ``sms.dispatched`` outcome).

A body is GSM-7 when every character is in the GSM 03.38 default alphabet; characters of its extension table
take an escape plus a septet, so they count 2. Anything else makes the whole body UCS-2, where a character
outside the Basic Multilingual Plane is a surrogate pair and counts 2. One segment holds 160 GSM-7 / 70 UCS-2
units; a multipart message spends room on its header and holds 153 / 67 per part. A character is never split
across two parts, so parts are counted by packing characters, not by dividing a length.

Pure functions, no I/O.
"""

from __future__ import annotations

from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

# GSM 03.38 default alphabet, in table order (0x1B, the escape to the extension table, left out).
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each is sent as ESC + septet. Form feed is in the standard table too.
_GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

_SINGLE_PART_UNITS: dict[Encoding, int] = {"GSM-7": 160, "UCS-2": 70}
_MULTI_PART_UNITS: dict[Encoding, int] = {"GSM-7": 153, "UCS-2": 67}


def encoding_of(body: str) -> Encoding:
    """``"GSM-7"`` when every character of ``body`` has a GSM-7 encoding, else ``"UCS-2"``."""
    if all(char in _GSM7_BASIC or char in _GSM7_EXTENSION for char in body):
        return "GSM-7"
    return "UCS-2"


def _units(char: str, encoding: Encoding) -> int:
    if encoding == "GSM-7":
        return 2 if char in _GSM7_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1


def segment_info(body: str) -> tuple[int, Encoding]:
    """Return ``(segments, encoding)`` for ``body``. An empty body is one (empty) segment."""
    encoding = encoding_of(body)
    sizes = [_units(char, encoding) for char in body]
    if sum(sizes) <= _SINGLE_PART_UNITS[encoding]:
        return 1, encoding
    capacity = _MULTI_PART_UNITS[encoding]
    segments, used = 1, 0
    for size in sizes:
        if used + size > capacity:
            segments, used = segments + 1, 0
        used += size
    return segments, encoding
