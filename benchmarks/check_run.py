"""Wall time of one freshness run over many real Iceberg tables, and what each table costs.

Setup (not timed): a local pyiceberg `SqlCatalog` named "bench" (SQLite catalog, file warehouse) in a
temporary directory with N tables (default 240) of a few hundred rows each and a timestamptz
`updated_at` column (about one table in ten is stale against its 6-hour SLA, so violations are
written too), one strict ODCS contract (YAML) per table whose iceberg server names the catalog, and
`PYICEBERG_CATALOG__BENCH__TYPE/URI/WAREHOUSE` in the environment.

Measured, each in a fresh Python subprocess (imports not timed, every run with its own
`DAGSTER_HOME` holding a copy of the project's dagster.yaml; `FLOE_MONITORING_DB_URL=sqlite:///<tmp>/...db`
is one store per path and size, kept across its runs, after one untimed warm-up run: the steady state of a
scheduled deployment, whose store holds history and the manifest bounds earlier runs read; `--cold` measures
first runs on empty stores instead):

* floe: `floe_monitoring_defs.cli.run_checks(None, "freshness")`, the project's in-process path:
  build the Definitions (parse the contracts), then execute the freshness job on the SQLite Dagster
  instance. Reported as the whole wall time, and split into "load defs" (`build_defs`: parse the
  contract files, and restore contracts registered in the store) and
  "job execution" (`execute_in_process`), with the number of Dagster steps (one per <= 500 checks).
  Run at N/2 and N tables: the difference divided by N/2 is the marginal cost per table.
* core only (baseline): `CheckPipeline(IcebergSource(), store, MonitoringConfig()).run(FRESHNESS, targets)`
  with no Dagster at all, at the same two sizes.
* anchor: ONE trivial `@dg.multi_asset_check` over the same tables (a passing result per check, nothing read or
  written), executed in-process on the same kind of instance and executor: what Dagster itself costs per check.
  The final `RESULT {...}` line gives floe's and the anchor's per-check wall and CPU (ms) at the full size, job
  execution only; the target is floe <= 1.2x the anchor.
* one op per check (baseline): a job of M separate single `@dg.asset_check`s (default M = N/2, and M/2),
  each running the core runner for its one table with the project's resources, executed in-process on
  the same kind of instance: what the same work costs when every table is its own Dagster step.

The claim it examines: a run's cost grows with the tables read, not with the processes or steps started.
Timings are printed, never asserted. Runs are interleaved and repeated (`--repeat`, default 2); the fastest
execution per path and size is kept, because other work on a 2-core machine mostly adds time.

Run from the repository root:

    /work/venv/bin/python benchmarks/check_run.py                            # 240 tables (~2 min, 2 cores)
    /work/venv/bin/python benchmarks/check_run.py --tables 20 --repeat 1        # CI smoke test (~20 s)
    /work/venv/bin/python benchmarks/check_run.py --tables 500 --op-tables 40   # larger run, cheaper baseline
"""

# No `from __future__ import annotations`: Dagster reads the resource annotations of the locally defined
# asset checks at decoration time, and string annotations of local imports would not resolve.
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

CATALOG = "bench"  # no underscore: pyiceberg turns `_` into `-` in catalog names read from the env
RESULT_PREFIX = "BENCH_RESULT "
STALE_EVERY = 10
PROJECT_DAGSTER_YAML = Path(__file__).resolve().parent.parent / "floe_monitoring_defs" / "dagster.yaml"


def namespace(i: int) -> str:
    return f"bench_ns_{i // 100}"


def table_name(i: int) -> str:
    return f"t_{i}"


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def catalog_db(self) -> Path:
        return self.root / "catalog.db"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse"

    def contracts(self, n: int) -> Path:
        return self.root / f"contracts_{n}"

    def catalog_env(self) -> dict[str, str]:
        prefix = f"PYICEBERG_CATALOG__{CATALOG.upper()}__"
        return {
            f"{prefix}TYPE": "sql",
            f"{prefix}URI": f"sqlite:///{self.catalog_db}",
            f"{prefix}WAREHOUSE": f"file://{self.warehouse}",
        }


