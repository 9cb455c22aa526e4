"""Alert routing and delivery: this tree against a baseline commit, measured in the same run.

What it measures (each side in its own subprocess, on a fresh database per measurement):

* route: `--violations` violations (default 10,000) over `--contracts` contracts (default 1,000) put in the
  outbox in one transaction (not timed), then routed until nothing is pending (timed): per contract, five
  occurrences of two violations each (types and times mixed so that dedup and the rate limit decide), to
  one in-memory channel. Printed: seconds, entries per second, routed / suppressed counts.
* deliver: `--alerts` alerts (default 1,000) over `--alert-contracts` contracts (default 100; each
  contract's alerts one occurrence) put in the outbox at t0, then dispatched (route + deliver passes) to a
  real webhook channel posting to a loopback HTTP receiver until every delivery is acknowledged. Printed:
  p50 / p95 / max from t0 to the receipt of each alert, requests the receiver got, alerts received twice.

Sides: this tree, and `--baseline-ref` (default: the commit before the issue-12 routing and delivery work)
checked out with `git worktree` into a temporary directory; its child imports the package from there. Both
sides run the same workload code below, which uses only APIs both have. Backends: SQLite (a file) and
PostgreSQL (a throwaway cluster from the machine's binaries, as benchmarks/sla.py starts it).

Timings are printed, never asserted. Targets (issue 12): 10,000 violations routed in < 2 s on SQLite and
PostgreSQL; p95 recording -> receipt < 5 s for 1,000 alerts; one request per contract x channel.

Run from the repository root:

    .venv/bin/python benchmarks/alerting.py                               # full sizes (~2-4 min on 2 cores)
    .venv/bin/python benchmarks/alerting.py --violations 200 --contracts 20 --alerts 50 --alert-contracts 5 \\
        --backends sqlite --baseline-ref none                              # CI smoke test (seconds)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BASELINE_REF = "c4943b2"  # the commit before the issue-12 work: one routing transaction per alert
RESULT_PREFIX = "ALERTING_BENCH_RESULT "
T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TYPES = ("freshness", "schema_drift", "quality", "availability", "freshness")
SEVERITIES = ("critical", "error", "warning", "error", "info")


# ---------------------------------------------------------------------------------------------------------
# Child side: runs against the package found under --src


def _import_side(src: Path) -> None:
    sys.path.insert(0, str(src))  # before the editable install's finder: this side's package wins
    import floe_monitoring_defs

    if Path(floe_monitoring_defs.__file__).resolve().parent.parent != src.resolve():
        raise SystemExit(f"imported {floe_monitoring_defs.__file__}, not the tree under {src}")


def _event(contract: str, vtype: str, severity: str, at: datetime, n: int) -> Any:
    from floe_monitoring_defs.models import ContractViolationEvent, ViolationSeverity, ViolationType

    return ContractViolationEvent(
        contract_name=contract,
        contract_version="1.0.0",
        violation_type=ViolationType(vtype),
        severity=ViolationSeverity(severity),
        message=f"benchmark violation {n}",
        timestamp=at,
        check_duration_seconds=0.01,
    )


def _enqueue(store: Any, alerts: Sequence[Any]) -> None:
    with store.db.transaction("benchmark enqueue", write=True) as conn:
        store.outbox.add(conn, alerts, T0)


def _count(store: Any, sql: str) -> int:
    import sqlalchemy as sa

    with store.db.transaction("benchmark count") as conn:
        return int(conn.execute(sa.text(sql)).scalar_one())


def _pending(store: Any) -> int:
    return _count(store, "SELECT COUNT(*) FROM alert_outbox WHERE state = 'pending'")


def child_route(url: str, violations: int, contracts: int) -> dict[str, Any]:
    from pydantic import SecretStr

    from floe_monitoring_defs.alerting.channels.base import AlertChannel, ChannelConfig
    from floe_monitoring_defs.alerting.dispatch import AlertDispatcher, DispatchReport
    from floe_monitoring_defs.alerting.model import DeliveryResult
    from floe_monitoring_defs.config import AlertConfig
    from floe_monitoring_defs.store import MonitoringStore
    from floe_monitoring_defs.store.outbox import NewAlert

    class Null(AlertChannel):
        type_name = "null"
        Config = ChannelConfig

        def send(self, batch: Any) -> DeliveryResult:
            return DeliveryResult(True, "delivered")

        def validate_config(self) -> list[str]:
            return []

    store = MonitoringStore(url, clock=lambda: T0 + timedelta(hours=1))
    per = max(1, violations // contracts)
    alerts = []
    for c in range(contracts):
        for k in range(per):
            occurrence = k // 2
            vtype = TYPES[(occurrence + k) % len(TYPES)]
            at = T0 + timedelta(minutes=10 * occurrence)
            alerts.append(
                NewAlert(str(uuid.uuid4()), "violation", _event(f"c{c:05d}", vtype, SEVERITIES[k % 5], at, k))
            )
    _enqueue(store, alerts)
    config = AlertConfig.model_validate(
        {
            "channels": {"null": {"type": "webhook", "url": "http://127.0.0.1:9/unused"}},
            "routing_rules": [{"channel_name": "null", "min_severity": "info"}],
        }
    )
    channel = Null("null", ChannelConfig(type="null"), {"token": SecretStr("unused")})
    dispatcher = AlertDispatcher(store.outbox, {"null": channel}, config, clock=lambda: T0 + timedelta(hours=1))
    report = DispatchReport()
    passes = 0
    started = time.perf_counter()
    while True:
        before = _pending(store)
        if before == 0:
            break
        dispatcher.route(report)
        passes += 1
        if _pending(store) == before:
            raise SystemExit(f"routing made no progress with {before} pending")
    seconds = time.perf_counter() - started
    out = {
        "seconds": seconds,
        "entries": len(alerts),
        "passes": passes,
        "routed": report.routed,
        "suppressed": sum(report.suppressed.values()),
        "no_route": report.no_route,
        "deliveries": _count(store, "SELECT COUNT(*) FROM alert_deliveries"),
    }
    store.dispose()
    return out


class _Receiver:
    """A loopback webhook receiver recording when each alert id arrived (CloudEvents, single or batch)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.first: dict[str, float] = {}
        self.repeats = 0
        self.requests = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now = time.time()
                doc = json.loads(body)
                ids = [e["id"] for e in doc] if isinstance(doc, list) else [doc["id"]]
                with receiver.lock:
                    receiver.requests += 1
                    for i in ids:
                        if i in receiver.first:
                            receiver.repeats += 1
                        else:
                            receiver.first[i] = now
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _percentile(values: Sequence[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))]


