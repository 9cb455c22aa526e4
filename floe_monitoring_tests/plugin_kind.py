"""A check kind that lives outside the package: registered through the `floe.check_kinds` entry points of
a distribution the tests put on the path (`register_plugin_kind`), exactly as a plugin would be.

`SnapshotRowsKind` ("snapshot_rows") reads the row count of the table's current snapshot from Iceberg
metadata (no data file is opened) and fails with a WARNING when the table holds no rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from floe_monitoring_defs.checks.kind import CheckContext, CheckKind, Evidence
from floe_monitoring_defs.config import MonitoringConfig
from floe_monitoring_defs.contracts.model import MonitoredContract, MonitoredTable
from floe_monitoring_defs.models import (
    CheckOutcome,
    CheckStatus,
    ContractViolationEvent,
    Finding,
    ViolationSeverity,
    ViolationType,
)

NAME = "snapshot_rows"


class SnapshotRowsKind(CheckKind):
    """Checks contracts tagged `rows`: the current snapshot must hold at least one row."""

    name = NAME
    description = "Rows in the table's current Iceberg snapshot (from its summary)"
    failure_label = "empty"
    default_minutes = 30

    @classmethod
    def applies(cls, contract: MonitoredContract) -> bool:
        return "rows" in contract.tags

    @classmethod
    def evidence(cls, outcome: CheckOutcome, violations: Sequence[ContractViolationEvent]) -> Evidence:
        return {"snapshot_rows": outcome.details.get("rows")}

    def evaluate(
        self, ctx: CheckContext, contract: MonitoredContract, table: MonitoredTable, config: MonitoringConfig
    ) -> CheckOutcome:
        kind = ViolationType(NAME)
        snapshot = ctx.source.load_table(table.ref).current_snapshot()
        summary = snapshot.summary if snapshot is not None else None
        rows = int(summary["total-records"]) if summary is not None and "total-records" in summary else 0
        details = {"rows": rows, "method": "snapshot_summary"}
        if rows > 0:
            return CheckOutcome(kind, CheckStatus.PASS, details=details, measured_value=float(rows))
        finding = Finding(
            kind="empty",
            severity=ViolationSeverity.WARNING,
            message=f"Table {table.ref.identifier} holds no rows in its current snapshot",
            expected=">= 1 row",
            actual="0 rows",
        )
        return CheckOutcome(kind, CheckStatus.FAIL, findings=(finding,), details=details, measured_value=0.0)


def register_plugin_kind(root: Path) -> Path:
    """Write a distribution's metadata that registers `SnapshotRowsKind` under `floe.check_kinds`, in `root`.

    Put `root` on `sys.path` (and PYTHONPATH for subprocesses) and `importlib.metadata` finds the entry point,
    as it finds those of any installed plugin.
    """
    info = root / "floe_snapshot_rows_plugin-0.1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: floe-snapshot-rows-plugin\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[floe.check_kinds]\n{NAME} = {__name__}:SnapshotRowsKind\n")
    return root
