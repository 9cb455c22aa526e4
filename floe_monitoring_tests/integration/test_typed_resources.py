"""Typed resources (issue 14, scope 4 and 5; acceptance 4 and 5), with real receivers on 127.0.0.1.

- Through Dagster's own entry points (subprocesses in a controlled environment): with one channel's secret
  variable unset, `dagster definitions validate -m floe_monitoring_defs` loads the location, a checks job run by
  `dagster job execute` delivers to the other channels, the registry's `alert_channels_ready` check fails naming
  the variable (read back from the Dagster instance, as the UI shows it), and `floe health` reports the channel
  unavailable (exit 1, degraded).
- In process: `alert_channels` is one typed resource nesting an `AlertChannelResource` per channel (the same objects
  as the top-level `alert_channel_<name>` resources), no op or sensor requires a channel by key, no resource config
  holds a secret value, each channel is built once per step or tick and its problem logged once per process.
- `floe_monitoring_defs` exposes a `@dg.definitions` function lazily: the package imports without Dagster and
  nothing is built until Dagster calls the function (then once per process).
- No module of the package imports a private Dagster API (`dagster._...`).
"""

from __future__ import annotations

import ast
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

import floe_monitoring_defs
from floe_monitoring_defs.alerting.channels.base import AlertChannel, build_channel
from floe_monitoring_defs.definitions import build_defs
from floe_monitoring_defs.defs import REGISTRY_JOB
from floe_monitoring_defs.defs import resources as resources_module
from floe_monitoring_defs.defs.assets import REGISTRY_KEY
from floe_monitoring_defs.defs.config_checks import CHANNELS_CHECK_NAME
from floe_monitoring_defs.defs.resources import AlertChannelsResource
from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_tests.alerting_receivers import (
    HTTPRecorder,
    cloudevents_responder,
    pagerduty_responder,
    slack_responder,
)
from floe_monitoring_tests.integration.iceberg_helpers import catalog_env, create, make_catalog
from floe_monitoring_tests.integration.test_channels_unset_secret import (
    HMAC_SECRET,
    PD_REASON,
    PD_VAR,
    ROUTING_KEY,
    SCHEMA,
    SLACK_PATH,
    channels_config,
    contract,
)

pytestmark = pytest.mark.integration

PACKAGE = Path(floe_monitoring_defs.__file__).resolve().parent
BIN = Path(sys.executable).parent
FRESHNESS_JOB = "freshness_every_15m_checks"
STEP_WARNING = f"alert channel pagerduty cannot deliver: {PD_REASON}; its alerts are held in the outbox and retried"
LOAD_ERROR = f"alert channel pagerduty disabled until environment variable {PD_VAR} is set"


@pytest.fixture
def receivers() -> Iterator[dict[str, HTTPRecorder]]:
    recs = {
        "webhook": HTTPRecorder(cloudevents_responder(HMAC_SECRET)).start(),
        "slack": HTTPRecorder(slack_responder(SLACK_PATH)).start(),
        "pagerduty": HTTPRecorder(pagerduty_responder(ROUTING_KEY)).start(),
    }
    yield recs
    for r in recs.values():
        r.stop()
    for r in recs.values():
        assert r.errors == []  # every request was valid for its receiver


@pytest.fixture
def location(tmp_path: Path, receivers: dict[str, HTTPRecorder]) -> dict[str, str]:
    """Two stale tables (`orders`, `items`: both past their PT1H freshness SLA, so one step alerts twice), their
    contracts and three channels, PagerDuty's routing key variable unset. Returns the location's environment."""
    cat = make_catalog(tmp_path)
    now = datetime.now(UTC)
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    for table in ("orders", "items"):
        rows: dict[str, list[Any]] = {
            "id": ["a"],
            "amount": [Decimal("1.00")],
            "updated_at": [now - timedelta(hours=3)],
        }
        create(cat, f"shop.{table}", SCHEMA, rows)
        (contracts / f"{table}.yaml").write_text(yaml.safe_dump(contract(table, table)))
    (tmp_path / "monitoring.yaml").write_text(yaml.safe_dump(channels_config(receivers)))
    return {
        **catalog_env(tmp_path),
        "FLOE_MONITORING_CONFIG": str(tmp_path / "monitoring.yaml"),
        "FLOE_CONTRACTS_DIR": str(contracts),
        "FLOE_MONITORING_DB_URL": f"sqlite:///{tmp_path / 'floe.db'}",
        "FLOE_TEST_HMAC": HMAC_SECRET,
        "FLOE_TEST_SLACK_URL": receivers["slack"].url_for(SLACK_PATH),
    }


