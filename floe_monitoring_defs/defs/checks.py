"""Asset checks: one `multi_asset_check` per (check type, cadence, chunk), thin over CheckRunner."""

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from floe_monitoring_defs.cadence import chunks
from floe_monitoring_defs.checks.runner import CheckRun, CheckRunner, Target
from floe_monitoring_defs.config import MonitoringConfig
from floe_monitoring_defs.contracts.model import LoadReport
from floe_monitoring_defs.defs.alerting import eager_dispatch
from floe_monitoring_defs.defs.assets import REGISTRY_KEY, asset_key, errors_markdown
from floe_monitoring_defs.defs.resources import IcebergCatalogResource, MonitoringStoreResource
from floe_monitoring_defs.models import CheckStatus, ViolationSeverity, ViolationType
from floe_monitoring_defs.telemetry.lineage import lineage_emitter

# Dagster resolves asset jobs in O(N^2) per multi-asset step; 500 keeps 5,000 contracts loading fast.
MAX_CHECKS_PER_STEP = 500
REGISTRY_CHECK_NAME = "contracts_valid"

_DESCRIPTIONS = {
    ViolationType.FRESHNESS: "Age of the newest data against the contract's freshness SLA",
    ViolationType.SCHEMA_DRIFT: "Iceberg schema against the contract's columns, types, nullability and key",
    ViolationType.QUALITY: "The contract's quality rules, weighted into a score against the threshold",
    ViolationType.AVAILABILITY: "Catalog round trip + table metadata load; rolling 24 h uptime against the SLA",
}
_AVAILABILITY_EVIDENCE = (
    "uptime_pct",
    "consecutive_failures",
    "total_pings",
    "successful_pings",
    "latency_ms",
    "reason",
    "last_failure_at",
    "last_failure_reason",
    "recovered",
)
_QUALITY_EVIDENCE = ("score", "threshold", "rows_checked", "engine")


@dataclass(frozen=True)
class CheckGroup:
    """Checks of one type that share a cadence; each becomes one or more steps."""

    check_type: ViolationType
    minutes: int
    targets: tuple[Target, ...]

    @property
    def name(self) -> str:
        return f"{self.check_type.value}_every_{self.minutes}m"


def check_key(check_type: ViolationType, target: Target) -> dg.AssetCheckKey:
    return dg.AssetCheckKey(asset_key(target[1]), check_type.value)


