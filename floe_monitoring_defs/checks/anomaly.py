"""Robust seasonal baselines for the `volume` check: what a table's own history predicts, as a band.

Pure functions over (time, value) points; no I/O. Values are modelled on a log scale (`log1p` of a count, `log`
of a gap in seconds): a table's volume varies by a factor, not by a fixed number of rows, and a 50 % drop or a 3x
spike is the same distance from any level.

* Seasonality: an hour-of-day effect once the history spans `DAILY_SPAN` and a day-of-week effect once it spans
  `WEEKLY_SPAN` (`auto`), each the median of what is left once the other effects are taken out (two rounds of
  backfitting). A bucket with too few points has no effect of its own.
* Level: the median of the deseasonalized points of the last `level_days`, so a trend moves the band with it.
* Spread: the robust standard deviation of the deseasonalized series, from the median absolute difference of
  consecutive points (1.0483 x, the normal-consistent factor for differences): a slow trend or a level shift does
  not widen it the way a MAD around one level would, and a single outlier moves it by one rank at most. It is
  never below the MAD of the last `level_days` around the level: a pattern too young to be fitted (a daily
  curve in the first three days) widens the band instead of alerting at every trough. It is then widened by the
  estimation error of the level and of the smallest bucket behind each effect (a median of n points is off by
  about sqrt(pi / 2n) spreads): the band is where the next point is expected, not where the noise alone goes.

`expected(at)` is level + the effects of `at`'s hour and weekday; a value is graded by its distance from that in
spreads (`z`). The floor on the spread (`min_spread`) keeps a perfectly regular table from alerting on a 1 % wobble.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

Seasonality = Literal["auto", "daily", "weekly", "none"]

DAILY_SPAN = timedelta(days=3)  # hour-of-day effects from this much history on (`auto`)
WEEKLY_SPAN = timedelta(days=14)  # day-of-week effects from two weeks on
MIN_PER_HOUR = 3  # points an hour-of-day bucket needs for its own effect
MIN_PER_WEEKDAY = 2  # and a weekday bucket
DIFF_SIGMA = 1.0 / (0.6744897501960817 * math.sqrt(2.0))  # median |x_i - x_(i-1)| -> sigma, for normal noise
MAD_SIGMA = 1.4826
SCALE_EFFICIENCY = 0.37  # of a median-based scale estimate, against the standard deviation (normal data)
MIN_WEEK_GAPS = 3  # an hour-of-week gap bucket is used on its own from this many gaps (a median past one outage)
PRIOR_GAPS = 8  # a gap bucket's spread is shrunk toward the pooled one with this weight (in gaps)


def median(values: Sequence[float]) -> float:
    """The median of a non-empty sequence."""
    s = sorted(values)
    n = len(s)
    if n == 0:
        raise ValueError("median of no values")
    mid = n // 2
    return s[mid] if n % 2 else (s[mid - 1] + s[mid]) / 2.0


def mad_sigma(values: Sequence[float], center: float | None = None) -> float:
    """The normal-consistent median absolute deviation around `center` (the median by default)."""
    c = median(values) if center is None else center
    return MAD_SIGMA * median([abs(v - c) for v in values])


@dataclass(frozen=True)
class Baseline:
    """A fitted baseline: level, effects per hour of day (UTC) and per weekday (Monday 0), spread, history size."""

    level: float
    hour: tuple[float, ...]  # 24 effects (0.0 where none was fitted)
    weekday: tuple[float, ...]  # 7 effects
    spread: float  # the robust standard deviation (before any floor)
    points: int
    seasonality: str  # what was fitted: "none", "daily", "weekly" (day-of-week only: "weekday")

    def expected(self, at: datetime) -> float:
        return self.level + self.hour[at.hour] + self.weekday[at.weekday()]

    def z(self, value: float, at: datetime, min_spread: float) -> float:
        """How many spreads `value` is from what this baseline expects at `at` (signed)."""
        return (value - self.expected(at)) / max(self.spread, min_spread, 1e-9)


def _effects(keys: Sequence[int], residuals: Sequence[float], size: int, min_points: int) -> tuple[float, ...]:
    """Per bucket (`keys`: each point's hour or weekday), the median residual of its points; 0 below `min_points`."""
    buckets: list[list[float]] = [[] for _ in range(size)]
    for k, r in zip(keys, residuals, strict=True):
        buckets[k].append(r)
    return tuple(median(b) if len(b) >= min_points else 0.0 for b in buckets)


def _fitted_sizes(keys: Sequence[int], size: int, min_points: int) -> list[int]:
    """The size of the smallest bucket that has an effect of its own (none: nothing to add)."""
    counts = [0] * size
    for k in keys:
        counts[k] += 1
    fitted = [c for c in counts if c >= min_points]
    return [min(fitted)] if fitted else []


def fit(
    points: Sequence[tuple[datetime, float]],
    *,
    by_hour: bool,
    seasonality: Seasonality,
    level_since: datetime,
) -> Baseline:
    """The baseline of `points` (oldest first, at least 2). `by_hour`: the points are intra-day (per commit), so an
    hour-of-day effect may be fitted; a per-day series (`by_hour` False) gets a day-of-week effect only."""
    if len(points) < 2:
        raise ValueError("a baseline needs at least 2 points")
    span = points[-1][0] - points[0][0]
    use_hour = by_hour and seasonality in ("auto", "daily", "weekly") and span >= DAILY_SPAN
    use_weekday = seasonality in ("auto", "weekly") and span >= WEEKLY_SPAN
    values = [v for _, v in points]
    hours = [at.hour for at, _ in points]
    weekdays = [at.weekday() for at, _ in points]
    level0 = median(values)
    hour: tuple[float, ...] = (0.0,) * 24
    weekday: tuple[float, ...] = (0.0,) * 7
    for _ in range(2 if use_hour and use_weekday else 1):
        if use_hour:
            resid = [v - level0 - weekday[d] for v, d in zip(values, weekdays, strict=True)]
            hour = _effects(hours, resid, 24, MIN_PER_HOUR)
        if use_weekday:
            resid = [v - level0 - hour[h] for v, h in zip(values, hours, strict=True)]
            weekday = _effects(weekdays, resid, 7, MIN_PER_WEEKDAY)
    des = [v - hour[h] - weekday[d] for v, h, d in zip(values, hours, weekdays, strict=True)]
    recent = [x for (at, _), x in zip(points, des, strict=True) if at >= level_since]
    recent = recent if len(recent) >= 3 else des
    level = median(recent)
    diffs = [abs(b - a) for a, b in itertools.pairwise(des)]
    spread = DIFF_SIGMA * median(diffs) if diffs else 0.0
    # Never narrower than how far the recent points really sit from the model: differences of consecutive points
    # miss a pattern the history is too short to fit yet (a daily curve in its first three days).
    spread = max(spread, mad_sigma(recent, level))
    # A prediction band, not a noise band: the level and each effect are medians of a few points with their own
    # error ((pi / 2) sigma^2 / n each); a day-of-week effect learned from four Tuesdays is not exact.
    estimated = [len(recent)]
    if use_hour:
        estimated += _fitted_sizes(hours, 24, MIN_PER_HOUR)
    if use_weekday:
        estimated += _fitted_sizes(weekdays, 7, MIN_PER_WEEKDAY)
    spread *= math.sqrt(1.0 + (math.pi / 2.0) * sum(1.0 / n for n in estimated if n > 0))
    # And by the uncertainty of the spread itself: a median-based scale of n points is worth about 0.37 n normal
    # ones, so a band set at z spreads from 40 daily points must be about a quarter wider to keep its tail
    # (Student's t at that many degrees of freedom, to first order near z = 4).
    if diffs:
        spread *= 1.0 + 4.0 / (SCALE_EFFICIENCY * len(diffs))
    fitted = "weekly" if use_hour and use_weekday else "daily" if use_hour else "weekday" if use_weekday else "none"
    return Baseline(level, hour, weekday, spread, len(points), fitted)


@dataclass(frozen=True)
class GapBand:
    """What a table's usual gap between data-changing commits is for a commit at a given hour (and weekday)."""

    expected_seconds: float  # the median gap of the bucket
    warn_seconds: float  # a silence longer than this is a WARNING
    error_seconds: float  # and longer than this an ERROR
    gaps: int  # gaps the bucket holds
    bucket: str  # "hour-of-week" | "hour-of-day" | "all"


@dataclass(frozen=True)
class GapStats:
    """Median and MAD of the log gaps of one bucket."""

    gaps: int
    center: float
    sigma: float


@dataclass(frozen=True)
class GapModel:
    """The gaps between consecutive data-changing commits, by the hour of the week and of the day they began at."""

    by_hour_of_week: dict[int, GapStats]  # weekday * 24 + hour -> stats (every bucket seen)
    by_hour: dict[int, GapStats]  # hour -> stats (5 or more gaps)
    overall: GapStats
    weekly: bool  # hour-of-week buckets are used (seasonality auto or weekly)
    daily: bool  # and three days (hour-of-day buckets)

    def band(self, last: datetime, *, sensitivity: float, error_sensitivity: float, min_slack: float) -> GapBand:
        """The band of the gap that begins at `last`: its hour-of-week bucket (3 or more gaps), else its hour-of-day
        one, else all; a younger hour-of-week bucket (1 or 2 gaps) wins when it expects the longer gap: last
        Friday's evening was followed by a weekend, so this Friday's is not a silence. Warn beyond median x
        exp(sensitivity x MAD of the log gaps), and never before median x (1 + min_slack); ERROR beyond the same
        with `error_sensitivity` (the slack scaled alike)."""
        stats, bucket = self.overall, "all"
        week = self.by_hour_of_week.get(last.weekday() * 24 + last.hour) if self.weekly else None
        day = self.by_hour.get(last.hour) if self.daily else None
        if day is not None:
            stats, bucket = day, "hour-of-day"
        if week is not None and (week.gaps >= MIN_WEEK_GAPS or week.center > stats.center):
            stats, bucket = week, "hour-of-week"
        expected = math.exp(stats.center)
        ratio = error_sensitivity / sensitivity
        warn = max(math.exp(stats.center + sensitivity * stats.sigma), expected * (1.0 + min_slack))
        error = max(
            math.exp(stats.center + error_sensitivity * stats.sigma), expected * (1.0 + min_slack * ratio), warn
        )
        return GapBand(expected, warn, error, stats.gaps, bucket)


def _gap_stats(gaps: Sequence[float]) -> GapStats:
    logs = [math.log(g) for g in gaps]
    center = median(logs)
    return GapStats(len(logs), center, mad_sigma(logs, center))


def _pooled(buckets: dict[int, list[float]], pool_from: int = 1) -> dict[int, GapStats]:
    """Each bucket's median, and a spread shrunk toward the one pooled over the buckets of `pool_from` or more gaps
    (PRIOR_GAPS gaps' worth): the MAD of three to eight gaps is noisy, and one late commit in a bucket would
    otherwise double its band."""
    stats = {k: _gap_stats(v) for k, v in buckets.items()}
    pool = {k: v for k, v in buckets.items() if len(v) >= pool_from} or buckets
    residuals = [math.log(g) - stats[k].center for k, v in pool.items() for g in v]
    if not residuals:
        return stats
    pooled = mad_sigma(residuals, 0.0)
    return {
        k: GapStats(
            st.gaps, st.center, math.sqrt((st.gaps * st.sigma**2 + PRIOR_GAPS * pooled**2) / (st.gaps + PRIOR_GAPS))
        )
        for k, st in stats.items()
    }


def fit_gaps(commits: Sequence[datetime], *, seasonality: Seasonality) -> GapModel | None:
    """The gap model of `commits` (commit times, oldest first); None with fewer than 2 positive gaps.

    A table that lands hourly on weekdays and not at weekends has a long gap after Friday's last commit: its
    hour-of-week bucket knows it from the one weekend seen before (five days of snapshots kept by Iceberg's default
    expiry can hold it); an hour-of-day bucket (5 or more gaps, from three days) knows a nightly pause."""
    gaps = [(a, (b - a).total_seconds()) for a, b in itertools.pairwise(commits)]
    gaps = [(a, g) for a, g in gaps if g > 0]
    if len(gaps) < 2:
        return None
    span = commits[-1] - commits[0]
    # An hour-of-week bucket is used alone from 3 gaps (three weeks) on; before that only to expect a longer gap.
    weekly = seasonality in ("auto", "weekly")
    daily = seasonality in ("auto", "daily", "weekly") and span >= DAILY_SPAN
    week: dict[int, list[float]] = {}
    day: dict[int, list[float]] = {}
    for a, g in gaps:
        week.setdefault(a.weekday() * 24 + a.hour, []).append(g)
        day.setdefault(a.hour, []).append(g)
    return GapModel(
        by_hour_of_week=_pooled(week, pool_from=MIN_WEEK_GAPS) if weekly else {},
        by_hour=_pooled({k: v for k, v in day.items() if len(v) >= 5}) if daily else {},
        overall=_gap_stats([g for _, g in gaps]),
        weekly=weekly,
        daily=daily,
    )


# -- serialization (the fitted models are kept in the store between runs) ------------------------------------


def baseline_to_json(b: Baseline | None) -> dict[str, Any] | None:
    if b is None:
        return None
    return {
        "level": b.level,
        "hour": list(b.hour),
        "weekday": list(b.weekday),
        "spread": b.spread,
        "points": b.points,
        "seasonality": b.seasonality,
    }


def baseline_from_json(d: Any) -> Baseline | None:
    if not isinstance(d, dict):
        return None
    hour, weekday = tuple(float(x) for x in d["hour"]), tuple(float(x) for x in d["weekday"])
    if len(hour) != 24 or len(weekday) != 7:
        raise ValueError("a baseline has 24 hour and 7 weekday effects")
    return Baseline(float(d["level"]), hour, weekday, float(d["spread"]), int(d["points"]), str(d["seasonality"]))


def gaps_to_json(g: GapModel | None) -> dict[str, Any] | None:
    if g is None:
        return None

    def stats(s: GapStats) -> list[float]:
        return [s.gaps, s.center, s.sigma]

    return {
        "week": {str(k): stats(v) for k, v in g.by_hour_of_week.items()},
        "day": {str(k): stats(v) for k, v in g.by_hour.items()},
        "all": stats(g.overall),
        "weekly": g.weekly,
        "daily": g.daily,
    }


def gaps_from_json(d: Any) -> GapModel | None:
    if not isinstance(d, dict):
        return None

    def stats(v: Any) -> GapStats:
        return GapStats(int(v[0]), float(v[1]), float(v[2]))

    return GapModel(
        by_hour_of_week={int(k): stats(v) for k, v in d["week"].items()},
        by_hour={int(k): stats(v) for k, v in d["day"].items()},
        overall=stats(d["all"]),
        weekly=bool(d["weekly"]),
        daily=bool(d["daily"]),
    )
