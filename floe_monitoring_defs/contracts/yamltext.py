"""Reading contract YAML as the author meant it.

YAML 1.1 (what PyYAML implements) turns unquoted text into other types: `2022-10-03` becomes a date,
`10:30` the base-60 integer 630, `0123` the octal 83. ODCS types those places as strings (examples,
`timeOfAvailability` values, ids), and jsonschema-rs cannot even look at a `date` object. So contracts
are read with a safe loader that

* keeps timestamps as the text written (`2022-10-03` stays `"2022-10-03"`);
* has no base-60 numbers (YAML 1.2 dropped them too): `10:30` stays `"10:30"`;
* turns mapping keys that are not strings (`200:`, `true:`) into the text written.

Numbers and booleans are still numbers and booleans (ODCS has many numeric fields); where the schema
wants a string instead, `scalar_text` gives back the text the author wrote, so the validator can
re-read that one value as text (`contracts/validation.py`).

What no contract needs is refused here, with the line, before anything else reads the document:

* a key given twice in one mapping (YAML keeps the last silently; the author meant one of them);
* nesting deeper than `MAX_DEPTH` mappings and sequences (everything after reads the document recursively);
* a document that aliases expand past `MAX_NODES` values ("billion laughs": a few hundred bytes that
  reference each other into gigabytes when validated), and an alias inside itself (a recursive document);
* a value its tag cannot be (`!!int abc`, `!!bool maybe`): an error with the line, not a crash.

An integer of more than `MAX_INT_DIGITS` characters is kept as the text written: Python refuses to convert
ones over 4,300 digits, and no ODCS field holds such a number (the schema then names the field that wants one).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import yaml

_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"

# PyYAML's int and float patterns without their base-60 alternatives (`190:20:30`, `1:30.5`).
_INT_RE = re.compile(
    r"""^(?:[-+]?0b[0-1_]+
    |[-+]?0[0-7_]+
    |[-+]?(?:0|[1-9][0-9_]*)
    |[-+]?0x[0-9a-fA-F_]+)$""",
    re.X,
)
_FLOAT_RE = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
    |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)

# libyaml's C parser reads a contract in ~0.2 ms against ~1.6 ms for the pure-Python one; the resolver and
# constructor stay Python classes either way, so the changes below apply to both.
_BASE: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _resolvers() -> dict[Any, list[tuple[str, re.Pattern[str]]]]:
    out: dict[Any, list[tuple[str, re.Pattern[str]]]] = {}
    for first, entries in yaml.SafeLoader.yaml_implicit_resolvers.items():
        kept: list[tuple[str, re.Pattern[str]]] = []
        for tag, regexp in entries:
            if tag == _TIMESTAMP:
                continue
            kept.append((tag, _INT_RE if tag == _INT else _FLOAT_RE if tag == _FLOAT else regexp))
        if kept:
            out[first] = kept
    return out


MAX_DEPTH = 64  # nested mappings and sequences; a contract nesting 25 struct levels deep uses about 55
MAX_NODES = 1_000_000  # values after aliases are expanded; measured: ~110 MB and 0.2 s to validate a million
MAX_INT_DIGITS = 100
_MERGE = "tag:yaml.org,2002:merge"


def _refuse(problem: str, mark: Any) -> yaml.YAMLError:
    return yaml.constructor.ConstructorError(None, None, problem, mark)


def _check_depth(root: Any) -> None:
    """Refuse a node tree deeper than MAX_DEPTH, level by level (iteratively: the depth is not known yet). Only
    collections are visited: a contract is mostly scalars, and this runs on every file."""
    level = [root]
    depth = 1
    while level:
        if depth > MAX_DEPTH:
            raise _refuse(f"nested more than {MAX_DEPTH} levels deep; no contract needs that", level[0].start_mark)
        below: list[Any] = []
        for node in level:
            if node.id == "mapping":
                for key, value in node.value:
                    if key.id != "scalar":
                        below.append(key)
                    if value.id != "scalar":
                        below.append(value)
            else:
                below.extend(child for child in node.value if child.id != "scalar")
        level = below
        depth += 1


def _check_expansion(root: Any) -> None:
    """Refuse a node graph larger than MAX_NODES once aliases are expanded, deeper than MAX_DEPTH, or cyclic.

    Aliases make the composed nodes a graph: a node referenced twice is one object. Each distinct node is
    visited once, its expanded size and height kept."""
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (values below and including it, height)
    open_: set[int] = set()  # expanded, children not finished: meeting one again is a cycle
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            count, height = 1, 0
            for child in _children(node):
                c, h = sizes[id(child)]
                count += c
                height = max(height, h)
            height += 1
            open_.discard(key)
            if height > MAX_DEPTH:
                raise _refuse(f"nested more than {MAX_DEPTH} levels deep; no contract needs that", node.start_mark)
            if count > MAX_NODES:
                raise _refuse(
                    f"the document expands to more than {MAX_NODES:,} values through YAML aliases (refused: "
                    "a document that grows when read, such as a 'billion laughs')",
                    node.start_mark,
                )
            sizes[key] = (count, height)
            continue
        if key in sizes:
            continue
        if node.id == "scalar":
            sizes[key] = (1, 0)
            continue
        if key in open_:
            raise _refuse("an alias refers to a value that contains it (a recursive document)", node.start_mark)
        open_.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)


def _children(node: Any) -> list[Any]:
    if node.id == "sequence":
        return list(node.value)
    if node.id == "mapping":
        return [n for pair in node.value for n in pair]
    return []


def _duplicate_key(pairs: list[tuple[Any, Any]]) -> None:
    """Refuse the second of two keys written the same in one mapping (`pairs`: the pairs as written)."""
    first: dict[str, Any] = {}
    for key_node, _ in pairs:
        if key_node.id != "scalar" or key_node.tag == _MERGE:
            continue  # several `<<` merges are YAML's own way to combine mappings
        seen = first.setdefault(key_node.value, key_node.start_mark)
        if seen is not key_node.start_mark:
            raise _refuse(
                f"the key {key_node.value[:60]!r} is given twice in this mapping (first at line {seen.line + 1}); "
                "YAML would keep only the last",
                key_node.start_mark,
            )


class ContractLoader(_BASE):  # type: ignore[misc]
    """A safe loader that reads dates, times and `HH:MM` as the text written and refuses what no contract
    needs (see the module docstring)."""

    yaml_implicit_resolvers = _resolvers()

    # Without an anchor (`&`) in the text there is no alias: the nodes are a tree, only its depth can be wrong.
    aliases_possible = True

    def construct_document(self, node: Any) -> Any:
        if node.id != "scalar":
            (_check_expansion if self.aliases_possible else _check_depth)(node)
        return super().construct_document(node)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        # The pairs as written: a `<<` merge puts the merged pairs in a new `node.value` (and deletes the `<<`
        # pair from this list), so this list keeps the explicit keys only, which must be unique.
        written = node.value if isinstance(node, yaml.MappingNode) else None
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        if written is not None and (node.value is not written or len(mapping) < len(written)):
            _duplicate_key(written)  # only when a key may be repeated: this runs for every mapping
        if all(type(k) is str for k in mapping):
            return mapping
        # Rare: a key YAML typed as a number, boolean or null. Use the key's text, in document order.
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else self.construct_object(key_node)
            out[key] = self.construct_object(value_node, deep=deep)
        if written is not None and node.value is written and len(out) < len(written):
            _duplicate_key(written)  # `1:` and `"1":` are two keys for YAML, one key written the same here
        return out


def _guarded(construct: Any, what: str) -> Any:
    """`construct` for one tag, refusing a value it cannot read with the line instead of a Python error."""

    def run(loader: Any, node: Any) -> Any:
        try:
            return construct(loader, node)
        except yaml.YAMLError:
            raise
        except Exception:
            shown = node.value[:40] if isinstance(node.value, str) else node.id
            raise _refuse(f"{shown!r} is not {what}", node.start_mark) from None

    return run


def _construct_int(loader: Any, node: Any) -> Any:
    text = loader.construct_scalar(node)
    if len(text) > MAX_INT_DIGITS:
        return text
    return yaml.constructor.SafeConstructor.construct_yaml_int(loader, node)


for _tag, _construct, _what in (
    (_INT, _construct_int, "an integer"),
    (_FLOAT, yaml.constructor.SafeConstructor.construct_yaml_float, "a number"),
    ("tag:yaml.org,2002:bool", yaml.constructor.SafeConstructor.construct_yaml_bool, "a boolean"),
    (_TIMESTAMP, yaml.constructor.SafeConstructor.construct_yaml_timestamp, "a timestamp"),
):
    ContractLoader.add_constructor(_tag, _guarded(_construct, _what))


class ContractYAMLError(ValueError):
    """The text is not YAML; `where` is `line L, column C` (or `<file>`)."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


