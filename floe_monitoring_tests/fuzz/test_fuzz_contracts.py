"""Bad input never takes monitoring down (issue 11, acceptance 1).

Mutants of valid contracts (`mutations.py`, drawn by hypothesis) and a fixed corpus of special files are
loaded beside the demo's five good contracts, through the loader and through the whole code location
(`build_defs` + `Definitions.validate_loadable`), and `dagster definitions validate` runs on a directory
mixing them. Every time:

* nothing raises but `ContractLoadError` from one file, and no error is floe's own (`<internal>`);
* every file ends as exactly one contract or one error naming it, with a bounded message;
* every good contract still loads, with the same assets and checks as without the bad files;
* every contract the loader accepts becomes Dagster definitions (what validates, loads).

Memory and time per file are bounded by construction (file size, nesting and alias limits); the special
files are read in a subprocess whose peak memory is reported and bounded.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from floe_monitoring_defs.config import Settings
from floe_monitoring_defs.contracts.errors import MAX_MESSAGE
from floe_monitoring_defs.contracts.loader import INTERNAL, ContractLoadError, load_contract_file, load_contracts
from floe_monitoring_defs.contracts.model import LoadReport
from floe_monitoring_defs.contracts.servers import ServerOptions
from floe_monitoring_defs.definitions import build_defs
from floe_monitoring_defs.defs.assets import REGISTRY_KEY
from floe_monitoring_tests.fuzz import mutations as mu

SERVER_ENVIRONMENT = "prod"  # corpus files with several servers name one `prod`
OPTIONS = ServerOptions(environment=SERVER_ENVIRONMENT)
GOOD_PREFIX = "00_good_"  # sorts first: a copy of a good contract in a mutant never claims its name first


class DrawChooser:
    """Choices drawn by hypothesis (a failing example shrinks to the smallest choices)."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data

    def integer(self, low: int, high: int) -> int:
        return self.data.draw(st.integers(low, high))

    def choice(self, options: Any) -> Any:
        return self.data.draw(st.sampled_from(options))


