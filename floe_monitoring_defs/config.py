"""MonitoringConfig hierarchy (spec 7.4) and the process settings read from the environment.

The config file (`FLOE_MONITORING_CONFIG`) is YAML; every key is optional and defaults to the
spec's value. A wrong key or value raises `ConfigError` naming the file and the dotted key.
Secrets are never written inline: channels name an environment variable (`*_env`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from floe_monitoring_defs.models import ViolationSeverity, ViolationType

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class ConfigError(ValueError):
    """A monitoring config value is wrong; the message names the source and the key."""


_CADENCE_KEY = re.compile(r"[a-z][a-z0-9_]{0,62}_minutes")


class CheckIntervalConfig(BaseModel):
    """Minutes between two runs of each check kind, keyed by the kind's cadence key (`<kind>_minutes`).

    The spec's four kinds have their spec defaults here; a plugin kind's key (`volume_minutes: 30`) is
    accepted too and defaults to what the kind declares. Which keys a kind uses is the kind's business
    (`CheckKind.cadence_key`): a key no installed kind uses is reported when definitions load.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    freshness_minutes: int = Field(15, ge=1)
    schema_drift_minutes: int = Field(60, ge=1)
    quality_minutes: int = Field(360, ge=1)
    availability_minutes: int = Field(5, ge=1)

    @model_validator(mode="after")
    def _extra_keys(self) -> CheckIntervalConfig:
        for key, value in (self.model_extra or {}).items():
            if not _CADENCE_KEY.fullmatch(key):
                raise ValueError(f"{key}: not a check interval (keys are <check kind>_minutes)")
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key}: must be a whole number of minutes, at least 1 (got {value!r})")
        return self

    def minutes(self, cadence_key: str) -> int | None:
        """The interval set for a cadence key (a spec default included); None when nothing sets it."""
        return self.intervals().get(cadence_key)

    def intervals(self) -> dict[str, int]:
        """Every cadence key with its interval."""
        return {**{name: getattr(self, name) for name in type(self).model_fields}, **(self.model_extra or {})}


class SeverityThresholds(BaseModel):
    model_config = _FROZEN

    info_pct: float = Field(80.0, ge=0, le=100)
    warning_pct: float = Field(90.0, ge=0, le=100)
    critical_count: int = Field(3, ge=1)
    critical_window_hours: int = Field(24, ge=1)


class AlertChannelRoutingRule(BaseModel):
    model_config = _FROZEN

    channel_name: str
    min_severity: ViolationSeverity
    contract_filter: str | None = None


class AlertConfig(BaseModel):
    model_config = _FROZEN

    routing_rules: list[AlertChannelRoutingRule] = Field(default_factory=list)
    dedup_window_minutes: int = Field(30, ge=1)
    rate_limit_per_contract: int = Field(10, ge=1)
    rate_limit_window_minutes: int = Field(60, ge=1)
    # Named channels: {type: webhook|slack|email|alertmanager|pagerduty|<plugin>, ...}; secrets as `*_env`
    # (the NAME of an environment variable). Built and validated by alerting.channels when definitions load.
    channels: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # A violation that lasts is announced again after this long (like Alertmanager's repeat_interval).
    renotify_minutes: int = Field(240, ge=1)
    dagster_url: str | None = None  # base URL of the Dagster UI, for links in alerts
    retry_base_seconds: float = Field(2.0, gt=0)  # delivery retries back off exponentially from this...
    retry_max_seconds: float = Field(300.0, gt=0)  # ...up to this
    delivery_lease_seconds: float = Field(120.0, gt=0)  # a claimed delivery not acknowledged by then is retried
    sensor_interval_seconds: int = Field(5, ge=1)  # alert_dispatch_sensor cadence


class SchemaDriftConfig(BaseModel):
    """Schema drift settings.

    `unenforced_required`: the severity of a column the contract declares `required` while the Iceberg field is
    optional (as Spark and dbt write every field). The table does not enforce the promise, but the data may keep
    it: the quality check verifies it from the manifests' null counts. `off` reports nothing.
    """

    model_config = _FROZEN

    unenforced_required: Literal["info", "warning", "off"] = "info"


class ColumnConstraintConfig(BaseModel):
    """Column constraints of the contract (required, unique, primary key, logicalTypeOptions) as quality rules."""

    model_config = _FROZEN

    enabled: bool = True
    severity: ViolationSeverity = ViolationSeverity.ERROR  # of each generated rule (its weight follows it)


BUILTIN_METRICS = frozenset(
    {
        "floe_contract_violations",
        "floe_contract_freshness_seconds",
        "floe_contract_availability_ratio",
        "floe_contract_quality_score",
        "floe_contract_check_duration_seconds",
        "floe_alert_delivery_failures",
        "floe_alerts_suppressed",
        "floe_quality_engine_unavailable",
        "floe_lineage_emit_failures",
    }
)
MetricLabel = Literal["contract", "contract_version", "table", "check_type", "domain"]


def _default_labels() -> list[MetricLabel]:
    return ["contract"]


class CustomMetricSource(BaseModel):
    """Where a custom metric's value comes from: a check's evidence value, or a quality rule's measure."""

    model_config = _FROZEN

    check_type: ViolationType | None = None
    evidence: str | None = None  # a key of the check's evidence (details), e.g. age_seconds, rows_checked
    quality_rule: str | None = None  # the name of a quality rule; its measured value (count, %, SQL result)

    @model_validator(mode="after")
    def _one_source(self) -> CustomMetricSource:
        if (self.evidence is None) == (self.quality_rule is None):
            raise ValueError("give exactly one of `evidence` (with `check_type`) or `quality_rule`")
        if self.evidence is not None and self.check_type is None:
            raise ValueError("`evidence` needs the `check_type` whose evidence it reads")
        return self


