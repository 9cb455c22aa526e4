"""Availability value objects shared by the availability check and the store: one ping, and the stored
pings of a table seen as a rolling window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class PingResult:
    """One availability ping of one table.

    `reason` is a short code ("timeout", "table_missing", "catalog_not_configured",
    "unreachable: <ExceptionType>") and `message` a sentence for humans; both None when `ok`.
    Neither ever carries exception text (it may quote catalog properties, credentials included).
    """

    ok: bool
    latency_ms: float
    reason: str | None
    message: str | None
    checked_at: datetime


@dataclass(frozen=True)
class AvailabilityWindow:
    """The stored pings of one contract table, seen from the newest one.

    `total`, `ok` and `uptime_pct` count the pings at or after `since` (100.0 when there are none).
    The other fields look at every stored ping of the table, not only the window:
    `consecutive_failures` are the failures after the newest success; `last_failure_*` the newest
    failure; `latest_ok` / `previous_ok` the newest ping and the one before it (None when missing);
    `recovered_after_failures` the length of the failure streak the newest ping ended (0 unless the
    newest ping is a success that follows failures).
    """

    since: datetime
    total: int
    ok: int
    uptime_pct: float
    consecutive_failures: int
    last_failure_at: datetime | None
    last_failure_reason: str | None
    latest_ok: bool | None
    previous_ok: bool | None
    recovered_after_failures: int = 0

    @property
    def failed(self) -> int:
        return self.total - self.ok

    @property
    def recovered(self) -> bool:
        """The newest ping succeeded and the one before it had failed."""
        return self.latest_ok is True and self.previous_ok is False

    @classmethod
    def of_single_ping(cls, ping: PingResult) -> AvailabilityWindow:
        """The window when no history can be read (store down): this ping alone."""
        return cls(
            since=ping.checked_at,
            total=1,
            ok=int(ping.ok),
            uptime_pct=100.0 if ping.ok else 0.0,
            consecutive_failures=0 if ping.ok else 1,
            last_failure_at=None if ping.ok else ping.checked_at,
            last_failure_reason=None if ping.ok else ping.reason,
            latest_ok=ping.ok,
            previous_ok=None,
        )


def uptime_pct(total: int, ok: int) -> float:
    return 100.0 if total <= 0 else ok / total * 100.0
