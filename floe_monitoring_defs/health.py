"""`floe health` (FR-005): is this deployment able to monitor, and is it monitoring?

One report from what a fresh process can see: the store (reachable, schema at head; read only, never created
or migrated), each Iceberg catalog the loaded contracts use (one table loaded per catalog, bounded by a short
timeout), each configured alert channel (buildable now, circuit state, last delivery attempt from the store),
the last completed check per check kind against the plan's cadence, the registered contract count and the
outbox backlog. `status` is the worst finding: `unhealthy` when floe cannot work at all (store down or not at
head, config invalid), `degraded` when part of it is impaired (a catalog down, a channel unavailable or its
circuit open, a check kind stale past two intervals), else `healthy`. Exit codes 0 / 1 / 2 follow, so the
command serves as a Kubernetes exec probe. "Now" is a parameter: nothing here reads the wall clock but the
default. No secret reaches the report: URLs are masked and every known secret value is scrubbed at the end.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from floe_monitoring_defs.alerting.channels.base import open_channels
from floe_monitoring_defs.alerting.delivery import CIRCUIT_OPEN, CircuitBreaker
from floe_monitoring_defs.checks.availability import REASON_TABLE_MISSING, ping_table
from floe_monitoring_defs.checks.plan import Plan, plan_checks
from floe_monitoring_defs.checks.registry import check_kinds
from floe_monitoring_defs.config import ConfigError, MonitoringConfig, Settings, load_config
from floe_monitoring_defs.contract_set import load_contracts_and_registrations
from floe_monitoring_defs.contracts.model import TableRef
from floe_monitoring_defs.models import CheckStatus, ensure_utc, utcnow
from floe_monitoring_defs.sources.iceberg import IcebergSource
from floe_monitoring_defs.store import MonitoringStore, StoreError, existing_db_url, mask_url
from floe_monitoring_defs.store import tables as t
from floe_monitoring_defs.store.migrations import head_revision

Status = Literal["healthy", "degraded", "unhealthy"]
_RANK: dict[str, int] = {"healthy": 0, "degraded": 1, "unhealthy": 2}
EXIT_CODES: Mapping[str, int] = dict(_RANK)
DEFAULT_CATALOG_TIMEOUT_S = 3.0
# A kind is stale once its newest completed check is older than this many of its intervals.
STALE_INTERVALS = 2
# The statuses of a check that ran to the end (a FAIL is a successful check that found a violation).
_COMPLETED = (CheckStatus.PASS.value, CheckStatus.FAIL.value)


@dataclass
class HealthReport:
    """What `floe health` prints; `status` is the worst of `problems` (empty: healthy)."""

    as_of: datetime
    store: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    contracts: dict[str, Any] = field(default_factory=dict)
    catalogs: list[dict[str, Any]] = field(default_factory=list)
    channels: list[dict[str, Any]] = field(default_factory=list)
    check_kinds: list[dict[str, Any]] = field(default_factory=list)
    outbox: dict[str, Any] | None = None
    problems: list[tuple[str, str]] = field(default_factory=list)  # (degraded|unhealthy, what)
    secrets: tuple[str, ...] = ()  # values scrubbed from every rendering; never rendered themselves

    def problem(self, level: Status, what: str) -> None:
        self.problems.append((level, what))

    @property
    def status(self) -> Status:
        worst: Status = "healthy"
        for level, _ in self.problems:
            if _RANK[level] > _RANK[worst]:
                worst = "unhealthy" if level == "unhealthy" else "degraded"
        return worst

    def exit_code(self, fail_on: Literal["degraded", "unhealthy"] = "degraded") -> int:
        """0 / 1 / 2 for healthy / degraded / unhealthy; with `fail_on="unhealthy"` degraded exits 0 (a probe that
        must not restart the pod because a catalog or a channel outside it is down)."""
        code = EXIT_CODES[self.status]
        if fail_on == "unhealthy" and code == 1:
            return 0
        return code

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "as_of": self.as_of.isoformat(),
            "problems": [{"level": level, "what": what} for level, what in self.problems],
            "store": self.store,
            "config": self.config,
            "contracts": self.contracts,
            "catalogs": self.catalogs,
            "channels": self.channels,
            "check_kinds": self.check_kinds,
            "outbox": self.outbox,
        }

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def render_json(self) -> str:
        return self.scrub(json.dumps(self.to_dict(), indent=2, default=str))

    def render_table(self) -> str:
        lines = [f"status: {self.status} (as of {self.as_of.isoformat()})"]
        for level, what in self.problems:
            lines.append(f"  {level}: {what}")
        s = self.store
        lines.append(
            f"store: {s.get('state')} {s.get('url') or ''}".rstrip() + (f" ({s['error']})" if s.get("error") else "")
        )
        if self.config.get("error"):
            lines.append(f"config: invalid ({self.config['error']})")
        c = self.contracts
        lines.append(
            f"contracts: {c.get('loaded', 0)} loaded, {c.get('registered', 0)} registered, "
            f"{c.get('errors', 0)} not loaded"
        )
        for cat in self.catalogs:
            latency = f"{cat['latency_ms']:.0f} ms" if cat.get("latency_ms") is not None else "-"
            lines.append(
                f"catalog {cat['name']}: {cat['state']} {latency}" + (f" ({cat['error']})" if cat.get("error") else "")
            )
        for ch in self.channels:
            last = ch.get("last_delivery")
            shown = "none" if last is None else f"{'ok' if last['ok'] else 'failed'} {last['status']} at {last['at']}"
            lines.append(
                f"channel {ch['name']}: {ch['state']}, circuit {ch['circuit']}, last delivery {shown}"
                + (f" ({ch['reason']})" if ch.get("reason") else "")
            )
        for k in self.check_kinds:
            age = "never" if k["age_seconds"] is None else f"{k['age_seconds']:.0f} s ago"
            every = "-" if k["interval_minutes"] is None else f"every {k['interval_minutes']} min"
            lines.append(f"checks {k['kind']}: last {age} ({every}){' STALE' if k['stale'] else ''}")
        if self.outbox is not None:
            o = self.outbox
            age = "none" if o["oldest_pending_age_seconds"] is None else f"{o['oldest_pending_age_seconds']:.0f} s"
            lines.append(f"outbox: {o['pending']} pending, {o['undelivered']} undelivered, oldest pending {age}")
        return self.scrub("\n".join(lines))


def check_health(
    *,
    now: datetime | None = None,
    environ: Mapping[str, str] | None = None,
    catalog_timeout_s: float = DEFAULT_CATALOG_TIMEOUT_S,
    breakers: Mapping[str, CircuitBreaker] | None = None,
) -> HealthReport:
    """The deployment's health as of `now` (default: the current time), from `environ` (default: the process
    environment). `breakers`: the in-process circuit breakers by channel name, when the caller delivers alerts
    itself; without them the circuit state is taken from the channel's last stored attempt."""
    env = os.environ if environ is None else environ
    report = HealthReport(as_of=ensure_utc(now) if now is not None else utcnow())
    report.secrets = _url_secrets(env.get("FLOE_MONITORING_DB_URL") or "")
    try:
        settings = Settings.from_env(env)
    except ConfigError as exc:
        report.config = {"state": "invalid", "error": str(exc)}
        report.problem("unhealthy", f"settings: {exc}")
        settings = None
    store = _open_store(report, env)
    try:
        config = _load_config(report, settings)
        registrations: list[dict[str, Any]] = []
        if store is not None:
            try:
                registrations = store.registry.registrations()
            except StoreError as exc:
                report.problem("unhealthy", str(exc))
        plan = None
        if settings is not None and config is not None:
            plan = load_plan(settings, config, registrations)
            report.contracts = {
                "loaded": len(plan.report.contracts),
                "registered": len(registrations),
                "errors": len(plan.report.errors),
                "directory": str(settings.contracts_dir),
            }
            _check_catalogs(report, plan, settings, catalog_timeout_s)
        if config is not None:
            _check_channels(report, config, env, store, breakers)
        if store is not None:
            if plan is not None:
                _check_kinds(report, plan, store)
            _check_outbox(report, store)
    finally:
        if store is not None:
            store.dispose()
    return report


