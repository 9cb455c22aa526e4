"""floe-monitoring: a Dagster code location that monitors ODCS data contracts on Iceberg tables.

`defs` (the Definitions object Dagster loads) is built on first access, so the core packages
(contracts, checks, store, sources) can be imported without importing Dagster.
"""

from __future__ import annotations

from typing import Any

__all__ = ["defs"]


def __getattr__(name: str) -> Any:
    if name == "defs":
        from floe_monitoring_defs.definitions import build_defs

        value = build_defs()
        globals()["defs"] = value  # built once per process
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return [*globals(), "defs"]
