"""Who takes part in a demo run: the simulated Twilio accounts, the platform's simulated MSG91 account, and the
tenants registered on them.

Every run draws fresh credentials and a fresh tenant-id suffix, so reruns against the same broker never read
each other's tenants or requests. The credentials are throw-away values for the local simulator only.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass

from pydantic import SecretStr

from smsdispatch.contract import TenantConfig
from smsdispatch.tools.simulator import random_account_sid, random_api_key_sid, random_sid, random_token

LIVE_NUMBER = "+14155550100"
#: The Flow template of the platform's MSG91 account (the simulator's).
MSG91_TEMPLATE = "demo_platform_sms"
# Twilio's magic sender for test credentials: the message is accepted (and never delivered).
MAGIC_FROM_OK = "+15005550006"


@dataclass(frozen=True)
class DemoTenant:
    """One tenant to register: its id, its Twilio configuration (None: it has none, like ``tenants add``), whether
    to verify it, and what it shows."""

    tenant_id: str
    config: TenantConfig | None
    verify: bool
    role: str
    # Twilio calls back only for live accounts whose tenant holds the auth token to check the signature; MSG91
    # reports on every message of the platform's account.
    gets_receipts: bool


@dataclass(frozen=True)
class DemoAccounts:
    """A live account (a number and a Messaging Service, plus an API key) and a test account."""

    run_id: str
    live_sid: str
    live_token: SecretStr
    service_sid: str
    api_key_sid: str
    api_key_secret: SecretStr
    test_sid: str
    test_token: SecretStr
    #: Signs the webhooks of the ``live`` tenant (Standard Webhooks: whsec_ and base64 of 24 random bytes).
    webhook_secret: SecretStr
    #: The platform's MSG91 account at the simulator, and the secret path token of the worker's report endpoint.
    msg91_authkey: SecretStr
    msg91_report_token: SecretStr

    @classmethod
    def fresh(cls) -> DemoAccounts:
        return cls(
            run_id=uuid.uuid4().hex[:6],
            live_sid=random_account_sid(),
            live_token=SecretStr(random_token()),
            service_sid=random_sid("MG"),
            api_key_sid=random_api_key_sid(),
            api_key_secret=SecretStr(random_token()),
            test_sid=random_account_sid(),
            test_token=SecretStr(random_token()),
            webhook_secret=SecretStr("whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()),
            msg91_authkey=SecretStr(random_token()),
            msg91_report_token=SecretStr(random_token()),
        )

    def simulator_args(self, worker_url: str) -> list[str]:
        """The ``smsdispatch simulator`` flags that create these accounts; MSG91's reports go to ``worker_url``."""
        live_token, test_token = self.live_token.get_secret_value(), self.test_token.get_secret_value()
        return [
            "--msg91",
            f"{self.msg91_authkey.get_secret_value()}:{MSG91_TEMPLATE}",
            "--msg91-report-url",
            f"{worker_url}/msg91/report/{self.msg91_report_token.get_secret_value()}",
            "--account",
            f"{self.live_sid}:{live_token}:{LIVE_NUMBER},{self.service_sid}",
            "--test-account",
            f"{self.test_sid}:{test_token}",
            "--api-key",
            f"{self.live_sid}:{self.api_key_sid}:{self.api_key_secret.get_secret_value()}",
        ]

    def tenant_id(self, name: str) -> str:
        return f"{name}-{self.run_id}"

    def worker_env(self, simulator_url: str) -> dict[str, str]:
        """The worker's platform-default settings: MSG91, the simulator's."""
        return {
            "SMSDISPATCH_DEFAULT_PROVIDER": "msg91",
            "SMSDISPATCH_MSG91_AUTHKEY": self.msg91_authkey.get_secret_value(),
            "SMSDISPATCH_MSG91_TEMPLATE_ID": MSG91_TEMPLATE,
            "SMSDISPATCH_MSG91_BASE_URL": simulator_url,
            "SMSDISPATCH_MSG91_REPORT_TOKEN": self.msg91_report_token.get_secret_value(),
        }

    def tenants(self) -> dict[str, DemoTenant]:
        """The tenants to register, by short name (``live``, ``service``, ``apikey``, ``test``, ``unverified``,
        ``platform``)."""
        live = {"account_sid": self.live_sid, "auth_token": self.live_token}
        return {
            "live": DemoTenant(
                self.tenant_id("acme"),
                TenantConfig(**live, from_number=LIVE_NUMBER, webhook_secret=self.webhook_secret),
                verify=True,
                role=f"live account, sends from {LIVE_NUMBER}, with a webhook",
                gets_receipts=True,
            ),
            "service": DemoTenant(
                self.tenant_id("globex"),
                TenantConfig(**live, from_number=self.service_sid),
                verify=True,
                role="live account, sends through a Messaging Service (MG...)",
                gets_receipts=True,
            ),
            "apikey": DemoTenant(
                self.tenant_id("initech"),
                TenantConfig(
                    **live,
                    api_key_sid=self.api_key_sid,
                    api_key_secret=self.api_key_secret,
                    from_number=LIVE_NUMBER,
                ),
                verify=True,
                role="live account, REST calls with an API key (SK...)",
                gets_receipts=True,
            ),
            "test": DemoTenant(
                self.tenant_id("testco"),
                TenantConfig(account_sid=self.test_sid, auth_token=self.test_token, from_number=MAGIC_FROM_OK),
                verify=True,
                role="test credentials: Twilio's magic numbers decide the outcome",
                gets_receipts=False,
            ),
            "unverified": DemoTenant(
                self.tenant_id("umbrella"),
                TenantConfig(**live, from_number=LIVE_NUMBER),
                verify=False,
                role="registered with --no-verify: sends through the platform default (MSG91)",
                gets_receipts=True,
            ),
            "platform": DemoTenant(
                self.tenant_id("hooli"),
                None,
                verify=False,
                role="no provider of its own (tenants add): the platform default (MSG91)",
                gets_receipts=True,
            ),
        }

    def secrets(self) -> list[str]:
        """Every secret of the run, for checks that none of them was printed."""
        secrets = (
            self.live_token,
            self.api_key_secret,
            self.test_token,
            self.webhook_secret,
            self.msg91_authkey,
            self.msg91_report_token,
        )
        return [secret.get_secret_value() for secret in secrets]