def load_plan(settings: Settings, config: MonitoringConfig, registrations: list[dict[str, Any]]) -> Plan:
    """The checks the code location schedules, from the same contracts and registrations it loads."""
    return plan_checks(load_contracts_and_registrations(settings, registrations), config, check_kinds())


def newest_completed_checks(store: MonitoringStore) -> dict[tuple[str, str], datetime]:
    """(contract, check kind) -> the newest check that ran to the end (PASS or FAIL). Raises StoreError."""
    r = t.contract_check_results.c
    query = (
        sa.select(r.contract_name, r.check_type, sa.func.max(r.checked_at))
        .where(r.status.in_(_COMPLETED))
        .group_by(r.contract_name, r.check_type)
    )
    with store.db.transaction("reading the last completed checks") as conn:
        return {(str(c), str(k)): ensure_utc(at) for c, k, at in conn.execute(query) if at is not None}


def _url_secrets(url: str) -> tuple[str, ...]:
    if not url:
        return ()
    try:
        parsed = make_url(url.strip())
    except Exception:  # a malformed URL: Database reports it, masked
        return ()
    found = [parsed.password] if isinstance(parsed.password, str) else []
    in_query = parsed.query.get("password", ())
    found.extend([in_query] if isinstance(in_query, str) else list(in_query))
    return tuple(s for s in found if s)


