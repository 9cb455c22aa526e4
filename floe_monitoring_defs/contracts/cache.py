"""An on-disk cache of parsed contracts: each contract file is parsed once per content, across code-location reloads.

A reload of the code location is a new process, and reading a contract (YAML, the ODCS JSON Schema, building the
model) was 36-50 % of a definitions build. The cache keeps, per file content, what `loader.load_contract_file`
gave: the `MonitoredContract`, or the `ContractError` it was refused with (the same message again).

Where: `FLOE_CACHE_DIR` when set (`off` turns the cache off), else `$DAGSTER_HOME/.floe-cache` (a code server
always has DAGSTER_HOME; the image sets it), else no cache (a CLI run without either reads every file, as before).

The key is a SHA-256 over the bytes read (never over a stat: a file rewritten with the same size and mtime is
another key), the source path (it is inside the model and every message), the server options, and the code that
reads contracts (package version, supported ODCS versions, a digest of the contracts package's source and schema
files and of config.py): an upgrade or a local edit of the loader never reads an entry another version wrote.

Safety:
* an entry that cannot be read, does not unpickle, or names another key is ignored (and rewritten);
* entries are written to a temporary file in the same directory and moved into place with `os.replace`, so
  replicas sharing the directory never see half an entry (two writers of one key write the same bytes);
* a directory that cannot be created or written only costs the cache: one WARNING per process, then loading
  goes on without writing;
* a floe bug (`<internal>` field) is never cached, so it is retried on the next load.

Entries are pickles: the directory must be as trusted as DAGSTER_HOME (whose `dagster.yaml` configures code that
Dagster runs anyway); it is created owner-only (0700). Old entries are not pruned (about 5 KB each).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import pickle
import sys
import tempfile
from collections.abc import Callable, Mapping
from importlib import metadata, resources
from pathlib import Path

from floe_monitoring_defs.contracts.errors import ContractLoadError
from floe_monitoring_defs.contracts.model import ContractError, MonitoredContract
from floe_monitoring_defs.contracts.servers import ServerOptions
from floe_monitoring_defs.contracts.validation import SUPPORTED_VERSIONS

__all__ = ["CACHE_ENV", "ContractCache", "code_digest", "default_cache"]

log = logging.getLogger(__name__)

CACHE_ENV = "FLOE_CACHE_DIR"
_OFF = ("off", "none", "0", "false", "no")
FORMAT = 1  # bump when the layout of an entry changes
_MAGIC = "floe-contract-cache"
_INTERNAL = "<internal>"  # loader.INTERNAL (not imported: the loader imports this module)


@functools.cache
def code_digest() -> str:
    """A digest of what turns bytes into a contract here: the package version, the Python version (pickles), the
    contracts package's modules and schemas, and config.py (its defaults check `floe.monitoring`)."""
    h = hashlib.sha256()
    try:
        version = metadata.version("floe-monitoring")
    except metadata.PackageNotFoundError:
        version = "unknown"
    h.update(f"{_MAGIC}:{FORMAT}:{version}:{sys.version_info[:2]}:{','.join(SUPPORTED_VERSIONS)}".encode())
    package = resources.files("floe_monitoring_defs.contracts")
    parts = [*(p for p in package.iterdir() if p.name.endswith(".py"))]
    parts += [p for p in package.joinpath("schemas").iterdir() if p.name.endswith(".json")]
    parts.append(resources.files("floe_monitoring_defs").joinpath("config.py"))
    for part in sorted(parts, key=lambda p: p.name):
        h.update(part.name.encode() + b"\0" + part.read_bytes() + b"\0")
    return h.hexdigest()[:32]


def _options_text(options: ServerOptions) -> str:
    catalogs = sorted((str(k), str(v)) for k, v in dict(options.catalogs).items())
    return repr((options.environment, catalogs, options.max_file_bytes))


class ContractCache:
    """Parsed contracts by content under `directory` (None: no cache, every call parses)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._warned = False
        self._writable = directory is not None

    def key(self, data: bytes, source: str, options: ServerOptions) -> str:
        h = hashlib.sha256(code_digest().encode())
        for part in (source.encode("utf-8", "surrogateescape"), _options_text(options).encode()):
            h.update(len(part).to_bytes(8, "big") + part)
        h.update(hashlib.sha256(data).digest())
        return h.hexdigest()

    def _path(self, key: str) -> Path:
        assert self.directory is not None
        return self.directory / f"contracts-v{FORMAT}" / key[:2] / f"{key}.pickle"

    def get(self, key: str) -> MonitoredContract | ContractError | None:
        """The entry of `key`; None when there is none or it is unreadable, corrupt or another key's."""
        if self.directory is None:
            return None
        try:
            blob = self._path(key).read_bytes()
        except OSError:
            return None
        try:
            magic, stored_key, value = pickle.loads(blob)
        except Exception:  # a truncated or foreign file: any error unpickling means "not cached"
            return None
        if magic != _MAGIC or stored_key != key or not isinstance(value, MonitoredContract | ContractError):
            return None
        return value

    def put(self, key: str, value: MonitoredContract | ContractError) -> None:
        """Store atomically (tmp file + os.replace); a failure to write warns once and disables writing."""
        if self.directory is None or not self._writable:
            return
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(pickle.dumps((_MAGIC, key, value), protocol=pickle.HIGHEST_PROTOCOL))
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        except (OSError, pickle.PicklingError, RecursionError) as exc:
            self._writable = False
            if not self._warned:
                self._warned = True
                log.warning(
                    "contract cache %s is not writable (%s): contracts are parsed on every load until it is",
                    self.directory,
                    exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__,
                )

    def parse(
        self, data: bytes, source: str, options: ServerOptions, parse: Callable[[], MonitoredContract]
    ) -> MonitoredContract:
        """`parse()`'s result for these bytes, from the cache when an entry exists; a refusal (ContractLoadError) is
        cached and raised again with the same error."""
        if self.directory is None:
            return parse()
        key = self.key(data, source, options)
        hit = self.get(key)
        if isinstance(hit, MonitoredContract):
            return hit
        if isinstance(hit, ContractError):
            raise ContractLoadError(hit)
        try:
            contract = parse()
        except ContractLoadError as exc:
            if exc.error.field != _INTERNAL:
                self.put(key, exc.error)
            raise
        self.put(key, contract)
        return contract


def cache_directory(env: Mapping[str, str]) -> Path | None:
    """Where the cache lives for this environment (module docstring); None when it is off."""
    chosen = env.get(CACHE_ENV, "").strip()
    if chosen:
        return None if chosen.lower() in _OFF else Path(chosen).expanduser()
    home = env.get("DAGSTER_HOME", "").strip()
    return Path(home).expanduser() / ".floe-cache" if home else None


_DEFAULTS: dict[Path | None, ContractCache] = {}


def default_cache() -> ContractCache:
    """The cache of this process's environment (one per directory, so an unwritable one warns once)."""
    directory = cache_directory(os.environ)
    if directory not in _DEFAULTS:
        _DEFAULTS[directory] = ContractCache(directory)
    return _DEFAULTS[directory]
