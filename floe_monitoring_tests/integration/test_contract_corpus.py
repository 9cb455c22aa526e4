"""Acceptance of ODCS v3 contracts as the field writes them (issue 10, acceptance 1).

Every file of `fixtures/odcs_corpus/` is judged twice, file by file:

- the EXPECTED verdict, computed here without any floe code: the YAML is read with unquoted dates and
  timestamps kept as the text the author wrote (a date is not a JSON type, and ODCS types these places as
  strings), then validated with python-jsonschema, the reference implementation, in Draft 2019-09 as the
  schemas declare (so `format` is an annotation, not an assertion), against the official schema of the file's
  own `apiVersion` (`floe_monitoring_defs/contracts/schemas/odcs-json-schema-<apiVersion>.json`). One
  documented leniency, the issue's: `servers[]` entries of `type: iceberg` are validated against the v3.2.0
  `Server` definition and removed before the rest of the file is validated by its own version. An apiVersion
  with no official v3 schema here (missing, `v3.3.0`, `3.1.0`) has no schema that accepts it: invalid.
- floe's verdict: `load_contract_file(path, options)` (options as a code location with
  `FLOE_SERVER_ENVIRONMENT=prod` builds them: files with several usable servers name one `prod`) returns, or
  raises `ContractLoadError` naming the file and a field path at the place the corpus manifest says is wrong.
  Any other exception is a failure (zero tracebacks).

Other checks keep the corpus honest: the file name says the verdict (`ok_` / `bad_`) and the reference agrees;
each invalid file has one cause (every reference error lies in the object the manifest names); twins differ
only in `apiVersion` and get opposite verdicts; and the valid files of each version cover every feature the
issue lists (detected from the documents themselves, not declared).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft201909Validator

from floe_monitoring_defs.config import Settings
from floe_monitoring_defs.contracts.loader import ContractLoadError, load_contract_file
from floe_monitoring_defs.contracts.servers import server_options

CORPUS = Path(__file__).parent.parent / "fixtures" / "odcs_corpus"
VERSIONS = ("v3.0.0", "v3.0.1", "v3.0.2", "v3.1.0", "v3.2.0")
# Files whose apiVersion has no official v3 schema live here; all of them are invalid.
UNVERSIONED = "unversioned"
ICEBERG_SCHEMA_VERSION = "v3.2.0"  # the first (and only) version whose Server enum has `iceberg`
ROOT = "<root>"
# The environment floe is told to pick among several usable servers (files with several name one `prod`).
SERVER_ENVIRONMENT = "prod"


# ---------------------------------------------------------------------------------------------------
# The reference: YAML as the author meant it + python-jsonschema against the file's own version
# ---------------------------------------------------------------------------------------------------


class AuthorTextLoader(yaml.SafeLoader):
    """PyYAML's safe loader without the timestamp resolver: `2024-01-31` stays the string written."""


AuthorTextLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_as_written(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=AuthorTextLoader)  # a SafeLoader subclass


@functools.cache
def official_schema(version: str) -> dict[str, Any]:
    schemas = resources.files("floe_monitoring_defs.contracts").joinpath("schemas")
    return dict(json.loads(schemas.joinpath(f"odcs-json-schema-{version}.json").read_text(encoding="utf-8")))


@functools.cache
def validator(version: str) -> Draft201909Validator:
    schema = official_schema(version)
    Draft201909Validator.check_schema(schema)
    return Draft201909Validator(schema)


@functools.cache
def iceberg_server_validator() -> Draft201909Validator:
    schema = official_schema(ICEBERG_SCHEMA_VERSION)
    return Draft201909Validator({"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": "#/$defs/Server"})


