"""An invalid monitoring config at code-location load: one clean message naming the file and the dotted key, no
traceback, in `dagster definitions validate` (exit 1), in a Dagster code server's load (what `dagster dev` runs;
the location loads with the registry asset and a failing `monitoring_config_valid` check, nothing else) and
in-process. A bad channel is not a config error: validation passes and names the channel.

Subprocesses get a controlled environment (PATH, HOME and the variables set here; nothing of the developer's)
and run in a temporary directory, so no `.env` and no DAGSTER_HOME of the developer reach them.
"""

import logging
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml

from floe_monitoring_defs.config import ConfigError
from floe_monitoring_defs.definitions import build_defs
from floe_monitoring_defs.defs import REGISTRY_JOB
from floe_monitoring_defs.defs.assets import REGISTRY_KEY
from floe_monitoring_defs.defs.config_checks import CHANNELS_CHECK_NAME, CONFIG_CHECK_NAME, CONFIG_ERROR_SENSOR
from floe_monitoring_tests.dagster_metadata import text
from floe_monitoring_tests.integration.iceberg_helpers import CATALOG

pytestmark = pytest.mark.integration

DAGSTER = str(Path(sys.executable).parent / "dagster")
PASTED = "https://hooks.slack.com/services/T0PASTED/B0PASTED/pastedTOKEN0123456789"
UNDEFINED_ROUTE = (
    "alerts.routing_rules[1].channel_name: 'pager' is not a channel defined under alerts.channels "
    "(defined: ops-webhook); its alerts would go nowhere"
)

CONTRACT = {
    "apiVersion": "v3.1.0",
    "status": "active",
    "kind": "DataContract",
    "id": "urn:orders",
    "name": "orders",
    "version": "1.0.0",
    "servers": [
        {"server": "t", "type": "iceberg", "catalog": CATALOG, "catalogUrl": "sqlite:///x.db", "namespace": "s"}
    ],
    "schema": [{"name": "orders", "properties": [{"name": "id", "logicalType": "string"}]}],
    "slaProperties": [{"property": "availability", "value": "99%"}],
}

BAD_ROUTE = {
    "alerts": {
        "channels": {"ops-webhook": {"type": "webhook", "url": "http://127.0.0.1:9/hook"}},
        "routing_rules": [
            {"channel_name": "ops-webhook", "min_severity": "warning"},
            {"channel_name": "pager", "min_severity": "critical"},
        ],
    }
}


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    (contracts / "orders.yaml").write_text(yaml.safe_dump(CONTRACT))
    (tmp_path / "dagster_home").mkdir()
    for name, value in location_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    return tmp_path


def location_env(root: Path) -> dict[str, str]:
    return {
        "DAGSTER_HOME": str(root / "dagster_home"),
        "FLOE_CONTRACTS_DIR": str(root / "contracts"),
        "FLOE_MONITORING_CONFIG": str(root / "monitoring.yaml"),
        "FLOE_MONITORING_DB_URL": f"sqlite:///{root / 'floe.db'}",
    }


def run_dagster(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(root), **location_env(root)}
    return subprocess.run(
        [DAGSTER, *args, "-m", "floe_monitoring_defs"],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
        timeout=180,
        check=False,
    )


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        pytest.param(yaml.safe_dump(BAD_ROUTE), UNDEFINED_ROUTE, id="undefined-route"),
        pytest.param(
            "alerts:\n  dedup_window_minutes: 5\n  dedup_window_minutes: 10\n",
            "alerts.dedup_window_minutes: line 3: duplicate key (first at line 2)",
            id="duplicate-key",
        ),
    ],
)
def test_validate_exits_1_with_one_clean_line_per_problem(root: Path, config: str, expected: str) -> None:
    (root / "monitoring.yaml").write_text(config)
    proc = run_dagster(root, "definitions", "validate")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    assert f"floe-monitoring: invalid monitoring config: {root / 'monitoring.yaml'}: {expected}" in out.splitlines()
    assert "Traceback" not in out and "Stack Trace" not in out and 'File "' not in out
    assert "Validation successful" not in out


def test_validate_passes_with_a_bad_channel_and_names_it_without_the_pasted_secret(root: Path) -> None:
    config = {
        "alerts": {
            "channels": {
                "ops-webhook": {"type": "webhook", "url": "http://127.0.0.1:9/hook"},
                "team-slack": {"type": "slack", "webhook_url_env": PASTED},
            },
            "routing_rules": [{"channel_name": "team-slack", "min_severity": "warning"}],
        }
    }
    (root / "monitoring.yaml").write_text(yaml.safe_dump(config))
    proc = run_dagster(root, "definitions", "validate")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert (
        f"alert channel team-slack disabled: {root / 'monitoring.yaml'}: alerts.channels.team-slack.webhook_url_env: "
        "not the name of an environment variable; give the NAME of an environment variable that holds the secret, "
        "never the secret itself (the value is not shown); its alerts are held in the outbox until the config is "
        "fixed and the code location reloaded"
    ) in out.splitlines()
    assert "Validation successful for code location floe_monitoring_defs." in out
    assert "Traceback" not in out and PASTED not in out and "pastedTOKEN" not in out