# ---------------------------------------------------------------------------------------------
# Setup: warehouse and contracts


def build_warehouse(layout: Layout, n: int, rows: int) -> None:
    import pyarrow as pa
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.schema import Schema
    from pyiceberg.types import BooleanType, DoubleType, LongType, NestedField, StringType, TimestamptzType

    layout.warehouse.mkdir(parents=True, exist_ok=True)
    catalog = SqlCatalog(CATALOG, uri=f"sqlite:///{layout.catalog_db}", warehouse=f"file://{layout.warehouse}")
    schema = Schema(
        NestedField(1, "id", LongType(), required=True),
        NestedField(2, "name", StringType(), required=False),
        NestedField(3, "amount", DoubleType(), required=False),
        NestedField(4, "is_active", BooleanType(), required=False),
        NestedField(5, "updated_at", TimestamptzType(), required=True),
        identifier_field_ids=[1],
    )
    now = datetime.now(UTC)
    for ns in sorted({namespace(i) for i in range(n)}):
        catalog.create_namespace_if_not_exists(ns)
    for i in range(n):
        newest = timedelta(hours=9) if i % STALE_EVERY == STALE_EVERY - 1 else timedelta(minutes=5 + i % 120)
        table = catalog.create_table(f"{namespace(i)}.{table_name(i)}", schema=schema)
        table.append(
            pa.table(
                {
                    "id": list(range(rows)),
                    "name": [f"row-{i}-{r}" for r in range(rows)],
                    "amount": [r * 1.5 for r in range(rows)],
                    "is_active": [r % 3 != 0 for r in range(rows)],
                    "updated_at": [now - newest - timedelta(minutes=r) for r in range(rows)],
                },
                schema=table.schema().as_arrow(),
            )
        )


def contract_doc(i: int, layout: Layout) -> dict[str, Any]:
    """A strict ODCS v3.1.0 contract for bench table i, freshness PT6H on `updated_at`."""
    return {
        "apiVersion": "v3.1.0",
        "kind": "DataContract",
        "id": f"urn:datacontract:bench:{i}",
        "name": f"bench_contract_{i}",
        "version": "1.0.0",
        "status": "active",
        "domain": "bench",
        "servers": [
            {
                "server": "bench",
                "type": "iceberg",
                "catalog": CATALOG,
                "catalogUrl": f"sqlite:///{layout.catalog_db}",
                "warehouse": f"file://{layout.warehouse}",
                "namespace": namespace(i),
            }
        ],
        "schema": [
            {
                "name": table_name(i),
                "physicalName": table_name(i),
                "properties": [
                    {
                        "name": "id",
                        "logicalType": "integer",
                        "physicalType": "BIGINT",
                        "primaryKey": True,
                        "required": True,
                    },
                    {"name": "name", "logicalType": "string", "physicalType": "STRING"},
                    {"name": "amount", "logicalType": "number", "physicalType": "DOUBLE"},
                    {"name": "is_active", "logicalType": "boolean", "physicalType": "BOOLEAN"},
                    {"name": "updated_at", "logicalType": "timestamp", "physicalType": "TIMESTAMPTZ", "required": True},
                ],
            }
        ],
        "slaProperties": [{"property": "freshness", "value": "PT6H", "element": "updated_at"}],
    }


def write_contracts(layout: Layout, n: int) -> Path:
    directory = layout.contracts(n)
    directory.mkdir(parents=True, exist_ok=True)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    for i in range(n):
        text = yaml.dump(contract_doc(i, layout), Dumper=dumper, sort_keys=False)
        (directory / f"contract_{i:05d}.yaml").write_text(text, encoding="utf-8")
    return directory


