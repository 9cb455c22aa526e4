"""Definitions snapshot: what the Dagster UI shows of this code location, pinned in a checked-in JSON file.

What it guards: `build_defs(Settings(...))` over fixed inputs (the example contracts, one extra contract with
per-contract `floe.monitoring` overrides, and a monitoring config with a webhook channel) must produce the
same asset keys (group, owners, tags, kinds, description, metadata, partitions), asset checks (description,
op, jobs), ops (description, tags, required resources), jobs (tags, description, what they run), schedules
(crons, timezone, default status, job), sensors (status, interval, monitored jobs) and resources (key, class,
config field names; never config values) as `snapshots/definitions.json`. A refactor of
`floe_monitoring_defs` that changes nothing visible passes; any visible change fails with a unified diff.

Hermetic: the build never sees the developer's DAGSTER_HOME, FLOE_*, OPENLINEAGE* or OTEL* variables (they are
cleared; DAGSTER_HOME points at an empty temporary directory, so no store and no registered contracts), nor
the repo's `.env` (`Settings` is passed explicitly and the working directory is the temporary root), and
machine-specific strings (the temporary root, the repo path) are replaced by
placeholders, so the snapshot is the same on every machine and every run.

Regenerate after a deliberate change (then review the JSON diff like code before committing):

    .venv/bin/python -m floe_monitoring_tests.integration.test_definitions_snapshot --update

The same command without `--update` prints the diff against the checked-in file (exit 1) or says it is up
to date (exit 0).

Not every field comes from a `@public` Dagster API: a job's selection is read from the resolved job's asset
layer and a run-status sensor's monitored jobs from `_monitored_jobs` (Dagster exposes neither publicly). A
Dagster upgrade that moves them makes this test fail loudly rather than drop the field.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import enum
import json
import os
import re
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from pydantic import BaseModel

from floe_monitoring_defs.config import Settings
from floe_monitoring_defs.definitions import build_defs

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_CONTRACTS = REPO / "examples" / "contracts"
SNAPSHOT_PATH = Path(__file__).resolve().parent / "snapshots" / "definitions.json"
REGENERATE = ".venv/bin/python -m floe_monitoring_tests.integration.test_definitions_snapshot --update"

# Environment the build must not see from the developer's shell (cleared before every build).
CLEARED_PREFIXES = ("FLOE_", "OPENLINEAGE", "OTEL")
CLEARED_NAMES = ("DAGSTER_HOME",)

WEBHOOK_SECRET_ENV = "FLOE_TEST_SNAPSHOT_WEBHOOK_SECRET"
WEBHOOK_SECRET = "snapshot-webhook-secret-4c1e9b"  # must never appear in the snapshot

# One extra contract (strict ODCS, two tables) with per-contract overrides: its own freshness, quality and
# schema-drift cadences, so jobs and schedules beyond the config's defaults appear (45 and 90 minutes do not
# divide an hour: their schedules need several cron expressions).
EXTRA_CONTRACT = """\
apiVersion: v3.1.0
kind: DataContract
id: urn:datacontract:snapshot:finance:payments
name: payments
version: 3.0.1
status: active
domain: finance
description:
  purpose: Card payments and their refunds
servers:
  - server: prod
    type: iceberg
    catalog: finance_catalog
    catalogUrl: sqlite:///finance-catalog.db
    namespace: finance
team:
  name: payments-team
  members:
    - username: payments@example.com
      role: owner
    - username: team:finance-platform
      role: steward
schema:
  - name: payments
    physicalName: payments
    description: One row per captured payment
    quality:
      - name: has_payments
        metric: rowCount
        mustBeGreaterThan: 0
    properties:
      - name: payment_id
        logicalType: string
        primaryKey: true
        required: true
      - name: card_holder
        logicalType: string
        classification: pii
      - name: amount
        logicalType: number
        physicalType: DECIMAL(18,2)
        required: true
      - name: paid_at
        logicalType: timestamp
        physicalType: TIMESTAMPTZ
        required: true
  - name: refunds
    physicalName: refunds
    properties:
      - name: refund_id
        logicalType: string
        primaryKey: true
        required: true
      - name: payment_id
        logicalType: string
        required: true
