"""Check intervals as cron expressions: the union of ticks is exactly every N minutes."""

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from dagster._utils.schedules import cron_string_iterator

from floe_monitoring_defs.cadence import chunks, crons_for_interval, effective_interval


def ticks(crons: list[str], hours: int = 48) -> list[datetime]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    out: set[datetime] = set()
    for cron in crons:
        for t in cron_string_iterator(start.timestamp(), cron, "UTC"):
            if t >= start + timedelta(hours=hours):
                break
            out.add(t.astimezone(UTC))
    return sorted(out)


@pytest.mark.parametrize("minutes", [1, 5, 15, 45, 60, 90, 120, 360, 480, 1440])
def test_ticks_are_evenly_spaced(minutes: int) -> None:
    ts = ticks(crons_for_interval(minutes))
    gaps = {(b - a) for a, b in itertools.pairwise(ts)}
    assert gaps == {timedelta(minutes=minutes)}


def test_interval_that_does_not_divide_a_day_is_rounded_down() -> None:
    assert effective_interval(7) == 6
    assert effective_interval(100) == 96
    assert effective_interval(5000) == 1440


def test_chunks() -> None:
    assert chunks(list("abcde"), 2) == [["a", "b"], ["c", "d"], ["e"]]
    assert chunks([], 3) == [[]]
