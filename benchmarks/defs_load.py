"""Definitions build time and peak memory: floe's code location against Dagster's built-in checks.

What it measures, for each size n (default 100, 1,000 and 5,000 contracts, one table each):

* floe: the project's full load path, `build_defs(Settings(contracts_dir=<tmp>, ...))`, over n
  strict ODCS v3.1.0 YAML files written to a temporary directory, followed by what
  `dagster definitions validate` does: `dg.Definitions.validate_loadable(defs)` and
  `defs.get_repository_def()`. The time spent inside `load_contracts` (reading, YAML parsing,
  JSON-Schema validation and model building of the files) is reported separately as "parse s".
* builtins (the baseline, measured in the same run): the same n asset keys as plain `dg.AssetSpec`s,
  `dg.build_last_update_freshness_checks(assets=keys, lower_bound_delta=timedelta(hours=6))` plus
  `dg.build_column_schema_change_checks(assets=keys)`, in one `dg.Definitions`, then the same
  `validate_loadable` + `get_repository_def`. (The built-ins read no files and carry no contract
  metadata; floe also defines jobs, schedules and a sensor. Both sides are whole paths.)

Every measured build runs in a fresh Python subprocess that imports Dagster and the project first
(not timed), so one measurement does not warm caches or inflate the memory of the next. Peak memory
is that subprocess's `resource.getrusage(RUSAGE_SELF).ru_maxrss` after the build (it includes the
interpreter and the imports; the import-only peak is printed as a reference). With `--repeat` > 1
the fastest build and the smallest peak of the repeats are reported.

The floe side is measured twice per size: "cold", with an empty contract cache (FLOE_CACHE_DIR, a new
directory: every file is parsed and its entry written, the first load after a deploy), then "warm", with the
cache the cold build filled (a code-location reload: contracts/cache.py). The built-ins have no files to read.

Snapshot size: the serialized `RepositorySnap` of each side's repository, as `dagster api grpc` sends it
(`serialize_value(RepositorySnap.from_def(repo))`, MB = 10^6 bytes; Dagster's default gRPC message limit is
100 MB). "full" includes every job's snapshot (what `defer_snapshots=False` asks for); "grpc" is what
Dagster 1.13's webserver and daemon ask for (`defer_snapshots=True`: job snapshots are fetched one per message
later). Measured after the build, not timed. `RepositorySnap` is a private Dagster import, used here only.

The targets: 1,000 contracts build no slower than the built-ins (warm cache); 10,000 in under 30 s; the
10,000-contract snapshot under 40 MB. The script prints whether they hold; it asserts nothing.

The last line is machine-readable: `RESULT {json}` with, per size (a string key), `floe_s` (warm cache, the
same as `floe_warm_s`), `floe_cold_s`, `builtins_s`, `floe_snapshot_mb` / `builtins_snapshot_mb` (full) and
`floe_grpc_snapshot_mb` / `builtins_grpc_snapshot_mb` (deferred), plus `floe_parse_warm_s` / `floe_parse_cold_s`
and the check counts.

Run from the repository root:

    /work/venv/bin/python benchmarks/defs_load.py                 # 100, 1000, 5000 (~1.5 min on 2 cores)
    /work/venv/bin/python benchmarks/defs_load.py --sizes 20      # CI smoke test (seconds)
    /work/venv/bin/python benchmarks/defs_load.py --sizes 1000 --repeat 3
    /work/venv/bin/python benchmarks/defs_load.py --sizes 10000          # ~2 min per side and pass
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

DEFAULT_SIZES = (100, 1000, 5000)
TARGET_SIZE = 1000
LARGE_SIZE, LARGE_TARGET_S = 10_000, 30.0
SNAPSHOT_TARGET_MB = 40.0
RESULT_PREFIX = "BENCH_RESULT "  # a child's result line (the parent's final line is `RESULT {json}`)


# ---------------------------------------------------------------------------------------------
# Generated contracts


def namespace(i: int) -> str:
    return f"bench_ns_{i // 100}"


def table_name(i: int) -> str:
    return f"t_{i}"


def contract_doc(i: int) -> dict[str, Any]:
    """A strict ODCS v3.1.0 contract for one Iceberg table with 8 columns and a 6-hour freshness SLA."""
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
                "catalog": "bench",
                "catalogUrl": "sqlite:///bench.db",
                "namespace": namespace(i),
            }
        ],
        "schema": [
            {
                "name": table_name(i),
                "physicalName": table_name(i),
                "description": f"Generated table {i}",
                "properties": [
                    {
                        "name": "id",
                        "logicalType": "integer",
                        "physicalType": "BIGINT",
                        "primaryKey": True,
                        "required": True,
                    },
                    {
                        "name": "customer_email",
                        "logicalType": "string",
                        "physicalType": "STRING",
                        "classification": "pii",
                    },
                    {"name": "amount", "logicalType": "number", "physicalType": "DECIMAL(12,2)"},
                    {"name": "quantity", "logicalType": "integer", "physicalType": "INT"},
                    {"name": "is_active", "logicalType": "boolean", "physicalType": "BOOLEAN"},
                    {"name": "order_date", "logicalType": "date", "physicalType": "DATE"},
                    {"name": "status", "logicalType": "string", "physicalType": "STRING"},
                    {"name": "updated_at", "logicalType": "timestamp", "physicalType": "TIMESTAMPTZ", "required": True},
                ],
            }
        ],
        "slaProperties": [{"property": "freshness", "value": "PT6H", "element": "updated_at"}],
    }


def write_contracts(directory: Path, n: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    for i in range(n):
        text = yaml.dump(contract_doc(i), Dumper=dumper, sort_keys=False)
        (directory / f"contract_{i:05d}.yaml").write_text(text, encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# Child side: one measured build per process


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _emit(result: dict[str, Any]) -> None:
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def snapshot_mb(repo: Any) -> dict[str, float]:
    """The serialized RepositorySnap of `repo` in MB: full and deferred (module docstring)."""
    import dagster as dg
    from dagster._core.remote_representation.external_data import RepositorySnap  # private: benchmarks only

    full = len(dg.serialize_value(RepositorySnap.from_def(repo)))
    grpc = len(dg.serialize_value(RepositorySnap.from_def(repo, defer_snapshots=True)))
    return {"snapshot_mb": full / 1e6, "grpc_snapshot_mb": grpc / 1e6}


def child_floe(contracts_dir: Path, config_path: Path | None = None) -> dict[str, Any]:
    import dagster as dg

    import floe_monitoring_defs.definitions as floe_defs
    from floe_monitoring_defs.config import Settings
    from floe_monitoring_defs.contracts import loader
    from floe_monitoring_defs.contracts.model import LoadReport

    import_peak = _peak_mb()
    parse = {"seconds": 0.0, "loaded": 0, "errors": 0}
    original = loader.load_contracts

    def timed_load(paths: Any) -> LoadReport:
        started = time.perf_counter()
        report = original(paths)
        parse["seconds"] += time.perf_counter() - started
        parse["loaded"] += len(report.contracts)
        parse["errors"] += len(report.errors)
        return report

    # The build path calls load_contracts through whichever module imported it (definitions, or the
    # contracts registry that also restores store registrations); the name is looked up at call time.
    registry = sys.modules.get("floe_monitoring_defs.contracts.registry")
    patched = [m for m in (floe_defs, registry) if m is not None and getattr(m, "load_contracts", None) is original]
    if not patched:
        raise SystemExit("cannot find where build_defs calls load_contracts; parse time would be wrong")
    for module in patched:
        module.__dict__["load_contracts"] = timed_load
    settings = Settings(contracts_dir=contracts_dir, config_path=config_path, db_url=None, default_catalog=None)
    t0 = time.perf_counter()
    defs = floe_defs.build_defs(settings)
    t1 = time.perf_counter()
    dg.Definitions.validate_loadable(defs)
    t2 = time.perf_counter()
    repo = defs.get_repository_def()
    t3 = time.perf_counter()
    return {
        "build_s": t3 - t0,
        "construct_s": t1 - t0,
        "validate_s": t2 - t1,
        "repository_s": t3 - t2,
        "parse_s": parse["seconds"],
        "loaded": parse["loaded"],
        "errors": parse["errors"],
        "checks": len(repo.asset_graph.asset_check_keys),
        "jobs": len(repo.job_names),
        "peak_mb": _peak_mb(),
        "import_peak_mb": import_peak,
        **snapshot_mb(repo),
    }


def child_builtins(n: int) -> dict[str, Any]:
    from datetime import timedelta

    import dagster as dg

    import floe_monitoring_defs.definitions  # noqa: F401  (same imports as the floe side: same baseline RSS)

    import_peak = _peak_mb()
    keys = [dg.AssetKey([namespace(i), table_name(i)]) for i in range(n)]
    t0 = time.perf_counter()
    specs = [dg.AssetSpec(key=k) for k in keys]
    checks = [
        *dg.build_last_update_freshness_checks(assets=keys, lower_bound_delta=timedelta(hours=6)),
        *dg.build_column_schema_change_checks(assets=keys),
    ]
    defs = dg.Definitions(assets=specs, asset_checks=checks)
    t1 = time.perf_counter()
    dg.Definitions.validate_loadable(defs)
    t2 = time.perf_counter()
    repo = defs.get_repository_def()
    t3 = time.perf_counter()
    return {
        "build_s": t3 - t0,
        "construct_s": t1 - t0,
        "validate_s": t2 - t1,
        "repository_s": t3 - t2,
        "checks": len(repo.asset_graph.asset_check_keys),
        "jobs": len(repo.job_names),
        "peak_mb": _peak_mb(),
        "import_peak_mb": import_peak,
        **snapshot_mb(repo),
    }


def child_main(mode: str, n: int, contracts_dir: Path | None, config_path: Path | None) -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore")  # beta/preview warnings from Dagster would only add noise
    logging.disable(logging.WARNING)
    if mode == "floe":
        assert contracts_dir is not None
        _emit(child_floe(contracts_dir, config_path))
    else:
        _emit(child_builtins(n))


# ---------------------------------------------------------------------------------------------
# Parent side


def run_child(
    mode: str, n: int, contracts_dir: Path, config_path: Path | None = None, cache_dir: Path | None = None
) -> dict[str, Any]:
    """One measured build in a subprocess; `cache_dir`: the floe side's FLOE_CACHE_DIR (None: the cache is off)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--n", str(n), "--dir", str(contracts_dir)]
    if config_path is not None:
        cmd += ["--config", str(config_path)]
    home = contracts_dir.parent / "dagster_home"  # empty: no store to restore registered contracts from
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOE_")} | {"DAGSTER_HOME": str(home)}
    env["FLOE_CACHE_DIR"] = str(cache_dir) if cache_dir is not None else "off"
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"{mode} build of {n} contracts failed (exit {proc.returncode})")
    return dict(json.loads(lines[-1][len(RESULT_PREFIX) :]))


