"""The simulator's own segment count (GSM-7 / UCS-2), which drives ``num_segments``."""

from __future__ import annotations

import pytest

from smsdispatch.simulator.segments import count_segments


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("x" * 160, 1),
        ("x" * 161, 2),
        ("x" * 306, 2),
        ("x" * 307, 3),
        ("€" * 80, 1),  # extension characters take two septets: 160
        ("€" * 81, 2),
        ("a" * 152 + "€" + "a" * 10, 2),  # the escape pair is never split across segments
        ("ж" * 70, 1),
        ("ж" * 71, 2),
        ("😀" * 35, 1),  # astral characters take two UTF-16 units: 70
        ("😀" * 36, 2),
        ("ж" * 134, 2),
        ("ж" * 135, 3),
        ("é ü Ñ @ £", 1),
    ],
)
def test_segments_follow_gsm7_and_ucs2_limits(body: str, segments: int) -> None:
    assert count_segments(body) == segments
