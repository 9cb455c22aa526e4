"""ODCS v3 YAML -> MonitoredContract. The contracts package is the only one that knows ODCS field names.

Strict ODCS documents are validated against the official JSON Schema of the `apiVersion` they declare
(v3.0.0 .. v3.2.0, `validation.py`; a `servers[]` entry of type iceberg is accepted in every v3 version).
The floe dialect (schema `columns`, `slaProperties` as a map, a top-level `quality` list,
`customProperties` as a map) is first rewritten into strict ODCS, then validated the same way, so both
reach one code path. Every error names the file and the field path (`schema[0].properties[2].logicalType`).

The validated document is read directly (not through the `open-data-contract-standard` Pydantic model):
that model is v3.2.0 with `extra="forbid"`, so an older document would first need an up-conversion of
every field that changed (v3.0's quality `rule` and `validValues`, the team as a list, v3.0/v3.1 server
fields, ...) only to read the few fields floe uses, and anything the conversion missed would refuse a file
its own version's schema accepts. The schema of the declared version has already checked every type and
shape; this module reads what floe monitors and says, for what it does not monitor, why
(`MonitoredContract.not_monitored`).
"""

from __future__ import annotations

import copy
import logging
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from floe_monitoring_defs.config import DEFAULT_CONTRACT_MAX_BYTES, ConfigError, MonitoringConfig
from floe_monitoring_defs.contracts import elements, files, names
from floe_monitoring_defs.contracts.cache import ContractCache, default_cache
from floe_monitoring_defs.contracts.errors import ContractLoadError, fail, shorten
from floe_monitoring_defs.contracts.model import (
    ContractError,
    ExpectedColumn,
    LoadReport,
    MonitoredContract,
    MonitoredTable,
    NotMonitored,
    QualityRule,
    TableRef,
)
from floe_monitoring_defs.contracts.servers import Location, ServerOptions, locate
from floe_monitoring_defs.contracts.sla import parse_sla
from floe_monitoring_defs.contracts.validation import declared_version, odcs_path, validate, version_list
from floe_monitoring_defs.contracts.yamltext import ContractYAMLError, compose, load_yaml, scalar_text

__all__ = [
    "CONTRACT_SUFFIXES",
    "ContractLoadError",
    "ServerOptions",
    "dagster_clash",
    "iter_contract_files",
    "load_contract_file",
    "load_contracts",
    "normalize_dialect",
    "parse_document",
]

log = logging.getLogger(__name__)

CONTRACT_SUFFIXES = files.CONTRACT_SUFFIXES
INTERNAL = "<internal>"  # the field of an error that is floe's bug, not the contract's (the fuzz tests find none)
_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
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
_DIALECT_SLA_KEYS = ("value", "valueExt", "unit", "element", "description", "driver", "scheduler", "schedule")
_OPERATORS = (
    "mustBe",
    "mustNotBe",
    "mustBeGreaterThan",
    "mustBeGreaterOrEqualTo",
    "mustBeLessThan",
    "mustBeLessOrEqualTo",
    "mustBeBetween",
    "mustNotBeBetween",
)
# ODCS v3.0 library `rule` names -> the v3.1 `metric` the quality engine knows (v3.1 renamed the field).
_V30_RULES = {"duplicatecount": "duplicateValues", "validvalues": "invalidValues", "nullcount": "nullValues"}
_FIELD_ID_KEYS = ("icebergFieldId", "floe.iceberg_field_id")


# ---------------------------------------------------------------------------------------------
# Dialect normalization


def _is_floe_dialect(doc: Mapping[str, Any]) -> bool:
    if isinstance(doc.get("slaProperties"), Mapping) or isinstance(doc.get("customProperties"), Mapping):
        return True
    if "quality" in doc or "owner" in doc or "contacts" in doc or "terms" in doc:
        return True
    return any(isinstance(s, Mapping) and "columns" in s for s in _list(doc.get("schema")))


def _list(value: Any) -> list[Any]:
    """`value` when it is a list, else nothing to iterate (the schema reports what it should have been)."""
    return value if isinstance(value, list) else []


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
                item.update({k: v for k, v in spec.items() if k in _DIALECT_SLA_KEYS})
            else:
                item["value"] = spec
            items.append(item)
        out["slaProperties"] = items
    if "customProperties" in out:
        out["customProperties"] = _custom_list(out["customProperties"])
    schema = []
    for obj in _list(out.get("schema")):
        if isinstance(obj, Mapping):
            obj = dict(obj)
            if "columns" in obj and "properties" not in obj:
                obj["properties"] = obj.pop("columns")
            if not isinstance(obj.get("properties"), list):
                schema.append(obj)
                continue
            props = []
            for prop in obj["properties"]:
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
# Reading the validated document


