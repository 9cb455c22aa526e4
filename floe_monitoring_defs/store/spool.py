"""The local durable spool: check records the store could not take, kept on disk until it answers again.

When recording a check fails (the store is down, unreachable, out of connections), the pipeline appends the
whole record `ResultsRepository.record_check` would have written (the check result, its violations with the
ids and detection times they were given, the table, the SLA update) to this file queue; the violations'
alerts are rebuilt from them when the record enters the store, exactly as a direct write builds them.

- **One file per record, written atomically**: a temp file in the spool directory, fsync, rename, fsync of the
  directory. A reader sees a whole record or none; a crash mid-write leaves a `.tmp-*` file that is ignored
  (and removed after an hour).
- **Order**: file names start with the wall-clock time in ns and a per-process sequence; the drain takes them
  in name order, and while any record waits, the pipeline spools new ones behind it rather than writing them
  directly, so that a "resolved" notice, the SLA status and the escalation history see the records in the
  order they were made.
- **Drain** (`Spool.drain`, at the start of every pipeline run and every dispatch pass): each record enters
  the store with its original ids and times (`record_check(violation_ids=, recorded_at=)`), then its file is
  removed. Idempotent: a record whose check result id is already stored (a drain that crashed between the
  insert and the removal) is not inserted again. One drainer per spool at a time (`flock` on `.drain.lock`;
  another process finding it held leaves the drain to the holder). The drain stops at the first record the
  store cannot take while the store does not answer `SELECT 1`; a record the store refuses although it
  answers (3 tries) is moved to `rejected/`, logged at ERROR and counted, so that one bad record never
  blocks the queue. Dedup and rate limits apply when the drained alerts are routed, as for any other.
- **Bounds** (`SpoolSettings`): `max_files` and `max_bytes` (the record's size is part of its file name, so
  the bound costs one directory listing, no stat) are checked when a record is spooled, and a record past
  them is not written; a record older than `max_age` when drained is not moved into the store. Either way
  the record is dropped, logged at ERROR with its contract, check type and violation ids, and counted
  (`floe_spool_dropped{reason=max_files|max_bytes|max_age|unreadable|rejected_by_store|spool_unwritable}`).
  Spooled and drained records are logged and counted too (`floe_spool_spooled`, `floe_spool_drained`).

The store does not import telemetry: the counters come in as a `SpoolCounters` (the pipeline passes
`monitor_metrics()`).
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import logging
import os
import re
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa

from floe_monitoring_defs.config import SpoolSettings
from floe_monitoring_defs.models import CheckResult, ContractViolationEvent, ensure_utc, utcnow
from floe_monitoring_defs.store import tables as t
from floe_monitoring_defs.store.database import StoreError
from floe_monitoring_defs.store.results import ResultsRepository, SLAUpdate

if TYPE_CHECKING:
    from floe_monitoring_defs.store import MonitoringStore

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
SUFFIX = ".json"
TMP_PREFIX = ".tmp-"
LOCK_FILE = ".drain.lock"
REJECTED_DIR = "rejected"
STORE_TRIES = 3  # a record the store refuses this many times while it answers is rejected
STALE_TMP_SECONDS = 3600
_NAME = re.compile(r"^(\d{20})-(\d+)-(\d+)-([0-9a-f]{8})-(\d+)\.json$")
_sequence = itertools.count()


class SpoolCounters(Protocol):
    """Where the spool counts what it did (`telemetry.metrics.MonitorMetrics` is one)."""

    def spooled(self, count: int) -> None: ...

    def drained(self, count: int) -> None: ...

    def dropped(self, count: int, reason: str) -> None: ...


class _NoCounters:
    def spooled(self, count: int) -> None:
        return None

    def drained(self, count: int) -> None:
        return None

    def dropped(self, count: int, reason: str) -> None:
        return None


@dataclass(frozen=True)
class SpooledRecord:
    """What `record_check` takes, as spooled: the result, its violations with their ids, table, SLA update."""

    spooled_at: datetime
    result: CheckResult
    violations: tuple[ContractViolationEvent, ...]
    violation_ids: tuple[str, ...]
    table_name: str | None = None
    sla: SLAUpdate | None = None
    alert_settings: dict[str, Any] | None = None  # the contract's own alert settings (optional in the format)

    def to_json(self) -> bytes:
        doc: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "spooled_at": ensure_utc(self.spooled_at).isoformat(),
            "result": self.result.model_dump(mode="json"),
            "violations": [v.model_dump(mode="json") for v in self.violations],
            "violation_ids": list(self.violation_ids),
            "table_name": self.table_name,
            "sla": None
            if self.sla is None
            else {
                "current_value": self.sla.current_value,
                "threshold": self.sla.threshold,
                "window_hours": self.sla.window_hours,
            },
        }
        if self.alert_settings is not None:
            doc["alert_settings"] = self.alert_settings
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> SpooledRecord:
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT_VERSION:
            raise ValueError(f"not a spool record of format {FORMAT_VERSION}")
        sla = doc.get("sla")
        violations = tuple(ContractViolationEvent.model_validate(v) for v in doc["violations"])
        ids = tuple(str(i) for i in doc["violation_ids"])
        if len(ids) != len(violations):
            raise ValueError("violation ids and violations differ in number")
        return cls(
            spooled_at=ensure_utc(datetime.fromisoformat(doc["spooled_at"])),
            result=CheckResult.model_validate(doc["result"]),
            violations=violations,
            violation_ids=ids,
            table_name=doc.get("table_name"),
            sla=None
            if sla is None
            else SLAUpdate(float(sla["current_value"]), float(sla["threshold"]), int(sla["window_hours"])),
            alert_settings=doc["alert_settings"] if isinstance(doc.get("alert_settings"), dict) else None,
        )

    def describe(self) -> str:
        """Names the record in log lines: contract, check type, result id and violation ids (no values)."""
        r = self.result
        ids = ", ".join(self.violation_ids) or "none"
        when = r.timestamp.isoformat()
        return f"{r.check_type.value} check of {r.contract_name} at {when} (result {r.id}; violations: {ids})"


@dataclass
class DrainReport:
    """What one drain did. `waiting`: records still in the spool after it; `stopped`: why it stopped early."""

    drained: int = 0  # records moved into the store
    already_stored: int = 0  # records found in the store already (an earlier drain crashed before removing them)
    dropped: int = 0
    waiting: int = 0
    busy: bool = False  # another process holds the drain lock
    stopped: str | None = None
    outbox_ids: list[str] = field(default_factory=list)  # the alerts the drained records put in the outbox

    def summary(self) -> str:
        text = f"{self.drained} spooled check records moved into the store"
        if self.already_stored:
            text += f" ({self.already_stored} were there already)"
        if self.dropped:
            text += f", {self.dropped} dropped"
        text += f", {self.waiting} waiting"
        if self.stopped:
            text += f" (stopped: {self.stopped})"
        return text


@dataclass(frozen=True)
class SpoolStats:
    """The spool now: records waiting, their bytes, and the oldest one's spool time (None when empty)."""

    records: int
    bytes: int
    oldest: datetime | None


