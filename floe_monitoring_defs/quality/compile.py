"""Quality rules compiled to DuckDB SQL: one aggregate expression per rule, or a vetted SQL query.

Library metrics (ODCS) and floe-dialect rules become one count expression each, evaluated together
in a single aggregate pass over the projected table (`object`). What each one counts:

* `nullValues`: `col IS NULL`.
* `missingValues`: the values in `arguments.missingValues` (`null` in the list means `IS NULL`);
  without the argument, `[null, '', 'N/A']` for a string column and `[null]` for any other.
* `invalidValues`: non-null values not in `arguments.validValues` or not fully matching
  `arguments.pattern` (an RE2 regex, `regexp_full_match`); either argument, or both.
* `duplicateValues`: on a column, `count(col) - count(DISTINCT col)` (nulls ignored); on the table,
  the combination of the `arguments.properties` columns, `count(*) - count(DISTINCT (a, b))`.
* `rowCount`: all rows.
* floe `null_check`: `col IS NULL`; floe `format` (`rule` = regex): non-null values not fully
  matching it; floe `constraint` (`rule` such as `>= 0`, `BETWEEN 1 AND 5`, `IN ('a', 'b')`,
  `LIKE 'x%'`, each optionally `NOT`): non-null values violating it.

Without an operator a metric must be 0 (`rowCount`: greater than 0); floe-dialect rules always
expect 0 violating rows.

`unit: percent` turns a count into 100 * count / rows (0 for an empty table). `type: sql` rules keep
their query (placeholders `{object}` / `${object}` / `{table}` -> the table, `{property}` /
`${property}` / `{column}` -> the rule's column) and are accepted only when DuckDB parses them as
exactly one SELECT statement. `text` and `custom` rules are not executable and are skipped.

Column constraints (`type: column_constraint`, made by `quality.constraints` from the contract's
columns) compile to one count each too: nested struct paths through `struct_extract`, array elements
(`tags[]`, `tags[].code`) counted per element with `list_filter`.

Values from the contract (valid values, regexes, constraint literals) are re-rendered as SQL
literals by this module, never pasted: a rule's text cannot inject SQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import duckdb
import pyarrow as pa

from floe_monitoring_defs.contracts.model import QualityRule
from floe_monitoring_defs.quality.constraints import (
    CONSTRAINT_TYPE,
    STRING_FORMATS,
    non_negative_int,
    parse_bound,
    split_path,
    temporal_kind,
)
from floe_monitoring_defs.quality.operators import UNITS, Comparison, RuleError, parse_comparison

OBJECT = "object"

METRICS = ("nullValues", "missingValues", "invalidValues", "duplicateValues", "rowCount")
_METRIC_BY_LOWER = {m.lower(): m for m in METRICS}
DIALECT_TYPES = ("null_check", "format", "constraint")
NOT_EXECUTABLE = ("text", "custom")
NOT_EXECUTABLE_NOTES = {
    "text": "`type: text` rules are prose for people: nothing to execute",
    "custom": "`type: custom` rules are written for their own engine (ODCS `engine`), which floe does not run",
}

_ZERO = {"mustBe": 0}
_POSITIVE = {"mustBeGreaterThan": 0}

# -- constraint grammar (floe dialect): an operator and literals, nothing else --------------------------
_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_STR = r"'(?:[^']|'')*'"
_LIT = rf"(?:{_NUM}|{_STR}|TRUE|FALSE)"
_LIT_RE = re.compile(rf"\s*({_NUM}|{_STR}|TRUE\b|FALSE\b)\s*", re.IGNORECASE)
_CMP_RE = re.compile(rf"^\s*(>=|<=|<>|!=|==|=|>|<)\s*({_LIT})\s*$", re.IGNORECASE)
_BETWEEN_RE = re.compile(rf"^\s*(NOT\s+)?BETWEEN\s+({_LIT})\s+AND\s+({_LIT})\s*$", re.IGNORECASE)
_IN_RE = re.compile(rf"^\s*(NOT\s+)?IN\s*\(\s*({_LIT}(?:\s*,\s*{_LIT})*)\s*\)\s*$", re.IGNORECASE)
_LIKE_RE = re.compile(rf"^\s*(NOT\s+)?(LIKE|ILIKE)\s+({_STR})\s*$", re.IGNORECASE)

_PLACEHOLDER = re.compile(r"\$?\{\s*(object|table|property|column)\s*\}", re.IGNORECASE)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_literal(value: Any) -> str:
    """A Python value as a DuckDB literal (strings quoted with '' escaping)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise RuleError(f"{value!r} is not a finite number")
        return repr(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise RuleError(f"{value!r} is not a finite number")
        return str(value)
    if isinstance(value, str):
        if "\x00" in value:
            raise RuleError("a string literal may not contain a NUL character")
        return "'" + value.replace("'", "''") + "'"
    raise RuleError(f"{type(value).__name__} values are not supported here (use strings, numbers or booleans)")


def _parse_literal(text: str) -> Any:
    t = text.strip()
    if t.startswith("'"):
        return t[1:-1].replace("''", "'")
    if t.upper() == "TRUE":
        return True
    if t.upper() == "FALSE":
        return False
    if re.fullmatch(r"[-+]?\d+", t):
        return int(t)
    return Decimal(t)


def _is_string(t: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(t) or pa.types.is_large_string(t) or getattr(pa.types, "is_string_view", lambda _t: False)(t)
    )


def _is_numeric(t: pa.DataType) -> bool:
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t))


