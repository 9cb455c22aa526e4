"""ODCS v3 YAML -> MonitoredContract. The only module that knows ODCS field names.

Strict ODCS documents are validated against the official JSON Schema shipped with
`open-data-contract-standard` and parsed with its Pydantic model. The floe dialect (schema
`columns`, `slaProperties` as a map, a top-level `quality` list, `customProperties` as a map) is
first rewritten into strict ODCS, then validated the same way, so both reach one code path.
Every error names the file and the field path (`schema[0].properties[2].logicalType`).
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import isodate
import jsonschema_rs
import yaml
from jsonschema import Draft201909Validator
from open_data_contract_standard.model import OpenDataContractStandard, SchemaObject, SchemaProperty
from pydantic import ValidationError

from floe_monitoring_defs.contracts.model import (
    AvailabilitySLA,
    ContractError,
    ExpectedColumn,
    FreshnessSLA,
    LoadReport,
    MonitoredContract,
    MonitoredTable,
    QualityRule,
    TableRef,
)

log = logging.getLogger(__name__)

CONTRACT_SUFFIXES = (".yaml", ".yml")
_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
_PCT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%?\s*$")
_UNIT_SECONDS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hr": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
}
# The floe dialect writes engine types as logicalType; strict ODCS only knows the canonical names.
_LOGICAL_ALIASES = {
    "int": "integer",
    "long": "integer",
    "bigint": "integer",
    "smallint": "integer",
    "float": "number",
    "double": "number",
    "decimal": "number",
    "numeric": "number",
    "datetime": "timestamp",
    "timestamptz": "timestamp",
    "bool": "boolean",
    "text": "string",
}
_DIALECT_QUALITY_TYPES = frozenset({"format", "constraint", "null_check"})
# Top-level keys of the floe dialect that strict ODCS has no place for; kept as metadata only.
_DIALECT_EXTRA_KEYS = ("owner", "terms", "links", "contacts", "quality", "consumers", "downstream")


class ContractLoadError(Exception):
    def __init__(self, error: ContractError) -> None:
        super().__init__(str(error))
        self.error = error


# libyaml's C loader parses a contract in ~0.2 ms against ~1.6 ms for the pure-Python one.
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def _schema() -> dict[str, Any]:
    text = resources.files("open_data_contract_standard").joinpath("schema.json").read_text("utf-8")
    return dict(json.loads(text))


@functools.cache
def _validator() -> Draft201909Validator:
    """The reference validator, used to explain what is wrong once the fast one said "invalid"."""
    return Draft201909Validator(_schema())


@functools.cache
def _fast_validator() -> Any:
    """jsonschema-rs: the same ODCS schema checked in ~0.013 ms per contract instead of ~4.6 ms
    (benchmarks/defs_load.py: JSON-Schema validation was 7 of the 9 ms a contract cost to load)."""
    return jsonschema_rs.validator_for(_schema())


def _schema_errors(doc: Mapping[str, Any]) -> list[Any]:
    if _fast_validator().is_valid(doc):
        return []
    return list(_validator().iter_errors(doc))


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<root>"


def _fail(source: str, field: str, message: str) -> ContractLoadError:
    return ContractLoadError(ContractError(source, field, message))


# ---------------------------------------------------------------------------------------------
# Dialect normalization


def _is_floe_dialect(doc: Mapping[str, Any]) -> bool:
    if isinstance(doc.get("slaProperties"), Mapping) or isinstance(doc.get("customProperties"), Mapping):
        return True
    if "quality" in doc or "owner" in doc or "contacts" in doc or "terms" in doc:
        return True
    return any(isinstance(s, Mapping) and "columns" in s for s in doc.get("schema") or [])


def _custom_list(value: Any) -> Any:
    if isinstance(value, Mapping):
        return [{"property": str(k), "value": v} for k, v in value.items()]
    return value


def normalize_dialect(doc: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Rewrite the floe dialect into strict ODCS; returns (odcs_doc, dialect_extras)."""
    out = {k: v for k, v in doc.items() if k not in _DIALECT_EXTRA_KEYS}
    extras = {k: doc[k] for k in _DIALECT_EXTRA_KEYS if k in doc}
    if isinstance(out.get("description"), str):
        out["description"] = {"purpose": out["description"]}
    sla = out.get("slaProperties")
    if isinstance(sla, Mapping):
        items = []
        for prop, spec in sla.items():
            item = {"property": str(prop)}
            if isinstance(spec, Mapping):
                item.update({k: v for k, v in spec.items() if k in ("value", "unit", "element", "description")})
            else:
                item["value"] = spec
            items.append(item)
        out["slaProperties"] = items
    if "customProperties" in out:
        out["customProperties"] = _custom_list(out["customProperties"])
    schema = []
    for obj in out.get("schema") or []:
        if isinstance(obj, Mapping):
            obj = dict(obj)
            if "columns" in obj and "properties" not in obj:
                obj["properties"] = obj.pop("columns")
            props = []
            for prop in obj.get("properties") or []:
                if isinstance(prop, Mapping):
                    prop = {k: v for k, v in prop.items() if k not in ("format", "default", "enum")}
                    alias = str(prop.get("logicalType", "")).lower()
                    if alias in _LOGICAL_ALIASES:
                        prop["logicalType"] = _LOGICAL_ALIASES[alias]
                        prop.setdefault("physicalType", alias.upper())
                    if "customProperties" in prop:
                        prop["customProperties"] = _custom_list(prop["customProperties"])
                props.append(prop)
            obj["properties"] = props
        schema.append(obj)
    if schema:
        out["schema"] = schema
    return out, extras


