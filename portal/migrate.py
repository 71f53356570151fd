"""Alembic driven from code: upgrade, current and head revisions, drift check.

The CLI (`portal db ...`), the app's start-up check and the tests all use these functions,
so every path honours the same database URL.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


class SchemaBehindError(RuntimeError):
    """The database is not at the newest migration."""


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    # Passed through attributes, not the ini options, so '%' in passwords needs no escaping.
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def check(database_url: str) -> None:
    """Raise when the models and the migrated schema differ (alembic check)."""
    command.check(alembic_config(database_url))


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def ensure_current(engine: sa.Engine) -> None:
    """Refuse to run on a schema that is behind the code (or ahead of it)."""
    current = current_revision(engine)
    head = head_revision()
    if current != head:
        where = current or "an empty database"
        raise SchemaBehindError(
            f"The database schema is at {where}, the code needs {head}. "
            "Run `portal db upgrade` (or `make migrate`) with the same PORTAL_DATABASE_URL."
        )