# ---------------------------------------------------------------------------------------------
# Child side: one measured run per process


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _targets(contracts_dir: Path) -> list[Any]:
    from floe_monitoring_defs.contracts.loader import load_contracts

    report = load_contracts([contracts_dir])
    if report.errors:
        raise SystemExit(f"contracts failed to load: {report.errors[0]}")
    return [(c, t) for c in report.contracts for t in c.tables if c.freshness is not None]


def child_floe() -> dict[str, Any]:
    import dagster as dg

    import floe_monitoring_defs.cli as cli
    import floe_monitoring_defs.definitions as floe_defs

    timings = {"build_defs": 0.0, "execute": 0.0, "execute_cpu": 0.0}
    steps: list[int] = []
    original_build = floe_defs.build_defs
    original_execute = dg.JobDefinition.execute_in_process

    def timed_build(*args: Any, **kwargs: Any) -> dg.Definitions:
        started = time.perf_counter()
        try:
            return original_build(*args, **kwargs)
        finally:
            timings["build_defs"] += time.perf_counter() - started

    def timed_execute(self: dg.JobDefinition, *args: Any, **kwargs: Any) -> Any:
        started, cpu = time.perf_counter(), time.process_time()
        try:
            result = original_execute(self, *args, **kwargs)
        finally:
            timings["execute"] += time.perf_counter() - started
            timings["execute_cpu"] += time.process_time() - cpu
        steps.append(sum(1 for ev in result.all_events if ev.is_step_start))
        return result

    # run_checks imports build_defs from its module at call time and calls the job's method: wrap both to split
    # the wall time; neither wrapper changes what runs.
    floe_defs.build_defs = timed_build
    dg.JobDefinition.execute_in_process = timed_execute  # type: ignore[method-assign]
    started = time.perf_counter()
    evaluations = cli.run_checks(None, "freshness")
    wall = time.perf_counter() - started
    return {
        "wall_s": wall,
        "build_defs_s": timings["build_defs"],
        "execute_s": timings["execute"],
        "execute_cpu_s": timings["execute_cpu"],
        "checks": len(evaluations),
        "steps": sum(steps),
        "runs": len(steps),
        "failed": sum(1 for e in evaluations if not e.passed and e.status != "error"),
        "errors": sum(1 for e in evaluations if e.status == "error"),
        "peak_mb": _peak_mb(),
    }


def child_core(contracts_dir: Path) -> dict[str, Any]:
    from floe_monitoring_defs.config import MonitoringConfig
    from floe_monitoring_defs.models import CheckStatus, ViolationType
    from floe_monitoring_defs.pipeline import CheckPipeline
    from floe_monitoring_defs.sources.iceberg import IcebergSource
    from floe_monitoring_defs.store import MonitoringStore, default_db_url

    targets = _targets(contracts_dir)
    store = MonitoringStore(default_db_url())
    started = time.perf_counter()
    runs = list(CheckPipeline(IcebergSource(), store, MonitoringConfig()).run(ViolationType.FRESHNESS, targets))
    wall = time.perf_counter() - started
    store.dispose()
    return {
        "wall_s": wall,
        "execute_s": wall,
        "checks": len(runs),
        "steps": 0,
        "runs": 0,
        "failed": sum(1 for r in runs if r.result.status is CheckStatus.FAIL),
        "errors": sum(1 for r in runs if r.result.status is CheckStatus.ERROR),
        "peak_mb": _peak_mb(),
    }