def _custom_props(items: Any) -> dict[str, Any]:
    if isinstance(items, Mapping):
        return {str(k): v for k, v in items.items()}
    if not isinstance(items, list):
        return {}
    return {c["property"]: c.get("value") for c in items if isinstance(c, Mapping) and _str(c.get("property"))}


UPSTREAM_PROPERTY = "floe.upstream"
_TABLE_ID = re.compile(r"^[^.\s]+(\.[^.\s]+)+$")


def _upstream(obj_custom: Any, contract_custom: Mapping[str, Any], source: str, where: str) -> tuple[str, ...]:
    """A table's upstream tables: `customProperties` `floe.upstream` of its schema object, else of the contract
    (every table of it), a list of `namespace.table` identifiers or one comma-separated string."""
    own = _custom_props(obj_custom)
    field, props = (
        (f"{where}.customProperties", own) if UPSTREAM_PROPERTY in own else ("customProperties", contract_custom)
    )
    raw = props.get(UPSTREAM_PROPERTY)
    if raw is None:
        return ()
    items = [p.strip() for p in raw.split(",")] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(i, str) and _TABLE_ID.match(i) for i in items):
        raise fail(source, f"{field}.{UPSTREAM_PROPERTY}", f"{shorten(raw)} is not a list of namespace.table names")
    return tuple(dict.fromkeys(items))  # declared order, each once


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _owners(doc: Mapping[str, Any], extras: Mapping[str, Any]) -> tuple[str, ...]:
    found: list[str] = []
    if isinstance(extras.get("owner"), str):
        found.append(extras["owner"])
    team = doc.get("team")
    members = team.get("members") if isinstance(team, Mapping) else team  # v3.1+: an object; v3.0: a list
    for m in members if isinstance(members, list) else []:
        if not isinstance(m, Mapping):
            continue
        who = m.get("username") or m.get("name")
        if str(m.get("role") or "").lower() in ("owner", "data owner", "dataowner") and who:
            found.append(str(who))
    if isinstance(team, Mapping) and _str(team.get("name")) and not found:
        found.append(f"team:{team['name']}")
    for c in _list(extras.get("contacts")):
        if isinstance(c, Mapping) and str(c.get("role", "")).lower() == "owner" and c.get("email"):
            found.append(str(c["email"]))
    # Dagster takes an email address or `team:<name>`: anything else becomes a team (`names.owner`).
    seen: dict[str, None] = {}
    for o in found:
        owner = names.owner(o)
        if owner is not None:
            seen.setdefault(owner)
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


def _table_ref(location: Location, obj: Mapping[str, Any], n_objects: int, source: str, idx: int) -> TableRef:
    table = _str(obj.get("physicalName")) or _str(obj.get("name"))
    if not table:
        raise fail(source, f"schema[{idx}]", "a schema object needs `physicalName` or `name`")
    metadata = location.metadata_location
    if metadata is not None:
        if "{model}" in metadata:
            metadata = metadata.replace("{model}", table)
        elif n_objects > 1:
            raise fail(
                source,
                "servers",
                f"the server's location {shorten(metadata)} is one table, but the contract has {n_objects} schema "
                "objects: put `{model}` where the table name goes",
            )
    return TableRef(
        namespace=location.namespace,
        name=table,
        catalog=location.catalog,
        catalog_url=location.catalog_url,
        warehouse=location.warehouse,
        metadata_location=metadata,
    )


def _field_id(custom: Mapping[str, Any], source: str, field: str) -> int | None:
    found: dict[str, int] = {}
    for key in _FIELD_ID_KEYS:
        fid = custom.get(key)
        if fid is None:
            continue
        if isinstance(fid, str) and re.fullmatch(r"[0-9]{1,10}", fid.strip()):
            fid = int(fid)  # a quoted number is still the id the author meant
        if isinstance(fid, bool) or not isinstance(fid, int) or not 0 <= fid < 2**31:  # Iceberg ids are ints
            raise fail(
                source, f"{field}.customProperties.{key}", f"{shorten(fid)} is not an Iceberg field id (an integer)"
            )
        found[key] = fid
    if len(set(found.values())) > 1:
        raise fail(source, f"{field}.customProperties", f"icebergFieldId and floe.iceberg_field_id differ: {found}")
    return next(iter(found.values()), None)