def _as_text(col: str, t: pa.DataType) -> str:
    return col if _is_string(t) else f"CAST({col} AS VARCHAR)"


def _membership(col: str, t: pa.DataType, values: Iterable[Any]) -> str:
    """SQL predicate: the (non-null) value of `col` is one of `values` (None entries ignored)."""
    vals = [v for v in values if v is not None]
    if _is_string(t):
        lits = [sql_literal(v if isinstance(v, str) else _text_of(v)) for v in vals]
        return f"{col} IN ({', '.join(lits)})" if lits else "FALSE"
    if _is_numeric(t):
        nums: list[str] = []
        for v in vals:
            if isinstance(v, bool):
                continue
            if isinstance(v, int | float | Decimal):
                nums.append(sql_literal(v))
            elif isinstance(v, str):
                try:
                    nums.append(sql_literal(Decimal(v.strip())))
                except ArithmeticError:
                    continue  # e.g. '' or 'N/A': never a value of a numeric column
        return f"{col} IN ({', '.join(nums)})" if nums else "FALSE"
    lits = [sql_literal(_text_of(v)) for v in vals]
    return f"CAST({col} AS VARCHAR) IN ({', '.join(lits)})" if lits else "FALSE"


def _text_of(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str | int | float | Decimal):
        return str(v)
    raise RuleError(f"{type(v).__name__} values are not supported in a value list")


def _regex(col: str, t: pa.DataType, pattern: Any, what: str) -> str:
    if not isinstance(pattern, str) or not pattern:
        raise RuleError(f"{what} must be a non-empty regular expression string")
    return f"regexp_full_match({_as_text(col, t)}, {sql_literal(pattern)})"


@dataclass(frozen=True)
class CompiledRule:
    """One rule ready to run: an aggregate count expression, a SQL query, or a skip."""

    rule: QualityRule
    metric: str
    kind: Literal["aggregate", "row_count", "sql", "skip"]
    comparison: Comparison | None = None
    unit: str = "rows"  # rows | percent | value
    columns: tuple[str, ...] = ()
    expression: str | None = None  # aggregate kind: returns a count
    query: str | None = None  # sql kind
    note: str | None = None  # skip kind: why
    element: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _unit(rule: QualityRule) -> str:
    unit = rule.unit or rule.arguments.get("unit") or "rows"
    unit = str(unit).strip().lower()
    if unit not in UNITS:
        raise RuleError(f"unit {unit!r} is not supported (rows or percent)")
    return unit


def _column(rule: QualityRule, schema: pa.Schema, what: str) -> tuple[str, pa.DataType]:
    if not rule.element:
        raise RuleError(f"{what} needs a column: put the rule under a schema property")
    if rule.element not in schema.names:
        raise RuleError(f"column {rule.element!r} is not in the table")
    return rule.element, schema.field(rule.element).type


