"""Check intervals as cron expressions, and how targets are grouped into steps.

Cron cannot say "every 45 minutes" in one expression; an interval that divides a day becomes the
few expressions whose union ticks exactly every N minutes from midnight UTC. An interval that does
not divide a day is rounded down to the nearest one that does, with a warning.
"""

from __future__ import annotations

import logging
import math

from floe_monitoring_defs.models import DAY_MINUTES

log = logging.getLogger(__name__)


def effective_interval(minutes: int) -> int:
    """The largest interval <= `minutes` that divides a day (so ticks stay evenly spaced)."""
    m = max(1, min(int(minutes), DAY_MINUTES))
    while DAY_MINUTES % m:
        m -= 1
    if m != minutes:
        log.warning("check interval of %s minutes does not divide a day; using %s minutes", minutes, m)
    return m


def crons_for_interval(minutes: int) -> list[str]:
    """Cron expressions (UTC) that together fire every `minutes` minutes, starting at 00:00."""
    m = effective_interval(minutes)
    if m % 60 == 0:
        hours = m // 60
        return {1: ["0 * * * *"], 24: ["0 0 * * *"]}.get(hours, [f"0 */{hours} * * *"])
    if 60 % m == 0:
        return ["* * * * *"] if m == 1 else [f"*/{m} * * * *"]
    period = math.lcm(m, 60)  # the tick pattern repeats every `period` minutes
    step_h = period // 60
    by_hour: dict[int, list[int]] = {}
    for t in range(0, period, m):
        by_hour.setdefault(t // 60, []).append(t % 60)
    return [
        f"{','.join(str(x) for x in minutes_)} {hour}-23/{step_h} * * *" for hour, minutes_ in sorted(by_hour.items())
    ]


def chunks(items: list[str], size: int) -> list[list[str]]:
    """Split keys into steps of at most `size` (Dagster's asset-job resolution is O(N^2) per step)."""
    return [items[i : i + size] for i in range(0, len(items), size)] or [[]]
