"""MonitoringConfig hierarchy (spec 7.4) and the process settings read from the environment.

The config file (`FLOE_MONITORING_CONFIG`) is YAML; every key is optional and defaults to the
spec's value. A wrong key or value raises `ConfigError`, one line per problem as `file: dotted.key: message`
(list items as `[i]`), never a traceback, a pydantic URL or the value of a key that may hold a secret.
The file is read bounded (a regular file, at most `MAX_CONFIG_BYTES`, UTF-8; duplicate keys, alias bombs,
deep nesting and huge numbers are refused naming the key and line).
Secrets are never written inline: channels name an environment variable (`*_env`).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from floe_monitoring_defs.models import ViolationSeverity, ViolationType, utcnow

_FROZEN = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True)
class ConfigProblem:
    """One wrong value: where it came from (a file, a variable, a contract), its dotted key, what is wrong."""

    source: str
    key: str  # `alerts.routing_rules[0].channel_name`; `<root>` for the document itself
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.key}: {self.message}"


class ConfigError(ValueError):
    """A monitoring config value is wrong; the message names the source and the key (one line per problem).

    `problems` holds them one by one when they are known (a config file); errors raised from a plain
    message (an environment variable) have none."""

    def __init__(self, message: str | None = None, *, problems: Sequence[ConfigProblem] = ()) -> None:
        self.problems = tuple(problems)
        super().__init__(message if message is not None else "\n".join(str(p) for p in self.problems))


class ConfigValueError(ValueError):
    """Raised by validators: problems keyed relative to the model that raised them, rendered as dotted keys."""

    def __init__(self, *problems: tuple[str, str]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{key}: {message}" for key, message in problems))


# An environment variable NAME as people write them; a value outside this (a URL, a token with `-` or `.`,
# base64) is not a name. Within it, a long run of mixed letters and digits is what keys and tokens look like
# (hex routing keys, base62 API tokens), not what anyone names a variable.
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_TOKEN_LIKE_PART = 16


def env_var_name_problem(value: object) -> str | None:
    """Why `value` is not the NAME of an environment variable, or None. Never quotes the value: it may be the
    secret itself, pasted where its variable's name belongs."""
    hint = "give the NAME of an environment variable that holds the secret, never the secret itself"
    if not isinstance(value, str) or not value:
        return f"must name an environment variable ({hint})"
    token_like = any(
        len(part) >= _TOKEN_LIKE_PART and re.search(r"[0-9]", part) and re.search(r"[A-Za-z]", part)
        for part in value.split("_")
    )
    if not _ENV_NAME.fullmatch(value) or token_like:
        return f"not the name of an environment variable; {hint} (the value is not shown)"
    return None


