"""Alembic migrations of the monitoring store, run programmatically (no alembic.ini).

`alembic_config()` builds the Alembic `Config` pointing at this directory; pass an open SQLAlchemy
connection in `config.attributes["connection"]` to migrate inside the caller's transaction.
"""

from __future__ import annotations

import functools
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).parent


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config for these migrations; `url` is only needed when no connection is passed."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        # ConfigParser interpolation: a literal % (e.g. in an encoded password) must be doubled.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


@functools.cache
def head_revision() -> str:
    """The newest revision id of these migrations (read once per process)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no Alembic revisions found in {MIGRATIONS_DIR / 'versions'}")
    return head
