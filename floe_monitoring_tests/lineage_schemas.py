"""Offline validation of OpenLineage events against the vendored schemas (contract/schemas/README.md).

`lineage_errors(event)` returns every problem of one serialized RunEvent (empty = valid):

- the core schema (OpenLineage 2-0-2, Draft 2020-12, FORMAT_CHECKER on) through
  `{"$ref": ".../OpenLineage.json#/$defs/RunEvent"}`, which reports leaf errors rather than the root
  `oneOf`'s "not valid under any";
- every run / input facet against its own schema, picked by its `_schemaURL` (the core schema does not
  look inside facets): `contractViolation` with floe's draft-07 schema, the others through the registry.
  A facet whose `_schemaURL` names no vendored schema is itself an error: nothing goes unvalidated.

The one conflict between the two specs is allowed, and only it: floe's facet pins `_producer` to "floe",
which is not the absolute URI OpenLineage's BaseFacet declares (`format: uri`, an annotation in 2020-12
unless a format checker is on). `KNOWN_DEVIATION` names it; `lineage_errors(..., allow_known=False)`
reports it too.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

SCHEMAS = Path(__file__).parent / "contract" / "schemas"
OPENLINEAGE_FILES = (
    "OpenLineage.json",
    "DataQualityAssertionsDatasetFacet.json",
    "ErrorMessageRunFacet.json",
    "TagsRunFacet.json",
    "FloeTraceRunFacet.json",
    "FloeContextRunFacet.json",
)
CONTRACT_VIOLATION_FILE = "contract-violation-facet.json"
RUN_EVENT_REF = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
KNOWN_DEVIATION = (("run", "facets", "contractViolation", "_producer"), "format")
FORMAT_CHECKER = jsonschema.Draft202012Validator.FORMAT_CHECKER


def load(name: str) -> dict[str, Any]:
    return dict(json.loads((SCHEMAS / name).read_text()))


@functools.cache
def registry() -> Registry:
    docs = [load(name) for name in OPENLINEAGE_FILES]
    return Registry().with_resources((d["$id"], Resource.from_contents(d)) for d in docs)


@functools.cache
def contract_violation_validator() -> jsonschema.protocols.Validator:
    schema = load(CONTRACT_VIOLATION_FILE)
    cls = jsonschema.validators.validator_for(schema)
    assert cls is jsonschema.Draft7Validator, "the facet schema says draft-07"
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def ref_validator(ref: str, *, formats: bool = True) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        {"$ref": ref}, registry=registry(), format_checker=FORMAT_CHECKER if formats else None
    )


def leaves(errors: Iterable[ValidationError]) -> Iterator[ValidationError]:
    """The innermost errors (anyOf / oneOf wrap theirs in `context`)."""
    for error in errors:
        if error.context:
            yield from leaves(error.context)
        else:
            yield error


def describe(error: ValidationError, where: str = "") -> str:
    path = "/".join(str(p) for p in error.absolute_path)
    return f"{where}{path or '<root>'}: {error.message} [{error.validator}]"


def facet_errors(facet: Any, where: str) -> list[str]:
    if not isinstance(facet, dict):
        return [f"{where}: not an object"]
    url = facet.get("_schemaURL")
    if url == "https://floe.dev/schemas/contract-violation-facet.json":
        validator: Any = contract_violation_validator()
    elif isinstance(url, str) and "#" in url and registry().get(url.split("#", 1)[0]) is not None:
        validator = ref_validator(url)
    else:
        return [f"{where}: no vendored schema for _schemaURL {url!r}"]
    return [describe(e, where + "/") for e in leaves(validator.iter_errors(facet))]


def lineage_errors(event: dict[str, Any], *, allow_known: bool = True) -> list[str]:
    """Every problem of a serialized RunEvent (see the module docstring); [] when valid."""
    problems: list[str] = []
    for error in leaves(ref_validator(RUN_EVENT_REF).iter_errors(event)):
        if allow_known and (tuple(error.absolute_path), error.validator) == KNOWN_DEVIATION:
            continue
        problems.append(describe(error, "core: "))
    run_value = event.get("run")
    run = run_value if isinstance(run_value, dict) else {}
    for name, facet in (run.get("facets") or {}).items():
        problems += facet_errors(facet, f"run.facets.{name}")
    job_value = event.get("job")
    job = job_value if isinstance(job_value, dict) else {}
    for name, facet in (job.get("facets") or {}).items():
        problems += facet_errors(facet, f"job.facets.{name}")
    for i, dataset in enumerate(event.get("inputs") or []):
        for key in ("facets", "inputFacets"):
            for name, facet in (dataset.get(key) or {}).items():
                problems += facet_errors(facet, f"inputs[{i}].{key}.{name}")
    return problems


def assert_valid_lineage(event: dict[str, Any]) -> None:
    problems = lineage_errors(event)
    assert not problems, "invalid OpenLineage event:\n  " + "\n  ".join(problems)
