"""Mutations of valid contracts, and the special files no contract directory should hold but some will.

One engine serves the property-based tests (choices drawn by hypothesis, so a failure shrinks to a small
mutation) and `benchmarks/fuzz_contracts.py` (choices from a seeded `random.Random`): both hand it a `Chooser`.

A mutant starts from a good contract (`examples/contracts/`, the `ok_*` files of `fixtures/odcs_corpus/`) and
applies 1-3 mutations: on the document (a node replaced by a value of another type or a hostile string,
deleted, renamed, copied elsewhere, wrapped, nested deeply, a list grown) or on its text and bytes (a key
written twice, a huge number, truncation, stray bytes that are not UTF-8, NUL and control characters, a byte
order mark, UTF-16, tabs, an alias bomb, a second document, a recursive alias).
"""

from __future__ import annotations

import codecs
import copy
import os
import random
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol, TypeVar

import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "contracts"
CORPUS = REPO / "floe_monitoring_tests" / "fixtures" / "odcs_corpus"
T = TypeVar("T")


class Chooser(Protocol):
    def integer(self, low: int, high: int) -> int: ...

    def choice(self, options: Sequence[T]) -> T: ...


class RandomChooser:
    """Choices from a seeded generator (the benchmark; a seed gives the same mutants every time)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def integer(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)

    def choice(self, options: Sequence[T]) -> T:
        return options[self.rng.randrange(len(options))]


@dataclass(frozen=True)
class Base:
    name: str  # file name, unique among the bases
    text: str


@dataclass(frozen=True)
class Mutant:
    base: str
    kinds: tuple[str, ...]
    data: bytes


@cache
def good_contracts() -> tuple[Base, ...]:
    """The demo's five contracts: valid, distinct names and tables (what every test directory also holds)."""
    return tuple(Base(f"example_{p.name}", p.read_text(encoding="utf-8")) for p in sorted(EXAMPLES.glob("*.yaml")))


@cache
def bases() -> tuple[Base, ...]:
    """Every valid contract the mutants start from."""
    corpus = tuple(
        Base(f"{p.parent.name}_{p.name}", p.read_text(encoding="utf-8")) for p in sorted(CORPUS.glob("v3.*/ok_*.yaml"))
    )
    return good_contracts() + corpus


# ---------------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------------

HOSTILE_STRINGS = (
    "",
    " ",
    "ü",
    "a b",
    "class",
    "input_arg_dict",
    "floe",
    "contract_registry",
    "contract_sla_daily",
    "a/b",
    "../../etc/passwd",
    "a.b.c",
    "x-y",
    "team:",
    "team:ops",
    "x@",
    "ops@example.com",
    "\u202eevil",
    "zero\u200bwidth",
    "😀",
    "e\u0301",
    "line\nbreak",
    "tab\there",
    "\x1b[31mred",
    "nul\x00byte",
    "x" * 300,
    "y" * 20000,
    "PT-1H",
    "P99999999999Y",
    "PT0S",
    "150%",
    "99.9%",
    "25:00",
    "09:00+99:00",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:00:00-05:00",
    "0 6 31 2 *",
    "\u0663 6 * * *",
    "*/0 * * * *",
    "0 6 * * *",
    "v3.1.0",
    "1.0.0",
    "${object}",
    "'; DROP TABLE x; --",
    "Europe/Nowhere",
    "a" * 5000 + "/b",
)


def _hostile_value(ch: Chooser) -> Any:
    kind = ch.integer(0, 13)
    if kind <= 4:
        return ch.choice(HOSTILE_STRINGS)
    return ch.choice(
        (
            None,
            True,
            False,
            0,
            -1,
            1.5,
            -0.0,
            float("nan"),
            float("inf"),
            2**64,
            -(2**70),
            [],
            {},
            [[["x"]]],
            {"a": {"b": [1]}},
            ["a", 1, None],
            [{"property": "floe.iceberg_namespace", "value": [["x"]]}],
            {"property": "x", "value": {"y": [1, 2]}},
            [1.5],
            ["ü", "a b", ""],
        )
    )


