"""Generated monitoring history for the SLA tests, and an independent recomputation of every report figure.

`generate()` writes what the check runner writes (check results with `score` / `ping_ok` details,
violations of several severities, incidents), deterministic for a seed: missed ticks, repeated runs,
ERROR and SKIPPED results, failure episodes, a contract with two tables, one no longer loaded.
`expected_figures()` recomputes the report from those rows in plain Python, without the library's
code: it is what `SLAReporter` must agree with (SC-005).
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from floe_monitoring_defs.models import Expectation
from floe_monitoring_defs.store import tables as t

TYPES = ("freshness", "schema_drift", "quality", "availability")
CADENCE = {"freshness": 60, "schema_drift": 240, "quality": 360, "availability": 30}
DEFAULT_TARGET = 99.0
SEVERITIES = ("info", "warning", "error", "critical")


def midnight(value: datetime) -> datetime:
    return datetime.combine(value.astimezone(UTC).date(), time.min, tzinfo=UTC)


@dataclass
class History:
    now: datetime
    first_day: datetime
    results: list[dict[str, Any]] = field(default_factory=list)
    violations: list[dict[str, Any]] = field(default_factory=list)
    incidents: list[dict[str, Any]] = field(default_factory=list)
    expectations: dict[tuple[str, str], Expectation] = field(default_factory=dict)
    _detections: list[tuple[tuple[str, str], datetime, float]] | None = None

    @property
    def contracts(self) -> list[str]:
        return sorted({r["contract_name"] for r in self.results})

    def detections(self) -> list[tuple[tuple[str, str], datetime, float]]:
        """Every FAIL whose previous result of the same (contract, type, table) was a PASS, with the delay."""
        if self._detections is None:
            series: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
            for r in self.results:
                series[(r["contract_name"], r["check_type"], r["table_name"])].append(r)
            found = []
            for (name, ctype, _), rows in series.items():
                rows.sort(key=lambda r: (r["checked_at"], uuid.UUID(r["id"])))
                for prev, cur in itertools.pairwise(rows):
                    if cur["status"] == "fail" and prev["status"] == "pass":
                        found.append(
                            ((name, ctype), cur["checked_at"], (cur["checked_at"] - prev["checked_at"]).total_seconds())
                        )
            self._detections = found
        return self._detections


def generate(seed: int, now: datetime, days: int = 34, contracts: int = 10) -> History:
    """`days` whole days of history before `now`'s day, plus `now`'s day up to `now`."""
    rnd = random.Random(seed)
    first_day = midnight(now) - timedelta(days=days)
    h = History(now=now, first_day=first_day)

    def new_id() -> str:
        return str(uuid.UUID(int=rnd.getrandbits(128), version=4))

    names = [f"contract_{i:02d}" for i in range(contracts)]
    plan: list[tuple[str, str, int, bool]] = []  # contract, type, tables, loaded
    for i, name in enumerate(names):
        tables = 2 if i == contracts - 1 else 1
        for ctype in TYPES:
            if ctype == "quality" and i == 3:
                continue  # no quality rules: not scheduled
            if ctype == "availability" and i == 5:
                continue  # no availability SLA
            target = (99.5 if i % 2 else 99.9) if ctype == "availability" else DEFAULT_TARGET
            h.expectations[(name, ctype)] = Expectation(CADENCE[ctype], tables, target)
            plan.append((name, ctype, tables, True))
    plan.append(("retired", "freshness", 1, False))  # rows in the store, no longer loaded

    for name, ctype, tables, loaded in plan:
        healthy = rnd.random() < 0.25  # no failures, errors or skips at all: within any budget
        base_fail = 0.0 if healthy else rnd.uniform(0.01, 0.25)
        odd = 0.0 if healthy else 0.01  # rate of ERROR and of SKIPPED results
        drift = rnd.choice((-0.004, 0.0, 0.004))  # failure probability change per day: trends
        for table_no in range(tables):
            table = f"shop.{name}_{table_no}"
            step = timedelta(minutes=CADENCE[ctype])
            tick = first_day
            end = now if loaded else first_day + timedelta(days=10)
            failing = False
            while tick < end:
                day_no = (tick - first_day).days
                p_fail = min(0.9, max(0.0, base_fail + drift * (day_no - days / 2)))
                runs = 0 if rnd.random() < 0.04 else (2 if rnd.random() < 0.02 else 1)
                for run in range(runs):
                    at = tick + timedelta(seconds=rnd.randint(0, 50) + 30 * run, microseconds=rnd.randint(0, 999))
                    if rnd.random() < 0.02:
                        at = tick  # exactly on the tick: midnight rows belong to their own day
                    if at >= now:
                        continue
                    r = rnd.random()
                    if r < odd:
                        status = "error"
                    elif r < 2 * odd:
                        status = "skipped"
                    else:
                        failing = rnd.random() < (0.6 if failing else p_fail)
                        status = "fail" if failing else "pass"
                    _add_result(h, rnd, new_id, name, ctype, table, status, at)
                tick += step

    for name in names:
        for ctype in ("freshness", "availability", "quality"):
            for n in range(rnd.randint(0, 4)):
                created = first_day + timedelta(seconds=rnd.randint(0, int((now - first_day).total_seconds())))
                resolved: datetime | None = created + timedelta(seconds=rnd.randint(60, 8 * 3600))
                if n == 0 and rnd.random() < 0.3:
                    resolved = None  # still open (one open incident per contract and type at most)
                if resolved is not None and resolved >= now:
                    continue
                h.incidents.append(
                    {
                        "id": new_id(),
                        "contract_name": name,
                        "violation_type": ctype,
                        "status": "open" if resolved is None else "resolved",
                        "priority": "P2",
                        "severity": "error",
                        "title": f"{ctype} violation on {name}",
                        "violation_count": 1,
                        "last_violation_id": None,
                        "created_at": created,
                        "updated_at": resolved or created,
                        "resolved_at": resolved,
                    }
                )
    return h


def _add_result(
    h: History, rnd: random.Random, new_id: Any, name: str, ctype: str, table: str, status: str, at: datetime
) -> None:
    rid = new_id()
    details: dict[str, Any] = {"table": table}
    if ctype == "quality" and status in ("pass", "fail"):
        details["score"] = round(rnd.uniform(0.6, 1.0) if status == "pass" else rnd.uniform(0.0, 0.8), 6)
        details["rules_evaluated"] = 5
    if ctype == "availability" and status in ("pass", "fail"):
        ok = rnd.random() < (0.4 if status == "fail" else 0.97)
        details.update({"ping_ok": ok, "uptime_pct": 99.5, "latency_ms": 12.5, "reason": None if ok else "timeout"})
    if status == "error":
        details["reason"] = "catalog unreachable"
    if status == "skipped":
        details["reason"] = "the quality engine is not installed"
    h.results.append(
        {
            "id": rid,
            "contract_name": name,
            "check_type": ctype,
            "status": status,
            "duration_seconds": round(rnd.uniform(0.005, 2.0), 6),
            "checked_at": at,
            "details": details,
            "violation": None,
            "created_at": at,
            "table_name": table,
        }
    )
    severities: list[str] = []
    if status == "fail":
        severities = [rnd.choice(("warning", "error", "critical")) for _ in range(rnd.randint(1, 3))]
    elif status == "pass" and rnd.random() < 0.05:
        severities = ["info"]  # an early warning on a passing check
    for sev in severities:
        h.violations.append(
            {
                "id": new_id(),
                "contract_name": name,
                "contract_version": "1.0.0",
                "violation_type": ctype,
                "severity": sev,
                "message": f"{ctype} {sev} on {table}",
                "element": None,
                "expected_value": None,
                "actual_value": None,
                "affected_consumers": [],
                "detected_at": at,
                "check_result_id": rid,
                "check_duration_seconds": 0.1,
                "metadata": {},
            }
        )


def write(url: str, h: History, chunk: int = 5000) -> None:
    """Insert the rows straight into the (migrated) store, in chunks."""
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            for table, rows in (
                (t.contract_check_results, h.results),
                (t.contract_violations, h.violations),
                (t.incidents, h.incidents),
            ):
                for i in range(0, len(rows), chunk):
                    conn.execute(table.insert(), rows[i : i + chunk])
    finally:
        engine.dispose()


# -- independent recomputation ------------------------------------------------------------------------


def _pct(num: float, den: float) -> float | None:
    return None if den == 0 else num / den * 100.0


def _ticks(interval: int, start: datetime, end: datetime) -> int:
    step = interval * 60
    return math.ceil(end.timestamp() / step) - math.ceil(start.timestamp() / step)


@dataclass
class Figures:
    total: int = 0
    passed: int = 0
    failed: int = 0
    error: int = 0
    skipped: int = 0
    durations: list[float] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    pings: list[bool] = field(default_factory=list)
    severities: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SEVERITIES, 0))
    expected: int | None = None
    covered: int = 0
    delays: list[float] = field(default_factory=list)

    @property
    def evaluated(self) -> int:
        return self.total - self.skipped

    @property
    def compliance(self) -> float:
        return 0.0 if self.evaluated == 0 else self.passed / self.evaluated * 100.0

    @property
    def coverage(self) -> float | None:
        return None if not self.expected else min(100.0, self.covered / self.expected * 100.0)

    @property
    def uptime(self) -> float | None:
        return _pct(sum(self.pings), len(self.pings))

    @property
    def violations(self) -> int:
        return sum(self.severities.values())


def figures(h: History, start: datetime, end: datetime, contract: str | None = None) -> dict[tuple[str, str], Figures]:
    """Per (contract, type) over [start, end) from the raw rows; coverage per day as the spec defines it."""
    out: dict[tuple[str, str], Figures] = defaultdict(Figures)
    per_day: dict[tuple[str, str, datetime], int] = defaultdict(int)
    for r in h.results:
        if not (start <= r["checked_at"] < end) or (contract and r["contract_name"] != contract):
            continue
        f = out[(r["contract_name"], r["check_type"])]
        f.total += 1
        attr = {"pass": "passed", "fail": "failed", "error": "error", "skipped": "skipped"}[r["status"]]
        setattr(f, attr, getattr(f, attr) + 1)
        f.durations.append(r["duration_seconds"])
        if r["check_type"] == "quality" and "score" in r["details"]:
            f.scores.append(r["details"]["score"])
        if r["check_type"] == "availability" and "ping_ok" in r["details"]:
            f.pings.append(r["details"]["ping_ok"])
        per_day[(r["contract_name"], r["check_type"], midnight(r["checked_at"]))] += 1
    for v in h.violations:
        if start <= v["detected_at"] < end and not (contract and v["contract_name"] != contract):
            out[(v["contract_name"], v["violation_type"])].severities[v["severity"]] += 1
    # Coverage: every day (or today's part) of the period, min(executed, expected).
    for key, exp in h.expectations.items():
        if contract and key[0] != contract:
            continue
        day = midnight(start)
        while day < end:
            lo, hi = max(day, start), min(day + timedelta(days=1), end)
            expected = exp.tables * _ticks(exp.interval_minutes or 0, lo, hi)
            executed = per_day.get((*key, day), 0)
            f = out[key]
            f.expected = (f.expected or 0) + expected
            f.covered += min(executed, expected)
            day += timedelta(days=1)
    # MTTD: FAIL right after a PASS of the same series (series looked at over the whole history).
    for (name, ctype), failed_at, delay in h.detections():
        if start <= failed_at < end and not (contract and name != contract):
            out[(name, ctype)].delays.append(delay)
    return dict(out)


def resolutions(h: History, start: datetime, end: datetime) -> dict[tuple[str, str], list[float]]:
    out: dict[tuple[str, str], list[float]] = defaultdict(list)
    for i in h.incidents:
        if i["resolved_at"] is not None and start <= i["resolved_at"] < end:
            out[(i["contract_name"], i["violation_type"])].append((i["resolved_at"] - i["created_at"]).total_seconds())
    return dict(out)


def slope(values: Sequence[float | None]) -> float | None:
    ys = [v for v in values if v is not None]
    if len(ys) < 2:
        return None
    return statistics.linear_regression(list(range(len(ys))), ys).slope


def trend(values: Sequence[float | None]) -> str:
    s = slope(values)
    if s is None:
        return "stable"
    return "improving" if s >= 2.0 else "degrading" if s <= -2.0 else "stable"


def merged(parts: Iterable[Figures]) -> Figures:
    out = Figures()
    for f in parts:
        out.total += f.total
        out.passed += f.passed
        out.failed += f.failed
        out.error += f.error
        out.skipped += f.skipped
        out.durations += f.durations
        out.scores += f.scores
        out.pings += f.pings
        for s in SEVERITIES:
            out.severities[s] += f.severities[s]
        if f.expected is not None:
            out.expected = (out.expected or 0) + f.expected
        out.covered += f.covered
        out.delays += f.delays
    return out
