"""Refuse data loss by default: in Kubernetes (`KUBERNETES_SERVICE_HOST` set, as in every pod) without
`FLOE_MONITORING_DB_URL`, the code location does not fall back to a SQLite store inside the pod. It loads with the
registry asset and its failing `monitoring_config_valid` check only (no contract check scheduled), says why in one
line naming both variables, and `dagster definitions validate` exits 1 with that line and no traceback. With the
URL set, or outside Kubernetes, nothing changes.

The Kubernetes variable is only ever an environment value here: nothing connects to it.
"""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from floe_monitoring_defs.config import KUBERNETES_ENV, ConfigError, Settings, require_durable_store
from floe_monitoring_defs.definitions import build_defs
from floe_monitoring_defs.defs import REGISTRY_JOB
from floe_monitoring_defs.defs.assets import REGISTRY_KEY
from floe_monitoring_defs.defs.config_checks import CONFIG_CHECK_NAME
from floe_monitoring_tests.integration.test_config_load import CONTRACT

pytestmark = pytest.mark.integration

DAGSTER = str(Path(sys.executable).parent / "dagster")
REPO = Path(__file__).resolve().parents[2]
SERVICE_HOST = "10.96.0.1"  # what a cluster's kubelet puts there; never contacted
MESSAGE = (
    f"FLOE_MONITORING_DB_URL: not set while running in Kubernetes ({KUBERNETES_ENV} is set): the monitoring store "
    "would be a SQLite file inside the pod, lost when the pod goes; set FLOE_MONITORING_DB_URL to the PostgreSQL "
    "store (postgresql+psycopg2://USER@HOST:5432/DB, from a Secret), or to a sqlite:////PATH on a persistent volume "
    "to keep SQLite deliberately"
)


def settings(db_url: str | None) -> Settings:
    return Settings(contracts_dir=Path("contracts"), config_path=None, db_url=db_url, default_catalog=None)


@pytest.mark.parametrize(
    ("environ", "db_url", "refused"),
    [
        ({KUBERNETES_ENV: SERVICE_HOST}, None, True),
        ({KUBERNETES_ENV: SERVICE_HOST}, "postgresql+psycopg2://floe@pg:5432/floe", False),
        ({KUBERNETES_ENV: SERVICE_HOST}, "sqlite:////var/lib/floe/floe.db", False),  # a volume: deliberate
        ({}, None, False),  # one machine: SQLite in DAGSTER_HOME, as always
        ({KUBERNETES_ENV: "  "}, None, False),
    ],
)
def test_the_guard(environ: dict[str, str], db_url: str | None, refused: bool) -> None:
    if refused:
        with pytest.raises(ConfigError) as info:
            require_durable_store(settings(db_url), environ)
        assert str(info.value) == MESSAGE
    else:
        require_durable_store(settings(db_url), environ)


@pytest.fixture
def pod(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A code location's environment as a pod would have it, without FLOE_MONITORING_DB_URL."""
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    (contracts / "orders.yaml").write_text(yaml.safe_dump(CONTRACT))
    (tmp_path / "dagster_home").mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("FLOE_CONTRACTS_DIR", str(contracts))
    monkeypatch.setenv(KUBERNETES_ENV, SERVICE_HOST)
    monkeypatch.delenv("FLOE_MONITORING_DB_URL", raising=False)
    return tmp_path


def test_in_a_pod_without_a_store_url_the_location_loads_with_the_failing_config_check_only(pod: Path) -> None:
    defs = build_defs()
    dg.Definitions.validate_loadable(defs)
    assert [s.key for s in defs.resolve_all_asset_specs()] == [REGISTRY_KEY]
    assert set(defs.resolve_asset_graph().asset_check_keys) == {dg.AssetCheckKey(REGISTRY_KEY, CONFIG_CHECK_NAME)}
    assert not [j for j in defs.get_repository_def().job_names if j.endswith("_checks")]
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def(REGISTRY_JOB).execute_in_process(instance=instance)
    [evaluation] = result.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert evaluation.description == f"invalid monitoring config, no checks scheduled: {MESSAGE}"
    # Nothing was created in the pod's filesystem: no SQLite store appeared in DAGSTER_HOME.
    assert not (pod / "dagster_home" / "floe_monitoring.db").exists()


def test_strict_raises_it(pod: Path) -> None:
    with pytest.raises(ConfigError, match="FLOE_MONITORING_DB_URL: not set while running in Kubernetes"):
        build_defs(strict=True)


def test_with_the_store_url_the_pod_loads_every_check(pod: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOE_MONITORING_DB_URL", f"sqlite:///{pod / 'volume' / 'floe.db'}")
    defs = build_defs(strict=True)
    assert "availability_every_5m_checks" in defs.get_repository_def().job_names


def test_definitions_validate_exits_1_with_the_one_line(pod: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(pod),
        "DAGSTER_HOME": str(pod / "dagster_home"),
        "FLOE_CONTRACTS_DIR": str(pod / "contracts"),
        KUBERNETES_ENV: SERVICE_HOST,
        "PYTHONPATH": str(REPO),  # this tree's package, whatever the venv's editable install points at
    }
    proc = subprocess.run(
        [DAGSTER, "definitions", "validate", "-m", "floe_monitoring_defs"],
        capture_output=True,
        text=True,
        cwd=pod,
        env=env,
        timeout=180,
        check=False,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    assert out.splitlines().count(f"floe-monitoring: invalid monitoring config: {MESSAGE}") == 1
    assert "Traceback" not in out and 'File "' not in out
