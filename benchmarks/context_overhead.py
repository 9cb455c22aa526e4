"""What the root-cause context (issue 16 scope 1, FR-047) adds to a freshness run: the same run with and without.

Setup (not timed): the warehouse and contracts of benchmarks/check_run.py (a local pyiceberg SqlCatalog, N tables of
a few hundred rows, one strict ODCS contract each with a PT6H freshness SLA; one table in `--stale-every` is stale,
so that share of the checks fails and builds a context), and two SQLite stores, one per mode, each warmed by one
untimed run (the steady state of a scheduled deployment: the store holds the history the pattern part reads).

Measured in one process, interleaved (`--repeat` rounds; each round runs both modes, the first mode alternating):
`CheckPipeline(IcebergSource(), store, config).run(FRESHNESS, targets)` end to end (read, grade, context, record),
with `context.enabled` true and false. The anchor is the run without context; the figure is the ratio of the
fastest runs (other work on a shared 2-core machine only adds time). Target (issue 16 acceptance 5): <= 1.10.

    .venv/bin/python benchmarks/context_overhead.py                 # 1,000 tables, 1 in 10 stale
    .venv/bin/python benchmarks/context_overhead.py --stale-every 1 # every check fails: the context's worst case
    .venv/bin/python benchmarks/context_overhead.py --tables 100 --repeat 2   # smoke
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import check_run  # the benchmark next to this one: its warehouse and contracts

TARGET = 1.10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stale-every", type=int, default=check_run.STALE_EVERY)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger().setLevel(logging.ERROR)
    check_run.STALE_EVERY = args.stale_every  # read by build_warehouse

    with tempfile.TemporaryDirectory(prefix="floe-context-bench-") as tmp:
        layout = check_run.Layout(Path(tmp))
        started = time.perf_counter()
        check_run.build_warehouse(layout, args.tables, args.rows)
        contracts = check_run.write_contracts(layout, args.tables)
        os.environ.update(layout.catalog_env())
        print(f"setup: {args.tables} tables in {time.perf_counter() - started:.1f} s", flush=True)

        from floe_monitoring_defs.config import parse_config
        from floe_monitoring_defs.models import CheckStatus, ViolationType
        from floe_monitoring_defs.pipeline import CheckPipeline
        from floe_monitoring_defs.sources.iceberg import IcebergSource
        from floe_monitoring_defs.store import MonitoringStore

        targets = check_run._targets(contracts)
        configs = {mode: parse_config({"context": {"enabled": mode == "with"}}, mode) for mode in ("without", "with")}
        stores = {mode: MonitoringStore(f"sqlite:///{Path(tmp) / f'{mode}.db'}") for mode in configs}

        def one(mode: str) -> tuple[float, int, int]:
            pipeline = CheckPipeline(IcebergSource(), stores[mode], configs[mode])
            t0 = time.perf_counter()
            runs = list(pipeline.run(ViolationType.FRESHNESS, targets))
            wall = time.perf_counter() - t0
            failed = sum(1 for r in runs if r.result.status is CheckStatus.FAIL)
            with_context = sum(1 for r in runs if r.context is not None)
            return wall, failed, with_context

        for mode in configs:  # warm-up: history in each store, manifests in the process cache
            one(mode)
        times: dict[str, list[float]] = {mode: [] for mode in configs}
        counts: dict[str, tuple[int, int]] = {}
        for r in range(args.repeat):
            order = ("without", "with") if r % 2 == 0 else ("with", "without")
            for mode in order:
                wall, failed, with_context = one(mode)
                times[mode].append(wall)
                counts[mode] = (failed, with_context)
                print(f"round {r + 1} {mode:>7} context: {wall:.3f} s ({failed} failed, {with_context} with context)")
        for s in stores.values():
            s.dispose()

    fastest = {mode: min(v) for mode, v in times.items()}
    median = {mode: statistics.median(v) for mode, v in times.items()}
    ratio = fastest["with"] / fastest["without"]
    checks = len(targets)
    print()
    print(
        f"{checks} freshness checks, {counts['with'][0]} failing (1 in {args.stale_every}), fastest of {args.repeat}:"
    )
    print(f"  anchor, without context: {fastest['without']:.3f} s ({fastest['without'] / checks * 1000:.2f} ms/check)")
    print(f"  with context:            {fastest['with']:.3f} s ({fastest['with'] / checks * 1000:.2f} ms/check)")
    print(f"  ratio {ratio:.3f} (median ratio {median['with'] / median['without']:.3f}); target <= {TARGET}")
    result = {
        "checks": checks,
        "failing": counts["with"][0],
        "with_context": counts["with"][1],
        "without_s": fastest["without"],
        "with_s": fastest["with"],
        "ratio": round(ratio, 4),
        "median_ratio": round(median["with"] / median["without"], 4),
        "target": TARGET,
        "met": ratio <= TARGET,
    }
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
