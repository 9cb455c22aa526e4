"""The on-disk cache of parsed contracts (contracts/cache.py): a hit is the model a fresh parse gives, the content
decides (never size or mtime), a corrupt entry or an unwritable directory only costs the cache, a refusal stays
the same refusal, and concurrent writers never leave half an entry.

Real files in tmp dirs; "served from the cache" is shown by making the parser fail: a hit never calls it.
"""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from floe_monitoring_defs.contracts import cache as cache_mod
from floe_monitoring_defs.contracts import loader
from floe_monitoring_defs.contracts.cache import ContractCache, cache_directory
from floe_monitoring_defs.contracts.errors import ContractLoadError
from floe_monitoring_defs.contracts.model import ContractError, MonitoredContract
from floe_monitoring_defs.contracts.servers import ServerOptions

REPO = Path(__file__).resolve().parents[2]
ORDERS = (REPO / "examples" / "contracts" / "orders.yaml").read_text(encoding="utf-8")


def _no_parse(*_: object, **__: object) -> MonitoredContract:
    raise AssertionError("parsed: the cache was not used")


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_hit_equals_fresh_parse_and_skips_the_parser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = _write(tmp_path / "orders.yaml", ORDERS)
    cache = ContractCache(tmp_path / "cache")
    fresh = loader.load_contract_file(f)
    first = loader.load_contract_file(f, cache=cache)
    monkeypatch.setattr(loader, "parse_document", _no_parse)
    hit = loader.load_contract_file(f, cache=ContractCache(tmp_path / "cache"))  # a new process: a new object
    assert first == fresh and hit == fresh and hit is not fresh
    assert hit.source == str(f)


def test_load_contracts_with_cache_equals_without(tmp_path: Path) -> None:
    contracts = REPO / "examples" / "contracts"
    plain = loader.load_contracts([contracts], cache=ContractCache(None))
    cold = loader.load_contracts([contracts], cache=ContractCache(tmp_path / "c"))
    warm = loader.load_contracts([contracts], cache=ContractCache(tmp_path / "c"))
    assert plain.contracts and plain == cold == warm


def test_same_size_and_mtime_but_other_bytes_is_parsed_again(tmp_path: Path) -> None:
    f = _write(tmp_path / "orders.yaml", ORDERS)
    before = os.stat(f)
    cache = ContractCache(tmp_path / "cache")
    assert loader.load_contract_file(f, cache=cache).version == "2.1.0"
    _write(f, ORDERS.replace("version: 2.1.0", "version: 2.1.9"))
    os.utime(f, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(f)
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert loader.load_contract_file(f, cache=cache).version == "2.1.9"


def test_same_bytes_at_another_path_keep_their_own_source(tmp_path: Path) -> None:
    a, b = _write(tmp_path / "a.yaml", ORDERS), _write(tmp_path / "b.yaml", ORDERS)
    cache = ContractCache(tmp_path / "cache")
    assert loader.load_contract_file(a, cache=cache).source == str(a)
    assert loader.load_contract_file(b, cache=cache).source == str(b)


def test_other_server_options_are_another_entry(tmp_path: Path) -> None:
    f = _write(tmp_path / "orders.yaml", ORDERS)
    cache = ContractCache(tmp_path / "cache")
    data = f.read_bytes()
    one = cache.key(data, str(f), ServerOptions())
    other = cache.key(data, str(f), ServerOptions(environment="prod"))
    assert one != other


def test_corrupt_entry_is_ignored_and_rewritten(tmp_path: Path) -> None:
    f = _write(tmp_path / "orders.yaml", ORDERS)
    cache = ContractCache(tmp_path / "cache")
    fresh = loader.load_contract_file(f, cache=cache)
    (entry,) = (tmp_path / "cache").rglob("*.pickle")
    entry.write_bytes(b"\x80\x05not a pickle at all")
    assert loader.load_contract_file(f, cache=cache) == fresh
    key = entry.stem
    assert cache.get(key) == fresh  # rewritten with the good entry
    # An entry that unpickles but is another key's (a file copied or renamed by hand) is not used either.
    entry.write_bytes(pickle.dumps(("floe-contract-cache", "0" * 64, fresh)))
    assert cache.get(key) is None


def test_entry_of_another_code_version_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = _write(tmp_path / "orders.yaml", ORDERS)
    loader.load_contract_file(f, cache=ContractCache(tmp_path / "cache"))
    monkeypatch.setattr(cache_mod, "code_digest", lambda: "another floe version")
    calls: list[str] = []
    real = loader.parse_document

    def counted(*args: object, **kwargs: object) -> MonitoredContract:
        calls.append("parsed")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loader, "parse_document", counted)
    loader.load_contract_file(f, cache=ContractCache(tmp_path / "cache"))
    assert calls == ["parsed"]