def child_deliver(url: str, alerts_n: int, contracts: int) -> dict[str, Any]:
    from floe_monitoring_defs.alerting.channels.base import build_channel
    from floe_monitoring_defs.alerting.channels.webhook import WebhookConfig
    from floe_monitoring_defs.alerting.dispatch import AlertDispatcher
    from floe_monitoring_defs.config import AlertConfig
    from floe_monitoring_defs.store import MonitoringStore
    from floe_monitoring_defs.store.outbox import NewAlert

    receiver = _Receiver()
    try:
        store = MonitoringStore(url)
        spec: dict[str, Any] = {"type": "webhook", "url": receiver.url}
        # A tree whose webhook can batch (one request per contract x channel) is measured that way.
        for field, value in (("mode", "batch"), ("batch", True)):
            if field in WebhookConfig.model_fields:
                spec[field] = value
        config = AlertConfig.model_validate(
            {"channels": {"hook": spec}, "routing_rules": [{"channel_name": "hook", "min_severity": "info"}]}
        )
        channel = build_channel("hook", spec, {})
        dispatcher = AlertDispatcher(store.outbox, {"hook": channel}, config)
        per = max(1, alerts_n // contracts)
        now = datetime.now(UTC)
        alerts = [
            NewAlert(str(uuid.uuid4()), "violation", _event(f"d{c:04d}", "freshness", "error", now, k))
            for c in range(contracts)
            for k in range(per)
        ]
        _enqueue(store, alerts)
        t0 = time.time()
        passes = 0
        while _count(store, "SELECT COUNT(*) FROM alert_deliveries WHERE state = 'delivered'") < len(alerts):
            dispatcher.dispatch()
            passes += 1
            if passes > 10_000:
                raise SystemExit("delivery did not finish")
        total = time.time() - t0
        lags = [receiver.first[a.id] - t0 for a in alerts if a.id in receiver.first]
        out = {
            "seconds": total,
            "alerts": len(alerts),
            "received": len(lags),
            "p50": _percentile(lags, 50),
            "p95": _percentile(lags, 95),
            "max": max(lags),
            "requests": receiver.requests,
            "repeats": receiver.repeats,
            "passes": passes,
            "batch_mode": len(spec) > 2,
        }
        store.dispose()
        return out
    finally:
        receiver.close()


# ---------------------------------------------------------------------------------------------------------
# Parent side


@contextmanager
def baseline_tree(ref: str) -> Iterator[Path | None]:
    if ref == "none":
        yield None
        return
    tmp = Path(tempfile.mkdtemp(prefix="floe_alerting_baseline_"))
    tree = tmp / "tree"
    proc = subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), ref], capture_output=True, text=True
    )
    if proc.returncode != 0:
        print(f"baseline {ref} not available ({proc.stderr.strip()[:200]}); measuring this tree only")
        yield None
        return
    try:
        yield tree
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], capture_output=True)


