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


class ContractLoader(_BASE):  # type: ignore[misc]
    """A safe loader that reads dates, times and `HH:MM` as the text written (see the module docstring)."""

    yaml_implicit_resolvers = _resolvers()

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        if all(type(k) is str for k in mapping):
            return mapping
        # Rare: a key YAML typed as a number, boolean or null. Use the key's text, in document order.
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else self.construct_object(key_node)
            out[key] = self.construct_object(value_node, deep=deep)
        return out


class ContractYAMLError(ValueError):
    """The text is not YAML; `where` is `line L, column C` (or `<file>`)."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


def load_yaml(text: str) -> Any:
    """One YAML document, read as the author meant it; raises ContractYAMLError with the line and column."""
    try:
        return yaml.load(text, Loader=ContractLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "<file>"
        raise ContractYAMLError(where, f"not valid YAML: {getattr(exc, 'problem', None) or exc}") from None


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
