"""Nothing lost when the store is down (issue 12, acceptance 5): the local durable spool (store/spool.py).

The acceptance test runs its OWN throwaway PostgreSQL cluster (the session one is shared by every test), records
checks, stops the server with `pg_ctl stop -m immediate`, runs checks that find violations on real Iceberg
tables, starts the server again, then drains the spool and dispatches to a real loopback CloudEvents receiver:
every violation detected meanwhile is alerted exactly once, with its original id and detection time, and a
repeat inside the dedup window is suppressed as usual. The other tests cover the spool's bounds (each drop
logged at ERROR and counted), idempotence (a drain that crashed before removing a file), order (a PASS after
a spooled FAIL still yields its "resolved" notice), rejected records and the dispatch sensor's drain.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml
from pyiceberg.catalog.sql import SqlCatalog

from floe_monitoring_defs.alerting.channels.base import build_channel
from floe_monitoring_defs.alerting.dispatch import AlertDispatcher
from floe_monitoring_defs.checks.runner import CheckRun
from floe_monitoring_defs.config import ConfigError, MonitoringConfig, SpoolSettings
from floe_monitoring_defs.contracts import MonitoredContract
from floe_monitoring_defs.definitions import build_defs
from floe_monitoring_defs.models import CheckStatus, ViolationType
from floe_monitoring_defs.pipeline import CheckPipeline, drain_spool, open_spool
from floe_monitoring_defs.sources.iceberg import IcebergSource
from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_defs.store import tables as t
from floe_monitoring_defs.store.spool import REJECTED_DIR, Spool, SpooledRecord
from floe_monitoring_defs.telemetry.metrics import monitor_metrics
from floe_monitoring_tests.alerting_receivers import HTTPRecorder, cloudevents_responder
from floe_monitoring_tests.conftest import (
    PG_SUPERUSER,
    _as_pg_user,
    _ensure_pg_os_user,
    _free_port,
    _run,
    _unavailable,
    find_pg_bindir,
)
from floe_monitoring_tests.integration.iceberg_helpers import (
    CATALOG,
    FRESHNESS_PROPS,
    catalog_env,
    create,
    make_catalog,
)
from floe_monitoring_tests.integration.iceberg_helpers import FRESHNESS_SCHEMA as SCHEMA
from floe_monitoring_tests.integration.iceberg_helpers import freshness_contract as contract

pytestmark = pytest.mark.integration

F = ViolationType.FRESHNESS


# -- a PostgreSQL cluster of this test's own, to stop and start -------------------------------------


@dataclass
class PgCluster:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (trust auth) that a test may stop and start again."""

    bindir: Path
    workdir: Path
    port: int = 0

    @property
    def datadir(self) -> Path:
        return self.workdir / "data"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://{PG_SUPERUSER}@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str) -> list[str]:
        return _as_pg_user([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), *args])

    def init(self) -> None:
        sockdir = self.workdir / "sock"
        sockdir.mkdir()
        if os.geteuid() == 0:
            user = _ensure_pg_os_user()
            for path in (self.workdir, sockdir):
                os.chown(path, user.pw_uid, user.pw_gid)
        initdb = [str(self.bindir / "initdb"), "-D", str(self.datadir), "-A", "trust", "-U", PG_SUPERUSER]
        _run(_as_pg_user([*initdb, "--encoding", "UTF8", "--no-locale", "--no-sync"]), self.workdir, "initdb")

    def start(self) -> None:
        """Start (on the same port as before after a stop; a free one the first time)."""
        for _attempt in range(3):
            port = self.port or _free_port()
            options = f"-h 127.0.0.1 -p {port} -k {self.workdir / 'sock'} -F"
            cmd = self._pg_ctl("-l", str(self.workdir / "postgres.log"), "-w", "-t", "60", "-o", options, "start")
            if subprocess.run(cmd, cwd=self.workdir, capture_output=True, timeout=120, check=False).returncode == 0:
                self.port = port
                return
            if self.port:  # the same port is required after a restart: no other choice
                break
        log = self.workdir / "postgres.log"
        pytest.fail(f"pg_ctl start failed: {log.read_text(errors='replace')[-3000:] if log.exists() else ''}")

    def stop(self, mode: str = "immediate") -> None:
        subprocess.run(self._pg_ctl("-m", mode, "-w", "stop"), cwd=self.workdir, capture_output=True, timeout=120)