@pytest.fixture(autouse=True)
def hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No developer FLOE_* / PYICEBERG_* settings, DAGSTER_HOME or `.env` can reach the loader or the build."""
    for var in list(os.environ):
        if var.startswith(("FLOE_", "PYICEBERG_", "OTEL_", "OPENLINEAGE")) or var == "DAGSTER_HOME":
            monkeypatch.delenv(var)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def quiet_logs() -> Iterator[None]:
    """No log records: pytest keeps every record of a test, and a test of thousands of examples, each logging
    the files it refused, grew to gigabytes (the long profile)."""
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


@pytest.fixture
def workdir() -> Iterator[Path]:
    """Where the examples of one test put their directories (short: a socket path has at most 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="floe_fuzz_"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def fresh(workdir: Path) -> Path:
    """A new, empty directory for one hypothesis example (a fixture is set up once per test, not per example)."""
    return Path(tempfile.mkdtemp(dir=workdir))


def write_good(directory: Path) -> list[Path]:
    out = []
    for base in mu.good_contracts():
        path = directory / f"{GOOD_PREFIX}{base.name}"
        path.write_text(base.text, encoding="utf-8")
        out.append(path)
    return out


def settings_for(directory: Path) -> Settings:
    return Settings(
        contracts_dir=directory,
        config_path=None,
        db_url=None,
        default_catalog=None,
        server_environment=SERVER_ENVIRONMENT,
    )


def assert_sound(report: LoadReport, files: list[Path]) -> None:
    """Every file one outcome naming it, none of them floe's own bug, every message bounded."""
    outcomes: dict[str, list[str]] = {str(f): [] for f in files}
    for c in report.contracts:
        assert c.source in outcomes, f"a contract from a file not written: {c.source}"
        outcomes[c.source].append("contract")
    for e in report.errors:
        assert e.field != INTERNAL, f"floe's own error, not the contract's: {e}"
        assert e.source in outcomes, f"an error that names no file written: {e}"
        assert e.message and len(e.message) <= MAX_MESSAGE and len(e.field) <= MAX_MESSAGE, e
        outcomes[e.source].append("error")
    wrong = {f: o for f, o in outcomes.items() if len(o) != 1}
    assert not wrong, f"files without exactly one outcome: {wrong}"


def defs_keys(directory: Path) -> tuple[set[dg.AssetKey], set[dg.AssetCheckKey], dg.AssetSpec]:
    """Build the code location on `directory` as Dagster loads it; its asset keys, check keys, registry spec."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Dagster's preview/beta warnings are not what this test is about
        defs = build_defs(settings_for(directory))
        dg.Definitions.validate_loadable(defs)
        defs.get_repository_def()
        graph = defs.resolve_asset_graph()
        specs = {s.key: s for s in defs.resolve_all_asset_specs()}
    return set(specs), set(graph.asset_check_keys), specs[REGISTRY_KEY]


@cache
def good_baseline() -> tuple[frozenset[dg.AssetKey], frozenset[dg.AssetCheckKey]]:
    """The assets and checks of the five good contracts alone."""
    with tempfile.TemporaryDirectory(prefix="floe_fuzz_good_") as tmp:
        directory = Path(tmp)
        write_good(directory)
        assets, checks, _ = defs_keys(directory)
    return frozenset(assets - {REGISTRY_KEY}), frozenset(checks)


def assert_location(directory: Path, files: list[Path], good: list[Path]) -> None:
    """The loader's verdict holds for the whole location: good contracts intact, every file loaded or reported."""
    report = load_contracts([directory], OPTIONS)
    assert_sound(report, files)
    loaded = {c.source for c in report.contracts}
    assert {str(g) for g in good} <= loaded, f"a good contract did not load: {[str(e) for e in report.errors]}"
    assets, checks, registry = defs_keys(directory)  # raises when an accepted contract is not a valid definition
    good_assets, good_checks = good_baseline()
    assert good_assets <= assets and good_checks <= checks, "a good contract lost its asset or its checks"
    errors_md = registry.metadata["floe/errors"].md_str
    for c in report.contracts:
        keys = {dg.AssetKey(t.ref.asset_path) for t in c.tables}
        assert keys <= assets or f"`{c.source}`" in errors_md, f"{c.source} loaded but is neither built nor reported"
    for e in report.errors:
        assert f"`{e.source}`" in errors_md, f"the registry does not name {e.source}"


def write_mutants(directory: Path, ms: list[mu.Mutant]) -> list[Path]:
    out = []
    for i, m in enumerate(ms):
        path = directory / f"mutant_{i:03d}_{m.base}"
        path.write_bytes(m.data)
        out.append(path)
    return out


# ---------------------------------------------------------------------------------------------------
# Mutants
# ---------------------------------------------------------------------------------------------------


@settings(max_examples=settings().max_examples * 5)  # cheap: five times the profile's number (ci 200, long 25,000)
@given(data=st.data())
def test_a_mutant_alone_loads_or_is_refused_by_name(data: st.DataObject, workdir: Path) -> None:
    directory = fresh(workdir)
    m = mu.mutant(DrawChooser(data))
    [path] = write_mutants(directory, [m])
    try:
        contract = load_contract_file(path, OPTIONS)
    except ContractLoadError as exc:
        assert exc.error.source == str(path) and exc.error.field != INTERNAL, f"{m.kinds}: {exc}"
        assert len(exc.error.message) <= MAX_MESSAGE
    else:
        assert contract.source == str(path) and contract.tables
    assert_sound(load_contracts([directory], OPTIONS), [path])


@given(data=st.data())
def test_mutants_beside_good_contracts_never_take_the_location_down(data: st.DataObject, workdir: Path) -> None:
    ch = DrawChooser(data)
    directory = fresh(workdir)
    good = write_good(directory)
    mutants = write_mutants(directory, [mu.mutant(ch) for _ in range(ch.integer(1, 4))])
    assert_location(directory, good + mutants, good)


# ---------------------------------------------------------------------------------------------------
# Special files
# ---------------------------------------------------------------------------------------------------

SPECIALS = mu.special_files()


def make_specials(directory: Path) -> dict[str, Path]:
    made = {}
    for special in SPECIALS:
        path = directory / special.name
        special.make(path)
        made[special.name] = path
    return made


@pytest.mark.parametrize("special", SPECIALS, ids=[s.name for s in SPECIALS])
def test_each_special_file_is_refused_by_name_or_loads(special: mu.Special, tmp_path: Path) -> None:
    directory = tmp_path / "contracts"
    directory.mkdir()
    path = directory / special.name
    special.make(path)
    report = load_contracts([directory], OPTIONS)
    if special.expect is None:  # a good contract written another way (a BOM, UTF-16, inside a *.yaml directory)
        assert not report.errors and len(report.contracts) == 1, [str(e) for e in report.errors]
        return
    [error] = report.errors
    assert not report.contracts
    assert error.source == str(path) and error.field != INTERNAL
    assert special.expect in str(error), str(error)


def test_special_files_beside_good_contracts_never_take_the_location_down(tmp_path: Path) -> None:
    directory = tmp_path / "contracts"
    directory.mkdir()
    good = write_good(directory)
    made = make_specials(directory)
    files = good + [p for name, p in made.items() if name != "directory.yaml"]
    files.append(made["directory.yaml"] / "inner_good.yaml")
    files.append(directory / "symlink_pair_loop_other.txt")  # not named like a contract: not read
    assert_location(directory, [f for f in files if f.suffix in (".yaml", ".yml")], good)


def test_a_smaller_size_limit_from_the_settings_refuses_a_file_by_size(tmp_path: Path) -> None:
    directory = tmp_path / "contracts"
    directory.mkdir()
    [big, *_] = write_good(directory)
    settings = Settings.from_env({"FLOE_CONTRACTS_DIR": str(directory), "FLOE_CONTRACT_MAX_BYTES": "1k"})
    from floe_monitoring_defs.contracts.servers import server_options

    options = server_options(settings)
    assert options is not None and options.max_file_bytes == 1024
    sizes = {p: p.stat().st_size for p in directory.iterdir()}
    report = load_contracts([directory], options)
    refused = {e.source for e in report.errors if "FLOE_CONTRACT_MAX_BYTES" in e.message}
    assert refused == {str(p) for p, size in sizes.items() if size > 1024} and str(big) in refused


def controlled_env(tmp_path: Path) -> dict[str, str]:
    """What a subprocess gets: no developer variables; this checkout's code first (whatever the venv's editable
    install points at)."""
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "LC_ALL": "C.UTF-8", "PYTHONPATH": str(mu.REPO)}