# ---------------------------------------------------------------------------------------------
# Parsing


def _custom_props(items: list[Any] | None) -> dict[str, Any]:
    return {c.property: c.value for c in items or [] if getattr(c, "property", None)}


def _parse_duration(value: Any, unit: str | None, source: str, field: str) -> timedelta:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not unit or unit.lower() not in _UNIT_SECONDS:
            raise _fail(source, field, f"a number needs a unit (one of s, m, h, d), got unit {unit!r}")
        return timedelta(seconds=float(value) * _UNIT_SECONDS[unit.lower()])
    if isinstance(value, str):
        try:
            parsed = isodate.parse_duration(value.strip())
        except (isodate.ISO8601Error, ValueError):
            parsed = None
        if isinstance(parsed, timedelta) and parsed.total_seconds() > 0:
            return parsed
        if parsed is not None and not isinstance(parsed, timedelta):
            raise _fail(source, field, f"{value!r} uses years or months; use days (P30D) or hours")
    raise _fail(source, field, f"{value!r} is not an ISO-8601 duration such as PT15M, PT6H or P1D")


def _parse_pct(value: Any, source: str, field: str) -> float:
    m = _PCT.match(str(value)) if value is not None and not isinstance(value, bool) else None
    pct = float(m.group(1)) if m else -1.0
    if not 0 < pct <= 100:
        raise _fail(source, field, f"{value!r} is not a percentage such as '99.9%'")
    return pct


def _owners(doc: OpenDataContractStandard, extras: Mapping[str, Any]) -> tuple[str, ...]:
    found: list[str] = []
    if isinstance(extras.get("owner"), str):
        found.append(extras["owner"])
    team = doc.team
    members = team.members if team is not None and not isinstance(team, list) else team
    for m in members or []:
        if (m.role or "").lower() in ("owner", "data owner", "dataowner") and (m.username or m.name):
            found.append(str(m.username or m.name))
    if team is not None and not isinstance(team, list) and team.name and not found:
        found.append(f"team:{team.name}")
    for c in extras.get("contacts") or []:
        if isinstance(c, Mapping) and str(c.get("role", "")).lower() == "owner" and c.get("email"):
            found.append(str(c["email"]))
    seen: dict[str, None] = {}
    for o in found:
        seen.setdefault(o if ("@" in o or o.startswith("team:")) else f"team:{re.sub(r'[^A-Za-z0-9_-]+', '-', o)}")
    return tuple(seen)