def run_logs(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """The run's log messages at WARNING and above, from the instance's event log (what the UI shows)."""
    levels = (logging.WARNING, logging.ERROR, logging.CRITICAL)
    return [
        e.user_message for e in instance.all_logs(run_id) if e.level in (*levels, *map(logging.getLevelName, levels))
    ]


def held(store: MonitoringStore, channel: str) -> list[dict[str, object]]:
    return [d for d in store.outbox.deliveries() if d["channel"] == channel and d["state"] == "pending"]


# ---------------------------------------------------------------------------------------------------------------
# Through Dagster's entry points
# ---------------------------------------------------------------------------------------------------------------


def run(cmd: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)


def test_unset_secret_the_location_loads_the_others_deliver_and_the_check_and_floe_health_say_it(
    tmp_path: Path, location: dict[str, str], receivers: dict[str, HTTPRecorder]
) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "DAGSTER_HOME": str(home),
        **location,
    }
    assert PD_VAR not in env

    # The location loads, through Dagster's loader of `-m floe_monitoring_defs` (the @dg.definitions function),
    # with one ERROR line naming the channel and the variable.
    validate = run([str(BIN / "dagster"), "definitions", "validate", "-m", "floe_monitoring_defs"], env, cwd)
    out = validate.stdout + validate.stderr
    assert validate.returncode == 0, out[-3000:]
    assert "Validation successful for code location floe_monitoring_defs" in out
    assert sum(LOAD_ERROR in line for line in out.splitlines()) == 1, out[-3000:]

    # A checks run (Dagster's CLI, its own process): the other channels deliver both violations of the step.
    job = run([str(BIN / "dagster"), "job", "execute", "-m", "floe_monitoring_defs", "-j", FRESHNESS_JOB], env, cwd)
    out = job.stdout + job.stderr
    assert job.returncode == 0, out[-3000:]
    store = MonitoringStore(location["FLOE_MONITORING_DB_URL"])
    try:
        violations = {v.id for name in ("orders", "items") for v in store.results.violations(contract_name=name)}
        assert len(violations) == 2
        assert {r.json()["id"] for r in receivers["webhook"].requests} == violations
        assert len(receivers["slack"].requests) == 2
        assert receivers["pagerduty"].requests == []
        assert [d["last_error"] for d in held(store, "pagerduty")] == [PD_REASON, PD_REASON]
    finally:
        store.dispose()
    assert STEP_WARNING in out  # the step's log says it (the UI's run log too: below)

    # The registry job: `alert_channels_ready` fails, as the UI reads it from the instance.
    registry = run([str(BIN / "dagster"), "job", "execute", "-m", "floe_monitoring_defs", "-j", REGISTRY_JOB], env, cwd)
    assert registry.returncode == 0, (registry.stdout + registry.stderr)[-3000:]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        # (`dagster job execute` initializes the run's resources once more in its own process, after the run, to
        # offer the outputs: the step's process and that one each log the problem once.)
        [checks_run] = instance.get_runs(dg.RunsFilter(job_name=FRESHNESS_JOB))
        assert STEP_WARNING in run_logs(instance, checks_run.run_id)
        record = instance.get_latest_asset_check_evaluation_record(dg.AssetCheckKey(REGISTRY_KEY, CHANNELS_CHECK_NAME))
        assert record is not None and record.event is not None
        evaluation = record.event.asset_check_evaluation
    assert evaluation is not None
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    config_file = location["FLOE_MONITORING_CONFIG"]
    assert evaluation.description == (
        f"1 of 3 alert channels cannot deliver (their alerts are held): {config_file}: {PD_REASON}"
    )

    # `floe health`: degraded (exit 1), the channel unavailable with the variable's name, the others delivered.
    health = run([str(BIN / "floe"), "health", "--format", "json"], env, cwd)
    assert health.returncode == 1, health.stdout + health.stderr
    report = json.loads(health.stdout)
    assert report["status"] == "degraded"
    channels = {c["name"]: c for c in report["channels"]}
    assert (channels["pagerduty"]["state"], channels["pagerduty"]["reason"]) == ("unavailable", PD_REASON)
    assert {name: c["state"] for name, c in channels.items()} == {
        "ops-webhook": "configured",
        "pagerduty": "unavailable",
        "team-slack": "configured",
    }
    assert channels["ops-webhook"]["last_delivery"]["ok"] and channels["team-slack"]["last_delivery"]["ok"]
    assert {"level": "degraded", "what": f"channel pagerduty: unavailable: {PD_REASON}"} in report["problems"]
    texts = [validate.stdout, validate.stderr, job.stdout, job.stderr, registry.stdout, registry.stderr, health.stdout]
    for text in texts:
        assert HMAC_SECRET not in text and "xoxSECRETtoken77" not in text


