"""The check-kind interface: everything the monitor knows about one kind of check lives in one module.

A kind (freshness, schema drift, quality, availability, or a plugin's) owns:

- whether it applies to a contract (`applies`): the one rule scheduling and the SLA expectations use;
- its cadence: the key under `check_intervals` (`cadence_key`) and, for keys the monitoring config does
  not define, its default interval (`default_minutes`);
- how it evaluates one table (`evaluate`): reads through `CheckContext` (the table source, and the
  store for history it keeps), then grades with a pure function of the same module, history handed in;
- its description, the word for a failing check (`failure_label`) and its gauge, if any;
- how its evidence becomes metadata (`evidence`), as plain values, points in time (aware `datetime`s, shown
  as timestamps) and `EvidenceTable`s that the Dagster adapter turns into metadata values with one call,
  knowing nothing about the kind; a duration is given in seconds under a key ending in `_seconds`, and the
  adapter shows it in words beside (`age_seconds` 15120 -> `age` "4h 12m");
- what it learnt of the table's state, if anything (`observation`: last update, snapshot, row count),
  which the adapter reports as an observation of the table's asset.

Kinds are found through the entry-point group `floe.check_kinds` (checks/registry.py): a new kind is a
module with a `CheckKind` subclass plus one entry point. The runner makes one instance per run (one
Dagster step), so `begin` may keep per-run state (pings sent in parallel, a loaded engine) on it, and `end`
writes what it buffered (the volume check's new commits).

Evidence keys that mean the same to the SLA figures whatever the kind: `score` (a 0..1 score, averaged
into the quality-score figures) and `ping_ok` (true / false, counted into uptime).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from floe_monitoring_defs.config import MonitoringConfig
from floe_monitoring_defs.contracts.model import MonitoredContract, MonitoredTable
from floe_monitoring_defs.models import CheckOutcome, ContractViolationEvent
from floe_monitoring_defs.sources.base import TableSource
from floe_monitoring_defs.store import MonitoringStore
from floe_monitoring_defs.telemetry.metrics import GaugeSpec

Target = tuple[MonitoredContract, MonitoredTable]
Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class EvidenceTable:
    """A table of evidence (one row per drift, per rule, ...): column names and rows of plain values."""

    columns: tuple[str, ...]
    rows: tuple[Mapping[str, str | int | float | bool], ...]


Evidence = dict[str, Scalar | datetime | EvidenceTable]


@dataclass(frozen=True)
class TableState:
    """What a check read of a table's state from its metadata, reported as an observation of the table."""

    last_update: datetime | None  # when the data last changed, as the check derived it (None: unknown)
    snapshot_id: int | None = None  # the current Iceberg snapshot
    row_count: int | None = None  # `total-records` of the current snapshot's summary
    method: str | None = None  # how `last_update` was found ("snapshot", "column_bounds", ...)


@dataclass(frozen=True)
class CheckContext:
    """What a kind may read during one run: the tables, the store (None when it is down or not used),
    the clock, and the monitoring config of each contract (its `floe.monitoring` overrides merged)."""

    source: TableSource
    store: MonitoringStore | None
    clock: Callable[[], datetime]
    config_for: Callable[[MonitoredContract], MonitoringConfig]


class CheckKind(ABC):
    """One kind of check. Subclasses set the class attributes and implement `evaluate`."""

    name: ClassVar[str]  # the check type: asset check name, violation type, `floe/check_type` tag
    description: ClassVar[str]  # one line, shown on every asset check of the kind
    failure_label: ClassVar[str]  # how a failing check reads in summaries: "stale", "drifted", ...
    default_minutes: ClassVar[int | None] = None  # interval when the config has no `cadence_key` value
    gauge: ClassVar[GaugeSpec | None] = None  # set to the check's measured value after each run

    @classmethod
    def cadence_key(cls) -> str:
        """The key under `check_intervals` that sets this kind's interval (e.g. `freshness_minutes`)."""
        return f"{cls.name}_minutes"

    @classmethod
    def interval_minutes(cls, config: MonitoringConfig) -> int:
        """The interval `config` asks for; `ValueError` when neither the config nor the kind has one."""
        minutes = config.check_intervals.minutes(cls.cadence_key())
        if minutes is None:
            minutes = cls.default_minutes
        if minutes is None:
            raise ValueError(f"check kind {cls.name!r}: no interval (set check_intervals.{cls.cadence_key()})")
        return minutes

    @classmethod
    def applies(cls, contract: MonitoredContract) -> bool:
        """Whether the contract has a check of this kind (then it runs on every table of the contract)."""
        return True

    @classmethod
    def applies_under(cls, contract: MonitoredContract, config: MonitoringConfig) -> bool:
        """`applies` under the contract's effective config (the plan asks this); a kind whose applicability
        depends on a config switch overrides it."""
        return cls.applies(contract)

    @classmethod
    def sla_target_pct(cls, contract: MonitoredContract, default_pct: float) -> float:
        """The compliance target of this kind for the contract; the default unless the contract names one."""
        return default_pct

    @classmethod
    def evidence(cls, outcome: CheckOutcome, violations: Sequence[ContractViolationEvent]) -> Evidence:
        """The check's evidence as metadata (beyond status, severity and ids, which every check carries)."""
        return {}

    @classmethod
    def observation(cls, outcome: CheckOutcome) -> TableState | None:
        """The table's state this check read, to report as an observation of the table; None: nothing to report."""
        return None

    def begin(self, ctx: CheckContext, targets: Sequence[Target]) -> None:  # noqa: B027 (optional hook)
        """Called once per run before the first `evaluate`, with every target of the run."""

    def end(self, ctx: CheckContext) -> None:  # noqa: B027 (optional hook)
        """Called once per run after the last `evaluate` (also when the run stops early): write what was buffered."""

    @abstractmethod
    def evaluate(
        self, ctx: CheckContext, contract: MonitoredContract, table: MonitoredTable, config: MonitoringConfig
    ) -> CheckOutcome:
        """Check one table. Raising `SourceError` (or anything else) makes the check ERROR with the reason."""


def format_age(seconds: float) -> str:
    """A duration in words: `4h 12m`, `1d 1h 1m` (seconds only below a day), `0s`."""
    s = round(seconds)
    d, rem = divmod(s, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    parts = [f"{d}d"] if d else []
    parts += [f"{h}h"] if h else []
    parts += [f"{m}m"] if m else []
    parts += [f"{s}s"] if s and not d else []
    return " ".join(parts) or "0s"


def moment(value: Any) -> datetime | None:
    """An ISO-8601 text (as `CheckOutcome.details` keep times, they are stored as JSON) or a datetime as an aware
    UTC datetime; None for anything else. A date-only text is its UTC midnight."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def scalar(value: Any) -> Scalar:
    """`value` if it is a plain metadata value, else its text."""
    return value if isinstance(value, bool | int | float | str) or value is None else str(value)


def cell(value: Any) -> str | int | float | bool:
    """`value` as a table cell: plain values as they are, None as "", anything else as text."""
    return "" if value is None else value if isinstance(value, bool | int | float | str) else str(value)
