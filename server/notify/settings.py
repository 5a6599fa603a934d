"""``[notify]``: grouping and repeat timing, delivery (timeouts, retries), the SMTP server,
webhooks, the daily digest and the monthly report."""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Any, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = ["DeliverySettings", "NotifySettings", "SmtpSettings", "WebhookSettings"]

# [notify.webhook] keys from before the retry queue served every receiver: still read, as the
# [notify.delivery] keys of the same name when those are not given.
_MOVED_TO_DELIVERY: Final = ("attempts", "backoff_initial_s", "backoff_max_s")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SmtpSettings(_Section):
    host: str | None = Field(default=None, description="SMTP server; none = no e-mail is sent")
    port: int = Field(default=587, ge=1, le=65535, description="587 with STARTTLS, 465 with tls")
    security: Literal["starttls", "tls", "none"] = Field(
        default="starttls",
        description="starttls (upgrade, refuse the server if it cannot), tls (implicit), none",
    )
    username: str | None = Field(default=None, description="login; none = no AUTH")
    password: SecretStr | None = Field(default=None, description="password (never logged)")
    from_addr: str = Field(default="ladewache@localhost", description="sender address")
    ca_file: Path | None = Field(
        default=None, description="CA bundle to verify the server; none = the system's trust store"
    )
    timeout_s: float = Field(default=20.0, gt=0, le=300, description="per SMTP conversation")


class DeliverySettings(_Section):
    timeout_s: float = Field(
        default=30.0, gt=0, le=600,
        description="longest one try at one receiver may take before it counts as failed; "
                    "receivers are tried side by side, so no other receiver waits for it",
    )
    attempts: int = Field(
        default=5, ge=1, le=50,
        description="tries per notification from the retry queue; then it is given up (logged "
                    "and counted) and the group's next flush tells its news again",
    )
    backoff_initial_s: float = Field(
        default=10.0, gt=0, description="wait after the first failed try; doubles after each"
    )
    backoff_max_s: float = Field(default=300.0, gt=0, description="longest wait between tries")
    per_receiver: int = Field(
        default=4, ge=1, le=32,
        description="tries at one receiver (one webhook, one SMTP server) at the same time: a "
                    "receiver that hangs holds no more threads than this",
    )

    @model_validator(mode="after")
    def _order(self) -> Self:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be >= backoff_initial_s")
        return self


class WebhookSettings(_Section):
    attempts: int = Field(
        default=5, ge=1, le=20, description="old name of [notify.delivery] attempts (still read)"
    )
    backoff_initial_s: float = Field(
        default=1.0, gt=0, description="old name of [notify.delivery] backoff_initial_s"
    )
    backoff_max_s: float = Field(
        default=60.0, gt=0, description="old name of [notify.delivery] backoff_max_s"
    )
    timeout_s: float = Field(default=10.0, gt=0, le=120, description="HTTP timeout per try")


class NotifySettings(_Section):
    group_wait_s: float = Field(
        default=30.0, gt=0,
        description="wait this long after a cabinet's first alert, so that alerts arriving "
                    "together go out in one message (zero is refused, as in Alertmanager)",
    )
    group_interval_s: float = Field(
        default=300.0, gt=0, description="at most one message per cabinet group this often"
    )
    repeat_interval_s: float = Field(
        default=14_400.0, gt=0,
        description="an unchanged, unacknowledged group is sent again after this long",
    )
    send_resolved: bool = Field(default=True, description="say when alerts are resolved")
    school_alerts: list[str] = Field(
        default_factory=lambda: ["ipad_not_returned"],
        description="alert names that go to the school's contacts instead of the team",
    )
    digest_time: time | None = Field(
        default=time(7, 15),
        description="daily digest per school at this local time on school days; none = off",
    )
    monthly_report: bool = Field(
        default=True,
        description="e-mail last month's school report to each school's contacts with e-mail "
                    "addresses, on the month's first school day at digest_time (none there: off)",
    )
    blind_after_s: float = Field(
        default=300.0, ge=0, le=86_400,
        description="tell every team when the collector has heard no broker this long (it then "
                    "monitors no cabinet), and again when it hears again; with several brokers, "
                    "tell the teams of the cabinets last heard through one that has been "
                    "unreachable this long (they are not monitored meanwhile); 0 = never",
    )
    tick_s: float = Field(default=1.0, gt=0, le=60, description="how often groups are flushed")
    delivery: DeliverySettings = Field(
        default_factory=DeliverySettings, description="[notify.delivery] timeouts and retries"
    )
    smtp: SmtpSettings = Field(default_factory=SmtpSettings, description="[notify.smtp]")
    webhook: WebhookSettings = Field(default_factory=WebhookSettings, description="[notify.webhook]")

    @model_validator(mode="before")
    @classmethod
    def _old_retry_keys(cls, data: Any) -> Any:
        """A config written before [notify.delivery] keeps its webhook retry timing."""
        if not isinstance(data, dict) or not isinstance(data.get("webhook"), dict):
            return data
        old = {k: data["webhook"][k] for k in _MOVED_TO_DELIVERY if k in data["webhook"]}
        delivery = data.get("delivery", {})
        if not old or not isinstance(delivery, dict):
            return data
        return {**data, "delivery": {**old, **delivery}}