slaProperties:
  - property: freshness
    value: PT30M
    element: paid_at
  - property: availability
    value: 99.95%
customProperties:
  - property: consumers
    value: [ledger, fraud-scoring]
  - property: floe.monitoring
    value:
      check_intervals:
        freshness_minutes: 45
        quality_minutes: 90
        schema_drift_minutes: 30
tags:
  - pci
  - tier-1
"""

# A monitoring config with one alert channel (its secret named by `secret_env`, set by the build) and a few
# non-default values that reach what the UI shows (sensor interval, retention in descriptions).
MONITORING_CONFIG = f"""\
retention_days: 30
sla:
  partitions_start: 2025-01-01  # fixed: the default (the store's first day, else today - retention) moves
alerts:
  sensor_interval_seconds: 10
  channels:
    ops-webhook:
      type: webhook
      url: http://127.0.0.1:9/hook
      secret_env: {WEBHOOK_SECRET_ENV}
  routing_rules:
    - channel_name: ops-webhook
      min_severity: warning
"""

# Dagster's implicit resource of every op; not something this project declares.
IMPLICIT_RESOURCE_KEYS = frozenset({"io_manager"})
_MEMORY_ADDRESS = re.compile(r"\bat 0x[0-9a-fA-F]+")


# ---------------------------------------------------------------------------------------------------
# Building the definitions hermetically
# ---------------------------------------------------------------------------------------------------


def prepare_inputs(root: Path) -> Settings:
    """The example contracts plus EXTRA_CONTRACT, the monitoring config, and an empty DAGSTER_HOME under `root`."""
    contracts = root / "contracts"
    shutil.copytree(EXAMPLE_CONTRACTS, contracts)
    (contracts / "payments.yaml").write_text(EXTRA_CONTRACT, encoding="utf-8")
    config = root / "monitoring.yaml"
    config.write_text(MONITORING_CONFIG, encoding="utf-8")
    (root / "dagster_home").mkdir()
    return Settings(contracts_dir=contracts, config_path=config, db_url=None, default_catalog=None)


def isolate_environment(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """Nothing of the developer's environment reaches the build: FLOE_*, OPENLINEAGE*, OTEL* and DAGSTER_HOME
    are cleared; DAGSTER_HOME is an empty directory (no store, so no registered contracts are read)."""
    for name in list(os.environ):
        if name.startswith(CLEARED_PREFIXES) or name in CLEARED_NAMES:
            monkeypatch.delenv(name)
    monkeypatch.setenv("DAGSTER_HOME", str(root / "dagster_home"))
    monkeypatch.setenv(WEBHOOK_SECRET_ENV, WEBHOOK_SECRET)
    monkeypatch.chdir(root)


def build_snapshot(root: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Build the definitions from the fixed inputs under `root` and describe them."""
    settings = prepare_inputs(root)
    isolate_environment(monkeypatch, root)
    defs = build_defs(settings)
    dg.Definitions.validate_loadable(defs)
    return describe_definitions(defs, placeholders(root))


def placeholders(root: Path) -> list[tuple[str, str]]:
    """Machine-specific path prefixes and their placeholders, longest first (so a prefix never wins early)."""
    pairs = {str(root): "<tmp>", str(root.resolve()): "<tmp>", str(REPO): "<repo>"}
    return sorted(pairs.items(), key=lambda kv: len(kv[0]), reverse=True)


# ---------------------------------------------------------------------------------------------------
# Describing the definitions as plain, sorted JSON data
# ---------------------------------------------------------------------------------------------------