def compile_rule(rule: QualityRule, schema: pa.Schema) -> CompiledRule:
    """Compile one rule against the table's schema; raises `RuleError` when it cannot run."""
    rtype = (rule.type or "library").strip().lower()
    if rtype in NOT_EXECUTABLE:
        return CompiledRule(rule, rtype, "skip", note=NOT_EXECUTABLE_NOTES[rtype], element=rule.element)
    if rtype == CONSTRAINT_TYPE:
        return compile_constraint(rule, schema)
    if rtype == "sql":
        return _compile_sql(rule, schema)
    if rtype in DIALECT_TYPES:
        return _compile_dialect(rule, rtype, schema)
    if rtype != "library":
        raise RuleError(f"rule type {rule.type!r} is not supported")
    raw_metric = rule.metric or rule.rule
    if not raw_metric:
        raise RuleError("a library rule needs a `metric`")
    metric = _METRIC_BY_LOWER.get(str(raw_metric).strip().lower())
    if metric is None:
        raise RuleError(f"metric {raw_metric!r} is not supported (one of {', '.join(METRICS)})")
    unit = _unit(rule)
    args = rule.arguments or {}
    if metric == "rowCount":
        if unit == "percent":
            raise RuleError("rowCount is a number of rows; `unit: percent` does not apply")
        return CompiledRule(
            rule, metric, "row_count", parse_comparison(rule.operators, _POSITIVE), unit, element=rule.element
        )
    comparison = parse_comparison(rule.operators, _ZERO)
    if metric == "duplicateValues" and not rule.element:
        props = args.get("properties")
        if not isinstance(props, list) or not props or not all(isinstance(p, str) for p in props):
            raise RuleError("a table-level duplicateValues rule needs `arguments.properties`: a list of columns")
        missing = [p for p in props if p not in schema.names]
        if missing:
            raise RuleError(f"columns {missing} named in arguments.properties are not in the table")
        cols = tuple(dict.fromkeys(props))
        if len(cols) == 1:
            q = quote_ident(cols[0])
            expr = f"(count({q}) - count(DISTINCT {q}))"
        else:
            expr = f"(count(*) - count(DISTINCT ({', '.join(quote_ident(c) for c in cols)})))"
        return CompiledRule(rule, metric, "aggregate", comparison, unit, cols, expr, element=None)
    name, ctype = _column(rule, schema, metric)
    col = quote_ident(name)
    if metric == "nullValues":
        expr = f"count(*) FILTER (WHERE {col} IS NULL)"
    elif metric == "missingValues":
        listed = args.get("missingValues")
        if listed is None:
            listed = [None, "", "N/A"] if _is_string(ctype) else [None]
        if not isinstance(listed, list):
            raise RuleError("arguments.missingValues must be a list of values")
        terms = [f"{col} IS NULL"] if any(v is None for v in listed) else []
        if any(v is not None for v in listed):
            terms.append(_membership(col, ctype, listed))
        expr = f"count(*) FILTER (WHERE {' OR '.join(terms) or 'FALSE'})"
    elif metric == "invalidValues":
        valid, pattern = args.get("validValues"), args.get("pattern")
        if valid is None and pattern is None:
            raise RuleError("invalidValues needs `arguments.validValues` (a list) or `arguments.pattern` (a regex)")
        bad = []
        if valid is not None:
            if not isinstance(valid, list):
                raise RuleError("arguments.validValues must be a list of values")
            bad.append(f"NOT ({_membership(col, ctype, valid)})")
        if pattern is not None:
            bad.append(f"NOT {_regex(col, ctype, pattern, 'arguments.pattern')}")
        expr = f"count(*) FILTER (WHERE {col} IS NOT NULL AND ({' OR '.join(bad)}))"
    else:  # duplicateValues on a column
        expr = f"(count({col}) - count(DISTINCT {col}))"
    return CompiledRule(rule, metric, "aggregate", comparison, unit, (name,), expr, element=name)


def _compile_dialect(rule: QualityRule, rtype: str, schema: pa.Schema) -> CompiledRule:
    name, ctype = _column(rule, schema, rtype)
    col = quote_ident(name)
    comparison = parse_comparison({}, _ZERO)  # the floe dialect has no operators: zero violating rows
    if rtype == "null_check":
        expr = f"count(*) FILTER (WHERE {col} IS NULL)"
    elif rtype == "format":
        expr = f"count(*) FILTER (WHERE {col} IS NOT NULL AND NOT {_regex(col, ctype, rule.rule, 'rule')})"
    else:
        expr = f"count(*) FILTER (WHERE {col} IS NOT NULL AND NOT ({constraint_predicate(col, rule.rule)}))"
    return CompiledRule(rule, rtype, "aggregate", comparison, "rows", (name,), expr, element=name)


