"""Scale-out: the checks jobs' executor comes from the monitoring config's `executor` (in-process, multiprocess,
one Kubernetes pod per step), Dagster's default is kept when nothing is set, and with the multiprocess executor two
steps of one checks job really run at the same time in two processes (read back from the run's event log)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from floe_monitoring_defs.config import ConfigError, MonitoringConfig, Settings
from floe_monitoring_defs.definitions import build_defs
from floe_monitoring_defs.defs import REGISTRY_JOB
from floe_monitoring_defs.models import ViolationType
from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_tests.integration.test_dagster_location import contract_doc
from floe_monitoring_tests.rendezvous_kind import NAME, TAG, register_rendezvous_kind

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
JOB = f"{NAME}_every_60m_checks"  # the rendezvous kind's default cadence
TABLES = ("alpha", "beta")
# A serial executor makes the first check wait this long for a party that cannot come, then fail the test.
RENDEZVOUS_TIMEOUT_SECONDS = 60


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = register_rendezvous_kind(tmp_path / "site")
    monkeypatch.syspath_prepend(str(root))
    return root


@pytest.fixture
def contracts(tmp_path: Path) -> Path:
    """Two contracts tagged for the rendezvous kind (their tables are never read: the kind reads no table)."""
    directory = tmp_path / "contracts"
    directory.mkdir()
    for table in TABLES:
        doc = {**contract_doc(table, table), "tags": [TAG]}
        (directory / f"{table}.yaml").write_text(yaml.safe_dump(doc))
    return directory


def settings_for(tmp_path: Path, contracts: Path, executor: dict[str, Any] | None) -> Settings:
    config = tmp_path / "monitoring.yaml"
    config.write_text(yaml.safe_dump({"executor": executor} if executor is not None else {}))
    return Settings(
        contracts_dir=contracts, config_path=config, db_url=f"sqlite:///{tmp_path / 'floe.db'}", default_catalog=None
    )


def test_without_the_setting_every_job_keeps_dagsters_default_executor(
    tmp_path: Path, contracts: Path, plugin: Path
) -> None:
    defs = build_defs(settings_for(tmp_path, contracts, None), strict=True)
    job = defs.resolve_job_def(JOB)
    assert job.executor_def.name == dg.multi_or_in_process_executor.name
    assert defs.resolve_job_def(REGISTRY_JOB).executor_def.name == dg.multi_or_in_process_executor.name
    assert len(job.nodes) == 1  # both checks in one step (500 per step)


@pytest.mark.parametrize(
    ("executor", "name"),
    [
        ({"type": "in_process"}, "in_process"),
        ({"type": "multiprocess", "max_concurrent": 2}, "multiprocess"),
        ({"type": "k8s", "max_concurrent": 8, "step_resources": {"requests": {"cpu": "500m"}}}, "k8s"),
    ],
)
def test_the_setting_reaches_the_checks_jobs_only(
    tmp_path: Path, contracts: Path, plugin: Path, executor: dict[str, Any], name: str
) -> None:
    defs = build_defs(settings_for(tmp_path, contracts, {**executor, "checks_per_step": 1}), strict=True)
    dg.Definitions.validate_loadable(defs)
    job = defs.resolve_job_def(JOB)
    assert job.executor_def.name == name
    assert sorted(node.name for node in job.nodes) == [f"{NAME}_every_60m", f"{NAME}_every_60m_part1"]
    freshness = defs.resolve_job_def("freshness_every_15m_checks")
    assert freshness.executor_def.name == name
    # The registry job (one small step) keeps Dagster's default.
    assert defs.resolve_job_def(REGISTRY_JOB).executor_def.name == dg.multi_or_in_process_executor.name


@pytest.mark.parametrize(
    ("executor", "message"),
    [
        ({"type": "in_process", "max_concurrent": 2}, "executor.max_concurrent: only for the multiprocess and k8s"),
        (
            {"type": "multiprocess", "step_resources": {"limits": {"cpu": 1}}},
            "executor.step_resources: only for the k8s",
        ),
        ({"type": "threads"}, "executor.type: Input should be 'default', 'in_process', 'multiprocess' or 'k8s'"),
        ({"checks_per_step": 501}, "executor.checks_per_step: Input should be less than or equal to 500"),
    ],
)
def test_a_wrong_executor_setting_is_a_config_error_naming_the_key(
    tmp_path: Path, contracts: Path, executor: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        build_defs(settings_for(tmp_path, contracts, executor), strict=True)
    assert message in str(info.value)
    assert str(info.value).startswith(str(tmp_path / "monitoring.yaml"))


def test_the_default_is_what_the_config_says_without_the_key() -> None:
    executor = MonitoringConfig().executor
    assert (executor.type, executor.max_concurrent, executor.checks_per_step, executor.step_resources) == (
        "default",
        None,
        500,
        None,
    )


@pytest.fixture
def location(tmp_path: Path, contracts: Path, plugin: Path) -> Iterator[dict[str, str]]:
    """The environment of `dagster job execute`: a Dagster home, the contracts, a multiprocess executor with one
    check per step, a store, the rendezvous of two parties, and the plugin's distribution on PYTHONPATH."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    meeting = tmp_path / "rendezvous"
    meeting.mkdir()
    config = tmp_path / "monitoring.yaml"
    config.write_text(yaml.safe_dump({"executor": {"type": "multiprocess", "max_concurrent": 2, "checks_per_step": 1}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOE_", "RENDEZVOUS_"))} | {
        "DAGSTER_HOME": str(home),
        "FLOE_CONTRACTS_DIR": str(contracts),
        "FLOE_MONITORING_CONFIG": str(config),
        "FLOE_MONITORING_DB_URL": f"sqlite:///{tmp_path / 'floe.db'}",
        "RENDEZVOUS_DIR": str(meeting),
        "RENDEZVOUS_PARTIES": str(len(TABLES)),
        "RENDEZVOUS_TIMEOUT_SECONDS": str(RENDEZVOUS_TIMEOUT_SECONDS),
        "PYTHONPATH": os.pathsep.join([str(plugin), str(REPO)]),
    }
    env.pop("KUBERNETES_SERVICE_HOST", None)  # the store is SQLite here, as on one machine
    yield env


def test_multiprocess_steps_run_at_the_same_time_in_their_own_processes(
    tmp_path: Path, location: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    dagster = Path(sys.executable).parent / "dagster"
    proc = subprocess.Popen(
        [str(dagster), "job", "execute", "-m", "floe_monitoring_defs", "-j", JOB],
        env=location,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err[-3000:]

    monkeypatch.setenv("DAGSTER_HOME", location["DAGSTER_HOME"])
    with dg.DagsterInstance.get() as instance:
        [run] = instance.get_runs()
        assert run.job_name == JOB and run.status == dg.DagsterRunStatus.SUCCESS
        records = instance.get_records_for_run(
            run.run_id, of_type={dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS}
        ).records
    starts = {
        r.event_log_entry.step_key: r
        for r in records
        if r.event_log_entry.dagster_event_type == dg.DagsterEventType.STEP_START
    }
    ends = {
        r.event_log_entry.step_key: r
        for r in records
        if r.event_log_entry.dagster_event_type == dg.DagsterEventType.STEP_SUCCESS
    }
    assert set(starts) == set(ends) == {f"{NAME}_every_60m", f"{NAME}_every_60m_part1"}

    # Two processes, neither the run's own: each step was a child process of the multiprocess executor.
    step_pids = {key: r.event_log_entry.dagster_event.pid for key, r in starts.items()}  # type: ignore[union-attr]
    assert len(set(step_pids.values())) == 2 and proc.pid not in step_pids.values()
    # The steps overlapped: each started before the other ended. The steps' processes write their own events, so
    # the order of the log is the order in which things happened.
    assert max(r.storage_id for r in starts.values()) < min(r.storage_id for r in ends.values())

    # And each check met the other while it ran, in the process its step started in.
    store = MonitoringStore(location["FLOE_MONITORING_DB_URL"])
    try:
        results = store.results.check_results(check_type=ViolationType(NAME))
    finally:
        store.dispose()
    assert sorted(r.contract_name for r in results) == sorted(TABLES)
    assert all(r.details["met"] is True for r in results), [r.details for r in results]
    assert {r.details["pid"] for r in results} == set(step_pids.values())
