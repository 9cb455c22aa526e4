"""Dispatch replicas decide entries with the settings each entry carries (issue 16 scope 2, FR-045).

Two real `floe alerts dispatch --loop` processes share one store (PostgreSQL: advisory locks per contract;
SQLite: the single writer) while a producer records violations of 40 contracts through the store's API. Half
the contracts carry their own alert settings (as a check step writes them: `record_check(alert_settings=)`):
routing replaced by one rule to `hook-b` at WARNING, and a rate limit of one occurrence. The replicas load no
contract and their config's rules send ERROR to both hooks: every entry is still decided exactly once and with
its own settings (the others with the global ones), nothing is delivered twice or lost. Waits are on
conditions (the outbox drained), with timeouts only as safety nets (helpers of test_alert_replicas.py). A record
spooled while the store was down keeps its settings when it enters the store.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from floe_monitoring_defs.config import AlertChannelRoutingRule, AlertSettings
from floe_monitoring_defs.models import (
    CheckResult,
    CheckStatus,
    ContractViolationEvent,
    ViolationSeverity,
    ViolationType,
)
from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_tests.alerting_receivers import HTTPRecorder
from floe_monitoring_tests.integration.test_alert_replicas import (
    controlled_env,
    drained,
    received_ids,
    receivers,  # noqa: F401 (the fixture)
    start_replica,
    write_config,
)

pytestmark = pytest.mark.integration

OWN = AlertSettings(
    routing_rules=[AlertChannelRoutingRule(channel_name="hook-b", min_severity=ViolationSeverity.WARNING)],
    rate_limit_per_contract=1,
).model_dump(mode="json")
WAVES = [ViolationType.FRESHNESS, ViolationType.SCHEMA_DRIFT, ViolationType.QUALITY]


def record(store: MonitoringStore, contract: str, vtype: ViolationType, settings: dict[str, Any] | None) -> str:
    now = datetime.now(UTC)
    event = ContractViolationEvent(
        contract_name=contract,
        contract_version="1.0.0",
        violation_type=vtype,
        severity=ViolationSeverity.ERROR,
        message=f"{vtype.value} error",
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
    recorded = store.results.record_check(result, [event], table_name=f"ns.{contract}", alert_settings=settings)
    return recorded.violation_ids[0]


def test_two_replicas_decide_each_entry_once_with_its_own_settings(
    store_url: str,
    receivers: dict[str, HTTPRecorder],  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> None:
    store = MonitoringStore(store_url)
    store.outbox.pending(limit=1)  # migrates: the replicas open an existing store only
    config = write_config(tmp_path / "monitoring.yaml", receivers, route_page_size=10)
    env = controlled_env(tmp_path, store_url, config)
    procs = [start_replica(env, tmp_path, n) for n in range(2)]
    contracts = [f"contract_{i:02d}" for i in range(40)]
    own = {c for i, c in enumerate(contracts) if i % 2 == 0}
    ids: dict[str, list[str]] = {c: [] for c in contracts}
    try:
        for vtype in WAVES:  # recorded while the replicas run
            for c in contracts:
                ids[c].append(record(store, c, vtype, OWN if c in own else None))
        deadline = time.monotonic() + 300
        while not drained(store):
            assert time.monotonic() < deadline, "the replicas did not drain the outbox within 300 s"
            time.sleep(0.2)
    finally:
        for proc, _, _ in procs:
            proc.send_signal(signal.SIGTERM)
        for proc, _, _ in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    decided = []
    for proc, out, err in procs:
        stdout, stderr = out.read_text(errors="replace"), err.read_text(errors="replace")
        assert proc.returncode == 0 and "Traceback" not in stderr, stderr[-2000:]
        m = re.search(r"after \d+ passes, (\d+) failed: routed (\d+), suppressed (\d+)", stdout)
        assert m is not None and int(m.group(1)) == 0, stdout
        decided.append((int(m.group(2)), int(m.group(3))))
    # Global contracts: 3 occurrences routed each (rate limit 10); own: the first routed, 2 rate-limited.
    assert (sum(r for r, _ in decided), sum(s for _, s in decided)) == (20 * 3 + 20, 20 * 2)
    entries = {e.id: e for e in store.outbox.entries()}
    for c in contracts:
        states = [(entries[i].state, entries[i].reason) for i in ids[c]]
        expected = [("routed", None)] * 3 if c not in own else [("routed", None)] + [("suppressed", "rate_limited")] * 2
        assert states == expected, c
    global_ids = [i for c in contracts if c not in own for i in ids[c]]
    own_first = [ids[c][0] for c in contracts if c in own]
    assert received_ids(receivers["hook-a"]) == Counter({i: 1 for i in global_ids})  # own contracts replaced it
    assert received_ids(receivers["hook-b"]) == Counter({i: 1 for i in global_ids + own_first})
    store.dispose()


def test_a_spooled_record_keeps_its_contracts_alert_settings(store_url: str, tmp_path: Path) -> None:
    """A record the store could not take enters it later with the settings its check resolved."""
    from floe_monitoring_defs.config import SpoolSettings
    from floe_monitoring_defs.store.spool import Spool

    now = datetime.now(UTC)
    event = ContractViolationEvent(
        contract_name="payments",
        contract_version="1.0.0",
        violation_type=ViolationType.FRESHNESS,
        severity=ViolationSeverity.ERROR,
        message="stale",
        timestamp=now,
        check_duration_seconds=0.01,
    )
    result = CheckResult(
        contract_name="payments",
        check_type=ViolationType.FRESHNESS,
        status=CheckStatus.FAIL,
        duration_seconds=0.01,
        timestamp=now,
        violation=event,
    )
    spool = Spool(SpoolSettings(tmp_path / "spool"))
    assert spool.append(result, [event], table_name="ns.payments", alert_settings=OWN) is not None
    store = MonitoringStore(store_url)
    assert spool.drain(store).drained == 1
    [entry] = store.outbox.entries(contract_name="payments")
    assert entry.settings == OWN
    store.dispose()
