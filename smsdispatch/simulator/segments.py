"""How many SMS segments Twilio bills for a body (GSM-7 or UCS-2), as reference/twilio.md describes.

A private copy: the simulator must not depend on the provider layer's own segment counter.
"""

from __future__ import annotations

_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension characters are sent as ESC + character, so each takes two septets.
_GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

_SINGLE = {"GSM-7": 160, "UCS-2": 70}
_MULTIPART = {"GSM-7": 153, "UCS-2": 67}


def _unit_widths(body: str) -> tuple[str, list[int]]:
    """The encoding and each character's width in that encoding's units (septets or UTF-16 code units)."""
    widths: list[int] = []
    for char in body:
        if char in _GSM7_BASIC:
            widths.append(1)
        elif char in _GSM7_EXTENSION:
            widths.append(2)
        else:
            return "UCS-2", [2 if ord(c) > 0xFFFF else 1 for c in body]
    return "GSM-7", widths


def count_segments(body: str) -> int:
    """Segments for ``body``; a character is never split across two segments."""
    encoding, widths = _unit_widths(body)
    total = sum(widths)
    if total <= _SINGLE[encoding]:
        return 1
    capacity = _MULTIPART[encoding]
    segments, used = 1, 0
    for width in widths:
        if used + width > capacity:
            segments, used = segments + 1, 0
        used += width
    return segments
