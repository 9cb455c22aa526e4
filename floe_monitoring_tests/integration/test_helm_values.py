"""`helm-values/values.yaml` and `values-user-code.yaml` against the official Dagster chart's JSON Schemas, offline,
and against what the rest of the repository promises (the image's paths and user, the jobs' tags, the run pods'
configuration).

How (schemas/helm/README.md): Draft 2020-12; the schemas' Kubernetes `$ref` URLs served from the `_definitions.json`
of `kubernetes-validate`; the two files merged the way Helm merges `-f` files (maps key by key, lists replaced); the
chart's defaults are not available, so `required` is relaxed where Helm would fill a key from them (any path without
a list index) and kept everywhere else. A stricter variant also refuses keys the chart does not declare where it
leaves an object open by omission (a typo Helm would silently ignore). Broken copies of each file are refused.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections import defaultdict
from collections.abc import Iterator, Mapping
from functools import cache
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import referencing
import yaml
from referencing.jsonschema import DRAFT202012

from floe_monitoring_defs.config import MonitoringConfig, Settings
from floe_monitoring_defs.contracts.loader import load_contracts
from floe_monitoring_defs.definitions import build_defs
from floe_monitoring_defs.defs import REGISTRY_JOB
from floe_monitoring_tests.dockerfile import final_stage

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
VALUES = REPO / "helm-values" / "values.yaml"
USER_CODE = REPO / "helm-values" / "values-user-code.yaml"
SCHEMAS = REPO / "floe_monitoring_tests" / "contract" / "schemas" / "helm"
MAIN_SCHEMA = "helm-dagster-values.schema.json"
SUBCHART_SCHEMA = "helm-user-deployments-values.schema.json"
PINNED = {
    MAIN_SCHEMA: "6d9aadb17881f23a96cdc0df89e3c4a5aa65e5b4a010b2eada443f6884c27ee1",
    SUBCHART_SCHEMA: "4f37a3c370bdf7547b1d431f1858b55cb2b1aca10b32e9f51894ad1843b5c856",
}
# The Kubernetes release whose object schemas stand in for the chart's remote references (non-strict, as theirs).
KUBERNETES_SCHEMAS = "v1.33.0-local"
REMOTE_KUBERNETES_SCHEMAS = (
    "https://raw.githubusercontent.com/yannh/kubernetes-json-schema/master/v1.19.0/_definitions.json",
    "https://kubernetesjsonschema.dev/v1.18.0/_definitions.json",
)
SUBCHART = "dagster-user-deployments"


# ---------------------------------------------------------------------------------------------------
# Validation the way the chart's values.schema.json is applied
# ---------------------------------------------------------------------------------------------------


@cache
def kubernetes_registry() -> referencing.Registry[Any]:
    path = resources.files("kubernetes_validate") / "kubernetes-json-schema" / KUBERNETES_SCHEMAS / "_definitions.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    # The chart points into `#/definitions/...`; this copy keeps them under `$defs` (and refers to them so
    # internally): serve both names, without the copy's own `$id` (its internal references stay in the document).
    contents = {k: v for k, v in doc.items() if k != "$id"} | {"definitions": doc["$defs"]}
    resource = referencing.Resource.from_contents(contents, default_specification=DRAFT202012)
    return referencing.Registry().with_resources((url, resource) for url in REMOTE_KUBERNETES_SCHEMAS)


def load_schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
    return schema


def closed(schema: Any, root: bool = True) -> Any:
    """The schema with `additionalProperties: false` on every object that declares `properties` and says nothing
    about other keys (the chart's own objects; the Kubernetes documents are referenced, not changed). Not the root:
    a subchart's values also hold the parent's switches for it (`enabled`, `enableSubchart`)."""
    if isinstance(schema, list):
        return [closed(s, False) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: closed(v, False) for k, v in schema.items()}
    if not root and "properties" in out and "additionalProperties" not in out and "$ref" not in out:
        out["additionalProperties"] = False
    return out


def relaxable(error: jsonschema.ValidationError) -> bool:
    """A `required` key the chart's defaults would supply: missing at a path with no list index (Helm replaces
    lists whole, so a list item gets nothing from the defaults). An `anyOf` counts when one of its branches fails
    only by such errors."""
    if error.validator == "required":
        return not any(isinstance(p, int) for p in error.absolute_path)
    if error.validator in ("anyOf", "oneOf"):
        branches: dict[Any, list[jsonschema.ValidationError]] = defaultdict(list)
        for sub in error.context or ():
            branches[sub.relative_schema_path[0]].append(sub)
        return any(all(relaxable(s) for s in subs) for subs in branches.values())
    return False


def leaves(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """The errors that say what is wrong: into an `anyOf`, the branches of the value's own type (not the `null`
    alternative), without what the defaults would supply; the `anyOf` itself when no branch has the value's type."""
    if error.validator not in ("anyOf", "oneOf"):
        return [error]
    branches: dict[Any, list[jsonschema.ValidationError]] = defaultdict(list)
    for sub in error.context or ():
        branches[sub.relative_schema_path[0]].append(sub)
    of_its_type = [
        subs
        for subs in branches.values()
        if not any(s.validator == "type" and s.absolute_path == error.absolute_path for s in subs)
    ]
    found = [leaf for subs in of_its_type for s in subs if not relaxable(s) for leaf in leaves(s)]
    return found or [error]


