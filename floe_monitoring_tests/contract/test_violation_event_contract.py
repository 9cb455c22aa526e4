"""Pins the monitor -> channel interface: ContractViolationEvent's 12 fields and their JSON shape."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from floe_monitoring_defs.models import (
    CheckResult,
    CheckStatus,
    ContractViolationEvent,
    ViolationSeverity,
    ViolationType,
)

FIELDS = {
    "contract_name",
    "contract_version",
    "violation_type",
    "severity",
    "message",
    "element",
    "expected_value",
    "actual_value",
    "timestamp",
    "affected_consumers",
    "check_duration_seconds",
    "metadata",
}
REQUIRED = {
    "contract_name",
    "contract_version",
    "violation_type",
    "severity",
    "message",
    "timestamp",
    "check_duration_seconds",
}


def event(**kw: object) -> ContractViolationEvent:
    base: dict[str, object] = dict(
        contract_name="orders",
        contract_version="1.0.0",
        violation_type=ViolationType.FRESHNESS,
        severity=ViolationSeverity.ERROR,
        message="stale",
        timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        check_duration_seconds=0.1,
    )
    base.update(kw)
    return ContractViolationEvent.model_validate(base)


def test_exactly_twelve_fields_seven_required() -> None:
    schema = ContractViolationEvent.model_json_schema()
    assert set(schema["properties"]) == FIELDS
    assert set(schema["required"]) == REQUIRED
    assert schema["properties"]["timestamp"]["format"] == "date-time"
    assert schema["properties"]["metadata"]["additionalProperties"]["type"] == "string"
    assert "$ref" in schema["properties"]["severity"] and "$ref" in schema["properties"]["violation_type"]


def test_frozen_and_extra_forbidden() -> None:
    e = event()
    with pytest.raises(ValidationError):
        e.message = "changed"
    with pytest.raises(ValidationError):
        event(unexpected="x")


def test_timestamps_are_utc() -> None:
    e = event(timestamp=datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2))))
    assert e.timestamp == datetime(2026, 1, 1, 10, tzinfo=UTC) and e.timestamp.tzinfo is UTC
    assert event(timestamp=datetime(2026, 1, 1)).timestamp.tzinfo is UTC


def test_enum_values_and_order() -> None:
    assert [t.value for t in ViolationType] == ["freshness", "schema_drift", "quality", "availability", "deprecation"]
    assert [s.value for s in ViolationSeverity] == ["info", "warning", "error", "critical"]
    assert [s.value for s in CheckStatus] == ["pass", "fail", "error", "skipped"]
    assert ViolationSeverity.INFO < ViolationSeverity.WARNING < ViolationSeverity.ERROR < ViolationSeverity.CRITICAL
    assert max(ViolationSeverity, key=lambda s: s.rank) is ViolationSeverity.CRITICAL


def test_check_result_round_trips_through_json() -> None:
    r = CheckResult(
        contract_name="orders",
        check_type=ViolationType.FRESHNESS,
        status=CheckStatus.FAIL,
        duration_seconds=0.2,
        timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        violation=event(),
    )
    again = CheckResult.model_validate_json(r.model_dump_json())
    assert again == r and len(r.id) == 36
