"""Migrations: upgrade on an empty database, no drift between models and migrations, both
directions, and an app that refuses to start on a schema that is behind."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from portal.migrate import SchemaBehindError, check, current_revision, downgrade, head_revision
from portal.migrate import upgrade as migrate_upgrade
from tests.conftest import make_app


def test_upgrade_from_empty_has_no_drift(blank_db_url: str) -> None:
    """`alembic upgrade head` on an empty database, then `alembic check` finds nothing."""
    migrate_upgrade(blank_db_url)
    check(blank_db_url)
    engine = sa.create_engine(blank_db_url)
    try:
        assert current_revision(engine) == head_revision()
        tables = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"organizations", "users", "customers", "cases", "case_shares"} <= tables


def test_downgrade_to_base_and_up_again(blank_db_url: str) -> None:
    migrate_upgrade(blank_db_url)
    downgrade(blank_db_url, "base")
    engine = sa.create_engine(blank_db_url)
    try:
        assert "cases" not in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()
    migrate_upgrade(blank_db_url)
    check(blank_db_url)


def test_app_refuses_a_schema_that_is_behind(blank_db_url: str) -> None:
    """The app does not start on an unmigrated database and says which command fixes it."""
    with pytest.raises(SchemaBehindError, match="portal db upgrade"):
        make_app(blank_db_url)
