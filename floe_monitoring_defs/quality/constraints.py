"""Column constraints of a contract as quality rules: one rule per constraint, each graded like any rule.

The contract's columns promise more than their explicit `quality` entries: `required`, `unique`, the
(composite) primary key, and ODCS `logicalTypeOptions`. Each becomes one `QualityRule` of type
`column_constraint` with a normalized `arguments["check"]`:

| contract                                   | check          | counted (never values)                        |
|--------------------------------------------|----------------|-----------------------------------------------|
| `required: true`                           | `required`     | nulls (nested: where the parent is present)   |
| `unique: true`                             | `unique`       | `count(v) - count(DISTINCT v)`                |
| `primaryKey` (by `primaryKeyPosition`)     | `primary_key`  | duplicate keys                                |
| `minimum` / `maximum` / `exclusive*`       | `range`        | non-null values outside the range             |
| integer `format` (`i32`, `u8`, ...)        | `range`        | values outside the integer type's range       |
| `minLength` / `maxLength`                  | `length`       | strings shorter / longer                      |
| `pattern` (ECMA-262, unanchored)           | `pattern`      | strings the regex finds nothing in            |
| string `format` (email, uuid, uri, ...)    | `format`       | strings not in the format                     |
| `multipleOf` (integers, decimals)          | `multiple_of`  | values that are not a multiple                |
| `minItems` / `maxItems` / `uniqueItems`    | `items`        | arrays too short / long / with repeats        |

ODCS v3.0 writes `exclusiveMinimum: true` (a flag on `minimum`), v3.1+ `exclusiveMinimum: 5` (the bound
itself); both are read. Options floe cannot check (a date's text `format`, `f32` / `f64`, an unknown string
format, `minProperties`, vector options, unknown keys) become rules with `arguments["not_checked"]`: listed
with the reason in the rules table, neither passing nor failing.

This module reads `ExpectedColumn.logical_type_options`, which the contract model keeps as ODCS writes them:
it is the one place in the quality package that knows those option names.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from floe_monitoring_defs.contracts.model import ExpectedColumn, MonitoredTable, QualityRule
from floe_monitoring_defs.quality.operators import RuleError

CONSTRAINT_TYPE = "column_constraint"

# Integer formats (ODCS, after Rust's integer types) -> their inclusive range.
INTEGER_FORMATS: dict[str, tuple[int, int]] = {
    **{f"i{b}": (-(2 ** (b - 1)), 2 ** (b - 1) - 1) for b in (8, 16, 32, 64, 128)},
    **{f"u{b}": (0, 2**b - 1) for b in (8, 16, 32, 64, 128)},
}

# String formats checked with an RE2 regex (full match) and, where DuckDB can parse the text, a cast.
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_H16 = r"[0-9A-Fa-f]{1,4}"
_IPV6 = (
    r"("
    rf"({_H16}:){{7}}{_H16}|"
    rf"({_H16}:){{1,7}}:|"
    rf"({_H16}:){{1,6}}:{_H16}|"
    rf"({_H16}:){{1,5}}(:{_H16}){{1,2}}|"
    rf"({_H16}:){{1,4}}(:{_H16}){{1,3}}|"
    rf"({_H16}:){{1,3}}(:{_H16}){{1,4}}|"
    rf"({_H16}:){{1,2}}(:{_H16}){{1,5}}|"
    rf"{_H16}:(:{_H16}){{1,6}}|"
    rf":((:{_H16}){{1,7}}|:)|"
    rf"({_H16}:){{6}}{_OCTET}(\.{_OCTET}){{3}}|"
    rf"::(ffff(:0{{1,4}})?:)?{_OCTET}(\.{_OCTET}){{3}}"
    r")"
)
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"


@dataclass(frozen=True)
class StringFormat:
    regex: str  # RE2, matched in full
    cast: str | None = None  # DuckDB type the text must also cast to (dates that do not exist fail)
    max_length: int | None = None


STRING_FORMATS: dict[str, StringFormat] = {
    "email": StringFormat(r"[^@\s]+@[^@\s]+\.[^@\s]+"),
    "uuid": StringFormat(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"),
    "uri": StringFormat(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s]*"),
    "url": StringFormat(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s]+"),
    "hostname": StringFormat(rf"{_LABEL}(\.{_LABEL})*", max_length=253),
    "ipv4": StringFormat(rf"{_OCTET}(\.{_OCTET}){{3}}"),
    "ipv6": StringFormat(_IPV6),
    "date": StringFormat(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", cast="DATE"),
    "date-time": StringFormat(
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})",
        cast="TIMESTAMPTZ",
    ),
    "time": StringFormat(r"[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?", cast="TIME"),
    "byte": StringFormat(r"([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?"),
}
_FORMAT_ALIASES = {"datetime": "date-time", "uri-reference": "uri", "e-mail": "email", "base64": "byte"}
# String formats that promise nothing about the content.
_FREE_FORMATS = {"password": "a display hint (mask the value), not a rule on its content", "binary": "any octets"}

# Options read elsewhere or only modifying another option: no rule of their own.
_NO_RULE = frozenset({"exclusiveMinimum", "exclusiveMaximum", "defaultTimezone", "precision", "scale", "timezone"})
_TYPE_SCOPED_NOTES = {
    "minProperties": "an Iceberg struct has a fixed set of fields; schema_drift compares them with the contract",
    "maxProperties": "an Iceberg struct has a fixed set of fields; schema_drift compares them with the contract",
    "dimensions": "vector options are not checked",
    "elementType": "vector options are not checked",
    "distanceMetric": "vector options are not checked",
    "embeddingModel": "vector options are not checked",
    "embeddingModelVersion": "vector options are not checked",
    "normalized": "vector options are not checked",
}

_NUMERIC_LOGICAL = ("integer", "number")
_TEMPORAL_LOGICAL = ("date", "timestamp", "time")


def has_constraints(table: MonitoredTable) -> bool:
    """Whether any column of the table carries a constraint this module turns into a rule."""
    return any(_constrained(c) for c in table.columns)


def _constrained(col: ExpectedColumn) -> bool:
    return (
        col.required
        or col.unique
        or col.primary_key
        or bool(col.logical_type_options)
        or any(_constrained(c) for c in col.children)
        or (col.items is not None and _constrained(col.items))
    )


def _walk(
    cols: tuple[ExpectedColumn, ...], parent: str | None, parent_required: frozenset[str], in_list: bool
) -> Iterator[tuple[ExpectedColumn, str, bool, bool]]:
    """(column, path, required, inside an array) for every column at every depth, paths built from the
    structure ("address.city", "tags[]", "tags[].code") the way the Iceberg side builds them."""
    for col in cols:
        path = col.physical_name if parent is None else f"{parent}.{col.physical_name}"
        yield from _walk_one(col, path, col.required or col.physical_name in parent_required, in_list)


def _walk_one(
    col: ExpectedColumn, path: str, required: bool, in_list: bool
) -> Iterator[tuple[ExpectedColumn, str, bool, bool]]:
    yield col, path, required, in_list
    listed = col.logical_type_options.get("required")
    names = frozenset(str(n) for n in listed) if isinstance(listed, list) else frozenset()
    yield from _walk(col.children, path, names, in_list)
    if col.items is not None:
        yield from _walk_one(col.items, f"{path}[]", col.items.required, True)


def constraint_rules(table: MonitoredTable, severity: str = "error") -> tuple[QualityRule, ...]:
    """One rule per column constraint of `table`, in column order (the primary key first, as one rule)."""
    rules: list[QualityRule] = []

    def add(path: str, metric: str, source: str, args: dict[str, Any], name: str | None = None) -> None:
        rules.append(
            QualityRule(
                name=name or f"{path}: {metric}",
                type=CONSTRAINT_TYPE,
                table=table.schema_name,
                element=path,
                metric=metric,
                arguments=args,
                severity=severity,
                source_path=source,
            )
        )

    key = table.primary_key
    if key:
        label = ", ".join(key)
        rules.append(
            QualityRule(
                name=f"primary key ({label})",
                type=CONSTRAINT_TYPE,
                table=table.schema_name,
                element=key[0] if len(key) == 1 else None,
                metric="primaryKey",
                arguments={"check": "primary_key", "columns": list(key)},
                severity=severity,
                source_path="properties[primaryKey]",
            )
        )
    for col, path, required, in_list in _walk(table.columns, None, frozenset(), False):
        where = f"properties.{path}"
        if required:
            add(path, "required", f"{where}.required", {"check": "required", "path": path})
        single_key = len(key) == 1 and key[0] == path
        if col.unique and not single_key:  # a one-column primary key already counts the duplicates
            if in_list:
                add(path, "unique", f"{where}.unique", {"not_checked": "uniqueness of array elements is not checked"})
            else:
                add(path, "unique", f"{where}.unique", {"check": "unique", "path": path})
        for metric, args in option_checks(col, path):
            add(path, metric, f"{where}.logicalTypeOptions.{metric}", args)
    return tuple(rules)


def option_checks(col: ExpectedColumn, path: str) -> list[tuple[str, dict[str, Any]]]:
    """The checks of one column's logicalTypeOptions: (option name, rule arguments)."""
    opts: Mapping[str, Any] = col.logical_type_options or {}
    logical = (col.logical_type or "").lower()
    out: list[tuple[str, dict[str, Any]]] = []
    tz = opts.get("defaultTimezone")
    for side, low in (("minimum", True), ("maximum", False)):
        exclusive_key = "exclusiveMinimum" if low else "exclusiveMaximum"
        flag = opts.get(exclusive_key)
        if side in opts:
            exclusive = flag is True  # v3.0: a flag on minimum / maximum
            out.append((side, _range_args(path, low, opts[side], exclusive, tz)))
        if flag is not None and not isinstance(flag, bool):  # v3.1+: the exclusive bound itself
            out.append((exclusive_key, _range_args(path, low, flag, True, tz)))
    for key, value in opts.items():
        if key in ("minimum", "maximum") or key in _NO_RULE:
            continue
        if key == "required" and logical == "object":
            continue  # names of required child properties: applied to the children
        if key in ("minLength", "maxLength"):
            out.append((key, _int_args(path, "length", key, value)))
        elif key in ("minItems", "maxItems"):
            out.append((key, _int_args(path, "items", key, value)))
        elif key == "uniqueItems":
            if value is True:
                out.append((key, {"check": "items", "path": path, "option": key, "value": True}))
        elif key == "pattern":
            out.append((key, {"check": "pattern", "path": path, "value": value}))
        elif key == "multipleOf":
            out.append((key, {"check": "multiple_of", "path": path, "value": value}))
        elif key == "format":
            out.append((key, _format_args(path, logical, value)))
        elif key in _TYPE_SCOPED_NOTES:
            out.append((key, {"not_checked": _TYPE_SCOPED_NOTES[key]}))
        else:
            out.append((key, {"not_checked": f"logicalTypeOptions.{key} is not an option floe checks"}))
    return out


