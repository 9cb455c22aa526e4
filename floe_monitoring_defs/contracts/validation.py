"""Validation of a strict ODCS document against the official JSON Schema of the version it declares.

* One schema per ODCS version (`schemas/odcs-json-schema-vX.Y.Z.json`, the official files), chosen by the
  document's `apiVersion`; an unknown or missing apiVersion is an error naming the versions supported.
* One deliberate leniency: a `servers[]` entry of `type: iceberg` (only defined from v3.2.0) is accepted in
  every v3 version and validated against the v3.2.0 server definition; the rest of the file is validated by
  its own version. The older schemas get that one change: their `servers.items` become "iceberg -> v3.2.0
  Server, anything else -> this version's Server" (the v3.2.0 definitions are embedded under
  `$defs/floeV320`).
* YAML typing: where the schema wants a string and YAML made a number or a boolean (`version: 1.0`,
  `id: 0123`, `name: 2024`), the value is read again as the text written and validated again.
  Python dates (a document handed in already parsed by a plain YAML loader) become ISO strings.
* jsonschema-rs checks a contract in microseconds and also explains what is wrong, with the path of the
  value: one compiled validator per version, built once, serves both the fast "valid?" and the
  explanation (python-jsonschema took 152 s to explain one typo in an 88 KB nested contract).
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from importlib import resources
from typing import Any

import jsonschema_rs

from floe_monitoring_defs.contracts.errors import shorten

SUPPORTED_VERSIONS = ("v3.0.0", "v3.0.1", "v3.0.2", "v3.1.0", "v3.2.0")
_ICEBERG_FROM = "v3.2.0"  # the first version with `servers[].type: iceberg`
_EMBEDDED = "floeV320"
# Values YAML types as something else than the string the schema asks for.
_RETYPABLE = (bool, int, float)
_COMBINATORS = ("AnyOf", "OneOfNotValid", "OneOfMultipleValid")
_WEAK = ("UnevaluatedProperties", "UnevaluatedItems", *_COMBINATORS)
_MAX_ERRORS = 1000
_MAX_RETYPES = 1000


@dataclass(frozen=True)
class SchemaProblem:
    """What the schema refuses first: the path of the value (keys and indexes) and a sentence."""

    path: tuple[str | int, ...]
    message: str


def version_list() -> str:
    return ", ".join(SUPPORTED_VERSIONS)


@functools.cache
def official_schema(version: str) -> dict[str, Any]:
    """The official JSON Schema of one ODCS version, as shipped in `schemas/`."""
    name = f"odcs-json-schema-{version}.json"
    text = resources.files("floe_monitoring_defs.contracts").joinpath("schemas", name).read_text("utf-8")
    return dict(json.loads(text))


def _rebase_refs(node: Any, prefix: str) -> Any:
    if isinstance(node, dict):
        out = {k: _rebase_refs(v, prefix) for k, v in node.items()}
        ref = out.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            out["$ref"] = prefix + ref[len("#/$defs/") :]
        return out
    if isinstance(node, list):
        return [_rebase_refs(v, prefix) for v in node]
    return node


def effective_schema(version: str) -> dict[str, Any]:
    """The schema floe validates `version` with: the official one, plus the iceberg-server leniency."""
    schema = official_schema(version)
    if version == _ICEBERG_FROM:
        return schema
    patched = copy.deepcopy(schema)
    servers = patched["properties"]["servers"]
    if servers.get("items") != {"$ref": "#/$defs/Server"}:  # a new schema file shaped differently: say so
        raise RuntimeError(f"ODCS {version} schema: unexpected `servers` definition {servers!r}")
    patched["$defs"][_EMBEDDED] = _rebase_refs(official_schema(_ICEBERG_FROM)["$defs"], f"#/$defs/{_EMBEDDED}/")
    servers["items"] = {
        "if": {"properties": {"type": {"const": "iceberg"}}, "required": ["type"]},
        "then": {"$ref": f"#/$defs/{_EMBEDDED}/Server"},
        "else": {"$ref": "#/$defs/Server"},
    }
    return patched


@functools.cache
def validator(version: str) -> Any:
    """The compiled validator of one version (compiled once per process: ~10 ms each)."""
    return jsonschema_rs.validator_for(effective_schema(version))


# ---------------------------------------------------------------------------------------------
# YAML typing


class NotJSON(ValueError):
    """A value no JSON document can hold (`!!binary`, `!!set`, ...); `path` says where."""

    def __init__(self, path: tuple[str | int, ...], what: str) -> None:
        super().__init__(what)
        self.path = path
        self.what = what


_INT64 = 2**63


def plain(value: Any, path: tuple[str | int, ...] = ()) -> Any:
    """`value` as JSON sees it: dates and times as ISO strings, integers too large for 64 bits as floats;
    NotJSON for anything else JSON has no type for."""
    if isinstance(value, dict):
        return {k if isinstance(k, str) else str(k): plain(v, (*path, str(k))) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v, (*path, i)) for i, v in enumerate(value)]
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, int) and not isinstance(value, bool) and not -_INT64 <= value < _INT64:
        return float(value)
    if value is None or isinstance(value, str | int | float):
        return value
    raise NotJSON(path, f"a YAML {type(value).__name__} value is not something a JSON document (ODCS) can hold")


def _written(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _flatten(errors: Iterable[Any]) -> Iterator[Any]:
    for e in errors:
        yield e
        if type(e.kind).__name__ in _COMBINATORS:
            for branch in getattr(e.kind, "context", None) or []:
                yield from _flatten(branch)


def _retype_targets(errors: Sequence[Any]) -> list[tuple[tuple[str | int, ...], Any]]:
    """Values the schema wants as strings that YAML typed as numbers or booleans."""
    targets = []
    for e in _flatten(errors):
        kind = e.kind
        if type(kind).__name__ != "Type" or list(getattr(kind, "types", ())) != ["string"]:
            continue
        if isinstance(e.instance, _RETYPABLE):
            targets.append((tuple(e.instance_path), e.instance))
    return targets


def _set(doc: Any, path: Sequence[str | int], value: Any) -> None:
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def validate(
    doc: dict[str, Any], version: str, text_at: Callable[[Sequence[str | int]], str | None] | None = None
) -> tuple[dict[str, Any], SchemaProblem | None]:
    """Validate `doc` as ODCS `version`. Returns the document to parse (YAML typing undone where the schema
    wanted text; `doc` itself when nothing changed) and the first problem, or None when valid.

    `text_at(path)` gives the text written for a scalar (from the YAML source); without it, a value is
    re-read with `str()`.
    """
    check = validator(version)
    copied = False
    try:
        if check.is_valid(doc):
            return doc, None
        errors = _errors(check, doc)
    except (ValueError, OverflowError):  # a type JSON does not have (a `date` from a plain YAML loader, bytes)
        try:
            doc, copied = plain(doc), True
        except NotJSON as exc:
            return doc, SchemaProblem(exc.path, exc.what)
        if check.is_valid(doc):
            return doc, None
        errors = _errors(check, doc)
    for _ in range(10):  # each round may uncover values in branches that failed for the previous ones
        targets = _retype_targets(errors)
        if not targets or len(targets) > _MAX_RETYPES:  # thousands of numbers where text goes: not YAML typing
            return doc, _explain(errors, version)
        if not copied:
            doc, copied = copy.deepcopy(doc), True  # never change the caller's document
        for path, value in targets:
            _set(doc, path, (text_at(path) if text_at else None) or _written(value))
        if check.is_valid(doc):
            return doc, None
        errors = _errors(check, doc)
    return doc, _explain(errors, version)


def _errors(check: Any, doc: Any) -> list[Any]:
    """The schema's errors, at most _MAX_ERRORS (a list of a million wrong values has a million)."""
    return list(itertools.islice(check.iter_errors(doc), _MAX_ERRORS))


