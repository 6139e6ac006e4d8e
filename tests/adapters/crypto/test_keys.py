"""Parsing SMSDISPATCH_ENCRYPTION_KEYS: what is accepted, and the one-sentence errors for what is not."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.fernet import Fernet

from smsdispatch.adapters.crypto import KeyConfigError, Keyring, generate_key, key_id
from smsdispatch.contract.settings import Settings

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


def raw(key: str) -> bytes:
    return base64.urlsafe_b64decode(key)


def config_error(value: str | None) -> str:
    with pytest.raises(KeyConfigError) as caught:
        Keyring.from_value(value)
    message = str(caught.value)
    assert message.endswith(".")
    assert ". " not in message, "one sentence only"
    assert "\n" not in message
    return message


# --- key ids and new keys -----------------------------------------------------------------------------------


def test_generated_key_is_32_random_bytes_in_url_safe_base64() -> None:
    first, second = generate_key(), generate_key()
    assert len(base64.urlsafe_b64decode(first)) == 32
    assert first != second
    assert Keyring.from_value(first).kids == (key_id(raw(first)),)


def test_key_id_is_16_hex_digits_derived_from_the_key() -> None:
    kid = key_id(raw(KEY_A))
    assert len(kid) == 16
    assert int(kid, 16) >= 0
    assert kid == key_id(raw(KEY_A))
    assert kid != key_id(raw(KEY_B))


def test_key_id_is_domain_separated_from_a_plain_hash_of_the_key() -> None:
    kid = key_id(raw(KEY_A))
    assert kid not in KEY_A
    assert not hashlib.sha256(raw(KEY_A)).hexdigest().startswith(kid)
    assert not hashlib.sha256(KEY_A.encode()).hexdigest().startswith(kid)


# --- what is accepted ---------------------------------------------------------------------------------------


def test_first_key_encrypts_and_order_is_kept() -> None:
    keyring = Keyring.from_value(f"{KEY_A},{KEY_B}")
    assert keyring.kids == (key_id(raw(KEY_A)), key_id(raw(KEY_B)))
    assert keyring.current_kid == key_id(raw(KEY_A))


def test_spaces_and_newlines_around_entries_are_ignored() -> None:
    assert Keyring.from_value(f" {KEY_A} ,\n{KEY_B}\n").kids == Keyring.from_value(f"{KEY_A},{KEY_B}").kids


def test_key_without_its_padding_is_the_same_key() -> None:
    assert Keyring.from_value(KEY_A.rstrip("=")).kids == Keyring.from_value(KEY_A).kids


def test_a_key_listed_twice_counts_once_in_its_first_position() -> None:
    assert Keyring.from_value(f"{KEY_A},{KEY_B},{KEY_A}").kids == (key_id(raw(KEY_A)), key_id(raw(KEY_B)))
    assert Keyring.from_value(f"{KEY_A},{KEY_A}").kids == (key_id(raw(KEY_A)),)


def test_keyring_repr_shows_key_ids_not_keys() -> None:
    keyring = Keyring.from_value(f"{KEY_A},{KEY_B}")
    text = repr(keyring)
    assert key_id(raw(KEY_A)) in text
    assert KEY_A not in text
    assert KEY_B not in text
    assert KEY_A.rstrip("=") not in text


# --- from the environment -----------------------------------------------------------------------------------


def test_keyring_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMSDISPATCH_ENCRYPTION_KEYS", f"{KEY_B},{KEY_A}")
    assert Keyring.from_settings(Settings()).current_kid == key_id(raw(KEY_B))


def test_keyring_is_read_from_given_settings() -> None:
    assert Keyring.from_settings(Settings(encryption_keys=KEY_A)).current_kid == key_id(raw(KEY_A))


def test_unset_variable_says_how_to_make_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMSDISPATCH_ENCRYPTION_KEYS", raising=False)
    with pytest.raises(KeyConfigError) as caught:
        Keyring.from_settings(Settings())
    assert str(caught.value) == (
        "SMSDISPATCH_ENCRYPTION_KEYS is not set: run `smsdispatch keygen` and export the key it prints."
    )


# --- one clear sentence for every malformed list ------------------------------------------------------------


def test_missing_value_is_one_sentence() -> None:
    assert config_error(None).startswith("SMSDISPATCH_ENCRYPTION_KEYS is not set:")


@pytest.mark.parametrize("value", ["", "   ", "\n"])
def test_empty_value_is_one_sentence(value: str) -> None:
    assert config_error(value).startswith("SMSDISPATCH_ENCRYPTION_KEYS is empty:")


@pytest.mark.parametrize(
    ("value", "position"),
    [(f"{KEY_A},", 2), (f",{KEY_A}", 1), (f"{KEY_A},,{KEY_B}", 2), (f"{KEY_A}, ,{KEY_B}", 2)],
    ids=["trailing", "leading", "doubled", "blank"],  # the keys are random: ids must not show them (pytest-xdist)
)
def test_blank_entry_is_named_by_position_rather_than_skipped(value: str, position: int) -> None:
    assert config_error(value).startswith(f"SMSDISPATCH_ENCRYPTION_KEYS entry {position} is empty")


MALFORMED = {
    "word": "not-a-key",
    "truncated": KEY_B[:-4],
    "too-long": KEY_B.rstrip("=") + "AAAA",
    "standard-base64-alphabet": base64.b64encode(b"\xfb\xff" * 16).decode(),
    "16-byte-key": base64.urlsafe_b64encode(b"k" * 16).decode(),
    "hex-encoded": "ab" * 32,
    "non-ascii": "é" * 43 + "=",
    "inner-space": KEY_B[:20] + " " + KEY_B[21:],
}


@pytest.mark.parametrize("bad", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_entry_is_named_by_position_without_key_material(bad: str) -> None:
    message = config_error(f"{KEY_A},{bad}")
    assert message == "SMSDISPATCH_ENCRYPTION_KEYS entry 2 is not a 32-byte URL-safe base64 key."
    assert KEY_A not in message


@pytest.mark.parametrize("bad", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_list_never_yields_a_keyring(bad: str) -> None:
    with pytest.raises(KeyConfigError):
        Keyring.from_value(bad)


def test_empty_key_sequence_is_refused() -> None:
    with pytest.raises(KeyConfigError):
        Keyring([])