def channel_key(channel_name: str) -> str:
    """The identifier form of a channel name (Dagster resource keys allow letters, digits and `_` only)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", channel_name)


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
        problems: list[tuple[str, str]] = []
        for key, value in (self.model_extra or {}).items():
            if not _CADENCE_KEY.fullmatch(key):
                problems.append((key, "not a check interval (keys are <check kind>_minutes)"))
            elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
                problems.append((key, f"must be a whole number of minutes, at least 1 (got {_shown(value)})"))
        if problems:
            raise ConfigValueError(*problems)
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
    # (the NAME of an environment variable). Each is built and validated on its own by alerting.channels when
    # definitions load: a bad one (even one that is not a mapping) disables that channel only, so Any here.
    channels: dict[str, Any] = Field(default_factory=dict)
    # A violation that lasts is announced again after this long (like Alertmanager's repeat_interval).
    renotify_minutes: int = Field(240, ge=1)
    dagster_url: str | None = None  # base URL of the Dagster UI, for links in alerts
    retry_base_seconds: float = Field(2.0, gt=0)  # delivery retries back off exponentially from this...
    retry_max_seconds: float = Field(300.0, gt=0)  # ...up to this
    delivery_lease_seconds: float = Field(120.0, gt=0)  # a claimed delivery not acknowledged by then is retried
    sensor_interval_seconds: int = Field(5, ge=1)  # alert_dispatch_sensor cadence
    # Pending alerts one routing pass decides in one transaction (a pass loops pages until none is pending).
    route_page_size: int = Field(1000, ge=1, le=5000)
    # Delivery passes (alerting.delivery). No new batch (nor, for channels sending one request per alert, a new
    # request) starts after the budget; what remains stays due for the next pass. A pass therefore lasts at most
    # the budget + one channel timeout (10 s by default): 25 s, well inside Dagster's 60 s sensor limit.
    dispatch_budget_seconds: float = Field(15.0, gt=0)
    eager_dispatch_budget_seconds: float = Field(5.0, gt=0)  # the check step's own attempt at its alerts
    delivery_groups_per_claim: int = Field(200, ge=1)  # (contract, channel) groups claimed at once, one batch each
    delivery_concurrency_per_channel: int = Field(4, ge=1)  # batches in flight per channel (channels in parallel)
    # Circuit breaker per channel: after this many timeouts / connection errors in a row the channel's remaining
    # batches are held (`circuit_open`, retried with the usual backoff) and the channel rests for the cooldown
    # (at most retry_max_seconds), then one batch probes it.
    breaker_failure_threshold: int = Field(2, ge=1)
    breaker_cooldown_seconds: float = Field(30.0, gt=0)

    def entry_settings(self) -> AlertSettings:
        """The settings routing decides an outbox entry with (what a contract may override)."""
        return AlertSettings(
            routing_rules=list(self.routing_rules),
            dedup_window_minutes=self.dedup_window_minutes,
            renotify_minutes=self.renotify_minutes,
            rate_limit_per_contract=self.rate_limit_per_contract,
            rate_limit_window_minutes=self.rate_limit_window_minutes,
        )


class AlertSettings(BaseModel):
    """What routing decides one outbox entry with: a contract's effective rules and windows, resolved when its
    check wrote the entry and stored with it (`alert_outbox.alert_settings`), so every routing pass, whatever
    config or contracts it loaded, decides the entry alike. An entry without them follows the pass's global
    `alerts` config (`AlertConfig.entry_settings`)."""

    model_config = _FROZEN

    routing_rules: list[AlertChannelRoutingRule] = Field(default_factory=list)
    dedup_window_minutes: int = Field(30, ge=1)
    renotify_minutes: int = Field(240, ge=1)
    rate_limit_per_contract: int = Field(10, ge=1)
    rate_limit_window_minutes: int = Field(60, ge=1)


# What a contract's `floe.monitoring` `alerts` may set (the rest of `alerts`, channels first, is the deployment's).
CONTRACT_ALERT_WINDOWS = (
    "dedup_window_minutes",
    "renotify_minutes",
    "rate_limit_per_contract",
    "rate_limit_window_minutes",
)
CONTRACT_ALERT_KEYS = frozenset({"routing", "routing_rules", "exclude_channels", *CONTRACT_ALERT_WINDOWS})
ROUTING_MODES = ("extend", "replace")


def _contract_alerts(
    base: Mapping[str, Any], alerts: object, *, channels_known: bool
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """A contract's `alerts` override applied to the global `alerts` (as JSON data): its routing rules extend the
    global ones (`routing: extend`, the default) or replace them (`routing: replace`), then every rule to a channel
    of `exclude_channels` is dropped; its windows replace the global ones. Returns the merged data and the
    problems, keyed under `alerts.`. A contract never defines a channel: the channels its rules and exclusions
    name must be defined under the global `alerts.channels` (unless `channels_known` is False: the contract is
    checked on its own, as `floe contracts validate` does, without the deployment's config)."""
    out = dict(base)
    if not isinstance(alerts, Mapping):
        return out, [("alerts", "must be a mapping of alert settings")]
    problems: list[tuple[str, str]] = []
    for key in sorted(str(k) for k in alerts if str(k) not in CONTRACT_ALERT_KEYS):
        what = "a contract never defines a channel" if key == "channels" else "a setting of the deployment"
        allowed = ", ".join(sorted(CONTRACT_ALERT_KEYS))
        problems.append((f"alerts.{key}", f"{what} (global monitoring config); a contract may set only {allowed}"))
    defined = base.get("channels") or {}
    shown = ", ".join(sorted(defined)) or "none"

    def unknown(name: object) -> str | None:
        if not isinstance(name, str) or not name:
            return "must name a channel"
        if channels_known and name not in defined:
            return f"{_shown(name)} is not a channel defined under alerts.channels of the monitoring config ({shown})"
        return None

    mode = alerts.get("routing", "extend")
    if mode not in ROUTING_MODES:
        problems.append(("alerts.routing", f"must be extend or replace (got {_shown(mode)})"))
        mode = "extend"
    own = alerts.get("routing_rules", [])
    if not isinstance(own, list):
        problems.append(("alerts.routing_rules", "must be a list of rules {channel_name, min_severity}"))
        own = []
    for i, rule in enumerate(own):
        if not isinstance(rule, Mapping):
            problems.append((f"alerts.routing_rules[{i}]", "must be a rule {channel_name, min_severity}"))
            continue
        if "contract_filter" in rule:
            problems.append(
                (f"alerts.routing_rules[{i}].contract_filter", "a contract's own rules apply to that contract only")
            )
        if why := unknown(rule.get("channel_name")):
            problems.append((f"alerts.routing_rules[{i}].channel_name", why))
    excluded = alerts.get("exclude_channels", [])
    if not isinstance(excluded, list):
        problems.append(("alerts.exclude_channels", "must be a list of channel names"))
        excluded = []
    for i, name in enumerate(excluded):
        if why := unknown(name):
            problems.append((f"alerts.exclude_channels[{i}]", why))
    rules = ([] if mode == "replace" else list(base.get("routing_rules") or [])) + [
        dict(r) for r in own if isinstance(r, Mapping)
    ]
    drop = {n for n in excluded if isinstance(n, str)}
    out["routing_rules"] = [r for r in rules if not (isinstance(r, Mapping) and r.get("channel_name") in drop)]
    if not channels_known:  # checked on its own: the deployment defines these channels (or says it does not)
        named = {r.get("channel_name") for r in out["routing_rules"] if isinstance(r, Mapping)}
        out["channels"] = {**dict(defined), **{n: {} for n in named if isinstance(n, str) and n not in defined}}
    for key in CONTRACT_ALERT_WINDOWS:
        if key in alerts:
            out[key] = alerts[key]
    return out, problems


class SchemaDriftConfig(BaseModel):
    """Schema drift settings.

    `unenforced_required`: the severity of a column the contract declares `required` while the Iceberg field is
    optional (as Spark and dbt write every field). The table does not enforce the promise, but the data may keep
    it: the quality check verifies it from the manifests' null counts. `off` reports nothing.
    """

    model_config = _FROZEN

    unenforced_required: Literal["info", "warning", "off"] = "info"


class ContextConfig(BaseModel):
    """Root-cause context on every violation (FR-047): the table's recent snapshots, the check's pattern, and what a
    host (the Dagster adapter) adds (pipeline runs, upstream status). Read from metadata and the event log only;
    a part not ready within `budget_ms` of the check is left out with a note, so no check waits longer."""

    model_config = _FROZEN

    enabled: bool = True
    budget_ms: int = Field(200, ge=1, le=10_000)
    max_snapshots: int = Field(20, ge=1, le=200)  # snapshots listed since the last passing check
    max_runs: int = Field(5, ge=0, le=50)  # pipeline runs (and upstream assets) listed by the host's part
    max_bytes: int = Field(8_000, ge=1_000, le=65_536)  # the serialized context, trimmed oldest-first beyond it
    flapping_changes: int = Field(4, ge=2)  # status changes within 24 h from which a check counts as flapping


class AnomalyConfig(BaseModel):
    """Learned thresholds (the `volume` check, checks/volume.py): what the table's own snapshot history predicts.

    Opt-in per contract (`floe.monitoring: {anomaly: {volume: true, cadence: true}}`) or for every contract here.
    `volume` grades the rows each data-changing commit added, the rows per complete UTC day and the total rows;
    `cadence` grades the time since the last data-changing commit against the table's usual gaps. The model is
    median / MAD over the last `history_days`, with hour-of-day and day-of-week effects once the history spans
    3 and 14 days (`seasonality: auto`); no volume series alerts before the history holds `min_history` commits
    and spans `min_history_days`, and cadence before `min_history` gaps. WARNING beyond `sensitivity` robust
    standard deviations, ERROR beyond `error_sensitivity`; a volume band is never narrower than `min_band_pct` %
    of the expected value, and a silence is never flagged before the usual gap plus `cadence_min_slack_pct` %
    (twice that for ERROR), nor before `cadence_min_silence_minutes` (a table that commits every minute is not
    paged for a three-minute pause). The fitted model is kept in the store and refitted at most `refit_hours` old;
    between refits a run reads only the newest snapshots.
    """

    model_config = _FROZEN

    volume: bool = False
    cadence: bool = False
    min_history: int = Field(24, ge=3, le=100_000)
    min_history_days: int = Field(14, ge=2, le=366)
    history_days: int = Field(56, ge=2, le=366)
    level_days: int = Field(7, ge=1, le=366)
    refit_hours: int = Field(6, ge=1, le=168)
    sensitivity: float = Field(3.5, gt=0, le=100)
    error_sensitivity: float = Field(8.0, gt=0, le=100)
    min_band_pct: float = Field(10.0, ge=0, le=1000)
    cadence_min_slack_pct: float = Field(25.0, ge=0, le=10_000)
    cadence_min_silence_minutes: int = Field(10, ge=0, le=100_000)  # no silence shorter than this is flagged
    seasonality: Literal["auto", "daily", "weekly", "none"] = "auto"

    @model_validator(mode="after")
    def _ordered(self) -> AnomalyConfig:
        if self.error_sensitivity < self.sensitivity:
            raise ConfigValueError(
                (
                    "error_sensitivity",
                    f"must be at least sensitivity ({self.sensitivity:g}); got {self.error_sensitivity:g}",
                )
            )
        return self

    @property
    def enabled(self) -> bool:
        return self.volume or self.cadence


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


# Dagster resolves asset jobs in O(N^2) per multi-asset step: 500 checks per step keep 5,000 contracts loading fast.
MAX_CHECKS_PER_STEP = 500


class StepResources(BaseModel):
    """Kubernetes resources of each step pod (`k8s` executor): `{requests: {cpu: 500m, memory: 1Gi}, limits: ...}`."""

    model_config = _FROZEN

    requests: dict[str, str | int] = Field(default_factory=dict)
    limits: dict[str, str | int] = Field(default_factory=dict)


class ExecutorConfig(BaseModel):
    """How the steps of a checks job run (one step = one chunk of at most `checks_per_step` checks of one type).

    `default` keeps Dagster's default executor, what the location has always used: each step in its own process
    for a launched run (multiprocess), in the calling process for `execute_in_process`. `in_process` runs every step
    in the run's process (no process start per step); `multiprocess` one process per step, `max_concurrent` at once
    (Dagster's default: the CPU count); `k8s` one Kubernetes pod per step (dagster-k8s `k8s_job_executor`; needs the
    K8sRunLauncher), `max_concurrent` at once, each with `step_resources`. Smaller `checks_per_step` means more,
    smaller steps to spread over processes or pods.
    """

    model_config = _FROZEN

    type: Literal["default", "in_process", "multiprocess", "k8s"] = "default"
    max_concurrent: int | None = Field(None, ge=1)
    checks_per_step: int = Field(MAX_CHECKS_PER_STEP, ge=1, le=MAX_CHECKS_PER_STEP)
    step_resources: StepResources | None = None

    @model_validator(mode="after")
    def _options_of_the_type(self) -> ExecutorConfig:
        problems: list[tuple[str, str]] = []
        if self.max_concurrent is not None and self.type not in ("multiprocess", "k8s"):
            problems.append(("max_concurrent", f"only for the multiprocess and k8s executors, not {self.type!r}"))
        if self.step_resources is not None and self.type != "k8s":
            problems.append(("step_resources", f"only for the k8s executor, not {self.type!r}"))
        if problems:
            raise ConfigValueError(*problems)
        return self


class SLAConfig(BaseModel):
    """The SLA aggregation (`contract_sla_daily`). A setting of the deployment: a contract's `floe.monitoring`
    override of it has no effect.

    `partitions_start` (YYYY-MM-DD): the asset's first daily partition. Unset: the first day the store holds
    check results (read when the definitions load); with an empty or unreachable store, today minus
    `retention_days` (the oldest day whose raw rows can still be aggregated).
    """

    model_config = _FROZEN

    partitions_start: date | None = None

    @field_validator("partitions_start", mode="before")
    @classmethod
    def _a_day(cls, value: object) -> object:
        # A plain date only: YAML gives `2026-01-01` as a date, JSON (a merged override) as a string. Pydantic
        # would also take a number (a Unix time) or a datetime, which here can only be a mistake.
        day: date | None = None
        if value is None:
            return value
        if isinstance(value, date) and not isinstance(value, datetime):
            day = value
        elif isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value.strip()):
            try:
                day = date.fromisoformat(value.strip())
            except ValueError:
                pass
        if day is None:
            raise ValueError("must be a date written YYYY-MM-DD")
        # A start after today would leave the asset without partitions and its schedule without a day to run.
        if day > utcnow().date():
            raise ValueError("must be today (UTC) or earlier, not a future day")
        return day


