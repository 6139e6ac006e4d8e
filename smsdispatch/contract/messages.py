"""The values on the ``sms.*`` topics (docs/contract.md): what producers send and the outcomes we emit.

Every model reads UTF-8 JSON strictly (no type coercion: ``"segments": "1"`` is an error) and ignores unknown
fields, so producers can add fields without breaking us and we can add optional fields without breaking
subscribers.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from smsdispatch.contract._fields import (
    Body,
    Metadata,
    PhoneNumber,
    RequestId,
    TenantId,
    Timestamp,
    no_nul,
    utcnow,
)


class WireModel(BaseModel):
    """Base of every topic value: strict types, unknown fields ignored, immutable once built."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


class ErrorCode(StrEnum):
    """``SmsFailed.error.code``: the reasons a request can fail, as docs/contract.md lists them."""

    INVALID_REQUEST = "invalid_request"
    UNKNOWN_TENANT = "unknown_tenant"
    TENANT_NOT_VERIFIED = "tenant_not_verified"
    PROVIDER_REJECTED = "provider_rejected"
    PROVIDER_AUTH_FAILED = "provider_auth_failed"
    RATE_LIMITED = "rate_limited"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    OUTCOME_UNKNOWN = "outcome_unknown"
    #: ``expires_at`` passed before the request could be handed to Twilio; nothing was sent.
    EXPIRED = "expired"
    #: The recipient opted out of this tenant's messages (Twilio 21610, an inbound STOP, or an operator); nothing
    #: was sent.
    RECIPIENT_OPTED_OUT = "recipient_opted_out"


class Msg91Options(WireModel):
    """An MSG91 Flow template for one request, and the variables to fill it with (the body goes in the platform's
    body variable, SMSDISPATCH_MSG91_BODY_VAR)."""

    template_id: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
    variables: Annotated[
        dict[
            Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_]+$")],
            Annotated[str, StringConstraints(max_length=500), AfterValidator(no_nul)],
        ],
        Field(max_length=30),
    ] = Field(default_factory=dict)


class ProviderOptions(WireModel):
    """Options a request gives each provider; a provider that is not used ignores its own."""

    msg91: Msg91Options | None = None


class SmsRequested(WireModel):
    """A request to send one SMS, published on ``sms.requested`` keyed by tenant_id."""

    request_id: RequestId
    tenant_id: TenantId
    to: PhoneNumber
    body: Body
    requested_at: Timestamp | None = None
    metadata: Metadata = Field(default_factory=dict)
    resend_of: RequestId | None = None
    #: Past this moment the request is not sent (it fails ``expired``); when it is sent, Twilio's
    #: ``ValidityPeriod`` carries the seconds left, so Twilio drops it too once stale.
    expires_at: Timestamp | None = None
    #: Per-provider options: ``{"msg91": {"template_id", "variables"}}`` overrides the platform's MSG91 template
    #: for this request (India's DLT rules want a registered template per message type); ignored by Twilio.
    provider_options: ProviderOptions | None = None


class SmsDispatched(WireModel):
    """Twilio accepted the message: published on ``sms.dispatched``."""

    request_id: RequestId
    tenant_id: TenantId
    #: ``twilio`` (the tenant's own account) or ``msg91`` (the platform's default).
    provider: Literal["twilio", "msg91"] = "twilio"
    provider_message_id: str
    status: str
    to: str
    segments: int = Field(ge=0)
    encoding: Literal["GSM-7", "UCS-2"]
    attempts: int = Field(ge=1)
    requested_at: Timestamp | None = None
    dispatched_at: Timestamp = Field(default_factory=utcnow)
    metadata: Metadata = Field(default_factory=dict)
    resend_of: str | None = None


class ErrorInfo(WireModel):
    code: ErrorCode
    message: str
    provider_code: int | None = None
    retryable: bool = False


class SmsFailed(WireModel):
    """The request ended without an SMS being accepted (or it could not be confirmed): ``sms.failed``."""

    request_id: str | None = None
    tenant_id: str | None = None
    provider: Literal["twilio", "msg91"] | None = None
    to: str | None = None
    error: ErrorInfo
    attempts: int = Field(default=0, ge=0)
    requested_at: Timestamp | None = None
    failed_at: Timestamp = Field(default_factory=utcnow)
    metadata: Metadata = Field(default_factory=dict)
    resend_of: str | None = None
    raw: str | None = None


class SmsStatus(WireModel):
    """A delivery receipt from Twilio's status callback, published on ``sms.status``."""

    tenant_id: str
    request_id: str | None = None
    provider_message_id: str
    status: str
    provider_code: int | None = None
    received_at: Timestamp = Field(default_factory=utcnow)
    raw_dlr_done_date: str | None = None


Outcome = SmsDispatched | SmsFailed