def load_yaml(text: str) -> Any:
    """One YAML document, read as the author meant it; raises ContractYAMLError with the line and column."""
    try:
        loader = ContractLoader(text)
        try:
            loader.aliases_possible = "&" in text
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL, other control characters)
        where = _where(text, exc.position)
        char = f"#x{exc.character:04x}" if isinstance(exc.character, int) else repr(exc.character)
        raise ContractYAMLError(where, f"not valid YAML: the character {char} is not allowed ({exc.reason})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "<file>"
        context, problem = getattr(exc, "context", None), getattr(exc, "problem", None)
        said = f"{context}, {problem}" if context and problem else str(problem or exc)
        raise ContractYAMLError(where, f"not valid YAML: {said[:300]}") from None
    except RecursionError:  # the pure-Python parser (no libyaml) composes recursively
        raise ContractYAMLError("<file>", f"not valid YAML: nested more than {MAX_DEPTH} levels deep") from None
    except UnicodeError:  # text that no file holds (a lone surrogate), handed in by a caller
        raise ContractYAMLError("<file>", "not valid YAML: the text is not valid Unicode") from None


def _where(text: str, position: int) -> str:
    line = text.count("\n", 0, position) + 1
    return f"line {line}, column {position - (text.rfind(chr(10), 0, position) + 1) + 1}"


def compose(text: str) -> yaml.Node | None:
    """The node tree of the text (scalars keep the text written); None when it is not YAML."""
    try:
        node: yaml.Node | None = yaml.compose(text, Loader=ContractLoader)
    except yaml.YAMLError:
        return None
    return node


def scalar_text(root: yaml.Node | None, path: Sequence[str | int]) -> str | None:
    """The text written for the scalar at `path` (mapping keys and sequence indexes), None if not found."""
    node = root
    for part in path:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            node = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
        else:
            return None
    return node.value if isinstance(node, yaml.ScalarNode) else None
