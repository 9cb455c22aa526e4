"""The one exception a contract that cannot be loaded raises: it carries the file, the field path and why."""

from __future__ import annotations

from floe_monitoring_defs.contracts.model import ContractError

# A message quotes what the author wrote; a value of a megabyte must not make a megabyte of log line.
MAX_MESSAGE = 1000


class ContractLoadError(Exception):
    def __init__(self, error: ContractError) -> None:
        super().__init__(str(error))
        self.error = error


def fail(source: str, field: str, message: str) -> ContractLoadError:
    """The error to raise for `source`: `field` is the ODCS path (`schema[0].properties[2].logicalType`)."""
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 3] + "..."
    if len(field) > MAX_MESSAGE:
        field = field[: MAX_MESSAGE - 3] + "..."
    return ContractLoadError(ContractError(source, field, message))


def shorten(value: object, limit: int = 60) -> str:
    """`repr(value)` cut to `limit` characters: error messages quote what the author wrote, never a page of it."""
    try:
        text = repr(value)
    except ValueError:  # an integer too long to print (Python's 4,300-digit limit)
        return f"<a {type(value).__name__} too long to show>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