@pytest.fixture
def pg_cluster() -> Iterator[PgCluster]:
    bindir = find_pg_bindir()
    if bindir is None:
        _unavailable("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found")
    assert bindir is not None
    # Not under tmp_path: its root-owned 0700 parents would keep the postgres user out.
    cluster = PgCluster(bindir, Path(tempfile.mkdtemp(prefix="floe-pg-outage-")))
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(cluster.workdir, ignore_errors=True)


# -- tables, contracts, receiver --------------------------------------------------------------------


@pytest.fixture
def catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SqlCatalog:
    for k, v in catalog_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    return make_catalog(tmp_path)


def table(cat: SqlCatalog, name: str, age: timedelta) -> None:
    """An Iceberg table whose newest row is `age` old (stale past 1 h)."""
    newest = datetime.now(UTC) - age
    create(cat, f"shop.{name}", SCHEMA, {"id": ["a"], "amount": [Decimal("1.00")], "updated_at": [newest]})


def alert_config(url: str) -> MonitoringConfig:
    return MonitoringConfig.model_validate(
        {
            "alerts": {
                "channels": {"hook": {"type": "webhook", "url": url, "timeout_seconds": 2}},
                "routing_rules": [{"channel_name": "hook", "min_severity": "warning"}],
            }
        }
    )


@pytest.fixture
def receiver() -> Iterator[HTTPRecorder]:
    with HTTPRecorder(cloudevents_responder()) as rec:
        yield rec


def dispatcher(store: MonitoringStore, config: MonitoringConfig) -> AlertDispatcher:
    channel = build_channel("hook", config.alerts.channels["hook"], environ={})
    return AlertDispatcher(store.outbox, {"hook": channel}, config.alerts)


def spool_in(tmp_path: Path, **bounds: Any) -> Spool:
    return Spool(SpoolSettings(tmp_path / "spool", **bounds), counters=monitor_metrics())


def check(pipeline: CheckPipeline, c: MonitoredContract) -> CheckRun:
    [run] = list(pipeline.run(F, [(c, tb) for tb in c.tables]))
    return run


def spooled_records(spool: Spool) -> list[SpooledRecord]:
    return [SpooledRecord.from_json(p.read_bytes()) for p in spool.files()]


# -- acceptance 5 -----------------------------------------------------------------------------------