def child_one_op_per_check(contracts_dir: Path) -> dict[str, Any]:
    import dagster as dg

    from floe_monitoring_defs.checks.freshness import FreshnessKind
    from floe_monitoring_defs.checks.kind import Target
    from floe_monitoring_defs.cli import _instance
    from floe_monitoring_defs.config import MonitoringConfig
    from floe_monitoring_defs.defs.assets import asset_key, table_spec
    from floe_monitoring_defs.defs.checks import to_check_result
    from floe_monitoring_defs.defs.resources import IcebergCatalogResource, MonitoringStoreResource
    from floe_monitoring_defs.models import ViolationType
    from floe_monitoring_defs.pipeline import CheckPipeline

    config = MonitoringConfig()

    def single_check(target: Target) -> dg.AssetChecksDefinition:
        @dg.asset_check(asset=asset_key(target[1]), name=ViolationType.FRESHNESS.value)
        def _check(iceberg: IcebergCatalogResource, floe_store: MonitoringStoreResource) -> dg.AssetCheckResult:
            pipeline = CheckPipeline(iceberg.source(), floe_store.store(), config)
            return to_check_result(next(iter(pipeline.run(ViolationType.FRESHNESS, [target]))), FreshnessKind)

        return _check

    targets = _targets(contracts_dir)
    t0 = time.perf_counter()
    checks = [single_check(t) for t in targets]
    job = dg.define_asset_job("one_op_per_check", selection=dg.AssetSelection.checks(*checks))
    defs = dg.Definitions(
        assets=[table_spec(c, t) for c, t in targets],
        asset_checks=checks,
        jobs=[job],
        resources={"iceberg": IcebergCatalogResource(), "floe_store": MonitoringStoreResource()},
    )
    job_def = defs.resolve_job_def("one_op_per_check")
    t1 = time.perf_counter()
    result = job_def.execute_in_process(
        instance=_instance(),
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    )
    t2 = time.perf_counter()
    evaluations = result.get_asset_check_evaluations()
    return {
        "wall_s": t2 - t0,
        "build_defs_s": t1 - t0,
        "execute_s": t2 - t1,
        "checks": len(evaluations),
        "steps": sum(1 for ev in result.all_events if ev.is_step_start),
        "runs": 1,
        "failed": sum(1 for e in evaluations if not e.passed),
        "errors": 0 if result.success else 1,
        "peak_mb": _peak_mb(),
    }


def child_anchor(contracts_dir: Path) -> dict[str, Any]:
    """The anchor: one trivial `multi_asset_check` over the same tables (a passing result per check, nothing
    read or written by it), executed in-process on the same kind of instance and executor as floe's step."""
    import dagster as dg

    from floe_monitoring_defs.cli import _instance
    from floe_monitoring_defs.defs.assets import asset_key, table_spec

    targets = _targets(contracts_dir)
    t0 = time.perf_counter()
    keys = [asset_key(t) for _, t in targets]

    @dg.multi_asset_check(
        specs=[dg.AssetCheckSpec(name="freshness", asset=k) for k in keys], name="anchor_checks", can_subset=True
    )
    def _anchor(context: dg.AssetCheckExecutionContext) -> Any:
        for key in sorted(context.selected_asset_check_keys, key=str):
            yield dg.AssetCheckResult(
                asset_key=key.asset_key, check_name=key.name, passed=True, metadata={"floe/status": "pass"}
            )

    job = dg.define_asset_job("anchor_checks_job", selection=dg.AssetSelection.checks(_anchor))
    defs = dg.Definitions(assets=[table_spec(c, t) for c, t in targets], asset_checks=[_anchor], jobs=[job])
    job_def = defs.resolve_job_def("anchor_checks_job")
    t1, cpu = time.perf_counter(), time.process_time()
    result = job_def.execute_in_process(
        instance=_instance(),
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    )
    t2, cpu2 = time.perf_counter(), time.process_time()
    evaluations = result.get_asset_check_evaluations()
    return {
        "wall_s": t2 - t0,
        "build_defs_s": t1 - t0,
        "execute_s": t2 - t1,
        "execute_cpu_s": cpu2 - cpu,
        "checks": len(evaluations),
        "steps": sum(1 for ev in result.all_events if ev.is_step_start),
        "runs": 1,
        "failed": sum(1 for e in evaluations if not e.passed),
        "errors": 0 if result.success else 1,
        "peak_mb": _peak_mb(),
    }