def _nested(ch: Chooser) -> Any:
    depth = ch.integer(20, 120)  # deeper ones are written as text (`_deep_text`): PyYAML's dumper recurses
    node: Any = ch.choice(("leaf", 1, None))
    as_list = ch.integer(0, 1) == 0
    for _ in range(depth):
        node = [node] if as_list else {"n": node}
    return node


# ---------------------------------------------------------------------------------------------------
# Document mutations
# ---------------------------------------------------------------------------------------------------

Path_ = tuple[Any, ...]


def _paths(doc: Any, here: Path_ = ()) -> list[Path_]:
    out = [here]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.extend(_paths(v, (*here, k)))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.extend(_paths(v, (*here, i)))
    return out


def _get(doc: Any, path: Path_) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def _set(doc: Any, path: Path_, value: Any) -> Any:
    if not path:
        return value
    _get(doc, path[:-1])[path[-1]] = value
    return doc


def _replace(doc: Any, ch: Chooser) -> Any:
    return _set(doc, ch.choice(_paths(doc)), _hostile_value(ch))


def _delete(doc: Any, ch: Chooser) -> Any:
    paths = [p for p in _paths(doc) if p]
    if not paths:
        return doc
    path = ch.choice(paths)
    del _get(doc, path[:-1])[path[-1]]
    return doc


def _rename(doc: Any, ch: Chooser) -> Any:
    paths = [p for p in _paths(doc) if p and isinstance(_get(doc, p[:-1]), dict)]
    if not paths:
        return doc
    path = ch.choice(paths)
    parent = _get(doc, path[:-1])
    new = ch.choice((path[-1].upper(), path[-1] + "s", "x" + path[-1], "", "ü", "properties", "columns", "quality"))
    parent[new] = parent.pop(path[-1])
    return doc


def _copy_elsewhere(doc: Any, ch: Chooser) -> Any:
    paths = _paths(doc)
    value = _get(doc, ch.choice(paths))
    if _weight(doc) + _weight(value) > BUDGET:
        return doc
    value = copy.deepcopy(value)
    target = ch.choice(paths)
    holder = _get(doc, target)
    if isinstance(holder, list):
        holder.append(value)
        return doc
    if isinstance(holder, dict):
        holder[ch.choice(("extra", "properties", "quality", "customProperties", "servers", "schema"))] = value
        return doc
    return _set(doc, target, value)


def _wrap(doc: Any, ch: Chooser) -> Any:
    path = ch.choice(_paths(doc))
    value = _get(doc, path)
    doubled = [value, value] if 2 * _weight(doc) <= BUDGET else [value]
    wrapped = ch.choice(([value], {"value": value}, str(value)[:200], doubled))
    return _set(doc, path, wrapped)


def _nest(doc: Any, ch: Chooser) -> Any:
    return _set(doc, ch.choice(_paths(doc)), _nested(ch))


def _weight(doc: Any) -> int:
    """Roughly the bytes `doc` takes as YAML: growing and copying stay within BUDGET (chained, they multiply)."""
    total, stack = 0, [doc]
    while stack:
        node = stack.pop()
        total += 4
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str):
            total += len(node)
    return total


BUDGET = 6_000_000  # a little over the loader's 4 MiB default: the size limit is tested too, never gigabytes


def _grow(doc: Any, ch: Chooser) -> Any:
    lists = [p for p in _paths(doc) if isinstance(_get(doc, p), list) and _get(doc, p)]
    if not lists:
        return doc
    path = ch.choice(lists)
    items = _get(doc, path)
    room = max(0, BUDGET - _weight(doc)) // max(1, max(_weight(i) for i in items))
    count = min(ch.integer(2, 3000), len(items) + room)
    return _set(doc, path, [copy.deepcopy(items[i % len(items)]) for i in range(count)])