@pytest.mark.postgres
def test_store_killed_mid_run_every_violation_detected_meanwhile_is_alerted_once(
    pg_cluster: PgCluster,
    catalog: SqlCatalog,
    receiver: HTTPRecorder,
    tmp_path: Path,
    telemetry: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name in ("before", "during_a", "during_b"):
        table(catalog, name, timedelta(hours=3))
    before, during_a, during_b = contract("before"), contract("during_a"), contract("during_b")
    config = alert_config(receiver.url_for("/events"))
    store = MonitoringStore(pg_cluster.url)
    spool = spool_in(tmp_path)
    spooled0, drained0 = telemetry.counter("floe_spool_spooled"), telemetry.counter("floe_spool_drained")

    def pipeline() -> CheckPipeline:
        return CheckPipeline(IcebergSource(), store, config, dispatcher=lambda: dispatcher(store, config), spool=spool)

    # 1. The store answers: recorded and alerted at once (eager dispatch).
    first = check(pipeline(), before)
    assert first.persisted and len(receiver.requests) == 1

    # 2. The server dies (no shutdown checkpoint), checks keep running and find violations.
    pg_cluster.stop("immediate")
    caplog.set_level(logging.WARNING, logger="floe_monitoring_defs")
    meanwhile = [check(pipeline(), c) for c in (during_a, during_b, during_a)]  # during_a twice: a repeat
    assert [r.result.status for r in meanwhile] == [CheckStatus.FAIL] * 3
    assert not any(r.persisted for r in meanwhile)
    records = spooled_records(spool)
    assert [r.result.id for r in records] == [r.result.id for r in meanwhile]  # in detection order
    assert telemetry.counter("floe_spool_spooled") - spooled0 == 3
    assert any("spooled the freshness check of during_a" in r.getMessage() for r in caplog.records)
    assert len(receiver.requests) == 1  # nothing alerted while the store is down
    detected = {
        vid: (rec.result.contract_name, ev.timestamp)
        for rec in records
        for vid, ev in zip(rec.violation_ids, rec.violations, strict=True)
    }
    assert len(detected) == 3

    # 3. The server is back: a dispatch pass drains the spool first (what the sensor and the CLI do), then routes.
    pg_cluster.start()
    report = drain_spool(store, spool)
    assert report is not None and report.drained == 3 and report.waiting == 0 and not spool.pending()
    assert telemetry.counter("floe_spool_drained") - drained0 == 3
    dispatch = dispatcher(store, config).dispatch()
    assert dispatch.routed == 2 and dispatch.suppressed == {"dedup": 1}  # dedup applies as usual
    again = drain_spool(store, spool)
    assert again is not None and again.drained == 0
    dispatcher(store, config).dispatch()  # a second pass sends nothing more

    events = [r.json() for r in receiver.requests]
    assert receiver.errors == []
    sent = [e["id"] for e in events[1:]]
    assert len(sent) == len(set(sent)) == 2  # each violation alerted exactly once
    first_of = {
        name: min((vid for vid, (n, ts) in detected.items() if n == name), key=lambda v: detected[v][1])
        for name in ("during_a", "during_b")
    }
    assert sorted(sent) == sorted(first_of.values())  # with the ids given at detection
    for e in events[1:]:
        name, when = detected[e["id"]]
        assert e["subject"] == name
        assert datetime.fromisoformat(e["time"].replace("Z", "+00:00")) == when  # the original detection time
    # In the store: every violation with its original id and time, each exactly once; the outbox entries'
    # created_at is when they were spooled, not when the store came back.
    stored = {v.id: v for v in store.results.violations()}
    assert set(detected) <= set(stored) and len(stored) == 4
    assert all(stored[vid].event.timestamp == when for vid, (_, when) in detected.items())
    entries = {e.id: e for e in store.outbox.entries()}
    for rec in records:
        for vid in rec.violation_ids:
            assert entries[vid].created_at == rec.spooled_at
    store.dispose()


# -- idempotence, order, rejection ------------------------------------------------------------------


@pytest.fixture
def store(store_url: str) -> Iterator[MonitoringStore]:
    s = MonitoringStore(store_url)
    yield s
    s.dispose()


def dead_store(tmp_path: Path) -> MonitoringStore:
    """A store whose database cannot be opened (its directory does not exist): every write fails."""
    return MonitoringStore(f"sqlite:///{tmp_path / 'missing-dir' / 'floe.db'}")


def count_rows(store: MonitoringStore, table_: sa.Table) -> int:
    with store.db.transaction("counting") as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table_)).scalar_one())


