"""Cold start from the catalog (FR-004, issue 16 acceptance 4): contracts found in table properties are monitored
when the store restores no registration (empty, or down); a broken one is named by its table, the rest load.

Real Iceberg tables (a pyiceberg SqlCatalog in tmp_path), the real store (SQLite and the suite's PostgreSQL),
real code-location loads and a real freshness run."""

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from click.testing import CliRunner
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.types import DecimalType, NestedField, StringType, TimestamptzType

from floe_monitoring_defs.cli import cli
from floe_monitoring_defs.config import ConfigError, DiscoverySettings
from floe_monitoring_defs.contract_set import load_contracts_and_registrations
from floe_monitoring_defs.contracts.cache import ContractCache
from floe_monitoring_defs.contracts.discovery import (
    INLINE_PROPERTY,
    LOCATION_PROPERTY,
    Discovered,
    discover_contracts,
    load_discovered,
    location_path,
)
from floe_monitoring_defs.definitions import build_defs
from floe_monitoring_defs.defs.assets import REGISTRY_KEY
from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_tests.integration.iceberg_helpers import CATALOG, catalog_env, create, make_catalog

pytestmark = pytest.mark.integration

SCHEMA = Schema(
    NestedField(1, "id", StringType(), required=True),
    NestedField(2, "amount", DecimalType(10, 2), required=True),
    NestedField(3, "updated_at", TimestamptzType(), required=True),
    identifier_field_ids=[1],
)


def contract_doc(name: str, table: str) -> dict[str, Any]:
    return {
        "apiVersion": "v3.1.0",
        "kind": "DataContract",
        "id": f"urn:{name}",
        "name": name,
        "version": "1.0.0",
        "status": "active",
        "servers": [
            {"server": "t", "type": "iceberg", "catalog": CATALOG, "catalogUrl": "sqlite:///x.db", "namespace": "shop"}
        ],
        "schema": [
            {
                "name": table,
                "properties": [
                    {"name": "id", "logicalType": "string", "primaryKey": True, "required": True},
                    {"name": "amount", "logicalType": "number", "physicalType": "DECIMAL(10,2)", "required": True},
                    {"name": "updated_at", "logicalType": "timestamp", "required": True},
                ],
            }
        ],
        "slaProperties": [{"property": "freshness", "value": "PT1H", "element": "updated_at"}],
    }


def _rows(age: timedelta) -> dict[str, list[Any]]:
    return {"id": ["a"], "amount": [Decimal("1.00")], "updated_at": [datetime.now(UTC) - age]}


def _set(cat: SqlCatalog, ident: str, props: dict[str, str]) -> None:
    table = cat.load_table(ident)
    with table.transaction() as tx:
        tx.set_properties(props)


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SqlCatalog]:
    """shop.filed (a contract file in FLOE_CONTRACTS_DIR), shop.pointed (floe.contract.location -> a file outside
    it), shop.inline (floe.contract holds the YAML; stale), shop.broken (points at a file that is not a contract),
    shop.plain (no property), shop.off (a contract, monitoring disabled)."""
    for k, v in catalog_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    cat = make_catalog(tmp_path)
    for t in ("filed", "pointed", "broken", "plain", "off"):
        create(cat, f"shop.{t}", SCHEMA, _rows(timedelta(minutes=5)))
    create(cat, "shop.inline", SCHEMA, _rows(timedelta(hours=5)))
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    (contracts / "filed.yaml").write_text(yaml.safe_dump(contract_doc("filed", "filed")))
    elsewhere = tmp_path / "deployed"
    elsewhere.mkdir()
    (elsewhere / "pointed.yaml").write_text(yaml.safe_dump(contract_doc("pointed", "pointed")))
    broken = dict(contract_doc("broken", "broken"), version="one")
    (elsewhere / "broken.yaml").write_text(yaml.safe_dump(broken))
    _set(cat, "shop.pointed", {LOCATION_PROPERTY: (elsewhere / "pointed.yaml").as_uri()})
    _set(cat, "shop.inline", {INLINE_PROPERTY: yaml.safe_dump(contract_doc("inline", "inline"))})
    _set(cat, "shop.broken", {LOCATION_PROPERTY: str(elsewhere / "broken.yaml")})
    _set(
        cat,
        "shop.off",
        {INLINE_PROPERTY: yaml.safe_dump(contract_doc("off", "off")), "floe.monitoring.enabled": "false"},
    )
    monkeypatch.setenv("FLOE_CONTRACTS_DIR", str(contracts))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("FLOE_CATALOG", CATALOG)
    monkeypatch.setenv("FLOE_DISCOVERY_NAMESPACES", "shop")
    (tmp_path / "dagster_home").mkdir()
    yield cat