def to_check_result(run: CheckRun) -> dg.AssetCheckResult:
    """DESIGN severity mapping: passed=False for WARNING and above (and for ERROR status)."""
    status = run.result.status
    worst = run.max_severity
    failed = status is CheckStatus.ERROR or (status is CheckStatus.FAIL)
    dagster_severity = (
        dg.AssetCheckSeverity.WARN
        if status is CheckStatus.FAIL and worst is ViolationSeverity.WARNING
        else dg.AssetCheckSeverity.ERROR
    )
    outcome = run.outcome
    metadata: dict[str, Any] = {
        "floe/status": status.value,
        "floe/severity": worst.value if worst else "none",
        "floe/contract": run.contract.name,
        "floe/contract_version": run.contract.version,
        "floe/table": run.table.ref.identifier,
        "floe/check_result_id": run.result.id,
        "floe/duration_seconds": round(run.result.duration_seconds, 6),
        "floe/persisted": run.persisted,
    }
    if outcome.reason:
        metadata["floe/reason"] = outcome.reason
    if outcome.measured_value is not None and run.result.check_type is ViolationType.FRESHNESS:
        metadata["age_seconds"] = round(outcome.measured_value, 3)
        metadata["threshold_seconds"] = outcome.threshold
        metadata["sla_consumed_pct"] = outcome.details.get("sla_consumed_pct")
        metadata["freshness_method"] = outcome.details.get("method")
        if "last_update" in outcome.details:
            metadata["last_update"] = outcome.details["last_update"]
    if run.result.check_type is ViolationType.SCHEMA_DRIFT and outcome.findings:
        metadata["drift"] = dg.MetadataValue.table(
            records=[
                dg.TableRecord(
                    {
                        "drift": f.kind,
                        "column": f.element or "",
                        "expected": f.expected or "",
                        "actual": f.actual or "",
                        "severity": v.severity.value,
                    }
                )
                for f, v in zip(outcome.findings, run.violations, strict=True)
            ],
            schema=dg.TableSchema(
                columns=[dg.TableColumn(n) for n in ("drift", "column", "expected", "actual", "severity")]
            ),
        )
    if run.result.check_type is ViolationType.AVAILABILITY:
        metadata.update(
            {k: _scalar(outcome.details[k]) for k in _AVAILABILITY_EVIDENCE if outcome.details.get(k) is not None}
        )
    if run.result.check_type is ViolationType.QUALITY:
        metadata.update(
            {
                f"quality_{k}": _scalar(outcome.details[k])
                for k in _QUALITY_EVIDENCE
                if outcome.details.get(k) is not None
            }
        )
        if outcome.details.get("columns_read") is not None:
            metadata["quality_columns_read"] = ", ".join(map(str, outcome.details["columns_read"]))
        rules = outcome.details.get("rules") or []
        if rules:
            cols = ("rule", "column", "metric", "passed", "expected", "actual", "weight", "error")
            metadata["rules"] = dg.MetadataValue.table(
                records=[dg.TableRecord({c: _cell(r.get(c)) for c in cols}) for r in rules],
                schema=dg.TableSchema(columns=[dg.TableColumn(c) for c in cols]),
            )
    if run.violation_ids:
        metadata["floe/violation_ids"] = ", ".join(run.violation_ids)
    if status is CheckStatus.FAIL:
        description = "; ".join(v.message for v in run.violations if v.severity >= ViolationSeverity.WARNING)
    elif outcome.reason:
        description = f"{status.value}: {outcome.reason}"
    elif run.violations:  # INFO early warning on a passing check
        description = "early warning: " + run.violations[0].message
    else:
        description = "within contract"
    return dg.AssetCheckResult(
        asset_key=asset_key(run.table),
        check_name=run.result.check_type.value,
        passed=not failed,
        severity=dagster_severity,
        description=description[:2000],
        metadata=metadata,
    )


def _scalar(value: Any) -> Any:
    return value if isinstance(value, bool | int | float | str) or value is None else str(value)


def _cell(value: Any) -> str | int | float | bool:
    return "" if value is None else value if isinstance(value, bool | int | float | str) else str(value)