def _consumers(custom: Mapping[str, Any], extras: Mapping[str, Any]) -> tuple[str, ...]:
    values: list[Any] = []
    for key in ("floe.consumers", "consumers"):
        v = custom.get(key)
        values.extend(v if isinstance(v, list) else [v] if v else [])
    v = extras.get("consumers")
    values.extend(v if isinstance(v, list) else [])
    down = extras.get("downstream")
    if isinstance(down, Mapping) and isinstance(down.get("consumers"), list):
        values.extend(down["consumers"])
    names = {str(x.get("name", x)) if isinstance(x, Mapping) else str(x) for x in values}
    return tuple(sorted(names))


def _table_ref(
    doc: OpenDataContractStandard, custom: Mapping[str, Any], obj: SchemaObject, source: str, idx: int
) -> TableRef:
    servers = [s for s in doc.servers or [] if (s.type or "").lower() == "iceberg"]
    server = servers[0] if servers else None
    ns_text = (server.namespace if server else None) or custom.get("floe.iceberg_namespace")
    if not ns_text:
        raise _fail(
            source,
            "servers",
            "no Iceberg namespace: add a `servers` entry of type iceberg with "
            "`namespace` (or customProperties `floe.iceberg_namespace`)",
        )
    table = obj.physicalName or obj.name
    if not table:
        raise _fail(source, f"schema[{idx}]", "a schema object needs `physicalName` or `name`")
    return TableRef(
        namespace=tuple(p for p in str(ns_text).split(".") if p),
        name=table,
        catalog=(server.catalog if server else None) or custom.get("floe.iceberg_catalog"),
        catalog_url=server.catalogUrl if server else None,
        warehouse=server.warehouse if server else None,
    )


def _columns(obj: SchemaObject, source: str, idx: int) -> tuple[ExpectedColumn, ...]:
    cols: list[ExpectedColumn] = []
    seen: set[str] = set()
    for j, prop in enumerate(obj.properties or []):
        field = f"schema[{idx}].properties[{j}]"
        if not prop.name:
            raise _fail(source, f"{field}.name", "a property needs a name")
        physical = prop.physicalName or prop.name
        if physical in seen:
            raise _fail(source, f"{field}.name", f"column {physical!r} is declared twice")
        seen.add(physical)
        custom = _custom_props(prop.customProperties)
        fid = custom.get("floe.iceberg_field_id")
        if fid is not None and not (isinstance(fid, int) and not isinstance(fid, bool)):
            raise _fail(source, f"{field}.customProperties.floe.iceberg_field_id", f"{fid!r} is not an integer")
        cols.append(
            ExpectedColumn(
                name=prop.name,
                physical_name=physical,
                logical_type=(prop.logicalType or None),
                physical_type=prop.physicalType,
                required=bool(prop.required) or bool(prop.primaryKey),
                primary_key=bool(prop.primaryKey),
                classification=prop.classification,
                field_id=fid,
                description=prop.description,
            )
        )
    return tuple(cols)


def _quality_rule(q: Any, table: str, element: str | None, field: str, source: str) -> QualityRule:
    ops = {
        k: getattr(q, k)
        for k in (
            "mustBe",
            "mustNotBe",
            "mustBeGreaterThan",
            "mustBeGreaterOrEqualTo",
            "mustBeLessThan",
            "mustBeLessOrEqualTo",
            "mustBeBetween",
            "mustNotBeBetween",
        )
        if getattr(q, k) is not None
    }
    qtype = (q.type or ("library" if q.metric or q.rule else "custom")).lower()
    custom = _custom_props(q.customProperties)
    weight = custom.get("floe.weight", custom.get("weight"))
    if weight is not None and (isinstance(weight, bool) or not isinstance(weight, int | float) or weight <= 0):
        raise _fail(source, f"{field}.customProperties.weight", f"{weight!r} is not a positive number")
    if qtype == "sql" and not q.query:
        raise _fail(source, f"{field}.query", "a `type: sql` rule needs a `query`")
    return QualityRule(
        name=q.name or q.id or f"{table}.{element or 'table'}.{q.metric or qtype}",
        type=qtype,
        table=table,
        element=element,
        metric=q.metric,
        unit=q.unit,
        rule=q.rule,
        query=q.query,
        operators=ops,
        arguments=dict(q.arguments or {}),
        severity=q.severity,
        weight=float(weight) if weight is not None else None,
        source_path=field,
    )


