"""Sealing tenant configs: round trips, secrecy, tamper detection and key rotation."""

from __future__ import annotations

import base64

import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st

from smsdispatch.adapters.crypto import Keyring, UnsealError, key_id
from smsdispatch.contract import EncryptedConfig, TenantConfig, TenantRecord
from tests.accounts import ACCOUNT_SID, API_KEY_SECRET, AUTH_TOKEN

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()
OTHER_KEY = Fernet.generate_key().decode()
OLD_KID = key_id(base64.urlsafe_b64decode(OLD_KEY))
NEW_KID = key_id(base64.urlsafe_b64decode(NEW_KEY))

KEY_SECRET = API_KEY_SECRET
TOKEN_CONFIG = TenantConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, from_number="+15005550006")
KEY_CONFIG = TenantConfig(
    account_sid=ACCOUNT_SID,
    api_key_sid="SK" + "fedcba9876543210" * 2,
    api_key_secret=KEY_SECRET,
    from_number="MG" + "00112233445566778899aabbccddeeff",
)


def keyring(*keys: str) -> Keyring:
    return Keyring.from_value(",".join(keys))


def assert_one_sentence_without_keys(message: str) -> None:
    assert message.endswith(".")
    assert ". " not in message
    for key in (OLD_KEY, NEW_KEY, OTHER_KEY):
        assert key not in message
        assert key.rstrip("=") not in message


def altered(ciphertext: str, position: int) -> str:
    """The token with one bit of its byte at ``position`` flipped. (Replacing a base64 character could change
    only the unused low bits of the last character before the padding, and alter nothing.)"""
    token = bytearray(base64.urlsafe_b64decode(ciphertext))
    token[position] ^= 0x01
    return base64.urlsafe_b64encode(bytes(token)).decode()


# --- round trip and secrecy ---------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [TOKEN_CONFIG, KEY_CONFIG], ids=["auth-token", "api-key"])
def test_sealed_config_unseals_to_the_same_config(config: TenantConfig) -> None:
    ring = keyring(NEW_KEY)
    envelope = ring.seal(config)
    assert envelope.alg == "fernet"
    assert envelope.kid == NEW_KID
    assert ring.unseal(envelope) == config


@pytest.mark.parametrize("config", [TOKEN_CONFIG, KEY_CONFIG], ids=["auth-token", "api-key"])
def test_secrets_never_appear_in_the_published_bytes(config: TenantConfig) -> None:
    envelope = keyring(NEW_KEY).seal(config)
    record = TenantRecord(tenant_id="acme", config=envelope)
    for published in (envelope.to_bytes(), record.to_bytes()):
        for secret in (AUTH_TOKEN, KEY_SECRET, ACCOUNT_SID, NEW_KEY):
            assert secret.encode() not in published
            assert base64.urlsafe_b64encode(secret.encode()).rstrip(b"=") not in published


def test_sealing_twice_gives_different_ciphertexts() -> None:
    ring = keyring(NEW_KEY)
    assert ring.seal(TOKEN_CONFIG).ciphertext != ring.seal(TOKEN_CONFIG).ciphertext


def test_ciphertext_is_a_standard_fernet_token() -> None:
    envelope = keyring(NEW_KEY).seal(TOKEN_CONFIG)
    plaintext = Fernet(NEW_KEY.encode()).decrypt(envelope.ciphertext.encode())
    assert TenantConfig.model_validate_json(plaintext) == TOKEN_CONFIG


# --- tampering and wrong keys -------------------------------------------------------------------------------


@pytest.mark.parametrize("position", [0, 9, 30, 60, -2])
def test_altered_ciphertext_is_detected_and_names_the_kid(position: int) -> None:
    ring = keyring(NEW_KEY)
    envelope = ring.seal(TOKEN_CONFIG)
    tampered = envelope.model_copy(update={"ciphertext": altered(envelope.ciphertext, position)})
    with pytest.raises(UnsealError) as caught:
        ring.unseal(tampered)
    assert caught.value.kid == NEW_KID
    assert str(caught.value) == (
        f"The tenant config sealed with key {NEW_KID} fails authentication: "
        "its ciphertext was altered or is not a Fernet token."
    )