class MonitoringConfig(BaseModel):
    model_config = _FROZEN

    enabled: bool = True
    mode: Literal["scheduled", "continuous", "on_demand"] = "scheduled"
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
    context: ContextConfig = Field(default_factory=ContextConfig)
    # Learned volume / cadence thresholds from Iceberg snapshot history (the `volume` check); off unless asked for.
    anomaly: AnomalyConfig = Field(default_factory=AnomalyConfig)
    # How the checks jobs' steps run (in-process, multiprocess, one Kubernetes pod per step); `default`: Dagster's.
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    # SLA aggregation: the first partition of `contract_sla_daily` (`sla.partitions_start`).
    sla: SLAConfig = Field(default_factory=SLAConfig)

    @model_validator(mode="after")
    def _cross_references(self) -> MonitoringConfig:
        """What single fields cannot say: metric names unique, routes to defined channels, channel keys distinct."""
        problems: list[tuple[str, str]] = []
        seen: set[str] = set()
        for i, m in enumerate(self.custom_metrics):
            if m.name in BUILTIN_METRICS:
                problems.append((f"custom_metrics[{i}].name", f"{m.name!r} is already a metric of the monitor"))
            elif m.name in seen:
                problems.append((f"custom_metrics[{i}].name", f"{m.name!r} is defined twice"))
            seen.add(m.name)
        channels = self.alerts.channels
        defined = ", ".join(sorted(channels)) or "none"
        for i, rule in enumerate(self.alerts.routing_rules):
            if rule.channel_name not in channels:
                problems.append(
                    (
                        f"alerts.routing_rules[{i}].channel_name",
                        f"{rule.channel_name!r} is not a channel defined under alerts.channels (defined: {defined}); "
                        "its alerts would go nowhere",
                    )
                )
        keys: dict[str, str] = {}
        for name in channels:
            other = keys.setdefault(channel_key(name), name)
            if other != name:
                problems.append(
                    (f"alerts.channels.{name}", f"too close to the name {other!r} (the two would share one resource)")
                )
        if problems:
            raise ConfigValueError(*problems)
        return self

    def merged(
        self, overrides: Mapping[str, Any] | None, source: str = "overrides", *, channels_known: bool = True
    ) -> MonitoringConfig:
        """This config with `overrides` deep-merged over it (per-contract `floe.monitoring`); its `alerts` follow
        `_contract_alerts` (rules extended or replaced, channels excluded, never defined). `channels_known`
        False checks a contract without the deployment's config (the channels its rules name are taken as
        defined)."""
        if not overrides:
            return self
        rest = {k: v for k, v in overrides.items() if k != "alerts"}
        data = _deep_merge(self.model_dump(mode="json"), rest)
        if "alerts" in overrides:
            data["alerts"], problems = _contract_alerts(
                data["alerts"], overrides["alerts"], channels_known=channels_known
            )
            if problems:
                raise ConfigError(problems=[ConfigProblem(source, key, message) for key, message in problems])
        return parse_config(data, source)


