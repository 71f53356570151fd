"""Pooled PostgreSQL connections are checked only after being idle (portal/db.py); one the
server dropped meanwhile is replaced instead of failing the request."""

from __future__ import annotations

import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask

from portal import db as portal_db
from portal.db import get_database

pytestmark = pytest.mark.parametrize(
    "backend", [pytest.param("postgresql", id="pg", marks=pytest.mark.postgresql)]
)


def _backend_pid(app: Flask) -> int:
    with get_database_engine(app).connect() as conn:
        return int(conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one())


def get_database_engine(app: Flask) -> sa.Engine:
    with app.app_context():
        return get_database().engine


def _terminate(app: Flask, pid: int) -> None:
    url = get_database_engine(app).url.set(drivername="postgresql")
    conninfo = url.render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_a_dropped_idle_connection_is_replaced(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    first = _backend_pid(app)
    _terminate(app, first)
    monkeypatch.setattr(portal_db, "IDLE_PING_SECONDS", 0.0)
    # The pool hands out the same (now dead) connection; the idle check finds it dead.
    second = _backend_pid(app)
    assert second != first
    assert app.test_client().get("/healthz").status_code == 200
