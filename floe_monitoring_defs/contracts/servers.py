"""Which Iceberg table a contract describes: its `servers` entry -> pyiceberg catalog + namespace (+ location).

ODCS v3.2.0 has `type: iceberg` (`catalog`, `catalogUrl`, `namespace`, `warehouse`). Before it, contracts on
Iceberg tables name what fronts them; each such type maps to a pyiceberg catalog and a namespace:

| server type | namespace | pyiceberg catalog |
|---|---|---|
| iceberg | `namespace` | `catalog` (with `catalogUrl`, `warehouse`) |
| glue | `database` | the catalog configured for `glue` |
| hive | `database` | the catalog configured for `hive` |
| trino, presto, athena, databricks | `schema` | the one configured for the type, else the server's `catalog` |
| s3 | - | none: `location` is the table (its root or a `.metadata.json`); `{model}` becomes the table name |
| local | - | none: `path` is the table, relative to the contract file |
| custom | `schema` or `database` | the catalog configured for `custom`, else the server's `catalog` |

athena's `catalog` defaults to `awsdatacatalog`, as in the ODCS schema. The catalog configured for a type:
`ServerOptions.catalogs` (env `FLOE_SERVER_CATALOGS`, `glue=prod_glue,hive=hms`).
A catalog left unnamed falls back to the contract's `customProperties` `floe.iceberg_catalog`, then to
`FLOE_CATALOG` (the sources do that). Every server can override what it says through its own
`customProperties`: `floe.iceberg_catalog`, `floe.iceberg_namespace`, `floe.iceberg_catalog_url`,
`floe.iceberg_warehouse`, `floe.iceberg_metadata_location`; a server of any other type with
`floe.iceberg_namespace` or `floe.iceberg_metadata_location` is usable too. The contract-level
`customProperties` `floe.iceberg_namespace` (the floe dialect's way) is used when no server is usable.

With several usable servers, the one whose `environment` (or `server` name) is `ServerOptions.environment`
(env `FLOE_SERVER_ENVIRONMENT`) is taken; else the only usable one; else the load fails naming the choices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from floe_monitoring_defs.config import DEFAULT_CONTRACT_MAX_BYTES, Settings
from floe_monitoring_defs.contracts.errors import fail, shorten

SUPPORTED_TYPES = ("iceberg", "glue", "hive", "trino", "presto", "athena", "databricks", "s3", "local", "custom")
_SCHEMA_TYPES = ("trino", "presto", "athena", "databricks")
_ATHENA_DEFAULT_CATALOG = "awsdatacatalog"  # the ODCS schema's default for athena servers
# File formats that are not Iceberg tables (an s3/local server of these formats cannot front one).
_NOT_ICEBERG_FORMATS = frozenset({"delta", "json", "csv", "avro-files", "text", "xml", "xlsx"})


@dataclass(frozen=True)
class ServerOptions:
    """How contracts are read on this deployment (`Settings`): how servers map to catalogs
    (FLOE_SERVER_ENVIRONMENT, FLOE_SERVER_CATALOGS) and the largest contract file read (FLOE_CONTRACT_MAX_BYTES)."""

    environment: str | None = None
    catalogs: Mapping[str, str] = field(default_factory=dict)  # server type -> pyiceberg catalog name
    max_file_bytes: int = DEFAULT_CONTRACT_MAX_BYTES


def server_options(settings: Settings) -> ServerOptions | None:
    """The deployment's options from its settings; None when nothing is set (the defaults apply)."""
    max_bytes = getattr(settings, "contract_max_bytes", DEFAULT_CONTRACT_MAX_BYTES)
    if not settings.server_environment and not settings.server_catalogs and max_bytes == DEFAULT_CONTRACT_MAX_BYTES:
        return None
    return ServerOptions(
        environment=settings.server_environment, catalogs=dict(settings.server_catalogs), max_file_bytes=max_bytes
    )


@dataclass(frozen=True)
class Location:
    """Where the contract's tables are: one server (or the contract's custom properties) read for floe."""

    namespace: tuple[str, ...]
    catalog: str | None = None
    catalog_url: str | None = None
    warehouse: str | None = None
    metadata_location: str | None = None  # may hold `{model}`: the schema object's table name
    namespace_field: str = "servers"  # where the namespace was written (an error about it names that field)


def _props(items: Any) -> dict[str, Any]:
    if isinstance(items, Mapping):
        return {str(k): v for k, v in items.items()}
    if not isinstance(items, list):
        return {}
    return {
        c["property"]: c.get("value") for c in items if isinstance(c, Mapping) and isinstance(c.get("property"), str)
    }


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    return str(value).strip() or None


def _ns(text: str | None) -> tuple[str, ...]:
    return tuple(p for p in (text or "").split(".") if p)


def _label(i: int, server: Mapping[str, Any]) -> str:
    name = server.get("server")
    env = server.get("environment")
    return (
        f"servers[{i}] ({str(server.get('type'))[:40]}"
        + (f" {shorten(name)}" if name else "")
        + (f", environment {shorten(env)}" if env else "")
        + ")"
    )


def _local_path(path: str, source: str) -> str:
    p = Path(path)
    if p.is_absolute() or "://" in path or source.startswith(("store:", "catalog:")):
        return path
    return str((Path(source).parent / p).resolve())  # relative to the contract file, not to where floe runs