def child_main(mode: str, contracts_dir: Path) -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger().setLevel(logging.ERROR)
    if mode == "floe":
        result = child_floe()
    elif mode == "core":
        result = child_core(contracts_dir)
    elif mode == "anchor":
        result = child_anchor(contracts_dir)
    else:
        result = child_one_op_per_check(contracts_dir)
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# ---------------------------------------------------------------------------------------------
# Parent side


def run_child(mode: str, layout: Layout, n: int, *, cold: bool = False) -> dict[str, Any]:
    tag = f"{mode}_{n}"
    home = Path(tempfile.mkdtemp(prefix=f"dagster_home_{tag}_", dir=layout.root))
    # The monitoring store of a path and size is kept across its runs (as a deployment's is across scheduled
    # runs): its history grows and the manifest bounds read by one run are there for the next. `cold`: a new one.
    store_db = home / "floe.db" if cold else layout.root / f"floe_{tag}.db"
    if PROJECT_DAGSTER_YAML.exists():  # the project's embedded instance config (SQLite storage, telemetry off)
        shutil.copy(PROJECT_DAGSTER_YAML, home / "dagster.yaml")
    env = {
        **os.environ,
        **layout.catalog_env(),
        "FLOE_CONTRACTS_DIR": str(layout.contracts(n)),
        "DAGSTER_HOME": str(home),
        "FLOE_MONITORING_DB_URL": f"sqlite:///{store_db}",
    }
    env.pop("FLOE_MONITORING_CONFIG", None)
    env.pop("FLOE_CATALOG", None)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--dir", str(layout.contracts(n))]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-2000:] + proc.stderr[-4000:])
        raise SystemExit(f"{mode} run over {n} tables failed (exit {proc.returncode})")
    result = dict(json.loads(lines[-1][len(RESULT_PREFIX) :]))
    result["n"] = n
    if result["checks"] != n or result["errors"]:
        print(f"  WARNING: {mode} at {n} tables: {result['checks']} checks, {result['errors']} errors")
    return result


def marginal_ms(small: dict[str, Any], big: dict[str, Any], key: str) -> float:
    return (big[key] - small[key]) / max(1, big["n"] - small["n"]) * 1000


def ratio(a: float, b: float) -> str:
    """a/b, or n/a when either side is not positive (a marginal swamped by noise at small sizes)."""
    return f"{a / b:.2f}" if a > 0 and b > 0 else "n/a (noise)"


