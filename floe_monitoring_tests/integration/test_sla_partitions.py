"""`contract_sla_daily` from the first monitored day (issue 14, scope 6), on SQLite and PostgreSQL.

- where the partitions start: `sla.partitions_start` (validated, errors naming the key), else the older
  `FLOE_SLA_START_DATE`, else the first day the store has check results (kept after retention deleted the raw
  rows: the aggregates remember it), else, with an empty or unreachable store, the oldest day inside the
  retention window, the load never failing on it;
- days before a contract's first monitored day have no row for it, and a day with nothing expected or run reads
  "no data" (null) in the materialization's metadata, never 0 %; `SLAReporter` and `floe sla report` count
  coverage only over monitored days and print `no data` for a compliance with nothing evaluated;
- no `BetaWarning` about `backfill_policy` when the location loads, and the asset keeps its single-run policy.

Time is injected everywhere a verdict depends on it (the asset's clock, the report's `now`).
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner

from floe_monitoring_defs.checks.plan import Plan, plan_checks
from floe_monitoring_defs.checks.registry import check_kinds
from floe_monitoring_defs.cli import cli
from floe_monitoring_defs.config import ConfigError, MonitoringConfig, load_config
from floe_monitoring_defs.contracts.model import LoadReport
from floe_monitoring_defs.definitions import build_defs
from floe_monitoring_defs.defs.resources import MonitoringStoreResource
from floe_monitoring_defs.defs.sla import ASSET_NAME, NO_DATA, build_sla_asset, build_sla_definitions
from floe_monitoring_defs.models import CheckResult, CheckStatus, Expectation, Key, ViolationType
from floe_monitoring_defs.sla.monitored import first_days_by_contract, first_monitored_day, read_first_monitored_day
from floe_monitoring_defs.sla.render import format_report
from floe_monitoring_defs.sla.report import SLAReporter
from floe_monitoring_defs.sla.settings import PartitionsStart, SLASettings, oldest_day_in_retention
from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_tests.dagster_metadata import number, table_records, text

pytestmark = pytest.mark.integration

D1, D2, D3 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)
NOW = datetime(2026, 3, 4, 0, 0, tzinfo=UTC)  # midnight after D3: the report has no partial day
HOURLY = Expectation(interval_minutes=60, tables=1, target_pct=99.0)  # 24 checks a day
# a: monitored from D2 (every hour but the first two of D2); b: from D3 (12 of 24 hours); c: loaded, never ran.
EXPECTATIONS: dict[Key, Expectation] = {
    ("a", "freshness"): HOURLY,
    ("b", "freshness"): HOURLY,
    ("c", "freshness"): HOURLY,
}


def _empty_plan(config: MonitoringConfig) -> Plan:
    return plan_checks(LoadReport((), ()), config, check_kinds())


def _record(store: MonitoringStore, contract: str, day: date, hours: range, status: CheckStatus) -> None:
    for hour in hours:
        store.results.record_check(
            CheckResult(
                contract_name=contract,
                check_type=ViolationType.FRESHNESS,
                status=status,
                duration_seconds=0.1,
                timestamp=datetime.combine(day, time(hour, 0, 5), tzinfo=UTC),
            ),
            [],
            table_name=f"shop.{contract}",
        )


@pytest.fixture
def store(store_url: str) -> Iterator[MonitoringStore]:
    s = MonitoringStore(store_url)
    s.db.upgrade()
    _record(s, "a", D2, range(2, 24), CheckStatus.PASS)
    _record(s, "a", D3, range(24), CheckStatus.PASS)
    _record(s, "b", D3, range(6), CheckStatus.PASS)
    _record(s, "b", D3, range(6, 12), CheckStatus.FAIL)
    yield s
    s.dispose()


def _start(defs: dg.Definitions) -> str | None:
    spec = {s.key: s for s in defs.resolve_all_asset_specs()}[dg.AssetKey(ASSET_NAME)]
    assert spec.partitions_def is not None
    return spec.partitions_def.get_first_partition_key()


def _location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str, config: dict[str, object] | None) -> None:
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("FLOE_CONTRACTS_DIR", str(contracts))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("FLOE_MONITORING_DB_URL", db_url)
    if config is not None:
        path = tmp_path / "monitoring.yaml"
        path.write_text(yaml.safe_dump(config), "utf-8")
        monkeypatch.setenv("FLOE_MONITORING_CONFIG", str(path))


# -- where the partitions start ---------------------------------------------------------------------------------


def test_the_store_first_monitored_day_starts_the_partitions(
    store: MonitoringStore, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert first_monitored_day(store.db) == D2
    assert first_days_by_contract(store.db, ["a", "b", "c"]) == {"a": D2, "b": D3}  # c never ran
    _location(tmp_path, monkeypatch, store_url, None)
    defs = build_defs(strict=True)
    assert _start(defs) == D2.isoformat()
    [asset] = [a for a in defs.assets or () if isinstance(a, dg.AssetsDefinition) and a.key.path == [ASSET_NAME]]
    assert "Partitions from 2026-03-02 (the first day the store has check results)" in (
        asset.specs_by_key[asset.key].description or ""
    )


def test_the_first_day_survives_retention(store: MonitoringStore) -> None:
    for day in (D2, D3):
        store.aggregates.aggregate_day(day, EXPECTATIONS, now=NOW)
    store.retention.cleanup(datetime.combine(D3, time(6), tzinfo=UTC) + timedelta(days=1), retention_days=1)
    left = {r.timestamp.date() for r in store.results.check_results()}
    assert left == {D3}  # every raw row of D2 is gone...
    assert first_monitored_day(store.db) == D2  # ...and its aggregates still say monitoring began then
    assert first_days_by_contract(store.db, ["a", "b"]) == {"a": D2, "b": D3}


def test_the_config_key_wins_then_the_variable_then_the_store(store: MonitoringStore) -> None:
    def reader() -> date | None:
        return first_monitored_day(store.db)

    def start(config: MonitoringConfig, settings: SLASettings) -> str | None:
        sla = build_sla_definitions(_empty_plan(config), config, running=False, settings=settings, first_day=reader)
        [asset] = [a for a in sla.assets or () if isinstance(a, dg.AssetsDefinition)]
        assert asset.partitions_def is not None
        return asset.partitions_def.get_first_partition_key()

    keyed = MonitoringConfig.model_validate({"sla": {"partitions_start": "2026-01-15"}})
    old = SLASettings(start_date=date(2026, 2, 1))
    assert start(keyed, old) == "2026-01-15"
    assert start(MonitoringConfig(), old) == "2026-02-01"
    assert start(MonitoringConfig(), SLASettings()) == D2.isoformat()


def test_an_empty_store_starts_in_the_retention_window(store_url: str) -> None:
    empty = MonitoringStore(store_url)
    empty.db.upgrade()
    try:
        config = MonitoringConfig(retention_days=30)
        clock = datetime(2026, 3, 20, 8, 30, tzinfo=UTC)
        sla = build_sla_definitions(
            _empty_plan(config),
            config,
            running=False,
            settings=SLASettings(),
            clock=lambda: clock,
            first_day=lambda: first_monitored_day(empty.db),
        )
    finally:
        empty.dispose()
    [asset] = [a for a in sla.assets or () if isinstance(a, dg.AssetsDefinition)]
    assert asset.partitions_def is not None
    # 30 days before 08:30 on 03-20 is 08:30 on 02-18: the first whole day inside the window is 02-19.
    assert asset.partitions_def.get_first_partition_key() == "2026-02-19"
    assert oldest_day_in_retention(datetime(2026, 3, 20, tzinfo=UTC), 30) == date(2026, 2, 18)  # on midnight


def test_an_unreachable_store_falls_back_and_the_location_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _location(tmp_path, monkeypatch, "postgresql+psycopg2://floe:hunter2pw@127.0.0.1:1/floe", None)
    config = MonitoringConfig()
    with caplog.at_level(logging.WARNING, logger="floe_monitoring_defs.sla.settings"):
        sla = build_sla_definitions(
            _empty_plan(config),
            config,
            running=False,
            settings=SLASettings(),
            clock=lambda: datetime(2026, 3, 20, 8, 30, tzinfo=UTC),
            first_day=read_first_monitored_day,  # the reader the location uses, on the env's (dead) store
        )
    [asset] = [a for a in sla.assets or () if isinstance(a, dg.AssetsDefinition)]
    # 90 days before 08:30 on 2026-03-20 is 08:30 on 2025-12-20: the first whole day inside is 2025-12-21.
    assert asset.partitions_def is not None and asset.partitions_def.get_first_partition_key() == "2025-12-21"
    logged = caplog.text
    assert "partitions start on 2025-12-21" in logged and "127.0.0.1:1" in logged and "hunter2pw" not in logged
    defs = build_defs()  # the whole location loads too
    assert _start(defs) is not None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("yesterday", "must be a date written YYYY-MM-DD (got 'yesterday')"),
        (20260101, "must be a date written YYYY-MM-DD (got 20260101)"),
        ("2999-01-01", "must be today (UTC) or earlier, not a future day (got '2999-01-01')"),
        (date(2999, 1, 1), "must be today (UTC) or earlier, not a future day"),  # unquoted in YAML: a date
    ],
)
def test_a_bad_partitions_start_names_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: object, message: str
) -> None:
    _location(tmp_path, monkeypatch, f"sqlite:///{tmp_path / 'floe.db'}", {"sla": {"partitions_start": value}})
    path = tmp_path / "monitoring.yaml"
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert str(raised.value) == f"{path}: sla.partitions_start: {message}"
    with pytest.raises(ConfigError, match=r"sla\.partitions_start"):
        build_defs(strict=True)


def test_a_configured_start_loads_through_the_location(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _location(tmp_path, monkeypatch, store_url, {"sla": {"partitions_start": "2026-02-10"}})
    assert load_config().sla.partitions_start == date(2026, 2, 10)
    assert _start(build_defs(strict=True)) == "2026-02-10"


# -- days without expected checks read "no data" ----------------------------------------------------------------


def _materialize(
    asset: dg.AssetsDefinition, url: str, first: date, last: date
) -> dict[str, dict[str, dg.MetadataValue]]:
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [asset],
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": first.isoformat(),
                "dagster/asset_partition_range_end": last.isoformat(),
            },
            resources={"floe_store": MonitoringStoreResource(db_url=url)},
        )
    assert result.success
    out: dict[str, dict[str, dg.MetadataValue]] = {}
    for event in result.get_asset_materialization_events():
        assert event.materialization.partition is not None
        out[event.materialization.partition] = dict(event.materialization.metadata)
    return out


def test_days_before_monitoring_read_no_data(store: MonitoringStore, store_url: str) -> None:
    # The partitions start before monitoring did (configured), so the asset meets days it has no data for.
    asset = build_sla_asset(EXPECTATIONS, PartitionsStart(D1, "test"), clock=lambda: NOW)
    by_day = _materialize(asset, store_url, D1, D3)
    assert sorted(by_day) == [D1.isoformat(), D2.isoformat(), D3.isoformat()]
    rows = {(r.date, r.contract_name): r for r in store.aggregates.daily_aggregates()}

    d1 = by_day[D1.isoformat()]
    assert not [k for k in rows if k[0] == D1]  # nothing stored for a day before monitoring began
    assert isinstance(d1["floe/compliance_pct"], dg.NullMetadataValue)
    assert isinstance(d1["floe/coverage_pct"], dg.NullMetadataValue)
    assert text(d1, "floe/no_data") == NO_DATA
    assert number(d1, "floe/contracts_not_monitored_yet") == 3
    assert store.aggregates.aggregated_days(D1, D1 + timedelta(days=1)) == {D1}  # aggregated, and empty

    d2 = by_day[D2.isoformat()]
    assert {k for k in rows if k[0] == D2} == {(D2, "a"), (D2, "c")}  # b's monitoring began on D3
    assert (rows[(D2, "a")].totals.total, rows[(D2, "a")].expected_checks) == (22, 24)
    # c never ran: owed from the store's first monitored day, so its missing checks are a real 0 % coverage.
    assert (rows[(D2, "c")].totals.total, rows[(D2, "c")].coverage_pct) == (0, 0.0)
    assert number(d2, "floe/contracts_not_monitored_yet") == 1
    assert number(d2, "floe/compliance_pct") == 100.0
    assert number(d2, "floe/coverage_pct") == pytest.approx(22 / 48 * 100)
    table = {r.data["contract"]: r.data for r in table_records(d2, "day")}
    assert table["c"]["compliance_pct"] is None and table["c"]["coverage_pct"] == 0.0  # no data, not 0 %
    assert "floe/no_data" not in d2

    d3 = by_day[D3.isoformat()]
    assert {k for k in rows if k[0] == D3} == {(D3, "a"), (D3, "b"), (D3, "c")}
    assert "floe/contracts_not_monitored_yet" not in d3
    assert number(d3, "floe/compliance_pct") == pytest.approx(30 / 36 * 100)

    # The report: b's coverage is over its monitored day only (D1 and D2 owe it nothing), c's compliance is
    # "no data" (nothing evaluated) while its coverage is a real 0 %.
    reports = {r.contract_name: r for r in SLAReporter(store, clock=lambda: NOW).reports("weekly", now=NOW)}
    assert reports["b"].monitoring_coverage_pct == pytest.approx(12 / 24 * 100)
    assert reports["b"].expected_checks == 24
    assert reports["a"].monitoring_coverage_pct == pytest.approx(46 / 48 * 100)
    c = reports["c"]
    assert (c.overall_compliance_pct, c.monitoring_coverage_pct, c.total_checks_executed) == (None, 0.0, 0)
    [summary] = c.check_summaries
    assert summary.compliance_pct is None and summary.error_budget is None
    rendered = format_report(c).splitlines()
    assert "Overall Compliance: no data" in rendered
    assert f"{'freshness':<20} {0:>8} {0:>8} {0:>8} {'no data':>12} {'stable':>12}" in rendered
    assert reports["b"].overall_compliance_pct == pytest.approx(50.0)


def test_floe_sla_report_prints_no_data(
    store: MonitoringStore, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    asset = build_sla_asset(EXPECTATIONS, PartitionsStart(D1, "test"), clock=lambda: NOW)
    _materialize(asset, store_url, D1, D3)
    monkeypatch.setenv("FLOE_MONITORING_DB_URL", store_url)
    args = ["sla", "report", "--contract", "c", "--window", "weekly", "--as-of", "2026-03-04T00:00:00"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "Overall Compliance: no data" in res.output and "Monitoring Coverage: 0.0%" in res.output
    assert "0.0%" not in res.output.split("Monitoring Coverage")[0]  # compliance is never printed as 0 %
    res = CliRunner().invoke(cli, [*args, "--format", "json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.output)
    assert payload["overall_compliance_pct"] is None and payload["check_summaries"][0]["compliance_pct"] is None


def test_stored_rows_of_an_old_store_are_replaced_when_the_day_is_rematerialized(
    store: MonitoringStore, store_url: str
) -> None:
    """A store written before this change holds 0 % rows for days before a contract's monitoring began; a re-run
    of such a day (inside retention) replaces them with nothing."""
    store.aggregates.aggregate_day(D2, EXPECTATIONS, now=NOW)  # the old behaviour: every loaded contract owed
    assert {r.contract_name for r in store.aggregates.daily_aggregates(start=D2, end=D3)} == {"a", "b", "c"}
    asset = build_sla_asset(EXPECTATIONS, PartitionsStart(D1, "test"), clock=lambda: NOW)
    _materialize(asset, store_url, D2, D2)
    assert {r.contract_name for r in store.aggregates.daily_aggregates(start=D2, end=D3)} == {"a", "c"}


# -- no BetaWarning ---------------------------------------------------------------------------------------------


def test_loading_prints_no_backfill_policy_beta_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _location(tmp_path, monkeypatch, f"sqlite:///{tmp_path / 'floe.db'}", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        defs = build_defs(strict=True)
    about_backfill = [str(w.message) for w in caught if "backfill_policy" in str(w.message)]
    assert about_backfill == []
    [asset] = [a for a in defs.assets or () if isinstance(a, dg.AssetsDefinition) and a.key.path == [ASSET_NAME]]
    assert asset.backfill_policy == dg.BackfillPolicy.single_run()
    # and the beta spelling would have warned (the check above can fail)
    with warnings.catch_warnings(record=True) as beta:
        warnings.simplefilter("always")

        @dg.asset(
            partitions_def=dg.DailyPartitionsDefinition("2026-01-01"), backfill_policy=dg.BackfillPolicy.single_run()
        )
        def probe() -> None: ...

    assert any("backfill_policy" in str(w.message) and issubclass(w.category, dg.BetaWarning) for w in beta)


def test_first_day_queries_are_two_indexed_reads(store: MonitoringStore) -> None:
    """Read cheaply at load: two MIN() statements, whatever the number of rows (counted on the engine)."""
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "min(" in statement.lower():
            statements.append(statement)

    sa.event.listen(store.db.engine, "before_cursor_execute", count)
    try:
        assert first_monitored_day(store.db) == D2
    finally:
        sa.event.remove(store.db.engine, "before_cursor_execute", count)
    assert len(statements) == 2
