"""The code location through Dagster: definitions, checks-only jobs, schedules, CLI and validation."""

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest
import yaml
from click.testing import CliRunner
from pyiceberg.schema import Schema
from pyiceberg.types import DecimalType, FloatType, NestedField, StringType, TimestamptzType

from floe_monitoring_defs.cli import cli
from floe_monitoring_defs.definitions import build_defs
from floe_monitoring_defs.defs.assets import REGISTRY_KEY
from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_tests.dagster_metadata import number, table_records
from floe_monitoring_tests.integration.iceberg_helpers import CATALOG, catalog_env, create, make_catalog

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def contract_doc(name: str, table: str, amount_type: str = "DECIMAL(10,2)", freshness: str = "PT1H") -> dict:
    return {
        "apiVersion": "v3.1.0",
        "status": "active",
        "kind": "DataContract",
        "id": f"urn:{name}",
        "name": name,
        "version": "1.2.3",
        "domain": "shop",
        "servers": [
            {"server": "t", "type": "iceberg", "catalog": CATALOG, "catalogUrl": "sqlite:///x.db", "namespace": "shop"}
        ],
        "team": {"members": [{"username": "owner@example.com", "role": "owner"}]},
        "schema": [
            {
                "name": table,
                "properties": [
                    {"name": "id", "logicalType": "string", "primaryKey": True, "required": True},
                    {"name": "amount", "logicalType": "number", "physicalType": amount_type, "required": True},
                    {"name": "email", "logicalType": "string", "classification": "pii"},
                    {"name": "updated_at", "logicalType": "timestamp", "required": True},
                ],
            }
        ],
        "slaProperties": [{"property": "freshness", "value": freshness, "element": "updated_at"}],
        "customProperties": [{"property": "consumers", "value": ["bi"]}],
    }


SCHEMA = Schema(
    NestedField(1, "id", StringType(), required=True),
    NestedField(2, "amount", DecimalType(10, 2), required=True),
    NestedField(3, "email", StringType(), required=False),
    NestedField(4, "updated_at", TimestamptzType(), required=True),
    identifier_field_ids=[1],
)