def _dialect_rules(extras: Mapping[str, Any], tables: list[MonitoredTable], source: str) -> list[QualityRule]:
    rules = []
    for i, q in enumerate(extras.get("quality") or []):
        field = f"quality[{i}]"
        if not isinstance(q, Mapping):
            raise _fail(source, field, "a quality rule must be a mapping")
        qtype = str(q.get("type", "")).lower()
        if qtype not in _DIALECT_QUALITY_TYPES:
            raise _fail(source, f"{field}.type", f"{q.get('type')!r} is not one of {sorted(_DIALECT_QUALITY_TYPES)}")
        element = q.get("element")
        if not element:
            raise _fail(source, f"{field}.element", "a floe-dialect rule needs the column it checks")
        table = next((t for t in tables if t.column(str(element))), tables[0] if tables else None)
        if table is None:
            raise _fail(source, f"{field}.element", f"no table declares column {element!r}")
        rules.append(
            QualityRule(
                name=str(q.get("name") or f"{element}_{qtype}"),
                type=qtype,
                table=table.schema_name,
                element=str(element),
                rule=None if q.get("rule") is None else str(q["rule"]),
                severity=q.get("severity"),
                source_path=field,
                weight=float(q["weight"]) if isinstance(q.get("weight"), int | float) else None,
            )
        )
    return rules


def _sla(doc: OpenDataContractStandard, source: str) -> tuple[FreshnessSLA | None, AvailabilitySLA | None]:
    freshness = availability = None
    for i, item in enumerate(doc.slaProperties or []):
        prop = (item.property or "").lower()
        field = f"slaProperties[{i}]"
        if prop == "freshness":
            freshness = FreshnessSLA(
                threshold=_parse_duration(item.value, item.unit, source, f"{field}.value"),
                text=str(item.value) + (f" {item.unit}" if item.unit and not isinstance(item.value, str) else ""),
                element=item.element or doc.slaDefaultElement,
            )
        elif prop == "availability":
            availability = AvailabilitySLA(_parse_pct(item.value, source, f"{field}.value"), str(item.value))
    return freshness, availability


def _resolve_freshness_column(element: str | None, tables: list[MonitoredTable]) -> dict[str, str | None]:
    """Map each table to the timestamp column its freshness is measured on (None = snapshot time)."""
    if not element:
        return {t.schema_name: None for t in tables}
    if "." in element:
        prefix, col = element.rsplit(".", 1)
        owners = [t for t in tables if prefix in (t.schema_name, t.ref.name)]
        if owners:
            return {t.schema_name: (col if t in owners else None) for t in tables}
    owners = [t for t in tables if t.column(element)] or tables[:1]
    # A column absent from every table still goes to the first one: the check reports it as ERROR.
    return {t.schema_name: (element if t in owners else None) for t in tables}