def _column(
    prop: Mapping[str, Any], field: str, source: str, parent: str | None, top_level: bool, item_of: str | None = None
) -> ExpectedColumn:
    """One property (recursively its `properties` / `items`); `parent` is the path of the enclosing column."""
    name = _str(prop.get("name"))
    if item_of is not None:
        name = name or f"{item_of}[]"
    elif not name:
        raise fail(source, f"{field}.name", "a property needs a name")
    assert name is not None  # for mypy: both branches above give one
    physical = _str(prop.get("physicalName")) or (name if item_of is None else "element")
    if item_of is not None:
        path = f"{parent}[]"
    else:
        path = f"{parent}.{physical}" if parent else ""
    here = path or physical
    custom = _custom_props(prop.get("customProperties"))
    children: list[ExpectedColumn] = []
    seen: set[str] = set()
    for j, child in enumerate(prop.get("properties") or []):
        if not isinstance(child, Mapping):
            continue
        col = _column(child, f"{field}.properties[{j}]", source, here, top_level=False)
        if col.physical_name in seen:
            raise fail(source, f"{field}.properties[{j}].name", f"column {here}.{col.physical_name} is declared twice")
        seen.add(col.physical_name)
        children.append(col)
    items = prop.get("items")
    element = (
        _column(items, f"{field}.items", source, here, False, item_of=name) if isinstance(items, Mapping) else None
    )
    position = prop.get("primaryKeyPosition")
    options = prop.get("logicalTypeOptions")
    required = prop.get("required") is True
    primary = prop.get("primaryKey") is True
    return ExpectedColumn(
        name=name,
        physical_name=physical,
        logical_type=_str(prop.get("logicalType")),
        physical_type=_str(prop.get("physicalType")),
        # A top-level primary key column is required, as schema drift and the asset's column schema have
        # always read it (an Iceberg identifier field cannot be optional either).
        required=required or (primary and top_level),
        primary_key=primary,
        classification=_str(prop.get("classification")),
        field_id=_field_id(custom, source, field),
        description=_str(prop.get("description")),
        unique=prop.get("unique") is True,
        primary_key_position=position
        if isinstance(position, int) and not isinstance(position, bool) and position > 0
        else None,
        logical_type_options=dict(options) if isinstance(options, Mapping) else {},
        children=tuple(children),
        items=element,
        path=path,
    )


def _columns(obj: Mapping[str, Any], source: str, idx: int) -> tuple[ExpectedColumn, ...]:
    cols: list[ExpectedColumn] = []
    seen: set[str] = set()
    for j, prop in enumerate(obj.get("properties") or []):
        field = f"schema[{idx}].properties[{j}]"
        if not isinstance(prop, Mapping):
            raise fail(source, field, "a property must be a mapping")
        col = _column(prop, field, source, None, top_level=True)
        if col.physical_name in seen:
            raise fail(source, f"{field}.name", f"column {col.physical_name!r} is declared twice")
        seen.add(col.physical_name)
        cols.append(col)
    return tuple(cols)


def _quality_rule(q: Mapping[str, Any], table: str, element: str | None, field: str, source: str) -> QualityRule:
    ops = {k: q[k] for k in _OPERATORS if q.get(k) is not None}
    metric, rule = _str(q.get("metric")), q.get("rule")
    qtype = str(q.get("type") or ("library" if metric or rule else "custom")).lower()
    arguments = dict(q["arguments"]) if isinstance(q.get("arguments"), Mapping) else {}
    if qtype == "library" and metric is None and isinstance(rule, str):
        # ODCS v3.0 names the library metric `rule` (v3.1 renamed it `metric`, and two of its names).
        metric = _V30_RULES.get(rule.lower(), rule)
        if metric == "invalidValues" and "validValues" in q and "validValues" not in arguments:
            arguments["validValues"] = q["validValues"]
    custom = _custom_props(q.get("customProperties"))
    weight = custom.get("floe.weight", custom.get("weight"))
    if weight is not None and _positive(weight) is None:
        raise fail(source, f"{field}.customProperties.weight", f"{shorten(weight)} is not a positive number")
    if qtype == "sql" and not q.get("query"):
        raise fail(source, f"{field}.query", "a `type: sql` rule needs a `query`")
    return QualityRule(
        name=_str(q.get("name")) or _str(q.get("id")) or f"{table}.{element or 'table'}.{metric or qtype}",
        type=qtype,
        table=table,
        element=element,
        metric=metric,
        unit=_str(q.get("unit")),
        rule=None if rule is None else str(rule),
        query=_str(q.get("query")),
        operators=ops,
        arguments=arguments,
        severity=_str(q.get("severity")),
        weight=_positive(weight),
        source_path=field,
    )


