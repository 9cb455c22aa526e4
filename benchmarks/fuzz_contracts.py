"""Mutated contracts through the loader and the code location: refusals by kind, the slowest file, peak memory.

What it does (figures for the issue-11 note; it asserts nothing, it counts):

1. writes N mutants (default 1,000; `floe_monitoring_tests/fuzz/mutations.py`, seeded: `--seed`) of the valid
   contracts in `examples/contracts/` and `floe_monitoring_tests/fixtures/odcs_corpus/`, plus the fixed corpus of
   special files (non-UTF-8, BOMs, an alias bomb, an oversize file, /dev/zero, a FIFO, symlink loops, ...);
2. loads each file alone (`load_contract_file`, with `FLOE_SERVER_ENVIRONMENT=prod` options) and counts what
   happened: loaded, refused (by kind), floe's own errors (`<internal>`: should be 0), any other exception
   (uncaught: should be 0); the slowest file and its mutations;
3. builds the code location once on a directory holding the five good contracts and every file
   (`build_defs` + `Definitions.validate_loadable` + `get_repository_def`) and checks the good contracts kept
   their assets and checks (`--no-defs` skips it);
4. prints the peak RSS of the process (`ru_maxrss`: interpreter and imports included).

Run from the repository root:

    .venv/bin/python benchmarks/fuzz_contracts.py                   # 1,000 mutants (~1 min on 2 cores)
    .venv/bin/python benchmarks/fuzz_contracts.py --mutants 20      # smoke test
    .venv/bin/python benchmarks/fuzz_contracts.py --mutants 10000 --seed 7
"""

from __future__ import annotations

import argparse
import collections
import os
import resource
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the checkout's code and its test package (the mutation engine)