def constraint_predicate(col: str, text: str | None) -> str:
    """`col` checked against a floe constraint (`>= 0`, `BETWEEN 1 AND 5`, `IN ('a','b')`, `!= ''`).

    Only an operator followed by literals is accepted; the literals are parsed and rendered again.
    """
    if not text or not text.strip():
        raise RuleError("a constraint rule needs `rule`, such as \">= 0\" or \"IN ('a', 'b')\"")
    m = _CMP_RE.match(text)
    if m:
        op = {"==": "=", "!=": "<>"}.get(m.group(1), m.group(1))
        return f"{col} {op} {sql_literal(_parse_literal(m.group(2)))}"
    m = _BETWEEN_RE.match(text)
    if m:
        neg = "NOT " if m.group(1) else ""
        low, high = (sql_literal(_parse_literal(g)) for g in (m.group(2), m.group(3)))
        return f"{col} {neg}BETWEEN {low} AND {high}"
    m = _IN_RE.match(text)
    if m:
        neg = "NOT " if m.group(1) else ""
        items = [sql_literal(_parse_literal(x.group(1))) for x in _LIT_RE.finditer(m.group(2))]
        return f"{col} {neg}IN ({', '.join(items)})"
    m = _LIKE_RE.match(text)
    if m:
        neg = "NOT " if m.group(1) else ""
        return f"CAST({col} AS VARCHAR) {neg}{m.group(2).upper()} {sql_literal(_parse_literal(m.group(3)))}"
    raise RuleError(
        "constraint is not an operator followed by literals (accepted: = != <> < <= > >= <literal>, "
        "[NOT] BETWEEN <literal> AND <literal>, [NOT] IN (<literal>, ...), [NOT] LIKE '<pattern>'; "
        "literals are numbers, 'quoted strings', TRUE, FALSE)"
    )


# -- type: sql ------------------------------------------------------------------------------------------


def substitute_placeholders(query: str, element: str | None) -> str:
    def repl(m: re.Match[str]) -> str:
        key = m.group(1).lower()
        if key in ("object", "table"):
            return quote_ident(OBJECT)
        if not element:
            raise RuleError(f"the query uses {m.group(0)} but the rule is not on a column")
        return quote_ident(element)

    return _PLACEHOLDER.sub(repl, query)