def test_a_code_server_loads_the_location_under_an_invalid_config(root: Path) -> None:
    """`dagster job list` loads the location through a Dagster code server, as `dagster dev` does."""
    (root / "monitoring.yaml").write_text(yaml.safe_dump(BAD_ROUTE))
    proc = run_dagster(root, "job", "list")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    line = (
        "invalid monitoring config, no checks are scheduled until it is fixed and the code location reloaded: "
        f"{root / 'monitoring.yaml'}: {UNDEFINED_ROUTE}"
    )
    assert out.splitlines().count(line) == 1
    assert f"Job: {REGISTRY_JOB}" in out and "_checks" not in out
    assert "Traceback" not in out and "Stack Trace" not in out


def test_in_process_the_location_has_the_registry_and_its_failing_config_check_only(
    root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (root / "monitoring.yaml").write_text(yaml.safe_dump(BAD_ROUTE))
    caplog.set_level(logging.INFO, logger="floe_monitoring")
    defs = build_defs()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        "invalid monitoring config, no checks are scheduled until it is fixed and the code location reloaded: "
        f"{root / 'monitoring.yaml'}: {UNDEFINED_ROUTE}"
    ]
    with dg.instance_for_test() as instance:
        dg.Definitions.validate_loadable(defs)
        assert [s.key for s in defs.resolve_all_asset_specs()] == [REGISTRY_KEY]
        graph = defs.resolve_asset_graph()
        assert set(graph.asset_check_keys) == {dg.AssetCheckKey(REGISTRY_KEY, CONFIG_CHECK_NAME)}
        repo = defs.get_repository_def()
        assert {s.name for s in repo.sensor_defs} == {CONFIG_ERROR_SENSOR}  # no alert dispatch
        assert [s.job_name for s in repo.schedule_defs] == [REGISTRY_JOB]
        [spec] = defs.resolve_all_asset_specs()
        assert spec.metadata["floe/config_error"] == f"{root / 'monitoring.yaml'}: {UNDEFINED_ROUTE}"
        # the sensor asks for one run of the registry job per distinct error (Dagster runs a run_key once)
        first = config_error_run_key(defs, instance)
        assert first == config_error_run_key(build_defs(), instance)
        (root / "monitoring.yaml").write_text("mode: sometimes\n")
        assert config_error_run_key(build_defs(), instance) != first
        result = defs.resolve_job_def(REGISTRY_JOB).execute_in_process(instance=instance)
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.check_name == CONFIG_CHECK_NAME and not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert evaluation.description == (
        f"invalid monitoring config, no checks scheduled: {root / 'monitoring.yaml'}: {UNDEFINED_ROUTE}"
    )
    assert text(evaluation.metadata, "floe/config_files") == str(root / "monitoring.yaml")
    assert text(evaluation.metadata, "floe/config_keys") == "alerts.routing_rules[1].channel_name"


def config_error_run_key(defs: dg.Definitions, instance: dg.DagsterInstance) -> str:
    sensor = defs.resolve_sensor_def(CONFIG_ERROR_SENSOR)
    with dg.build_sensor_context(instance=instance, definitions=defs) as ctx:
        [request] = sensor.evaluate_tick(ctx).run_requests or []
    assert request.run_key is not None
    return request.run_key


def test_strict_raises_the_config_error_for_callers_that_report_it(root: Path) -> None:
    (root / "monitoring.yaml").write_text(yaml.safe_dump(BAD_ROUTE))
    with pytest.raises(ConfigError) as exc:
        build_defs(strict=True)
    assert str(exc.value) == f"{root / 'monitoring.yaml'}: {UNDEFINED_ROUTE}"


def test_a_bad_setting_in_the_environment_is_handled_the_same_way(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOE_MONITORING_CONFIG")
    monkeypatch.setenv("FLOE_SERVER_CATALOGS", "glue")
    defs = build_defs()
    [spec] = defs.resolve_all_asset_specs()
    assert spec.metadata["floe/config_error"] == (
        "FLOE_SERVER_CATALOGS: 'glue' is not <server type>=<pyiceberg catalog name>"
    )


def test_a_valid_config_passes_the_config_check_and_runs_the_channel_check(root: Path) -> None:
    (root / "monitoring.yaml").write_text(yaml.safe_dump({"retention_days": 30}))
    defs = build_defs()
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def(REGISTRY_JOB).execute_in_process(instance=instance)
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == {"contracts_valid", CONFIG_CHECK_NAME, CHANNELS_CHECK_NAME}
    assert evaluations[CONFIG_CHECK_NAME].passed
    assert evaluations[CONFIG_CHECK_NAME].description == f"monitoring config {root / 'monitoring.yaml'} is valid"
    assert evaluations[CHANNELS_CHECK_NAME].passed
    assert evaluations[CHANNELS_CHECK_NAME].description == "0 alert channels ready"


def test_without_a_config_file_the_config_check_says_so_once(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOE_MONITORING_CONFIG")
    defs = build_defs()
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def(REGISTRY_JOB).execute_in_process(instance=instance)
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert evaluations[CONFIG_CHECK_NAME].passed
    assert evaluations[CONFIG_CHECK_NAME].description == "monitoring config is valid"
