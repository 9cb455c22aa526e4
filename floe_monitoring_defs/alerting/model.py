"""What travels from the outbox to a channel: batches of violations of one contract."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import Enum

from floe_monitoring_defs.models import ContractViolationEvent, ViolationSeverity


class AlertKind(str, Enum):
    VIOLATION = "violation"  # a check found a violation
    RESOLVED = "resolved"  # a failing check (contract + type) passes again
    OPERATIONAL = "operational"  # the monitor itself failed (a monitoring run failed)


@dataclass(frozen=True)
class AlertItem:
    """One alert: the violation event plus its stable id (the idempotency key receivers can dedup on)."""

    id: str
    kind: AlertKind
    event: ContractViolationEvent

    @property
    def dedup_key(self) -> str:
        """contract:type, the identity of an incident (PagerDuty dedup_key, Alertmanager labels)."""
        return f"{self.event.contract_name}:{self.event.violation_type.value}"


@dataclass(frozen=True)
class AlertBatch:
    """Alerts of one contract for one channel in one delivery cycle (edge case 6: one batch, not a storm)."""

    contract_name: str
    contract_version: str
    items: tuple[AlertItem, ...]
    affected_consumers: tuple[str, ...] = ()
    dagster_url: str | None = None  # base URL of the Dagster UI, for links (Alertmanager generatorURL)
    # time.monotonic() after which a channel that sends one request per item starts no new request: the items
    # not sent are reported `deferred` and stay due (the delivery pass's time budget, see alerting.delivery).
    send_by: float | None = None

    @property
    def max_severity(self) -> ViolationSeverity:
        return max((i.event.severity for i in self.items), key=lambda s: s.rank)

    @property
    def idempotency_key(self) -> str:
        """Stable for the same set of alerts: a re-sent batch carries the same key."""
        return hashlib.sha256(",".join(sorted(i.id for i in self.items)).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class DeliveryResult:
    ok: bool
    status: str  # "delivered" | "http_500" | "connect_error" | "timeout" | "rejected" | ...
    error: str | None = None  # never contains a secret (URL, password, key)
    retryable: bool = True
    latency_ms: float = 0.0
    detail: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HealthStatus:
    healthy: bool
    message: str = ""
