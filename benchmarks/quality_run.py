"""Wall time and peak memory of one quality check on a large Iceberg table: floe vs materializing it.

Setup (not timed): a pyiceberg `SqlCatalog` (SQLite catalog, file warehouse) in a temporary directory
with one table of `--rows` rows (default 5,000,000) written in `--files` appends (default 8 data files):
`id` (long, a few duplicates), `email` (string, 2 % null), `status` (string, a few invalid values),
`amount` (double, a few negatives), `price` (decimal(12,2)), `qty` (int), `created_at` (timestamptz),
`note` (a longer free-text string). One strict ODCS contract (as a dict) declares five rules:

* `email` nullValues, `unit: percent`, mustBeLessThan 5
* `status` invalidValues with `pattern: ^(open|closed|pending)$`, mustBe 0
* `id` duplicateValues, mustBeLessThan 100
* rowCount mustBeBetween [1, 10 * rows]
* `type: sql`: `SELECT count(*) FROM ${object} WHERE amount < 0`, mustBe 0

Measured, each in a fresh Python subprocess (imports not timed; wall from loading the table to the
graded result; peak = the subprocess's `ru_maxrss`, which includes the ~200 MB of imported
libraries, shown separately as "RSS before", so "peak - before" is what the check itself cost):

* floe: `run_quality(table, contract_table, load_engine("duckdb"), 0.8, SeverityThresholds())`, the
  project's path: a projected scan of the 4 columns the rules touch, one DuckDB aggregate pass for the
  library rules and one small read for the SQL rule.
  When the planned files allow it (no delete files, local Parquet files holding the columns under their
  current names and ids), the engine reads them with DuckDB's own Parquet reader (`read: parquet-direct`).
* floe_arrow: the same, forced onto the previous path (DuckDB consuming pyiceberg's projected Arrow stream:
  `IcebergQualitySource(table, direct_read=False)`): the "before" figure of issue 15.
* anchor: DuckDB `read_parquet` on the table's planned files (`table.scan(selected_fields=...).plan_files()`,
  planning timed), the same five metrics in one query over the four columns: what reading the files
  directly costs at best. The target is floe <= 1.0x the anchor (wall, and peak RSS minus RSS before).
* baseline: `table.scan().to_arrow()` (every column materialized), then the same five metrics with
  `pyarrow.compute` (count nulls, `match_substring_regex`, `count_distinct`, `num_rows`, `less`).

All paths must agree on every measured value (checked and printed). Runs are interleaved and repeated
(`--repeat`, default 3); the fastest wall and the lowest peak per path are kept. Timings are printed,
never asserted.

`--constraints` measures the cost of the contract's column constraints instead: the same floe run, and the
same run with five constraint rules added to the contract's columns (issue 10: `required` on `id` and
`created_at`, `unique` on `id`, `qty` in [1, 49] (`minimum` / `maximum`, provable from the manifests'
bounds), and a `pattern` on `email`), printing both walls, the ratio (target <= 1.2x) and how each
constraint was answered (`metadata`: manifests only; `scan`: rows read). The constraints are added to the
model objects, so the measurement does not depend on how a loader spells them.

Run from the repository root:

    /work/venv/bin/python benchmarks/quality_run.py                   # 5,000,000 rows (~20 s, 2 cores)
    /work/venv/bin/python benchmarks/quality_run.py --rows 50000 --repeat 1   # CI smoke test (~5 s)
    /work/venv/bin/python benchmarks/quality_run.py --constraints --rows 10000000  # constraints' cost

The last line printed is machine-readable: `RESULT {"floe_s": .., "anchor_s": .., "floe_mb": .., "anchor_mb": ..}`
(best wall in seconds, peak RSS minus RSS before in MB); `measure_all(rows, files, repeat)` returns the same.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CATALOG = "qbench"
IDENT = "bench.customers"
RESULT_PREFIX = "BENCH_RESULT "
PATTERN = "^(open|closed|pending)$"


def catalog_props(root: Path) -> dict[str, str]:
    return {"type": "sql", "uri": f"sqlite:///{root / 'catalog.db'}", "warehouse": f"file://{root / 'wh'}"}


def load_catalog(root: Path) -> Any:
    from pyiceberg.catalog.sql import SqlCatalog

    props = catalog_props(root)
    return SqlCatalog(CATALOG, uri=props["uri"], warehouse=props["warehouse"])


# -- setup -------------------------------------------------------------------------------------------------


def make_batch(start: int, n: int, seed: int) -> Any:
    """n rows generated with vectorized pyarrow compute (no numpy needed)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def rand(k: int) -> Any:
        return pc.random(n, initializer=seed * 100 + k)

    ids = pa.array(range(start, start + n), pa.int64())
    ids = pc.if_else(pc.less(rand(1), 0.000005), pa.scalar(start, pa.int64()), ids)  # a few duplicate ids
    id_text = pc.cast(ids, pa.string())
    email = pc.binary_join_element_wise("user.", id_text, "@example.com", "")
    email = pc.if_else(pc.less(rand(2), 0.02), pa.scalar(None, pa.string()), email)
    r = rand(3)
    status = pc.if_else(
        pc.less(r, 0.5),
        "open",
        pc.if_else(
            pc.less(r, 0.8),
            "closed",
            pc.if_else(pc.less(r, 0.99999), "pending", pc.if_else(pc.less(r, 0.999995), "Open", "lost")),
        ),
    )
    amount = pc.round(pc.add(pc.multiply(rand(4), 200.0), 10.0), 2)
    amount = pc.if_else(pc.less(rand(5), 0.00001), -1.0, amount)
    price = pc.cast(pc.cast(pc.floor(pc.multiply(rand(6), 100_000.0)), pa.int32()), pa.decimal128(12, 2))
    qty = pc.add(pc.cast(pc.floor(pc.multiply(rand(7), 49.0)), pa.int32()), 1)
    created = pc.cast(pc.add(pc.multiply(ids, 1_000_000), 1_780_000_000_000_000), pa.timestamp("us", tz="UTC"))
    bucket = pc.subtract(ids, pc.multiply(pc.divide(ids, 100_000), 100_000))
    note = pc.binary_join_element_wise(
        "customer note: delivery preferences and contact history #", pc.cast(bucket, pa.string()), ""
    )
    return pa.table(
        {
            "id": ids,
            "email": email,
            "status": status,
            "amount": amount,
            "price": price,
            "qty": qty,
            "created_at": created,
            "note": note,
        }
    )


