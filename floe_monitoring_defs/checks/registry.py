"""Check kinds are plugins: entry points of group `floe.check_kinds` (name -> `CheckKind` subclass).

The four built-in kinds are registered in the project's own `pyproject.toml`; another distribution adds a
kind with one line of its own. An entry point that cannot be loaded, is not a `CheckKind`, or whose name
is not the kind's `name` is logged and left out: one broken plugin never stops monitoring.
"""

from __future__ import annotations

import logging
import sys
import threading
from importlib.metadata import EntryPoint, entry_points

from floe_monitoring_defs.checks.kind import CheckKind
from floe_monitoring_defs.models import KIND_NAME

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "floe.check_kinds"

_cache: dict[tuple[str, ...], dict[str, type[CheckKind]]] = {}
_lock = threading.Lock()


def _load(ep: EntryPoint) -> type[CheckKind] | None:
    try:
        kind = ep.load()
    except Exception as exc:  # a broken plugin: the other kinds still run
        log.error(
            "check kind %r (%s) cannot be imported: %s: %s; it is not scheduled",
            ep.name,
            ep.value,
            type(exc).__name__,
            exc,
        )
        return None
    if not (isinstance(kind, type) and issubclass(kind, CheckKind)):
        log.error("check kind %r (%s) is not a CheckKind subclass; it is not scheduled", ep.name, ep.value)
        return None
    if getattr(kind, "name", None) != ep.name or not KIND_NAME.fullmatch(ep.name):
        log.error(
            "check kind %r (%s) is named %r; an entry point's name must be its kind's snake_case name",
            ep.name,
            ep.value,
            getattr(kind, "name", None),
        )
        return None
    return kind


def check_kinds() -> dict[str, type[CheckKind]]:
    """Every installed check kind by name, sorted by name.

    Read once per import path (`sys.path`): a distribution put on the path later (a plugin installed into
    a running interpreter, a test) is found on the next call.
    """
    key = tuple(sys.path)
    with _lock:
        found = _cache.get(key)
        if found is None:
            kinds = (_load(ep) for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name))
            found = _cache[key] = {k.name: k for k in kinds if k is not None}
        return dict(found)
