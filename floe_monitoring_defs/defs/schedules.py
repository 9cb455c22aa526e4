"""Schedules of the checks jobs (one per check type and cadence, never overlapping), and the contract-registry
sensor, which reloads this code location through Dagster's GraphQL API when contracts change."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import httpx

from floe_monitoring_defs.cadence import crons_for_interval
from floe_monitoring_defs.checks.plan import CheckGroup
from floe_monitoring_defs.config import Settings
from floe_monitoring_defs.contracts.loader import iter_contract_files
from floe_monitoring_defs.sources.iceberg import mask_endpoint
from floe_monitoring_defs.store.database import Database, StoreError, default_db_url, store_configured
from floe_monitoring_defs.store.registry import RegistryRepository

# A run of the same job in any of these states means the previous tick is still going (FR-006).
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def checks_job_name(group: CheckGroup) -> str:
    """The checks-only job of a (check type, cadence) group: `freshness_every_15m_checks`."""
    return f"{group.name}_checks"


def checks_schedule_name(group: CheckGroup) -> str:
    """The schedule that runs the group's job: `freshness_every_15m_schedule`. Named in each check's description
    and result metadata, because Dagster lists on an asset's page only the schedules of jobs that materialize or
    observe it, never those of checks-only jobs."""
    return f"{group.name}_schedule"


def cadence_text(group: CheckGroup) -> str:
    """`every 15 min`, or `on cron '0 6 * * *' (UTC)` for a contract's own SLA schedule."""
    return f"on cron {group.cron!r} (UTC)" if group.cron is not None else f"every {group.minutes} min"


