"""Quality engines are plugins: entry points of group `floe.quality_engines` (name -> engine class).

`load_engine("duckdb")` imports and constructs the engine; a missing entry point, an import error
(e.g. duckdb not installed) or a constructor failure raise `QualityEngineUnavailable`, which the
quality check turns into SKIPPED (FR-018: no false violations).
"""

from __future__ import annotations

import logging
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from floe_monitoring_defs.quality.engine import QualityEngine, QualityEngineUnavailable

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "floe.quality_engines"
DEFAULT_ENGINE = "duckdb"


def _entry_points() -> list[EntryPoint]:
    return list(entry_points(group=ENTRY_POINT_GROUP))


def available_engines() -> list[str]:
    """Names of the installed engines (entry points of `floe.quality_engines`)."""
    return sorted({ep.name for ep in _entry_points()})


def load_engine(name: str = DEFAULT_ENGINE, **options: Any) -> QualityEngine:
    """The engine registered as `name`, constructed with `options`; `QualityEngineUnavailable` if it cannot."""
    found = [ep for ep in _entry_points() if ep.name == name]
    if not found:
        installed = ", ".join(available_engines()) or "none"
        raise QualityEngineUnavailable(
            name, f"no entry point {name!r} in group {ENTRY_POINT_GROUP} (installed: {installed})"
        )
    ep = found[0]
    try:
        factory = ep.load()
    except Exception as exc:  # ImportError of the engine's library, or a broken plugin
        raise QualityEngineUnavailable(name, f"cannot import {ep.value}: {type(exc).__name__}: {exc}") from exc
    try:
        engine: QualityEngine = factory(**options)
    except QualityEngineUnavailable:
        raise
    except Exception as exc:
        raise QualityEngineUnavailable(name, f"cannot start: {type(exc).__name__}: {exc}") from exc
    if not callable(getattr(engine, "run", None)):
        raise QualityEngineUnavailable(name, f"{ep.value} does not provide a run() method")
    if not getattr(engine, "name", None):
        try:
            engine.name = name
        except AttributeError:
            pass
    log.debug("quality engine %r loaded from %s", name, ep.value)
    return engine
