"""The embedded demo: a local Iceberg warehouse (pyiceberg SqlCatalog on SQLite) with tables that
are fresh, stale, drifted and close to their SLA, matching the contracts in examples/contracts/.

The tables are written once, by `floe demo`, while `dagster dev` keeps checking them against the wall clock.
So the ages below and the contracts' SLAs are placed for every state to hold for more than a day (checked
with an injected clock in floe_monitoring_tests/integration/test_demo_states.py), not only at the moment of
the demo: orders and products are fresh against two-day SLAs (an early warning only at 80 %, 38 h later),
shipments sits at 81 % of a 14-day SLA (INFO until 90 %, 30 h later), customers is already stale, products'
drift, customers' failing quality rules and inventory's unreachable catalog do not depend on time at all.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.schema import Schema
from pyiceberg.types import (
    BooleanType,
    DecimalType,
    FloatType,
    IntegerType,
    LongType,
    NestedField,
    StringType,
    TimestamptzType,
)

from floe_monitoring_defs.models import utcnow

CATALOG_NAME = "floe_demo"

# Age of each table's newest row when `floe demo` writes it (see the module docstring and the contracts).
ORDERS_AGE = timedelta(minutes=10)  # P2D: fresh for 38 h
CUSTOMERS_AGE = timedelta(hours=9)  # PT6H: stale from the start
PRODUCTS_AGE = timedelta(minutes=30)  # P2D: fresh for 38 h (drifted all along)
SHIPMENTS_AGE = timedelta(days=11, hours=8)  # P14D: 81 % consumed, an early warning for 30 h
# How long every state the README promises holds under `dagster dev` (the shortest of the above).
STATES_HOLD = timedelta(hours=30)


@dataclass(frozen=True)
class DemoPaths:
    root: Path

    @property
    def catalog_db(self) -> Path:
        return self.root / "catalog.db"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster_home"

    def catalog_env(self) -> dict[str, str]:
        """pyiceberg configuration for the demo catalog, the way pyiceberg reads it from the env."""
        prefix = f"PYICEBERG_CATALOG__{CATALOG_NAME.upper()}__"
        return {
            f"{prefix}TYPE": "sql",
            f"{prefix}URI": f"sqlite:///{self.catalog_db}",
            f"{prefix}WAREHOUSE": f"file://{self.warehouse}",
        }


def open_catalog(paths: DemoPaths) -> Catalog:
    paths.warehouse.mkdir(parents=True, exist_ok=True)
    return SqlCatalog(CATALOG_NAME, uri=f"sqlite:///{paths.catalog_db}", warehouse=f"file://{paths.warehouse}")


def _ts(now: datetime, age: timedelta, n: int) -> list[datetime]:
    """n timestamps, the newest `age` before now, one minute apart."""
    return [now - age - timedelta(minutes=i) for i in range(n)]


def build_warehouse(root: Path, now: datetime | None = None, rows: int = 50) -> DemoPaths:
    """Create (or recreate) the demo tables with timestamps relative to `now`."""
    now = now or utcnow()
    paths = DemoPaths(root.resolve())
    if paths.root.exists():
        paths.catalog_db.unlink(missing_ok=True)
        shutil.rmtree(paths.warehouse, ignore_errors=True)
    cat = open_catalog(paths)
    for ns in ("sales", "crm", "catalog", "ops"):
        cat.create_namespace_if_not_exists(ns)

    # sales.orders: fresh (10 minutes old against a two-day SLA) and matching its contract.
    orders = Schema(
        NestedField(1, "order_id", StringType(), required=True),
        NestedField(2, "customer_email", StringType(), required=False),
        NestedField(3, "total_amount", DecimalType(12, 2), required=True),
        NestedField(4, "updated_at", TimestamptzType(), required=True),
        identifier_field_ids=[1],
    )
    t = cat.create_table("sales.orders", schema=orders)
    t.append(
        pa.table(
            {
                "order_id": [f"o-{i:05d}" for i in range(rows)],
                "customer_email": [f"buyer{i}@example.com" for i in range(rows)],
                "total_amount": [Decimal(f"{10 + i}.50") for i in range(rows)],
                "updated_at": _ts(now, ORDERS_AGE, rows),
            },
            schema=t.schema().as_arrow(),
        )
    )

    # crm.customers: stale (newest row 9 hours old against a 6-hour SLA), and failing quality rules:
    # every 10th email is malformed, every 25th lifetime value negative.
    customers = Schema(
        NestedField(1, "customer_id", StringType(), required=True),
        NestedField(2, "email", StringType(), required=True),
        NestedField(3, "segment", StringType(), required=False),
        NestedField(4, "lifetime_value", DecimalType(12, 2), required=False),
        NestedField(5, "updated_at", TimestamptzType(), required=True),
        identifier_field_ids=[1],
    )
    t = cat.create_table("crm.customers", schema=customers)
    t.append(
        pa.table(
            {
                "customer_id": [f"c-{i:05d}" for i in range(rows)],
                "email": [
                    f"person{i}-at-example.com" if i % 10 == 0 else f"person{i}@example.com" for i in range(rows)
                ],
                "segment": ["smb" if i % 2 else "enterprise" for i in range(rows)],
                "lifetime_value": [
                    Decimal(f"-{i}.00") if i % 25 == 0 and i else Decimal(f"{i * 3}.00") for i in range(rows)
                ],
                "updated_at": _ts(now, CUSTOMERS_AGE, rows),
            },
            schema=t.schema().as_arrow(),
        )
    )

    # catalog.products: drifted. The contract says price DECIMAL(10,2) and has `category`;
    # the table has price FLOAT, no `category`, and an undeclared `discontinued` column.
    products = Schema(
        NestedField(1, "sku", StringType(), required=True),
        NestedField(2, "name", StringType(), required=True),
        NestedField(3, "price", FloatType(), required=True),
        NestedField(5, "discontinued", BooleanType(), required=False),
        NestedField(6, "updated_at", TimestamptzType(), required=True),
        identifier_field_ids=[1],
    )
    t = cat.create_table("catalog.products", schema=products)
    t.append(
        pa.table(
            {
                "sku": [f"sku-{i:04d}" for i in range(rows)],
                "name": [f"Product {i}" for i in range(rows)],
                "price": [float(i) + 0.99 for i in range(rows)],
                "discontinued": [i % 7 == 0 for i in range(rows)],
                "updated_at": _ts(now, PRODUCTS_AGE, rows),
            },
            schema=t.schema().as_arrow(),
        )
    )

    # ops.shipments: 11 days 8 hours old against a 14-day SLA: 81 % consumed, an INFO early warning.
    shipments = Schema(
        NestedField(1, "shipment_id", LongType(), required=True),
        NestedField(2, "carrier", StringType(), required=False),
        NestedField(3, "parcels", IntegerType(), required=False),
        NestedField(4, "shipped_at", TimestamptzType(), required=True),
        identifier_field_ids=[1],
    )
    t = cat.create_table("ops.shipments", schema=shipments)
    t.append(
        pa.table(
            {
                "shipment_id": list(range(rows)),
                "carrier": ["ups" if i % 3 else "dhl" for i in range(rows)],
                "parcels": [1 + i % 4 for i in range(rows)],
                "shipped_at": _ts(now, SHIPMENTS_AGE, rows),
            },
            schema=t.schema().as_arrow(),
        )
    )
    return paths


def write_env_file(path: Path, env: dict[str, str]) -> bool:
    """Write a `.env` that `dagster dev` loads; never overwrite one the user wrote."""
    marker = "# written by `floe demo`"
    if path.exists() and not path.read_text(encoding="utf-8").startswith(marker):
        return False
    path.write_text(marker + "\n" + "".join(f"{k}={v}\n" for k, v in sorted(env.items())), encoding="utf-8")
    return True


def apply_env(env: dict[str, str]) -> None:
    for key, value in env.items():
        os.environ[key] = value
