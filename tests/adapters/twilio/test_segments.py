"""segment_info(): GSM-7 / UCS-2 detection and segment counts at every boundary."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsdispatch.adapters.twilio import InvalidMessage, MessageTooLong, check_body, encoding_of, segment_info

GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = "^{}\\[~]|€"
EMOJI = "😀"  # outside the BMP: a surrogate pair in UCS-2


def test_plain_ascii_is_one_gsm7_segment() -> None:
    assert segment_info("Your code is 123456") == (1, "GSM-7")


def test_every_gsm7_basic_character_keeps_the_body_gsm7() -> None:
    assert encoding_of(GSM_BASIC) == "GSM-7"


@pytest.mark.parametrize("char", list(GSM_EXTENSION))
def test_extension_characters_are_gsm7_and_count_twice(char: str) -> None:
    assert segment_info(char * 80) == (1, "GSM-7")
    assert segment_info(char * 81) == (2, "GSM-7")


@pytest.mark.parametrize("char", ["ç", "á", "ō", "中", "\u00a0", "`"])
def test_one_character_outside_gsm7_makes_the_whole_body_ucs2(char: str) -> None:
    assert segment_info("a" * 60 + char) == (1, "UCS-2")


@pytest.mark.parametrize(("length", "segments"), [(160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)])
def test_gsm7_boundaries_are_160_then_153_per_segment(length: int, segments: int) -> None:
    assert segment_info("a" * length) == (segments, "GSM-7")


@pytest.mark.parametrize(("length", "segments"), [(70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)])
def test_ucs2_boundaries_are_70_then_67_per_segment(length: int, segments: int) -> None:
    assert segment_info("ж" * length) == (segments, "UCS-2")


def test_extension_character_is_not_split_at_a_segment_boundary() -> None:
    # 151 + 2 + 153 = 306 units = 2 x 153: the "€" ends part 1 exactly.
    assert segment_info("a" * 151 + "€" + "a" * 153) == (2, "GSM-7")
    # 152 + 2 + 152 = 306 units too, but the "€" would straddle parts 1 and 2: it moves whole into part 2,
    # which then holds the "€" and 151 "a", leaving one "a" for part 3.
    assert segment_info("a" * 152 + "€" + "a" * 152) == (3, "GSM-7")


def test_160_units_with_extension_characters_still_fit_one_segment() -> None:
    assert segment_info("a" * 158 + "€") == (1, "GSM-7")
    assert segment_info("a" * 159 + "€") == (2, "GSM-7")


def test_emoji_makes_the_body_ucs2_and_counts_two_units() -> None:
    assert segment_info(EMOJI * 35) == (1, "UCS-2")
    assert segment_info(EMOJI * 36) == (2, "UCS-2")


def test_surrogate_pair_is_not_split_at_a_segment_boundary() -> None:
    # 66 + 2 + 66 = 134 units = 2 x 67 by division, but the emoji cannot straddle parts: 3 segments.
    assert segment_info("ж" * 66 + EMOJI + "ж" * 66) == (3, "UCS-2")


def test_1600_characters_are_accepted_and_1601_are_too_long() -> None:
    check_body("a" * 1600)
    with pytest.raises(MessageTooLong):
        check_body("a" * 1601)


def test_length_limit_counts_characters_not_utf16_units() -> None:
    check_body(EMOJI * 1600)


def test_empty_body_is_invalid() -> None:
    with pytest.raises(InvalidMessage):
        check_body("")


gsm_text = st.text(alphabet=GSM_BASIC + GSM_EXTENSION, max_size=1600)
any_text = st.text(max_size=1600)


@given(gsm_text)
def test_gsm7_segments_are_never_fewer_than_units_divided_by_153(body: str) -> None:
    units = sum(2 if char in GSM_EXTENSION else 1 for char in body)
    segments, encoding = segment_info(body)
    assert encoding == "GSM-7"
    if units <= 160:
        assert segments == 1
    else:
        # Packing loses at most one unit per segment to a 2-unit character that did not fit.
        assert math.ceil(units / 153) <= segments <= math.ceil(units / 152)


@given(st.text(alphabet=GSM_BASIC, max_size=1600))
def test_gsm7_without_extension_characters_is_plain_division(body: str) -> None:
    expected = 1 if len(body) <= 160 else math.ceil(len(body) / 153)
    assert segment_info(body) == (expected, "GSM-7")


@given(any_text, st.characters())
def test_adding_a_character_never_lowers_the_segment_count_within_one_encoding(body: str, char: str) -> None:
    before, encoding_before = segment_info(body)
    after, encoding_after = segment_info(body + char)
    if encoding_before == encoding_after:
        assert after >= before


@given(any_text)
def test_ucs2_segments_match_utf16_units_packed_without_splitting_pairs(body: str) -> None:
    segments, encoding = segment_info(body)
    if encoding == "UCS-2":
        units = len(body.encode("utf-16-le", "surrogatepass")) // 2
        if units <= 70:
            assert segments == 1
        else:
            assert math.ceil(units / 67) <= segments <= math.ceil(units / 66)