class Describer:
    """Turns Dagster objects into JSON values, replacing machine-specific paths; refuses anything else."""

    def __init__(self, replacements: Sequence[tuple[str, str]]) -> None:
        self._replacements = list(replacements)

    def text(self, value: str | None) -> str | None:
        if value is None:
            return None
        for real, placeholder in self._replacements:
            value = value.replace(real, placeholder)
        return value

    def plain(self, value: object) -> Any:
        """A JSON value. An unknown type raises: no object repr (with its memory address) slips in."""
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Path):
            return self.text(str(value))
        if isinstance(value, enum.Enum):
            return self.plain(value.value)
        if isinstance(value, dg.AssetKey):
            return value.to_user_string()
        if isinstance(value, dg.AssetCheckKey):
            return check_id(value)
        if isinstance(value, Mapping):
            return {str(k): self.plain(v) for k, v in value.items()}
        if isinstance(value, set | frozenset):
            return sorted(self.plain(v) for v in value)
        if isinstance(value, list | tuple):
            return [self.plain(v) for v in value]
        raise TypeError(f"the definitions snapshot cannot describe a {type(value).__name__}: {value!r}")

    def label(self, value: object) -> str | None:
        """A short stable description of a policy/definition object (None stays None)."""
        if value is None:
            return None
        text = self.text(str(value)) or ""
        if _MEMORY_ADDRESS.search(text):
            raise TypeError(f"{type(value).__name__} has no stable text form: {text}")
        return text

    def table_schema(self, schema: dg.TableSchema) -> dict[str, Any]:
        return {
            "columns": [
                {
                    "name": c.name,
                    "type": c.type,
                    "description": self.text(c.description),
                    "constraints": {
                        "nullable": c.constraints.nullable,
                        "unique": c.constraints.unique,
                        "other": [self.text(o) for o in c.constraints.other],
                    },
                    "tags": self.plain(dict(c.tags or {})),
                }
                for c in schema.columns
            ],
            "constraints": {"other": [self.text(o) for o in schema.constraints.other]},
        }

    def metadata_value(self, value: object) -> Any:
        """Metadata as the UI renders it: text/int/float/bool/null plainly (a raw `str` and a `TextMetadataValue`
        look the same), table schemas as columns, every other kind tagged with its type."""
        if isinstance(value, dg.TableSchemaMetadataValue):
            value = value.schema
        if isinstance(value, dg.TableSchema):
            return {"type": "table_schema", "value": self.table_schema(value)}
        if isinstance(value, dg.TableMetadataValue):
            return {
                "type": "table",
                "value": {
                    "schema": self.table_schema(value.schema),
                    "records": [self.plain(dict(r.data)) for r in value.records],
                },
            }
        if isinstance(
            value,
            dg.TextMetadataValue | dg.IntMetadataValue | dg.FloatMetadataValue | dg.BoolMetadataValue,
        ):
            return self.plain(value.value)
        if isinstance(value, dg.NullMetadataValue):
            return None
        if isinstance(value, dg.MetadataValue):
            kind = type(value).__name__.removesuffix("MetadataValue").lower()
            return {"type": kind, "value": self.plain(value.value)}
        return self.plain(value)

    def metadata(self, metadata: Mapping[str, object]) -> dict[str, Any]:
        return {key: self.metadata_value(value) for key, value in metadata.items()}


def check_id(key: dg.AssetCheckKey) -> str:
    return f"{key.asset_key.to_user_string()}:{key.name}"


def visible_jobs(repo: dg.RepositoryDefinition) -> list[dg.JobDefinition]:
    """The jobs the UI lists: Dagster's implicit `__ASSET_JOB*` jobs are hidden there, and here."""
    return sorted((j for j in repo.get_all_jobs() if not j.name.startswith("__")), key=lambda j: j.name)


def describe_assets(defs: dg.Definitions, graph: Any, d: Describer) -> dict[str, Any]:
    out: dict[str, Any] = {}
    materializable = set(graph.materializable_asset_keys)
    observable = set(graph.observable_asset_keys)
    for spec in defs.resolve_all_asset_specs():
        assets_def = graph.assets_def_for_key(spec.key)
        policy = assets_def.backfill_policy
        out[spec.key.to_user_string()] = {
            "group": spec.group_name,
            "owners": list(spec.owners),
            "tags": d.plain(dict(spec.tags)),
            "kinds": sorted(spec.kinds),
            "description": d.text(spec.description),
            "metadata": d.metadata(spec.metadata),
            "deps": sorted(dep.asset_key.to_user_string() for dep in spec.deps),
            "execution": (
                "materializable"
                if spec.key in materializable
                else "observable"
                if spec.key in observable
                else "unexecutable"
            ),
            "partitions": d.label(spec.partitions_def),
            "backfill_policy": None
            if policy is None
            else {"type": policy.policy_type.value, "max_partitions_per_run": policy.max_partitions_per_run},
            "code_version": spec.code_version,
            "automation_condition": d.label(spec.automation_condition),
            "freshness_policy": d.label(spec.freshness_policy),
        }
    return out


