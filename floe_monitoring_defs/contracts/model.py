"""What the monitor needs to know about a contract, independent of how ODCS spells it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
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

    @property
    def identifier(self) -> str:
        return ".".join((*self.namespace, self.name))

    @property
    def asset_path(self) -> list[str]:
        return [*self.namespace, self.name]


@dataclass(frozen=True)
class ExpectedColumn:
    """One top-level column the contract promises."""

    name: str
    physical_name: str
    logical_type: str | None
    physical_type: str | None = None
    required: bool = False
    primary_key: bool = False
    classification: str | None = None
    field_id: int | None = None  # explicit Iceberg field id (customProperties `floe.iceberg_field_id`)
    description: str | None = None

    @property
    def sensitive(self) -> bool:
        return (self.classification or "").lower() in SENSITIVE_CLASSIFICATIONS


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

    @property
    def primary_key(self) -> tuple[str, ...]:
        return tuple(c.physical_name for c in self.columns if c.primary_key)

    def column(self, physical_name: str) -> ExpectedColumn | None:
        for c in self.columns:
            if c.physical_name == physical_name:
                return c
        return None


@dataclass(frozen=True)
class FreshnessSLA:
    threshold: timedelta
    text: str
    element: str | None = None


@dataclass(frozen=True)
class AvailabilitySLA:
    target_pct: float
    text: str


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
    monitoring_overrides: dict[str, Any] = field(default_factory=dict)
    dialect: str = "odcs"  # odcs | floe

    @property
    def sensitive_columns(self) -> frozenset[str]:
        return frozenset(c.physical_name for t in self.tables for c in t.columns if c.sensitive)

    @property
    def source_path(self) -> Path | None:
        return None if self.source.startswith("store:") else Path(self.source)


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