DOC_MUTATIONS: dict[str, Callable[[Any, Chooser], Any]] = {
    "replace": _replace,
    "delete": _delete,
    "rename": _rename,
    "copy": _copy_elsewhere,
    "wrap": _wrap,
    "nest": _nest,
    "grow": _grow,
}


# ---------------------------------------------------------------------------------------------------
# Text and byte mutations
# ---------------------------------------------------------------------------------------------------

_KEY_LINE = re.compile(rb"^[ \t-]*[A-Za-z_][\w.]*:", re.MULTILINE)
_VALUE = re.compile(rb": ([^\n]+)$", re.MULTILINE)
BILLION_LAUGHS = b'lol0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + b"".join(
    f"lol{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n".encode() for i in range(1, 10)
)


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def _dup_key(data: bytes, ch: Chooser) -> bytes:
    lines = _lines(data)
    keyed = [i for i, line in enumerate(lines) if _KEY_LINE.match(line) and not line.rstrip().endswith(b":")]
    if not keyed:
        return data
    i = ch.choice(keyed)
    return b"\n".join([*lines[: i + 1], lines[i], *lines[i + 1 :]])


def _huge_number(data: bytes, ch: Chooser) -> bytes:
    found = list(_VALUE.finditer(data))
    if not found:
        return data
    m = ch.choice(found)
    digits = ch.choice((b"9" * 5000, b"0x" + b"f" * 5000, b"1" + b"0" * 400 + b".5", b"-" + b"7" * 4301, b"1e99999"))
    return data[: m.start(1)] + digits + data[m.end(1) :]


def _truncate(data: bytes, ch: Chooser) -> bytes:
    return data[: ch.integer(0, max(0, len(data) - 1))]


def _stray_bytes(data: bytes, ch: Chooser) -> bytes:
    out = bytearray(data)
    for _ in range(ch.integer(1, 4)):
        at = ch.integer(0, len(out))
        out[at:at] = ch.choice((b"\xff", b"\xc3", b"\x80\x80", b"\x00", b"\x1b", b"\x7f", b"\xed\xa0\x80", b"\xfe\xff"))
    return bytes(out)


def _encoding(data: bytes, ch: Chooser) -> bytes:
    kind = ch.integer(0, 3)
    if kind == 0:
        return codecs.BOM_UTF8 + data
    text = data.decode("utf-8", errors="replace")
    if kind == 1:
        return text.encode("utf-16")  # with its byte order mark: YAML allows it
    if kind == 2:
        return text.encode("utf-16-le")  # without one: not UTF-8
    return text.encode("latin-1", errors="replace")


def _tabs(data: bytes, ch: Chooser) -> bytes:
    lines = _lines(data)
    indented = [i for i, line in enumerate(lines) if line.startswith(b"  ")]
    for _ in range(ch.integer(1, 3)):
        if indented:
            i = ch.choice(indented)
            lines[i] = b"\t" + lines[i][2:]
    return b"\n".join(lines)


def _alias_bomb(data: bytes, ch: Chooser) -> bytes:
    levels = ch.integer(3, 9)
    bomb = b"\n".join(BILLION_LAUGHS.split(b"\n")[: levels + 1]) + b"\n"
    return data.rstrip(b"\n") + b"\n" + bomb


def _second_document(data: bytes, ch: Chooser) -> bytes:
    return data + ch.choice((b"\n---\n", b"\n---\nname: other\n", b"\n...\n---\n[1]\n"))


def _recursive_alias(data: bytes, ch: Chooser) -> bytes:
    return data.rstrip(b"\n") + ch.choice((b"\nloop: &loop [*loop]\n", b"\nloop: &loop\n  self: *loop\n"))


def _control_chars(data: bytes, ch: Chooser) -> bytes:
    found = list(_VALUE.finditer(data))
    if not found:
        return data
    m = ch.choice(found)
    junk = ch.choice((b'"\\u0000"', b'"\\x07bell"', b'"\\ud800"', b"\x0c", b'"\\U0010ffff"'))
    return data[: m.start(1)] + junk + data[m.end(1) :]


