"""The monitored tables as observable external assets, plus the `floe/contract_registry` asset.

Each contract table is an `AssetSpec` declared through `multi_observable_source_asset` (`observed_tables`): Dagster
never writes these tables, it observes them. Every freshness run reports an `AssetObservation` per table it read
(defs/checks.py), and the UI's "Observe" runs `observed_tables` itself (Iceberg metadata only), so the catalog
shows "Observed <time>" with the table's last update instead of "Never materialized". Observations, unlike
materializations, leave every check result standing: Dagster judges a check against the asset's latest
materialization, which these tables never get.

A contract with a freshness (latency) SLA gives each of its tables a Dagster `FreshnessPolicy`: a time window
failing at the SLA and warning at `severity_thresholds.warning_pct` of it, the points where floe's freshness check
turns ERROR and WARNING (`freshness_policy`).
"""

import warnings
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, cast

import dagster as dg

from floe_monitoring_defs.checks.plan import Plan
from floe_monitoring_defs.config import SeverityThresholds
from floe_monitoring_defs.contracts import names
from floe_monitoring_defs.contracts.model import FreshnessSLA, LoadReport, MonitoredContract, MonitoredTable
from floe_monitoring_defs.defs.resources import IcebergCatalogResource
from floe_monitoring_defs.sources.base import SourceError
from floe_monitoring_defs.sources.iceberg import data_commit_time, table_state

# The Dagster names a contract becomes are derived (or refused at validation) in contracts/names.py.
REGISTRY_KEY = dg.AssetKey(list(names.REGISTRY_ASSET_KEY))
tag_value = names.tag_value


def asset_key(table: MonitoredTable) -> dg.AssetKey:
    return dg.AssetKey(table.ref.asset_path)


def group_name(contract: MonitoredContract) -> str:
    return names.group_name(contract.domain)


def column_schema(table: MonitoredTable) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=c.physical_name,
                type=c.physical_type or c.logical_type or "unknown",
                description=c.description,
                constraints=dg.TableColumnConstraints(
                    nullable=not c.required,
                    unique=c.primary_key,
                    other=[f"classification: {c.classification}"] if c.classification else None,
                ),
            )
            for c in table.columns
        ]
    )


# Dagster refuses time windows under a minute (`TimeWindowFreshnessPolicy.from_timedeltas`).
MIN_POLICY_WINDOW = timedelta(minutes=1)


def freshness_policy(sla: FreshnessSLA | None, thresholds: SeverityThresholds) -> dg.FreshnessPolicy | None:
    """The contract's freshness SLA as a Dagster time-window policy: fail at the SLA, warn at `warning_pct` % of it
    (whole seconds; left out when it is not between one minute and the SLA). None without an SLA, or for an SLA
    under one minute, which Dagster cannot express (floe's check still grades it)."""
    if sla is None or sla.threshold < MIN_POLICY_WINDOW:
        return None
    warn = timedelta(seconds=round(sla.threshold.total_seconds() * thresholds.warning_pct / 100.0))
    warn_window = warn if MIN_POLICY_WINDOW <= warn < sla.threshold else None
    return dg.FreshnessPolicy.time_window(fail_window=sla.threshold, warn_window=warn_window)


def table_specs(plan: Plan) -> list[dg.AssetSpec]:
    """Every monitored table's spec, each with its contract's effective config (`floe.monitoring` overrides merged),
    so a contract's own `warning_pct` shapes its freshness policy."""
    return [table_spec(p.contract, t, p.config.severity_thresholds) for p in plan.contracts for t in p.contract.tables]


def table_spec(
    contract: MonitoredContract, table: MonitoredTable, thresholds: SeverityThresholds | None = None
) -> dg.AssetSpec:
    """`thresholds`: the contract's effective severity thresholds (the spec's defaults when not given)."""
    tags = {"floe/contract": tag_value(contract.name), "floe/dialect": contract.dialect}
    for t in contract.tags:
        tags[f"floe/tag.{tag_value(t)}"[:63]] = ""
    metadata: dict[str, object] = {
        "dagster/column_schema": column_schema(table),
        "dagster/table_name": table.ref.identifier,
        "floe/contract": contract.name,
        "floe/contract_version": contract.version,
        "floe/contract_source": contract.source,
        "floe/catalog": table.ref.catalog or "(FLOE_CATALOG)",
    }
    policy = freshness_policy(contract.freshness, thresholds or SeverityThresholds())
    if contract.freshness:
        metadata["floe/freshness_sla"] = contract.freshness.text
        metadata["floe/freshness_column"] = table.freshness_column or "(snapshot commit time)"
        if policy is None:
            metadata["floe/freshness_policy"] = "none: Dagster's freshness policies need a window of at least 1 minute"
    if contract.availability:
        metadata["floe/availability_sla"] = contract.availability.text
    if contract.consumers:
        metadata["floe/consumers"] = ", ".join(contract.consumers)
    return dg.AssetSpec(
        key=asset_key(table),
        description=table.description or contract.description or f"Table of data contract {contract.name}",
        group_name=group_name(contract),
        owners=[o for o in contract.owners if names.is_valid_owner(o)],
        tags=tags,
        kinds={"iceberg"},
        metadata=metadata,
        freshness_policy=policy,
    )


