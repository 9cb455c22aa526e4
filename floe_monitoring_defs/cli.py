"""The `floe` command: contracts, checks, the store, and the demo."""

import logging
import os
import re
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from datetime import datetime

    import dagster as dg

    from floe_monitoring_defs.alerting.dispatch import AlertDispatcher
    from floe_monitoring_defs.contracts.model import ResponseSLA
    from floe_monitoring_defs.watch import MonitorCollector

from floe_monitoring_defs.config import ConfigError, Settings
from floe_monitoring_defs.contracts.loader import load_contracts
from floe_monitoring_defs.models import ViolationSeverity

_SEVERITY_ORDER = {s.value: s.rank for s in ViolationSeverity}


class _FloeGroup(click.Group):
    """A configuration or store error anywhere below reaches the user as one line naming the variable, file
    or URL, with exit 1: never a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        from floe_monitoring_defs.store import StoreError

        try:
            return super().invoke(ctx)
        except (ConfigError, StoreError) as exc:
            raise click.ClickException(str(exc)) from None


@click.group(
    cls=_FloeGroup,
    help="floe-monitoring: data contract monitoring on Dagster.\n\nLike `dagster`, floe reads the file .env in the "
    "working directory (the one `floe demo` writes) before anything else: its variables override the "
    "environment's, so `floe` and `dagster dev` started in one directory see the same configuration.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level.")
def cli(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    loaded = load_dotenv_file(Path.cwd() / ".env")
    if loaded:
        logging.getLogger("floe_monitoring").info("loaded environment variables from .env: %s", ", ".join(loaded))


def load_dotenv_file(path: Path) -> list[str]:
    """Put the variables of `path` into the environment, overriding, as Dagster's CLI does with ./.env
    (`dagster/_cli/utils.py`); the names set. A file that cannot be read is a usage error naming it."""
    from dotenv import dotenv_values

    if not path.is_file():
        return []
    try:
        values = {k: v for k, v in dotenv_values(path, encoding="utf-8").items() if v is not None}
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"cannot read {path}: {exc}") from None
    os.environ.update(values)
    return sorted(values)


# -- contracts ---------------------------------------------------------------------------------


@cli.group(help="Validate and list data contracts.")
def contracts() -> None:
    pass


@contracts.command("validate", help="Validate contract files (default: $FLOE_CONTRACTS_DIR). Exit 1 on any error.")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def contracts_validate(paths: tuple[Path, ...]) -> None:
    from floe_monitoring_defs.contracts.servers import server_options

    settings = Settings.from_env()
    targets = list(paths) or [settings.contracts_dir]
    missing = [p for p in targets if not p.exists()]
    for p in missing:
        click.echo(f"ERROR {p}: no such file or directory", err=True)
    report = load_contracts([p for p in targets if p.exists()], server_options(settings))
    for c in report.contracts:
        click.echo(
            f"OK    {c.source}: {c.name} {c.version} ({c.dialect}; {', '.join(t.ref.identifier for t in c.tables)})"
        )
        for nm in c.not_monitored:
            click.echo(f"      not monitored: {nm.field} ({nm.what}): {nm.reason}")
    for e in report.errors:
        click.echo(f"ERROR {e}")
    click.echo(f"{len(report.contracts)} valid, {len(report.errors) + len(missing)} invalid")
    if report.errors or missing:
        sys.exit(1)


@contracts.command(
    "register",
    help="Validate contract files and register them in the store (FR-004); with --table, put one contract in "
    "that Iceberg table's properties instead (found when the store restores none: FLOE_DISCOVERY_NAMESPACES).",
)
@click.argument("paths", nargs=-1, required=False, type=click.Path(path_type=Path, exists=True))
@click.option("--table", "table_name", default=None, help="NAMESPACE.TABLE whose properties get the contract.")
@click.option("--catalog", default=None, help="pyiceberg catalog of --table (default: FLOE_CATALOG, else default).")
@click.option(
    "--location",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="With --table: the contract file the table points at (property floe.contract.location).",
)
@click.option(
    "--inline",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="With --table: a contract file whose text is stored in the table (property floe.contract).",
)
def contracts_register(
    paths: tuple[Path, ...], table_name: str | None, catalog: str | None, location: Path | None, inline: Path | None
) -> None:
    if table_name is not None:
        if paths:
            raise click.UsageError("give contract files, or --table with --location or --inline, not both")
        _register_on_table(table_name, catalog, location, inline)
        return
    if not paths:
        raise click.UsageError("give contract files to register, or --table NS.TABLE (--location PATH | --inline FILE)")
    if catalog or location or inline:
        raise click.UsageError("--catalog, --location and --inline go with --table")
    from floe_monitoring_defs.contracts.loader import ContractLoadError, iter_contract_files
    from floe_monitoring_defs.contracts.registry import register_file
    from floe_monitoring_defs.contracts.servers import server_options
    from floe_monitoring_defs.models import utcnow
    from floe_monitoring_defs.store import MonitoringStore, StoreError, default_db_url

    failed = 0
    options = server_options(Settings.from_env())
    try:
        store = MonitoringStore(default_db_url())
        for f in iter_contract_files(paths):
            try:
                c = register_file(store.registry, f, utcnow(), options)
                click.echo(f"registered {c.name} {c.version} from {f}")
            except ContractLoadError as exc:
                failed += 1
                click.echo(f"ERROR {exc.error}")
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    if failed:
        sys.exit(1)


def _register_on_table(table_name: str, catalog: str | None, location: Path | None, inline: Path | None) -> None:
    """Validate the contract as discovery will load it, then set it in the table's properties (one commit that
    also drops the other contract property, so the table says one thing)."""
    from floe_monitoring_defs.contracts.discovery import INLINE_PROPERTY, LOCATION_PROPERTY, Discovered, load_discovered
    from floe_monitoring_defs.contracts.errors import ContractLoadError
    from floe_monitoring_defs.contracts.files import read_text
    from floe_monitoring_defs.contracts.model import TableRef
    from floe_monitoring_defs.contracts.servers import ServerOptions, server_options
    from floe_monitoring_defs.sources import SourceError
    from floe_monitoring_defs.sources.describe import split_identifier
    from floe_monitoring_defs.sources.iceberg import IcebergSource

    if (location is None) == (inline is None):
        raise click.UsageError("--table takes one of --location PATH or --inline FILE")
    try:
        namespace, name = split_identifier(table_name)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--table'") from None
    settings = Settings.from_env()
    options = server_options(settings) or ServerOptions()
    if location is not None:
        key, other, value = LOCATION_PROPERTY, INLINE_PROPERTY, str(location.expanduser().resolve())
    else:
        assert inline is not None  # for mypy: one of the two is given (checked above)
        try:
            key, other, value = INLINE_PROPERTY, LOCATION_PROPERTY, read_text(inline, options.max_file_bytes)
        except ContractLoadError as exc:
            raise click.ClickException(str(exc.error)) from None
    source = IcebergSource(default_catalog=settings.default_catalog)
    ref = TableRef(namespace=namespace, name=name, catalog=catalog)
    shown = source.catalog_name(ref)
    report = load_discovered([Discovered(shown, ref.identifier, key, value)], options)
    if report.errors:
        raise click.ClickException(f"not set: {report.errors[0]}")
    try:
        table = source.load_table(ref)
        with table.transaction() as tx:
            tx.set_properties({key: value})
            if other in table.properties:
                tx.remove_properties(other)
    except SourceError as exc:
        raise click.ClickException(f"cannot set {key} on {ref.identifier} in catalog {shown!r}: {exc}") from None
    except Exception as exc:  # a commit conflict, a read-only catalog, ...: one line, never a traceback
        raise click.ClickException(
            f"cannot set {key} on {ref.identifier} in catalog {shown!r}: {type(exc).__name__}"
        ) from None
    contract = report.contracts[0]
    click.echo(
        f"set {key} on {ref.identifier} in catalog {shown!r}: contract {contract.name} {contract.version}; it is "
        "monitored when the store restores no registration (FLOE_DISCOVERY_NAMESPACES) after a reload"
    )


@contracts.command("deregister", help="Stop monitoring a registered contract (it stays in history).")
@click.argument("name")
def contracts_deregister(name: str) -> None:
    from floe_monitoring_defs.store import MonitoringStore, StoreError

    try:
        found = MonitoringStore.open_existing().registry.deregister(name)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    if not found:
        raise click.ClickException(f"no registered contract named {name!r}")
    click.echo(f"deregistered {name}; reload the code location to stop its checks")


@contracts.command(
    "list",
    help="List the contracts the code location loads, with their tables and, per contract, the settings its "
    "customProperties floe.monitoring overrides: the effective value and where it came from, beside the global value "
    "(from the FLOE_MONITORING_CONFIG file, or the default). A contract whose overrides the config refuses (a routing "
    "rule to a channel not defined under alerts.channels) is listed as not loaded.",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def contracts_list(fmt: str) -> None:
    import json

    from floe_monitoring_defs.config import effective_settings, load_config, read_config_data
    from floe_monitoring_defs.contract_set import load_contracts_and_registrations

    settings = Settings.from_env()
    try:
        config = load_config(settings.config_path)
        config_data = read_config_data(settings.config_path) if settings.config_path else None
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    config_file = str(settings.config_path) if settings.config_path else None
    report = load_contracts_and_registrations(settings)
    if not report.contracts and not report.errors and fmt == "table":
        click.echo(f"no contracts under {settings.contracts_dir} (set FLOE_CONTRACTS_DIR) and none registered")
        return
    listed = []
    errors = [str(e) for e in report.errors]
    for c in report.contracts:
        where = f"{c.source}: customProperties.floe.monitoring"
        try:  # as the code location merges it (plan_checks): a refused override refuses the contract
            merged = config.merged(c.monitoring_overrides, where)
        except (ConfigError, ValueError) as exc:
            errors.append(str(exc))
            continue
        listed.append((c, effective_settings(config, merged, c.source, config_file, config_data)))
    if fmt == "json":
        doc = {
            "contracts": [
                {
                    "name": c.name,
                    "version": c.version,
                    "source": c.source,
                    "tables": [t.ref.identifier for t in c.tables],
                    "overrides": [
                        {
                            "key": o.key,
                            "value": o.value,
                            "source": o.source,
                            "global_value": o.global_value,
                            "global_source": o.global_source,
                        }
                        for o in overrides
                    ],
                }
                for c, overrides in listed
            ],
            "errors": errors,
        }
        click.echo(json.dumps(doc, indent=2, default=str))
        return
    rows = [("CONTRACT", "VERSION", "TABLE", "FRESHNESS", "COLUMNS", "SOURCE")]
    for c, _ in listed:
        for t in c.tables:
            fresh = f"{c.freshness.text} on {t.freshness_column or 'commit time'}" if c.freshness else "-"
            rows.append((c.name, c.version, t.ref.identifier, fresh, str(len(t.columns)), c.source))
    _print_rows(rows)
    for c, overrides in listed:
        if overrides:
            click.echo(f"\n{c.name}: settings that differ from the global config")
            for o in overrides:
                click.echo(
                    f"  {o.key} = {_setting_text(o.value)}  ({o.source}; global {_setting_text(o.global_value)} "
                    f"from {o.global_source})"
                )
    for e in errors:
        click.echo(f"not loaded: {e}", err=True)


def _setting_text(value: object) -> str:
    """A setting as `floe contracts list` prints it: routing rules as `channel>=severity[ if glob]`."""
    if isinstance(value, list) and all(isinstance(r, dict) and "channel_name" in r for r in value):
        rules = [
            f"{r['channel_name']}>={r.get('min_severity')}"
            + (f" if {r['contract_filter']}" if r.get("contract_filter") else "")
            for r in value
        ]
        return "[" + ", ".join(rules) + "]"
    return "-" if value is None else str(value)


def _semver(ctx: click.Context, param: click.Parameter, value: str) -> str:
    import re

    if not re.fullmatch(r"\d+\.\d+\.\d+", value):
        raise click.BadParameter(f"{value!r} is not a semantic version X.Y.Z")
    return value


@contracts.command(
    "import",
    help="Write a strict ODCS v3.1.0 contract from a live Iceberg table (columns, types, required, field ids, "
    "primary key from identifier fields): how a team adopts floe on an existing table. The catalog is "
    "configured the pyiceberg way (PYICEBERG_CATALOG__<NAME>__*, .pyiceberg.yaml). Exit 1 when the catalog "
    "or the table cannot be read.",
)
@click.option("--catalog", "catalog", required=True, help="pyiceberg catalog name.")
@click.option("--table", "table_name", required=True, metavar="NS.TABLE", help="The table, namespace first.")
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the contract to this file (default: stdout).",
)
@click.option("--name", "contract_name", default=None, help="Contract name (default: the table's name).")
@click.option("--version", "version", default="1.0.0", show_default=True, callback=_semver, help="Contract version.")
def contracts_import(
    catalog: str, table_name: str, output: Path | None, contract_name: str | None, version: str
) -> None:
    from floe_monitoring_defs.contracts.export import contract_document, contract_yaml
    from floe_monitoring_defs.sources import SourceError
    from floe_monitoring_defs.sources.describe import describe, split_identifier
    from floe_monitoring_defs.sources.iceberg import IcebergSource

    try:
        split_identifier(table_name)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--table'") from None
    try:
        described = describe(IcebergSource(), catalog, table_name)
    except SourceError as exc:
        raise click.ClickException(f"cannot import {table_name} from catalog {catalog!r}: {exc}") from None
    except Exception as exc:  # a broken pyiceberg configuration file, ...: one line, never a traceback
        detail = str(exc).splitlines()[0][:300] if str(exc) else ""
        raise click.ClickException(
            f"cannot import {table_name} from catalog {catalog!r}: {type(exc).__name__}: {detail}"
        ) from None
    document = contract_document(described, name=contract_name, version=version)
    text = contract_yaml(described, document)
    if not described.catalog_uri:
        click.echo(
            f"warning: catalog {catalog!r} has no uri; the iceberg server entry has no catalogUrl (ODCS requires "
            "one for type iceberg): add it before validating the contract",
            err=True,
        )
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror}") from None
    click.echo(
        f"wrote {output}: contract {contract_name or described.name} {version} for {described.identifier} "
        f"({len(described.fields)} columns)"
    )


# -- checks ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    contract: str
    table: str
    check: str
    passed: bool
    status: str
    severity: str
    description: str


def run_checks(contract: str | None, check_type: str | None) -> list[Evaluation]:
    """Run the scheduled check jobs in-process against the configured Dagster instance."""
    import dagster as dg

    from floe_monitoring_defs.definitions import build_defs
    from floe_monitoring_defs.defs import REGISTRY_JOB

    defs = build_defs(strict=True)  # a bad config: one line from the CLI, not a failing check row
    repo = defs.get_repository_def()
    jobs = sorted(n for n in repo.job_names if n.endswith("_checks") or n == REGISTRY_JOB)
    if check_type:
        jobs = [n for n in jobs if n.startswith(f"{check_type}_every_")]
    keys: list[dg.AssetCheckKey] | None = None
    if contract:
        keys = [
            k
            for k in defs.resolve_asset_graph().asset_check_keys
            if _check_contract(defs, k) == contract and (not check_type or k.name == check_type)
        ]
        if not keys:
            raise click.ClickException(
                f"no checks for contract {contract!r}" + (f" and type {check_type!r}" if check_type else "")
            )
        adhoc = dg.define_asset_job("floe_cli_checks", selection=dg.AssetSelection.checks(*keys))
        defs = dg.Definitions.merge(defs, dg.Definitions(jobs=[adhoc]))
        jobs = ["floe_cli_checks"]
    instance = _instance()
    out: list[Evaluation] = []
    for name in jobs:
        result = defs.resolve_job_def(name).execute_in_process(
            instance=instance,
            raise_on_error=False,
            tags={"floe/launched_by": "floe-cli"},
            run_config={"loggers": {"console": {"config": {"log_level": _dagster_log_level()}}}},
        )
        if not result.success:
            failure = result.get_run_failure_event()
            raise click.ClickException(f"job {name} failed: {failure.message if failure else 'unknown error'}")
        for ev in result.get_asset_check_evaluations():
            md = {k: v.value for k, v in ev.metadata.items()}
            default_status = "pass" if ev.passed else "fail"
            out.append(
                Evaluation(
                    contract=str(md.get("floe/contract", "-")),
                    table=str(md.get("floe/table", "/".join(ev.asset_key.path))),
                    check=ev.check_name,
                    passed=ev.passed,
                    status=str(md.get("floe/status", default_status)),
                    severity=str(md.get("floe/severity", "none")),
                    description=ev.description or "",
                )
            )
    return out


def _dagster_log_level() -> str:
    return "INFO" if logging.getLogger().isEnabledFor(logging.INFO) else "WARNING"


def _check_contract(defs: object, key: object) -> str | None:
    from floe_monitoring_defs.defs.assets import REGISTRY_KEY

    asset_key = getattr(key, "asset_key", None)
    if asset_key == REGISTRY_KEY:
        return None
    spec = next((s for s in defs.resolve_all_asset_specs() if s.key == asset_key), None)  # type: ignore[attr-defined]
    return None if spec is None else str(spec.metadata.get("floe/contract"))


def _instance() -> "dg.DagsterInstance":
    import dagster as dg

    if os.environ.get("DAGSTER_HOME"):
        Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
        return dg.DagsterInstance.get()
    click.echo(
        "DAGSTER_HOME is not set: Dagster run history is kept in memory only "
        "(the floe store still records every result)",
        err=True,
    )
    return dg.DagsterInstance.ephemeral()


def print_summary(evals: Sequence[Evaluation]) -> None:
    rows = [("CONTRACT", "TABLE", "CHECK", "RESULT", "SEVERITY", "DETAIL")]
    for e in sorted(evals, key=lambda e: (e.contract, e.table, e.check)):
        result = "PASS" if e.passed else ("ERROR" if e.status == "error" else "FAIL")
        # Dagster's check description leads with the severity (or PASS / SKIPPED) for the UI; here the RESULT and
        # SEVERITY columns say it already (a prefix with a reason, such as an escalation's, is kept).
        detail = re.sub(r"^[A-Z]+: ", "", e.description)
        rows.append(
            (
                e.contract,
                e.table,
                e.check,
                result,
                e.severity.upper() if e.severity != "none" else "-",
                detail if len(detail) <= 110 else detail[:107] + "...",
            )
        )
    _print_rows(rows)


def _worst(evals: Sequence[Evaluation]) -> int:
    return max((_SEVERITY_ORDER.get(e.severity, -1) for e in evals), default=-1)


@cli.group(help="Run checks.")
def checks() -> None:
    pass


@checks.command(
    "run",
    help="Run the check jobs the schedules run. Exit 1 when a violation of ERROR or above is found, a check "
    "could not complete, a contract file does not load, or no contract is found.",
)
@click.option("--contract", help="Only this contract's checks.")
@click.option(
    "--type",
    "check_type",
    metavar="KIND",
    help="Only this check kind (freshness, schema_drift, quality, availability, or an installed plugin kind).",
)
def checks_run(contract: str | None, check_type: str | None) -> None:
    from floe_monitoring_defs.checks.registry import check_kinds

    kinds = check_kinds()
    if check_type is not None and check_type not in kinds:
        raise click.BadParameter(
            f"{check_type!r} is not a check kind (installed: {', '.join(kinds)})", param_hint="'--type'"
        )
    from floe_monitoring_defs.contract_set import load_contracts_and_registrations
    from floe_monitoring_defs.defs.checks import REGISTRY_CHECK_NAME

    try:
        settings = Settings.from_env()
        report = load_contracts_and_registrations(settings)
        if not report.contracts:
            failed = (
                f"; {len(report.errors)} file(s) failed to load, the first: {report.errors[0]}" if report.errors else ""
            )
            raise click.ClickException(
                f"no contracts found under {settings.contracts_dir.resolve()} (FLOE_CONTRACTS_DIR) and none "
                f"registered in the store{failed}"
            )
        evals = run_checks(contract, check_type)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    print_summary(evals)
    for e in report.errors:
        click.echo(f"not loaded: {e}", err=True)
    broken = any(e.check == REGISTRY_CHECK_NAME and not e.passed for e in evals) or bool(report.errors)
    if _worst(evals) >= ViolationSeverity.ERROR.rank or any(e.status == "error" for e in evals) or broken:
        sys.exit(1)


# -- store -------------------------------------------------------------------------------------


@cli.group(help="The monitoring store (SQLite by default, PostgreSQL via FLOE_MONITORING_DB_URL).")
def db() -> None:
    pass


@db.command("upgrade", help="Apply the store's migrations up to the newest.")
def db_upgrade() -> None:
    from floe_monitoring_defs.store import MonitoringStore, StoreError, default_db_url

    try:
        store = MonitoringStore(default_db_url(), auto_migrate=False)
        store.db.upgrade()
        click.echo(f"{store.url_display} is at revision {store.db.current_revision()}")
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None


@db.command(
    "cleanup",
    help="Delete raw rows (check results, violations, pings, settled alerts) older than the "
    "retention window, in batches. Daily aggregates are kept.",
)
@click.option(
    "--retention-days",
    type=click.IntRange(min=1),
    default=None,
    help="Keep this many days (default: retention_days of the monitoring config, 90).",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=5000, show_default=True)
def db_cleanup(retention_days: int | None, batch_size: int) -> None:
    from floe_monitoring_defs.config import load_config
    from floe_monitoring_defs.models import utcnow
    from floe_monitoring_defs.store import MonitoringStore, StoreError

    try:
        days = retention_days or load_config().retention_days
        result = MonitoringStore.open_existing().retention.cleanup(utcnow(), days, batch_size)
    except (StoreError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"deleted rows older than {result.cutoff.isoformat()}: {result.results_deleted} check results, "
        f"{result.violations_deleted} violations, {result.pings_deleted} pings, "
        f"{result.alerts_deleted} alert entries (daily aggregates kept)"
    )


# -- alerts ------------------------------------------------------------------------------------


@cli.group(
    help="Route and deliver the alert outbox outside Dagster: any number of `floe alerts dispatch --loop` "
    "replicas (and the code location's sensor) share one PostgreSQL outbox, each alert decided and sent once."
)
def alerts() -> None:
    pass


@alerts.command(
    "dispatch",
    help="Route what is pending and deliver what is due through the configured channels (FLOE_MONITORING_CONFIG), "
    "built as the code location builds them: a channel that cannot be built now has its alerts held, never "
    "fatal. --once: one pass, then exit (exit 1 when the store cannot be reached). --loop: a replica that keeps "
    "dispatching (a Kubernetes Deployment, or a CronJob with --for); SIGTERM stops it after the current pass.",
)
@click.option("--once", "mode", flag_value="once", help="One pass, then exit.")
@click.option("--loop", "mode", flag_value="loop", help="Keep dispatching until SIGTERM (or --for).")
@click.option(
    "--for",
    "duration",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="With --loop: stop after this many seconds (default: run until SIGTERM).",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="With --loop: the pause after a pass that found nothing to do (default: alerts.sensor_interval_seconds).",
)
def alerts_dispatch(mode: str | None, duration: float | None, interval: float | None) -> None:
    from floe_monitoring_defs.alerting.dispatch import open_dispatcher
    from floe_monitoring_defs.config import load_config
    from floe_monitoring_defs.pipeline import drain_spool
    from floe_monitoring_defs.store import MonitoringStore

    if mode is None:
        raise click.UsageError("give --once (one pass) or --loop (a replica)")
    if mode == "once" and (duration is not None or interval is not None):
        raise click.UsageError("--for and --interval go with --loop")
    config = load_config().alerts
    store = MonitoringStore.open_existing()  # a dispatcher never creates or migrates a store
    dispatcher = open_dispatcher(store.outbox, config)
    for name, reason in sorted(dispatcher.unavailable.items()):
        click.echo(f"warning: channel {name} cannot deliver now; its alerts are held and retried: {reason}", err=True)
    try:
        if mode == "once":
            drain_spool(store)  # what was detected while the store was down is routed with the rest
            click.echo(dispatcher.dispatch().summary())
            return
        pause = interval if interval is not None else float(config.sensor_interval_seconds)
        if not _dispatch_loop(dispatcher, duration, pause, before=lambda: drain_spool(store)):
            sys.exit(1)
    finally:
        for channel in dispatcher.channels.values():
            channel.close()
        store.dispose()


def _dispatch_loop(
    dispatcher: "AlertDispatcher", duration: float | None, pause: float, before: "Callable[[], object] | None" = None
) -> bool:
    """Dispatch pass after pass until SIGTERM/SIGINT or `duration`; a pass that finds work is followed by the
    next at once, an idle one by `pause`. A pass the store fails is reported on stderr (one line) and the
    replica carries on (the store may come back). True unless the last pass failed."""
    import signal
    import time

    from floe_monitoring_defs.store import StoreError

    stopping: list[int] = []

    def _stop(signum: int, _frame: object) -> None:  # the pass in progress finishes; the loop ends after it
        stopping.append(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop)
    # From here a SIGTERM ends the loop cleanly (exit 0); a supervisor can wait for this line.
    click.echo(
        f"alert dispatch running: a pass every {pause:g} s when idle, until SIGTERM"
        + ("" if duration is None else f" or {duration:g} s")
    )
    deadline = None if duration is None else time.monotonic() + duration
    passes = failures = routed = suppressed = no_route = delivered = failed = 0
    last_ok = True
    while not stopping:
        busy = False
        try:
            if before is not None:
                before()  # the local spool's records enter the outbox first (never raises)
            report = dispatcher.dispatch()
        except StoreError as exc:
            failures += 1
            last_ok = False
            click.echo(f"alert dispatch pass failed (StoreError): {exc}", err=True)
        else:
            last_ok = True
            routed += report.routed
            suppressed += sum(report.suppressed.values())
            no_route += report.no_route
            delivered += report.delivered
            failed += report.failed
            busy = bool(report.routed or report.no_route or report.suppressed or report.delivered)
        passes += 1
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            break
        end = now if busy else now + pause
        if deadline is not None:
            end = min(end, deadline)
        while not stopping and time.monotonic() < end:  # short sleeps: a signal stops the wait at once
            time.sleep(min(0.1, max(0.0, end - time.monotonic())))
    why = f"signal {signal.Signals(stopping[0]).name}" if stopping else "--for elapsed"
    click.echo(
        f"alert dispatch stopped ({why}) after {passes} passes, {failures} failed: routed {routed}, "
        f"suppressed {suppressed}, no route {no_route}; {delivered} delivered, {failed} failed deliveries"
    )
    return last_ok


@alerts.command(
    "status",
    help="The alert outbox: entries by state, deliveries by channel and state, the age of the oldest pending "
    "alert and undelivered delivery, open incidents. Reads the store only (never creates one).",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"], case_sensitive=False), default="table")
def alerts_status(fmt: str) -> None:
    import json

    from floe_monitoring_defs.models import utcnow
    from floe_monitoring_defs.store import MonitoringStore

    store = MonitoringStore.open_existing()
    try:
        status = store.outbox.status(utcnow())
    finally:
        store.dispose()

    def age(at: "datetime | None") -> float | None:
        return None if at is None else round((status.now - at).total_seconds(), 3)

    incidents = [
        {
            "contract": i.contract_name,
            "violation_type": i.violation_type,
            "priority": i.priority,
            "severity": i.severity,
            "violation_count": i.violation_count,
            "opened_at": i.created_at.isoformat(),
            "updated_at": i.updated_at.isoformat(),
        }
        for i in status.open_incidents
    ]
    if fmt.lower() == "json":
        payload = {
            "as_of": status.now.isoformat(),
            "entries": dict(sorted(status.entries.items())),
            "deliveries": {ch: dict(sorted(s.items())) for ch, s in sorted(status.deliveries.items())},
            "oldest_pending_age_seconds": age(status.oldest_pending_at),
            "oldest_undelivered_age_seconds": age(status.oldest_undelivered_at),
            "open_incidents": incidents,
        }
        click.echo(json.dumps(payload, indent=2))
        return
    entries = ", ".join(f"{k} {v}" for k, v in sorted(status.entries.items())) or "none"
    click.echo(f"outbox entries: {entries}")
    if status.deliveries:
        rows = [("CHANNEL", "DELIVERED", "PENDING", "RETRYING")]
        for ch, s in sorted(status.deliveries.items()):
            rows.append((ch, str(s.get("delivered", 0)), str(s.get("pending", 0)), str(s.get("retrying", 0))))
        _print_rows(rows)
    else:
        click.echo("deliveries: none")
    for label, at in (
        ("pending alert", status.oldest_pending_at),
        ("undelivered delivery", status.oldest_undelivered_at),
    ):
        shown = "none" if at is None else f"{age(at):.0f} s ago ({at.isoformat()})"
        click.echo(f"oldest {label}: {shown}")
    click.echo(f"open incidents: {len(incidents)}")
    if incidents:
        incident_rows = [("PRIORITY", "CONTRACT", "TYPE", "SEVERITY", "VIOLATIONS", "OPENED")]
        for i in incidents:
            incident_rows.append(
                (
                    str(i["priority"]),
                    str(i["contract"]),
                    str(i["violation_type"]),
                    str(i["severity"]),
                    str(i["violation_count"]),
                    str(i["opened_at"]),
                )
            )
        _print_rows(incident_rows)


# -- SLA reports -------------------------------------------------------------------------------


@cli.group(name="sla", help="SLA compliance reporting commands.")
def sla() -> None:
    pass


@sla.command(
    "report",
    help="SLA compliance from the store: daily = yesterday + today so far, weekly = the last 7 "
    "whole UTC days + today, monthly = 30 + today. Examples: floe sla report --contract "
    "orders_v1 --window weekly --format table; floe sla report --format json",
)
@click.option("--contract", help="Only this contract (default: every contract with data in the window).")
@click.option(
    "--window",
    type=click.Choice(["daily", "weekly", "monthly"], case_sensitive=False),
    default="weekly",
    show_default=True,
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"], case_sensitive=False),
    default="table",
    show_default=True,
    help="json: the report model (an object with --contract, else a list).",
)
@click.option(
    "--as-of",
    "as_of",
    type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"]),
    default=None,
    help="Report as of this UTC time instead of now.",
)
def sla_report(contract: str | None, window: str, fmt: str, as_of: "datetime | None") -> None:
    import json

    from floe_monitoring_defs.models import ensure_utc
    from floe_monitoring_defs.sla.render import format_reports
    from floe_monitoring_defs.sla.report import ReportError, SLAReporter
    from floe_monitoring_defs.sla.settings import SLASettings
    from floe_monitoring_defs.store import MonitoringStore, StoreError

    store = None
    try:
        settings = SLASettings.from_env()
        store = MonitoringStore.open_existing()
        reporter = SLAReporter(store, default_target_pct=settings.default_target_pct)
        now = None if as_of is None else ensure_utc(as_of)
        responses = _response_promises()
        reports = (
            [reporter.report(contract, window.lower(), now, response=responses.get(contract))]
            if contract
            else reporter.reports(window.lower(), now, responses=responses)
        )
    except (StoreError, ReportError, ConfigError, ValueError) as exc:
        click.echo(f"Error: Failed to generate report: {exc}", err=True)
        sys.exit(1)
    finally:
        if store is not None:
            store.dispose()
    if fmt.lower() == "json":
        payload = reports[0].model_dump(mode="json") if contract else [r.model_dump(mode="json") for r in reports]
        click.echo(json.dumps(payload, indent=2, default=str))
    elif not reports:
        click.echo(f"no monitoring data in the {window.lower()} window")
    else:
        click.echo(format_reports(reports))


def _response_promises() -> "dict[str, ResponseSLA]":
    """Each loaded contract's timeToDetect/Notify/Repair promises, for the report (contracts that do not
    load are reported without them: the report reads the store, not the contracts)."""
    from floe_monitoring_defs.contract_set import load_contracts_and_registrations

    settings = Settings.from_env()
    report = load_contracts_and_registrations(settings)
    return {c.name: c.response for c in report.contracts if c.response is not None}


# -- health ------------------------------------------------------------------------------------


@cli.command(
    help="The deployment's health (FR-005): the store, the catalogs the contracts use, the alert channels, the "
    "last completed check per check kind against its cadence, the contracts and the outbox backlog. Exit 0 "
    "healthy, 1 degraded, 2 unhealthy. Reads the store only (never creates one). As a Kubernetes probe: "
    "floe health --format json --fail-on unhealthy.",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"], case_sensitive=False), default="table")
@click.option(
    "--fail-on",
    "fail_on",
    type=click.Choice(["degraded", "unhealthy"], case_sensitive=False),
    default="degraded",
    show_default=True,
    help="unhealthy: exit 0 when only degraded (a catalog or channel outside the pod is down).",
)
@click.option(
    "--catalog-timeout",
    "catalog_timeout",
    type=click.FloatRange(min=0.1),
    default=3.0,
    show_default=True,
    help="Seconds each catalog may take to answer.",
)
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S"]), default=None, hidden=True)
def health(fmt: str, fail_on: str, catalog_timeout: float, as_of: "datetime | None") -> None:
    from floe_monitoring_defs.health import check_health

    report = check_health(now=as_of, catalog_timeout_s=catalog_timeout)
    click.echo(report.render_json() if fmt.lower() == "json" else report.render_table())
    sys.exit(report.exit_code("unhealthy" if fail_on.lower() == "unhealthy" else "degraded"))


@cli.group(help='The monitor\'s own metrics for Prometheus, read from the store (README "Watching the watcher").')
def metrics() -> None:
    pass


def _collector(refresh: float) -> "MonitorCollector":
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        raise click.ClickException(
            "floe metrics needs prometheus_client: pip install 'floe-monitoring[otel]'"
        ) from None
    from floe_monitoring_defs.watch import MonitorCollector

    return MonitorCollector(refresh_s=refresh)


@metrics.command("serve", help="Serve /metrics until SIGTERM: last check per contract and kind, outbox, channels.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 in a pod).")
@click.option("--port", type=click.IntRange(1, 65535), default=9464, show_default=True)
@click.option(
    "--refresh-seconds",
    "refresh",
    type=click.FloatRange(min=0),
    default=15.0,
    show_default=True,
    help="Seconds between two reads of the store, in the background (scrapes get the newest read at once).",
)
def metrics_serve(host: str, port: int, refresh: float) -> None:
    import signal
    import threading

    from floe_monitoring_defs.watch import serve

    collector = _collector(refresh)
    try:
        server = serve(collector, host, port)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    click.echo(f"floe metrics: serving http://{host}:{port}/metrics", err=True)
    stop.wait()
    server.shutdown()
    collector.close()


@metrics.command("show", help="Print the metrics once, in Prometheus text format.")
def metrics_show() -> None:
    from floe_monitoring_defs.watch import exposition

    collector = _collector(0.0)
    try:
        click.echo(exposition(collector), nl=False)
    finally:
        collector.close()


# -- demo --------------------------------------------------------------------------------------


@cli.command(help="Build a local Iceberg warehouse with example tables and run every check on it.")
@click.option(
    "--dir",
    "demo_dir",
    type=click.Path(path_type=Path),
    default=Path(".floe_demo"),
    show_default=True,
    help="Where the warehouse, the Dagster home and the store go.",
)
@click.option(
    "--contracts",
    "contracts_dir",
    type=click.Path(path_type=Path, exists=True),
    default=Path("examples/contracts"),
    show_default=True,
)
def demo(demo_dir: Path, contracts_dir: Path) -> None:
    from floe_monitoring_defs.checks.registry import check_kinds
    from floe_monitoring_defs.demo import apply_env, build_warehouse, write_env_file
    from floe_monitoring_defs.store import DB_URL_ENV
    from floe_monitoring_defs.store.database import DB_FILE_NAME

    paths = build_warehouse(demo_dir)
    env = paths.catalog_env() | {"FLOE_CONTRACTS_DIR": str(contracts_dir.resolve())}
    os.environ.setdefault("DAGSTER_HOME", str(paths.dagster_home))
    home = Path(os.environ["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    # The store goes in .env too, so `floe checks run` / `floe sla report` after the demo read the demo's store
    # (a store the user configured is left alone, and its URL, which may hold a password, is not written).
    demo_store = f"sqlite:///{(home / DB_FILE_NAME).resolve()}"
    if os.environ.get(DB_URL_ENV, "").strip() in ("", demo_store):
        env[DB_URL_ENV] = demo_store
    apply_env(env)
    # The instance config Dagster reads (only from $DAGSTER_HOME/dagster.yaml), from the package, whatever the
    # working directory; a copy already there (maybe edited) is kept.
    if not (home / "dagster.yaml").exists():
        shutil.copyfile(Path(__file__).with_name("dagster.yaml"), home / "dagster.yaml")
    click.echo(f"Iceberg warehouse: {paths.warehouse} (catalog {paths.catalog_db})")
    click.echo(f"Contracts: {contracts_dir}   Dagster home: {home}\n")
    evals = run_checks(None, None)
    kinds = check_kinds()
    print_summary(evals)
    problems = [e for e in evals if not e.passed]
    click.echo("")
    for e in problems:
        if e.status == "error":
            reason = e.description.removeprefix("ERROR (check could not complete): ")
            click.echo(f"  {e.contract}: {e.check} check could not complete: {reason}")
            continue
        kind = kinds[e.check].failure_label if e.check in kinds else e.check
        click.echo(f"  {e.contract}: {kind} ({e.severity.upper()})")
    early = [e for e in evals if e.passed and e.severity == "info"]
    for e in early:
        click.echo(f"  {e.contract}: early warning (INFO) on {e.check}")
    wrote = write_env_file(Path(".env"), env)
    click.echo(f"\n{len(evals)} checks, {len(problems)} failing. Open the same results in the Dagster UI with:")
    hint = "" if wrote else f"   (first: source {paths.root / 'env'})"
    dagster = Path(sys.executable).parent / "dagster"
    click.echo(f"  DAGSTER_HOME={home} {dagster if dagster.exists() else 'dagster'} dev{hint}")
    if not wrote:
        (paths.root / "env").write_text("".join(f"export {k}={v}\n" for k, v in sorted(env.items())), "utf-8")


def _print_rows(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip())


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