def _deep_text(data: bytes, ch: Chooser) -> bytes:
    depth = ch.integer(60, 5000)
    return data.rstrip(b"\n") + b"\ndeep: " + b"[" * depth + b"]" * depth + b"\n"


BYTE_MUTATIONS: dict[str, Callable[[bytes, Chooser], bytes]] = {
    "deep_text": _deep_text,
    "dup_key": _dup_key,
    "huge_number": _huge_number,
    "truncate": _truncate,
    "stray_bytes": _stray_bytes,
    "encoding": _encoding,
    "tabs": _tabs,
    "alias_bomb": _alias_bomb,
    "second_document": _second_document,
    "recursive_alias": _recursive_alias,
    "control_chars": _control_chars,
}


def _dump(doc: Any) -> bytes:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=10_000).encode("utf-8", "surrogatepass")


def mutate(base: Base, ch: Chooser) -> Mutant:
    """1-3 mutations of `base`: document mutations first (the document is then written as YAML), then bytes."""
    doc = yaml.safe_load(base.text)
    kinds: list[str] = []
    data = base.text.encode("utf-8")
    names = [*DOC_MUTATIONS, *BYTE_MUTATIONS]
    chosen = [ch.choice(names) for _ in range(ch.integer(1, 3))]
    doc_steps = [k for k in chosen if k in DOC_MUTATIONS]
    if doc_steps:
        for kind in doc_steps:
            doc = DOC_MUTATIONS[kind](doc, ch)
            kinds.append(kind)
        try:
            data = _dump(doc)
        except RecursionError:  # nested twice over: what is left to test is the depth itself
            data = _deep_text(data, ch)
    for kind in (k for k in chosen if k in BYTE_MUTATIONS):
        data = BYTE_MUTATIONS[kind](data, ch)
        kinds.append(kind)
    return Mutant(base.name, tuple(kinds), data)


def mutant(ch: Chooser) -> Mutant:
    return mutate(ch.choice(bases()), ch)


# ---------------------------------------------------------------------------------------------------
# Special files
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Special:
    """A file no contract directory should hold; `expect` is a word the error about it must contain (None: the
    file is a good contract written another way, and must load)."""

    name: str
    expect: str | None
    make: Callable[[Path], None]


def _writer(data: bytes) -> Callable[[Path], None]:
    def write(p: Path) -> None:
        p.write_bytes(data)

    return write


def _good_text() -> str:
    return good_contracts()[0].text


def _renamed(text: str, name: str) -> str:
    """A good contract under another name and table, so it loads beside the original."""
    doc = yaml.safe_load(text)
    doc["name"] = doc["id"] = name
    doc["schema"][0]["name"] = doc["schema"][0]["physicalName"] = name
    return yaml.safe_dump(doc, sort_keys=False)


def _fifo(p: Path) -> None:
    os.mkfifo(p)


def _socket(p: Path) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(p))
    sock.close()  # the socket file stays


def _symlink(target: str) -> Callable[[Path], None]:
    return lambda p: p.symlink_to(target)


def _loop(p: Path) -> None:
    p.symlink_to(p.name)


def _pair_loop(p: Path) -> None:
    other = p.with_name(p.stem + "_other.txt")
    other.symlink_to(p.name)
    p.symlink_to(other.name)


def _directory(p: Path) -> None:
    p.mkdir()
    (p / "inner_good.yaml").write_text(_renamed(_good_text(), "inside_a_yaml_directory"), encoding="utf-8")


def _oversize(p: Path) -> None:
    with p.open("wb") as f:
        f.write(_good_text().encode("utf-8"))
        f.write(b"# padding\n" * (500_000))  # ~5 MB: over the 4 MiB default


