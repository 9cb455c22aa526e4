"""The `volume` check on real Iceberg tables and a real store (issue 17).

Each table is a pyiceberg SqlCatalog table under a temporary directory whose snapshot log is a generated history
(`iceberg_helpers.history_table`: 60 days of hourly appends, `volume_history`); new commits, expiry, rollback and
re-creation are real catalog commits on it. Checks run through `CheckRunner` with a frozen clock set from the
generated commit times. Every file the process opens through pyiceberg's FileIO is recorded, so "only the table
metadata is read" is measured (a positive control shows the same hook sees a scan). The store parts run on
SQLite and on the PostgreSQL the conftest starts (`store_url`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.io.pyarrow import PyArrowFileIO
from pyiceberg.table import Table
from pyiceberg.table.metadata import TableMetadataV2
from pyiceberg.table.refs import SnapshotRefType
from pyiceberg.table.snapshots import Operation, Snapshot, Summary
from pyiceberg.table.update import AddSnapshotUpdate, SetSnapshotRefUpdate, TableUpdate

from floe_monitoring_defs.checks import volume as volume_module
from floe_monitoring_defs.checks.runner import CheckRun, CheckRunner
from floe_monitoring_defs.checks.volume import VolumeKind, VolumeModel, evaluate_volume, grade
from floe_monitoring_defs.config import AnomalyConfig, MonitoringConfig
from floe_monitoring_defs.contracts import MonitoredContract, parse_document
from floe_monitoring_defs.models import CheckStatus, DataCommit, ViolationSeverity
from floe_monitoring_defs.sources.history import commit_history
from floe_monitoring_defs.sources.iceberg import IcebergSource
from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_defs.store import tables as t
from floe_monitoring_tests.conftest import _free_port
from floe_monitoring_tests.integration.iceberg_helpers import (
    CATALOG,
    FRESHNESS_PROPS,
    FRESHNESS_SCHEMA,
    catalog_env,
    freshness_contract,
    history_table,
    make_catalog,
)
from floe_monitoring_tests.volume_history import Shape, hourly_history, retotal, scale_commit, silence

pytestmark = pytest.mark.integration

S = ViolationSeverity
H = hourly_history(60)  # 2026-09-07 00:05 .. 2026-11-05 23:05 UTC
NOW = H[-1].committed_at + timedelta(minutes=2)  # the frozen clock: just after the newest commit
HISTORY_DAYS = 56  # AnomalyConfig().history_days
SEED_ROWS: dict[str, list[Any]] = {
    "id": ["a"],
    "amount": [Decimal("1.00")],
    "updated_at": [datetime(2026, 9, 1, tzinfo=UTC)],
}


def volume_contract(name: str, anomaly: dict[str, Any] | None = None) -> MonitoredContract:
    """The ODCS contract of `shop.<name>`, opting in to the volume check through `customProperties`."""
    doc = {
        "apiVersion": "v3.1.0",
        "status": "active",
        "kind": "DataContract",
        "id": f"urn:{name}",
        "name": name,
        "version": "1.0.0",
        "servers": [
            {"server": "t", "type": "iceberg", "catalog": CATALOG, "catalogUrl": "sqlite:///x.db", "namespace": "shop"}
        ],
        "schema": [{"name": name, "properties": FRESHNESS_PROPS}],
        "customProperties": [
            {"property": "floe.monitoring", "value": {"anomaly": anomaly or {"volume": True, "cadence": True}}}
        ],
    }
    return parse_document(doc, f"{name}.yaml")


def key(name: str) -> str:
    return f"{CATALOG}/shop.{name}"


def through(commits: Sequence[DataCommit], now: datetime) -> datetime:
    """The newest commit a fresh fit at `now` is fitted through: the newest before `now - interval` (30 minutes),
    or the one before the newest when nothing came since."""
    before = [c for c in commits if c.committed_at <= now - timedelta(minutes=30)]
    if len(before) == len(commits):
        before = before[:-1]
    return before[-1].committed_at


def window(commits: Sequence[DataCommit], now: datetime) -> list[DataCommit]:
    """What a first run at `now` keeps of a table's history: every commit of the `history_days` up to the commit
    it fits through, and the one before (the change the first of them made to the total rows needs it)."""
    since = through(commits, now) - timedelta(days=HISTORY_DAYS)
    first = next(i for i, c in enumerate(commits) if c.committed_at >= since)
    return list(commits[max(first - 1, 0) :])


def fitted_on(commits: Sequence[DataCommit], now: datetime) -> int:
    """How many commits a fresh fit at `now` learns from: those of the `history_days` up to `through`."""
    end = through(commits, now)
    return sum(1 for c in commits if end - timedelta(days=HISTORY_DAYS) <= c.committed_at <= end)


def run(
    store: MonitoringStore | None,
    now: datetime,
    *contracts: MonitoredContract,
    source: IcebergSource | None = None,
) -> dict[str, CheckRun]:
    runner = CheckRunner(source or IcebergSource(), store, MonitoringConfig(), clock=lambda: now)
    return {r.contract.name: r for r in runner.run("volume", [(c, c.tables[0]) for c in contracts])}


def kinds(r: CheckRun) -> list[tuple[str, ViolationSeverity]]:
    return [(f.kind, f.severity) for f in r.outcome.findings]


def add_commits(cat: SqlCatalog, ident: str, commits: Sequence[DataCommit]) -> Table:
    """Commit `commits` (oldest first) on top of the table's current snapshot, as a writer's appends would be: one
    catalog commit, the same table (UUID) with a new metadata file."""
    table = cat.load_table(ident)
    current = table.current_snapshot()
    assert current is not None
    meta = table.metadata
    assert isinstance(meta, TableMetadataV2)  # what pyiceberg creates by default
    parent, seq = current.snapshot_id, meta.last_sequence_number
    updates: list[TableUpdate] = []
    for c in commits:
        seq += 1
        counts = {
            k: str(v)
            for k, v in (
                ("added-records", c.added_records),
                ("deleted-records", c.deleted_records),
                ("total-records", c.total_records),
            )
            if v is not None
        }
        snap = Snapshot(
            snapshot_id=c.snapshot_id,
            parent_snapshot_id=parent,
            sequence_number=seq,
            timestamp_ms=int(c.committed_at.timestamp() * 1000),
            manifest_list=current.manifest_list,
            summary=Summary(Operation(c.operation), **counts),
            schema_id=meta.current_schema_id,
        )
        updates.append(AddSnapshotUpdate(snapshot=snap))
        parent = c.snapshot_id
    main = SetSnapshotRefUpdate(
        ref_name="main",
        type=SnapshotRefType.BRANCH,
        snapshot_id=parent,
        max_ref_age_ms=None,
        max_snapshot_age_ms=None,
        min_snapshots_to_keep=None,
    )
    updates.append(main)
    cat.commit_table(table, (), tuple(updates))
    return cat.load_table(ident)


def stored_rows(store: MonitoringStore, name: str) -> list[tuple[int, str, datetime]]:
    """(snapshot id, table UUID, recorded at) of every stored commit of `shop.<name>`, by snapshot id."""
    c = t.table_commits.c
    query = sa.select(c.snapshot_id, c.table_uuid, c.recorded_at).where(c.table_key == key(name))
    with store.db.transaction("test: reading table commits") as conn:
        rows = [(int(s), str(u), at if at.tzinfo else at.replace(tzinfo=UTC)) for s, u, at in conn.execute(query)]
    return sorted(rows)


def stored_model(store: MonitoringStore, name: str) -> tuple[str, VolumeModel]:
    [(uuid, text)] = [v for k, v in store.commits.models([key(name)]).items()]
    model = VolumeModel.from_json(text)
    assert model is not None
    return uuid, model


# -- fixtures ------------------------------------------------------------------------------------------------


def _mass_delete(commits: Sequence[DataCommit]) -> list[DataCommit]:
    total = commits[-2].total_records or 0
    return retotal(
        [*commits[:-1], replace(commits[-1], operation="delete", added_records=0, deleted_records=total // 2)]
    )


SCENARIOS: dict[str, list[DataCommit]] = {
    "clean": H,
    "drop": scale_commit(H, -1, 0.5),
    "spike": scale_commit(H, -1, 3.0),
    "silent": silence(H, len(H) - 5, hours=5),  # nothing since ~19:05; the clock is at 23:03
    "purged": _mass_delete(H),
}


DAILY = retotal([c for c in H if c.committed_at.hour == 10])  # a daily job: one commit at ~10:05 UTC


@pytest.fixture(scope="module")
def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One warehouse of read-only scenario tables for the module (each built once)."""
    root = tmp_path_factory.mktemp("volume-shared")
    cat = make_catalog(root)
    for name, commits in SCENARIOS.items():
        history_table(cat, f"shop.{name}", FRESHNESS_SCHEMA, SEED_ROWS, commits)
    history_table(cat, "shop.compacted", FRESHNESS_SCHEMA, SEED_ROWS, H, replace_every=6)
    history_table(cat, "shop.daily", FRESHNESS_SCHEMA, SEED_ROWS, DAILY)
    return root


