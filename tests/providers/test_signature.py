"""X-Twilio-Signature: computed and checked exactly as Twilio signs its callbacks."""

from __future__ import annotations

from smsdispatch.providers import compute_signature, is_valid_signature

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
