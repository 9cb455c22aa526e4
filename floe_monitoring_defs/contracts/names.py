"""What a contract turns into Dagster names, derived or refused here, so a contract that validates also loads.

Dagster refuses a bad name only when definitions are built, and then the whole code location fails; so its
rules are reproduced here (this package must not import Dagster), as `dagster` 1.13 states them:

* a name (op, job, schedule, input, output): `^[A-Za-z0-9_]+$` and not one of `DISALLOWED_NAMES` (a few
  Dagster words and every Python keyword), `dagster/_core/definitions/utils.py`;
* an asset key becomes names: the external asset's op and its checks' outputs are
  `"__".join(path)` and the check inputs `"_".join(path)`, both with `-` and `.` replaced by `_`
  (`AssetKey.to_python_identifier`, `stringify_asset_key_to_input_name`). So a key part may hold letters,
  digits, `_`, `-` and `.`, the joined name must not be a reserved one, and two keys whose names coincide
  (`shop/a-b` and `shop/a_b`) would silently share one check output: the second is refused
  (`loader.load_contracts`);
* a group name: segments of `[A-Za-z0-9_]+` separated by `/`; the contract's `domain` is turned into one;
* a strict tag value: `^[A-Za-z0-9_.-]{0,63}$`; a tag key: an optional `<= 63`-character namespace and `/`,
  then `<= 63` of the same characters (`dagster/_utils/tags.py`); contract names and tags are turned into one;
* an owner: an email address as `is_valid_email` in `dagster/_core/utils.py` reads one, or `team:` and a name.

The monitor's own assets (`floe/contract_registry`, `contract_sla_daily`) cannot be a contract's table.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Sequence

from floe_monitoring_defs.contracts.errors import shorten

# dagster/_core/definitions/utils.py: DISALLOWED_NAMES
RESERVED_NAMES = frozenset(
    {
        "context",
        "conf",
        "config",
        "meta",
        "arg_dict",
        "dict",
        "input_arg_dict",
        "output_arg_dict",
        "int",
        "str",
        "float",
        "bool",
        "input",
        "output",
        "type",
        *keyword.kwlist,
    }
)
_NAME = re.compile(r"[A-Za-z0-9_]+")
_KEY_PART = re.compile(r"[A-Za-z0-9_.-]+")
_TAG_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")
_GROUP_CHARS = re.compile(r"[^A-Za-z0-9_]+")
_OWNER_CHARS = re.compile(r"[^A-Za-z0-9_-]+")
# `is_valid_email` in dagster/_core/utils.py (matched in full)
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Z|a-z]{2,7}\b")
TAG_MAX = 63
DEFAULT_GROUP = "contracts"

REGISTRY_ASSET_KEY = ("floe", "contract_registry")
SLA_ASSET_KEY = ("contract_sla_daily",)
RESERVED_ASSET_KEYS = (REGISTRY_ASSET_KEY, SLA_ASSET_KEY)


def is_valid_name(name: str) -> bool:
    """Whether Dagster accepts `name` as an op, job, input or output name."""
    return _NAME.fullmatch(name) is not None and name not in RESERVED_NAMES


def python_names(parts: Sequence[str]) -> tuple[str, str]:
    """The names Dagster derives from an asset key: (op and check-output stem, check-input name)."""
    return (
        "__".join(parts).replace("-", "_").replace(".", "_"),
        "_".join(parts).replace("-", "_").replace(".", "_"),
    )


# The monitor's own assets are never checked with a contract's in one op: only their keys and op names can clash.
_RESERVED_PYTHON_NAMES = {python_names(key)[0]: key for key in RESERVED_ASSET_KEYS}


def key_part_problem(part: str) -> str | None:
    """Why `part` cannot be one part of a Dagster asset key, or None when it can."""
    if _KEY_PART.fullmatch(part) is None:
        return f"{shorten(part)} cannot be part of a Dagster asset key: only letters, digits, '_', '-' and '.'"
    return None


def asset_key_problem(parts: Sequence[str], *, checked_parts: bool = False) -> str | None:
    """Why `parts` cannot be a contract table's asset key in Dagster, or None when it can (`checked_parts`: each
    part already passed `key_part_problem`)."""
    if not parts:
        return "the table has no name"
    for part in () if checked_parts else parts:
        problem = key_part_problem(part)
        if problem is not None:
            return problem
    op, inp = python_names(parts)
    for derived in (op, inp):
        if derived in RESERVED_NAMES:
            return f"the asset key {'/'.join(parts)} becomes the name {derived!r}, which Dagster reserves"
    if op in _RESERVED_PYTHON_NAMES:
        own = "/".join(_RESERVED_PYTHON_NAMES[op])
        return f"the asset key {'/'.join(parts)} is (or is named like) the monitor's own asset {own}"
    return None


def dagster_names(parts: Sequence[str]) -> tuple[str, ...]:
    """Keys under which two asset keys clash in Dagster: the key itself and each name derived from it."""
    op, inp = python_names(parts)
    return ("key:" + "/".join(parts), "op:" + op, "in:" + inp)


def tag_value(text: str) -> str:
    """`text` as a strict Dagster tag value (at most 63 of letters, digits, `_`, `-`, `.`); never empty."""
    return _TAG_CHARS.sub("_", text).strip("_.-")[:TAG_MAX] or "none"


def tag_key(namespace: str, name: str) -> str:
    """A Dagster tag key `namespace/name` (each part at most 63 characters of the allowed ones)."""
    return f"{tag_value(namespace)}/{tag_value(name)}"


def group_name(domain: str | None) -> str:
    """The Dagster asset group of a contract's `domain` (letters, digits and `_`)."""
    return _GROUP_CHARS.sub("_", domain or DEFAULT_GROUP).strip("_") or DEFAULT_GROUP


def is_email(text: str) -> bool:
    return _EMAIL.fullmatch(text) is not None


def is_valid_owner(owner: str) -> bool:
    """Whether Dagster accepts `owner` for an asset: an email address, or `team:` and a name."""
    return is_email(owner) or (owner.startswith("team:") and len(owner) > len("team:"))


def owner(who: str) -> str | None:
    """An owner as Dagster accepts it: an email address as written, else a team (`team:<name>`, the name
    reduced to letters, digits, `_` and `-`); None when nothing of it can name a team."""
    if is_valid_owner(who):
        return who
    team = _OWNER_CHARS.sub("-", who.removeprefix("team:")).strip("-")
    return f"team:{team}" if team else None