def no_overlap_schedule(
    name: str, job_name: str, minutes: int, *, running: bool, tags: dict[str, str], cron: str | None = None
) -> dg.ScheduleDefinition:
    """A schedule of `job_name` every `minutes` (or on `cron`, an SLA's own schedule) that skips a tick while
    the previous run of the job is still going (FR-006)."""
    crons = [cron] if cron is not None else crons_for_interval(minutes)
    every = f"on cron {cron!r}" if cron is not None else f"every {minutes} minutes"

    @dg.schedule(
        name=name,
        job_name=job_name,
        cron_schedule=crons if len(crons) > 1 else crons[0],
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED,
        description=f"Runs {job_name} {every}; skips a tick while the previous run is going",
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        busy = context.instance.get_runs(filters=dg.RunsFilter(job_name=job_name, statuses=IN_FLIGHT), limit=1)
        if busy:
            run = busy[0]
            message = (
                f"previous run {run.run_id} of {job_name} is still {run.status.value}; "
                f"skipping this tick so checks of the same contract and type never overlap"
            )
            context.log.warning(message)
            return dg.SkipReason(message)
        return dg.RunRequest(tags=tags)

    return _schedule


# Fingerprint keys of contracts registered in the store (`floe contracts register`), beside file paths.
STORE_PREFIX = "store:"
# The reload mutation returns once the webserver has the new code location (or its load error); loading this
# location takes seconds, so the read timeout leaves room for that and still ends well inside a sensor tick (60 s).
RELOAD_CONNECT_TIMEOUT_SECONDS = 5.0
RELOAD_TIMEOUT_SECONDS = 30.0
# Contracts are picked up within two minutes (issue 13): one tick to notice and reload, one for the new location.
REGISTRY_SENSOR_INTERVAL_SECONDS = 60

RELOAD_MUTATION = """
mutation FloeReloadLocation($name: String!) {
  reloadRepositoryLocation(repositoryLocationName: $name) {
    __typename
    ... on WorkspaceLocationEntry {
      name
      locationOrLoadError { __typename ... on PythonError { message } }
    }
    ... on ReloadNotSupported { message }
    ... on RepositoryLocationNotFound { message }
    ... on UnauthorizedError { message }
    ... on PythonError { message }
  }
}
"""


def _registration_fingerprint() -> dict[str, str] | None:
    """`store:<name>` -> digest of each active registration; None when the store cannot be read (then nothing is
    concluded about registrations, so a store outage never looks like every registration removed)."""
    if not store_configured():
        return {}
    try:
        db = Database(default_db_url())
        try:
            rows = RegistryRepository(db).registrations()
        finally:
            db.dispose()
    except StoreError:
        return None
    out: dict[str, str] = {}
    for row in rows:
        doc = {
            k: row.get(k) for k in ("contract_version", "contract_data", "connection_config", "monitoring_overrides")
        }
        blob = json.dumps(doc, sort_keys=True, default=str).encode()
        out[f"{STORE_PREFIX}{row['contract_name']}"] = hashlib.sha256(blob).hexdigest()[:16]
    return out


def contracts_fingerprint(contracts_dir: Path, *, registrations: bool = True) -> dict[str, str]:
    """file -> sha256 of its bytes, for every contract file under the directory (the kubelet's `..<timestamp>`
    directories of a mounted ConfigMap skipped by the loader), plus `store:<name>` -> digest of each registration
    in the store when `registrations` (an unreadable store contributes nothing)."""
    out: dict[str, str] = {}
    if contracts_dir.is_dir():
        out = {str(f): hashlib.sha256(f.read_bytes()).hexdigest()[:16] for f in iter_contract_files([contracts_dir])}
    if registrations:
        out.update(_registration_fingerprint() or {})
    return out


def fingerprint_digest(fingerprint: Mapping[str, str]) -> str:
    """One short digest of a whole fingerprint (what the cursor remembers)."""
    return hashlib.sha256(json.dumps(sorted(fingerprint.items())).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ContractChanges:
    added: list[str]
    changed: list[str]
    removed: list[str]

    @classmethod
    def between(cls, loaded: Mapping[str, str], now: Mapping[str, str]) -> ContractChanges:
        return cls(
            added=sorted(set(now) - set(loaded)),
            changed=sorted(f for f in set(now) & set(loaded) if now[f] != loaded[f]),
            removed=sorted(set(loaded) - set(now)),
        )

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    def summary(self) -> str:
        """`1 added (orders.yaml), 0 changed, 0 removed`: file names, `store:<name>` for registrations."""

        def part(label: str, keys: list[str]) -> str:
            names = [k if k.startswith(STORE_PREFIX) else Path(k).name for k in keys]
            return f"{len(keys)} {label}" + (f" ({', '.join(names)})" if names else "")

        return ", ".join([part("added", self.added), part("changed", self.changed), part("removed", self.removed)])


def request_reload(
    graphql_url: str,
    location_name: str,
    *,
    timeout: httpx.Timeout | None = None,
    transport: httpx.BaseTransport | None = None,
) -> str | None:
    """Ask Dagster's webserver to reload `location_name` (mutation `reloadRepositoryLocation`). None on success,
    else the reason, naming the endpoint (credentials masked) and never carrying a traceback."""
    where = mask_endpoint(graphql_url)
    payload = {"query": RELOAD_MUTATION, "variables": {"name": location_name}}
    try:
        with httpx.Client(
            timeout=timeout or httpx.Timeout(RELOAD_TIMEOUT_SECONDS, connect=RELOAD_CONNECT_TIMEOUT_SECONDS),
            transport=transport,
        ) as client:
            response = client.post(graphql_url, json=payload)
    except httpx.TimeoutException:
        return f"{where} did not answer within {RELOAD_TIMEOUT_SECONDS:g} s"
    except httpx.HTTPError as exc:
        return f"{where} unreachable ({type(exc).__name__})"
    if response.status_code != 200:
        return f"{where} answered HTTP {response.status_code}"
    try:
        body = response.json()
    except ValueError:
        return f"{where} answered something that is not JSON"
    if not isinstance(body, dict):
        return f"{where} answered an unexpected GraphQL response"
    if body.get("errors"):
        first = body["errors"][0]
        message = first.get("message") if isinstance(first, dict) else first
        return f"{where} refused the reload: {_first_line(message)}"
    result = (body.get("data") or {}).get("reloadRepositoryLocation") or {}
    kind = result.get("__typename")
    if kind == "WorkspaceLocationEntry":
        loaded = result.get("locationOrLoadError") or {}
        if loaded.get("__typename") == "PythonError":
            return f"location {location_name} failed to load: {_first_line(loaded.get('message'))}"
        return None
    return f"{where} refused the reload ({kind}): {_first_line(result.get('message'))}"


def _first_line(message: object) -> str:
    """The first line of a server message (a Python error's text, never its stack), bounded."""
    text = str(message or "no message").strip().splitlines()
    return (text[0] if text else "no message")[:300]


def _location_name(context: dg.SensorEvaluationContext, configured: str | None) -> str | None:
    """The code location's name as the daemon (and so the webserver) knows it, else the configured one."""
    origin = getattr(context, "code_location_origin", None)
    name = getattr(origin, "location_name", None)
    return name if isinstance(name, str) and name else configured


def _cursor_state(cursor: str | None) -> dict[str, Any]:
    try:
        state = json.loads(cursor or "{}")
    except ValueError:
        return {}  # a cursor of an older version (the raw change list): start over
    return state if isinstance(state, dict) else {}


def registry_sensor(
    contracts_dir: Path,
    loaded: dict[str, str],
    settings: Settings | None = None,
    *,
    transport: httpx.BaseTransport | None = None,
) -> dg.SensorDefinition:
    """Notices contracts added, changed or removed since the code location loaded (files under `contracts_dir` and
    registrations in the store; edge cases 1, 2) and asks the webserver to reload this location through Dagster's
    GraphQL API (`settings.dagster_graphql_url`, default from FLOE_DAGSTER_GRAPHQL_URL), so a new contract is
    monitored within two minutes without a manual step. Its ticks say what it did.

    Never a reload loop: the cursor keeps the digest of the contracts a reload was done for, so that state is not
    reloaded again; the reloaded location's own sensor has them as its `loaded` state and sees no change. A failed
    reload is retried on the next tick."""
    settings = settings or Settings.from_env()
    graphql_url = settings.dagster_graphql_url
    configured_name = settings.dagster_location_name
    loaded_store = {k: v for k, v in loaded.items() if k.startswith(STORE_PREFIX)}

    @dg.sensor(
        name="contract_registry_sensor",
        minimum_interval_seconds=REGISTRY_SENSOR_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Watches {contracts_dir} and the registered contracts; reloads the code location on a change",
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        now = contracts_fingerprint(contracts_dir, registrations=False)
        registered = _registration_fingerprint()
        # An unreadable store: registrations are taken as loaded (an outage is not a removal).
        now.update(loaded_store if registered is None else registered)
        changes = ContractChanges.between(loaded, now)
        if not changes:
            if not loaded:
                context.log.info(f"no contracts registered under {contracts_dir}; idle, watching for new ones")
            return dg.SkipReason(f"{len(now)} contracts, unchanged since load")
        summary = changes.summary()
        digest = fingerprint_digest(now)
        state = _cursor_state(context.cursor)
        location = _location_name(context, configured_name)
        if state.get("digest") == digest and state.get("reloaded"):
            return dg.SkipReason(
                f"reload of location {state.get('location')} already done for these contracts ({summary}); "
                "waiting for the reloaded code location"
            )
        if not graphql_url or not location:
            missing = "FLOE_DAGSTER_GRAPHQL_URL" if not graphql_url else "FLOE_DAGSTER_LOCATION_NAME"
            message = f"contracts changed since load: {summary}; {missing} not set, reload the code location"
            if state.get("digest") != digest:
                context.log.warning(message)
            context.update_cursor(json.dumps({"digest": digest, "reloaded": False, "reason": f"{missing} not set"}))
            return dg.SkipReason(message)
        reason = request_reload(graphql_url, location, transport=transport)
        if reason is None:
            message = f"reloaded location {location}: {summary}"
            context.log.info(message)
            context.update_cursor(json.dumps({"digest": digest, "reloaded": True, "location": location}))
            return dg.SkipReason(message)
        message = f"reload failed: {reason}; will retry next tick ({summary})"
        context.log.warning(message)
        context.update_cursor(json.dumps({"digest": digest, "reloaded": False, "reason": reason}))
        return dg.SkipReason(message)

    return _sensor
