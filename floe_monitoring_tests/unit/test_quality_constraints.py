"""Column constraints as rules (pure parts and the DuckDB engine on in-memory Arrow tables; no Iceberg).

What the manifests prove, per data file, is tested with a fake `MetadataReader`: every case the real
writer cannot produce on demand (delete files, nested counts, NaN counts, all-null files) is one line here.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from floe_monitoring_defs.contracts.model import ExpectedColumn, MonitoredTable, TableRef
from floe_monitoring_defs.quality.constraints import constraint_rules, has_constraints, parse_bound
from floe_monitoring_defs.quality.duckdb_engine import DuckDBQualityEngine
from floe_monitoring_defs.quality.engine import QualityDataSource, RuleResult
from floe_monitoring_defs.quality.metadata import run_rules
from floe_monitoring_defs.quality.operators import RuleError
from floe_monitoring_defs.sources.base import ColumnInfo, FileMetrics, TableSchemaInfo


def col(name: str, logical: str, **kw: Any) -> ExpectedColumn:
    return ExpectedColumn(name, name, logical, **kw)


def table(*cols: ExpectedColumn) -> MonitoredTable:
    return MonitoredTable("t", TableRef(("ns",), "t"), cols)


def generated(*cols: ExpectedColumn) -> list[tuple[str, str, dict[str, Any]]]:
    return [(r.name, r.source_path, r.arguments) for r in constraint_rules(table(*cols))]


# -- rules from the contract --------------------------------------------------------------------------------------


def test_one_rule_per_constraint_in_column_order_key_first() -> None:
    rules = constraint_rules(
        table(
            col("b", "integer", primary_key=True, required=True, primary_key_position=2),
            col("a", "string", primary_key=True, required=True, primary_key_position=1),
            col("email", "string", unique=True, logical_type_options={"maxLength": 80, "format": "email"}),
        ),
        "warning",
    )
    assert [(r.name, r.metric, r.severity) for r in rules] == [
        ("primary key (a, b)", "primaryKey", "warning"),
        ("b: required", "required", "warning"),
        ("a: required", "required", "warning"),
        ("email: unique", "unique", "warning"),
        ("email: maxLength", "maxLength", "warning"),
        ("email: format", "format", "warning"),
    ]
    assert rules[0].arguments == {"check": "primary_key", "columns": ["a", "b"]}
    assert rules[4].source_path == "properties.email.logicalTypeOptions.maxLength"


def test_exclusive_bounds_v3_0_flags_and_v3_1_values() -> None:
    v30 = generated(col("n", "integer", logical_type_options={"minimum": 0, "exclusiveMinimum": True, "maximum": 9}))
    assert [(name, args) for name, _, args in v30] == [
        ("n: minimum", {"check": "range", "path": "n", "low": 0, "low_exclusive": True}),
        ("n: maximum", {"check": "range", "path": "n", "high": 9}),
    ]
    v31 = generated(col("n", "integer", logical_type_options={"exclusiveMinimum": 0, "exclusiveMaximum": 10}))
    assert [(name, args) for name, _, args in v31] == [
        ("n: exclusiveMinimum", {"check": "range", "path": "n", "low": 0, "low_exclusive": True}),
        ("n: exclusiveMaximum", {"check": "range", "path": "n", "high": 10, "high_exclusive": True}),
    ]


def test_nested_paths_and_the_object_required_list() -> None:
    address = col(
        "address",
        "object",
        children=(col("city", "string"), col("zip", "string", logical_type_options={"pattern": "^[0-9]+$"})),
        logical_type_options={"required": ["city"]},
    )
    tags = col(
        "tags", "array", items=col("tag", "string", required=True, unique=True), logical_type_options={"maxItems": 3}
    )
    assert [(name, args.get("check"), args.get("path")) for name, _, args in generated(address, tags)] == [
        ("address.city: required", "required", "address.city"),
        ("address.zip: pattern", "pattern", "address.zip"),
        ("tags: maxItems", "items", "tags"),
        ("tags[]: required", "required", "tags[]"),
        ("tags[]: unique", None, None),  # not checked: uniqueness of array elements
    ]
    assert has_constraints(table(address)) and not has_constraints(table(col("x", "string")))


@pytest.mark.parametrize(
    ("logical", "options", "note"),
    [
        ("string", {"format": "ipv4-cidr"}, "format 'ipv4-cidr' is not one floe can check (checked: byte, date,"),
        ("string", {"format": "password"}, "format 'password' is a display hint (mask the value)"),
        ("date", {"format": "yyyy-MM-dd"}, "format 'yyyy-MM-dd' is how a date is written as text"),
        ("number", {"format": "f32"}, "format 'f32' is the storage width; schema_drift compares the Iceberg type"),
        ("integer", {"format": "i256"}, "integer format 'i256' is not one of i8, i16"),
        ("object", {"minProperties": 1}, "an Iceberg struct has a fixed set of fields"),
        ("string", {"maxCodePoints": 3}, "logicalTypeOptions.maxCodePoints is not an option floe checks"),
    ],
)
def test_options_floe_does_not_check_are_rules_with_the_reason(
    logical: str, options: dict[str, Any], note: str
) -> None:
    [(_, _, args)] = generated(col("c", logical, logical_type_options=options))
    assert str(args["not_checked"]).startswith(note)


def test_integer_formats_are_ranges() -> None:
    [(name, _, args)] = generated(col("c", "integer", logical_type_options={"format": "u8"}))
    assert (name, args) == ("c: format", {"check": "range", "path": "c", "low": 0, "high": 255, "format": "u8"})


@pytest.mark.parametrize(
    ("value", "kind", "tz", "expected"),
    [
        (5, "number", None, Decimal(5)),
        ("2.5", "number", None, Decimal("2.5")),
        ("2026-01-02", "date", None, date(2026, 1, 2)),
        (date(2026, 1, 2), "date", None, date(2026, 1, 2)),
        ("2026-01-02T03:04:05Z", "timestamptz", None, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02T03:04:05", "timestamptz", "Europe/Paris", datetime(2026, 1, 2, 2, 4, 5, tzinfo=UTC)),
        # a column without a zone holds UTC wall-clock values: the bound is naive on purpose
        ("2026-01-02T03:04:05+01:00", "timestamp", None, datetime(2026, 1, 2, 2, 4, 5)),
    ],
)
def test_parse_bound(value: Any, kind: str, tz: str | None, expected: Any) -> None:
    assert parse_bound(value, kind, tz) == expected


@pytest.mark.parametrize(
    ("value", "kind"), [(True, "number"), ("x", "number"), ("2026-13-01", "date"), ("soon", "timestamp")]
)
def test_parse_bound_refuses(value: Any, kind: str) -> None:
    with pytest.raises(RuleError):
        parse_bound(value, kind)


# -- the DuckDB engine on an in-memory table ---------------------------------------------------------------------


class ArrowSource:
    """A `QualityDataSource` over an Arrow table (no metadata: everything is scanned)."""

    def __init__(self, data: pa.Table) -> None:
        self.data = data
        self.read: list[str] = []

    @property
    def name(self) -> str:
        return "t"

    @property
    def columns_read(self) -> tuple[str, ...]:
        return tuple(n for n in self.data.schema.names if n in self.read)

    @property
    def snapshot_id(self) -> int | None:
        return None

    def schema(self) -> pa.Schema:
        return self.data.schema

    def scan(self, columns: Sequence[str]) -> pa.RecordBatchReader:
        self.read.extend(columns)
        return self.data.select(list(columns)).to_reader()

    def row_count(self) -> int:
        return int(self.data.num_rows)


def evaluate(data: pa.Table, *cols: ExpectedColumn) -> dict[str, RuleResult]:
    t = table(*cols)
    results = run_rules(DuckDBQualityEngine(), ArrowSource(data), t, constraint_rules(t))
    return {r.name: r for r in results}


FORMATS: dict[str, tuple[list[str], list[str]]] = {
    "email": (["a@b.co", "first.last+tag@sub.example.org"], ["a@b", "@b.co", "a b@c.de", "a@@b.co"]),
    "uuid": (["123e4567-e89b-12d3-a456-426614174000"], ["123e4567e89b12d3a456426614174000", "xyz"]),
    "uri": (["https://example.com/x?y=1", "mailto:a@b.co", "urn:isbn:123"], ["no scheme", "1http://x"]),
    "hostname": (["example.com", "a-b.c", "localhost"], ["-bad.com", "a..b", "a_b.com"]),
    "ipv4": (["192.168.0.1", "0.0.0.0", "255.255.255.255"], ["256.1.1.1", "1.2.3", "01.2.3.4.5"]),
    "ipv6": (["::1", "2001:db8::8a2e:370:7334", "fe80::1", "::ffff:192.0.2.1"], ["2001:::1", "12345::", "g::1"]),
    "date": (["2026-02-28"], ["2026-02-30", "2026-2-1", "28/02/2026"]),
    "date-time": (["2026-02-28T10:00:00Z", "2026-02-28T10:00:00.5+02:00"], ["2026-02-28", "2026-02-28T25:00:00Z"]),
    "time": (["10:00:00", "23:59:59.123"], ["24:00:01", "10:00"]),
    "byte": (["aGVsbG8=", "YWJj"], ["a", "abc!"]),
}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_string_formats(fmt: str) -> None:
    good, bad = FORMATS[fmt]
    data = pa.table({"v": pa.array([*good, *bad, None], pa.string())})
    result = evaluate(data, col("v", "string", logical_type_options={"format": fmt}))["v: format"]
    assert (result.value, result.method) == (float(len(bad)), "scan"), fmt


def test_length_items_multiple_of_and_unique_items() -> None:
    data = pa.table(
        {
            "s": pa.array(["abc", "a", "abcdef", None]),
            "n": pa.array([10, 15, 20, None], pa.int64()),
            "d": pa.array([Decimal("1.50"), Decimal("1.25"), None, Decimal("3.00")], pa.decimal128(6, 2)),
            "l": pa.array([["a"], ["a", "a"], [], ["x", "y", "z", "w"]]),  # empty, a repeat, too long
        }
    )
    got = evaluate(
        data,
        col("s", "string", logical_type_options={"minLength": 2, "maxLength": 4}),
        col("n", "integer", logical_type_options={"multipleOf": 10}),
        col("d", "number", logical_type_options={"multipleOf": 0.5}),
        col("l", "array", logical_type_options={"minItems": 1, "maxItems": 3, "uniqueItems": True}),
    )
    assert {k: r.value for k, r in got.items()} == {
        "s: minLength": 1.0,
        "s: maxLength": 1.0,
        "n: multipleOf": 1.0,
        "d: multipleOf": 1.0,
        "l: minItems": 1.0,
        "l: maxItems": 1.0,
        "l: uniqueItems": 1.0,
    }


def test_constraints_on_a_column_of_the_wrong_type_error_alone() -> None:
    data = pa.table({"s": pa.array(["a"]), "f": pa.array([1.5])})
    got = evaluate(
        data,
        col("s", "string", logical_type_options={"minimum": 1}),
        col("f", "number", logical_type_options={"multipleOf": 0.5}),
        col("missing", "string", required=True),
    )
    assert got["s: minimum"].error == (
        "quality rule s: minimum (properties.s.logicalTypeOptions.minimum): "
        "a range applies to numbers, dates, times and timestamps; s holds string"
    )
    assert got["f: multipleOf"].error is not None and "integers and decimals" in got["f: multipleOf"].error
    assert (
        got["missing: required"].error is not None and "'missing' is not in the table" in got["missing: required"].error
    )


# -- metadata first: what a file's manifest entry proves ---------------------------------------------------------


class FakeReader(ArrowSource):
    """An Arrow table cut into 'files' with hand-written manifest metrics."""

    def __init__(self, files: dict[str, pa.Table], metrics: list[FileMetrics], info: TableSchemaInfo) -> None:
        super().__init__(pa.concat_tables(files.values()))
        self.files, self.metrics, self.info = files, metrics, info
        self.restricted_to: list[frozenset[str]] = []

    def schema_info(self) -> TableSchemaInfo:
        return self.info

    def file_metrics(self, field_ids: Collection[int], bounds: Collection[int] = ()) -> Sequence[FileMetrics]:
        return self.metrics

    def restricted(self, files: Collection[str]) -> QualityDataSource:
        self.restricted_to.append(frozenset(files))
        view = ArrowSource(pa.concat_tables(self.files[f] for f in sorted(files)))
        view.read = self.read
        return view


INFO = TableSchemaInfo(
    (
        ColumnInfo("v", 1, "long", False),
        ColumnInfo("r", 2, "double", False),
        ColumnInfo("s", 3, "struct<...>", False, (ColumnInfo("c", 4, "string", False, path="s.c"),), kind="struct"),
    )
)


def file(nulls: list[Any]) -> pa.Table:
    return pa.table(
        {
            "v": pa.array(nulls, pa.int64()),
            "r": pa.array([0.5] * len(nulls)),
            "s": pa.array([{"c": "x"}] * len(nulls), pa.struct([("c", pa.string())])),
        }
    )


def required(reader: FakeReader, path: str = "v") -> RuleResult:
    c = (
        col("s", "object", children=(col("c", "string", required=True),))
        if path == "s.c"
        else col("v", "integer", required=True)
    )
    t = table(c)
    [r] = run_rules(DuckDBQualityEngine(), reader, t, constraint_rules(t))
    return r


def test_null_counts_answer_alone_when_every_file_has_one() -> None:
    files = {"f1": file([1, None]), "f2": file([None, None, 3])}
    metrics = [FileMetrics("f1", 2, null_counts={1: 1}), FileMetrics("f2", 3, null_counts={1: 2})]
    reader = FakeReader(files, metrics, INFO)
    r = required(reader)
    assert (r.value, r.method, r.rows_checked, reader.read, reader.restricted_to) == (3.0, "metadata", 5, [], [])


def test_a_file_with_deletes_and_nulls_is_scanned_because_the_deleted_rows_may_hold_them() -> None:
    # f2's manifest says 2 nulls, but a delete file applies: the rows that survive hold none
    files = {"f1": file([None, 1]), "f2": file([4, 5])}
    metrics = [FileMetrics("f1", 2, null_counts={1: 1}), FileMetrics("f2", 4, has_deletes=True, null_counts={1: 2})]
    reader = FakeReader(files, metrics, INFO)
    r = required(reader)
    assert (r.value, r.method, reader.restricted_to) == (1.0, "scan", [frozenset({"f2"})])
    assert r.note == (
        "1 of 2 data files had no null count or a count that needs the rows and were scanned for this column; "
        "the others were answered from the manifests"
    )
    # a delete file on a file without nulls changes nothing: zero stays zero
    clean = FakeReader(files, [FileMetrics("f1", 2, null_counts={1: 1}), FileMetrics("f2", 2, True, {1: 0})], INFO)
    assert (required(clean).value, required(clean).method) == (1.0, "metadata")


def test_a_nested_null_count_is_read_from_the_rows_unless_it_is_zero() -> None:
    files = {"f1": file([1]), "f2": file([2])}
    nested = FakeReader(
        files, [FileMetrics("f1", 1, null_counts={4: 0}), FileMetrics("f2", 1, null_counts={4: 1})], INFO
    )
    r = required(nested, "s.c")
    assert (r.value, r.method, nested.restricted_to) == (0.0, "scan", [frozenset({"f2"})])  # the null was a parent
    zero = FakeReader(files, [FileMetrics("f1", 1, null_counts={4: 0}), FileMetrics("f2", 1, null_counts={4: 0})], INFO)
    assert (required(zero, "s.c").method, zero.restricted_to) == ("metadata", [])


def test_bounds_prove_files_that_lie_inside_and_nan_counts_gate_floats() -> None:
    files = {"f1": file([1, 2]), "f2": file([3, None]), "f3": file([None, None])}
    metrics = [
        FileMetrics("f1", 2, null_counts={1: 0}, nan_counts={2: 0}, lower={1: 1, 2: 0.5}, upper={1: 2, 2: 0.5}),
        # its bound says 30: not proven; and no NaN count for r
        FileMetrics("f2", 2, null_counts={1: 1}, lower={1: 3, 2: 0.5}, upper={1: 30, 2: 0.5}),
        # v only nulls: nothing out of range, no bounds needed
        FileMetrics("f3", 2, null_counts={1: 2}, nan_counts={2: 0}, lower={2: 0.5}, upper={2: 0.5}),
    ]
    reader = FakeReader(files, metrics, INFO)
    t = table(
        col("v", "integer", logical_type_options={"minimum": 1, "maximum": 10}),
        col("r", "number", logical_type_options={"maximum": 1}),
    )
    got = {r.name: r for r in run_rules(DuckDBQualityEngine(), reader, t, constraint_rules(t))}
    assert (got["v: minimum"].method, got["v: minimum"].value) == ("metadata", 0.0)
    assert (got["v: maximum"].method, got["v: maximum"].value) == ("scan", 0.0)  # f2 read: its 3 is fine
    assert got["r: maximum"].method == "scan"  # f2 has no NaN count: a float range cannot be proven there
    assert reader.restricted_to == [frozenset({"f2"})]
