"""The `floe` command: contracts, checks, the store, and the demo."""

import logging
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from datetime import datetime

    import dagster as dg

    from floe_monitoring_defs.contracts.model import ResponseSLA

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
    (`dagster._cli.utils`); the names set. A file that cannot be read is a usage error naming it."""
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


@contracts.command("register", help="Validate contract files and register them in the store (FR-004).")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
def contracts_register(paths: tuple[Path, ...]) -> None:
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


@contracts.command("list", help="List the contracts the code location loads, with their checks.")
def contracts_list() -> None:
    from floe_monitoring_defs.contracts.registry import load_all
    from floe_monitoring_defs.contracts.servers import server_options
    from floe_monitoring_defs.store.registry import read_registrations

    settings = Settings.from_env()
    report = load_all(settings.contracts_dir, read_registrations(), server_options(settings))
    if not report.contracts and not report.errors:
        click.echo(f"no contracts under {settings.contracts_dir} (set FLOE_CONTRACTS_DIR) and none registered")
        return
    rows = [("CONTRACT", "VERSION", "TABLE", "FRESHNESS", "COLUMNS", "SOURCE")]
    for c in report.contracts:
        for t in c.tables:
            fresh = f"{c.freshness.text} on {t.freshness_column or 'commit time'}" if c.freshness else "-"
            rows.append((c.name, c.version, t.ref.identifier, fresh, str(len(t.columns)), c.source))
    _print_rows(rows)
    for e in report.errors:
        click.echo(f"not loaded: {e}", err=True)


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
        rows.append(
            (
                e.contract,
                e.table,
                e.check,
                result,
                e.severity.upper() if e.severity != "none" else "-",
                e.description if len(e.description) <= 110 else e.description[:107] + "...",
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
    from floe_monitoring_defs.contracts.registry import load_all
    from floe_monitoring_defs.contracts.servers import server_options
    from floe_monitoring_defs.defs.checks import REGISTRY_CHECK_NAME
    from floe_monitoring_defs.store.registry import read_registrations

    try:
        settings = Settings.from_env()
        report = load_all(settings.contracts_dir, read_registrations(), server_options(settings))
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
    from floe_monitoring_defs.contracts.registry import load_all
    from floe_monitoring_defs.contracts.servers import server_options
    from floe_monitoring_defs.store.registry import read_registrations

    settings = Settings.from_env()
    report = load_all(settings.contracts_dir, read_registrations(), server_options(settings))
    return {c.name: c.response for c in report.contracts if c.response is not None}


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
    if Path("dagster.yaml").exists() and not (home / "dagster.yaml").exists():
        shutil.copy("dagster.yaml", home / "dagster.yaml")
    click.echo(f"Iceberg warehouse: {paths.warehouse} (catalog {paths.catalog_db})")
    click.echo(f"Contracts: {contracts_dir}   Dagster home: {home}\n")
    evals = run_checks(None, None)
    kinds = check_kinds()
    print_summary(evals)
    problems = [e for e in evals if not e.passed]
    click.echo("")
    for e in problems:
        if e.status == "error":
            click.echo(f"  {e.contract}: {e.check} check could not complete: {e.description}")
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