def print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for k, r in enumerate(rows):
        print("  ".join(c.rjust(widths[i]) if k and i else c.ljust(widths[i]) for i, c in enumerate(r)).rstrip())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--tables", type=int, default=240, help="tables in the full run (default 240; also runs half)")
    parser.add_argument("--rows", type=int, default=300, help="rows per table (default 300)")
    parser.add_argument(
        "--op-tables",
        type=int,
        default=None,
        help="tables for the one-op-per-check baseline (default: half of --tables; also runs half)",
    )
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs per path and size; the fastest execution is kept (default 2)"
    )
    parser.add_argument(
        "--cold",
        action="store_true",
        help="measure first runs on empty stores (default: after one untimed warm-up run on the same store)",
    )
    parser.add_argument("--child", choices=("floe", "core", "ops", "anchor"), help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(args.child, args.dir)
        return
    if args.op_tables is None:
        args.op_tables = args.tables // 2
    if args.tables < 2 or args.op_tables < 2 or args.op_tables > args.tables:
        parser.error("need 2 <= --op-tables <= --tables")

    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    big, small = args.tables, args.tables // 2
    op_big, op_small = args.op_tables, args.op_tables // 2
    print(
        f"check_run: {big} Iceberg tables x {args.rows} rows, catalog {CATALOG!r} (SQLite + file warehouse), "
        f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, {args.repeat} run(s) per path and size"
    )
    with tempfile.TemporaryDirectory(prefix="floe_check_bench_") as tmp:
        layout = Layout(Path(tmp))
        t = time.perf_counter()
        build_warehouse(layout, big, args.rows)
        for n in sorted({big, small, op_big, op_small}):
            write_contracts(layout, n)
        print(f"  setup: {big} tables and contracts in {time.perf_counter() - t:.1f} s", flush=True)

        if not args.cold:  # steady state: one untimed run first, so each measured run finds a used store
            for mode, n in sorted({("floe", small), ("floe", big), ("core", small), ("core", big)}):
                run_child(mode, layout, n)
            print("  warm-up: one untimed floe and core run per size (--cold to skip)", flush=True)
        # Interleaved (small then big, every path, each round) so drift in machine load hits all paths alike.
        plan = [
            ("core", small),
            ("floe", small),
            ("anchor", small),
            ("ops", op_small),
            ("core", big),
            ("floe", big),
            ("anchor", big),
            ("ops", op_big),
        ]
        runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for round_ in range(max(1, args.repeat)):
            for mode, n in plan:
                r = run_child(mode, layout, n, cold=args.cold)
                runs.setdefault((mode, n), []).append(r)
                print(
                    f"  round {round_ + 1} {mode:4} n={n:4}: wall {r['wall_s']:.2f} s, "
                    f"execution {r['execute_s']:.2f} s, {r['checks']} checks ({r['failed']} failing), "
                    f"{r['steps']} steps",
                    flush=True,
                )
        results = {k: min(v, key=lambda x: x["execute_s"]) for k, v in runs.items()}
        spread = max(max(x["execute_s"] for x in v) / min(x["execute_s"] for x in v) for v in runs.values())
    load_after = os.getloadavg()[0]

    print(
        f"\nLoad average (1 min) {load_before:.2f} before, {load_after:.2f} after; other work on this machine "
        "skews the numbers."
    )
    if args.repeat > 1:
        print(f"Fastest of {args.repeat} runs kept; the widest max/min spread of an execution time was {spread:.2f}.")
    print("ms/table = wall / tables; marginal = extra wall per extra table between the two sizes (fixed costs cancel).")
    rows: list[tuple[str, ...]] = [
        ("path", "tables", "wall s", "ms/table", "marginal ms/table", "steps", "checks", "peak MB"),
    ]
    labels = [
        ("floe run_checks, total", "floe", "wall_s"),
        ("  of which load defs", "floe", "build_defs_s"),
        ("  of which job execution", "floe", "execute_s"),
        ("core only (no Dagster)", "core", "wall_s"),
        ("one op per check, execution", "ops", "execute_s"),
        ("anchor: trivial multi_asset_check", "anchor", "execute_s"),
    ]
    sizes = {"floe": (small, big), "core": (small, big), "ops": (op_small, op_big), "anchor": (small, big)}
    for label, mode, key in labels:
        lo, hi = (results[(mode, n)] for n in sizes[mode])
        for r in (lo, hi):
            rows.append(
                (
                    label,
                    str(r["n"]),
                    f"{r[key]:.2f}",
                    f"{r[key] / r['n'] * 1000:.1f}",
                    f"{marginal_ms(lo, hi, key):.1f}" if r is hi else "",
                    str(r["steps"]) if key in ("wall_s", "execute_s") else "",
                    str(r["checks"]),
                    f"{r['peak_mb']:.0f}"
                    if (key in ("wall_s", "execute_s") and mode != "floe") or key == "wall_s"
                    else "",
                )
            )
    print_table(rows)

    floe_hi, core_hi, ops_hi = results[("floe", big)], results[("core", big)], results[("ops", op_big)]
    floe_exec = marginal_ms(results[("floe", small)], floe_hi, "execute_s")
    floe_wall = marginal_ms(results[("floe", small)], floe_hi, "wall_s")
    core = marginal_ms(results[("core", small)], core_hi, "wall_s")
    ops = marginal_ms(results[("ops", op_small)], ops_hi, "execute_s")
    print(
        f"\nRun at {big} tables: {floe_hi['wall_s']:.2f} s wall, {floe_hi['wall_s'] / big * 1000:.1f} ms per table, "
        f"{floe_hi['steps']} Dagster step(s) in {floe_hi['runs']} run(s) for {floe_hi['checks']} checks."
    )
    print(
        f"Linear growth: wall {results[('floe', small)]['wall_s']:.2f} s at {small} -> {floe_hi['wall_s']:.2f} s "
        f"at {big} tables (x{floe_hi['wall_s'] / results[('floe', small)]['wall_s']:.2f} for x{big / small:.2f} "
        f"tables); job execution x{floe_hi['execute_s'] / results[('floe', small)]['execute_s']:.2f}."
    )
    rows = [
        ("marginal cost per table", "ms", "vs core only"),
        ("core only (no Dagster)", f"{core:.1f}", ratio(core, core)),
        ("floe job execution (1 step / <=500 checks)", f"{floe_exec:.1f}", ratio(floe_exec, core)),
        ("floe run_checks incl. loading the contract", f"{floe_wall:.1f}", ratio(floe_wall, core)),
        ("one op per check, in-process execution", f"{ops:.1f}", ratio(ops, core)),
    ]
    print()
    print_table(rows)
    same = sorted({small, big} & {op_small, op_big})
    for n in same:
        f_run, o_run = results[("floe", n)], results[("ops", n)]
        print(
            f"Same {n} tables: one op per check executes in {o_run['execute_s']:.2f} s ({o_run['steps']} steps), "
            f"floe in {f_run['execute_s']:.2f} s ({f_run['steps']} step): "
            f"{(o_run['execute_s'] - f_run['execute_s']) / n * 1000:+.1f} ms per table, "
            f"ratio {o_run['execute_s'] / f_run['execute_s']:.2f}."
        )
    print(
        f"One op per check, in-process: {ops:.1f} ms per table against {floe_exec:.1f} ms for floe's job execution "
        f"(ratio {ratio(ops, floe_exec)}); it needs {ops_hi['steps']} steps for {op_big} tables where floe needs "
        f"{floe_hi['steps']} for {big}."
    )
    print(
        "Not measured here: with Dagster's default multiprocess executor every step is also a new process "
        "(about 1 s each on this kind of machine, per DESIGN)."
    )
    # Per check at the full size, floe's job execution against the anchor's (same executor, same kind of instance,
    # same tables): wall and CPU of the executing process (threads included).
    anchor_hi = results[("anchor", big)]
    per = {
        "floe_ms": floe_hi["execute_s"] / max(1, floe_hi["checks"]) * 1000,
        "floe_cpu_ms": floe_hi["execute_cpu_s"] / max(1, floe_hi["checks"]) * 1000,
        "anchor_ms": anchor_hi["execute_s"] / max(1, anchor_hi["checks"]) * 1000,
        "anchor_cpu_ms": anchor_hi["execute_cpu_s"] / max(1, anchor_hi["checks"]) * 1000,
    }
    print(
        f"\nPer check at {big} tables (job execution): floe {per['floe_ms']:.1f} ms wall / {per['floe_cpu_ms']:.1f} ms "
        f"CPU; anchor (trivial multi_asset_check, same executor and instance) {per['anchor_ms']:.1f} ms wall / "
        f"{per['anchor_cpu_ms']:.1f} ms CPU; ratio {ratio(per['floe_ms'], per['anchor_ms'])} wall / "
        f"{ratio(per['floe_cpu_ms'], per['anchor_cpu_ms'])} CPU (target <= 1.2x)."
    )
    print(f"Total benchmark time {time.perf_counter() - started:.0f} s.")
    print("RESULT " + json.dumps({k: round(v, 3) for k, v in per.items()}), flush=True)


if __name__ == "__main__":
    main()
