"""`floe metrics serve` / `floe metrics show` (floe_monitoring_defs/watch.py): the monitor's own gauges, read from
a real store filled by the check pipeline on the demo warehouse (examples/contracts), with injected clocks.

Expected values are computed independently of the exporter: timestamps from the injected pipeline clock,
intervals from the plan, counts with plain SQL on the store.
"""

import logging
import shutil
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from floe_monitoring_defs.checks.plan import plan_checks
from floe_monitoring_defs.checks.registry import check_kinds
from floe_monitoring_defs.cli import cli
from floe_monitoring_defs.config import MonitoringConfig, Settings
from floe_monitoring_defs.contracts.registry import load_all
from floe_monitoring_defs.demo import build_warehouse
from floe_monitoring_defs.models import CheckStatus
from floe_monitoring_defs.pipeline import CheckPipeline
from floe_monitoring_defs.sources.iceberg import IcebergSource
from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_defs.store import tables as t
from floe_monitoring_defs.watch import Family, MonitorCollector, exposition

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
PASSWORD = "w4tch-S3cret-pw"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Ticks:
    """An injected monotonic clock for the exporter's caches."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _samples(families: list[Family], name: str) -> dict[tuple[str, ...], float]:
    [family] = [f for f in families if f.name == name]
    return dict(family.samples)


def _run_all(store_url: str, env: dict[str, str], at: datetime, kinds: set[str] | None = None) -> None:
    store = MonitoringStore(store_url, clock=Clock(at))
    try:
        plan = plan_checks(load_all(Settings.from_env(env).contracts_dir), MonitoringConfig(), check_kinds())
        pipeline = CheckPipeline(IcebergSource(), store, MonitoringConfig(), clock=Clock(at))
        for group in plan.groups:
            if kinds is None or group.check_type in kinds:
                list(pipeline.run(group.check_type, group.targets))
    finally:
        store.dispose()


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    demo = build_warehouse(tmp_path / "demo", now=NOW)
    contracts = tmp_path / "contracts"
    shutil.copytree(ROOT / "examples" / "contracts", contracts)
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    env = demo.catalog_env() | {"FLOE_CONTRACTS_DIR": str(contracts), "FLOE_MONITORING_DB_URL": store_url}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    _run_all(store_url, env, NOW)
    yield {"env": env, "store_url": store_url, "tmp": tmp_path}


def test_last_completed_check_and_interval_per_contract_and_kind(deployment: dict[str, Any]) -> None:
    env = deployment["env"]
    collector = MonitorCollector(env, clock=Clock(NOW + timedelta(minutes=5)), monotonic=Ticks())
    try:
        families = collector.families()
    finally:
        collector.close()
    assert _samples(families, "floe_monitor_store_up") == {(): 1.0}
    assert _samples(families, "floe_monitor_config_valid") == {(): 1.0}

    plan = plan_checks(load_all(Settings.from_env(env).contracts_dir), MonitoringConfig(), check_kinds())
    intervals = {
        (p.contract.name, kind): float(minutes * 60)
        for p in plan.contracts
        if p.scheduled
        for kind, minutes in p.intervals.items()
        if minutes is not None
    }
    assert intervals and _samples(families, "floe_contract_check_interval_seconds") == intervals

    store = MonitoringStore(deployment["store_url"], auto_migrate=False)
    r = t.contract_check_results.c
    try:
        with store.db.transaction("reading") as conn:
            completed = {
                (str(c), str(k))
                for c, k in conn.execute(
                    sa.select(r.contract_name, r.check_type)
                    .where(r.status.in_([CheckStatus.PASS.value, CheckStatus.FAIL.value]))
                    .distinct()
                )
            }
            pending = conn.execute(
                sa.select(sa.func.count()).select_from(t.alert_outbox).where(t.alert_outbox.c.state == "pending")
            ).scalar_one()
    finally:
        store.dispose()
    last = _samples(families, "floe_contract_last_check_timestamp_seconds")
    planned = {(p.contract.name, kind) for p in plan.contracts if p.scheduled for kind in p.intervals}
    assert set(last) == completed & planned
    assert last and all(v == NOW.timestamp() for v in last.values())
    # the demo's unreachable catalog: its checks end in ERROR, so no completed check (no series) for them
    assert set(intervals) - set(last)

    assert _samples(families, "floe_alert_outbox_backlog") == {(): float(pending)}
    assert pending > 0  # the demo's violations, not routed (no dispatcher ran)
    age = _samples(families, "floe_alert_outbox_oldest_pending_age_seconds")[()]
    assert age == 300.0  # recorded at NOW, read at NOW + 5 min
    contracts = _samples(families, "floe_contracts")
    assert contracts[("loaded",)] == float(len(plan.report.contracts)) and contracts[("refused",)] == 0.0


def test_reads_are_cached_for_the_refresh_interval(deployment: dict[str, Any]) -> None:
    ticks = Ticks()
    collector = MonitorCollector(
        deployment["env"], refresh_s=15.0, plan_refresh_s=60.0, clock=Clock(NOW + timedelta(hours=1)), monotonic=ticks
    )
    try:
        first = _samples(collector.families(), "floe_contract_last_check_timestamp_seconds")
        later = NOW + timedelta(hours=1)
        _run_all(deployment["store_url"], deployment["env"], later, kinds={"freshness"})
        ticks.t += 14.9
        assert _samples(collector.families(), "floe_contract_last_check_timestamp_seconds") == first
        ticks.t += 0.1
        fresh = _samples(collector.families(), "floe_contract_last_check_timestamp_seconds")
    finally:
        collector.close()
    moved = {key for key in fresh if fresh[key] != first[key]}
    assert moved and {kind for _, kind in moved} == {"freshness"}
    assert all(fresh[key] == later.timestamp() for key in moved)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_store_down_reports_0_without_the_password_and_recovers(
    deployment: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    down = dict(deployment["env"])
    down["FLOE_MONITORING_DB_URL"] = f"postgresql+psycopg2://floe:{PASSWORD}@127.0.0.1:{_closed_port()}/floe"
    caplog.set_level(logging.DEBUG)
    collector = MonitorCollector(down, monotonic=Ticks(), refresh_s=0.0)
    try:
        text = exposition(collector)
    finally:
        collector.close()
    assert "floe_monitor_store_up 0.0" in text
    assert "floe_contract_last_check_timestamp_seconds{" not in text  # no stale values kept as if fresh
    assert PASSWORD not in text and PASSWORD not in caplog.text
    assert "127.0.0.1" in caplog.text  # the log names the endpoint


def test_cli_show_prints_the_exposition(deployment: dict[str, Any]) -> None:
    result = CliRunner().invoke(cli, ["metrics", "show"])
    assert result.exit_code == 0, result.output
    assert "floe_monitor_store_up 1.0" in result.output
    assert "# TYPE floe_alert_delivery_attempts_total counter" in result.output


def test_cli_serve_names_a_busy_port(deployment: dict[str, Any]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(cli, ["metrics", "serve", "--port", str(port)])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "Traceback" not in result.output


def test_started_exporter_answers_from_its_background_read(deployment: dict[str, Any]) -> None:
    """Once started, a scrape never reads the store itself (a slow read must not time the scrape out)."""
    ticks = Ticks()
    collector = MonitorCollector(deployment["env"], refresh_s=3600.0, clock=Clock(NOW), monotonic=ticks)
    try:
        collector.start()
        first = _samples(collector.families(), "floe_contract_last_check_timestamp_seconds")
        later = NOW + timedelta(hours=2)
        _run_all(deployment["store_url"], deployment["env"], later, kinds={"schema_drift"})
        ticks.t += 7200.0  # far past refresh_s: an on-demand collector would re-read now
        assert _samples(collector.families(), "floe_contract_last_check_timestamp_seconds") == first
        collector.refresh()  # what the background thread does every refresh_s
        fresh = _samples(collector.families(), "floe_contract_last_check_timestamp_seconds")
    finally:
        collector.close()
    moved = {key for key in fresh if fresh[key] != first[key]}
    assert moved and {kind for _, kind in moved} == {"schema_drift"}