@pytest.fixture
def shared(shared_root: Path, monkeypatch: pytest.MonkeyPatch) -> SqlCatalog:
    for k, v in catalog_env(shared_root).items():
        monkeypatch.setenv(k, v)
    return make_catalog(shared_root)


@pytest.fixture
def own(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SqlCatalog:
    """A warehouse of this test's own, for tables the test changes."""
    for k, v in catalog_env(tmp_path).items():
        monkeypatch.setenv(k, v)
    return make_catalog(tmp_path)


@pytest.fixture
def store(store_url: str) -> Iterator[MonitoringStore]:
    s = MonitoringStore(store_url)
    yield s
    s.dispose()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[MonitoringStore]:
    s = MonitoringStore(f"sqlite:///{tmp_path / 'monitoring.db'}")
    yield s
    s.dispose()


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every location opened for reading through pyiceberg's PyArrowFileIO (the IO of file:// warehouses)."""
    seen: list[str] = []
    original = PyArrowFileIO.new_input

    def recording(self: PyArrowFileIO, location: str) -> Any:
        seen.append(location)
        return original(self, location)

    monkeypatch.setattr(PyArrowFileIO, "new_input", recording)
    return seen


# -- contracts opt in ------------------------------------------------------------------------------------------


def test_only_contracts_that_opt_in_get_the_volume_check() -> None:
    opted = volume_contract("clean")
    assert opted.monitoring_overrides == {"anomaly": {"volume": True, "cadence": True}}
    assert VolumeKind.applies(opted) and VolumeKind.applies(volume_contract("clean", {"cadence": True}))
    assert not VolumeKind.applies(freshness_contract("clean"))
    assert not VolumeKind.applies(volume_contract("clean", {"volume": False, "sensitivity": 5}))
    config = MonitoringConfig().merged(opted.monitoring_overrides)
    assert VolumeKind.applies_under(opted, config) and not VolumeKind.applies_under(opted, MonitoringConfig())


# -- scenarios on real tables ----------------------------------------------------------------------------------

EXPECTED = {
    "clean": [],
    "drop": [("volume_low", S.WARNING)],
    "spike": [("volume_high", S.ERROR)],
    "silent": [("cadence_silence", S.ERROR)],
    "purged": [("total_rows_low", S.ERROR)],
    "compacted": [],
}


def test_scenarios_are_detected_on_real_tables_fresh_and_from_the_cached_model(
    shared: SqlCatalog, sqlite_store: MonitoringStore
) -> None:
    contracts = [volume_contract(name) for name in EXPECTED]
    for now in (NOW, NOW + timedelta(minutes=20)):  # the second run grades with the model the first one stored
        runs = run(sqlite_store, now, *contracts)
        assert {name: kinds(r) for name, r in runs.items()} == EXPECTED
        for name, r in runs.items():
            assert r.result.status is (CheckStatus.PASS if not EXPECTED[name] else CheckStatus.FAIL)
            assert r.outcome.details["model"] == "ready" and r.outcome.details["model_fitted_at"] == NOW.isoformat()
        assert [v.metadata["drift"] for v in runs["drop"].violations] == ["volume_low"]
        assert runs["drop"].violations[0].metadata["snapshot_id"] == str(H[-1].snapshot_id)
        silent = runs["silent"].outcome.details
        assert silent["last_commit"] == H[-5].committed_at.isoformat()
        assert silent["since_commit_seconds"] == (now - H[-5].committed_at).total_seconds()


def test_compactions_are_not_commits(shared: SqlCatalog, sqlite_store: MonitoringStore) -> None:
    compacted = shared.load_table("shop.compacted")
    replaces = [s for s in compacted.metadata.snapshots if s.summary and s.summary.operation is Operation.REPLACE]
    assert len(replaces) == (len(H) - 1) // 6  # the table does hold compactions
    assert [c.snapshot_id for c in commit_history(compacted)] == [c.snapshot_id for c in H]
    runs = run(sqlite_store, NOW, volume_contract("clean"), volume_contract("compacted"))
    same = ("history_commits", "gaps_history", "cadence_history", "total_rows_history", "expected_gap_seconds")
    assert {k: runs["compacted"].outcome.details.get(k) for k in same} == {
        k: runs["clean"].outcome.details.get(k) for k in same
    }
    assert runs["compacted"].result.status is CheckStatus.PASS


@pytest.mark.parametrize(
    ("name", "commits", "silent_days"),
    [("daily", DAILY, 40), ("clean", H, 57)],
    ids=["daily-job-silent-40-days", "hourly-silent-57-days"],
)
def test_a_table_silent_for_weeks_is_still_flagged_silent_and_graded_as_evaluate_volume_grades_it(
    shared: SqlCatalog, sqlite_store: MonitoringStore, name: str, commits: list[DataCommit], silent_days: int
) -> None:
    # The fit reaches history_days back from the newest commit it is fitted through, not from now: a silence of
    # weeks must not shrink the history to "learning" (a daily job silent for 40 days has 16 commits in the last
    # 56 days, fewer than min_history; an hourly one silent for 57 days has none).
    now = commits[-1].committed_at + timedelta(days=silent_days)
    out = run(sqlite_store, now, volume_contract(name))[name].outcome
    assert out.details["model"] == "ready"
    in_last_56_days = sum(1 for c in commits if c.committed_at >= now - timedelta(days=HISTORY_DAYS))
    assert in_last_56_days < AnomalyConfig().min_history < out.details["history_commits"] == fitted_on(commits, now)
    assert [f.kind for f in out.findings] == ["daily_volume_low", "cadence_silence"]
    assert out.findings[1].severity is S.ERROR
    pure = evaluate_volume(
        commits, now=now, settings=AnomalyConfig(volume=True, cadence=True), interval=timedelta(minutes=30)
    )
    assert [(f.kind, f.severity, f.message) for f in out.findings] == [
        (f.kind, f.severity, f.message) for f in pure.findings
    ]


# -- only the table metadata is read ---------------------------------------------------------------------------


def test_no_manifest_list_manifest_or_data_file_is_opened_fresh_or_cached(
    shared: SqlCatalog, sqlite_store: MonitoringStore, opened: list[str]
) -> None:
    names = list(EXPECTED)
    metadata = {shared.load_table(f"shop.{n}").metadata_location for n in names}
    assert all(m.endswith(".metadata.json") for m in metadata) and len(metadata) == len(names)
    contracts = [volume_contract(n) for n in names]
    for now in (NOW, NOW + timedelta(minutes=30)):  # a fresh fit, then the cached model
        opened.clear()
        runs = run(sqlite_store, now, *contracts)
        assert {n: kinds(r) for n, r in runs.items()} == EXPECTED
        # Each table's current metadata file, read once; nothing else (no snap-*.avro, manifest or .parquet).
        assert sorted(opened) == sorted(metadata)


def test_the_recording_hook_sees_what_a_scan_opens(shared: SqlCatalog, opened: list[str]) -> None:
    table = shared.load_table("shop.clean")
    assert isinstance(table.io, PyArrowFileIO)
    opened.clear()
    assert table.scan().to_arrow().num_rows == 1
    names = [p.rsplit("/", 1)[-1] for p in opened]
    assert any(n.startswith("snap-") and n.endswith(".avro") for n in names)  # the manifest list
    assert any(not n.startswith("snap-") and n.endswith(".avro") for n in names)  # a manifest
    assert any(n.endswith(".parquet") for n in names)  # the data file


# -- the store: bootstrap, reuse, refit ------------------------------------------------------------------------


def test_first_run_bootstraps_the_store_then_reuses_the_model_until_refit_hours(
    own: SqlCatalog, store: MonitoringStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    walked: list[int] = []  # commits each snapshot walk returned

    def counting(table: Table, since: datetime | None = None, *, include_before: int = 0) -> list[DataCommit]:
        out = commit_history(table, since, include_before=include_before)
        walked.append(len(out))
        return out

    monkeypatch.setattr(volume_module, "commit_history", counting)
    table = history_table(own, "shop.orders", FRESHNESS_SCHEMA, SEED_ROWS, H[:-8])
    uuid = str(table.metadata.table_uuid)
    c = volume_contract("orders")
    t1 = H[-9].committed_at + timedelta(minutes=2)

    first = run(store, t1, c)["orders"].outcome
    assert first.status is CheckStatus.PASS and first.details["model"] == "ready"
    assert first.details["model_fitted_at"] == t1.isoformat() and first.details["history_source"] == "snapshots"
    assert first.details["history_commits"] == fitted_on(H[:-8], t1)
    bootstrap = window(H[:-8], t1)
    assert len(bootstrap) > 1300 and max(walked) == len(bootstrap)
    assert store.commits.count(key("orders")) == len(bootstrap)
    assert stored_rows(store, "orders") == sorted((c.snapshot_id, uuid, t1) for c in bootstrap)
    model_uuid, model = stored_model(store, "orders")
    assert model_uuid == uuid and model.fitted_at == t1 and model.through == H[-10].committed_at

    # 30 minutes later, nothing new: the stored model is used and nothing is written.
    walked.clear()
    second = run(store, t1 + timedelta(minutes=30), c)["orders"].outcome
    assert second.details["model_fitted_at"] == t1.isoformat()
    assert walked and max(walked) <= 49  # back to yesterday's midnight, not the 56 days
    assert store.commits.count(key("orders")) == len(bootstrap)

    # Two new commits, within refit_hours: not refitted; exactly those two are written.
    add_commits(own, "shop.orders", H[-8:-6])
    t3 = H[-7].committed_at + timedelta(minutes=2)
    third = run(store, t3, c)["orders"].outcome
    assert third.details["model_fitted_at"] == t1.isoformat() and third.details["commits_graded"] == 1
    assert third.details["rows_added"] == H[-7].added_records
    assert store.commits.count(key("orders")) == len(bootstrap) + 2
    assert [s for s, _, at in stored_rows(store, "orders") if at == t3] == [c.snapshot_id for c in H[-8:-6]]
    assert stored_model(store, "orders")[1].fitted_at == t1

    # Past refit_hours (6): refitted on the history up to now, and the new model replaces the stored one.
    add_commits(own, "shop.orders", H[-6:])
    t4 = H[-1].committed_at + timedelta(minutes=2)
    assert t4 - t1 >= timedelta(hours=6)
    fourth = run(store, t4, c)["orders"].outcome
    assert fourth.details["model_fitted_at"] == t4.isoformat()
    assert fourth.details["history_commits"] == fitted_on(H, t4)
    assert stored_model(store, "orders")[1].fitted_at == t4
    assert store.commits.count(key("orders")) == len(bootstrap) + 8


def test_a_rollback_off_the_fitted_ancestry_refits_before_refit_hours(
    own: SqlCatalog, sqlite_store: MonitoringStore
) -> None:
    history_table(own, "shop.orders", FRESHNESS_SCHEMA, SEED_ROWS, H)
    c = volume_contract("orders")
    first = run(sqlite_store, NOW, c)["orders"].outcome
    assert stored_model(sqlite_store, "orders")[1].through_snapshot == H[-2].snapshot_id
    # Roll back the last two commits and commit again from there.
    table = own.load_table("shop.orders")
    table.manage_snapshots().rollback_to_snapshot(H[-3].snapshot_id).commit()
    again = replace(H[-1], snapshot_id=10**9, committed_at=NOW + timedelta(minutes=5))
    add_commits(
        own, "shop.orders", [replace(again, total_records=(H[-3].total_records or 0) + (again.added_records or 0))]
    )
    later = NOW + timedelta(minutes=30)
    out = run(sqlite_store, later, c)["orders"].outcome
    assert first.details["model_fitted_at"] == NOW.isoformat()
    assert out.details["model_fitted_at"] == later.isoformat()  # refitted: its newest fitted commit is gone
    assert out.details["last_commit"] == again.committed_at.isoformat()  # the new head, not the rolled-back ones
    assert out.status is CheckStatus.PASS


# -- the store keeps what Iceberg expired ----------------------------------------------------------------------


def test_expired_snapshots_are_read_back_from_the_store_and_the_drop_is_still_found(
    own: SqlCatalog, store: MonitoringStore
) -> None:
    for name in ("kept", "expired"):
        history_table(own, f"shop.{name}", FRESHNESS_SCHEMA, SEED_ROWS, H[:-8])
    contracts = [volume_contract("kept"), volume_contract("expired")]
    t1 = H[-9].committed_at + timedelta(minutes=2)
    run(store, t1, *contracts)
    assert store.commits.count(key("expired")) == len(window(H[:-8], t1))

    # Expire everything older than five days (no file is deleted: only the metadata forgets the snapshots).
    table = own.load_table("shop.expired")
    table.maintenance.expire_snapshots().older_than(t1 - timedelta(days=5)).commit()
    expired = own.load_table("shop.expired")
    assert str(expired.metadata.table_uuid) == str(table.metadata.table_uuid)
    assert len(commit_history(expired)) <= 5 * 24 + 1 < len(commit_history(own.load_table("shop.kept")))

    dropped = scale_commit(H, -1, 0.5)
    for name in ("kept", "expired"):
        add_commits(own, f"shop.{name}", dropped[-8:])
    now = H[-1].committed_at + timedelta(minutes=2)  # past refit_hours: both refit
    runs = run(store, now, *contracts)
    kept, gone = runs["kept"].outcome.details, runs["expired"].outcome.details
    assert kept["history_source"] == "snapshots" and gone["history_source"] == "store+snapshots"
    assert gone["model_fitted_at"] == now.isoformat()
    assert gone["history_commits"] == kept["history_commits"] == fitted_on(dropped, now)
    assert gone["history_from"] == kept["history_from"]
    for name in ("kept", "expired"):
        assert kinds(runs[name]) == [("volume_low", S.WARNING)]
    same = ("rows_added_expected", "rows_added_low", "rows_added_high", "gap_warning_seconds", "rows_per_day_low")
    assert {k: gone[k] for k in same} == {k: kept[k] for k in same}


def test_a_dropped_and_recreated_table_starts_a_fresh_history(own: SqlCatalog, store: MonitoringStore) -> None:
    old = history_table(own, "shop.orders", FRESHNESS_SCHEMA, SEED_ROWS, H)
    c = volume_contract("orders")
    run(store, NOW, c)
    old_rows = store.commits.count(key("orders"))
    old_uuid, old_model = stored_model(store, "orders")

    # The same name, a new table: ten times the volume, five days old (snapshot ids are random per table).
    own.drop_table("shop.orders")
    own.drop_table("shop.orders__seed")
    start = datetime(2026, 11, 9, tzinfo=UTC)  # a Monday, after the old table's last commit
    new = [
        replace(x, snapshot_id=10**6 + x.snapshot_id)
        for x in hourly_history(5, seed=7, shape=Shape(base_rows=10_000), start=start)
    ]
    recreated = history_table(own, "shop.orders", FRESHNESS_SCHEMA, SEED_ROWS, new)
    new_uuid = str(recreated.metadata.table_uuid)
    assert new_uuid != old_uuid == str(old.metadata.table_uuid)
    now = new[-1].committed_at + timedelta(minutes=2)

    out = run(store, now, c)["orders"].outcome
    assert out.status is CheckStatus.PASS, out.findings
    assert out.details["history_source"] == "snapshots" and out.details["history_commits"] == len(new) - 1
    assert out.details["history_from"] == new[0].committed_at.isoformat()
    assert out.details["model_fitted_at"] == now.isoformat()
    # Control: the old table's model would call the new table's newest commit a spike.
    old_verdict = grade(
        old_model,
        new,
        now=now,
        settings=MonitoringConfig().merged(c.monitoring_overrides).anomaly,
        interval=timedelta(minutes=30),
    )
    assert [f.kind for f in old_verdict.findings if f.kind.startswith("volume")] == ["volume_high"]

    rows = stored_rows(store, "orders")
    assert sum(1 for _, u, _ in rows if u == old_uuid) == old_rows
    assert sorted(s for s, u, _ in rows if u == new_uuid) == [x.snapshot_id for x in new]
    assert store.commits.extent([key("orders")])[key("orders")] == (
        new_uuid,
        new[0].committed_at,
        new[-1].committed_at,
    )
    assert stored_model(store, "orders")[0] == new_uuid


# -- the store unavailable -------------------------------------------------------------------------------------


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.exc_info]


def test_checks_run_from_the_snapshots_when_the_store_is_down(
    shared: SqlCatalog, caplog: pytest.LogCaptureFixture
) -> None:
    down = MonitoringStore(f"postgresql+psycopg2://floe@127.0.0.1:{_free_port()}/floe")  # nothing listens
    try:
        with caplog.at_level(logging.INFO):
            runs = run(down, NOW, volume_contract("clean"), volume_contract("drop"), volume_contract("silent"))
    finally:
        down.dispose()
    assert {n: kinds(r) for n, r in runs.items()} == {
        "clean": [],
        "drop": [("volume_low", S.WARNING)],
        "silent": [("cadence_silence", S.ERROR)],
    }
    for name, r in runs.items():
        assert r.outcome.details["history_source"] == "snapshots (store unavailable)"
        assert r.outcome.details["history_commits"] == fitted_on(SCENARIOS[name], NOW)
    assert no_tracebacks(caplog) == []
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and r.name == volume_module.__name__]
    assert len(errors) == 1 and errors[0].startswith("cannot read the stored commit history")