MEMORY_PROBE = """
import json, resource, sys
from pathlib import Path
from floe_monitoring_defs.contracts.loader import load_contracts
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
report = load_contracts([Path(sys.argv[1])])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"before_kb": before, "after_kb": after, "errors": len(report.errors)}))
"""


def test_reading_the_special_files_stays_within_bounded_memory(tmp_path: Path) -> None:
    """Unbounded, the alias bomb took 1.6 GB and the /dev/zero symlink 8.4 GB (issue 11); bounded, the loader's
    peak over its imports is the largest document the limits allow (~110 MB per million values), well under 400."""
    directory = tmp_path / "contracts"
    directory.mkdir()
    make_specials(directory)
    env = controlled_env(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, str(directory)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,  # a guard against a hang, not a measurement
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    probe = json.loads(proc.stdout.strip().splitlines()[-1])
    assert probe["errors"] == sum(1 for s in SPECIALS if s.expect is not None)
    grown_mb = (probe["after_kb"] - probe["before_kb"]) / 1024
    assert grown_mb < 400, f"loading the special files grew the process by {grown_mb:.0f} MB"


def test_dagster_definitions_validate_exits_0_and_names_the_bad_files(tmp_path: Path) -> None:
    """The CLI Dagster users run, on a directory mixing good contracts, special files and mutants, in a controlled
    environment and working directory (no `.env`, no developer variables)."""
    directory = tmp_path / "contracts"
    directory.mkdir()
    write_good(directory)
    made = make_specials(directory)
    chooser = mu.RandomChooser(11)
    write_mutants(directory, [mu.mutant(chooser) for _ in range(20)])
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {
        **controlled_env(tmp_path),
        "DAGSTER_HOME": str(home),
        "FLOE_CONTRACTS_DIR": str(directory),
        "FLOE_SERVER_ENVIRONMENT": SERVER_ENVIRONMENT,
    }
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-m", "floe_monitoring_defs"],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # not the repository: Dagster reads a `.env` from the working directory
        timeout=600,  # a guard against a hang, not a measurement
        env=env,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "Validation successful" in out
    assert "Traceback" not in out, out[-3000:]
    for special in SPECIALS:
        if special.expect is not None:
            assert f"{made[special.name]}: " in out, f"{special.name} is not named in the output"