def special_files() -> tuple[Special, ...]:
    good = _good_text()
    deep = "apiVersion: v3.1.0\nkind: DataContract\nx: " + "[" * 200 + "]" * 200 + "\n"
    return (
        Special("not_utf8.yaml", "not UTF-8", _writer(good.encode("utf-8").replace(b"customers", b"cust\xffomers", 1))),
        Special("latin1.yaml", "not UTF-8", _writer(("description: Kundenübersicht\n" + good).encode("latin-1"))),
        Special("bom_utf8.yaml", None, _writer(codecs.BOM_UTF8 + _renamed(good, "bom_utf8").encode("utf-8"))),
        Special("bom_utf16.yaml", None, _writer(_renamed(good, "bom_utf16").encode("utf-16"))),
        Special("utf16_without_bom.yaml", None, _writer(_renamed(good, "utf16_without_bom").encode("utf-16-le"))),
        Special("utf16_odd_length.yaml", "UTF-16", _writer(good.encode("utf-16-le")[:-1])),
        Special("bom_utf32.yaml", "UTF-32", _writer(good.encode("utf-32"))),
        Special("alias_bomb.yaml", "aliases", _writer(good.encode("utf-8") + BILLION_LAUGHS)),
        Special("recursive_alias.yaml", "recursive", _writer(good.encode("utf-8") + b"loop: &loop [*loop]\n")),
        Special("oversize.yaml", "limit", _oversize),
        Special("dev_zero.yaml", "character device", _symlink("/dev/zero")),
        Special("dev_null.yaml", "character device", _symlink("/dev/null")),
        Special("fifo.yaml", "FIFO", _fifo),
        Special("socket.yaml", "socket", _socket),
        Special("symlink_loop.yaml", "symbolic link loop", _loop),
        Special("symlink_pair_loop.yaml", "symbolic link loop", _pair_loop),
        Special("dangling.yaml", "dangling", _symlink("does_not_exist.yaml")),
        Special("directory.yaml", None, _directory),
        Special("empty.yaml", "empty", _writer(b"")),
        Special("only_comments.yaml", "empty", _writer(b"# a contract will go here\n# one day\n")),
        Special("whitespace.yml", "empty", _writer(b"\n\n   \n")),
        Special("two_documents.yaml", "single document", _writer(good.encode("utf-8") + b"\n---\n" + good.encode())),
        Special("tabs.yaml", "YAML", _writer(good.replace("\n    ", "\n\t", 3).encode("utf-8"))),
        Special("nul_bytes.yaml", "#x0000", _writer(good.encode("utf-8").replace(b"customers", b"cust\x00omers", 1))),
        Special("control_chars.yaml", "not allowed", _writer(good.encode("utf-8").replace(b"crm", b"c\x07rm", 1))),
        Special("deep_nesting.yaml", "nested", _writer(deep.encode("utf-8"))),
        Special(
            "huge_version.yaml", "version", _writer(re.sub(r"version: .*", "version: " + "9" * 5000, good).encode())
        ),
        Special(
            "duplicate_key.yaml", "twice", _writer(good.replace("name: customers\n", "name: a\nname: b\n", 1).encode())
        ),
        Special("scalar_document.yaml", "mapping", _writer(b"just a string\n")),
        Special("list_document.yaml", "mapping", _writer(b"- 1\n- 2\n")),
        Special("binary_tag.yaml", "JSON", _writer(good.encode("utf-8") + b"blob: !!binary aGVsbG8=\n")),
        Special("python_tag.yaml", "YAML", _writer(b"x: !!python/object/apply:os.system ['true']\n")),
        Special("truncated.yaml", "YAML", _writer(good.encode("utf-8")[: len(good) // 2] + b"  - [unclosed")),
        Special(
            "schema_float.yaml", "schema", _writer(re.sub(r"(?ms)^schema:.*?(?=^\S)", "schema: 1.5\n", good).encode())
        ),
        Special(
            "nested_list_namespace.yaml",
            "namespace",
            _writer(good.replace("floe.iceberg_namespace: crm", "floe.iceberg_namespace: [[crm]]").encode()),
        ),
    )