def test_a_failed_save_is_logged_and_the_next_run_writes_the_history(
    shared: SqlCatalog, store: MonitoringStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    c = volume_contract("drop")

    def refuse(*_: object) -> None:
        raise RuntimeError("disk full")

    with monkeypatch.context() as m:
        m.setattr(store.commits, "save", refuse)
        with caplog.at_level(logging.INFO):
            first = run(store, NOW, c)["drop"]
    assert kinds(first) == [("volume_low", S.WARNING)] and first.outcome.details["history_source"] == "snapshots"
    assert no_tracebacks(caplog) == []
    assert any(
        r.getMessage().startswith("cannot save ") and "the next run retries" in r.getMessage() for r in caplog.records
    )
    assert store.commits.count() == 0 and store.commits.models([key("drop")]) == {}

    later = NOW + timedelta(minutes=30)
    second = run(store, later, c)["drop"]
    assert kinds(second) == [("volume_low", S.WARNING)]
    assert second.outcome.details["model_fitted_at"] == later.isoformat()  # nothing was kept: fitted again
    assert store.commits.count(key("drop")) == len(window(SCENARIOS["drop"], later))


def test_a_failed_read_of_older_commits_falls_back_to_the_snapshots(
    own: SqlCatalog, store: MonitoringStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    history_table(own, "shop.orders", FRESHNESS_SCHEMA, SEED_ROWS, H[:-8])
    c = volume_contract("orders")
    t1 = H[-9].committed_at + timedelta(minutes=2)
    run(store, t1, c)
    table = own.load_table("shop.orders")
    table.maintenance.expire_snapshots().older_than(t1 - timedelta(days=20)).commit()
    add_commits(own, "shop.orders", H[-8:])

    def refuse(*_: object, **__: object) -> list[DataCommit]:
        raise RuntimeError("connection reset")

    monkeypatch.setattr(store.commits, "load", refuse)
    now = H[-1].committed_at + timedelta(minutes=2)
    with caplog.at_level(logging.INFO):
        out = run(store, now, c)["orders"].outcome
    assert out.status is CheckStatus.PASS
    assert out.details["history_source"] == "snapshots (store unavailable)"
    kept = commit_history(own.load_table("shop.orders"))
    assert out.details["history_commits"] == len(kept) - 1 < fitted_on(H, now)
    assert no_tracebacks(caplog) == []


# -- replicas --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_two_replicas_running_the_same_tables_together_store_each_commit_once(
    shared: SqlCatalog, store_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    names = ("clean", "drop", "spike")
    contracts = [volume_contract(n) for n in names]
    both = threading.Barrier(2, timeout=60)
    stores = [MonitoringStore(store_url), MonitoringStore(store_url)]
    results: list[dict[str, CheckRun]] = []
    failures: list[BaseException] = []

    def together(save: Callable[..., None]) -> Callable[..., None]:
        def wait_then_save(*args: object) -> None:
            both.wait()  # both replicas have read the empty store and checked every table: they write at once
            save(*args)

        return wait_then_save

    for s in stores:
        monkeypatch.setattr(s.commits, "save", together(s.commits.save))

    def replica(s: MonitoringStore) -> None:
        try:
            results.append(run(s, NOW, *contracts))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=replica, args=(s,)) for s in stores]
    try:
        with caplog.at_level(logging.INFO):
            for th in threads:
                th.start()
            for th in threads:
                th.join(timeout=120)
        assert failures == [] and len(results) == 2
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
        for r in results:
            assert {n: kinds(x) for n, x in r.items()} == {
                "clean": [],
                "drop": [("volume_low", S.WARNING)],
                "spike": [("volume_high", S.ERROR)],
            }
        for n in names:
            expected = sorted(c.snapshot_id for c in window(SCENARIOS[n], NOW))
            assert [s for s, _, _ in stored_rows(stores[0], n)] == expected
            assert stored_model(stores[0], n)[1].fitted_at == NOW
        assert stores[0].commits.count() == sum(len(window(SCENARIOS[n], NOW)) for n in names)
    finally:
        for s in stores:
            s.dispose()
