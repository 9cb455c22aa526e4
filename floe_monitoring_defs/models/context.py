"""The root-cause context a violation carries (FR-047), as every consumer reads it: the store, the channels, the
Dagster metadata and the OpenLineage facet.

The checks build it (checks/context.py) and put it, compact JSON, under the violation's `metadata["floe_context"]`;
this module holds what the readers share, with no dependency beyond the models: the key, the parser, and
`summary_lines`, the same few human-readable lines in every channel (each channel cuts them to its own limits).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

CONTEXT_KEY = "floe_context"  # the violation metadata key holding the context JSON
CONTEXT_VERSION = 1


def parse_context(metadata: Mapping[str, str]) -> dict[str, Any] | None:
    """The context in a violation's metadata, or None (absent, or not a JSON object)."""
    text = metadata.get(CONTEXT_KEY)
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _snap(entry: Mapping[str, Any]) -> str:
    """`snapshot 123 (append, +50 / -0 records, by spark app-1) at 2026-...Z`."""
    said = [str(entry.get("operation") or "unknown operation")]
    if "added_records" in entry or "deleted_records" in entry:
        said.append(f"+{entry.get('added_records', 0)} / -{entry.get('deleted_records', 0)} records")
    writer = entry.get("writer")
    if isinstance(writer, Mapping) and writer:
        said.append("by " + " ".join(str(v) for v in writer.values()))
    return f"snapshot {entry.get('snapshot_id')} ({', '.join(said)}) at {entry.get('committed_at')}"


def summary_lines(context: Mapping[str, Any]) -> list[str]:
    """The context in a few plain lines, most telling first (schema change, table changes, pattern, runs,
    upstream, notes); empty for an empty context."""
    lines: list[str] = []
    history = context.get("history")
    if isinstance(history, Mapping):
        change = history.get("schema_change")
        if isinstance(change, Mapping):
            first = change.get("first_snapshot")
            line = (
                f"Schema changed to id {change.get('schema_id')} (from {change.get('previous_schema_id')}) at "
                f"{change.get('changed_at')}"
            )
            if isinstance(first, Mapping):
                line += f"; first written by {_snap(first)}"
            lines.append(line)
        snaps = history.get("snapshots") or []
        if snaps:
            since = f" since the last pass ({history['since']})" if history.get("since") else ""
            more = "+" if history.get("more_snapshots") else ""
            lines.append(f"{len(snaps)}{more} table change(s){since}; newest: {_snap(snaps[0])}")
        elif history.get("since"):
            lines.append(f"No table change since the last pass ({history['since']})")
        last = history.get("last_data_change")
        if isinstance(last, Mapping):
            lines.append(f"Last data change: {_snap(last)}")
    pattern = context.get("pattern")
    if isinstance(pattern, Mapping):
        began = pattern.get("episode_started_at")
        parts = [f"failing since {began}"] if began else []
        parts.append(f"{pattern.get('failures_24h')} failure(s) in 24 h, {pattern.get('failures_7d')} in 7 days")
        parts.append(f"last pass {pattern.get('last_pass_at') or 'never recorded'}")
        if pattern.get("flapping"):
            parts.append(f"flapping ({pattern.get('status_changes_24h')} status changes in 24 h)")
        lines.append("Pattern: " + "; ".join(parts))
    runs = context.get("runs")
    if isinstance(runs, list) and runs:
        shown = ", ".join(
            f"{r.get('run_id', '?')[:8]} {r.get('job_name', '')} {r.get('status', '')} at {r.get('time', '?')}".replace(
                "  ", " "
            )
            for r in runs[:3]
            if isinstance(r, Mapping)
        )
        lines.append(f"Recent runs writing the table: {shown}")
    upstream = context.get("upstream")
    if isinstance(upstream, list) and upstream:
        shown = ", ".join(
            f"{u.get('asset')} {u.get('check') or ''} {u.get('status')}".replace("  ", " ")
            for u in upstream[:5]
            if isinstance(u, Mapping)
        )
        lines.append(f"Upstream: {shown}")
    notes = context.get("notes")
    if isinstance(notes, list) and notes:
        lines.append("Context notes: " + "; ".join(str(n) for n in notes))
    return lines


def context_text(metadata: Mapping[str, str]) -> str:
    """`summary_lines` of the violation's context joined by newlines; "" without one."""
    context = parse_context(metadata)
    return "\n".join(summary_lines(context)) if context else ""
