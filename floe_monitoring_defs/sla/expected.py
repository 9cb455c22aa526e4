"""How many checks the cadence expects, and the SLA target of each (contract, check type).

A check type applies to a contract exactly when the code location schedules it (freshness and
availability need the SLA, quality needs a rule on some table, schema drift always) and then runs once
per table per tick. Ticks fall on multiples of the effective interval from midnight UTC (the cron
schedules of `cadence.py`), so the checks expected in [start, end) are the ticks in it times the tables.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from floe_monitoring_defs.cadence import DAY_MINUTES, effective_interval
from floe_monitoring_defs.config import ConfigError, MonitoringConfig
from floe_monitoring_defs.contracts.model import MonitoredContract
from floe_monitoring_defs.models import CHECK_TYPES, ViolationType, ensure_utc
from floe_monitoring_defs.sla.compliance import DEFAULT_TARGET_PCT

Key = tuple[str, str]  # (contract name, check type value)


@dataclass(frozen=True)
class Expectation:
    """The cadence and target in force for one (contract, check type)."""

    interval_minutes: int | None  # None: not scheduled (on_demand mode, disabled), nothing is expected
    tables: int
    target_pct: float | None

    @property
    def per_day(self) -> int | None:
        if self.interval_minutes is None:
            return None
        return self.tables * (DAY_MINUTES // self.interval_minutes)

    def expected_between(self, start: datetime, end: datetime) -> int | None:
        """Checks the schedule owes in [start, end): ticks at multiples of the interval since midnight UTC."""
        if self.interval_minutes is None:
            return None
        step = self.interval_minutes * 60
        s, e = ensure_utc(start).timestamp(), ensure_utc(end).timestamp()
        if e <= s:
            return 0
        return self.tables * (math.ceil(e / step) - math.ceil(s / step))


def applies(check_type: ViolationType, contract: MonitoredContract) -> bool:
    """Whether a contract has a check of this type: the one rule `definitions.plan_checks` schedules by
    and the SLA expectations count by."""
    if check_type is ViolationType.FRESHNESS:
        return contract.freshness is not None
    if check_type is ViolationType.AVAILABILITY:
        return contract.availability is not None
    if check_type is ViolationType.QUALITY:
        return any(t.quality_rules for t in contract.tables)
    return True


def target_for(contract: MonitoredContract, check_type: ViolationType, default_target_pct: float) -> float:
    """The availability SLA's target for availability; the default compliance target for the other types."""
    if check_type is ViolationType.AVAILABILITY and contract.availability is not None:
        return float(contract.availability.target_pct)
    return float(default_target_pct)


def expectations_for(
    contracts: Iterable[MonitoredContract],
    config: MonitoringConfig,
    default_target_pct: float = DEFAULT_TARGET_PCT,
) -> dict[Key, Expectation]:
    """(contract, check type) -> expectation, with each contract's `floe.monitoring` overrides merged."""
    out: dict[Key, Expectation] = {}
    for contract in contracts:
        try:
            cfg = config.merged(contract.monitoring_overrides, f"{contract.source}: customProperties.floe.monitoring")
        except ConfigError:
            continue  # such a contract is reported as a load error and gets no checks
        scheduled = cfg.enabled and cfg.mode != "on_demand"
        for check_type in CHECK_TYPES:
            if not applies(check_type, contract):
                continue
            interval = effective_interval(cfg.check_intervals.minutes_for(check_type)) if scheduled else None
            out[(contract.name, check_type.value)] = Expectation(
                interval_minutes=interval,
                tables=len(contract.tables),
                target_pct=target_for(contract, check_type, default_target_pct),
            )
    return out


def expected_from_stored(
    expected_per_day: int | None, interval_minutes: int | None, target_pct: float | None
) -> Expectation | None:
    """The expectation a stored aggregate row recorded (tables = expected per day / ticks per day)."""
    if expected_per_day is None or not interval_minutes or DAY_MINUTES % interval_minutes:
        return None
    tables = round(expected_per_day * interval_minutes / DAY_MINUTES)
    return Expectation(interval_minutes=interval_minutes, tables=tables, target_pct=target_pct)