def best_of(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    best = dict(min(runs, key=lambda r: r["build_s"]))
    best["peak_mb"] = min(r["peak_mb"] for r in runs)
    return best


def print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for k, r in enumerate(rows):
        print("  ".join(c.rjust(widths[i]) if k and i else c.ljust(widths[i]) for i, c in enumerate(r)).rstrip())


def parse_sizes(text: str) -> list[int]:
    sizes = [int(x.replace("_", "")) for x in text.split(",") if x.strip()]
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes must be positive integers, e.g. 100,1000,5000")
    return sizes


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        default=list(DEFAULT_SIZES),
        help="comma-separated contract counts (default: 100,1000,5000)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="builds per side and size; the fastest is kept")
    parser.add_argument("--child", choices=("floe", "builtins"), help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--without-constraints",
        action="store_true",
        help="monitoring config `column_constraints: {enabled: false}`: the contracts' required/unique/primary-key "
        "columns add no quality checks (the check count of builds before column constraints existed)",
    )
    args = parser.parse_args(argv)
    if args.child:
        child_main(args.child, args.n, args.dir, args.config)
        return

    print(
        f"defs_load: sizes {args.sizes}, {args.repeat} build(s) per side and size, one subprocess per build, "
        f"python {sys.version.split()[0]}, {os.cpu_count()} cpus"
    )
    results: list[tuple[int, dict[str, Any], dict[str, Any]]] = []
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="floe_defs_bench_") as tmp:
        for n in args.sizes:
            contracts_dir = Path(tmp) / f"contracts_{n}"
            t = time.perf_counter()
            write_contracts(contracts_dir, n)
            wrote = time.perf_counter() - t
            config = None
            if args.without_constraints:
                config = Path(tmp) / "monitoring.yaml"
                config.write_text("column_constraints: {enabled: false}\n", encoding="utf-8")
            # Interleaved (cold, warm, built-ins) per repeat: contention from other work hits all three alike.
            colds, warms, bins = [], [], []
            for r in range(args.repeat):
                cache_dir = Path(tmp) / f"cache_{n}_{r}"  # new and empty: a cold build
                colds.append(run_child("floe", n, contracts_dir, config, cache_dir))
                warms.append(run_child("floe", n, contracts_dir, config, cache_dir))
                bins.append(run_child("builtins", n, contracts_dir))
            floe, cold, builtins = best_of(warms), best_of(colds), best_of(bins)
            floe["cold_build_s"], floe["cold_parse_s"] = cold["build_s"], cold["parse_s"]
            if floe["loaded"] != n or floe["errors"]:
                print(f"  WARNING: floe loaded {floe['loaded']} of {n} contracts ({floe['errors']} errors)")
            print(
                f"  n={n}: wrote contracts in {wrote:.1f} s; floe {floe['build_s']:.2f} s warm, "
                f"{floe['cold_build_s']:.2f} s cold ({floe['checks']} checks, {floe['jobs']} jobs), "
                f"builtins {builtins['build_s']:.2f} s ({builtins['checks']} checks)",
                flush=True,
            )
            results.append((n, floe, builtins))

    print(
        f"\nLoad average (1 min) {load_before:.2f} before, {os.getloadavg()[0]:.2f} after; other work on this "
        "machine skews the numbers."
    )
    print("Build = construct Definitions + Definitions.validate_loadable + get_repository_def (floe: includes parse).")
    print("floe: warm = contract cache filled by the cold build (a reload); cold = empty cache (first load).")
    rows: list[tuple[str, ...]] = [
        (
            "n",
            "parse s warm",
            "parse s cold",
            "floe build s warm",
            "floe build s cold",
            "floe peak MB",
            "builtins build s",
            "builtins peak MB",
            "floe warm/builtins",
            "floe cold/builtins",
        ),
    ]
    for n, floe, builtins in results:
        rows.append(
            (
                str(n),
                f"{floe['parse_s']:.2f}",
                f"{floe['cold_parse_s']:.2f}",
                f"{floe['build_s']:.2f}",
                f"{floe['cold_build_s']:.2f}",
                f"{floe['peak_mb']:.0f}",
                f"{builtins['build_s']:.2f}",
                f"{builtins['peak_mb']:.0f}",
                f"{floe['build_s'] / builtins['build_s']:.2f}",
                f"{floe['cold_build_s'] / builtins['build_s']:.2f}",
            )
        )
    print_table(rows)

    print("\nSerialized RepositorySnap (MB): full = with every job snapshot; grpc = deferred, what the webserver asks.")
    rows = [("n", "floe full", "builtins full", "ratio", "floe grpc", "builtins grpc", "ratio", "floe KB/check")]
    for n, floe, builtins in results:
        rows.append(
            (
                str(n),
                f"{floe['snapshot_mb']:.1f}",
                f"{builtins['snapshot_mb']:.1f}",
                f"{floe['snapshot_mb'] / builtins['snapshot_mb']:.2f}",
                f"{floe['grpc_snapshot_mb']:.1f}",
                f"{builtins['grpc_snapshot_mb']:.1f}",
                f"{floe['grpc_snapshot_mb'] / builtins['grpc_snapshot_mb']:.2f}",
                f"{floe['snapshot_mb'] * 1000 / max(floe['checks'], 1):.2f}",
            )
        )
    print_table(rows)

    print("\nPhases (s): Dagster work only, floe parse excluded.")
    rows = [
        (
            "n",
            "floe construct-parse",
            "floe validate",
            "floe repo",
            "floe dagster total",
            "builtins construct",
            "builtins validate",
            "builtins repo",
            "dagster-only ratio",
        )
    ]
    for n, floe, builtins in results:
        floe_dagster = floe["build_s"] - floe["parse_s"]
        rows.append(
            (
                str(n),
                f"{floe['construct_s'] - floe['parse_s']:.2f}",
                f"{floe['validate_s']:.2f}",
                f"{floe['repository_s']:.2f}",
                f"{floe_dagster:.2f}",
                f"{builtins['construct_s']:.2f}",
                f"{builtins['validate_s']:.2f}",
                f"{builtins['repository_s']:.2f}",
                f"{floe_dagster / builtins['build_s']:.2f}",
            )
        )
    print_table(rows)

    import_peak = min(min(f["import_peak_mb"], b["import_peak_mb"]) for _, f, b in results)
    print(f"\nPeak MB is the whole subprocess; after imports alone it is {import_peak:.0f} MB.")
    per_contract = [(n, f["parse_s"] / n * 1000) for n, f, _ in results]
    print("Parse cost per contract: " + ", ".join(f"{ms:.1f} ms at n={n}" for n, ms in per_contract))

    target = next(((f, b) for n, f, b in results if n == TARGET_SIZE), None)
    if target is None:
        print(f"Target ({TARGET_SIZE} contracts no slower than the built-ins): not measured at these sizes.")
    else:
        f, b = target
        verdict = "HOLDS" if f["build_s"] <= b["build_s"] else "DOES NOT HOLD"
        print(
            f"Target ({TARGET_SIZE} contracts build no slower than the built-ins): {verdict} "
            f"(floe {f['build_s']:.2f} s vs built-ins {b['build_s']:.2f} s, ratio {f['build_s'] / b['build_s']:.2f}; "
            f"without parsing {(f['build_s'] - f['parse_s']) / b['build_s']:.2f})."
        )
    large = next((f for n, f, _ in results if n == LARGE_SIZE), None)
    if large is not None:
        held = "HOLDS" if large["build_s"] < LARGE_TARGET_S else "DOES NOT HOLD"
        small = "HOLDS" if large["snapshot_mb"] < SNAPSHOT_TARGET_MB else "DOES NOT HOLD"
        print(
            f"Target ({LARGE_SIZE} contracts under {LARGE_TARGET_S:.0f} s, warm cache): {held} "
            f"({large['build_s']:.1f} s; cold {large['cold_build_s']:.1f} s). Snapshot under "
            f"{SNAPSHOT_TARGET_MB:.0f} MB: {small} (full {large['snapshot_mb']:.1f} MB, "
            f"grpc {large['grpc_snapshot_mb']:.1f} MB)."
        )
    print(f"Total benchmark time {time.perf_counter() - started:.0f} s.")
    print("RESULT " + json.dumps({"sizes": {str(n): result_entry(f, b) for n, f, b in results}}, sort_keys=True))


def result_entry(floe: dict[str, Any], builtins: dict[str, Any]) -> dict[str, Any]:
    """One size of the final `RESULT` line (module docstring)."""
    return {
        "floe_s": round(floe["build_s"], 3),
        "floe_warm_s": round(floe["build_s"], 3),
        "floe_cold_s": round(floe["cold_build_s"], 3),
        "floe_parse_warm_s": round(floe["parse_s"], 3),
        "floe_parse_cold_s": round(floe["cold_parse_s"], 3),
        "builtins_s": round(builtins["build_s"], 3),
        "floe_snapshot_mb": round(floe["snapshot_mb"], 3),
        "builtins_snapshot_mb": round(builtins["snapshot_mb"], 3),
        "floe_grpc_snapshot_mb": round(floe["grpc_snapshot_mb"], 3),
        "builtins_grpc_snapshot_mb": round(builtins["grpc_snapshot_mb"], 3),
        "floe_checks": floe["checks"],
        "builtins_checks": builtins["checks"],
    }


if __name__ == "__main__":
    main()