def parse_document(raw: Any, source: str) -> MonitoredContract:
    """Validate and convert one parsed YAML document; raises ContractLoadError naming the field."""
    if not isinstance(raw, Mapping):
        raise _fail(source, "<root>", f"a contract must be a YAML mapping, got {type(raw).__name__}")
    dialect = "floe" if _is_floe_dialect(raw) else "odcs"
    doc_dict, extras = normalize_dialect(raw) if dialect == "floe" else (dict(raw), {})
    errors = sorted(_schema_errors(doc_dict), key=lambda e: (len(e.absolute_path), e.message))
    if errors:
        best = errors[-1] if errors[-1].absolute_path else errors[0]
        deepest = max(errors, key=lambda e: len(e.absolute_path))
        best = deepest if len(deepest.absolute_path) else best
        raise _fail(source, _path(best.absolute_path), best.message)
    try:
        doc = OpenDataContractStandard.model_validate(doc_dict)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise _fail(source, _path(err["loc"]), err["msg"]) from None

    name = doc.name or doc.id
    if not name:
        raise _fail(source, "name", "a contract needs a `name` (or `id`)")
    version = str(doc.version or "")
    if not _SEMVER.match(version):
        raise _fail(source, "version", f"{doc.version!r} is not a semantic version X.Y.Z")
    custom = _custom_props(doc.customProperties)
    overrides = custom.get("floe.monitoring") or {}
    if not isinstance(overrides, Mapping):
        raise _fail(source, "customProperties.floe.monitoring", "must be a mapping of monitoring settings")
    objects = doc.schema_ or []
    if not objects:
        raise _fail(source, "schema", "the contract declares no table (`schema` is empty)")

    tables: list[MonitoredTable] = []
    for idx, obj in enumerate(objects):
        ref = _table_ref(doc, custom, obj, source, idx)
        cols = _columns(obj, source, idx)
        rules = [
            _quality_rule(q, obj.name or ref.name, None, f"schema[{idx}].quality[{k}]", source)
            for k, q in enumerate(obj.quality or [])
        ]
        for j, prop in enumerate(obj.properties or []):
            rules += [
                _quality_rule(
                    q,
                    obj.name or ref.name,
                    prop.physicalName or prop.name,
                    f"schema[{idx}].properties[{j}].quality[{k}]",
                    source,
                )
                for k, q in enumerate(_prop_quality(prop))
            ]
        tables.append(
            MonitoredTable(
                schema_name=obj.name or ref.name,
                ref=ref,
                columns=cols,
                description=obj.description,
                quality_rules=tuple(rules),
            )
        )
    names = [t.schema_name for t in tables]
    if len(set(names)) != len(names):
        raise _fail(source, "schema", "two schema objects share a name")
    freshness, availability = _sla(doc, source)
    fcols = _resolve_freshness_column(freshness.element if freshness else None, tables)
    dialect_rules = _dialect_rules(extras, tables, source)
    tables = [
        MonitoredTable(
            schema_name=t.schema_name,
            ref=t.ref,
            columns=t.columns,
            description=t.description,
            freshness_column=fcols[t.schema_name],
            quality_rules=t.quality_rules + tuple(r for r in dialect_rules if r.table == t.schema_name),
        )
        for t in tables
    ]
    desc = doc.description.purpose if doc.description else None
    return MonitoredContract(
        name=name,
        version=version,
        contract_id=doc.id or name,
        source=source,
        tables=tuple(tables),
        status=doc.status,
        domain=doc.domain,
        description=(desc or "").strip() or None,
        owners=_owners(doc, extras),
        tags=tuple(doc.tags or ()),
        consumers=_consumers(custom, extras),
        freshness=freshness,
        availability=availability,
        monitoring_overrides=dict(overrides),
        dialect=dialect,
    )


def _prop_quality(prop: SchemaProperty) -> list[Any]:
    return list(prop.quality or [])


def load_contract_file(path: Path) -> MonitoredContract:
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail(source, "<file>", f"cannot read: {exc.strerror}") from None
    try:
        raw = yaml.load(text, Loader=_YAML_LOADER)  # a safe loader (C or Python)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "<file>"
        raise _fail(source, where, f"not valid YAML: {getattr(exc, 'problem', exc)}") from None
    return parse_document(raw, source)


def iter_contract_files(paths: Iterable[Path]) -> Iterator[Path]:
    for p in paths:
        if p.is_dir():
            yield from sorted(f for f in p.rglob("*") if f.suffix in CONTRACT_SUFFIXES and f.is_file())
        else:
            yield p


def load_contracts(paths: Iterable[Path | str]) -> LoadReport:
    """Load every contract under `paths`; a bad file becomes an error entry, never an exception."""
    contracts: list[MonitoredContract] = []
    errors: list[ContractError] = []
    by_name: dict[str, MonitoredContract] = {}
    by_table: dict[str, str] = {}
    for f in iter_contract_files(Path(p) for p in paths):
        try:
            c = load_contract_file(f)
        except ContractLoadError as exc:
            errors.append(exc.error)
            continue
        if c.name in by_name:
            err = ContractError(str(f), "name", f"contract name {c.name!r} is already used by {by_name[c.name].source}")
            errors.append(err)
            continue
        clash = next((t.ref.identifier for t in c.tables if t.ref.identifier in by_table), None)
        if clash:
            err = ContractError(str(f), "schema", f"table {clash} is already monitored by contract {by_table[clash]!r}")
            errors.append(err)
            continue
        by_name[c.name] = c
        for t in c.tables:
            by_table[t.ref.identifier] = c.name
        contracts.append(c)
    return LoadReport(tuple(contracts), tuple(errors))
