"""Volume and cadence anomalies (`volume`): learned thresholds from the table's own Iceberg snapshot history.

Opt-in (`anomaly: {volume: true, cadence: true}` under a contract's `floe.monitoring`, or in the monitoring config).
Everything comes from snapshot summaries, which the table metadata holds: no manifest list, manifest or data file
is opened. Four series, each against a robust seasonal baseline (checks/anomaly.py):

* rows added per data-changing commit (`added-records` of each append / overwrite), with hour-of-day and
  day-of-week effects: a commit that lands half of what this hour of a Tuesday usually brings;
* rows added per complete UTC day (yesterday), with day-of-week effects;
* total rows (`total-records`), as the change each commit makes to it on a log scale: a mass delete or a truncating
  overwrite, which the rows-added series does not see;
* cadence: the time since the last data-changing commit against the usual gap after a commit at that hour (and
  weekday): a table that lands hourly and has been silent for four hours.

A check grades the commits since the previous check (`now` minus the interval, at least the newest commit) against
the baseline fitted on the history before them. Nothing alerts before `min_history` commits (a check says it is
learning and how much history it has). The history is the table's current ancestry, read on every run, plus what
the store kept of snapshots Iceberg has since expired (`table_commits`, written as commits are first seen): the
first run bootstraps from the snapshots the table still keeps within `history_days`.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from floe_monitoring_defs.checks.anomaly import (
    Baseline,
    GapModel,
    baseline_from_json,
    baseline_to_json,
    fit,
    fit_gaps,
    gaps_from_json,
    gaps_to_json,
)
from floe_monitoring_defs.checks.kind import CheckContext, CheckKind, Evidence, EvidenceTable, Target, format_age
from floe_monitoring_defs.config import AnomalyConfig, MonitoringConfig
from floe_monitoring_defs.contracts.model import MonitoredContract, MonitoredTable
from floe_monitoring_defs.models import (
    CheckOutcome,
    CheckStatus,
    ContractViolationEvent,
    DataCommit,
    Finding,
    ViolationSeverity,
    ViolationType,
    ensure_utc,
    error_outcome,
)
from floe_monitoring_defs.sources.base import TableNotFoundError
from floe_monitoring_defs.sources.history import commit_history

log = logging.getLogger(__name__)

KIND = ViolationType("volume")
ADDING = ("append", "overwrite")  # operations whose `added-records` is new data (a delete adds none)
RECENT_POINTS = 24  # commits listed in the evidence's `recent` table (the series to plot)
MAX_FINDINGS_PER_SERIES = 3  # the worst commits of a check, when several since the last check are out of band
FLUSH_ROWS = 5000
RUN_COMMITS = 3  # the sustained-change series: the mean of this many consecutive data-adding commits
RUN_SPAN = timedelta(days=2)  # whose oldest is no older than this before the model's newest commit
OVERLAP = timedelta(hours=1)  # new commits buffered before they are written to the store


@dataclass(frozen=True)
class VolumeModel:
    """What a table's history predicts, fitted on its commits up to `through`: kept in the store between runs and
    refitted when `refit_due` says (at most `anomaly.refit_hours` old), or when the table, the settings or the
    ancestry it was fitted on change."""

    fitted_at: datetime
    through: datetime  # fitted on the commits up to this time (a check grades only commits after it)
    through_snapshot: int | None  # the newest commit fitted on: not on the ancestry any more (a rollback) -> refit
    settings_key: str
    history_commits: int
    history_from: datetime | None
    history_source: str
    rows: Baseline | None  # log1p(rows added) per adding commit
    rows_history: int
    daily: Baseline | None  # log1p(rows added) per complete UTC day before `through`'s day
    daily_history: int
    total: Baseline | None  # log1p(total) change per commit
    total_history: int
    gaps: GapModel | None
    gaps_history: int

    def to_json(self) -> str:
        return json.dumps(
            {
                "v": MODEL_VERSION,
                "fitted_at": self.fitted_at.isoformat(),
                "through": self.through.isoformat(),
                "through_snapshot": self.through_snapshot,
                "settings_key": self.settings_key,
                "history_commits": self.history_commits,
                "history_from": self.history_from.isoformat() if self.history_from else None,
                "history_source": self.history_source,
                "rows": baseline_to_json(self.rows),
                "rows_history": self.rows_history,
                "daily": baseline_to_json(self.daily),
                "daily_history": self.daily_history,
                "total": baseline_to_json(self.total),
                "total_history": self.total_history,
                "gaps": gaps_to_json(self.gaps),
                "gaps_history": self.gaps_history,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> VolumeModel | None:
        """The model `to_json` wrote; None for anything else (another version, a damaged row: it is refitted)."""
        try:
            d = json.loads(text)
            if d.get("v") != MODEL_VERSION:
                return None
            return cls(
                fitted_at=datetime.fromisoformat(d["fitted_at"]),
                through=datetime.fromisoformat(d["through"]),
                through_snapshot=d["through_snapshot"],
                settings_key=str(d["settings_key"]),
                history_commits=int(d["history_commits"]),
                history_from=datetime.fromisoformat(d["history_from"]) if d["history_from"] else None,
                history_source=str(d["history_source"]),
                rows=baseline_from_json(d["rows"]),
                rows_history=int(d["rows_history"]),
                daily=baseline_from_json(d["daily"]),
                daily_history=int(d["daily_history"]),
                total=baseline_from_json(d["total"]),
                total_history=int(d["total_history"]),
                gaps=gaps_from_json(d["gaps"]),
                gaps_history=int(d["gaps_history"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError, IndexError):
            return None


MODEL_VERSION = 1


def settings_key(settings: AnomalyConfig) -> str:
    """The settings a fitted model depends on (a change refits it)."""
    return f"{settings.history_days}/{settings.level_days}/{settings.seasonality}"


def _adds(c: DataCommit) -> bool:
    return c.added_records is not None and c.operation in ADDING


def _steps(commits: Sequence[DataCommit]) -> list[tuple[DataCommit, int, float]]:
    """(commit, total before it, log1p change of the total) for consecutive commits that both know their total."""
    out = []
    for prev, c in itertools.pairwise(commits):
        if prev.total_records is not None and c.total_records is not None:
            out.append((c, prev.total_records, math.log1p(c.total_records) - math.log1p(prev.total_records)))
    return out


def _daily_sums(commits: Sequence[DataCommit], first: date, last: date) -> list[tuple[date, float]]:
    """Rows added per UTC day from `first` to `last` (inclusive; days without commits add 0), leaving out days with
    a commit whose summary has no `added-records`."""
    sums: dict[date, float] = {}
    unknown: set[date] = set()
    for c in commits:
        d = c.committed_at.date()
        if d < first or d > last:
            continue
        if c.added_records is None:
            unknown.add(d)
        elif c.operation in ADDING:
            sums[d] = sums.get(d, 0.0) + c.added_records
    days = (first + timedelta(days=i) for i in range((last - first).days + 1))
    return [(d, sums.get(d, 0.0)) for d in days if d not in unknown]


def _midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def fit_model(
    history: Sequence[DataCommit],
    *,
    through: datetime,
    settings: AnomalyConfig,
    fitted_at: datetime,
    history_source: str = "snapshots",
) -> VolumeModel:
    """Fit every series on the commits of `history` (oldest first) from `through - history_days` up to `through`."""
    start = through - timedelta(days=settings.history_days)
    commits = [c for c in history if start <= c.committed_at <= through]
    level_since = through - timedelta(days=settings.level_days)
    rows_series = [(c.committed_at, math.log1p(c.added_records or 0)) for c in commits if _adds(c)]
    rows = (
        fit(rows_series, by_hour=True, seasonality=settings.seasonality, level_since=level_since)
        if len(rows_series) >= max(settings.min_history, 2)
        else None
    )
    daily_points: list[tuple[datetime, float]] = []
    if commits:
        first = commits[0].committed_at.date() + timedelta(days=1)  # the first day of history is partial
        last = through.date() - timedelta(days=1)  # the last complete day
        daily_points = [(_midnight(d), math.log1p(v)) for d, v in _daily_sums(commits, first, last)]
    daily = (
        fit(daily_points, by_hour=False, seasonality=settings.seasonality, level_since=level_since)
        if len(daily_points) >= max(settings.min_history_days, 2)
        else None
    )
    steps = [(c.committed_at, g) for c, _, g in _steps(commits)]
    total = (
        fit(steps, by_hour=False, seasonality="none", level_since=level_since)
        if len(steps) >= max(settings.min_history, 2)
        else None
    )
    times = [c.committed_at for c in commits]
    gaps = fit_gaps(times, seasonality=settings.seasonality) if len(times) - 1 >= settings.min_history else None
    return VolumeModel(
        fitted_at=fitted_at,
        through=through,
        through_snapshot=commits[-1].snapshot_id if commits else None,
        settings_key=settings_key(settings),
        history_commits=len(commits),
        history_from=commits[0].committed_at if commits else None,
        history_source=history_source,
        rows=rows,
        rows_history=len(rows_series),
        daily=daily,
        daily_history=len(daily_points),
        total=total,
        total_history=len(steps),
        gaps=gaps,
        gaps_history=max(len(times) - 1, 0),
    )


def _band(baseline: Baseline, at: datetime, settings: AnomalyConfig) -> tuple[float, float, float]:
    """Expected value and WARNING band (log scale) at `at`."""
    spread = max(baseline.spread, _min_spread(settings))
    mid = baseline.expected(at)
    return mid, mid - settings.sensitivity * spread, mid + settings.sensitivity * spread


def _grade(z: float, settings: AnomalyConfig) -> ViolationSeverity | None:
    if abs(z) > settings.error_sensitivity:
        return ViolationSeverity.ERROR
    if abs(z) > settings.sensitivity:
        return ViolationSeverity.WARNING
    return None


def _count_text(n: float) -> str:
    return f"{round(n):,}"


def _min_spread(settings: AnomalyConfig) -> float:
    """The least spread (log scale): the WARNING band is never narrower than +-min_band_pct % of the expected."""
    return math.log1p(settings.min_band_pct / 100.0) / settings.sensitivity


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%MZ")


def _season(baseline: Baseline, at: datetime) -> str:
    """Which seasonal bucket a prediction came from, in words."""
    if baseline.seasonality == "weekly":
        return f" for {at.strftime('%a')} {at.hour:02d}:00 UTC"
    if baseline.seasonality == "daily":
        return f" for {at.hour:02d}:00 UTC"
    if baseline.seasonality == "weekday":
        return f" for a {at.strftime('%A')}"
    return ""


def _grade_rows(
    model: VolumeModel, targets: Sequence[DataCommit], settings: AnomalyConfig
) -> tuple[list[Finding], dict[str, Any]]:
    details: dict[str, Any] = {"rows_added_history": model.rows_history}
    baseline = model.rows
    graded_targets = [c for c in targets if _adds(c)]
    if baseline is None or not graded_targets:
        return [], details
    floor = _min_spread(settings)
    bad: list[tuple[float, Finding]] = []
    for c in graded_targets:
        added = c.added_records or 0
        mid, low, high = _band(baseline, c.committed_at, settings)
        z = baseline.z(math.log1p(added), c.committed_at, floor)
        expected, lo, hi = math.expm1(mid), max(math.expm1(low), 0.0), math.expm1(high)
        if c is graded_targets[-1]:
            details.update(
                {
                    "rows_added": added,
                    "rows_added_expected": round(expected, 1),
                    "rows_added_low": round(lo, 1),
                    "rows_added_high": round(hi, 1),
                    "rows_added_z": round(z, 2),
                    "rows_added_seasonality": baseline.seasonality,
                }
            )
        severity = _grade(z, settings)
        if severity is None:
            continue
        low_side = z < 0
        message = (
            f"The commit at {_when(c.committed_at)} (snapshot {c.snapshot_id}) added {_count_text(added)} rows, "
            f"{'below' if low_side else 'above'} the expected {_count_text(lo)}..{_count_text(hi)}"
            f"{_season(baseline, c.committed_at)} (median {_count_text(expected)}, learned from {baseline.points} "
            "commits)"
        )
        finding = Finding(
            kind="volume_low" if low_side else "volume_high",
            severity=severity,
            message=message,
            expected=f"{_count_text(lo)}..{_count_text(hi)} rows added",
            actual=f"{added} rows added",
            metadata={
                "snapshot_id": str(c.snapshot_id),
                "committed_at": c.committed_at.isoformat(),
                "rows_added": str(added),
                "expected_rows": f"{expected:.0f}",
                "z": f"{z:.2f}",
            },
        )
        bad.append((abs(z), finding))
    bad.sort(key=lambda zf: -zf[0])
    return [f for _, f in bad[:MAX_FINDINGS_PER_SERIES]], details


def _grade_run(
    model: VolumeModel, recent: Sequence[DataCommit], targets: Sequence[DataCommit], settings: AnomalyConfig
) -> list[Finding]:
    """The newest RUN_COMMITS data-adding commits together, ending at the newest target: a drop (or a rise) every
    commit of which is only just inside its own band is far outside on their mean (its spread is sqrt(RUN) times
    smaller), so a sustained halving of a noisy table is found on its third commit, not the next day. Left out
    when the newest target is flagged on its own."""
    baseline = model.rows
    adding = [c for c in recent if _adds(c)]
    if baseline is None or not any(_adds(c) for c in targets) or len(adding) < RUN_COMMITS:
        return []
    run = adding[-RUN_COMMITS:]  # the targets end `recent`: its newest data-adding commit is the newest graded one
    if run[0].committed_at < model.through - RUN_SPAN:
        return []  # the run reaches back past a pause: not one sustained change
    floor = _min_spread(settings)
    residuals = [math.log1p(c.added_records or 0) - baseline.expected(c.committed_at) for c in run]
    mean = sum(residuals) / len(residuals)
    single = max(baseline.spread, floor, 1e-9)
    z = mean / max(single / math.sqrt(len(run)), floor, 1e-9)
    if abs(residuals[-1] / single) > settings.sensitivity:  # the newest commit is a finding of its own
        return []
    severity = _grade(z, settings)
    if severity is None:
        return []
    added = sum(c.added_records or 0 for c in run)
    expected = sum(math.expm1(baseline.expected(c.committed_at)) for c in run)
    factor = math.exp(mean)
    low_side = z < 0
    return [
        Finding(
            kind="sustained_volume_low" if low_side else "sustained_volume_high",
            severity=severity,
            message=(
                f"The last {len(run)} commits ({_when(run[0].committed_at)} .. {_when(run[-1].committed_at)}) added "
                f"{_count_text(added)} rows, {factor:.2f}x what their hours usually bring (expected about "
                f"{_count_text(expected)}, learned from {baseline.points} commits)"
            ),
            expected=f"about {_count_text(expected)} rows added by {len(run)} commits",
            actual=f"{added} rows added",
            metadata={
                "first_snapshot_id": str(run[0].snapshot_id),
                "last_snapshot_id": str(run[-1].snapshot_id),
                "commits": str(len(run)),
                "rows_added": str(added),
                "expected_rows": f"{expected:.0f}",
                "z": f"{z:.2f}",
            },
        )
    ]


def _grade_daily(
    model: VolumeModel, recent: Sequence[DataCommit], now: datetime, settings: AnomalyConfig
) -> tuple[list[Finding], dict[str, Any]]:
    """Rows added on the last complete UTC day against the days before it. `recent` must reach back past that day's
    start (else the day is not known whole and is not graded)."""
    details: dict[str, Any] = {"daily_history": model.daily_history}
    baseline = model.daily
    day = now.date() - timedelta(days=1)
    if baseline is None or not recent or recent[0].committed_at >= _midnight(day):
        return [], details
    sums = _daily_sums(recent, day, day)
    if not sums:  # a commit of that day has no `added-records`
        return [], details
    observed = sums[0][1]
    at = _midnight(day)
    mid, low, high = _band(baseline, at, settings)
    z = baseline.z(math.log1p(observed), at, _min_spread(settings))
    expected, lo, hi = math.expm1(mid), max(math.expm1(low), 0.0), math.expm1(high)
    details.update(
        {
            "rows_per_day": int(observed),
            "rows_per_day_expected": round(expected, 1),
            "rows_per_day_low": round(lo, 1),
            "rows_per_day_high": round(hi, 1),
            "rows_per_day_date": day.isoformat(),
        }
    )
    severity = _grade(z, settings)
    if severity is None:
        return [], details
    low_side = z < 0
    finding = Finding(
        kind="daily_volume_low" if low_side else "daily_volume_high",
        severity=severity,
        message=(
            f"{day.isoformat()} (UTC) added {_count_text(observed)} rows, {'below' if low_side else 'above'} the "
            f"expected {_count_text(lo)}..{_count_text(hi)}{_season(baseline, at)} (median {_count_text(expected)}, "
            f"learned from {baseline.points} days)"
        ),
        expected=f"{_count_text(lo)}..{_count_text(hi)} rows per day",
        actual=f"{int(observed)} rows on {day.isoformat()}",
        metadata={"date": day.isoformat(), "rows_per_day": str(int(observed)), "z": f"{z:.2f}"},
    )
    return [finding], details


def _grade_total(
    model: VolumeModel, tail: Sequence[DataCommit], n_targets: int, settings: AnomalyConfig
) -> tuple[list[Finding], dict[str, Any]]:
    """The change each graded commit made to the total rows; `tail` ends with the targets and starts with the commit
    before them (when known)."""
    details: dict[str, Any] = {"total_rows_history": model.total_history}
    if tail and tail[-1].total_records is not None:
        details["total_rows"] = tail[-1].total_records
    baseline = model.total
    graded = _steps(tail)[-n_targets:] if n_targets else []
    if baseline is None or not graded:
        return [], details
    floor = _min_spread(settings)
    found: list[tuple[float, Finding]] = []
    for c, before, g in graded:
        z = baseline.z(g, c.committed_at, floor)
        mid, low, high = _band(baseline, c.committed_at, settings)
        base = math.log1p(before)
        expected, lo, hi = math.expm1(base + mid), max(math.expm1(base + low), 0.0), math.expm1(base + high)
        if c is graded[-1][0]:
            details.update(
                {
                    "total_rows_expected": round(expected, 1),
                    "total_rows_low": round(lo, 1),
                    "total_rows_high": round(hi, 1),
                }
            )
        severity = _grade(z, settings)
        if severity is None:
            continue
        total = c.total_records or 0
        low_side = z < 0
        finding = Finding(
            kind="total_rows_low" if low_side else "total_rows_high",
            severity=severity,
            message=(
                f"The commit at {_when(c.committed_at)} (snapshot {c.snapshot_id}, {c.operation}) took the table "
                f"from {_count_text(before)} to {_count_text(total)} rows; its history expects "
                f"{_count_text(lo)}..{_count_text(hi)} (learned from {baseline.points} commits)"
            ),
            expected=f"{_count_text(lo)}..{_count_text(hi)} total rows",
            actual=f"{total} total rows",
            metadata={
                "snapshot_id": str(c.snapshot_id),
                "committed_at": c.committed_at.isoformat(),
                "total_rows": str(total),
                "total_rows_before": str(before),
                "z": f"{z:.2f}",
            },
        )
        found.append((abs(z), finding))
    found.sort(key=lambda zf: -zf[0])
    return [f for _, f in found[:MAX_FINDINGS_PER_SERIES]], details


def _grade_cadence(
    model: VolumeModel, last: DataCommit | None, now: datetime, settings: AnomalyConfig, tolerance_seconds: float
) -> tuple[list[Finding], dict[str, Any]]:
    details: dict[str, Any] = {"cadence_history": model.gaps_history}
    if last is None:
        return [], details
    since = max(0.0, (now - last.committed_at).total_seconds())
    details.update({"since_commit_seconds": round(since, 3), "last_commit": last.committed_at.isoformat()})
    if model.gaps is None:
        return [], details
    band = model.gaps.band(
        last.committed_at,
        sensitivity=settings.sensitivity,
        error_sensitivity=settings.error_sensitivity,
        min_slack=settings.cadence_min_slack_pct / 100.0,
    )
    floor = settings.cadence_min_silence_minutes * 60.0
    warn_at, error_at = max(band.warn_seconds, floor), max(band.error_seconds, floor)
    details.update(
        {
            "expected_gap_seconds": round(band.expected_seconds, 1),
            "gap_warning_seconds": round(warn_at, 1),
            "gap_error_seconds": round(error_at, 1),
            "cadence_bucket": band.bucket,
        }
    )
    graded = since - tolerance_seconds
    if graded > error_at:
        severity, limit = ViolationSeverity.ERROR, error_at
    elif graded > warn_at:
        severity, limit = ViolationSeverity.WARNING, warn_at
    else:
        return [], details
    at = last.committed_at
    where = {
        "hour-of-week": f" after a commit on {at.strftime('%a')} at {at.hour:02d}h UTC",
        "hour-of-day": f" after a commit at {at.hour:02d}h UTC",
        "all": "",
    }[band.bucket]
    finding = Finding(
        kind="cadence_silence",
        severity=severity,
        message=(
            f"No data-changing commit for {format_age(since)} (last at {_when(at)}); this table usually commits "
            f"again within {format_age(band.expected_seconds)}{where} (flagged past {format_age(limit)}, learned "
            f"from {band.gaps} gaps)"
        ),
        expected=f"a commit within {format_age(warn_at)}",
        actual=f"{int(since)}s since the last commit",
        metadata={
            "since_commit_seconds": f"{since:.0f}",
            "expected_gap_seconds": f"{band.expected_seconds:.0f}",
            "limit_seconds": f"{limit:.0f}",
        },
    )
    return [finding], details


def _recent(commits: Sequence[DataCommit], model: VolumeModel, settings: AnomalyConfig) -> list[dict[str, Any]]:
    """The last commits with the band the current baseline gives them: the series a chart of the check shows."""
    rows: list[dict[str, Any]] = []
    for c in commits[-RECENT_POINTS:]:
        row: dict[str, Any] = {
            "committed_at": c.committed_at.isoformat(),
            "snapshot_id": str(c.snapshot_id),
            "operation": c.operation,
            "rows_added": c.added_records if c.added_records is not None else "",
            "total_rows": c.total_records if c.total_records is not None else "",
        }
        if model.rows is not None and _adds(c):
            mid, low, high = _band(model.rows, c.committed_at, settings)
            row.update(
                {
                    "expected": round(math.expm1(mid), 1),
                    "low": round(max(math.expm1(low), 0.0), 1),
                    "high": round(math.expm1(high), 1),
                }
            )
        rows.append(row)
    return rows


def grade(
    model: VolumeModel,
    recent: Sequence[DataCommit],
    *,
    now: datetime,
    settings: AnomalyConfig,
    interval: timedelta,
    tolerance_seconds: float = 0.0,
) -> CheckOutcome:
    """Grade the commits of `recent` (oldest first, reaching back past `now - interval` and the start of yesterday
    when the table is that old) committed after both `model.through` and `now - interval` (at least the newest
    one after `model.through`) against `model` (pure)."""
    now = ensure_utc(now)
    recent = [c for c in recent if c.committed_at <= now]
    cut = max(now - interval, model.through)
    after = [c for c in recent if c.committed_at > model.through]
    targets = [c for c in after if c.committed_at > cut] or after[-1:]
    first = recent.index(targets[0]) if targets else len(recent)
    tail = recent[max(first - 1, 0) :]
    last = recent[-1] if recent else None
    details: dict[str, Any] = {
        "history_commits": model.history_commits,
        "history_source": model.history_source,
        "commits_graded": len(targets),
        "model_fitted_at": model.fitted_at.isoformat(),
        "volume": settings.volume,
        "cadence": settings.cadence,
    }
    if model.history_from is not None:
        details["history_from"] = model.history_from.isoformat()
        details["history_span_seconds"] = round((model.through - model.history_from).total_seconds())
    findings: list[Finding] = []
    learning: list[str] = []
    if settings.volume:
        # Until the history spans min_history_days (two weekends by default) the weekly pattern is unknown and the
        # bands are fitted on a few points per hour: a young table's first Saturday would be an ERROR. The series
        # are graded (the evidence shows where they stand) and nothing is flagged until then.
        span = model.through - model.history_from if model.history_from is not None else timedelta(0)
        young = span < timedelta(days=settings.min_history_days)
        for found, more in (
            _grade_rows(model, targets, settings),
            (_grade_run(model, recent, targets, settings), {}),
            _grade_daily(model, recent, now, settings),
            _grade_total(model, tail, len(targets), settings),
        ):
            findings += [] if young else found
            details.update(more)
        if model.rows is None:
            learning.append(f"rows added: {model.rows_history} of {settings.min_history} commits")
        elif young:
            days = span.total_seconds() / 86400
            learning.append(f"volume: {days:.1f} of {settings.min_history_days} days of history")
    if settings.cadence:
        found, more = _grade_cadence(model, last, now, settings, tolerance_seconds)
        findings += found
        details.update(more)
        if model.gaps is None:
            learning.append(f"cadence: {model.gaps_history} of {settings.min_history} gaps")
    details["model"] = "learning" if learning else "ready"
    measured = details.get("rows_added", details.get("since_commit_seconds"))
    outcome_kw: dict[str, Any] = {"details": details, "measured_value": measured}
    if last is None and model.history_commits == 0:
        return CheckOutcome(
            KIND, CheckStatus.PASS, reason="learning: the table has no data-changing commit yet", **outcome_kw
        )
    if any(f.severity >= ViolationSeverity.WARNING for f in findings):
        # The recent commits with their bands, for whoever looks at a failing check (kept off passing results: a
        # thousand tables every 30 minutes would store 170 MB a day of them).
        details["recent"] = _recent(recent, model, settings)
        return CheckOutcome(KIND, CheckStatus.FAIL, findings=tuple(findings), **outcome_kw)
    reason = f"learning ({'; '.join(learning)})" if learning else "within the table's learned bands"
    return CheckOutcome(KIND, CheckStatus.PASS, reason=reason, **outcome_kw)


def evaluate_volume(
    history: Sequence[DataCommit],
    *,
    now: datetime,
    settings: AnomalyConfig,
    interval: timedelta,
    tolerance_seconds: float = 0.0,
    history_source: str = "snapshots",
) -> CheckOutcome:
    """Fit on the commits before `now - interval` (within `history_days`) and grade the rest: one check, from scratch
    (pure; the kind keeps the fitted model between runs and refits it every `refit_hours`)."""
    now = ensure_utc(now)
    if not settings.enabled:
        return CheckOutcome(KIND, CheckStatus.SKIPPED, reason="anomaly detection is off (anomaly.volume / cadence)")
    commits = sorted((c for c in history if c.committed_at <= now), key=lambda c: c.committed_at)
    model = refit_model(commits, now=now, settings=settings, interval=interval, history_source=history_source)
    return grade(model, commits, now=now, settings=settings, interval=interval, tolerance_seconds=tolerance_seconds)


def refit_model(
    commits: Sequence[DataCommit],
    *,
    now: datetime,
    settings: AnomalyConfig,
    interval: timedelta,
    history_source: str = "snapshots",
) -> VolumeModel:
    """The model a check at `now` fits (pure): on the commits of `commits` (oldest first) up to `now - interval`, or
    all but the newest when nothing came since (that one is graded), through the newest of them and `history_days`
    back from it (not from now: a table silent for weeks keeps the history that says how silent it usually is)."""
    cut = now - interval
    fit_on = _fit_on(commits, cut)
    through = fit_on[-1].committed_at if fit_on else cut - timedelta(days=settings.history_days + 1)
    return fit_model(fit_on, through=through, settings=settings, fitted_at=now, history_source=history_source)


def _fit_on(commits: Sequence[DataCommit], cut: datetime) -> list[DataCommit]:
    """The commits a model at `cut` (`now - interval`) is fitted on: those up to `cut`, or all but the newest when
    nothing came since (that one is graded)."""
    fit_on = [c for c in commits if c.committed_at <= cut]
    if commits and len(fit_on) == len(commits):
        fit_on = fit_on[:-1]
    return fit_on


def refit_due(key: str, fitted_at: datetime, now: datetime, refit_hours: float) -> bool:
    """Whether a model fitted at `fitted_at` is refitted at `now`: once it is `refit_hours` old, less up to half of
    that by a stable hash of the table's key. A thousand tables bootstrapped in one run then refit over the
    second half of the period (a sixth of them per run at a 30-minute interval and 6 hours), not all in the same
    run, and their phases drift apart from then on; no model is used `refit_hours` past its fit."""
    if fitted_at > now:
        return True
    share = (zlib.crc32(key.encode()) % 100_000) / 100_000
    return now - fitted_at >= timedelta(hours=refit_hours * (1.0 - share / 2.0))


def history_start(
    commits: Sequence[DataCommit], *, now: datetime, settings: AnomalyConfig, interval: timedelta
) -> datetime:
    """How far back the history of a refit at `now` reaches, given the newest `commits` (oldest first, at least two
    back past `now - interval` when the table has them): `history_days` before the commit the model is fitted
    through (now's when there is none)."""
    fit_head = _fit_on(commits, now - interval)
    anchor = fit_head[-1].committed_at if fit_head else now
    return anchor - timedelta(days=settings.history_days)


class VolumeKind(CheckKind):
    """Volume and cadence anomalies for the contracts that ask for them (`anomaly.volume` / `anomaly.cadence`)."""

    name = KIND.value
    description = (
        "Rows added per commit and per day, total rows and time since the last commit, against what the table's own "
        "Iceberg snapshot history predicts"
    )
    failure_label = "anomalous"
    default_minutes = 30

    def __init__(self) -> None:
        self._stored: dict[str, tuple[str, datetime, datetime]] = {}  # table key -> (uuid, oldest, newest) stored
        self._models: dict[str, tuple[str, str]] = {}  # table key -> (uuid, fitted model JSON)
        self._pending: list[tuple[str, str, DataCommit]] = []  # (table key, uuid, commit) to write
        self._fitted: list[tuple[str, str, datetime, str]] = []  # (table key, uuid, fitted at, model JSON) to write
        self._store_ok = True

    @classmethod
    def applies(cls, contract: MonitoredContract) -> bool:
        """Whether the contract's own `floe.monitoring` asks for it (the config can ask for every contract)."""
        anomaly = (contract.monitoring_overrides or {}).get("anomaly")
        return isinstance(anomaly, Mapping) and any(anomaly.get(k) is True for k in ("volume", "cadence"))

    @classmethod
    def applies_under(cls, contract: MonitoredContract, config: MonitoringConfig) -> bool:
        return config.anomaly.enabled

    @classmethod
    def evidence(cls, outcome: CheckOutcome, violations: Sequence[ContractViolationEvent]) -> Evidence:
        d = outcome.details
        keys = (
            "model",
            "history_commits",
            "history_source",
            "history_span_seconds",
            "commits_graded",
            "rows_added",
            "rows_added_expected",
            "rows_added_low",
            "rows_added_high",
            "rows_added_z",
            "rows_added_seasonality",
            "rows_per_day",
            "rows_per_day_expected",
            "rows_per_day_low",
            "rows_per_day_high",
            "rows_per_day_date",
            "total_rows",
            "total_rows_expected",
            "total_rows_low",
            "total_rows_high",
            "since_commit_seconds",
            "expected_gap_seconds",
            "gap_warning_seconds",
            "gap_error_seconds",
            "cadence_bucket",
        )
        out: Evidence = {k: d[k] for k in keys if d.get(k) is not None}
        recent = d.get("recent")
        if isinstance(recent, list) and recent:
            columns = (
                "committed_at",
                "snapshot_id",
                "operation",
                "rows_added",
                "expected",
                "low",
                "high",
                "total_rows",
            )
            rows = tuple({c: r.get(c, "") for c in columns} for r in recent if isinstance(r, dict))
            out["recent_commits"] = EvidenceTable(columns, rows)
        return out

    def begin(self, ctx: CheckContext, targets: Sequence[Target]) -> None:
        if ctx.store is None:
            return
        keys = sorted({self._key(ctx, table) for _, table in targets})
        try:
            self._stored = ctx.store.commits.extent(keys)
            self._models = ctx.store.commits.models(keys)
        except Exception as exc:  # the store is down: the history is what the snapshots still hold
            self._store_ok = False
            log.error("cannot read the stored commit history (%s); volume checks use the snapshots alone", exc)

    def end(self, ctx: CheckContext) -> None:
        self._flush(ctx)

    @staticmethod
    def _key(ctx: CheckContext, table: MonitoredTable) -> str:
        return f"{ctx.source.catalog_name(table.ref)}/{table.ref.identifier}"

    def _flush(self, ctx: CheckContext) -> None:
        pending, fitted = self._pending, self._fitted
        self._pending, self._fitted = [], []
        if not (pending or fitted) or ctx.store is None or not self._store_ok:
            return
        try:
            ctx.store.commits.save(pending, ctx.clock())
            ctx.store.commits.save_models(fitted)
        except Exception as exc:  # kept in the snapshots: the next run writes them
            log.error("cannot save %d new commits to the store (%s); the next run retries", len(pending), exc)

    def _queue(self, key: str, uuid: str, commits: Sequence[DataCommit]) -> None:
        """Queue the commits the store does not hold yet (an hour's overlap: a commit whose writer's clock ran behind
        is still written; one already stored is a no-op)."""
        stored = self._stored.get(key)
        newest = stored[2] if stored is not None and stored[0] == uuid else None
        new = [c for c in commits if newest is None or c.committed_at > newest - OVERLAP]
        if not new:
            return
        self._pending += [(key, uuid, c) for c in new]
        oldest = stored[1] if stored is not None and stored[0] == uuid else new[0].committed_at
        self._stored[key] = (uuid, oldest, max(new[-1].committed_at, newest) if newest else new[-1].committed_at)

    def _full_history(
        self,
        ctx: CheckContext,
        table: MonitoredTable,
        key: str,
        uuid: str,
        snapshots: list[DataCommit],
        since: datetime,
    ) -> tuple[list[DataCommit], str]:
        """The snapshots' commits plus the stored ones older than the oldest snapshot still kept."""
        if ctx.store is None:
            return snapshots, "snapshots"
        if not self._store_ok:
            return snapshots, "snapshots (store unavailable)"
        stored = self._stored.get(key)
        first_kept = snapshots[0].committed_at if snapshots else None
        if stored is None or stored[0] != uuid or (first_kept is not None and stored[1] >= first_kept):
            return snapshots, "snapshots"
        try:
            older = ctx.store.commits.load(key, uuid, since=since, before=first_kept)
        except Exception as exc:
            log.error("cannot read the stored commits of %s (%s); using its snapshots alone", table.ref.identifier, exc)
            return snapshots, "snapshots (store unavailable)"
        return older + snapshots, "store+snapshots" if older else "snapshots"

    def _cached(self, key: str, uuid: str, settings: AnomalyConfig, now: datetime) -> VolumeModel | None:
        found = self._models.get(key)
        if found is None or found[0] != uuid:
            return None
        model = VolumeModel.from_json(found[1])
        if model is None or model.settings_key != settings_key(settings):
            return None
        if refit_due(key, model.fitted_at, now, settings.refit_hours):
            return None
        return model

    def evaluate(
        self, ctx: CheckContext, contract: MonitoredContract, table: MonitoredTable, config: MonitoringConfig
    ) -> CheckOutcome:
        settings = config.anomaly
        if not settings.enabled:
            return CheckOutcome(KIND, CheckStatus.SKIPPED, reason="anomaly detection is off (anomaly.volume / cadence)")
        try:
            iceberg = ctx.source.load_table(table.ref)
        except TableNotFoundError as exc:
            return error_outcome(KIND, str(exc), table=table.ref.identifier)
        now = ensure_utc(ctx.clock())
        interval = timedelta(minutes=type(self).interval_minutes(config))
        key, uuid = self._key(ctx, table), str(iceberg.metadata.table_uuid)
        yesterday = _midnight(now.date() - timedelta(days=1))
        model = self._cached(key, uuid, settings, now)
        recent: list[DataCommit] = []
        if model is not None:
            # Back to the commit the model was fitted through: it must still be on the ancestry (a rollback refits).
            recent = commit_history(iceberg, min(now - interval, yesterday, model.through), include_before=1)
            if model.through_snapshot is not None and all(c.snapshot_id != model.through_snapshot for c in recent):
                model = None
        if model is None:
            head = commit_history(iceberg, now - interval, include_before=2)
            since = history_start(head, now=now, settings=settings, interval=interval)
            snapshots = commit_history(iceberg, since, include_before=1)
            history, source = self._full_history(ctx, table, key, uuid, snapshots, since)
            model = refit_model(history, now=now, settings=settings, interval=interval, history_source=source)
            self._models[key] = (uuid, model.to_json())
            self._fitted.append((key, uuid, now, self._models[key][1]))
            recent = snapshots
        self._queue(key, uuid, recent)
        if len(self._pending) >= FLUSH_ROWS:
            self._flush(ctx)
        return grade(
            model,
            recent,
            now=now,
            settings=settings,
            interval=interval,
            tolerance_seconds=config.clock_skew_tolerance_seconds,
        )
