"""What OpenTelemetry export and OpenLineage emission add to a checks run when their receivers misbehave.

Setup (not timed): `--tables` real Iceberg tables (default 100) in a local pyiceberg `SqlCatalog`
(SQLite catalog, file warehouse), built with `check_run.py`'s helpers, and one strict ODCS contract per
table. Nine tables in ten get a 1-minute freshness SLA their data (5 to 125 minutes old) breaks, the
tenth keeps check_run's 6-hour SLA and passes: 90 % of the checks fail with an ERROR violation, each
of which becomes a lineage event.

Measured, each in a fresh Python subprocess (imports and setup not timed, every run with its own SQLite
monitoring store): `CheckPipeline(IcebergSource(), store, MonitoringConfig(), lineage=emitter)
.run(FRESHNESS, targets)`, the core path of a step, which emits the violations of every check and, at the
end, gives queued events at most 5 % of the run to leave, in three configurations:

* off: no OTEL_* and no OPENLINEAGE_* variables: the no-op OTel API, a disabled emitter.
* hung: `OPENLINEAGE_URL` and `OTEL_EXPORTER_OTLP_ENDPOINT` point at loopback servers that accept the
  connection, read the request and never answer (the clients' default timeouts and retries apply).
* refused: both point at a loopback port nothing listens on.

Telemetry is configured with `floe_monitoring_defs.telemetry.setup.configure_telemetry()` (OTLP/HTTP
metrics through a PeriodicExportingMetricReader and spans through a BatchSpanProcessor when
OTEL_EXPORTER_OTLP_ENDPOINT is set); exports are made frequent (`OTEL_METRIC_EXPORT_INTERVAL=500` ms,
`OTEL_BSP_SCHEDULE_DELAY=100` ms) so that they happen during the measured run, not only at exit.

Reported per configuration: the wall time of the run, fastest and median of `--repeat` (default 5,
interleaved), the overhead of the medians against "off" and whether that is within 10 % (on a 2-core
machine the runs of one configuration spread by about 10 % on their own; the fastest runs are shown
too); the lineage counters (queued, sent, failed, dropped) at the end of the run; and, from the first
round, the time the process then needed to exit (OTel flushes its exporters at exit, against the
exporter timeout; the lineage emitter gives its queue at most 2 s), which is not part of the check run.
Later rounds kill the child as soon as it has reported. Timings are printed, never asserted.

Run from the repository root:

    /work/venv/bin/python benchmarks/telemetry_overhead.py                       # 100 tables (~2 min)
    /work/venv/bin/python benchmarks/telemetry_overhead.py --tables 10 --repeat 1 --exit-timeout 3  # CI smoke
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check_run  # the sibling benchmark's warehouse and contract helpers (benchmarks/ is on sys.path)

RESULT_PREFIX = "BENCH_RESULT "
MODES = ("off", "hung", "refused")
SHORT_SLA_EVERY = 10  # tables i with i % 10 != 0 get PT1M
TELEMETRY_ENV_PREFIXES = ("OTEL_", "OPENLINEAGE")


# ---------------------------------------------------------------------------------------------
# Setup


def write_contracts(layout: check_run.Layout, n: int) -> Path:
    directory = layout.contracts(n)
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        doc = check_run.contract_doc(i, layout)
        if i % SHORT_SLA_EVERY:
            doc["slaProperties"] = [{"property": "freshness", "value": "PT1M", "element": "updated_at"}]
        (directory / f"contract_{i:05d}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return directory


class HungServer:
    """Accepts TCP connections on 127.0.0.1 and never answers (requests sit in the socket buffer)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.held: list[socket.socket] = []
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.held.append(conn)  # never read from, never answered: the client waits for its timeout
            self.connections += 1

    def __enter__(self) -> HungServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(2)
        for conn in self.held:
            conn.close()
        self.sock.close()


def refused_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------------------------------------
# Child side: one measured run per process