# ---------------------------------------------------------------------------------------------
# Explaining


def _shown(value: Any) -> str:
    if isinstance(value, dict | list):
        try:
            text = json.dumps(value, default=str)
        except (ValueError, TypeError, RecursionError):
            return shorten(value)
        return text if len(text) <= 60 else text[:57] + "..."
    return shorten(value)


def _choices(options: Sequence[Any], limit: int = 12) -> str:
    shown = ", ".join(repr(o) for o in options[:limit])
    return shown + (f" and {len(options) - limit} more" if len(options) > limit else "")


@functools.cache
def _field_names(version: str) -> frozenset[str]:
    """Every field name the version's schema defines somewhere (a key of any `properties`)."""
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            props = node.get("properties")
            if isinstance(props, dict):
                names.update(k for k, v in props.items() if isinstance(v, dict))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(effective_schema(version))
    return frozenset(names)


def _unknown(e: Any, version: str) -> list[str]:
    """The unexpected keys of an additional/unevaluated-properties error that ODCS defines nowhere (typos)."""
    if type(e.kind).__name__ not in ("AdditionalProperties", "UnevaluatedProperties"):
        return []
    known = _field_names(version)
    return [str(k) for k in getattr(e.kind, "unexpected", ()) or () if str(k) not in known]


def _strength(e: Any, version: str) -> int:
    """2: a key ODCS does not know at all; 1: a concrete refusal; 0: what a parent reports because of a child."""
    if _unknown(e, version):
        return 2
    return 0 if type(e.kind).__name__ in _WEAK else 1


