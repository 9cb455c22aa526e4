"""Generated commit histories for the `volume` check: hourly appends with daily and weekly seasonality and noise.

Used by the unit tests, the Iceberg integration test (which writes them as real snapshot histories) and
`benchmarks/volume_backtest.py`. Deterministic per seed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from floe_monitoring_defs.models import DataCommit

START = datetime(2026, 9, 7, 0, 0, tzinfo=UTC)  # a Monday


@dataclass(frozen=True)
class Shape:
    """How a generated table behaves."""

    base_rows: float = 1000.0  # mean rows per hourly append on a weekday, before the daily curve
    noise: float = 0.10  # lognormal sigma of the rows per append
    daily_amplitude: float = 0.5  # the daily curve: 1 +- this, peak at 14:00 UTC
    weekend_factor: float = 0.6  # Saturday and Sunday bring this share of a weekday
    trend_per_day: float = 0.003  # growth of the mean per day
    minute: float = 5.0  # commits land this many minutes past the hour...
    jitter_minutes: float = 3.0  # ...+- this (normal sigma)
    late_share: float = 0.02  # this share of commits is 10-25 minutes late


def hourly_history(days: int = 60, seed: int = 0, shape: Shape = Shape(), start: datetime = START) -> list[DataCommit]:
    """`days` of hourly appends from `start`, oldest first, with consistent running totals."""
    rng = random.Random(seed)
    out: list[DataCommit] = []
    total = 0
    for h in range(days * 24):
        slot = start + timedelta(hours=h)
        late = rng.uniform(10, 25) if rng.random() < shape.late_share else 0.0
        minute = min(max(shape.minute + rng.gauss(0, shape.jitter_minutes) + late, 0.5), 59.0)
        at = slot + timedelta(milliseconds=round(minute * 60_000))  # Iceberg keeps milliseconds
        curve = 1 + shape.daily_amplitude * math.sin(2 * math.pi * (slot.hour - 8) / 24)
        week = shape.weekend_factor if slot.weekday() >= 5 else 1.0
        mean = shape.base_rows * curve * week * (1 + shape.trend_per_day * h / 24)
        rows = max(0, round(mean * math.exp(rng.gauss(0, shape.noise))))
        total += rows
        out.append(DataCommit(h + 1, at, "append", rows, 0, total))
    return out


def retotal(commits: Sequence[DataCommit]) -> list[DataCommit]:
    """The commits with `total_records` recomputed from the rows each added and deleted."""
    total = 0
    out = []
    for c in commits:
        total += (c.added_records or 0) - (c.deleted_records or 0)
        out.append(replace(c, total_records=total))
    return out


def scale_commit(commits: Sequence[DataCommit], index: int, factor: float) -> list[DataCommit]:
    """One commit's rows scaled (0.5: a 50 % drop, 3.0: a 3x spike); totals follow."""
    out = list(commits)
    c = out[index]
    out[index] = replace(c, added_records=round((c.added_records or 0) * factor))
    return retotal(out)


def silence(commits: Sequence[DataCommit], index: int, hours: float) -> list[DataCommit]:
    """No commit for `hours` after commit `index`: the commits within that time are dropped (their rows with them)."""
    last = commits[index].committed_at
    end = last + timedelta(hours=hours)
    return retotal([c for c in commits if not (last < c.committed_at <= end)])