def _record_name(entry: str) -> re.Match[str] | None:
    return _NAME.match(entry)


class Spool:
    """A file queue of check records in `settings.directory` (created on first use, mode 0700)."""

    def __init__(
        self,
        settings: SpoolSettings,
        *,
        counters: SpoolCounters | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.directory = settings.directory
        self.counters: SpoolCounters = counters if counters is not None else _NoCounters()
        self.clock = clock

    def __repr__(self) -> str:
        return f"Spool({str(self.directory)!r})"

    # -- what is there -----------------------------------------------------------------------------

    def _names(self) -> list[str]:
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if _record_name(n))

    def pending(self) -> bool:
        """Whether any record waits (one directory listing)."""
        return bool(self._names())

    def files(self) -> list[Path]:
        """The records waiting, oldest first."""
        return [self.directory / n for n in self._names()]

    def stats(self) -> SpoolStats:
        names = self._names()
        total = sum(int(m.group(5)) for n in names if (m := _record_name(n)))
        oldest = None
        if names and (m := _record_name(names[0])):
            oldest = datetime.fromtimestamp(int(m.group(1)) / 1e9, tz=UTC)
        return SpoolStats(len(names), total, oldest)

    # -- writing -----------------------------------------------------------------------------------

    def append(
        self,
        result: CheckResult,
        violations: Sequence[ContractViolationEvent],
        *,
        table_name: str | None = None,
        sla: SLAUpdate | None = None,
        violation_ids: Sequence[str] | None = None,
        alert_settings: Mapping[str, Any] | None = None,
    ) -> SpooledRecord | None:
        """Spool one check record; None when it could not be (past a bound, or the disk refused: dropped,
        logged at ERROR and counted). Violations without ids get new ones, kept when the record is drained."""
        ids = tuple(violation_ids) if violation_ids is not None else tuple(str(uuid.uuid4()) for _ in violations)
        settings = None if alert_settings is None else dict(alert_settings)
        record = SpooledRecord(self.clock(), result, tuple(violations), ids, table_name, sla, settings)
        data = record.to_json()
        names = self._names()
        held = sum(int(m.group(5)) for n in names if (m := _record_name(n)))
        if len(names) + 1 > self.settings.max_files:
            self._drop(record, "max_files", f"the spool holds {len(names)} records (max {self.settings.max_files})")
            return None
        if held + len(data) > self.settings.max_bytes:
            limit = self.settings.max_bytes
            self._drop(record, "max_bytes", f"the spool holds {held} bytes, this record {len(data)} (max {limit})")
            return None
        try:
            self._write(data)
        except OSError as exc:
            why = f"cannot write to the spool {self.directory}: {exc.strerror or exc}"
            self._drop(record, "spool_unwritable", why)
            return None
        self.counters.spooled(1)
        log.warning(
            "spooled the %s to %s (%d records waiting): it enters the store when the store answers",
            record.describe(),
            self.directory,
            len(names) + 1,
        )
        return record

    def _write(self, data: bytes) -> Path:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(_sequence)}-{uuid.uuid4().hex[:8]}-{len(data)}{SUFFIX}"
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o600)
            final = self.directory / name
            os.rename(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._sync_directory()
        return final

    def _sync_directory(self) -> None:
        """Make the rename (or removal) itself durable."""
        try:
            fd = os.open(self.directory, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    def _drop(self, record: SpooledRecord, reason: str, why: str) -> None:
        self.counters.dropped(1, reason)
        log.error("check record lost (%s): %s: %s", reason, why, record.describe())

    # -- draining ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _drain_lock(self) -> Iterator[bool]:
        """Hold the spool's drain lock if no other process does (yields False when it is held elsewhere)."""
        handle: IO[bytes] | None = None
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            handle = open(self.directory / LOCK_FILE, "ab")  # held for the whole drain
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if handle is not None:
                handle.close()
            yield False
            return
        except OSError as exc:
            if handle is not None:
                handle.close()
            log.error("cannot lock the spool %s to drain it: %s", self.directory, exc.strerror or exc)
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()

    def drain(
        self, store: MonitoringStore, *, limit: int | None = None, budget_seconds: float | None = None
    ) -> DrainReport:
        """Move the spooled records into `store`, oldest first; never raises.

        Stops when the store does not answer (the records stay, in order), after `limit` records, or once
        `budget_seconds` have passed (at least one record is always tried, so a drain always makes progress)."""
        report = DrainReport()
        if not self.pending():
            return report
        try:
            with self._drain_lock() as locked:
                if not locked:
                    report.busy = True
                else:
                    deadline = None if budget_seconds is None else time.monotonic() + budget_seconds
                    self._drain_locked(store, report, limit, deadline)
        except Exception as exc:  # a drain must never take its caller down; what is left waits for the next one
            report.stopped = f"{type(exc).__name__}: {exc}"
            log.error("draining the spool %s failed: %s", self.directory, report.stopped)
        report.waiting = len(self._names())
        if report.drained or report.already_stored:
            self.counters.drained(report.drained)
            log.info("spool %s: %s", self.directory, report.summary())
        elif report.stopped and report.waiting:
            log.warning("spool %s: %s", self.directory, report.summary())
        return report

    def _drain_locked(
        self, store: MonitoringStore, report: DrainReport, limit: int | None, deadline: float | None
    ) -> None:
        self._remove_stale_temp_files()
        results = store.results
        done = 0
        seen: set[str] = set()
        while True:  # records spooled meanwhile (by this or another process) are taken in the next pass
            names = [n for n in self._names() if n not in seen]
            if not names:
                return
            for name in names:
                seen.add(name)  # a file that could not even be removed is not taken twice in one drain
                if limit is not None and done >= limit:
                    report.stopped = f"limit of {limit} records"
                    return
                if deadline is not None and done and time.monotonic() >= deadline:
                    report.stopped = "time budget spent; the rest is drained next time"
                    return
                path = self.directory / name
                outcome = self._drain_one(store, results, path, report)
                if outcome == "stop":
                    return
                done += 1

    def _drain_one(self, store: MonitoringStore, results: ResultsRepository, path: Path, report: DrainReport) -> str:
        try:
            record = SpooledRecord.from_json(path.read_bytes())
        except FileNotFoundError:
            return "next"  # taken by a drainer that did not use the lock (should not happen), or removed by hand
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self._reject(path, "unreadable", f"{type(exc).__name__}: {str(exc)[:200]}")
            report.dropped += 1
            return "next"
        if self.clock() - record.spooled_at > timedelta(seconds=self.settings.max_age_seconds):
            self._drop(record, "max_age", f"spooled at {record.spooled_at.isoformat()}, past the spool's max age")
            self._remove(path)
            report.dropped += 1
            return "next"
        for attempt in range(1, STORE_TRIES + 1):
            try:
                if self._stored(store, record.result.id):
                    report.already_stored += 1
                else:
                    recorded = results.record_check(
                        record.result,
                        record.violations,
                        table_name=record.table_name,
                        sla=record.sla,
                        violation_ids=record.violation_ids,
                        recorded_at=record.spooled_at,
                        alert_settings=record.alert_settings,
                    )
                    report.drained += 1
                    report.outbox_ids += list(recorded.outbox_ids)
                self._remove(path)
                return "next"
            except StoreError as exc:
                if not self._answers(store):
                    report.stopped = f"the store does not answer: {exc}"
                    return "stop"
                if attempt == STORE_TRIES:
                    self._reject(path, "rejected_by_store", str(exc), record)
                    report.dropped += 1
            except Exception as exc:  # the record cannot be written (a bug, a model change): set it aside
                self._reject(path, "rejected_by_store", f"{type(exc).__name__}: {str(exc)[:200]}", record)
                report.dropped += 1
                return "next"
        return "next"

    @staticmethod
    def _stored(store: MonitoringStore, result_id: str) -> bool:
        c = t.contract_check_results.c
        with store.db.transaction("looking up a spooled check result") as conn:
            return conn.execute(sa.select(c.id).where(c.id == result_id)).first() is not None

    @staticmethod
    def _answers(store: MonitoringStore) -> bool:
        try:
            store.db.ping()
        except StoreError:
            return False
        return True

    def _remove(self, path: Path) -> None:
        # No directory fsync: a removal lost in a crash leaves a record that is already stored, which the next
        # drain recognises and removes again (idempotent), so durability is not worth an fsync per record here.
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    def _reject(self, path: Path, reason: str, why: str, record: SpooledRecord | None = None) -> None:
        """Set a record aside in `rejected/` (kept for inspection, never retried), logged and counted."""
        rejected = self.directory / REJECTED_DIR
        try:
            rejected.mkdir(mode=0o700, exist_ok=True)
            os.rename(path, rejected / path.name)
        except OSError:
            self._remove(path)
        self.counters.dropped(1, reason)
        what = record.describe() if record is not None else f"record {path.name}"
        log.error("check record lost (%s), set aside in %s: %s: %s", reason, rejected, why, what)

    def _remove_stale_temp_files(self) -> None:
        cutoff = time.time() - STALE_TMP_SECONDS
        try:
            entries = list(os.scandir(self.directory))
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith(TMP_PREFIX):
                with contextlib.suppress(OSError):
                    if entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)