# ---------------------------------------------------------------------------------------------------------------
# In process
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture
def in_process(location: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for k, v in location.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv(PD_VAR, raising=False)
    monkeypatch.setattr(resources_module, "_LOGGED", set())  # what earlier tests of this process logged
    return location


def test_channels_are_one_typed_resource_of_nested_channel_resources_without_secret_values(
    in_process: dict[str, str],
) -> None:
    defs = build_defs()
    resources = dict(defs.resources or {})
    alert_channels = resources["alert_channels"]
    assert isinstance(alert_channels, AlertChannelsResource)
    nested = alert_channels.channel_resources()
    assert [r.channel_name for r in nested] == ["ops-webhook", "pagerduty", "team-slack"]
    assert alert_channels.channel_names == ["ops-webhook", "pagerduty", "team-slack"]
    # The same objects are top-level resources, so the UI lists every channel.
    for r in nested:
        assert resources[resources_module.resource_key(r.channel_name)] is r
    by_name = {r.channel_name: r for r in nested}
    assert (by_name["ops-webhook"].channel_type, by_name["ops-webhook"].secret_env) == (
        "webhook",
        {"secret_env": "FLOE_TEST_HMAC"},
    )
    assert sorted(by_name["ops-webhook"].settings) == ["timeout_seconds", "url"]
    assert str(by_name["ops-webhook"].settings["url"]).startswith("http://127.0.0.1:")
    assert by_name["pagerduty"].secret_env == {"routing_key_env": PD_VAR}
    assert all(r.disabled_reason == "" for r in nested)  # an unset variable is not a wrong setting

    # Typed parameters everywhere: the steps and the sensor need `alert_channels`, never one channel by key.
    repo = defs.get_repository_def()
    required: set[str] = set()
    for job in repo.get_all_jobs():
        for node_def in job.graph.node_defs:
            assert isinstance(node_def, dg.OpDefinition)
            required |= set(node_def.required_resource_keys)
    sensor = defs.resolve_sensor_def("alert_dispatch_sensor")
    assert set(sensor.required_resource_keys) == {"alert_channels", "floe_store"}
    checks_job = defs.resolve_job_def(FRESHNESS_JOB)
    [checks_op] = [n for n in checks_job.graph.node_defs if isinstance(n, dg.OpDefinition)]
    assert set(checks_op.required_resource_keys) == {"alert_channels", "floe_store", "iceberg"}
    assert not {k for k in required | set(sensor.required_resource_keys) if k.startswith("alert_channel_")}

    # No secret value in what Dagster keeps and shows of the resources (config, defaults, descriptions).
    shown = [repr(repo.get_top_level_resources())]
    for r in resources.values():
        if isinstance(r, dg.ConfigurableResource):
            shown.append(json.dumps(r.model_dump(), default=str))
    for res_def in repo.get_top_level_resources().values():
        shown.append(json.dumps(res_def.config_schema.default_value if res_def.config_schema else None, default=str))
    blob = "\n".join(shown)
    assert "FLOE_TEST_HMAC" in blob and PD_VAR in blob  # the variables' names are shown...
    assert HMAC_SECRET not in blob and "xoxSECRETtoken77" not in blob  # ...never their values


def test_each_channel_is_built_once_per_step_or_tick_and_its_problem_logged_once_per_process(
    in_process: dict[str, str],
    receivers: dict[str, HTTPRecorder],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    builds: list[str] = []

    def counting_build(name: str, spec: Any, environ: Any = None) -> AlertChannel:
        builds.append(name)
        return build_channel(name, spec, environ)

    monkeypatch.setattr(resources_module, "build_channel", counting_build)
    defs = build_defs()
    everyone = ["ops-webhook", "pagerduty", "team-slack"]
    assert builds == []  # the resources build no channel at load (the load only judges them: open_channels)
    store = MonitoringStore(in_process["FLOE_MONITORING_DB_URL"])
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def(FRESHNESS_JOB).execute_in_process(instance=instance)
        assert result.success
        # One step, two violations, two eager dispatches: each channel built once, for the step.
        assert sorted(builds) == everyone
        assert len(receivers["webhook"].requests) == 2 and len(receivers["slack"].requests) == 2
        assert run_logs(instance, result.run_id).count(STEP_WARNING) == 1

        # Another run of this process: the channel is built again (the variable read again), its unchanged problem
        # is not logged again.
        builds.clear()
        again = defs.resolve_job_def(REGISTRY_JOB).execute_in_process(instance=instance)
        assert sorted(builds) == everyone
        assert STEP_WARNING not in run_logs(instance, again.run_id)
        [channels_check] = [e for e in again.get_asset_check_evaluations() if e.check_name == CHANNELS_CHECK_NAME]
        assert not channels_check.passed

        # A dispatch tick builds each channel once; with the variable set, the held alerts go out.
        monkeypatch.setenv(PD_VAR, ROUTING_KEY)
        builds.clear()
        sensor = defs.resolve_sensor_def("alert_dispatch_sensor")
        # As the daemon evaluates it: with the resources the sensor requires (the daemon builds no other).
        required = {k: v for k, v in (defs.resources or {}).items() if k in sensor.required_resource_keys}
        with dg.build_sensor_context(instance=instance, definitions=defs, resources=required) as ctx:
            summary = sensor.evaluate_tick(ctx).skip_message or ""
        assert sorted(builds) == everyone
        assert "channels unavailable" not in summary
        assert held(store, "pagerduty") == []
        assert len(receivers["pagerduty"].requests) == 2  # each contract's alert, once

        # The variable goes away again: the problem is new after the recovery, so it is logged again.
        monkeypatch.delenv(PD_VAR)
        third = defs.resolve_job_def(REGISTRY_JOB).execute_in_process(instance=instance)
        assert run_logs(instance, third.run_id).count(STEP_WARNING) == 1
    store.dispose()


# ---------------------------------------------------------------------------------------------------------------
# The lazy entry point
# ---------------------------------------------------------------------------------------------------------------

LAZY_PROBE = """
import sys
import floe_monitoring_defs
print("dagster imported by the package:", "dagster" in sys.modules)
location = floe_monitoring_defs.location
from floe_monitoring_defs import definitions
print("built on access:", definitions._location.cache_info().currsize)
first, second = location(), location()
import dagster as dg
print("definitions:", isinstance(first, dg.Definitions), first is second, definitions._location.cache_info().misses)
print("subpackage:", type(floe_monitoring_defs.defs).__name__)
"""


def test_the_package_exposes_a_lazy_definitions_function_built_once_per_process(tmp_path: Path) -> None:
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "FLOE_CONTRACTS_DIR": str(contracts)}
    proc = run([sys.executable, "-c", LAZY_PROBE], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "dagster imported by the package: False",
        "built on access: 0",
        "definitions: True True 1",
        "subpackage: module",
    ]


# ---------------------------------------------------------------------------------------------------------------
# Public Dagster APIs only
# ---------------------------------------------------------------------------------------------------------------


def _dagster_module(name: str | None) -> bool:
    return name is not None and name.split(".")[0].startswith("dagster")


def private_dagster_uses(source: str, filename: str = "<source>") -> list[str]:
    """Every import of a private Dagster module or name, and every private attribute read off a Dagster module."""
    found: list[str] = []
    aliases: set[str] = set()
    tree = ast.parse(source, filename)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _dagster_module(alias.name):
                    aliases.add((alias.asname or alias.name).split(".")[0])
                    if any(part.startswith("_") for part in alias.name.split(".")):
                        found.append(f"{filename}:{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and _dagster_module(node.module):
            assert node.module is not None
            parts = node.module.split(".")
            if any(p.startswith("_") for p in parts) or any(a.name.startswith("_") for a in node.names):
                found.append(f"{filename}:{node.lineno}: from {node.module} import ...")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            if node.attr.startswith("_"):
                found.append(f"{filename}:{node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_the_checker_finds_private_dagster_apis() -> None:
    """Negative control: each form the package must not use is found."""
    source = (
        "import dagster as dg\n"
        "import dagster._check as check\n"
        "from dagster._core.definitions import AssetsDefinition\n"
        "from dagster import _seven\n"
        "x = dg._core\n"
        "from dagster_k8s import k8s_job_executor\n"
        "y = dg.EnvVar('A').get_value()\n"
    )
    assert [f.split(": ", 1)[1] for f in private_dagster_uses(source)] == [
        "import dagster._check",
        "from dagster._core.definitions import ...",
        "from dagster import ...",
        "dg._core",
    ]


def test_the_package_uses_public_dagster_apis_only() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert PACKAGE / "defs" / "resources.py" in files
    found = [f for path in files for f in private_dagster_uses(path.read_text("utf-8"), str(path))]
    assert found == []