def single_select(query: str) -> str:
    """The query if DuckDB parses it as exactly one SELECT (or WITH ... SELECT); else RuleError."""
    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as exc:
        raise RuleError(f"the query does not parse: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise RuleError("only a single read-only SELECT is allowed")
    return query.strip().rstrip(";").strip()


def referenced_columns(query: str, names: Sequence[str]) -> tuple[str, ...]:
    """The table columns whose names appear as identifiers (or keywords) in the query, schema order.

    Unquoted names match case-insensitively (as DuckDB resolves them); quoted ones exactly.
    """
    tokens = duckdb.tokenize(query)
    exact: set[str] = set()
    folded: set[str] = set()
    for i, (start, ttype) in enumerate(tokens):
        if ttype not in (duckdb.token_type.identifier, duckdb.token_type.keyword):
            continue
        end = tokens[i + 1][0] if i + 1 < len(tokens) else len(query)
        text = query[start:end].strip()
        text = re.split(r"[\s.(),;]", text, maxsplit=1)[0] if not text.startswith('"') else text
        if text.startswith('"'):
            close = text.find('"', 1)
            while close != -1 and text[close + 1 : close + 2] == '"':
                close = text.find('"', close + 2)
            exact.add(text[1 : close if close != -1 else None].replace('""', '"'))
        else:
            folded.add(text.lower())
    return tuple(n for n in names if n in exact or n.lower() in folded)


def _compile_sql(rule: QualityRule, schema: pa.Schema) -> CompiledRule:
    if not rule.query or not rule.query.strip():
        raise RuleError("a `type: sql` rule needs a `query`")
    if rule.element and rule.element not in schema.names:
        raise RuleError(f"column {rule.element!r} is not in the table")
    query = single_select(substitute_placeholders(rule.query, rule.element))
    comparison = parse_comparison(rule.operators, None) if any(v is not None for v in rule.operators.values()) else None
    unit = str(rule.unit).strip().lower() if rule.unit else "value"
    cols = referenced_columns(query, schema.names)
    return CompiledRule(rule, "sql", "sql", comparison, unit, cols, query=query, element=rule.element)


# -- column constraints (quality/constraints.py) ----------------------------------------------------------------

_ELEMENT = "floe_el"  # the lambda variable of an array element (a parameter: shadows any column of that name)


@dataclass(frozen=True)
class _Path:
    """A column path resolved against the Arrow schema, as SQL."""

    top: str  # the top-level column to read
    value: str  # SQL of the value (in terms of `_ELEMENT` inside an array)
    guards: tuple[str, ...]  # SQL of the struct ancestors that must be present for the value to be required
    leaf: pa.DataType
    array: str | None = None  # SQL of the array the value is an element of (None: not in an array)


def _resolve(path: str, schema: pa.Schema) -> _Path:
    tokens = [path] if path in schema.names else split_path(path)
    if not tokens or tokens[0] not in schema.names:
        raise RuleError(f"column {tokens[0] if tokens else path!r} is not in the table")
    top = tokens[0]
    expr, typ = quote_ident(top), schema.field(top).type
    guards: list[str] = []
    array: str | None = None
    walked = top
    for tok in tokens[1:]:
        if tok == "[]":
            if not (pa.types.is_list(typ) or pa.types.is_large_list(typ)):
                raise RuleError(f"{walked} is not an array (it is {typ})")
            if array is not None:
                raise RuleError(f"{path}: constraints inside nested arrays are not checked")
            array, expr, typ, guards = expr, _ELEMENT, typ.value_type, []
            walked += "[]"
            continue
        if not pa.types.is_struct(typ) or typ.get_field_index(tok) < 0:
            raise RuleError(f"{walked} has no field {tok!r}")
        guards.append(expr)
        expr = f"struct_extract({expr}, {sql_literal(tok)})"
        typ = typ.field(typ.get_field_index(tok)).type
        walked += f".{tok}"
    return _Path(top, expr, tuple(guards), typ, array)


def _count(p: _Path, bad: str) -> str:
    """The number of rows (or, in an array, of elements) for which `bad` holds."""
    if p.array is None:
        return f"count(*) FILTER (WHERE {bad})"
    return f"coalesce(sum(len(list_filter({p.array}, lambda {_ELEMENT}: {bad}))), 0)"


def _violating(p: _Path, ok: str) -> str:
    return _count(p, f"{p.value} IS NOT NULL AND NOT ({ok})")


def _temporal_literal(bound: Any, kind: str) -> str:
    keyword = {"date": "DATE", "time": "TIME", "timestamp": "TIMESTAMP", "timestamptz": "TIMESTAMPTZ"}[kind]
    return f"{keyword} {sql_literal(bound.isoformat())}"


def _integer_range(t: pa.DataType) -> tuple[int, int] | None:
    if not pa.types.is_integer(t):
        return None
    bits = t.bit_width
    return (0, 2**bits - 1) if pa.types.is_unsigned_integer(t) else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def _range_ok(p: _Path, args: dict[str, Any]) -> str:
    t = p.leaf
    kind = "number" if _is_numeric(t) else temporal_kind(str(t))
    if kind is None:
        raise RuleError(f"a range applies to numbers, dates, times and timestamps; {p.top} holds {t}")
    tz = args.get("timezone")
    terms: list[str] = []
    limits = _integer_range(t)
    for side, op, strict in (("low", ">", "low_exclusive"), ("high", "<", "high_exclusive")):
        if args.get(side) is None:
            continue
        bound = parse_bound(args[side], kind, tz if isinstance(tz, str) else None)
        if limits is not None and (bound <= limits[0] if side == "low" else bound >= limits[1]):
            if not args.get(strict):
                continue  # the column's type cannot hold a value beyond this bound
        literal = _temporal_literal(bound, kind) if kind != "number" else sql_literal(bound)
        terms.append(f"{p.value} {op}{'' if args.get(strict) else '='} {literal}")
    return " AND ".join(terms) or "TRUE"


def compile_constraint(rule: QualityRule, schema: pa.Schema) -> CompiledRule:
    """A column constraint (see `quality.constraints`) as one aggregate count of the violating rows."""
    args = rule.arguments or {}
    zero = parse_comparison({}, _ZERO)
    if args.get("not_checked"):
        return CompiledRule(
            rule, rule.metric or CONSTRAINT_TYPE, "skip", note=str(args["not_checked"]), element=rule.element
        )
    check = args.get("check")
    metric = rule.metric or str(check)
    if check == "primary_key":
        cols = [str(c) for c in args.get("columns") or []]
        if not cols:
            raise RuleError("a primary key needs at least one column")
        paths = [_resolve(c, schema) for c in cols]
        if any(p.array is not None for p in paths):
            raise RuleError("a primary key column inside an array is not checked")
        values = [p.value for p in paths]
        if len(values) == 1:
            expr = f"(count({values[0]}) - count(DISTINCT {values[0]}))"
        else:
            expr = f"(count(*) - count(DISTINCT ({', '.join(values)})))"
        tops = tuple(dict.fromkeys(p.top for p in paths))
        return CompiledRule(rule, metric, "aggregate", zero, "rows", tops, expr, element=rule.element)
    path = str(args.get("path") or rule.element or "")
    p = _resolve(path, schema)
    v = p.value
    if check == "required":
        bad = " AND ".join([*(f"{g} IS NOT NULL" for g in p.guards), f"{v} IS NULL"])
        expr = _count(p, bad)
    elif check == "unique":
        if p.array is not None:
            raise RuleError("uniqueness of array elements is not checked")
        expr = f"(count({v}) - count(DISTINCT {v}))"
    elif check == "range":
        expr = _violating(p, _range_ok(p, args))
    elif check == "length":
        n = non_negative_int(args.get("value"), str(args.get("option")))
        if not _is_string(p.leaf):
            raise RuleError(f"{args.get('option')} applies to strings; {path} holds {p.leaf}")
        expr = _violating(p, f"length({v}) {'>=' if args.get('option') == 'minLength' else '<='} {n}")
    elif check == "pattern":
        pattern = args.get("value")
        if not isinstance(pattern, str) or not pattern:
            raise RuleError("pattern must be a non-empty regular expression")
        # JSON Schema / ODCS patterns are not anchored: the value must contain a match.
        expr = _violating(p, f"regexp_matches({_as_text(v, p.leaf)}, {sql_literal(pattern)})")
    elif check == "format":
        fmt = STRING_FORMATS[str(args.get("value"))]
        text = _as_text(v, p.leaf)
        terms = [f"regexp_full_match({text}, {sql_literal(fmt.regex)})"]
        if fmt.cast:
            terms.append(f"try_cast({text} AS {fmt.cast}) IS NOT NULL")
        if fmt.max_length:
            terms.append(f"length({text}) <= {fmt.max_length}")
        expr = _violating(p, " AND ".join(terms))
    elif check == "multiple_of":
        step = parse_bound(args.get("value"), "number")
        if step <= 0:
            raise RuleError(f"multipleOf must be above 0 (got {args.get('value')!r})")
        if not (pa.types.is_integer(p.leaf) or pa.types.is_decimal(p.leaf)):
            raise RuleError(f"multipleOf is checked on integers and decimals; {path} holds {p.leaf}")
        expr = _violating(p, f"({v} % {sql_literal(step)}) = 0")
    elif check == "items":
        if not (pa.types.is_list(p.leaf) or pa.types.is_large_list(p.leaf)):
            raise RuleError(f"{args.get('option')} applies to arrays; {path} holds {p.leaf}")
        option = args.get("option")
        if option == "uniqueItems":
            inner = f"{_ELEMENT}_u"
            ok = f"len(list_filter({v}, lambda {inner}: {inner} IS NOT NULL)) = len(list_distinct({v}))"
        else:
            n = non_negative_int(args.get("value"), str(option))
            ok = f"len({v}) {'>=' if option == 'minItems' else '<='} {n}"
        expr = _violating(p, ok)
    else:
        raise RuleError(f"unknown column constraint {check!r}")
    return CompiledRule(rule, metric, "aggregate", zero, "rows", (p.top,), expr, element=path)