def test_unwritable_cache_dir_loads_and_warns_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = _write(tmp_path / "not-a-dir", "a file where the cache directory should be")  # fails even as root
    contracts = tmp_path / "contracts"
    contracts.mkdir()
    _write(contracts / "orders.yaml", ORDERS)
    _write(contracts / "other.yaml", ORDERS.replace("name: orders", "name: other").replace("sales", "other"))
    with caplog.at_level(logging.WARNING, logger="floe_monitoring_defs.contracts.cache"):
        report = loader.load_contracts([contracts], cache=ContractCache(blocker / "cache"))
        again = loader.load_contracts([contracts], cache=ContractCache(None))
    assert len(report.contracts) == 2 and not report.errors and report == again
    warnings = [r for r in caplog.records if r.name == "floe_monitoring_defs.contracts.cache"]
    assert len(warnings) == 1 and "not writable" in warnings[0].getMessage()


def test_refused_file_stays_refused_with_the_same_message(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = _write(tmp_path / "bad.yaml", ORDERS.replace("version: 2.1.0", "version: two"))
    with pytest.raises(ContractLoadError) as plain:
        loader.load_contract_file(f)
    cache = ContractCache(tmp_path / "cache")
    with pytest.raises(ContractLoadError) as cold:
        loader.load_contract_file(f, cache=cache)
    monkeypatch.setattr(loader, "parse_document", _no_parse)
    with pytest.raises(ContractLoadError) as warm:
        loader.load_contract_file(f, cache=ContractCache(tmp_path / "cache"))
    assert plain.value.error == cold.value.error == warm.value.error
    assert plain.value.error.field == "version" and str(warm.value) == str(plain.value)


def test_not_yaml_refusal_is_the_same_through_the_cache(tmp_path: Path) -> None:
    f = _write(tmp_path / "bad.yaml", "a: [1, 2\n")
    errors = []
    for cache in (ContractCache(None), ContractCache(tmp_path / "c"), ContractCache(tmp_path / "c")):
        with pytest.raises(ContractLoadError) as exc:
            loader.load_contract_file(f, cache=cache)
        errors.append(exc.value.error)
    assert errors[0] == errors[1] == errors[2]


def test_internal_error_is_not_cached(tmp_path: Path) -> None:
    cache = ContractCache(tmp_path / "cache")
    internal = ContractError("x.yaml", "<internal>", "floe could not read this contract (KeyError)")

    def bug() -> MonitoredContract:
        raise ContractLoadError(internal)

    with pytest.raises(ContractLoadError):
        cache.parse(b"bytes", "x.yaml", ServerOptions(), bug)
    assert not list((tmp_path / "cache").rglob("*.pickle"))


WRITER = """
import sys
from pathlib import Path
from floe_monitoring_defs.contracts import loader
from floe_monitoring_defs.contracts.cache import ContractCache
from floe_monitoring_defs.contracts.servers import ServerOptions
f, directory, rounds = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
contract = loader.load_contract_file(f)
cache = ContractCache(directory)
key = cache.key(f.read_bytes(), str(f), ServerOptions())
for _ in range(rounds):
    cache.put(key, contract)
print(key)
"""


def test_two_processes_writing_one_entry_never_leave_half_of_it(tmp_path: Path) -> None:
    f = _write(tmp_path / "orders.yaml", ORDERS)
    directory = tmp_path / "cache"
    cmd = [sys.executable, "-c", WRITER, str(f), str(directory), "300"]
    writers = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    reads = 0
    while any(w.poll() is None for w in writers):
        for entry in directory.rglob("*.pickle") if directory.exists() else []:
            try:
                blob = entry.read_bytes()
            except FileNotFoundError:
                continue
            pickle.loads(blob)  # never a torn entry: os.replace puts whole files in place
            reads += 1
    outs = [w.communicate()[0].strip() for w in writers]
    assert all(w.returncode == 0 for w in writers) and outs[0] == outs[1]
    entries = list(directory.rglob("*.pickle"))
    assert [e.stem for e in entries] == [outs[0]]
    assert not [p for p in directory.rglob(".tmp-*")]  # no temporary file left behind
    assert ContractCache(directory).get(outs[0]) == loader.load_contract_file(f)


def test_where_the_cache_lives() -> None:
    assert cache_directory({}) is None
    assert cache_directory({"DAGSTER_HOME": "/srv/dh"}) == Path("/srv/dh/.floe-cache")
    assert cache_directory({"DAGSTER_HOME": "/srv/dh", "FLOE_CACHE_DIR": "/var/cache/floe"}) == Path("/var/cache/floe")
    assert cache_directory({"DAGSTER_HOME": "/srv/dh", "FLOE_CACHE_DIR": "off"}) is None


def test_default_cache_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOE_CACHE_DIR", str(tmp_path / "env-cache"))
    f = _write(tmp_path / "orders.yaml", ORDERS)
    report = loader.load_contracts([f])
    assert report.contracts and list((tmp_path / "env-cache").rglob("*.pickle"))