def _range_args(path: str, low: bool, value: Any, exclusive: bool, tz: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"check": "range", "path": path, "low" if low else "high": value}
    if exclusive:
        args["low_exclusive" if low else "high_exclusive"] = True
    if isinstance(tz, str) and tz:
        args["timezone"] = tz
    return args


def _int_args(path: str, check: str, option: str, value: Any) -> dict[str, Any]:
    return {"check": check, "path": path, "option": option, "value": value}


def _format_args(path: str, logical: str, value: Any) -> dict[str, Any]:
    name = str(value).strip()
    if logical == "integer":
        if name.lower() in INTEGER_FORMATS:
            lo, hi = INTEGER_FORMATS[name.lower()]
            return {"check": "range", "path": path, "low": lo, "high": hi, "format": name.lower()}
        return {"not_checked": f"integer format {name!r} is not one of {', '.join(INTEGER_FORMATS)}"}
    if logical == "number":
        return {"not_checked": f"format {name!r} is the storage width; schema_drift compares the Iceberg type"}
    if logical in _TEMPORAL_LOGICAL:
        return {"not_checked": f"format {name!r} is how a {logical} is written as text; the Iceberg column is typed"}
    key = _FORMAT_ALIASES.get(name.lower(), name.lower())
    if key in _FREE_FORMATS:
        return {"not_checked": f"format {name!r} is {_FREE_FORMATS[key]}"}
    if key not in STRING_FORMATS:
        known = ", ".join(sorted(STRING_FORMATS))
        return {"not_checked": f"format {name!r} is not one floe can check (checked: {known})"}
    return {"check": "format", "path": path, "value": key}


