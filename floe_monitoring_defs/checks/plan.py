"""The plan: which checks run how often, from the loaded contracts, the monitoring config and the kinds.

Each contract's config is the global one with its `floe.monitoring` overrides merged. A kind applies to a
contract by the kind's own rule and then checks every table of it; targets of one kind and effective
interval form a `CheckGroup` (one checks job and schedule each). The same plan gives the SLA expectations:
what each (contract, check type) is owed per day and its compliance target.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from floe_monitoring_defs.cadence import cron_interval, effective_interval
from floe_monitoring_defs.checks.kind import CheckKind, Target
from floe_monitoring_defs.config import ConfigError, MonitoringConfig
from floe_monitoring_defs.contracts.model import ContractError, LoadReport, MonitoredContract
from floe_monitoring_defs.models import Expectation, Key, ViolationType


@dataclass(frozen=True)
class CheckGroup:
    """Checks of one type that share a cadence; each becomes one or more steps."""

    check_type: ViolationType
    minutes: int  # the interval; with `cron`, its even spacing (0 when uneven)
    targets: tuple[Target, ...]
    cron: str | None = None  # set by an SLA's own `scheduler: cron` + `schedule` (ODCS)

    @property
    def name(self) -> str:
        if self.cron is not None:
            return f"{self.check_type.value}_cron_{cron_slug(self.cron)}"
        return f"{self.check_type.value}_every_{self.minutes}m"


def cron_slug(cron: str) -> str:
    """A cron expression as a name part: `0 6 * * *` -> `0_6_x_x_x` (`*` x, `/` s, `,` c, `-` t)."""
    table = str.maketrans({"*": "x", "/": "s", ",": "c", "-": "t", " ": "_"})
    return "_".join(cron.split()).translate(table)


@dataclass(frozen=True)
class PlannedContract:
    """A loaded contract with its effective config and, per applicable kind, its effective interval."""

    contract: MonitoredContract
    config: MonitoringConfig
    intervals: Mapping[str, int | None]  # kind name -> minutes (only kinds that apply; None: an uneven cron)
    crons: Mapping[str, str]  # kind name -> the cron an SLA of the contract sets for it

    @property
    def scheduled(self) -> bool:
        return self.config.enabled and self.config.mode != "on_demand"


@dataclass(frozen=True)
class Plan:
    groups: tuple[CheckGroup, ...]
    contracts: tuple[PlannedContract, ...]
    report: LoadReport  # the contracts kept, and every load error (bad overrides included)
    kinds: Mapping[str, type[CheckKind]]

    def expectations(self, default_target_pct: float) -> dict[Key, Expectation]:
        """(contract, check type) -> what its cadence owes per day and its compliance target."""
        out: dict[Key, Expectation] = {}
        for p in self.contracts:
            for name, minutes in p.intervals.items():
                out[(p.contract.name, name)] = Expectation(
                    interval_minutes=minutes if p.scheduled else None,
                    tables=len(p.contract.tables),
                    target_pct=self.kinds[name].sla_target_pct(p.contract, default_target_pct),
                )
        return out


def check_kind_keys(config: MonitoringConfig, kinds: Mapping[str, type[CheckKind]], source: str) -> None:
    """Raise `ConfigError` when the config names a check kind that is not installed (an interval key or a
    custom metric's `check_type`), so a typo fails the load instead of being ignored."""
    known = {k.cadence_key() for k in kinds.values()}
    installed = ", ".join(sorted(kinds)) or "none"
    for key in config.check_intervals.intervals():
        if key not in known:
            raise ConfigError(
                f"{source}: check_intervals.{key}: no installed check kind uses this key (installed kinds: {installed})"
            )
    for i, metric in enumerate(config.custom_metrics):
        ctype = metric.source.check_type
        if ctype is not None and ctype.value not in kinds:
            raise ConfigError(
                f"{source}: custom_metrics[{i}].source.check_type: {ctype.value!r} is not an "
                f"installed check kind ({installed})"
            )


def plan_checks(report: LoadReport, config: MonitoringConfig, kinds: Mapping[str, type[CheckKind]]) -> Plan:
    """Group every (contract, table) by check type and cadence; a bad per-contract override is a load error."""
    buckets: dict[tuple[str, int, str], list[Target]] = {}
    planned: list[PlannedContract] = []
    errors = list(report.errors)
    for contract in report.contracts:
        where = f"{contract.source}: customProperties.floe.monitoring"
        try:
            cfg = config.merged(contract.monitoring_overrides, where)
            if contract.monitoring_overrides:
                check_kind_keys(cfg, kinds, where)
            applicable = [name for name, kind in kinds.items() if kind.applies_under(contract, cfg)]
            crons = {name: contract.schedules[name] for name in applicable if name in contract.schedules}
            intervals: dict[str, int | None] = {
                name: effective_interval(kinds[name].interval_minutes(cfg)) for name in applicable if name not in crons
            }
        except (ConfigError, ValueError) as exc:
            errors.append(ContractError(contract.source, "customProperties.floe.monitoring", str(exc)))
            continue
        try:
            intervals.update({name: cron_interval(cron) for name, cron in crons.items()})
        except ValueError as exc:
            errors.append(ContractError(contract.source, "slaProperties.schedule", f"unsupported cron: {exc}"))
            continue
        planned.append(PlannedContract(contract, cfg, intervals, crons))
        if not cfg.enabled:
            continue
        for name, minutes in intervals.items():
            key = (name, minutes or 0, crons.get(name, ""))
            buckets.setdefault(key, []).extend((contract, t) for t in contract.tables)
    groups = tuple(
        CheckGroup(ViolationType(name), minutes, tuple(targets), cron or None)
        for (name, minutes, cron), targets in sorted(buckets.items())
    )
    kept = LoadReport(tuple(p.contract for p in planned), tuple(errors))
    return Plan(groups, tuple(planned), kept, dict(kinds))
