"""`floe sla report` and `floe db cleanup` against a populated store (never sample data)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from floe_monitoring_defs.cli import cli
from floe_monitoring_defs.sla.report import SLAReporter
from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_defs.store.aggregates import days_in
from floe_monitoring_tests.integration.sla_history import History, generate, write

pytestmark = pytest.mark.integration

NOW = datetime(2026, 4, 20, 14, 30, 0, tzinfo=UTC)
AS_OF = NOW.strftime("%Y-%m-%dT%H:%M:%S")


@pytest.fixture
def populated(store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[MonitoringStore, History]]:
    store = MonitoringStore(store_url)
    store.db.upgrade()
    h = generate(seed=42, now=NOW, days=12, contracts=3)
    write(store_url, h)
    for day in days_in(h.first_day.date(), NOW.date()):
        store.aggregates.aggregate_day(day, h.expectations, now=NOW)
    monkeypatch.setenv("FLOE_MONITORING_DB_URL", store_url)
    monkeypatch.delenv("FLOE_SLA_DEFAULT_TARGET_PCT", raising=False)
    try:
        yield store, h
    finally:
        store.dispose()


def _without_generated(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "generated_at"}


def test_json_is_the_report_model(populated: tuple[MonitoringStore, History]) -> None:
    store, _ = populated
    res = CliRunner().invoke(
        cli, ["sla", "report", "--contract", "contract_01", "--window", "WEEKLY", "--format", "json", "--as-of", AS_OF]
    )
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)
    want = SLAReporter(store).report("contract_01", "weekly", now=NOW).model_dump(mode="json")
    assert _without_generated(got) == _without_generated(want)
    assert got["period_start"] == "2026-04-13T00:00:00Z" and got["window"] == "weekly"

    res = CliRunner().invoke(cli, ["sla", "report", "--window", "monthly", "--format", "json", "--as-of", AS_OF])
    assert res.exit_code == 0, res.output
    every = json.loads(res.stdout)
    assert [r["contract_name"] for r in every] == ["contract_00", "contract_01", "contract_02", "retired"]
    assert all(r["window"] == "monthly" for r in every)


def test_table_has_the_spec_layout(populated: tuple[MonitoringStore, History]) -> None:
    store, _ = populated
    res = CliRunner().invoke(cli, ["sla", "report", "--contract", "contract_02", "--window", "daily", "--as-of", AS_OF])
    assert res.exit_code == 0, res.output
    rep = SLAReporter(store).report("contract_02", "daily", now=NOW)
    lines = res.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert lines[:4] == [
        "=" * 80,
        "SLA COMPLIANCE REPORT: contract_02",
        "=" * 80,
        "Period: 2026-04-19T00:00:00+00:00 to 2026-04-20T14:30:00+00:00",
    ]
    assert re.fullmatch(r"Generated: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00", lines[4])
    assert lines[5:15] == [
        "",
        f"Overall Compliance: {rep.overall_compliance_pct:.1f}%",
        f"Total Violations: {rep.total_violations}",
        f"Total Checks Executed: {rep.total_checks_executed}",
        f"Monitoring Coverage: {rep.monitoring_coverage_pct:.1f}%",
        "",
        "CHECK TYPE SUMMARY",
        "-" * 80,
        "Check Type              Total     Pass     Fail   Compliance        Trend",
        "-" * 80,
    ]
    rows = lines[15 : 15 + len(rep.check_summaries)]
    assert rows == [
        f"{s.check_type.value:<20} {s.total_checks:>8} {s.passed_checks:>8} {s.failed_checks:>8} "
        f"{s.compliance_pct:>11.1f}% {s.trend.value:>12}"
        for s in rep.check_summaries
    ]
    assert lines[15 + len(rep.check_summaries)] == "=" * 80
    assert rep.total_checks_executed > 0 and len(rows) == 4
    text = res.stdout
    for section in ("DETAILS", "ERROR BUDGET", "VIOLATIONS BY TYPE AND SEVERITY", "MTTD", "MTTR", "WEEKLY TREND"):
        assert section in text


def test_no_data_and_unknown_contract(populated: tuple[MonitoringStore, History]) -> None:
    long_before = "2020-01-01T00:00:00"
    res = CliRunner().invoke(cli, ["sla", "report", "--as-of", long_before])
    assert res.exit_code == 0 and "no monitoring data" in res.stdout
    res = CliRunner().invoke(cli, ["sla", "report", "--format", "json", "--as-of", long_before])
    assert res.exit_code == 0 and json.loads(res.stdout) == []
    res = CliRunner().invoke(cli, ["sla", "report", "--contract", "nope", "--as-of", AS_OF])
    assert res.exit_code == 1
    assert res.stderr.startswith("Error: Failed to generate report: no monitoring data for contract 'nope'")


def test_unreachable_store_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOE_MONITORING_DB_URL", "postgresql+psycopg2://floe:pw@127.0.0.1:1/x")
    for args in (["sla", "report"], ["sla", "report", "--contract", "orders", "--format", "json"]):
        res = CliRunner().invoke(cli, args)
        assert res.exit_code == 1
        assert res.stdout == ""
        assert res.stderr.startswith(
            "Error: Failed to generate report: monitoring store postgresql+psycopg2://floe:***@127.0.0.1:1/x"
        )
        assert "Traceback" not in res.output and "pw" not in res.output


def test_db_cleanup_command(populated: tuple[MonitoringStore, History]) -> None:
    store, h = populated
    before = store.aggregates.daily_aggregates()
    # Rows are from April 2026; against the real clock every one is older than a day.
    res = CliRunner().invoke(cli, ["db", "cleanup", "--retention-days", "1", "--batch-size", "1000"])
    assert res.exit_code == 0, res.output
    assert f"{len(h.results)} check results, {len(h.violations)} violations" in res.stdout
    assert store.results.check_results() == [] and store.aggregates.daily_aggregates() == before
    # The figures of the whole days survive in the aggregates.
    rep = SLAReporter(store).report("contract_00", "weekly", now=NOW - timedelta(hours=14, minutes=30))
    assert rep.days_from_aggregates == 7 and rep.total_checks_executed > 0
