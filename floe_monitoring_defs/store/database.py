"""`Database`: the monitoring store's engine, transactions, upserts and migrations (SQLite or PostgreSQL).

One SQLAlchemy Engine per database, synchronous Core statements. The schema is created and upgraded by
the Alembic migrations on first use (`auto_migrate`). Every database error is raised as `StoreError`,
whose message names the database URL with its password masked. The repositories of this package
(results, availability, baselines, registry, outbox, aggregates, retention) run their statements
through `Database.transaction`; none holds an engine of its own.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.sql.dml import Insert

from floe_monitoring_defs.models import utcnow
from floe_monitoring_defs.store.migrations import alembic_config, head_revision

DB_URL_ENV = "FLOE_MONITORING_DB_URL"
DB_FILE_NAME = "floe_monitoring.db"
SUPPORTED_DIALECTS = ("sqlite", "postgresql")

# Key of the PostgreSQL advisory lock held while migrating ("floe" in ASCII).
_PG_MIGRATION_LOCK_KEY = 0x666C6F65
_SQLITE_BUSY_TIMEOUT_MS = 30_000
_PG_CONNECT_TIMEOUT_SECONDS = 10
# Execution option naming the statement that opens a SQLite transaction (see `_install_sqlite_hooks`).
_SQLITE_BEGIN_OPTION = "floe_sqlite_begin"


class StoreError(RuntimeError):
    """The monitoring store failed; the message names the database URL with the password masked."""


def mask_url(url: str) -> str:
    """`url` with its password (and any `password=` query value) replaced by `***`."""
    try:
        shown = make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        shown = re.sub(r"(://[^/@:]*:)[^@/]*@", r"\1***@", url)
    return re.sub(r"(?i)(password=)[^&;\s]*", r"\1***", shown)


def normalize_db_url(url: str) -> str:
    """Pin plain `postgresql://` / `postgres://` URLs to psycopg2 (SQLAlchemy 2.1 would pick psycopg 3)."""
    url = url.strip()
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


def default_db_url(environ: Mapping[str, str] | None = None) -> str:
    """`$FLOE_MONITORING_DB_URL`, else a SQLite file in `$DAGSTER_HOME`, else in `./.floe/`.

    The directory of the SQLite file is created if missing; the returned path is absolute.
    """
    env = os.environ if environ is None else environ
    url = (env.get(DB_URL_ENV) or "").strip()
    if url:
        return normalize_db_url(url)
    home = (env.get("DAGSTER_HOME") or "").strip()
    directory = Path(home).expanduser() if home else Path(".floe")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the monitoring store directory {directory}: {exc.strerror}") from None
    return f"sqlite:///{(directory / DB_FILE_NAME).resolve()}"


def existing_db_url(environ: Mapping[str, str] | None = None) -> str:
    """The URL `default_db_url` names, creating nothing: for the commands that only read the store.

    A SQLite file that does not exist is a `StoreError` naming it (opening it would create an empty store
    and report "no data" about a store that was never there)."""
    env = os.environ if environ is None else environ
    url = (env.get(DB_URL_ENV) or "").strip()
    if url:
        url = normalize_db_url(url)
    else:
        home = (env.get("DAGSTER_HOME") or "").strip()
        directory = Path(home).expanduser() if home else Path(".floe")
        url = f"sqlite:///{(directory / DB_FILE_NAME).resolve()}"
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return url  # Database() reports the malformed URL, masked
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        if not Path(parsed.database).is_file():
            raise StoreError(
                f"no monitoring store at {mask_url(url)}: nothing was recorded there (set {DB_URL_ENV}, or "
                "DAGSTER_HOME to the Dagster home of the code location)"
            )
    return url


def new_id() -> str:
    """A new row id (a random UUID as text)."""
    return str(uuid.uuid4())


def _one_line(value: object) -> str:
    return " ".join(str(value).split())


def store_configured(environ: Mapping[str, str] | None = None) -> bool:
    """Whether a store already exists to read from, without creating one: `$FLOE_MONITORING_DB_URL` is set,
    or the default SQLite file exists in `$DAGSTER_HOME`."""
    env = os.environ if environ is None else environ
    if env.get(DB_URL_ENV):
        return True
    home = env.get("DAGSTER_HOME")
    if not home:
        return False
    return (Path(home) / DB_FILE_NAME).exists()


class Database:
    """The engine of one monitoring database, and the transactions every repository runs in; thread-safe."""

    url_display: str
    dialect: str

    def __init__(self, url: str, *, auto_migrate: bool = True, clock: Callable[[], datetime] = utcnow) -> None:
        self._url = normalize_db_url(url)
        self.url_display = mask_url(self._url)
        self._auto_migrate = auto_migrate
        self.clock = clock
        self._secrets: tuple[str, ...] = ()
        self._ready = False
        self._ready_lock = threading.Lock()
        self.engine = self._create_engine()
        self._upserts: dict[tuple[str, tuple[str, ...], tuple[str, ...]], Insert] = {}
        self.dialect = self.engine.dialect.name

    def __repr__(self) -> str:
        return f"Database({self.url_display!r})"

    # -- engine and transactions -------------------------------------------------------------------

    def _create_engine(self) -> Engine:
        try:
            parsed = make_url(self._url)
        except ArgumentError:
            raise StoreError(f"not a valid database URL: {self.url_display}") from None
        in_query = parsed.query.get("password", ())
        secrets = [parsed.password, *((in_query,) if isinstance(in_query, str) else in_query)]
        self._secrets = tuple(s for s in secrets if isinstance(s, str) and s)
        backend = parsed.get_backend_name()
        if backend not in SUPPORTED_DIALECTS:
            raise StoreError(f"unsupported database {backend!r} in {self.url_display}: use sqlite or postgresql")
        kwargs: dict[str, Any] = {}
        if backend == "postgresql":
            kwargs["pool_pre_ping"] = True
            if parsed.get_driver_name() == "psycopg2" and "connect_timeout" not in parsed.query:
                kwargs["connect_args"] = {"connect_timeout": _PG_CONNECT_TIMEOUT_SECONDS}
        try:
            engine = sa.create_engine(parsed, **kwargs)
        except (ArgumentError, NoSuchModuleError, ImportError) as exc:
            raise StoreError(f"cannot create a database engine for {self.url_display}: {self.scrub(exc)}") from None
        if backend == "sqlite":
            _install_sqlite_hooks(engine)
        return engine

    def scrub(self, value: object) -> str:
        """`value` as one line with every password of the URL replaced by `***`."""
        text = _one_line(value)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def error(self, what: str, exc: BaseException) -> StoreError:
        """A `StoreError` for `what` failing with `exc`, naming the masked URL."""
        detail: object = exc
        if isinstance(exc, DBAPIError) and exc.orig is not None:
            detail = exc.orig
        return StoreError(f"monitoring store {self.url_display}: {what} failed: {self.scrub(detail)}")

    @contextmanager
    def _connect(self, what: str, *, write: bool = False) -> Iterator[Connection]:
        """One transaction, committed on success; database errors become `StoreError`."""
        try:
            with self.engine.connect() as conn:
                if write:
                    # SQLite: take the write lock up front (waits busy_timeout) instead of failing
                    # on a lock upgrade; PostgreSQL ignores the option.
                    conn.execution_options(**{_SQLITE_BEGIN_OPTION: "BEGIN IMMEDIATE"})
                with conn.begin():
                    yield conn
        except DBAPIError as exc:
            raise self.error(what, exc) from None

    @contextmanager
    def transaction(self, what: str, *, write: bool = False) -> Iterator[Connection]:
        """One transaction on a migrated database, committed on success; `what` names it in errors.

        `write=True` takes SQLite's write lock up front (BEGIN IMMEDIATE), so a writer waits for another
        instead of failing on a lock upgrade.
        """
        self._ensure_ready()
        with self._connect(what, write=write) as conn:
            yield conn

    def _ensure_ready(self) -> None:
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            if self._auto_migrate and self.current_revision() != head_revision():
                self.upgrade()
            self._ready = True

    def insert(self, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
        """An INSERT in this dialect (with ON CONFLICT support)."""
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def upsert(self, table: sa.Table, keys: Sequence[str], update: Sequence[str]) -> Insert:
        """INSERT ... ON CONFLICT (`keys`) DO UPDATE the `update` columns (built once per shape: building one
        makes SQLAlchemy proxy every column of `excluded`, a millisecond per call, and statements are immutable).
        """
        shape = (table.name, tuple(keys), tuple(update))
        cached = self._upserts.get(shape)
        if cached is not None:
            return cached
        stmt = self.insert(table)
        built = stmt.on_conflict_do_update(
            index_elements=list(keys), set_={name: stmt.excluded[name] for name in update}
        )
        self._upserts[shape] = built
        return built

    def insert_missing(self, table: sa.Table, keys: Sequence[str]) -> Insert:
        """INSERT ... ON CONFLICT (`keys`) DO NOTHING."""
        return self.insert(table).on_conflict_do_nothing(index_elements=list(keys))

    # -- schema -----------------------------------------------------------------------------------

    def upgrade(self) -> None:
        """Run the Alembic migrations up to head (a no-op when already there)."""
        try:
            with self._connect("migrating the schema", write=True) as conn:
                if self.dialect == "postgresql":
                    # Serialise concurrent migrators; released at commit.
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK_KEY})
                config = alembic_config()
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        except CommandError as exc:
            raise StoreError(
                f"monitoring store {self.url_display}: migrating the schema failed: {self.scrub(exc)}"
            ) from None

    def current_revision(self) -> str | None:
        """The Alembic revision the database is at; None for an empty database."""
        with self._connect("reading the schema revision") as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def ping(self) -> None:
        """Raise `StoreError` unless the database answers `SELECT 1`."""
        with self._connect("connecting") as conn:
            conn.execute(sa.text("SELECT 1"))

    def dispose(self) -> None:
        """Close the pooled connections (the store reconnects if used again)."""
        self.engine.dispose()


def _install_sqlite_hooks(engine: Engine) -> None:
    """Foreign keys, WAL, busy timeout, and real transactions (DDL included) on SQLite.

    pysqlite's own transaction handling is switched off and SQLAlchemy emits BEGIN itself, so
    that migrations are transactional and writers can take the lock up front (BEGIN IMMEDIATE).
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()
        _enable_wal(dbapi_connection)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql(str(conn.get_execution_options().get(_SQLITE_BEGIN_OPTION, "BEGIN")))


def _enable_wal(dbapi_connection: Any) -> None:
    """Switch the database to WAL unless it already is.

    Switching needs an exclusive lock and SQLite may answer "database is locked" at once, without
    waiting busy_timeout, when several connections open a new database together: retry until the
    switch succeeds, another connection has made it, or the busy timeout has passed.
    """
    deadline = time.monotonic() + _SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        cursor = dbapi_connection.cursor()
        try:
            (mode,) = cursor.execute("PRAGMA journal_mode").fetchone()
            if str(mode).lower() in ("wal", "memory"):
                return
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        finally:
            cursor.close()
        time.sleep(0.02)