def refusal_kind(field: str, message: str) -> str:
    """A short name for why a file was refused, from the error's field and message."""
    if field == "<file>" or "UTF-8" in message or "UTF-16" in message:
        if "UTF" in message:
            return "encoding (not UTF-8)"
        if "regular files only" in message or "symbolic link" in message:
            return "not a regular file"
        if "limit" in message:
            return "over the size limit"
        return "unreadable"
    if "not valid YAML" in message:
        for word, kind in (
            ("twice", "YAML: duplicate key"),
            ("nested more than", "YAML: nesting too deep"),
            ("aliases", "YAML: alias expansion (bomb)"),
            ("recursive", "YAML: recursive alias"),
            ("is not allowed", "YAML: control character"),
            ("single document", "YAML: several documents"),
            ("is not an integer", "YAML: value not of its tag"),
        ):
            if word in message:
                return kind
        return "YAML: syntax"
    if field == "<root>":
        return "not a mapping (or empty)"
    if field == "apiVersion":
        return "apiVersion"
    if "ODCS v" in message or "JSON document" in message:
        return "ODCS schema"
    if "Dagster" in message or "asset key" in message:
        return "Dagster name"
    if "names no" in message or "timestamp or date column" in message:
        return "cross-field (element / column)"
    if field.startswith("customProperties.floe.monitoring"):
        return "monitoring overrides"
    return "contract content"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mutants", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--no-defs", action="store_true", help="skip building the code location")
    args = parser.parse_args()
    for var in list(os.environ):  # the figures must not depend on the developer's deployment
        if var.startswith(("FLOE_", "PYICEBERG_")) or var == "DAGSTER_HOME":
            del os.environ[var]
    warnings.simplefilter("ignore")

    from floe_monitoring_defs.contracts.loader import INTERNAL, ContractLoadError, load_contract_file
    from floe_monitoring_defs.contracts.servers import ServerOptions
    from floe_monitoring_tests.fuzz import mutations as mu

    options = ServerOptions(environment="prod")
    chooser = mu.RandomChooser(args.seed)
    with tempfile.TemporaryDirectory(prefix="floe_fuzz_bench_") as tmp:
        directory = Path(tmp) / "contracts"
        directory.mkdir()
        good = []
        for base in mu.good_contracts():
            path = directory / f"00_good_{base.name}"
            path.write_text(base.text, encoding="utf-8")
            good.append(path)
        started = time.perf_counter()
        kinds_of: dict[Path, str] = {}
        for i in range(args.mutants):
            m = mu.mutant(chooser)
            path = directory / f"mutant_{i:05d}_{m.base}"
            path.write_bytes(m.data)
            kinds_of[path] = "+".join(m.kinds)
        for special in mu.special_files():
            path = directory / f"special_{special.name}"
            special.make(path)
            kinds_of[path] = f"special:{special.name}"
        written = time.perf_counter() - started

        outcomes: collections.Counter[str] = collections.Counter()
        refusals: collections.Counter[str] = collections.Counter()
        crashes: list[str] = []
        slowest = (0.0, "")
        files = sorted(p for p in kinds_of if p.suffix in (".yaml", ".yml") and not p.is_dir())
        load_started = time.perf_counter()
        for path in files:
            t0 = time.perf_counter()
            try:
                load_contract_file(path, options)
                outcomes["loaded"] += 1
            except ContractLoadError as exc:
                if exc.error.field == INTERNAL:
                    outcomes["floe's own error (<internal>)"] += 1
                    crashes.append(f"{path.name} [{kinds_of[path]}]: {exc}")
                else:
                    outcomes["refused"] += 1
                    refusals[refusal_kind(exc.error.field, exc.error.message)] += 1
            except Exception as exc:  # what the issue forbids: counted, never fatal here
                outcomes["uncaught exception"] += 1
                crashes.append(f"{path.name} [{kinds_of[path]}]: {type(exc).__name__}: {exc}"[:300])
            took = time.perf_counter() - t0
            if took > slowest[0]:
                slowest = (took, f"{path.name} [{kinds_of[path]}]")
        loading = time.perf_counter() - load_started
        loading_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        defs_line = "skipped (--no-defs)"
        if not args.no_defs:
            import dagster as dg

            from floe_monitoring_defs.config import Settings
            from floe_monitoring_defs.definitions import build_defs

            t0 = time.perf_counter()
            settings = Settings(
                contracts_dir=directory,
                config_path=None,
                db_url=None,
                default_catalog=None,
                server_environment="prod",
            )
            try:
                defs = build_defs(settings)
                dg.Definitions.validate_loadable(defs)
                defs.get_repository_def()
                keys = {s.key for s in defs.resolve_all_asset_specs()}
                intact = all(
                    dg.AssetKey(t.ref.asset_path) in keys for p in good for t in load_contract_file(p, options).tables
                )
                defs_line = (
                    f"built in {time.perf_counter() - t0:.1f} s: {len(keys)} assets, "
                    f"{len(defs.resolve_asset_graph().asset_check_keys)} checks; good contracts intact: {intact}"
                )
            except Exception as exc:
                defs_line = f"FAILED: {type(exc).__name__}: {str(exc)[:300]}"

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"fuzz_contracts: {args.mutants} mutants (seed {args.seed}) + {len(mu.special_files())} special files")
    print(f"files loaded one by one: {len(files)} in {loading:.1f} s (written in {written:.1f} s)")
    for name in ("loaded", "refused", "floe's own error (<internal>)", "uncaught exception"):
        print(f"  {name:32s} {outcomes[name]:6d}")
    print("refusals by kind:")
    for name, n in refusals.most_common():
        print(f"  {name:32s} {n:6d}")
    print(f"slowest file: {slowest[0] * 1000:.1f} ms  {slowest[1]}")
    print(f"definitions on all of them + the 5 good contracts: {defs_line}")
    print(f"peak RSS: {loading_peak_mb:.0f} MB after writing and loading the files, {peak_mb:.0f} MB at the end")
    for line in crashes[:20]:
        print(f"  ! {line}")


if __name__ == "__main__":
    main()
