"""The spec's data model (section 7): types, severities, statuses, violation events and check results.

`ContractViolationEvent` is the only interface between the checks and the alert channels;
its 12 fields are pinned by a contract test. Everything here is frozen and rejects unknown fields.
"""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from floe_monitoring_defs.models.context import parse_context


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the one clock the core uses)."""
    return datetime.now(UTC)


def ensure_utc(value: datetime) -> datetime:
    """Attach UTC to a naive datetime and convert an aware one to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


# A check kind's name: the check type, the asset check name and the violation type (snake_case).
KIND_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")


class ViolationType(str, Enum):
    """What kind of SLA a violation is about; for check kinds, also the check type.

    The members are the spec's types. The enum is open: a check kind registered through the
    `floe.check_kinds` entry points (checks/registry.py) is a valid type under its own name, so
    `ViolationType("volume")` returns a member for it (made on first use, then always the same one)
    and validates wherever a ViolationType is expected. Anything that is not a snake_case name is
    still refused.
    """

    FRESHNESS = "freshness"
    SCHEMA_DRIFT = "schema_drift"
    QUALITY = "quality"
    AVAILABILITY = "availability"
    DEPRECATION = "deprecation"

    @classmethod
    def _missing_(cls, value: object) -> ViolationType | None:
        if not isinstance(value, str) or not KIND_NAME.fullmatch(value):
            return None
        with _EXTRA_LOCK:
            member = cls._value2member_map_.get(value)
            if member is None:
                member = str.__new__(cls, value)
                member._name_ = value.upper()
                member._value_ = value
                cls._value2member_map_[value] = member
        return member  # type: ignore[return-value]


_EXTRA_LOCK = threading.Lock()


class ViolationSeverity(str, Enum):
    """INFO < WARNING < ERROR < CRITICAL (FR-024)."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, ViolationSeverity):
            return NotImplemented
        return self.rank >= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, ViolationSeverity):
            return NotImplemented
        return self.rank > other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, ViolationSeverity):
            return NotImplemented
        return self.rank <= other.rank

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, ViolationSeverity):
            return NotImplemented
        return self.rank < other.rank


_SEVERITY_RANK = {
    ViolationSeverity.INFO: 0,
    ViolationSeverity.WARNING: 1,
    ViolationSeverity.ERROR: 2,
    ViolationSeverity.CRITICAL: 3,
}


# Severity values, lowest first (report columns, aggregates).
SEVERITIES: tuple[str, ...] = tuple(s.value for s in ViolationSeverity)


class CheckStatus(str, Enum):
    """PASS = no violation; FAIL = violation; ERROR = could not complete; SKIPPED = did not run."""

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    SKIPPED = "skipped"


_FROZEN = ConfigDict(frozen=True, extra="forbid")


class ContractViolationEvent(BaseModel):
    """One violation of one contract SLA: the sole monitor -> channel interface (spec 7.2)."""

    model_config = _FROZEN

    contract_name: str
    contract_version: str
    violation_type: ViolationType
    severity: ViolationSeverity
    message: str = Field(description="Human-readable; never carries values of classified columns.")
    element: str | None = None
    expected_value: str | None = None
    actual_value: str | None = None
    timestamp: datetime
    affected_consumers: list[str] = Field(default_factory=list)
    check_duration_seconds: float
    metadata: dict[str, str] = Field(default_factory=dict)

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return ensure_utc(value)

    @property
    def context(self) -> dict[str, Any] | None:
        """The root-cause context (FR-047) the check attached, parsed from `metadata["floe_context"]` (not a field:
        the 12-field interface stays as pinned, and the context travels wherever the metadata does)."""
        return parse_context(self.metadata)


class CheckResult(BaseModel):
    """The outcome of one check execution on one contract (spec 7.3)."""

    model_config = _FROZEN

    id: str = Field(default_factory=lambda: str(uuid.uuid4()))
    contract_name: str
    check_type: ViolationType
    status: CheckStatus
    duration_seconds: float
    timestamp: datetime
    details: dict[str, Any] = Field(default_factory=dict)
    violation: ContractViolationEvent | None = None

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return ensure_utc(value)


class SLAStatus(BaseModel):
    """Current SLA state of one contract + check type (spec 7.6); a row of `contract_sla_status`."""

    model_config = ConfigDict(extra="forbid")

    contract_name: str
    check_type: ViolationType
    current_value: float
    threshold: float
    compliance_pct: float = Field(ge=0, le=100)
    last_check_time: datetime | None = None
    consecutive_failures: int = Field(0, ge=0)
    violation_count_24h: int = Field(0, ge=0)
    window_start: datetime

    @field_validator("last_check_time", "window_start")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else ensure_utc(value)


@dataclass(frozen=True)
class RecordedCheck:
    """What recording one check wrote, in one transaction: its result, violations and outbox entries."""

    result_id: str
    violation_ids: tuple[str, ...] = ()
    outbox_ids: tuple[str, ...] = ()  # the violations' alerts, plus a "resolved" notice when one was owed
