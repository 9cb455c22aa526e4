"""Backtest of the `volume` check (issue 17): detection delay and false alarms, beside a fixed-threshold baseline.

Generated tables (floe_monitoring_tests/volume_history.py, one per seed): 60 days of hourly appends from Monday
2026-09-07 UTC with a daily curve (1 +- 0.5, peak 14:00), weekends at 0.6 of a weekday, 0.3 % growth a day,
lognormal noise (sigma 0.10), commits ~5 minutes past the hour (sigma 3 minutes, 2 % of them 10-25 minutes late).

The check is replayed as the kind runs it (checks/volume.py): a check every 30 minutes (:00 and :30), the model
refitted by `refit_model` when `refit_due` says (3 to 6 hours old, by the table key) and graded by `grade` in
between with the commits the kind reads (back to the model's fit-through commit, the start of yesterday and one
interval, plus one commit before), with the default `AnomalyConfig` (sensitivity 3.5, error 8, min_history 24
commits, min_history_days 14, 56 days of history; `--settings` to change them). What is timed is the pure part
(fit and grade); reading the snapshots is the Iceberg metadata load that a freshness check pays too
(benchmarks/volume_run.py measures that side).

* Clean history: every check of days 1-60 of each seed. A false alarm is a failing check (a WARNING or ERROR
  finding). Reported for days 15-60 (the model has its two weeks of history) and days 1-14 (a young table:
  per-commit and cadence bands from 24 commits on, the daily series from 14 days on), and per finding kind.
* Injected anomalies, `--injections` per kind and seed at random hours of days 21-60, each replayed from a refit
  period before it with its own table key (the kind's refits are offset per table, so the model's age at the
  onset varies):
  - drop: one commit adds 50 % of its rows;
  - spike: one commit adds 3x its rows;
  - sustained drop: every commit of the next 24 hours adds 50 %;
  - silence: no commit for 4 hours (the commits due are dropped).
  Onset: the anomalous commit's time, or for a silence the time the next commit was due (the last commit + one
  hour). Delay: the first check failing with a finding on that side (volume_low/daily_volume_low/total_rows_low
  for drops, volume_high/... for spikes, cadence_silence for silences) minus the onset; "within one interval" is
  a delay of at most 30 minutes. Checks are followed for 6 hours after the onset.
* Baseline (fixed thresholds, the same checks): a commit below 0.5x or above 2x the mean rows per commit of the
  first 14 days fails the check that sees it; a silence fails once the last commit is older than a 2-hour
  freshness SLA.
* Cost per check: fit (a refit) and grade, median and p95 over the clean replay, at the full history.

    .venv/bin/python benchmarks/volume_backtest.py             # 10 seeds x 60 days, 20 injections per kind and seed
    .venv/bin/python benchmarks/volume_backtest.py --quick     # 2 seeds x 30 days, 3 injections (CI smoke)

Nothing is asserted; the last line is `RESULT {json}`.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from floe_monitoring_defs.checks.volume import VolumeModel, grade, refit_due, refit_model
from floe_monitoring_defs.config import AnomalyConfig
from floe_monitoring_defs.models import CheckStatus, DataCommit
from floe_monitoring_tests.volume_history import START, Shape, hourly_history, retotal, scale_commit, silence

INTERVAL = timedelta(minutes=30)
FOLLOW = timedelta(hours=6)
SIDES = {
    "drop": ("volume_low", "sustained_volume_low", "daily_volume_low", "total_rows_low"),
    "sustained_drop": ("volume_low", "sustained_volume_low", "daily_volume_low", "total_rows_low"),
    "spike": ("volume_high", "sustained_volume_high", "daily_volume_high", "total_rows_high"),
    "silence": ("cadence_silence",),
}


@dataclass
class Replay:
    """The kind's state for one table: the cached model and when it was fitted."""

    commits: list[DataCommit]
    settings: AnomalyConfig
    key: str = "bench/table"  # its refit offset
    times: list[datetime] = field(init=False)
    model: VolumeModel | None = None
    fit_s: list[float] = field(default_factory=list)
    grade_s: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.times = [c.committed_at for c in self.commits]

    def upto(self, now: datetime) -> list[DataCommit]:
        return self.commits[: bisect.bisect_right(self.times, now)]

    def since(self, start: datetime, now: datetime, include_before: int = 1) -> list[DataCommit]:
        """What `commit_history(table, start, include_before=)` reads at `now`: commits at or after `start`, and
        `include_before` before it."""
        lo = max(bisect.bisect_left(self.times, start) - include_before, 0)
        return self.commits[lo : bisect.bisect_right(self.times, now)]

    def refit(self, now: datetime) -> None:
        t0 = time.perf_counter()
        self.model = refit_model(self.upto(now), now=now, settings=self.settings, interval=INTERVAL)
        self.fit_s.append(time.perf_counter() - t0)

    def check(self, now: datetime) -> tuple[bool, set[str]]:
        """One check at `now` (the kind's evaluate): refit when `refit_due`, else grade the
        commits the cached path reads. Returns (failed, finding kinds)."""
        if self.model is None or refit_due(self.key, self.model.fitted_at, now, self.settings.refit_hours):
            self.refit(now)
            recent = self.upto(now)
        else:
            yesterday = datetime.combine(now.date() - timedelta(days=1), datetime.min.time(), now.tzinfo)
            recent = self.since(min(now - INTERVAL, yesterday, self.model.through), now)
        assert self.model is not None
        t0 = time.perf_counter()
        outcome = grade(self.model, recent, now=now, settings=self.settings, interval=INTERVAL)
        self.grade_s.append(time.perf_counter() - t0)
        return outcome.status is CheckStatus.FAIL, {f.kind for f in outcome.findings}


