"""SLA settings read from the environment (validated when definitions load, like the monitoring config).

- `FLOE_SLA_START_DATE` (YYYY-MM-DD, default 2025-01-01): the first partition of `contract_sla_daily`.
  Fixed rather than relative to today, so the partition set does not move between loads.
- `FLOE_SLA_DEFAULT_TARGET_PCT` (0..100, default 99.0): the compliance target of check types whose
  contract names none (every type but availability, whose target is the contract's availability SLA);
  error budgets are measured against it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from floe_monitoring_defs.config import ConfigError
from floe_monitoring_defs.sla.compliance import DEFAULT_TARGET_PCT

START_DATE_ENV = "FLOE_SLA_START_DATE"
TARGET_ENV = "FLOE_SLA_DEFAULT_TARGET_PCT"
DEFAULT_START_DATE = date(2025, 1, 1)


@dataclass(frozen=True)
class SLASettings:
    start_date: date = DEFAULT_START_DATE
    default_target_pct: float = DEFAULT_TARGET_PCT

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SLASettings:
        """Read the settings; a malformed value raises `ConfigError` naming the variable."""
        env = os.environ if environ is None else environ
        start = (env.get(START_DATE_ENV) or "").strip()
        target = (env.get(TARGET_ENV) or "").strip()
        try:
            start_date = date.fromisoformat(start) if start else DEFAULT_START_DATE
        except ValueError:
            raise ConfigError(f"{START_DATE_ENV}: not a date (YYYY-MM-DD): {start!r}") from None
        try:
            target_pct = float(target) if target else DEFAULT_TARGET_PCT
        except ValueError:
            raise ConfigError(f"{TARGET_ENV}: not a number: {target!r}") from None
        if not 0.0 <= target_pct <= 100.0:
            raise ConfigError(f"{TARGET_ENV}: must be between 0 and 100, got {target_pct}")
        return cls(start_date=start_date, default_target_pct=target_pct)
