"""ODCS comparison operators (`mustBe`, `mustBeLessThan`, `mustBeBetween`, ...) and result display.

Engine-agnostic: an engine measures a number, `Comparison.holds` grades it, and `describe` /
`format_value` give the `expected` / `actual` strings ("< 5 %", "12.0 %", "> 0 rows", "0 rows").
Several operators on one rule must all hold. `mustBeBetween: [a, b]` is inclusive (a <= v <= b, as
SQL `BETWEEN` and the common ODCS engines read it); `mustNotBeBetween` is its complement.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

OPERATORS: dict[str, str] = {
    "mustBe": "=",
    "mustNotBe": "!=",
    "mustBeGreaterThan": ">",
    "mustBeGreaterOrEqualTo": ">=",
    "mustBeLessThan": "<",
    "mustBeLessOrEqualTo": "<=",
    "mustBeBetween": "between",
    "mustNotBeBetween": "not between",
}

UNITS = ("rows", "percent")


class RuleError(ValueError):
    """A rule cannot be evaluated as written (bad operator, unknown metric, refused SQL, ...)."""


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise RuleError(f"{where}: {value!r} is not a number")
    if isinstance(value, int | float | Decimal):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise RuleError(f"{where}: {value!r} is not a number") from None
    else:
        raise RuleError(f"{where}: {value!r} is not a number")
    if not math.isfinite(number):
        raise RuleError(f"{where}: {value!r} is not a finite number")
    return number


def format_number(value: float) -> str:
    """3 -> "3", 2.5 -> "2.5", 0.000123 -> "0.000123"."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


@dataclass(frozen=True)
class Comparison:
    """The operators of one rule, each (operator key, operands)."""

    checks: tuple[tuple[str, tuple[float, ...]], ...]

    def holds(self, value: float) -> bool:
        return all(_holds(op, operands, value) for op, operands in self.checks)

    def describe(self) -> str:
        parts = []
        for op, operands in self.checks:
            symbol = OPERATORS[op]
            if len(operands) == 2:
                parts.append(f"{symbol} {format_number(operands[0])} and {format_number(operands[1])}")
            else:
                parts.append(f"{symbol} {format_number(operands[0])}")
        return " and ".join(parts)


def _holds(op: str, operands: tuple[float, ...], value: float) -> bool:
    close = math.isclose(value, operands[0], rel_tol=1e-9, abs_tol=1e-9)
    if op == "mustBe":
        return close
    if op == "mustNotBe":
        return not close
    if op == "mustBeGreaterThan":
        return value > operands[0] and not close
    if op == "mustBeGreaterOrEqualTo":
        return value >= operands[0] or close
    if op == "mustBeLessThan":
        return value < operands[0] and not close
    if op == "mustBeLessOrEqualTo":
        return value <= operands[0] or close
    low, high = operands
    inside = low <= value <= high
    return inside if op == "mustBeBetween" else not inside


def parse_comparison(operators: Mapping[str, Any], default: Mapping[str, Any] | None = None) -> Comparison:
    """The rule's operators (or `default` when it has none), validated."""
    given = {k: v for k, v in operators.items() if v is not None}
    if not given:
        if default is None:
            raise RuleError(f"no operator given (one of {', '.join(OPERATORS)})")
        given = dict(default)
    checks: list[tuple[str, tuple[float, ...]]] = []
    for op, raw in given.items():
        if op not in OPERATORS:
            raise RuleError(f"unknown operator {op!r} (expected one of {', '.join(OPERATORS)})")
        if op in ("mustBeBetween", "mustNotBeBetween"):
            if not isinstance(raw, list | tuple) or len(raw) != 2:
                raise RuleError(f"{op}: expected a list of two numbers [low, high], got {raw!r}")
            low, high = _number(raw[0], op), _number(raw[1], op)
            if low > high:
                raise RuleError(
                    f"{op}: the low bound {format_number(low)} is above the high bound {format_number(high)}"
                )
            checks.append((op, (low, high)))
        else:
            checks.append((op, (_number(raw, op),)))
    return Comparison(tuple(checks))


def unit_suffix(unit: str) -> str:
    return {"rows": " rows", "percent": " %"}.get(unit, "")


def format_value(value: float, unit: str) -> str:
    """A measured value for display: "0 rows", "12.0 %", "3.5"."""
    if unit == "percent":
        text = f"{value:.3f}".rstrip("0")
        return (text + "0" if text.endswith(".") else text) + " %"
    if unit == "rows":
        return f"{format_number(value)} {'row' if value == 1 else 'rows'}"
    return format_number(value)


def describe_expected(comparison: Comparison, unit: str) -> str:
    return comparison.describe() + unit_suffix(unit)