def setup(root: Path, rows: int, files: int) -> None:
    from pyiceberg.schema import Schema
    from pyiceberg.types import (
        DecimalType,
        DoubleType,
        IntegerType,
        LongType,
        NestedField,
        StringType,
        TimestamptzType,
    )

    (root / "wh").mkdir(parents=True, exist_ok=True)
    cat = load_catalog(root)
    cat.create_namespace_if_not_exists("bench")
    schema = Schema(
        NestedField(1, "id", LongType(), required=False),
        NestedField(2, "email", StringType(), required=False),
        NestedField(3, "status", StringType(), required=False),
        NestedField(4, "amount", DoubleType(), required=False),
        NestedField(5, "price", DecimalType(12, 2), required=False),
        NestedField(6, "qty", IntegerType(), required=False),
        NestedField(7, "created_at", TimestamptzType(), required=False),
        NestedField(8, "note", StringType(), required=False),
    )
    table = cat.create_table(IDENT, schema=schema)
    per = -(-rows // files)
    for k, start in enumerate(range(0, rows, per)):
        batch = make_batch(start, min(per, rows - start), seed=k)
        table.append(batch.cast(table.schema().as_arrow()))


def contract_doc(rows: int) -> dict[str, Any]:
    return {
        "apiVersion": "v3.1.0",
        "kind": "DataContract",
        "id": "urn:bench:customers",
        "name": "customers",
        "version": "1.0.0",
        "status": "active",
        "servers": [
            {
                "server": "b",
                "type": "iceberg",
                "catalog": CATALOG,
                "catalogUrl": "sqlite:///unused.db",
                "namespace": "bench",
            }
        ],
        "schema": [
            {
                "name": "customers",
                "quality": [
                    {"name": "row_count", "metric": "rowCount", "mustBeBetween": [1, 10 * rows]},
                    {
                        "name": "no_negative_amounts",
                        "type": "sql",
                        "mustBe": 0,
                        "query": "SELECT count(*) FROM ${object} WHERE amount < 0",
                    },
                ],
                "properties": [
                    {
                        "name": "id",
                        "logicalType": "integer",
                        "quality": [{"name": "id_duplicates", "metric": "duplicateValues", "mustBeLessThan": 100}],
                    },
                    {
                        "name": "email",
                        "logicalType": "string",
                        "classification": "pii",
                        "quality": [
                            {"name": "email_null_pct", "metric": "nullValues", "unit": "percent", "mustBeLessThan": 5}
                        ],
                    },
                    {
                        "name": "status",
                        "logicalType": "string",
                        "quality": [
                            {
                                "name": "status_valid",
                                "metric": "invalidValues",
                                "arguments": {"pattern": PATTERN},
                                "mustBe": 0,
                            }
                        ],
                    },
                    {"name": "amount", "logicalType": "number"},
                    {"name": "price", "logicalType": "number"},
                    {"name": "qty", "logicalType": "integer"},
                    {"name": "created_at", "logicalType": "timestamp"},
                    {"name": "note", "logicalType": "string"},
                ],
            }
        ],
    }


# -- measurement (in a subprocess) ---------------------------------------------------------------------------


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


EMAIL_PATTERN = r"@example\.com$"


def with_constraints(monitored: Any) -> Any:
    """The contract's table with the five column constraints of `--constraints` added to its columns."""
    from dataclasses import replace

    added: dict[str, dict[str, Any]] = {
        "id": {"required": True, "unique": True},
        "created_at": {"required": True},
        "qty": {"logical_type_options": {"minimum": 1, "maximum": 49}},
        "email": {"logical_type_options": {"pattern": EMAIL_PATTERN}},
    }
    cols = tuple(replace(c, **added.get(c.physical_name, {})) for c in monitored.columns)
    return replace(monitored, columns=cols)


def measure(path: str, root: Path, rows: int) -> dict[str, Any]:
    # imports (not timed; the Parquet readers are imported lazily by pyiceberg's first scan otherwise)
    import pyarrow.compute as pc
    import pyarrow.dataset
    import pyarrow.parquet  # noqa: F401

    from floe_monitoring_defs.checks.quality import run_quality
    from floe_monitoring_defs.config import SeverityThresholds
    from floe_monitoring_defs.contracts import parse_document
    from floe_monitoring_defs.quality import load_engine

    [monitored] = parse_document(contract_doc(rows), "bench.yaml").tables
    if path == "floe_constraints":
        monitored = with_constraints(monitored)
    cat = load_catalog(root)
    engine = load_engine("duckdb")
    cat.load_table(IDENT)  # warm the catalog connection (both paths)
    before = _rss_mb()
    started = time.perf_counter()
    table = cat.load_table(IDENT)
    if path in ("floe", "floe_constraints", "floe_arrow"):
        from floe_monitoring_defs.quality.source import IcebergQualitySource

        source = IcebergQualitySource(table, direct_read=path != "floe_arrow")
        out = run_quality(source, monitored, engine, 0.8, SeverityThresholds())
        wall = time.perf_counter() - started
        by = {r["rule"]: r for r in out.details["rules"]}
        constraints = {
            r["rule"]: {"status": r["status"], "actual": r["actual"], "method": r["method"]}
            for r in out.details["rules"]
            if r["type"] == "column_constraint"
        }
        metrics = {
            "email_null_pct": round(float(by["email_null_pct"]["actual"].split()[0]), 3),
            "status_invalid": int(by["status_valid"]["actual"].split()[0]),
            "id_duplicates": int(by["id_duplicates"]["actual"].split()[0]),
            "row_count": int(by["row_count"]["actual"].split()[0]),
            "negative_amounts": int(by["no_negative_amounts"]["actual"]),
        }
        extra = {
            "status": out.status.value,
            "score": out.measured_value,
            "columns_read": out.details["columns_read"],
            "constraints": constraints,
            "read": out.details.get("read"),
        }
    elif path == "anchor":
        import duckdb

        cols = ("id", "email", "status", "amount")
        files = [t.file.file_path.removeprefix("file://") for t in table.scan(selected_fields=cols).plan_files()]
        con = duckdb.connect(":memory:")
        listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        n, nulls, invalid, dups, negatives = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE email IS NULL), "
            f"count(*) FILTER (WHERE status IS NOT NULL AND NOT regexp_full_match(status, '{PATTERN}')), "
            "count(id) - count(DISTINCT id), count(*) FILTER (WHERE amount < 0) "
            f"FROM read_parquet([{listed}], hive_partitioning = false)"
        ).fetchone()
        con.close()
        wall = time.perf_counter() - started
        metrics = {
            "email_null_pct": round(round(100.0 * nulls / n if n else 0.0, 3), 3),
            "status_invalid": int(invalid),
            "id_duplicates": int(dups),
            "row_count": int(n),
            "negative_amounts": int(negatives),
        }
        extra = {"columns_read": list(cols), "files": len(files)}
    else:
        data = table.scan().to_arrow()
        n = data.num_rows
        email, status, ids = data.column("email"), data.column("status"), data.column("id")
        nulls = pc.count(email, mode="only_null").as_py()
        non_null_status = pc.drop_null(status)
        invalid = len(non_null_status) - pc.sum(pc.match_substring_regex(non_null_status, PATTERN)).as_py()
        dups = pc.count(ids).as_py() - pc.count_distinct(ids).as_py()
        negatives = pc.sum(pc.less(data.column("amount"), 0)).as_py() or 0
        wall = time.perf_counter() - started
        metrics = {
            "email_null_pct": round(round(100.0 * nulls / n if n else 0.0, 3), 3),
            "status_invalid": int(invalid),
            "id_duplicates": int(dups),
            "row_count": n,
            "negative_amounts": int(negatives),
        }
        extra = {"columns_read": data.column_names, "arrow_mb": round(data.nbytes / 2**20, 1)}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"path": path, "wall": wall, "peak_mb": peak, "rss_before_mb": before, "metrics": metrics, **extra}