def run_child(mode: str, src: Path, url: str, sizes: Sequence[int]) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--src", str(src), "--url", url]
    cmd += ["--sizes", ",".join(map(str, sizes))]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOE_", "OTEL_", "OPENLINEAGE"))}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir(), check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"{mode} on {src} failed (exit {proc.returncode})")
    return dict(json.loads(lines[-1][len(RESULT_PREFIX) :]))


def fresh_url(backend: str, tmp: Path, pg_url: str | None) -> str:
    name = f"b_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite":
        return f"sqlite:///{tmp / (name + '.db')}"
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    assert pg_url is not None
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return make_url(pg_url).set(database=name).render_as_string(hide_password=False)


@contextmanager
def postgres(backends: Sequence[str]) -> Iterator[str | None]:
    if "postgresql" not in backends:
        yield None
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from sla import throwaway_postgres  # the sibling benchmark's throwaway cluster

    with throwaway_postgres() as url:
        yield url


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--violations", type=int, default=10_000)
    ap.add_argument("--contracts", type=int, default=1_000)
    ap.add_argument("--alerts", type=int, default=1_000)
    ap.add_argument("--alert-contracts", type=int, default=100)
    ap.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    ap.add_argument("--baseline-ref", default=BASELINE_REF, help="git ref of the baseline, or 'none'")
    ap.add_argument("--child", choices=("route", "deliver"), help=argparse.SUPPRESS)
    ap.add_argument("--src", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--sizes", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _import_side(args.src)
        a, b = (int(x) for x in args.sizes.split(","))
        result = child_route(args.url, a, b) if args.child == "route" else child_deliver(args.url, a, b)
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    print(
        f"alerting: route {args.violations} violations / {args.contracts} contracts, deliver {args.alerts} alerts / "
        f"{args.alert_contracts} contracts; backends {backends}; baseline {args.baseline_ref}; "
        f"python {sys.version.split()[0]}, {os.cpu_count()} cpus"
    )
    rows: list[tuple[str, ...]] = []
    with (
        tempfile.TemporaryDirectory(prefix="floe_alerting_bench_") as tmp,
        baseline_tree(args.baseline_ref) as base,
        postgres(backends) as pg,
    ):
        sides = [("this tree", REPO)] + ([(f"baseline {args.baseline_ref}", base)] if base else [])
        for backend in backends:
            routed: dict[str, dict[str, Any]] = {}
            delivered: dict[str, dict[str, Any]] = {}
            for label, src in sides:
                url = fresh_url(backend, Path(tmp), pg)
                routed[label] = run_child("route", src, url, (args.violations, args.contracts))
                url = fresh_url(backend, Path(tmp), pg)
                delivered[label] = run_child("deliver", src, url, (args.alerts, args.alert_contracts))
            for label, r in routed.items():
                rows.append(
                    (
                        backend,
                        label,
                        "route",
                        f"{r['seconds']:.2f} s",
                        f"{r['entries'] / r['seconds']:.0f}/s",
                        f"routed {r['routed']}, suppressed {r['suppressed']}, {r['passes']} passes",
                    )
                )
            for label, d in delivered.items():
                rows.append(
                    (
                        backend,
                        label,
                        "deliver",
                        f"{d['seconds']:.2f} s",
                        f"p95 {d['p95']:.2f} s",
                        f"p50 {d['p50']:.2f} s, max {d['max']:.2f} s, {d['requests']} requests for "
                        f"{d['alerts']} alerts ({'batch' if d['batch_mode'] else 'one per alert'}), "
                        f"{d['repeats']} received twice",
                    )
                )
            if len(sides) == 2:
                (this, ra), (base_label, rb) = routed.items()
                (_, da), (_, db) = delivered.items()
                rows.append(
                    (
                        backend,
                        "ratio",
                        "",
                        f"route {ra['seconds'] / rb['seconds']:.3f}x",
                        f"p95 {da['p95'] / db['p95']:.3f}x",
                        f"{this} / {base_label}",
                    )
                )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print()
    for row in rows:
        print("  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip())


if __name__ == "__main__":
    main()
