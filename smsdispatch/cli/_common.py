"""What every verb shares: the one-sentence error type and small argument helpers."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import ValidationError

from smsdispatch.adapters.crypto import KeyConfigError, Keyring
from smsdispatch.adapters.twilio import check_base_url
from smsdispatch.contract.settings import DEFAULT_BROKER, Settings


class CliError(Exception):
    """A failure to report as one sentence on stderr. ``exit_code`` 1 = operational, 2 = bad usage."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def load_settings(**overrides: object) -> Settings:
    """The environment's settings; a malformed variable is one sentence, not a validation dump."""
    try:
        settings = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "SMSDISPATCH_" + str(first["loc"][0]).upper() if first["loc"] else "an SMSDISPATCH_ variable"
        raise CliError(f"{name} is not valid: {first['msg']}.", exit_code=2) from None
    return settings.model_copy(update=overrides) if overrides else settings


def twilio_base_url(settings: Settings) -> str:
    """SMSDISPATCH_TWILIO_BASE_URL, or one sentence (bad usage) saying why it cannot be used."""
    try:
        check_base_url(settings.twilio_base_url)
    except ValueError as exc:  # the adapter's sentence never quotes the URL, which may hold a password
        raise CliError(f"{str(exc).rstrip('.')} (SMSDISPATCH_TWILIO_BASE_URL).", exit_code=2) from None
    return settings.twilio_base_url


def check_default_provider(settings: Settings) -> None:
    """One sentence (bad usage) unless the platform's default provider, when one is set, can be used."""
    if settings.default_provider != "msg91":
        return
    needed = {
        "SMSDISPATCH_MSG91_AUTHKEY": settings.msg91_authkey,
        "SMSDISPATCH_MSG91_TEMPLATE_ID": settings.msg91_template_id,
    }
    missing = [name for name, value in needed.items() if value is None]
    if missing:
        raise CliError(f"SMSDISPATCH_DEFAULT_PROVIDER=msg91 needs {' and '.join(missing)}.", exit_code=2)
    url = urlsplit(settings.msg91_base_url)
    if url.scheme not in ("http", "https") or not url.hostname or url.username is not None or url.password is not None:
        # The URL itself is left out: a mistyped one may carry user:password@.
        raise CliError(
            "SMSDISPATCH_MSG91_BASE_URL must be an http(s) URL with a host and no user name or password.", exit_code=2
        )


def broker_for_messages() -> str:
    """The broker an error message names: the configured one, or the default if the settings are unreadable."""
    try:
        return Settings().broker
    except ValidationError:
        return DEFAULT_BROKER


def load_keyring(settings: Settings) -> Keyring:
    """The encryption keys, or the crypto layer's one-sentence explanation of what is wrong with them."""
    try:
        return Keyring.from_settings(settings)
    except KeyConfigError as exc:
        raise CliError(str(exc), exit_code=2) from None


def unreachable_kafka(broker: str) -> CliError:
    return CliError(f"cannot reach Kafka at {broker}: is it running? (`smsdispatch kafka start` runs a local one)")


def bad_usage(exc: ValidationError, flags: dict[str, str], whole: str) -> CliError:
    """The first problem pydantic found, as one sentence naming the flag (``whole`` when it is about the
    combination of flags); the rejected value itself is never repeated, since it may be a secret."""
    first = exc.errors(include_input=False)[0]
    field = str(first["loc"][0]) if first["loc"] else ""
    flag = flags.get(field, "--" + field.replace("_", "-")) if field else whole
    message = first["msg"].removeprefix("Value error, ").rstrip(".")
    return CliError(f"{flag}: {message}.", exit_code=2)