@dataclass(frozen=True)
class EffectiveSetting:
    """A setting where a contract's effective config differs from the global one (`floe contracts list`): the
    dotted key, the contract's value and where it came from, the global value and where that came from
    (`config <file>` when the config file sets it, else `default`)."""

    key: str
    value: Any
    source: str
    global_value: Any
    global_source: str


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists (routing rules) are single values."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def effective_settings(
    config: MonitoringConfig,
    contract: MonitoringConfig,
    contract_source: str,
    config_file: str | None = None,
    config_data: Mapping[str, Any] | None = None,
) -> list[EffectiveSetting]:
    """The settings of `contract` (the global `config` merged with a contract's overrides) that differ from
    `config`, sorted by key. `config_data` is the config file's own data (what it sets), `config_file` its path."""
    mine = _flatten(contract.model_dump(mode="json"))
    ours = _flatten(config.model_dump(mode="json"))
    set_in_file = _flatten(config_data) if config_data else {}
    out = []
    for key in sorted(set(mine) | set(ours)):
        if key.startswith("alerts.channels") or mine.get(key) == ours.get(key):
            continue
        in_file = config_file is not None and any(k == key or k.startswith(key + ".") for k in set_in_file)
        out.append(
            EffectiveSetting(
                key,
                mine.get(key),
                f"contract {contract_source}: customProperties.floe.monitoring",
                ours.get(key),
                f"config {config_file}" if in_file else "default",
            )
        )
    return out


