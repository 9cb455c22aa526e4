"""Every row of issue 15's table in one run: floe beside its anchor, measured in the same run, ratio, target, met.

Each benchmark runs as its own subprocess (a fresh interpreter, the machine otherwise as it is) with a controlled
environment (the caller's FLOE_*, DAGSTER_HOME, OTEL_*, OPENLINEAGE* and PYICEBERG_* variables removed), and its
last `RESULT {json}` line is read:

* definitions, 1,000 contracts (defs_load.py): build + validate_loadable with a warm contract cache, against
  Dagster's built-in freshness + schema-change checks on the same keys; target <= 1.0x.
* definitions, 10,000 contracts (defs_load.py): the same; target < 30 s.
* code-server snapshot, 10,000 contracts (defs_load.py): the RepositorySnap serialized, full and deferred (what
  the webserver asks for), against the built-ins'; target < 40 MB (judged on the deferred one).
* freshness run, per check (check_run.py): floe's checks job against a trivial multi_asset_check on the same
  executor and instance; target <= 1.2x, wall and CPU.
* quality, 10M rows, 5 rules (quality_run.py): floe's quality check against DuckDB `read_parquet` on the table's
  planned files; target <= 1.0x, wall and memory.
* SLA 90-day report, 1,000 contracts, PostgreSQL (sla.py): `floe sla report`'s computation, against one GROUP BY
  of 3 sums; target < 0.2 s.
* freshness from metadata (freshness_metadata.py): the last update from manifests, against a scan of the column;
  targets >= 10x faster, and flat in files.
* volume backtest (volume_backtest.py, issue 17): a 50 % drop, a 3x spike, a sustained drop and a 4-hour silence
  injected into generated 60-day histories, found within one check interval, beside fixed thresholds; and the
  false-alarm rate on clean histories; target < 1 % of checks.
* volume run, 1,000 tables (volume_run.py, issue 17): the volume check's steady-state run (and its refits
  amortized) against a freshness run over the same tables; target <= 1.2x, and table metadata the only file read.

`--quick` runs every script at smoke sizes (CI runs it so the scripts and this table keep working; figures at those
sizes are not judged, and the table says so). Without it, the issue's sizes: about 25-35 minutes on 2 cores.

    .venv/bin/python benchmarks/run_all.py            # the issue's sizes
    .venv/bin/python benchmarks/run_all.py --quick    # smoke sizes (~2 min)
    .venv/bin/python benchmarks/run_all.py --only quality,sla

Each script's full output is kept in `--log-dir` (default: a new temporary directory, printed). The last line is
`RESULT {json}`: the rows as printed. Nothing here asserts a time; a script that fails is reported and the others
still run (exit status 1).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DROPPED_PREFIXES = ("FLOE_", "OTEL_", "OPENLINEAGE", "PYICEBERG_")
DROPPED = ("DAGSTER_HOME",)


@dataclass(frozen=True)
class Row:
    what: str
    floe: str
    anchor: str
    ratio: str
    target: str
    met: str  # "met" | "NOT met" | "not judged" (quick sizes) | "failed"


@dataclass(frozen=True)
class Bench:
    name: str
    script: str
    full: tuple[str, ...]
    quick: tuple[str, ...]
    rows: Callable[[dict[str, Any], bool], list[Row]]


def _x(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def _met(ok: bool, quick: bool) -> str:
    if quick:
        return "not judged"
    return "met" if ok else "NOT met"


def defs_rows(result: dict[str, Any], quick: bool) -> list[Row]:
    sizes = result["sizes"]
    small_n, large_n = sorted(sizes, key=int)[0], sorted(sizes, key=int)[-1]
    small, large = sizes[small_n], sizes[large_n]
    n_s, n_l = f"{int(small_n):,}", f"{int(large_n):,}"
    return [
        Row(
            f"definitions, {n_s} contracts (build + validate_loadable)",
            f"{small['floe_s']:.2f} s (cold cache {small['floe_cold_s']:.2f} s)",
            f"built-ins {small['builtins_s']:.2f} s",
            _x(small["floe_s"], small["builtins_s"]),
            "<= 1.0x",
            _met(small["floe_s"] <= small["builtins_s"], quick),
        ),
        Row(
            f"definitions, {n_l} contracts",
            f"{large['floe_s']:.1f} s (cold cache {large['floe_cold_s']:.1f} s)",
            f"built-ins {large['builtins_s']:.1f} s",
            _x(large["floe_s"], large["builtins_s"]),
            "< 30 s",
            _met(large["floe_s"] < 30.0, quick),
        ),
        Row(
            f"code-server snapshot, {n_l} contracts (full / deferred)",
            f"{large['floe_snapshot_mb']:.1f} / {large['floe_grpc_snapshot_mb']:.1f} MB",
            f"built-ins {large['builtins_snapshot_mb']:.1f} / {large['builtins_grpc_snapshot_mb']:.1f} MB",
            f"{_x(large['floe_snapshot_mb'], large['builtins_snapshot_mb'])} / "
            f"{_x(large['floe_grpc_snapshot_mb'], large['builtins_grpc_snapshot_mb'])}",
            "< 40 MB",
            _met(large["floe_grpc_snapshot_mb"] < 40.0, quick),
        ),
    ]


def check_rows(result: dict[str, Any], quick: bool) -> list[Row]:
    wall, cpu = result["floe_ms"] / result["anchor_ms"], result["floe_cpu_ms"] / result["anchor_cpu_ms"]
    return [
        Row(
            "freshness run, per check (wall / CPU)",
            f"{result['floe_ms']:.1f} / {result['floe_cpu_ms']:.1f} ms",
            f"trivial multi_asset_check {result['anchor_ms']:.1f} / {result['anchor_cpu_ms']:.1f} ms",
            f"{wall:.2f}x / {cpu:.2f}x",
            "<= 1.2x",
            _met(wall <= 1.2 and cpu <= 1.2, quick),
        )
    ]


def quality_rows(result: dict[str, Any], quick: bool) -> list[Row]:
    wall, mem = result["floe_s"] / result["anchor_s"], result["floe_mb"] / max(result["anchor_mb"], 1e-9)
    return [
        Row(
            "quality, 5 rules (wall, memory)",
            f"{result['floe_s']:.2f} s, {result['floe_mb']:.0f} MB",
            f"DuckDB read_parquet {result['anchor_s']:.2f} s, {result['anchor_mb']:.0f} MB",
            f"{wall:.2f}x, {mem:.2f}x",
            "<= 1.0x",
            _met(wall <= 1.0 and mem <= 1.0, quick),
        )
    ]


def sla_rows(result: dict[str, Any], quick: bool) -> list[Row]:
    return [
        Row(
            "SLA 90-day report, all contracts (PostgreSQL)",
            f"{result['report_s']:.3f} s (before issue 15 {result['report_before_s']:.3f} s)",
            f"one GROUP BY {result['anchor_s']:.3f} s",
            _x(result["report_s"], result["anchor_s"]),
            "< 0.2 s",
            _met(result["report_s"] < 0.2 and bool(result["agree"]), quick),
        )
    ]


def freshness_rows(result: dict[str, Any], quick: bool) -> list[Row]:
    layouts = result["layouts"]
    files = sorted(layouts, key=int)
    first, last = layouts[files[0]], layouts[files[-1]]
    return [
        Row(
            f"freshness from metadata, {files[0]} files (first run / next run)",
            f"{first['floe_cold_ms']:.1f} / {first['floe_next_run_ms']:.1f} ms",
            f"scan of the column {first['anchor_ms']:.1f} ms",
            f"{first['anchor_ms'] / first['floe_cold_ms']:.1f}x / "
            f"{first['anchor_ms'] / first['floe_next_run_ms']:.0f}x faster",
            ">= 10x faster",
            _met(result["speedup_cold"] >= 10.0 and bool(result["agree"]), quick),
        ),
        Row(
            f"freshness, {files[0]} -> {files[-1]} files (next run)",
            f"{first['floe_next_run_ms']:.1f} -> {last['floe_next_run_ms']:.1f} ms",
            f"scan {first['anchor_ms']:.0f} -> {last['anchor_ms']:.0f} ms",
            f"{result['flat_ratio']:.2f}x",
            "flat (<= 2x)",
            _met(result["flat_ratio"] <= 2.0 and bool(result["agree"]), quick),
        ),
    ]


def backtest_rows(result: dict[str, Any], quick: bool) -> list[Row]:
    rows = []
    names = {
        "drop": "50 % drop of one commit",
        "spike": "3x spike of one commit",
        "sustained_drop": "50 % drop for 24 h",
        "silence": "4 h silence (from when the next commit was due)",
    }
    for kind, what in names.items():
        f, b = result["injected"][kind]["floe"], result["injected"][kind]["baseline"]
        rows.append(
            Row(
                f"volume backtest: {what}",
                f"{f['within_interval_pct']:.1f} % within 1 interval, {f['found']}/{f['injected']} found, delay "
                f"median {f['delay_median_min']:.0f} / max {f['delay_max_min']:.0f} min",
                f"fixed thresholds {b['within_interval_pct']:.1f} %, {b['found']}/{b['injected']} found",
                "-",
                "found within 1 interval",
                _met(f["within_interval_pct"] == 100.0, quick),
            )
        )
    f, b = result["clean"]["floe"]["mature"], result["clean"]["baseline"]["mature"]
    young = result["clean"]["floe"]["young"]
    rows.append(
        Row(
            "volume backtest: false alarms, clean history (days 15+)",
            f"{f['rate_pct']:.2f} % of {f['checks']:,} checks (days 1-14: {young['rate_pct']:.2f} %)",
            f"fixed thresholds {b['rate_pct']:.2f} %",
            "-",
            "< 1 % of checks",
            _met(f["rate_pct"] < 1.0, quick),
        )
    )
    return rows


def volume_run_rows(result: dict[str, Any], quick: bool) -> list[Row]:
    n = int(result["tables"])
    per = 1.0 / n
    opened = result["opens"]["volume"]
    others = sum(v for k, v in opened.items() if k != "table_metadata")
    return [
        Row(
            f"volume run, {n:,} tables x {result['days']} days of hourly snapshots (steady / amortized refits)",
            f"{result['volume_ms'] * per:.1f} / {result['amortized_ms'] * per:.1f} ms per table "
            f"(all refit at once {result['refit_ms'] * per:.1f}, bootstrap {result['bootstrap_ms'] * per:.1f})",
            f"freshness run {result['freshness_ms'] * per:.1f} ms per table",
            f"{result['ratio']:.2f}x / {result['amortized_ratio']:.2f}x",
            "<= 1.2x",
            _met(result["ratio"] <= 1.2 and result["amortized_ratio"] <= 1.2, quick),
        ),
        Row(
            "volume run, files opened per table",
            f"table metadata {opened['table_metadata'] / n:.0f}, anything else {others}",
            "-",
            "-",
            "no manifest list, manifest or data file",
            _met(bool(result["volume_metadata_only"]), quick),
        ),
    ]


BENCHES = (
    Bench("defs", "defs_load.py", ("--sizes", "1000,10000"), ("--sizes", "20,50"), defs_rows),
    Bench("checks", "check_run.py", (), ("--tables", "20", "--repeat", "1"), check_rows),
    Bench(
        "quality",
        "quality_run.py",
        ("--rows", "10000000", "--files", "10", "--no-baseline"),
        ("--rows", "50000", "--repeat", "1", "--no-baseline"),
        quality_rows,
    ),
    Bench("sla", "sla.py", (), ("--contracts", "20", "--repeat", "1"), sla_rows),
    Bench(
        "freshness",
        "freshness_metadata.py",
        (),
        ("--rows", "100000", "--files", "4,16", "--repeat", "2"),
        freshness_rows,
    ),
    Bench("backtest", "volume_backtest.py", (), ("--quick",), backtest_rows),
    Bench("volume", "volume_run.py", (), ("--tables", "20", "--repeat", "1"), volume_run_rows),
)


def child_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment without what would point a benchmark at the caller's stores or exporters."""
    return {k: v for k, v in environ.items() if not k.startswith(DROPPED_PREFIXES) and k not in DROPPED}


