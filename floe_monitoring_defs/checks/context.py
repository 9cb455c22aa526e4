"""Root-cause context of a violation (FR-047): what changed in the table, and how this check has been behaving.

Built once per failing check (`ContextBuilder.build`), attached to each of its violations as compact JSON under
`metadata["floe_context"]` (`CONTEXT_KEY`), and from there carried to the store, the channels, the check's Dagster
metadata and the `floe_context` OpenLineage facet. Its parts, each from metadata or the event log only:

- `history` (the table, Iceberg metadata only, no data file): the snapshots on the current ancestry since the last
  passing check of this kind (at most `max_snapshots`), each with its id, commit time, operation, schema id and the
  summary's record/file counts and writer ids (`engine-name`, `app-id`, `spark.app.id`, ...; other summary keys are
  left out: a writer may put anything there); the last data-changing snapshot (what a stale table was last fed);
  for schema drift, when the table's schema became the current one (walking the metadata log) and the first
  snapshot written with it;
- `pattern` (the store): when the current failing episode began, failures of this check in the last 24 h and
  7 days (this one included), the last pass, status changes in 24 h and whether the check is flapping;
- whatever a `ContextProvider` adds (the Dagster adapter: pipeline runs that wrote the asset, upstream status).

Every part runs in its own daemon thread and the check waits at most `budget_ms` for all of them: a part that is
not ready (or fails) is left out and named in `notes`, so a slow catalog, store or event log never holds the check
back for longer, and an abandoned thread never blocks the process's exit. The JSON is bounded (`max_bytes`):
the oldest snapshots, then runs, are dropped first, and `truncated` says so. No column value is ever included.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from pyiceberg.serializers import FromInputFile
from pyiceberg.table import Table
from pyiceberg.table.snapshots import Operation, Snapshot, ancestors_of

from floe_monitoring_defs.config import ContextConfig
from floe_monitoring_defs.contracts.model import MonitoredContract, MonitoredTable
from floe_monitoring_defs.models import CheckStatus, ViolationType, ensure_utc
from floe_monitoring_defs.models.context import CONTEXT_KEY, CONTEXT_VERSION, parse_context
from floe_monitoring_defs.sources.iceberg import snapshot_time
from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_defs.store.results import CheckHistory

log = logging.getLogger(__name__)

__all__ = ["CONTEXT_KEY", "ContextBuilder", "ContextProvider", "bounded", "parse_context"]

# The snapshot summary keys a context repeats: counts, and the ids writers set to say who wrote (Spark, Flink,
# Trino, pyiceberg, ...). Anything else a writer put in the summary (custom properties) is left out.
SUMMARY_COUNTS = (
    "added-records",
    "deleted-records",
    "added-data-files",
    "deleted-data-files",
    "added-delete-files",
    "removed-delete-files",
    "total-records",
    "total-data-files",
)
SUMMARY_WRITER = ("engine-name", "engine-version", "app-id", "spark.app.id", "flink.job-id", "trino_query_id")
WRITER_VALUE_MAX = 120
METADATA_FILES_MAX = 20  # previous metadata files read to date a schema change (each is one small JSON read)


class ContextProvider(Protocol):
    """A part of the context the core cannot read itself (the Dagster adapter's pipeline runs and upstream status).

    `parts` returns the keys to add (e.g. {"runs": [...], "upstream": [...]}) of plain JSON values; it runs in its
    own thread within the budget, and an exception leaves its keys out with a note."""

    name: str

    def parts(self, contract: MonitoredContract, table: MonitoredTable, check_type: str) -> Mapping[str, Any]: ...


class RecentTables(Protocol):
    """A source that remembers the tables it loaded (`IcebergSource.recent_table`)."""

    def recent_table(self, ref: Any, loaded_after: float) -> Any: ...


def pattern_part(history: CheckHistory, status: CheckStatus, now: datetime, flapping_changes: int) -> dict[str, Any]:
    """The `pattern` part: the stored history with the current result counted in."""
    failing = status in (CheckStatus.FAIL, CheckStatus.ERROR)
    statuses = [*history.statuses_24h, status.value]
    changes = sum(1 for a, b in itertools.pairwise(statuses) if a != b)
    started = history.episode_started if history.episode_started is not None else now
    return {
        "episode_started_at": iso(started) if failing else None,
        "failures_24h": history.failures_24h + (status is CheckStatus.FAIL),
        "failures_7d": history.failures_7d + (status is CheckStatus.FAIL),
        "last_pass_at": iso(history.last_pass) if history.last_pass is not None else None,
        "status_changes_24h": changes,
        "flapping": changes >= flapping_changes,
    }


def iso(value: datetime) -> str:
    return ensure_utc(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _count(value: str | None) -> int | str | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None  # a count that is not a number says nothing


def snapshot_entry(snap: Snapshot) -> dict[str, Any]:
    """One snapshot as the context lists it: id (text: 64-bit), commit time, operation, schema id, counts, writer."""
    summary = snap.summary
    entry: dict[str, Any] = {
        "snapshot_id": str(snap.snapshot_id),
        "committed_at": iso(snapshot_time(snap.timestamp_ms)),
        "operation": summary.operation.value if summary is not None else None,
        "schema_id": snap.schema_id,
    }
    if summary is not None:
        props = summary.additional_properties
        for k in SUMMARY_COUNTS:
            if (n := _count(props.get(k))) is not None:
                entry[k.replace("-", "_")] = n
        writer = {k: str(props[k])[:WRITER_VALUE_MAX] for k in SUMMARY_WRITER if props.get(k)}
        if writer:
            entry["writer"] = writer
    return entry


def _is_data_change(snap: Snapshot) -> bool:
    return snap.summary is None or snap.summary.operation != Operation.REPLACE


def schema_change(table: Table, ancestry: Sequence[Snapshot]) -> dict[str, Any]:
    """When the table's schema became the current one: the metadata commit that set it (from the metadata log,
    reading at most `METADATA_FILES_MAX` previous metadata files), the snapshot current then, and the first
    snapshot written with the schema (None while no write used it)."""
    meta = table.metadata
    current = meta.current_schema_id
    out: dict[str, Any] = {"schema_id": current, "previous_schema_id": None, "changed_at": None}
    out["snapshot_id_at_change"] = None
    first: Snapshot | None = None
    for snap in ancestry:  # newest first: the oldest of the newest run written with the current schema
        if snap.schema_id != current:
            if out["previous_schema_id"] is None and snap.schema_id is not None:
                out["previous_schema_id"] = snap.schema_id
            break
        first = snap
    out["first_snapshot"] = snapshot_entry(first) if first is not None else None
    # Walk the metadata log back (newest first) to the oldest commit in the current schema's run.
    changed_ms = meta.last_updated_ms
    at_change = meta.current_snapshot_id
    for entry in list(reversed(meta.metadata_log))[:METADATA_FILES_MAX]:
        try:
            older = FromInputFile.table_metadata(table.io.new_input(entry.metadata_file))
        except Exception as exc:  # expired or unreadable: the walk stops, what it found stands
            log.debug("cannot read metadata file for the context (%s)", type(exc).__name__)
            break
        if older.current_schema_id != current:
            out["previous_schema_id"] = older.current_schema_id
            break
        changed_ms, at_change = entry.timestamp_ms, older.current_snapshot_id
    else:
        if len(meta.metadata_log) > METADATA_FILES_MAX:
            out["changed_at_is_lower_bound"] = True  # the walk stopped before the change: it is at least this old
    out["changed_at"] = iso(snapshot_time(changed_ms))
    out["snapshot_id_at_change"] = str(at_change) if at_change is not None else None
    return out


def history_part(table: Table, check_type: str, max_snapshots: int) -> dict[str, Any]:
    """The `history` part before it is cut to the snapshots since the last pass (`since_last_pass`)."""
    current = table.current_snapshot()
    ancestry: list[Snapshot] = []
    if current is not None:
        for snap in ancestors_of(current, table.metadata):
            ancestry.append(snap)
            if len(ancestry) > max_snapshots:
                break
    out: dict[str, Any] = {
        "current_snapshot_id": str(current.snapshot_id) if current is not None else None,
        "current_schema_id": table.metadata.current_schema_id,
        "snapshots": [snapshot_entry(s) for s in ancestry[:max_snapshots]],
        "more_snapshots": len(ancestry) > max_snapshots,
    }
    last_data = next((s for s in ancestry if _is_data_change(s)), None)
    if last_data is None and current is not None:  # beyond the bound: keep walking (metadata only, cheap)
        last_data = next((s for s in ancestors_of(current, table.metadata) if _is_data_change(s)), None)
    out["last_data_change"] = snapshot_entry(last_data) if last_data is not None else None
    if check_type == ViolationType.SCHEMA_DRIFT.value:
        out["schema_change"] = schema_change(table, ancestry)
    return out


def since_last_pass(history: dict[str, Any], last_pass: datetime | None) -> dict[str, Any]:
    """`history` keeping only the snapshots committed after the last pass (all of them when none is known)."""
    if last_pass is None:
        return {**history, "since": None}
    cut = iso(last_pass)
    kept = [s for s in history["snapshots"] if s["committed_at"] > cut]  # same ISO format: text order is time order
    more = history["more_snapshots"] and len(kept) == len(history["snapshots"])
    return {**history, "since": cut, "snapshots": kept, "more_snapshots": more}


def compact(context: Mapping[str, Any]) -> str:
    return json.dumps(context, separators=(",", ":"), sort_keys=False, default=str)


def bounded(context: dict[str, Any], max_bytes: int) -> str:
    """The context as compact JSON of at most `max_bytes` (UTF-8): oldest snapshots first, then runs and upstream
    entries from the end, then whole parts, are dropped until it fits; `truncated` says so."""
    text = compact(context)
    if len(text.encode()) <= max_bytes:
        return text
    ctx = json.loads(text)
    ctx["truncated"] = True
    lists = [("history", "snapshots"), (None, "runs"), (None, "upstream")]
    for parent, key in lists:
        holder = ctx.get(parent) if parent else ctx
        while isinstance(holder, dict) and isinstance(holder.get(key), list) and holder[key]:
            holder[key].pop()  # snapshots are newest first: the oldest goes first
            if len(compact(ctx).encode()) <= max_bytes:
                return compact(ctx)
    for part in ("upstream", "runs", "history", "pattern"):
        if ctx.pop(part, None) is not None:
            ctx.setdefault("notes", []).append(f"{part}: left out (over {max_bytes} bytes)")
            if len(compact(ctx).encode()) <= max_bytes:
                return compact(ctx)
    return compact({"version": CONTEXT_VERSION, "truncated": True, "notes": ["context over its size bound"]})


class _Part:
    """One part computed in a daemon thread (abandoned, not joined, past the budget)."""

    def __init__(self, name: str, work: Callable[[], Any], *, inline: bool = False) -> None:
        self.name = name
        self.value: Any = None
        self.error: str | None = None
        self.done = threading.Event()
        self._work = work
        if inline:  # in-memory work (no I/O): a thread would only add its start and a GIL hand-over
            self._run()
        else:
            threading.Thread(target=self._run, name=f"floe-context-{name}", daemon=True).start()

    def _run(self) -> None:
        try:
            self.value = self._work()
        except Exception as exc:  # reported as a note; the other parts stand
            self.error = f"{type(exc).__name__}: {str(exc)[:160]}"
        finally:
            self.done.set()


class ContextBuilder:
    """Builds the context of a failing check within the budget (see the module docstring)."""

    def __init__(
        self,
        source: Any,
        store: MonitoringStore | None,
        settings: ContextConfig,
        clock: Callable[[], datetime],
        providers: Sequence[ContextProvider] = (),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.store = store
        self.settings = settings
        self.clock = clock
        self.providers = list(providers)
        self._monotonic = monotonic

    def _table(self, table: MonitoredTable, check_started: float) -> Table:
        recent = getattr(self.source, "recent_table", None)
        loaded = recent(table.ref, check_started) if callable(recent) else None
        if loaded is None:
            loaded = self.source.load_table(table.ref)
        if not isinstance(loaded, Table):
            raise TypeError("the table source gives no Iceberg table")
        return loaded

    def build(
        self,
        check_type: str,
        contract: MonitoredContract,
        table: MonitoredTable,
        status: CheckStatus,
        check_started: float,
        settings: ContextConfig | None = None,
    ) -> dict[str, Any]:
        """The context of one check (whose table reads began at `check_started`, time.monotonic), within budget;
        `settings`: the contract's own (its overrides merged), else the builder's."""
        begun = self._monotonic()
        now = self.clock()
        cfg = settings or self.settings
        parts: list[_Part] = []
        if self.store is not None:  # started first: it waits on the store while the rest runs
            store = self.store
            parts.append(
                _Part(
                    "pattern",
                    lambda: store.results.check_history(contract.name, check_type, table.ref.identifier, now),
                )
            )
        for provider in self.providers:
            parts.append(_Part(provider.name, lambda p=provider: p.parts(contract, table, check_type)))  # type: ignore[misc]
        recent = getattr(self.source, "recent_table", None)
        loaded = recent(table.ref, check_started) if callable(recent) else None
        # The check's own table, in memory: walked inline, unless drift's metadata-log walk reads files.
        inline = isinstance(loaded, Table) and check_type != ViolationType.SCHEMA_DRIFT.value
        parts.append(
            _Part(
                "history",
                lambda: history_part(
                    loaded if isinstance(loaded, Table) else self._table(table, check_started),
                    check_type,
                    cfg.max_snapshots,
                ),
                inline=inline,
            )
        )
        deadline = begun + cfg.budget_ms / 1000.0
        notes: list[str] = [] if self.store is not None else ["pattern: no store"]
        for part in parts:
            if not part.done.wait(max(0.0, deadline - self._monotonic())):
                notes.append(f"{part.name}: not ready within the {cfg.budget_ms} ms budget; left out")
            elif part.error is not None:
                notes.append(f"{part.name}: unavailable ({part.error})")
        ready = {p.name: p.value for p in parts if p.done.is_set() and p.error is None}
        context: dict[str, Any] = {
            "version": CONTEXT_VERSION,
            "check_type": check_type,
            "table": table.ref.identifier,
            "generated_at": iso(now),
        }
        history: CheckHistory | None = ready.get("pattern")
        if "history" in ready:
            context["history"] = since_last_pass(ready["history"], history.last_pass if history else None)
        if history is not None:
            context["pattern"] = pattern_part(history, status, now, cfg.flapping_changes)
        for provider in self.providers:
            value = ready.get(provider.name)
            if isinstance(value, Mapping):
                context.update({k: v for k, v in value.items() if k not in context})
        if notes:
            context["notes"] = notes
        context["elapsed_ms"] = round((self._monotonic() - begun) * 1000.0, 1)
        return context