def describe_jobs(repo: dg.RepositoryDefinition, d: Describer) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for job in visible_jobs(repo):
        layer = job.asset_layer  # what the resolved job runs (not a @public API; see the module docstring)
        out[job.name] = {
            "description": d.text(job.description),
            "tags": d.plain(dict(job.tags)),
            "run_tags": d.plain(dict(job.run_tags)),
            "partitions": d.label(job.partitions_def),
            "ops": sorted(node.name for node in job.nodes),
            "selection": {
                "assets": sorted(k.to_user_string() for k in layer.selected_asset_keys),
                "asset_checks": sorted(check_id(k) for k in layer.asset_graph.asset_check_keys),
            },
        }
    return out


def describe_ops(repo: dg.RepositoryDefinition, graph: Any, d: Describer) -> dict[str, Any]:
    """Every op of every job (the steps the UI shows), with the asset/check definition it computes, if any."""
    by_op = {ad.node_def.name: ad for ad in graph.assets_defs if ad.is_executable}
    jobs_of: dict[str, set[str]] = {}
    node_defs: dict[str, Any] = {}
    for job in repo.get_all_jobs():
        for node_def in job.graph.node_defs:
            node_defs.setdefault(node_def.name, node_def)
            if not job.name.startswith("__"):
                jobs_of.setdefault(node_def.name, set()).add(job.name)
    out: dict[str, Any] = {}
    for name, node_def in sorted(node_defs.items()):
        ad = by_op.get(name)
        if ad is None:
            kind = "op"
        elif isinstance(ad, dg.AssetChecksDefinition):
            kind = "asset_checks"
        else:
            kind = "assets"
        resources: Any = getattr(node_def, "required_resource_keys", set())
        out[name] = {
            "kind": kind,
            "description": d.text(node_def.description),
            "tags": d.plain(dict(node_def.tags)),
            "required_resources": sorted(set(resources) - IMPLICIT_RESOURCE_KEYS),
            "can_subset": None if ad is None else ad.can_subset,
            "jobs": sorted(jobs_of.get(name, ())),
        }
    return out


def describe_checks(graph: Any, jobs: Mapping[str, Any], d: Describer) -> dict[str, Any]:
    jobs_of: dict[str, list[str]] = {}
    for job_name, job in sorted(jobs.items()):
        for cid in job["selection"]["asset_checks"]:
            jobs_of.setdefault(cid, []).append(job_name)
    out: dict[str, Any] = {}
    for ad in graph.assets_defs:
        for spec in ad.check_specs:
            cid = check_id(spec.key)
            out[cid] = {
                "asset": spec.asset_key.to_user_string(),
                "name": spec.name,
                "description": d.text(spec.description),
                "blocking": spec.blocking,
                "additional_deps": sorted(dep.asset_key.to_user_string() for dep in spec.additional_deps),
                "metadata": d.metadata(spec.metadata or {}),
                "op": ad.node_def.name if ad.is_executable else None,
                "jobs": jobs_of.get(cid, []),
            }
    missing = set(graph.asset_check_keys) - {k for ad in graph.assets_defs for k in ad.check_keys}
    assert not missing, f"asset checks without a definition: {sorted(map(check_id, missing))}"
    return out


def describe_schedules(repo: dg.RepositoryDefinition, d: Describer) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for s in sorted(repo.schedule_defs, key=lambda s: s.name):
        crons = s.cron_schedule
        out[s.name] = {
            "cron_schedule": [crons] if isinstance(crons, str) else list(crons),
            "execution_timezone": s.execution_timezone,
            "default_status": s.default_status.value,
            "job_name": s.job_name,
            "description": d.text(s.description),
            "tags": d.plain(dict(s.tags)),
            "required_resources": sorted(set(s.required_resource_keys) - IMPLICIT_RESOURCE_KEYS),
        }
    return out


def _job_name(job: object) -> str:
    name = getattr(job, "name", None) or getattr(job, "job_name", None)
    if not isinstance(name, str):
        raise TypeError(f"a monitored job without a name: {job!r}")
    return name


