"""The alert outbox, per-channel deliveries, dedup state and incidents.

Every decision (routed, suppressed, delivered, retried) is a row, so several processes or replicas
agree. Routing decides a page of entries in one write transaction under per-contract locks
(`route_page`: PostgreSQL advisory locks; SQLite's single writer), so each entry is decided exactly
once. Deliveries are claimed with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite has one
writer at a time), and a claim that is never acknowledged (a crash after sending) expires and is
retried with the same alert ids: at-least-once delivery with a stable idempotency key.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from floe_monitoring_defs.models import ContractViolationEvent, ViolationSeverity
from floe_monitoring_defs.store import tables as t
from floe_monitoring_defs.store.database import Database

PRIORITY = {
    ViolationSeverity.CRITICAL: "P1",
    ViolationSeverity.ERROR: "P2",
    ViolationSeverity.WARNING: "P3",
    ViolationSeverity.INFO: "P4",
}


@dataclass(frozen=True)
class OutboxEntry:
    id: str
    kind: str
    event: ContractViolationEvent
    created_at: datetime
    state: str
    reason: str | None
    settings: Mapping[str, Any] | None = None  # the contract's own alert settings, when it has any (0006)


@dataclass(frozen=True)
class Delivery:
    id: str
    outbox_id: str
    channel: str
    attempts: int
    entry: OutboxEntry


@dataclass(frozen=True)
class DedupState:
    last_alerted_at: datetime
    last_severity: ViolationSeverity | None
    count: int  # alerts sent in the current episode
    window_start: datetime  # when the current episode's first alert went out
    last_seen_at: datetime


@dataclass(frozen=True)
class Attempt:
    delivery_id: str
    channel: str
    ok: bool
    status: str
    error: str | None
    latency_ms: float
    retry_at: datetime | None = None  # a failed attempt's next try, when not the one given to record_attempts


@dataclass(frozen=True)
class Incident:
    id: str
    contract_name: str
    violation_type: str
    status: str
    priority: str
    severity: str
    violation_count: int
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    last_violation_id: str | None = None


def _entry(row: sa.Row[tuple[object, ...]]) -> OutboxEntry:
    m = row._mapping
    return OutboxEntry(
        id=str(uuid.UUID(str(m["id"]))),
        kind=m["kind"],
        event=ContractViolationEvent.model_validate(m["event"]),
        created_at=m["created_at"],
        state=m["state"],
        reason=m["reason"],
        settings=m["alert_settings"],
    )


@dataclass(frozen=True)
class NewAlert:
    """An alert to enqueue: its id (a violation's alerts carry the violation id), kind and event."""

    id: str
    kind: str
    event: ContractViolationEvent
    # The contract's own alert settings (`AlertSettings` as JSON), resolved when its check wrote the alert; None:
    # the global `alerts` config of whichever pass routes it decides (migration 0006).
    settings: Mapping[str, Any] | None = None


def _pending_row(alert: NewAlert, now: datetime) -> dict[str, object]:
    event = alert.event
    return {
        "id": alert.id,
        "kind": alert.kind,
        "contract_name": event.contract_name,
        "violation_type": event.violation_type.value,
        "severity": event.severity.value,
        "event": event.model_dump(mode="json"),
        "created_at": now,
        "state": "pending",
        "reason": None,
        "routed_at": None,
        "alert_settings": None if alert.settings is None else dict(alert.settings),
    }


# -- routing pages ---------------------------------------------------------------------------

# PostgreSQL advisory-lock namespace of routing ("flor"; the two-key form never meets the migration lock).
ROUTING_LOCK_NAMESPACE = 0x666C6F72
# At most this many contracts (advisory locks) per routing page: PostgreSQL's shared lock table holds about
# max_locks_per_transaction x max_connections locks for the whole cluster (6,400 by default).
MAX_CONTRACTS_PER_PAGE = 256
# How long a targeted pass (a check's eager dispatch) retries the lock of a contract another pass holds.
TARGETED_LOCK_WAIT_SECONDS = 2.0

DedupKey = tuple[str, str]  # (contract, violation type)


def contract_lock_key(contract_name: str) -> int:
    """A contract's advisory-lock key: a stable signed 32-bit hash of its name (a collision only makes two
    contracts wait for each other)."""
    return int.from_bytes(hashlib.blake2b(contract_name.encode(), digest_size=4).digest(), "big", signed=True)


@dataclass(frozen=True)
class PendingAlert:
    """A pending entry as routing sees it: the columns it decides on and its event's time (not the whole stored
    event). The entries of one check run (same contract, type, kind and event time) are one occurrence."""

    id: str
    kind: str
    contract_name: str
    violation_type: str
    severity: ViolationSeverity
    created_at: datetime
    event_time: str  # the event's `timestamp` as stored (ISO 8601): the check run's time
    settings: Mapping[str, Any] | None = None  # the contract's own alert settings (JSON); None: the global ones

    @property
    def occurrence(self) -> tuple[str, str, str, str]:
        return self.contract_name, self.violation_type, self.kind, self.event_time


# The event's time, read out of the stored JSON by the database (->> on PostgreSQL, json_extract on SQLite).
_EVENT_TIME = t.alert_outbox.c.event["timestamp"].as_string()
_PENDING_COLUMNS = (
    t.alert_outbox.c.id,
    t.alert_outbox.c.kind,
    t.alert_outbox.c.contract_name,
    t.alert_outbox.c.violation_type,
    t.alert_outbox.c.severity,
    t.alert_outbox.c.created_at,
    _EVENT_TIME.label("event_time"),
    t.alert_outbox.c.alert_settings,
)


def _pending_alert(row: sa.Row[*tuple[Any, ...]]) -> PendingAlert:
    m = row._mapping
    return PendingAlert(
        str(m["id"]),  # already canonical (sa.Uuid(as_uuid=False) on both dialects)
        m["kind"],
        m["contract_name"],
        m["violation_type"],
        ViolationSeverity(m["severity"]),
        m["created_at"],
        str(m["event_time"]),
        m["alert_settings"],
    )


@dataclass(frozen=True)
class RoutingPage:
    """What a routing pass read under its locks: pending entries (oldest first, whole occurrences) and the
    state of their contracts that every decision depends on."""

    now: datetime
    entries: tuple[PendingAlert, ...]
    dedup: Mapping[DedupKey, DedupState]
    routed_occurrences: Mapping[str, int]  # per contract: occurrences routed since now - its rate-limit window
    open_incidents: Mapping[DedupKey, Incident]
    skipped: frozenset[str]  # contracts another pass holds: left to it
    complete: frozenset[str]  # contracts whose every pending entry is in this page


@dataclass(frozen=True)
class RoutingOutcome:
    """The decision about one entry: `routed` (to `channels`), `suppressed` (with `reason`) or `no_route`."""

    entry_id: str
    state: str
    reason: str | None = None
    channels: tuple[str, ...] = ()


@dataclass(frozen=True)
class IncidentChange:
    """An incident after a page: opened (`new`) or updated with `added` violations, maybe resolved."""

    id: str
    contract_name: str
    violation_type: str
    new: bool
    added: int
    severity: ViolationSeverity  # after the page; never lower than before
    last_violation_id: str | None
    resolved: bool


@dataclass(frozen=True)
class RoutingDecision:
    outcomes: Sequence[RoutingOutcome]
    dedup: Mapping[DedupKey, DedupState | None]  # final state of each key the page changed (None: episode ended)
    incidents: Sequence[IncidentChange]


@dataclass(frozen=True)
class RoutedPage:
    page: RoutingPage
    decision: RoutingDecision


class RoutingConflict(RuntimeError):
    """An entry of the page was no longer pending when the decision was written (decided by a pass that took
    no routing lock, e.g. an older floe during a rolling upgrade): the page was rolled back, nothing written."""


@dataclass(frozen=True)
class OutboxStatus:
    """The outbox at a glance (`floe alerts status`)."""

    now: datetime
    entries: Mapping[str, int]  # state (suppressed/<reason>) -> entries
    deliveries: Mapping[str, Mapping[str, int]]  # channel -> {delivered, pending, retrying} -> deliveries
    oldest_pending_at: datetime | None  # oldest entry not routed yet
    oldest_undelivered_at: datetime | None  # oldest delivery not acknowledged yet
    open_incidents: tuple[Incident, ...]


def _dedup(row: sa.Row[tuple[object, ...]]) -> DedupState:
    m = row._mapping
    sev = ViolationSeverity(m["last_severity"]) if m["last_severity"] else None
    return DedupState(
        m["last_alerted_at"], sev, m["alert_count_window"], m["window_start"], m["last_seen_at"] or m["last_alerted_at"]
    )


class OutboxRepository:
    """Outbox operations: enqueue, route, claim and acknowledge deliveries, dedup state and incidents."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # -- enqueue -------------------------------------------------------------------------------

    def add(self, conn: Connection, alerts: Sequence[NewAlert], now: datetime) -> list[str]:
        """Insert pending alerts inside the caller's transaction (e.g. with the check result that found
        them); returns their ids."""
        if alerts:
            conn.execute(t.alert_outbox.insert(), [_pending_row(a, now) for a in alerts])
        return [a.id for a in alerts]

    def add_many(self, conn: Connection, alerts: Sequence[tuple[NewAlert, datetime]]) -> list[str]:
        """`add` for alerts of several checks, each with its own creation time, in one multi-row INSERT."""
        if alerts:
            conn.execute(t.alert_outbox.insert(), [_pending_row(a, now) for a, now in alerts])
        return [a.id for a, _ in alerts]

    def enqueue(self, kind: str, event: ContractViolationEvent, now: datetime, alert_id: str | None = None) -> str:
        """Add an alert that no check result carries (an operational alert); idempotent per alert id."""
        alert = NewAlert(alert_id or str(uuid.uuid4()), kind, event)
        with self._db.transaction("enqueuing an alert", write=True) as conn:
            conn.execute(self._db.insert_missing(t.alert_outbox, ["id"]), _pending_row(alert, now))
        return alert.id

    # -- routing -------------------------------------------------------------------------------
    #
    # A routing pass decides one page of pending entries in ONE write transaction. On PostgreSQL it first
    # takes a transaction-scoped advisory lock per contract of the page (`pg_try_advisory_xact_lock`; a
    # contract another pass holds is skipped and left to it), so everything one decision depends on (the
    # contract's dedup states, its rate-limit count, its open incidents) is read and written by one pass at
    # a time. On SQLite the transaction is BEGIN IMMEDIATE: SQLite's single writer serialises whole passes,
    # so no lock is needed. Every state change is also conditional (`WHERE state = 'pending'`): an entry
    # decided elsewhere makes the page roll back (`RoutingConflict`) instead of being decided twice.

    def route_page(
        self,
        now: datetime,
        decide: Callable[[RoutingPage], RoutingDecision],
        *,
        page_size: int,
        rate_window: timedelta,
        outbox_ids: Sequence[str] | None = None,
        exclude: Collection[str] = (),
        entry_rate_window: Callable[[PendingAlert], timedelta | None] | None = None,
    ) -> RoutedPage | None:
        """Claim a page of pending entries (oldest first, whole occurrences; only `outbox_ids` when given;
        not of the contracts in `exclude`), read what deciding them needs in one query each, let `decide`
        decide (pure: it runs inside the transaction), and write its decision with a few set-based
        statements. None when nothing is pending outside `exclude`.

        The rate limit counts each contract's routed occurrences over `rate_window`, or over the window
        `entry_rate_window` gives its newest entry of the page (the contract's own setting, carried by the entry)."""
        o = t.alert_outbox.c
        pending: list[sa.ColumnElement[bool]] = [o.state == "pending"]
        if outbox_ids is not None:
            pending.append(o.id.in_(list(outbox_ids)))
        with self._db.transaction("routing alerts", write=True) as conn:
            chosen = self._page_contracts(conn, pending, page_size, exclude)
            if not chosen:
                return None
            locked = self._lock_contracts(conn, chosen, wait=outbox_ids is not None)
            entries, full = self._page_entries(conn, pending, locked, page_size) if locked else ([], False)
            contracts = sorted({e.contract_name for e in entries})
            page = RoutingPage(
                now=now,
                entries=tuple(entries),
                dedup=self._dedup_states(conn, contracts),
                routed_occurrences=self._rate_counts(conn, entries, now, rate_window, entry_rate_window),
                open_incidents=self._open_incidents(conn, contracts),
                skipped=frozenset(chosen) - locked,
                # A page that was not cut at page_size read every pending entry of its locked contracts.
                complete=frozenset() if full else locked,
            )
            decision = decide(page) if entries else RoutingDecision((), {}, ())
            self._write_decision(conn, page, decision)
        return RoutedPage(page, decision)

    @staticmethod
    def _page_contracts(
        conn: Connection, pending: Sequence[sa.ColumnElement[bool]], page_size: int, exclude: Collection[str]
    ) -> list[str]:
        """The contracts of the oldest pending entries, enough to fill a page (at least one)."""
        o = t.alert_outbox.c
        q = (
            sa.select(o.contract_name, sa.func.count())
            .where(*pending)
            .group_by(o.contract_name)
            .order_by(sa.func.min(o.created_at), o.contract_name)
            .limit(MAX_CONTRACTS_PER_PAGE)
        )
        if exclude:
            q = q.where(o.contract_name.not_in(sorted(exclude)))
        chosen: list[str] = []
        total = 0
        for name, count in conn.execute(q):
            chosen.append(name)
            total += count
            if total >= page_size:
                break
        return chosen

    def _lock_contracts(self, conn: Connection, contracts: Sequence[str], *, wait: bool) -> frozenset[str]:
        """The contracts this pass may decide. PostgreSQL: those whose advisory lock it got (held until the
        transaction ends); a targeted pass (a check's eager dispatch) waits a little for the others, since a
        pass takes milliseconds, then leaves them to their holder. It never blocks on a lock, so passes
        cannot deadlock. SQLite: all (BEGIN IMMEDIATE already excludes every other writer)."""
        if self._db.dialect != "postgresql":
            return frozenset(contracts)
        keys = {name: contract_lock_key(name) for name in contracts}
        wanted = set(keys.values())
        held: set[int] = set()
        deadline = time.monotonic() + (TARGETED_LOCK_WAIT_SECONDS if wait else 0.0)
        try_lock = sa.text("SELECT k, pg_try_advisory_xact_lock(:ns, k) FROM unnest(CAST(:keys AS integer[])) AS k")
        while True:
            rows = conn.execute(try_lock, {"ns": ROUTING_LOCK_NAMESPACE, "keys": sorted(wanted - held)})
            held.update(int(k) for k, ok in rows if ok)
            if held == wanted or time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        return frozenset(name for name, key in keys.items() if key in held)

    @staticmethod
    def _page_entries(
        conn: Connection, pending: Sequence[sa.ColumnElement[bool]], contracts: Collection[str], page_size: int
    ) -> tuple[list[PendingAlert], bool]:
        """The oldest pending entries of `contracts`, at most `page_size` unless one occurrence is larger,
        never part of an occurrence (an occurrence's entries are enqueued together, so they sort together);
        and whether the page was cut."""
        o = t.alert_outbox.c
        q = (
            sa.select(*_PENDING_COLUMNS)
            .where(*pending, o.contract_name.in_(sorted(contracts)))
            .order_by(o.created_at, o.contract_name, o.violation_type, o.kind, _EVENT_TIME, o.id)
            .limit(page_size + 1)
        )
        rows = [_pending_alert(r) for r in conn.execute(q)]
        if len(rows) <= page_size:
            return rows, False
        cut = rows[page_size].occurrence
        kept = rows[:page_size]
        while kept and kept[-1].occurrence == cut:
            kept.pop()
        if not kept:  # one occurrence larger than a page is decided whole
            name, vtype, kind, when = cut
            whole = sa.select(*_PENDING_COLUMNS).where(
                *pending, o.contract_name == name, o.violation_type == vtype, o.kind == kind, _EVENT_TIME == when
            )
            kept = [_pending_alert(r) for r in conn.execute(whole.order_by(o.id))]
        return kept, True

    @staticmethod
    def _dedup_states(conn: Connection, contracts: Sequence[str]) -> dict[DedupKey, DedupState]:
        if not contracts:
            return {}
        c = t.alert_dedup_state.c
        rows = conn.execute(sa.select(t.alert_dedup_state).where(c.contract_name.in_(contracts)))
        return {(r._mapping["contract_name"], r._mapping["violation_type"]): _dedup(r) for r in rows}

    @classmethod
    def _rate_counts(
        cls,
        conn: Connection,
        entries: Sequence[PendingAlert],
        now: datetime,
        default: timedelta,
        entry_window: Callable[[PendingAlert], timedelta | None] | None,
    ) -> dict[str, int]:
        """`_routed_occurrences` of the page's contracts, one query per distinct window (a few at most)."""
        windows: dict[str, timedelta] = {}
        for entry in entries:  # oldest first: a contract's newest entry decides its window
            windows[entry.contract_name] = (entry_window(entry) if entry_window else None) or default
        by_window: dict[timedelta, list[str]] = defaultdict(list)
        for name, window in sorted(windows.items()):
            by_window[window].append(name)
        counts: dict[str, int] = {}
        for window, names in by_window.items():
            counts.update(cls._routed_occurrences(conn, names, now - window))
        return counts

    @staticmethod
    def _routed_occurrences(conn: Connection, contracts: Sequence[str], since: datetime) -> dict[str, int]:
        """Per contract, the alert occurrences routed since `since` (the entries of one check run count once),
        for the rate limit."""
        if not contracts:
            return {}
        o = t.alert_outbox.c
        occurrences = (
            sa.select(o.contract_name, o.violation_type, o.kind, _EVENT_TIME.label("event_time"))
            .distinct()
            .where(o.contract_name.in_(contracts), o.state == "routed", o.routed_at >= since, o.kind != "resolved")
            .subquery()
        )
        q = sa.select(occurrences.c.contract_name, sa.func.count()).group_by(occurrences.c.contract_name)
        return {name: int(n) for name, n in conn.execute(q)}

    @staticmethod
    def _open_incidents(conn: Connection, contracts: Sequence[str]) -> dict[DedupKey, Incident]:
        if not contracts:
            return {}
        i = t.incidents.c
        rows = conn.execute(sa.select(t.incidents).where(i.contract_name.in_(contracts), i.status == "open"))
        return {(r._mapping["contract_name"], r._mapping["violation_type"]): _incident(r) for r in rows}

    def _write_decision(self, conn: Connection, page: RoutingPage, decision: RoutingDecision) -> None:
        now = page.now
        o, c, i = t.alert_outbox.c, t.alert_dedup_state.c, t.incidents.c
        by_id = {e.id: e for e in page.entries}
        groups: dict[tuple[str, str | None], list[str]] = defaultdict(list)
        for out in decision.outcomes:
            if out.entry_id not in by_id:
                raise ValueError(f"routing decision for alert {out.entry_id}, which is not in the page")
            groups[(out.state, out.reason)].append(out.entry_id)
        changed = 0
        for (state, reason), ids in groups.items():
            result = conn.execute(
                sa.update(t.alert_outbox)
                .where(o.id.in_(ids), o.state == "pending")
                .values(state=state, reason=reason, routed_at=now if state == "routed" else None)
            )
            changed += result.rowcount
        if changed != len(decision.outcomes):
            raise RoutingConflict(
                f"{len(decision.outcomes) - changed} of {len(decision.outcomes)} alerts of the page were decided "
                "by another routing pass meanwhile"
            )
        deliveries = [
            {
                "id": str(uuid.uuid4()),
                "outbox_id": out.entry_id,
                "channel": channel,
                "contract_name": by_id[out.entry_id].contract_name,
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,  # last_error and delivered_at: NULL (left out, as binding them costs)
            }
            for out in decision.outcomes
            if out.state == "routed"
            for channel in out.channels
        ]
        # A plain INSERT: the conditional update above proved every routed entry was pending, and deliveries are
        # only ever created in the transaction that routes their entry, so none exists yet (the unique
        # constraint on outbox_id + channel stays the backstop). ON CONFLICT would double the cost.
        if deliveries:
            conn.execute(t.alert_deliveries.insert(), deliveries)
        ended = sorted(key for key, state in decision.dedup.items() if state is None)
        if ended:
            conn.execute(sa.delete(t.alert_dedup_state).where(sa.tuple_(c.contract_name, c.violation_type).in_(ended)))
        states = [
            {
                "contract_name": key[0],
                "violation_type": key[1],
                "last_alerted_at": s.last_alerted_at,
                "alert_count_window": s.count,
                "window_start": s.window_start,
                "last_severity": s.last_severity.value if s.last_severity is not None else None,
                "last_seen_at": s.last_seen_at,
            }
            for key, s in sorted(decision.dedup.items())
            if s is not None
        ]
        if states:
            columns = ["last_alerted_at", "alert_count_window", "window_start", "last_severity", "last_seen_at"]
            upsert = self._db.upsert(t.alert_dedup_state, ["contract_name", "violation_type"], columns)
            # RETURNING: only with it does SQLAlchemy batch an INSERT ... ON CONFLICT into multi-row statements
            # (without, psycopg2 sends one statement per row).
            conn.execute(upsert.returning(c.contract_name), states).all()
        # Existing incidents first: one resolved in this page must be closed before its successor opens
        # (one open incident per contract + type is a unique index).
        updates = [
            {
                "b_id": ch.id,
                "b_added": ch.added,
                "b_severity": ch.severity.value,
                "b_priority": PRIORITY[ch.severity],
                "b_last": ch.last_violation_id,
                "b_status": "resolved" if ch.resolved else "open",
                "b_resolved_at": now if ch.resolved else None,
                "b_now": now,
            }
            for ch in decision.incidents
            if not ch.new
        ]
        if updates:
            conn.execute(
                sa.update(t.incidents)
                .where(i.id == sa.bindparam("b_id", type_=i.id.type))
                .values(
                    violation_count=i.violation_count + sa.bindparam("b_added", type_=sa.Integer()),
                    severity=sa.bindparam("b_severity", type_=i.severity.type),
                    priority=sa.bindparam("b_priority", type_=i.priority.type),
                    last_violation_id=sa.bindparam("b_last", type_=i.last_violation_id.type),
                    status=sa.bindparam("b_status", type_=i.status.type),
                    resolved_at=sa.bindparam("b_resolved_at", type_=i.resolved_at.type),
                    updated_at=sa.bindparam("b_now", type_=i.updated_at.type),
                ),
                updates,
            )
        inserts = [
            {
                "id": ch.id,
                "contract_name": ch.contract_name,
                "violation_type": ch.violation_type,
                "status": "resolved" if ch.resolved else "open",
                "priority": PRIORITY[ch.severity],
                "severity": ch.severity.value,
                "title": f"{type_title(ch.violation_type)} violation on {ch.contract_name}",
                "violation_count": ch.added,
                "last_violation_id": ch.last_violation_id,
                "created_at": now,
                "updated_at": now,
                "resolved_at": now if ch.resolved else None,
            }
            for ch in decision.incidents
            if ch.new
        ]
        if inserts:
            conn.execute(t.incidents.insert(), inserts)

    # -- reads -----------------------------------------------------------------------------------

    def pending(self, ids: Sequence[str] | None = None, limit: int = 1000) -> list[OutboxEntry]:
        """Pending alerts, oldest first (only those of `ids` when given)."""
        c = t.alert_outbox.c
        q = sa.select(t.alert_outbox).where(c.state == "pending").order_by(c.created_at, c.id).limit(limit)
        if ids is not None:
            q = q.where(c.id.in_(list(ids)))
        with self._db.transaction("reading the alert outbox") as conn:
            return [_entry(r) for r in conn.execute(q)]

    def dedup_state(self, contract_name: str, violation_type: str) -> DedupState | None:
        c = t.alert_dedup_state.c
        q = sa.select(t.alert_dedup_state).where(c.contract_name == contract_name, c.violation_type == violation_type)
        with self._db.transaction("reading alert dedup state") as conn:
            row = conn.execute(q).first()
        return None if row is None else _dedup(row)

    def status(self, now: datetime) -> OutboxStatus:
        """What `floe alerts status` shows: entries by state (suppressed ones by reason), deliveries by channel
        and state, the oldest pending entry and undelivered delivery, the open incidents."""
        o, d, i = t.alert_outbox.c, t.alert_deliveries.c, t.incidents.c
        with self._db.transaction("reading the alert outbox status") as conn:
            entries: dict[str, int] = {}
            for state, reason, n in conn.execute(
                sa.select(o.state, o.reason, sa.func.count()).group_by(o.state, o.reason)
            ):
                label = f"{state}/{reason}" if reason else str(state)
                entries[label] = entries.get(label, 0) + int(n)
            oldest_pending = conn.execute(sa.select(sa.func.min(o.created_at)).where(o.state == "pending")).scalar()
            retrying = sa.case((sa.and_(d.state == "pending", d.attempts > 0), "retrying"), else_=d.state)
            deliveries: dict[str, dict[str, int]] = {}
            for channel, state, n in conn.execute(
                sa.select(d.channel, retrying, sa.func.count()).group_by(d.channel, retrying)
            ):
                deliveries.setdefault(str(channel), {})[str(state)] = int(n)
            oldest_undelivered = conn.execute(
                sa.select(sa.func.min(d.created_at)).where(d.state != "delivered")
            ).scalar()
            incidents = [
                _incident(r)
                for r in conn.execute(
                    sa.select(t.incidents).where(i.status == "open").order_by(i.priority, i.created_at)
                )
            ]
        return OutboxStatus(now, entries, deliveries, oldest_pending, oldest_undelivered, tuple(incidents))

    # -- delivery ------------------------------------------------------------------------------

    def claim_due(
        self, now: datetime, lease: timedelta, outbox_ids: Sequence[str] | None = None, groups: int = 200
    ) -> list[Delivery]:
        """Every due pending delivery of up to `groups` (channel, contract) groups, the group due longest first,
        leased until `now + lease` so that no other process sends them meanwhile.

        A group is claimed whole, so everything due for one contract and channel goes out as one batch: the due
        groups are read first, then all their due deliveries are claimed in the same transaction (SQLite: under
        the write lock, BEGIN IMMEDIATE, so claims are serial; PostgreSQL: `FOR UPDATE SKIP LOCKED`, so a row
        another replica is claiming is left to it, and once that claim commits the row is no longer due)."""
        d, o = t.alert_deliveries.c, t.alert_outbox.c
        due: list[sa.ColumnElement[bool]] = [d.state == "pending", d.next_attempt_at <= now]
        if outbox_ids is not None:
            due.append(d.outbox_id.in_(list(outbox_ids)))
        pick = (
            sa.select(d.channel, d.contract_name)
            .where(*due)
            .group_by(d.channel, d.contract_name)
            .order_by(sa.func.min(d.next_attempt_at), d.channel, d.contract_name)
            .limit(groups)
        )
        with self._db.transaction("claiming alert deliveries", write=True) as conn:
            keys = [(r[0], r[1]) for r in conn.execute(pick)]
            if not keys:
                return []
            q = (
                sa.select(
                    t.alert_deliveries,
                    o.kind,
                    o.event,
                    o.created_at.label("o_created"),
                    o.state.label("o_state"),
                    o.reason.label("o_reason"),
                )
                .join(t.alert_outbox, o.id == d.outbox_id)
                .where(*due, sa.tuple_(d.channel, d.contract_name).in_(keys))
                .order_by(d.channel, d.contract_name, o.created_at, d.id)
            )
            if self._db.dialect == "postgresql":
                q = q.with_for_update(skip_locked=True, of=t.alert_deliveries)
            rows = list(conn.execute(q))
            ids = [r._mapping["id"] for r in rows]
            for chunk in _chunks(ids):
                conn.execute(sa.update(t.alert_deliveries).where(d.id.in_(chunk)).values(next_attempt_at=now + lease))
        out = []
        for r in rows:
            m = r._mapping
            entry = OutboxEntry(
                str(uuid.UUID(str(m["outbox_id"]))),
                m["kind"],
                ContractViolationEvent.model_validate(m["event"]),
                m["o_created"],
                m["o_state"],
                m["o_reason"],
            )
            out.append(Delivery(str(uuid.UUID(str(m["id"]))), entry.id, m["channel"], m["attempts"], entry))
        return out

    def release_claims(self, delivery_ids: Sequence[str], due_at: datetime) -> None:
        """Give back claimed deliveries that were not attempted (a delivery pass ran out of time): due again at
        `due_at`, without an attempt on record."""
        d = t.alert_deliveries.c
        if not delivery_ids:
            return
        with self._db.transaction("releasing alert deliveries", write=True) as conn:
            for chunk in _chunks(list(delivery_ids)):
                conn.execute(
                    sa.update(t.alert_deliveries)
                    .where(d.id.in_(chunk), d.state == "pending")
                    .values(next_attempt_at=due_at)
                )

    def record_attempts(self, attempts: Sequence[Attempt], now: datetime, retry_at: datetime | None) -> None:
        """Acknowledge attempts (of one batch or several) in one transaction: delivered, or failed with the next
        attempt at the attempt's own `retry_at`, else at `retry_at`. Set-based: one update per outcome (delivered,
        or failed with one error and retry time); a delivery another process already delivered (after this one's
        lease expired) keeps its state and time."""
        if not attempts:
            return
        d = t.alert_deliveries.c
        outcomes: dict[tuple[bool, str | None, datetime | None], list[str]] = {}
        for a in attempts:
            key = (a.ok, a.error, None if a.ok else (a.retry_at or retry_at or now))
            outcomes.setdefault(key, []).append(a.delivery_id)
        with self._db.transaction("recording delivery attempts", write=True) as conn:
            conn.execute(
                t.alert_delivery_attempts.insert(),
                [
                    {
                        "id": str(uuid.uuid4()),
                        "delivery_id": a.delivery_id,
                        "channel": a.channel,
                        "attempted_at": now,
                        "ok": a.ok,
                        "status": a.status,
                        "error": a.error,
                        "latency_ms": a.latency_ms,
                    }
                    for a in attempts
                ],
            )
            for (ok, error, next_at), ids in outcomes.items():
                values: dict[str, object] = {"attempts": d.attempts + 1, "last_error": error}
                if ok:
                    values.update(state="delivered", delivered_at=now)
                else:
                    values["next_attempt_at"] = next_at
                for chunk in _chunks(ids):
                    conn.execute(
                        sa.update(t.alert_deliveries).where(d.id.in_(chunk), d.state == "pending").values(**values)
                    )

    def deliveries(self, *, outbox_id: str | None = None, state: str | None = None) -> list[dict[str, object]]:
        d = t.alert_deliveries.c
        q = sa.select(t.alert_deliveries).order_by(d.created_at)
        if outbox_id is not None:
            q = q.where(d.outbox_id == outbox_id)
        if state is not None:
            q = q.where(d.state == state)
        with self._db.transaction("reading deliveries") as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def entries(self, *, contract_name: str | None = None) -> list[OutboxEntry]:
        """Every outbox entry, oldest first (of one contract when given)."""
        c = t.alert_outbox.c
        q = sa.select(t.alert_outbox).order_by(c.created_at, c.id)
        if contract_name is not None:
            q = q.where(c.contract_name == contract_name)
        with self._db.transaction("reading the alert outbox") as conn:
            return [_entry(r) for r in conn.execute(q)]

    def attempts(self) -> list[dict[str, object]]:
        q = sa.select(t.alert_delivery_attempts).order_by(t.alert_delivery_attempts.c.attempted_at)
        with self._db.transaction("reading delivery attempts") as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    # -- incidents -----------------------------------------------------------------------------

    def incidents(self, *, contract_name: str | None = None) -> list[Incident]:
        q = sa.select(t.incidents).order_by(t.incidents.c.created_at)
        if contract_name is not None:
            q = q.where(t.incidents.c.contract_name == contract_name)
        with self._db.transaction("reading incidents") as conn:
            return [_incident(r) for r in conn.execute(q)]


def type_title(violation_type: str) -> str:
    return violation_type.replace("_", " ").title()


def _incident(row: sa.Row[tuple[object, ...]]) -> Incident:
    m = row._mapping
    return Incident(
        str(uuid.UUID(str(m["id"]))),
        m["contract_name"],
        m["violation_type"],
        m["status"],
        m["priority"],
        m["severity"],
        m["violation_count"],
        m["created_at"],
        m["updated_at"],
        m["resolved_at"],
        str(uuid.UUID(str(m["last_violation_id"]))) if m["last_violation_id"] else None,
    )


def _chunks(values: Sequence[Any], size: int = 2000) -> list[Sequence[Any]]:
    """`values` in slices small enough for any driver's bound-parameter limit."""
    return [values[i : i + size] for i in range(0, len(values), size)]
