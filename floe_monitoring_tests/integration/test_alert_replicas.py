"""`floe alerts dispatch` / `floe alerts status`, and dispatch replicas sharing one outbox (issue 12).

The replica test runs real `floe alerts dispatch --loop` processes (two and four on PostgreSQL, two on SQLite)
against one store while a producer records 1,000 violations in waves through the store's public API, with
real loopback CloudEvents receivers: every alert is decided once, sent once per channel, nothing is lost,
no pass aborts, every entry's state agrees with its deliveries, and incident counts are exact. It waits on
conditions (the store drained), never on sleeps; the timeouts are only safety nets.

The subprocesses get a controlled environment (PATH, HOME, PYTHONPATH = this checkout, the store URL and the
config file): nothing of the developer's FLOE_*, DAGSTER_HOME or .env reaches them.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from floe_monitoring_defs.cli import cli
from floe_monitoring_defs.models import (
    CheckResult,
    CheckStatus,
    ContractViolationEvent,
    ViolationSeverity,
    ViolationType,
)
from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_defs.store import tables as t
from floe_monitoring_tests.alerting_receivers import HTTPRecorder, cloudevents_responder

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
S = ViolationSeverity
TYPES = [
    ViolationType.FRESHNESS,
    ViolationType.SCHEMA_DRIFT,
    ViolationType.QUALITY,
    ViolationType.AVAILABILITY,
    ViolationType.DEPRECATION,
]


@pytest.fixture
def receivers() -> Iterator[dict[str, HTTPRecorder]]:
    recs = {name: HTTPRecorder(cloudevents_responder()).start() for name in ("hook-a", "hook-b")}
    yield recs
    for r in recs.values():
        r.stop()


def write_config(path: Path, receivers: dict[str, HTTPRecorder], **alerts: Any) -> Path:
    body: dict[str, Any] = {
        "channels": {
            "hook-a": {"type": "webhook", "url": receivers["hook-a"].url_for("/a"), "timeout_seconds": 5},
            "hook-b": {"type": "webhook", "url": receivers["hook-b"].url_for("/b"), "timeout_seconds": 5},
        },
        "routing_rules": [
            {"channel_name": "hook-a", "min_severity": "warning"},
            {"channel_name": "hook-b", "min_severity": "error"},
        ],
        "retry_base_seconds": 0.2,
        "retry_max_seconds": 1.0,
    }
    body.update(alerts)
    path.write_text(yaml.safe_dump({"alerts": body}), encoding="utf-8")
    return path


def record(store: MonitoringStore, contract: str, vtype: ViolationType, severity: ViolationSeverity) -> str:
    now = datetime.now(UTC)
    event = ContractViolationEvent(
        contract_name=contract,
        contract_version="1.0.0",
        violation_type=vtype,
        severity=severity,
        message=f"{vtype.value} {severity.value}",
        timestamp=now,
        check_duration_seconds=0.01,
    )
    result = CheckResult(
        contract_name=contract,
        check_type=vtype,
        status=CheckStatus.FAIL,
        duration_seconds=0.01,
        timestamp=now,
        violation=event,
    )
    [vid] = store.results.record_check(result, [event], table_name=f"ns.{contract}").violation_ids
    return vid


def received_ids(recorder: HTTPRecorder) -> Counter[str]:
    return Counter(str(r.json()["id"]) for r in recorder.requests if r.status == 202)


def drained(store: MonitoringStore) -> bool:
    """Nothing left to route and nothing left to deliver."""
    o, d = t.alert_outbox.c, t.alert_deliveries.c
    with store.db.transaction("test: is the outbox drained") as conn:
        pending = conn.execute(sa.select(sa.func.count()).where(o.state == "pending")).scalar_one()
        undelivered = conn.execute(sa.select(sa.func.count()).where(d.state != "delivered")).scalar_one()
    return pending == 0 and undelivered == 0


def controlled_env(tmp_path: Path, store_url: str, config: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(REPO),  # the code under test, whatever the interpreter's editable install points at
        "PYTHONUNBUFFERED": "1",
        "FLOE_MONITORING_DB_URL": store_url,
        "FLOE_MONITORING_CONFIG": str(config),
    }


# -- the CLI -----------------------------------------------------------------------------------------------


def invoke(args: list[str], env: dict[str, str]) -> Any:
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


def test_dispatch_once_delivers_and_status_reports_the_outbox(
    store_url: str, receivers: dict[str, HTTPRecorder], tmp_path: Path
) -> None:
    store = MonitoringStore(store_url)
    error = record(store, "orders", ViolationType.FRESHNESS, S.ERROR)
    warning = record(store, "payments", ViolationType.QUALITY, S.WARNING)
    repeat = record(store, "orders", ViolationType.FRESHNESS, S.ERROR)
    config = write_config(tmp_path / "monitoring.yaml", receivers)
    env = {"FLOE_MONITORING_DB_URL": store_url, "FLOE_MONITORING_CONFIG": str(config)}

    before = invoke(["alerts", "status", "--format", "json"], env)
    assert before.exit_code == 0, before.output
    assert json.loads(before.output)["entries"] == {"pending": 3}
    assert json.loads(before.output)["oldest_pending_age_seconds"] >= 0

    result = invoke(["alerts", "dispatch", "--once"], env)
    assert result.exit_code == 0, result.output
    assert "routed 2, no route 0, suppressed: dedup 1" in result.output
    assert received_ids(receivers["hook-a"]) == Counter({error: 1, warning: 1})
    assert received_ids(receivers["hook-b"]) == Counter({error: 1})
    assert receivers["hook-a"].errors == [] and receivers["hook-b"].errors == []

    after = invoke(["alerts", "status", "--format", "json"], env)
    status = json.loads(after.output)
    assert status["entries"] == {"routed": 2, "suppressed/dedup": 1}
    assert status["deliveries"] == {"hook-a": {"delivered": 2}, "hook-b": {"delivered": 1}}
    assert status["oldest_pending_age_seconds"] is None and status["oldest_undelivered_age_seconds"] is None
    assert [
        (i["contract"], i["violation_type"], i["violation_count"], i["priority"]) for i in status["open_incidents"]
    ] == [("orders", "freshness", 2, "P2")]
    table = invoke(["alerts", "status"], env)
    assert table.exit_code == 0
    assert "outbox entries: routed 2, suppressed/dedup 1" in table.output
    assert re.search(r"^hook-a\s+2\s+0\s+0$", table.output, re.M)
    assert re.search(r"^P2\s+orders\s+freshness\s+error\s+2\s", table.output, re.M)
    assert repeat not in received_ids(receivers["hook-a"])
    store.dispose()


def test_an_unavailable_channel_is_held_and_the_others_deliver(
    store_url: str, receivers: dict[str, HTTPRecorder], tmp_path: Path
) -> None:
    """Built as the code location builds channels: an unset secret variable disables that channel only."""
    store = MonitoringStore(store_url)
    vid = record(store, "orders", ViolationType.FRESHNESS, S.ERROR)
    config = write_config(
        tmp_path / "monitoring.yaml",
        receivers,
        channels={
            "hook-a": {"type": "webhook", "url": receivers["hook-a"].url_for("/a")},
            "pager": {"type": "pagerduty", "routing_key_env": "FLOE_TEST_UNSET_ROUTING_KEY"},
        },
        routing_rules=[
            {"channel_name": "hook-a", "min_severity": "warning"},
            {"channel_name": "pager", "min_severity": "error"},
        ],
    )
    env = {"FLOE_MONITORING_DB_URL": store_url, "FLOE_MONITORING_CONFIG": str(config)}
    result = invoke(["alerts", "dispatch", "--once"], env)
    assert result.exit_code == 0, result.output
    assert "channel pager cannot deliver now" in result.output and "FLOE_TEST_UNSET_ROUTING_KEY" in result.output
    assert received_ids(receivers["hook-a"]) == Counter({vid: 1})
    status = json.loads(invoke(["alerts", "status", "--format", "json"], env).output)
    assert status["deliveries"] == {"hook-a": {"delivered": 1}, "pager": {"retrying": 1}}
    store.dispose()


def test_dispatch_once_exits_1_naming_the_store_it_cannot_reach(tmp_path: Path) -> None:
    url = "postgresql+psycopg2://floe:s3cret-pw@127.0.0.1:1/floe"
    for args in (["alerts", "dispatch", "--once"], ["alerts", "status"]):
        result = CliRunner().invoke(cli, args, env={"FLOE_MONITORING_DB_URL": url})
        assert result.exit_code == 1
        assert "127.0.0.1:1" in result.output and "***" in result.output
        assert "s3cret-pw" not in result.output and "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_status_and_dispatch_never_create_a_store(tmp_path: Path) -> None:
    db = tmp_path / "nowhere" / "monitoring.db"
    for args in (["alerts", "status"], ["alerts", "dispatch", "--once"]):
        result = CliRunner().invoke(cli, args, env={"FLOE_MONITORING_DB_URL": f"sqlite:///{db}"})
        assert result.exit_code == 1 and "no monitoring store at" in result.output
    assert not db.exists() and not db.parent.exists()


def test_dispatch_needs_once_or_loop() -> None:
    result = CliRunner().invoke(cli, ["alerts", "dispatch"])
    assert result.exit_code == 2 and "give --once (one pass) or --loop (a replica)" in result.output


# -- replicas ----------------------------------------------------------------------------------------------


def start_replica(env: dict[str, str], cwd: Path, n: int) -> tuple[subprocess.Popen[bytes], Path, Path]:
    out, err = cwd / f"replica{n}.out", cwd / f"replica{n}.err"
    proc = subprocess.Popen(
        [sys.executable, "-m", "floe_monitoring_defs.cli", "alerts", "dispatch", "--loop", "--interval", "0.2"],
        cwd=cwd,
        env=env,
        stdout=out.open("wb"),
        stderr=err.open("wb"),
    )
    # A replica is stopped only once its loop runs (its SIGTERM handler installed): a slow start under load
    # must not turn the test's SIGTERM into a kill during imports. The wait ends on the line, or on an exit.
    deadline = time.monotonic() + 180  # a safety net only
    while "alert dispatch running" not in out.read_text(errors="replace"):
        if proc.poll() is not None:
            raise AssertionError(
                f"replica {n} exited with {proc.returncode}: {err.read_text(errors='replace')[-2000:]}"
            )
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"replica {n} did not start its loop within 180 s")
        time.sleep(0.05)
    return proc, out, err


@pytest.fixture
def fresh_postgres(postgres_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for the test."""
    import uuid

    name = f"r_{uuid.uuid4().hex}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@pytest.mark.parametrize(
    ("dialect", "replicas"),
    [
        pytest.param("postgresql", 2, id="postgresql-2", marks=pytest.mark.postgres),
        pytest.param("postgresql", 4, id="postgresql-4", marks=pytest.mark.postgres),
        pytest.param("sqlite", 2, id="sqlite-2"),
    ],
)
def test_replicas_route_and_deliver_every_alert_exactly_once(
    dialect: str, replicas: int, receivers: dict[str, HTTPRecorder], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("fresh_postgres") if dialect == "postgresql" else f"sqlite:///{tmp_path / 'm.db'}"
    store = MonitoringStore(url)
    store.db.ping()
    store.outbox.pending(limit=1)  # migrates: the replicas open an existing store only
    config = write_config(tmp_path / "monitoring.yaml", receivers, route_page_size=25)
    env = controlled_env(tmp_path, url, config)
    procs = [start_replica(env, tmp_path, n) for n in range(replicas)]
    contracts = [f"contract_{i:03d}" for i in range(100)]
    severity = {c: S.ERROR if i % 2 == 0 else S.WARNING for i, c in enumerate(contracts)}
    first: dict[tuple[str, str], str] = {}
    repeat: dict[tuple[str, str], str] = {}
    started = time.monotonic()
    try:
        for wave in range(10):  # 10 waves x 100 contracts = 1,000 violations while the replicas run
            vtype = TYPES[wave % len(TYPES)]
            for c in contracts:
                vid = record(store, c, vtype, severity[c])
                (first if wave < len(TYPES) else repeat)[(c, vtype.value)] = vid
        deadline = time.monotonic() + 300  # a safety net only: the condition ends the wait
        while not drained(store):
            assert time.monotonic() < deadline, "the replicas did not drain the outbox within 300 s"
            time.sleep(0.2)
        print(f"\n{dialect} x{replicas}: 1,000 violations recorded and drained in {time.monotonic() - started:.1f} s")
    finally:
        for proc, _, _ in procs:
            proc.send_signal(signal.SIGTERM)
        for proc, _, _ in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    decided: list[tuple[int, int]] = []  # per replica: (routed, suppressed) as it reported them
    for proc, out, err in procs:
        stderr, stdout = err.read_text(errors="replace"), out.read_text(errors="replace")
        assert proc.returncode == 0, stderr[-2000:]
        assert "StoreError" not in stderr and "Traceback" not in stderr, stderr[-2000:]
        m = re.search(
            r"stopped \(signal SIGTERM\) after \d+ passes, (\d+) failed: routed (\d+), suppressed (\d+)", stdout
        )
        assert m is not None, stdout
        assert int(m.group(1)) == 0  # no aborted pass
        decided.append((int(m.group(2)), int(m.group(3))))
    print(f"(routed, suppressed) per replica: {decided}")
    # Each decision was made by exactly one replica: what they report adds up to the outbox, no more.
    assert (sum(r for r, _ in decided), sum(s for _, s in decided)) == (500, 500)

    entries = {e.id: e for e in store.outbox.entries()}
    assert len(entries) == 1000
    assert {(entries[i].state, entries[i].reason) for i in first.values()} == {("routed", None)}
    assert {(entries[i].state, entries[i].reason) for i in repeat.values()} == {("suppressed", "dedup")}

    deliveries = store.outbox.deliveries()
    by_entry: dict[str, list[str]] = {}
    for d in deliveries:
        assert d["state"] == "delivered"
        by_entry.setdefault(str(d["outbox_id"]), []).append(str(d["channel"]))
    expected = {
        vid: sorted(["hook-a", "hook-b"] if severity[c] is S.ERROR else ["hook-a"]) for (c, _), vid in first.items()
    }
    assert {k: sorted(v) for k, v in by_entry.items()} == expected  # routed entries, and only they, have them

    sent_a, sent_b = received_ids(receivers["hook-a"]), received_ids(receivers["hook-b"])
    assert sent_a == Counter({vid: 1 for vid in first.values()})  # 0 lost, 0 duplicates
    assert sent_b == Counter({vid: 1 for (c, _), vid in first.items() if severity[c] is S.ERROR})
    assert receivers["hook-a"].errors == [] and receivers["hook-b"].errors == []

    incidents = store.outbox.incidents()
    assert sorted((i.contract_name, i.violation_type, i.violation_count, i.status) for i in incidents) == sorted(
        (c, vt, 2, "open") for c, vt in first if severity[c] is S.ERROR
    )
    store.dispose()


def test_sigterm_stops_a_replica_after_its_current_pass(receivers: dict[str, HTTPRecorder], tmp_path: Path) -> None:
    """SIGTERM while the replica waits on a hanging receiver: the pass finishes (the attempt is recorded as
    failed, to be retried) and the replica exits 0; nothing is left half-done."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    store = MonitoringStore(url)
    vid = record(store, "orders", ViolationType.FRESHNESS, S.WARNING)  # hook-a only
    receivers["hook-a"].hang()
    config = write_config(
        tmp_path / "monitoring.yaml",
        receivers,
        channels={"hook-a": {"type": "webhook", "url": receivers["hook-a"].url_for("/a"), "timeout_seconds": 1}},
        routing_rules=[{"channel_name": "hook-a", "min_severity": "warning"}],
    )
    proc, out, err = start_replica(controlled_env(tmp_path, url, config), tmp_path, 0)
    try:
        receivers["hook-a"].wait_for(1, timeout=60)  # the pass is now inside the delivery
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, err.read_text(errors="replace")[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "stopped (signal SIGTERM) after 1 passes, 0 failed: routed 1" in out.read_text()
    assert "Traceback" not in err.read_text(errors="replace")
    [delivery] = store.outbox.deliveries(outbox_id=vid)
    attempts = [a for a in store.outbox.attempts() if a["delivery_id"] == delivery["id"]]
    assert (delivery["state"], delivery["attempts"], [a["ok"] for a in attempts]) == ("pending", 1, [False])
    store.dispose()


def test_a_replica_with_for_stops_by_itself(receivers: dict[str, HTTPRecorder], tmp_path: Path) -> None:
    """`--loop --for SECONDS` (a CronJob's run): the replica dispatches, then ends on its own with exit 0."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    store = MonitoringStore(url)
    vid = record(store, "orders", ViolationType.FRESHNESS, S.ERROR)
    config = write_config(tmp_path / "monitoring.yaml", receivers)
    proc = subprocess.run(
        [sys.executable, "-m", "floe_monitoring_defs.cli", "alerts", "dispatch", "--loop", "--for", "1"],
        cwd=tmp_path,
        env=controlled_env(tmp_path, url, config),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert re.search(r"stopped \(--for elapsed\) after \d+ passes, 0 failed: routed 1", proc.stdout)
    assert received_ids(receivers["hook-a"]) == Counter({vid: 1}) == received_ids(receivers["hook-b"])
    store.dispose()
