"""What the monitor needs to know about a contract, independent of how ODCS spells it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any

# Classifications whose values must never leave the monitor (FR-025).
SENSITIVE_CLASSIFICATIONS = frozenset({"pii", "phi", "confidential", "restricted", "sensitive"})


@dataclass(frozen=True)
class TableRef:
    """Where a contract's table lives: the ODCS `servers` entry of type iceberg + schema physicalName."""

    namespace: tuple[str, ...]
    name: str
    catalog: str | None = None
    catalog_url: str | None = None
    warehouse: str | None = None
    metadata_location: str | None = None  # a table given by its metadata file (servers of type s3 / local)

    @property
    def identifier(self) -> str:
        return ".".join((*self.namespace, self.name))

    @property
    def asset_path(self) -> list[str]:
        return [*self.namespace, self.name]


@dataclass(frozen=True)
class ExpectedColumn:
    """One column the contract promises: a top-level property, or (in `children` / `items`) a nested one."""

    name: str
    physical_name: str
    logical_type: str | None
    physical_type: str | None = None
    required: bool = False
    primary_key: bool = False
    classification: str | None = None
    field_id: int | None = (
        None  # explicit Iceberg field id (customProperties `icebergFieldId` / `floe.iceberg_field_id`)
    )
    description: str | None = None
    unique: bool = False
    primary_key_position: int | None = None  # order within a composite primary key (ODCS primaryKeyPosition)
    # ODCS logicalTypeOptions as written: minimum, maximum, exclusiveMinimum, exclusiveMaximum (numbers, dates,
    # timestamps), minLength, maxLength, pattern, format (strings), precision / scale, ...
    logical_type_options: dict[str, Any] = field(default_factory=dict)
    children: tuple[ExpectedColumn, ...] = ()  # `logicalType: object` with `properties`: the struct's fields
    items: ExpectedColumn | None = None  # `logicalType: array` with `items`: the element
    path: str = ""  # where it sits: "address.city", "tags[]", "tags[].code"; "" means `physical_name`

    @property
    def sensitive(self) -> bool:
        return (self.classification or "").lower() in SENSITIVE_CLASSIFICATIONS

    @property
    def column_path(self) -> str:
        return self.path or self.physical_name


@dataclass(frozen=True)
class QualityRule:
    """One ODCS `quality` entry (or a floe-dialect rule), kept close to its source for the engine."""

    name: str
    type: str  # library | sql | custom | text | format | constraint | null_check
    table: str
    element: str | None = None
    metric: str | None = None
    unit: str | None = None  # ODCS `unit`: rows (default) | percent
    rule: str | None = None
    query: str | None = None
    operators: dict[str, Any] = field(default_factory=dict)
    arguments: dict[str, Any] = field(default_factory=dict)
    severity: str | None = None
    weight: float | None = None
    source_path: str = ""


@dataclass(frozen=True)
class MonitoredTable:
    """One ODCS schema object: an Iceberg table with its expected columns."""

    schema_name: str
    ref: TableRef
    columns: tuple[ExpectedColumn, ...]
    description: str | None = None
    freshness_column: str | None = None
    quality_rules: tuple[QualityRule, ...] = ()
    # The tables this one is built from (`customProperties` `floe.upstream`: namespace.table identifiers), whose
    # latest floe check status a violation's context lists. ODCS has no table-level lineage field.
    upstream: tuple[str, ...] = ()

    @property
    def primary_key(self) -> tuple[str, ...]:
        """The key columns, in `primaryKeyPosition` order (declaration order where no position is given)."""
        keyed = [(c.primary_key_position, i, c.physical_name) for i, c in enumerate(self.columns) if c.primary_key]
        return tuple(name for _, _, name in sorted(keyed, key=lambda k: (k[0] is None, k[0] or 0, k[1])))

    def column(self, physical_name: str) -> ExpectedColumn | None:
        for c in self.columns:
            if c.physical_name == physical_name:
                return c
        return None


