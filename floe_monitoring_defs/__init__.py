"""floe-monitoring: a Dagster code location that monitors ODCS data contracts on Iceberg tables.

The code location is `floe_monitoring_defs.definitions.defs`, a `@dg.definitions` function that Dagster calls when
it loads the location. `dagster ... -m floe_monitoring_defs` (workspace.yaml, the image, the Helm values) finds it
here as `location`: Dagster looks through this module's attributes for a `@dg.definitions` function, and
`location` is that function, imported on first access so that the core packages (contracts, checks, store,
sources) import without Dagster. Not named `defs`: that is the `floe_monitoring_defs.defs` subpackage's name,
which becomes an attribute of this package once the subpackage is imported.
"""

from __future__ import annotations

from typing import Any

__all__ = ["location"]


def __getattr__(name: str) -> Any:
    if name == "location":
        from floe_monitoring_defs.definitions import defs

        globals()["location"] = defs  # the function, not the definitions: Dagster builds them when it loads
        return defs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return [*globals(), "location"]
