"""The one exception a contract that cannot be loaded raises: it carries the file, the field path and why."""

from __future__ import annotations

from floe_monitoring_defs.contracts.model import ContractError


class ContractLoadError(Exception):
    def __init__(self, error: ContractError) -> None:
        super().__init__(str(error))
        self.error = error


def fail(source: str, field: str, message: str) -> ContractLoadError:
    """The error to raise for `source`: `field` is the ODCS path (`schema[0].properties[2].logicalType`)."""
    return ContractLoadError(ContractError(source, field, message))