BROKEN = f"catalog {CATALOG} table shop.broken: property floe.contract.location: "


def _assert_discovered_and_monitored(defs: dg.Definitions) -> None:
    keys = {(k.asset_key.to_user_string(), k.name) for k in defs.resolve_asset_graph().asset_check_keys}
    assert {("shop/filed", "freshness"), ("shop/pointed", "freshness"), ("shop/inline", "freshness")} <= keys
    assert not {k for k in keys if k[0] in ("shop/broken", "shop/plain", "shop/off")}
    specs = {s.key: s for s in defs.resolve_all_asset_specs()}
    errors = specs[REGISTRY_KEY].metadata
    # The registry asset's table of contracts not loaded names the table (a Markdown table: source | field | why).
    assert any(
        f"catalog {CATALOG} table shop.broken" in str(v) and LOCATION_PROPERTY in str(v) for v in errors.values()
    )
    with dg.instance_for_test() as instance:
        result = defs.resolve_job_def("freshness_every_15m_checks").execute_in_process(instance=instance)
    assert result.success
    evals = {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations()}
    assert evals["pointed"].passed and evals["filed"].passed
    assert not evals["inline"].passed  # 5 h old against PT1H: the discovered contract's own SLA is applied


def test_empty_store_discovers_contracts_from_both_properties(
    lake: SqlCatalog, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOE_MONITORING_DB_URL", store_url)
    MonitoringStore(store_url).dispose()  # the schema exists, no registration
    report = load_contracts_and_registrations_from_env()
    assert sorted(c.name for c in report.contracts) == ["filed", "inline", "pointed"]
    sources = {c.name: c.source for c in report.contracts}
    assert sources["inline"] == f"catalog:{CATALOG}/shop.inline" and sources["pointed"].endswith(
        "deployed/pointed.yaml"
    )
    [err] = report.errors
    assert str(err).startswith(BROKEN) and "version" in str(err) and "broken.yaml" in str(err)
    _assert_discovered_and_monitored(build_defs())


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("postgresql+psycopg2://floe:hunter2pw@127.0.0.1:1/floe", id="postgresql-unreachable"),
        pytest.param("sqlite:////nonexistent-floe-dir/sub/floe.db", id="sqlite-cannot-open"),
    ],
)
def test_store_down_discovers_contracts(lake: SqlCatalog, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOE_MONITORING_DB_URL", url)
    monkeypatch.setenv("FLOE_DISCOVERY_CATALOGS", f"{CATALOG},ghost")  # a catalog no configuration names
    _assert_discovered_and_monitored(build_defs())
    ghost = [str(e) for e in load_contracts_and_registrations_from_env().errors if e.source == "catalog ghost"]
    assert ghost == [
        "catalog ghost: discovery: cannot open the catalog: Iceberg catalog 'ghost' is not configured: "
        "set PYICEBERG_CATALOG__GHOST__URI (or a .pyiceberg.yaml entry), or give the contract's iceberg "
        "server a catalogUrl"
    ]


def test_registrations_in_the_store_turn_discovery_off(
    lake: SqlCatalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'floe.db'}"
    monkeypatch.setenv("FLOE_MONITORING_DB_URL", url)
    extra = tmp_path / "registered"
    extra.mkdir()
    (extra / "plain.yaml").write_text(yaml.safe_dump(contract_doc("plain", "plain")))
    assert CliRunner().invoke(cli, ["contracts", "register", str(extra)]).exit_code == 0
    report = load_contracts_and_registrations_from_env()
    assert sorted(c.name for c in report.contracts) == ["filed", "plain"] and not report.errors


def test_files_win_by_name_and_a_table_claimed_twice_is_reported(
    lake: SqlCatalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOE_MONITORING_DB_URL", f"sqlite:///{tmp_path / 'floe.db'}")
    (tmp_path / "contracts" / "pointed.yaml").write_text(yaml.safe_dump(contract_doc("pointed", "pointed")))
    # A contract of another name on a table a file already monitors.
    _set(lake, "shop.filed", {INLINE_PROPERTY: yaml.safe_dump(contract_doc("again", "filed"))})
    report = load_contracts_and_registrations_from_env()
    assert {c.name: c.source for c in report.contracts}["pointed"].endswith("contracts/pointed.yaml")  # the file's
    assert any("shop.filed is already monitored by contract 'filed'" in str(e) for e in report.errors)


def test_register_table_sets_the_property_and_a_reload_discovers_it(
    lake: SqlCatalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOE_MONITORING_DB_URL", f"sqlite:///{tmp_path / 'floe.db'}")
    runner = CliRunner()
    source = tmp_path / "plain.yaml"
    source.write_text(yaml.safe_dump(contract_doc("plain", "plain")))
    res = runner.invoke(cli, ["contracts", "register", "--table", "shop.plain", "--inline", str(source)])
    assert res.exit_code == 0, res.output
    props = lake.load_table("shop.plain").properties
    assert yaml.safe_load(props[INLINE_PROPERTY])["name"] == "plain"
    assert "plain" in {c.name for c in load_contracts_and_registrations_from_env().contracts}
    # --location replaces the text with a pointer (one property at a time), on an explicit catalog.
    res = runner.invoke(
        cli, ["contracts", "register", "--table", "shop.plain", "--catalog", CATALOG, "--location", str(source)]
    )
    assert res.exit_code == 0, res.output
    props = lake.load_table("shop.plain").properties
    assert props[LOCATION_PROPERTY] == str(source.resolve()) and INLINE_PROPERTY not in props
    keys = {s.key for s in build_defs().resolve_all_asset_specs()}
    assert dg.AssetKey(["shop", "plain"]) in keys
    # A contract that does not validate is not set.
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(dict(contract_doc("bad", "off"), version="x")))
    res = runner.invoke(cli, ["contracts", "register", "--table", "shop.off", "--location", str(bad)])
    assert (
        res.exit_code == 1 and f"not set: catalog {CATALOG} table shop.off: property {LOCATION_PROPERTY}" in res.output
    )
    assert LOCATION_PROPERTY not in lake.load_table("shop.off").properties
    res = runner.invoke(cli, ["contracts", "register", "--table", "shop.off"])
    assert res.exit_code == 2 and "one of --location PATH or --inline FILE" in res.output


class _Stuck:
    """A catalog whose listing hangs until released (a slow REST catalog)."""

    def __init__(self, release: threading.Event) -> None:
        self.release = release

    def list_tables(self, namespace: str | tuple[str, ...]) -> list[tuple[str, ...]]:
        self.release.wait()
        return []

    def load_table(self, identifier: str | tuple[str, ...]) -> Any:
        raise AssertionError("never reached")


def test_a_slow_or_unknown_catalog_leaves_discovery_incomplete_not_the_load(
    lake: SqlCatalog, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()

    def open_catalog(name: str) -> Any:
        if name == "slow":
            return _Stuck(release)
        if name == "nowhere":
            raise RuntimeError("Iceberg catalog 'nowhere' is not configured")
        return lake

    settings = DiscoverySettings((("shop",), ("absent",)), (CATALOG, "slow", "nowhere"), 5.0)
    try:
        with caplog.at_level(logging.ERROR, logger="floe_monitoring_defs.contracts.discovery"):
            report = discover_contracts(settings, open_catalog, cache=ContractCache(None))
    finally:
        release.set()
    assert sorted(c.name for c in report.contracts) == ["inline", "pointed"]  # what the answering catalog holds
    shown = [str(e) for e in report.errors]
    incomplete = [s for s in shown if s.startswith("catalog slow: discovery: discovery incomplete")]
    assert len(incomplete) == 1 and "while listing namespace shop" in incomplete[0]
    assert "catalog nowhere: discovery: cannot open the catalog: Iceberg catalog 'nowhere' is not configured" in shown
    assert f"catalog {CATALOG}: discovery: cannot list the tables of namespace absent: NoSuchNamespaceError" in shown
    assert any(s.startswith(BROKEN) for s in shown)
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("catalog slow" in m and "incomplete" in m for m in logged)
    assert any("catalog nowhere" in m for m in logged) and not any("shop.broken" in m for m in logged)
    assert not any(r.exc_info for r in caplog.records)  # no traceback


def test_one_contract_on_several_tables_loads_once_and_a_name_clash_is_named(tmp_path: Path) -> None:
    text = yaml.safe_dump(contract_doc("multi", "a"))
    other = yaml.safe_dump(dict(contract_doc("multi", "b"), version="2.0.0"))
    hits = [
        Discovered("c", "shop.a", INLINE_PROPERTY, text),
        Discovered("c", "shop.b", INLINE_PROPERTY, text),
        Discovered("c", "shop.c", INLINE_PROPERTY, other),
    ]
    report = load_discovered(hits, cache=ContractCache(None))
    assert [c.source for c in report.contracts] == ["catalog:c/shop.a"]
    assert [str(e) for e in report.errors] == [
        "catalog c table shop.c: name: contract name 'multi' is already used by catalog c table shop.a"
    ]


def test_location_values_and_inline_limits(tmp_path: Path) -> None:
    assert location_path("file:///srv/c/a%20b.yaml") == Path("/srv/c/a b.yaml")
    assert location_path(" /srv/c.yaml ") == Path("/srv/c.yaml")
    for bad, why in [
        ("s3://b/c.yaml", "s3:// is not read"),
        ("c.yaml", "not an absolute path"),
        ("file://h/c", "another host"),
    ]:
        with pytest.raises(ValueError, match=why):
            location_path(bad)
    big = Discovered("c", "shop.t", INLINE_PROPERTY, "x" * (4 * 1024 * 1024 + 1))
    fifo_ok = Discovered("c", "shop.u", LOCATION_PROPERTY, str(tmp_path))  # a directory, not a regular file
    report = load_discovered([big, fifo_ok], cache=ContractCache(None))
    shown = sorted(str(e) for e in report.errors)
    assert shown[0].startswith("catalog c table shop.t: property floe.contract: <text>: 4,194,305 bytes is more than")
    assert (
        shown[1].startswith("catalog c table shop.u: property floe.contract.location: ") and "a directory" in shown[1]
    )


def test_discovery_settings() -> None:
    assert DiscoverySettings.from_env({}) is None
    s = DiscoverySettings.from_env({"FLOE_DISCOVERY_NAMESPACES": "shop, sales.eu,shop", "FLOE_CATALOG": "prod"})
    assert s == DiscoverySettings((("shop",), ("sales", "eu")), ("prod",), 30.0)
    s = DiscoverySettings.from_env(
        {"FLOE_DISCOVERY_NAMESPACES": "shop", "FLOE_DISCOVERY_CATALOGS": "a,b", "FLOE_DISCOVERY_TIMEOUT": "2m"}
    )
    assert s is not None and s.catalogs == ("a", "b") and s.timeout_seconds == 120.0
    with pytest.raises(ConfigError, match=r"FLOE_DISCOVERY_NAMESPACES: 'sales\.\.eu'"):
        DiscoverySettings.from_env({"FLOE_DISCOVERY_NAMESPACES": "sales..eu"})


def load_contracts_and_registrations_from_env() -> Any:
    from floe_monitoring_defs.config import Settings

    return load_contracts_and_registrations(Settings.from_env())


def test_floe_contracts_list_and_checks_run_see_the_discovered_contracts(
    lake: SqlCatalog, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI reads the same contract set as the code location (contract_set.py): files, registrations and, with
    an empty store, the catalog's."""
    import json

    monkeypatch.setenv("FLOE_MONITORING_DB_URL", store_url)
    MonitoringStore(store_url).dispose()
    listed = CliRunner().invoke(cli, ["contracts", "list", "--format", "json"])
    assert listed.exit_code == 0, listed.output
    doc = json.loads(listed.output)
    assert sorted(c["name"] for c in doc["contracts"]) == ["filed", "inline", "pointed"]
    assert [e for e in doc["errors"] if e.startswith(BROKEN)]
    ran = CliRunner().invoke(cli, ["checks", "run", "--contract", "inline", "--type", "freshness"])
    assert ran.exit_code == 1, ran.output
    [row] = [line.split() for line in ran.output.splitlines() if line.startswith("inline ")]
    assert row[:5] == ["inline", "shop.inline", "freshness", "FAIL", "ERROR"]  # 5 h old against its PT1H