def _read(
    server: Mapping[str, Any], contract_custom: Mapping[str, Any], options: ServerOptions, source: str, where: str
) -> Location | str:
    """The server's location (`where`: `servers[i]`), or why it cannot front an Iceberg table."""
    stype = str(server.get("type") or "").lower()
    own = _props(server.get("customProperties"))
    catalog = _text(own.get("floe.iceberg_catalog"))
    namespace = _text(own.get("floe.iceberg_namespace"))
    ns_field = f"{where}.customProperties.floe.iceberg_namespace"
    catalog_url = _text(own.get("floe.iceberg_catalog_url"))
    warehouse = _text(own.get("floe.iceberg_warehouse"))
    location = _text(own.get("floe.iceberg_metadata_location"))
    fallback_catalog = _text(contract_custom.get("floe.iceberg_catalog"))

    def written_namespace(*keys: str) -> str | None:
        nonlocal ns_field
        for key in keys:
            value = _text(server.get(key))
            if value:
                ns_field = f"{where}.{key}"
                return value
        return None

    if stype == "iceberg":
        catalog = catalog or _text(server.get("catalog"))
        namespace = namespace or written_namespace("namespace")
        catalog_url = catalog_url or _text(server.get("catalogUrl"))
        warehouse = warehouse or _text(server.get("warehouse"))
    elif stype in ("glue", "hive"):
        namespace = namespace or written_namespace("database")
        catalog = catalog or options.catalogs.get(stype)
    elif stype in _SCHEMA_TYPES or stype == "custom":
        namespace = namespace or written_namespace(*(("schema", "database") if stype == "custom" else ("schema",)))
        default = _ATHENA_DEFAULT_CATALOG if stype == "athena" else None
        catalog = catalog or options.catalogs.get(stype) or _text(server.get("catalog")) or default
    elif stype in ("s3", "local"):
        fmt = str(server.get("format") or "").lower()
        written = _text(server.get("location" if stype == "s3" else "path"))
        if location is None:
            if fmt in _NOT_ICEBERG_FORMATS:
                return f"format {fmt!r} is not an Iceberg table"
            if written is None or "*" in written:
                key = "location" if stype == "s3" else "path"
                return f"{key} {shorten(written)} is not one table's location (no globs)"
            try:
                location = written if stype == "s3" else _local_path(written, source)
            except (OSError, ValueError):
                return f"path {shorten(written)} is not a path of this machine"
        catalog = catalog or options.catalogs.get(stype)
    elif namespace is None and location is None:
        return f"type {shorten(stype)} does not front an Iceberg table (give customProperties floe.iceberg_namespace)"
    if not namespace:
        namespace = _text(contract_custom.get("floe.iceberg_namespace"))
        ns_field = "customProperties.floe.iceberg_namespace"
    if location is None and not namespace:
        field_name = {"iceberg": "namespace", "glue": "database", "hive": "database"}.get(stype, "schema")
        return f"no {field_name} (the Iceberg namespace)"
    return Location(
        namespace=_ns(namespace),
        catalog=catalog or fallback_catalog,
        catalog_url=catalog_url,
        warehouse=warehouse,
        metadata_location=location,
        namespace_field=ns_field,
    )


def locate(servers: Sequence[Any], contract_custom: Mapping[str, Any], options: ServerOptions, source: str) -> Location:
    """The one location the contract's tables are read from; a load error naming `servers` otherwise."""
    usable: list[tuple[int, Mapping[str, Any], Location]] = []
    unusable: list[str] = []
    for i, server in enumerate(servers):
        if not isinstance(server, Mapping):
            continue
        got = _read(server, contract_custom, options, source, f"servers[{i}]")
        if isinstance(got, Location):
            usable.append((i, server, got))
        else:
            unusable.append(f"{_label(i, server)}: {got}")
    env = options.environment
    if env and len(usable) > 1:
        matching = [u for u in usable if env in (u[1].get("environment"), u[1].get("server"))]
        if len(matching) == 1:
            return matching[0][2]
        if len(matching) > 1:
            names = "; ".join(_label(i, s) for i, s, _ in matching)
            raise fail(source, "servers", f"several servers match FLOE_SERVER_ENVIRONMENT={env!r}: {names}")
    if len(usable) == 1:
        return usable[0][2]
    if usable:
        names = "; ".join(_label(i, s) for i, s, _ in usable)
        hint = f" (none matches FLOE_SERVER_ENVIRONMENT={env!r})" if env else ""
        raise fail(
            source,
            "servers",
            f"several servers could be the Iceberg table{hint}: {names}; set FLOE_SERVER_ENVIRONMENT to the "
            "environment or server name to monitor",
        )
    namespace = _text(contract_custom.get("floe.iceberg_namespace"))
    if namespace:
        return Location(
            namespace=_ns(namespace),
            catalog=_text(contract_custom.get("floe.iceberg_catalog")),
            namespace_field="customProperties.floe.iceberg_namespace",
        )
    if not servers:
        raise fail(
            source,
            "servers",
            "no Iceberg namespace: add a `servers` entry of type iceberg with `namespace` "
            f"(or one of {', '.join(SUPPORTED_TYPES)}; or customProperties `floe.iceberg_namespace`)",
        )
    types = sorted({str(s.get("type")) for s in servers if isinstance(s, Mapping)})
    raise fail(
        source,
        "servers",
        f"no server floe can read an Iceberg table from: the contract has {', '.join(types)}; floe reads "
        f"{', '.join(SUPPORTED_TYPES)} ({'; '.join(unusable)})",
    )
