"""X-Twilio-Signature: computed and checked exactly as Twilio signs its callbacks, and as its SDK checks them."""

from __future__ import annotations

import pytest
from twilio.request_validator import RequestValidator

from smsdispatch.adapters.twilio import compute_signature, is_valid_signature

TOKEN = "12345"
URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}
EXPECTED = "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_signature_matches_twilios_published_test_vector() -> None:
    assert compute_signature(TOKEN, URL, PARAMS) == EXPECTED


def test_signature_does_not_depend_on_parameter_order() -> None:
    assert compute_signature(TOKEN, URL, list(reversed(PARAMS.items()))) == EXPECTED


def test_valid_signature_is_accepted() -> None:
    assert is_valid_signature(TOKEN, URL, PARAMS, EXPECTED)


def test_signature_of_a_changed_parameter_url_or_token_is_refused() -> None:
    assert not is_valid_signature(TOKEN, URL, {**PARAMS, "Digits": "1235"}, EXPECTED)
    assert not is_valid_signature(TOKEN, URL.replace("foo=1", "foo=2"), PARAMS, EXPECTED)
    assert not is_valid_signature("54321", URL, PARAMS, EXPECTED)


@pytest.mark.parametrize(
    ("called", "signed"),
    [
        ("https://mycompany.com/status?x=1", "https://mycompany.com:443/status?x=1"),
        ("https://mycompany.com:443/status?x=1", "https://mycompany.com/status?x=1"),
        ("http://127.0.0.1:8080/status", "http://127.0.0.1/status"),
        ("http://worker.internal/status", "http://worker.internal:80/status"),
    ],
)
def test_a_signature_over_the_url_with_or_without_its_port_is_accepted_as_twilios_validator_does(
    called: str, signed: str
) -> None:
    signature = compute_signature(TOKEN, signed, PARAMS)

    ours = is_valid_signature(TOKEN, called, PARAMS, signature)
    sdk = RequestValidator(TOKEN).validate(called, PARAMS, signature)

    assert ours is sdk is True


@pytest.mark.parametrize(
    "signed",
    [
        "https://mycompany.com:8443/status",  # another port is another URL
        "https://othercompany.com/status",
        "http://mycompany.com/status",
    ],
)
def test_a_signature_over_another_url_is_refused_as_twilios_validator_refuses_it(signed: str) -> None:
    called = "https://mycompany.com/status"
    signature = compute_signature(TOKEN, signed, PARAMS)

    ours = is_valid_signature(TOKEN, called, PARAMS, signature)
    sdk = RequestValidator(TOKEN).validate(called, PARAMS, signature)

    assert ours is sdk is False
