"""Contracts: ODCS v3 documents -> MonitoredContract (the only package that knows ODCS field names)."""

from floe_monitoring_defs.contracts.loader import load_contract_file, load_contracts, parse_document
from floe_monitoring_defs.contracts.model import (
    ContractError,
    ExpectedColumn,
    LoadReport,
    MonitoredContract,
    MonitoredTable,
    NotMonitored,
    QualityRule,
    TableRef,
)
from floe_monitoring_defs.contracts.servers import ServerOptions, server_options

__all__ = [
    "ContractError",
    "ExpectedColumn",
    "LoadReport",
    "MonitoredContract",
    "MonitoredTable",
    "NotMonitored",
    "QualityRule",
    "ServerOptions",
    "TableRef",
    "load_contract_file",
    "load_contracts",
    "parse_document",
    "server_options",
]