def errors(values: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """`path: message` for each error Helm would report once the chart's defaults are merged in."""
    validator = jsonschema.Draft202012Validator(schema, registry=kubernetes_registry())
    found = [leaf for e in validator.iter_errors(values) if not relaxable(e) for leaf in leaves(e)]
    return sorted({f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}" for e in found})


def helm_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`-f base -f override`: maps merged key by key, everything else (lists included) replaced."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = helm_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def subchart_values(merged: Mapping[str, Any]) -> dict[str, Any]:
    """What the subchart is validated with: its key of the parent's values, plus the parent's `global`."""
    return helm_merge(merged[SUBCHART], {"global": merged.get("global", {})})


def read(path: Path, text: str | None = None) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8") if text is None else text)
    assert isinstance(data, dict)
    return data


def all_errors(values_text: str | None = None, user_code_text: str | None = None) -> dict[str, list[str]]:
    merged = helm_merge(read(VALUES, values_text), read(USER_CODE, user_code_text))
    main, sub = load_schema(MAIN_SCHEMA), load_schema(SUBCHART_SCHEMA)
    return {
        "main": errors(merged, main),
        "subchart": errors(subchart_values(merged), sub),
        "main (closed)": errors(merged, closed(main)),
        "subchart (closed)": errors(subchart_values(merged), closed(sub)),
    }


# ---------------------------------------------------------------------------------------------------
# The schemas and the files
# ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PINNED))
def test_the_schema_copies_are_the_upstream_files(name: str) -> None:
    assert hashlib.sha256((SCHEMAS / name).read_bytes()).hexdigest() == PINNED[name]
    readme = (SCHEMAS / "README.md").read_text(encoding="utf-8")
    assert name in readme and PINNED[name] in readme


def test_the_kubernetes_references_resolve_locally() -> None:
    """Every external reference of both schemas resolves from the local copy (none is fetched)."""
    for name in PINNED:
        text = (SCHEMAS / name).read_text(encoding="utf-8")
        refs = {r for r in _refs(json.loads(text)) if not r.startswith("#")}
        assert refs, name
        resolver = kubernetes_registry().resolver()
        for ref in refs:
            assert isinstance(resolver.lookup(ref).contents, dict), ref


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_both_files_validate_against_the_chart_and_subchart_schemas() -> None:
    assert all_errors() == {"main": [], "subchart": [], "main (closed)": [], "subchart (closed)": []}


def _broken(path: Path, old: str, new: str) -> str:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{path.name} no longer holds {old!r}: update the broken copy"
    return text.replace(old, new)


@pytest.mark.parametrize(
    ("file", "old", "new", "schema", "expected"),
    [
        pytest.param(
            VALUES,
            "      imagePullPolicy: IfNotPresent\n      loadInclusterConfig: true\n",
            "      imagePullPolcy: IfNotPresent\n      loadInclusterConfig: true\n",
            "main",
            "runLauncher.config.k8sRunLauncher: Additional properties are not allowed "
            "('imagePullPolcy' was unexpected)",
            id="values-unknown-key",
        ),
        pytest.param(
            VALUES,
            "        maxConcurrentRuns: 10\n",
            "        maxConcurrentRuns: ten\n",
            "main",
            "dagsterDaemon.runCoordinator.config.queuedRunCoordinator.maxConcurrentRuns: 'ten' is not valid under "
            "any of the given schemas",
            id="values-wrong-type",
        ),
        pytest.param(
            VALUES,
            "            limit: 1\n",
            "",
            "main",
            "dagsterDaemon.runCoordinator.config.queuedRunCoordinator.tagConcurrencyLimits.0: 'limit' is a required "
            "property",
            id="values-list-item-incomplete",
        ),
        pytest.param(
            USER_CODE,
            "      port: 4000\n",
            '      port: "4000"\n',
            "subchart",
            "dagster-user-deployments.deployments.0.port: '4000' is not of type 'integer'",
            id="user-code-wrong-type-main",
        ),
        pytest.param(
            USER_CODE,
            "      port: 4000\n",
            '      port: "4000"\n',
            "subchart-own",
            "deployments.0.port: '4000' is not of type 'integer'",
            id="user-code-wrong-type-subchart",
        ),
        pytest.param(
            USER_CODE,
            "      port: 4000\n",
            "",
            "subchart-own",
            "deployments.0: 'port' is a required property",
            id="user-code-list-item-incomplete",
        ),
        pytest.param(
            USER_CODE,
            "        periodSeconds: 20\n",
            "        periodSeconds: often\n",
            "subchart-own",
            "deployments.0.readinessProbe.periodSeconds: 'often' is not of type 'integer', 'null'",
            id="user-code-kubernetes-probe",  # through the local Kubernetes schema
        ),
        pytest.param(
            USER_CODE,
            "      codeServerArgs:\n",
            "      codeServerArg:\n",
            "subchart-closed",
            "deployments.0: Additional properties are not allowed ('codeServerArg' was unexpected)",
            id="user-code-typo",
        ),
    ],
)
def test_a_broken_copy_is_refused(file: Path, old: str, new: str, schema: str, expected: str) -> None:
    text = _broken(file, old, new)
    found = all_errors(values_text=text) if file == VALUES else all_errors(user_code_text=text)
    where = {
        "main": "main",
        "subchart": "main",
        "subchart-own": "subchart",
        "subchart-closed": "subchart (closed)",
    }[schema]
    assert expected in found[where], found[where]


def test_the_chart_schema_itself_accepts_a_misspelled_user_deployment_key() -> None:
    """Why the closed variant: the subchart's schema leaves a deployment open, so `codeServerArg` would pass Helm's
    validation and the code server would start without its arguments."""
    text = _broken(USER_CODE, "      codeServerArgs:\n", "      codeServerArg:\n")
    found = all_errors(user_code_text=text)
    assert not found["subchart"] and not found["main"]


# ---------------------------------------------------------------------------------------------------
# What the values promise, against the rest of the repository
# ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def merged() -> dict[str, Any]:
    return helm_merge(read(VALUES), read(USER_CODE))


def deployment(merged: Mapping[str, Any]) -> dict[str, Any]:
    [only] = merged[SUBCHART]["deployments"]
    assert isinstance(only, dict)
    return only


def test_storage_is_external_postgresql_with_psycopg2_and_a_secret_password(merged: dict[str, Any]) -> None:
    pg = merged["postgresql"]
    assert pg["enabled"] is False and pg["postgresqlScheme"] == "postgresql+psycopg2"
    assert merged["generatePostgresqlPasswordSecret"] is False and merged["global"]["postgresqlSecretName"]
    for path in (VALUES, USER_CODE):
        assert "postgresqlPassword" not in path.read_text(encoding="utf-8")


def test_runs_are_queued_with_one_run_per_check_type_and_monitored(merged: dict[str, Any]) -> None:
    daemon = merged["dagsterDaemon"]
    coordinator = daemon["runCoordinator"]
    assert coordinator["enabled"] is True and coordinator["type"] == "QueuedRunCoordinator"
    limits = coordinator["config"]["queuedRunCoordinator"]["tagConcurrencyLimits"]
    assert limits == [{"key": "floe/check_type", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}]
    assert daemon["runMonitoring"]["enabled"] is True
    assert merged["retention"]["enabled"] is True
    assert merged["runLauncher"]["type"] == "K8sRunLauncher"


def test_every_monitoring_job_carries_the_limited_tag(tmp_path: Path, merged: dict[str, Any]) -> None:
    """The coordinator's limit works only if the runs carry the tag: every checks job and the registry job do."""
    [limit] = merged["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]["tagConcurrencyLimits"]
    settings = Settings(
        contracts_dir=REPO / "examples" / "contracts",
        config_path=None,
        db_url=f"sqlite:///{tmp_path / 'floe.db'}",
        default_catalog=None,
    )
    repo = build_defs(settings, strict=True).get_repository_def()
    checks_jobs = [j for j in repo.get_all_jobs() if j.name.endswith("_checks")]
    assert len(checks_jobs) >= 4
    for job in checks_jobs:
        kind = job.name.split("_every_")[0].split("_cron_")[0]
        assert job.tags.get(limit["key"]) == kind, job.name
    assert repo.get_job(REGISTRY_JOB).tags.get(limit["key"]) == "registry"


def test_the_code_location_runs_the_image_as_a_reloadable_code_server(merged: dict[str, Any]) -> None:
    d, final = deployment(merged), final_stage()
    assert d["codeServerArgs"] == ["--module-name", "floe_monitoring_defs"] and "dagsterApiGrpcArgs" not in d
    assert final.cmd is not None and final.cmd[final.cmd.index("-m") + 1] == "floe_monitoring_defs"
    assert d["port"] == int(final.cmd[final.cmd.index("-p") + 1]) and final.expose == [d["port"]]
    assert str(d["podSecurityContext"]["runAsUser"]) == (final.user or "").split(":")[0]
    assert d["podSecurityContext"]["runAsNonRoot"] is True
    assert merged["global"]["dagsterHome"] == final.env["DAGSTER_HOME"]
    assert d["includeConfigInLaunchedRuns"] == {"enabled": True}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert probe in d and "exec" not in d[probe]  # the chart's grpc-health-check (the `floe health` probe later)
    # The webserver and daemon run the Dagster release the image pins.
    for component in ("dagsterWebserver", "dagsterDaemon"):
        assert merged[component]["image"]["tag"] == metadata.version("dagster")


def test_inputs_come_from_configmap_directories_at_the_images_paths(merged: dict[str, Any]) -> None:
    d, env = deployment(merged), final_stage().env
    mounts = {m["name"]: m for m in d["volumeMounts"]}
    volumes = {v["name"]: v for v in d["volumes"]}
    assert all("subPath" not in m and "subPathExpr" not in m for m in d["volumeMounts"])
    contracts = next(m for m in mounts.values() if m["mountPath"] == d["env"]["FLOE_CONTRACTS_DIR"])
    config = next(m for m in mounts.values() if m["mountPath"] == os.path.dirname(d["env"]["FLOE_MONITORING_CONFIG"]))
    for mount in (contracts, config):
        assert "configMap" in volumes[mount["name"]] and mount["readOnly"] is True
    for key in ("FLOE_CONTRACTS_DIR", "FLOE_MONITORING_CONFIG", "FLOE_SPOOL_DIR"):
        assert d["env"][key] == env[key], key  # the image's defaults and the deployment agree


def test_env_names_no_secret_and_secrets_and_catalogs_come_from_references(merged: dict[str, Any]) -> None:
    d = deployment(merged)
    env = d["env"]
    assert {k.split("_")[0] for k in env} >= {"FLOE", "OTEL", "OPENLINEAGE"}
    assert "FLOE_MONITORING_DB_URL" not in env and not any(k.startswith("PYICEBERG_") for k in env)
    assert not any("@" in str(v) or "password" in str(v).lower() for v in env.values())
    assert d["envSecrets"] == [{"name": "floe-monitoring-secrets"}]
    assert d["envConfigMaps"] == [{"name": "floe-monitoring-catalogs"}]
    # The monitoring config the env names would load with the image's defaults (the default file's content).
    assert MonitoringConfig() == MonitoringConfig.model_validate({})


def test_run_pods_get_the_code_locations_env_secrets_and_volumes(merged: dict[str, Any]) -> None:
    d = deployment(merged)
    launcher = merged["runLauncher"]["config"]["k8sRunLauncher"]
    assert launcher["envVars"] == [f"{k}={v}" for k, v in d["env"].items()]
    for key in ("envSecrets", "envConfigMaps", "volumes", "volumeMounts"):
        assert launcher[key] == d[key], key


def test_a_contracts_configmap_mounted_as_a_directory_loads_each_contract_once(tmp_path: Path) -> None:
    """The layout the kubelet writes for a ConfigMap volume: the files in a timestamped directory, `..data` linking
    to it, and each key a link through `..data` (an update swaps `..data` atomically)."""
    mount = tmp_path / "contracts"
    data = mount / "..2026_12_02_01_00_00.000000001"
    data.mkdir(parents=True)
    for name in ("orders.yaml", "customers.yaml"):
        (data / name).write_bytes((REPO / "examples" / "contracts" / name).read_bytes())
    (mount / "..data").symlink_to(data.name)
    for name in ("orders.yaml", "customers.yaml"):
        (mount / name).symlink_to(f"..data/{name}")
    report = load_contracts([mount])
    assert [str(e) for e in report.errors] == []
    assert sorted(c.name for c in report.contracts) == ["customers", "orders"]


def test_the_registry_sensor_can_reload_this_location(merged: dict[str, Any]) -> None:
    """contract_registry_sensor reloads the location named FLOE_DAGSTER_LOCATION_NAME through the webserver's
    GraphQL API: the name must be this deployment's (the location's name in the UI), the URL the webserver's."""
    d = deployment(merged)
    assert d["env"]["FLOE_DAGSTER_LOCATION_NAME"] == d["name"]
    url = d["env"]["FLOE_DAGSTER_GRAPHQL_URL"]
    port = merged["dagsterWebserver"].get("service", {}).get("port", 80)  # the chart's default Service port: 80
    assert url == f"http://dagster-webserver:{port}/graphql"  # the webserver Service of release `dagster`


def test_the_metrics_sidecar_reads_what_the_code_location_reads(merged: dict[str, Any]) -> None:
    d = deployment(merged)
    [sidecar] = [c for c in d["sidecarContainers"] if c["name"] == "floe-metrics"]
    assert sidecar["command"][:3] == ["floe", "metrics", "serve"]
    port = int(sidecar["command"][sidecar["command"].index("--port") + 1])
    assert [p["containerPort"] for p in sidecar["ports"] if p["name"] == "metrics"] == [port]
    env = {e["name"]: e["value"] for e in sidecar["env"]}
    for key in ("FLOE_CONTRACTS_DIR", "FLOE_MONITORING_CONFIG", "FLOE_SERVER_ENVIRONMENT", "FLOE_CATALOG"):
        assert env[key] == d["env"][key], key
    refs = {next(iter(r)): next(iter(r.values()))["name"] for r in sidecar["envFrom"]}
    assert refs == {"secretRef": d["envSecrets"][0]["name"], "configMapRef": d["envConfigMaps"][0]["name"]}
    mounts = {m["mountPath"]: m["name"] for m in sidecar["volumeMounts"]}
    for m in d["volumeMounts"]:
        if m.get("readOnly"):
            assert mounts.get(m["mountPath"]) == m["name"], m["mountPath"]
    assert f"{d['image']['repository']}:{d['image']['tag']}" == sidecar["image"]
