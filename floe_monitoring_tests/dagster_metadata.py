"""Typed reads of Dagster event metadata.

`MetadataValue.value` is typed as any packable value (a union of a dozen types), so a test that compares it
with `<` or looks inside it first narrows it to what the entry must hold; an entry of another kind fails
the test with its actual value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import dagster as dg


def table_records(metadata: Mapping[str, dg.MetadataValue], key: str) -> Sequence[dg.TableRecord]:
    """The records of a table metadata entry."""
    entry = metadata[key]
    assert isinstance(entry, dg.TableMetadataValue), f"{key}: {entry!r} is not table metadata"
    return entry.records


def number(metadata: Mapping[str, dg.MetadataValue], key: str) -> float:
    """The value of a numeric (int or float) metadata entry."""
    value = metadata[key].value
    assert isinstance(value, int | float), f"{key}: {value!r} is not a number"
    return value


def text(metadata: Mapping[str, dg.MetadataValue], key: str) -> str:
    """The value of a text metadata entry."""
    value = metadata[key].value
    assert isinstance(value, str), f"{key}: {value!r} is not text"
    return value


def record_number(record: dg.TableRecord, column: str) -> float:
    """A numeric cell of a table metadata record."""
    value = record.data[column]
    assert isinstance(value, int | float), f"{column}: {value!r} is not a number"
    return value