@dataclass(frozen=True)
class Baseline:
    """Fixed thresholds: 0.5x / 2x the mean rows per commit of the first 14 days; a 2-hour freshness SLA."""

    mean: float
    sla: timedelta = timedelta(hours=2)

    @classmethod
    def of(cls, commits: Sequence[DataCommit]) -> Baseline:
        first = [c.added_records or 0 for c in commits if c.committed_at < START + timedelta(days=14)]
        return cls(statistics.fmean(first))

    def check(self, replay: Replay, now: datetime) -> tuple[bool, set[str]]:
        seen = replay.since(now - INTERVAL, now, include_before=0)
        seen = [c for c in seen if c.committed_at > now - INTERVAL]
        kinds: set[str] = set()
        for c in seen:
            rows = c.added_records or 0
            if rows < 0.5 * self.mean:
                kinds.add("volume_low")
            elif rows > 2.0 * self.mean:
                kinds.add("volume_high")
        newest = bisect.bisect_right(replay.times, now)  # the commits up to now, without copying them
        if newest and now - replay.times[newest - 1] > self.sla:
            kinds.add("cadence_silence")
        return bool(kinds), kinds


def grid(start: datetime, end: datetime) -> list[datetime]:
    """The checks' times (every 30 minutes on :00 and :30) in [start, end)."""
    first = start.replace(minute=0, second=0, microsecond=0)
    while first < start:
        first += INTERVAL
    out = []
    t = first
    while t < end:
        out.append(t)
        t += INTERVAL
    return out