@pytest.mark.parametrize("ciphertext", ["x", "gAAAAA", "not base64 at all!", "é", "\x00", "gAAAA\udcff"])
def test_ciphertext_that_is_not_a_fernet_token_is_refused(ciphertext: str) -> None:
    with pytest.raises(UnsealError) as caught:
        # model_construct: a record read from JSON cannot even hold some of these, so skip validation.
        keyring(NEW_KEY).unseal(EncryptedConfig.model_construct(alg="fernet", kid=NEW_KID, ciphertext=ciphertext))
    assert_one_sentence_without_keys(str(caught.value))


def test_unknown_kid_names_the_kid_and_the_known_ones_but_no_key() -> None:
    envelope = keyring(OLD_KEY).seal(TOKEN_CONFIG)
    with pytest.raises(UnsealError) as caught:
        keyring(NEW_KEY).unseal(envelope)
    message = str(caught.value)
    assert caught.value.kid == OLD_KID
    assert message == (
        f"The tenant config is sealed with key {OLD_KID}, which is not in SMSDISPATCH_ENCRYPTION_KEYS "
        f"(known key ids: {NEW_KID})."
    )
    assert_one_sentence_without_keys(message)


def test_foreign_kid_with_odd_characters_is_quoted_in_the_error() -> None:
    with pytest.raises(UnsealError) as caught:
        keyring(NEW_KEY).unseal(EncryptedConfig(kid="evil\nline", ciphertext="x"))
    assert "'evil\\nline'" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_mislabelled_envelope_still_opens_with_any_listed_key() -> None:
    envelope = keyring(OLD_KEY).seal(TOKEN_CONFIG)
    relabelled = envelope.model_copy(update={"kid": NEW_KID})
    assert keyring(NEW_KEY, OLD_KEY).unseal(relabelled) == TOKEN_CONFIG
    assert keyring(NEW_KEY, OLD_KEY).unseal(envelope.model_copy(update={"kid": "lost"})) == TOKEN_CONFIG


def test_decrypted_content_that_is_not_a_config_is_refused_without_showing_it() -> None:
    forged = Fernet(NEW_KEY.encode()).encrypt(b'{"account_sid": "bad", "auth_token": "hunter2-secret"}')
    with pytest.raises(UnsealError) as caught:
        keyring(NEW_KEY).unseal(EncryptedConfig(kid=NEW_KID, ciphertext=forged.decode()))
    message = str(caught.value)
    assert message == (
        f"The tenant config sealed with key {NEW_KID} decrypts but is not a valid tenant config "
        "(check: account_sid, from_number)."
    )
    assert "hunter2" not in message
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_decrypted_content_that_is_not_json_is_refused() -> None:
    forged = Fernet(NEW_KEY.encode()).encrypt(b"\xff not json")
    with pytest.raises(UnsealError) as caught:
        keyring(NEW_KEY).unseal(EncryptedConfig(kid=NEW_KID, ciphertext=forged.decode()))
    assert_one_sentence_without_keys(str(caught.value))


# --- rotation -----------------------------------------------------------------------------------------------


def test_record_sealed_under_the_old_key_opens_when_that_key_is_listed_second() -> None:
    envelope = keyring(OLD_KEY).seal(TOKEN_CONFIG)
    rotated = keyring(NEW_KEY, OLD_KEY)
    assert rotated.unseal(envelope) == TOKEN_CONFIG
    assert not rotated.is_current(envelope)
    assert rotated.seal(TOKEN_CONFIG).kid == NEW_KID