def _not_runnable(q: Mapping[str, Any], rule: QualityRule) -> NotMonitored | None:
    """A rule floe lists but cannot execute: `text` (prose) and `custom` for an engine floe does not run."""
    what = f"quality rule {rule.name} (type {rule.type})"
    if rule.type == "text":
        return NotMonitored(rule.source_path, what, "a text rule describes quality in words; there is nothing to run")
    if rule.type == "custom":
        # The quality engine skips every custom rule (quality/compile.py): whatever its engine, it is listed.
        engine = _str(q.get("engine"))
        reason = (
            f"a custom rule is written for its own engine ({engine}), which floe does not run: write it as type "
            "sql (one SELECT) or a library metric to have floe check it"
            if engine
            else "a custom rule without an engine: write it as type sql (one SELECT) or a library metric"
        )
        return NotMonitored(rule.source_path, what, reason)
    return None


def _nested_rules(prop: Mapping[str, Any], field: str, path: str) -> Iterator[tuple[str, str]]:
    """(field, property path) of each quality rule under a nested property of `prop` (at `path`): not run (the
    quality engine reads top-level columns), listed so that none is silently dropped."""
    children = [
        (f"{field}.properties[{j}]", c, f"{path}.{_str(c.get('name')) or '?'}")
        for j, c in enumerate(_list(prop.get("properties")))
        if isinstance(c, Mapping)
    ]
    items = prop.get("items")
    if isinstance(items, Mapping):
        children.append((f"{field}.items", items, f"{path}[]"))
    for where, child, child_path in children:
        for k, q in enumerate(_list(child.get("quality"))):
            if isinstance(q, Mapping):
                yield f"{where}.quality[{k}]", child_path
        yield from _nested_rules(child, where, child_path)


