"""Quiet start (issue 14, scope 7): a plain `floe demo`, then `floe checks run` and `dagster dev` as the demo says
to run them, print no warning a user cannot act on.

Each runs in its own process in a controlled environment (a temporary working directory and HOME, no FLOE_*,
DAGSTER_HOME or .env of the caller) and its output is searched for any line that mentions a warning. Before this
issue every command printed Dagster's `BetaWarning` about `backfill_policy` (defs/sla.py), and `dagster dev` that
"the dagster.yaml file will not be used" (the repository root had one while DAGSTER_HOME pointed at the demo's).
The one warning left is Dagster's own advice to use `dg dev` instead of `dagster dev` (which works:
`[tool.dg]` in pyproject.toml); a user can act on it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import floe_monitoring_defs
from floe_monitoring_tests.alerting_receivers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WARNING = re.compile(r"warn", re.IGNORECASE)
DG_DEV_ADVICE = "SupersessionWarning: Function `dev_command` is superseded and its usage is discouraged. Use 'dg dev'"
SAFETY_TIMEOUT_SECONDS = 300.0  # only against a hang: the webserver answers within seconds
LOADED = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"


def warning_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if WARNING.search(line)]


@dataclass
class Demo:
    cwd: Path
    home: Path  # the DAGSTER_HOME the demo sets up and tells the user to use
    env: dict[str, str]
    proc: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """`floe demo --dir <tmp>/demo` from an empty working directory, as a new user runs it (a `.env` is written)."""
    root = tmp_path_factory.mktemp("quiet_start")
    cwd = root / "cwd"
    cwd.mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(root), "LANG": "C.UTF-8"}
    cmd = [str(BIN / "floe"), "demo", "--dir", str(root / "demo"), "--contracts", str(REPO / "examples" / "contracts")]
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)
    print(f"floe demo: {time.monotonic() - started:.1f} s")
    return Demo(cwd=cwd, home=root / "demo" / "dagster_home", env=env, proc=proc)


def test_floe_demo_prints_no_warning_and_sets_up_the_instance_config(demo: Demo) -> None:
    assert demo.proc.returncode == 0, demo.proc.stderr[-3000:]
    assert warning_lines(demo.proc.stderr) == []  # (stdout reports the demo's "early warning" results, by design)
    # The instance config Dagster reads ($DAGSTER_HOME/dagster.yaml) is the package's, whatever the working directory.
    package_yaml = Path(floe_monitoring_defs.__file__).with_name("dagster.yaml")
    assert (demo.home / "dagster.yaml").read_text("utf-8") == package_yaml.read_text("utf-8")
    assert f"DAGSTER_HOME={demo.home} " in demo.proc.stdout  # the command it tells the user to run


def test_floe_checks_run_prints_no_warning(demo: Demo) -> None:
    assert demo.proc.returncode == 0
    env = {**demo.env, "DAGSTER_HOME": str(demo.home)}
    proc = subprocess.run(
        [str(BIN / "floe"), "checks", "run"], cwd=demo.cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 1, proc.stderr[-3000:]  # the demo's contracts have ERROR violations, by design
    assert "customers" in proc.stdout and "FAIL" in proc.stdout
    assert warning_lines(proc.stderr) == []


@pytest.fixture
def dagster_dev(demo: Demo) -> Iterator[tuple[str, Path]]:
    """`DAGSTER_HOME=<the demo's> dagster dev`, from a working directory holding the demo's `.env` and a copy of the
    repository's workspace.yaml (the repository root itself would have the developer's .env)."""
    assert demo.proc.returncode == 0
    shutil.copy(REPO / "workspace.yaml", demo.cwd / "workspace.yaml")
    port = free_port()
    log = demo.cwd / "dagster_dev.log"
    env = {**demo.env, "DAGSTER_HOME": str(demo.home)}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port)],
            cwd=demo.cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the webserver, daemon and code server end with it
        )
        try:
            yield f"http://127.0.0.1:{port}/graphql", log
        finally:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


def test_dagster_dev_as_the_demo_says_warns_of_nothing_but_dg_dev(dagster_dev: tuple[str, Path]) -> None:
    url, log = dagster_dev
    # Dagster warns when the working directory has a dagster.yaml that DAGSTER_HOME does not point at.
    assert not (REPO / "dagster.yaml").exists(), "a dagster.yaml at the repository root: `dagster dev` warns of it"
    started = time.monotonic()
    statuses: list[str] = []
    while time.monotonic() - started < SAFETY_TIMEOUT_SECONDS:
        try:
            body = httpx.post(url, json={"query": LOADED}, timeout=10).json()
            statuses = [e["loadStatus"] for e in body["data"]["workspaceOrError"]["locationEntries"]]
        except httpx.HTTPError:
            statuses = []  # the webserver is still starting
        if statuses and all(s == "LOADED" for s in statuses):
            break
        time.sleep(1.0)
    print(f"dagster dev: location loaded after {time.monotonic() - started:.1f} s")
    text = log.read_text("utf-8", errors="replace")
    assert statuses == ["LOADED"], text[-3000:]
    assert "will not be used" not in text and "No dagster instance configuration file" not in text
    lines = warning_lines(text)
    assert len(lines) == 1 and DG_DEV_ADVICE in lines[0], lines
