"""Shared fixtures of the floe-monitoring test suite.

PostgreSQL: `postgres_url` starts a throwaway cluster from the machine's PostgreSQL binaries (once per
session, only when a test asks for it); `store_url` gives each test a fresh, empty monitoring database
on SQLite and on PostgreSQL. Without PostgreSQL binaries the PostgreSQL tests are skipped, except
under CI (`CI` set), where they fail instead so that CI never silently skips them.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

# ---------------------------------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------------------------------

PG_SUPERUSER = "floe"
PG_TEST_DATABASE = "floe_test"
_PG_BINARIES = ("initdb", "pg_ctl", "postgres")
_PG_OS_USER = "postgres"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(reason: str) -> None:
    """Skip locally; fail under CI, where PostgreSQL tests must run."""
    if _in_ci():
        pytest.fail(f"PostgreSQL tests cannot run under CI: {reason}", pytrace=False)
    pytest.skip(reason)


def _pg_version(bindir: Path) -> int:
    try:
        return int(bindir.parent.name)
    except ValueError:
        return 0


def find_pg_bindir() -> Path | None:
    """A directory holding initdb, pg_ctl and postgres: from PATH, else the newest /usr/lib/postgresql/*/bin."""
    candidates: list[Path] = []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    candidates.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_pg_version, reverse=True))
    for bindir in candidates:
        if all(os.access(bindir / name, os.X_OK) for name in _PG_BINARIES):
            return bindir
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_pg_user(cmd: list[str]) -> list[str]:
    """Run `cmd` as the postgres OS user when we are root (PostgreSQL refuses to run as root)."""
    if os.geteuid() != 0:
        return cmd
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", _PG_OS_USER, "--", *cmd]
    return ["su", _PG_OS_USER, "-s", "/bin/sh", "-c", shlex.join(cmd)]


def _ensure_pg_os_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(_PG_OS_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", _PG_OS_USER], check=True, capture_output=True)
        return pwd.getpwnam(_PG_OS_USER)


def _run(cmd: list[str], cwd: Path, what: str) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        pytest.fail(
            f"{what} failed (exit {proc.returncode}): {shlex.join(cmd)}\n{proc.stdout}\n{proc.stderr}",
            pytrace=False,
        )


# What a developer's shell or a deployment may set that would change what a test sees.
_FOREIGN_ENV_PREFIXES = ("FLOE_", "PYICEBERG_", "OTEL_", "OPENLINEAGE")
_FOREIGN_ENV = ("DAGSTER_HOME", "KUBERNETES_SERVICE_HOST")  # in a pod the store guard would trip


@pytest.fixture(autouse=True)
def _hermetic(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts in an empty working directory with none of the caller's floe, Dagster, pyiceberg,
    OpenTelemetry or OpenLineage variables: the repository's `.env` (which `floe demo` writes and `floe` and
    `dagster` read from the working directory) and the developer's `DAGSTER_HOME`, `FLOE_*` and
    `~/.pyiceberg.yaml` never reach a test, in-process or in a subprocess (which inherits this environment).
    Tests that need a variable set it themselves."""
    for name in list(os.environ):
        if name.startswith(_FOREIGN_ENV_PREFIXES) or name in _FOREIGN_ENV:
            monkeypatch.delenv(name)
    cwd = tmp_path_factory.mktemp("cwd")
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("PYICEBERG_HOME", str(cwd))  # pyiceberg reads $PYICEBERG_HOME/.pyiceberg.yaml, else ~


@pytest.fixture(autouse=True)
def _no_leaked_dagster_state_storage() -> Iterator[None]:
    """Each test starts without a defs-state storage left behind by an earlier test's Dagster instance.

    Dagster 1.13's `DagsterInstance.__enter__` puts the instance's defs-state storage in a context variable
    and `__exit__` does not reset it, so a later definitions load outside any instance (`build_defs()`,
    `validate_loadable`) reads the storage of a disposed instance whose temp directory is gone ("unable to
    open database file", "Attempted to resolve undefined DagsterInstance weakref"), depending on test order.
    """
    from dagster._core.storage.defs_state.base import set_defs_state_storage  # no public API resets it

    with set_defs_state_storage(None):
        yield


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of database `floe_test` on a throwaway PostgreSQL cluster (127.0.0.1, free port, trust auth)."""
    bindir = find_pg_bindir()
    if bindir is None:
        _unavailable("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found")
    assert bindir is not None
    # Not under pytest's tmp_path: its parents are mode 0700 and root-owned, so the postgres user
    # could not reach the data directory.
    workdir = Path(tempfile.mkdtemp(prefix="floe-pg-"))
    datadir, sockdir, logfile = workdir / "data", workdir / "sock", workdir / "postgres.log"
    started = False
    try:
        sockdir.mkdir()
        if os.geteuid() == 0:
            user = _ensure_pg_os_user()
            for path in (workdir, sockdir):
                os.chown(path, user.pw_uid, user.pw_gid)
        _run(
            _as_pg_user(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(datadir),
                    "-A",
                    "trust",
                    "-U",
                    PG_SUPERUSER,
                    "--encoding",
                    "UTF8",
                    "--no-locale",
                    "--no-sync",
                ]
            ),
            workdir,
            "initdb",
        )
        port = 0
        for _attempt in range(3):
            port = _free_port()
            options = f"-h 127.0.0.1 -p {port} -k {sockdir} -F"
            pg_ctl = [str(bindir / "pg_ctl"), "-D", str(datadir), "-l", str(logfile), "-w", "-t", "60"]
            cmd = _as_pg_user([*pg_ctl, "-o", options, "start"])
            proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=120, check=False)
            if proc.returncode == 0:
                started = True
                break
        if not started:
            log = logfile.read_text(errors="replace")[-4000:] if logfile.exists() else ""
            pytest.fail(f"pg_ctl start failed three times; server log:\n{log}", pytrace=False)
        admin = sa.create_engine(
            f"postgresql+psycopg2://{PG_SUPERUSER}@127.0.0.1:{port}/postgres",
            isolation_level="AUTOCOMMIT",
            poolclass=NullPool,
        )
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"CREATE DATABASE {PG_TEST_DATABASE}")
        finally:
            admin.dispose()
        yield f"postgresql+psycopg2://{PG_SUPERUSER}@127.0.0.1:{port}/{PG_TEST_DATABASE}"
    finally:
        if started:
            subprocess.run(
                _as_pg_user([str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "-w", "stop"]),
                cwd=workdir,
                capture_output=True,
                timeout=120,
                check=False,
            )
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=(pytest.mark.postgres, pytest.mark.integration)),
    ]
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database per test: a SQLite file in tmp_path, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'monitoring.db'}"
        return
    base_url: str = request.getfixturevalue("postgres_url")
    name = f"t_{uuid.uuid4().hex}"
    admin = sa.create_engine(base_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            # FORCE: a test that forgot to dispose its store must not block the drop.
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


# ---------------------------------------------------------------------------------------------------
# OpenTelemetry: one SDK provider per test session (OpenTelemetry allows setting the global providers
# once per process), readable in memory and through a Prometheus registry.
# ---------------------------------------------------------------------------------------------------


class Telemetry:
    def __init__(self) -> None:
        from opentelemetry import metrics, trace
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from prometheus_client import CollectorRegistry

        from floe_monitoring_defs.telemetry.setup import DURATION_BUCKETS_SECONDS

        self.registry = CollectorRegistry()
        self.reader = InMemoryMetricReader()
        views = [
            View(
                instrument_name="floe_contract_check_duration_seconds",
                aggregation=ExplicitBucketHistogramAggregation(boundaries=DURATION_BUCKETS_SECONDS),
            )
        ]
        metrics.set_meter_provider(
            MeterProvider(metric_readers=[self.reader, PrometheusMetricReader(registry=self.registry)], views=views)
        )
        self.spans = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.spans))
        trace.set_tracer_provider(provider)

    def counter(self, name: str, **attrs: str) -> float:
        from opentelemetry.sdk.metrics.export import NumberDataPoint

        data = self.reader.get_metrics_data()
        total = 0.0
        for rm in data.resource_metrics if data else []:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == name:
                        for dp in m.data.data_points:
                            assert isinstance(dp, NumberDataPoint), f"{name} is not a counter"
                            point_attrs = dp.attributes or {}
                            if all(point_attrs.get(k) == v for k, v in attrs.items()):
                                total += dp.value
        return total


@pytest.fixture(scope="session")
def telemetry() -> Telemetry:
    return Telemetry()