def read_config_data(path: str | os.PathLike[str]) -> Any:
    """The config file's own data, as written (what it sets, before defaults): for provenance."""
    p = Path(path)
    return parse_yaml(_read_config_text(p), str(p))


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


# Keys whose value may be a credential (or a URL carrying one): their input is never echoed in an error.
_SECRETISH = re.compile(r"secret|passw|token|credential|auth|key|url|dsn|_env", re.IGNORECASE)
_SHOWN_MAX = 60


def _shown(value: object) -> str:
    """A value as an error may quote it (short scalars only)."""
    if isinstance(value, str) and len(value) > _SHOWN_MAX:
        return repr(value[:_SHOWN_MAX] + "…")
    return repr(value)


def _dotted(loc: Sequence[str | int]) -> str:
    """("alerts", "routing_rules", 0, "channel_name") -> "alerts.routing_rules[0].channel_name"."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


def _join(base: str, key: str) -> str:
    if base == "<root>":
        return key
    return base + key if key.startswith("[") else f"{base}.{key}"


def _quotable(err: Mapping[str, Any], loc: Sequence[str | int]) -> bool:
    """Whether the error may quote its input: a scalar, not an unknown key's (which may be anything, a pasted
    secret included), nothing under alerts.channels, no key that may hold a credential."""
    value = err.get("input")
    if err.get("type") == "extra_forbidden" or value is None or not isinstance(value, str | int | float | bool):
        return False
    names = [str(p) for p in loc if not isinstance(p, int)]
    if names[:2] == ["alerts", "channels"]:
        return False
    return not (names and _SECRETISH.search(names[-1]))


def validation_problems(exc: ValidationError, source: str) -> list[ConfigProblem]:
    """Pydantic's errors as `ConfigProblem`s: dotted keys with `[i]` for list items, its message without the
    `Value error, ` prefix or a documentation URL, the input quoted only where `_quotable` allows."""
    out: list[ConfigProblem] = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        base = _dotted(loc)
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, ConfigValueError):
            out.extend(ConfigProblem(source, _join(base, key), message) for key, message in cause.problems)
            continue
        message = str(cause) if isinstance(cause, ValueError) else str(err["msg"])
        if _quotable(err, loc):
            message += f" (got {_shown(err['input'])})"
        out.append(ConfigProblem(source, base, message))
    return out


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line per problem: `source: key.path: message`."""
    return "\n".join(str(p) for p in validation_problems(exc, source))