def test_a_drain_that_crashed_before_removing_a_file_inserts_nothing_twice(
    store: MonitoringStore, catalog: SqlCatalog, tmp_path: Path
) -> None:
    table(catalog, "orders", timedelta(hours=3))
    spool = spool_in(tmp_path)
    run = check(
        CheckPipeline(IcebergSource(), dead_store(tmp_path), MonitoringConfig(), spool=spool), contract("orders")
    )
    assert not run.persisted and len(spool.files()) == 1
    kept = spool.files()[0].read_bytes()
    assert spool.drain(store).drained == 1
    # The crash: the record is in the store but its file is still there.
    spool._write(kept)
    again = spool.drain(store)
    assert (again.drained, again.already_stored, again.waiting) == (0, 1, 0)
    assert count_rows(store, t.contract_check_results) == 1
    assert count_rows(store, t.contract_violations) == 1
    assert count_rows(store, t.alert_outbox) == 1


def test_records_enter_the_store_in_order_so_a_pass_after_a_spooled_failure_resolves_it(
    store: MonitoringStore, catalog: SqlCatalog, tmp_path: Path
) -> None:
    """The FAIL was spooled. The store is back, but another process is draining (it holds the drain lock): the
    PASS checked meanwhile must not overtake the FAIL, so it queues behind it in the spool. Drained in order,
    the PASS then sees the FAIL before it and owes its "resolved" notice (written directly first, it would not,
    and the FAIL would be alerted after its resolution)."""
    table(catalog, "orders", timedelta(hours=3))
    spool = spool_in(tmp_path)
    failing = check(
        CheckPipeline(IcebergSource(), dead_store(tmp_path), MonitoringConfig(), spool=spool), contract("orders")
    )
    assert failing.result.status is CheckStatus.FAIL and len(spool.files()) == 1
    catalog.drop_table("shop.orders")
    table(catalog, "orders", timedelta(minutes=1))  # fresh again
    other = Spool(spool.settings)
    with other._drain_lock() as held:  # the other drainer, as another process would hold it
        assert held
        passing = check(CheckPipeline(IcebergSource(), store, MonitoringConfig(), spool=spool), contract("orders"))
    assert passing.result.status is CheckStatus.PASS
    assert not passing.persisted and len(spool.files()) == 2  # queued behind the FAIL, not written first
    assert count_rows(store, t.contract_check_results) == 0
    report = spool.drain(store)
    assert (report.drained, report.waiting) == (2, 0)
    kinds = [(e.kind, e.event.contract_name) for e in store.outbox.entries()]
    assert kinds == [("violation", "orders"), ("resolved", "orders")]
    results = store.results.check_results(contract_name="orders")
    assert [r.id for r in reversed(results)] == [failing.result.id, passing.result.id]


def test_a_record_that_no_longer_parses_is_set_aside_and_the_queue_goes_on(
    store: MonitoringStore, catalog: SqlCatalog, tmp_path: Path, telemetry: Any, caplog: pytest.LogCaptureFixture
) -> None:
    table(catalog, "orders", timedelta(hours=3))
    spool = spool_in(tmp_path)
    pipeline = CheckPipeline(IcebergSource(), dead_store(tmp_path), MonitoringConfig(), spool=spool)
    check(pipeline, contract("orders"))
    check(pipeline, contract("orders"))
    first = spool.files()[0]
    first.write_bytes(first.read_bytes()[:40])  # damaged on disk (atomic writes never leave this)
    before = telemetry.counter("floe_spool_dropped", reason="unreadable")
    caplog.set_level(logging.ERROR, logger="floe_monitoring_defs")
    report = spool.drain(store)
    assert (report.drained, report.dropped, report.waiting) == (1, 1, 0)
    assert (spool.directory / REJECTED_DIR / first.name).is_file()
    assert telemetry.counter("floe_spool_dropped", reason="unreadable") - before == 1
    assert any(
        "check record lost (unreadable)" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records
    )


def test_the_store_down_stops_the_drain_and_keeps_every_record(tmp_path: Path, catalog: SqlCatalog) -> None:
    table(catalog, "orders", timedelta(hours=3))
    spool = spool_in(tmp_path)
    check(CheckPipeline(IcebergSource(), dead_store(tmp_path), MonitoringConfig(), spool=spool), contract("orders"))
    names = [p.name for p in spool.files()]
    report = spool.drain(dead_store(tmp_path))
    assert report.drained == 0 and report.waiting == 1 and report.stopped is not None
    assert "does not answer" in report.stopped
    assert [p.name for p in spool.files()] == names