# -- values of range bounds -----------------------------------------------------------------------------------


def temporal_kind(type_name: str) -> str | None:
    """ "date" | "timestamp" | "timestamptz" | "time" for a column type (Iceberg or Arrow spelling), else None."""
    t = type_name.lower()
    if t.startswith("date"):
        return "date"
    if t.startswith("timestamp"):
        return "timestamptz" if "tz" in t else "timestamp"
    if t.startswith("time"):
        return "time"
    return None


def parse_bound(value: Any, kind: str, timezone: str | None = None) -> Any:
    """A range bound as a Python value for a column of `kind` (number | date | timestamp | timestamptz | time).

    Numbers become Decimal (exact; floats through their shortest text). Temporal bounds are ISO-8601 text (or
    date / datetime objects); a timestamp without an offset is in `timezone` (ODCS `defaultTimezone`), else UTC.
    """
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
            raise RuleError(f"bound {value!r} is not a number")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise RuleError(f"bound {value!r} is not a number") from None
        if not number.is_finite():
            raise RuleError(f"bound {value!r} is not a finite number")
        return number
    if kind == "date":
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        try:
            return date.fromisoformat(str(value).strip()[:10])
        except ValueError:
            raise RuleError(f"bound {value!r} is not an ISO date (YYYY-MM-DD)") from None
    if kind == "time":
        if isinstance(value, time):
            return value
        try:
            return time.fromisoformat(str(value).strip())
        except ValueError:
            raise RuleError(f"bound {value!r} is not an ISO time (HH:MM:SS)") from None
    try:
        zone = ZoneInfo(timezone) if timezone else UTC
    except (ZoneInfoNotFoundError, ValueError):
        raise RuleError(f"defaultTimezone {timezone!r} is not a known time zone") from None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day, tzinfo=zone)
    else:
        text = str(value).strip()
        try:
            moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        except ValueError:
            raise RuleError(f"bound {value!r} is not an ISO timestamp") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    utc = moment.astimezone(UTC)
    # A column without a zone holds UTC wall-clock values (as Spark and pyiceberg write them).
    return utc if kind == "timestamptz" else utc.replace(tzinfo=None)