def parse_config(data: Any, source: str) -> MonitoringConfig:
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(
            problems=[
                ConfigProblem(source, "<root>", f"the monitoring config must be a mapping, got {type(data).__name__}")
            ]
        )
    try:
        return MonitoringConfig.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(problems=validation_problems(exc, source)) from None


MAX_CONFIG_BYTES = 1024 * 1024  # a monitoring config is a page of YAML; anything this big is a wrong file
MAX_YAML_VALUES = 100_000  # values after aliases are expanded (an alias bomb expands exponentially)
MAX_YAML_DEPTH = 64
MAX_NUMBER_DIGITS = 100
_NUMBER_TAGS = frozenset({"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"})


def _read_config_text(p: Path) -> str:
    """The file's text: a regular file (not a device, FIFO or directory), at most MAX_CONFIG_BYTES, UTF-8."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; the fstat below then refuses it.
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise ConfigError(f"{p}: not a regular file; FLOE_MONITORING_CONFIG must name a YAML file")
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the monitoring config: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{p}: larger than {MAX_CONFIG_BYTES // 1024} KiB; not a monitoring config")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{p}: line {line}: not UTF-8 text (byte {exc.start})") from None


def _yaml_error(source: str, exc: yaml.YAMLError) -> ConfigError:
    """A YAML error by line and column, without the snippet of the document PyYAML would print (a line of the
    file may hold anything, a pasted secret included)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or "cannot be parsed"
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "<root>"
    return ConfigError(problems=[ConfigProblem(source, where, f"not valid YAML: {problem}")])