def describe_sensors(repo: dg.RepositoryDefinition, d: Describer) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for s in sorted(repo.sensor_defs, key=lambda s: s.name):
        entry: dict[str, Any] = {
            "type": s.sensor_type.value,
            "default_status": s.default_status.value,
            "minimum_interval_seconds": s.minimum_interval_seconds,
            "description": d.text(s.description),
            "required_resources": sorted(set(s.required_resource_keys) - IMPLICIT_RESOURCE_KEYS),
            "target_jobs": sorted(j.name for j in s.jobs) if s.has_jobs else [],
        }
        if isinstance(s, dg.RunStatusSensorDefinition):
            # No public accessor: an AttributeError here means Dagster moved it (see the module docstring).
            entry["monitored_jobs"] = sorted(_job_name(j) for j in s._monitored_jobs)
        out[s.name] = entry
    return out


def describe_resources(defs: dg.Definitions, repo: dg.RepositoryDefinition, d: Describer) -> dict[str, Any]:
    """Keys, classes, descriptions and config field NAMES; never config values (they may hold secrets)."""
    top = repo.get_top_level_resources()
    out: dict[str, Any] = {}
    for key, resource in sorted((defs.resources or {}).items()):
        fields = sorted(type(resource).model_fields) if isinstance(resource, BaseModel) else []
        out[key] = {
            "class": type(resource).__name__,
            "description": d.text(top[key].description),
            "config_fields": fields,
        }
    return out


def describe_definitions(defs: dg.Definitions, replacements: Sequence[tuple[str, str]]) -> dict[str, Any]:
    d = Describer(replacements)
    graph = defs.resolve_asset_graph()
    repo = defs.get_repository_def()
    jobs = describe_jobs(repo, d)
    return {
        "assets": describe_assets(defs, graph, d),
        "asset_checks": describe_checks(graph, jobs, d),
        "ops": describe_ops(repo, graph, d),
        "jobs": jobs,
        "schedules": describe_schedules(repo, d),
        "sensors": describe_sensors(repo, d),
        "resources": describe_resources(defs, repo, d),
    }


# ---------------------------------------------------------------------------------------------------
# Comparing with the checked-in snapshot
# ---------------------------------------------------------------------------------------------------