def _message(e: Any, version: str) -> tuple[tuple[str | int, ...], str]:
    kind = e.kind
    name = type(kind).__name__
    path: tuple[str | int, ...] = tuple(e.instance_path)
    typos = _unknown(e, version)
    if len(typos) == 1:
        return (*path, typos[0]), f"ODCS {version} defines no field {typos[0]!r}"
    if typos:
        return path, f"ODCS {version} defines no fields {_choices(typos)}"
    if name == "Enum":
        return path, f"{_shown(e.instance)} is not one of {_choices(list(kind.options))} (ODCS {version})"
    if name == "Type":
        types = " or ".join(str(t) for t in kind.types)
        return path, f"{_shown(e.instance)} is not of type {types} (ODCS {version})"
    if name == "Required":
        return (*path, str(kind.property)), f"missing: ODCS {version} requires {kind.property!r} here"
    if name in ("AdditionalProperties", "UnevaluatedProperties"):
        unexpected = list(getattr(kind, "unexpected", ()) or ())
        if len(unexpected) == 1:
            return (*path, str(unexpected[0])), f"ODCS {version} has no field {unexpected[0]!r} here"
        if unexpected:
            return path, f"ODCS {version} has no fields {_choices(unexpected)} here"
    return path, f"{e.message} (ODCS {version})"


def _explain(errors: Sequence[Any], version: str) -> SchemaProblem:
    """The most telling error: the deepest value refused, preferring a key ODCS does not know (a typo), then a
    concrete refusal (a wrong type, a value not allowed, a missing field), over the "unevaluated property" and
    "none of the branches" errors a parent reports because of a child."""
    candidates = list(_flatten(errors)) or list(errors)
    if not candidates:  # the validator said invalid but reports nothing: never hide that
        return SchemaProblem((), f"the document is not valid ODCS {version}")
    ranked = max(
        enumerate(candidates),
        key=lambda ie: (len(ie[1].instance_path), _strength(ie[1], version), -ie[0]),
    )
    path, message = _message(ranked[1], version)
    return SchemaProblem(path, message)


def odcs_path(parts: Iterable[str | int]) -> str:
    """`("schema", 0, "properties", 2, "name")` -> `schema[0].properties[2].name`."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "<root>"


def declared_version(doc: Mapping[str, Any]) -> str | None:
    """The document's apiVersion when it is one floe validates, else None."""
    v = doc.get("apiVersion")
    return v if isinstance(v, str) and v in SUPPORTED_VERSIONS else None