def child_main(contracts_dir: Path) -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger().setLevel(logging.ERROR)

    try:
        from floe_monitoring_defs.telemetry.setup import configure_telemetry
    except ImportError:  # an older tree: configure the OTLP exporters here
        configure_telemetry = _configure_otlp
    from floe_monitoring_defs.config import MonitoringConfig
    from floe_monitoring_defs.models import CheckStatus, ViolationType
    from floe_monitoring_defs.pipeline import CheckPipeline
    from floe_monitoring_defs.sources.iceberg import IcebergSource
    from floe_monitoring_defs.store import MonitoringStore, default_db_url
    from floe_monitoring_defs.telemetry.lineage import LineageEmitter

    state = configure_telemetry()
    emitter = LineageEmitter.from_env()
    targets = check_run._targets(contracts_dir)
    store = MonitoringStore(default_db_url())
    pipeline = CheckPipeline(IcebergSource(), store, MonitoringConfig(), lineage=emitter)
    started = time.perf_counter()
    runs = list(pipeline.run(ViolationType.FRESHNESS, targets))
    wall = time.perf_counter() - started
    store.dispose()
    result = {
        "wall_s": wall,
        "checks": len(runs),
        "failed": sum(1 for r in runs if r.result.status is CheckStatus.FAIL),
        "errors": sum(1 for r in runs if r.result.status is CheckStatus.ERROR),
        "violations": sum(len(r.violations) for r in runs),
        "lineage": emitter.enabled,
        "queued": emitter.queued,
        "sent": emitter.sent,
        "failed_emits": emitter.failed,
        "dropped": emitter.dropped,
        "otel": ",".join(getattr(state, "metrics_exporters", []) or [])
        + ("+traces" if getattr(state, "tracing", False) else ""),
    }
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    # Exit normally: OTel's and the emitter's atexit handlers run, as in a real step process.


def _configure_otlp() -> Any:
    """Fallback when telemetry/setup.py is absent: OTLP/HTTP metrics + spans if the endpoint is set."""
    from types import SimpleNamespace

    state = SimpleNamespace(metrics_exporters=[], tracing=False)
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return state
    from opentelemetry import metrics, trace
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    metrics.set_meter_provider(MeterProvider(metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter())]))
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    state.metrics_exporters, state.tracing = ["otlp"], True
    return state


# ---------------------------------------------------------------------------------------------
# Parent side


def mode_env(mode: str, lineage_port: int | None, otlp_port: int | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(TELEMETRY_ENV_PREFIXES)}
    env["OTEL_METRIC_EXPORT_INTERVAL"] = "500"
    env["OTEL_BSP_SCHEDULE_DELAY"] = "100"
    if mode != "off":
        env["OPENLINEAGE_URL"] = f"http://127.0.0.1:{lineage_port}"
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{otlp_port}"
    return env


def run_child(
    mode: str, layout: check_run.Layout, n: int, env: dict[str, str], exit_timeout: float, index: int
) -> dict[str, Any]:
    home = layout.root / f"run_{mode}_{index}"
    home.mkdir()
    env = {
        **env,
        **layout.catalog_env(),
        "FLOE_MONITORING_DB_URL": f"sqlite:///{home / 'floe.db'}",
        "DAGSTER_HOME": str(home),
    }
    env.pop("FLOE_MONITORING_CONFIG", None)
    env.pop("FLOE_CATALOG", None)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--dir", str(layout.contracts(n))]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=home)
    assert proc.stdout is not None
    result: dict[str, Any] | None = None
    result_at = 0.0
    for line in proc.stdout:
        if line.startswith(RESULT_PREFIX):
            result = dict(json.loads(line[len(RESULT_PREFIX) :]))
            result_at = time.perf_counter()
            break
    killed = False
    try:
        proc.wait(timeout=exit_timeout if result is not None else None)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        killed = True
    ended = time.perf_counter()
    stderr = proc.stderr.read() if proc.stderr is not None else ""
    if result is None:
        sys.stderr.write(stderr[-4000:])
        raise SystemExit(f"{mode} run over {n} tables failed (exit {proc.returncode})")
    result["exit_s"] = ended - result_at
    result["process_s"] = ended - started
    result["killed_at_exit"] = killed
    if result["checks"] != n or result["errors"]:
        print(f"  WARNING: {mode}: {result['checks']} checks, {result['errors']} errors")
    return result