@pytest.fixture
def location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Two real tables (fresh `good`, stale and drifted `bad`), their contracts, and the env a deploy sets."""
    for k, v in catalog_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    cat = make_catalog(tmp_path)
    now = datetime.now(UTC)
    create(
        cat,
        "shop.good",
        SCHEMA,
        {
            "id": ["a", "b"],
            "amount": [Decimal("1.00")] * 2,
            "email": ["a@example.com", "b@example.com"],
            "updated_at": [now - timedelta(minutes=5)] * 2,
        },
    )
    bad_schema = Schema(
        *[f if f.name != "amount" else NestedField(2, "amount", FloatType(), required=True) for f in SCHEMA.fields],
        identifier_field_ids=[1],
    )
    create(
        cat,
        "shop.bad",
        bad_schema,
        {
            "id": ["c"],
            "amount": [2.0],
            "email": ["secret.person@example.com"],
            "updated_at": [now - timedelta(hours=5)],
        },
    )
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    (contracts / "good.yaml").write_text(yaml.safe_dump(contract_doc("good", "good")))
    (contracts / "bad.yaml").write_text(yaml.safe_dump(contract_doc("bad", "bad")))
    monkeypatch.setenv("FLOE_CONTRACTS_DIR", str(contracts))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("FLOE_MONITORING_DB_URL", f"sqlite:///{tmp_path / 'floe.db'}")
    monkeypatch.delenv("FLOE_MONITORING_CONFIG", raising=False)
    (tmp_path / "dagster_home").mkdir()
    yield contracts


def test_definitions_shape(location: Path) -> None:
    defs = build_defs()
    dg.Definitions.validate_loadable(defs)
    specs = {s.key: s for s in defs.resolve_all_asset_specs()}
    good = specs[dg.AssetKey(["shop", "good"])]
    assert good.owners == ["owner@example.com"] and good.group_name == "shop"
    assert good.tags["floe/contract"] == "good" and "iceberg" in good.kinds
    cols = good.metadata["dagster/column_schema"].columns
    assert [(c.name, c.constraints.nullable) for c in cols] == [
        ("id", False),
        ("amount", False),
        ("email", True),
        ("updated_at", False),
    ]
    assert REGISTRY_KEY in specs
    graph = defs.resolve_asset_graph()
    names = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert {
        ("shop/good", "freshness"),
        ("shop/good", "schema_drift"),
        ("shop/bad", "freshness"),
        ("shop/bad", "schema_drift"),
        ("floe/contract_registry", "contracts_valid"),
    } <= names
    repo = defs.get_repository_def()
    assert {"freshness_every_15m_checks", "schema_drift_every_60m_checks"} <= set(repo.job_names)
    sched = defs.resolve_schedule_def("freshness_every_15m_schedule")
    assert sched.cron_schedule == "*/15 * * * *"
    assert sched.default_status == dg.DefaultScheduleStatus.RUNNING
    # Checks of one type and cadence are one step, not one per contract.
    job = defs.resolve_job_def("freshness_every_15m_checks")
    assert len(job.graph.node_defs) == 1


def test_checks_job_runs_in_one_step_and_stores_results(location: Path) -> None:
    defs = build_defs()
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("schema_drift_every_60m_checks").execute_in_process(instance=instance)
        assert result.success
        evals = {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations()}
        steps = [e for e in result.all_events if e.event_type_value == "STEP_START"]
    assert len(steps) == 1
    assert evals["good"].passed
    bad = evals["bad"]
    assert not bad.passed and bad.severity == dg.AssetCheckSeverity.ERROR
    assert bad.metadata["floe/severity"].value == "error"
    assert table_records(bad.metadata, "drift")[0].data["drift"] == "type_changed"
    store = MonitoringStore(os.environ["FLOE_MONITORING_DB_URL"])
    [v] = store.results.violations(contract_name="bad")
    assert v.event.element == "amount" and v.event.affected_consumers == ["bi"]
    store.dispose()


def test_freshness_results_map_severity_and_evidence(location: Path) -> None:
    defs = build_defs()
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("freshness_every_15m_checks").execute_in_process(instance=instance)
        evals = {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations()}
        history = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(dg.AssetKey(["shop", "bad"]), "freshness"), limit=5
        )
    assert evals["good"].passed and number(evals["good"].metadata, "age_seconds") < 600
    bad = evals["bad"]
    assert not bad.passed and bad.metadata["threshold_seconds"].value == 3600
    assert bad.metadata["age_seconds"].value == pytest.approx(5 * 3600, abs=120)
    assert len(history) == 1  # kept in Dagster's own storage too
    # No value of the pii column appears anywhere in what the run produced.
    text = repr([(e.description, dict(e.metadata)) for e in evals.values()])
    assert "secret.person" not in text


def test_schedule_skips_a_tick_while_the_previous_run_is_going(location: Path) -> None:
    defs = build_defs()
    sched = defs.resolve_schedule_def("freshness_every_15m_schedule")
    with dg.instance_for_test() as instance:
        ctx = dg.build_schedule_context(
            instance=instance,
            repository_def=defs.get_repository_def(),
            scheduled_execution_time=datetime(2026, 11, 28, 12, 15, tzinfo=UTC),
        )
        first = sched.evaluate_tick(ctx)
        assert first.run_requests and first.run_requests[0].tags["floe/check_type"] == "freshness"
        job = defs.resolve_job_def("freshness_every_15m_checks")
        run = instance.create_run_for_job(job_def=job, run_config={})
        instance.handle_run_event(
            run.run_id, dg.DagsterEvent(event_type_value="PIPELINE_START", job_name=job.name, message="started")
        )
        second = sched.evaluate_tick(ctx)
        assert not second.run_requests and "still STARTED" in (second.skip_message or "")


def test_broken_contract_does_not_stop_the_others(location: Path) -> None:
    (location / "broken.yaml").write_text(yaml.safe_dump({**contract_doc("broken", "broken"), "version": "one"}))
    defs = build_defs()
    dg.Definitions.validate_loadable(defs)
    keys = {s.key for s in defs.resolve_all_asset_specs()}
    assert dg.AssetKey(["shop", "good"]) in keys and dg.AssetKey(["shop", "broken"]) not in keys
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("floe_contract_registry_job").execute_in_process(instance=instance)
    [ev] = [e for e in result.get_asset_check_evaluations() if e.check_name == "contracts_valid"]
    assert not ev.passed and "broken.yaml: version:" in (ev.description or "")


def test_dagster_definitions_validate_cli(location: Path) -> None:
    (location / "broken.yaml").write_text(
        "apiVersion: v3.1.0\nkind: DataContract\nid: x\nversion: 1.0.0\n"
        "schema:\n  - name: t\n    properties:\n      - name: a\n"
        "        logicalType: money\n"
    )
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-m", "floe_monitoring_defs"],
        capture_output=True,
        text=True,
        cwd=location.parent,  # not the repo: Dagster loads a `.env` from the working directory (`floe demo` writes one)
        timeout=180,
        env={**os.environ},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    assert "broken.yaml: schema[0].properties[0].logicalType" in out
    assert "Validation successful" in out


def test_floe_cli(location: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["contracts", "validate", str(location)])
    assert res.exit_code == 0 and "2 valid, 0 invalid" in res.output
    res = runner.invoke(cli, ["contracts", "list"])
    assert res.exit_code == 0 and "shop.good" in res.output and "PT1H on updated_at" in res.output
    res = runner.invoke(cli, ["checks", "run", "--contract", "good"])
    assert res.exit_code == 0, res.output
    assert "good" in res.output and "bad " not in res.output
    res = runner.invoke(cli, ["checks", "run", "--type", "schema_drift"])
    assert res.exit_code == 1  # ERROR type change on `bad`
    assert "float" in res.output
    (location / "x.yaml").write_text("name: [")
    res = runner.invoke(cli, ["contracts", "validate", str(location)])
    assert res.exit_code == 1 and "x.yaml: line" in res.output


def test_db_upgrade_builds_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    monkeypatch.setenv("FLOE_MONITORING_DB_URL", url)
    res = CliRunner().invoke(cli, ["db", "upgrade"])
    assert res.exit_code == 0 and "revision 0007" in res.output
    assert MonitoringStore(url, auto_migrate=False).db.current_revision() == "0007"


def test_demo_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    for var in ("DAGSTER_HOME", "FLOE_MONITORING_DB_URL", "FLOE_CONTRACTS_DIR"):
        monkeypatch.delenv(var, raising=False)
    res = CliRunner().invoke(cli, ["demo"])
    assert res.exit_code == 0, res.output
    assert "customers: stale (ERROR)" in res.output
    assert "products: drifted (CRITICAL)" in res.output
    assert "shipments: early warning (INFO)" in res.output
    assert "customers: failing quality rules (ERROR)" in res.output
    assert "inventory: unavailable (ERROR)" in res.output
    for check in ("freshness", "schema_drift", "quality", "availability"):
        assert f" {check} " in res.output
    assert (tmp_path / ".floe_demo" / "dagster_home" / "floe_monitoring.db").exists()

    # A newcomer's next commands, in a fresh process environment: the .env the demo wrote is read
    for name in [n for n in os.environ if n.startswith(("FLOE_", "PYICEBERG_CATALOG"))] + ["DAGSTER_HOME"]:
        monkeypatch.delenv(name, raising=False)
    res = CliRunner().invoke(cli, ["checks", "run", "--contract", "orders", "--type", "freshness"])
    assert res.exit_code == 0, res.output
    assert "orders" in res.output and "PASS" in res.output
    res = CliRunner().invoke(cli, ["sla", "report", "--contract", "customers", "--window", "daily"])
    assert res.exit_code == 0, res.output
    assert "customers" in res.output


def test_registered_contracts_are_restored_from_the_store(location: Path, tmp_path: Path) -> None:
    extra = tmp_path / "registered"
    extra.mkdir()
    (extra / "third.yaml").write_text(yaml.safe_dump(contract_doc("third", "third")))
    runner = CliRunner()
    res = runner.invoke(cli, ["contracts", "register", str(extra)])
    assert res.exit_code == 0 and "registered third 1.2.3" in res.output
    keys = {s.key for s in build_defs().resolve_all_asset_specs()}
    assert dg.AssetKey(["shop", "third"]) in keys and dg.AssetKey(["shop", "good"]) in keys
    res = runner.invoke(cli, ["contracts", "list"])
    assert "store:third" in res.output
    assert runner.invoke(cli, ["contracts", "deregister", "third"]).exit_code == 0
    keys = {s.key for s in build_defs().resolve_all_asset_specs()}
    assert dg.AssetKey(["shop", "third"]) not in keys


def test_unreachable_store_at_load_keeps_the_files(location: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOE_MONITORING_DB_URL", "postgresql+psycopg2://floe:hunter2pw@127.0.0.1:1/floe")
    defs = build_defs()
    keys = {s.key for s in defs.resolve_all_asset_specs()}
    assert dg.AssetKey(["shop", "good"]) in keys
    res = CliRunner().invoke(cli, ["db", "upgrade"])
    assert res.exit_code == 1 and "127.0.0.1:1" in res.output and "hunter2pw" not in res.output


def test_quality_and_availability_jobs_leak_no_pii(location: Path, tmp_path: Path) -> None:
    """Every string a quality + availability run produced: Dagster events, metadata, stored rows."""
    doc = contract_doc("bad", "bad")
    doc["schema"][0]["properties"][2]["quality"] = [
        {"metric": "invalidValues", "arguments": {"pattern": "^[a-z]+@example\\.com$"}, "mustBe": 0},
        {"metric": "duplicateValues", "mustBe": 0},
        {"metric": "nullValues", "unit": "percent", "mustBeLessThan": 1},
    ]
    doc["schema"][0]["quality"] = [
        {"type": "sql", "query": "SELECT COUNT(*) FROM ${object} WHERE email LIKE 'secret%'", "mustBe": 0}
    ]
    doc["slaProperties"].append({"property": "availability", "value": "99.9%"})
    (location / "bad.yaml").write_text(yaml.safe_dump(doc))
    defs = build_defs()
    repo = defs.get_repository_def()
    assert {"quality_every_360m_checks", "availability_every_5m_checks"} <= set(repo.job_names)
    texts: list[str] = []
    with dg.instance_for_test() as instance:
        for job in ("quality_every_360m_checks", "availability_every_5m_checks"):
            result = defs.resolve_job_def(job).execute_in_process(instance=instance)
            assert result.success
            evals = {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations()}
            if job.startswith("quality"):
                q = evals["bad"]
                assert not q.passed and q.metadata["floe/severity"].value in ("error", "critical")
                assert number(q.metadata, "quality_score") < 0.8
            else:
                assert evals["bad"].passed and evals["bad"].metadata["uptime_pct"].value == 100.0
            for record in instance.all_logs(result.run_id):
                texts.append(repr(record))
    store = MonitoringStore(os.environ["FLOE_MONITORING_DB_URL"])
    texts += [v.event.model_dump_json() for v in store.results.violations(limit=100)]
    texts += [r.model_dump_json() for r in store.results.check_results(limit=100)]
    store.dispose()
    blob = "\n".join(texts)
    # the run did report on the rules, the SQL rule that names 'secret%' included
    assert "Quality rule bad.table.sql failed on table shop.bad: expected = 0, measured 1 over 1 rows" in blob
    assert "Quality rule bad.email.invalidValues failed on column email: expected = 0 rows, measured 1 row" in blob
    assert "secret.person" not in blob and "secret" not in blob.replace("secret%", "")


def test_promises_not_monitored_are_shown_by_the_cli_and_the_registry(location: Path) -> None:
    doc = contract_doc("promising", "good")
    doc["slaProperties"] += [
        {"property": "throughput", "value": 1000, "unit": "rows"},
        {"property": "timeToDetect", "value": 2, "unit": "h"},
    ]
    (location / "good.yaml").unlink()  # same table: one contract per table
    (location / "promising.yaml").write_text(yaml.safe_dump(doc))
    runner = CliRunner()
    res = runner.invoke(cli, ["contracts", "validate", str(location / "promising.yaml")])
    assert res.exit_code == 0, res.output
    lines = [ln.strip() for ln in res.output.splitlines()]
    assert "not monitored: slaProperties[1] (slaProperty throughput): floe monitors tables" in "\n".join(lines)
    assert not any("timeToDetect" in ln for ln in lines)  # a response promise is monitored (sla report)

    defs = build_defs()
    spec = next(s for s in defs.resolve_all_asset_specs() if s.key == REGISTRY_KEY)
    assert spec.metadata["floe/promises_not_monitored"] == 1
    table = spec.metadata["floe/not_monitored"].value
    assert "| promising | `slaProperties[1]` | slaProperty throughput |" in table

    # the response promise reaches `floe sla report` from the loaded contract
    instance = dg.DagsterInstance.get()
    result = defs.resolve_job_def("floe_contract_registry_job").execute_in_process(instance=instance)
    assert result.success
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "contracts_valid")
    assert check.metadata["floe/promises_not_monitored"].value == 1
    res = runner.invoke(cli, ["checks", "run", "--contract", "promising", "--type", "freshness"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["sla", "report", "--contract", "promising", "--window", "daily"])
    assert res.exit_code == 0, res.output
    promise = next(ln for ln in res.output.splitlines() if ln.startswith("timeToDetect promise"))
    assert "2h" in promise and promise.endswith("not measured")