def run_subprocess(path: str, root: Path, rows: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--measure", path, "--root", str(root), "--rows", str(rows)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{path} run failed:\n{proc.stderr[-4000:]}")
    line = next(x for x in proc.stdout.splitlines() if x.startswith(RESULT_PREFIX))
    return dict(json.loads(line[len(RESULT_PREFIX) :]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--constraints", action="store_true", help="measure the cost of the column constraints")
    ap.add_argument("--no-baseline", action="store_true", help="skip the to_arrow baseline (it holds every column)")
    ap.add_argument(
        "--measure", choices=["floe", "floe_arrow", "anchor", "floe_constraints", "baseline"], help=argparse.SUPPRESS
    )
    ap.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(RESULT_PREFIX + json.dumps(measure(args.measure, args.root, args.rows)))
        return
    if args.constraints:
        constraints_mode(args.rows, args.files, args.repeat)
        return
    result = measure_all(args.rows, args.files, args.repeat, baseline=not args.no_baseline)
    print(RESULT_LINE + json.dumps(result))
    if not result["metrics_agree"]:
        raise SystemExit(1)


RESULT_LINE = "RESULT "
PATHS = {
    "floe": "floe (DuckDB, planned files)",
    "floe_arrow": "floe, old path (Arrow stream)",
    "anchor": "anchor (DuckDB read_parquet)",
    "baseline": "baseline (to_arrow all + pyarrow)",
}


def measure_all(rows: int, files: int, repeat: int, *, baseline: bool = True) -> dict[str, Any]:
    """Set up the table, run every path `repeat` times interleaved, print the table; the RESULT figures.

    Per path the fastest wall and the lowest peak - before are kept (the least disturbed runs on a shared
    machine). Returns floe_s / anchor_s (walls, s), floe_mb / anchor_mb (peak RSS - RSS before, MB), the old
    path's figures (floe_arrow_s, floe_arrow_mb), the ratios and whether every path measured the same values.
    """
    paths = [p for p in PATHS if baseline or p != "baseline"]
    with tempfile.TemporaryDirectory(prefix="floe-quality-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        setup(root, rows, files)
        setup_s = time.perf_counter() - t0
        size_mb = sum(p.stat().st_size for p in (root / "wh").rglob("*.parquet")) / 2**20
        n_files = len(list((root / "wh").rglob("*.parquet")))
        runs: dict[str, list[dict[str, Any]]] = {p: [] for p in paths}
        for _ in range(repeat):
            for path in paths:
                runs[path].append(run_subprocess(path, root, rows))
    best = {
        p: {
            **rs[0],
            "wall": min(r["wall"] for r in rs),
            "peak_mb": min(r["peak_mb"] for r in rs),
            "grow_mb": max(min(r["peak_mb"] - r["rss_before_mb"] for r in rs), 1.0),
            "walls": [round(r["wall"], 2) for r in rs],
            "median": statistics.median(r["wall"] for r in rs),
        }
        for p, rs in runs.items()
    }
    f, a = best["floe"], best["anchor"]
    print(
        f"table: {rows:,} rows, {n_files} data files, {size_mb:.0f} MB of Parquet, 8 columns "
        f"(setup {setup_s:.1f} s); 5 rules; {repeat} run(s) per path, interleaved, best kept"
    )
    print(f"floe reads {len(f['columns_read'])} columns ({', '.join(f['columns_read'])}); read: {f['read']}")
    print(f"old path read: {best['floe_arrow']['read']}")
    print()
    print(f"{'path':<38}{'wall s':>9}{'median s':>10}{'peak MB':>10}{'peak - before':>15}   walls of every run")
    for p, r in best.items():
        print(
            f"{PATHS[p]:<38}{r['wall']:>9.2f}{r['median']:>10.2f}{r['peak_mb']:>10.0f}{r['grow_mb']:>15.0f}"
            f"   {r['walls']}"
        )
    wall_ratio, mem_ratio = f["wall"] / a["wall"], f["grow_mb"] / a["grow_mb"]
    old = best["floe_arrow"]
    print()
    print(
        f"floe / anchor: wall {wall_ratio:.2f}x (medians {f['median'] / a['median']:.2f}x), "
        f"peak - before {mem_ratio:.2f}x (target <= 1.0x)"
    )
    print(f"old path / anchor: wall {old['wall'] / a['wall']:.2f}x, peak - before {old['grow_mb'] / a['grow_mb']:.2f}x")
    print(f"floe / old path: wall {f['wall'] / old['wall']:.2f}x, peak - before {f['grow_mb'] / old['grow_mb']:.2f}x")
    met = wall_ratio <= 1.0 and mem_ratio <= 1.0
    print(f"target <= 1.0x: {'met' if met else 'not met'} (wall {wall_ratio:.2f}x, memory {mem_ratio:.2f}x)")
    print()
    agree = all(r["metrics"] == f["metrics"] for r in best.values())
    print(f"metrics: {json.dumps(f['metrics'])}")
    differing = {p: r["metrics"] for p, r in best.items() if r["metrics"] != f["metrics"]}
    print(f"metrics agree on every path: {'yes' if agree else 'NO: ' + json.dumps(differing)}")
    print(f"floe check: status {f['status']}, score {f['score']:.3f}")
    return {
        "floe_s": round(f["wall"], 3),
        "anchor_s": round(a["wall"], 3),
        "floe_mb": round(f["grow_mb"], 1),
        "anchor_mb": round(a["grow_mb"], 1),
        "floe_median_s": round(f["median"], 3),
        "anchor_median_s": round(a["median"], 3),
        "floe_arrow_s": round(old["wall"], 3),
        "floe_arrow_mb": round(old["grow_mb"], 1),
        "wall_ratio": round(wall_ratio, 3),
        "mem_ratio": round(mem_ratio, 3),
        "target_met": met,
        "metrics_agree": agree,
        "read": f["read"],
    }


def constraints_mode(rows: int, files: int, repeat: int) -> None:
    """The floe run without and with the five column constraints, interleaved; best wall of each kept."""
    with tempfile.TemporaryDirectory(prefix="floe-quality-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        setup(root, rows, files)
        setup_s = time.perf_counter() - t0
        runs: dict[str, list[dict[str, Any]]] = {"floe": [], "floe_constraints": []}
        for _ in range(repeat):
            for path in runs:
                runs[path].append(run_subprocess(path, root, rows))
    plain, added = (min(rs, key=lambda r: r["wall"]) for rs in runs.values())
    print(f"table: {rows:,} rows, {files} appends (setup {setup_s:.1f} s); {repeat} run(s) per variant, best kept")
    print()
    print(f"{'variant':<44}{'rules':>6}{'wall s':>9}{'peak MB':>10}")
    n_added = len(added["constraints"])
    print(f"{'floe, the contract as is':<44}{5:>6}{plain['wall']:>9.2f}{plain['peak_mb']:>10.0f}")
    label = f"floe + the constraints ({n_added} rules)"
    print(f"{label:<44}{5 + n_added:>6}{added['wall']:>9.2f}{added['peak_mb']:>10.0f}")
    print(f"{'ratio (target <= 1.2x)':<44}{'':>6}{added['wall'] / plain['wall']:>8.2f}x")
    print()
    print(
        f"walls of every run: floe {[round(r['wall'], 2) for r in runs['floe']]}, "
        f"with constraints {[round(r['wall'], 2) for r in runs['floe_constraints']]}"
    )
    print(f"columns read: {', '.join(plain['columns_read'])} / with constraints: {', '.join(added['columns_read'])}")
    for name, r in added["constraints"].items():
        print(f"  {name:<28} {r['status']:<6} {r['actual'] or '':<10} method {r['method']}")
    if plain["metrics"] != added["metrics"]:
        raise SystemExit(f"the explicit rules measured differently: {plain['metrics']} vs {added['metrics']}")


if __name__ == "__main__":
    main()
