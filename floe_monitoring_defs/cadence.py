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


_CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))


def _cron_values(text: str, name: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise ValueError(f"{name} {part!r}: the step must be a positive number")
        if base == "*":
            start, end = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            if not (a.isdigit() and b.isdigit()):
                raise ValueError(f"{name} {part!r} is not a number range")
            start, end = int(a), int(b)
        elif base.isdigit():
            start = end = int(base)
            if step is not None:
                end = high
        else:
            raise ValueError(f"{name} {part!r}: only numbers, ranges, lists, * and steps are supported")
        if not (low <= start <= end <= high):
            raise ValueError(f"{name} {part!r} is outside {low}..{high}")
        values.update(range(start, end + 1, step or 1))
    return values


def parse_cron(expression: str) -> tuple[set[int], ...]:
    """The five fields of a standard cron expression (minute hour day-of-month month day-of-week) as value
    sets; `ValueError` naming the field for anything else (names, `L`, `W`, `#`, six fields)."""
    fields = expression.split()
    if len(fields) != len(_CRON_FIELDS):
        raise ValueError(f"{expression!r} is not a 5-field cron expression (minute hour day month weekday)")
    return tuple(_cron_values(f, n, lo, hi) for f, (n, lo, hi) in zip(fields, _CRON_FIELDS, strict=True))


def cron_interval(expression: str) -> int | None:
    """The even spacing, in minutes from midnight, of a cron that ticks every day at the same times: what the
    SLA expectations count with. None when the ticks are uneven or not every day (coverage is then unknown)."""
    minutes, hours, days, months, weekdays = parse_cron(expression)
    every_day = len(days) == 31 and len(months) == 12 and {d % 7 for d in weekdays} == set(range(7))
    if not every_day:
        return None
    ticks = sorted(h * 60 + m for h in hours for m in minutes)
    if not ticks or DAY_MINUTES % len(ticks):
        return None
    step = DAY_MINUTES // len(ticks)
    return step if all(t == ticks[0] % step + i * step for i, t in enumerate(ticks)) and ticks[0] < step else None
