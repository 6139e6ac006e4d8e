"""The fake Twilio account unit tests share: one set of constants, imported everywhere, copied nowhere.

The SIDs have Twilio's shapes (AC/SK/MG and 32 hex digits); the secrets are distinctive, so a test that checks
a secret never leaks can search for them.
"""

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "tok-5e3c2f1a9b8d7e6f"
API_KEY_SID = "SK" + "fedcba9876543210" * 2
API_KEY_SECRET = "keysecret-0b1c2d3e4f"
SERVICE_SID = "MG" + "00112233445566778899aabbccddeeff"
FROM_NUMBER = "+15005550006"
TO = "+14155552671"