_EPOCH_DATE = date(1970, 1, 1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_iceberg_single_value(bound: Any, iceberg_type: str) -> Any:
    """A parsed bound in the form Iceberg's manifest bounds decode to (days, microseconds, Decimal, ...)."""
    t = iceberg_type.lower()
    if isinstance(bound, datetime):
        aware = bound if bound.tzinfo else bound.replace(tzinfo=UTC)
        micros = (aware - _EPOCH) // timedelta(microseconds=1)
        return micros * 1000 if t.endswith("_ns") else micros
    if isinstance(bound, date):
        return (bound - _EPOCH_DATE).days
    if isinstance(bound, time):
        return ((bound.hour * 60 + bound.minute) * 60 + bound.second) * 1_000_000 + bound.microsecond
    return bound


def bound_holds(bound_value: Any, limit: Any, low: bool, exclusive: bool) -> bool:
    """Whether a file's lower (`low`) / upper bound proves every value of the file is inside the limit."""
    if isinstance(bound_value, float):
        if math.isnan(bound_value):
            return False
        limit = float(limit)
    elif isinstance(bound_value, int) and isinstance(limit, Decimal):
        pass  # int vs Decimal compares exactly
    if low:
        return bool(bound_value > limit) if exclusive else bool(bound_value >= limit)
    return bool(bound_value < limit) if exclusive else bool(bound_value <= limit)


def non_negative_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RuleError(f"{what} must be a whole number, at least 0 (got {value!r})")
    return value


_PATH_TOKEN = re.compile(r"\[\]|[^.\[\]]+")


def split_path(path: str) -> list[str]:
    """ "tags[].code" -> ["tags", "[]", "code"]; "address.city" -> ["address", "city"]."""
    return _PATH_TOKEN.findall(path)
