"""A check kind that proves steps run at the same time: each check waits at a rendezvous for the others.

`RendezvousKind` ("rendezvous") applies to contracts tagged `rendezvous`. Its check writes a marker named after
its table and process into `$RENDEZVOUS_DIR`, then waits until `$RENDEZVOUS_PARTIES` markers exist (bounded by
`$RENDEZVOUS_TIMEOUT_SECONDS`, so a serial executor ends the test instead of hanging it). Its evidence says whether
the others arrived while it waited (`rendezvous_met`) and in which process it ran (`rendezvous_pid`): checks that
run one after another can never all meet. Registered through the `floe.check_kinds` entry point of a distribution
the tests put on the path (`register_rendezvous_kind`), as `plugin_kind.py` does for its kind.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from floe_monitoring_defs.checks.kind import CheckContext, CheckKind, Evidence
from floe_monitoring_defs.config import MonitoringConfig
from floe_monitoring_defs.contracts.model import MonitoredContract, MonitoredTable
from floe_monitoring_defs.models import CheckOutcome, CheckStatus, ContractViolationEvent, ViolationType

NAME = "rendezvous"
TAG = "rendezvous"
POLL_SECONDS = 0.05


class RendezvousKind(CheckKind):
    """Waits for the checks of the other steps; passes either way and reports whether they met."""

    name = NAME
    description = "Waits until the checks of the other steps are running too (a test of parallel steps)"
    failure_label = "alone"
    default_minutes = 60

    @classmethod
    def applies(cls, contract: MonitoredContract) -> bool:
        return TAG in contract.tags

    @classmethod
    def evidence(cls, outcome: CheckOutcome, violations: Sequence[ContractViolationEvent]) -> Evidence:
        return {
            "rendezvous_met": outcome.details.get("met"),
            "rendezvous_pid": outcome.details.get("pid"),
            "rendezvous_seen": outcome.details.get("seen"),
        }

    def evaluate(
        self, ctx: CheckContext, contract: MonitoredContract, table: MonitoredTable, config: MonitoringConfig
    ) -> CheckOutcome:
        directory = Path(os.environ["RENDEZVOUS_DIR"])
        parties = int(os.environ["RENDEZVOUS_PARTIES"])
        deadline = time.monotonic() + float(os.environ.get("RENDEZVOUS_TIMEOUT_SECONDS", "60"))
        pid = os.getpid()
        (directory / f"{table.ref.identifier}.{pid}").write_text(str(pid))
        seen = len(list(directory.iterdir()))
        while seen < parties and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
            seen = len(list(directory.iterdir()))
        details = {"met": seen >= parties, "pid": pid, "seen": seen}
        return CheckOutcome(ViolationType(NAME), CheckStatus.PASS, details=details)


def register_rendezvous_kind(root: Path) -> Path:
    """Write a distribution's metadata that registers `RendezvousKind` under `floe.check_kinds`, in `root` (put it
    on `sys.path` / PYTHONPATH)."""
    info = root / "floe_rendezvous_plugin-0.1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: floe-rendezvous-plugin\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[floe.check_kinds]\n{NAME} = {__name__}:RendezvousKind\n")
    return root
