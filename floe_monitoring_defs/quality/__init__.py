"""Data quality (FR-015..018): engines that evaluate a contract's quality rules on an Iceberg table.

`engine` defines the interface (`QualityEngine`, `QualityDataSource`, `MetadataReader`, `RuleResult`),
`registry` finds engines through the `floe.quality_engines` entry points, `source` reads a pyiceberg
table with projected, streaming scans (and its manifests' per-file metrics), and `duckdb_engine` is the
built-in engine. `constraints` turns a contract's column constraints (required, unique, primary key,
logicalTypeOptions) into rules, and `metadata` answers them from the manifests before any engine scans.
Grading the results (weighted score, findings, status) is `checks.quality`. Nothing here imports Dagster,
and nothing imports duckdb until the DuckDB engine itself is loaded.
"""

from floe_monitoring_defs.quality.engine import (
    SEVERITY_WEIGHTS,
    MetadataReader,
    QualityDataSource,
    QualityEngine,
    QualityEngineUnavailable,
    QualityReadError,
    RuleResult,
    rule_severity,
    rule_weight,
)
from floe_monitoring_defs.quality.registry import ENTRY_POINT_GROUP, available_engines, load_engine

__all__ = [
    "ENTRY_POINT_GROUP",
    "SEVERITY_WEIGHTS",
    "MetadataReader",
    "QualityDataSource",
    "QualityEngine",
    "QualityEngineUnavailable",
    "QualityReadError",
    "RuleResult",
    "available_engines",
    "load_engine",
    "rule_severity",
    "rule_weight",
]