def format_path(parts: Iterator[Any] | list[Any]) -> str:
    """`schema[0].properties[2].logicalType`, the project's way of naming a field; `<root>` for the document."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or ROOT


def path_parts(path: str) -> list[str | int]:
    if path == ROOT:
        return []
    return [int(idx) if idx else key for key, idx in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path)]


def parent_path(path: str) -> str:
    return format_path(path_parts(path)[:-1])


def within(path: str, base: str) -> bool:
    """`path` is `base` or lies inside it."""
    if base == ROOT:
        return True
    return path == base or path.startswith((base + ".", base + "["))


def reference_errors(doc: Any) -> list[tuple[str, str]]:
    """(field path, message) of everything the official schema of the document's version refuses."""
    if not isinstance(doc, Mapping):
        return [(ROOT, "a contract is a mapping")]
    version = doc.get("apiVersion")
    if version not in VERSIONS:
        return [("apiVersion", f"{version!r} has no official ODCS v3 schema ({', '.join(VERSIONS)})")]
    errors: list[tuple[str, str]] = []
    rest = dict(doc)
    servers = doc.get("servers")
    kept: list[int] = []  # original index of each server left in `rest`, so error paths name the file's entries
    if isinstance(servers, list):
        others = []
        for i, server in enumerate(servers):
            if isinstance(server, Mapping) and server.get("type") == "iceberg":
                errors += [
                    (format_path(["servers", i, *e.absolute_path]), e.message)
                    for e in iceberg_server_validator().iter_errors(server)
                ]
            else:
                kept.append(i)
                others.append(server)
        rest["servers"] = others
    for e in validator(str(version)).iter_errors(rest):
        parts = list(e.absolute_path)
        if len(parts) >= 2 and parts[0] == "servers" and isinstance(parts[1], int):
            parts[1] = kept[parts[1]]
        errors.append((format_path(parts), e.message))
    return errors


# ---------------------------------------------------------------------------------------------------
# The corpus and its manifest
# ---------------------------------------------------------------------------------------------------


def corpus_files() -> list[Path]:
    return sorted(p for p in CORPUS.glob("*/*") if p.is_file())


def file_id(path: Path) -> str:
    return path.relative_to(CORPUS).as_posix()


FILES = corpus_files()
FILE_IDS = [file_id(p) for p in FILES]