# -- bounds -----------------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_past_max_files_and_max_bytes_a_record_is_dropped_logged_and_counted(
    tmp_path: Path, catalog: SqlCatalog, telemetry: Any, caplog: pytest.LogCaptureFixture
) -> None:
    table(catalog, "orders", timedelta(hours=3))
    caplog.set_level(logging.ERROR, logger="floe_monitoring_defs")
    spool = spool_in(tmp_path, max_files=2)
    pipeline = CheckPipeline(IcebergSource(), dead_store(tmp_path), MonitoringConfig(), spool=spool)
    before = telemetry.counter("floe_spool_dropped", reason="max_files")
    runs = [check(pipeline, contract("orders")) for _ in range(3)]
    assert len(spool.files()) == 2
    assert telemetry.counter("floe_spool_dropped", reason="max_files") - before == 1
    [lost] = [r for r in caplog.records if "check record lost (max_files)" in r.getMessage()]
    assert lost.levelno == logging.ERROR and runs[2].result.id in lost.getMessage()

    size = spool.files()[0].stat().st_size
    small = spool_in(tmp_path / "small", max_bytes=size + size // 2)
    pipeline = CheckPipeline(IcebergSource(), dead_store(tmp_path), MonitoringConfig(), spool=small)
    before = telemetry.counter("floe_spool_dropped", reason="max_bytes")
    check(pipeline, contract("orders"))
    check(pipeline, contract("orders"))
    assert len(small.files()) == 1
    assert telemetry.counter("floe_spool_dropped", reason="max_bytes") - before == 1
    assert not [p for p in small.directory.iterdir() if p.name.startswith(".tmp-")]  # no partial file left


def test_a_record_older_than_max_age_is_dropped_when_drained(
    store: MonitoringStore, tmp_path: Path, catalog: SqlCatalog, telemetry: Any
) -> None:
    table(catalog, "orders", timedelta(hours=3))
    clock = Clock(datetime.now(UTC))
    spool = Spool(SpoolSettings(tmp_path / "spool", max_age_seconds=3600), counters=monitor_metrics(), clock=clock)
    check(CheckPipeline(IcebergSource(), dead_store(tmp_path), MonitoringConfig(), spool=spool), contract("orders"))
    clock.now += timedelta(hours=1, seconds=1)
    before = telemetry.counter("floe_spool_dropped", reason="max_age")
    report = spool.drain(store)
    assert (report.drained, report.dropped, report.waiting) == (0, 1, 0)
    assert telemetry.counter("floe_spool_dropped", reason="max_age") - before == 1
    assert count_rows(store, t.contract_check_results) == 0


def test_spool_settings_from_the_environment() -> None:
    home = SpoolSettings.from_env({"DAGSTER_HOME": "/srv/dagster"})
    assert home.directory == Path("/srv/dagster/floe_spool")
    assert SpoolSettings.from_env({}).directory == (Path(".floe") / "spool").resolve()
    s = SpoolSettings.from_env(
        {
            "FLOE_SPOOL_DIR": "/var/spool/floe",
            "FLOE_SPOOL_MAX_FILES": "50",
            "FLOE_SPOOL_MAX_BYTES": "4M",
            "FLOE_SPOOL_MAX_AGE": "12h",
        }
    )
    assert (s.directory, s.max_files, s.max_bytes, s.max_age_seconds) == (Path("/var/spool/floe"), 50, 4 << 20, 43200)
    for name, value in (("FLOE_SPOOL_MAX_FILES", "0"), ("FLOE_SPOOL_MAX_BYTES", "lots"), ("FLOE_SPOOL_MAX_AGE", "1w")):
        with pytest.raises(ConfigError, match=name):
            SpoolSettings.from_env({name: value})
    assert open_spool(SpoolSettings(Path("/x"))) is not None


# -- the dispatch sensor drains -----------------------------------------------------------------------


def test_alert_dispatch_sensor_drains_the_spool_before_routing(
    tmp_path: Path, catalog: SqlCatalog, receiver: HTTPRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    table(catalog, "orders", timedelta(hours=3))
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    doc = yaml.safe_dump(
        {
            "apiVersion": "v3.1.0",
            "status": "active",
            "kind": "DataContract",
            "id": "urn:orders",
            "name": "orders",
            "version": "1.0.0",
            "servers": [
                {
                    "server": "t",
                    "type": "iceberg",
                    "catalog": CATALOG,
                    "catalogUrl": "sqlite:///x.db",
                    "namespace": "shop",
                }
            ],
            "schema": [{"name": "orders", "properties": FRESHNESS_PROPS}],
            "slaProperties": [{"property": "freshness", "value": "PT1H", "element": "updated_at"}],
        }
    )
    (contracts / "orders.yaml").write_text(doc)
    config = {
        "alerts": {
            "channels": {"hook": {"type": "webhook", "url": receiver.url_for("/events"), "timeout_seconds": 2}},
            "routing_rules": [{"channel_name": "hook", "min_severity": "warning"}],
        }
    }
    (tmp_path / "monitoring.yaml").write_text(yaml.safe_dump(config))
    db_url = f"sqlite:///{tmp_path / 'floe.db'}"
    monkeypatch.setenv("FLOE_MONITORING_CONFIG", str(tmp_path / "monitoring.yaml"))
    monkeypatch.setenv("FLOE_CONTRACTS_DIR", str(contracts))
    monkeypatch.setenv("FLOE_MONITORING_DB_URL", db_url)
    monkeypatch.setenv("FLOE_SPOOL_DIR", str(tmp_path / "spool"))
    # A check found the violation while the store was down: its record waits in the spool.
    spool = open_spool()
    assert spool is not None and spool.directory == tmp_path / "spool"
    run = check(
        CheckPipeline(IcebergSource(), dead_store(tmp_path), MonitoringConfig(), spool=spool), contract("orders")
    )
    [record] = spooled_records(spool)
    defs = build_defs()
    sensor = defs.resolve_sensor_def("alert_dispatch_sensor")
    with dg.instance_for_test() as instance:
        with dg.build_sensor_context(instance=instance, definitions=defs, resources=dict(defs.resources or {})) as ctx:
            sensor.evaluate_tick(ctx)
    assert not spool.pending()
    [req] = receiver.requests
    assert req.json()["id"] == record.violation_ids[0] and req.json()["subject"] == "orders"
    store = MonitoringStore(db_url)
    [stored] = store.results.check_results(contract_name="orders")
    assert stored.id == run.result.id
    store.dispose()


def test_a_drain_bounded_by_its_budget_makes_progress_and_leaves_the_rest_in_order(
    store: MonitoringStore, catalog: SqlCatalog, tmp_path: Path
) -> None:
    table(catalog, "orders", timedelta(hours=3))
    spool = spool_in(tmp_path)
    pipeline = CheckPipeline(IcebergSource(), dead_store(tmp_path), MonitoringConfig(), spool=spool)
    runs = [check(pipeline, contract("orders")) for _ in range(3)]
    spent = spool.drain(store, budget_seconds=0)  # spent before it starts: still one record per drain
    assert (spent.drained, spent.waiting) == (1, 2) and spent.stopped is not None and "budget" in spent.stopped
    rest = drain_spool(store, spool)
    assert rest is not None and (rest.drained, rest.waiting) == (2, 0)
    stored = store.results.check_results(contract_name="orders")
    assert [r.id for r in reversed(stored)] == [r.result.id for r in runs]