def clean(seeds: Sequence[int], days: int, settings: AnomalyConfig, shape: Shape) -> dict[str, Any]:
    """False alarms on clean histories, the check's and the baseline's, young (days 1-14) and mature (15+)."""
    acc: dict[str, dict[str, Any]] = {
        who: {"young": [0, 0], "mature": [0, 0], "kinds": Counter()} for who in ("floe", "baseline")
    }
    fit_s: list[float] = []
    grade_s: list[float] = []
    for seed in seeds:
        commits = hourly_history(days, seed, shape)
        replay = Replay(commits, settings)
        base = Baseline.of(commits)
        for now in grid(START + timedelta(days=1), START + timedelta(days=days)):
            age = "young" if now < START + timedelta(days=14) else "mature"
            for who, run in (("floe", replay.check), ("baseline", partial(base.check, replay))):
                failed, kinds = run(now)
                acc[who][age][0] += 1
                acc[who][age][1] += failed
                if failed and age == "mature":
                    acc[who]["kinds"].update(kinds)
        n = len(replay.fit_s)
        fit_s += replay.fit_s[n // 2 :]  # the second half: a full history
        grade_s += replay.grade_s[len(replay.grade_s) // 2 :]
    out: dict[str, Any] = {}
    for who, a in acc.items():
        out[who] = {
            age: {"checks": a[age][0], "false_alarms": a[age][1], "rate_pct": 100.0 * a[age][1] / max(a[age][0], 1)}
            for age in ("young", "mature")
        }
        out[who]["mature_by_kind"] = dict(sorted(a["kinds"].items()))
    out["cost_ms"] = {
        "refit_median": 1000 * statistics.median(fit_s),
        "refit_p95": 1000 * quantile(fit_s, 0.95),
        "grade_median": 1000 * statistics.median(grade_s),
        "grade_p95": 1000 * quantile(grade_s, 0.95),
        "history_commits": days * 24,
    }
    return out


def quantile(xs: Sequence[float], q: float) -> float:
    s = sorted(xs)
    return s[min(int(q * len(s)), len(s) - 1)]


def inject(kind: str, commits: list[DataCommit], i: int) -> tuple[list[DataCommit], datetime]:
    """The history with the anomaly at commit `i`, and its onset."""
    if kind == "drop":
        return scale_commit(commits, i, 0.5), commits[i].committed_at
    if kind == "spike":
        return scale_commit(commits, i, 3.0), commits[i].committed_at
    if kind == "sustained_drop":
        out = list(commits)
        for j in range(i, min(i + 24, len(out))):
            out[j] = replace(out[j], added_records=round((out[j].added_records or 0) * 0.5))
        return retotal(out), commits[i].committed_at
    if kind == "silence":  # the onset: when the next commit was due (the table's median gap after the last one)
        gaps = [(b.committed_at - a.committed_at).total_seconds() for a, b in itertools.pairwise(commits[: i + 1])]
        return silence(commits, i, 4.0), commits[i].committed_at + timedelta(seconds=statistics.median(gaps))
    raise ValueError(kind)


def injected(seeds: Sequence[int], days: int, per_kind: int, settings: AnomalyConfig, shape: Shape) -> dict[str, Any]:
    """Detection delays of the check and the baseline for each kind of anomaly."""
    results: dict[str, dict[str, list[float | None]]] = {k: {"floe": [], "baseline": []} for k in SIDES}
    first_hour, last_hour = 20 * 24, min(days, 60) * 24 - 30  # days 21-60, room to follow
    for seed in seeds:
        clean_commits = hourly_history(days, seed, shape)
        base = Baseline.of(clean_commits)
        rng = random.Random(1000 + seed)
        for kind in SIDES:
            for n in range(per_kind):
                i = rng.randrange(first_hour, last_hour)
                commits, onset = inject(kind, clean_commits, i)
                # Each injection is its own table key, so its refits fall at their own phase; replayed from a refit
                # period before the onset, the model graded at the onset is one the kind could have.
                replay = Replay(commits, settings, key=f"bench/{seed}/{kind}/{n}")
                start = onset - INTERVAL - timedelta(hours=settings.refit_hours)
                checks = grid(start, onset + FOLLOW)
                replay.refit(checks[0])
                for who, run in (("floe", replay.check), ("baseline", partial(base.check, replay))):
                    delay = None
                    for now in checks[1:]:
                        if now < onset:
                            if who == "floe":
                                run(now)  # the cached model's refit cycle goes on before the onset
                            continue
                        failed, kinds = run(now)
                        if failed and kinds & set(SIDES[kind]):
                            delay = (now - onset).total_seconds() / 60
                            break
                    results[kind][who].append(delay)
    out: dict[str, Any] = {}
    for kind, by in results.items():
        out[kind] = {who: summarize(delays) for who, delays in by.items()}
    return out


def summarize(delays: Sequence[float | None]) -> dict[str, Any]:
    found = sorted(d for d in delays if d is not None)
    within = sum(d <= INTERVAL.total_seconds() / 60 for d in found)
    return {
        "injected": len(delays),
        "found": len(found),
        "within_interval_pct": 100.0 * within / max(len(delays), 1),
        "delay_median_min": statistics.median(found) if found else None,
        "delay_p95_min": quantile(found, 0.95) if found else None,
        "delay_max_min": found[-1] if found else None,
    }


def fmt(x: float | None, spec: str = ".0f") -> str:
    return "-" if x is None else format(x, spec)


def report(result: dict[str, Any], echo: Callable[[str], None] = print) -> None:
    echo("\nDetection (a check every 30 min; delay from the onset, minutes: median / p95 / max)")
    echo(f"{'anomaly':<16} {'floe within 1 interval':>24} {'delay':>14} {'baseline within':>17} {'delay':>14}")
    for kind, by in result["injected"].items():
        f, b = by["floe"], by["baseline"]
        echo(
            f"{kind:<16} {f['within_interval_pct']:>6.1f} % ({f['found']}/{f['injected']} found)"
            f" {fmt(f['delay_median_min']):>4} / {fmt(f['delay_p95_min'])} / {fmt(f['delay_max_min']):<4}"
            f" {b['within_interval_pct']:>8.1f} % ({b['found']}/{b['injected']})"
            f" {fmt(b['delay_median_min']):>4} / {fmt(b['delay_p95_min'])} / {fmt(b['delay_max_min'])}"
        )
    echo("\nFalse alarms on clean histories (failing checks / checks)")
    for who in ("floe", "baseline"):
        c = result["clean"][who]
        echo(
            f"{who:<9} days 15+: {c['mature']['false_alarms']}/{c['mature']['checks']} = "
            f"{c['mature']['rate_pct']:.2f} %   days 1-14: {c['young']['false_alarms']}/{c['young']['checks']} = "
            f"{c['young']['rate_pct']:.2f} %   by kind (days 15+): {c['mature_by_kind']}"
        )
    cost = result["clean"]["cost_ms"]
    echo(
        f"\nCost per check ({cost['history_commits']} commits of history, pure part): refit "
        f"{cost['refit_median']:.1f} ms (p95 {cost['refit_p95']:.1f}), cached grade {cost['grade_median']:.2f} ms "
        f"(p95 {cost['grade_p95']:.2f})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--injections", type=int, default=20, help="per kind of anomaly and seed")
    parser.add_argument("--settings", default="{}", help='AnomalyConfig fields as JSON, e.g. {"sensitivity": 5}')
    parser.add_argument(
        "--shape", default="{}", help='Shape fields as JSON (the generated tables), e.g. {"noise": 0.2}'
    )
    parser.add_argument("--quick", action="store_true", help="2 seeds x 30 days, 3 injections (smoke)")
    args = parser.parse_args(argv)
    seeds, days, per_kind = range(args.seeds), args.days, args.injections
    if args.quick:
        seeds, days, per_kind = range(2), 30, 3
    settings = AnomalyConfig(volume=True, cadence=True, **json.loads(args.settings))
    shape = Shape(**json.loads(args.shape))
    started = time.perf_counter()
    result: dict[str, Any] = {
        "seeds": len(seeds),
        "days": days,
        "injections_per_kind": per_kind * len(seeds),
        "interval_minutes": INTERVAL.total_seconds() / 60,
        "settings": settings.model_dump(mode="json"),
        "shape": asdict(shape),
        "clean": clean(seeds, days, settings, shape),
        "injected": injected(seeds, days, per_kind, settings, shape),
    }
    result["seconds"] = time.perf_counter() - started
    report(result)
    print(f"\n({result['seconds']:.0f} s)")
    print("RESULT " + json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