@functools.cache
def manifest() -> dict[str, Any]:
    loaded = yaml.safe_load((CORPUS / "manifest.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict) and set(loaded) == {"invalid", "twins"}, "manifest.yaml: keys invalid, twins"
    return loaded


def expected_valid(path: Path) -> bool:
    return path.name.startswith("ok_")


def wrong_field(path: Path) -> str:
    """The field the manifest says is wrong in an invalid file."""
    field = manifest()["invalid"].get(file_id(path))
    assert isinstance(field, str) and field, f"manifest.yaml: invalid: {file_id(path)} needs the wrong field's path"
    return field


def floe_anchor(field: str) -> str:
    """Where floe's error must point: the object holding the wrong field, or the field itself at the top level."""
    parent = parent_path(field)
    return field if parent == ROOT else parent


def test_corpus_layout_and_manifest() -> None:
    assert len(FILES) >= 60, f"the corpus has {len(FILES)} files; it should have 60 to 100"
    problems = []
    for path in FILES:
        folder, name = path.parent.name, path.name
        if folder not in (*VERSIONS, UNVERSIONED):
            problems.append(f"{file_id(path)}: folder must be one of {VERSIONS} or {UNVERSIONED}")
        if path.suffix != ".yaml" or not name.startswith(("ok_", "bad_")):
            problems.append(f"{file_id(path)}: name must be ok_*.yaml or bad_*.yaml")
        if folder == UNVERSIONED and expected_valid(path):
            problems.append(f"{file_id(path)}: a file without a supported apiVersion cannot be valid")
        first = path.read_text(encoding="utf-8").splitlines()[0]
        word = "VALID" if expected_valid(path) else "INVALID"
        where = f" under {folder}" if folder in VERSIONS else ""
        if not first.startswith(f"# {word}{where}"):
            problems.append(f"{file_id(path)}: first line must be a comment starting '# {word}{where}'")
    bad = {file_id(p) for p in FILES if not expected_valid(p)}
    listed = set(manifest()["invalid"])
    if bad != listed:
        problems.append(f"manifest.yaml invalid: missing {sorted(bad - listed)}, unknown {sorted(listed - bad)}")
    for pair in manifest()["twins"]:
        for f in pair:
            if f not in FILE_IDS:
                problems.append(f"manifest.yaml twins: {f} is not a corpus file")
    assert not problems, "\n".join(problems)
    share = len(bad) / len(FILES)
    assert 0.25 <= share <= 0.40, f"{len(bad)} of {len(FILES)} files are invalid ({share:.0%}); aim for 25-40 %"


@pytest.mark.parametrize("path", FILES, ids=FILE_IDS)
def test_reference_verdict_is_the_files_own(path: Path) -> None:
    """The file name's verdict is the official schema's; an invalid file is invalid for one reason."""
    doc = read_as_written(path)
    if path.parent.name in VERSIONS:
        assert isinstance(doc, dict) and doc.get("apiVersion") == path.parent.name, "apiVersion = folder name"
    errors = reference_errors(doc)
    if expected_valid(path):
        assert errors == [], f"the official schema refuses {file_id(path)}: {errors}"
        return
    assert errors, f"the official schema accepts {file_id(path)}, named bad_"
    field = wrong_field(path)
    scope = parent_path(field)
    elsewhere = [e for e in errors if not within(e[0], scope)]
    assert not elsewhere, f"{file_id(path)} should be wrong only at {field}; also: {elsewhere}"


@pytest.mark.parametrize("pair", manifest()["twins"], ids=["|".join(p) for p in manifest()["twins"]])
def test_twins_differ_only_in_api_version(pair: list[str]) -> None:
    a, b = (read_as_written(CORPUS / f) for f in pair)
    assert a["apiVersion"] != b["apiVersion"]
    assert {**a, "apiVersion": None} == {**b, "apiVersion": None}, f"{pair}: the documents differ beyond apiVersion"
    verdicts = [not reference_errors(d) for d in (a, b)]
    assert verdicts[0] != verdicts[1], f"{pair}: the same document should be valid under exactly one version"


# ---------------------------------------------------------------------------------------------------
# Coverage: what the valid files of each version use, detected from the documents
# ---------------------------------------------------------------------------------------------------

SLA_NAMES = {  # ODCS docs/service-level-agreement.md: case-insensitive names and their synonyms
    "latency": "ly",
    "frequency": "fy",
    "retention": "re",
    "availability": "av",
    "generalavailability": "ga",
    "endofsupport": "es",
    "endoflife": "el",
    "timetodetect": "td",
    "timetonotify": "tn",
    "timetorepair": "tr",
    "throughput": "th",
    "errorrate": "er",
}
CANONICAL_SLA = {
    "latency": "latency",
    "frequency": "frequency",
    "retention": "retention",
    "availability": "availability",
    "generalavailability": "generalAvailability",
    "endofsupport": "endOfSupport",
    "endoflife": "endOfLife",
    "timetodetect": "timeToDetect",
    "timetonotify": "timeToNotify",
    "timetorepair": "timeToRepair",
    "throughput": "throughput",
    "errorrate": "errorRate",
    "timeofavailability": "timeOfAvailability",
    "freshness": "freshness",
}
SYNONYMS = {syn: name for name, syn in SLA_NAMES.items()}


def walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, Mapping):
        for v in value.values():
            yield from walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk(v)


def properties(doc: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every schema property, at any depth (object properties, array items, map keys and values)."""

    def inner(prop: Any) -> Iterator[Mapping[str, Any]]:
        if not isinstance(prop, Mapping):
            return
        yield prop
        for child in prop.get("properties") or []:
            yield from inner(child)
        yield from inner(prop.get("items"))
        if isinstance(prop.get("map"), Mapping):
            yield from inner(prop["map"].get("key"))
            yield from inner(prop["map"].get("value"))

    for obj in doc.get("schema") or []:
        for prop in obj.get("properties") or []:
            yield from inner(prop)


def quality(doc: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for obj in doc.get("schema") or []:
        yield from obj.get("quality") or []
    for prop in properties(doc):
        yield from prop.get("quality") or []


def sla_names(doc: Mapping[str, Any]) -> list[str]:
    return [str(s.get("property")) for s in doc.get("slaProperties") or []]


def sla_canonical(name: str) -> str | None:
    key = name.lower()
    return CANONICAL_SLA.get(SYNONYMS.get(key, key))


def server_types(doc: Mapping[str, Any]) -> set[str]:
    return {str(s.get("type")) for s in doc.get("servers") or [] if isinstance(s, Mapping)}


def lto(doc: Mapping[str, Any], *keys: str, logical: tuple[str, ...] = ()) -> bool:
    return any(
        isinstance(p.get("logicalTypeOptions"), Mapping)
        and any(k in p["logicalTypeOptions"] for k in keys)
        and (not logical or p.get("logicalType") in logical)
        for p in properties(doc)
    )


def composite_key(doc: Mapping[str, Any], _typed: Any = None) -> bool:
    for obj in doc.get("schema") or []:
        positions = [p.get("primaryKeyPosition") for p in obj.get("properties") or [] if p.get("primaryKey") is True]
        if len([x for x in positions if isinstance(x, int) and x >= 1]) >= 2:
            return True
    return False


Detector = Callable[[Mapping[str, Any], Any], bool]  # (document as written, document as PyYAML types it)


def sla_detector(name: str) -> Detector:
    return lambda d, _: any(sla_canonical(s) == name for s in sla_names(d))


def server_detector(kind: str) -> Detector:
    return lambda d, _: kind in server_types(d)


FEATURES: dict[str, Detector] = {
    "unquoted date": lambda d, typed: any(type(v) is dt.date for v in walk(typed)),
    "unquoted timestamp": lambda d, typed: any(isinstance(v, dt.datetime) for v in walk(typed)),
    "unquoted number as SLA value": lambda d, _: any(
        isinstance(s.get("value"), int | float) and not isinstance(s.get("value"), bool)
        for s in d.get("slaProperties") or []
    ),
    "nested object": lambda d, _: any(p.get("logicalType") == "object" and p.get("properties") for p in properties(d)),
    "array items": lambda d, _: any(p.get("logicalType") == "array" and p.get("items") for p in properties(d)),
    "array of objects": lambda d, _: any(
        isinstance(p.get("items"), Mapping) and p["items"].get("properties") for p in properties(d)
    ),
    "minimum/maximum": lambda d, _: lto(d, "minimum", "maximum"),
    "exclusive bound": lambda d, _: lto(d, "exclusiveMinimum", "exclusiveMaximum"),
    "minLength/maxLength": lambda d, _: lto(d, "minLength", "maxLength"),
    "pattern": lambda d, _: lto(d, "pattern"),
    "format": lambda d, _: lto(d, "format"),
    "date range": lambda d, _: lto(d, "minimum", "maximum", logical=("date",)),
    "unique": lambda d, _: any(p.get("unique") is True for p in properties(d)),
    "primary key": lambda d, _: any(p.get("primaryKey") is True for p in properties(d)),
    "composite primary key": composite_key,
    "icebergFieldId": lambda d, _: any(
        c.get("property") == "icebergFieldId" for p in properties(d) for c in p.get("customProperties") or []
    ),
    "two tables": lambda d, _: len(d.get("schema") or []) >= 2,
    **{f"SLA {name}": sla_detector(name) for name in sorted(set(CANONICAL_SLA.values()) - {"throughput", "errorRate"})},
    "SLA synonym": lambda d, _: any(s.lower() in SYNONYMS for s in sla_names(d)),
    "SLA name in another case": lambda d, _: any(
        sla_canonical(s) and s not in CANONICAL_SLA.values() and s.lower() not in SYNONYMS for s in sla_names(d)
    ),
    "SLA ISO-8601 duration": lambda d, _: any(
        str(s.get("value", "")).startswith("P") for s in d.get("slaProperties") or []
    ),
    "SLA scheduler + schedule": lambda d, _: any(
        s.get("scheduler") and s.get("schedule") for s in d.get("slaProperties") or []
    ),
    "slaDefaultElement": lambda d, _: bool(d.get("slaDefaultElement")),
    "quality library": lambda d, _: any(q.get("type", "library") == "library" for q in quality(d)),
    "quality sql": lambda d, _: any(q.get("type") == "sql" for q in quality(d)),
    "quality custom": lambda d, _: any(q.get("type") == "custom" for q in quality(d)),
    "quality text": lambda d, _: any(q.get("type") == "text" for q in quality(d)),
    "quality rule (v3.0 style)": lambda d, _: any("rule" in q and "metric" not in q for q in quality(d)),
    "quality metric": lambda d, _: any("metric" in q for q in quality(d)),
    "property without logicalType": lambda d, _: any("logicalType" not in p for p in properties(d)),
    "timestamp": lambda d, _: any(p.get("logicalType") == "timestamp" for p in properties(d)),
    "timestamp range": lambda d, _: lto(d, "minimum", "maximum", logical=("timestamp",)),
    "map": lambda d, _: any(p.get("logicalType") == "map" for p in properties(d)),
    "several servers": lambda d, _: len(d.get("servers") or []) >= 2,
    "server environment": lambda d, _: any(
        isinstance(s, Mapping) and s.get("environment") for s in d.get("servers") or []
    ),
    **{
        f"server {kind}": server_detector(kind)
        for kind in ("iceberg", "glue", "trino", "presto", "athena", "databricks", "hive", "s3", "local", "custom")
    },
}

EVERY_VERSION = [
    f
    for f in FEATURES
    if f
    not in (
        "quality rule (v3.0 style)",
        "quality metric",
        "property without logicalType",
        "timestamp",
        "timestamp range",
        "map",
        "server hive",
        "server presto",
    )
]
VALID_ALSO = {
    "v3.0.0": ["quality rule (v3.0 style)", "property without logicalType"],
    "v3.0.1": ["quality rule (v3.0 style)", "property without logicalType"],
    "v3.0.2": ["quality rule (v3.0 style)", "property without logicalType"],
    "v3.1.0": ["quality metric", "property without logicalType", "timestamp", "timestamp range", "server hive"],
    "v3.2.0": ["quality metric", "timestamp", "timestamp range", "server hive", "map"],
}
# What a version refuses is covered by its invalid files.
INVALID_ALSO = {
    "v3.0.0": ["timestamp", "server hive"],
    "v3.1.0": ["quality rule (v3.0 style)", "map"],
    "v3.2.0": ["quality rule (v3.0 style)", "property without logicalType"],
}
ANYWHERE = ["server presto"]


def features_of(paths: list[Path]) -> set[str]:
    found: set[str] = set()
    for path in paths:
        doc = read_as_written(path)
        typed = yaml.safe_load(path.read_text(encoding="utf-8"))
        if isinstance(doc, Mapping):
            found |= {name for name, detect in FEATURES.items() if detect(doc, typed)}
    return found


def test_corpus_covers_every_version_and_feature() -> None:
    missing = []
    for version in VERSIONS:
        files = [p for p in FILES if p.parent.name == version]
        valid = [p for p in files if expected_valid(p)]
        invalid = [p for p in files if not expected_valid(p)]
        if len(valid) < 8 or len(invalid) < 4:
            missing.append(f"{version}: {len(valid)} valid / {len(invalid)} invalid files; want >= 8 / >= 4")
        have = features_of(valid)
        lacking = [f for f in EVERY_VERSION + VALID_ALSO[version] if f not in have]
        if lacking:
            missing.append(f"{version}: no valid file has {lacking}")
        have_bad = features_of(invalid)
        lacking = [f for f in INVALID_ALSO.get(version, []) if f not in have_bad]
        if lacking:
            missing.append(f"{version}: no invalid file has {lacking}")
        twinned = {f for pair in manifest()["twins"] for f in pair if f.startswith(version + "/")}
        if not twinned:
            missing.append(f"{version}: no file is the twin of one under another version")
    if any(f not in features_of([p for p in FILES if expected_valid(p)]) for f in ANYWHERE):
        missing.append(f"no valid file has one of {ANYWHERE}")
    if not any(p.parent.name == UNVERSIONED for p in FILES):
        missing.append("no file with an unknown or missing apiVersion")
    assert not missing, "\n".join(missing)


# ---------------------------------------------------------------------------------------------------
# floe's verdict
# ---------------------------------------------------------------------------------------------------


@pytest.fixture
def hermetic_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No developer FLOE_* / PYICEBERG_* settings and no repo `.env` can reach the loader."""
    for var in list(os.environ):
        if var.startswith(("FLOE_", "PYICEBERG_")) or var == "DAGSTER_HOME":
            monkeypatch.delenv(var)
    monkeypatch.chdir(tmp_path)


def deployment_options() -> Any:
    """The server options a code location with `FLOE_SERVER_ENVIRONMENT=prod` (and nothing else) loads with."""
    return server_options(Settings.from_env({"FLOE_SERVER_ENVIRONMENT": SERVER_ENVIRONMENT}))


@pytest.mark.usefixtures("hermetic_env")
@pytest.mark.parametrize("path", FILES, ids=FILE_IDS)
def test_floe_accepts_exactly_what_the_official_schema_accepts(path: Path) -> None:
    expected = reference_errors(read_as_written(path))
    try:
        load_contract_file(path, deployment_options())
    except ContractLoadError as exc:
        error = exc.error
        assert expected, f"floe refuses a file its version's schema accepts: {error}"
        assert error.source == str(path) and str(path) in str(exc), f"the error does not name the file: {exc}"
        anchor = floe_anchor(wrong_field(path))
        assert error.field not in ("", ROOT, "<file>"), f"the error names no field: {error}"
        assert within(error.field, anchor), f"the error should point at {anchor} (or inside it): {error}"
        return
    except Exception as exc:  # any other exception is the traceback this test forbids
        pytest.fail(f"floe crashed on {file_id(path)} with {type(exc).__name__}: {exc}", pytrace=False)
    assert not expected, f"floe accepts a file its version's schema refuses: {expected}"