def build_multi_check(
    group: CheckGroup, part: int, targets: Sequence[Target], config: MonitoringConfig, channel_keys: Sequence[str] = ()
) -> dg.AssetChecksDefinition:
    lookup = {check_key(group.check_type, t): t for t in targets}
    specs = [
        # No per-spec metadata: the asset carries the contract, and normalizing metadata on 1,000s of
        # specs was a measurable share of the build (benchmarks/defs_load.py).
        dg.AssetCheckSpec(name=group.check_type.value, asset=key.asset_key, description=_DESCRIPTIONS[group.check_type])
        for key in lookup
    ]
    check_type = group.check_type
    suffix = f"_part{part}" if part else ""

    @dg.multi_asset_check(
        specs=specs,
        name=f"{group.name}{suffix}",
        can_subset=True,
        description=f"{_DESCRIPTIONS[check_type]} (every {group.minutes} min)",
        op_tags={"floe/check_type": check_type.value},
        # Resources by key (Dagster cannot mix decorator keys with typed parameters, and the channel
        # resources are only known from the config).
        required_resource_keys={"iceberg", "floe_store", *channel_keys},
    )
    def _checks(context: dg.AssetCheckExecutionContext) -> Iterator[dg.AssetCheckResult]:
        iceberg: IcebergCatalogResource = context.resources.iceberg
        floe_store: MonitoringStoreResource = context.resources.floe_store
        selected = [lookup[k] for k in sorted(context.selected_asset_check_keys, key=str) if k in lookup]
        store = floe_store.store()
        runner = CheckRunner(iceberg.source(), store, config)
        lineage = lineage_emitter()  # OpenLineage FAIL events; off unless OPENLINEAGE_* is configured
        started = time.monotonic()
        missing = [t for t in selected if t[0].source_path is not None and not t[0].source_path.exists()]
        for contract, _table in missing:  # edge case 2: deleted while monitored
            context.log.warning(
                f"contract {contract.name} ({contract.source}) was removed; skipping it until the code location reloads"
            )
        for run in runner.run(check_type, [t for t in selected if t not in missing]):
            if run.violations:  # queued for a background sender: never blocks or fails the check
                lineage.emit_violations(run, traceparent=run.violations[0].metadata.get("traceparent"))
            if run.alerts_enqueued:
                # The eager delivery attempt (SC-003: detection to dispatch in seconds); whatever fails
                # here stays in the outbox for alert_dispatch_sensor.
                try:
                    report = eager_dispatch(store, context.resources, channel_keys, config.alerts, run.contract.name)
                    context.log.info(f"alerts for {run.contract.name}: {report.summary()}")
                except Exception as exc:
                    context.log.warning(
                        f"eager alert dispatch for {run.contract.name} failed ({exc}); alert_dispatch_sensor will retry"
                    )
            yield to_check_result(run)
        # Give queued lineage events a moment to leave, bounded to 5 % of the step so that a slow or down
        # collector cannot slow monitoring down (what is still queued at exit is counted as dropped).
        lineage.flush(timeout=max(0.05, 0.05 * (time.monotonic() - started)))
        for contract, table in missing:
            yield dg.AssetCheckResult(
                asset_key=asset_key(table),
                check_name=check_type.value,
                passed=True,
                severity=dg.AssetCheckSeverity.WARN,
                description="skipped: the contract file was removed",
                metadata={"floe/status": CheckStatus.SKIPPED.value, "floe/contract": contract.name},
            )

    return _checks


def build_check_groups(
    groups: Sequence[CheckGroup], config: MonitoringConfig, channel_keys: Sequence[str] = ()
) -> dict[str, list[dg.AssetChecksDefinition]]:
    """group name -> its steps (one per chunk of at most MAX_CHECKS_PER_STEP checks)."""
    out: dict[str, list[dg.AssetChecksDefinition]] = {}
    for group in groups:
        keyed = {check_key(group.check_type, t).to_user_string(): t for t in group.targets}
        out[group.name] = [
            build_multi_check(group, part, [keyed[n] for n in names], config, channel_keys)
            for part, names in enumerate(chunks(sorted(keyed), MAX_CHECKS_PER_STEP))
            if names
        ]
    return out


def build_registry_check(report: LoadReport) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=REGISTRY_KEY,
        name=REGISTRY_CHECK_NAME,
        description="Every contract file parses and validates against ODCS",
    )
    def _registry_check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        for err in report.errors:
            context.log.warning(f"contract not loaded: {err}")
        return dg.AssetCheckResult(
            passed=not report.errors,
            severity=dg.AssetCheckSeverity.ERROR,
            description=(
                f"{len(report.contracts)} contracts loaded"
                if not report.errors
                else f"{len(report.errors)} contract(s) failed to load: " + "; ".join(str(e) for e in report.errors)
            )[:2000],
            metadata={
                "floe/contracts_loaded": len(report.contracts),
                "floe/contracts_failed": len(report.errors),
                "floe/errors": dg.MetadataValue.md(errors_markdown(report)),
                "floe/failed_files": ", ".join(sorted({Path(e.source).name for e in report.errors})) or "none",
            },
        )

    return _registry_check
