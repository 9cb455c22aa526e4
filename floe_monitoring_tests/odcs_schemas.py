"""Offline validation of an ODCS document against the official JSON Schema of its version, with floe's leniency.

`odcs_errors(doc)` returns every problem (empty = valid), each as `path: message`:

- server entries of `type: iceberg` are validated against the v3.2.0 `Server` definition (the only version
  that has the type) and then removed;
- the rest of the document is validated against the schema of the `apiVersion` it declares, with
  python-jsonschema (the reference implementation, Draft 2019-09 as the schemas declare).

This is the issue's rule written independently of floe's loader, so a test can hold the loader to it.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft201909Validator

SCHEMAS = Path(__file__).parent.parent / "floe_monitoring_defs" / "contracts" / "schemas"


@functools.cache
def _schema(api_version: str) -> dict[str, Any]:
    return dict(json.loads((SCHEMAS / f"odcs-json-schema-{api_version}.json").read_text("utf-8")))


@functools.cache
def _validator(api_version: str) -> Draft201909Validator:
    return Draft201909Validator(_schema(api_version))


@functools.cache
def _iceberg_server_validator() -> Draft201909Validator:
    return Draft201909Validator({"$ref": "#/$defs/Server", "$defs": _schema("v3.2.0")["$defs"]})


def _where(path: Any) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".") or "<root>"


def odcs_errors(doc: Mapping[str, Any]) -> list[str]:
    """Every schema error of `doc` (floe's iceberg-server leniency applied); empty when valid."""
    version = str(doc.get("apiVersion"))
    if not (SCHEMAS / f"odcs-json-schema-{version}.json").exists():
        return [f"apiVersion: no official schema for {version!r}"]
    rest = copy.deepcopy(dict(doc))
    errors: list[str] = []
    servers = rest.get("servers")
    if isinstance(servers, list):
        kept = []
        for i, server in enumerate(servers):
            if isinstance(server, Mapping) and server.get("type") == "iceberg":
                for e in _iceberg_server_validator().iter_errors(server):
                    inner = f".{_where(e.absolute_path)}" if e.absolute_path else ""
                    errors.append(f"servers[{i}]{inner}: {e.message}")
            else:
                kept.append(server)
        rest["servers"] = kept
    errors += [f"{_where(e.absolute_path)}: {e.message}" for e in _validator(version).iter_errors(rest)]
    return errors
