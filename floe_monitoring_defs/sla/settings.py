"""SLA settings (validated when definitions load, like the monitoring config) and where the SLA partitions start.

- `sla.partitions_start` in the monitoring config (YYYY-MM-DD): the first partition of `contract_sla_daily`.
  `FLOE_SLA_START_DATE` (same format) is the older spelling, read only when the config key is not set.
  Neither set: the first day the store holds check results (`sla.monitored`), which does not move once
  monitoring has begun (retention deletes raw rows, but the daily aggregates that counted them are kept).
  An empty store, or one that cannot be read at load, gives the oldest day still wholly inside
  `retention_days` (the oldest day whose raw rows the asset can aggregate); the load never fails on it.
- `FLOE_SLA_DEFAULT_TARGET_PCT` (0..100, default 99.0): the compliance target of check types whose
  contract names none (every type but availability, whose target is the contract's availability SLA);
  error budgets are measured against it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from floe_monitoring_defs.config import ConfigError
from floe_monitoring_defs.models import ensure_utc
from floe_monitoring_defs.sla.compliance import DEFAULT_TARGET_PCT
from floe_monitoring_defs.store import StoreError

START_DATE_ENV = "FLOE_SLA_START_DATE"
TARGET_ENV = "FLOE_SLA_DEFAULT_TARGET_PCT"
CONFIG_KEY = "sla.partitions_start"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SLASettings:
    start_date: date | None = None  # FLOE_SLA_START_DATE; None: not set
    default_target_pct: float = DEFAULT_TARGET_PCT

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SLASettings:
        """Read the settings; a malformed value raises `ConfigError` naming the variable."""
        env = os.environ if environ is None else environ
        start = (env.get(START_DATE_ENV) or "").strip()
        target = (env.get(TARGET_ENV) or "").strip()
        try:
            start_date = date.fromisoformat(start) if start else None
        except ValueError:
            raise ConfigError(f"{START_DATE_ENV}: not a date (YYYY-MM-DD): {start!r}") from None
        try:
            target_pct = float(target) if target else DEFAULT_TARGET_PCT
        except ValueError:
            raise ConfigError(f"{TARGET_ENV}: not a number: {target!r}") from None
        if not 0.0 <= target_pct <= 100.0:
            raise ConfigError(f"{TARGET_ENV}: must be between 0 and 100, got {target_pct}")
        return cls(start_date=start_date, default_target_pct=target_pct)


@dataclass(frozen=True)
class PartitionsStart:
    """The first partition of `contract_sla_daily` and what chose it (shown in the asset's description)."""

    day: date
    origin: str


def oldest_day_in_retention(now: datetime, retention_days: int) -> date:
    """The oldest UTC day that began inside the retention window (the asset skips a day that began before it)."""
    cutoff = ensure_utc(now) - timedelta(days=retention_days)
    first = cutoff.date()
    return first if cutoff.time() == datetime.min.time() else first + timedelta(days=1)


def partitions_start(
    configured: date | None,
    settings: SLASettings,
    first_monitored_day: Callable[[], date | None],
    *,
    now: datetime,
    retention_days: int,
) -> PartitionsStart:
    """Where the partitions start: `sla.partitions_start`, else `FLOE_SLA_START_DATE`, else the store's first
    monitored day, else the oldest day inside the retention window. `first_monitored_day` is called only when
    neither setting is given; a `StoreError` from it is logged (the URL masked) and falls back."""
    if configured is not None:
        return PartitionsStart(configured, f"{CONFIG_KEY} in the monitoring config")
    if settings.start_date is not None:
        return PartitionsStart(settings.start_date, START_DATE_ENV)
    fallback = oldest_day_in_retention(now, retention_days)
    try:
        first = first_monitored_day()
    except StoreError as exc:
        log.warning(
            "contract_sla_daily: partitions start on %s (the oldest day inside the %d-day retention): the store "
            "could not be read for the first monitored day: %s",
            fallback.isoformat(),
            retention_days,
            exc,
        )
        return PartitionsStart(
            fallback, f"the store could not be read; the oldest day in the {retention_days}-day retention"
        )
    if first is None:
        return PartitionsStart(fallback, f"no check results yet; the oldest day in the {retention_days}-day retention")
    return PartitionsStart(first, "the first day the store has check results")