@dataclass(frozen=True)
class FreshnessSLA:
    """ODCS `latency` (v3) or `freshness`: the newest data is at most `threshold` old."""

    threshold: timedelta
    text: str
    element: str | None = None


@dataclass(frozen=True)
class AvailabilitySLA:
    target_pct: float
    text: str


@dataclass(frozen=True)
class FrequencySLA:
    """ODCS `frequency`: the table gets a data-changing snapshot at least every `interval`."""

    interval: timedelta
    text: str


@dataclass(frozen=True)
class RetentionSLA:
    """ODCS `retention`: data is kept at least `period`; `element` is the timestamp column whose oldest value
    shows how far back the table reaches (None: the oldest snapshot still readable)."""

    period: timedelta
    text: str
    element: str | None = None


@dataclass(frozen=True)
class DeadlineSLA:
    """ODCS `timeOfAvailability`: every day by `time_of_day` (in `timezone`, UTC unless the contract says
    otherwise) a data-changing snapshot exists since the previous deadline."""

    time_of_day: time
    timezone: str
    text: str


@dataclass(frozen=True)
class LifecycleSLA:
    """ODCS `endOfSupport` / `endOfLife`: dates after which the data product is unsupported / retired."""

    end_of_support: date | None = None
    end_of_life: date | None = None
    notice: timedelta = timedelta(days=30)  # INFO this long ahead of the first date


@dataclass(frozen=True)
class ResponseSLA:
    """ODCS `timeToDetect`, `timeToNotify`, `timeToRepair`: promises about the monitor and the team,
    measured from the monitor's own history and reported by `floe sla report`."""

    time_to_detect: timedelta | None = None
    time_to_notify: timedelta | None = None
    time_to_repair: timedelta | None = None


@dataclass(frozen=True)
class NotMonitored:
    """A promise of the contract that floe does not check, and why (shown, never silently dropped)."""

    field: str  # e.g. slaProperties[3], schema[0].quality[1]
    what: str  # e.g. "slaProperty generalAvailability", "quality rule no_gaps (type custom)"
    reason: str


@dataclass(frozen=True)
class MonitoredContract:
    """A validated contract, ready to become Dagster assets and checks."""

    name: str
    version: str
    contract_id: str
    source: str  # file path or `store:<name>`
    tables: tuple[MonitoredTable, ...]
    status: str | None = None
    domain: str | None = None
    description: str | None = None
    owners: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    consumers: tuple[str, ...] = ()
    freshness: FreshnessSLA | None = None
    availability: AvailabilitySLA | None = None
    frequency: FrequencySLA | None = None
    retention: RetentionSLA | None = None
    time_of_availability: DeadlineSLA | None = None
    lifecycle: LifecycleSLA | None = None
    response: ResponseSLA | None = None
    # Cron schedules an SLA sets for its check (ODCS `scheduler: cron` + `schedule`), by check kind name.
    schedules: dict[str, str] = field(default_factory=dict)
    not_monitored: tuple[NotMonitored, ...] = ()
    api_version: str | None = None  # the ODCS apiVersion the file declares (None: floe dialect)
    monitoring_overrides: dict[str, Any] = field(default_factory=dict)
    dialect: str = "odcs"  # odcs | floe

    @property
    def sensitive_columns(self) -> frozenset[str]:
        return frozenset(c.physical_name for t in self.tables for c in t.columns if c.sensitive)

    @property
    def source_path(self) -> Path | None:
        # `store:NAME`: registered in the store; `catalog:NAME/NS.TABLE`: the YAML in a table property (discovery.py).
        return None if self.source.startswith(("store:", "catalog:")) else Path(self.source)


@dataclass(frozen=True)
class ContractError:
    """Why one contract could not be loaded: the file, the field path, and what is wrong."""

    source: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.field}: {self.message}"


@dataclass(frozen=True)
class LoadReport:
    contracts: tuple[MonitoredContract, ...]
    errors: tuple[ContractError, ...]