def registry_spec(report: LoadReport, contracts_dir: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=REGISTRY_KEY,
        description="The data contracts this code location monitors, and the ones it could not load.",
        group_name="floe",
        kinds={"yaml"},
        metadata={
            "floe/contracts_dir": contracts_dir,
            "floe/contracts_loaded": len(report.contracts),
            "floe/contracts_failed": len(report.errors),
            "floe/errors": dg.MetadataValue.md(errors_markdown(report)),
            "floe/promises_not_monitored": sum(len(c.not_monitored) for c in report.contracts),
            "floe/not_monitored": dg.MetadataValue.md(not_monitored_markdown(report)),
        },
    )


def errors_markdown(report: LoadReport) -> str:
    if not report.errors:
        return "All contracts loaded."
    rows = "\n".join(f"| `{e.source}` | `{e.field}` | {e.message.replace('|', '/')} |" for e in report.errors)
    return f"| file | field | problem |\n|---|---|---|\n{rows}"


NOT_MONITORED_ROWS = 200  # the table is metadata of one asset: bounded, the rest counted


def not_monitored_markdown(report: LoadReport) -> str:
    """The contracts' promises floe does not check, each with its reason (ODCS fields never silently dropped)."""
    items = [(c, nm) for c in report.contracts for nm in c.not_monitored]
    if not items:
        return "Every promise of the loaded contracts is monitored."
    rows = "\n".join(
        f"| {c.name} | `{nm.field}` | {nm.what.replace('|', '/')} | {nm.reason.replace('|', '/')} |"
        for c, nm in items[:NOT_MONITORED_ROWS]
    )
    more = f"\n\n... and {len(items) - NOT_MONITORED_ROWS} more" if len(items) > NOT_MONITORED_ROWS else ""
    return f"| contract | field | promise | why not monitored |\n|---|---|---|---|\n{rows}{more}"


OBSERVE_OP = "floe_observe_tables"


def observed_tables(plan: Plan) -> dg.AssetsDefinition | None:
    """Every monitored table (`table_specs`) as one subsettable observable source asset; None without tables.

    Observing a table reads its Iceberg metadata only: the newest data-changing snapshot's commit time as
    `dagster/last_updated_timestamp`, the current snapshot id and its summary's row count (no manifest or data file;
    the freshness check adds the SLA column's bound from the manifests in its own observations). A table that
    cannot be loaded is not observed (an observation would claim it was read): the others are, then the run fails
    naming it and the reason.
    """
    specs = table_specs(plan)
    if not specs:
        return None
    tables = {asset_key(t): t for p in plan.contracts for t in p.contract.tables}
    # `multi_observable_source_asset` is marked beta in Dagster 1.13, and is the public way to declare assets that
    # Dagster observes rather than materializes. Its BetaWarning names nothing a user of floe can act on.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)

        @dg.multi_observable_source_asset(  # type: ignore[untyped-decorator]  # @beta's wrapper drops the types
            specs=specs,
            name=OBSERVE_OP,
            can_subset=True,
            description="Observe the monitored Iceberg tables: last update, snapshot and row count from metadata",
        )
        def observe(context: dg.AssetExecutionContext, iceberg: IcebergCatalogResource) -> Iterator[dg.ObserveResult]:
            source = iceberg.source()
            failed: list[str] = []
            for key in sorted(context.selected_asset_keys, key=lambda k: k.to_user_string()):
                ref = tables[key].ref
                metadata: dict[str, Any] = {"floe/table": ref.identifier}
                try:
                    table = source.load_table(ref)
                except SourceError as exc:
                    context.log.warning(f"{ref.identifier}: not observed: {exc}")
                    failed.append(f"{key.to_user_string()}: {exc}")
                    continue
                committed, _ = data_commit_time(table)
                state = table_state(table, committed)
                if committed is not None:
                    metadata["dagster/last_updated_timestamp"] = dg.MetadataValue.timestamp(committed)
                    metadata["floe/last_update_method"] = "snapshot_commit"
                if state.get("current_snapshot_id") is not None:
                    metadata["floe/snapshot_id"] = str(state["current_snapshot_id"])  # 64-bit: text, as in checks
                if state.get("total_records") is not None:
                    metadata["dagster/row_count"] = int(state["total_records"])
                yield dg.ObserveResult(asset_key=key, metadata=metadata)
            if failed:  # the others are observed; the run fails naming what could not be read
                raise dg.Failure(description="not observed: " + "; ".join(failed))

    return cast(dg.AssetsDefinition, observe)
