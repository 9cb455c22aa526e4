"""The alert outbox, per-channel deliveries, dedup state and incidents.

Every decision (routed, suppressed, delivered, retried) is a row, so several processes or replicas
agree: deliveries are claimed with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite has one
writer at a time), and a claim that is never acknowledged (a crash after sending) expires and is
retried with the same alert ids: at-least-once delivery with a stable idempotency key.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

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


def _entry(row: sa.Row[tuple[object, ...]]) -> OutboxEntry:
    m = row._mapping
    return OutboxEntry(
        id=str(uuid.UUID(str(m["id"]))),
        kind=m["kind"],
        event=ContractViolationEvent.model_validate(m["event"]),
        created_at=m["created_at"],
        state=m["state"],
        reason=m["reason"],
    )


@dataclass(frozen=True)
class NewAlert:
    """An alert to enqueue: its id (a violation's alerts carry the violation id), kind and event."""

    id: str
    kind: str
    event: ContractViolationEvent


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
    }


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

    def enqueue(self, kind: str, event: ContractViolationEvent, now: datetime, alert_id: str | None = None) -> str:
        """Add an alert that no check result carries (an operational alert); idempotent per alert id."""
        alert = NewAlert(alert_id or str(uuid.uuid4()), kind, event)
        with self._db.transaction("enqueuing an alert", write=True) as conn:
            conn.execute(self._db.insert_missing(t.alert_outbox, ["id"]), _pending_row(alert, now))
        return alert.id

    # -- routing -------------------------------------------------------------------------------

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
        if row is None:
            return None
        m = row._mapping
        sev = ViolationSeverity(m["last_severity"]) if m["last_severity"] else None
        return DedupState(
            m["last_alerted_at"],
            sev,
            m["alert_count_window"],
            m["window_start"],
            m["last_seen_at"] or m["last_alerted_at"],
        )

    def routed_since(self, contract_name: str, since: datetime) -> int:
        """Alert occurrences routed for the contract since `since` (the violations of one check run,
        routed together, count once)."""
        c = t.alert_outbox.c
        occurrences = (
            sa.select(c.violation_type, c.routed_at)
            .distinct()
            .where(c.contract_name == contract_name, c.state == "routed", c.routed_at >= since, c.kind != "resolved")
            .subquery()
        )
        q = sa.select(sa.func.count()).select_from(occurrences)
        with self._db.transaction("counting routed alerts") as conn:
            return int(conn.execute(q).scalar_one())

    def mark(
        self,
        entry: OutboxEntry,
        state: str,
        reason: str | None,
        now: datetime,
        channels: Sequence[str] = (),
        dedup_window: timedelta | None = None,
    ) -> None:
        """Record a routing decision; for `routed`, create one delivery per channel and update dedup."""
        with self._db.transaction("routing an alert", write=True) as conn:
            conn.execute(
                sa.update(t.alert_outbox)
                .where(t.alert_outbox.c.id == entry.id)
                .values(state=state, reason=reason, routed_at=now if state == "routed" else None)
            )
            if entry.kind == "violation" and state == "suppressed":
                self._seen(conn, entry.event, now)
            if entry.kind == "resolved" and state in ("routed", "no_route"):
                self.clear_dedup(conn, entry.event)
            if state != "routed":
                return
            conn.execute(
                t.alert_deliveries.insert(),
                [
                    {
                        "id": str(uuid.uuid4()),
                        "outbox_id": entry.id,
                        "channel": ch,
                        "contract_name": entry.event.contract_name,
                        "state": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "last_error": None,
                        "created_at": now,
                        "delivered_at": None,
                    }
                    for ch in channels
                ],
            )
            if entry.kind == "violation" and dedup_window is not None:
                self._touch_dedup(conn, entry.event, now, dedup_window)

    @staticmethod
    def _key(event: ContractViolationEvent) -> tuple[sa.ColumnElement[bool], sa.ColumnElement[bool]]:
        c = t.alert_dedup_state.c
        return c.contract_name == event.contract_name, c.violation_type == event.violation_type.value

    def _touch_dedup(self, conn: Connection, event: ContractViolationEvent, now: datetime, window: timedelta) -> None:
        """An alert went out: start or continue the episode of this contract + type."""
        key = self._key(event)
        row = conn.execute(sa.select(t.alert_dedup_state).where(*key)).first()
        if row is None:
            conn.execute(
                t.alert_dedup_state.insert(),
                {
                    "contract_name": event.contract_name,
                    "violation_type": event.violation_type.value,
                    "last_alerted_at": now,
                    "alert_count_window": 1,
                    "window_start": now,
                    "last_severity": event.severity.value,
                    "last_seen_at": now,
                },
            )
            return
        m = row._mapping
        new_episode = now - (m["last_seen_at"] or m["last_alerted_at"]) >= window
        conn.execute(
            sa.update(t.alert_dedup_state)
            .where(*key)
            .values(
                last_alerted_at=now,
                last_severity=event.severity.value,
                last_seen_at=now,
                alert_count_window=1 if new_episode else m["alert_count_window"] + 1,
                window_start=now if new_episode else m["window_start"],
            )
        )

    def _seen(self, conn: Connection, event: ContractViolationEvent, now: datetime) -> None:
        """A suppressed repeat still extends the episode."""
        conn.execute(sa.update(t.alert_dedup_state).where(*self._key(event)).values(last_seen_at=now))

    def clear_dedup(self, conn: Connection, event: ContractViolationEvent) -> None:
        """A resolved violation ends its episode: the next occurrence alerts again at once."""
        conn.execute(sa.delete(t.alert_dedup_state).where(*self._key(event)))

    # -- delivery ------------------------------------------------------------------------------

    def claim_due(
        self, now: datetime, lease: timedelta, outbox_ids: Sequence[str] | None = None, limit: int = 500
    ) -> list[Delivery]:
        """Due pending deliveries, leased until `now + lease` so no other process sends them meanwhile."""
        d, o = t.alert_deliveries.c, t.alert_outbox.c
        q = (
            sa.select(
                t.alert_deliveries,
                t.alert_outbox.c.kind,
                o.event,
                o.created_at.label("o_created"),
                o.state.label("o_state"),
                o.reason.label("o_reason"),
            )
            .join(t.alert_outbox, o.id == d.outbox_id)
            .where(d.state == "pending", d.next_attempt_at <= now)
            .order_by(d.next_attempt_at, o.created_at)
            .limit(limit)
        )
        if outbox_ids is not None:
            q = q.where(d.outbox_id.in_(list(outbox_ids)))
        if self._db.dialect == "postgresql":
            q = q.with_for_update(skip_locked=True, of=t.alert_deliveries)
        with self._db.transaction("claiming alert deliveries", write=True) as conn:
            rows = list(conn.execute(q))
            if rows:
                conn.execute(
                    sa.update(t.alert_deliveries)
                    .where(d.id.in_([r._mapping["id"] for r in rows]))
                    .values(next_attempt_at=now + lease)
                )
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

    def record_attempts(self, attempts: Sequence[Attempt], now: datetime, retry_at: datetime | None) -> None:
        """Acknowledge a batch: delivered, or failed with the next attempt at `retry_at`."""
        if not attempts:
            return
        d = t.alert_deliveries.c
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
            for a in attempts:
                values: dict[str, object] = {"attempts": d.attempts + 1, "last_error": a.error}
                if a.ok:
                    values.update(state="delivered", delivered_at=now)
                else:
                    values["next_attempt_at"] = retry_at or now
                conn.execute(sa.update(t.alert_deliveries).where(d.id == a.delivery_id).values(**values))

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

    def open_or_update_incident(self, event: ContractViolationEvent, violation_id: str, now: datetime) -> Incident:
        """One open incident per contract + type: repeats update it and escalate, never downgrade."""
        i = t.incidents.c
        key = (
            i.contract_name == event.contract_name,
            i.violation_type == event.violation_type.value,
            i.status == "open",
        )
        with self._db.transaction("updating incidents", write=True) as conn:
            row = conn.execute(sa.select(t.incidents).where(*key)).first()
            if row is None:
                conn.execute(
                    t.incidents.insert(),
                    {
                        "id": str(uuid.uuid4()),
                        "contract_name": event.contract_name,
                        "violation_type": event.violation_type.value,
                        "status": "open",
                        "priority": PRIORITY[event.severity],
                        "severity": event.severity.value,
                        "title": f"{kind_title(event)} violation on {event.contract_name}",
                        "violation_count": 1,
                        "last_violation_id": violation_id,
                        "created_at": now,
                        "updated_at": now,
                        "resolved_at": None,
                    },
                )
            else:
                current = ViolationSeverity(row._mapping["severity"])
                worst = max(current, event.severity, key=lambda s: s.rank)
                conn.execute(
                    sa.update(t.incidents)
                    .where(i.id == row._mapping["id"])
                    .values(
                        violation_count=i.violation_count + 1,
                        severity=worst.value,
                        priority=PRIORITY[worst],
                        last_violation_id=violation_id,
                        updated_at=now,
                    )
                )
            got = conn.execute(sa.select(t.incidents).where(*key)).one()
        return _incident(got)

    def resolve_incident(self, contract_name: str, violation_type: str, now: datetime) -> Incident | None:
        i = t.incidents.c
        key = (i.contract_name == contract_name, i.violation_type == violation_type, i.status == "open")
        with self._db.transaction("resolving an incident", write=True) as conn:
            row = conn.execute(sa.select(t.incidents).where(*key)).first()
            if row is None:
                return None
            conn.execute(
                sa.update(t.incidents)
                .where(i.id == row._mapping["id"])
                .values(status="resolved", resolved_at=now, updated_at=now)
            )
            return _incident(conn.execute(sa.select(t.incidents).where(i.id == row._mapping["id"])).one())

    def incidents(self, *, contract_name: str | None = None) -> list[Incident]:
        q = sa.select(t.incidents).order_by(t.incidents.c.created_at)
        if contract_name is not None:
            q = q.where(t.incidents.c.contract_name == contract_name)
        with self._db.transaction("reading incidents") as conn:
            return [_incident(r) for r in conn.execute(q)]


def kind_title(event: ContractViolationEvent) -> str:
    return event.violation_type.value.replace("_", " ").title()


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
    )