def _positive(value: Any) -> float | None:
    """`value` as a positive, finite weight; None when it is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) and number > 0 else None


def _dialect_rules(extras: Mapping[str, Any], tables: list[MonitoredTable], source: str) -> list[QualityRule]:
    rules = []
    if extras.get("quality") is not None and not isinstance(extras["quality"], list):
        raise fail(source, "quality", "the floe dialect's `quality` must be a list of rules")
    for i, q in enumerate(_list(extras.get("quality"))):
        field = f"quality[{i}]"
        if not isinstance(q, Mapping):
            raise fail(source, field, "a quality rule must be a mapping")
        qtype = str(q.get("type", "")).lower() if isinstance(q.get("type"), str) else ""
        if qtype not in _DIALECT_QUALITY_TYPES:
            raise fail(
                source, f"{field}.type", f"{shorten(q.get('type'))} is not one of {sorted(_DIALECT_QUALITY_TYPES)}"
            )
        table, column = elements.dialect_rule_target(q.get("element"), tables, source, f"{field}.element")
        for key in ("name", "severity"):
            if q.get(key) is not None and not _str(q.get(key)):
                raise fail(source, f"{field}.{key}", f"{shorten(q.get(key))} is not text")
        weight = q.get("weight")
        if weight is not None and _positive(weight) is None:
            raise fail(source, f"{field}.weight", f"{shorten(weight)} is not a positive number")
        rule = q.get("rule")
        if rule is not None and (isinstance(rule, bool) or not isinstance(rule, str | int | float)):
            raise fail(source, f"{field}.rule", f"{shorten(rule)} is not a rule (text such as '>= 0' or a regex)")
        rules.append(
            QualityRule(
                name=_str(q.get("name")) or f"{column}_{qtype}",
                type=qtype,
                table=table.schema_name,
                element=column,
                rule=None if rule is None else str(rule),
                severity=_str(q.get("severity")),
                source_path=field,
                weight=_positive(weight),
            )
        )
    return rules


def _text_lookup(text: str | None) -> Callable[[Sequence[str | int]], str | None] | None:
    """The text written at a path of the YAML source (composed once, only when the validator asks)."""
    if text is None:
        return None
    cache: list[Any] = []

    def at(path: Sequence[str | int]) -> str | None:
        if not cache:
            cache.append(compose(text))
        return scalar_text(cache[0], path)

    return at


def parse_document(
    raw: Any, source: str, *, options: ServerOptions | None = None, text: str | None = None
) -> MonitoredContract:
    """Validate and convert one parsed YAML document; raises ContractLoadError naming the field, never anything
    else (a bug of floe's is an error at field `<internal>`, logged with its traceback at DEBUG).

    `text` is the YAML the document was read from (lets a number YAML typed where ODCS wants a string be
    read as the text written); `options` say how servers map to catalogs here (FLOE_SERVER_*).
    """
    try:
        return _parse_document(raw, source, options=options, text=text)
    except ContractLoadError:
        raise
    except Exception as exc:
        log.debug("reading contract %s failed", source, exc_info=True)
        raise fail(
            source, INTERNAL, f"floe could not read this contract ({type(exc).__name__}); please report it"
        ) from None


def _parse_document(raw: Any, source: str, *, options: ServerOptions | None, text: str | None) -> MonitoredContract:
    if raw is None:
        raise fail(source, "<root>", "the file holds no YAML document (it is empty or only comments)")
    if not isinstance(raw, Mapping):
        raise fail(source, "<root>", f"a contract must be a YAML mapping, got {type(raw).__name__}")
    dialect = "floe" if _is_floe_dialect(raw) else "odcs"
    doc, extras = normalize_dialect(raw) if dialect == "floe" else (dict(raw), {})
    api_version = declared_version(doc)
    if api_version is None:
        got = doc.get("apiVersion")
        what = "no apiVersion" if got is None else f"{shorten(got)} is not an ODCS version floe reads"
        raise fail(source, "apiVersion", f"{what}; supported: {version_list()}")
    # The dialect's paths differ from its text (columns vs properties, maps vs lists): str() re-reads there.
    doc, problem = validate(doc, api_version, _text_lookup(text) if dialect == "odcs" else None)
    if problem is not None:
        raise fail(source, odcs_path(problem.path), problem.message)
    return _read_contract(doc, extras, source, dialect, api_version, options or ServerOptions())


_DEFAULTS = MonitoringConfig()


def _check_overrides(overrides: Mapping[str, Any], source: str) -> None:
    """`floe.monitoring` merged over the defaults must be a monitoring config: what is wrong is said here, where
    `floe contracts validate` shows it, not only when definitions load (the deployment's own config may still
    make a merged value invalid; that is reported at load)."""
    if not overrides:
        return
    try:
        _DEFAULTS.merged(overrides, "floe.monitoring", channels_known=False)
    except (ConfigError, ValueError, TypeError) as exc:
        raise fail(source, "customProperties.floe.monitoring", str(exc)) from None


_MONITORING = "floe.monitoring"


def _monitoring_overrides(custom: Mapping[str, Any], source: str) -> dict[str, Any]:
    """`customProperties` `floe.monitoring` (a mapping), plus the floe dialect's flat spelling, one dotted key per
    setting as its other custom properties are written (`floe.monitoring.check_intervals.freshness_minutes: 5`);
    either spelling works in both dialects. A setting given both ways is refused."""
    overrides = custom.get(_MONITORING) or {}
    if not isinstance(overrides, Mapping):
        raise fail(source, f"customProperties.{_MONITORING}", "must be a mapping of monitoring settings")
    out: dict[str, Any] = copy.deepcopy(dict(overrides))  # the flat keys are written into it, never the document
    for key in sorted(k for k in custom if k.startswith(_MONITORING + ".")):
        path = key[len(_MONITORING) + 1 :].split(".")
        node: Any = out
        for part in path[:-1]:
            node = node.setdefault(part, {}) if isinstance(node, dict) and part else None
        if not all(path) or not isinstance(node, dict) or path[-1] in node:
            raise fail(source, f"customProperties.{key}", "set twice (or not a setting); give each setting once")
        node[path[-1]] = custom[key]
    return out


def _read_contract(
    doc: Mapping[str, Any],
    extras: Mapping[str, Any],
    source: str,
    dialect: str,
    api_version: str,
    options: ServerOptions,
) -> MonitoredContract:
    name = _str(doc.get("name")) or _str(doc.get("id"))
    if not name:
        raise fail(source, "name", "a contract needs a `name` (or `id`)")
    version = doc.get("version")
    if not isinstance(version, str) or not _SEMVER.match(version):
        raise fail(source, "version", f"{shorten(version)} is not a semantic version X.Y.Z")
    custom = _custom_props(doc.get("customProperties"))
    overrides = _monitoring_overrides(custom, source)
    _check_overrides(overrides, source)
    objects = [o for o in doc.get("schema") or [] if isinstance(o, Mapping)]
    if not objects:
        raise fail(source, "schema", "the contract declares no table (`schema` is empty)")
    location = locate(doc.get("servers") or [], custom, options, source)

    tables: list[MonitoredTable] = []
    not_monitored: list[NotMonitored] = []
    for idx, obj in enumerate(objects):
        ref = _table_ref(location, obj, len(objects), source, idx)
        schema_name = _str(obj.get("name")) or ref.name
        rules: list[QualityRule] = []
        sources: list[tuple[Mapping[str, Any], str | None, str]] = [
            (q, None, f"schema[{idx}].quality[{k}]") for k, q in enumerate(obj.get("quality") or [])
        ]
        for j, prop in enumerate(obj.get("properties") or []):
            if isinstance(prop, Mapping):
                element = _str(prop.get("physicalName")) or _str(prop.get("name"))
                sources += [
                    (q, element, f"schema[{idx}].properties[{j}].quality[{k}]")
                    for k, q in enumerate(prop.get("quality") or [])
                ]
                for field, path in _nested_rules(prop, f"schema[{idx}].properties[{j}]", element or "?"):
                    reason = "quality rules run on top-level columns; a rule on a nested property is not run"
                    not_monitored.append(NotMonitored(field, f"quality rule on {path}", reason))
        for q, element, field in sources:
            if not isinstance(q, Mapping):
                continue
            rule = _quality_rule(q, schema_name, element, field, source)
            rules.append(rule)
            skipped = _not_runnable(q, rule)
            if skipped is not None:
                not_monitored.append(skipped)
            elif q.get("schedule") or q.get("scheduler"):
                reason = "quality rules run together, at the quality check's interval (check_intervals.quality_minutes)"
                not_monitored.append(NotMonitored(f"{field}.schedule", f"schedule of quality rule {rule.name}", reason))
        tables.append(
            MonitoredTable(
                schema_name=schema_name,
                ref=ref,
                columns=_columns(obj, source, idx),
                description=_str(obj.get("description")),
                quality_rules=tuple(rules),
                upstream=_upstream(obj.get("customProperties"), custom, source, f"schema[{idx}]"),
            )
        )
    schema_names = [t.schema_name for t in tables]
    if len(set(schema_names)) != len(schema_names):
        raise fail(source, "schema", "two schema objects share a name")
    elements.check_asset_keys(tables, objects, location.namespace_field, source)
    for t in tables:
        elements.check_rule_columns(t, source)
    sla = parse_sla(doc.get("slaProperties") or [], _str(doc.get("slaDefaultElement")), source)
    fcols = elements.time_columns(
        sla.freshness.element if sla.freshness else None,
        tables,
        source,
        sla.element_fields.get("latency", "slaProperties"),
        "freshness",
    )
    if sla.retention is not None:
        where = sla.element_fields.get("retention", "slaProperties")
        elements.time_columns(sla.retention.element, tables, source, where, "retention")
    dialect_rules = _dialect_rules(extras, tables, source)
    tables = [
        MonitoredTable(
            schema_name=t.schema_name,
            ref=t.ref,
            columns=t.columns,
            description=t.description,
            freshness_column=fcols[t.schema_name],
            quality_rules=t.quality_rules + tuple(r for r in dialect_rules if r.table == t.schema_name),
            upstream=t.upstream,
        )
        for t in tables
    ]
    described = doc.get("description")
    purpose = described.get("purpose") if isinstance(described, Mapping) else None
    tags = doc.get("tags")
    return MonitoredContract(
        name=name,
        version=version,
        contract_id=_str(doc.get("id")) or name,
        source=source,
        tables=tuple(tables),
        status=_str(doc.get("status")),
        domain=_str(doc.get("domain")),
        description=(purpose.strip() or None) if isinstance(purpose, str) else None,
        owners=_owners(doc, extras),
        tags=tuple(str(t) for t in tags) if isinstance(tags, list) else (),
        consumers=_consumers(custom, extras),
        freshness=sla.freshness,
        availability=sla.availability,
        frequency=sla.frequency,
        retention=sla.retention,
        time_of_availability=sla.time_of_availability,
        lifecycle=sla.lifecycle,
        response=sla.response,
        schedules=sla.schedules,
        not_monitored=tuple(sla.not_monitored + not_monitored),
        api_version=api_version if dialect == "odcs" else None,
        monitoring_overrides=dict(overrides),
        dialect=dialect,
    )


# ---------------------------------------------------------------------------------------------
# Files


def read_contract_text(path: Path, max_bytes: int = DEFAULT_CONTRACT_MAX_BYTES) -> tuple[str, Any]:
    """(text, document) of a contract file, read as the author meant it; ContractLoadError otherwise (a file that
    is not a regular file, larger than `max_bytes`, not UTF-8, not YAML: `files.py`, `yamltext.py`)."""
    return _text_and_document(files.read_bytes(path, max_bytes), str(path))


def _text_and_document(data: bytes, source: str) -> tuple[str, Any]:
    text = files.decode(data, source)
    try:
        return text, load_yaml(text)
    except ContractYAMLError as exc:
        raise fail(source, exc.where, exc.problem) from None


def _parse_bytes(data: bytes, source: str, options: ServerOptions | None) -> MonitoredContract:
    text, raw = _text_and_document(data, source)
    return parse_document(raw, source, options=options, text=text)


def load_contract_file(
    path: Path, options: ServerOptions | None = None, cache: ContractCache | None = None
) -> MonitoredContract:
    """One contract file; raises ContractLoadError naming the file (and the field or line), nothing else.

    With a `cache` (contracts/cache.py) the bytes are still read and checked every time; only what follows
    (decoding, YAML, the ODCS schema, the model) is skipped when the same bytes were parsed before."""
    opts = options or ServerOptions()
    data = files.read_bytes(path, opts.max_file_bytes)
    source = str(path)
    if cache is None:
        return _parse_bytes(data, source, options)
    return cache.parse(data, source, opts, lambda: _parse_bytes(data, source, options))


def iter_contract_files(paths: Iterable[Path]) -> Iterator[Path]:
    """The contract files under `paths` that are regular files (a path given that is not a directory as it is)."""
    return files.iter_regular_files(paths)


def load_contracts(
    paths: Iterable[Path | str], options: ServerOptions | None = None, cache: ContractCache | None = None
) -> LoadReport:
    """Load every contract under `paths`; a bad file becomes an error entry, never an exception. `cache`: the
    parsed-contract cache (default: the environment's, FLOE_CACHE_DIR or $DAGSTER_HOME/.floe-cache, contracts/cache.py;
    `ContractCache(None)` parses every file)."""
    cache = default_cache() if cache is None else cache
    contracts: list[MonitoredContract] = []
    errors: list[ContractError] = []
    by_name: dict[str, MonitoredContract] = {}
    by_table: dict[str, str] = {}
    by_dagster_name: dict[str, str] = {}
    for f in files.iter_contract_paths(Path(p) for p in paths):
        try:
            c = load_contract_file(f, options, cache)
        except ContractLoadError as exc:
            errors.append(exc.error)
            continue
        except Exception as exc:  # a bug reading one file must not stop the others, nor print a traceback
            log.debug("reading %s failed", f, exc_info=True)
            errors.append(ContractError(str(f), INTERNAL, f"floe could not read this file ({type(exc).__name__})"))
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
        same = dagster_clash(c, by_dagster_name)
        if same:
            errors.append(ContractError(str(f), "schema", same))
            continue
        by_name[c.name] = c
        for t in c.tables:
            by_table[t.ref.identifier] = c.name
            by_dagster_name.update(dict.fromkeys(names.dagster_names(t.ref.asset_path), c.name))
        contracts.append(c)
    return LoadReport(tuple(contracts), tuple(errors))


def dagster_clash(contract: MonitoredContract, taken: Mapping[str, str]) -> str | None:
    """Why `contract` cannot join the contracts whose Dagster names are `taken` (name -> contract): one of its
    tables becomes a Dagster name another contract's table already has (`shop/a-b` and `shop/a_b`)."""
    for t in contract.tables:
        for key in names.dagster_names(t.ref.asset_path):
            if key in taken:
                return (
                    f"table {t.ref.identifier} becomes the same Dagster name ({key.split(':', 1)[1]}) as a table "
                    f"of contract {taken[key]!r}"
                )
    return None