class CustomMetricDefinition(BaseModel):
    """A metric beyond the built-in set (FR-046), emitted as a gauge on every matching check run."""

    model_config = _FROZEN

    name: str = Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]{0,199}$")
    description: str = ""
    unit: str = Field("1", max_length=63)
    labels: list[MetricLabel] = Field(default_factory=_default_labels)
    source: CustomMetricSource


class MonitoringConfig(BaseModel):
    model_config = _FROZEN

    enabled: bool = True
    mode: str = Field("scheduled", pattern=r"^(scheduled|continuous|on_demand)$")
    check_intervals: CheckIntervalConfig = Field(default_factory=CheckIntervalConfig)
    severity_thresholds: SeverityThresholds = Field(default_factory=SeverityThresholds)
    alerts: AlertConfig = Field(default_factory=AlertConfig)
    retention_days: int = Field(90, ge=1)
    clock_skew_tolerance_seconds: int = Field(60, ge=0)
    check_timeout_seconds: int = Field(30, ge=1)
    # Quality (FR-015..018): the weighted score (0..1) below which the check fails, and the engine
    # (an entry point of group `floe.quality_engines`) that evaluates the contract's rules.
    custom_metrics: list[CustomMetricDefinition] = Field(default_factory=list)
    quality_threshold: float = Field(0.8, ge=0, le=1)
    quality_engine: str = Field("duckdb", min_length=1)
    # The score-below-threshold finding is at most as severe as the worst failed rule (one failed ERROR rule is
    # not a CRITICAL); false grades the score by its own bands only.
    quality_score_severity_cap: bool = True
    column_constraints: ColumnConstraintConfig = Field(default_factory=ColumnConstraintConfig)
    schema_drift: SchemaDriftConfig = Field(default_factory=SchemaDriftConfig)

    @model_validator(mode="after")
    def _metric_names(self) -> MonitoringConfig:
        seen: set[str] = set()
        for i, m in enumerate(self.custom_metrics):
            if m.name in BUILTIN_METRICS:
                raise ValueError(f"custom_metrics[{i}].name: {m.name!r} is already a metric of the monitor")
            if m.name in seen:
                raise ValueError(f"custom_metrics[{i}].name: {m.name!r} is defined twice")
            seen.add(m.name)
        return self

    def merged(self, overrides: Mapping[str, Any] | None, source: str = "overrides") -> MonitoringConfig:
        """This config with `overrides` deep-merged over it (per-contract `floe.monitoring`)."""
        if not overrides:
            return self
        data = _deep_merge(self.model_dump(mode="json"), dict(overrides))
        return parse_config(data, source)


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line per problem: `source: key.path: message (got value)`."""
    lines = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "<root>"
        got = err.get("input")
        shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
        lines.append(f"{source}: {path}: {err['msg']}{shown}")
    return "\n".join(lines)


def parse_config(data: Any, source: str) -> MonitoringConfig:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: the monitoring config must be a mapping, got {type(data).__name__}")
    try:
        return MonitoringConfig.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


def load_config(path: str | os.PathLike[str] | None = None) -> MonitoringConfig:
    """Read the monitoring config; None means `$FLOE_MONITORING_CONFIG`, and neither means defaults."""
    if path is None:
        path = os.environ.get("FLOE_MONITORING_CONFIG") or None
    if path is None:
        return MonitoringConfig()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the monitoring config: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from None
    return parse_config(data, str(p))


@dataclass(frozen=True)
class Settings:
    """Process-level settings from the environment (DESIGN, "Interfaces the project owes its users")."""

    contracts_dir: Path
    config_path: Path | None
    db_url: str | None
    default_catalog: str | None
    # Which of a contract's servers is this deployment's (its `environment` or `server` name).
    server_environment: str | None = None
    # pyiceberg catalog name per ODCS server type (glue, hive, trino, ...): FLOE_SERVER_CATALOGS=glue=prod,hive=hms
    server_catalogs: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        config_path = env.get("FLOE_MONITORING_CONFIG") or None
        return cls(
            contracts_dir=Path(env.get("FLOE_CONTRACTS_DIR") or "./contracts"),
            config_path=Path(config_path) if config_path else None,
            db_url=env.get("FLOE_MONITORING_DB_URL") or None,
            default_catalog=env.get("FLOE_CATALOG") or None,
            server_environment=(env.get("FLOE_SERVER_ENVIRONMENT") or "").strip() or None,
            server_catalogs=parse_server_catalogs(env.get("FLOE_SERVER_CATALOGS") or ""),
        )


def parse_server_catalogs(text: str) -> tuple[tuple[str, str], ...]:
    """`glue=prod_glue, hive=hms` -> (("glue", "prod_glue"), ("hive", "hms")); ConfigError naming the variable."""
    pairs: list[tuple[str, str]] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        kind, sep, catalog = (x.strip() for x in part.partition("="))
        if not sep or not kind or not catalog:
            raise ConfigError(f"FLOE_SERVER_CATALOGS: {part!r} is not <server type>=<pyiceberg catalog name>")
        pairs.append((kind.lower(), catalog))
    return tuple(pairs)