class _TreeCheck:
    """Walks a composed YAML node graph once per node: duplicate keys, depth, huge numbers, and the size the
    document has once aliases are expanded (what validation would walk), all before anything is constructed."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sizes: dict[int, int] = {}
        self.walking: set[int] = set()

    def fail(self, key: str, node: yaml.Node, message: str) -> ConfigError:
        shown = key if len(key) <= 120 else key[:120] + "…"  # a key 64 levels deep says nothing more
        return ConfigError(problems=[ConfigProblem(self.source, shown, f"line {node.start_mark.line + 1}: {message}")])

    def size(self, node: yaml.Node, key: str, depth: int) -> int:
        known = self.sizes.get(id(node))
        if known is not None:
            return known
        if depth > MAX_YAML_DEPTH:
            raise self.fail(key, node, f"nested more than {MAX_YAML_DEPTH} levels deep")
        if id(node) in self.walking:
            raise self.fail(key, node, "an alias refers to the value that contains it")
        self.walking.add(id(node))
        total = 1
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for k, v in node.value:
                name = str(k.value) if isinstance(k, yaml.ScalarNode) else "<key>"
                child = _join(key, name) if key else name
                if isinstance(k, yaml.ScalarNode) and k.tag != "tag:yaml.org,2002:merge":
                    if name in first:
                        raise self.fail(child, k, f"duplicate key (first at line {first[name]})")
                    first[name] = k.start_mark.line + 1
                total += self.size(k, child, depth + 1) + self.size(v, child, depth + 1)
        elif isinstance(node, yaml.SequenceNode):
            for i, v in enumerate(node.value):
                total += self.size(v, _join(key, f"[{i}]") if key else f"[{i}]", depth + 1)
        elif node.tag in _NUMBER_TAGS and len(str(node.value)) > MAX_NUMBER_DIGITS:
            raise self.fail(key or "<root>", node, f"a number of more than {MAX_NUMBER_DIGITS} digits")
        self.walking.discard(id(node))
        if total > MAX_YAML_VALUES:
            raise self.fail(key or "<root>", node, f"more than {MAX_YAML_VALUES} values once aliases are expanded")
        self.sizes[id(node)] = total
        return total


def parse_yaml(text: str, source: str) -> Any:
    """YAML text -> Python data, or ConfigError naming the line (and the key where there is one)."""
    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as exc:
            raise _yaml_error(source, exc) from None
        except RecursionError:
            raise ConfigError(f"{source}: nested too deeply to be a monitoring config") from None
        if node is None:
            return None
        _TreeCheck(source).size(node, "", 0)
        try:
            return loader.construct_document(node)
        except yaml.YAMLError as exc:
            raise _yaml_error(source, exc) from None
        except (ValueError, RecursionError) as exc:  # what the bounds above should already have caught
            raise ConfigError(f"{source}: cannot be read as YAML data ({type(exc).__name__})") from None
    finally:
        loader.dispose()


def load_config(path: str | os.PathLike[str] | None = None) -> MonitoringConfig:
    """Read the monitoring config; None means `$FLOE_MONITORING_CONFIG`, and neither means defaults."""
    if path is None:
        path = os.environ.get("FLOE_MONITORING_CONFIG") or None
    if path is None:
        return MonitoringConfig()
    p = Path(path)
    return parse_config(parse_yaml(_read_config_text(p), str(p)), str(p))


DEFAULT_CONTRACT_MAX_BYTES = 4 * 1024 * 1024  # a contract of 5,000 columns is ~1 MB of YAML

# The local spool of check records the store could not take (store/spool.py). A record is 1-20 kB: 10,000
# records are hours of a large deployment's failures; a week covers an outage over a long weekend.
DEFAULT_SPOOL_MAX_FILES = 10_000
DEFAULT_SPOOL_MAX_BYTES = 256 * 1024 * 1024
DEFAULT_SPOOL_MAX_AGE_SECONDS = 7 * 24 * 3600.0
SPOOL_DIR_NAME = "floe_spool"


@dataclass(frozen=True)
class SpoolSettings:
    """Where and how much the spool keeps: `FLOE_SPOOL_DIR` (default `$DAGSTER_HOME/floe_spool`, else
    `./.floe/spool`), `FLOE_SPOOL_MAX_FILES`, `FLOE_SPOOL_MAX_BYTES` (`256M`), `FLOE_SPOOL_MAX_AGE` (seconds, or
    `90m`, `12h`, `7d`). A record past `max_files` / `max_bytes` is not spooled, one older than `max_age` is not
    moved into the store: both are dropped, logged at ERROR and counted (`floe_spool_dropped`)."""

    directory: Path
    max_files: int = DEFAULT_SPOOL_MAX_FILES
    max_bytes: int = DEFAULT_SPOOL_MAX_BYTES
    max_age_seconds: float = DEFAULT_SPOOL_MAX_AGE_SECONDS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SpoolSettings:
        env = os.environ if environ is None else environ
        raw = (env.get("FLOE_SPOOL_DIR") or "").strip()
        home = (env.get("DAGSTER_HOME") or "").strip()
        if raw:
            directory = Path(raw).expanduser()
        elif home:
            directory = Path(home).expanduser() / SPOOL_DIR_NAME
        else:
            directory = Path(".floe") / "spool"
        max_files = (env.get("FLOE_SPOOL_MAX_FILES") or "").strip()
        if max_files and not (max_files.isdigit() and 0 < int(max_files) <= 10**9):
            raise ConfigError(f"FLOE_SPOOL_MAX_FILES: {max_files[:40]!r} is not a positive number of files")
        return cls(
            directory=directory.resolve(),
            max_files=int(max_files) if max_files else DEFAULT_SPOOL_MAX_FILES,
            max_bytes=_parse_bytes(
                "FLOE_SPOOL_MAX_BYTES", env.get("FLOE_SPOOL_MAX_BYTES") or "", DEFAULT_SPOOL_MAX_BYTES
            ),
            max_age_seconds=_parse_duration(
                "FLOE_SPOOL_MAX_AGE", env.get("FLOE_SPOOL_MAX_AGE") or "", DEFAULT_SPOOL_MAX_AGE_SECONDS
            ),
        )


def _parse_bytes(variable: str, text: str, default: int) -> int:
    """A positive number of bytes (`268435456`, `256M`, `512k`, `1G`); empty means `default`."""
    text = text.strip()
    if not text:
        return default
    m = re.fullmatch(r"([0-9]{1,15})\s*(?:([kKmMgG])[iI]?)?[bB]?", text)
    if not m or int(m.group(1)) < 1:
        raise ConfigError(f"{variable}: {text[:40]!r} is not a number of bytes (e.g. 268435456 or 256M)")
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[(m.group(2) or "").lower()]


def _parse_duration(variable: str, text: str, default: float) -> float:
    """A positive duration in seconds, or with a unit `s`, `m`, `h`, `d` (`90m`, `7d`); empty means `default`."""
    text = text.strip()
    if not text:
        return default
    m = re.fullmatch(r"([0-9]{1,9}(?:\.[0-9]{1,6})?)\s*([smhdSMHD]?)", text)
    if not m or float(m.group(1)) <= 0:
        raise ConfigError(f"{variable}: {text[:40]!r} is not a duration (seconds, or e.g. 90m, 12h, 7d)")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2).lower()]


DEFAULT_DISCOVERY_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class DiscoverySettings:
    """Where the code location looks for contracts in table properties when the store restores none (FR-004)."""

    namespaces: tuple[tuple[str, ...], ...]
    catalogs: tuple[str, ...]
    timeout_seconds: float = DEFAULT_DISCOVERY_TIMEOUT_SECONDS

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> DiscoverySettings | None:
        """None when FLOE_DISCOVERY_NAMESPACES is empty (discovery is off); ConfigError naming the variable."""
        namespaces: list[tuple[str, ...]] = []
        for part in (p.strip() for p in (environ.get("FLOE_DISCOVERY_NAMESPACES") or "").split(",")):
            if not part:
                continue
            levels = tuple(x.strip() for x in part.split("."))
            if not all(levels):
                raise ConfigError(
                    f"FLOE_DISCOVERY_NAMESPACES: {part[:60]!r} is not a namespace (e.g. shop or sales.eu)"
                )
            namespaces.append(levels)
        if not namespaces:
            return None
        catalogs = [c.strip() for c in (environ.get("FLOE_DISCOVERY_CATALOGS") or "").split(",") if c.strip()]
        default = (environ.get("FLOE_CATALOG") or "").strip() or "default"
        timeout = _parse_duration(
            "FLOE_DISCOVERY_TIMEOUT", environ.get("FLOE_DISCOVERY_TIMEOUT") or "", DEFAULT_DISCOVERY_TIMEOUT_SECONDS
        )
        return cls(tuple(dict.fromkeys(namespaces)), tuple(dict.fromkeys(catalogs or [default])), timeout)


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
    # Largest contract file read (FLOE_CONTRACT_MAX_BYTES); a larger one is refused by name, never read.
    contract_max_bytes: int = DEFAULT_CONTRACT_MAX_BYTES
    # The local spool for check records the store cannot take (None: read from the environment when used).
    spool: SpoolSettings | None = None
    # Dagster's GraphQL endpoint (FLOE_DAGSTER_GRAPHQL_URL, e.g. http://dagster-webserver:80/graphql) and this code
    # location's name there (FLOE_DAGSTER_LOCATION_NAME; default: the sensor's own origin): the contract-registry
    # sensor asks it to reload the location when contracts change. None: the sensor only reports the change.
    dagster_graphql_url: str | None = None
    dagster_location_name: str | None = None
    # Cold start from the catalog (FR-004, contracts/discovery.py): the namespaces searched for tables carrying a
    # contract in their properties (FLOE_DISCOVERY_NAMESPACES=shop,sales.eu; empty: discovery off), the pyiceberg
    # catalogs searched (FLOE_DISCOVERY_CATALOGS; default FLOE_CATALOG, else `default`) and how long the search
    # may take at load in all (FLOE_DISCOVERY_TIMEOUT, seconds or 90s/2m; default 30 s).
    discovery: DiscoverySettings | None = None

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
            contract_max_bytes=parse_max_bytes(env.get("FLOE_CONTRACT_MAX_BYTES") or ""),
            spool=SpoolSettings.from_env(env),
            dagster_graphql_url=(env.get("FLOE_DAGSTER_GRAPHQL_URL") or "").strip() or None,
            dagster_location_name=(env.get("FLOE_DAGSTER_LOCATION_NAME") or "").strip() or None,
            discovery=DiscoverySettings.from_env(env),
        )


# The kubelet sets it in every container of a pod (the API server's service address).
KUBERNETES_ENV = "KUBERNETES_SERVICE_HOST"


def require_durable_store(settings: Settings, environ: Mapping[str, str] | None = None) -> None:
    """Refuse the default store where it would be lost: in Kubernetes (`KUBERNETES_SERVICE_HOST` set) without
    `FLOE_MONITORING_DB_URL`, the store would be a SQLite file in the pod's own filesystem, gone with the pod (and
    each run pod would write its own). A `ConfigError` naming both variables; the code location then loads with the
    failing `monitoring_config_valid` check and no contract check scheduled. A SQLite URL given explicitly (a file
    on a persistent volume) is the operator's choice and accepted."""
    env = os.environ if environ is None else environ
    if settings.db_url or not (env.get(KUBERNETES_ENV) or "").strip():
        return
    raise ConfigError(
        f"FLOE_MONITORING_DB_URL: not set while running in Kubernetes ({KUBERNETES_ENV} is set): the monitoring "
        "store would be a SQLite file inside the pod, lost when the pod goes; set FLOE_MONITORING_DB_URL to the "
        "PostgreSQL store (postgresql+psycopg2://USER@HOST:5432/DB, from a Secret), or to a sqlite:////PATH on a "
        "persistent volume to keep SQLite deliberately"
    )


def parse_max_bytes(text: str) -> int:
    """FLOE_CONTRACT_MAX_BYTES: a positive number of bytes (`4194304`, `4M`, `512k`); empty means the default."""
    text = text.strip()
    if not text:
        return DEFAULT_CONTRACT_MAX_BYTES
    m = re.fullmatch(r"([0-9]{1,15})\s*(?:([kKmMgG])[iI]?)?[bB]?", text)
    if not m or int(m.group(1)) < 1:
        raise ConfigError(f"FLOE_CONTRACT_MAX_BYTES: {text[:40]!r} is not a number of bytes (e.g. 4194304 or 4M)")
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[(m.group(2) or "").lower()]


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