def last_result(stdout: str) -> dict[str, Any]:
    lines = [ln for ln in stdout.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        raise ValueError("printed no RESULT line")
    return dict(json.loads(lines[-1][len("RESULT ") :]))


def run(bench: Bench, quick: bool, log_dir: Path) -> tuple[list[Row], float]:
    args = bench.quick if quick else bench.full
    log = log_dir / f"{bench.name}.log"
    t0 = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.run(
            [sys.executable, str(HERE / bench.script), *args],
            cwd=ROOT,
            env=child_env(os.environ),
            stdout=subprocess.PIPE,
            stderr=out,
            text=True,
            check=False,
        )
        out.write(proc.stdout)
    took = time.perf_counter() - t0
    failed = Row(bench.name, "-", "-", "-", "-", "failed")
    if proc.returncode != 0:
        print(f"  {bench.script} exited {proc.returncode} (see {log})", flush=True)
        return [failed], took
    try:
        return bench.rows(last_result(proc.stdout), quick), took
    except (ValueError, KeyError, TypeError, ZeroDivisionError) as exc:
        print(f"  {bench.script}: unreadable result ({type(exc).__name__}: {exc}; see {log})", flush=True)
        return [failed], took


def render(rows: list[Row]) -> str:
    head = Row("what", "floe", "anchor", "ratio", "target", "met")
    table = [head, *rows]
    widths = [max(len(getattr(r, f)) for r in table) for f in asdict(head)]
    lines = []
    for i, r in enumerate(table):
        lines.append(" | ".join(str(v).ljust(w) for v, w in zip(asdict(r).values(), widths, strict=True)).rstrip())
        if i == 0:
            lines.append("-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smoke sizes: the scripts run, figures not judged")
    parser.add_argument("--only", default="", help="comma-separated subset of: " + ",".join(b.name for b in BENCHES))
    parser.add_argument("--log-dir", type=Path, help="where each script's output is kept (default: a temp dir)")
    args = parser.parse_args(argv)
    wanted = {x.strip() for x in args.only.split(",") if x.strip()}
    unknown = wanted - {b.name for b in BENCHES}
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {[b.name for b in BENCHES]}")
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="floe-bench-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"benchmarks ({'quick sizes' if args.quick else 'the issue sizes'}); logs in {log_dir}", flush=True)
    rows: list[Row] = []
    for bench in BENCHES:
        if wanted and bench.name not in wanted:
            continue
        print(f"- {bench.script} {' '.join(bench.quick if args.quick else bench.full)}", flush=True)
        got, took = run(bench, args.quick, log_dir)
        print(f"  done in {took:.0f} s", flush=True)
        rows.extend(got)
    print()
    print(render(rows))
    print("RESULT " + json.dumps([asdict(r) for r in rows]), flush=True)
    return 1 if any(r.met == "failed" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