def render(snapshot: Mapping[str, Any]) -> str:
    """The snapshot as the checked-in file holds it: sorted keys, two-space indent, trailing newline."""
    return json.dumps(snapshot, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def snapshot_diff(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> str:
    """A unified diff from the checked-in snapshot to the built one; empty when they are the same."""
    return "".join(
        difflib.unified_diff(
            render(expected).splitlines(keepends=True),
            render(actual).splitlines(keepends=True),
            fromfile="snapshots/definitions.json (checked in)",
            tofile="built from the current code",
        )
    )


def load_snapshot(path: Path = SNAPSHOT_PATH) -> dict[str, Any]:
    if not path.exists():
        pytest.fail(f"{path} is missing; generate it with:\n    {REGENERATE}", pytrace=False)
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def assert_matches_snapshot(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> None:
    diff = snapshot_diff(expected, actual)
    if diff:
        pytest.fail(
            "The Dagster definitions differ from the checked-in snapshot (what the UI shows changed).\n"
            f"If the change is deliberate, regenerate and review:\n    {REGENERATE}\n\n{diff}",
            pytrace=False,
        )


def assert_no_machine_specific_text(text: str, roots: Sequence[Path]) -> None:
    for root in roots:
        for form in {str(root), str(root.resolve())}:
            assert form not in text, f"a temporary path leaked into the snapshot: {form}"
    assert str(REPO) not in text, "the repository path leaked into the snapshot"
    home = str(Path.home())
    if home not in ("", "/"):
        assert f"{home}/" not in text, "the home directory leaked into the snapshot"
    assert WEBHOOK_SECRET not in text, "the webhook secret leaked into the snapshot"
    assert not _MEMORY_ADDRESS.search(text), "an object repr with a memory address leaked into the snapshot"


# ---------------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("defs_snapshot")
    with pytest.MonkeyPatch.context() as mp:
        yield build_snapshot(root, mp)


def test_definitions_match_the_snapshot(built: dict[str, Any]) -> None:
    assert_matches_snapshot(load_snapshot(), built)


def loading_errors(snapshot: Mapping[str, Any]) -> Any:
    """What the registry asset says about contracts that failed to load (the inputs must all load)."""
    metadata = snapshot["assets"]["floe/contract_registry"]["metadata"]
    return None if metadata["floe/contracts_failed"] == 0 else metadata["floe/errors"]


def test_every_input_contract_loads(built: dict[str, Any]) -> None:
    assert loading_errors(built) is None
    assert built["assets"]["floe/contract_registry"]["metadata"]["floe/contracts_loaded"] == 6


def test_snapshot_is_hermetic_and_deterministic(
    built: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second build under another temporary root gives the same text, with no path, secret or repr in it."""
    again = build_snapshot(tmp_path, monkeypatch)
    assert render(again) == render(built)
    assert_no_machine_specific_text(render(again), [tmp_path])
    # The inputs are really in it: the per-contract override's cadences and the configured channel.
    assert {"freshness_every_45m_checks", "quality_every_90m_checks", "schema_drift_every_30m_checks"} <= set(
        again["jobs"]
    )
    assert len(again["schedules"]["freshness_every_45m_schedule"]["cron_schedule"]) > 1
    assert again["resources"]["alert_channel_ops_webhook"]["class"] == "AlertChannelResource"
    # The sensor takes every channel through the typed `alert_channels` resource, which nests each one.
    assert again["sensors"]["alert_dispatch_sensor"]["required_resources"] == ["alert_channels", "floe_store"]
    assert "alert_channel_ops_webhook" in again["resources"]["alert_channels"]["config_fields"]


def test_comparison_reports_a_change(built: dict[str, Any]) -> None:
    """Negative control: the comparison itself can fail, and its message shows what changed (on the built
    snapshot, so that a stale checked-in file fails only `test_definitions_match_the_snapshot`)."""
    expected = copy.deepcopy(built)
    assert snapshot_diff(expected, copy.deepcopy(expected)) == ""
    changed = copy.deepcopy(expected)
    changed["schedules"]["freshness_every_15m_schedule"]["cron_schedule"] = ["*/20 * * * *"]
    del changed["asset_checks"]["sales/orders:freshness"]
    with pytest.raises(pytest.fail.Exception) as failure:
        assert_matches_snapshot(expected, changed)
    message = str(failure.value)
    assert REGENERATE in message
    lines = message.splitlines()
    removed = [line[1:].strip() for line in lines if line.startswith("-") and not line.startswith("---")]
    added = [line[1:].strip() for line in lines if line.startswith("+") and not line.startswith("+++")]
    assert added == ['"*/20 * * * *"']
    assert '"*/15 * * * *"' in removed and '"sales/orders:freshness": {' in removed


# ---------------------------------------------------------------------------------------------------
# Regeneration entry point
# ---------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None, out: Callable[[str], object] = print) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m floe_monitoring_tests.integration.test_definitions_snapshot",
        description="Build the definitions snapshot; show its diff against the checked-in file, or --update it.",
    )
    parser.add_argument("--update", action="store_true", help=f"write {SNAPSHOT_PATH.relative_to(REPO)}")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    with tempfile.TemporaryDirectory(prefix="floe-defs-snapshot-") as tmp, pytest.MonkeyPatch.context() as mp:
        root = Path(tmp)
        snapshot = build_snapshot(root, mp)
        text = render(snapshot)
        assert_no_machine_specific_text(text, [root])
    errors = loading_errors(snapshot)
    if args.update and errors is not None:
        out(f"not updating: an input contract failed to load, fix the inputs first:\n{errors}")
        return 2
    old = json.loads(SNAPSHOT_PATH.read_text(encoding="utf-8")) if SNAPSHOT_PATH.exists() else {}
    diff = snapshot_diff(old, snapshot)
    if args.update:
        SNAPSHOT_PATH.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT_PATH.write_text(text, encoding="utf-8")
        out(f"wrote {SNAPSHOT_PATH} ({'changed' if diff else 'unchanged'})")
        if diff:
            out(diff)
        return 0
    if diff:
        out(diff)
        out(f"the snapshot is out of date; to accept the change:\n    {REGENERATE}")
        return 1
    out(f"{SNAPSHOT_PATH} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