def _open_store(report: HealthReport, env: Mapping[str, str]) -> MonitoringStore | None:
    try:
        url = existing_db_url(env)
    except StoreError as exc:
        report.store = {"state": "down", "url": None, "error": str(exc)}
        report.problem("unhealthy", f"store: {exc}")
        return None
    report.store = {"state": "down", "url": mask_url(url), "head": head_revision()}
    try:
        store = MonitoringStore.open_existing(env)
    except StoreError as exc:
        report.store["error"] = str(exc)
        report.problem("unhealthy", f"store: {exc}")
        return None
    report.store.update(state="up", revision=head_revision(), dialect=store.dialect)
    return store


def _load_config(report: HealthReport, settings: Settings | None) -> MonitoringConfig | None:
    if settings is None:
        return None
    try:
        # Never load_config(None): that reads the process environment, not the one given.
        config = MonitoringConfig() if settings.config_path is None else load_config(settings.config_path)
    except ConfigError as exc:
        report.config = {"state": "invalid", "path": str(settings.config_path), "error": str(exc)}
        report.problem("unhealthy", f"config: {exc}")
        return None
    report.config = {"state": "valid", "path": None if settings.config_path is None else str(settings.config_path)}
    return config


def _check_catalogs(report: HealthReport, plan: Plan, settings: Settings, timeout_s: float) -> None:
    """One table per catalog the contracts use, loaded through it; a catalog that answers that the table is
    missing is reachable (the availability check reports the table)."""
    source = IcebergSource(default_catalog=settings.default_catalog)
    first: dict[str, TableRef] = {}
    for planned in plan.contracts:
        for table in planned.contract.tables:
            if table.ref.metadata_location:
                continue  # read from its metadata file: no catalog to ask
            first.setdefault(source.catalog_name(table.ref), table.ref)
    # In parallel, so the command takes about one timeout however many catalogs are down.
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(first))), thread_name_prefix="floe-health") as pool:
        results = pool.map(lambda ref: ping_table(source, ref, timeout_s, lambda: report.as_of), first.values())
        pings = dict(zip(first, results, strict=True))
    for name, ref in sorted(first.items()):
        ping = pings[name]
        reachable = ping.ok or ping.reason == REASON_TABLE_MISSING
        entry: dict[str, Any] = {
            "name": name,
            "state": "up" if reachable else "down",
            "latency_ms": round(ping.latency_ms, 1),
            "probe_table": ref.identifier,
        }
        if not reachable:
            entry["error"] = ping.message
            report.problem("degraded", f"catalog {name!r}: {ping.message}")
        report.catalogs.append(entry)


def last_delivery_attempts(store: MonitoringStore | None) -> dict[str, dict[str, Any]]:
    """Channel -> its newest delivery attempt (at, ok, status, error). Raises StoreError."""
    if store is None:
        return {}
    a = t.alert_delivery_attempts.c
    newest = sa.select(a.channel, sa.func.max(a.attempted_at).label("at")).group_by(a.channel).subquery("newest")
    query = sa.select(a.channel, a.attempted_at, a.ok, a.status, a.error).join(
        newest, sa.and_(a.channel == newest.c.channel, a.attempted_at == newest.c.at)
    )
    out: dict[str, dict[str, Any]] = {}
    with store.db.transaction("reading the last delivery attempts") as conn:
        for channel, at, ok, status, error in conn.execute(query):
            out[str(channel)] = {
                "at": ensure_utc(at).isoformat(),
                "ok": bool(ok),
                "status": str(status),
                "error": error,
            }
    return out