def test_reseal_moves_a_record_to_the_new_key() -> None:
    envelope = keyring(OLD_KEY).seal(KEY_CONFIG)
    resealed = keyring(NEW_KEY, OLD_KEY).reseal(envelope)
    assert resealed.kid == NEW_KID
    assert keyring(NEW_KEY).unseal(resealed) == KEY_CONFIG


def test_reseal_of_a_current_record_returns_it_unchanged() -> None:
    ring = keyring(NEW_KEY, OLD_KEY)
    envelope = ring.seal(TOKEN_CONFIG)
    assert ring.is_current(envelope)
    assert ring.reseal(envelope) is envelope


def test_reseal_of_a_record_mislabelled_as_current_really_re_encrypts_it() -> None:
    mislabelled = keyring(OLD_KEY).seal(TOKEN_CONFIG).model_copy(update={"kid": NEW_KID})
    resealed = keyring(NEW_KEY, OLD_KEY).reseal(mislabelled)
    assert resealed is not mislabelled
    assert keyring(NEW_KEY).unseal(resealed) == TOKEN_CONFIG


def test_reseal_refuses_a_tampered_record_instead_of_laundering_it() -> None:
    envelope = keyring(OLD_KEY).seal(TOKEN_CONFIG)
    tampered = envelope.model_copy(update={"ciphertext": altered(envelope.ciphertext, 40)})
    with pytest.raises(UnsealError):
        keyring(NEW_KEY, OLD_KEY).reseal(tampered)


def test_after_the_old_key_is_removed_resealed_records_open_and_missed_ones_name_the_old_kid() -> None:
    resealed = keyring(NEW_KEY, OLD_KEY).reseal(keyring(OLD_KEY).seal(TOKEN_CONFIG))
    missed = keyring(OLD_KEY).seal(KEY_CONFIG)
    after = keyring(NEW_KEY)
    assert after.unseal(resealed) == TOKEN_CONFIG
    with pytest.raises(UnsealError) as caught:
        after.unseal(missed)
    assert caught.value.kid == OLD_KID
    assert OLD_KID in str(caught.value)
    assert_one_sentence_without_keys(str(caught.value))


# --- properties ---------------------------------------------------------------------------------------------

HEX32 = st.text(alphabet="0123456789abcdefABCDEF", min_size=32, max_size=32)
SECRET = st.text(st.characters(codec="utf-8"), min_size=1, max_size=64)
SENDER = st.one_of(
    st.sampled_from(["+15005550006", "+14155552671", "ACME", "Shop 24", "12345"]),
    HEX32.map(lambda digits: "MG" + digits),
)


@st.composite
def tenant_configs(draw: st.DrawFn) -> TenantConfig:
    account_sid = "AC" + draw(HEX32)
    token = draw(st.none() | SECRET)
    api_key = draw(st.none() | st.tuples(HEX32.map(lambda digits: "SK" + digits), SECRET))
    if token is None and api_key is None:
        token = draw(SECRET)
    return TenantConfig(
        account_sid=account_sid,
        auth_token=token,
        api_key_sid=api_key[0] if api_key else None,
        api_key_secret=api_key[1] if api_key else None,
        from_number=draw(SENDER),
    )


ROTATED = keyring(NEW_KEY, OLD_KEY)


@given(tenant_configs())
def test_any_config_round_trips_and_survives_rotation(config: TenantConfig) -> None:
    old_envelope = keyring(OLD_KEY).seal(config)
    assert ROTATED.unseal(old_envelope) == config
    assert keyring(NEW_KEY).unseal(ROTATED.reseal(old_envelope)) == config


@given(st.text(st.characters(), max_size=200), st.sampled_from([NEW_KID, OLD_KID, "unknown"]))
def test_any_foreign_ciphertext_raises_unseal_error_and_nothing_else(ciphertext: str, kid: str) -> None:
    envelope = EncryptedConfig.model_construct(alg="fernet", kid=kid, ciphertext=ciphertext)
    with pytest.raises(UnsealError):
        ROTATED.unseal(envelope)