def print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for k, r in enumerate(rows):
        print("  ".join(c.rjust(widths[i]) if k and i else c.ljust(widths[i]) for i, c in enumerate(r)).rstrip())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--tables", type=int, default=100, help="tables checked (default 100)")
    parser.add_argument("--rows", type=int, default=100, help="rows per table (default 100)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per configuration (default 5)")
    parser.add_argument(
        "--exit-timeout",
        type=float,
        default=60.0,
        help="first round: seconds a child may take to exit after its result before it is killed "
        "(default 60); later rounds kill it at once",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(args.dir)
        return
    if args.tables < 1:
        parser.error("--tables must be >= 1")

    started = time.perf_counter()
    n = args.tables
    print(
        f"telemetry_overhead: {n} Iceberg tables x {args.rows} rows, freshness checks, python "
        f"{sys.version.split()[0]}, {os.cpu_count()} cpus, {args.repeat} run(s) per configuration"
    )
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in MODES}
    with (
        tempfile.TemporaryDirectory(prefix="floe_telemetry_bench_") as tmp,
        HungServer() as hung_lineage,
        HungServer() as hung_otlp,
    ):
        layout = check_run.Layout(Path(tmp))
        t = time.perf_counter()
        check_run.build_warehouse(layout, n, args.rows)
        write_contracts(layout, n)
        print(f"  setup: {n} tables and contracts in {time.perf_counter() - t:.1f} s", flush=True)
        refused = refused_port()
        envs = {
            "off": mode_env("off", None, None),
            "hung": mode_env("hung", hung_lineage.port, hung_otlp.port),
            "refused": mode_env("refused", refused, refused),
        }
        for round_ in range(max(1, args.repeat)):
            for mode in MODES:
                r = run_child(mode, layout, n, envs[mode], args.exit_timeout if round_ == 0 else 0.0, round_)
                runs[mode].append(r)
                exit_note = (
                    f"; exit took {r['exit_s']:.2f} s{' (killed)' if r['killed_at_exit'] else ''}"
                    if round_ == 0
                    else ""
                )
                print(
                    f"  round {round_ + 1} {mode:7}: run {r['wall_s']:.3f} s, {r['checks']} checks "
                    f"({r['failed']} failing, {r['violations']} violations), lineage queued {r['queued']} "
                    f"sent {r['sent']} failed {r['failed_emits']} dropped {r['dropped']}, otel "
                    f"{r['otel'] or 'off'}{exit_note}",
                    flush=True,
                )
        connections = (hung_lineage.connections, hung_otlp.connections)

    walls = {m: sorted(r["wall_s"] for r in v) for m, v in runs.items()}
    fastest = {m: w[0] for m, w in walls.items()}
    median = {m: statistics.median(w) for m, w in walls.items()}
    print(
        f"\n{args.repeat} run(s) per configuration; overhead = median run wall time against 'off' (fastest runs "
        f"alongside). The hung servers saw {connections[0]} lineage and {connections[1]} OTLP connections."
    )
    rows: list[tuple[str, ...]] = [
        (
            "configuration",
            "median s",
            "fastest s",
            "ms/table",
            "overhead (median)",
            "overhead (fastest)",
            "within 10 %",
            "lineage queued/sent/failed/dropped",
            "exit s",
        )
    ]
    labels = {"off": "off (no telemetry, no lineage)", "hung": "hung receivers", "refused": "refused port"}
    for mode in MODES:
        last = runs[mode][-1]
        over = (median[mode] - median["off"]) / median["off"] * 100
        over_fast = (fastest[mode] - fastest["off"]) / fastest["off"] * 100
        rows.append(
            (
                labels[mode],
                f"{median[mode]:.3f}",
                f"{fastest[mode]:.3f}",
                f"{median[mode] / n * 1000:.1f}",
                "-" if mode == "off" else f"{over:+.1f} %",
                "-" if mode == "off" else f"{over_fast:+.1f} %",
                "-" if mode == "off" else ("yes" if over <= 10.0 else "NO"),
                f"{last['queued']}/{last['sent']}/{last['failed_emits']}/{last['dropped']}",
                f"{runs[mode][0]['exit_s']:.2f}{' (killed)' if runs[mode][0]['killed_at_exit'] else ''}",
            )
        )
    print_table(rows)
    print(
        "Lineage counters are as of the end of the run (last round); sending continues in the emitter's thread. "
        "Exit time (first round) comes after the run: OTel's shutdown flush against its exporter timeouts, and "
        "the emitter's drain of at most 2 s."
    )
    print(f"Total benchmark time {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