def _check_channels(
    report: HealthReport,
    config: MonitoringConfig,
    env: Mapping[str, str],
    store: MonitoringStore | None,
    breakers: Mapping[str, CircuitBreaker] | None,
) -> None:
    specs = config.alerts.channels
    if not specs:
        return
    channels, problems = open_channels(specs, env)
    try:
        # Channel secrets read from the environment: never in the report, whatever a stored error says.
        report.secrets += tuple(
            v
            for s in specs.values()
            if isinstance(s, Mapping)
            for k, var in s.items()
            if str(k).endswith("_env") and isinstance(var, str)
            for v in (env.get(var),)
            if v
        )
        try:
            last = last_delivery_attempts(store)
        except StoreError as exc:
            report.problem("unhealthy", str(exc))
            last = {}
        for name in sorted(specs):
            entry: dict[str, Any] = {
                "name": name,
                "type": str(specs[name].get("type")) if isinstance(specs[name], Mapping) else None,
            }
            if name in problems:
                entry.update(state="unavailable", reason=problems[name].reason)
                report.problem("degraded", f"channel {name}: unavailable: {problems[name].reason}")
            else:
                entry["state"] = "configured"
            attempt = last.get(name)
            breaker = (breakers or {}).get(name)
            if breaker is not None:
                circuit = "closed" if breaker.allows(report.as_of) else "open"
            elif attempt is not None and attempt["status"] == CIRCUIT_OPEN:
                circuit = "open"  # the last pass held this channel's deliveries
            else:
                circuit = "unknown" if attempt is None or not attempt["ok"] else "closed"
            entry["circuit"] = circuit
            if circuit == "open":
                report.problem("degraded", f"channel {name}: circuit open")
            entry["last_delivery"] = attempt
            report.channels.append(entry)
    finally:
        for channel in channels.values():
            channel.close()


def _check_kinds(report: HealthReport, plan: Plan, store: MonitoringStore) -> None:
    """Per kind: the newest completed check, and which scheduled contracts of it are stale (their newest
    completed check older than STALE_INTERVALS of their interval, or none at all)."""
    try:
        newest = newest_completed_checks(store)
    except StoreError as exc:
        report.problem("unhealthy", str(exc))
        return
    kinds: dict[str, dict[str, Any]] = {}
    for planned in plan.contracts:
        if not planned.scheduled:
            continue
        for kind, minutes in planned.intervals.items():
            entry = kinds.setdefault(
                kind,
                {
                    "kind": kind,
                    "last_success_at": None,
                    "age_seconds": None,
                    "interval_minutes": None,
                    "stale": False,
                    "stale_contracts": [],
                },
            )
            at = newest.get((planned.contract.name, kind))
            if at is not None and (entry["last_success_at"] is None or at > entry["last_success_at"]):
                entry["last_success_at"] = at
            if minutes is not None and (entry["interval_minutes"] is None or minutes < entry["interval_minutes"]):
                entry["interval_minutes"] = minutes
            if minutes is None:
                continue  # an uneven cron: no single interval to judge against
            if at is None or (report.as_of - at).total_seconds() > STALE_INTERVALS * minutes * 60:
                entry["stale_contracts"].append(planned.contract.name)
    for name in sorted(kinds):
        entry = kinds[name]
        last_at: datetime | None = entry["last_success_at"]
        entry["age_seconds"] = None if last_at is None else round((report.as_of - last_at).total_seconds(), 3)
        entry["last_success_at"] = None if last_at is None else last_at.isoformat()
        entry["stale"] = bool(entry["stale_contracts"])
        if entry["stale"]:
            report.problem(
                "degraded",
                f"check kind {name}: no completed check within {STALE_INTERVALS} intervals for "
                + ", ".join(entry["stale_contracts"]),
            )
        report.check_kinds.append(entry)


def _check_outbox(report: HealthReport, store: MonitoringStore) -> None:
    try:
        status = store.outbox.status(report.as_of)
    except StoreError as exc:
        report.problem("unhealthy", str(exc))
        return
    pending = sum(n for state, n in status.entries.items() if state == "pending")
    undelivered = sum(n for states in status.deliveries.values() for s, n in states.items() if s != "delivered")
    oldest = status.oldest_pending_at
    report.outbox = {
        "pending": pending,
        "undelivered": undelivered,
        "oldest_pending_age_seconds": None if oldest is None else round((report.as_of - oldest).total_seconds(), 3),
    }
